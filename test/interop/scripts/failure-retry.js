// Serial retries from the failure route (tm semantics a script relies on;
// test/interop/stateful-proxy.test.ts, "failure route" cases). Every new
// INVITE goes to one UAS; when it fails with 503, 486 or 603 the failure
// route re-arms itself and relays again after changing the request in the
// way RETARGET names, so the UAS sees one INVITE per attempt:
//
//   "none"              nothing: t_relay() has no new branch
//   "seturi-same"       KSR.seturi() with the R-URI it already has
//   "pv-ru-same"        $ru assigned its own value
//   "sethost"           KSR.sethost() with the host it already has
//   "pv-du"             $du assigned
//   "setdsturi"         KSR.setdsturi() alone
//   "append-branch"     KSR.corex.append_branch() (the R-URI as a branch)
//   "append-branch-uri" KSR.corex.append_branch_uri(UAS_URI)
//
// Each retried INVITE carries "X-Retry-After: <code>", the code the failure
// route read from $T_reply_code (a header added in a failure route goes
// only into the branches relayed from it). DISABLE_6XX calls
// t_set_disable_6xx for the INVITE.
//
// Written in ES5 with the KSR calls of Kamailio's app_jsdt, so the same file
// runs unchanged under Kamailio 5.6 as a reference. The tests rewrite the
// `var` lines below.
var UAS_URI = "sip:127.0.0.1:5080";
var RETARGET = "seturi-same";
var DISABLE_6XX = 0;

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
	if (KSR.is_INVITE()) {
		KSR.rr.record_route();
		KSR.tm.t_on_failure("ksr_failure_route");
		if (DISABLE_6XX) {
			KSR.tm.t_set_disable_6xx(1);
		}
	}
	KSR.seturi(UAS_URI);
	ksr_relay();
}

function ksr_failure_route() {
	if (KSR.tm.t_is_canceled() > 0) {
		return;
	}
	// The two ways a script tells failures apart: $T_reply_code and
	// t_check_status (a regular expression over the code).
	var code = KSR.pv.get("$T_reply_code");
	if (code != 503 && KSR.tm.t_check_status("486|603") < 0) {
		return;
	}
	KSR.hdr.append("X-Retry-After: " + code + "\r\n");
	KSR.tm.t_on_failure("ksr_failure_route");
	retarget();
	if (KSR.tm.t_relay() < 0) {
		KSR.info("retry after " + code + " with " + RETARGET + ": t_relay() relayed nothing\n");
	}
}

function retarget() {
	if (RETARGET == "seturi-same") {
		KSR.seturi(KSR.pv.get("$ru"));
	} else if (RETARGET == "pv-ru-same") {
		KSR.pv.sets("$ru", KSR.pv.get("$ru"));
	} else if (RETARGET == "sethost") {
		KSR.sethost(KSR.pv.get("$rd"));
	} else if (RETARGET == "pv-du") {
		KSR.pv.sets("$du", UAS_URI);
	} else if (RETARGET == "setdsturi") {
		KSR.setdsturi(UAS_URI);
	} else if (RETARGET == "append-branch") {
		KSR.corex.append_branch();
	} else if (RETARGET == "append-branch-uri") {
		KSR.corex.append_branch_uri(UAS_URI);
	}
}

function ksr_relay() {
	if (KSR.tm.t_relay() < 0) {
		KSR.sl.sl_reply_error();
	}
}
