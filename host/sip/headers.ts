/**
 * Header-name helpers: compact forms, canonical keys and comma-list splitting.
 *
 * Pure TypeScript with no Node.js imports so the same code can be bundled into
 * a script isolate.
 */

/**
 * Compact header forms → full lowercase names.
 * RFC 3261 §7.3.3 (i, m, e, l, c, f, s, k, t, v), RFC 3265/6665 (o event,
 * u allow-events), RFC 3515 (r refer-to), RFC 3892 (b referred-by),
 * RFC 4028 (x session-expires).
 * Keys are lowercase: compact names are case-insensitive like all header names.
 */
export const COMPACT_FORMS: ReadonlyMap<string, string> = new Map([
  ["i", "call-id"],
  ["v", "via"],
  ["f", "from"],
  ["t", "to"],
  ["m", "contact"],
  ["l", "content-length"],
  ["c", "content-type"],
  ["k", "supported"],
  ["s", "subject"],
  ["e", "content-encoding"],
  ["o", "event"],
  ["u", "allow-events"],
  ["r", "refer-to"],
  ["b", "referred-by"],
  ["x", "session-expires"],
]);

/**
 * Lowercase full header name for a name as written on the wire: "v" → "via",
 * "CALL-ID" → "call-id". Header names are case-insensitive (RFC 3261 §7.3.1).
 */
export function canonicalHeaderKey(name: string): string {
  const lower = name.toLowerCase();
  if (lower.length === 1) {
    const full = COMPACT_FORMS.get(lower);
    if (full !== undefined) return full;
  }
  return lower;
}

/**
 * Header names seen in most messages, lowercase: headerKeyAt answers these
 * with the same string every time instead of a lowercased copy per field.
 */
const COMMON_KEYS: readonly string[] = [
  "via", "from", "to", "call-id", "cseq", "contact", "max-forwards", "content-length", "content-type",
  "route", "record-route", "user-agent", "server", "allow", "supported", "require", "proxy-require",
  "expires", "min-expires", "authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
  "subject", "event", "accept", "date", "timestamp", "organization", "session-expires", "min-se",
  "allow-events", "content-disposition", "path", "p-asserted-identity", "reason", "unsupported",
];

/** COMMON_KEYS by length, for headerKeyAt. */
const COMMON_KEYS_BY_LENGTH: readonly (readonly string[])[] = (() => {
  const out: string[][] = [];
  for (const k of COMMON_KEYS) (out[k.length] ??= []).push(k);
  return out;
})();

/** Compact forms (§7.3.3) by the lowercase letter's char code. */
const COMPACT_BY_CODE: readonly (string | undefined)[] = (() => {
  const out: (string | undefined)[] = [];
  for (const [letter, full] of COMPACT_FORMS) out[letter.charCodeAt(0)] = full;
  return out;
})();

/**
 * canonicalHeaderKey of the header name text[start, end), without cutting
 * the name out of the message for the common names (a message's header
 * fields are keyed once each as it is parsed).
 */
export function headerKeyAt(text: string, start: number, end: number): string {
  const length = end - start;
  if (length === 1) {
    const c = text.charCodeAt(start) | 0x20;
    const full = COMPACT_BY_CODE[c];
    if (full !== undefined) return full;
  } else {
    const candidates = COMMON_KEYS_BY_LENGTH[length];
    if (candidates !== undefined) {
      for (const key of candidates) if (equalsLowercase(text, start, key)) return key;
    }
  }
  return canonicalHeaderKey(text.slice(start, end));
}

/** text[start, start + key.length) equals `key` (lowercase letters, digits, "-") ignoring ASCII case. */
function equalsLowercase(text: string, start: number, key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    let c = text.charCodeAt(start + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== key.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1: such a
 * header may be split over several fields or combined into one). Header
 * fields like Authorization or WWW-Authenticate contain commas but are NOT
 * lists (§7.3.1 names them as the exception), so they are not here.
 */
const MULTI_VALUE_HEADERS: ReadonlySet<string> = new Set([
  "via",
  "contact",
  "route",
  "record-route",
  "allow",
  "supported",
  "require",
  "proxy-require",
  "unsupported",
  "accept",
  "accept-encoding",
  "accept-language",
  "alert-info",
  "call-info",
  "error-info",
  "content-encoding",
  "content-language",
  "in-reply-to",
  "warning",
  "allow-events", // RFC 6665 §8.2.2
  "path", // RFC 3327
  "service-route", // RFC 3608
  "p-asserted-identity", // RFC 3325
  "p-preferred-identity", // RFC 3325
  "reason", // RFC 3326
  "accept-contact", // RFC 3841
  "reject-contact", // RFC 3841
  "request-disposition", // RFC 3841
  "security-client", // RFC 3329
  "security-server",
  "security-verify",
  "history-info", // RFC 7044
  "p-associated-uri", // RFC 7315
]);

/** Whether the header (canonical key or any spelling) is a comma-separated list. */
export function isMultiValueHeader(key: string): boolean {
  return MULTI_VALUE_HEADERS.has(canonicalHeaderKey(key));
}

/**
 * Split a list-valued header value on top-level commas (RFC 3261 §7.3.1).
 * Commas inside quoted strings (with backslash escapes, §25.1 quoted-pair)
 * and inside <...> are not separators. Elements are trimmed of LWS; empty
 * elements (", ,") are dropped.
 */
export function splitHeaderValues(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inQuotes = false;
  let angleDepth = 0;
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (inQuotes) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inQuotes = false;
    } else if (c === 0x22) {
      inQuotes = true;
    } else if (c === 0x3c /* < */) {
      angleDepth++;
    } else if (c === 0x3e /* > */) {
      if (angleDepth > 0) angleDepth--;
    } else if (c === 0x2c /* , */ && angleDepth === 0) {
      pushTrimmed(out, value, start, i);
      start = i + 1;
    }
  }
  pushTrimmed(out, value, start, n);
  return out;
}

function pushTrimmed(out: string[], s: string, from: number, to: number): void {
  while (from < to && isLws(s.charCodeAt(from))) from++;
  while (to > from && isLws(s.charCodeAt(to - 1))) to--;
  if (to > from) out.push(s.slice(from, to));
}

function isLws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}
