// Load balancing with failover through KSR.dispatcher
// (test/interop/dispatcher.test.ts): new INVITEs go round robin (algorithm
// 4) over destination set 1; when a destination does not answer (408 from
// the transaction timer) or answers 5xx, the failure route marks it down
// and relays to the next destination the selection kept (ds_next_dst).
//
// Written in ES5 with the KSR calls of Kamailio's app_jsdt, so the same file
// runs unchanged under Kamailio 5.6 + dispatcher as a reference (the list
// file and `flags 2` (failover) are given to each server by the test).
// FR_TIMER_MS is rewritten by the test.
var FR_TIMER_MS = 1000;

function ksr_request_route() {
	if (KSR.maxfwd.process_maxfwd(10) < 0) {
		KSR.sl.sl_send_reply(483, "Too Many Hops");
		return;
	}
	if (KSR.is_CANCEL()) {
		if (KSR.tm.t_check_trans() > 0) {
			ksr_relay();
		}
		return;
	}
	if (KSR.siputils.has_totag() > 0) {
		if (KSR.rr.loose_route() > 0) {
			ksr_relay();
		} else if (KSR.is_ACK()) {
			if (KSR.tm.t_check_trans() > 0) {
				ksr_relay();
			}
		} else {
			KSR.sl.sl_send_reply(404, "Not here");
		}
		return;
	}
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
	if (!KSR.is_INVITE()) {
		KSR.sl.sl_send_reply(405, "Method Not Allowed");
		return;
	}
	KSR.rr.record_route();
	if (KSR.dispatcher.ds_select_dst(1, 4) < 0) {
		KSR.sl.sl_send_reply(503, "No Destination");
		return;
	}
	KSR.tm.t_set_fr(10000, FR_TIMER_MS);
	KSR.tm.t_on_failure("ksr_dispatcher_failure");
	ksr_relay();
}

function ksr_dispatcher_failure() {
	if (KSR.tm.t_is_canceled() > 0) {
		return;
	}
	if (KSR.tm.t_check_status("408|5[0-9][0-9]") < 0) {
		return;
	}
	KSR.info("destination " + KSR.pv.get("$du") + " failed with " + KSR.pv.get("$T_reply_code") + "\n");
	KSR.dispatcher.ds_mark_dst();
	if (KSR.dispatcher.ds_next_dst() < 0) {
		return;
	}
	KSR.tm.t_on_failure("ksr_dispatcher_failure");
	ksr_relay();
}

// The dispatcher's event_callback (set on both servers by the test):
// called with "dispatcher:dst-down" or "dispatcher:dst-up".
function ksr_dispatcher_event(evname) {
	KSR.info("dispatcher event " + evname + "\n");
}

function ksr_relay() {
	if (KSR.tm.t_relay() < 0) {
		KSR.sl.sl_reply_error();
	}
}
