/**
 * Message framing on stream transports (RFC 3261 §18.3): a message ends
 * after its header section plus Content-Length body bytes, so Content-Length
 * is mandatory. Between messages, CRLFs are ignored (§7.5) and a double CRLF
 * is a keep-alive ping (RFC 5626 §3.5.1) that the caller answers with CRLF.
 */
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from "./parser.js";
import { decimalValue } from "./chars.js";

export type FramedItem =
  | { kind: "message"; /** Binary string of one whole message. */ data: string }
  | { kind: "keepalive" }
  | { kind: "error"; error: string; fatal: true };

const HEADER_END = "\r\n\r\n";

export class StreamFramer {
  private readonly limits: ParseLimits;
  /** Received bytes not yet framed (binary string). */
  private pending = "";
  /** Where the next search for the header terminator resumes. */
  private scanFrom = 0;
  /** Total length of the message at the head of `pending`, once its headers are complete. */
  private messageLength = -1;
  /** CRLFs seen at a message boundary not yet paired into a keep-alive. */
  private pendingCrlfs = 0;
  /** Set after a fatal error: the stream cannot be resynchronised. */
  private failed = false;

  constructor(limits: ParseLimits = DEFAULT_PARSE_LIMITS) {
    this.limits = limits;
  }

  /** Bytes of a message begun but not yet complete (the transport's message deadline runs while there are any). */
  get partialBytes(): number {
    return this.pending.length;
  }

  /**
   * Feed received bytes; returns the items now complete, in order. After a
   * fatal error every later call returns [] (the caller closes the
   * connection).
   */
  push(chunk: Buffer): FramedItem[] {
    if (this.failed) return [];
    const items: FramedItem[] = [];
    this.pending += chunk.toString("latin1");

    for (;;) {
      if (this.messageLength === -1) {
        if (!this.skipBoundaryCrlfs(items)) break;
        const end = this.pending.indexOf(HEADER_END, this.scanFrom);
        if (end === -1) {
          if (this.pending.length > this.limits.maxMessageBytes) {
            return this.fatal(items, `Message too large (maxMessageBytes ${this.limits.maxMessageBytes})`);
          }
          // The terminator may straddle this chunk and the next.
          this.scanFrom = Math.max(0, this.pending.length - 3);
          break;
        }
        const headerLength = end + HEADER_END.length;
        const cl = findContentLength(this.pending, headerLength);
        if (typeof cl === "string") return this.fatal(items, cl);
        const total = headerLength + cl;
        if (total > this.limits.maxMessageBytes) {
          return this.fatal(items, `Message too large (maxMessageBytes ${this.limits.maxMessageBytes})`);
        }
        this.messageLength = total;
      }
      if (this.pending.length < this.messageLength) break;
      items.push({ kind: "message", data: this.pending.slice(0, this.messageLength) });
      this.pending = this.pending.slice(this.messageLength);
      this.messageLength = -1;
      this.scanFrom = 0;
    }
    return items;
  }

  /**
   * Consume CRLFs before a message. Every second one completes a
   * keep-alive ping. Returns false when more data is needed first.
   */
  private skipBoundaryCrlfs(items: FramedItem[]): boolean {
    let i = 0;
    const p = this.pending;
    while (i + 1 < p.length && p.charCodeAt(i) === 0x0d && p.charCodeAt(i + 1) === 0x0a) {
      i += 2;
      this.pendingCrlfs++;
      if (this.pendingCrlfs === 2) {
        items.push({ kind: "keepalive" });
        this.pendingCrlfs = 0;
      }
    }
    if (i > 0) {
      this.pending = p.slice(i);
      this.scanFrom = 0;
    }
    if (this.pending.length === 0) return false;
    // A lone CR may be the first half of another CRLF.
    if (this.pending.length === 1 && this.pending.charCodeAt(0) === 0x0d) return false;
    // A message starts: a single CRLF before it was just padding (§7.5).
    this.pendingCrlfs = 0;
    return true;
  }

  private fatal(items: FramedItem[], error: string): FramedItem[] {
    this.failed = true;
    this.pending = "";
    items.push({ kind: "error", error, fatal: true });
    return items;
  }
}

/**
 * The Content-Length of the header section pending[0, headerLength): a
 * number, or an error text when missing, malformed or repeated with
 * different values. Folded continuation lines are joined (§7.3.1).
 */
function findContentLength(pending: string, headerLength: number): number | string {
  let found: number | undefined;
  // Skip the start line.
  let lineStart = pending.indexOf("\r\n") + 2;
  const end = headerLength - 2;
  while (lineStart < end) {
    let lineEnd = pending.indexOf("\r\n", lineStart);
    while (lineEnd + 2 < end && isWsp(pending.charCodeAt(lineEnd + 2))) lineEnd = pending.indexOf("\r\n", lineEnd + 2);
    const colon = pending.indexOf(":", lineStart);
    if (colon !== -1 && colon < lineEnd) {
      let nameEnd = colon;
      while (nameEnd > lineStart && isWsp(pending.charCodeAt(nameEnd - 1))) nameEnd--;
      const name = pending.slice(lineStart, nameEnd).toLowerCase();
      if (name === "content-length" || name === "l") {
        const value = pending.slice(colon + 1, lineEnd).split("\r\n").join("").trim();
        const cl = decimalValue(value);
        if (cl < 0) return "Bad Content-Length";
        if (found !== undefined && found !== cl) return "Conflicting Content-Length";
        found = cl;
      }
    }
    lineStart = lineEnd + 2;
  }
  return found ?? "Missing Content-Length";
}

function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
