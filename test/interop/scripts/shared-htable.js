// Reads and writes the htables named in a request, answering with the result
// in the reason phrase, for the shared-store tests
// (test/interop/redis-store.test.ts): R-URI user "set", "get" or "inc";
// X-Table, X-Key and X-Value name the table, key and value. R-URI user
// "redis" runs the command line of X-Command with KSR.ndb_redis and answers
// its return code, the reply's type and value ("prefix" answers
// $redisd(prefix)). Requests for any other user (readiness probes) are
// answered 200 without touching a table. ES5, app_jsdt's KSR.
function ksr_request_route() {
	if (KSR.is_ACK()) {
		return;
	}
	var op = KSR.kx.get_ruser();
	if (op == "redis") {
		var rc = KSR.ndb_redis.redis_cmd("store", KSR.hdr.get("X-Command"), "r");
		KSR.sl.sl_send_reply(200, "redis " + rc + " " + KSR.pv.get("$redis(r=>type)") + " " + KSR.pv.get("$redis(r=>value)"));
		KSR.ndb_redis.redis_free("r");
		return;
	}
	if (op == "prefix") {
		KSR.sl.sl_send_reply(200, KSR.pv.get("$redisd(prefix)"));
		return;
	}
	var table = KSR.hdr.get("X-Table");
	var key = KSR.hdr.get("X-Key");
	if (table === null || key === null) {
		KSR.sl.sl_send_reply(200, "no table");
		return;
	}
	if (op == "set") {
		KSR.sl.sl_send_reply(200, "set " + KSR.htable.sht_sets(table, key, KSR.hdr.get("X-Value")));
	} else if (op == "get") {
		var value = KSR.htable.sht_get(table, key);
		KSR.sl.sl_send_reply(200, "value " + (value === null ? "<null>" : value));
	} else if (op == "inc") {
		KSR.sl.sl_send_reply(200, "inc " + KSR.htable.sht_inc(table, key));
	} else {
		KSR.sl.sl_send_reply(400, "unknown operation");
	}
}
