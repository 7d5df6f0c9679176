// OPTIONS to user "abort" split a 256 MB string into single characters, far
// beyond the isolate's heap limit in one step: V8 aborts the whole process
// on that (see host/cli/supervisor.ts), which no handler inside the process
// can catch. Anything else gets 200.
function ksr_request_route() {
  if (KSR.kx.gete_ruser() === "abort") {
    "ab".repeat(Math.pow(2, 27)).split("");
  }
  KSR.sl.sl_send_reply(200, "OK");
}
