/**
 * SIP message parser (RFC 3261 §7, grammar §25).
 *
 * Input is one whole message as a binary (latin1) string. The parser never
 * throws: every failure is a `{ ok: false }` result whose `error` is short
 * enough to be the reason phrase of a 400, together with whatever header
 * fields could be read so the caller can still address that 400.
 *
 * Headers are split and validated eagerly only where RFC 3261 §8.1.1 makes
 * them mandatory (Via, From, To, Call-ID, CSeq) or where framing depends on
 * them (Content-Length, Max-Forwards); everything else stays raw text until
 * someone asks for it.
 */
import type { CSeq, Header, SipMessage } from "./message.js";
import { canonicalHeaderKey, headerKeyAt } from "./headers.js";
import { CHAR_CLASS, C_TOKEN, decimalValue, isDigits, isToken } from "./chars.js";
import { parseUri } from "./uri.js";
import { parseNameAddr, type NameAddr } from "./nameaddr.js";
import { parseVia, type Via } from "./via.js";

export interface ParseLimits {
  /** Largest accepted message, in bytes. */
  maxMessageBytes: number;
  /** Largest accepted number of header fields. */
  maxHeaders: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = Object.freeze({ maxMessageBytes: 65535, maxHeaders: 256 });

/** ParseFailure.error of a well-formed SIP-Version other than 2.0: 505's reason phrase (§21.5.7). */
export const VERSION_NOT_SUPPORTED = "Version Not Supported";
/** ParseFailure.error of a well-formed Request-URI of a scheme other than sip, sips, tel: 416's reason phrase (§8.2.2.1). */
export const UNSUPPORTED_URI_SCHEME = "Unsupported URI Scheme";

/**
 * The status a server answers a malformed request with, given the
 * parser's error: 505 and 416 for the two errors that are not syntax
 * errors (RFC 4475 §3.1.2.16 badvers, §3.3.2 unkscm, §3.3.3 novelsc), 400
 * for every other (§8.2.2 ff.), its reason phrase naming the problem.
 */
export function statusForParseError(error: string): number {
  if (error === VERSION_NOT_SUPPORTED) return 505;
  if (error === UNSUPPORTED_URI_SCHEME) return 416;
  return 400;
}

export interface ParseFailure {
  ok: false;
  /**
   * Short human reason, usable as a 400 reason phrase ("Bad CSeq"). A
   * well-formed but unsupported SIP-Version gives "Version Not Supported",
   * the reason phrase of 505 (§21.5.7); a Request-URI of another scheme
   * gives "Unsupported URI Scheme", the reason phrase of 416 (§8.2.2.1).
   */
  error: string;
  kind?: "request" | "response";
  /** Header fields read before the failure, to address a 400 (Via/From/To/Call-ID/CSeq). */
  headers?: Header[];
  /** Request method (or the CSeq method of a response) when known. */
  method?: string;
}

export type ParseResult = { ok: true; message: SipMessage } | ParseFailure;

/** Parsed forms of the validated headers, computed once per message. */
interface ParsedFields {
  vias: Via[];
  from: NameAddr;
  to: NameAddr;
  contentLength: number | undefined;
}

/**
 * A message produced by parseMessage. It carries the parsed mandatory
 * fields in a private slot instead of a WeakMap: WeakMap entries are
 * ephemerons that every garbage collection has to walk, which measured as
 * the largest single cost of parsing at high message rates. Copies of a
 * message (spread, structured clone) are plain objects and recompute the
 * fields lazily (see fieldsOf).
 */
class ParsedMessage implements SipMessage {
  readonly #fields: ParsedFields;
  constructor(
    readonly kind: "request" | "response",
    readonly method: string,
    readonly requestUri: string,
    readonly status: number,
    readonly reason: string,
    readonly version: string,
    readonly startLine: string,
    readonly headers: readonly Header[],
    readonly body: string,
    readonly raw: string,
    readonly callId: string,
    readonly cseq: CSeq,
    fields: ParsedFields,
  ) {
    this.#fields = fields;
  }

  static fieldsOf(msg: SipMessage): ParsedFields | undefined {
    return msg instanceof ParsedMessage ? msg.#fields : undefined;
  }

  #memo: Record<string, unknown> | undefined;

  static memoOf(msg: SipMessage): Record<string, unknown> | undefined {
    if (!(msg instanceof ParsedMessage)) return undefined;
    return (msg.#memo ??= Object.create(null) as Record<string, unknown>);
  }
}

/** Memos of messages built by other means than parseMessage. */
const derivedMemos = new WeakMap<SipMessage, Record<string, unknown>>();

/**
 * A place for what other modules derive from a message (a parsed Route
 * set, the To body of $tt ...), kept with the message and gone with it.
 * A parsed message holds it in a private slot: one WeakMap per module
 * keyed by message would be an ephemeron entry per message that every
 * garbage collection walks (see ParsedMessage). Slots are named by the
 * module that fills them.
 */
export function messageMemo(msg: SipMessage): Record<string, unknown> {
  const memo = ParsedMessage.memoOf(msg);
  if (memo !== undefined) return memo;
  let derived = derivedMemos.get(msg);
  if (derived === undefined) {
    derived = Object.create(null) as Record<string, unknown>;
    derivedMemos.set(msg, derived);
  }
  return derived;
}

/**
 * The From or To of a message parseMessage made, as it parsed and checked
 * it on receipt; undefined for a message built otherwise (whose From or To
 * may be missing or malformed).
 */
export function receivedNameAddr(msg: SipMessage, key: "from" | "to"): NameAddr | undefined {
  const fields = ParsedMessage.fieldsOf(msg);
  if (fields === undefined) return undefined;
  return key === "from" ? fields.from : fields.to;
}

/**
 * A header field of a parsed message: its key is known from parsing, its
 * name, value and raw text are cut out of the message text only when read
 * (the value once, then kept). Most fields of a relayed message are never
 * read one by one; they go out again as runs of the received text
 * (serializeMessage, via receivedSpan), and a transaction holding the
 * message holds one small object per field instead of four strings.
 * What RFC 3261 requires to be checked on receipt is checked by
 * parseMessage whatever is read later (the fields of §8.1.1, framing).
 */
class WireHeader implements Header {
  readonly key: string;
  /** The text the message was parsed from. */
  readonly #text: string;
  readonly #nameStart: number;
  readonly #nameEnd: number;
  readonly #valueStart: number;
  /** Index of the CR of the CRLF that ends the field. */
  readonly #lineEnd: number;
  readonly #folded: boolean;
  #value: string | undefined;

  constructor(text: string, key: string, nameStart: number, nameEnd: number, valueStart: number, lineEnd: number, folded: boolean) {
    this.key = key;
    this.#text = text;
    this.#nameStart = nameStart;
    this.#nameEnd = nameEnd;
    this.#valueStart = valueStart;
    this.#lineEnd = lineEnd;
    this.#folded = folded;
  }

  get name(): string {
    return this.#text.slice(this.#nameStart, this.#nameEnd);
  }

  get value(): string {
    return (this.#value ??= fieldValue(this.#text, this.#valueStart, this.#lineEnd, this.#folded));
  }

  get raw(): string {
    return this.#text.slice(this.#nameStart, this.#lineEnd + 2);
  }

  /** A field prints (JSON, logs) as its four parts, like a plain Header. */
  toJSON(): Header {
    return { name: this.name, key: this.key, value: this.value, raw: this.raw };
  }

  /** See receivedText. */
  static run(headers: readonly Header[], from: number, to: number): string | undefined {
    const first = headers[from];
    if (!(first instanceof WireHeader)) return undefined;
    const text = first.#text;
    let end = first.#lineEnd + 2;
    for (let i = from + 1; i < to; i++) {
      const h = headers[i];
      if (!(h instanceof WireHeader) || h.#text !== text || h.#nameStart !== end) return undefined;
      end = h.#lineEnd + 2;
    }
    return text.slice(first.#nameStart, end);
  }
}

/**
 * The raw text of the header fields headers[from, to) (to > from) as one
 * slice of the received message, when they are consecutive fields of one
 * parsed message (as a parsed message's own list is); undefined otherwise.
 * Lets a serializer copy a run of untouched fields at once.
 */
export function receivedRun(headers: readonly Header[], from: number, to: number): string | undefined {
  return WireHeader.run(headers, from, to);
}

/**
 * The value of the field text[valueStart, lineEnd): outer whitespace
 * trimmed, and if folded each line break with the whitespace around it
 * made one SP (§7.3.1).
 */
function fieldValue(text: string, valueStart: number, lineEnd: number, folded: boolean): string {
  if (folded) return unfold(text, valueStart, lineEnd);
  let a = valueStart;
  let b = lineEnd;
  while (a < b && (text.charCodeAt(a) === SP || text.charCodeAt(a) === HT)) a++;
  while (b > a && (text.charCodeAt(b - 1) === SP || text.charCodeAt(b - 1) === HT)) b--;
  return text.slice(a, b);
}

/** text[from, to) holds a "?" and no "<" (a Contact addr-spec with URI headers, see the parse loop). */
function hasQuestionWithoutAngle(text: string, from: number, to: number): boolean {
  let question = false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3c /* < */) return false;
    if (c === 0x3f /* ? */) question = true;
  }
  return question;
}

/** Parsed fields of messages built by other means than parseMessage. */
const derivedFields = new WeakMap<SipMessage, ParsedFields>();

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;

/** Returned by findLineEnd for a CR or LF that is not part of a CRLF. */
const BARE_LINE_BREAK = -2;

/**
 * Parse one whole SIP message. `data` is a binary string (one char per
 * byte). Over UDP, bytes beyond Content-Length are discarded (§18.3).
 */
export function parseMessage(data: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParseResult {
  try {
    return parse(data, limits);
  } catch {
    // Defence in depth for fuzzed input: any unforeseen exception is a
    // malformed message, never a crash of the receive path.
    return { ok: false, error: "Malformed message" };
  }
}

function parse(data: string, limits: ParseLimits): ParseResult {
  if (typeof data !== "string") return { ok: false, error: "Not a message" };
  if (data.length > limits.maxMessageBytes) {
    return { ok: false, error: `Message too large (maxMessageBytes ${limits.maxMessageBytes})` };
  }
  const n = data.length;

  // §7.5: CRLFs before the start-line are ignored.
  let start = 0;
  while (start + 1 < n && data.charCodeAt(start) === CR && data.charCodeAt(start + 1) === LF) start += 2;

  const startLineEnd = findLineEnd(data, start, n);
  if (startLineEnd < 0) return { ok: false, error: startLineEnd === BARE_LINE_BREAK ? "Bad line ending" : "Missing end of headers" };
  const startLine = data.slice(start, startLineEnd);
  const sl = parseStartLine(startLine);

  // Header fields (§7.3): name HCOLON value, continuation lines start with WSP.
  const headers: Header[] = [];
  let via = -1;
  let from = -1;
  let to = -1;
  let callId = -1;
  let cseq = -1;
  let maxForwards = -1;
  let contentLengthIdx = -1;
  let duplicate: string | undefined;
  let badContact = false;

  let pos = startLineEnd + 2;
  for (;;) {
    if (pos >= n) return fail(sl, headers, "Missing end of headers");
    const c0 = data.charCodeAt(pos);
    if (c0 === CR) {
      if (pos + 1 < n && data.charCodeAt(pos + 1) === LF) {
        pos += 2;
        break; // the empty line ending the header section
      }
      return fail(sl, headers, "Bad line ending");
    }
    if (c0 === SP || c0 === HT) return fail(sl, headers, "Bad header folding");

    const nameStart = pos;
    let i = pos;
    while (i < n) {
      const c = data.charCodeAt(i);
      if (c >= 0x80 || (CHAR_CLASS[c]! & C_TOKEN) === 0) break;
      i++;
    }
    const nameEnd = i;
    if (nameEnd === nameStart) return fail(sl, headers, "Bad header name");
    while (i < n && (data.charCodeAt(i) === SP || data.charCodeAt(i) === HT)) i++;
    if (data.charCodeAt(i) !== 0x3a /* : */) return fail(sl, headers, "Bad header name");
    const valueStart = i + 1;

    // The field ends at the first CRLF not followed by SP/HT (§7.3.1).
    let lineEnd = findLineEnd(data, valueStart, n);
    let folded = false;
    for (;;) {
      if (lineEnd < 0) return fail(sl, headers, lineEnd === BARE_LINE_BREAK ? "Bad line ending" : "Missing end of headers");
      const next = lineEnd + 2 < n ? data.charCodeAt(lineEnd + 2) : -1;
      if (next !== SP && next !== HT) break;
      folded = true;
      lineEnd = findLineEnd(data, lineEnd + 2, n);
    }

    const key = headerKeyAt(data, nameStart, nameEnd);
    const index = headers.length;
    const header = new WireHeader(data, key, nameStart, nameEnd, valueStart, lineEnd, folded);
    headers.push(header);
    if (headers.length > limits.maxHeaders) {
      return fail(sl, headers, `Too many headers (maxHeaders ${limits.maxHeaders})`);
    }

    // Remember the first occurrence of the headers validated below. Those
    // that are not lists must not repeat (§7.3.1): a second Content-Length
    // in particular would make framing ambiguous.
    switch (key) {
      case "via":
        if (via === -1) via = index;
        break;
      case "from":
        if (from === -1) from = index;
        else duplicate ??= "From";
        break;
      case "to":
        if (to === -1) to = index;
        else duplicate ??= "To";
        break;
      case "call-id":
        if (callId === -1) callId = index;
        else duplicate ??= "Call-ID";
        break;
      case "cseq":
        if (cseq === -1) cseq = index;
        else duplicate ??= "CSeq";
        break;
      case "max-forwards":
        if (maxForwards === -1) maxForwards = index;
        else duplicate ??= "Max-Forwards";
        break;
      case "content-length":
        if (contentLengthIdx === -1) contentLengthIdx = index;
        else duplicate ??= "Content-Length";
        break;
      case "contact":
        // §20.10: a URI with a comma, question mark or semicolon must be
        // enclosed in <>; an addr-spec with URI headers ("?") is malformed
        // (RFC 4475 §3.1.2.13). Cheap enough for every message: a value
        // with "<" is never looked into here (nor cut out of the message).
        if (!badContact && hasQuestionWithoutAngle(data, valueStart, lineEnd)) badContact = true;
        break;
    }
    pos = lineEnd + 2;
  }

  if (sl.error !== undefined) return fail(sl, headers, sl.error);
  if (duplicate !== undefined) return fail(sl, headers, `Duplicate ${duplicate}`);

  // Via (§8.1.1.7): at least one, and every via-parm must parse since
  // responses are routed back along them (§18.2.2).
  if (via === -1) return fail(sl, headers, "Missing Via");
  let vias: Via[] | undefined;
  for (let k = via; k < headers.length; k++) {
    const h = headers[k]!;
    if (h.key !== "via") continue;
    const parsed = parseVia(h.value);
    if (parsed.length === 0) return fail(sl, headers, "Bad Via");
    if (vias === undefined) vias = parsed;
    else for (const v of parsed) vias.push(v);
  }

  if (badContact) return fail(sl, headers, "Bad Contact");

  if (from === -1) return fail(sl, headers, "Missing From");
  const fromNa = parseNameAddr(headers[from]!.value);
  if (fromNa === null) return fail(sl, headers, "Bad From");
  if (to === -1) return fail(sl, headers, "Missing To");
  const toNa = parseNameAddr(headers[to]!.value);
  if (toNa === null) return fail(sl, headers, "Bad To");

  // Call-ID = callid = word [ "@" word ] (§25.1): non-empty, no whitespace.
  if (callId === -1) return fail(sl, headers, "Missing Call-ID");
  const callIdValue = headers[callId]!.value;
  if (!isCallId(callIdValue)) return fail(sl, headers, "Bad Call-ID");

  if (cseq === -1) return fail(sl, headers, "Missing CSeq");
  const cs = parseCSeq(headers[cseq]!.value);
  if (cs === null) return fail(sl, headers, "Bad CSeq");
  // §8.1.1.5: the CSeq method MUST match the request method (this holds
  // for ACK and CANCEL too, §17.1.1.3 and §9.1).
  if (sl.kind === "request" && cs.method !== sl.method) return fail(sl, headers, "CSeq method mismatch");

  // Max-Forwards = 1*DIGIT, an integer in the range 0-255 (§20.22).
  if (maxForwards !== -1) {
    const mf = headers[maxForwards]!.value;
    const hops = decimalValue(mf);
    if (hops < 0 || hops > 255) return fail(sl, headers, "Bad Max-Forwards");
  }

  // Body (§7.4, §18.3): Content-Length counts the bytes after the empty
  // line. Over datagrams the extra bytes are discarded; too few is an error.
  const available = n - pos;
  let contentLength: number | undefined;
  let body: string;
  if (contentLengthIdx !== -1) {
    const cl = headers[contentLengthIdx]!.value;
    contentLength = decimalValue(cl);
    if (contentLength < 0) return fail(sl, headers, "Bad Content-Length");
    if (contentLength > available) return fail(sl, headers, "Content-Length mismatch");
    body = contentLength === available ? data.slice(pos) : data.slice(pos, pos + contentLength);
  } else {
    body = data.slice(pos);
  }

  const message = new ParsedMessage(
    sl.kind,
    sl.kind === "request" ? sl.method : cs.method,
    sl.requestUri,
    sl.status,
    sl.reason,
    sl.version,
    startLine,
    headers,
    body,
    start === 0 ? data : data.slice(start),
    callIdValue,
    cs,
    { vias: vias!, from: fromNa, to: toNa, contentLength },
  );
  return { ok: true, message };
}

interface StartLine {
  kind: "request" | "response";
  method: string;
  requestUri: string;
  status: number;
  reason: string;
  version: string;
  /** Set when the start line is malformed; reported after the headers are read. */
  error?: string;
}

/**
 * Request-Line = Method SP Request-URI SP SIP-Version (§7.1)
 * Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2)
 * "SIP" in SIP-Version is case-insensitive (ABNF literal, §25).
 */
function parseStartLine(line: string): StartLine {
  const sl: StartLine = { kind: "request", method: "", requestUri: "", status: 0, reason: "", version: "" };
  if (line.length >= 4 && line.slice(0, 4).toUpperCase() === "SIP/") {
    sl.kind = "response";
    const sp = line.indexOf(" ");
    const version = sp === -1 ? line : line.slice(0, sp);
    sl.version = version;
    if (sp === -1 || !isSipVersion(version)) {
      sl.error = sp !== -1 && isVersionSyntax(version) ? VERSION_NOT_SUPPORTED : "Bad status line";
      return sl;
    }
    // Status-Code = 3DIGIT, 100-699 (§7.2, §21); the reason phrase may be
    // empty and may hold UTF-8 (kept as bytes).
    const code = line.slice(sp + 1, sp + 4);
    const after = sp + 4;
    if (!isDigits(code, 3) || code.length !== 3 || code.charCodeAt(0) < 0x31 || code.charCodeAt(0) > 0x36) {
      sl.error = "Bad status line";
      return sl;
    }
    if (after < line.length && line.charCodeAt(after) !== SP) {
      sl.error = "Bad status line";
      return sl;
    }
    sl.status = Number(code);
    sl.reason = after < line.length ? line.slice(after + 1) : "";
    return sl;
  }

  const sp1 = line.indexOf(" ");
  const sp2 = sp1 === -1 ? -1 : line.indexOf(" ", sp1 + 1);
  if (sp1 === -1 || sp2 === -1 || line.indexOf(" ", sp2 + 1) !== -1) {
    sl.error = "Bad request line";
    if (sp1 > 0 && isToken(line.slice(0, sp1))) sl.method = line.slice(0, sp1);
    return sl;
  }
  const method = line.slice(0, sp1);
  if (!isToken(method)) {
    sl.error = "Bad request line";
    return sl;
  }
  sl.method = method;
  sl.requestUri = line.slice(sp1 + 1, sp2);
  sl.version = line.slice(sp2 + 1);
  if (!isSipVersion(sl.version)) {
    sl.error = isVersionSyntax(sl.version) ? VERSION_NOT_SUPPORTED : "Bad request line";
    return sl;
  }
  const uri = parseUri(sl.requestUri);
  if (uri === null) {
    // A well-formed absoluteURI of another scheme is not a syntax error:
    // RFC 3261 §8.2.2.1 answers it with 416, whose reason phrase this is.
    sl.error = hasOtherScheme(sl.requestUri) ? UNSUPPORTED_URI_SCHEME : "Bad Request-URI";
  } else if (uri.headers.length > 0) {
    // §19.1.1 (table): URI headers are not allowed in a Request-URI; a
    // proxy must not forward them there either (RFC 4475 §3.1.2.11).
    sl.error = "Headers in Request-URI";
  }
  return sl;
}

/** scheme ":" (RFC 3986 §3.1) with a scheme other than sip, sips or tel, and no whitespace. */
function hasOtherScheme(uri: string): boolean {
  const colon = uri.indexOf(":");
  if (colon < 1 || colon + 1 >= uri.length) return false;
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme === "sip" || scheme === "sips" || scheme === "tel") return false;
  const c0 = scheme.charCodeAt(0);
  if (c0 < 0x61 || c0 > 0x7a) return false;
  for (let i = 1; i < colon; i++) {
    const c = scheme.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
    if (!ok) return false;
  }
  for (let i = colon + 1; i < uri.length; i++) if (uri.charCodeAt(i) <= 0x20 || uri.charCodeAt(i) >= 0x7f) return false;
  return true;
}

function isSipVersion(v: string): boolean {
  return v.length === 7 && v.toUpperCase() === "SIP/2.0";
}

/** SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT: well-formed but maybe not 2.0. */
function isVersionSyntax(v: string): boolean {
  if (v.length < 7 || v.slice(0, 4).toUpperCase() !== "SIP/") return false;
  const dot = v.indexOf(".", 4);
  return dot > 4 && isDigits(v.slice(4, dot), 5) && isDigits(v.slice(dot + 1), 5);
}

/**
 * Index of the CR of the CRLF that ends the line starting at `from`; -1 if
 * there is none; BARE_LINE_BREAK if a lone CR or LF comes first (lines end
 * in CRLF only, §7).
 */
function findLineEnd(data: string, from: number, n: number): number {
  // A plain scan: header lines are short, and one pass finds both the CRLF
  // and any stray CR or LF (cheaper than two indexOf calls per line).
  for (let i = from; i < n; i++) {
    const c = data.charCodeAt(i);
    if (c === CR) {
      if (i + 1 >= n) return -1;
      return data.charCodeAt(i + 1) === LF ? i : BARE_LINE_BREAK;
    }
    if (c === LF) return BARE_LINE_BREAK;
  }
  return -1;
}

function fail(sl: StartLine, headers: Header[], error: string): ParseFailure {
  const method = sl.kind === "request" ? sl.method : undefined;
  const result: ParseFailure = { ok: false, error, kind: sl.kind, headers };
  if (method) result.method = method;
  else if (sl.kind === "response") {
    for (const h of headers) {
      if (h.key !== "cseq") continue;
      const cs = parseCSeq(h.value);
      if (cs !== null) result.method = cs.method;
      break;
    }
  }
  return result;
}

/**
 * Value of a folded field data[from, to): each CRLF with the whitespace
 * around it becomes one SP (§7.3.1), outer whitespace trimmed. A linear
 * scan, not a regex, so long whitespace runs cannot cause backtracking.
 */
function unfold(data: string, from: number, to: number): string {
  let out = "";
  let segStart = from;
  let i = from;
  while (i < to) {
    if (data.charCodeAt(i) === CR) {
      let segEnd = i;
      while (segEnd > segStart && isWs(data.charCodeAt(segEnd - 1))) segEnd--;
      out += data.slice(segStart, segEnd) + " ";
      i += 2;
      while (i < to && isWs(data.charCodeAt(i))) i++;
      segStart = i;
    } else {
      i++;
    }
  }
  out += data.slice(segStart, to);
  let a = 0;
  let b = out.length;
  while (a < b && isWs(out.charCodeAt(a))) a++;
  while (b > a && isWs(out.charCodeAt(b - 1))) b--;
  return out.slice(a, b);
}

function isWs(c: number): boolean {
  return c === SP || c === HT;
}

function isCallId(v: string): boolean {
  if (v.length === 0) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

/**
 * CSeq = 1*DIGIT LWS Method (§20.16). The number must be below 2^31
 * (§8.1.1.5). Returns null when malformed.
 */
export function parseCSeq(value: string): CSeq | null {
  const n = value.length;
  let i = 0;
  while (i < n && value.charCodeAt(i) >= 0x30 && value.charCodeAt(i) <= 0x39) i++;
  if (i === 0) return null;
  const seq = decimalValue(value.slice(0, i));
  if (seq < 0 || seq >= 2 ** 31) return null;
  const ws = i;
  while (i < n && (value.charCodeAt(i) === SP || value.charCodeAt(i) === HT)) i++;
  if (i === ws) return null;
  const method = value.slice(i);
  if (!isToken(method)) return null;
  return { seq, method };
}

function fieldsOf(msg: SipMessage): ParsedFields {
  let f = ParsedMessage.fieldsOf(msg) ?? derivedFields.get(msg);
  if (f !== undefined) return f;
  // A message not produced by parseMessage (built by hand): derive lazily.
  const vias: Via[] = [];
  for (const h of msg.headers) if (h.key === "via") for (const v of parseVia(h.value)) vias.push(v);
  const fromH = firstHeader(msg, "from");
  const toH = firstHeader(msg, "to");
  const clH = firstHeader(msg, "content-length");
  const fromNa = fromH === undefined ? null : parseNameAddr(fromH.value);
  const toNa = toH === undefined ? null : parseNameAddr(toH.value);
  if (fromNa === null || toNa === null) throw new Error("message has no valid From/To header");
  f = {
    vias,
    from: fromNa,
    to: toNa,
    contentLength: clH !== undefined && decimalValue(clH.value) >= 0 ? decimalValue(clH.value) : undefined,
  };
  derivedFields.set(msg, f);
  return f;
}

/** First header field with this name (any spelling or compact form). */
export function firstHeader(msg: SipMessage, key: string): Header | undefined {
  const k = canonicalHeaderKey(key);
  for (const h of msg.headers) if (h.key === k) return h;
  return undefined;
}

/** Every header field with this name, in wire order. */
export function headersByKey(msg: SipMessage, key: string): Header[] {
  const k = canonicalHeaderKey(key);
  const out: Header[] = [];
  for (const h of msg.headers) if (h.key === k) out.push(h);
  return out;
}

/** The topmost via-parm (first value of the first Via field). */
export function topVia(msg: SipMessage): Via | undefined {
  return fieldsOf(msg).vias[0];
}

/** Every via-parm of the message, top first, across all Via fields. */
export function allVias(msg: SipMessage): readonly Via[] {
  return fieldsOf(msg).vias;
}

/** The parsed From header (validated by parseMessage; throws only for hand-built messages without one). */
export function fromHeader(msg: SipMessage): NameAddr {
  return fieldsOf(msg).from;
}

/** The parsed To header (validated by parseMessage; throws only for hand-built messages without one). */
export function toHeader(msg: SipMessage): NameAddr {
  return fieldsOf(msg).to;
}

/** The Content-Length header's value, or undefined when the message has none. */
export function contentLength(msg: SipMessage): number | undefined {
  return fieldsOf(msg).contentLength;
}
