/**
 * KSR.tm (Kamailio tm module): stateful relaying, transaction routes and
 * timers, over the stateful proxy of host/proxy. Return values follow
 * Kamailio 5.6 (see shared/kemi/API.md): > 0 success, < 0 failure, 0 =
 * "the message was absorbed, stop the script".
 *
 * Not provided: t_relay_to_flags / t_relay_to_proxy_flags, t_replicate,
 * t_uac_send, t_load_contacts / t_next_contacts, t_drop_replies*,
 * t_set_max_lifetime, t_set_retr, t_release, t_lookup_*, t_retransmit_reply,
 * t_use_uac_headers, t_save_lumps, t_grep_status, t_is_expired,
 * t_set_auto_inv_100, t_set_disable_failover, t_set_disable_internal_reply,
 * t_set_no_e2e_cancel_reason, t_clean.
 */
import { asTransportProto, type MessageContext, type TransportProto } from "../core/context.js";
import type { StatefulProxy } from "../proxy/proxy.js";
import { parseProxyAddress } from "../proxy/messages.js";
import { branchIndexOf, tmPvAccessor } from "../proxy/tm-pv.js";
import { registerPvClasses } from "./pv.js";
import type { ProxyTransaction } from "../proxy/proxy-transaction.js";
import { isMarkedNoReply } from "./sl.js";
import type { KemiModule, PvClass } from "./types.js";

/** The proxy of ctx's host, or undefined (logged) when the host keeps no transaction state. */
export function proxyOf(ctx: MessageContext): StatefulProxy | undefined {
  const proxy = ctx.host.proxy;
  if (proxy === undefined) ctx.host.log("err", "tm: this host has no transaction support\n", ctx);
  return proxy;
}

/** The transaction of ctx: the one bound to the route, else (request route) the one the request matches. */
export function transactionOf(ctx: MessageContext): ProxyTransaction | undefined {
  const proxy = ctx.host.proxy;
  return proxy?.bindingOf(ctx)?.tx ?? proxy?.lookupTransaction(ctx);
}

type RouteSlot = "onBranch" | "onFailure" | "onReply" | "onBranchFailure";

function arm(slot: RouteSlot) {
  return (ctx: MessageContext, name: string): number => {
    const proxy = proxyOf(ctx);
    if (proxy === undefined) return -1;
    proxy.settingsFor(ctx)[slot] = name;
    return 1;
  };
}

function relayOrError(ctx: MessageContext, override: Parameters<StatefulProxy["relay"]>[1]): number {
  const proxy = proxyOf(ctx);
  return proxy === undefined ? -1 : proxy.relay(ctx, override);
}

function transportOf(name: string): TransportProto | undefined {
  return asTransportProto(name.trim());
}

function setFr(ctx: MessageContext, invMs: number, nonInvMs: number): number {
  const proxy = proxyOf(ctx);
  if (proxy === undefined) return -1;
  if (!Number.isInteger(invMs) || invMs < 0 || !Number.isInteger(nonInvMs) || nonInvMs < 0) {
    ctx.host.log("err", `t_set_fr: invalid timeout ${invMs}/${nonInvMs}\n`, ctx);
    return -1;
  }
  const s = proxy.settingsFor(ctx);
  s.frInvTimerMs = invMs;
  s.frTimerMs = nonInvMs;
  return 1;
}

/**
 * The branch a failure or branch-failure route is about (t_branch_timeout,
 * t_branch_replied); undefined (logged) in other routes.
 */
function failedBranch(ctx: MessageContext, fn: string) {
  const bound = ctx.host.proxy?.bindingOf(ctx);
  if (bound === undefined || (ctx.routeType !== "failure" && ctx.routeType !== "branch_failure")) {
    ctx.host.log("err", `${fn}: only in a failure route\n`, ctx);
    return undefined;
  }
  return bound.tx.branches[bound.branch];
}

function failureTx(ctx: MessageContext, fn: string): ProxyTransaction | undefined {
  const bound = ctx.host.proxy?.bindingOf(ctx);
  if (bound === undefined || (ctx.routeType !== "failure" && ctx.routeType !== "branch_failure")) {
    ctx.host.log("err", `${fn}: only in a failure route\n`, ctx);
    return undefined;
  }
  return bound.tx;
}

/** The status t_check_status / t_get_status_code look at in ctx's route. */
function statusInRoute(ctx: MessageContext): number | undefined {
  if (!ctx.isRequest) return ctx.msg.status;
  const proxy = ctx.host.proxy;
  const bound = proxy?.bindingOf(ctx);
  switch (ctx.routeType) {
    case "failure":
    case "branch_failure":
      // the winning reply (failure) or the branch's own (branch-failure)
      return bound?.reply?.status;
    case "request":
    case "branch": {
      const tx = transactionOf(ctx);
      return tx === undefined ? undefined : tx.uasStatus;
    }
    default:
      return undefined;
  }
}

/** tm's pseudo-variables (host/proxy/tm-pv.ts): Kamailio tm's $T_* and the core's $br. */
const TM_PVS: readonly PvClass[] = [
  { names: ["T_branch_idx"], form: "plain", writable: false, doc: "index of the branch in a branch, onreply or branch-failure route", compile: (_i, _x, cls, lookup) => tmPvAccessor(cls, undefined, lookup) },
  { names: ["T_reply_code"], form: "plain", writable: false, doc: "status of the reply being handled or of the winning reply (failure route)", compile: (_i, _x, cls, lookup) => tmPvAccessor(cls, undefined, lookup) },
  { names: ["T_reply_reason"], form: "plain", writable: false, doc: "reason phrase of that reply", compile: (_i, _x, cls, lookup) => tmPvAccessor(cls, undefined, lookup) },
  { names: ["br"], form: "plain", writable: false, doc: "URI of the first branch appended (append_branch)", compile: (_i, _x, cls, lookup) => tmPvAccessor(cls, undefined, lookup) },
  { names: ["T_req"], form: "named", writable: false, doc: "a PV of the transaction's request: $T_req($hdr(Via))", compile: (inner, _x, cls, lookup) => tmPvAccessor(cls, inner, lookup) },
  { names: ["T_rpl"], form: "named", writable: false, doc: "a PV of the transaction's reply in a failure or onreply route", compile: (inner, _x, cls, lookup) => tmPvAccessor(cls, inner, lookup) },
];

export const tmModule: KemiModule = {
  pvs: TM_PVS,
  name: "tm",
  kamailioModule: "tm",
  functions: {
    t_relay: {
      params: [],
      returns: "int",
      doc: "Relay statefully to $du / R-URI / the branch set. Request route: 1 ok, 0 retransmission or hop-by-hop ACK absorbed, <0 error (reply with sl_reply_error). Failure route: sends the new branches, 1 or -1.",
      run: (ctx) => relayOrError(ctx, {}),
    },
    t_relay_to_proxy: {
      params: ["str"],
      returns: "int",
      doc: 'Like t_relay, every branch sent to the given next hop ("[proto:]host[:port]" or a SIP URI).',
      run(ctx, address: string) {
        const hop = parseProxyAddress(address);
        if (typeof hop === "string") {
          ctx.host.log("err", `t_relay_to_proxy: ${hop}\n`, ctx);
          return -1;
        }
        return relayOrError(ctx, { hop });
      },
    },
    t_relay_to_proto: {
      params: ["str"],
      returns: "int",
      doc: 'Like t_relay, over the given transport ("udp", "tcp", "tls", "ws" or "wss").',
      run(ctx, proto: string) {
        const p = transportOf(proto);
        if (p === undefined) {
          ctx.host.log("err", `t_relay_to_proto: unsupported transport "${proto}"\n`, ctx);
          return -1;
        }
        return relayOrError(ctx, { proto: p });
      },
    },
    t_relay_to_proto_addr: {
      params: ["str", "str", "int"],
      returns: "int",
      doc: "Like t_relay, every branch sent to proto:addr:port.",
      run(ctx, proto: string, addr: string, port: number) {
        const p = transportOf(proto);
        if (p === undefined || addr.length === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
          ctx.host.log("err", `t_relay_to_proto_addr: bad destination ${proto}:${addr}:${port}\n`, ctx);
          return -1;
        }
        const host = addr.startsWith("[") && addr.endsWith("]") ? addr.slice(1, -1) : addr;
        return relayOrError(ctx, { hop: { proto: p, host, port } });
      },
    },
    t_on_branch: {
      params: ["str"],
      returns: "int",
      doc: "Arm the branch route (JS function name) run for each outgoing branch of the next relay; \"\" disarms. 1.",
      run: arm("onBranch"),
    },
    t_on_failure: {
      params: ["str"],
      returns: "int",
      doc: "Arm the failure route run when every branch ended negatively (or timed out / was cancelled); \"\" disarms. 1.",
      run: arm("onFailure"),
    },
    t_on_reply: {
      params: ["str"],
      returns: "int",
      doc: "Arm the onreply route run for each response of the transaction; \"\" disarms. 1.",
      run: arm("onReply"),
    },
    t_on_branch_failure: {
      params: ["str"],
      returns: "int",
      doc: "Arm the branch-failure route run when one branch ends negatively; \"\" disarms. 1.",
      run: arm("onBranchFailure"),
    },
    t_is_set: {
      params: ["str"],
      returns: "int",
      doc: 'Whether "branch_route", "failure_route" or "onreply_route" is armed: 1 yes, -1 no.',
      run(ctx, target: string) {
        const proxy = ctx.host.proxy;
        if (proxy === undefined) return -1;
        const s = proxy.settingsFor(ctx);
        const armed = target.startsWith("b") ? s.onBranch : target.startsWith("f") ? s.onFailure : target.startsWith("o") ? s.onReply : "";
        return armed !== "" ? 1 : -1;
      },
    },
    t_reply: {
      params: ["int", "str"],
      returns: "int",
      doc: "Stateful reply on the existing transaction (t_newtran/t_relay first). 1 ok, -1 error or no transaction, -2 if the message must not be answered.",
      run(ctx, code: number, reason: string) {
        if (isMarkedNoReply(ctx)) return -2;
        const proxy = proxyOf(ctx);
        return proxy === undefined ? -1 : proxy.reply(ctx, code, reason);
      },
    },
    t_send_reply: {
      params: ["int", "str"],
      returns: "int",
      doc: "Stateful reply, creating the transaction if needed. 1 ok, -1 error.",
      run(ctx, code: number, reason: string) {
        if (isMarkedNoReply(ctx)) return -2;
        const proxy = proxyOf(ctx);
        if (proxy === undefined) return -1;
        if (ctx.isRequest && ctx.routeType === "request" && proxy.bindingOf(ctx) === undefined && ctx.msg.method !== "ACK") {
          if (proxy.newTransaction(ctx) === 0) ctx.host.log("notice", "transaction already in process\n", ctx);
        }
        return proxy.reply(ctx, code, reason);
      },
    },
    t_check_trans: {
      params: [],
      returns: "int",
      doc: "Request: 0 retransmission (last reply resent) or hop-by-hop ACK (absorbed) — stop; 1 ACK of a relayed 2xx / CANCEL whose INVITE exists; -1 none. Reply: 1/-1. Transaction routes: 1.",
      run(ctx) {
        const proxy = proxyOf(ctx);
        return proxy === undefined ? -1 : proxy.checkTransaction(ctx);
      },
    },
    t_newtran: {
      params: [],
      returns: "int",
      doc: "Create the transaction: 1 created, 0 retransmission absorbed (stop), -10 already created for this message, <0 error.",
      run(ctx) {
        const proxy = proxyOf(ctx);
        return proxy === undefined ? -1 : proxy.newTransaction(ctx);
      },
    },
    t_is_canceled: {
      params: [],
      returns: "int",
      doc: "1 if a CANCEL arrived for the transaction, -1 otherwise.",
      run: (ctx) => (transactionOf(ctx)?.canceled === true ? 1 : -1),
    },
    t_set_fr: {
      params: ["int", "int"],
      returns: "int",
      doc: "Set fr_inv_timer and fr_timer (ms, 0 = default) of the transaction (or the one about to be created). 1 ok, -1 invalid.",
      run: (ctx, invMs: number, nonInvMs: number) => setFr(ctx, invMs, nonInvMs),
    },
    t_set_fr_inv: {
      params: ["int"],
      returns: "int",
      doc: "t_set_fr(ms, 0).",
      run: (ctx, invMs: number) => setFr(ctx, invMs, 0),
    },
    t_reset_fr: {
      params: [],
      returns: "int",
      doc: "Back to the default fr_timer and fr_inv_timer. 1.",
      run: (ctx) => setFr(ctx, 0, 0),
    },
    t_set_disable_6xx: {
      params: ["int"],
      returns: "int",
      doc: "1: a 6xx from a branch no longer cancels the other branches (0 restores). 1.",
      run(ctx, on: number) {
        const proxy = proxyOf(ctx);
        if (proxy === undefined) return -1;
        proxy.settingsFor(ctx).disable6xx = on !== 0;
        return 1;
      },
    },
    t_get_branch_index: {
      params: [],
      returns: "int",
      doc: "Branch index: the branch of a branch/onreply/branch-failure route; in a request route the number of appended branches; in a failure route the branches so far plus appended ones; -1 undefined.",
      run: (ctx) => branchIndexOf(ctx),
    },
    t_get_status_code: {
      params: [],
      returns: "int",
      doc: "Status of the last reply sent (request route), of the current reply (reply routes), of the winning reply (failure route); -1 without a transaction.",
      run(ctx) {
        if (ctx.isRequest && transactionOf(ctx) === undefined) return -1;
        if (!ctx.isRequest && ctx.routeType === "reply" && ctx.host.proxy?.matchesResponse(ctx.msg) !== true) return -1;
        return statusInRoute(ctx) ?? -1;
      },
    },
    t_check_status: {
      params: ["str"],
      returns: "int",
      doc: "1 if the status (see t_get_status_code) matches the extended, case-insensitive regex; -1 otherwise.",
      run(ctx, pattern: string) {
        let re: RegExp;
        try {
          re = new RegExp(pattern, "i");
        } catch {
          ctx.host.log("err", `bad regular expression '${pattern}'\n`, ctx);
          return -1;
        }
        const status = statusInRoute(ctx);
        if (status === undefined) return -1;
        return re.test(String(status)) ? 1 : -1;
      },
    },
    t_branch_timeout: {
      params: [],
      returns: "int",
      doc: "Failure route: 1 if the failed branch timed out, -1 otherwise.",
      run: (ctx) => (failedBranch(ctx, "t_branch_timeout")?.timedOut === true ? 1 : -1),
    },
    t_branch_replied: {
      params: [],
      returns: "int",
      doc: "Failure route: 1 if the failed branch received a response, -1 otherwise.",
      run: (ctx) => (failedBranch(ctx, "t_branch_replied")?.replied === true ? 1 : -1),
    },
    t_any_timeout: {
      params: [],
      returns: "int",
      doc: "Failure route: 1 if any branch timed out, -1 otherwise.",
      run: (ctx) => (failureTx(ctx, "t_any_timeout")?.branches.some((b) => b.timedOut) === true ? 1 : -1),
    },
    t_any_replied: {
      params: [],
      returns: "int",
      doc: "Failure route: 1 if any branch received a response, -1 otherwise.",
      run: (ctx) => (failureTx(ctx, "t_any_replied")?.branches.some((b) => b.replied) === true ? 1 : -1),
    },
  },
  // Native functions (Kamailio tm cmd exports) for KSR.x.modf.
  native: [
    { name: "t_newtran", params: [], routes: ["REQUEST_ROUTE"], kemi: "t_newtran" },
    { name: "t_relay", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "t_relay" },
    { name: "t_relay", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "t_relay_to_proxy", refused: "fixup without free" },
    { name: "t_reply", params: ["int", "str"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "FAILURE_ROUTE"], kemi: "t_reply", refused: "fixup without free" },
    { name: "t_send_reply", params: ["int", "str"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "FAILURE_ROUTE"], kemi: "t_send_reply", refused: "fixup without free" },
    { name: "t_on_failure", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "TM_ONREPLY_ROUTE", "BRANCH_ROUTE"], kemi: "t_on_failure", refused: "fixup without free" },
    { name: "t_on_branch", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "t_on_branch", refused: "fixup without free" },
    { name: "t_on_reply", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "TM_ONREPLY_ROUTE", "BRANCH_ROUTE"], kemi: "t_on_reply", refused: "fixup without free" },
    { name: "t_on_branch_failure", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "TM_ONREPLY_ROUTE", "BRANCH_ROUTE"], kemi: "t_on_branch_failure", refused: "fixup without free" },
    { name: "t_check_status", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "t_check_status", refused: "fixup without free" },
    { name: "t_is_set", params: ["str"], routes: ["ANY_ROUTE"], kemi: "t_is_set", refused: "fixup without free" },
    { name: "t_set_fr", params: ["int"], routes: ["REQUEST_ROUTE", "TM_ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_set_fr_inv" },
    { name: "t_set_fr", params: ["int", "int"], routes: ["REQUEST_ROUTE", "TM_ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_set_fr" },
    { name: "t_reset_fr", params: [], routes: ["REQUEST_ROUTE", "TM_ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_reset_fr" },
    { name: "t_set_disable_6xx", params: ["int"], routes: ["REQUEST_ROUTE", "TM_ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_set_disable_6xx" },
    { name: "t_branch_timeout", params: [], routes: ["FAILURE_ROUTE", "EVENT_ROUTE"], kemi: "t_branch_timeout" },
    { name: "t_branch_replied", params: [], routes: ["FAILURE_ROUTE", "EVENT_ROUTE"], kemi: "t_branch_replied" },
    { name: "t_any_timeout", params: [], routes: ["REQUEST_ROUTE", "TM_ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_any_timeout" },
    { name: "t_any_replied", params: [], routes: ["REQUEST_ROUTE", "TM_ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_any_replied" },
    { name: "t_is_canceled", params: [], routes: ["REQUEST_ROUTE", "TM_ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_is_canceled" },
    { name: "t_check_trans", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "BRANCH_ROUTE"], kemi: "t_check_trans" },
    { name: "t_get_status_code", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "t_get_status_code" },
  ],
};

registerPvClasses(tmModule);
