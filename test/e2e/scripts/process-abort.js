// OPTIONS to user "abort" allocate one array far beyond the isolate's heap
// limit in a single step: V8 aborts the whole process on that (fatal
// CALL_AND_RETRY_LAST, see host/cli/supervisor.ts), which no handler inside
// the process can catch. Anything else gets 200.
function ksr_request_route() {
  if (KSR.kx.gete_ruser() === "abort") {
    new Array(Math.pow(2, 26)).fill(1.5);
  }
  KSR.sl.sl_send_reply(200, "OK");
}
