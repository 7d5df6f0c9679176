/**
 * Everything this server writes on the wire about where a message goes and
 * which way its answers come back, for the stateless paths (forward, local
 * replies, responses no transaction claims; host/core/server.ts) and the
 * stateful proxy (host/proxy/proxy.ts) alike:
 *
 *  - our Via of a request we send on (RFC 3261 §16.6 step 8, §18.1.1), and
 *    the branch a stateless proxy derives (§16.11);
 *  - the received top Via stamped with received/rport (§18.2.1, RFC 3581 §4);
 *  - where a response to a received request goes (§18.2.2, RFC 3581 §4), and
 *    which Vias are ours (§16.7 step 3);
 *  - a response generated here (§8.2.6.2), a received response relayed
 *    upstream (§16.7 step 9, §16.11), a request forwarded (§16.6).
 */
import { hash } from "node:crypto";
import { isIP } from "node:net";
import { asTransportProto, type ListenSocket, type ReceiveInfo, type TransportProto } from "./context.js";
import { insertedAfterOf, insertedBeforeOf, replacedOf, type Header, type MessageEdits, type SipMessage } from "../sip/message.js";
import { allVias, topVia } from "../sip/parser.js";
import { buildResponse, serializeMessage } from "../sip/serialize.js";
import { canonicalHeaderKey } from "../sip/headers.js";
import { headerParam, parseNameAddr } from "../sip/nameaddr.js";
import { parseUri, uriParam, uriTransport } from "../sip/uri.js";
import type { Via } from "../sip/via.js";
import type { HopQuery } from "../dns/rfc3263.js";
import { formatVia, parseVia, setViaParam, viaParam } from "../sip/via.js";
import { formatHostPort, isWildcardIp, sameIp, unbracket } from "../transport/listen-socket.js";

/** Magic cookie of RFC 3261 §8.1.1.7 branches. */
const BRANCH_COOKIE = "z9hG4bK";

/**
 * Our Via parameter carrying the id of the TCP connection a request came
 * in on, so that a response can go back on it (§18.2.2) without
 * transaction state; read back by tcpConnectionOf.
 */
const TCP_CONNECTION_VIA_PARAM = "i";

/** A destination before name resolution: `host` may be a host name or an (unbracketed) IP literal. */
export interface Destination {
  readonly proto: TransportProto;
  readonly host: string;
  readonly port: number;
  /** TCP: the connection to try first. */
  readonly connectionId?: number;
}

/** The local socket a message was received on (answers leave from it). */
export function localSocketOf(rcv: ReceiveInfo): ListenSocket {
  return { proto: rcv.proto, ip: rcv.localIp, port: rcv.localPort };
}

// ------------------------------------------------------------ next hops

/** Where a request goes: the next hop, before name resolution. */
export interface NextHop {
  readonly proto: TransportProto;
  /** Host name or unbracketed IP literal. */
  readonly host: string;
  readonly port: number;
  /**
   * For a host name: what RFC 3263 §4 starts from (the port and transport
   * as written); host/dns/ turns it into targets, which replace the
   * presumed proto and port above.
   */
  readonly query?: HopQuery;
}

/**
 * The next hop of a target URI ($du, else the Request-URI): maddr, else
 * the host; the port written, else 5060; the transport parameter, else UDP.
 * For a host name these are presumptions and `query` says what was
 * written, for RFC 3263 resolution. `proto` overrides the transport
 * (t_relay_to_proto). Returns an error text when the URI cannot be routed
 * here.
 */
export function nextHopOf(target: string, proto?: TransportProto): NextHop | string {
  const uri = parseUri(target);
  if (uri === null || uri.scheme === "tel") return `cannot route to "${target}"`;
  const transport = proto ?? asTransportProto(uriTransport(uri));
  if (transport === undefined) return `transport ${uriTransport(uri)} of ${target} is not supported`;
  const maddr = uriParam(uri, "maddr");
  const host = unbracket(maddr !== undefined && maddr !== "" ? maddr : uri.host);
  if (isIP(host) !== 0) return { proto: transport, host, port: uri.port ?? 5060 };
  const written = proto ?? (uriParam(uri, "transport") !== undefined ? transport : undefined);
  const query: HopQuery = { host, secure: uri.scheme === "sips", ...(uri.port !== undefined ? { port: uri.port } : {}), ...(written !== undefined ? { transport: written } : {}) };
  return { proto: transport, host, port: uri.port ?? 5060, query };
}

// ------------------------------------------------------------ our Via

/** sent-by of our Via for a socket: its address, or for a wildcard socket (no address for a peer to answer to) the first alias. */
export function viaSentBy(socket: ListenSocket, aliases: readonly string[]): string {
  if (!isWildcardIp(socket.ip)) return formatHostPort(socket.ip, socket.port);
  const alias = aliases[0];
  return alias ? `${alias.replace(/:\d+$/, "")}:${socket.port}` : formatHostPort(socket.ip, socket.port);
}

/** sent-by with the script's advertised address and/or port (Kamailio's set_advertised_*), each falling back to the socket's. */
function advertisedSentBy(socket: ListenSocket, aliases: readonly string[], address: string | undefined, port: string | undefined): string {
  const own = splitHostPort(viaSentBy(socket, aliases));
  const host = address ?? own.host;
  // An IPv6 literal is written in brackets (RFC 3261 §25.1 host).
  const hostText = isIP(host) === 6 ? `[${host}]` : host;
  return `${hostText}:${port ?? own.port ?? socket.port}`;
}

export interface OurViaOptions {
  /** The socket the request leaves by. */
  readonly socket: ListenSocket;
  readonly aliases: readonly string[];
  readonly branch: string;
  /** RFC 3581 §3: ask the next hop to answer to the source port (KSR.add_local_rport). */
  readonly rport: boolean;
  /** Further via-params, each written ";name=value" (e.g. the tenant's, host/core/tenant-routing.ts). */
  readonly params?: string;
  /** The request as it came in: over TCP its connection id is written down (see TCP_CONNECTION_VIA_PARAM). */
  readonly inbound: ReceiveInfo;
  /** KSR.set_advertised_address / set_advertised_port: written as sent-by instead of the socket's own. */
  readonly advertisedAddress?: string;
  readonly advertisedPort?: string;
}

/** The Via line (with CRLF) this server puts on top of a request it sends on (RFC 3261 §16.6 step 8). */
export function ourViaLine(o: OurViaOptions): string {
  const sentBy =
    o.advertisedAddress === undefined && o.advertisedPort === undefined
      ? viaSentBy(o.socket, o.aliases)
      : advertisedSentBy(o.socket, o.aliases, o.advertisedAddress, o.advertisedPort);
  let via = `Via: SIP/2.0/${o.socket.proto.toUpperCase()} ${sentBy};branch=${o.branch}`;
  if (o.rport) via += ";rport";
  if (o.params !== undefined) via += o.params;
  if (o.inbound.proto !== "udp" && o.inbound.connectionId >= 0) via += `;${TCP_CONNECTION_VIA_PARAM}=${o.inbound.connectionId}`;
  return via + "\r\n";
}

/**
 * RFC 3261 §16.11: a stateless proxy derives the branch from the incoming
 * request so that a retransmission (and the CANCEL or non-2xx ACK of an
 * INVITE, which share its branch) is forwarded with the same branch, and
 * mixes in the destination so that different targets get different ones.
 * Without an RFC 3261 branch the §17.2.3 matching fields stand in.
 * `requestUri` is the Request-URI the copy is sent with.
 */
export function statelessBranch(msg: SipMessage, requestUri: string, target: string): string {
  const incoming = topVia(msg);
  let input: string;
  if (incoming?.branch?.startsWith(BRANCH_COOKIE)) {
    input = incoming.branch;
  } else {
    const from = msg.headers.find((h) => h.key === "from")?.value ?? "";
    const to = msg.headers.find((h) => h.key === "to")?.value ?? "";
    input = `${msg.callId}\n${msg.cseq.seq}\n${from}\n${to}\n${incoming ? formatVia(incoming) : ""}\n${msg.requestUri}`;
  }
  // One-shot hash(): a quarter of createHash's cost per forwarded request.
  return BRANCH_COOKIE + "sl" + hash("sha1", `${input}\n${requestUri}\n${target}`, "hex").slice(0, 24);
}

/**
 * True when a Via's sent-by names one of our listen sockets or aliases
 * (RFC 3261 §16.7 step 3: a proxy removes the top Via of a response only
 * after checking it is its own; §18.1.2 for a client). A Via without a port
 * means 5060. A wildcard listen address matches any host on its port.
 */
export function isOwnVia(via: Via, listen: readonly ListenSocket[], aliases: readonly string[]): boolean {
  const proto = viaTransport(via);
  const host = unbracket(via.host);
  const port = via.port ?? 5060;
  for (const s of listen) {
    if (s.port !== port) continue;
    if (proto !== undefined && s.proto !== proto) continue;
    if (isWildcardIp(s.ip) || (isIP(host) !== 0 && sameIp(host, s.ip))) return true;
  }
  for (const alias of aliases) {
    const { host: aliasHost, port: aliasPort } = splitHostPort(alias);
    if (aliasHost.toLowerCase() !== host.toLowerCase()) continue;
    if (aliasPort === undefined ? listen.some((s) => s.port === port) : aliasPort === port) return true;
  }
  return false;
}

/** Split `host[:port]` (IPv6 bracketed); the host comes back unbracketed. */
function splitHostPort(text: string): { host: string; port?: number } {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    const host = text.slice(1, close < 0 ? undefined : close);
    const rest = close < 0 ? "" : text.slice(close + 1);
    return rest.startsWith(":") ? { host, port: Number(rest.slice(1)) } : { host };
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0 || text.indexOf(":") !== colon) return { host: text };
  return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

// ------------------------------------------------------------ received Via

/** Lowercase transport of a Via, or undefined when we cannot send over it (SCTP ...). */
export function viaTransport(via: Via): TransportProto | undefined {
  return asTransportProto(via.transport);
}

/**
 * The top Via of a received request as a server stamps it (RFC 3261
 * §18.2.1): `received=<source ip>` when sent-by is not the source address;
 * with RFC 3581 §4 (rport flag present, or forced by the script) also
 * `rport=<source port>`, and then received is added even when equal.
 * Returns `via` itself when nothing is added.
 */
export function stampReceivedVia(via: Via, rcv: ReceiveInfo, forceRport: boolean): Via {
  let out = via;
  const wantsRport = via.rport === "" || forceRport;
  if (wantsRport || !sameIp(unbracket(via.host), rcv.srcIp)) {
    out = setViaParam(out, "received", rcv.srcIp);
  }
  if (wantsRport) out = setViaParam(out, "rport", String(rcv.srcPort));
  return out;
}

/**
 * The first Via header field of a received request with its top value
 * stamped (§18.2.1), as a header line, or undefined when stamping added
 * nothing. A request is forwarded with it so that the response can find
 * its way back (through NAT) without state.
 */
export function stampedTopViaLine(msg: SipMessage, rcv: ReceiveInfo, forceRport: boolean): string | undefined {
  const top = topVia(msg);
  if (top === undefined) return undefined;
  const stamped = stampReceivedVia(top, rcv, forceRport);
  if (stamped === top) return undefined;
  const field = msg.headers[firstViaIndex(msg)]!;
  const values = field.value.includes(",") ? parseVia(field.value) : [top];
  let line = `${field.name}: ${formatVia(stamped)}`;
  for (let i = 1; i < values.length; i++) line += ", " + formatVia(values[i]!);
  return line + "\r\n";
}

function firstViaIndex(msg: SipMessage): number {
  const headers = msg.headers;
  for (let i = 0; i < headers.length; i++) if (headers[i]!.key === "via") return i;
  return -1;
}

// ------------------------------------------------------------ answering a request

/**
 * Where a response goes given the Via it is addressed by (the top Via of
 * the request, as stamped on receipt), per RFC 3261 §18.2.2 and RFC 3581
 * §4:
 *  1. reliable transport: the connection the request came on
 *     (`connectionId`), falling back to received (or sent-by) host and the
 *     sent-by port;
 *  2. maddr: that address, sent-by port (default 5060);
 *  3. rport with a value: received ip and that port;
 *  4. received: that ip, sent-by port;
 *  5. else sent-by host and port.
 * The transport is the Via's, or `arrivedOver` for the responses to a
 * request received here: they go back over the transport the request came
 * on, whatever its Via names (a UDP datagram whose Via says TCP or TLS is
 * answered over UDP; RFC 4475 §3.1.2.11's bext01 names TLS), as Kamailio
 * answers on the receiving socket. Returns undefined when the transport is
 * not one we have.
 */
export function responseDestination(via: Via, connectionId?: number, arrivedOver?: TransportProto): Destination | undefined {
  const proto = arrivedOver ?? viaTransport(via);
  if (!proto) return undefined;
  const sentByPort = via.port ?? 5060;
  const receivedHost = via.received !== undefined ? unbracket(via.received) : undefined;
  if (proto !== "udp") {
    const host = receivedHost ?? unbracket(via.host);
    // With rport the source port is where the client's connection is; a new
    // connection still goes to the sent-by port, where it listens.
    return { proto, host, port: sentByPort, connectionId };
  }
  if (via.maddr !== undefined) return { proto, host: unbracket(via.maddr), port: sentByPort };
  if (via.rport !== undefined && via.rport !== "") {
    return { proto, host: receivedHost ?? unbracket(via.host), port: Number(via.rport) };
  }
  if (receivedHost !== undefined) return { proto, host: receivedHost, port: sentByPort };
  return { proto, host: unbracket(via.host), port: sentByPort };
}

/** Where the responses to a received request go, and the Via lines they carry. */
export interface Upstream {
  readonly dest: Destination;
  /** The local socket the request came in on (responses leave from it). */
  readonly socket: ListenSocket;
  /** The response's Via lines: the request's, top one stamped with received/rport (§18.2.1, RFC 3581). */
  readonly viaLines: readonly string[];
}

/** Why a request cannot be answered: it has no usable Via, or its top Via's transport is not one we have. */
export type NoUpstream = { readonly reason: "no-via" } | { readonly reason: "transport"; readonly transport: string };

/**
 * §18.2.2 addressing for the responses to a request: a parsed request, or
 * the header fields the parser could split of a malformed one.
 */
export function upstreamOf(request: SipMessage | readonly Header[], rcv: ReceiveInfo, forceRport: boolean): Upstream | NoUpstream {
  const parsed = !isHeaderList(request);
  const headers = parsed ? request.headers : request;
  let first: Header | undefined;
  for (const h of headers) {
    if (h.key === "via") {
      first = h;
      break;
    }
  }
  if (first === undefined) return { reason: "no-via" };
  // A parsed request's Vias are parsed already; a field of one value needs no second parse.
  const firstVias = parsed && !first.value.includes(",") ? allVias(request).slice(0, 1) : parseVia(first.value);
  const top = firstVias[0];
  if (top === undefined) return { reason: "no-via" };
  const stamped = stampReceivedVia(top, rcv, forceRport);
  const dest = responseDestination(stamped, rcv.connectionId, rcv.proto);
  if (dest === undefined) return { reason: "transport", transport: stamped.transport };
  return { dest, socket: localSocketOf(rcv), viaLines: responseViaLines(headers, first, firstVias, stamped) };
}

/**
 * Where to answer a malformed request whose Via fields are present but do
 * not parse (RFC 4475 §3.1.2.1 badinv01: "Via: SIP/2.0/UDP
 * 192.0.2.15;;,;,,", which should get a 400): the source address and port,
 * over the transport it came on, with the Via fields copied as received.
 * Undefined when the request has no Via field at all.
 */
export function sourceUpstream(headers: readonly Header[], rcv: ReceiveInfo): Upstream | undefined {
  const viaLines: string[] = [];
  for (const h of headers) if (h.key === "via") viaLines.push(withCrlf(h.raw));
  if (viaLines.length === 0) return undefined;
  const connectionId = rcv.connectionId >= 0 ? rcv.connectionId : undefined;
  return { dest: { proto: rcv.proto, host: rcv.srcIp, port: rcv.srcPort, connectionId }, socket: localSocketOf(rcv), viaLines };
}

function isHeaderList(request: SipMessage | readonly Header[]): request is readonly Header[] {
  return Array.isArray(request);
}

export function isUpstream(u: Upstream | NoUpstream): u is Upstream {
  return (u as Upstream).dest !== undefined;
}

/**
 * The Via lines of a response: the stamped top via-parm, the rest of the
 * first Via header field's values, then every other Via field unchanged
 * (§8.2.6.2 copies them all in order). Each line ends in CRLF.
 */
function responseViaLines(headers: readonly Header[], first: Header, firstFieldVias: readonly Via[], stampedTop: Via): string[] {
  const lines = [`Via: ${formatVia(stampedTop)}\r\n`];
  for (let i = 1; i < firstFieldVias.length; i++) lines.push(`Via: ${formatVia(firstFieldVias[i]!)}\r\n`);
  for (const h of headers) if (h.key === "via" && h !== first) lines.push(withCrlf(h.raw));
  return lines;
}

/**
 * A reason phrase made from a parser error text: printable characters only
 * (no CR/LF can reach the status line, RFC 3261 §25.1 Reason-Phrase) and at
 * most 120 of them.
 */
export function reasonFromError(error: string): string {
  const clean = error.replace(/[^\x20-\x7e]+/g, " ").trim().slice(0, 120);
  return clean === "" ? "Bad Request" : clean;
}

/** A reason phrase safe for a status line: no CR/LF can reach it (RFC 3261 §25.1 Reason-Phrase). */
export function safeReasonPhrase(reason: string): string {
  return reason.replace(/[\r\n]+/g, " ");
}

/**
 * A response generated here for `request` (§8.2.6.2; a proxy answering
 * itself, §16.7 step 6 / §16.8 408): every Via of the request (top one
 * stamped), From, To with our tag (§8.2.6.2: not on a 100), Call-ID, CSeq,
 * then `extraHeaders`. `reason` must be safe (safeReasonPhrase).
 */
export function buildLocalResponse(
  request: SipMessage,
  upstream: Upstream,
  status: number,
  reason: string,
  toTag: string | undefined,
  extraHeaders: readonly string[] = [],
): string {
  return buildResponse(request, status, reason, {
    toTag,
    extraHeaders: extraHeaders.length > 0 ? extraHeaders : undefined,
    viaOverride: upstream.viaLines,
  });
}

/**
 * A 400 (or 505) response to a request that failed to parse, built from the
 * header fields that parsed (§8.2.6.2: Via, From, To, Call-ID and CSeq are
 * copied; the To gets a tag when it has none).
 */
export function buildMalformedReply(headers: readonly Header[], upstream: Upstream, status: number, reason: string, toTag: string): string {
  let out = `SIP/2.0 ${status} ${reason}\r\n` + upstream.viaLines.join("");
  for (const key of ["from", "to", "call-id", "cseq"]) {
    const h = headers.find((x) => x.key === key);
    if (!h) continue;
    if (key === "to" && !hasTag(h.value)) {
      out += `To: ${h.value};tag=${toTag}\r\n`;
    } else {
      out += withCrlf(h.raw);
    }
  }
  return out + "Content-Length: 0\r\n\r\n";
}

/** True when a To (or From) value carries a tag parameter. */
function hasTag(value: string): boolean {
  const na = parseNameAddr(value);
  return na !== null && headerParam(na, "tag") !== undefined;
}

function withCrlf(raw: string): string {
  return raw.endsWith("\r\n") ? raw : raw.replace(/[\r\n]*$/, "") + "\r\n";
}

// ------------------------------------------------------------ relaying a response

/** The Vias of a received response that say where it goes next. */
export interface ResponseVias {
  /** Index of the first Via header field. */
  readonly firstIndex: number;
  /** The top Via (ours, if the request went through us). */
  readonly top: Via;
  /** The Via after it: where the response goes next (§18.2.2), if any. */
  readonly next: Via | undefined;
}

/** The top two Vias of a response; undefined when it has no usable Via. */
export function responseVias(msg: SipMessage): ResponseVias | undefined {
  const vias = allVias(msg);
  const top = vias[0];
  if (top === undefined) return undefined;
  return { firstIndex: firstViaIndex(msg), top, next: vias[1] };
}

/** The TCP connection id our Via names (see ourViaLine), if any. */
export function tcpConnectionOf(ourVia: Via): number | undefined {
  const id = Number(viaParam(ourVia, TCP_CONNECTION_VIA_PARAM) ?? NaN);
  return Number.isInteger(id) ? id : undefined;
}

/**
 * A received response as relayed upstream (§16.7 step 9, §16.11): the
 * topmost Via value (ours) removed unless a reply route replaced that field
 * itself, the routes' edits applied, extra header lines appended,
 * Content-Length written for a stream.
 */
export function relayedResponseText(
  response: SipMessage,
  edits: MessageEdits | undefined,
  stream: boolean,
  extraHeaders: readonly string[] = [],
): string {
  const firstVia = firstViaIndex(response);
  let replaced: ReadonlyMap<number, string> = edits === undefined ? EMPTY_EDITS.replaced : replacedOf(edits);
  if (firstVia >= 0 && !replaced.has(firstVia)) {
    const field = response.headers[firstVia]!;
    // Usually one value per field: the field goes, nothing to parse.
    let rest = "";
    if (field.value.includes(",")) {
      const vias = parseVia(field.value);
      if (vias.length > 1) rest = `Via: ${vias.slice(1).map(formatVia).join(", ")}\r\n`;
    }
    const withoutOurVia = new Map(replaced);
    withoutOurVia.set(firstVia, rest);
    replaced = withoutOurVia;
  }
  const base = edits ?? EMPTY_EDITS;
  const out: MessageEdits = {
    replaced: replaced as Map<number, string>,
    insertedBefore: insertedBeforeOf(base) as Map<number, string[]>,
    insertedAfter: insertedAfterOf(base) as Map<number, string[]>,
    prepended: base.prepended,
    appended: extraHeaders.length > 0 ? [...base.appended, ...extraHeaders] : base.appended,
    ...(base.body !== undefined ? { body: base.body } : {}),
  };
  return serializeMessage(response, out, { stream });
}

const EMPTY_EDITS: MessageEdits = {
  replaced: new Map(),
  insertedBefore: new Map(),
  insertedAfter: new Map(),
  prepended: [],
  appended: [],
};

// ------------------------------------------------------------ forwarding a request

/** What a forwarded copy of a request is made of (§16.6 steps 1-8). */
export interface ForwardedRequestParts {
  readonly msg: SipMessage;
  readonly rcv: ReceiveInfo;
  /** The route's edits (request route, branch route); left as they are. */
  readonly edits: MessageEdits;
  /** §16.6 step 2: the Request-URI of the copy; undefined keeps the received one. */
  readonly requestUri: string | undefined;
  /** Our Via line (ourViaLine), §16.6 step 8. */
  readonly viaLine: string;
  /** Stamp the received top Via with rport even without the flag (KSR.force_rport). */
  readonly forceRport: boolean;
  /** Record-Route lines (with CRLF) to insert, §16.6 step 4. */
  readonly recordRoute: readonly string[];
  /**
   * §16.6 step 3: decrement Max-Forwards (or add 70) unless the route set it.
   * Kamailio's stateless forward() leaves it to the script (KSR.maxfwd).
   */
  readonly decrementMaxForwards: boolean;
  readonly stream: boolean;
}

/**
 * The wire text of a forwarded request: the original with the route's
 * edits, the Request-URI of the copy, Max-Forwards as the parts say, the
 * received top Via stamped (§18.2.1) unless the route replaced it, the
 * Record-Route lines above any received Record-Route (else after the last
 * Via: header order only matters among fields of the same name, §7.3.1),
 * and our Via directly above the received ones, after anything the route
 * inserted there. The route's edit set is not changed (the script may
 * forward again); only the maps and lists this adds to are copied.
 */
export function buildForwardedRequest(p: ForwardedRequestParts): string {
  const { msg, edits } = p;
  const headers = msg.headers;
  const firstVia = firstViaIndex(msg);
  // The route's maps, read without making them; each is copied before this adds to it.
  const routeReplaced = replacedOf(edits) as Map<number, string>;
  const routeInsertedBefore = insertedBeforeOf(edits) as Map<number, string[]>;
  let replaced = routeReplaced;
  const replace = (index: number, line: string): void => {
    if (replaced === routeReplaced) replaced = new Map(replaced);
    replaced.set(index, line);
  };
  let prepended = edits.prepended;
  let insertedAfter = insertedAfterOf(edits) as Map<number, string[]>;
  let insertedBefore = routeInsertedBefore;
  if (p.decrementMaxForwards && !editsTouchMaxForwards(msg, edits)) {
    const index = headers.findIndex((h) => h.key === "max-forwards");
    if (index < 0) {
      prepended = [...prepended, "Max-Forwards: 70\r\n"];
    } else {
      const h = headers[index]!;
      const value = /^\d{1,10}$/.test(h.value.trim()) ? Number(h.value.trim()) : NaN;
      // A value of 0 must have been refused with 483 by the route (§16.3
      // step 2); it is passed on unchanged rather than made negative.
      if (Number.isFinite(value) && value > 0) replace(index, `${h.name}: ${value - 1}\r\n`);
    }
  }
  if (firstVia >= 0 && !routeReplaced.has(firstVia)) {
    const stamped = stampedTopViaLine(msg, p.rcv, p.forceRport);
    if (stamped !== undefined) replace(firstVia, stamped);
  }
  if (p.recordRoute.length > 0) {
    const firstRr = headers.findIndex((h) => h.key === "record-route");
    if (firstRr < 0 && firstVia >= 0) {
      let lastVia = firstVia;
      for (let i = firstVia + 1; i < headers.length; i++) if (headers[i]!.key === "via") lastVia = i;
      insertedAfter = new Map(insertedAfter);
      insertedAfter.set(lastVia, [...(insertedAfter.get(lastVia) ?? []), ...p.recordRoute]);
    } else {
      const at = firstRr >= 0 ? firstRr : 0;
      insertedBefore = new Map(insertedBefore);
      insertedBefore.set(at, [...p.recordRoute, ...(insertedBefore.get(at) ?? [])]);
    }
  }
  if (firstVia >= 0) {
    if (insertedBefore === routeInsertedBefore) insertedBefore = new Map(insertedBefore);
    insertedBefore.set(firstVia, [...(insertedBefore.get(firstVia) ?? []), p.viaLine]);
  } else {
    prepended = [p.viaLine, ...prepended];
  }
  const out: MessageEdits = {
    replaced,
    insertedBefore,
    insertedAfter,
    prepended,
    appended: edits.appended,
    ...(edits.body !== undefined ? { body: edits.body } : {}),
  };
  return serializeMessage(msg, out, { requestUri: p.requestUri, stream: p.stream });
}

function lineIsHeader(line: string, key: string): boolean {
  const colon = line.indexOf(":");
  return colon > 0 && canonicalHeaderKey(line.slice(0, colon).trim()) === key;
}

/** Whether the route's edits already set Max-Forwards (KSR.maxfwd.process_maxfwd, hdr functions). */
function editsTouchMaxForwards(msg: SipMessage, edits: MessageEdits): boolean {
  const replaced = replacedOf(edits);
  if (replaced.size > 0) {
    for (let i = 0; i < msg.headers.length; i++) {
      if (msg.headers[i]!.key === "max-forwards" && replaced.has(i)) return true;
    }
  }
  const touches = (lines: readonly string[]): boolean => lines.some((l) => lineIsHeader(l, "max-forwards"));
  if (touches(edits.prepended) || touches(edits.appended)) return true;
  for (const lines of insertedBeforeOf(edits).values()) if (touches(lines)) return true;
  for (const lines of insertedAfterOf(edits).values()) if (touches(lines)) return true;
  return false;
}
