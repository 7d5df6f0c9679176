/**
 * Per-message send options set by core KSR functions and read by the
 * transport/proxy code when it sends a request or a reply for that message:
 *
 * - set_forward_close / set_forward_no_connect / set_reply_close /
 *   set_reply_no_connect: Kamailio's SND_F_CON_CLOSE and
 *   SND_F_FORCE_CON_REUSE send flags. "close" = close the TCP connection
 *   after sending; "noConnect" = only use an existing connection, never open
 *   a new one (the send fails instead). UDP sends ignore them.
 * - set_advertised_address / set_advertised_port: the address/port this
 *   proxy writes in the Via (and Record-Route) it adds for this message
 *   instead of the sending socket's own (Kamailio set_global_address/port).
 *
 * Kept in a context slot so that the context class does not grow fields
 * for options most messages never use.
 */
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";

export interface SendOptions {
  forwardClose: boolean;
  forwardNoConnect: boolean;
  replyClose: boolean;
  replyNoConnect: boolean;
  advertisedAddress: string | undefined;
  advertisedPort: string | undefined;
}

/** Options set in the request route apply to its branches and to what its failure route sends. */
const options = new ContextSlot<SendOptions>("sendopts.options", { carry: { branch: (o) => ({ ...o }), failure: (o) => ({ ...o }) } });

/** The options of ctx, creating the default (all off) record on first use. */
export function sendOptions(ctx: MessageContext): SendOptions {
  let o = options.get(ctx);
  if (o === undefined) {
    o = {
      forwardClose: false,
      forwardNoConnect: false,
      replyClose: false,
      replyNoConnect: false,
      advertisedAddress: undefined,
      advertisedPort: undefined,
    };
    options.set(ctx, o);
  }
  return o;
}

/** Read-only view for senders: undefined when the script set nothing. */
export function peekSendOptions(ctx: MessageContext): Readonly<SendOptions> | undefined {
  return options.get(ctx);
}

/** The advertised address/port of ctx for our Via (ourViaLine), when the script set them. */
export function advertisedVia(ctx: MessageContext): { advertisedAddress?: string; advertisedPort?: string } {
  const o = options.get(ctx);
  if (o === undefined) return {};
  return {
    ...(o.advertisedAddress !== undefined ? { advertisedAddress: o.advertisedAddress } : {}),
    ...(o.advertisedPort !== undefined ? { advertisedPort: o.advertisedPort } : {}),
  };
}

/**
 * What a stream transport does with one message (Kamailio's send flags):
 * `close` the connection once it is written (SND_F_CON_CLOSE), or send it
 * only over a connection already open (`noConnect`, SND_F_FORCE_CON_REUSE:
 * the send fails rather than connect). Datagrams ignore them.
 */
export interface SendFlags {
  readonly close?: boolean;
  readonly noConnect?: boolean;
  /**
   * Stream transports: called when the connection this message opened
   * fails before it is established (refused, unreachable, TLS handshake
   * failed), so the message never left. RFC 3263 §4.3 failover of a
   * stateless forward uses it.
   */
  readonly onConnectFailed?: () => void;
}

/** The flags of a request forwarded for ctx (set_forward_close / set_forward_no_connect). */
export function forwardSendFlags(ctx: MessageContext): SendFlags | undefined {
  const o = options.get(ctx);
  if (o === undefined || (!o.forwardClose && !o.forwardNoConnect)) return undefined;
  return { close: o.forwardClose, noConnect: o.forwardNoConnect };
}

/** The flags of a reply to ctx's request (set_reply_close / set_reply_no_connect). */
export function replySendFlags(ctx: MessageContext): SendFlags | undefined {
  const o = options.get(ctx);
  if (o === undefined || (!o.replyClose && !o.replyNoConnect)) return undefined;
  return { close: o.replyClose, noConnect: o.replyNoConnect };
}
