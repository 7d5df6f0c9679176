// Answers every request except ACK statelessly with 200 OK (an ACK never
// gets a response: RFC 3261 §13.2.2.4, §17.1.1.3). The minimal script the load benchmark runs:
// it measures the SIP core and the isolate bridge, not routing logic. The sipp
// OPTIONS interop test (test/interop/sipp-options.test.ts) runs it too.
function ksr_request_route() {
  if (KSR.is_ACK()) {
    return;
  }
  KSR.sl.sl_send_reply(200, "OK");
}
