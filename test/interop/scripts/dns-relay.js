// Transaction-stateful relay of the DNS interop tests
// (test/interop/dns.test.ts): every new call goes to sip:<user>@TARGET, a
// host name without port or transport, so that the server locates it by
// RFC 3263 (NAPTR, SRV, A) through the DNS server it was pointed at with
// --dns-server. Failover between the targets of one name is the server's
// (RFC 3263 §4.3); the failure route only sees the end of it, and answers
// 503 when the last branch failed with 503 (a name that does not resolve,
// or every target unavailable). Once a name is known not to resolve,
// t_relay fails at once and the request route answers 503.
//
// The test rewrites the `var` lines below.
var TARGET = "svc.test";
var FR_TIMER_MS = 1500;

function ksr_request_route() {
	if (KSR.is_CANCEL()) {
		if (KSR.tm.t_check_trans() > 0) KSR.tm.t_relay();
		return;
	}
	if (KSR.tm.t_check_trans() === 0) return;
	if (KSR.siputils.has_totag() > 0) {
		if (KSR.rr.loose_route() > 0) KSR.tm.t_relay();
		return;
	}
	KSR.rr.record_route();
	KSR.seturi("sip:" + KSR.pv.get("$rU") + "@" + TARGET);
	KSR.tm.t_set_fr(FR_TIMER_MS + 30000, FR_TIMER_MS);
	KSR.tm.t_on_failure("ksr_failure_route");
	var relayed = KSR.tm.t_relay();
	if (relayed < 0) {
		// A name known not to resolve (cached): no branch at all.
		KSR.info("relay failed: " + relayed + " for " + KSR.pv.get("$ru"));
		KSR.sl.sl_send_reply(503, "Next Hop Unavailable");
	}
}

function ksr_failure_route() {
	KSR.info("failure route: " + KSR.pv.get("$T_reply_code") + " for " + KSR.pv.get("$ru"));
	if (KSR.tm.t_check_status("503")) KSR.tm.t_reply(503, "Next Hop Unavailable");
}
