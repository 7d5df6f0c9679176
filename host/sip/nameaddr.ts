/**
 * name-addr / addr-spec values of From, To, Contact, Route, Record-Route,
 * Refer-To, P-Asserted-Identity ... (RFC 3261 §20.10, grammar §25.1).
 */
import { CHAR_CLASS, C_ALPHANUM, C_TOKEN, genValueEnd, isWsp, quotedStringEnd } from "./chars.js";
import type { UriParam } from "./uri.js";

export interface NameAddr {
  /**
   * Display name with quoting removed and quoted-pairs unescaped
   * (`"A \"b\""` → `A "b"`); a token display name as written. Undefined when
   * absent.
   */
  displayName?: string;
  /** The URI as written (between < > for name-addr). Not validated beyond its scheme. */
  uri: string;
  /**
   * Header parameters (after the URI, e.g. tag, expires, q) in order. Values
   * are as written: a quoted-string value keeps its quotes.
   */
  params: UriParam[];
}

/**
 * Parse one name-addr or addr-spec with its header parameters. List-valued
 * headers (Contact, Route) must be split with splitHeaderValues first.
 * Returns null on malformed input; the Contact wildcard "*" is not a
 * name-addr and also gives null.
 *
 * RFC 3261 §20.10: in the addr-spec form (no angle brackets) everything from
 * the first ";" on is a header parameter, not a URI parameter.
 */
export function parseNameAddr(text: string): NameAddr | null {
  const n = text.length;
  let i = skipWs(text, 0, n);
  let end = n;
  while (end > i && isWsp(text.charCodeAt(end - 1))) end--;
  if (i >= end) return null;

  let displayName: string | undefined;
  let uriStart: number;
  let uriEnd: number;

  const first = text.charCodeAt(i);
  if (first === 0x22 /* " */) {
    const q = quotedStringEnd(text, i, end);
    if (q === -1) return null;
    displayName = unquote(text.slice(i + 1, q - 1));
    i = skipWs(text, q, end);
    if (text.charCodeAt(i) !== 0x3c /* < */) return null;
    uriStart = i + 1;
  } else {
    // Either `*(token LWS) <uri>` or an addr-spec: whichever of "<" and ";"
    // comes first decides.
    let k = i;
    while (k < end) {
      const c = text.charCodeAt(k);
      if (c === 0x3c || c === 0x3b || c === 0x22) break;
      k++;
    }
    const stop = k < end ? text.charCodeAt(k) : -1;
    if (stop === 0x22) return null;
    if (stop === 0x3c) {
      if (!isTokenDisplayName(text, i, k)) return null;
      let nameEnd = k;
      while (nameEnd > i && isWsp(text.charCodeAt(nameEnd - 1))) nameEnd--;
      if (nameEnd > i) displayName = text.slice(i, nameEnd);
      uriStart = k + 1;
    } else {
      uriStart = i;
      uriEnd = k;
      while (uriEnd > uriStart && isWsp(text.charCodeAt(uriEnd - 1))) uriEnd--;
      if (!isPlausibleUri(text, uriStart, uriEnd)) return null;
      // §20.10: a URI with a comma, question mark or semicolon must be in
      // <>; here "?" (URI headers) cannot belong to an addr-spec.
      const question = text.indexOf("?", uriStart);
      if (question !== -1 && question < uriEnd) return null;
      const params = parseHeaderParams(text, k, end);
      if (params === null) return null;
      return { uri: text.slice(uriStart, uriEnd), params };
    }
  }

  uriEnd = text.indexOf(">", uriStart);
  if (uriEnd === -1 || uriEnd >= end) return null;
  if (!isPlausibleUri(text, uriStart, uriEnd)) return null;
  const params = parseHeaderParams(text, uriEnd + 1, end);
  if (params === null) return null;
  const na: NameAddr = { uri: text.slice(uriStart, uriEnd), params };
  if (displayName !== undefined) na.displayName = displayName;
  return na;
}

/** Value of a header parameter (case-insensitive name): undefined if absent, "" for a flag. */
export function headerParam(na: NameAddr, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const p of na.params) {
    if (p.name.length === want.length && p.name.toLowerCase() === want) return p.value ?? "";
  }
  return undefined;
}

/**
 * Text form, always as name-addr (`"Name" <uri>;params`): the name-addr form
 * is valid everywhere an addr-spec is and keeps URI parameters from being
 * read as header parameters (§20.10).
 */
export function formatNameAddr(na: NameAddr): string {
  let s = "";
  if (na.displayName !== undefined && na.displayName !== "") s = quoteDisplayName(na.displayName) + " ";
  s += "<" + na.uri + ">";
  for (const p of na.params) s += p.value === undefined ? ";" + p.name : ";" + p.name + "=" + p.value;
  return s;
}

/** A quoted-string for a display name, escaping `"` and `\` (§25.1 quoted-pair). */
export function quoteDisplayName(name: string): string {
  return '"' + name.replace(/["\\]/g, "\\$&") + '"';
}

function skipWs(s: string, i: number, end: number): number {
  while (i < end && isWsp(s.charCodeAt(i))) i++;
  return i;
}

function unquote(inner: string): string {
  return inner.indexOf("\\") === -1 ? inner : inner.replace(/\\([\s\S])/g, "$1");
}

/**
 * display-name = *(token LWS). Bytes >= 0x80 are accepted too: unquoted UTF-8
 * display names are common in the field and carry no ambiguity before "<".
 */
function isTokenDisplayName(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c >= 0x80) continue;
    if ((CHAR_CLASS[c]! & C_TOKEN) === 0) return false;
  }
  return true;
}

/**
 * A URI for a name-addr: `scheme ":" rest` (RFC 3986 scheme syntax), with
 * no whitespace, controls or angle brackets. Deeper checks are left to
 * parseUri where a SIP URI is required.
 */
function isPlausibleUri(s: string, from: number, to: number): boolean {
  if (to - from < 2) return false;
  let i = from;
  const c0 = s.charCodeAt(i);
  if (!((c0 >= 0x41 && c0 <= 0x5a) || (c0 >= 0x61 && c0 <= 0x7a))) return false;
  for (i = from + 1; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3a) break;
    if (c >= 0x80 || ((CHAR_CLASS[c]! & C_ALPHANUM) === 0 && c !== 0x2b && c !== 0x2d && c !== 0x2e)) return false;
  }
  if (i >= to) return false;
  for (i = i + 1; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === 0x22) return false;
  }
  return true;
}

/**
 * *( SEMI generic-param ); generic-param = token [ EQUAL gen-value ],
 * gen-value = token / host / quoted-string. SEMI and EQUAL allow LWS around.
 */
function parseHeaderParams(s: string, i: number, end: number): UriParam[] | null {
  const params: UriParam[] = [];
  for (;;) {
    i = skipWs(s, i, end);
    if (i >= end) return params;
    if (s.charCodeAt(i) !== 0x3b) return null;
    i = skipWs(s, i + 1, end);
    const nameStart = i;
    while (i < end && (CHAR_CLASS[s.charCodeAt(i)]! & C_TOKEN) !== 0 && s.charCodeAt(i) < 0x80) i++;
    if (i === nameStart) return null;
    const param: UriParam = { name: s.slice(nameStart, i) };
    i = skipWs(s, i, end);
    if (i < end && s.charCodeAt(i) === 0x3d /* = */) {
      i = skipWs(s, i + 1, end);
      const valueStart = i;
      i = genValueEnd(s, i, end);
      if (i <= valueStart) return null;
      param.value = s.slice(valueStart, i);
    }
    params.push(param);
  }
}
