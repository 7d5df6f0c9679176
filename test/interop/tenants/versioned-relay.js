// Transaction-stateful relay of the tenant-reload interop test
// (test/interop/tenant-reload.test.ts). Every initial INVITE it relays
// carries "X-Script-Version: <SCRIPT_VERSION>", so the callee's message trace
// shows which version of this script routed each call.
//
// Scripts cannot read the environment: the test writes copies of this file
// with the two `var` lines below set to the callee's port and to 1 or 2, and
// rewrites the tenant's script between the two versions while calls run.
var UAS_URI = "sip:127.0.0.1:5080";
var SCRIPT_VERSION = 0;

function ksr_request_route() {
	// RFC 3261 §16.3 step 3: a request out of hops is answered 483.
	if (KSR.maxfwd.process_maxfwd(10) < 0) {
		KSR.sl.sl_send_reply(483, "Too Many Hops");
		return;
	}

	// RFC 3261 §16.10: a CANCEL is relayed only when it matches a pending
	// INVITE server transaction.
	if (KSR.is_CANCEL()) {
		if (KSR.tm.t_check_trans() > 0) {
			ksr_relay();
		}
		return;
	}

	// In-dialog requests (ACK for the 2xx, BYE) follow the route set this
	// proxy recorded (RFC 3261 §16.12).
	if (KSR.siputils.has_totag() > 0) {
		if (KSR.rr.loose_route() > 0) {
			ksr_relay();
		} else if (!KSR.is_ACK()) {
			KSR.sl.sl_send_reply(404, "Not here");
		}
		return;
	}

	// A retransmission of a request whose transaction exists is absorbed:
	// t_check_trans() resends the last response (RFC 3261 §17.2.1).
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
		// RFC 3261 §16.6 step 4: stay on the path of the dialog's ACK and BYE.
		KSR.rr.record_route();
		KSR.hdr.append("X-Script-Version: " + SCRIPT_VERSION + "\r\n");
	}
	KSR.setdsturi(UAS_URI);
	ksr_relay();
}

function ksr_relay() {
	if (KSR.tm.t_relay() < 0) {
		KSR.sl.sl_reply_error();
	}
}
