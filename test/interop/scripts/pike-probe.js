// Answers every request with pike's verdict on it, for comparing KSR.pike
// with Kamailio's pike request by request
// (test/interop/pike-kamailio.test.ts): "pike <n>" in the reason phrase,
// from pike_check_ip of the X-Pike-Ip header when there is one (IPv6
// addresses over an IPv4 socket), else pike_check_req. Requests for any
// other user than "pike" (readiness probes) are answered without counting,
// so that both servers' trees see the same requests. ES5, app_jsdt's KSR.
function ksr_request_route() {
	if (KSR.is_ACK()) {
		return;
	}
	if (KSR.kx.get_ruser() != "pike") {
		KSR.sl.sl_send_reply(200, "not counted");
		return;
	}
	var ip = KSR.hdr.get("X-Pike-Ip");
	var verdict = ip === null ? KSR.pike.pike_check_req() : KSR.pike.pike_check_ip(ip);
	KSR.sl.sl_send_reply(200, "pike " + verdict);
}
