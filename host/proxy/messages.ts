/**
 * The messages a stateful proxy writes: the copy of a request it sends on
 * a branch (RFC 3261 §16.6), a received response relayed upstream (§16.7
 * step 9), a locally generated response (§16.7 / §8.2.6), and where
 * responses to a received request go (§18.2.2).
 */
import type { ListenSocket, MessageContext, ReceiveInfo, TransportProto } from "../core/context.js";
import { responseDestination, stampReceivedVia, type Destination } from "../core/addressing.js";
import { responseViaLines } from "../core/malformed.js";
import type { MessageEdits, SipMessage } from "../sip/message.js";
import { topVia } from "../sip/parser.js";
import { buildResponse, serializeMessage } from "../sip/serialize.js";
import { parseUri, uriParam, uriTransport } from "../sip/uri.js";
import { formatVia, parseVia } from "../sip/via.js";
import { canonicalHeaderKey } from "../sip/headers.js";
import { formatHostPort, isWildcardIp, unbracket } from "../transport/listen-socket.js";

/** Where one branch goes: the next hop, before name resolution. */
export interface NextHop {
  readonly proto: TransportProto;
  /** Host name or unbracketed IP literal. */
  readonly host: string;
  readonly port: number;
}

/**
 * The next hop of a target URI ($du, else the branch's Request-URI):
 * maddr, else the host; the port written, else 5060; the transport
 * parameter, else UDP (RFC 3263 is not applied: no NAPTR/SRV). `proto`
 * overrides the transport (t_relay_to_proto). Returns an error text when
 * the URI cannot be routed here.
 */
export function nextHopOf(target: string, proto?: TransportProto): NextHop | string {
  const uri = parseUri(target);
  if (uri === null || uri.scheme === "tel") return `cannot route to "${target}"`;
  const transport = proto ?? uriTransport(uri);
  if (transport !== "udp" && transport !== "tcp") return `transport ${transport} of ${target} is not supported`;
  const maddr = uriParam(uri, "maddr");
  const host = unbracket(maddr !== undefined && maddr !== "" ? maddr : uri.host);
  return { proto: transport, host, port: uri.port ?? 5060 };
}

/**
 * A next hop written as Kamailio's t_relay_to_proxy takes it:
 * "[proto:]host[:port]", or a SIP URI.
 */
export function parseProxyAddress(text: string): NextHop | string {
  const trimmed = text.trim();
  if (/^sips?:/i.test(trimmed)) return nextHopOf(trimmed);
  const m = /^(?:(udp|tcp|tls|sctp|ws|wss):)?(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?$/i.exec(trimmed);
  if (m === null) return `bad proxy address "${text}"`;
  const proto = (m[1] ?? "udp").toLowerCase();
  if (proto !== "udp" && proto !== "tcp") return `transport ${proto} is not supported`;
  const port = m[3] === undefined ? 5060 : Number(m[3]);
  if (port < 1 || port > 65535) return `bad port in "${text}"`;
  return { proto, host: unbracket(m[2]!), port };
}

/** Where the responses to a received request go, and the Via lines they carry. */
export interface Upstream {
  readonly dest: Destination;
  /** The local socket the request came in on (responses leave from it). */
  readonly socket: ListenSocket;
  /** The response's Via lines: the request's, top one stamped with received/rport (§18.2.1, RFC 3581). */
  readonly viaLines: readonly string[];
}

/** §18.2.2 addressing for responses to `request`; undefined when its Via cannot be answered over our transports. */
export function upstreamOf(request: SipMessage, rcv: ReceiveInfo, forceRport: boolean): Upstream | undefined {
  const top = topVia(request);
  if (top === undefined) return undefined;
  const viaHeaders = request.headers.filter((h) => h.key === "via");
  const firstVias = viaHeaders[0]!.value.includes(",") ? parseVia(viaHeaders[0]!.value) : [top];
  const stamped = stampReceivedVia(top, rcv, forceRport);
  const dest = responseDestination(stamped, rcv.connectionId);
  if (dest === undefined) return undefined;
  return {
    dest,
    socket: { proto: rcv.proto, ip: rcv.localIp, port: rcv.localPort },
    viaLines: responseViaLines(viaHeaders, firstVias, stamped),
  };
}

/**
 * A response generated here for `request` (§8.2.6.2; a proxy answering
 * itself, §16.7 step 6 / §16.8 408): every Via of the request (top one
 * stamped), From, To with our tag, Call-ID, CSeq, then `extraHeaders`.
 */
export function buildLocalResponse(
  request: SipMessage,
  upstream: Upstream,
  status: number,
  reason: string,
  toTag: string,
  extraHeaders: readonly string[] = [],
): string {
  return buildResponse(request, status, reason.replace(/[\r\n]+/g, " "), {
    toTag,
    extraHeaders: extraHeaders.length > 0 ? [...extraHeaders] : undefined,
    viaOverride: [...upstream.viaLines],
  });
}

/**
 * A received response as relayed upstream (§16.7 step 9): the topmost Via
 * value (ours) removed, the edits the reply routes made applied, extra
 * header lines appended, Content-Length written for a stream.
 */
export function relayedResponseText(
  response: SipMessage,
  edits: MessageEdits | undefined,
  stream: boolean,
  extraHeaders: readonly string[] = [],
): string {
  const firstVia = response.headers.findIndex((h) => h.key === "via");
  const replaced = new Map(edits?.replaced ?? []);
  if (firstVia >= 0 && !replaced.has(firstVia)) {
    const vias = parseVia(response.headers[firstVia]!.value);
    replaced.set(firstVia, vias.length > 1 ? `Via: ${vias.slice(1).map(formatVia).join(", ")}\r\n` : "");
  }
  const out: MessageEdits = {
    replaced,
    insertedBefore: edits?.insertedBefore ?? new Map(),
    insertedAfter: edits?.insertedAfter ?? new Map(),
    prepended: edits?.prepended ?? [],
    appended: [...(edits?.appended ?? []), ...extraHeaders],
    ...(edits?.body !== undefined ? { body: edits.body } : {}),
  };
  return serializeMessage(response, out, { stream });
}

/** A deep copy of an edit set (routes of one transaction must not share their edits). */
export function copyEdits(edits: MessageEdits): MessageEdits {
  return {
    replaced: new Map(edits.replaced),
    insertedBefore: new Map([...edits.insertedBefore].map(([k, v]) => [k, [...v]])),
    insertedAfter: new Map([...edits.insertedAfter].map(([k, v]) => [k, [...v]])),
    prepended: [...edits.prepended],
    appended: [...edits.appended],
    ...(edits.body !== undefined ? { body: edits.body } : {}),
  };
}

/** Replace the content of `target` (a context's readonly edit set) with a copy of `source`. */
export function loadEdits(target: MessageEdits, source: MessageEdits): void {
  const copy = copyEdits(source);
  target.replaced.clear();
  for (const [k, v] of copy.replaced) target.replaced.set(k, v);
  target.insertedBefore.clear();
  for (const [k, v] of copy.insertedBefore) target.insertedBefore.set(k, v);
  target.insertedAfter.clear();
  for (const [k, v] of copy.insertedAfter) target.insertedAfter.set(k, v);
  target.prepended.length = 0;
  target.prepended.push(...copy.prepended);
  target.appended.length = 0;
  target.appended.push(...copy.appended);
  target.body = copy.body;
}

function lineIsHeader(line: string, key: string): boolean {
  const colon = line.indexOf(":");
  return colon > 0 && canonicalHeaderKey(line.slice(0, colon).trim()) === key;
}

/** Whether the route's edits already set Max-Forwards (KSR.maxfwd.process_maxfwd, hdr functions). */
function editsTouchMaxForwards(msg: SipMessage, edits: MessageEdits): boolean {
  for (let i = 0; i < msg.headers.length; i++) {
    if (msg.headers[i]!.key === "max-forwards" && edits.replaced.has(i)) return true;
  }
  const lines = [
    ...edits.prepended,
    ...edits.appended,
    ...[...edits.insertedBefore.values()].flat(),
    ...[...edits.insertedAfter.values()].flat(),
  ];
  return lines.some((l) => lineIsHeader(l, "max-forwards"));
}

/** What a branch's copy of the request is made of (§16.6 steps 1-8). */
export interface BranchRequestParts {
  readonly msg: SipMessage;
  /** The route's edits for this branch (request route, branch route). */
  readonly edits: MessageEdits;
  /** §16.6 step 2: the Request-URI of the branch. */
  readonly requestUri: string;
  /** Our Via line (with CRLF), §16.6 step 8. */
  readonly viaLine: string;
  /** The received top Via with received/rport added (§18.2.1), or undefined when unchanged. */
  readonly stampedTopViaLine: string | undefined;
  /** Record-Route lines (with CRLF) to insert, §16.6 step 4. */
  readonly recordRoute: readonly string[];
  readonly stream: boolean;
}

/**
 * The wire text of a branch's request: the original with the route's
 * edits, the branch Request-URI, Max-Forwards decremented (or set to 70
 * when absent, §16.6 step 3) unless the script already set it, the
 * Record-Route lines above any received Record-Route (§16.6 step 4), and
 * our Via above the received ones (§16.6 step 8).
 */
export function buildBranchRequest(p: BranchRequestParts): string {
  const { msg } = p;
  const edits = copyEdits(p.edits);
  const headers = msg.headers;
  const firstVia = headers.findIndex((h) => h.key === "via");
  if (!editsTouchMaxForwards(msg, p.edits)) {
    const index = headers.findIndex((h) => h.key === "max-forwards");
    if (index < 0) {
      edits.prepended.push("Max-Forwards: 70\r\n");
    } else {
      const h = headers[index]!;
      const value = /^\d{1,10}$/.test(h.value.trim()) ? Number(h.value.trim()) : NaN;
      // A value of 0 must have been refused with 483 by the route (§16.3
      // step 2); it is passed on unchanged rather than made negative.
      if (Number.isFinite(value) && value > 0) edits.replaced.set(index, `${h.name}: ${value - 1}\r\n`);
    }
  }
  if (p.stampedTopViaLine !== undefined && firstVia >= 0 && !edits.replaced.has(firstVia)) {
    edits.replaced.set(firstVia, p.stampedTopViaLine);
  }
  if (p.recordRoute.length > 0) {
    const firstRr = headers.findIndex((h) => h.key === "record-route");
    const at = firstRr >= 0 ? firstRr : firstVia >= 0 ? firstVia : 0;
    if (firstRr < 0 && firstVia >= 0) {
      // No Record-Route yet: after the last received Via (header order
      // only matters among fields of the same name, §7.3.1).
      let lastVia = firstVia;
      headers.forEach((h, i) => {
        if (h.key === "via") lastVia = i;
      });
      edits.insertedAfter.set(lastVia, [...(edits.insertedAfter.get(lastVia) ?? []), ...p.recordRoute]);
    } else {
      edits.insertedBefore.set(at, [...p.recordRoute, ...(edits.insertedBefore.get(at) ?? [])]);
    }
  }
  if (firstVia >= 0) {
    // Our Via goes directly above the first received one, after anything
    // the route inserted there.
    edits.insertedBefore.set(firstVia, [...(edits.insertedBefore.get(firstVia) ?? []), p.viaLine]);
  } else {
    edits.prepended.unshift(p.viaLine);
  }
  return serializeMessage(msg, edits, { requestUri: p.requestUri, stream: p.stream });
}

/** The received top Via stamped with received/rport as a header line, or undefined when nothing was added. */
export function stampedTopViaLine(ctx: MessageContext): string | undefined {
  const msg = ctx.msg;
  const top = topVia(msg);
  const index = msg.headers.findIndex((h) => h.key === "via");
  if (top === undefined || index < 0) return undefined;
  const stamped = stampReceivedVia(top, ctx.rcv, ctx.forceRport);
  if (stamped === top) return undefined;
  const field = msg.headers[index]!;
  const values = field.value.includes(",") ? parseVia(field.value) : [top];
  return `${field.name}: ${[stamped, ...values.slice(1)].map(formatVia).join(", ")}\r\n`;
}

/** sent-by of our Via for a socket: its address, or for a wildcard socket the first alias. */
export function viaSentBy(socket: ListenSocket, aliases: readonly string[]): string {
  if (!isWildcardIp(socket.ip)) return formatHostPort(socket.ip, socket.port);
  const alias = aliases[0];
  return alias ? `${alias.replace(/:\d+$/, "")}:${socket.port}` : formatHostPort(socket.ip, socket.port);
}
