// Relays every request to a WebSocket client address that has no connection
// (nobody connected from there): t_relay fails at once and sl_reply_error
// answers with the error Kamailio's tm reports for a send failure.
function ksr_request_route() {
  KSR.pv.sets("$du", "sip:198.51.100.99:40000;transport=ws");
  if (KSR.tm.t_relay() < 0) {
    KSR.info("t_relay failed\n");
    KSR.sl.sl_reply_error();
  }
}
