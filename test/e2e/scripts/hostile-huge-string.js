// INFO hands the host strings far beyond what a KSR parameter may carry and
// returns one from the route; the refused call's result is reported in a 503.
function ksr_request_route() {
  if (KSR.is_method("INFO")) {
    const huge = "x".repeat(8 * 1024 * 1024);
    const replyResult = KSR.sl.sl_send_reply(200, huge);
    KSR.log("info", huge);
    KSR.sl.sl_send_reply(503, "refused " + replyResult);
    return huge;
  }
  KSR.sl.sl_send_reply(200, "OK");
}
