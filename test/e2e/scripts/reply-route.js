// Stateless proxy with a reply route that drops 486 responses and lets the
// others through.
function ksr_request_route() {
  KSR.forward();
}

function ksr_reply_route() {
  if (KSR.pv.get("$rs") == 486) {
    KSR.x.drop();
  }
}
