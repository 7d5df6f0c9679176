/**
 * The transaction pseudo-variables (Kamailio tmx): $T_branch_idx,
 * $T_reply_code, $T_reply_reason, $T_req(pv), $T_rpl(pv); and $br, the
 * first appended branch. host/modules/pv.ts asks here for names it does
 * not know itself.
 */
import { MessageContext } from "../core/context.js";
import type { SipMessage } from "../sip/message.js";
import type { PvAccessor } from "../modules/pv.js";
import { appendedBranches } from "./branch-set.js";
import type { ProxyTransaction } from "./proxy-transaction.js";

function transactionOf(ctx: MessageContext): ProxyTransaction | undefined {
  const proxy = ctx.host.proxy;
  return proxy?.bindingOf(ctx)?.tx ?? proxy?.lookupTransaction(ctx);
}

/** Kamailio $T_branch_idx / t_get_branch_index (see tm.ts). */
export function branchIndexOf(ctx: MessageContext): number {
  const bound = ctx.host.proxy?.bindingOf(ctx);
  switch (ctx.routeType) {
    case "request":
      return appendedBranches(ctx).length;
    case "failure":
      return bound === undefined ? -1 : bound.tx.branches.length + appendedBranches(ctx).length;
    default:
      return bound === undefined ? -1 : bound.branch;
  }
}

function replyCode(ctx: MessageContext): number {
  if (ctx.routeType === "reply" || ctx.routeType === "onreply") return ctx.msg.status;
  const bound = ctx.host.proxy?.bindingOf(ctx);
  if (ctx.routeType === "failure" || ctx.routeType === "branch_failure") return bound?.reply?.status ?? 0;
  // request and branch routes: the last status sent upstream, 0 without a transaction
  return transactionOf(ctx)?.uasStatus ?? 0;
}

function replyReason(ctx: MessageContext): string | null {
  if (ctx.routeType === "reply" || ctx.routeType === "onreply") return ctx.msg.reason;
  if (ctx.routeType === "failure" || ctx.routeType === "branch_failure") {
    return ctx.host.proxy?.bindingOf(ctx)?.reply?.reason ?? "";
  }
  return transactionOf(ctx) === undefined ? "" : null;
}

/** Contexts over a transaction's request / chosen reply for $T_req / $T_rpl, one per message. */
const views = new WeakMap<SipMessage, MessageContext>();

function viewOf(ctx: MessageContext, msg: SipMessage, tx: ProxyTransaction): MessageContext {
  let view = views.get(msg);
  if (view === undefined) {
    view = new MessageContext(msg, tx.rcv, msg.kind === "request" ? "request" : "reply", ctx.tenant, ctx.host);
    views.set(msg, view);
  }
  return view;
}

/** The reply $T_rpl reads: the one being handled (onreply) or the winning one (failure routes). */
function transactionReply(ctx: MessageContext): SipMessage | undefined {
  if (ctx.routeType === "onreply") return ctx.msg;
  return ctx.host.proxy?.bindingOf(ctx)?.reply?.msg;
}

/**
 * The accessor for a transaction PV (`cls` its class, `inner` the text in
 * parentheses), or null when the name is not one of these. `lookup`
 * compiles the inner PV of $T_req / $T_rpl.
 */
export function tmPvAccessor(cls: string, inner: string | undefined, lookup: (name: string) => PvAccessor | null): PvAccessor | null {
  if (inner === undefined) {
    switch (cls) {
      case "T_branch_idx":
        return { get: branchIndexOf };
      case "T_reply_code":
        return { get: replyCode };
      case "T_reply_reason":
        return { get: replyReason };
      case "br":
        return { get: (ctx) => appendedBranches(ctx)[0]?.uri ?? null };
      default:
        return null;
    }
  }
  if (cls !== "T_req" && cls !== "T_rpl") return null;
  const target = lookup(inner);
  if (target === null) return null;
  return {
    get(ctx) {
      const tx = transactionOf(ctx);
      if (tx === undefined) return null;
      // A finished transaction keeps no request (see ProxyTransaction.finish).
      const msg = cls === "T_req" ? (tx.finished ? undefined : tx.request) : transactionReply(ctx);
      return msg === undefined ? null : target.get(viewOf(ctx, msg, tx));
    },
  };
}
