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
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { MessageEdits, SipMessage } from "../sip/message.js";
import { parseMessage, DEFAULT_PARSE_LIMITS, type ParseFailure, type ParseLimits } from "../sip/parser.js";
import { generateTag } from "../sip/serialize.js";
import { formatVia } from "../sip/via.js";
import type { RouteOutcome, RouteRunner } from "../../sandbox/types.js";
import { renderRecordRoute } from "../proxy/record-route.js";
import { TransportLayer, type TransportOptions } from "../transport/index.js";
import { formatHostPort, formatListenSocket, parseListenSocket, sameIp, unbracket } from "../transport/listen-socket.js";
import {
  buildForwardedRequest,
  buildLocalResponse,
  buildMalformedReply,
  isOwnVia,
  isUpstream,
  localSocketOf,
  nextHopOf,
  ourViaLine,
  reasonFromError,
  relayedResponseText,
  responseDestination,
  responseVias,
  safeReasonPhrase,
  statelessBranch,
  tcpConnectionOf,
  upstreamOf,
  viaTransport,
  type Destination,
} from "./outbound.js";
import { MessageContext, newTenantState } from "./context.js";
import type { HostServices, ListenSocket, LogLevel, ReceiveInfo, TenantState, TransportProto } from "./context.js";
import { log as writeLog } from "./log.js";
import { StatefulProxy, type ProxyOptions } from "../proxy/proxy.js";
import { RealTimerService, type TimerService } from "../transaction/index.js";
import type { DataServices } from "../storage/index.js";
import { TenantRegistry } from "../tenants/registry.js";
import { REPLY_ROUTE, REQUEST_ROUTE, TENANT_VIA_PARAM, TenantRouting } from "./tenant-routing.js";

export { REPLY_ROUTE, REQUEST_ROUTE };

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
  }

  /** With a TenantRegistry: the stateful proxy (transactions) of one tenant. */
  tenantProxy(tenantId: string): StatefulProxy | undefined {
    return this.tenants?.proxyOf(tenantId);
  }

  /** Bind every listen socket; resolves with them as bound (port 0 replaced). */
  async start(): Promise<ListenSocket[]> {
    this.boundSockets = await this.transport.start();
    this.log("info", `listening on ${this.boundSockets.map(formatListenSocket).join(", ")}`);
    return this.boundSockets;
  }

  /** Close every socket; resolves when all are closed. The runner is the caller's to dispose. */
  async stop(): Promise<void> {
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
      const parsed = parseMessage(data, this.parseLimits);
      if (!parsed.ok) {
        this.rejectMalformed(parsed, rcv);
        return;
      }
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
    const upstream = parsed.headers === undefined ? undefined : upstreamOf(parsed.headers, rcv, false);
    if (upstream === undefined || !isUpstream(upstream)) {
      const why = upstream?.reason === "transport" ? `Via transport ${upstream.transport} not supported` : "no usable Via to answer";
      this.log("warn", `dropped malformed request from ${from} (${why}): ${parsed.error}`);
      return;
    }
    // The parser reports a well-formed but unknown SIP-Version with the 505
    // reason phrase (RFC 3261 §21.5.7); everything else is a 400 (§8.2.2 ff.)
    // whose reason phrase names the problem.
    const status = parsed.error === "Version Not Supported" ? 505 : 400;
    const reply = buildMalformedReply(parsed.headers!, upstream, status, reasonFromError(parsed.error), generateTag());
    this.log("notice", `malformed request from ${from}: ${parsed.error}; answering ${status}`);
    this.dispatch(upstream.dest, reply, upstream.socket, `${status} reply`);
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
    const upstream = upstreamOf(msg.headers, ctx.rcv, ctx.forceRport);
    if (!isUpstream(upstream)) {
      this.log(
        "err",
        upstream.reason === "no-via"
          ? `cannot address a reply: request has no usable Via (call-id=${msg.callId})`
          : `cannot send a reply over Via transport ${upstream.transport} (call-id=${msg.callId})`,
      );
      return false;
    }
    // buildResponse adds it only when the To has no tag and status > 100.
    const toTag = status > 100 ? this.localTagFor(ctx) : undefined;
    const safeReason = safeReasonPhrase(reason);
    const text = buildLocalResponse(msg, upstream, status, safeReason, toTag, ctx.replyHeaders);
    const sent = this.dispatch(upstream.dest, text, upstream.socket, `${status} reply`);
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
    const hop = nextHopOf(target);
    if (typeof hop === "string") {
      this.log("err", `forward: ${hop} (call-id=${callId})`);
      return false;
    }
    const socket = this.sendingSocket(ctx, hop.proto, hop.host);
    if (!socket) {
      this.log("err", `forward: no ${hop.proto} listen socket to reach ${hop.host} (call-id=${callId})`);
      return false;
    }
    const viaLine = ourViaLine({
      socket,
      aliases: this.aliases,
      branch: statelessBranch(ctx.msg, ctx.requestUri, target),
      rport: ctx.addLocalRport,
      // Serving tenants: the response comes back to the tenant that forwarded
      // the request (see tenant-routing.ts). The next hops see the tenant id.
      params: this.tenants !== undefined ? `;${TENANT_VIA_PARAM}=${ctx.tenant.id}` : undefined,
      inbound: ctx.rcv,
    });
    const text = buildForwardedRequest({
      msg: ctx.msg,
      rcv: ctx.rcv,
      edits: ctx.edits,
      requestUri: ctx.newRequestUri,
      viaLine,
      forceRport: ctx.forceRport,
      // Record-Route for the socket this copy leaves by (RFC 3261 §16.6 step 4, RFC 5658).
      recordRoute: renderRecordRoute(ctx, socket, localSocketOf(ctx.rcv)),
      decrementMaxForwards: false,
      stream: hop.proto === "tcp", // Content-Length mandatory on streams (RFC 3261 §18.3)
    });
    return this.dispatch(hop, text, socket, `${ctx.msg.method} request`);
  }

  /**
   * Stateless response forwarding (RFC 3261 §16.7 step 3, §18.2.2): the top
   * Via must be ours; it is removed and the response goes where the next
   * Via says.
   */
  private forwardResponse(msg: SipMessage, rcv: ReceiveInfo, edits?: MessageEdits): boolean {
    const what = `${msg.status} response (call-id=${msg.callId})`;
    const vias = responseVias(msg);
    if (vias === undefined) {
      this.log("warn", `dropped ${what}: no Via`);
      return false;
    }
    const { top, next } = vias;
    if (!isOwnVia(top, this.listen, this.aliases)) {
      this.log("warn", `dropped ${what}: top Via ${formatVia(top)} is not ours`);
      return false;
    }
    if (!next) {
      this.log("info", `dropped ${what}: no Via after ours, nowhere to forward`);
      return false;
    }
    let connectionId: number | undefined;
    if (viaTransport(next) === "tcp") {
      // Our Via carries the id of the connection the request came in on; it
      // is used only while that connection is still to the address the next
      // Via names, so a stale id cannot misdirect.
      const id = tcpConnectionOf(top);
      const remoteIp = id !== undefined ? this.transport.tcpConnectionRemoteIp(id) : undefined;
      if (remoteIp !== undefined && sameIp(remoteIp, unbracket(next.received ?? next.host))) connectionId = id;
    }
    const dest = responseDestination(next, connectionId);
    if (!dest) {
      this.log("warn", `dropped ${what}: Via transport ${next.transport} not supported`);
      return false;
    }
    const text = relayedResponseText(msg, edits, dest.proto === "tcp");
    const from = rcv.proto === dest.proto ? localSocketOf(rcv) : undefined;
    return this.dispatch(dest, text, from, what);
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


