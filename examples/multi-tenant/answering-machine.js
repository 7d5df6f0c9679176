// The voicemail tenant: answers everything itself, statelessly. It may use
// only sl, pv and hdr (see tenants.yaml): KSR.tm, KSR.rr... do not exist here.

function ksr_request_route() {
  if (KSR.is_ACK()) return; // the ACK of our own final answer: nothing to do

  if (KSR.is_OPTIONS()) {
    KSR.hdr.append_to_reply("Allow: INVITE, ACK, OPTIONS, MESSAGE\r\n");
    KSR.sl.sl_send_reply(200, "Voicemail Ready");
    return;
  }

  if (KSR.is_INVITE()) {
    // No media here: the caller hears that the user is away.
    KSR.hdr.append_to_reply("Retry-After: 3600\r\n");
    KSR.sl.sl_send_reply(480, "Out Of Office");
    return;
  }

  if (KSR.is_MESSAGE()) {
    // $shv lives as long as the server and belongs to this tenant only.
    var stored = (KSR.pv.get("$shv(messages)") || 0) + 1;
    KSR.pv.seti("$shv(messages)", stored);
    KSR.sl.sl_send_reply(202, "Stored " + stored);
    return;
  }

  KSR.hdr.append_to_reply("Allow: INVITE, ACK, OPTIONS, MESSAGE\r\n");
  KSR.sl.sl_send_reply(405, "Method Not Allowed");
}
