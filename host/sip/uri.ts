/**
 * SIP, SIPS (RFC 3261 §19.1, grammar §25.1) and TEL (RFC 3966) URIs.
 *
 * Fields keep %HH escapes as written so that formatUri(parseUri(x)) gives
 * back x (modulo scheme case); call unescapeUriPart() where the decoded
 * value is needed (e.g. comparing users, §19.1.4).
 */
import {
  CHAR_CLASS,
  C_ALPHANUM,
  C_HNV_UNRESERVED,
  C_PARAM_UNRESERVED,
  C_PASSWORD_EXTRA,
  C_UNRESERVED,
  C_USER_UNRESERVED,
  isDigit,
  isEscapedRun,
  isHexDigit,
  isHost,
} from "./chars.js";

/** A `name[=value]` parameter; `value` is undefined for a flag ("lr"). */
export interface UriParam {
  name: string;
  value?: string;
}

export interface SipUri {
  /** Lowercase scheme. */
  scheme: "sip" | "sips" | "tel";
  /** User part (escapes kept); for tel the telephone-subscriber number. */
  user?: string;
  password?: string;
  /** Host as written; an IPv6 reference keeps its brackets ("[::1]"); "" for tel. */
  host: string;
  port?: number;
  /** uri-parameters in order, names as written. */
  params: UriParam[];
  /** URI headers (`?h=v&...`) in order. */
  headers: UriParam[];
}

const USER_CHARS = C_UNRESERVED | C_USER_UNRESERVED;
const PASSWORD_CHARS = C_UNRESERVED | C_PASSWORD_EXTRA;
const PARAM_CHARS = C_UNRESERVED | C_PARAM_UNRESERVED;
const HEADER_CHARS = C_UNRESERVED | C_HNV_UNRESERVED;

/**
 * Parse a sip:, sips: or tel: URI. Returns null when the text does not match
 * the grammar or uses another scheme. The scheme is case-insensitive
 * (RFC 3261 §19.1.4).
 */
export function parseUri(text: string): SipUri | null {
  const colon = text.indexOf(":");
  if (colon < 3 || colon > 4) return null;
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === "sip" || scheme === "sips") return parseSipUri(text, scheme, colon + 1);
  if (scheme === "tel") return parseTelUri(text, colon + 1);
  return null;
}

function parseSipUri(text: string, scheme: "sip" | "sips", start: number): SipUri | null {
  const n = text.length;
  const uri: SipUri = { scheme, host: "", params: [], headers: [] };
  let i = start;

  // userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
  // "@" appears nowhere else in a SIP URI unescaped, so the first one ends it.
  const at = text.indexOf("@", start);
  if (at !== -1) {
    let userEnd = at;
    for (let k = start; k < at; k++) {
      if (text.charCodeAt(k) === 0x3a /* : */) {
        userEnd = k;
        break;
      }
    }
    if (userEnd === start || !isEscapedRun(text, start, userEnd, USER_CHARS)) return null;
    uri.user = text.slice(start, userEnd);
    if (userEnd < at) {
      if (!isEscapedRun(text, userEnd + 1, at, PASSWORD_CHARS)) return null;
      uri.password = text.slice(userEnd + 1, at);
    }
    i = at + 1;
  }

  // hostport = host [ ":" port ]
  let hostEnd: number;
  if (text.charCodeAt(i) === 0x5b /* [ */) {
    const close = text.indexOf("]", i);
    if (close === -1) return null;
    hostEnd = close + 1;
  } else {
    hostEnd = i;
    while (hostEnd < n) {
      const c = text.charCodeAt(hostEnd);
      if (c === 0x3a || c === 0x3b || c === 0x3f) break; // : ; ?
      hostEnd++;
    }
  }
  const host = text.slice(i, hostEnd);
  if (!isHost(host)) return null;
  uri.host = host;
  i = hostEnd;
  if (i < n && text.charCodeAt(i) === 0x3a) {
    i++;
    const portStart = i;
    let port = 0;
    while (i < n && isDigit(text.charCodeAt(i))) {
      port = port * 10 + (text.charCodeAt(i) - 0x30);
      i++;
      if (i - portStart > 5) return null;
    }
    if (i === portStart || port > 65535) return null;
    uri.port = port;
  }

  // uri-parameters = *( ";" uri-parameter )
  while (i < n && text.charCodeAt(i) === 0x3b) {
    const parsed = parseParam(text, i + 1, n, PARAM_CHARS, 0x3b, 0x3f);
    if (parsed === null) return null;
    uri.params.push(parsed.param);
    i = parsed.end;
  }

  // headers = "?" header *( "&" header )
  if (i < n && text.charCodeAt(i) === 0x3f) {
    i++;
    for (;;) {
      const parsed = parseParam(text, i, n, HEADER_CHARS, 0x26 /* & */, -1);
      if (parsed === null) return null;
      uri.headers.push(parsed.param);
      i = parsed.end;
      if (i >= n) break;
      if (text.charCodeAt(i) !== 0x26) return null;
      i++;
    }
  }
  return i === n ? uri : null;
}

/**
 * Parse `name[=value]` starting at `from`, stopping at `sep`, `stop` or end.
 * Name must be non-empty; an empty value after "=" is tolerated (kept as "")
 * although RFC 3261 requires 1*paramchar, because it is harmless to carry.
 */
function parseParam(
  text: string,
  from: number,
  n: number,
  flags: number,
  sep: number,
  stop: number,
): { param: UriParam; end: number } | null {
  let i = from;
  let eq = -1;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === sep || c === stop) break;
    if (c === 0x3d /* = */ && eq === -1) eq = i;
    i++;
  }
  const nameEnd = eq === -1 ? i : eq;
  if (nameEnd === from || !isEscapedRun(text, from, nameEnd, flags)) return null;
  const param: UriParam = { name: text.slice(from, nameEnd) };
  if (eq !== -1) {
    if (!isEscapedRun(text, eq + 1, i, flags)) return null;
    param.value = text.slice(eq + 1, i);
  }
  return { param, end: i };
}

/**
 * tel URI (RFC 3966 §3): telephone-subscriber = global-number / local-number.
 * The number (with visual separators as written) goes in `user`.
 * RFC 3966 §5.1.5 requires ";phone-context" on local numbers; it is not
 * enforced because deployed equipment sends bare local numbers and rejecting
 * them buys nothing for routing.
 */
function parseTelUri(text: string, start: number): SipUri | null {
  const n = text.length;
  let numEnd = text.indexOf(";", start);
  if (numEnd === -1) numEnd = n;
  const number = text.slice(start, numEnd);
  if (!isTelNumber(number)) return null;
  const uri: SipUri = { scheme: "tel", user: number, host: "", params: [], headers: [] };
  let i = numEnd;
  while (i < n) {
    // par = parameter / extension / isdn-subaddress; pname = 1*( alphanum / "-" )
    const parsed = parseParam(text, i + 1, n, PARAM_CHARS, 0x3b, -1);
    if (parsed === null) return null;
    const name = parsed.param.name;
    for (let k = 0; k < name.length; k++) {
      const c = name.charCodeAt(k);
      if (c !== 0x2d && (CHAR_CLASS[c]! & C_ALPHANUM) === 0) return null;
    }
    // ext, isub and phone-context are defined with a mandatory value (§3).
    if (parsed.param.value === undefined || parsed.param.value === "") {
      const lower = name.toLowerCase();
      if (lower === "ext" || lower === "isub" || lower === "phone-context") return null;
    }
    uri.params.push(parsed.param);
    i = parsed.end;
  }
  return uri;
}

function isTelNumber(s: string): boolean {
  if (s.length === 0) return false;
  const global = s.charCodeAt(0) === 0x2b; /* + */
  let significant = 0;
  for (let i = global ? 1 : 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // visual-separator = "-" / "." / "(" / ")"
    if (c === 0x2d || c === 0x2e || c === 0x28 || c === 0x29) continue;
    if (isDigit(c)) significant++;
    else if (!global && (isHexDigit(c) || c === 0x2a /* * */ || c === 0x23) /* # */) significant++;
    else return false;
  }
  return significant > 0;
}

/** Text form of a URI (the scheme is written lowercase). */
export function formatUri(u: SipUri): string {
  let s = u.scheme + ":";
  if (u.scheme === "tel") {
    s += u.user ?? "";
  } else {
    if (u.user !== undefined) {
      s += u.user;
      if (u.password !== undefined) s += ":" + u.password;
      s += "@";
    }
    s += u.host;
    if (u.port !== undefined) s += ":" + u.port;
  }
  for (const p of u.params) s += p.value === undefined ? ";" + p.name : ";" + p.name + "=" + p.value;
  for (let k = 0; k < u.headers.length; k++) {
    const h = u.headers[k]!;
    s += (k === 0 ? "?" : "&") + h.name;
    if (h.value !== undefined) s += "=" + h.value;
  }
  return s;
}

/**
 * A URI parameter's value. Names compare case-insensitively (RFC 3261
 * §19.1.4). Returns undefined when absent and "" for a flag parameter
 * without a value (";lr").
 */
export function uriParam(u: SipUri, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const p of u.params) {
    if (p.name.length === want.length && p.name.toLowerCase() === want) return p.value ?? "";
  }
  return undefined;
}

/**
 * Default port when the URI has none: 5061 for sips or transport=tls,
 * else 5060 (RFC 3261 §19.1.2; RFC 3263 §4.2). tel URIs have no port; 5060
 * is returned for them only to keep the result a number.
 */
export function defaultPort(u: SipUri): number {
  return uriTransport(u) === "tls" ? 5061 : 5060;
}

/**
 * Transport the URI asks for, lowercase: the transport parameter if any;
 * "tls" for sips (RFC 3261 §26.2.2: SIPS means TLS on every hop, and
 * transport=tcp in a sips URI still means TLS over TCP); else "udp".
 */
export function uriTransport(u: SipUri): string {
  const t = uriParam(u, "transport");
  if (u.scheme === "sips") return t === undefined || t.toLowerCase() === "tcp" ? "tls" : t.toLowerCase();
  return t === undefined || t === "" ? "udp" : t.toLowerCase();
}

/**
 * Decode %HH escapes (RFC 3261 §19.1.2) into bytes, one char per byte
 * (the binary-string convention of message.ts). Malformed escapes are kept
 * as written.
 */
export function unescapeUriPart(s: string): string {
  const pct = s.indexOf("%");
  if (pct === -1) return s;
  let out = s.slice(0, pct);
  for (let i = pct; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length && isHexDigit(s.charCodeAt(i + 1)) && isHexDigit(s.charCodeAt(i + 2))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
