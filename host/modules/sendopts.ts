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
 * Kept in a WeakMap keyed by the MessageContext so that the context class
 * does not grow fields for options most messages never use.
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

const options = new ContextSlot<SendOptions>("sendopts.options");

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
