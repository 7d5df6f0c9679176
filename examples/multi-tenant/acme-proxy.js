// The acme tenant: a stateful proxy for acme.example's phones. Requests go
// to their Request-URI (the phone's address); an INVITE that ends busy or
// unanswered is sent on to the voicemail tenant of the same server, as a
// serial fork from the failure route.

var VOICEMAIL_DOMAIN = "voicemail.example";

function ksr_request_route() {
  if (KSR.maxfwd.process_maxfwd(10) < 0) {
    KSR.sl.sl_send_reply(483, "Too Many Hops");
    return;
  }
  if (KSR.sanity.sanity_check(1511, 7) < 0) return; // answered by sanity_check

  // Keepalive OPTIONS to the proxy itself.
  if (KSR.is_OPTIONS() && KSR.is_myself_ruri() && KSR.corex.has_ruri_user() < 0) {
    KSR.sl.sl_send_reply(200, "Acme Proxy");
    return;
  }

  if (KSR.is_CANCEL()) {
    if (KSR.tm.t_check_trans() > 0) KSR.tm.t_relay();
    return;
  }
  // Retransmissions are answered by their transaction.
  if (!KSR.is_ACK() && KSR.tm.t_check_trans() === 0) return;

  // In-dialog requests follow the Record-Route set.
  if (KSR.siputils.has_totag() > 0) {
    if (KSR.rr.loose_route() > 0 || (KSR.is_ACK() && KSR.tm.t_check_trans() > 0)) {
      KSR.tm.t_relay();
    } else if (!KSR.is_ACK()) {
      KSR.sl.sl_send_reply(404, "Not Here");
    }
    return;
  }

  if (KSR.is_INVITE()) {
    KSR.rr.record_route();
    KSR.tm.t_on_failure("ksr_acme_to_voicemail");
  }
  if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
}

// Busy, no answer or unreachable: let the voicemail tenant answer. The
// request goes back to this very server (the address it came in on),
// where the voicemail domain selects the other tenant.
function ksr_acme_to_voicemail() {
  if (KSR.tm.t_is_canceled() > 0) return;
  var code = KSR.pv.get("$T_reply_code");
  if (code !== 486 && code !== 408 && code !== 480) return;
  KSR.seturi("sip:" + KSR.kx.get_ruser() + "@" + VOICEMAIL_DOMAIN);
  KSR.pv.sets("$du", "sip:" + KSR.pv.get("$Ri") + ":" + KSR.pv.get("$Rp"));
  KSR.tm.t_relay();
}
