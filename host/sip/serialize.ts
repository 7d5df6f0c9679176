/**
 * Turning messages back into wire text: re-serializing a received message
 * with route edits applied, and building responses to requests.
 *
 * Output is a binary (latin1) string like everything in message.ts.
 */
import type { Header, MessageEdits, SipMessage } from "./message.js";
import { hasEdits, insertedAfterOf, insertedBeforeOf, replacedOf } from "./message.js";
import { receivedRun } from "./parser.js";
import { headerKeyAt } from "./headers.js";
import { parseNameAddr, headerParam } from "./nameaddr.js";

export interface SerializeOptions {
  /** New Request-URI for the start line (requests only). */
  requestUri?: string;
  /** Whole replacement start line (without CRLF); wins over requestUri. */
  startLine?: string;
  /**
   * The message goes out over a stream transport (TCP/TLS), where
   * Content-Length is mandatory (RFC 3261 §18.3 / §20.14).
   */
  stream?: boolean;
}

/**
 * Serialize `msg` with `edits` applied.
 *
 * Unchanged header fields are copied byte for byte from the received text.
 * A correct Content-Length is written (replacing the existing field in place,
 * keeping its spelling) when the body was changed, when the message goes
 * over a stream, or when a body is present without a Content-Length; with
 * no edits and no options the result is `msg.raw` cut to the Content-Length
 * body (bytes a datagram carried beyond it are discarded, §18.3).
 */
export function serializeMessage(msg: SipMessage, edits?: MessageEdits, opts?: SerializeOptions): string {
  const editing = edits !== undefined && hasEdits(edits);
  const startLine =
    opts?.startLine ??
    (opts?.requestUri !== undefined && msg.kind === "request"
      ? msg.method + " " + opts.requestUri + " " + msg.version
      : msg.startLine);
  const stream = opts?.stream === true;

  if (!editing && startLine === msg.startLine && !stream) return receivedText(msg);

  const body = edits?.body ?? msg.body;
  const headers = msg.headers;
  const replaced = edits === undefined ? undefined : replacedOf(edits);

  // Where does a Content-Length stand after the edits?
  let clIndex = -1;
  for (let i = 0; i < headers.length; i++) {
    if (headers[i]!.key === "content-length" && !(replaced?.has(i) ?? false)) {
      clIndex = i;
      break;
    }
  }
  const insertedHasCl = edits !== undefined && editsInsertContentLength(edits);
  const needCl =
    edits?.body !== undefined || stream || (body.length > 0 && clIndex === -1 && !insertedHasCl);
  const clValue = String(body.length);

  // With needCl, exactly one Content-Length is written: the first received
  // one rewritten in place, else one after the last header; any others
  // (duplicates added by edits) are dropped so the framing is unambiguous.
  const keepLine = (line: string): boolean => !needCl || !isContentLengthLine(line);

  const insertedBefore = edits !== undefined && insertedBeforeOf(edits).size > 0 ? insertedBeforeOf(edits) : undefined;
  const insertedAfter = edits !== undefined && insertedAfterOf(edits).size > 0 ? insertedAfterOf(edits) : undefined;
  const anyReplaced = replaced !== undefined && replaced.size > 0 ? replaced : undefined;

  let out = startLine + "\r\n";
  if (edits !== undefined) for (const line of edits.prepended) if (keepLine(line)) out += withCrlf(line);
  // Untouched fields are copied in runs: a run of a parsed message's
  // consecutive fields is one slice of the received text (receivedRun).
  let runStart = -1;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const before = insertedBefore?.get(i);
    if (before !== undefined) {
      if (runStart >= 0) out += rawRun(headers, runStart, i);
      runStart = -1;
      for (const line of before) if (keepLine(line)) out += withCrlf(line);
    }
    const replacement = anyReplaced?.get(i);
    if (replacement !== undefined) {
      if (runStart >= 0) out += rawRun(headers, runStart, i);
      runStart = -1;
      if (replacement !== "" && keepLine(replacement)) out += withCrlf(replacement);
    } else if (needCl && h.key === "content-length") {
      if (runStart >= 0) out += rawRun(headers, runStart, i);
      runStart = -1;
      if (i === clIndex) out += h.value === clValue ? h.raw : h.name + ": " + clValue + "\r\n";
    } else if (runStart < 0) {
      runStart = i;
    }
    const after = insertedAfter?.get(i);
    if (after !== undefined) {
      if (runStart >= 0) out += rawRun(headers, runStart, i + 1);
      runStart = -1;
      for (const line of after) if (keepLine(line)) out += withCrlf(line);
    }
  }
  if (runStart >= 0) out += rawRun(headers, runStart, headers.length);
  if (edits !== undefined) for (const line of edits.appended) if (keepLine(line)) out += withCrlf(line);
  if (needCl && clIndex === -1) out += "Content-Length: " + clValue + "\r\n";
  return out + "\r\n" + body;
}

/** The raw text of headers[from, to): one slice of the received text when it can be, else the fields' raw joined. */
function rawRun(headers: readonly Header[], from: number, to: number): string {
  const run = receivedRun(headers, from, to);
  if (run !== undefined) return run;
  let out = "";
  for (let i = from; i < to; i++) out += headers[i]!.raw;
  return out;
}

/** msg.raw without any bytes beyond the Content-Length body. */
function receivedText(msg: SipMessage): string {
  const headers = msg.headers;
  const length = msg.startLine.length + 4 + msg.body.length + (headers.length > 0 ? rawRun(headers, 0, headers.length).length : 0);
  return msg.raw.length === length ? msg.raw : msg.raw.slice(0, length);
}

function editsInsertContentLength(edits: MessageEdits): boolean {
  for (const line of edits.prepended) if (isContentLengthLine(line)) return true;
  for (const line of edits.appended) if (isContentLengthLine(line)) return true;
  for (const lines of insertedBeforeOf(edits).values()) for (const l of lines) if (isContentLengthLine(l)) return true;
  for (const lines of insertedAfterOf(edits).values()) for (const l of lines) if (isContentLengthLine(l)) return true;
  for (const line of replacedOf(edits).values()) if (isContentLengthLine(line)) return true;
  return false;
}

/** Whether a raw header line is a Content-Length field (full or compact "l" name). */
function isContentLengthLine(line: string): boolean {
  const colon = line.indexOf(":");
  if (colon === -1) return false;
  let start = 0;
  let end = colon;
  while (start < end && isTrimmed(line.charCodeAt(start))) start++;
  while (end > start && isTrimmed(line.charCodeAt(end - 1))) end--;
  // Only "l" and the 14-letter name can be Content-Length: others are not cut out of the line.
  const length = end - start;
  if (length !== 1 && length !== 14) return false;
  return headerKeyAt(line, start, end) === "content-length";
}

/** What String.prototype.trim removes, among the one-byte characters of a binary string. */
function isTrimmed(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
}

/** Raw lines given by edits must end in CRLF (message.ts); add it if a caller forgot. */
function withCrlf(line: string): string {
  return line.endsWith("\r\n") ? line : line + "\r\n";
}

export interface ResponseOptions {
  /** To tag to add when the request's To has none (generated when omitted). */
  toTag?: string;
  /** Raw header lines (with CRLF) written after CSeq. */
  extraHeaders?: readonly string[];
  /** Body (binary string). */
  body?: string;
  /** Content-Type for the body. */
  contentType?: string;
  /** Raw Via lines to use instead of the request's (e.g. with received/rport added). */
  viaOverride?: readonly string[];
}

/**
 * Build a response to `request` (RFC 3261 §8.2.6.2): the Via fields in
 * order, From, To, Call-ID and CSeq copied; a To tag added when the request
 * had none and the status is above 100; for 100 Trying the Timestamp copied
 * (§8.2.6.1). Then the extra headers and Content-Length.
 */
export function buildResponse(request: SipMessage, status: number, reason: string, opts?: ResponseOptions): string {
  let out = "SIP/2.0 " + status + " " + reason + "\r\n";
  if (opts?.viaOverride !== undefined) {
    for (const line of opts.viaOverride) out += withCrlf(line);
  }
  let wroteFrom = false;
  let wroteTo = false;
  let wroteCallId = false;
  let wroteCSeq = false;
  let timestamp: Header | undefined;
  for (const h of request.headers) {
    switch (h.key) {
      case "via":
        if (opts?.viaOverride === undefined) out += h.raw;
        break;
      case "from":
        if (!wroteFrom) out += h.raw;
        wroteFrom = true;
        break;
      case "to":
        if (!wroteTo) out += toWithTag(h, status, opts?.toTag);
        wroteTo = true;
        break;
      case "call-id":
        if (!wroteCallId) out += h.raw;
        wroteCallId = true;
        break;
      case "cseq":
        if (!wroteCSeq) out += h.raw;
        wroteCSeq = true;
        break;
      case "timestamp":
        timestamp ??= h;
        break;
    }
  }
  if (status === 100 && timestamp !== undefined) out += timestamp.raw;
  if (opts?.extraHeaders !== undefined) for (const line of opts.extraHeaders) out += withCrlf(line);
  const body = opts?.body ?? "";
  if (body.length > 0 && opts?.contentType !== undefined) out += "Content-Type: " + opts.contentType + "\r\n";
  out += "Content-Length: " + body.length + "\r\n\r\n";
  return out + body;
}

/** The To field for a response: with `;tag=` added when needed (§8.2.6.2). */
function toWithTag(h: Header, status: number, toTag: string | undefined): string {
  if (status <= 100) return h.raw;
  const na = parseNameAddr(h.value);
  if (na !== null && headerParam(na, "tag") !== undefined) return h.raw;
  return h.name + ": " + h.value + ";tag=" + (toTag ?? generateTag()) + "\r\n";
}

// Random identifiers. A pool of random bytes is refilled in one
// getRandomValues call, so a tag costs a few table lookups, not a syscall.
const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
const HEX: string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

function randomHex(bytes: number): string {
  if (poolOffset + bytes > POOL_SIZE) {
    // Web Crypto is a global in Node.js >= 19 (no node: import, so this file
    // can also be bundled for non-Node runtimes that provide it).
    globalThis.crypto.getRandomValues(pool);
    poolOffset = 0;
  }
  let s = "";
  for (let i = 0; i < bytes; i++) s += HEX[pool[poolOffset++]!]!;
  return s;
}

/** A From/To tag: 64 random bits in hex (RFC 3261 §19.3 asks for at least 32). */
export function generateTag(): string {
  return randomHex(8);
}

/**
 * A Via branch: the RFC 3261 magic cookie "z9hG4bK" (§8.1.1.7) followed by
 * 96 random bits, unique across space and time.
 */
export function generateBranch(): string {
  return "z9hG4bK" + randomHex(12);
}
