// OPTIONS to user "abort" make a string that triples in length on each
// step: V8 aborts the whole process on that allocation pattern (see
// host/cli/supervisor.ts). Anything else gets 200.
function ksr_request_route() {
  if (KSR.kx.gete_ruser() === "abort") {
    let s = "x";
    for (;;) s = s + s + s.slice(1);
  }
  KSR.sl.sl_send_reply(200, "OK");
}
