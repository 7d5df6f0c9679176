/**
 * KSR.tmx (Kamailio tmx module): route-type tests and transaction helpers.
 *
 * Not provided: t_suspend / t_continue (asynchronous suspension),
 * t_flush_xflags, t_cancel_branches, t_reuse_branch, t_cancel_callid*,
 * t_reply_callid, t_drop*.
 */
import type { MessageContext, RouteType } from "../core/context.js";
import type { KemiModule } from "./types.js";

function routeTest(...types: RouteType[]) {
  return (ctx: MessageContext): number => (types.includes(ctx.routeType) ? 1 : -1);
}

export const tmxModule: KemiModule = {
  name: "tmx",
  kamailioModule: "tmx",
  functions: {
    t_precheck_trans: {
      params: [],
      returns: "int",
      doc:
        "1 if another worker is processing the same request right now (a racing retransmission), -1 otherwise. " +
        "Routes run one at a time here, so no request is ever in process elsewhere: -1.",
      // Kamailio keeps a table of requests currently inside a request
      // route, to catch a retransmission handled by a second worker in
      // parallel. This server runs routes one after another on one thread:
      // when a route starts, no other request route is running, so the
      // table would always be empty.
      run: () => -1,
    },
    t_is_request_route: {
      params: [],
      returns: "int",
      doc: "1 in the request route, -1 elsewhere.",
      run: routeTest("request"),
    },
    t_is_reply_route: {
      params: [],
      returns: "int",
      doc: "1 in the core reply route or a tm onreply route, -1 elsewhere.",
      run: routeTest("reply", "onreply"),
    },
    t_is_failure_route: {
      params: [],
      returns: "int",
      doc: "1 in a failure route, -1 elsewhere.",
      run: routeTest("failure"),
    },
    t_is_branch_route: {
      params: [],
      returns: "int",
      doc: "1 in a branch route, -1 elsewhere.",
      run: routeTest("branch"),
    },
    t_flush_flags: {
      params: [],
      returns: "int",
      doc: "Copy the message flags into the transaction (seen by its later routes). 1 ok, -1 without a transaction.",
      run(ctx) {
        const tx = ctx.host.proxy?.bindingOf(ctx)?.tx;
        if (tx === undefined) return -1;
        tx.flags = ctx.flags;
        return 1;
      },
    },
  },
  // Native functions (Kamailio tmx cmd exports) for KSR.x.modf.
  native: [
    { name: "t_flush_flags", params: [], routes: ["ANY_ROUTE"], kemi: "t_flush_flags" },
    { name: "t_is_failure_route", params: [], routes: ["ANY_ROUTE"], kemi: "t_is_failure_route" },
    { name: "t_is_branch_route", params: [], routes: ["ANY_ROUTE"], kemi: "t_is_branch_route" },
    { name: "t_is_reply_route", params: [], routes: ["ANY_ROUTE"], kemi: "t_is_reply_route" },
    { name: "t_is_request_route", params: [], routes: ["ANY_ROUTE"], kemi: "t_is_request_route" },
    { name: "t_precheck_trans", params: [], routes: ["REQUEST_ROUTE"], kemi: "t_precheck_trans" },
  ],
};
