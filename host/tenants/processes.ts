/**
 * Tenants in worker processes: the front.
 *
 * Which process runs which tenants is host/tenants/shards.ts's plan: shards
 * of many tenants each, processes of one tenant (`isolation: own-process`,
 * quarantined or moved-out tenants) and pools (`workers: k`).
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
 * Quarantine: when a shard dies, the tenant whose route was running (the
 * shard's running file names it, host/tenants/worker.ts) is moved into a
 * process of its own, and the shard restarts without it. A tenant that
 * aborts V8 every time it runs thus costs its shard neighbours their
 * in-memory state once; afterwards it only ends its own process. A shard
 * also asks (`evict`) to move out a tenant at its first out-of-memory: it
 * gets a process of its own at once, its messages held until that process
 * is ready; messages the shard received for it meanwhile come back
 * (`return`, each names its tenant) and go on to that process.
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
import { readSync, openSync, closeSync, writeFileSync, rmSync } from "node:fs";
import { join as joinPath } from "node:path";
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
import { planProcesses, type ProcessPlan } from "./shards.js";
import { encodeRunningTenant } from "./worker.js";

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

/** What a worker process is started with: its plan (tenants, pool place) and, for a shard, its running file. */
export interface WorkerSpawn extends ProcessPlan {
  readonly runningFile: string | undefined;
}

export interface TenantProcessesOptions {
  /**
   * Starts a worker process (fork of the ksr entry with `tenant-worker`,
   * an IPC channel, JSON serialization).
   */
  readonly spawn: (worker: WorkerSpawn) => ChildProcess;
  /**
   * Which processes run which tenants (host/tenants/shards.ts); default a
   * process (or pool) per tenant.
   */
  readonly plan?: readonly ProcessPlan[];
  /**
   * Directory of the shards' running files (/dev/shm: memory); without it
   * a dying shard is restarted with all its tenants, none quarantined.
   */
  readonly runningDir?: string;
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

/** One worker process (a shard, a tenant's own, one of a tenant's pool), restarted when it dies. */
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

  /** How logs and counter lines name this worker: the tenant id (with "#index" in a pool of several), or "shard-<n>". */
  readonly label: string;
  readonly kind: ProcessPlan["kind"];
  /** Position in the tenant's pool (0-based), and the pool's size (0 and 1 but in a pool). */
  readonly index: number;
  readonly poolSize: number;
  /** The tenants it runs; a quarantined tenant leaves its shard's list. */
  tenantIds: string[];
  /** A shard's running file (the tenant whose route started last), when the front keeps them. */
  readonly runningFile: string | undefined;

  constructor(
    plan: ProcessPlan,
    private readonly front: TenantProcesses,
    runningDir: string | undefined,
  ) {
    this.label = plan.label;
    this.kind = plan.kind;
    this.index = plan.index;
    this.poolSize = plan.poolSize;
    this.tenantIds = [...plan.tenantIds];
    this.runningFile = plan.kind === "shard" && runningDir !== undefined ? joinPath(runningDir, `ksr-running-${process.pid}-${plan.label}`) : undefined;
  }

  /** How the front's log lines name it: `[evil]` for a tenant's own process, `[shard-0]` for a shard. */
  get describe(): string {
    return this.kind === "shard" ? `${this.label} (tenants ${this.tenantIds.length <= 5 ? this.tenantIds.join(", ") : `${this.tenantIds.slice(0, 5).join(", ")} and ${this.tenantIds.length - 5} more`})` : this.label;
  }

  /**
   * Starts it now, not as a first start (which the server's start waits
   * for): a tenant moved out of a running shard for misbehaving, so its
   * process starts at the lowered priority a crash-looping one gets.
   */
  startNow(): void {
    this.crashLooping = true;
    this.spawn();
  }

  /** Starts it later, as after a crash of its own (a quarantined tenant's new process). */
  startAfterCrash(delayMs: number): void {
    this.crashLooping = true;
    this.restartDelay = delayMs;
    this.nextRestartDelay = Math.min(delayMs * RESTART_BACKOFF_FACTOR, MAX_RESTART_DELAY_MS);
    this.state = "restarting";
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state === "restarting") this.spawn();
    }, delayMs);
  }

  /** The tenant whose route started last in this shard, or undefined (no file, none recorded, unreadable). */
  private runningTenant(): string | undefined {
    if (this.runningFd === undefined) return undefined;
    const buf = Buffer.alloc(4);
    try {
      if (readSync(this.runningFd, buf, 0, 4, 0) !== 4) return undefined;
    } catch {
      return undefined;
    }
    return this.spawnedWith[buf.readInt32LE(0)];
  }

  /** The tenant list the running process was started with (the running file indexes it). */
  private spawnedWith: readonly string[] = [];

  /**
   * The front's descriptor of the running file of the current process: the
   * file's name is removed once the worker has opened it too (at "ready"),
   * so nothing is left in the directory, even when the front is killed;
   * both keep the file through their descriptors.
   */
  private runningFd: number | undefined;

  /** Creates the running file for a process about to start, naming no tenant yet (a death before any route blames no one). */
  private createRunningFile(): void {
    this.closeRunningFile();
    if (this.runningFile === undefined) return;
    writeFileSync(this.runningFile, encodeRunningTenant(-1));
    this.runningFd = openSync(this.runningFile, "r");
  }

  /** Removes the running file (its name, if still there, and the front's descriptor). */
  closeRunningFile(): void {
    if (this.runningFile !== undefined) rmSync(this.runningFile, { force: true });
    if (this.runningFd !== undefined) closeSync(this.runningFd);
    this.runningFd = undefined;
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
    this.spawnedWith = [...this.tenantIds];
    this.createRunningFile();
    const child = this.front.spawnWorker({
      label: this.label,
      tenantIds: this.spawnedWith,
      kind: this.kind,
      index: this.index,
      poolSize: this.poolSize,
      runningFile: this.runningFile,
    });
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
        // The worker has opened its running file: its name can go.
        if (this.runningFile !== undefined) rmSync(this.runningFile, { force: true });
        // Held while it started: their wait so far is not queueing in the worker.
        this.queueDelay.reset();
        for (let i = 0; i < this.queued; i++) this.queueDelay.enter();
        log("info", this.label, this.kind === "shard" ? `shard of ${this.tenantIds.length} tenant${this.tenantIds.length === 1 ? "" : "s"} running (pid ${this.child?.pid})` : `tenant worker running (pid ${this.child?.pid})`);
        this.scheduleFlush();
        this.firstStart?.resolve();
        this.firstStart = undefined;
        return;
      }
      case "out":
        {
          const sent: number[] = [];
          const failed: number[] = [];
          for (const item of msg.sends) {
            const ok = this.front.send(this.label, item);
            if (item.ref !== undefined) (ok ? sent : failed).push(item.ref);
          }
          if (sent.length + failed.length > 0) this.post({ t: "sendResults", sent, failed });
        }
        this.queued = Math.max(0, this.queued - msg.handled);
        this.queueDelay.leave(msg.handled);
        return;
      case "evict":
        // Only a shard's own tenant, and never its last one.
        if (this.kind !== "shard" || this.tenantIds.length <= 1 || !this.tenantIds.includes(msg.tenant)) return;
        this.tenantIds = this.tenantIds.filter((id) => id !== msg.tenant);
        this.front.moveOut(msg.tenant, this, `${this.label} asked to move it out (${msg.reason}): its out-of-memory recoveries would cost its neighbours`);
        return;
      case "return":
        for (const item of msg.items) this.front.redeliver(item, this);
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
      const who = this.kind === "shard" ? this.describe : `tenant ${this.label}`;
      this.firstStart.reject(new Error(`${who}: worker process ended before it was ready (${how})`));
      this.firstStart = undefined;
      return;
    }
    this.counters.restarts++;
    const ranFor = Date.now() - this.startedAt;
    const culprit = this.kind === "shard" && this.tenantIds.length > 1 ? this.runningTenant() : undefined;
    if (culprit !== undefined && this.tenantIds.includes(culprit)) {
      // Its neighbours lost their state once; from now on it only ends its own process.
      const lost = this.describe;
      this.tenantIds = this.tenantIds.filter((id) => id !== culprit);
      this.restartDelay = FIRST_RESTART_DELAY_MS;
      this.nextRestartDelay = FIRST_RESTART_DELAY_MS;
      this.crashLooping = false;
      this.state = "restarting";
      log(
        "crit",
        this.label,
        `shard process ended unexpectedly (${how}) after ${ranFor} ms while running tenant ${culprit}; ${lost}: transactions and in-memory data lost; ` +
          `tenant ${culprit} quarantined into a process of its own; restarting the shard without it in ${this.restartDelay} ms`,
      );
      this.front.quarantine(culprit, this, FIRST_RESTART_DELAY_MS);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this.state === "restarting") this.spawn();
      }, this.restartDelay);
      return;
    }
    // After a healthy run the first delay again; crashes in a row multiply it.
    this.crashLooping = ranFor < HEALTHY_RUN_MS;
    if (!this.crashLooping) this.nextRestartDelay = FIRST_RESTART_DELAY_MS;
    this.restartDelay = this.nextRestartDelay;
    this.nextRestartDelay = Math.min(this.restartDelay * RESTART_BACKOFF_FACTOR, MAX_RESTART_DELAY_MS);
    this.state = "restarting";
    log(
      "crit",
      this.label,
      this.kind === "shard"
        ? `shard process ended unexpectedly (${how}) after ${ranFor} ms; ${this.describe}: transactions and in-memory data lost; ` +
            `restarting in ${this.restartDelay} ms (other processes are not affected)`
        : `tenant worker process ended unexpectedly (${how}) after ${ranFor} ms; its transactions and in-memory data are lost; ` +
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
   * A shard's messages carry the tenant they are for (it hands back those
   * of a tenant it moved out).
   */
  deliver(item: ReceivedItem, limit: number, tenantId?: string): boolean {
    if (this.queued >= limit) return false;
    const running = this.state === "running" && this.child?.connected === true;
    if (!running && this.state !== "starting") return false;
    this.outbox.push(this.kind === "shard" && tenantId !== undefined ? { ...item, tenant: tenantId } : item);
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

/** The front's Router: the tenants in worker processes (shards, own processes, pools), each message handed on with the bytes it arrived as. */
export class TenantProcesses implements Router {
  private readonly selector: TenantSelector;
  /** The workers each tenant's messages go to: its shard, its own process, or its pool in index order. */
  private readonly pools = new Map<string, readonly TenantProcess[]>();
  /** Every worker process (quarantine adds some). */
  private readonly processes: TenantProcess[] = [];
  /** Requests the front refused and messages it dropped, per tenant (a shard's own counters mix its tenants). */
  private readonly tenantCounters = new Map<string, FrontCounters>();
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
    // Default: a process (or pool) per tenant, as many shards as tenants each alone.
    const plan = options.plan ?? planProcesses({ tenants: config.tenants.map((t) => (t.workers > 1 ? t : { ...t, ownProcess: true })) }, 1);
    const pools = new Map<string, TenantProcess[]>();
    for (const p of plan) {
      const proc = this.addProcess(p);
      for (const id of p.tenantIds) pools.set(id, [...(pools.get(id) ?? []), proc]);
    }
    for (const entry of config.tenants) {
      const pool = pools.get(entry.id);
      if (pool === undefined) throw new Error(`tenant ${entry.id}: the process plan has no process for it`);
      this.pools.set(entry.id, pool);
      this.tenantCounters.set(entry.id, new FrontCounters());
    }
  }

  /** A worker process for the plan, with its load shedding when configured. */
  private addProcess(plan: ProcessPlan): TenantProcess {
    const proc = new TenantProcess(plan, this, this.options.runningDir);
    const overload = this.options.overload;
    if (overload !== undefined) {
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
    this.processes.push(proc);
    return proc;
  }

  /** @internal Moves a tenant out of the shard that died running it, into a process of its own started after `delayMs`. */
  quarantine(tenantId: string, shard: TenantProcess, delayMs: number): void {
    const own = this.addProcess({ label: tenantId, tenantIds: [tenantId], kind: "own", index: 0, poolSize: 1 });
    this.pools.set(tenantId, [own]);
    own.startAfterCrash(delayMs);
    log("notice", tenantId, `tenant quarantined: it was running when ${shard.label} died; it now runs in a process of its own`);
  }

  /**
   * @internal Moves a tenant out of a running shard into a process of its
   * own, started now; its messages are held until it is ready. What the
   * shard kept for it (transactions, script state) stays behind, unused.
   */
  moveOut(tenantId: string, shard: TenantProcess, why: string): void {
    const own = this.addProcess({ label: tenantId, tenantIds: [tenantId], kind: "own", index: 0, poolSize: 1 });
    this.pools.set(tenantId, [own]);
    own.startNow();
    log("notice", tenantId, `tenant moved into a process of its own: ${why}`);
  }

  /**
   * @internal A message a shard handed back (`return`): it was posted to
   * the shard before the tenant moved out. It goes to the tenant's process
   * now (held while that starts); when that cannot take it, it is dropped
   * and counted, like a message lost with a worker (the peer retransmits).
   */
  redeliver(item: ReceivedItem, from: TenantProcess): void {
    const pool = item.tenant === undefined ? undefined : this.pools.get(item.tenant);
    const proc = pool?.length === 1 ? pool[0]! : undefined;
    const { tenant: _, ...plain } = item;
    if (proc !== undefined && proc !== from && proc.deliver(plain, this.maxQueue)) return;
    from.counters.dropped++;
    if (item.tenant !== undefined) {
      const counters = this.tenantCounters.get(item.tenant);
      if (counters !== undefined) counters.dropped++;
    }
    log("dbg", from.label, `a message handed back for tenant ${item.tenant ?? "?"} dropped: no process of its own to take it`);
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
    for (const p of this.processes) p.closeRunningFile();
  }

  /** @internal Lowers a worker's priority (a tenant whose workers keep dying). */
  lowerPriority(pid: number): void {
    (this.options.lowerPriority ?? ((p: number) => setPriority(p, MISBEHAVING_NICE)))(pid);
  }

  /** @internal Starts a worker process. */
  spawnWorker(worker: WorkerSpawn): ChildProcess {
    return this.options.spawn(worker);
  }

  /** @internal What a worker asks to send, sent from the front's sockets; false when it could not be. */
  send(workerLabel: string, msg: SendItem): boolean {
    const dest = { proto: msg.proto, host: msg.ip, port: msg.port, connectionId: msg.connectionId };
    return this.server?.send(dest, msg.data, msg.from, `${msg.data.length} bytes of tenant ${workerLabel}`, undefined, msg.flags) ?? false;
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
      this.deliver(entry.id, msg, data, rcv);
      return;
    }
    const named = tenantNamedByVia(msg);
    const tenantId = named !== undefined && this.pools.has(named) ? named : this.selector.select(msg, rcv)?.id;
    if (tenantId === undefined) {
      this.unclaimedResponses++;
      log("dbg", "ksr", `no tenant for ${msg.status} response call-id=${msg.callId}: dropped`);
      return;
    }
    this.deliver(tenantId, msg, data, rcv);
  }

  /** Hands the message to the worker of the tenant's pool that owns it, or refuses it (503) or drops it (ACK, response) when that worker cannot take it. */
  private deliver(tenantId: string, msg: SipMessage, data: string, rcv: ReceiveInfo): void {
    const proc = this.ownerIn(this.pools.get(tenantId)!, msg);
    if (proc.shedder?.intercept(msg, rcv) === true) return;
    if (proc.deliver({ data, rcv }, this.maxQueue, tenantId)) {
      if (proc.shedder !== undefined && isInitialRequest(msg)) proc.recent.add(msg);
      return;
    }
    const full = proc.queued >= this.maxQueue;
    const why = full ? `its worker has ${proc.queued} messages queued` : `its worker is ${proc.state}`;
    const tenantCounters = this.tenantCounters.get(tenantId)!;
    if (msg.kind === "response" || msg.method === "ACK") {
      proc.counters.dropped++;
      tenantCounters.dropped++;
      log("dbg", proc.label, `${msg.kind === "response" ? `${msg.status} response` : "ACK"} call-id=${msg.callId} dropped: ${why}`);
      return;
    }
    if (full) {
      proc.counters.refusedQueueFull++;
      tenantCounters.refusedQueueFull++;
    } else {
      proc.counters.refusedNoWorker++;
      tenantCounters.refusedNoWorker++;
    }
    const server = this.server!;
    const ctx = new MessageContext(msg, rcv, "request", server.tenant, server);
    ctx.replyHeaders.push(`Retry-After: ${proc.retryAfterSeconds}`);
    server.sendReply(ctx, 503, "Service Unavailable");
    log("info", proc.label, `${msg.method} call-id=${msg.callId} answered 503: ${why}`);
  }

  /** Reloads one tenant's script (or every tenant's) in every worker that runs it; ok only when every such worker reloaded. */
  async reload(tenantId?: string): Promise<Map<string, ReloadResult>> {
    const ids = tenantId === undefined ? [...this.pools.keys()] : [tenantId];
    if (tenantId !== undefined && !this.pools.has(tenantId)) return new Map([[tenantId, { ok: false, error: `no tenant "${tenantId}"` }]]);
    const targets = tenantId === undefined ? this.processes.filter((p) => p.tenantIds.length > 0) : this.pools.get(tenantId)!;
    const perProcess = await Promise.all(
      targets.map(async (proc) => {
        const answer = await proc.request((rid) => ({ t: "reload", id: rid, ...(tenantId !== undefined ? { tenant: tenantId } : {}) }));
        return { proc, results: answer?.t === "reloaded" ? answer.results : undefined };
      }),
    );
    const results = new Map<string, ReloadResult>();
    for (const { proc, results: answered } of perProcess) {
      for (const id of tenantId === undefined ? proc.tenantIds : [tenantId]) {
        const result: ReloadResult = answered?.[id] ?? {
          ok: false,
          error: proc.kind === "shard" ? `tenant ${id}: its shard ${proc.label} is ${proc.state}, not answering` : `tenant ${proc.label}: worker is ${proc.state}, not answering`,
        };
        // Workers of one pool load the same file: the first failure says why.
        if (results.get(id)?.ok !== false) results.set(id, result);
      }
    }
    return new Map(ids.map((id) => [id, results.get(id) ?? { ok: false, error: `tenant ${id}: no worker answered` }]));
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
        `${proc.kind === "shard" ? `${proc.label} tenants=${proc.tenantIds.length}` : `tenant ${proc.label}`}: process state=${proc.state} pid=${proc.pid ?? "-"} restarts=${c.restarts} queued=${proc.queued} ` +
          `refused-no-worker=${c.refusedNoWorker} refused-queue-full=${c.refusedQueueFull} dropped=${c.dropped}` +
          (proc.lastExit !== undefined ? ` last-exit=${proc.lastExit.replace(/ /g, "-")}` : "") +
          (proc.shedder !== undefined ? ` ${proc.shedder.counterFields()}` : ""),
      );
      const answer = await proc.request((id) => ({ t: "counters", id }));
      // A pool's workers each report the tenant: named with their index.
      const own = proc.poolSize > 1 ? `tenant ${proc.tenantIds[0]}:` : undefined;
      // A shard still holds the tenants moved out of it (quarantined, evicted): their lines are the new process's.
      const current = new Set(proc.tenantIds.map((id) => `tenant ${id}:`));
      const stale = (l: string): boolean => proc.kind === "shard" && l.startsWith("tenant ") && !current.has(l.slice(0, l.indexOf(":") + 1));
      if (answer?.t === "counters") {
        lines.push(...answer.lines.filter((l) => !stale(l)).map((l) => (own !== undefined && l.startsWith(own) ? `tenant ${proc.label}:${l.slice(own.length)}` : l)));
      } else lines.push(`${proc.kind === "shard" ? proc.label : `tenant ${proc.label}`}: worker not answering (${proc.state})`);
    }
    lines.push(`no tenant: requests answered ${this.config.unmatched}=${this.unmatchedRequests} responses dropped=${this.unclaimedResponses}`);
    return lines;
  }

  /** The front's load shedders, one per worker (host/metrics). */
  shedders(): LoadShedder[] {
    return this.processes.flatMap((p) => (p.shedder !== undefined ? [p.shedder] : []));
  }

  /**
   * What the front keeps of each tenant's workers, for the metrics: one
   * reading per tenant and process serving it. A shard's state, restarts and
   * queue are those of the process its tenants share; refusals and drops are
   * the tenant's own.
   */
  workerReadings(): FrontWorkerReading[] {
    const readings: FrontWorkerReading[] = [];
    for (const [tenant, pool] of this.pools) {
      const own = this.tenantCounters.get(tenant)!;
      pool.forEach((p, i) =>
        readings.push({
          tenant,
          running: p.state === "running",
          restarts: p.counters.restarts,
          // Counted once per tenant, on its first process.
          refusedNoWorker: i === 0 ? own.refusedNoWorker : 0,
          refusedQueueFull: i === 0 ? own.refusedQueueFull : 0,
          dropped: i === 0 ? own.dropped : 0,
          queued: p.queued,
        }),
      );
    }
    return readings;
  }

  /**
   * Runs an operation of host/ops in the workers: of one tenant, or every
   * worker. One answer per worker asked, in pool order; a worker that
   * does not answer in time gives `{ error }`.
   */
  async askWorkers(method: string, params: unknown, tenantId?: string): Promise<{ worker: string; result?: unknown; error?: string }[]> {
    const asked = tenantId === undefined ? this.processes : (this.pools.get(tenantId) ?? []);
    return Promise.all(
      asked.map(async (proc) => {
        const answer = await proc.request((id) => ({ t: "ops", id, method, ...(params !== undefined ? { params } : {}) }));
        if (answer?.t !== "ops") return { worker: proc.label, error: `worker ${proc.label} not answering (${proc.state})` };
        return { worker: proc.label, ...(answer.error !== undefined ? { error: answer.error } : { result: answer.result }) };
      }),
    );
  }

  /** Every answering worker's metric families (host/ops/metrics.ts). */
  async workerMetrics(): Promise<MetricsJson[]> {
    const answers = await this.askWorkers("metrics", undefined);
    return answers.flatMap((a) => (Array.isArray(a.result) ? (a.result as MetricsJson[]) : []));
  }

  /**
   * Per tenant and worker running it: index in the pool (when the pool has
   * several), the shard (when it shares one), the process's state, pid and
   * restarts and (when it answers) the script's execution mode.
   */
  async statuses(): Promise<
    {
      id: string;
      worker: number | undefined;
      shard: string | undefined;
      state: WorkerState;
      pid: number | undefined;
      restarts: number;
      mode: string | undefined;
    }[]
  > {
    const perProcess = await Promise.all(
      this.processes.map(async (proc) => {
        const answer = await proc.request((id) => ({ t: "status", id }));
        return proc.tenantIds.map((id) => ({
          id,
          worker: proc.poolSize > 1 ? proc.index : undefined,
          shard: proc.kind === "shard" ? proc.label : undefined,
          state: proc.state,
          pid: proc.pid,
          restarts: proc.counters.restarts,
          mode: answer?.t === "status" ? answer.modes[id] : undefined,
        }));
      }),
    );
    // In tenants-file order, a pool's workers in index order.
    const order = new Map(this.config.tenants.map((t, i) => [t.id, i]));
    return perProcess.flat().sort((x, y) => order.get(x.id)! - order.get(y.id)! || (x.worker ?? 0) - (y.worker ?? 0));
  }
}
