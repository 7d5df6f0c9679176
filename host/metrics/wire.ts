/**
 * What crossed the server's sockets, counted on the receive and send paths
 * of host/core/server.ts: requests by method, replies by status class,
 * local (sl) replies, and messages dropped, by reason.
 *
 * The per-message cost is an index computed by a `switch` on the method
 * (no string is built) and one array increment; labels are made only when
 * the metrics are scraped (host/metrics/collect.ts).
 */

/** Methods counted under their own label (RFC 3261 §7.1 and the extensions a proxy sees); the rest count as "other". */
export const COUNTED_METHODS = [
  "INVITE",
  "ACK",
  "BYE",
  "CANCEL",
  "REGISTER",
  "OPTIONS",
  "SUBSCRIBE",
  "NOTIFY",
  "PUBLISH",
  "MESSAGE",
  "INFO",
  "PRACK",
  "UPDATE",
  "REFER",
  "other",
] as const;

const OTHER_METHOD = COUNTED_METHODS.length - 1;

/** Index of a method in COUNTED_METHODS ("other" for an extension method). */
export function methodIndex(method: string): number {
  switch (method) {
    case "INVITE":
      return 0;
    case "ACK":
      return 1;
    case "BYE":
      return 2;
    case "CANCEL":
      return 3;
    case "REGISTER":
      return 4;
    case "OPTIONS":
      return 5;
    case "SUBSCRIBE":
      return 6;
    case "NOTIFY":
      return 7;
    case "PUBLISH":
      return 8;
    case "MESSAGE":
      return 9;
    case "INFO":
      return 10;
    case "PRACK":
      return 11;
    case "UPDATE":
      return 12;
    case "REFER":
      return 13;
    default:
      return OTHER_METHOD;
  }
}

/** Status classes, index = status / 100 (RFC 3261 §7.2: 1xx to 6xx); index 0 is unused. */
export const STATUS_CLASSES = ["", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx"] as const;

/** The class index of a status code (1..6), 0 for a code outside 100-699. */
export function statusClassIndex(status: number): number {
  const c = (status / 100) | 0;
  return c >= 1 && c <= 6 ? c : 0;
}

/** Why the server dropped a message. */
export const DROP_REASONS = [
  /** Unparseable and not answerable (a response, an ACK, or no usable Via). */
  "malformed",
  /** The transport refused to send it (no socket, connection gone, output full). */
  "send_failed",
  /** A request to an address the tenant's egress policy refuses. */
  "egress_refused",
  /** A host name that did not resolve. */
  "unresolved",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
const dropIndex = new Map<DropReason, number>(DROP_REASONS.map((r, i) => [r, i]));

export class WireCounters {
  readonly requestsReceived = new Float64Array(COUNTED_METHODS.length);
  readonly requestsSent = new Float64Array(COUNTED_METHODS.length);
  /** By STATUS_CLASSES index. */
  readonly repliesReceived = new Float64Array(STATUS_CLASSES.length);
  readonly repliesSent = new Float64Array(STATUS_CLASSES.length);
  /** Replies built by the server itself (sl_send_reply, error policy, malformed, shed): Kamailio's sl statistics. */
  readonly slReplies = new Float64Array(STATUS_CLASSES.length);
  readonly drops = new Float64Array(DROP_REASONS.length);

  received(kind: "request" | "response", method: string, status: number): void {
    if (kind === "request") this.requestsReceived[methodIndex(method)]!++;
    else this.repliesReceived[statusClassIndex(status)]!++;
  }

  /**
   * Bytes handed to the transport: a response starts with "SIP/2.0 " and
   * its class digit follows (RFC 3261 §7.2); a request starts with its
   * method and a space (§7.1).
   */
  sent(text: string): void {
    if (text.startsWith("SIP/2.0 ")) {
      const digit = text.charCodeAt(8) - 48;
      this.repliesSent[digit >= 1 && digit <= 6 ? digit : 0]!++;
      return;
    }
    const space = text.indexOf(" ");
    this.requestsSent[methodIndex(space < 0 ? text : text.slice(0, space))]!++;
  }

  slReply(status: number): void {
    this.slReplies[statusClassIndex(status)]!++;
  }

  dropped(reason: DropReason): void {
    this.drops[dropIndex.get(reason)!]!++;
  }

  /** Every count back to zero (tests). */
  reset(): void {
    for (const a of [this.requestsReceived, this.requestsSent, this.repliesReceived, this.repliesSent, this.slReplies, this.drops]) a.fill(0);
  }
}
