// INFO allocates until the isolate heap is exhausted.
function ksr_request_route() {
  if (KSR.is_method("INFO")) {
    const hoard = [];
    for (;;) hoard.push(new Array(1 << 20).fill(hoard.length));
  }
  KSR.sl.sl_send_reply(200, "OK");
}
