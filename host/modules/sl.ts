/**
 * KSR.sl: stateless replies (Kamailio sl module).
 *
 * send_reply: as in Kamailio, replies statefully (KSR.tm.t_reply) when the
 * route has a transaction (t_newtran / t_relay ran for the message, or the
 * route is a transaction route), statelessly otherwise. sl_send_reply is
 * always stateless.
 *
 * Not provided: send_reply_mode (its only mode flag concerns tm), and
 * sl_forward_reply (forwards a received reply with a new status, needs the
 * reply-forwarding path).
 */
import type { MessageContext } from "../core/context.js";
import type { KemiModule } from "./types.js";

/**
 * The reply sent by sl_reply_error when no internal error was recorded:
 * Kamailio's text for an unspecified error (err2reason_phrase, error 1,
 * signature SL), compared in test/interop/kemi-semantics.test.ts.
 */
export const DEFAULT_ERROR_REPLY = { status: 500, reason: "I'm terribly sorry, server error occurred (1/SL)" } as const;

const noReply = new WeakSet<MessageContext>();

/**
 * Mark a request that must not be answered (Kamailio FL_MSG_NOREPLY, set by
 * sanity when the headers a reply copies are missing): later sl replies to
 * it return -2.
 */
export function markNoReply(ctx: MessageContext): void {
  noReply.add(ctx);
}

/** Whether markNoReply was applied to ctx (tm's replies honour it too). */
export function isMarkedNoReply(ctx: MessageContext): boolean {
  return noReply.has(ctx);
}

/**
 * Send a stateless reply (RFC 3261 §8.2.6 / §16.7 local response). Fails for
 * replies, for ACK (never answered, §17.1.1.3 / §17.2.3), for status codes
 * outside 100..699, and when the host could not send (-1); -2 for a
 * message marked with markNoReply.
 */
export function slReply(ctx: MessageContext, status: number, reason: string): number {
  if (noReply.has(ctx)) {
    ctx.host.log("info", "message marked with no-reply flag\n", ctx);
    return -2;
  }
  if (!ctx.isRequest) {
    ctx.host.log("err", "cannot send a reply to a reply\n", ctx);
    return -1;
  }
  if (ctx.msg.method === "ACK") return -1;
  if (!Number.isInteger(status) || status < 100 || status > 699) {
    ctx.host.log("err", `invalid reply code ${status}\n`, ctx);
    return -1;
  }
  if (!ctx.host.sendReply(ctx, status, reason)) return -1;
  ctx.replied = { status, reason };
  return 1;
}

export const slModule: KemiModule = {
  name: "sl",
  kamailioModule: "sl",
  functions: {
    sl_send_reply: {
      params: ["int", "str"],
      returns: "int",
      doc: "Send a stateless reply. 1 ok, -1 error (reply, ACK, code outside 100..699, send failure), -2 if the message must not be answered.",
      run: (ctx, code: number, reason: string) => slReply(ctx, code, reason),
    },
    send_reply: {
      params: ["int", "str"],
      returns: "int",
      doc: "Reply statefully if the message has a transaction (t_newtran/t_relay ran, or a transaction route), else statelessly. 1 ok, -1 error, -2 if the message must not be answered.",
      run(ctx, code: number, reason: string) {
        const proxy = ctx.host.proxy;
        if (proxy === undefined || proxy.bindingOf(ctx) === undefined) return slReply(ctx, code, reason);
        if (noReply.has(ctx)) return -2;
        return proxy.reply(ctx, code, reason);
      },
    },
    sl_reply_error: {
      params: [],
      returns: "int",
      doc: "Reply with the last internal error (e.g. after a failed relay), else 500 with Kamailio's text for an unspecified error. Returns 1.",
      run(ctx) {
        const r = ctx.lastError ?? DEFAULT_ERROR_REPLY;
        ctx.host.log("err", `stateless error reply used: ${r.status} ${r.reason}\n`, ctx);
        // Kamailio reports success whether or not the reply could be sent.
        slReply(ctx, r.status, r.reason);
        return 1;
      },
    },
  },
  // Native functions (Kamailio sl cmd exports) for KSR.x.modf.
  native: [
    { name: "sl_send_reply", params: ["int", "str"], routes: ["REQUEST_ROUTE"], kemi: "sl_send_reply", refused: "fixup without free" },
    { name: "sl_reply", params: ["int", "str"], routes: ["REQUEST_ROUTE"], kemi: "sl_send_reply", refused: "fixup without free" },
    { name: "send_reply", params: ["int", "str"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "FAILURE_ROUTE"], kemi: "send_reply", refused: "fixup without free" },
    { name: "sl_reply_error", params: [], routes: ["REQUEST_ROUTE"], kemi: "sl_reply_error" },
  ],
};
