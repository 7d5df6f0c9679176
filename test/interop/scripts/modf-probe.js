// Calls KSR.x.modf with the name and string arguments of the request's
// X-Call header ("name|arg1|arg2") and answers "200 modf <result>".
// Run by test/interop/kemi-semantics.test.ts on ksr-sandbox and on Kamailio.
function ksr_request_route() {
  var spec = KSR.hdr.get("X-Call");
  if (spec === null) {
    KSR.sl.sl_send_reply(400, "no X-Call");
    return;
  }
  var parts = String(spec).split("|");
  var result = KSR.x.modf.apply(null, parts);
  KSR.sl.sl_send_reply(200, "modf " + result);
}
