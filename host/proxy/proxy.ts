/**
 * The stateful proxy core (RFC 3261 §16 on top of the §17 transactions),
 * with Kamailio tm's behaviour where a script can observe it. KSR.tm and
 * KSR.tmx (host/modules/tm.ts, tmx.ts) are thin wrappers over this class.
 *
 * Requests: nothing happens until the script asks. t_newtran / t_relay /
 * t_send_reply look the request up in the transaction table: a
 * retransmission makes the server transaction resend its last response
 * (return 0), an ACK for a non-2xx final is absorbed hop by hop (0), an
 * ACK for a 2xx is end to end (forwarded without a transaction), anything
 * else gets a server transaction. t_relay then forks to the R-URI branch
 * and the appended branches, each a client transaction (§16.6), running
 * the branch route per branch.
 *
 * Responses: the server's reply route runs first; then receiveResponse
 * matches the response to a branch (§17.1.3), runs the onreply route and
 * applies §16.7: 100 absorbed, other provisionals relayed, every 2xx
 * relayed at once (INVITE: the other branches cancelled), 6xx cancels the
 * others, and when every branch is done the failure route runs (it may
 * fork again) or the best response goes upstream.
 *
 * Timers: per branch Kamailio's fr_timer (no response yet) and
 * fr_inv_timer (INVITE after a provisional; RFC 3261 timer C, §16.8). On
 * expiry the branch counts as a 408, and an INVITE branch that had a
 * provisional response is cancelled.
 *
 * Everything runs synchronously on the caller's stack (message receipt or
 * a timer); routes run through the transaction's TransactionRoutes. A
 * route of a script that runs asynchronously (a demoted tenant) returns a
 * promise: the transaction logic carries on when it settles, and the
 * transaction's later responses and timer events wait for it, so they are
 * handled in the order they came, as in the synchronous case. Branch routes
 * always run synchronously, nested inside the t_relay call that creates the
 * branches (see ScriptRunner.runRoute).
 */
import { isIP } from "node:net";
import { runOnsendRoute } from "../core/onsend.js";
import type { KnownTargets } from "../dns/resolver.js";
import type { HopQuery, Target } from "../dns/rfc3263.js";
import { advertisedVia, forwardSendFlags, replySendFlags, type SendFlags } from "../modules/sendopts.js";
import type {
  HostServices,
  ListenSocket,
  MessageContext as MessageContextType,
  ReceiveInfo,
  RouteType,
  TenantState,
  TransportProto,
} from "../core/context.js";
import { carryMessageState, ContextSlot, MessageContext } from "../core/context.js";
import {
  buildForwardedRequest,
  buildLocalResponse,
  isUpstream,
  localSocketOf,
  nextHopOf,
  ourViaLine,
  relayedResponseText,
  safeReasonPhrase,
  upstreamOf,
  type Destination,
  type NextHop,
} from "../core/outbound.js";
import { ownCopy, type MessageEdits, type SipMessage } from "../sip/message.js";
import { fromHeader, headersByKey, toHeader } from "../sip/parser.js";
import { headerParam } from "../sip/nameaddr.js";
import { buildResponse, generateBranch, generateTag } from "../sip/serialize.js";
import {
  buildCancel,
  InviteClientTransaction,
  InviteServerTransaction,
  NonInviteClientTransaction,
  NonInviteServerTransaction,
  resolveTimerConfig,
  TransactionTable,
  type ClientEntry,
  type ClientTransaction,
  type ClientTransactionUser,
  type ServerEntry,
  type ServerTransaction,
  type ServerTransactionUser,
  type TimerConfig,
  type TimerService,
} from "../transaction/index.js";
import { parseListenSocket } from "../transport/listen-socket.js";
import { avpStore, setAvpStore } from "../modules/pv.js";
import type { RouteOutcome, RouteRunner } from "../../sandbox/types.js";
import { appendedBranches, clearBranches, markRuriConsumed, ruriIsNew } from "./branch-set.js";
import { pathRouteOf, setPathRoute } from "./path-route.js";
import { loadEdits } from "./messages.js";
import {
  defaultSettings,
  ProxyBranch,
  ProxyTransaction,
  saveRequest,
  type BranchFinal,
  type TmSettings,
} from "./proxy-transaction.js";
import { renderRecordRoute } from "./record-route.js";
import { pickBestResponse, upstreamStatus } from "./response-selection.js";

/** Kamailio tm defaults: fr_timer 30 s, fr_inv_timer 120 s, wt_timer 5 s. */
export const DEFAULT_FR_TIMER_MS = 30_000;
export const DEFAULT_FR_INV_TIMER_MS = 120_000;
export const DEFAULT_WAIT_TIMER_MS = 5_000;

/** Kamailio's E_SCRIPT: t_newtran was already called for this message. */
export const E_SCRIPT = -10;

/** The routes of one transaction: the script that started it, for as long as the transaction lives. */
export interface TransactionRoutes {
  readonly scriptPath: string;
  /** Runs a route; a promise of the outcome when the script runs asynchronously. Never throws or rejects. */
  run(name: string, ctx: MessageContextType): RouteOutcome | Promise<RouteOutcome>;
  /** Runs a route nested inside a KSR call of one of this script's routes (the branch route in t_relay): always synchronous. */
  runNested(name: string, ctx: MessageContextType): RouteOutcome;
  /** Whether the script defines a route function of that name (the onsend route runs only then). */
  hasRoute(name: string): boolean;
  /** The transaction is over; idempotent. */
  release(): void;
}

/** TransactionRoutes over one synchronous RouteRunner that nothing needs to release. */
export function runnerRoutes(runner: RouteRunner): TransactionRoutes {
  return {
    scriptPath: runner.scriptPath,
    run: (name, ctx) => runner.runRoute(name, ctx),
    runNested: (name, ctx) => runner.runRoute(name, ctx),
    hasRoute: (name) => runner.hasRoute(name),
    release: () => {},
  };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}

/** k(value) now, or once the promise settles. */
function andThen<T, R>(value: T | Promise<T>, k: (v: T) => R | Promise<R>): R | Promise<R> {
  return isPromise(value) ? value.then(k) : k(value);
}

/** What the proxy needs from the server it runs in. */
export interface ProxyHost {
  /** The HostServices new route contexts get (the server itself). */
  readonly services: HostServices;
  readonly tenant: TenantState;
  /** The runner new transactions use (a reload swaps it; running transactions keep theirs). */
  currentRunner(): RouteRunner;
  /**
   * The routes a new transaction keeps until it ends (e.g. a lease on the
   * tenant's current script, so that a reload does not change them).
   * Default: currentRunner(), run synchronously.
   */
  transactionRoutes?(): TransactionRoutes;
  readonly timers: TimerService;
  /** The local socket a message to `host` over `proto` leaves from; `forced` is the script's $fs. */
  socketFor(proto: TransportProto, host: string, forced: ListenSocket | undefined): ListenSocket | undefined;
  /** Send bytes (host names resolved); false when they cannot be sent now. */
  /** `onUnresolved`: the message could not be sent after all, found after send() returned (a host name that does not resolve; a WebSocket connection a worker process's front no longer has). */
  send(dest: Destination, data: string, from: ListenSocket | undefined, what: string, flags?: SendFlags, onUnresolved?: () => void): boolean;
  /**
   * RFC 3263 resolution of a next hop named by a host name (host/dns/):
   * what the cache knows now, and a resolution in the background. Absent:
   * names are handed to send() as they are (a test bed without DNS).
   */
  knownTargets?(q: HopQuery): KnownTargets;
  resolveTargets?(q: HopQuery): Promise<readonly Target[]>;
  /** Parameters added to our Via on every branch (";name=value..."), e.g. the tenant its responses belong to. */
  readonly viaParams?: string;
}

export interface ProxyOptions {
  readonly timerConfig?: TimerConfig;
  readonly frTimerMs?: number;
  readonly frInvTimerMs?: number;
  /** How long a transaction the script neither relayed nor answered keeps absorbing retransmissions. */
  readonly waitTimerMs?: number;
  readonly maxTransactions?: number;
}

/** The timer settings of `ksr run` (--t1-ms ... --fr-inv-timer-ms), in ms; undefined: the default. */
export interface ProxyTimerSettings {
  readonly t1Ms?: number;
  readonly t2Ms?: number;
  readonly t4Ms?: number;
  readonly frTimerMs?: number;
  readonly frInvTimerMs?: number;
}

/** Proxy options from timer settings; throws a RangeError naming a bad combination (e.g. T2 < T1). */
export function proxyOptionsFromTimers(t: ProxyTimerSettings): ProxyOptions {
  return {
    timerConfig: resolveTimerConfig({ T1: t.t1Ms, T2: t.t2Ms, T4: t.t4Ms }),
    frTimerMs: t.frTimerMs,
    frInvTimerMs: t.frInvTimerMs,
  };
}

/** What a route context knows of its transaction. */
export interface TmBinding {
  readonly tx: ProxyTransaction;
  /** Branch of a branch / onreply / branch-failure route; the picked branch in a failure route; -1 in a request route. */
  readonly branch: number;
  /** The response being handled (onreply) or the chosen one (failure, branch-failure). */
  readonly reply: { readonly status: number; readonly reason: string; readonly msg: SipMessage | undefined } | undefined;
}

/** Overrides of the next hop for t_relay_to_*. */
export interface RelayOverride {
  readonly hop?: NextHop;
  readonly proto?: TransportProto;
}

/** Kamailio's error texts for the errors a relay can end with (err2reason_phrase), used for the delayed error reply. */
const SEND_FAILED = { status: 477, reason: "Unfortunately error on sending to next hop occurred" } as const;
const NO_BRANCHES = { status: 500, reason: "Server Internal Error" } as const;
const UNRESOLVABLE = { status: 478, reason: "Unresolvable destination (478/SL)" } as const;

/** RFC 3326 Reason for the CANCELs sent after a 2xx (as Kamailio sends it). */
const CANCEL_REASON_ANSWERED = 'Reason: SIP;cause=200;text="Call completed elsewhere"\r\n';

/** Numbers the context slots of each proxy (one per tenant), so that two never share one. */
let proxyInstances = 0;

export class StatefulProxy {
  readonly table: TransactionTable;
  readonly frTimerMs: number;
  readonly frInvTimerMs: number;
  private readonly waitTimerMs: number;
  private readonly timerConfig: TimerConfig;
  /** The transaction of each route context bound to one (a slot of the context, named for this proxy). */
  private readonly bindings = new ContextSlot<TmBinding>(`tm.binding.${proxyInstances}`, { instance: true });
  /** t_on_* / t_set_* made before the transaction of a request route exists. */
  private readonly pending = new ContextSlot<TmSettings>(`tm.pending.${proxyInstances++}`, { instance: true });
  /** The proxy transaction of each server transaction (a compacted one's record has none: the transaction is finished). */
  private readonly byServer = new WeakMap<ServerEntry, ProxyTransaction>();
  /** The proxy transaction of each branch's client transaction. */
  private readonly byClient = new WeakMap<ClientEntry, ProxyTransaction>();
  /**
   * INVITE transactions that relayed a 2xx, by Call-ID/CSeq/From tag: the
   * To tags of those 2xx (the transaction's okToTags), whose ACKs are end
   * to end. Kept while the INVITE server transaction or its record lives.
   */
  private readonly answered = new Map<string, ReadonlySet<string>>();
  /** The reply being matched by receiveResponse (its receive info and core reply-route edits). */
  private incoming: { rcv: ReceiveInfo; edits: MessageEdits | undefined } | undefined;

  constructor(
    private readonly host: ProxyHost,
    options: ProxyOptions = {},
  ) {
    this.table = new TransactionTable({ maxTransactions: options.maxTransactions, timers: host.timers });
    this.timerConfig = options.timerConfig ?? resolveTimerConfig({});
    this.frTimerMs = options.frTimerMs ?? DEFAULT_FR_TIMER_MS;
    this.frInvTimerMs = options.frInvTimerMs ?? DEFAULT_FR_INV_TIMER_MS;
    this.waitTimerMs = options.waitTimerMs ?? DEFAULT_WAIT_TIMER_MS;
  }

  // ------------------------------------------------------------ bindings

  /** The transaction of a route context, if it has one. */
  bindingOf(ctx: MessageContextType): TmBinding | undefined {
    return this.bindings.get(ctx);
  }

  /**
   * Where t_on_* and t_set_* go: the context's transaction, or settings
   * kept for the transaction the request route is about to create.
   */
  settingsFor(ctx: MessageContextType): TmSettings {
    const bound = this.bindings.get(ctx);
    if (bound !== undefined) return bound.tx;
    let s = this.pending.get(ctx);
    if (s === undefined) {
      s = defaultSettings();
      this.pending.set(ctx, s);
    }
    return s;
  }

  // -------------------------------------------------- request-side lookup

  /**
   * §17.2.3 matching of a received request, without side effects:
   * "retransmission" of a request with a transaction, "ack-negative" for an
   * ACK of a non-2xx final (hop by hop), "ack-e2e" for the ACK of a 2xx this
   * proxy relayed, "new" otherwise.
   */
  classify(msg: SipMessage): { kind: "retransmission" | "ack-negative"; server: ServerEntry } | { kind: "ack-e2e" | "new" } {
    const server = this.table.matchRequest(msg);
    if (msg.method === "ACK") {
      if (server !== undefined) {
        // RFC 6026: an ACK matching an INVITE that was answered with a 2xx
        // is the end-to-end ACK (only an RFC 2543 peer reuses the branch).
        const status = server.finalStatus;
        return status >= 200 && status < 300 ? { kind: "ack-e2e" } : { kind: "ack-negative", server };
      }
      return this.acknowledgesRelayed2xx(msg) ? { kind: "ack-e2e" } : { kind: "new" };
    }
    return server !== undefined ? { kind: "retransmission", server } : { kind: "new" };
  }

  private answeredKey(msg: SipMessage): string | undefined {
    try {
      return `${msg.callId}\n${msg.cseq.seq}\n${headerParam(fromHeader(msg), "tag") ?? ""}`;
    } catch {
      return undefined;
    }
  }

  /** Whether an ACK acknowledges a 2xx this proxy relayed for an INVITE (same Call-ID, CSeq, From tag, and the To tag of that 2xx). */
  private acknowledgesRelayed2xx(ack: SipMessage): boolean {
    const key = this.answeredKey(ack);
    const toTags = key === undefined ? undefined : this.answered.get(key);
    if (toTags === undefined) return false;
    try {
      const toTag = headerParam(toHeader(ack), "tag");
      return toTag !== undefined && toTags.has(toTag);
    } catch {
      return false;
    }
  }

  /** Let the matched server transaction handle a retransmission or a hop-by-hop ACK (resend the last response / absorb). */
  private absorb(server: ServerEntry, msg: SipMessage): void {
    server.receiveRequest(msg);
  }

  // ---------------------------------------------------------- t_newtran

  /**
   * Kamailio t_newtran: 1 created (or an ACK, which never gets one), 0 a
   * retransmission or hop-by-hop ACK (absorbed: the script must stop),
   * E_SCRIPT (-10) when this message already has its transaction, other
   * negatives on error.
   */
  newTransaction(ctx: MessageContextType): number {
    if (!ctx.isRequest || ctx.routeType !== "request") {
      ctx.host.log("err", "t_newtran: only for requests in the request route\n", ctx);
      return -1;
    }
    const bound = this.bindings.get(ctx);
    if (bound !== undefined) {
      // Kamailio updates the transaction's flags here (the script may have changed them).
      bound.tx.flags = ctx.flags;
      return E_SCRIPT;
    }
    const found = this.classify(ctx.msg);
    if (found.kind === "retransmission" || found.kind === "ack-negative") {
      this.absorb(found.server, ctx.msg);
      return 0;
    }
    if (ctx.msg.method === "ACK") return 1; // ACKs never establish a transaction (§17)
    return this.createTransaction(ctx) !== undefined ? 1 : -1;
  }

  private createTransaction(ctx: MessageContextType): ProxyTransaction | undefined {
    const msg = ctx.msg;
    const addressed = upstreamOf(msg, ctx.rcv, ctx.forceRport);
    if (!isUpstream(addressed)) {
      ctx.host.log("err", `unresolvable Via: cannot create a transaction (call-id=${msg.callId})\n`, ctx);
      return undefined;
    }
    // The transaction answers from these Via lines for its whole life: they must not pin the request (ownCopy).
    const upstream = { ...addressed, viaLines: addressed.viaLines.map(ownCopy) };
    if (this.table.isFull) {
      ctx.host.log("err", `transaction table full (${this.table.maxTransactions}): request not handled (call-id=${msg.callId})\n`, ctx);
      return undefined;
    }
    let tx: ProxyTransaction | undefined;
    // The callbacks outlive the route: they keep the Call-ID and the host, not the message or its context.
    const callId = ownCopy(msg.callId);
    const services = ctx.host;
    const user: ServerTransactionUser = {
      onTimeout: () => services.log("info", `no ACK for the final response (call-id=${callId})\n`),
      onTransportError: () => services.log("warn", `could not send a response upstream (call-id=${callId})\n`),
      onTerminated: () => {
        if (tx !== undefined) this.forget(tx);
      },
    };
    const localToTag = generateTag();
    const common = {
      timers: this.host.timers,
      config: this.timerConfig,
      reliable: upstream.dest.proto !== "udp",
      // A released transaction (neither relayed nor answered by its
      // request route) only absorbs retransmissions: it sends nothing, not
      // even the automatic 100 Trying.
      send: (data: string) => (tx?.released ? true : this.host.send(upstream.dest, data, upstream.socket, "response", tx?.replyFlags)),
      user,
    };
    const server: ServerTransaction =
      msg.method === "INVITE"
        ? new InviteServerTransaction(msg, {
            ...common,
            trying100: "after-200ms",
            buildTrying: (request) => buildResponse(request, 100, "Trying", { viaOverride: [...upstream.viaLines] }),
          })
        : new NonInviteServerTransaction(msg, common);
    if (!this.table.addServer(server)) {
      ctx.host.log("err", `cannot register the transaction (call-id=${msg.callId})\n`, ctx);
      return undefined;
    }
    const routes = this.host.transactionRoutes?.() ?? runnerRoutes(this.host.currentRunner());
    tx = new ProxyTransaction(server, msg, ctx.rcv, upstream, routes, avpStore(ctx), localToTag, ctx);
    tx.replyFlags = replySendFlags(ctx);
    const settings = this.pending.get(ctx);
    if (settings !== undefined) tx.applySettings(settings);
    this.byServer.set(server, tx);
    this.bindings.set(ctx, { tx, branch: -1, reply: undefined });
    return tx;
  }

  private forget(tx: ProxyTransaction): void {
    tx.routes.release();
    for (const b of tx.branches) this.stopFrTimer(b);
    if (tx.answeredKey !== undefined && this.answered.get(tx.answeredKey) === tx.okToTags) this.answered.delete(tx.answeredKey);
  }

  /**
   * A final response went upstream: after Kamailio's wait time (wt_timer)
   * the transaction is finished (ProxyTransaction.finish), once no branch
   * is pending and no route of it is running. Until then a script sees the
   * whole transaction, as in Kamailio; after it, the server and client
   * transactions absorb retransmissions for the rest of their RFC 3261
   * timers (J, L, M, D: 32 s over UDP) holding only their keys and last
   * messages, so the heap holds seconds of calls, not half a minute.
   */
  private armFinish(tx: ProxyTransaction): void {
    if (tx.finishArmed) return;
    tx.finishArmed = true;
    const check = (): void => {
      if (tx.server.terminated) return; // forget() ran
      if (tx.busy || tx.pendingWork !== undefined || tx.resolving > 0 || tx.branches.some((b) => !b.completed)) {
        this.host.timers.setTimer(this.waitTimerMs, check);
        return;
      }
      tx.routes.release();
      for (const b of tx.branches) this.stopFrTimer(b);
      tx.finish();
      tx.server.releaseRequest();
      // A branch's INVITE client transaction in "accepted" (timer M) only
      // passes 2xx retransmissions up: without it they match nothing and are
      // forwarded by their Via (core reply route, then stateless relay), as
      // Kamailio forwards them once its cell is gone.
      for (const b of tx.branches) if (b.client?.state === "accepted") b.client.expire();
      this.compactFinished(tx);
    };
    this.host.timers.setTimer(this.waitTimerMs, check);
  }

  /**
   * A finished transaction's server transaction and its branches' settled
   * client transactions become compact records in the table
   * (TransactionTable.compact): they absorb retransmissions for the rest of
   * their RFC 3261 timers as before, sending through functions that keep
   * only the destination, so the proxy transaction, its branches, routes
   * and callbacks are garbage now rather than 32 s later. A transaction
   * with work left (an INVITE server retransmitting a non-2xx until its
   * ACK, a branch still waiting for a final response) stays whole, and
   * with it the proxy transaction, until its own timers end it.
   */
  private compactFinished(tx: ProxyTransaction): void {
    const host = this.host;
    const { dest, socket } = tx.upstream;
    const answeredKey = tx.answeredKey;
    const toTags = tx.okToTags;
    this.table.compact(tx.server, {
      send: (data) => host.send(dest, data, socket, "response"),
      // What forget() does on termination, for the record: the end-to-end ACK matches until the INVITE's timer L.
      onEnd:
        answeredKey === undefined
          ? undefined
          : () => {
              if (this.answered.get(answeredKey) === toTags) this.answered.delete(answeredKey);
            },
    });
    for (const b of tx.branches) {
      const client = b.client;
      if (client === undefined || !client.settled) continue;
      const hop: Destination = { proto: b.hop.proto, host: b.hop.host, port: b.hop.port };
      const from = b.socket;
      this.table.compact(client, { send: client.method === "INVITE" ? (data) => host.send(hop, data, from, "ACK") : undefined });
    }
  }

  /**
   * A response for a finished transaction through a branch still waiting
   * (a CANCELled branch's late answer): §16.7 step 5 / RFC 6026 want every
   * 2xx upstream, so it is relayed as received, with the core reply route's
   * edits, without the transaction's routes (as Kamailio forwards it once
   * its cell is gone); anything else has no one left to go to.
   */
  private relayAfterFinish(tx: ProxyTransaction, reply: SipMessage): void {
    if (reply.status < 200 || reply.status >= 300 || !tx.isInvite) return;
    const text = relayedResponseText(reply, this.incoming?.edits, tx.upstream.dest.proto !== "udp");
    if (!tx.server.respond(reply.status, text)) this.host.send(tx.upstream.dest, text, tx.upstream.socket, `${reply.status} response`, tx.replyFlags);
  }

  /**
   * End of a request route (Kamailio t_unref): a transaction created in it
   * that was neither relayed nor answered gets the delayed error reply when
   * a relay failed and the script sent nothing, and is then released: it
   * absorbs retransmissions for the wait time and goes.
   */
  requestRouteDone(ctx: MessageContextType): void {
    const bound = this.bindings.get(ctx);
    if (bound === undefined || ctx.routeType !== "request") return;
    const tx = bound.tx;
    if (tx.relayed || tx.finalSent || tx.server.terminated) return;
    if (ctx.replied === undefined && ctx.lastError !== undefined && tx.method !== "ACK") {
      this.replyLocal(tx, ctx.lastError.status, ctx.lastError.reason, []);
      return;
    }
    if (ctx.replied === undefined) {
      ctx.host.log("warn", `transaction created but neither relayed nor replied (call-id=${tx.callId})\n`, ctx);
    }
    tx.released = true;
    this.host.timers.setTimer(this.waitTimerMs, () => {
      this.table.remove(tx.server);
      tx.routes.release();
    });
  }

  // ------------------------------------------------------------- t_relay

  /**
   * Kamailio t_relay (and the t_relay_to_* variants through `override`):
   * request route: 1 relayed, 0 retransmission absorbed, negative on
   * error; failure route: forwards the new branch set, 1 or -1.
   */
  relay(ctx: MessageContextType, override: RelayOverride = {}): number {
    if (!ctx.isRequest) {
      ctx.host.log("err", "t_relay: not a request\n", ctx);
      return -1;
    }
    if (ctx.routeType === "failure") {
      const bound = this.bindings.get(ctx);
      if (bound === undefined) return -1;
      return this.forwardBranches(bound.tx, ctx, override) > 0 ? 1 : -1;
    }
    if (ctx.routeType !== "request") {
      ctx.host.log("err", `t_relay: not allowed in a ${ctx.routeType} route\n`, ctx);
      return -1;
    }
    const msg = ctx.msg;
    if (msg.method === "ACK") return this.relayAck(ctx, override);
    if (msg.method === "CANCEL") return this.relayCancel(ctx, override);
    let bound = this.bindings.get(ctx);
    if (bound === undefined) {
      const created = this.newTransaction(ctx);
      if (created <= 0) return created;
      bound = this.bindings.get(ctx)!;
    }
    const tx = bound.tx;
    // Kamailio answers an INVITE with 100 Trying when it relays it (§16.2
    // leaves the choice; the server transaction would send one after 200 ms).
    if (tx.isInvite && tx.uasStatus === 0) this.replyLocal(tx, 100, "Trying", []);
    const result = this.forwardBranches(tx, ctx, override);
    if (result < 0) {
      ctx.lastError = result === -2 ? SEND_FAILED : result === -3 ? UNRESOLVABLE : NO_BRANCHES;
      return -1;
    }
    return 1;
  }

  /**
   * ACK in t_relay: a hop-by-hop ACK (non-2xx) is absorbed by its
   * transaction (0); any other ACK is forwarded statelessly, as it belongs
   * to no transaction (§16.7 step 10 / §17).
   */
  private relayAck(ctx: MessageContextType, override: RelayOverride): number {
    const found = this.classify(ctx.msg);
    if (found.kind === "ack-negative") {
      this.absorb(found.server, ctx.msg);
      return 0;
    }
    const target = override.hop !== undefined ? hopUri(override.hop) : undefined;
    if (!ctx.host.forward(ctx, target)) return -1;
    ctx.forwarded = true;
    return 1;
  }

  /**
   * CANCEL in t_relay (Kamailio t_forward_cancel): with an INVITE
   * transaction, the CANCEL gets its own transaction, is answered 200 and
   * every pending branch is cancelled (§16.10); without one it is forwarded
   * statelessly (Kamailio's default unmatched_cancel), and the next hop,
   * which has no transaction either, answers 481.
   */
  private relayCancel(ctx: MessageContextType, override: RelayOverride): number {
    const inviteServer = this.table.findInviteForCancel(ctx.msg);
    if (inviteServer === undefined) {
      const target = override.hop !== undefined ? hopUri(override.hop) : undefined;
      if (!ctx.host.forward(ctx, target)) return -1;
      ctx.forwarded = true;
      return 1;
    }
    if (this.bindings.get(ctx) === undefined) {
      const created = this.newTransaction(ctx);
      if (created === 0) return 1; // CANCEL retransmission: its 200 was resent
      if (created < 0) return created;
    }
    const cancelTx = this.bindings.get(ctx)!.tx;
    // A finished INVITE (its record left in the table) has nothing left to
    // cancel; the CANCEL still matched it and gets its 200 (§16.10).
    const invite = this.byServer.get(inviteServer);
    if (invite !== undefined) this.cancelInvite(invite, ctx.msg);
    this.replyLocal(cancelTx, 200, "canceling", []);
    cancelTx.relayed = true;
    return 1;
  }

  /**
   * §16.10: mark the INVITE cancelled, CANCEL every pending branch (a
   * branch without a provisional response gets its CANCEL when one
   * arrives, §9.1), or answer 487 at once when no branch was sent.
   */
  private cancelInvite(tx: ProxyTransaction, cancel: SipMessage): void {
    tx.canceled = true;
    const reason = headersByKey(cancel, "reason").map((h) => h.raw);
    if (tx.branches.length === 0) {
      if (!tx.finalSent) this.replyLocal(tx, 487, "Request Terminated", []);
      return;
    }
    for (const b of tx.pendingBranches()) this.cancelBranch(tx, b, reason);
  }

  /**
   * Create the branches of the current destination set: the R-URI (when
   * not consumed) and every appended branch, each with its own copy of the
   * request state (a branch-route context), run the armed branch route on
   * each (inside t_relay, as Kamailio does) and send the ones it keeps.
   * Returns the number sent, or -1 (nothing to send, or every branch
   * dropped), -2 (every send failed).
   */
  private forwardBranches(tx: ProxyTransaction, ctx: MessageContextType, override: RelayOverride): number {
    if (tx.canceled) {
      ctx.host.log("info", "no forwarding on a canceled transaction\n", ctx);
      clearBranches(ctx);
      return -1;
    }
    if (tx.finalSent) {
      ctx.host.log("err", "cannot forward: a final response was already sent\n", ctx);
      clearBranches(ctx);
      return -1;
    }
    tx.flags = ctx.flags;
    tx.replyFlags = replySendFlags(ctx) ?? tx.replyFlags;
    if (ctx.routeType === "request" && tx.branches.length === 0) tx.saved = saveRequest(ctx);
    const targets: MessageContext[] = [];
    if (ruriIsNew(ctx)) {
      targets.push(this.branchContext(tx, ctx, ctx.requestUri, ctx.dstUri, ctx.branchFlags[0] ?? 0, ctx.sendSocket, undefined));
    }
    appendedBranches(ctx).forEach((b, i) =>
      targets.push(this.branchContext(tx, ctx, b.uri, b.dstUri, ctx.branchFlags[i + 1] ?? 0, b.sendSocket, b.path)),
    );
    clearBranches(ctx);
    markRuriConsumed(ctx);
    if (targets.length === 0) {
      ctx.host.log("err", "no branches for forwarding\n", ctx);
      return -1;
    }
    // Kamailio runs the armed branch route for this round and disarms it.
    const branchRoute = tx.onBranch;
    tx.onBranch = "";
    const { sent, sendFailures, unresolved } = this.sendRound(tx, targets, branchRoute, override);
    if (sent === 0) return sendFailures > 0 ? -2 : unresolved > 0 ? -3 : -1;
    tx.relayed = true;
    ctx.forwarded = true;
    return sent;
  }

  /** A branch-route context carrying one branch's copy of the request state (what Kamailio's branch route works on). */
  private branchContext(
    tx: ProxyTransaction,
    from: MessageContextType,
    uri: string,
    dstUri: string | undefined,
    flags: number,
    sendSocket: string | undefined,
    /** An appended branch's own Path (its Route replaces the R-URI branch's); undefined for the R-URI branch. */
    path: string | undefined,
  ): MessageContext {
    const bctx = new MessageContext(tx.request, tx.rcv, "branch", this.host.tenant, this.host.services);
    setAvpStore(bctx, tx.avps);
    bctx.newRequestUri = uri === tx.request.requestUri ? undefined : uri;
    bctx.dstUri = dstUri;
    bctx.sendSocket = sendSocket;
    bctx.flags = from.flags;
    bctx.branchFlags[0] = flags;
    bctx.forceRport = from.forceRport;
    bctx.addLocalRport = from.addLocalRport;
    loadEdits(bctx.edits, from.edits);
    carryMessageState(from, bctx, "branch");
    if (path !== undefined && path !== pathRouteOf(from)) setPathRoute(bctx, path);
    return bctx;
  }

  /** Run the branch route (if any) on each branch context and send the branches it keeps. */
  private sendRound(
    tx: ProxyTransaction,
    contexts: readonly MessageContext[],
    branchRoute: string,
    override: RelayOverride,
  ): { sent: number; sendFailures: number; unresolved: number } {
    let sent = 0;
    let sendFailures = 0;
    let unresolved = 0;
    const wasBusy = tx.busy;
    tx.busy = true;
    try {
      for (const bctx of contexts) {
        if (tx.canceled || tx.finalSent) break;
        if (branchRoute !== "") {
          this.bindings.set(bctx, { tx, branch: tx.branches.length, reply: undefined });
          bctx.flags = tx.flags;
          this.runNestedRoute(tx, branchRoute, bctx);
          tx.flags = bctx.flags;
          if (bctx.dropped) {
            bctx.host.log("info", `branch ${tx.branches.length} dropped by the branch route\n`, bctx);
            continue;
          }
        }
        const r = this.sendBranch(tx, bctx, override);
        if (r === "sent") sent++;
        else if (r === "send-failed") sendFailures++;
        else if (r === "unresolvable") unresolved++;
        // A name being resolved: the branch goes out when it is (Kamailio's t_relay would have sent it).
        else if (r === "resolving") sent++;
      }
    } finally {
      tx.busy = wasBusy;
    }
    if (sent > 0) tx.relayed = true;
    return { sent, sendFailures, unresolved };
  }

  /**
   * Build and send one branch from its context (§16.6 steps 2-11). A next
   * hop named by a host name goes to the targets of its RFC 3263
   * resolution: the first now, the others kept for failover (§4.3); one
   * not resolved lately is resolved first ("resolving", the branch follows).
   * `targets`: the targets left of an earlier branch's resolution.
   */
  private sendBranch(
    tx: ProxyTransaction,
    bctx: MessageContext,
    override: RelayOverride,
    targets?: readonly Target[],
  ): "sent" | "error" | "send-failed" | "unresolvable" | "resolving" {
    const index = tx.branches.length;
    const uri = bctx.requestUri;
    const dstUri = bctx.dstUri;
    const written = override.hop ?? nextHopOf(dstUri ?? uri, override.proto);
    if (typeof written === "string") {
      bctx.host.log("err", `t_relay: ${written}\n`, bctx);
      return "error";
    }
    let remaining: readonly Target[] = [];
    let hop: NextHop = written;
    const query = written.query;
    if (targets === undefined && query !== undefined && this.host.knownTargets !== undefined) {
      const known = this.host.knownTargets(query);
      // A name known not to resolve: no branch for it, as Kamailio's t_relay
      // (E_BAD_ADDRESS, 478 from sl_reply_error).
      if (known === "unresolvable") {
        bctx.host.log("err", `t_relay: cannot resolve ${written.host}\n`, bctx);
        return "unresolvable";
      }
      if (known === undefined) {
        this.resolveBranch(tx, bctx, override, written, query);
        return "resolving";
      }
      targets = known;
    }
    if (targets !== undefined && targets.length > 0) {
      hop = { proto: targets[0]!.proto, host: targets[0]!.ip, port: targets[0]!.port };
      remaining = targets.slice(1);
    }
    let forced: ListenSocket | undefined;
    if (bctx.sendSocket !== undefined) {
      try {
        forced = parseListenSocket(bctx.sendSocket);
        if (forced.proto !== hop.proto) forced = undefined;
      } catch {
        forced = undefined;
      }
    }
    const socket = this.host.socketFor(hop.proto, hop.host, forced);
    if (socket === undefined) {
      bctx.host.log("err", `t_relay: no ${hop.proto} socket to reach ${hop.host}\n`, bctx);
      return "error";
    }
    const text = buildForwardedRequest({
      msg: tx.request,
      rcv: bctx.rcv,
      edits: bctx.edits,
      requestUri: uri,
      viaLine: ourViaLine({
        socket,
        aliases: this.host.services.aliases,
        branch: generateBranch(),
        rport: bctx.addLocalRport,
        params: this.host.viaParams,
        // The id of the connection the request came on, so that a response
        // arriving after the transaction ended can still be forwarded back on
        // it statelessly (the server's stateless reply path reads it).
        inbound: tx.rcv,
        ...advertisedVia(bctx),
      }),
      forceRport: bctx.forceRport,
      recordRoute: renderRecordRoute(bctx, socket, localSocketOf(tx.rcv)),
      decrementMaxForwards: true,
      stream: hop.proto !== "udp",
    });
    // The onsend route sees the request as built and where it goes; a drop
    // there fails the branch as a send failure would (Kamailio t_send_branch).
    // (A name is still one here only on a host without DNS: no onsend route then.)
    if (isIP(hop.host) !== 0 && !runOnsendRoute(bctx, { proto: hop.proto, ip: hop.host, port: hop.port, buf: text, from: socket }, tx.routes)) {
      return "send-failed";
    }
    const branch = new ProxyBranch(index, ownCopy(uri), dstUri, bctx.branchFlags[0] ?? 0, hop, socket);
    if (remaining.length > 0) branch.failover = { targets: remaining, bctx, override };
    const scriptFlags = forwardSendFlags(bctx);
    // Over TCP/TLS a connection that cannot be opened is a transport error
    // (§16.9, RFC 3263 §4.3): the branch fails at once instead of waiting
    // for timer B/F, and the next target, if any, is tried.
    const sendFlags: SendFlags | undefined =
      hop.proto === "udp"
        ? scriptFlags
        : {
            ...scriptFlags,
            onConnectFailed: () => {
              branch.retransmissionsStopped = true;
              this.serialized(tx, () => this.onBranchTransportError(tx, branch));
            },
          };
    // A name that turns out not to resolve ends the branch at once as a
    // transport error (§16.9: a 503), not fr_timer's 408 later.
    const unresolved = (): void => {
      branch.retransmissionsStopped = true;
      void this.serialized(tx, () => this.onBranchTransportError(tx, branch));
    };
    const dest: Destination = { proto: hop.proto, host: hop.host, port: hop.port };
    let client: ClientTransaction | undefined;
    let starting = true;
    const user: ClientTransactionUser = {
      onResponse: (response) => {
        if (tx.finished) {
          this.relayAfterFinish(tx, response);
          return;
        }
        // receiveResponse is on the stack: take its receive info and edits now, the work may wait.
        const rcv = this.incoming?.rcv ?? tx.rcv;
        const edits = this.incoming?.edits;
        this.serialized(tx, () => this.onBranchResponse(tx, branch, response, rcv, edits));
      },
      onTimeout: () => this.serialized(tx, () => this.onBranchTimeout(tx, branch)),
      onTransportError: () => {
        if (!starting) this.serialized(tx, () => this.onBranchTransportError(tx, branch));
      },
    };
    const options = {
      timers: this.host.timers,
      config: this.timerConfig,
      reliable: hop.proto !== "udp",
      send: (data: string): boolean => {
        // §16.8: a branch given up without a CANCEL sends no more
        // retransmissions of its request (its ACKs and CANCEL still go).
        if (branch.retransmissionsStopped && client !== undefined && data === client.requestData) return true;
        return this.host.send(dest, data, socket, `${tx.method} request`, sendFlags, unresolved);
      },
      user,
    };
    try {
      client = tx.isInvite ? new InviteClientTransaction(text, options) : new NonInviteClientTransaction(text, options);
    } catch (err) {
      bctx.host.log("err", `t_relay: cannot build the request for ${uri}: ${(err as Error).message}\n`, bctx);
      return "error";
    }
    if (!this.table.addClient(client)) {
      bctx.host.log("err", "t_relay: transaction table full\n", bctx);
      return "error";
    }
    branch.client = client;
    this.byClient.set(client, tx);
    client.start();
    starting = false;
    if (client.terminated) {
      bctx.host.log("err", `t_relay: sending to ${hop.proto}:${hop.host}:${hop.port} failed\n`, bctx);
      // §4.3: a target that cannot be sent to is skipped for the next one.
      return remaining.length > 0 ? this.sendBranch(tx, bctx, override, remaining) : "send-failed";
    }
    tx.branches.push(branch);
    this.startFrTimer(tx, branch, tx.frTimerMs || this.frTimerMs);
    return "sent";
  }

  /**
   * A branch to a name not resolved lately: resolved in the background
   * (RFC 3263 §4), then sent as any other. One that does not resolve, or
   * cannot be sent, ends at once as a transport error (§16.9: a 503, its
   * failure route runs then); one whose transaction was cancelled or
   * answered meanwhile is not sent.
   */
  private resolveBranch(tx: ProxyTransaction, bctx: MessageContext, override: RelayOverride, hop: NextHop, query: HopQuery): void {
    tx.resolving++;
    void this.host.resolveTargets!(query).then((targets) =>
      this.serialized(tx, () => {
        tx.resolving--;
        if (tx.finished || tx.finalSent) return;
        if (tx.canceled) return this.failedBranch(tx, bctx, hop, { status: 487, reason: "Request Terminated", reply: undefined, edits: undefined });
        if (targets.length === 0) bctx.host.log("err", `t_relay: cannot resolve ${hop.host}\n`, bctx);
        const sent = targets.length > 0 && this.sendBranch(tx, bctx, override, targets) === "sent";
        if (!sent) return this.failedBranch(tx, bctx, hop, { status: 503, reason: "Service Unavailable", reply: undefined, edits: undefined });
        return this.checkCompletion(tx);
      }),
    );
  }

  /** A branch that ended before anything was sent on it, with the outcome given. */
  private failedBranch(tx: ProxyTransaction, bctx: MessageContext, hop: NextHop, final: BranchFinal): void | Promise<void> {
    const socket = this.host.socketFor(hop.proto, hop.host, undefined) ?? localSocketOf(tx.rcv);
    const branch = new ProxyBranch(tx.branches.length, ownCopy(bctx.requestUri), bctx.dstUri, bctx.branchFlags[0] ?? 0, hop, socket);
    tx.branches.push(branch);
    return this.completeBranch(tx, branch, final);
  }

  /**
   * RFC 3263 §4.3: a branch whose target failed (503, transport error, or
   * no response at all) is retried at the next target of the same
   * resolution, as a new branch of the transaction (Kamailio's DNS
   * failover adds one the same way). True when one was sent.
   */
  private failover(tx: ProxyTransaction, branch: ProxyBranch): boolean {
    const next = branch.failover;
    branch.failover = undefined;
    if (next === undefined || tx.canceled || tx.finalSent || tx.finished) return false;
    const wasBusy = tx.busy;
    tx.busy = true;
    try {
      return this.sendBranch(tx, next.bctx, next.override, next.targets) === "sent";
    } finally {
      tx.busy = wasBusy;
    }
  }

  // ------------------------------------------------------------- replies

  /**
   * A response generated here for the transaction's request, sent through
   * its server transaction. False when the server transaction refuses it
   * (a final response was already sent).
   */
  replyLocal(tx: ProxyTransaction, status: number, reason: string, extraHeaders: readonly string[]): boolean {
    if (tx.finished) return false; // a final response went upstream long ago
    const text = buildLocalResponse(tx.request, tx.upstream, status, safeReasonPhrase(reason), tx.localToTag, extraHeaders);
    // An explicit answer on a released transaction is sent (e.g. the 487
    // for a CANCEL); only the automatic 100 stays suppressed.
    tx.released = false;
    const ok = tx.server.respond(status, text);
    if (!ok) return false;
    tx.uasStatus = status;
    if (status >= 200) {
      tx.finalSent = true;
      this.armFinish(tx);
      // A final answer ends the search: branches still ringing are cancelled.
      if (tx.isInvite) for (const b of tx.pendingBranches()) this.cancelBranch(tx, b, []);
    }
    return true;
  }

  /**
   * Kamailio t_reply for a route context: 1 sent, -1 error (no
   * transaction, ACK, invalid code, or a second final response).
   */
  reply(ctx: MessageContextType, status: number, reason: string): number {
    if (ctx.isRequest && ctx.msg.method === "ACK") return -1;
    if (!Number.isInteger(status) || status < 100 || status > 699) {
      ctx.host.log("err", `invalid reply code ${status}\n`, ctx);
      return -1;
    }
    let bound = this.bindings.get(ctx);
    if (bound === undefined && ctx.isRequest && ctx.routeType === "request") {
      // t_check: a request whose transaction already exists (retransmission).
      const found = this.classify(ctx.msg);
      const tx = found.kind === "retransmission" ? this.byServer.get(found.server) : undefined;
      if (tx !== undefined) bound = { tx, branch: -1, reply: undefined };
    }
    if (bound === undefined) {
      ctx.host.log("err", "cannot send a t_reply to a message for which no T-state has been established\n", ctx);
      return -1;
    }
    const headers = ctx.routeType === "onreply" ? [] : ctx.replyHeaders;
    if (!this.replyLocal(bound.tx, status, reason, headers)) return -1;
    if (ctx.isRequest) ctx.replied = { status, reason };
    return 1;
  }

  // ---------------------------------------------------------- responses

  /**
   * A response received from the network (after the core reply route):
   * true when it belongs to a client transaction of this proxy (it is then
   * handled here), false when the caller should forward it statelessly.
   * `edits` are the changes the core reply route made to it.
   */
  receiveResponse(msg: SipMessage, rcv: ReceiveInfo, edits?: MessageEdits): boolean {
    const client = this.table.matchResponse(msg);
    if (client === undefined) return false;
    const saved = this.incoming;
    this.incoming = { rcv, edits };
    try {
      client.receiveResponse(msg);
    } finally {
      this.incoming = saved;
    }
    return true;
  }

  /** Whether a response matches a client transaction (t_check_trans in the core reply route). */
  matchesResponse(msg: SipMessage): boolean {
    return this.table.matchResponse(msg) !== undefined;
  }

  /** The proxy transaction a response belongs to through one of its branches (not through a CANCEL it sent). */
  transactionOfResponse(msg: SipMessage): ProxyTransaction | undefined {
    const client = this.table.matchResponse(msg);
    const tx = client === undefined ? undefined : this.byClient.get(client);
    return tx?.finished === true ? undefined : tx;
  }

  /**
   * A request that retransmits one with a transaction, or the ACK of a
   * non-2xx final response, is handed to its transaction (the last response
   * is resent, the ACK absorbed) without running any route: true then.
   * For a server that cannot run the script for it (a tenant over budget).
   */
  absorbRetransmission(msg: SipMessage): boolean {
    const found = this.classify(msg);
    if (found.kind !== "retransmission" && found.kind !== "ack-negative") return false;
    this.absorb(found.server, msg);
    return true;
  }

  /**
   * Runs transaction-user work for tx now, or, while earlier work of tx
   * waits for an asynchronous route, after it: responses and timer events
   * of one transaction are handled in the order they came. The synchronous
   * path creates no promise.
   */
  private serialized(tx: ProxyTransaction, work: () => void | Promise<void>): void {
    const before = tx.pendingWork;
    if (before === undefined) {
      const result = work();
      if (result !== undefined) this.awaitWork(tx, result);
      return;
    }
    this.awaitWork(tx, before.then(work));
  }

  private awaitWork(tx: ProxyTransaction, work: Promise<void>): void {
    const settled = work.then(undefined, (err: unknown) => {
      this.host.services.log("err", `transaction call-id=${tx.callId}: ${err instanceof Error ? err.message : String(err)}\n`);
    });
    tx.pendingWork = settled;
    void settled.then(() => {
      if (tx.pendingWork === settled) tx.pendingWork = undefined;
    });
  }

  private onBranchResponse(
    tx: ProxyTransaction,
    branch: ProxyBranch,
    reply: SipMessage,
    rcv: ReceiveInfo,
    edits: MessageEdits | undefined,
  ): void | Promise<void> {
    const status = reply.status;
    if (tx.onReply === "") return this.afterReplyRoutes(tx, branch, reply, edits);
    const rctx = this.routeContext(tx, reply, rcv, "onreply", {
      tx,
      branch: branch.index,
      reply: { status, reason: reply.reason, msg: reply },
    });
    rctx.flags = tx.flags;
    rctx.branchFlags[0] = branch.flags;
    if (edits !== undefined) loadEdits(rctx.edits, edits);
    return andThen(this.runRoute(tx, tx.onReply, rctx), () => {
      tx.flags = rctx.flags;
      branch.flags = rctx.branchFlags[0] ?? branch.flags;
      // Kamailio: drop in an onreply route stops a provisional response;
      // a final one is processed regardless.
      if (rctx.dropped && status < 200) return;
      return this.afterReplyRoutes(tx, branch, reply, rctx.edits);
    });
  }

  /** §16.7 steps 3-10 for a response, once the onreply route (if any) is done with it. */
  private afterReplyRoutes(tx: ProxyTransaction, branch: ProxyBranch, reply: SipMessage, edits: MessageEdits | undefined): void | Promise<void> {
    const status = reply.status;
    if (status < 200) {
      this.onProvisional(tx, branch, reply, edits);
    } else if (status < 300) {
      this.onSuccess(tx, branch, reply, edits);
    } else {
      if (branch.completed) return; // already given up on (timeout): the client transaction ACKs it
      if (status === 503) this.failover(tx, branch);
      return this.completeBranch(tx, branch, { status, reason: reply.reason, reply, edits });
    }
  }

  /** §16.7 steps 2 and 5: 100 absorbed, other provisionals relayed while no final went upstream. */
  private onProvisional(tx: ProxyTransaction, branch: ProxyBranch, reply: SipMessage, edits: MessageEdits | undefined): void {
    const status = reply.status;
    if (branch.completed) return;
    branch.provisional = Math.max(branch.provisional, status);
    if (tx.isInvite) {
      // Kamailio restarts the branch timer with fr_inv_timer on every
      // provisional response (RFC 3261 §16.7 step 2 resets timer C on
      // those above 100).
      this.startFrTimer(tx, branch, tx.frInvTimerMs || this.frInvTimerMs);
      if (branch.cancelRequested) this.sendCancel(branch);
    }
    if (status === 100 || tx.finalSent) return;
    const text = relayedResponseText(reply, edits, tx.upstream.dest.proto !== "udp");
    if (tx.server.respond(status, text)) tx.uasStatus = status;
  }

  /**
   * §16.7 step 5 / RFC 6026: every 2xx is relayed at once, retransmissions
   * and other forks' 2xx included; for an INVITE the other branches are
   * cancelled (§16.7 step 10).
   */
  private onSuccess(tx: ProxyTransaction, branch: ProxyBranch, reply: SipMessage, edits: MessageEdits | undefined): void {
    const status = reply.status;
    this.stopFrTimer(branch);
    // The 2xx itself is not kept: once it is relayed no route of the
    // transaction can read it (failure routes only follow branches that all
    // failed), and the wait time would hold its parsed form for 5 s.
    if (!branch.completed) branch.final = { status, reason: ownCopy(reply.reason), reply: undefined, edits: undefined };
    const text = relayedResponseText(reply, edits, tx.upstream.dest.proto !== "udp");
    if (tx.server.respond(status, text)) {
      tx.uasStatus = status;
      tx.finalSent = true;
      this.armFinish(tx);
    } else if (tx.isInvite) {
      // The server transaction is past "accepted" (it ended, or it sent a
      // non-2xx): §16.7 step 5 still wants the 2xx upstream.
      this.host.send(tx.upstream.dest, text, tx.upstream.socket, `${status} response`, tx.replyFlags);
    } else {
      return; // non-INVITE: only the first final response goes upstream
    }
    if (!tx.isInvite) return;
    try {
      const toTag = headerParam(toHeader(reply), "tag");
      if (tx.answeredKey === undefined) {
        // Kept until the INVITE's timer L: an own copy, not a string that pins the request.
        const key = this.answeredKey(tx.request);
        tx.answeredKey = key === undefined ? undefined : ownCopy(key);
      }
      if (toTag !== undefined && tx.answeredKey !== undefined) {
        tx.okToTags.add(ownCopy(toTag));
        this.answered.set(tx.answeredKey, tx.okToTags);
      }
    } catch {
      // a 2xx without a parsable To: its ACK cannot be matched, nothing else depends on it
    }
    for (const b of tx.pendingBranches()) {
      if (b !== branch) this.cancelBranch(tx, b, [CANCEL_REASON_ANSWERED]);
    }
  }

  /** A branch ended without a 2xx (response, timeout or transport error). */
  private completeBranch(tx: ProxyTransaction, branch: ProxyBranch, final: BranchFinal): void | Promise<void> {
    this.stopFrTimer(branch);
    branch.final = final;
    if (tx.onBranchFailure === "") return this.afterBranchFailure(tx, final);
    const fctx = this.requestRouteContext(tx, "branch_failure", branch, final);
    const wasBusy = tx.busy;
    tx.busy = true;
    let outcome: RouteOutcome | Promise<RouteOutcome>;
    try {
      outcome = this.runRoute(tx, tx.onBranchFailure, fctx);
    } catch (err) {
      tx.busy = wasBusy;
      throw err;
    }
    return andThen(outcome, () => {
      tx.busy = wasBusy;
      tx.flags = fctx.flags;
      return this.afterBranchFailure(tx, final);
    });
  }

  private afterBranchFailure(tx: ProxyTransaction, final: BranchFinal): void | Promise<void> {
    // §16.7 step 5: a 6xx ends the search: the other branches are cancelled.
    if (final.status >= 600 && tx.isInvite && !tx.disable6xx) {
      for (const b of tx.pendingBranches()) this.cancelBranch(tx, b, []);
    }
    return this.checkCompletion(tx);
  }

  /**
   * §16.7 step 6: once every branch has ended without a 2xx, the failure
   * route runs if armed (it may start new branches, or answer); otherwise
   * the best response goes upstream.
   */
  private checkCompletion(tx: ProxyTransaction): void | Promise<void> {
    if (tx.busy || tx.finalSent || tx.resolving > 0 || tx.branches.length === 0) return;
    if (tx.branches.some((b) => !b.completed)) return;
    const finals = tx.branches.map((b) => b.final!);
    const picked = pickBestResponse(finals);
    tx.pickedBranch = picked;
    if (tx.onFailure === "") return this.sendBestResponse(tx, picked);
    const name = tx.onFailure;
    // One run per arming: the failure route re-arms itself to catch the next round.
    tx.onFailure = "";
    const fctx = this.requestRouteContext(tx, "failure", tx.branches[picked]!, finals[picked]!);
    markRuriConsumed(fctx);
    const branchesBefore = tx.branches.length;
    tx.busy = true;
    let outcome: RouteOutcome | Promise<RouteOutcome>;
    try {
      outcome = this.runRoute(tx, name, fctx);
    } catch (err) {
      tx.busy = false;
      throw err;
    }
    return andThen(outcome, () => {
      tx.busy = false;
      tx.flags = fctx.flags;
      if (tx.finalSent) return;
      if (tx.branches.length > branchesBefore || tx.resolving > 0) {
        // Serial forking: new branches are out (or wait for their next
        // hop's DNS resolution). Their responses wait for this route (see
        // serialized), so they are normally still pending; if every one has
        // ended already, completion is due now.
        return this.checkCompletion(tx);
      }
      this.sendBestResponse(tx, picked);
    });
  }

  private sendBestResponse(tx: ProxyTransaction, picked: number): void {
    const final = tx.branches[picked]!.final!;
    const { status, remapped } = upstreamStatus(final.status);
    // §16.7 step 7: a 401/407 carries the challenges of every branch that sent one.
    const challenges: string[] = [];
    if (status === 401 || status === 407) {
      tx.branches.forEach((b, i) => {
        const reply = b.final?.reply;
        if (i === picked || reply === undefined || (reply.status !== 401 && reply.status !== 407)) return;
        for (const h of reply.headers) {
          if (h.key === "www-authenticate" || h.key === "proxy-authenticate") challenges.push(h.raw);
        }
      });
    }
    let text: string;
    if (final.reply !== undefined && !remapped) {
      text = relayedResponseText(final.reply, final.edits, tx.upstream.dest.proto !== "udp", challenges);
    } else {
      const reason = remapped ? "Server Internal Error" : final.reason;
      text = buildLocalResponse(tx.request, tx.upstream, status, safeReasonPhrase(reason), tx.localToTag, challenges);
    }
    if (tx.server.respond(status, text)) {
      tx.uasStatus = status;
      tx.finalSent = true;
      this.armFinish(tx);
    }
  }

  // ---------------------------------------------------- timers and CANCEL

  private startFrTimer(tx: ProxyTransaction, branch: ProxyBranch, ms: number): void {
    this.stopFrTimer(branch);
    branch.frTimer = this.host.timers.setTimer(ms, () => {
      branch.frTimer = undefined;
      this.serialized(tx, () => this.onBranchTimeout(tx, branch));
    });
  }

  private stopFrTimer(branch: ProxyBranch): void {
    if (branch.frTimer !== undefined) this.host.timers.clearTimer(branch.frTimer);
    branch.frTimer = undefined;
  }

  /**
   * §16.8: the branch timer (or the transaction's timer B/F) ran out. An
   * INVITE branch with a provisional response is cancelled; any other
   * branch stops retransmitting. Either way the branch counts as a 408.
   */
  private onBranchTimeout(tx: ProxyTransaction, branch: ProxyBranch): void | Promise<void> {
    if (branch.completed) return;
    branch.timedOut = true;
    if (tx.isInvite && branch.provisional > 0) this.sendCancel(branch);
    else branch.retransmissionsStopped = true;
    // §4.3: no response at all is a failed target; a ringing one is not.
    if (branch.provisional === 0) this.failover(tx, branch);
    return this.completeBranch(tx, branch, { status: 408, reason: "Request Timeout", reply: undefined, edits: undefined });
  }

  /** §16.9: a transport error counts as a 503 from that branch. */
  private onBranchTransportError(tx: ProxyTransaction, branch: ProxyBranch): void | Promise<void> {
    if (branch.completed) return;
    this.failover(tx, branch);
    return this.completeBranch(tx, branch, { status: 503, reason: "Service Unavailable", reply: undefined, edits: undefined });
  }

  /** Cancel a pending INVITE branch (§16.10): now if it had a provisional response, else once one arrives (§9.1). */
  private cancelBranch(tx: ProxyTransaction, branch: ProxyBranch, reason: readonly string[]): void {
    if (!tx.isInvite || branch.completed || branch.cancelSent) return;
    branch.cancelReason = reason;
    if (branch.provisional === 0) {
      branch.cancelRequested = true;
      return;
    }
    this.sendCancel(branch);
  }

  /** Send the CANCEL of a branch (§9.1): a non-INVITE client transaction to the INVITE's next hop. */
  private sendCancel(branch: ProxyBranch): void {
    const invite = branch.client;
    if (invite === undefined || branch.cancelSent || branch.completed) return;
    branch.cancelSent = true;
    branch.cancelRequested = false;
    const dest: Destination = { proto: branch.hop.proto, host: branch.hop.host, port: branch.hop.port };
    // The CANCEL's transaction outlives the branch by timer K: its send keeps the socket, not the branch (and through it the proxy transaction).
    const socket = branch.socket;
    const cancel = new NonInviteClientTransaction(buildCancel(invite.request, branch.cancelReason), {
      timers: this.host.timers,
      config: this.timerConfig,
      reliable: branch.hop.proto !== "udp",
      send: (data) => this.host.send(dest, data, socket, "CANCEL request"),
      // The response to a CANCEL ends its transaction and nothing else
      // (§9.1); what matters is the INVITE's response (487).
      user: { onResponse: () => {} },
    });
    if (!this.table.addClient(cancel)) return;
    cancel.start();
  }

  // ---------------------------------------------------------- routes

  /** A route context for a route of `tx` on message `msg`, bound to the transaction. */
  private routeContext(tx: ProxyTransaction, msg: SipMessage, rcv: ReceiveInfo, type: RouteType, binding: TmBinding): MessageContext {
    const ctx = new MessageContext(msg, rcv, type, this.host.tenant, this.host.services);
    setAvpStore(ctx, tx.avps);
    this.bindings.set(ctx, binding);
    return ctx;
  }

  /** A failure / branch-failure route context: the request as it was relayed, the branch's flags, its outcome. */
  private requestRouteContext(tx: ProxyTransaction, type: "failure" | "branch_failure", branch: ProxyBranch, final: BranchFinal): MessageContext {
    const ctx = this.routeContext(tx, tx.request, tx.rcv, type, {
      tx,
      branch: branch.index,
      reply: { status: final.status, reason: final.reason, msg: final.reply },
    });
    const saved = tx.saved;
    ctx.newRequestUri = saved.requestUri;
    ctx.dstUri = saved.dstUri;
    ctx.sendSocket = saved.sendSocket;
    ctx.flags = tx.flags;
    ctx.branchFlags[0] = branch.flags;
    ctx.forceRport = saved.forceRport;
    ctx.addLocalRport = saved.addLocalRport;
    loadEdits(ctx.edits, saved.edits);
    carryMessageState(saved.moduleState, ctx, "failure");
    return ctx;
  }

  /** Runs a route of the transaction (failure, branch-failure, onreply): its outcome, or a promise of it for an asynchronous script. */
  private runRoute(tx: ProxyTransaction, name: string, ctx: MessageContext): RouteOutcome | Promise<RouteOutcome> {
    const outcome = tx.routes.run(name, ctx);
    return isPromise(outcome) ? outcome.then((o) => this.reportRoute(tx, name, ctx, o)) : this.reportRoute(tx, name, ctx, outcome);
  }

  /** Runs a route nested inside a KSR call of the transaction's script (the branch route in t_relay). */
  private runNestedRoute(tx: ProxyTransaction, name: string, ctx: MessageContext): RouteOutcome {
    return this.reportRoute(tx, name, ctx, tx.routes.runNested(name, ctx));
  }

  private reportRoute(tx: ProxyTransaction, name: string, ctx: MessageContext, outcome: RouteOutcome): RouteOutcome {
    if (outcome.status === "missing") {
      ctx.host.log("err", `route function ${name}() armed for call-id=${tx.callId} is not defined\n`, ctx);
    } else if (outcome.status === "error") {
      ctx.host.log(
        "err",
        `route ${name} (${ctx.routeType}) call-id=${tx.callId} ${outcome.kind}: ${outcome.message}${outcome.location ? ` (at ${outcome.location})` : ""}\n`,
        ctx,
      );
    }
    return outcome;
  }

  // ------------------------------------------------------ t_check_trans

  /**
   * Kamailio t_check_trans: see API.md. Request: retransmission → last
   * response resent, 0; hop-by-hop ACK → absorbed, 0; ACK of a relayed
   * 2xx → 1; CANCEL → 1 if its INVITE transaction exists; otherwise -1.
   * Reply: 1 if it matches a transaction. In transaction routes: 1.
   */
  checkTransaction(ctx: MessageContextType): number {
    switch (ctx.routeType) {
      case "failure":
      case "branch":
      case "branch_failure":
      case "onreply":
        return 1;
    }
    if (!ctx.isRequest) return this.matchesResponse(ctx.msg) ? 1 : -1;
    if (ctx.msg.method === "CANCEL") return this.table.findInviteForCancel(ctx.msg) !== undefined ? 1 : -1;
    if (this.bindings.get(ctx) !== undefined) return 1;
    const found = this.classify(ctx.msg);
    switch (found.kind) {
      case "retransmission":
      case "ack-negative":
        this.absorb(found.server, ctx.msg);
        return 0;
      case "ack-e2e":
        return 1;
      case "new":
        return -1;
    }
  }

  /** The transaction a request route context has or would look up (no side effects). */
  lookupTransaction(ctx: MessageContextType): ProxyTransaction | undefined {
    const bound = this.bindings.get(ctx);
    if (bound !== undefined) return bound.tx;
    if (!ctx.isRequest) return undefined;
    const found = this.classify(ctx.msg);
    return found.kind === "retransmission" ? this.byServer.get(found.server) : undefined;
  }
}

/** A URI naming a next hop (for the stateless ACK / CANCEL forwarding of t_relay_to_*). */
function hopUri(hop: NextHop): string {
  const host = hop.host.includes(":") ? `[${hop.host}]` : hop.host;
  return `sip:${host}:${hop.port};transport=${hop.proto}`;
}
