// INFO recurses without end (stack overflow inside the isolate).
function descend(depth) {
  return descend(depth + 1) + 1;
}

function ksr_request_route() {
  if (KSR.is_method("INFO")) descend(0);
  KSR.sl.sl_send_reply(200, "OK");
}
