// Which destination KSR.dispatcher selects (test/interop/dispatcher-selection.test.ts):
// every request is answered "200 ds <return code> <$du>", the set and the
// algorithm taken from its X-Set and X-Alg headers; a BYE is answered
// "200 dsl <return code of ds_load_update>". ES5 with app_jsdt's KSR
// calls, so the same file runs under Kamailio 5.6 + dispatcher.
function ksr_request_route() {
	// Call load (algorithm 10): a BYE gives its call's place back.
	if (KSR.is_BYE()) {
		KSR.sl.sl_send_reply(200, "dsl " + KSR.dispatcher.ds_load_update());
		return;
	}
	var set = KSR.pv.get("$hdr(X-Set)");
	var alg = KSR.pv.get("$hdr(X-Alg)");
	if (set == null || alg == null) {
		KSR.sl.sl_send_reply(200, "OK");
		return;
	}
	var rc = KSR.dispatcher.ds_select_dst(parseInt(set, 10), parseInt(alg, 10));
	KSR.sl.sl_send_reply(200, "ds " + rc + " " + KSR.pv.get("$du"));
}
