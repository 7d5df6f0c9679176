// INFO spins forever; anything else is answered.
function ksr_request_route() {
  if (KSR.is_method("INFO")) {
    while (true) {}
  }
  KSR.sl.sl_send_reply(200, "OK");
}
