/**
 * Tenants in worker processes: the front.
 *
 * The front owns the sockets. It parses each message (a malformed request
 * is answered 400 here), picks the tenant — requests by the tenants file's
 * rules (host/tenants/select.ts), responses by the `ksr-tenant` parameter
 * our Via carries on every request a tenant sends (stateless or stateful),
 * else by the rules — and posts the message's bytes to that tenant's worker
 * process (host/tenants/worker.ts), which runs the script, transactions and
 * data of that tenant and posts back the bytes to send.
 *
 * The worker parses the bytes again rather than receiving the parsed
 * message: a parse costs 4-7 µs, a structured message across IPC more than
 * its bytes, and the front must parse anyway to select the tenant and to
 * answer malformed requests.
 *
 * A worker that dies (a V8 abort, a kill) is restarted alone, after 100 ms,
 * four times longer (up to 30 s) each time it dies again within 10 s of its
 * start — each start and each abort burns CPU the other tenants share —; the
 * other tenants do not notice. Messages for a worker that is starting are
 * held until it is ready. While a tenant has no worker (waiting to
 * restart), or `maxQueue` of its messages are not yet handled (a script
 * stuck in its timeouts), the front answers its requests 503 with Retry-After (RFC 3261
 * §21.5.4) and drops its ACKs and responses (the peers' retransmissions
 * recover them, §17.1.1.2 / §17.1.2.2). Everything the tenant kept in
 * memory (transactions, htables, pike state) is lost with its worker; its
 * bindings, subscribers and addresses are in the database and stay.
 *
 * A tenant may have a pool of several workers (`workers: k` in the tenants
 * file, `ksr run script.js --workers k`): each message goes to worker
 * hash(Call-ID) mod k (host/tenants/affinity.ts), so a call's requests,
 * retransmissions, CANCEL, ACKs, in-dialog requests and responses all reach
 * the worker holding its transactions. Each worker of a pool is restarted
 * alone, as a tenant's only worker is; while one is down, the front answers
 * for its share of the calls as above and the others keep serving. Queue
 * limit, counters and load shedding are per worker.
 *
 * Load shedding (host/core/overload.ts) is per worker here: the queueing
 * delay is how long the messages posted to its worker wait to be handled
 * (the worker reports them handled in order), and past the threshold the
 * front answers the tenant's new requests 503 itself, with the same
 * decision as a single server. The transactions are in the worker, so the
 * front remembers the initial requests it let through (RecentRequests):
 * their retransmissions go on to the worker's transaction, never a 503.
 */
import type { ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import type { ReceiveInfo } from "../core/context.js";
import { MessageContext } from "../core/context.js";
import { log } from "../core/log.js";
import type { Router, RouterHost } from "../core/server.js";
import { answerUnmatched, tenantNamedByVia } from "../core/tenant-routing.js";
import type { SipMessage } from "../sip/message.js";
import type { TenantsConfig } from "./config.js";
import type { ReloadResult } from "./registry.js";
import { TenantSelector } from "./select.js";
import { DelayGauge, LoadShedder, RecentRequests, isInitialRequest, type OverloadOptions } from "../core/overload.js";
import { callIdOwner } from "./affinity.js";
import type { FrontWorkerReading } from "../metrics/collect.js";
import type { MetricsJson } from "../metrics/http.js";
import { MISBEHAVING_NICE, isWorkerMessage, type FrontMessage, type ReceivedItem, type SendItem, type WorkerMessage } from "./worker-protocol.js";

/** Restart pacing of a tenant's worker: quick after a one-off crash, backing off hard from a crash loop. */
const FIRST_RESTART_DELAY_MS = 100;
const RESTART_BACKOFF_FACTOR = 4;
const MAX_RESTART_DELAY_MS = 30_000;
const HEALTHY_RUN_MS = 10_000;
/** A worker that does not answer a control request in this time is reported as not answering. */
const REQUEST_TIMEOUT_MS = 5000;
/** A stopping worker that has not exited after SIGTERM in this time is killed. */
const STOP_GRACE_MS = 2000;
export const DEFAULT_MAX_QUEUE = 1000;
/** How long the front remembers an initial request it let through: 64×T1, Timer B/F (RFC 3261 §17.1.1.2, §17.1.2.2). */
const RECENT_REQUEST_SPAN_MS = 32_000;
/** How often the shedders re-evaluate (an episode ends, the per-second line is written, even without traffic). */
const SHEDDER_POLL_MS = 100;

export type WorkerState = "starting" | "running" | "restarting" | "stopped";

export interface TenantProcessesOptions {
  /**
   * Starts worker `index` (0-based) of a tenant's pool (fork of the ksr entry
   * with `tenant-worker`, an IPC channel, JSON serialization).
   */
  readonly spawn: (tenantId: string, index: number) => ChildProcess;
  /** Messages posted to a worker and not yet handled before its requests are refused with 503. */
  readonly maxQueue?: number;
  /** Sets a worker process's nice value to MISBEHAVING_NICE (default os.setPriority; tests record it). */
  readonly lowerPriority?: (pid: number) => void;
  /** Load shedding per tenant; none when not given. */
  readonly overload?: OverloadOptions;
}

/** Counters the front keeps per worker (the worker keeps the script's). */
export class FrontCounters {
  /** Worker processes that ended without being asked to. */
  restarts = 0;
  /** Requests answered 503 because the tenant had no worker. */
  refusedNoWorker = 0;
  /** Requests answered 503 because the worker's queue was full. */
  refusedQueueFull = 0;
  /** ACKs and responses dropped for either reason. */
  dropped = 0;
}

interface PendingRequest {
  readonly resolve: (msg: WorkerMessage | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

/** One worker process of a tenant's pool, restarted when it dies. */
class TenantProcess {
  state: WorkerState = "starting";
  child: ChildProcess | undefined;
  /** Messages posted (or held for a starting worker) and not yet reported handled. */
  queued = 0;
  /** Messages to post in one batch at the end of this turn of the event loop, or once a starting worker is ready. */
  private outbox: ReceivedItem[] = [];
  private flushScheduled = false;
  readonly counters = new FrontCounters();
  lastExit: string | undefined;
  private startedAt = 0;
  /** The wait before the pending restart, and before the one after it. */
  private restartDelay = FIRST_RESTART_DELAY_MS;
  private nextRestartDelay = FIRST_RESTART_DELAY_MS;
  private nextRequestId = 1;
  /** Queueing delay of the messages posted to the worker (host/core/overload.ts). */
  readonly queueDelay = new DelayGauge(Date.now);
  /** Initial requests let through, whose retransmissions the shedder passes on. */
  readonly recent = new RecentRequests(Date.now, RECENT_REQUEST_SPAN_MS);
  /** Load shedding of this tenant, when configured (set by TenantProcesses). */
  shedder: LoadShedder | undefined;
  private readonly requests = new Map<number, PendingRequest>();
  private restartTimer: NodeJS.Timeout | undefined;
  /** Whether the last worker died within HEALTHY_RUN_MS of its start. */
  private crashLooping = false;
  /** Settles the first start: ready, or the reason it is not. */
  private firstStart: { resolve: () => void; reject: (err: Error) => void } | undefined;

  /** How logs and counter lines name this worker: the tenant id, with "#index" in a pool of several. */
  readonly label: string;

  constructor(
    readonly id: string,
    /** Position in the tenant's pool (0-based), and the pool's size. */
    readonly index: number,
    poolSize: number,
    private readonly front: TenantProcesses,
  ) {
    this.label = poolSize > 1 ? `${id}#${index}` : id;
  }

  /** Resolves when the first worker is ready; rejects if it exits before. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstStart = { resolve, reject };
      this.spawn();
    });
  }

  private spawn(): void {
    this.state = "starting";
    this.queued = 0;
    this.startedAt = Date.now();
    const child = this.front.spawnWorker(this.id, this.index);
    this.child = child;
    // A worker that keeps dying burns CPU starting and aborting: its next
    // one yields the CPU to the other tenants (see MISBEHAVING_NICE).
    if (this.crashLooping && child.pid !== undefined) {
      try {
        this.front.lowerPriority(child.pid);
      } catch (err) {
        log("warn", this.label, `cannot lower the priority of worker ${child.pid}: ${(err as Error).message}`);
      }
    }
    child.on("message", (msg: unknown) => {
      if (isWorkerMessage(msg)) this.onWorkerMessage(msg);
    });
    child.once("exit", (code, signal) => this.onExit(child, code, signal));
    // An IPC write to a worker that just died: its exit is handled above.
    child.on("error", (err) => log("warn", this.label, `worker process: ${err.message}`));
  }

  private onWorkerMessage(msg: WorkerMessage): void {
    switch (msg.t) {
      case "ready": {
        this.state = "running";
        // Held while it started: their wait so far is not queueing in the worker.
        this.queueDelay.reset();
        for (let i = 0; i < this.queued; i++) this.queueDelay.enter();
        log("info", this.label, `tenant worker running (pid ${this.child?.pid})`);
        this.scheduleFlush();
        this.firstStart?.resolve();
        this.firstStart = undefined;
        return;
      }
      case "out":
        for (const item of msg.sends) this.front.send(this.label, item);
        this.queued = Math.max(0, this.queued - msg.handled);
        this.queueDelay.leave(msg.handled);
        return;
      case "reloaded":
      case "counters":
      case "status":
      case "ops": {
        const pending = this.requests.get(msg.id);
        if (pending === undefined) return;
        this.requests.delete(msg.id);
        clearTimeout(pending.timer);
        pending.resolve(msg);
        return;
      }
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    for (const [id, pending] of this.requests) {
      clearTimeout(pending.timer);
      pending.resolve(undefined);
      this.requests.delete(id);
    }
    const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
    this.lastExit = how;
    this.counters.dropped += this.outbox.length;
    this.outbox = [];
    this.queued = 0;
    this.queueDelay.reset();
    if (this.state === "stopped") return;
    if (this.firstStart !== undefined) {
      // It never served: the script does not load (the worker printed why) or it could not start.
      this.state = "stopped";
      this.firstStart.reject(new Error(`tenant ${this.label}: worker process ended before it was ready (${how})`));
      this.firstStart = undefined;
      return;
    }
    this.counters.restarts++;
    const ranFor = Date.now() - this.startedAt;
    // After a healthy run the first delay again; crashes in a row multiply it.
    this.crashLooping = ranFor < HEALTHY_RUN_MS;
    if (!this.crashLooping) this.nextRestartDelay = FIRST_RESTART_DELAY_MS;
    this.restartDelay = this.nextRestartDelay;
    this.nextRestartDelay = Math.min(this.restartDelay * RESTART_BACKOFF_FACTOR, MAX_RESTART_DELAY_MS);
    this.state = "restarting";
    log(
      "crit",
      this.label,
      `tenant worker process ended unexpectedly (${how}) after ${ranFor} ms; its transactions and in-memory data are lost; ` +
        `restarting in ${this.restartDelay} ms (other tenants are not affected)`,
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state === "restarting") this.spawn();
    }, this.restartDelay);
  }

  /**
   * Posts a SIP message to the worker, or holds it while the worker starts;
   * false when it can be neither (no worker, or `limit` messages queued).
   */
  deliver(item: ReceivedItem, limit: number): boolean {
    if (this.queued >= limit) return false;
    const running = this.state === "running" && this.child?.connected === true;
    if (!running && this.state !== "starting") return false;
    this.outbox.push(item);
    if (running) this.scheduleFlush();
    this.queued++;
    if (this.state === "running") this.queueDelay.enter();
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      // A worker starting again meanwhile gets them once it is ready.
      if (this.state === "starting") return;
      const items = this.outbox;
      this.outbox = [];
      if (items.length === 0 || this.post({ t: "sip", items })) return;
      // The worker went away meanwhile: lost like datagrams; its exit is handled apart.
      this.counters.dropped += items.length;
      this.queued = Math.max(0, this.queued - items.length);
      this.queueDelay.leave(items.length);
    });
  }

  /** Posts a message to the worker; false when there is no running worker. */
  post(msg: FrontMessage): boolean {
    const child = this.child;
    if (this.state !== "running" || child === undefined || !child.connected) return false;
    try {
      child.send(msg);
    } catch {
      return false;
    }
    return true;
  }

  /** Asks the worker and waits for its answer; undefined when it has none (not running, died, timed out). */
  request(make: (id: number) => FrontMessage): Promise<WorkerMessage | undefined> {
    const id = this.nextRequestId++;
    return new Promise((resolve) => {
      if (!this.post(make(id))) return resolve(undefined);
      const timer = setTimeout(() => {
        this.requests.delete(id);
        resolve(undefined);
      }, REQUEST_TIMEOUT_MS);
      this.requests.set(id, { resolve, timer });
    });
  }

  /** Seconds until a worker should be back, for Retry-After (at least 1). */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.restartDelay / 1000));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stops the worker for good (SIGTERM, SIGKILL after a grace period); resolves when it has exited. */
  stop(): Promise<void> {
    this.state = "stopped";
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.firstStart?.reject(new Error(`tenant ${this.label}: stopped before it was ready`));
    this.firstStart = undefined;
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      child.once("exit", () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill("SIGTERM");
    });
  }
}

/** The front's Router: every tenant in its own worker process(es), each message handed on with the bytes it arrived as. */
export class TenantProcesses implements Router {
  private readonly selector: TenantSelector;
  /** Each tenant's pool of workers, in index order. */
  private readonly pools = new Map<string, readonly TenantProcess[]>();
  /** Every worker of every pool. */
  private readonly processes: readonly TenantProcess[];
  private readonly maxQueue: number;
  private server: RouterHost | undefined;
  /** Requests answered with the `unmatched` status. */
  unmatchedRequests = 0;
  /** Responses no tenant could be found for. */
  unclaimedResponses = 0;
  private shedderPoll: NodeJS.Timeout | undefined;

  constructor(
    readonly config: TenantsConfig,
    private readonly options: TenantProcessesOptions,
  ) {
    this.selector = new TenantSelector(config);
    this.maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    for (const entry of config.tenants) {
      const size = entry.workers;
      this.pools.set(
        entry.id,
        Array.from({ length: size }, (_, index) => new TenantProcess(entry.id, index, size, this)),
      );
    }
    this.processes = [...this.pools.values()].flat();
    const overload = options.overload;
    if (overload !== undefined) {
      for (const proc of this.processes) {
        // Every message to the worker passes here, so an empty queue has no delay, however late
        // the last one was handled (a route that ran to its timeout must not keep the tenant shed).
        // A worker that is not running has no queue to measure: no worker at all is refused below.
        const delay = overload.delaySource ?? (() => (proc.state === "running" && proc.queueDelay.size > 0 ? proc.queueDelay.delayMs() : 0));
        proc.shedder = new LoadShedder(overload, delay, Date.now, {
          toTransaction: (msg) => (proc.recent.has(msg) ? "pass" : "new"),
          sendShedReply: (msg, rcv, retryAfterS, toTag) => this.server?.sendShedReply(msg, rcv, retryAfterS, toTag),
          log: (level, text) => log(level, proc.label, text),
        });
      }
    }
  }

  /**
   * The server whose sockets the workers use (it answers unmatched and
   * refused requests itself): `new SipServer((host) => processes.attach(host), ...)`.
   */
  attach(server: RouterHost): this {
    this.server = server;
    return this;
  }

  /**
   * Starts every tenant's worker (after the server listens: they are given
   * its bound sockets). Rejects when one does not start — its script does
   * not load —, after stopping the others.
   */
  async start(): Promise<void> {
    if (this.options.overload !== undefined && this.shedderPoll === undefined) {
      this.shedderPoll = setInterval(() => {
        for (const proc of this.processes) proc.shedder?.poll();
      }, SHEDDER_POLL_MS);
      this.shedderPoll.unref();
    }
    const starts = this.processes.map((p) => p.start());
    const results = await Promise.allSettled(starts);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) {
      await this.stop();
      throw new Error(failed.map((r) => (r.reason as Error).message).join("\n"));
    }
  }

  async stop(): Promise<void> {
    if (this.shedderPoll !== undefined) clearInterval(this.shedderPoll);
    this.shedderPoll = undefined;
    await Promise.all(this.processes.map((p) => p.stop()));
  }

  /** @internal Lowers a worker's priority (a tenant whose workers keep dying). */
  lowerPriority(pid: number): void {
    (this.options.lowerPriority ?? ((p: number) => setPriority(p, MISBEHAVING_NICE)))(pid);
  }

  /** @internal Starts worker `index` of a tenant's pool. */
  spawnWorker(tenantId: string, index: number): ChildProcess {
    return this.options.spawn(tenantId, index);
  }

  /** @internal What a worker asks to send, sent from the front's sockets. */
  send(workerLabel: string, msg: SendItem): void {
    const dest = { proto: msg.proto, host: msg.ip, port: msg.port, connectionId: msg.connectionId };
    this.server?.send(dest, msg.data, msg.from, `${msg.data.length} bytes of tenant ${workerLabel}`, undefined, msg.flags);
  }

  /** The worker of the tenant's pool that owns the message's Call-ID (the parser refuses a message without one). */
  private ownerIn(pool: readonly TenantProcess[], msg: SipMessage): TenantProcess {
    return pool.length === 1 ? pool[0]! : pool[callIdOwner(msg.callId, pool.length)]!;
  }

  route(msg: SipMessage, data: string, rcv: ReceiveInfo): void {
    const server = this.server;
    if (server === undefined) return;
    if (msg.kind === "request") {
      const entry = this.selector.select(msg, rcv);
      if (entry === undefined) {
        this.unmatchedRequests++;
        answerUnmatched(server, server.tenant, msg, rcv, this.config.unmatched);
        return;
      }
      this.deliver(this.ownerIn(this.pools.get(entry.id)!, msg), msg, data, rcv);
      return;
    }
    const named = tenantNamedByVia(msg);
    const pool = (named === undefined ? undefined : this.pools.get(named)) ?? this.poolOfSelection(msg, rcv);
    if (pool === undefined) {
      this.unclaimedResponses++;
      log("dbg", "ksr", `no tenant for ${msg.status} response call-id=${msg.callId}: dropped`);
      return;
    }
    this.deliver(this.ownerIn(pool, msg), msg, data, rcv);
  }

  private poolOfSelection(msg: SipMessage, rcv: ReceiveInfo): readonly TenantProcess[] | undefined {
    const entry = this.selector.select(msg, rcv);
    return entry === undefined ? undefined : this.pools.get(entry.id);
  }

  private deliver(proc: TenantProcess, msg: SipMessage, data: string, rcv: ReceiveInfo): void {
    if (proc.shedder?.intercept(msg, rcv) === true) return;
    if (proc.deliver({ data, rcv }, this.maxQueue)) {
      if (proc.shedder !== undefined && isInitialRequest(msg)) proc.recent.add(msg);
      return;
    }
    const full = proc.queued >= this.maxQueue;
    const why = full ? `its worker has ${proc.queued} messages queued` : `its worker is ${proc.state}`;
    if (msg.kind === "response" || msg.method === "ACK") {
      proc.counters.dropped++;
      log("dbg", proc.label, `${msg.kind === "response" ? `${msg.status} response` : "ACK"} call-id=${msg.callId} dropped: ${why}`);
      return;
    }
    if (full) proc.counters.refusedQueueFull++;
    else proc.counters.refusedNoWorker++;
    const server = this.server!;
    const ctx = new MessageContext(msg, rcv, "request", server.tenant, server);
    ctx.replyHeaders.push(`Retry-After: ${proc.retryAfterSeconds}`);
    server.sendReply(ctx, 503, "Service Unavailable");
    log("info", proc.label, `${msg.method} call-id=${msg.callId} answered 503: ${why}`);
  }

  /** Reloads one tenant's script (or every tenant's) in every worker of its pool; ok only when every worker reloaded. */
  async reload(tenantId?: string): Promise<Map<string, ReloadResult>> {
    const ids = tenantId === undefined ? [...this.pools.keys()] : [tenantId];
    const results = await Promise.all(
      ids.map(async (id): Promise<ReloadResult> => {
        const pool = this.pools.get(id);
        if (pool === undefined) return { ok: false, error: `no tenant "${id}"` };
        const answers = await Promise.all(
          pool.map(async (proc): Promise<ReloadResult> => {
            const answer = await proc.request((rid) => ({ t: "reload", id: rid }));
            if (answer?.t === "reloaded") return answer.result;
            return { ok: false, error: `tenant ${proc.label}: worker is ${proc.state}, not answering` };
          }),
        );
        // Workers of one pool load the same file: the first failure says why.
        return answers.find((r) => !r.ok) ?? answers[0]!;
      }),
    );
    return new Map(ids.map((id, i) => [id, results[i]!]));
  }

  /**
   * Per worker: the front's line (process, restarts, refusals) and the
   * worker's counters, named `tenant <id>` (`tenant <id>#<index>` in a pool
   * of several); then messages no tenant took.
   */
  async counterLines(): Promise<string[]> {
    const lines: string[] = [];
    for (const proc of this.processes) {
      const c = proc.counters;
      lines.push(
        `tenant ${proc.label}: process state=${proc.state} pid=${proc.pid ?? "-"} restarts=${c.restarts} queued=${proc.queued} ` +
          `refused-no-worker=${c.refusedNoWorker} refused-queue-full=${c.refusedQueueFull} dropped=${c.dropped}` +
          (proc.lastExit !== undefined ? ` last-exit=${proc.lastExit.replace(/ /g, "-")}` : "") +
          (proc.shedder !== undefined ? ` ${proc.shedder.counterFields()}` : ""),
      );
      const answer = await proc.request((id) => ({ t: "counters", id }));
      const own = `tenant ${proc.id}:`;
      if (answer?.t === "counters") lines.push(...answer.lines.map((l) => (l.startsWith(own) ? `tenant ${proc.label}:${l.slice(own.length)}` : l)));
      else lines.push(`tenant ${proc.label}: worker not answering (${proc.state})`);
    }
    lines.push(`no tenant: requests answered ${this.config.unmatched}=${this.unmatchedRequests} responses dropped=${this.unclaimedResponses}`);
    return lines;
  }

  /** The front's load shedders, one per worker (host/metrics). */
  shedders(): LoadShedder[] {
    return this.processes.flatMap((p) => (p.shedder !== undefined ? [p.shedder] : []));
  }

  /** What the front keeps of each worker, for the metrics. */
  workerReadings(): FrontWorkerReading[] {
    return this.processes.map((p) => ({
      tenant: p.id,
      running: p.state === "running",
      restarts: p.counters.restarts,
      refusedNoWorker: p.counters.refusedNoWorker,
      refusedQueueFull: p.counters.refusedQueueFull,
      dropped: p.counters.dropped,
      queued: p.queued,
    }));
  }

  /**
   * Runs an operation of host/ops in the workers: of one tenant, or every
   * worker. One answer per worker asked, in pool order; a worker that
   * does not answer in time gives `{ error }`.
   */
  async askWorkers(method: string, params: unknown, tenantId?: string): Promise<{ tenant: string; worker: string; result?: unknown; error?: string }[]> {
    const asked = tenantId === undefined ? this.processes : (this.pools.get(tenantId) ?? []);
    return Promise.all(
      asked.map(async (proc) => {
        const answer = await proc.request((id) => ({ t: "ops", id, method, ...(params !== undefined ? { params } : {}) }));
        if (answer?.t !== "ops") return { tenant: proc.id, worker: proc.label, error: `worker ${proc.label} not answering (${proc.state})` };
        return { tenant: proc.id, worker: proc.label, ...(answer.error !== undefined ? { error: answer.error } : { result: answer.result }) };
      }),
    );
  }

  /** Every answering worker's metric families (host/ops/metrics.ts). */
  async workerMetrics(): Promise<MetricsJson[]> {
    const answers = await this.askWorkers("metrics", undefined);
    return answers.flatMap((a) => (Array.isArray(a.result) ? (a.result as MetricsJson[]) : []));
  }

  /** Per worker: tenant, index in the pool (when the pool has several), state, pid, restarts and (when it answers) the script's execution mode. */
  async statuses(): Promise<
    { id: string; worker: number | undefined; state: WorkerState; pid: number | undefined; restarts: number; mode: string | undefined }[]
  > {
    return Promise.all(
      this.processes.map(async (proc) => {
        const answer = await proc.request((id) => ({ t: "status", id }));
        return {
          id: proc.id,
          worker: proc.label === proc.id ? undefined : proc.index,
          state: proc.state,
          pid: proc.pid,
          restarts: proc.counters.restarts,
          mode: answer?.t === "status" ? answer.mode : undefined,
        };
      }),
    );
  }
}
