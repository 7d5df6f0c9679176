// The element the RFC 4475 torture messages are sent to
// (test/rfc4475/torture.test.ts): a proxy's front that answers instead of
// forwarding. Written in ES5 with Kamailio's app_jsdt KSR calls, so the
// same file runs under Kamailio 5.6 for the comparison in the README.
function ksr_request_route() {
	// RFC 3581: answer to the source address and port, so the sender sees
	// the reply whatever the message's (documentation-address) Via says.
	KSR.force_rport();
	// RFC 3261 §16.3 step 3: a proxy answers 483 to Max-Forwards 0.
	if (KSR.maxfwd.process_maxfwd(10) < 0) {
		KSR.sl.sl_send_reply(483, "Too Many Hops");
		return;
	}
	// Kamailio's request checks: R-URI version, scheme and form; required
	// headers; CSeq method and number; Content-Length; Expires;
	// Proxy-Require; the R-URI's form; tags; credentials (any scheme).
	// From, To and Contact may carry any URI scheme (RFC 4475 §3.3.4), so
	// only the R-URI is parsed as a SIP URI.
	if (KSR.sanity.sanity_check(1 + 2 + 4 + 32 + 64 + 128 + 256 + 512 + 1024 + 4096 + 8192, 1) < 0) {
		return;
	}
	KSR.sl.sl_send_reply(200, "Processed");
}

// A response reaches the script when it parsed; none of these matches a
// transaction or names this element in its Via, so it goes no further.
function ksr_reply_route() {
	KSR.info("rfc4475: response " + KSR.pv.get("$rs") + " call-id " + KSR.pv.get("$ci") + "\n");
}
