// Answers every request except ACK statelessly with 200 OK (an ACK never
// gets a response: RFC 3261 §13.2.2.4, §17.1.1.3). Used by the sipp OPTIONS interop test.
function ksr_request_route() {
  if (KSR.is_ACK()) {
    return;
  }
  KSR.sl.sl_send_reply(200, "OK");
}
