/**
 * Record-Route for requests this proxy forwards (RFC 3261 §16.6 step 4,
 * RFC 5658 double Record-Route), with the header text Kamailio's rr module
 * produces.
 *
 * The KSR.rr functions (host/modules/rr.ts) only record *that* a
 * Record-Route was asked for and with which parameters; the header itself
 * depends on the socket each branch leaves by, so the forwarder renders it
 * per outgoing request with {@link renderRecordRoute} — the equivalent of
 * Kamailio's conditional lumps that are resolved when a branch is built.
 *
 * Header shapes (module defaults of Kamailio 5.6: append_fromtag=1,
 * enable_double_rr=1, enable_full_lr=0, add_username=0):
 *
 *   record_route():     Record-Route: <sip:ADDR[;r2=on];lr;ftag=TAG PARAMS>
 *   advertised address: Record-Route: <sip:ADV[;transport=P][;r2=on];ftag=TAG;lr PARAMS>
 *   preset:             Record-Route: <sip:PRESET;ftag=TAG PARAMS;lr LATER>
 *
 * where ADDR is the socket address as Kamailio prints it: IPv6 in brackets,
 * the port left out when it is 5060, `;transport=tcp` for TCP and nothing
 * for UDP (the URI defaults, RFC 3261 §19.1.2). The scheme is sips when the
 * Request-URI was sips at the time of the call.
 *
 * Double Record-Route (RFC 5658 §4): when the request leaves by another
 * socket than the one it arrived on (transport, address or port differ), two
 * headers are inserted, the outbound-side one first and the inbound-side one
 * second, both marked `;r2=on` so that loose_route() removes the pair at
 * once. Each side names its own socket, so that a request of the dialog in
 * either direction reaches the interface facing its sender.
 */
import type { MessageContext, TransportProto } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import { peekSendOptions } from "../modules/sendopts.js";
import { isWildcardIp, normalizeIp, sameIp } from "../transport/listen-socket.js";
import { firstContactUri, parseUriCached } from "../modules/msgutil.js";
import { allVias } from "../sip/parser.js";
import { uriParam } from "../sip/uri.js";
import { encodeFlowToken } from "./flow-token.js";

/** A local socket as the forwarder knows it. */
export interface RecordRouteSocket {
  readonly proto: TransportProto;
  readonly ip: string;
  readonly port: number;
}

/** What the Record-Route URI host part is made of. */
export type RecordRouteAddress =
  /** record_route(): the address of the socket on each side. */
  | { readonly kind: "socket" }
  /** record_route_advertised_address(addr): the given "host[:port]" on both sides. */
  | { readonly kind: "advertised"; readonly address: string }
  /** record_route_preset(addr1[, addr2]): the given texts, verbatim, one header each. */
  | { readonly kind: "preset"; readonly first: string; readonly second: string | undefined };

export interface RecordRouteRequest {
  readonly address: RecordRouteAddress;
  readonly scheme: "sip" | "sips";
  /** Value of the ftag parameter; undefined or "" adds none. */
  readonly fromTag: string | undefined;
  /** URI parameters given with the call (record_route_params), ";name=value" form. */
  readonly params: string;
}

/**
 * Kamailio's buffer for add_rr_param() calls made before record_route()
 * holds 512 bytes; a call that would overflow it fails.
 */
export const PENDING_RR_PARAMS_LIMIT = 512;

interface RecordRouteState {
  /** The Record-Route asked for, with the parameters known at that time. */
  request: (RecordRouteRequest & { readonly pendingParams: string }) | undefined;
  /** add_rr_param() calls made after the Record-Route was asked for. */
  laterParams: string;
  /** add_rr_param() calls waiting for a record_route*() call. */
  pendingParams: string;
  /**
   * Kamailio's FL_RR_ADDED message flag: a second record_route*() is refused.
   * Like in Kamailio 5.6, remove_record_route() does not clear it.
   */
  added: boolean;
}

/** A branch and the failure route work on the request as its request route left it: each gets its own copy. */
const states = new ContextSlot<RecordRouteState>("rr.recordRoute", { carry: { branch: (s) => ({ ...s }), failure: (s) => ({ ...s }) } });

function stateOf(ctx: MessageContext): RecordRouteState {
  let s = states.get(ctx);
  if (s === undefined) {
    s = { request: undefined, laterParams: "", pendingParams: "", added: false };
    states.set(ctx, s);
  }
  return s;
}

/** True when a record_route*() call already succeeded for this request (outside branch routes). */
export function isRecordRouteAdded(ctx: MessageContext): boolean {
  return states.get(ctx)?.added ?? false;
}

/** True when the forwarded request will carry Record-Route header(s). */
export function hasRecordRoute(ctx: MessageContext): boolean {
  return states.get(ctx)?.request !== undefined;
}

/**
 * Ask for Record-Route on ctx's request. Parameters added earlier with
 * add_rr_param() are taken into it. `markAdded` is false in a branch route,
 * where Kamailio does not set FL_RR_ADDED (each branch may record-route).
 */
export function setRecordRoute(ctx: MessageContext, request: RecordRouteRequest, markAdded: boolean): void {
  const s = stateOf(ctx);
  s.request = { ...request, pendingParams: s.pendingParams };
  s.pendingParams = "";
  s.laterParams = "";
  if (markAdded) s.added = true;
}

/**
 * add_rr_param(): before a Record-Route is asked for, the parameter waits
 * (up to {@link PENDING_RR_PARAMS_LIMIT} bytes); after, it is appended to
 * the header(s) already asked for. Returns Kamailio's code: 1 stored, -1 not.
 *
 * After a one-address record_route_preset the parameter is added but -1 is
 * returned, as in Kamailio, whose add_rr_param() looks for the second header
 * that double record-routing would have inserted and reports its absence.
 */
export function addRecordRouteParam(ctx: MessageContext, param: string): 1 | -1 {
  const s = stateOf(ctx);
  if (s.request !== undefined) {
    s.laterParams += param;
    const address = s.request.address;
    return address.kind === "preset" && address.second === undefined ? -1 : 1;
  }
  if (s.pendingParams.length + param.length > PENDING_RR_PARAMS_LIMIT) return -1;
  s.pendingParams += param;
  return 1;
}

/** remove_record_route(): drop the Record-Route asked for (the FL_RR_ADDED flag stays, as in Kamailio). */
export function removeRecordRoute(ctx: MessageContext): void {
  const s = states.get(ctx);
  if (s === undefined) return;
  s.request = undefined;
  s.laterParams = "";
}

/**
 * The Record-Route header line(s), each ending in CRLF, to insert before the
 * first header of the request forwarded from ctx (Kamailio puts them there,
 * above every other header, so they precede any received Record-Route as
 * RFC 3261 §16.6 step 4 requires). `out` is the local socket the request is
 * sent from, `inbound` the one it was received on. Returns [] when the
 * script did not ask for Record-Route.
 *
 * set_advertised_address()/set_advertised_port() replace the address/port
 * of the outbound-side header only, as Kamailio applies them to the sending
 * socket's substitution.
 */
export function renderRecordRoute(ctx: MessageContext, out: RecordRouteSocket, inbound: RecordRouteSocket): string[] {
  const s = states.get(ctx);
  const request = s?.request;
  if (s === undefined || request === undefined) return [];
  const tag = request.fromTag !== undefined && request.fromTag !== "" ? `;ftag=${request.fromTag}` : "";
  // RFC 5626 §5.3: as the edge proxy of a UA using outbound, our Record-Route names its flow.
  const flow = usesOutbound(ctx) ? `${encodeFlowToken(ctx.rcv)}@` : "";
  const prefix = `Record-Route: <${request.scheme}:${flow}`;
  const address = request.address;

  if (address.kind === "preset") {
    const header = (text: string): string =>
      `${prefix}${text}${tag}${request.pendingParams};lr${s.laterParams}>\r\n`;
    const lines = [header(address.first)];
    if (address.second !== undefined) lines.push(header(address.second));
    return lines;
  }

  if (address.kind === "advertised") {
    // Kamailio doubles an advertised-address Record-Route only when the
    // transport changes; the address is the same on both sides. ";r2=on"
    // goes with the pair only: Kamailio 5.6 also puts it on a single header
    // when the sockets' addresses differ, which would make loose_route()
    // take the next hop's Route value for our second one.
    const double = out.proto !== inbound.proto;
    const params = `${tag};lr${request.params}${request.pendingParams}${s.laterParams}`;
    const header = (proto: TransportProto): string =>
      `${prefix}${address.address}${double ? `;transport=${proto};r2=on` : ""}${params}>\r\n`;
    return double ? [header(out.proto), header(inbound.proto)] : [header(inbound.proto)];
  }

  const double = !sameSocket(out, inbound);
  const params = `${double ? ";r2=on" : ""};lr${tag}${request.params}${request.pendingParams}${s.laterParams}`;
  const inboundLine = `${prefix}${socketUriPart(ctx, inbound, undefined, undefined)}${params}>\r\n`;
  if (!double) return [inboundLine];
  const send = peekSendOptions(ctx);
  const outboundLine = `${prefix}${socketUriPart(ctx, out, send?.advertisedAddress, send?.advertisedPort)}${params}>\r\n`;
  return [outboundLine, inboundLine];
}

/**
 * Whether the request comes from a user agent using outbound with this
 * proxy as its edge proxy (RFC 5626 §5.3, as Kamailio's outbound module
 * decides for rr): an initial request (no To tag) straight from the UA (one
 * Via) whose Contact URI has the ";ob" parameter (§4.2.1, §5.3). Its
 * Record-Route then carries the flow token (flow-token.ts).
 */
export function usesOutbound(ctx: MessageContext): boolean {
  if (!ctx.isRequest || allVias(ctx.msg).length !== 1) return false;
  const to = ctx.msg.headers.find((h) => h.key === "to")?.value ?? "";
  if (/;\s*tag\s*=/i.test(to)) return false;
  const contact = firstContactUri(ctx.msg);
  const u = contact === null ? null : parseUriCached(contact);
  return u !== null && u.scheme !== "tel" && uriParam(u, "ob") !== undefined;
}

/**
 * Kamailio compares the receiving and the sending socket. Here a socket is
 * known by its address, and a TCP connection reports the concrete local
 * address while the socket it belongs to may be bound to the wildcard: a
 * wildcard address therefore matches any address.
 */
function sameSocket(a: RecordRouteSocket, b: RecordRouteSocket): boolean {
  if (a.proto !== b.proto || a.port !== b.port) return false;
  return sameIp(a.ip, b.ip) || isWildcardIp(normalizeIp(a.ip)) || isWildcardIp(normalizeIp(b.ip));
}

/**
 * `host[:port][;transport=tcp]` for a socket, as Kamailio's SUBST_*_ALL
 * prints it. A socket bound to a wildcard address has no address a peer
 * could use, so the first alias names it (as the Via this server adds).
 */
function socketUriPart(
  ctx: MessageContext,
  socket: RecordRouteSocket,
  advertisedAddress: string | undefined,
  advertisedPort: string | undefined,
): string {
  // normalizeIp: a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
  let host = advertisedAddress ?? normalizeIp(socket.ip);
  if (advertisedAddress === undefined && isWildcardIp(host)) {
    const alias = ctx.host.aliases[0];
    if (alias !== undefined) host = aliasHost(alias);
  }
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  let text = host;
  if (advertisedPort !== undefined) text += `:${advertisedPort}`;
  else if (socket.port !== 5060) text += `:${socket.port}`;
  if (socket.proto !== "udp") text += `;transport=${socket.proto}`;
  return text;
}

/** The host of an alias written "[proto:]host[:port]". */
function aliasHost(alias: string): string {
  let rest = alias.trim().replace(/^(udp|tcp|tls|sctp|ws|wss):(?!\d+$)/i, "");
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    return close > 0 ? rest.slice(0, close + 1) : rest;
  }
  const colon = rest.lastIndexOf(":");
  if (colon !== -1 && rest.indexOf(":") === colon) rest = rest.slice(0, colon);
  return rest;
}
