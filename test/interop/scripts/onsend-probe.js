// ksr_onsend_route probe, run by test/interop/kemi-semantics.test.ts on
// ksr-sandbox and on Kamailio. A request names its next hop in X-Target and
// how to send it in X-Mode ("forward": stateless, answered "200 forward <r>";
// "relay": t_relay, sl_reply_error when it fails). The onsend route keeps
// what $snd showed for a request in $shv(snd) and drops sends to the port in
// X-Drop-Port;
// an OPTIONS is answered "200 snd <what $shv(snd) holds>".
function ksr_request_route() {
  if (KSR.is_OPTIONS()) {
    KSR.sl.sl_send_reply(200, "snd " + KSR.pv.getw("$shv(snd)"));
    return;
  }
  var target = KSR.hdr.get("X-Target");
  if (KSR.hdr.get("X-Mode") == "forward") {
    var r = KSR.forward_uri(target);
    KSR.sl.sl_send_reply(200, "forward " + r);
    return;
  }
  KSR.pv.sets("$du", target);
  if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
}

function ksr_onsend_route() {
  // Kamailio 5.6 runs a KEMI onsend route for the replies tm relays too: those are not recorded.
  if (KSR.pv.get("$snd(buf)").indexOf("SIP/2.0 ") == 0) return;
  KSR.pv.sets("$shv(snd)", KSR.pv.get("$snd(ip)") + " " + KSR.pv.get("$snd(port)") + " " + KSR.pv.get("$snd(proto)") + " " +
    KSR.pv.get("$snd(sproto)") + " " + KSR.pv.get("$snd(af)") + " " + KSR.pv.get("$snd(len)") + " " + KSR.pv.get("$rm"));
  if (KSR.pv.get("$snd(port)") == KSR.hdr.get("X-Drop-Port")) KSR.x.drop();
}
