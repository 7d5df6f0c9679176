/**
 * The SIP server: transport → parse → route → effects, and the HostServices
 * the KSR functions use to reply and forward. It runs one routing script
 * (a RouteRunner), or the scripts of a TenantRegistry, each message routed
 * to its tenant (host/core/tenant-routing.ts).
 *
 * Everything here is stateless (no transactions): replies are addressed by
 * the request's Via (RFC 3261 §18.2.2, RFC 3581), responses are forwarded
 * by their Via (§16.7 step 3, §16.11), requests are forwarded with a Via
 * whose branch is derived from the incoming one (§16.11).
 */
import { createHash } from "node:crypto";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { MessageEdits, SipMessage } from "../sip/message.js";
import { parseMessage, topVia, DEFAULT_PARSE_LIMITS, type ParseFailure, type ParseLimits } from "../sip/parser.js";
import { buildResponse, generateTag, serializeMessage } from "../sip/serialize.js";
import type { Via } from "../sip/via.js";
import { formatVia, parseVia, viaParam } from "../sip/via.js";
import { parseUri, uriParam, uriTransport } from "../sip/uri.js";
import type { RouteOutcome, RouteRunner } from "../../sandbox/types.js";
import { renderRecordRoute } from "../proxy/record-route.js";
import { TransportLayer, type TransportOptions } from "../transport/index.js";
import { formatHostPort, formatListenSocket, isWildcardIp, parseListenSocket, sameIp, unbracket } from "../transport/listen-socket.js";
import { isOwnVia, responseDestination, stampReceivedVia, viaTransport, type Destination } from "./addressing.js";
import { MessageContext, newTenantState } from "./context.js";
import type { HostServices, ListenSocket, LogLevel, ReceiveInfo, TenantState, TransportProto } from "./context.js";
import { log as writeLog } from "./log.js";
import { buildMalformedReply, reasonFromError, responseViaLines, topViaOf } from "./malformed.js";
import { StatefulProxy, type ProxyOptions } from "../proxy/proxy.js";
import { RealTimerService, type TimerService } from "../transaction/index.js";
import type { DataServices } from "../storage/index.js";
import { TenantRegistry } from "../tenants/registry.js";
import { REPLY_ROUTE, REQUEST_ROUTE, TENANT_VIA_PARAM, TenantRouting } from "./tenant-routing.js";
import { LoadShedder, ReceiveQueueProbe, type OverloadOptions } from "./overload.js";

export { REPLY_ROUTE, REQUEST_ROUTE };

/** Magic cookie of RFC 3261 §8.1.1.7 branches. */
const BRANCH_COOKIE = "z9hG4bK";

export interface SipServerOptions {
  readonly listen: readonly ListenSocket[];
  /** Extra host[:port] names that mean "us" (Via checks, is_myself). */
  readonly aliases?: readonly string[];
  /** Tenant id: log scope and TenantState id (with a TenantRegistry: of the server's own log lines). Default "default". */
  readonly tenantId?: string;
  /** TCP idle timeout in ms (default 120 000, see host/transport/tcp.ts). */
  readonly idleTimeoutMs?: number;
  readonly maxTcpConnections?: number;
  readonly parseLimits?: ParseLimits;
  /** Clock for HostServices.now (tests). */
  readonly now?: () => number;
  /** Host name → IP address (default: the OS resolver via dns.lookup). */
  readonly resolveHost?: (host: string, family: 4 | 6) => Promise<string>;
  /**
   * Builds the transport (default: TransportLayer, real sockets). The
   * testing harness (host/testing) passes one that records what would be
   * sent, so scripts are tested against this very server logic.
   */
  readonly transport?: (options: TransportOptions) => ServerTransport;
  /** Timers of the transaction layer (default: real timers; tests pass a FakeClock). */
  readonly timers?: TimerService;
  /** Stateful proxy settings (T1/T2/T4, fr timers, table size). */
  readonly proxy?: ProxyOptions;
  /** Location, subscriber and address tables for KSR.registrar / auth_db / permissions. */
  readonly data?: DataServices;
  /** Load shedding (host/core/overload.ts); none when not given. Not applied with a MessageDispatcher, which sheds per tenant. */
  readonly overload?: OverloadOptions;
}

/**
 * Routing done somewhere else: every well-formed message is handed on with
 * the bytes it arrived as (tenant worker processes, host/tenants/processes.ts).
 * Malformed requests are still answered here.
 */
export interface MessageDispatcher {
  dispatch(msg: SipMessage, data: string, rcv: ReceiveInfo): void;
}

function isDispatcher(routing: RouteRunner | TenantRegistry | MessageDispatcher): routing is MessageDispatcher {
  return typeof (routing as Partial<MessageDispatcher>).dispatch === "function";
}

/** What the server needs of a transport; TransportLayer is the real one. */
export type ServerTransport = Pick<
  TransportLayer,
  "start" | "stop" | "isStarted" | "send" | "socketFor" | "tcpConnectionRemoteIp" | "tcpConnectionCount"
>;

async function defaultResolve(host: string, family: 4 | 6): Promise<string> {
  const r = await lookup(host, { family });
  return r.address;
}

export class SipServer implements HostServices {
  readonly tenant: TenantState;
  readonly aliases: readonly string[];
  /** See SipServerOptions.data; shared by every tenant, each keyed by its tenant id. */
  readonly data: DataServices | undefined;
  private readonly transport: ServerTransport;
  private readonly parseLimits: ParseLimits;
  private readonly clock: () => number;
  private readonly resolveHost: (host: string, family: 4 | 6) => Promise<string>;
  private readonly configured: readonly ListenSocket[];
  private boundSockets: ListenSocket[] = [];
  /** Whether the script defines ksr_reply_route; asked once (a runner's script does not change). */
  private hasReplyRoute: boolean | undefined;
  /** One To tag per request context for every local reply to it (§8.2.6.2). */
  private readonly localTags = new WeakMap<MessageContext, string>();
  /**
   * The transaction user behind KSR.tm (RFC 3261 §16 / §17). With a
   * TenantRegistry each tenant has its own (tenantProxy()); this one then
   * serves no script.
   */
  readonly proxy: StatefulProxy;
  /** The single routing script; undefined with a TenantRegistry or a MessageDispatcher. */
  private readonly runner: RouteRunner | undefined;
  /** Where messages go when they are routed elsewhere. */
  private readonly dispatcher: MessageDispatcher | undefined;
  /** Multi-tenant routing; undefined with a single RouteRunner. */
  readonly tenants: TenantRouting | undefined;
  /** Load shedding of the receive path, when configured; the probe measures the receive queue unless a delay source is given. */
  readonly shedder: LoadShedder | undefined;
  private readonly queueProbe: ReceiveQueueProbe | undefined;

  /**
   * `routing`: one RouteRunner (every message runs its routes), a
   * TenantRegistry (each message runs the routes of its tenant), or a
   * MessageDispatcher (each message is handed on, no script runs here).
   * Each stays the caller's to dispose.
   */
  constructor(routing: RouteRunner | TenantRegistry | MessageDispatcher, options: SipServerOptions) {
    this.dispatcher = isDispatcher(routing) ? routing : undefined;
    this.runner = routing instanceof TenantRegistry || isDispatcher(routing) ? undefined : routing;
    this.configured = options.listen;
    this.aliases = options.aliases ?? [];
    this.tenant = newTenantState(options.tenantId ?? "default");
    this.parseLimits = options.parseLimits ?? DEFAULT_PARSE_LIMITS;
    this.clock = options.now ?? Date.now;
    this.resolveHost = options.resolveHost ?? defaultResolve;
    this.data = options.data;
    const createTransport = options.transport ?? ((o: TransportOptions) => new TransportLayer(o));
    this.transport = createTransport({
      listen: options.listen,
      onMessage: (data, rcv) => this.receive(data, rcv),
      parseLimits: this.parseLimits,
      tcpIdleTimeoutMs: options.idleTimeoutMs,
      maxTcpConnections: options.maxTcpConnections,
    });
    const timers = options.timers ?? new RealTimerService();
    const socketFor = (proto: TransportProto, host: string, forced: ListenSocket | undefined): ListenSocket | undefined => {
      // As sendingSocket: a host name is resolved later, in the family of our first socket.
      const probe = isIP(host) !== 0 ? host : this.listen.find((l) => l.proto === proto)?.ip ?? "0.0.0.0";
      return this.transport.socketFor(proto, probe, forced);
    };
    const send = (dest: Destination, data: string, from: ListenSocket | undefined, what: string): boolean => this.dispatch(dest, data, from, what);
    const single = this.runner;
    this.proxy = new StatefulProxy(
      {
        services: this,
        tenant: this.tenant,
        currentRunner: () => {
          if (single === undefined) throw new Error("the server's own proxy runs no script when it serves tenants");
          return single;
        },
        timers,
        socketFor,
        send,
      },
      options.proxy,
    );
    this.tenants =
      routing instanceof TenantRegistry
        ? new TenantRouting(
            routing,
            {
              services: this,
              serverState: this.tenant,
              timers,
              socketFor,
              send,
              forwardResponse: (msg, rcv, edits) => this.forwardResponse(msg, rcv, edits),
            },
            options.proxy,
          )
        : undefined;
    const overload = this.dispatcher === undefined ? options.overload : undefined;
    if (overload !== undefined) {
      const probe = overload.delaySource === undefined ? new ReceiveQueueProbe(Date.now, () => this.shedder?.poll()) : undefined;
      this.queueProbe = probe;
      this.shedder = new LoadShedder(overload, overload.delaySource ?? (() => probe!.delayMs()), this.clock, {
        toTransaction: (msg, rcv) => {
          const proxy = this.tenants === undefined ? this.proxy : this.tenants.proxyFor(msg, rcv);
          return proxy?.absorbRetransmission(msg) === true ? "absorbed" : "new";
        },
        sendShedReply: (msg, rcv, retryAfterS, toTag) => this.sendShedReply(msg, rcv, retryAfterS, toTag),
        log: (level, text) => this.log(level, text),
      });
    } else {
      this.queueProbe = undefined;
      this.shedder = undefined;
    }
  }

  /** With a TenantRegistry: the stateful proxy (transactions) of one tenant. */
  tenantProxy(tenantId: string): StatefulProxy | undefined {
    return this.tenants?.proxyOf(tenantId);
  }

  /** Bind every listen socket; resolves with them as bound (port 0 replaced). */
  async start(): Promise<ListenSocket[]> {
    this.boundSockets = await this.transport.start();
    await this.queueProbe?.start(this.boundSockets);
    this.log("info", `listening on ${this.boundSockets.map(formatListenSocket).join(", ")}`);
    return this.boundSockets;
  }

  /** Close every socket; resolves when all are closed. The runner is the caller's to dispose. */
  async stop(): Promise<void> {
    this.queueProbe?.stop();
    await this.transport.stop();
  }

  /** The listen sockets: as bound once started, as configured before. */
  get listen(): readonly ListenSocket[] {
    return this.boundSockets.length > 0 ? this.boundSockets : this.configured;
  }

  /** The bound port of the first listen socket of a transport (tests start on port 0). */
  portOf(proto: TransportProto): number {
    const s = this.listen.find((l) => l.proto === proto);
    if (!s) throw new Error(`no ${proto} listen socket`);
    return s.port;
  }

  get tcpConnectionCount(): number {
    return this.transport.tcpConnectionCount;
  }

  now(): number {
    return this.clock();
  }

  log(level: LogLevel, text: string, _ctx?: MessageContext): void {
    writeLog(level, this.tenant.id, text);
  }

  // ---------------------------------------------------------------- receive

  /**
   * Entry point for every received message. Nothing escapes: an internal
   * error is logged and the message is abandoned, the server carries on.
   */
  receive(data: string, rcv: ReceiveInfo): void {
    try {
      if (this.queueProbe?.takeProbe(data, rcv) === true) return;
      const parsed = parseMessage(data, this.parseLimits);
      if (!parsed.ok) {
        this.rejectMalformed(parsed, rcv);
        return;
      }
      if (this.shedder?.intercept(parsed.message, rcv) === true) return;
      const tenants = this.tenants;
      if (this.dispatcher !== undefined) this.dispatcher.dispatch(parsed.message, data, rcv);
      else if (tenants !== undefined) {
        if (parsed.message.kind === "request") tenants.onRequest(parsed.message, rcv);
        else tenants.onResponse(parsed.message, rcv);
      } else if (parsed.message.kind === "request") this.onRequest(parsed.message, rcv, this.runner!);
      else this.onResponse(parsed.message, rcv, this.runner!);
    } catch (err) {
      this.log("err", `internal error handling a message from ${describeSource(rcv)}: ${errorText(err)}`);
    }
  }

  /** A request refused for overload: 503 with Retry-After (RFC 3261 §21.5.4, §20.33), To tag `toTag` (host/core/overload.ts). */
  sendShedReply(msg: SipMessage, rcv: ReceiveInfo, retryAfterS: number, toTag: string): void {
    const ctx = new MessageContext(msg, rcv, "request", this.tenant, this);
    ctx.replyHeaders.push(`Retry-After: ${retryAfterS}`);
    this.localTags.set(ctx, toTag);
    this.sendReply(ctx, 503, "Service Unavailable");
  }

  private rejectMalformed(parsed: ParseFailure, rcv: ReceiveInfo): void {
    const from = describeSource(rcv);
    if (parsed.kind !== "request") {
      this.log("warn", `dropped malformed ${parsed.kind ?? "message"} from ${from}: ${parsed.error}`);
      return;
    }
    if (parsed.method === "ACK") {
      // An ACK is never answered (RFC 3261 §17.2.1 / §8.2.6).
      this.log("warn", `dropped malformed ACK from ${from}: ${parsed.error}`);
      return;
    }
    const top = parsed.headers ? topViaOf(parsed.headers) : undefined;
    if (!top) {
      this.log("warn", `dropped malformed request from ${from} (no usable Via to answer): ${parsed.error}`);
      return;
    }
    const stamped = stampReceivedVia(top.vias[0]!, rcv, false);
    const dest = responseDestination(stamped, rcv.connectionId);
    if (!dest) {
      this.log("warn", `dropped malformed request from ${from} (Via transport ${top.vias[0]!.transport} not supported): ${parsed.error}`);
      return;
    }
    // The parser reports a well-formed but unknown SIP-Version with the 505
    // reason phrase (RFC 3261 §21.5.7); everything else is a 400 (§8.2.2 ff.)
    // whose reason phrase names the problem.
    const status = parsed.error === "Version Not Supported" ? 505 : 400;
    const reason = reasonFromError(parsed.error);
    const reply = buildMalformedReply(parsed.headers!, responseViaLines(top.viaHeaders, top.vias, stamped), status, reason, generateTag());
    this.log("notice", `malformed request from ${from}: ${parsed.error}; answering ${status}`);
    this.dispatch(dest, reply, localSocketOf(rcv), `${status} reply`);
  }

  private onRequest(msg: SipMessage, rcv: ReceiveInfo, runner: RouteRunner): void {
    const ctx = new MessageContext(msg, rcv, "request", this.tenant, this);
    const outcome = runner.runRoute(REQUEST_ROUTE, ctx);
    try {
      if (outcome.status === "ok") return; // no reply/relay: silently consumed, as in Kamailio
      if (outcome.status === "missing") {
        this.log("err", `script ${runner.scriptPath} defines no ${REQUEST_ROUTE}(); request ${msg.method} call-id=${msg.callId} not handled`);
        return;
      }
      this.logRouteFailure(REQUEST_ROUTE, ctx, outcome, runner);
      // Error policy: 500 to requests other than ACK (never answered) unless
      // the route already answered or sent the request on.
      if (msg.method !== "ACK" && ctx.replied === undefined && !ctx.forwarded) {
        this.sendReply(ctx, 500, "Server Internal Error"); // RFC 3261 §21.5.1
      }
    } finally {
      // The transaction the route created (if any): deferred branches are
      // sent, an unanswered one is released (Kamailio's end-of-script t_unref).
      this.proxy.requestRouteDone(ctx);
    }
  }

  private onResponse(msg: SipMessage, rcv: ReceiveInfo, runner: RouteRunner): void {
    let ctx: MessageContext | undefined;
    this.hasReplyRoute ??= runner.hasRoute(REPLY_ROUTE);
    if (this.hasReplyRoute) {
      ctx = new MessageContext(msg, rcv, "reply", this.tenant, this);
      const outcome = runner.runRoute(REPLY_ROUTE, ctx);
      if (outcome.status === "error") {
        this.logRouteFailure(REPLY_ROUTE, ctx, outcome, runner);
        return; // error policy for replies: drop
      }
      if (ctx.dropped) return;
      if (ctx.forwarded) return; // the route forwarded it already
    }
    // Kamailio order: the core reply route first, then transaction matching;
    // a response no transaction claims is forwarded statelessly.
    if (this.proxy.receiveResponse(msg, rcv, ctx?.edits)) return;
    this.forwardResponse(msg, rcv, ctx?.edits);
  }

  private logRouteFailure(route: string, ctx: MessageContext, outcome: Extract<RouteOutcome, { status: "error" }>, runner: RouteRunner): void {
    const where = outcome.location ?? runner.scriptPath;
    this.log(
      "err",
      `tenant=${this.tenant.id} route=${route} call-id=${ctx.msg.callId} ${outcome.kind}: ${outcome.message} (at ${where})`,
    );
  }

  // ------------------------------------------------------- HostServices

  sendReply(ctx: MessageContext, status: number, reason: string): boolean {
    const msg = ctx.msg;
    if (msg.kind !== "request") {
      this.log("err", `cannot send a reply to a response (call-id=${msg.callId})`);
      return false;
    }
    if (msg.method === "ACK") {
      this.log("warn", `not replying ${status} to ACK (call-id=${msg.callId}): ACK is never answered`);
      return false;
    }
    if (!Number.isInteger(status) || status < 100 || status > 699) {
      this.log("err", `invalid reply status ${status} (call-id=${msg.callId})`);
      return false;
    }
    const top = topVia(msg);
    if (top === undefined) {
      this.log("err", `cannot address a reply: request has no usable Via (call-id=${msg.callId})`);
      return false;
    }
    const viaHeaders = msg.headers.filter((h) => h.key === "via");
    const firstVias = viaHeaders[0]!.value.includes(",") ? parseVia(viaHeaders[0]!.value) : [top];
    const stamped = stampReceivedVia(top, ctx.rcv, ctx.forceRport);
    const dest = responseDestination(stamped, ctx.rcv.connectionId);
    if (!dest) {
      this.log("err", `cannot send a reply over Via transport ${stamped.transport} (call-id=${msg.callId})`);
      return false;
    }
    // buildResponse adds it only when the To has no tag and status > 100.
    const toTag = status > 100 ? this.localTagFor(ctx) : undefined;
    const safeReason = reason.replace(/[\r\n]+/g, " ");
    const text = buildResponse(msg, status, safeReason, {
      toTag,
      extraHeaders: ctx.replyHeaders.length > 0 ? ctx.replyHeaders : undefined,
      viaOverride: responseViaLines(viaHeaders, firstVias, stamped),
    });
    const sent = this.dispatch(dest, text, localSocketOf(ctx.rcv), `${status} reply`);
    if (sent) ctx.replied = { status, reason: safeReason };
    return sent;
  }

  forward(ctx: MessageContext, targetUri?: string): boolean {
    if (ctx.msg.kind === "response") {
      const ok = this.forwardResponse(ctx.msg, ctx.rcv, ctx.edits);
      if (ok) ctx.forwarded = true;
      return ok;
    }
    const ok = this.forwardRequest(ctx, targetUri ?? ctx.dstUri ?? ctx.requestUri);
    if (ok) ctx.forwarded = true;
    return ok;
  }

  // ------------------------------------------------------- forwarding

  /**
   * Stateless request forwarding (Kamailio `forward`, RFC 3261 §16.11).
   * The destination URI gives host, port and transport; host names are
   * resolved to an A/AAAA record of the sending socket's family (no NAPTR
   * or SRV, RFC 3263 §4 is not applied). For a host name the request is
   * built now and sent when the lookup finishes: forward() returns true and a
   * failed lookup is logged.
   */
  private forwardRequest(ctx: MessageContext, target: string): boolean {
    const callId = ctx.msg.callId;
    const uri = parseUri(target);
    if (!uri || uri.scheme === "tel") {
      this.log("err", `forward: cannot route to "${target}" (call-id=${callId})`);
      return false;
    }
    const transport = uriTransport(uri);
    if (transport !== "udp" && transport !== "tcp") {
      this.log("err", `forward: transport ${transport} of ${target} is not supported (call-id=${callId})`);
      return false;
    }
    const maddr = uriParam(uri, "maddr");
    const host = unbracket(maddr !== undefined && maddr !== "" ? maddr : uri.host);
    const port = uri.port ?? 5060;
    const socket = this.sendingSocket(ctx, transport, host);
    if (!socket) {
      this.log("err", `forward: no ${transport} listen socket to reach ${host} (call-id=${callId})`);
      return false;
    }
    const via = this.ownVia(ctx, socket, target);
    // Record-Route for the socket this copy leaves by (RFC 3261 §16.6 step 4,
    // RFC 5658); ctx.edits stays as the script left it, for another forward.
    const recordRoute = renderRecordRoute(ctx, socket, localSocketOf(ctx.rcv));
    const base = recordRoute.length > 0 ? { ...ctx.edits, prepended: [...recordRoute, ...ctx.edits.prepended] } : ctx.edits;
    const edits = withViaOnTop(ctx.msg, withStampedTopVia(ctx, base), via);
    const text = serializeMessage(ctx.msg, edits, {
      requestUri: ctx.newRequestUri,
      stream: transport === "tcp", // Content-Length mandatory on streams (RFC 3261 §18.3)
    });
    return this.dispatch({ proto: transport, host, port }, text, socket, `${ctx.msg.method} request`);
  }

  /**
   * Stateless response forwarding (RFC 3261 §16.7 step 3, §18.2.2): the top
   * Via must be ours; it is removed and the response goes where the next
   * Via says.
   */
  private forwardResponse(msg: SipMessage, rcv: ReceiveInfo, edits?: MessageEdits): boolean {
    const viaIndexes: number[] = [];
    msg.headers.forEach((h, i) => {
      if (h.key === "via") viaIndexes.push(i);
    });
    const what = `${msg.status} response (call-id=${msg.callId})`;
    if (viaIndexes.length === 0) {
      this.log("warn", `dropped ${what}: no Via`);
      return false;
    }
    const firstIndex = viaIndexes[0]!;
    const firstVias = parseVia(msg.headers[firstIndex]!.value);
    const top = firstVias[0];
    if (!top || !isOwnVia(top, this.listen, this.aliases)) {
      this.log("warn", `dropped ${what}: top Via ${top ? formatVia(top) : "(unparsable)"} is not ours`);
      return false;
    }
    let next: Via | undefined = firstVias[1];
    if (!next && viaIndexes.length > 1) next = parseVia(msg.headers[viaIndexes[1]!]!.value)[0];
    if (!next) {
      this.log("info", `dropped ${what}: no Via after ours, nowhere to forward`);
      return false;
    }
    let connectionId: number | undefined;
    if (viaTransport(next) === "tcp") {
      // Our Via carries the id of the connection the request came in on (see
      // ownVia); it is used only while that connection is still to the
      // address the next Via names, so a stale id cannot misdirect.
      const id = Number(viaParam(top, "i") ?? NaN);
      const remoteIp = Number.isInteger(id) ? this.transport.tcpConnectionRemoteIp(id) : undefined;
      if (remoteIp !== undefined && sameIp(remoteIp, unbracket(next.received ?? next.host))) connectionId = id;
    }
    const dest = responseDestination(next, connectionId);
    if (!dest) {
      this.log("warn", `dropped ${what}: Via transport ${next.transport} not supported`);
      return false;
    }
    const base = edits ?? EMPTY_EDITS;
    const replaced = new Map(base.replaced);
    replaced.set(
      firstIndex,
      firstVias.length > 1 ? `Via: ${firstVias.slice(1).map(formatVia).join(", ")}\r\n` : "",
    );
    const text = serializeMessage(msg, { ...base, replaced }, { stream: dest.proto === "tcp" });
    const from = rcv.proto === dest.proto ? localSocketOf(rcv) : undefined;
    return this.dispatch(dest, text, from, what);
  }

  /** The Via this server puts on top of a request it forwards (RFC 3261 §16.6 step 8). */
  private ownVia(ctx: MessageContext, socket: ListenSocket, target: string): string {
    let via = `Via: SIP/2.0/${socket.proto.toUpperCase()} ${this.viaHostPort(socket)};branch=${this.statelessBranch(ctx, target)}`;
    if (ctx.addLocalRport) via += ";rport";
    // Serving tenants: the response comes back to the tenant that forwarded
    // the request (see tenant-routing.ts). The next hops see the tenant id.
    if (this.tenants !== undefined) via += `;${TENANT_VIA_PARAM}=${ctx.tenant.id}`;
    // Remember the incoming TCP connection so the response can be sent back
    // on it (RFC 3261 §18.2.2) without transaction state.
    if (ctx.rcv.proto === "tcp" && ctx.rcv.connectionId >= 0) via += `;i=${ctx.rcv.connectionId}`;
    return via + "\r\n";
  }

  private viaHostPort(socket: ListenSocket): string {
    if (!isWildcardIp(socket.ip)) return formatHostPort(socket.ip, socket.port);
    // A wildcard address is no address for a peer to answer to: name the
    // first alias instead.
    const alias = this.aliases[0];
    return alias ? `${alias.replace(/:\d+$/, "")}:${socket.port}` : formatHostPort(socket.ip, socket.port);
  }

  /**
   * RFC 3261 §16.11: a stateless proxy derives the branch from the incoming
   * request so that a retransmission (and the CANCEL or non-2xx ACK of an
   * INVITE, which share its branch) is forwarded with the same branch, and
   * mixes in the destination so that different targets get different ones.
   * Without an RFC 3261 branch the §17.2.3 matching fields stand in.
   */
  private statelessBranch(ctx: MessageContext, target: string): string {
    const msg = ctx.msg;
    const incoming = topVia(msg);
    const hash = createHash("sha1");
    if (incoming?.branch?.startsWith(BRANCH_COOKIE)) {
      hash.update(incoming.branch);
    } else {
      const from = msg.headers.find((h) => h.key === "from")?.value ?? "";
      const to = msg.headers.find((h) => h.key === "to")?.value ?? "";
      hash.update(`${msg.callId}\n${msg.cseq.seq}\n${from}\n${to}\n${incoming ? formatVia(incoming) : ""}\n${msg.requestUri}`);
    }
    hash.update(`\n${ctx.requestUri}\n${target}`);
    return BRANCH_COOKIE + "sl" + hash.digest("hex").slice(0, 24);
  }

  private sendingSocket(ctx: MessageContext, proto: TransportProto, dstHost: string): ListenSocket | undefined {
    let forced: ListenSocket | undefined;
    if (ctx.sendSocket) {
      try {
        forced = parseListenSocket(ctx.sendSocket);
      } catch (err) {
        this.log("warn", `ignoring send socket ${ctx.sendSocket}: ${errorText(err)}`);
      }
      if (forced && forced.proto !== proto) {
        this.log("warn", `ignoring send socket ${ctx.sendSocket}: destination transport is ${proto}`);
        forced = undefined;
      }
    }
    // For a host name we do not know the family yet: use the socket of the
    // first family we listen on and resolve the name in that family.
    const probe = isIP(dstHost) !== 0 ? dstHost : this.listen.find((l) => l.proto === proto)?.ip ?? "0.0.0.0";
    return this.transport.socketFor(proto, probe, forced);
  }

  /**
   * Hand a message to the transport, resolving a host name first. Returns
   * false when it cannot be sent now; after an asynchronous lookup, failures
   * are logged instead.
   */
  private dispatch(dest: Destination, text: string, from: ListenSocket | undefined, what: string): boolean {
    if (isIP(dest.host) !== 0) {
      const ok = this.transport.send(dest.proto, dest.host, dest.port, text, dest.connectionId, from);
      if (!ok) this.log("err", `failed to send ${what} to ${dest.proto}:${formatHostPort(dest.host, dest.port)}`);
      return ok;
    }
    const family: 4 | 6 = from && isIP(from.ip) === 6 ? 6 : 4;
    this.resolveHost(dest.host, family).then(
      (ip) => {
        if (!this.transport.isStarted) return;
        if (!this.transport.send(dest.proto, ip, dest.port, text, dest.connectionId, from)) {
          this.log("err", `failed to send ${what} to ${dest.proto}:${formatHostPort(ip, dest.port)} (${dest.host})`);
        }
      },
      (err) => this.log("err", `cannot resolve ${dest.host} to send ${what}: ${errorText(err)}`),
    );
    return true;
  }

  private localTagFor(ctx: MessageContext): string {
    let tag = this.localTags.get(ctx);
    if (tag === undefined) {
      tag = generateTag();
      this.localTags.set(ctx, tag);
    }
    return tag;
  }
}

const EMPTY_EDITS: MessageEdits = {
  replaced: new Map(),
  insertedBefore: new Map(),
  insertedAfter: new Map(),
  prepended: [],
  appended: [],
};

/**
 * The route's edits plus our Via directly above the first received Via
 * (RFC 3261 §16.6 step 8), without changing the route's own edit set (the
 * script may forward again).
 */
function withViaOnTop(msg: SipMessage, edits: MessageEdits, viaLine: string): MessageEdits {
  const firstVia = msg.headers.findIndex((h) => h.key === "via");
  if (firstVia < 0) return { ...edits, prepended: [viaLine, ...edits.prepended] };
  const insertedBefore = new Map(edits.insertedBefore);
  insertedBefore.set(firstVia, [...(edits.insertedBefore.get(firstVia) ?? []), viaLine]);
  return { ...edits, insertedBefore };
}

/**
 * RFC 3261 §18.2.1 (and RFC 3581 §4 for rport): the received top Via gets
 * received/rport before the request is forwarded, so that the response can
 * find its way back (through NAT) without state. The Via field is rewritten
 * only when something was added, and not when the route replaced it itself.
 */
function withStampedTopVia(ctx: MessageContext, edits: MessageEdits): MessageEdits {
  const msg = ctx.msg;
  const top = topVia(msg);
  const index = msg.headers.findIndex((h) => h.key === "via");
  if (!top || index < 0 || edits.replaced.has(index)) return edits;
  const stamped = stampReceivedVia(top, ctx.rcv, ctx.forceRport);
  if (stamped === top) return edits;
  const field = msg.headers[index]!;
  const values = field.value.includes(",") ? parseVia(field.value) : [top];
  const line = `${field.name}: ${[stamped, ...values.slice(1)].map(formatVia).join(", ")}\r\n`;
  const replaced = new Map(edits.replaced);
  replaced.set(index, line);
  return { ...edits, replaced };
}

function localSocketOf(rcv: ReceiveInfo): ListenSocket {
  return { proto: rcv.proto, ip: rcv.localIp, port: rcv.localPort };
}

function describeSource(rcv: ReceiveInfo): string {
  return `${rcv.proto}:${formatHostPort(rcv.srcIp, rcv.srcPort)}`;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return "unprintable error";
  }
}


