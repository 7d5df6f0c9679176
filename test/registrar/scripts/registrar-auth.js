// A registrar and proxy in the shape of Kamailio's basic KEMI script:
// REGISTER challenged and saved, requests to local users looked up and
// relayed statefully, unknown users answered 404.
function ksr_request_route() {
  if (KSR.is_REGISTER()) {
    if (KSR.auth_db.auth_check(KSR.kx.gete_fhost(), "subscriber", 1) < 0) {
      KSR.auth.auth_challenge(KSR.kx.gete_fhost(), 0);
      return;
    }
    if (KSR.registrar.save("location", 0) < 0) {
      KSR.sl.sl_reply_error();
    }
    return;
  }
  if (KSR.is_ACK() && KSR.tm.t_check_trans() <= 0) {
    return;
  }
  var rc = KSR.registrar.lookup("location");
  if (rc < 0) {
    KSR.sl.send_reply(404, "Not Found");
    return;
  }
  if (KSR.tm.t_relay() < 0) {
    KSR.sl.sl_reply_error();
  }
}
