// A stateful proxy in the shape of Kamailio's KEMI examples: retransmission
// handling, CANCEL, in-dialog routing by Record-Route, and a failure route
// that sends a timed-out call to a backup target named in X-Backup.

function ksr_request_route() {
  if (KSR.is_CANCEL()) {
    if (KSR.tm.t_check_trans() > 0) KSR.tm.t_relay();
    return;
  }
  if (!KSR.is_ACK()) {
    if (KSR.tm.t_check_trans() === 0) return;
  }
  if (KSR.siputils.has_totag() > 0) {
    if (KSR.rr.loose_route() > 0) {
      if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
      return;
    }
    if (KSR.is_ACK() && KSR.tm.t_check_trans() > 0) KSR.tm.t_relay();
    else if (!KSR.is_ACK()) KSR.sl.sl_send_reply(404, "Not here");
    return;
  }
  if (KSR.is_INVITE()) {
    KSR.rr.record_route();
    KSR.tm.t_on_branch("ksr_branch_mark");
    KSR.tm.t_on_reply("ksr_onreply_clean");
  }
  if (KSR.hdr.is_present("X-Backup") > 0) {
    // no answer within 1 s: the failure route tries the backup
    KSR.tm.t_set_fr(5000, 1000);
    KSR.tm.t_on_failure("ksr_failure_backup");
  }
  if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
}

function ksr_failure_backup() {
  if (KSR.tm.t_is_canceled() > 0) return;
  if (KSR.tm.t_branch_timeout() > 0) {
    KSR.seturi(KSR.pv.get("$hdr(X-Backup)"));
    KSR.tm.t_relay();
  }
}

// Every outgoing INVITE branch says which branch it is.
function ksr_branch_mark() {
  KSR.hdr.append("X-Branch: " + KSR.tm.t_get_branch_index() + "\r\n");
}

// Internal headers of the callee do not leave the proxy.
function ksr_onreply_clean() {
  KSR.hdr.remove("X-Internal");
}
