// Failure routes as Kamailio runs them, run by test/interop/kemi-semantics.test.ts
// on ksr-sandbox and on Kamailio: the request goes to X-Target (a next hop
// answering 486); the branch-failure route (tm:branch-failure) notes how it
// was called, the failure route answers with what both saw.
function ksr_request_route() {
  KSR.tm.t_on_branch_failure("ksr_branch_failure");
  KSR.tm.t_on_failure("ksr_failure");
  KSR.pv.sets("$du", KSR.hdr.get("X-Target"));
  if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
}

function ksr_branch_failure() {
  KSR.pv.sets("$avp(bf)", "args=" + arguments.length + " faked=" + KSR.corex.is_faked_msg() + " code=" + KSR.pv.get("$T_reply_code"));
}

function ksr_failure() {
  KSR.tm.t_reply(500, "branch-failure " + KSR.pv.getw("$avp(bf)") + "; failure args=" + arguments.length + " faked=" + KSR.corex.is_faked_msg() +
    " failure-route=" + KSR.tmx.t_is_failure_route());
}
