/**
 * Message accessors shared by the KSR module tables: header lookup by name
 * (compact forms included), From/To/R-URI parsing cached per message, the
 * xval "null modes" of Kamailio's get/gete/getw getters, and header-line
 * normalisation for lumps.
 *
 * Parsing results are cached in WeakMaps keyed by the immutable SipMessage
 * (or by the URI text), so a route that reads $fU, $fd and $fu parses the
 * From header once and nothing is kept after the message is gone.
 */
import type { Header, SipMessage } from "../sip/message.js";
import { canonicalHeaderKey } from "../sip/headers.js";
import { parseUri, type SipUri } from "../sip/uri.js";
import { parseNameAddr, type NameAddr } from "../sip/nameaddr.js";
import { messageMemo, receivedNameAddr } from "../sip/parser.js";
import type { KemiValue } from "./types.js";
import type { MessageContext } from "../core/context.js";

/**
 * What a string getter returns when the value is missing (Kamailio's
 * SR_KEMI_XVAL_NULL_*): get* → null, gete* → "", getw* → "<null>".
 */
export type NullMode = "null" | "empty" | "print";

export function xvalNull(mode: NullMode): KemiValue {
  return mode === "null" ? null : mode === "empty" ? "" : "<null>";
}

/** Kamailio's printable null ("<null>", pv_get_null_str). */
export const PRINTABLE_NULL = "<null>";

/**
 * Key to match headers named `name` against Header.key, or null when the
 * name is not a valid header field name (RFC 3261 §7.3.1: a token). Compact
 * forms are expanded so "f" finds From headers, as Kamailio matches known
 * headers by type.
 */
export function headerKeyFor(name: string): string | null {
  const trimmed = name.trimEnd();
  if (trimmed.length === 0) return null;
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed.charCodeAt(i);
    // token characters (RFC 3261 §25.1): alphanum and -.!%*_+`'~
    const ok =
      (c >= 0x30 && c <= 0x39) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      c === 0x2d || c === 0x2e || c === 0x21 || c === 0x25 || c === 0x2a ||
      c === 0x5f || c === 0x2b || c === 0x60 || c === 0x27 || c === 0x7e;
    if (!ok) return null;
  }
  return canonicalHeaderKey(trimmed);
}

/** Indexes of the headers with that canonical key, in wire order. */
export function headerIndexes(msg: SipMessage, key: string): number[] {
  const out: number[] = [];
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) if (hs[i]!.key === key) out.push(i);
  return out;
}

export function firstHeaderOf(msg: SipMessage, key: string): Header | undefined {
  for (const h of msg.headers) if (h.key === key) return h;
  return undefined;
}

export function countHeaders(msg: SipMessage, key: string): number {
  let n = 0;
  for (const h of msg.headers) if (h.key === key) n++;
  return n;
}

/** The method of a request, or the CSeq method of a reply. */
export function messageMethod(msg: SipMessage): string {
  return msg.kind === "request" ? msg.method : msg.cseq.method;
}

// ---------------------------------------------------------------- URIs

const uriCache = new Map<string, SipUri | null>();
const URI_CACHE_LIMIT = 4096;

/**
 * parseUri with a small bounded cache: the same R-URI / From URI text is
 * parsed many times per message by $rU/$rd/is_myself... Returned objects are
 * shared: callers must copy before changing them.
 */
export function parseUriCached(text: string): SipUri | null {
  let u = uriCache.get(text);
  if (u === undefined) {
    u = parseUri(text);
    if (uriCache.size >= URI_CACHE_LIMIT) uriCache.clear();
    uriCache.set(text, u);
  }
  return u;
}

export function cloneUri(u: SipUri): SipUri {
  return { ...u, params: u.params.map((p) => ({ ...p })), headers: u.headers.map((h) => ({ ...h })) };
}

/** The current R-URI parsed ($ru), or null for replies / unparsable text. */
export function currentRuri(ctx: MessageContext): SipUri | null {
  if (!ctx.isRequest) return null;
  return parseUriCached(ctx.requestUri);
}

// ------------------------------------------------------- From / To / Contact

/** A From or To header as Kamailio's to_body exposes it. */
export interface ToBody {
  readonly nameAddr: NameAddr;
  /** Display name as written, quotes kept (Kamailio's $fn/$tn); undefined if none. */
  readonly rawDisplay: string | undefined;
  readonly tag: string | undefined;
  /** Number of tag parameters (sanity duplicate-tag check). */
  readonly tagCount: number;
  readonly uri: SipUri | null;
}

/** messageMemo slots of toBody. */
const TO_BODY_SLOT = { from: "msgutil.toBody.from", to: "msgutil.toBody.to" } as const;

/**
 * The first From ("from") or To ("to") header parsed, or null when the
 * header is missing or malformed.
 */
export function toBody(msg: SipMessage, key: "from" | "to"): ToBody | null {
  const memo = messageMemo(msg);
  const slot = TO_BODY_SLOT[key];
  let tb = memo[slot] as ToBody | null | undefined;
  if (tb === undefined) {
    tb = parseToBody(firstHeaderOf(msg, key)?.value, receivedNameAddr(msg, key));
    memo[slot] = tb;
  }
  return tb;
}

/** `parsed`: the value as the message parser parsed it already, if it did. */
function parseToBody(value: string | undefined, parsed: NameAddr | undefined): ToBody | null {
  if (value === undefined) return null;
  const na = parsed ?? parseNameAddr(value);
  if (na === null) return null;
  let tag: string | undefined;
  let tagCount = 0;
  for (const p of na.params) {
    if (p.name.toLowerCase() === "tag") {
      tagCount++;
      if (tag === undefined) tag = p.value ?? "";
    }
  }
  return { nameAddr: na, rawDisplay: rawDisplayName(value), tag, tagCount, uri: parseUriCached(na.uri) };
}

/**
 * The display-name part exactly as written (quotes kept), or undefined.
 * Kamailio's to_body keeps the quoted string, so $fn of `"Alice" <sip:a@x>`
 * is `"Alice"` with the quotes.
 */
export function rawDisplayName(value: string): string | undefined {
  let inQuotes = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuotes) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuotes = false;
    } else if (c === 0x22) {
      inQuotes = true;
    } else if (c === 0x3c /* < */) {
      const d = value.slice(0, i).trim();
      return d.length > 0 ? d : undefined;
    } else if (c === 0x3b /* ; */ || c === 0x2c) {
      return undefined;
    }
  }
  return undefined;
}

/**
 * URI of the first Contact (Kamailio get_cturi / $ct is the whole body):
 * null when absent, "*" or malformed.
 */
export function firstContactUri(msg: SipMessage): string | null {
  const h = firstHeaderOf(msg, "contact");
  if (h === undefined) return null;
  const first = splitFirstListElement(h.value);
  if (first === "*" || first.length === 0) return null;
  const na = parseNameAddr(first);
  return na === null || na.uri.length === 0 ? null : na.uri;
}

/** First element of a comma-separated header value (quotes and <> respected). */
export function splitFirstListElement(value: string): string {
  let inQuotes = false;
  let angle = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuotes) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuotes = false;
    } else if (c === 0x22) inQuotes = true;
    else if (c === 0x3c) angle++;
    else if (c === 0x3e) angle = Math.max(0, angle - 1);
    else if (c === 0x2c && angle === 0) return value.slice(0, i).trim();
  }
  return value.trim();
}

// --------------------------------------------------------------- credentials

/** Digest credentials of an Authorization / Proxy-Authorization header (RFC 2617 §3.2.2). */
export interface Credentials {
  readonly scheme: string;
  readonly params: ReadonlyMap<string, string>;
  /** Present-but-empty is "" ; absent is undefined. */
  readonly username: string | undefined;
}

/** Separators skipped between digest parameters: list commas, stray semicolons, white space. */
function isParamSeparator(c: string | undefined): boolean {
  return c === "," || c === ";" || c === " " || c === "\t" || c === "\r" || c === "\n";
}

/**
 * Parse `Digest name=value, name="quoted", ...` as leniently as Kamailio's
 * digest parser (parser/digest/digest_parser.c): parameter names in any
 * case, white space around "=" and ",", and stray separators tolerated,
 * which clients send (sipp's widely copied scenarios end the header with
 * `algorithm=MD5;`). A token value ends at white space, "," or ";"
 * (RFC 2617 §3.2.2 values are tokens or quoted strings, never containing
 * either); a quoted value keeps its escapes' characters. What follows a
 * value up to the next separator, and a name without "=", are ignored.
 * Returns null only when a quoted string is unterminated or a parameter
 * has no name: the values that are found are used exactly, so the digest
 * check stays as strict as before. Other schemes (Basic ...) are not looked
 * into: they come back with their scheme name and no parameters.
 */
export function parseCredentials(value: string): Credentials | null {
  const m = /^\s*([!-~]+?)(?=[\s,]|$)[\s,]*/.exec(value);
  if (m === null) return null;
  const scheme = m[1]!;
  const params = new Map<string, string>();
  if (scheme.toLowerCase() !== "digest") return { scheme, params, username: undefined };
  let i = m[0].length;
  const n = value.length;
  while (i < n) {
    while (i < n && isParamSeparator(value[i])) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && value[j] !== "=" && value[j] !== '"' && !isParamSeparator(value[j])) j++;
    if (j === i) return null; // a value (quoted string) where a name belongs
    const name = value.slice(i, j).toLowerCase();
    i = j;
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
    if (value[i] !== "=") continue; // a bare word: no parameter
    i++;
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
    let v: string;
    if (value[i] === '"') {
      let k = i + 1;
      let out = "";
      for (; k < n; k++) {
        const ch = value[k]!;
        if (ch === "\\" && k + 1 < n) {
          out += value[++k];
        } else if (ch === '"') break;
        else out += ch;
      }
      if (k >= n) return null; // unterminated quoted string
      v = out;
      i = k + 1;
    } else {
      let k = i;
      while (k < n && !isParamSeparator(value[k])) k++;
      v = value.slice(i, k);
      i = k;
    }
    // Anything glued to the value before the next separator is ignored.
    while (i < n && !isParamSeparator(value[i])) i++;
    params.set(name, v);
  }
  return { scheme, params, username: params.get("username") };
}

/**
 * The credentials header Kamailio's $au/$ar/$ad and kx.get_au read:
 * Proxy-Authorization if present, else Authorization. Null for ACK and
 * CANCEL (they carry no credentials to check, RFC 3261 §22.1) and when
 * absent or unparsable.
 */
export function requestCredentials(msg: SipMessage): Credentials | null {
  if (msg.kind === "request" && (msg.method === "ACK" || msg.method === "CANCEL")) return null;
  const h = firstHeaderOf(msg, "proxy-authorization") ?? firstHeaderOf(msg, "authorization");
  if (h === undefined) return null;
  const c = parseCredentials(h.value);
  if (c === null || c.scheme.toLowerCase() !== "digest") return null;
  return c;
}

/** username split as Kamailio does: "user@domain" → user / domain. */
export function splitAuthUsername(username: string): { user: string; domain: string } {
  const at = username.indexOf("@");
  return at === -1 ? { user: username, domain: "" } : { user: username.slice(0, at), domain: username.slice(at + 1) };
}

// -------------------------------------------------------------- header lines

/**
 * Header text handed to hdr.append & co. must be complete lines ending in
 * CRLF. Kamailio inserts the text verbatim, so a missing CRLF there glues
 * the next header onto the added one and corrupts the message; here the
 * CRLF is added when missing so the serializer always gets whole lines.
 * Bare LF line ends inside the text are normalised to CRLF (RFC 3261 §7.3.1).
 */
export function normalizeHeaderText(text: string): string {
  // Nothing to add: an empty text must not become a blank line, which would
  // end the header section.
  if (text.length === 0) return "";
  let t = text.replace(/\r?\n/g, "\r\n");
  if (!t.endsWith("\r\n")) t += "\r\n";
  return t;
}

// ------------------------------------------------------------------ numbers

/**
 * Kamailio's str2sint as its callers see it: optional sign then digits; at
 * the first non-digit it stops and the value read so far stands ("12ab" →
 * 12, "ab" → 0); out-of-range values clamp to the int32 limits.
 */
export function str2sint(s: string): number {
  let i = 0;
  let neg = false;
  if (s[0] === "+") i = 1;
  else if (s[0] === "-") {
    neg = true;
    i = 1;
  }
  let v = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
    if (!neg && v > 0x7fffffff) return 0x7fffffff;
    if (neg && v > 0x80000000) return -0x80000000;
  }
  return neg ? (v === 0 ? 0 : -v) : v;
}
