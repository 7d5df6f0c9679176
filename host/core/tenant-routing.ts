/**
 * The server's multi-tenant receive path: which tenant's script handles a
 * message, with which state, and what is answered when none does or the
 * tenant may not run now.
 *
 * Requests: the tenant is selected by the tenants file's rules (R-URI / To
 * domain, listening socket, source CIDR; host/tenants/select.ts). No tenant:
 * the configured `unmatched` status (404 or 403), never to an ACK (RFC 3261
 * §17.2.1). Over its CPU budget: a retransmission of a request with a
 * transaction is left to that transaction (its last response is resent, a
 * hop-by-hop ACK absorbed, §17.2.1 / §17.2.2); anything else but an ACK gets
 * 503 with Retry-After (§21.5.4) without running the script. A route that
 * fails: the tenant's error policy status, unless the route already answered
 * or forwarded.
 *
 * Each tenant has its own StatefulProxy (transaction table, timers of its
 * transactions) and its own HostServices, whose `proxy` is that one: no KSR
 * call of one tenant can match, cancel or answer another tenant's
 * transactions, and a tenant filling its table does not fill anyone else's.
 * A transaction keeps a lease on the script runner that created it, so its
 * failure, branch and onreply routes run in that script even after a
 * reload.
 *
 * Responses: every request a tenant sends carries `ksr-tenant=<id>` on our
 * Via (stateful branches and stateless forwards), so a response is matched
 * against the transactions of the tenant it names only (of all tenants if
 * it names none we know). A server of one tenant (`ksr run script.js`)
 * leaves the parameter out (TenantRoutingOptions.nameTenantInVia): the
 * next hops see the Vias a single-script proxy would write. A response matching a client transaction belongs
 * to that transaction's tenant; its ksr_reply_route runs in the
 * transaction's script (or the function the tenant's
 * kemi.reply_route_callback names). Any other response (to a request a script
 * forwarded statelessly, or arriving after its transaction ended) goes to
 * the named tenant, else to the tenant the selection rules give for the
 * response (To host, listening socket, source; then the default tenant),
 * else it is dropped.
 *
 * Demoted tenants run their routes asynchronously: the route's promise is
 * followed up when it settles (reply, error policy, end of the request
 * route for the proxy); synchronous tenants take the same code without a
 * promise.
 */
import { LogRateLimit, type TenantQuotas } from "./quota.js";
import type { SipMessage } from "../sip/message.js";
import { parseMessage, topVia } from "../sip/parser.js";
import { viaParam } from "../sip/via.js";
import { StatefulProxy, type ProxyHost, type ProxyOptions, type TransactionRoutes } from "../proxy/proxy.js";
import { RealTimerService, type TimerHandle, type TimerService } from "../transaction/index.js";
import type { RunnerLease, Tenant, TenantRegistry, TenantRouteOutcome, TenantRunner } from "../tenants/registry.js";
import type { RouteOutcome } from "../../sandbox/types.js";
import { MessageContext } from "./context.js";
import type { HostServices, ListenSocket, LogLevel, ReceiveInfo, TenantState } from "./context.js";
import { SipServer, messageLogFields, type Router, type RouterHost, type SipServerOptions } from "./server.js";
import { logEnabled } from "./log.js";
import type { OnsendRoutes } from "./onsend.js";
import { dispatcherOf, setDispatcherEventSink } from "../modules/dispatcher/tenants.js";
import { probeRound } from "../modules/dispatcher/probing.js";
import { isLocalResponse, LocalRequests } from "../proxy/local-requests.js";
import { REQUEST_ROUTE } from "../../runtime/interpreter.js";
import { callIdOwner } from "../tenants/affinity.js";


/** Via parameter naming the tenant whose script forwarded a request statelessly, so that its response finds the tenant. */
export const TENANT_VIA_PARAM = "ksr-tenant";

export interface TenantRoutingOptions {
  /** Timers of the tenants' transactions (default: real timers; tests pass a FakeClock). */
  readonly timers?: TimerService;
  /** Stateful proxy settings (T1/T2/T4, fr timers, table size) of every tenant. */
  readonly proxy?: ProxyOptions;
  /**
   * Write `ksr-tenant=<id>` on our Vias (default true): needed where a
   * response must find its tenant among several (a tenants file, and a
   * tenant worker whose front routes responses by it).
   */
  readonly nameTenantInVia?: boolean;
  /**
   * Call each tenant's kemi.event_route_callback with "core:worker-one-init"
   * now (default true). Kamailio does it in its first worker only: a pool's
   * other workers pass false.
   */
  readonly runWorkerOneInit?: boolean;
  /**
   * This process is worker `index` of a pool of `count` (the front hands
   * each worker the messages whose Call-ID hashes to it): requests the
   * server originates itself use Call-IDs of this worker's own.
   */
  readonly callIdLane?: { readonly index: number; readonly count: number };
}

/** Kamailio's one core event for kemi.event_route_callback (core/action.c): a worker starting. */
export const WORKER_ONE_INIT_EVENT = "core:worker-one-init";

/**
 * The request an event route runs on, as Kamailio builds one for its core
 * events (core/fmsg.c): an OPTIONS to nobody in particular, from the host
 * itself. corex.is_faked_msg answers 1 for it.
 */
const FAKED_REQUEST = [
  "OPTIONS sip:event@localhost SIP/2.0",
  "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKksr.event",
  "From: <sip:event@localhost>;tag=ksr-event",
  "To: <sip:event@localhost>",
  "Call-ID: ksr-core-event",
  "CSeq: 1 OPTIONS",
  "Content-Length: 0",
  "",
  "",
].join("\r\n");

/** A server whose router runs the registry's tenants. The registry stays the caller's to dispose. */
export function tenantServer(registry: TenantRegistry, server: SipServerOptions, routing: TenantRoutingOptions = {}): SipServer<TenantRouting> {
  return new SipServer((host) => new TenantRouting(registry, host, routing), server);
}

/** Reason phrases of the statuses this file sends (RFC 3261 §21). */
const UNMATCHED_REASON: Readonly<Record<403 | 404, string>> = { 403: "Forbidden", 404: "Not Found" };

/** The tenant id in the `ksr-tenant` parameter of a response's top Via (ours, when we sent the request), if any. */
export function tenantNamedByVia(msg: SipMessage): string | undefined {
  const via = topVia(msg);
  const named = via === undefined ? undefined : viaParam(via, TENANT_VIA_PARAM);
  return named === undefined || named === "" ? undefined : named;
}

/** A request no tenant selects: the configured status, never to an ACK (RFC 3261 §17.2.1). */
export function answerUnmatched(services: HostServices, state: TenantState, msg: SipMessage, rcv: ReceiveInfo, status: 403 | 404): void {
  if (msg.method === "ACK") {
    services.log("dbg", `no tenant for ACK call-id=${msg.callId}: dropped`);
    return;
  }
  const ctx = new MessageContext(msg, rcv, "request", state, services);
  services.sendReply(ctx, status, UNMATCHED_REASON[status]);
  services.log("dbg", `no tenant for ${msg.method} ${msg.requestUri} call-id=${msg.callId}: answered ${status}`);
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A tenant's view of the server: the server's services with the tenant's own proxy, log scope and Via parameter. */
class TenantHost implements HostServices {
  proxy: StatefulProxy | undefined;

  private readonly logLimit: LogRateLimit;

  constructor(
    private readonly server: RouterHost,
    private readonly tenantId: string,
    /** Added to our Via of what this tenant forwards (TenantRoutingOptions.nameTenantInVia). */
    readonly viaParams: string | undefined,
    quotas: TenantQuotas,
    /** The tenant's current script, whose onsend route a stateless forward runs. */
    private readonly onsendRoutes: OnsendRoutes,
  ) {
    this.logLimit = new LogRateLimit(quotas.logLinesPerSecond);
  }

  get listen(): readonly ListenSocket[] {
    return this.server.listen;
  }

  get aliases(): readonly string[] {
    return this.server.aliases;
  }

  /** The server's DNS cache (KSR.ipops): DNS answers are the same for every tenant. */
  get dnsRecords(): HostServices["dnsRecords"] {
    return this.server.dnsRecords;
  }

  /** The server's data services; their tables are namespaced by ctx.tenant.id. */
  get data(): HostServices["data"] {
    return this.server.data;
  }

  /**
   * The tenant's log lines, held to its logLinesPerSecond quota
   * (host/core/quota.ts); lines below the tenant's log level are not
   * written and do not count against it.
   */
  log(level: LogLevel, text: string, ctx?: MessageContext, script?: boolean): void {
    if (!logEnabled(level, this.tenantId)) return;
    const tenant = { tenant: this.tenantId };
    if (!this.logLimit.admit(this.server.now(), (notice) => this.server.logAs(this.tenantId, "warn", notice, tenant))) return;
    this.server.logAs(this.tenantId, level, text, ctx === undefined ? tenant : messageLogFields(ctx), script);
  }

  sendReply(ctx: MessageContext, status: number, reason: string): boolean {
    return this.server.sendReply(ctx, status, reason);
  }

  forward(ctx: MessageContext, targetUri?: string): boolean {
    return this.server.forward(ctx, targetUri, this.viaParams, this.onsendRoutes);
  }

  now(): number {
    return this.server.now();
  }
}

/** A transaction's routes: a lease on the runner current when it started (see TenantRegistry.acquire). */
class LeasedRoutes implements TransactionRoutes {
  constructor(readonly lease: RunnerLease) {}

  get scriptPath(): string {
    return this.lease.runner.scriptPath;
  }

  run(name: string, ctx: MessageContext): RouteOutcome | Promise<RouteOutcome> {
    const result = this.lease.run(name, ctx);
    return isPromise(result) ? result.then(asRouteOutcome) : asRouteOutcome(result);
  }

  runNested(name: string, ctx: MessageContext): RouteOutcome {
    return this.lease.runNested(name, ctx);
  }

  hasRoute(name: string): boolean {
    return this.lease.runner.hasRoute(name);
  }

  release(): void {
    this.lease.release();
  }
}

/** A lease's runs are never refused for budget; should one be, it counts as a failed run. */
function asRouteOutcome(outcome: TenantRouteOutcome): RouteOutcome {
  return outcome.status === "over-budget" ? { status: "error", kind: "exception", message: "tenant over its CPU budget" } : outcome;
}

interface TenantSlot {
  readonly tenant: Tenant;
  readonly host: TenantHost;
  readonly proxy: StatefulProxy;
  /** Requests the server sends for the tenant itself (dispatcher pings). */
  readonly local: LocalRequests;
}

export class TenantRouting implements Router {
  private readonly slots = new Map<Tenant, TenantSlot>();
  /** Requests answered with the `unmatched` status (they belong to no tenant's counters). */
  unmatchedRequests = 0;
  /** Responses dropped because no tenant could be found for them. */
  unclaimedResponses = 0;

  constructor(
    readonly registry: TenantRegistry,
    private readonly server: RouterHost,
    options: TenantRoutingOptions = {},
  ) {
    const timers = options.timers ?? new RealTimerService();
    for (const tenant of registry.tenants) {
      // Responses to every request the tenant sends (stateful branches and
      // stateless forwards) name the tenant, so that whoever receives them
      // (this server, or the front of tenant processes) finds it without
      // the transaction table.
      const viaParams = options.nameTenantInVia === false ? undefined : `;${TENANT_VIA_PARAM}=${tenant.id}`;
      const host = new TenantHost(server, tenant.id, viaParams, tenant.state.quotas, {
        hasRoute: (name) => tenant.runner.hasRoute(name),
        runNested: (name, ctx) => tenant.runner.runRoute(name, ctx),
      });
      const proxyHost: ProxyHost = {
        services: host,
        tenant: tenant.state,
        currentRunner: () => tenant.runner,
        transactionRoutes: () => new LeasedRoutes(registry.acquire(tenant)),
        timers,
        socketFor: (proto, h, forced) => server.socketFor(proto, h, forced),
        // Requests the tenant's proxy sends are held to its egress policy;
        // responses go where RFC 3261 §18.2.2 sends them.
        send: (dest, data, from, what, flags, onUnresolved) =>
          server.send(dest, data, from, what, data.startsWith("SIP/2.0 ") ? undefined : tenant.state.egress, flags, onUnresolved),
        knownTargets: (q) => server.knownTargets(q),
        resolveTargets: (q) => server.resolveTargets(q),
        viaParams,
      };
      // The tenant's quota bounds its transactions unless the server sets a bound for all.
      const proxy = new StatefulProxy(proxyHost, { ...options.proxy, maxTransactions: options.proxy?.maxTransactions ?? tenant.state.quotas.transactions });
      host.proxy = proxy;
      const lane = options.callIdLane;
      const local = new LocalRequests(
        {
          timers,
          aliases: host.aliases,
          viaParams,
          socketFor: (proto, h, forced) => server.socketFor(proto, h, forced),
          // Held to the tenant's egress policy, as its proxy's requests.
          send: (dest, data, from, what) => server.send(dest, data, from, what, tenant.state.egress),
        },
        {
          timerConfig: options.proxy?.timerConfig,
          maxTransactions: tenant.state.quotas.transactions,
          ...(lane !== undefined && lane.count > 1 ? { callIdAccepted: (callId: string) => callIdOwner(callId, lane.count) === lane.index } : {}),
        },
      );
      const slot: TenantSlot = { tenant, host, proxy, local };
      this.slots.set(tenant, slot);
      // dispatcher:dst-down/dst-up, run once the route that changed the state has ended.
      setDispatcherEventSink(tenant.id, (callback, event, uri) => setImmediate(() => this.runEvent(slot, callback, event, uri)));
    }
    if (options.runWorkerOneInit !== false) for (const slot of this.slots.values()) this.runWorkerOneInit(slot);
    for (const slot of this.slots.values()) this.scheduleProbing(slot, timers);
  }

  /** Pending probing round of each tenant whose dispatcher probes. */
  private readonly probeTimers = new Map<Tenant, { readonly timers: TimerService; readonly handle: TimerHandle }>();

  /**
   * The dispatcher's probing (ds_ping_interval seconds apart, as Kamailio's
   * ds_check_timer) for a tenant configured with it when the server
   * starts. Every process that runs the tenant probes its own copy of the
   * lists: destination states live in each process, and a state only one
   * process learnt would not steer the others' selection.
   */
  private scheduleProbing(slot: TenantSlot, timers: TimerService): void {
    const interval = dispatcherOf(slot.tenant.id)?.settings.ds_ping_interval ?? 0;
    if (interval <= 0) {
      this.probeTimers.delete(slot.tenant);
      return;
    }
    const handle = timers.setTimer(interval * 1000, () => {
      const d = dispatcherOf(slot.tenant.id);
      if (d !== undefined && d.settings.ds_ping_interval > 0) {
        probeRound(
          slot.tenant.id,
          d,
          (ping, done) =>
            slot.local.send(
              { method: ping.method, uri: ping.dest.uri, from: ping.from, socket: ping.dest.attrs.socket, outboundProxy: ping.dest.attrs.obproxy },
              (result) => {
                if (result.status === 408 || result.status === 503) slot.host.log("dbg", `dispatcher: ping of ${ping.dest.uri}: ${result.status} ${result.reason}`);
                done(result.status);
              },
            ),
          (line) => slot.host.log("info", line.trimEnd()),
        );
      }
      this.scheduleProbing(slot, timers);
    });
    this.probeTimers.set(slot.tenant, { timers, handle });
  }

  /** The server stops: no more probing rounds. */
  stop(): void {
    for (const { timers, handle } of this.probeTimers.values()) timers.clearTimer(handle);
    this.probeTimers.clear();
  }

  /**
   * kemi.event_route_callback with "core:worker-one-init", on a faked
   * request, before any message. Kamailio stops at start when the route
   * drops; here the tenant's other routes still serve, the drop is logged.
   */
  private runWorkerOneInit(slot: TenantSlot): void {
    const name = slot.tenant.state.kemiCallbacks.event;
    if (name === "") return;
    this.runEvent(slot, name, WORKER_ONE_INIT_EVENT, undefined, "kemi.event_route_callback", "Kamailio would stop at start; the tenant's routes serve on");
  }

  /**
   * Call the script's function `name` with `event` on a faked request
   * (its R-URI set to `ruri` when given, as Kamailio's faked message of a
   * dispatcher event carries the destination).
   */
  private runEvent(slot: TenantSlot, name: string, event: string, ruri: string | undefined, setting = "dispatcher event_callback", onDrop = "ignored"): void {
    const parsed = parseMessage(FAKED_REQUEST);
    if (!parsed.ok) return;
    const rcv: ReceiveInfo = { proto: "udp", srcIp: "127.0.0.1", srcPort: 5060, localIp: "127.0.0.1", localPort: 5060, connectionId: -1 };
    const ctx = new MessageContext(parsed.message, rcv, "request", slot.tenant.state, slot.host);
    ctx.eventName = event;
    ctx.faked = true;
    if (ruri !== undefined) ctx.setRequestUri(ruri);
    const settle = (outcome: TenantRouteOutcome): void => {
      if (outcome.status === "missing") slot.host.log("err", `${setting} ${name}: the script defines no such function`);
      else if (outcome.status === "error") slot.host.log("err", `${name}(${event}) ${outcome.kind}: ${outcome.message}`);
      else if (outcome.status === "ok" && ctx.dropped) slot.host.log("err", `${name}(${event}) dropped: ${onDrop}`);
    };
    const result = this.registry.run(slot.tenant, name, ctx);
    if (isPromise(result)) void result.then(settle);
    else settle(result);
  }

  /** The stateful proxy of a tenant (its transactions). */
  proxyOf(tenantId: string): StatefulProxy | undefined {
    const tenant = this.registry.get(tenantId);
    return tenant === undefined ? undefined : this.slots.get(tenant)?.proxy;
  }

  route(msg: SipMessage, _data: string, rcv: ReceiveInfo): void {
    if (msg.kind === "request") this.onRequest(msg, rcv);
    else this.onResponse(msg, rcv);
  }

  /** A retransmission (or hop-by-hop ACK) for a transaction of the tenant the request selects: handed to it without a script. */
  absorbRetransmission(msg: SipMessage, rcv: ReceiveInfo): boolean {
    const tenant = this.registry.select(msg, rcv);
    const proxy = tenant === undefined ? undefined : this.slots.get(tenant)?.proxy;
    return proxy?.absorbRetransmission(msg) === true;
  }

  // ---------------------------------------------------------- requests

  private onRequest(msg: SipMessage, rcv: ReceiveInfo): void {
    const tenant = this.registry.select(msg, rcv);
    if (tenant === undefined) {
      this.rejectUnmatched(msg, rcv);
      return;
    }
    const slot = this.slots.get(tenant)!;
    const ctx = new MessageContext(msg, rcv, "request", tenant.state, slot.host);
    const result = this.registry.run(tenant, REQUEST_ROUTE, ctx);
    if (isPromise(result)) {
      // Like receive() for the synchronous path: nothing escapes, the server carries on.
      result
        .then((outcome) => this.afterRequestRoute(slot, ctx, outcome))
        .catch((err: unknown) => slot.host.log("err", `internal error after the request route of call-id=${msg.callId}: ${errorText(err)}`));
      return;
    }
    this.afterRequestRoute(slot, ctx, result);
  }

  private afterRequestRoute(slot: TenantSlot, ctx: MessageContext, outcome: TenantRouteOutcome): void {
    const { tenant, proxy } = slot;
    const msg = ctx.msg;
    try {
      if (outcome.status === "ok") return; // no reply/relay: silently consumed, as in Kamailio
      if (outcome.status === "over-budget") {
        this.refuseOverBudget(slot, ctx);
        return;
      }
      if (outcome.status === "missing") {
        slot.host.log("err", `script ${tenant.runner.scriptPath} defines no ${REQUEST_ROUTE}(); request ${msg.method} call-id=${msg.callId} not handled`);
        return;
      }
      slot.host.log(
        "err",
        `tenant=${tenant.id} route=${REQUEST_ROUTE} call-id=${msg.callId} ${outcome.kind}: ${outcome.message} (at ${outcome.location ?? tenant.config.scriptPath})`,
      );
      // The tenant's error policy, for requests other than ACK (never
      // answered) that the route neither answered nor sent on.
      const policy = tenant.onError;
      if (msg.method !== "ACK" && ctx.replied === undefined && !ctx.forwarded && policy !== "none") {
        if (slot.host.sendReply(ctx, policy.status, policy.reason)) this.registry.recordReply(tenant, policy.status);
      }
    } finally {
      // The transaction the route created (if any): deferred branches are
      // sent, an unanswered one is released.
      proxy.requestRouteDone(ctx);
    }
  }

  /** The tenant's CPU bucket is empty: the script is not run for this request. */
  private refuseOverBudget(slot: TenantSlot, ctx: MessageContext): void {
    const msg = ctx.msg;
    // A retransmission must get the response its transaction already has
    // (or will have), not a contradicting 503.
    if (slot.proxy.absorbRetransmission(msg)) return;
    if (msg.method === "ACK") {
      slot.host.log("dbg", `over CPU budget: ACK call-id=${msg.callId} dropped without running the script`);
      return;
    }
    const budget = slot.tenant.budget;
    // Time until the bucket is out of debt, whole seconds (RFC 3261 §20.33), at least 1.
    const retryAfter = Math.max(1, Math.ceil(-budget.tokensMs / budget.share / 1000));
    ctx.replyHeaders.push(`Retry-After: ${retryAfter}`);
    if (slot.host.sendReply(ctx, 503, "Service Unavailable")) this.registry.recordReply(slot.tenant, 503);
    slot.host.log("dbg", `over CPU budget: ${msg.method} call-id=${msg.callId} answered 503 without running the script`);
  }

  private rejectUnmatched(msg: SipMessage, rcv: ReceiveInfo): void {
    this.unmatchedRequests++;
    answerUnmatched(this.server, this.server.tenant, msg, rcv, this.registry.unmatchedStatus);
  }

  // --------------------------------------------------------- responses

  private onResponse(msg: SipMessage, rcv: ReceiveInfo): void {
    // Every request a tenant sends names it on our Via (stateful branches,
    // CANCELs, stateless forwards): only that tenant's transactions can
    // match. A response naming no known tenant is tried against all.
    const named = tenantNamedByVia(msg);
    const namedTenant = named === undefined ? undefined : this.registry.get(named);
    const candidates = namedTenant === undefined ? this.slots.values() : [this.slots.get(namedTenant)!];
    // A response to a request the server sent itself (a dispatcher ping) ends there: no route sees it.
    if (isLocalResponse(msg)) {
      for (const slot of candidates) slot.local.receiveResponse(msg);
      return;
    }
    for (const slot of candidates) {
      if (!slot.proxy.matchesResponse(msg)) continue;
      // Kamailio order: the core reply route first, then the transaction.
      // It runs in the transaction's script (a CANCEL's response: the current one).
      const tx = slot.proxy.transactionOfResponse(msg);
      if (tx !== undefined && tx.routes instanceof LeasedRoutes) {
        this.replyRoute(slot, tx.routes.lease, msg, rcv);
      } else {
        const lease = this.registry.acquire(slot.tenant);
        this.replyRoute(slot, lease, msg, rcv, () => lease.release());
      }
      return;
    }
    // No transaction: the named tenant, else the one the rules select.
    const tenant = namedTenant ?? this.registry.select(msg, rcv);
    if (tenant === undefined) {
      this.unclaimedResponses++;
      this.server.log("dbg", `no tenant for ${msg.status} response call-id=${msg.callId}: dropped`);
      return;
    }
    const slot = this.slots.get(tenant)!;
    const lease = this.registry.acquire(tenant);
    this.replyRoute(slot, lease, msg, rcv, () => lease.release());
  }

  /**
   * ksr_reply_route (if the script has one) on the lease's runner, then the
   * tenant's proxy (§17.1.3 matching, onreply route, §16.7), and stateless
   * forwarding by Via for a response no transaction claims.
   */
  private replyRoute(slot: TenantSlot, lease: RunnerLease, msg: SipMessage, rcv: ReceiveInfo, done?: () => void): void {
    const continueWith = (ctx: MessageContext | undefined): void => {
      try {
        if (ctx !== undefined && (ctx.dropped || ctx.forwarded)) return;
        if (slot.proxy.receiveResponse(msg, rcv, ctx?.edits)) return;
        this.server.forwardResponse(msg, rcv, ctx?.edits);
      } finally {
        done?.();
      }
    };
    // The tenant's kemi.reply_route_callback (ksr_reply_route unless renamed; "" for none).
    const routeName = slot.tenant.state.kemiCallbacks.reply;
    // Unknown while the isolate is busy with asynchronous executions: run
    // it, and its outcome ("missing") answers for the next response.
    if (routeName === "" || !lease.runner.hasRoute(routeName, true)) {
      continueWith(undefined);
      return;
    }
    const ctx = new MessageContext(msg, rcv, "reply", slot.tenant.state, slot.host);
    const settle = (outcome: TenantRouteOutcome): void => {
      if (outcome.status === "missing") {
        continueWith(undefined);
        return;
      }
      if (outcome.status === "error") {
        slot.host.log(
          "err",
          `tenant=${slot.tenant.id} route=${routeName} call-id=${msg.callId} ${outcome.kind}: ${outcome.message} (at ${outcome.location ?? lease.runner.scriptPath})`,
        );
        done?.();
        return; // error policy for replies: drop
      }
      continueWith(outcome.status === "ok" ? ctx : undefined);
    };
    const result = lease.run(routeName, ctx);
    if (isPromise(result)) {
      // Like receive() for the synchronous path: nothing escapes, the server carries on.
      result.then(settle).catch((err: unknown) => {
        slot.host.log("err", `internal error after the reply route of call-id=${msg.callId}: ${errorText(err)}`);
      });
      return;
    }
    settle(result);
  }

  /** One line per tenant with its counters, then the line of messages no tenant took (for SIGUSR2 and tests). */
  counterLines(): string[] {
    return [
      ...this.tenantCounterLines(),
      `no tenant: requests answered ${this.registry.unmatchedStatus}=${this.unmatchedRequests} responses dropped=${this.unclaimedResponses}`,
    ];
  }

  /** One line per tenant with its counters. */
  tenantCounterLines(): string[] {
    return this.registry.tenants.map((t) => {
      const c = t.counters;
      const replies = Object.entries(c.repliesByClass)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      const cpuMs = Number(c.cpuNs / 1000n) / 1000;
      return (
        `tenant ${t.id}: mode=${t.mode} messages=${c.messages} route-errors=${c.routeErrors} timeouts=${c.timeouts} ` +
        `oom-restarts=${c.oomRestarts} over-budget=${c.overBudget} demotions=${c.demotions} reloads=${c.reloads} ` +
        `reload-failures=${c.reloadFailures} cpu-ms=${cpuMs.toFixed(1)} budget-ms=${t.budget.tokensMs.toFixed(1)} ` +
        `transactions=${this.slots.get(t)!.proxy.table.serverCount} idle-disposals=${c.idleDisposals} replies: ${replies}`
      );
    });
  }
}
