/**
 * Routing scripts of the tenant end-to-end suites.
 */

/**
 * A stateful proxy whose every route leaves the mark `version` where a test
 * can see it: OPTIONS answered "<version>"; other requests relayed to the
 * URI in X-Next with a branch route adding "X-Branch: <version>", an onreply
 * route adding "X-Onreply: <version>" to relayed responses, and a failure
 * route answering 488 "<version> failure <code>". Its core reply route adds
 * "X-Reply-Route: <version>" to every response.
 */
export function markedProxy(version: string): string {
  return `
function ksr_request_route() {
  if (KSR.is_method("OPTIONS")) {
    KSR.sl.sl_send_reply(200, "${version}");
    return;
  }
  if (KSR.is_method("ACK")) {
    KSR.tm.t_relay();
    return;
  }
  KSR.pv.sets("$du", KSR.pv.get("$hdr(X-Next)"));
  KSR.tm.t_on_branch("branch_route");
  KSR.tm.t_on_reply("onreply_route");
  KSR.tm.t_on_failure("failure_route");
  if (KSR.tm.t_relay() < 0) KSR.sl.sl_send_reply(500, "relay failed");
}

function ksr_reply_route() {
  KSR.hdr.append("X-Reply-Route: ${version}\\r\\n");
}

function branch_route() {
  KSR.hdr.append("X-Branch: ${version}\\r\\n");
}

function onreply_route() {
  KSR.hdr.append("X-Onreply: ${version}\\r\\n");
}

function failure_route() {
  KSR.tm.t_reply(488, "${version} failure " + KSR.pv.get("$T_reply_code"));
}
`;
}
