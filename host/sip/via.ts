/**
 * Via header values (RFC 3261 §20.42, grammar §25.1; rport RFC 3581).
 */
import { splitHeaderValues } from "./headers.js";
import { CHAR_CLASS, C_TOKEN, genValueEnd, isDigits, isHost, isIPv4, isIPv6, isToken, isWsp } from "./chars.js";
import type { UriParam } from "./uri.js";

export interface Via {
  /** protocol-name "/" protocol-version, e.g. "SIP/2.0". */
  protocol: string;
  /** Transport, upper-case: "UDP", "TCP", "TLS", "SCTP", "WS" ... */
  transport: string;
  /** sent-by host; an IPv6 reference keeps its brackets. */
  host: string;
  port?: number;
  /**
   * Every via-param in order, names as written. This list is what
   * formatVia writes; the named fields below are read conveniences kept in
   * step by parseVia and setViaParam.
   */
  params: UriParam[];
  branch?: string;
  received?: string;
  /** "" when the rport flag is present without a value (RFC 3581 §3). */
  rport?: string;
  maddr?: string;
  ttl?: number;
}

/**
 * Parse a Via header value, which may hold several comma-separated
 * via-parms (§7.3.1). Never throws: returns [] when any via-parm is
 * malformed, so that a caller (the message parser) rejects the whole header.
 */
export function parseVia(value: string): Via[] {
  const parts = value.indexOf(",") === -1 ? [value] : splitHeaderValues(value);
  const out: Via[] = [];
  for (const part of parts) {
    const v = parseViaParm(part);
    if (v === null) return [];
    out.push(v);
  }
  return out;
}

/** via-parm = sent-protocol LWS sent-by *( SEMI via-params ) */
function parseViaParm(s: string): Via | null {
  let end = s.length;
  while (end > 0 && isWsp(s.charCodeAt(end - 1))) end--;
  let i = skipWs(s, 0, end);

  // sent-protocol = protocol-name SLASH protocol-version SLASH transport
  const nameStart = i;
  i = skipToken(s, i, end);
  if (i === nameStart) return null;
  const protoName = s.slice(nameStart, i);
  i = skipWs(s, i, end);
  if (s.charCodeAt(i) !== 0x2f /* / */) return null;
  i = skipWs(s, i + 1, end);
  const versionStart = i;
  i = skipToken(s, i, end);
  if (i === versionStart) return null;
  const protocol = protoName + "/" + s.slice(versionStart, i);
  i = skipWs(s, i, end);
  if (s.charCodeAt(i) !== 0x2f) return null;
  i = skipWs(s, i + 1, end);
  const transportStart = i;
  i = skipToken(s, i, end);
  if (i === transportStart) return null;
  const transport = s.slice(transportStart, i).toUpperCase();

  // LWS before sent-by is mandatory
  const hostStart = skipWs(s, i, end);
  if (hostStart === i) return null;
  i = hostStart;

  // sent-by = host [ COLON port ]
  if (s.charCodeAt(i) === 0x5b /* [ */) {
    const close = s.indexOf("]", i);
    if (close === -1 || close >= end) return null;
    i = close + 1;
  } else {
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c === 0x3a || c === 0x3b || c === 0x20 || c === 0x09) break;
      i++;
    }
  }
  const host = s.slice(hostStart, i);
  if (!isHost(host)) return null;
  const via: Via = { protocol, transport, host, params: [] };
  i = skipWs(s, i, end);
  if (i < end && s.charCodeAt(i) === 0x3a) {
    i = skipWs(s, i + 1, end);
    const portStart = i;
    while (i < end && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
    const portText = s.slice(portStart, i);
    if (!isDigits(portText, 5)) return null;
    const port = Number(portText);
    if (port > 65535) return null;
    via.port = port;
  }

  // *( SEMI via-params ), SEMI = SWS ";" SWS
  for (;;) {
    i = skipWs(s, i, end);
    if (i >= end) break;
    if (s.charCodeAt(i) !== 0x3b) return null;
    i = skipWs(s, i + 1, end);
    const pnameStart = i;
    i = skipToken(s, i, end);
    if (i === pnameStart) return null;
    const param: UriParam = { name: s.slice(pnameStart, i) };
    i = skipWs(s, i, end);
    if (i < end && s.charCodeAt(i) === 0x3d) {
      i = skipWs(s, i + 1, end);
      const valueStart = i;
      i = genValueEnd(s, i, end);
      if (i <= valueStart) return null;
      param.value = s.slice(valueStart, i);
    }
    if (!applyKnownParam(via, param)) return null;
    via.params.push(param);
  }
  return via;
}

/**
 * Validate the via-params RFC 3261 §25.1 and RFC 3581 give a grammar to,
 * and copy them to the named fields. Names compare case-insensitively.
 */
function applyKnownParam(via: Via, p: UriParam): boolean {
  const name = p.name.toLowerCase();
  const v = p.value;
  switch (name) {
    case "branch": // via-branch = "branch" EQUAL token
      if (v === undefined || !isToken(v)) return false;
      via.branch = v;
      return true;
    case "received": // via-received = "received" EQUAL (IPv4address / IPv6address); a bracketed IPv6 reference is tolerated
      if (v === undefined || !(isIPv4(v) || isIPv6(v) || (v.charCodeAt(0) === 0x5b && isHost(v)))) return false;
      via.received = v;
      return true;
    case "rport": // response-port = "rport" [EQUAL 1*DIGIT] (RFC 3581 §3)
      if (v === undefined) via.rport = "";
      else if (isDigits(v, 5) && Number(v) <= 65535) via.rport = v;
      else return false;
      return true;
    case "maddr": // via-maddr = "maddr" EQUAL host
      if (v === undefined || !isHost(v)) return false;
      via.maddr = v;
      return true;
    case "ttl": // via-ttl = "ttl" EQUAL ttl; ttl = 1*3DIGIT ; 0 to 255
      if (v === undefined || !isDigits(v, 3) || Number(v) > 255) return false;
      via.ttl = Number(v);
      return true;
    default:
      return true;
  }
}

/** Text form of one via-parm: `SIP/2.0/UDP host:port;params`. */
export function formatVia(v: Via): string {
  let s = v.protocol + "/" + v.transport + " " + v.host;
  if (v.port !== undefined) s += ":" + v.port;
  for (const p of v.params) s += p.value === undefined ? ";" + p.name : ";" + p.name + "=" + p.value;
  return s;
}

/**
 * A copy of `v` with parameter `name` set to `value` (undefined = flag,
 * e.g. rport), replacing an existing one in place or appending it, and
 * with the named field updated. Used e.g. to add received/rport to a
 * received top Via (RFC 3261 §18.2.1, RFC 3581 §4).
 */
export function setViaParam(v: Via, name: string, value?: string): Via {
  const lower = name.toLowerCase();
  const param: UriParam = value === undefined ? { name } : { name, value };
  const params = v.params.slice();
  const idx = params.findIndex((p) => p.name.toLowerCase() === lower);
  if (idx === -1) params.push(param);
  else params[idx] = param;
  const copy: Via = { ...v, params };
  applyKnownParam(copy, param);
  return copy;
}

/** Value of a via-param (case-insensitive): undefined if absent, "" for a flag. */
export function viaParam(v: Via, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const p of v.params) if (p.name.toLowerCase() === want) return p.value ?? "";
  return undefined;
}

function skipWs(s: string, i: number, end: number): number {
  while (i < end && isWsp(s.charCodeAt(i))) i++;
  return i;
}

function skipToken(s: string, i: number, end: number): number {
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || (CHAR_CLASS[c]! & C_TOKEN) === 0) break;
    i++;
  }
  return i;
}

