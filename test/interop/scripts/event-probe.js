// kemi.event_route_callback probe, run by test/interop/kemi-semantics.test.ts
// on ksr-sandbox and on Kamailio with the setting naming ksr_core_event:
// what the event route saw is kept in $shv(event), and every request is
// answered "200 event <it>".
function ksr_core_event(evname) {
  KSR.pv.sets("$shv(event)", evname + " args=" + arguments.length + " faked=" + KSR.corex.is_faked_msg() + " method=" + KSR.pv.get("$rm"));
}

function ksr_request_route() {
  KSR.sl.sl_send_reply(200, "event " + KSR.pv.getw("$shv(event)") + " request-faked=" + KSR.corex.is_faked_msg());
}
