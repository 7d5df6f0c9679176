// Relays every request statefully to its Request-URI.
function ksr_request_route() {
  if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
}
