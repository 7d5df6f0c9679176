// The anti-flood block of Kamailio's default configuration (kamailio.cfg
// route[REQINIT] with WITH_ANTIFLOOD, and ksr_route_reqinit() of the basic
// KEMI example scripts), in front of a transaction-stateful relay to one
// next hop. Runs unchanged on `ksr run` and on Kamailio 5.6 app_jsdt
// (bench/cfg/kamailio-anti-flood.cfg, which declares the "ipban" table).
//
// pike counts the requests of every source address (not ours); the request
// that shows a source flooding puts its address in the htable "ipban" for
// BAN_SECONDS, and every request from a banned address is dropped without an
// answer: an answer would cost as much as the flood and tell the sender its
// messages arrive. ES5 with app_jsdt's KSR calls.
var NEXT_HOP = "sip:127.0.0.1:5080";
var BAN_SECONDS = 300;

function ksr_request_route() {
	ksr_route_antiflood();

	// RFC 3261 §16.3 step 3: out of hops, answered 483.
	if (KSR.maxfwd.process_maxfwd(10) < 0) {
		KSR.sl.sl_send_reply(483, "Too Many Hops");
		KSR.x.exit();
	}

	// OPTIONS to the server itself (no user): a keepalive, answered here.
	if (KSR.is_OPTIONS() && KSR.is_myself_ruri() && KSR.corex.has_ruri_user() < 0) {
		KSR.sl.sl_send_reply(200, "Keepalive");
		KSR.x.exit();
	}

	// RFC 3261 §16.10: only a CANCEL matching a pending INVITE is relayed.
	if (KSR.is_CANCEL()) {
		if (KSR.tm.t_check_trans() > 0) {
			ksr_relay();
		}
		KSR.x.exit();
	}

	if (KSR.siputils.has_totag() > 0) {
		// In-dialog: by the Route set, else straight to the next hop.
		if (KSR.rr.loose_route() < 0) {
			KSR.setdsturi(NEXT_HOP);
		}
		ksr_relay();
		KSR.x.exit();
	}

	// A retransmission of a request with a transaction gets its last answer again.
	if (!KSR.is_ACK()) {
		if (KSR.tmx.t_precheck_trans() > 0) {
			KSR.tm.t_check_trans();
			KSR.x.exit();
		}
		if (KSR.tm.t_check_trans() == 0) {
			KSR.x.exit();
		}
	}

	KSR.hdr.remove("Route");
	if (KSR.is_INVITE()) {
		KSR.rr.record_route();
	}
	KSR.setdsturi(NEXT_HOP);
	ksr_relay();
}

// Drop what comes from a banned address; ban an address pike finds flooding.
function ksr_route_antiflood() {
	if (KSR.is_myself_srcip()) {
		return;
	}
	var srcip = KSR.kx.get_srcip();
	if (KSR.htable.sht_match_name("ipban", "eq", srcip) > 0) {
		KSR.dbg("request from blocked IP - " + KSR.kx.get_method() + " from " + KSR.kx.get_furi() + " (IP:" + srcip + ":" + KSR.kx.get_srcport() + ")\n");
		KSR.x.exit();
	}
	// pike_check_req: 1 within the rate, -2 the request that shows the flood, -1 the ones after.
	if (KSR.pike.pike_check_req() < 0) {
		KSR.err("ALERT: pike blocking " + KSR.kx.get_method() + " from " + KSR.kx.get_furi() + " (IP:" + srcip + ":" + KSR.kx.get_srcport() + ")\n");
		KSR.htable.sht_setxi("ipban", srcip, 1, BAN_SECONDS);
		KSR.x.exit();
	}
}

function ksr_relay() {
	if (KSR.tm.t_relay() < 0) {
		KSR.sl.sl_reply_error();
	}
}
