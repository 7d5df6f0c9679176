// Does not compile: the CLI must print file:line and exit 1.
function ksr_request_route() {
  const reply = ;
  KSR.sl.sl_send_reply(200, "OK");
}
