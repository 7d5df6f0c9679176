// Answers every request statelessly with 200 OK (ACK gets nothing: sl refuses it).
function ksr_request_route() {
  KSR.sl.sl_send_reply(200, "OK");
}
