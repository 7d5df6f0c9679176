// Benchmark scenario "stateful-relay": a transaction-stateful proxy to one
// fixed UAS, sipp's built-in `-sn uas` on 127.0.0.1:5080. The same logic as
// the Kamailio reference (../shared/bench/js/stateful-relay.js), so that
// `npm run bench -- --scenario stateful-relay --kamailio` compares like with
// like. ES5 with app_jsdt's KSR calls.
var UAS_URI = "sip:127.0.0.1:5080";

function ksr_request_route() {
	// RFC 3261 §16.3 step 3: out of hops, answered 483.
	if (KSR.maxfwd.process_maxfwd(10) < 0) {
		KSR.sl.sl_send_reply(483, "Too Many Hops");
		return;
	}

	// RFC 3261 §16.10: only a CANCEL matching a pending INVITE is relayed.
	if (KSR.is_CANCEL()) {
		if (KSR.tm.t_check_trans() > 0) {
			ksr_relay();
		}
		return;
	}

	if (KSR.siputils.has_totag() > 0) {
		// sipp's built-in UAS does not copy Record-Route into its responses,
		// so the built-in UAC's ACK and BYE carry no Route set (RFC 3261
		// §12.1.2) and loose_route() finds nothing: they go to the UAS
		// directly, as in the reference script.
		if (KSR.rr.loose_route() < 0) {
			KSR.setdsturi(UAS_URI);
		}
		ksr_relay();
		return;
	}

	// Retransmissions of a request whose transaction exists are absorbed
	// (the last response is sent again, RFC 3261 §17.2.1 / §17.2.2).
	if (!KSR.is_ACK()) {
		if (KSR.tmx.t_precheck_trans() > 0) {
			KSR.tm.t_check_trans();
			return;
		}
		if (KSR.tm.t_check_trans() == 0) {
			return;
		}
	}

	KSR.hdr.remove("Route");
	if (KSR.is_INVITE()) {
		// RFC 3261 §16.6 step 4: the record-routing cost is paid even though
		// the built-in UAS ignores it.
		KSR.rr.record_route();
	}
	KSR.setdsturi(UAS_URI);
	ksr_relay();
}

function ksr_relay() {
	if (KSR.tm.t_relay() < 0) {
		KSR.sl.sl_reply_error();
	}
}
