/**
 * The SIP server: transport → parse → Router, and the HostServices the KSR
 * functions use to reply and forward. One inbound path: a malformed
 * request is answered here, every well-formed message goes to the Router
 * (the tenants' scripts, host/core/tenant-routing.ts — a single script is a
 * registry of one tenant —, or the front of tenant worker processes).
 *
 * Everything here is stateless (no transactions); the wire messages come
 * from host/core/outbound.ts: replies are addressed by the request's Via
 * (RFC 3261 §18.2.2, RFC 3581), responses are forwarded by their Via
 * (§16.7 step 3, §16.11), requests are forwarded with a Via whose branch
 * is derived from the incoming one (§16.11).
 */
import type { EgressPolicy } from "./egress.js";
import { isIP } from "node:net";
import type { MessageEdits, SipMessage } from "../sip/message.js";
import { parseMessage, statusForParseError, topVia, DEFAULT_PARSE_LIMITS, type ParseFailure, type ParseLimits } from "../sip/parser.js";
import { generateTag } from "../sip/serialize.js";
import { formatVia } from "../sip/via.js";
import { renderRecordRoute } from "../proxy/record-route.js";
import { TransportLayer, type PolicyCounters, type StreamConnectionLimits, type TlsSettings, type TransportOptions, type WebSocketSettings } from "../transport/index.js";
import type { TcpConnectionEntry } from "../transport/tcp.js";
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
  sourceUpstream,
  viaTransport,
  type Destination,
} from "./outbound.js";
import { ContextSlot, MessageContext, newTenantState } from "./context.js";

/** The To tag of the local replies to a request (one per request, RFC 3261 §8.2.6.2). */
const localTags = new ContextSlot<string>("core.localTag");
import { runOnsendRoute, type OnsendRoutes } from "./onsend.js";
import { CachingDnsLookups, NextHopResolver, NodeDnsLookups, resolveOptionsFor, type KnownTargets } from "../dns/resolver.js";
import type { DnsLookups, HopQuery, ResolveOptions, Target } from "../dns/rfc3263.js";
import { advertisedVia, forwardSendFlags, replySendFlags, type SendFlags } from "../modules/sendopts.js";
import type { HostServices, ListenSocket, LogLevel, ReceiveInfo, TenantState, TransportProto } from "./context.js";
import { log as writeLog, logEnabled, type LogFields } from "./log.js";
import type { DataServices } from "../storage/index.js";
import { LoadShedder, ReceiveQueueProbe, type OverloadOptions } from "./overload.js";
import { WireCounters } from "../metrics/wire.js";

export interface SipServerOptions {
  readonly listen: readonly ListenSocket[];
  /** Extra host[:port] names that mean "us" (Via checks, is_myself). */
  readonly aliases?: readonly string[];
  /** Tenant id: log scope and TenantState id (with a TenantRegistry: of the server's own log lines). Default "default". */
  readonly tenantId?: string;
  /** Limits of TCP connections (host/transport/connection-policy.ts); defaults where not given. */
  readonly streamLimits?: Partial<StreamConnectionLimits>;
  /** Certificate, key and verification of the tls and wss listen sockets (host/transport/tls.ts). */
  readonly tls?: TlsSettings;
  /** Handshake checks and keep-alive of the ws/wss listen sockets (host/transport/ws.ts). */
  readonly webSocket?: WebSocketSettings;
  readonly parseLimits?: ParseLimits;
  /** Clock for HostServices.now (tests). */
  readonly now?: () => number;
  /** Where DNS answers come from (default: Node's resolver asking `dnsServers`). */
  readonly dns?: DnsLookups;
  /** DNS servers ("IP:PORT"), `--dns-server`; default: the system's. */
  readonly dnsServers?: readonly string[];
  /**
   * Builds the transport (default: TransportLayer, real sockets). The
   * testing harness (host/testing) passes one that records what would be
   * sent, so scripts are tested against this very server logic.
   */
  readonly transport?: (options: TransportOptions) => ServerTransport;
  /** Location, subscriber and address tables for KSR.registrar / auth_db / permissions. */
  readonly data?: DataServices;
  /** Load shedding (host/core/overload.ts); none when not given. The front of tenant worker processes sheds per tenant instead (host/tenants/processes.ts). */
  readonly overload?: OverloadOptions;
}

/**
 * What the server does with every well-formed message it receives: run the
 * routes of the tenant it belongs to (TenantRouting, host/core/tenant-routing.ts;
 * `ksr run script.js` is a registry of one tenant), or hand it on with the
 * bytes it arrived as (the front of tenant worker processes,
 * host/tenants/processes.ts). Malformed requests are answered by the
 * server before any router sees them.
 */
export interface Router {
  /** `data` is the message as received. An exception is logged by the server, which carries on. */
  route(msg: SipMessage, data: string, rcv: ReceiveInfo): void;
  /**
   * Hands a request that retransmits one with a transaction (or the ACK of
   * a non-2xx) to that transaction without running a script: true then.
   * Used while shedding load (host/core/overload.ts); a router without
   * transactions of its own leaves it out.
   */
  absorbRetransmission?(msg: SipMessage, rcv: ReceiveInfo): boolean;
  /** The server stops: end the router's own timers (dispatcher probing). */
  stop?(): void;
}

/**
 * What a router gets of the server: its HostServices (replies and
 * stateless forwarding, the wire messages of host/core/outbound.ts) with
 * the state and log scope of the server itself, its sockets and its sends.
 */
export interface RouterHost extends HostServices {
  /** State of the server itself, for contexts that belong to no tenant (e.g. the unmatched reply). */
  readonly tenant: TenantState;
  /**
   * Stateless forwarding (see HostServices.forward); `viaParams` are added
   * to our Via of a forwarded request (e.g. the tenant's, ";ksr-tenant=a");
   * `onsend` is the script whose onsend route sees a request before it leaves.
   */
  forward(ctx: MessageContext, targetUri?: string, viaParams?: string, onsend?: OnsendRoutes): boolean;
  /** Stateless response forwarding by Via (RFC 3261 §16.7 step 3, §18.2.2), with the reply route's edits. */
  forwardResponse(msg: SipMessage, rcv: ReceiveInfo, edits: MessageEdits | undefined): boolean;
  /** The listen socket a message to `host` leaves by; `forced` is the script's choice (KSR.force_send_socket). */
  socketFor(proto: TransportProto, host: string, forced: ListenSocket | undefined): ListenSocket | undefined;
  /**
   * Hands a message to the transport, resolving a host name first. Returns
   * false when it cannot be sent now (logged, naming `what`); after an
   * asynchronous lookup, failures are logged instead.
   */
  /** `egress`: the sending tenant's policy for a request (host/core/egress.ts), checked on the address sent to. */
  /**
   * `flags`: what a stream transport does with this message (KSR.set_forward_close and co, host/modules/sendopts.ts).
   * `onUnresolved`: called when the message turns out not to be sendable after send() returned: a name not looked up lately that does not resolve, or (a worker process's transport) a send the front could not make.
   */
  send(
    dest: Destination,
    data: string,
    from: ListenSocket | undefined,
    what: string,
    egress?: EgressPolicy,
    flags?: SendFlags,
    onUnresolved?: () => void,
  ): boolean;
  /** What is cached of a next hop's RFC 3263 resolution (host/dns/resolver.ts): its targets in order, "unresolvable", or undefined. */
  knownTargets(q: HopQuery): KnownTargets;
  /** Resolve a next hop (RFC 3263 §4) in the background: its targets in order, empty when it does not resolve. */
  resolveTargets(q: HopQuery): Promise<readonly Target[]>;
  /** A log line in another scope than the server's own (a tenant's), with its fields (host/core/log.ts). */
  logAs(scope: string, level: LogLevel, text: string, fields?: LogFields, script?: boolean): void;
  /** A request refused for overload: 503 with Retry-After, To tag `toTag` (host/core/overload.ts). */
  sendShedReply(msg: SipMessage, rcv: ReceiveInfo, retryAfterS: number, toTag: string): void;
}

/** What the server needs of a transport; TransportLayer is the real one (a recording one has no connection policy). */
export type ServerTransport = Pick<
  TransportLayer,
  "start" | "stop" | "isStarted" | "send" | "socketFor" | "tcpConnectionRemoteIp" | "tcpConnectionCount"
> &
  Partial<Pick<TransportLayer, "tcpCounterLine" | "tcpPolicyCounters" | "tcpConnections" | "tlsPolicyCounters" | "tlsConnectionCount" | "reloadTls" | "wsConnectionCount" | "wsPolicyCounters">>;

export class SipServer<R extends Router = Router> implements RouterHost {
  readonly tenant: TenantState;
  readonly aliases: readonly string[];
  /** See SipServerOptions.data; shared by every tenant, each keyed by its tenant id. */
  readonly data: DataServices | undefined;
  /** Where every well-formed message goes. */
  readonly router: R;
  private readonly transport: ServerTransport;
  private readonly parseLimits: ParseLimits;
  private readonly clock: () => number;
  /** RFC 3263 resolution of next hops and the DNS record cache (KSR.ipops reads it too). */
  readonly resolver: NextHopResolver;
  private resolveOptionsCache: { readonly listen: readonly ListenSocket[]; readonly options: ResolveOptions } | undefined;
  private readonly configured: readonly ListenSocket[];
  private boundSockets: ListenSocket[] = [];
  /** One To tag per request context for every local reply to it (§8.2.6.2). */
  /** Load shedding of the receive path, when configured; the probe measures the receive queue unless a delay source is given. */
  readonly shedder: LoadShedder | undefined;
  /** Messages received, sent and dropped by this server (host/metrics/wire.ts). */
  readonly wire = new WireCounters();
  private readonly queueProbe: ReceiveQueueProbe | undefined;

  /**
   * `router` builds the router over this server (it stays the caller's to
   * dispose, with whatever it runs).
   */
  constructor(router: (host: RouterHost) => R, options: SipServerOptions) {
    this.configured = options.listen;
    this.aliases = options.aliases ?? [];
    this.tenant = newTenantState(options.tenantId ?? "default");
    this.parseLimits = options.parseLimits ?? DEFAULT_PARSE_LIMITS;
    this.clock = options.now ?? Date.now;
    const dns = new CachingDnsLookups(options.dns ?? new NodeDnsLookups(options.dnsServers), () => this.clock());
    this.resolver = new NextHopResolver(dns, () => this.clock(), () => this.resolveOptions(), Math.random, undefined, (text) => this.log("warn", text));
    this.data = options.data;
    const createTransport = options.transport ?? ((o: TransportOptions) => new TransportLayer(o));
    this.transport = createTransport({
      listen: options.listen,
      onMessage: (data, rcv) => this.receive(data, rcv),
      parseLimits: this.parseLimits,
      streamLimits: options.streamLimits,
      tls: options.tls,
      webSocket: options.webSocket,
    });
    this.router = router(this);
    const overload = options.overload;
    if (overload !== undefined) {
      const probe = overload.delaySource === undefined ? new ReceiveQueueProbe(Date.now, () => this.shedder?.poll()) : undefined;
      this.queueProbe = probe;
      this.shedder = new LoadShedder(overload, overload.delaySource ?? (() => probe!.delayMs()), this.clock, {
        toTransaction: (msg, rcv) => (this.router.absorbRetransmission?.(msg, rcv) === true ? "absorbed" : "new"),
        sendShedReply: (msg, rcv, retryAfterS, toTag) => this.sendShedReply(msg, rcv, retryAfterS, toTag),
        log: (level, text) => this.log(level, text),
      });
    } else {
      this.queueProbe = undefined;
      this.shedder = undefined;
    }
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
    this.router.stop?.();
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

  /** The open TCP connections (`ksr ctl tcp list`); none for a transport that keeps no sockets of its own. */
  tcpConnections(): TcpConnectionEntry[] {
    return this.transport.tcpConnections?.() ?? [];
  }

  /** What the TCP connection policy refused and closed so far; undefined for a transport without one. */
  get tcpPolicyCounters(): Readonly<PolicyCounters> | undefined {
    return this.transport.tcpPolicyCounters;
  }

  /** What the TLS connection policy refused and closed so far (handshake timeouts and failures too); undefined without one. */
  get tlsPolicyCounters(): Readonly<PolicyCounters> | undefined {
    return this.transport.tlsPolicyCounters;
  }

  get tlsConnectionCount(): number {
    return this.transport.tlsConnectionCount ?? 0;
  }

  /** Open WebSocket connections (ws and wss). */
  get wsConnectionCount(): number {
    return this.transport.wsConnectionCount ?? 0;
  }

  /** What the WebSocket connection policy refused and closed so far; undefined for a transport without one. */
  get wsPolicyCounters(): Readonly<PolicyCounters> | undefined {
    return this.transport.wsPolicyCounters;
  }

  /** Read the TLS certificate files again (new connections use them); an error text when they cannot be used. */
  reloadTls(): string | undefined {
    return this.transport.reloadTls === undefined ? "this transport has no TLS" : this.transport.reloadTls();
  }

  /** The TCP connection policy's counters as one log line (SIGUSR2); undefined for a transport without one. */
  tcpCounterLine(): string | undefined {
    return this.transport.tcpCounterLine?.();
  }

  now(): number {
    return this.clock();
  }

  log(level: LogLevel, text: string, ctx?: MessageContext, script?: boolean): void {
    if (!logEnabled(level, this.tenant.id)) return;
    this.logAs(this.tenant.id, level, text, ctx === undefined ? undefined : messageLogFields(ctx), script);
  }

  logAs(scope: string, level: LogLevel, text: string, fields?: LogFields, script?: boolean): void {
    writeLog(level, scope, text, fields, script);
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
      const msg = parsed.message;
      this.wire.received(msg.kind, msg.method, msg.status);
      if (this.shedder?.intercept(msg, rcv) === true) return;
      this.router.route(msg, data, rcv);
    } catch (err) {
      this.log("err", `internal error handling a message from ${describeSource(rcv)}: ${errorText(err)}`);
    }
  }

  /** A request refused for overload: 503 with Retry-After (RFC 3261 §21.5.4, §20.33), To tag `toTag` (host/core/overload.ts). */
  sendShedReply(msg: SipMessage, rcv: ReceiveInfo, retryAfterS: number, toTag: string): void {
    const ctx = new MessageContext(msg, rcv, "request", this.tenant, this);
    ctx.replyHeaders.push(`Retry-After: ${retryAfterS}`);
    localTags.set(ctx, toTag);
    this.sendReply(ctx, 503, "Service Unavailable");
  }

  private rejectMalformed(parsed: ParseFailure, rcv: ReceiveInfo): void {
    const from = describeSource(rcv);
    if (parsed.kind !== "request") {
      this.wire.dropped("malformed");
      this.log("warn", `dropped malformed ${parsed.kind ?? "message"} from ${from}: ${parsed.error}`);
      return;
    }
    if (parsed.method === "ACK") {
      // An ACK is never answered (RFC 3261 §17.2.1 / §8.2.6).
      this.wire.dropped("malformed");
      this.log("warn", `dropped malformed ACK from ${from}: ${parsed.error}`);
      return;
    }
    let upstream = parsed.headers === undefined ? undefined : upstreamOf(parsed.headers, rcv, false);
    if (upstream !== undefined && !isUpstream(upstream) && upstream.reason === "no-via") {
      upstream = sourceUpstream(parsed.headers!, rcv) ?? upstream;
    }
    if (upstream === undefined || !isUpstream(upstream)) {
      const why = upstream?.reason === "transport" ? `Via transport ${upstream.transport} not supported` : "no usable Via to answer";
      this.wire.dropped("malformed");
      this.log("warn", `dropped malformed request from ${from} (${why}): ${parsed.error}`);
      return;
    }
    const status = statusForParseError(parsed.error);
    const reply = buildMalformedReply(parsed.headers!, upstream, status, reasonFromError(parsed.error), generateTag());
    this.log("notice", `malformed request from ${from}: ${parsed.error}; answering ${status}`);
    if (this.send(upstream.dest, reply, upstream.socket, `${status} reply`)) this.wire.slReply(status);
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
    const upstream = upstreamOf(msg, ctx.rcv, ctx.forceRport);
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
    const sent = this.send(upstream.dest, text, upstream.socket, `${status} reply`, undefined, replySendFlags(ctx));
    if (sent) {
      ctx.replied = { status, reason: safeReason };
      this.wire.slReply(status);
    }
    return sent;
  }

  forward(ctx: MessageContext, targetUri?: string, viaParams?: string, onsend?: OnsendRoutes): boolean {
    if (ctx.msg.kind === "response") {
      const ok = this.forwardResponse(ctx.msg, ctx.rcv, ctx.edits);
      if (ok) ctx.forwarded = true;
      return ok;
    }
    const ok = this.forwardRequest(ctx, targetUri ?? ctx.dstUri ?? ctx.requestUri, viaParams, onsend);
    if (ok) ctx.forwarded = true;
    return ok;
  }

  // ------------------------------------------------------- forwarding

  /**
   * Stateless request forwarding (Kamailio `forward`, RFC 3261 §16.11).
   * The destination URI gives host, port and transport; a host name is
   * resolved by RFC 3263 §4 (host/dns/). A resolution in the cache is used
   * now: the first target, and the next ones in turn when sending to one
   * fails at once (§4.3). Otherwise the request is built now (for every
   * transport the resolution may choose) and sent when the resolution
   * ends: forward() returns true, and a name that does not resolve is
   * logged.
   */
  private forwardRequest(ctx: MessageContext, target: string, viaParams: string | undefined, onsend: OnsendRoutes | undefined): boolean {
    const callId = ctx.msg.callId;
    const hop = nextHopOf(target);
    if (typeof hop === "string") {
      this.log("err", `forward: ${hop} (call-id=${callId})`);
      return false;
    }
    const build = (proto: TransportProto, host: string): { text: string; socket: ListenSocket } | undefined => {
      const socket = this.sendingSocket(ctx, proto, host);
      if (!socket) return undefined;
      const viaLine = ourViaLine({
        socket,
        aliases: this.aliases,
        branch: statelessBranch(ctx.msg, ctx.requestUri, target),
        rport: ctx.addLocalRport,
        params: viaParams,
        inbound: ctx.rcv,
        ...advertisedVia(ctx),
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
        stream: proto !== "udp", // Content-Length mandatory on streams (RFC 3261 §18.3)
      });
      return { text, socket };
    };
    const what = `${ctx.msg.method} request`;
    const flags = forwardSendFlags(ctx);
    const egress = ctx.tenant.egress;
    const query = hop.query;
    // The request for each transport with a listen socket: what a later
    // target (failover, or a resolution that ends after this call) is sent.
    let byProto: Map<TransportProto, { text: string; socket: ListenSocket }> | undefined;
    const texts = (): Map<TransportProto, { text: string; socket: ListenSocket }> => {
      if (byProto === undefined) {
        byProto = new Map();
        for (const proto of new Set(this.listen.map((l) => l.proto))) {
          const b = build(proto, hop.host);
          if (b !== undefined) byProto.set(proto, b);
        }
      }
      return byProto;
    };
    const known: KnownTargets = query === undefined ? [{ proto: hop.proto, ip: hop.host, port: hop.port }] : this.resolver.known(query);
    // A name resolved lately is decided now: its targets, or a failed forward
    // (Kamailio's forward fails for an unresolvable destination).
    if (known === "unresolvable") {
      this.log("err", `forward: cannot resolve ${hop.host} (call-id=${callId})`);
      return false;
    }
    if (known !== undefined) {
      // §4.3: on to the next target when one cannot be sent to.
      for (const [i, t] of known.entries()) {
        const built = build(t.proto, t.ip);
        if (built === undefined) {
          this.log("err", `forward: no ${t.proto} listen socket to reach ${t.ip} (call-id=${callId})`);
          continue;
        }
        // Kamailio forward_request: a drop in the onsend route fails the forward.
        if (!runOnsendRoute(ctx, { proto: t.proto, ip: t.ip, port: t.port, buf: built.text, from: built.socket }, onsend)) return false;
        // After this call the onsend route can no longer run: a target
        // tried later (its connection failed) goes without it, and only when
        // the script has no onsend route to bypass.
        const rest = known.slice(i + 1);
        const viaOnsend = onsend?.hasRoute(ctx.tenant.kemiCallbacks.onsend) === true;
        let later: (() => void) | undefined;
        if (rest.length > 0 && !viaOnsend) {
          const all = texts();
          later = () => void this.sendToTargets(rest, all, what, egress, flags);
        }
        if (this.send({ proto: t.proto, host: t.ip, port: t.port }, built.text, built.socket, what, egress, this.withConnectFailover(flags, later, t, what))) return true;
      }
      return false;
    }
    // Not resolved lately: built now for each transport the resolution may
    // pick (the context may change after this call), sent once it is known;
    // no onsend route for it.
    const built = texts();
    void this.resolver.resolve(query!).then((targets) => {
      if (!this.transport.isStarted) return;
      if (targets.length === 0) {
        this.wire.dropped("unresolved");
        this.logAs(this.tenant.id, "err", `cannot resolve ${hop.host} to send ${what}`, { dst: `${hop.proto}:${formatHostPort(hop.host, hop.port)}` });
        return;
      }
      this.sendToTargets(targets, built, `${what} (${hop.host})`, egress, flags);
    });
    return true;
  }

  /**
   * Sends a built request to the first target it can, trying the next one
   * when sending fails at once or, over a stream, when the connection opened
   * for it fails (RFC 3263 §4.3). True when one took it (for now).
   */
  private sendToTargets(
    targets: readonly Target[],
    texts: ReadonlyMap<TransportProto, { text: string; socket: ListenSocket }>,
    what: string,
    egress: EgressPolicy | undefined,
    flags: SendFlags | undefined,
  ): boolean {
    for (const [i, t] of targets.entries()) {
      const built = texts.get(t.proto);
      if (built === undefined) continue;
      const rest = targets.slice(i + 1);
      const next = rest.length === 0 ? undefined : () => void this.sendToTargets(rest, texts, what, egress, flags);
      if (this.send({ proto: t.proto, host: t.ip, port: t.port }, built.text, built.socket, what, egress, this.withConnectFailover(flags, next, t, what))) return true;
    }
    return false;
  }

  /** `flags` plus, when there is a next target, going on to it when the connection opened for the message to `target` fails. */
  private withConnectFailover(flags: SendFlags | undefined, next: (() => void) | undefined, target: Target, what: string): SendFlags | undefined {
    if (next === undefined) return flags;
    return {
      ...flags,
      onConnectFailed: () => {
        if (!this.transport.isStarted) return;
        this.logAs(this.tenant.id, "warn", `${what}: connection to ${target.proto}:${formatHostPort(target.ip, target.port)} failed, trying the next target (RFC 3263 §4.3)`);
        next();
      },
    };
  }

  /**
   * Stateless response forwarding (RFC 3261 §16.7 step 3, §18.2.2): the top
   * Via must be ours; it is removed and the response goes where the next
   * Via says.
   */
  forwardResponse(msg: SipMessage, rcv: ReceiveInfo, edits: MessageEdits | undefined): boolean {
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
    const nextProto = viaTransport(next);
    if (nextProto !== undefined && nextProto !== "udp") {
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
    const text = relayedResponseText(msg, edits, dest.proto !== "udp");
    const from = rcv.proto === dest.proto ? localSocketOf(rcv) : undefined;
    return this.send(dest, text, from, what);
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
    return this.socketFor(proto, dstHost, forced);
  }

  socketFor(proto: TransportProto, host: string, forced: ListenSocket | undefined): ListenSocket | undefined {
    // For a host name we do not know the family yet: use the socket of the
    // first family we listen on and resolve the name in that family.
    const probe = isIP(host) !== 0 ? host : this.listen.find((l) => l.proto === proto)?.ip ?? "0.0.0.0";
    return this.transport.socketFor(proto, probe, forced);
  }

  /** A request to an address the tenant may not send to: refused without sending, with a log line. */
  private egressRefused(egress: EgressPolicy | undefined, ip: string, what: string): boolean {
    const why = egress?.refusal(unbracket(ip));
    if (why === undefined) return false;
    this.wire.dropped("egress_refused");
    this.logAs(this.tenant.id, "warn", `${what} to ${ip} not sent: ${why}`, { dst: ip });
    return true;
  }

  /** What the resolver may choose from, made anew only when the listen sockets change (at start). */
  private resolveOptions(): ResolveOptions {
    const listen = this.listen;
    if (this.resolveOptionsCache?.listen !== listen) this.resolveOptionsCache = { listen, options: resolveOptionsFor(listen) };
    return this.resolveOptionsCache.options;
  }

  knownTargets(q: HopQuery): KnownTargets {
    return this.resolver.known(q);
  }

  get dnsRecords(): CachingDnsLookups {
    return this.resolver.dns;
  }

  resolveTargets(q: HopQuery): Promise<readonly Target[]> {
    return this.resolver.resolve(q);
  }

  /**
   * Hands a message to the transport. A host name in `dest` (a Via's
   * sent-by, a CANCEL's hop) is resolved as a URI with its port and
   * transport written (RFC 3263 §4.2: A/AAAA only), from the cache when it
   * is there, else in the background (true is returned; a failure is
   * logged and `onUnresolved` called).
   */
  send(
    dest: Destination,
    text: string,
    from: ListenSocket | undefined,
    what: string,
    egress?: EgressPolicy,
    flags?: SendFlags,
    onUnresolved?: () => void,
  ): boolean {
    if (isIP(dest.host) !== 0) return this.sendToAddress(dest, dest.host, text, from, what, egress, flags, onUnresolved);
    const query: HopQuery = { host: dest.host, port: dest.port, transport: dest.proto, secure: false };
    const known = this.resolver.known(query);
    if (known === "unresolvable") {
      this.wire.dropped("unresolved");
      this.logAs(this.tenant.id, "err", `cannot resolve ${dest.host} to send ${what}`, { dst: `${dest.proto}:${formatHostPort(dest.host, dest.port)}` });
      return false;
    }
    if (known !== undefined) return this.sendToAddress(dest, addressFor(known, from), text, from, what, egress, flags, onUnresolved);
    void this.resolver.resolve(query).then((targets) => {
      if (!this.transport.isStarted) return;
      if (targets.length === 0) {
        this.wire.dropped("unresolved");
        this.logAs(this.tenant.id, "err", `cannot resolve ${dest.host} to send ${what}`, { dst: `${dest.proto}:${formatHostPort(dest.host, dest.port)}` });
        onUnresolved?.();
        return;
      }
      this.sendToAddress(dest, addressFor(targets, from), text, from, `${what} (${dest.host})`, egress, flags, onUnresolved);
    });
    return true;
  }

  private sendToAddress(
    dest: Destination,
    ip: string,
    text: string,
    from: ListenSocket | undefined,
    what: string,
    egress: EgressPolicy | undefined,
    flags: SendFlags | undefined,
    onUnresolved?: () => void,
  ): boolean {
    if (this.egressRefused(egress, ip, what)) return false;
    // onUnresolved also hears of a send a worker process's transport hands to the front and the front cannot make.
    const ok = this.transport.send(dest.proto, ip, dest.port, text, dest.connectionId, from, flags, onUnresolved);
    if (ok) this.wire.sent(text);
    else {
      this.wire.dropped("send_failed");
      const dst = `${dest.proto}:${formatHostPort(ip, dest.port)}`;
      this.logAs(this.tenant.id, "err", `failed to send ${what} to ${dst}`, { dst });
    }
    return ok;
  }

  private localTagFor(ctx: MessageContext): string {
    let tag = localTags.get(ctx);
    if (tag === undefined) {
      tag = generateTag();
      localTags.set(ctx, tag);
    }
    return tag;
  }
}

/** The first target in the family of the socket sending (any, when none is of it). */
function addressFor(targets: readonly Target[], from: ListenSocket | undefined): string {
  const family = from !== undefined && isIP(from.ip) === 6 ? 6 : 4;
  return (targets.find((t) => isIP(t.ip) === family) ?? targets[0]!).ip;
}

/** The log fields of a record about ctx's message: its tenant, route kind, Call-ID and source. */
export function messageLogFields(ctx: MessageContext): LogFields {
  return { tenant: ctx.tenant.id, route: ctx.routeType, callId: ctx.msg.callId, ...viaBranchField(ctx.msg), src: describeSource(ctx.rcv) };
}

/** The top Via's branch, when the message has one (a hand-built message in a test may not have From/To and so no parsed fields). */
function viaBranchField(msg: SipMessage): { branch?: string } {
  try {
    const branch = topVia(msg)?.branch;
    return branch === undefined || branch === "" ? {} : { branch };
  } catch {
    return {};
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


