/**
 * The loaded tenants: per tenant its current script runner, the state its
 * scripts keep between messages, its CPU budget and its counters.
 *
 * Execution (bench/EXECUTION-DESIGN.md): a tenant's routes run synchronously
 * until it times out, runs out of memory or overruns its CPU budget; then its
 * runner is demoted to asynchronous execution on isolated-vm's threads, so
 * it can no longer stall the main thread. Every tenant, sync or demoted, is
 * held to its CPU share: a request that arrives while its bucket is empty is
 * not run at all (the caller answers 503).
 *
 * Reload: a new runner is built off the main thread and swapped in only if
 * the script loads; executions already started (and leases, e.g. held by a
 * transaction) keep the runner they started with, which is disposed when
 * the last of them lets go.
 */
import { compileEgress } from "../core/egress.js";
import { watch as watchPath, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import { newTenantState, type MessageContext, type ReceiveInfo, type TenantState } from "../core/context.js";
import { log } from "../core/log.js";
import { Histogram, ROUTE_LATENCY_BUCKETS_S } from "../metrics/histogram.js";
import { KEMI_MODULES } from "../modules/index.js";
import type { KemiModule } from "../modules/types.js";
import type { SipMessage } from "../sip/message.js";
import { CpuBudget } from "../../sandbox/budget.js";
import { ScriptRunner, type ExecutionMode, type ScriptRunnerOptions } from "../../sandbox/runner.js";
import type { RouteOutcome } from "../../sandbox/types.js";
import { TenantsConfigError, type TenantEntry, type TenantErrorPolicy, type TenantsConfig, type TenantsConfigIssue } from "./config.js";
import { TenantSelector } from "./select.js";
import { configureTenantDispatcher } from "../modules/dispatcher/tenants.js";
import { configureTenantPike } from "../modules/pike.js";

/** A route run, or the refusal to run it because the tenant is over its CPU budget. */
export type TenantRouteOutcome = RouteOutcome | { readonly status: "over-budget" };

/** A tenant's execution mode as reported (counters, `ksr ctl status`): its runner's, or "probation" while it runs async until proven. */
export type TenantMode = ExecutionMode | "probation";

export type ReplyClass = "1xx" | "2xx" | "3xx" | "4xx" | "5xx" | "6xx";

export type ReloadResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** What the registry needs of a tenant's script runner; ScriptRunner is the real one. */
export type TenantRunner = Pick<ScriptRunner, "scriptPath" | "mode" | "inFlight" | "cpuTimeNs" | "isDisposed" | "hasRoute" | "runRoute" | "runRouteAny" | "demote" | "dispose"> &
  Partial<Pick<ScriptRunner, "hibernate" | "promote">>;

export interface TenantRegistryOptions {
  /**
   * Builds a tenant's first runner (default ScriptRunner.load with the
   * tenant's limits and modules). The testing harness passes one that
   * records each run; a reload always loads the script file.
   */
  readonly load?: (entry: TenantEntry, options: ScriptRunnerOptions) => TenantRunner;
  /**
   * Hold every tenant to its CPU share (default true). A server of one
   * script (`ksr run script.js`) has nobody to share with: off, it neither
   * refuses a request nor reads the isolate's CPU time per message.
   */
  readonly cpuBudgets?: boolean;
  /** Every export table; a tenant's `modules` list selects from it. Default KEMI_MODULES. */
  readonly modules?: readonly KemiModule[];
  /** Demote a tenant at its first timeout, out-of-memory or budget overrun; default true. */
  readonly autoDemote?: boolean;
  /** Clock for the CPU budgets, in ms (tests); default performance.now. */
  readonly nowMs?: () => number;
  /** Time a script file must stay unchanged before watch() reloads it; default 100 ms. */
  readonly watchDebounceMs?: number;
  /** Told about every reload watch() starts, successful or not. */
  readonly onWatchReload?: (tenantId: string, result: ReloadResult) => void;
  /** Told when a runner of a tenant moves to async execution (after the tenant's counters count it). */
  readonly onDemote?: (tenantId: string, reason: string) => void;
  /**
   * Cumulative CPU time charged to a tenant's budget, in ns. Default: its
   * isolates' cpuTime. A tenant alone in a worker process charges the
   * whole process instead (host/tenants/worker.ts).
   */
  readonly budgetCpuNs?: (tenant: Tenant) => bigint;
  /**
   * Called before each route call of a tenant (request, reply, nested and
   * transaction routes) when the tenant is not the one that ran last: a
   * shard records who is running, to know whom to blame when V8 aborts
   * the process (host/tenants/worker.ts). Must be cheap and never throw.
   */
  readonly onTenantSwitch?: (tenant: Tenant) => void;
  /**
   * Seconds without a route call after which a tenant's isolate is disposed
   * (rebuilt from the compiled script at its next call), for tenants whose
   * `limits.idleSeconds` does not say; 0 or undefined: never.
   */
  readonly idleSeconds?: number;
  /**
   * Dispose each tenant's isolate as soon as its script has loaded (the
   * load still checks it), so that the first message builds it: a server
   * of thousands of mostly idle tenants starts without an isolate each.
   * Default false.
   */
  readonly lazyIsolates?: boolean;
  /**
   * Probation: a tenant of `mode: sync` runs its first N route calls
   * asynchronously, off the calling thread, and moves to sync only once
   * they all completed without a timeout, out-of-memory or CPU-budget
   * overrun (a failure there demotes it for good, as in sync mode). A
   * script that misbehaves from its first message — a heap bomb, a loop —
   * then never holds the main thread that its neighbours share (a shard,
   * host/tenants/worker.ts). 0 or undefined: no probation.
   */
  readonly probationRoutes?: number;
  /**
   * Told when a route of the tenant ran its isolate out of memory, before
   * the isolate could be re-created (ScriptRunnerOptions.onOutOfMemory); may
   * call evict().
   */
  readonly onOutOfMemory?: (tenantId: string) => void;
  /**
   * Throttle a tenant that runs out of memory repeatedly (see
   * REPEATED_OUT_OF_MEMORY_WINDOW_MS); default false. Worker processes turn
   * it on (host/tenants/worker.ts).
   */
  readonly throttleRepeatedOutOfMemory?: boolean;
}

/**
 * A tenant whose routes run out of memory twice within this time is
 * throttled: each such out-of-memory empties its CPU bucket and puts it a
 * whole bucket in debt, so its requests are refused (503, Retry-After)
 * until the refill has paid it back — at cpuShare 1 and the default burst,
 * one second. A heap bomb hit on every message then fills its heap about
 * once every bucket's worth of time instead of at the rate its requests
 * arrive: each fill is hundreds of ms of CPU, and an isolate rebuild, that
 * its neighbours share the cores with. One out-of-memory now and then is
 * not throttled.
 */
export const REPEATED_OUT_OF_MEMORY_WINDOW_MS = 10_000;

/** How often the idle sweep runs, as a fraction of the shortest idle time: a tenant is disposed between 1× and 1.25× its idle time. */
const IDLE_SWEEPS_PER_IDLE_TIME = 4;
/** The idle sweep never runs more often than this. */
const MIN_IDLE_SWEEP_MS = 250;

const LOG_SCOPE = "tenants";

export class TenantCounters {
  /** Route runs asked for, admitted or not. */
  messages = 0;
  /** Runs that ended in an exception, timeout or out-of-memory. */
  routeErrors = 0;
  timeouts = 0;
  /** Isolates discarded (and re-created) for running out of memory. */
  oomRestarts = 0;
  /** Requests refused without running because the CPU budget was empty. */
  overBudget = 0;
  /** Times a runner of this tenant moved to async execution. */
  demotions = 0;
  reloads = 0;
  reloadFailures = 0;
  /** Isolates disposed because the tenant was idle (rebuilt at its next route call). */
  idleDisposals = 0;
  readonly repliesByClass: Record<ReplyClass, number> = { "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "6xx": 0 };
  /** Wall time of route calls in seconds, from the call to its outcome (an async one's wait for the isolate included). */
  readonly routeLatency = new Histogram(ROUTE_LATENCY_BUCKETS_S);

  constructor(private readonly readCpuNs: () => bigint) {}

  /** CPU time of all of this tenant's isolates, past and present, in ns. */
  get cpuNs(): bigint {
    return this.readCpuNs();
  }
}

export class Tenant {
  readonly id: string;
  readonly state: TenantState;
  readonly budget: CpuBudget;
  readonly counters: TenantCounters;
  /** @internal */ current: TenantRunner;
  /** @internal Runners whose isolates are still alive: the current one and retired ones still in use. */
  readonly live = new Set<TenantRunner>();
  /** @internal CPU of runners already disposed. */
  disposedCpuNs = 0n;
  /** @internal Route calls counted at the idle sweep that first saw none since (see TenantRegistry's idle sweep). */
  idleMark = -1;
  /** @internal Route calls still to complete cleanly before a tenant on probation runs sync; 0 when not on probation. */
  probationLeft = 0;
  /** @internal The tenant runs in another process now (evict()): its runners are disposed and none is built again here. */
  evicted = false;
  /** @internal When a route of it last ran out of memory (the budget's clock), for the repeated out-of-memory throttle. */
  lastOutOfMemoryMs: number | undefined;

  /** @internal */
  constructor(
    readonly config: TenantEntry,
    runner: TenantRunner,
    nowMs: (() => number) | undefined,
    budgetCpuNs?: (tenant: Tenant) => bigint,
  ) {
    this.id = config.id;
    this.state = newTenantState(config.id, config.quotas, compileEgress(config.egress, config.id), config.kemi, config.modparams);
    configureTenantPike(config.id, config.modparams);
    // Validated when the configuration was read; a list broken since makes the tenant fail to start, naming file:line.
    if (config.dispatcher !== undefined) configureTenantDispatcher(config.id, config.dispatcher);
    this.current = runner;
    this.live.add(runner);
    this.counters = new TenantCounters(() => this.cpuNs());
    this.budget = new CpuBudget({
      share: config.limits.cpuShare,
      burstMs: config.limits.cpuBurstMs,
      readCpuNs: budgetCpuNs === undefined ? () => this.cpuNs() : () => budgetCpuNs(this),
      ...(nowMs !== undefined ? { nowMs } : {}),
    });
  }

  /** The runner new messages use. */
  get runner(): TenantRunner {
    return this.current;
  }

  /** Where its routes run: "sync", "async" (demoted, or `mode: async`), or "probation" (async until it has proved itself, TenantRegistryOptions.probationRoutes). */
  get mode(): TenantMode {
    return this.probationLeft > 0 ? "probation" : this.current.mode;
  }

  /** Route calls it must still complete cleanly before it runs sync (probation; 0 when not on it). */
  get probation(): number {
    return this.probationLeft;
  }

  /** What to answer when a route of this tenant fails. */
  get onError(): TenantErrorPolicy {
    return this.config.onError;
  }

  private cpuNs(): bigint {
    let sum = this.disposedCpuNs;
    for (const r of this.live) sum += r.cpuTimeNs;
    return sum;
  }
}

/**
 * One runner kept alive for as long as its holder needs it, even across
 * reloads: a transaction runs its reply routes with the script that ran its
 * request route (issue: in-flight transactions finish with their script).
 */
export interface RunnerLease {
  readonly tenant: Tenant;
  readonly runner: TenantRunner;
  /** Runs a route on the leased runner, counted and charged to the tenant but not refused for budget (replies cannot be answered with 503). */
  run(routeName: string, ctx: MessageContext): TenantRouteOutcome | Promise<TenantRouteOutcome>;
  /**
   * Runs a route nested inside a KSR call of a route running on this lease's
   * runner (tm's branch route inside t_relay): synchronously, whatever the
   * mode (see ScriptRunner.runRoute). Counted and charged like run().
   */
  runNested(routeName: string, ctx: MessageContext): RouteOutcome;
  /** Idempotent. The runner is disposed when it is retired and this was its last user. */
  release(): void;
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function replyClass(status: number): ReplyClass | undefined {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 6 ? (`${c}xx` as ReplyClass) : undefined;
}

export class TenantRegistry {
  readonly config: TenantsConfig;
  private readonly selector: TenantSelector;
  private readonly byId = new Map<string, Tenant>();
  private readonly users = new Map<TenantRunner, number>();
  private readonly retired = new Set<TenantRunner>();
  private readonly modules: readonly KemiModule[];
  private readonly autoDemote: boolean;
  private readonly cpuBudgets: boolean;
  private readonly watchers: FSWatcher[] = [];
  private readonly debounceTimers = new Map<string, NodeJS.Timeout>();
  private readonly reloading = new Map<string, Promise<ReloadResult>>();
  private disposed = false;
  private idleSweep: NodeJS.Timeout | undefined;
  /** The tenant whose route ran last (onTenantSwitch). */
  private lastRunning: Tenant | undefined;

  /**
   * Loads every tenant's script (synchronously: this is start-up). Throws
   * TenantsConfigError naming the file, tenant and field "script" for every
   * script that does not load; nothing stays loaded then.
   */
  constructor(
    config: TenantsConfig,
    private readonly opts: TenantRegistryOptions = {},
  ) {
    this.config = config;
    this.modules = opts.modules ?? KEMI_MODULES;
    this.autoDemote = opts.autoDemote ?? true;
    this.cpuBudgets = opts.cpuBudgets ?? true;
    this.selector = new TenantSelector(config);
    const load = opts.load ?? ((entry: TenantEntry, options: ScriptRunnerOptions) => ScriptRunner.load(entry.scriptPath, options));
    const issues: TenantsConfigIssue[] = [];
    for (const entry of config.tenants) {
      let runner: TenantRunner;
      try {
        runner = load(entry, this.runnerOptions(entry, () => this.byId.get(entry.id)));
      } catch (e) {
        issues.push({ file: config.file, tenant: entry.id, field: "script", message: e instanceof Error ? e.message : String(e) });
        continue;
      }
      const tenant = new Tenant(entry, runner, opts.nowMs, opts.budgetCpuNs);
      if (this.onProbation(entry)) tenant.probationLeft = opts.probationRoutes!;
      this.byId.set(entry.id, tenant);
      // One at a time: the next load reuses the memory of the isolate just disposed.
      if (opts.lazyIsolates === true) runner.hibernate?.();
    }
    if (issues.length > 0) {
      this.dispose();
      throw new TenantsConfigError(issues);
    }
    this.startIdleSweep();
  }

  /** Whether a tenant starts on probation: it is meant to run sync and the registry keeps a probation. */
  private onProbation(entry: TenantEntry): boolean {
    return entry.mode === "sync" && this.autoDemote && (this.opts.probationRoutes ?? 0) > 0;
  }

  /**
   * The tenant runs elsewhere from now on (a shard moved it into a process
   * of its own): its runners are disposed — executions still queued end
   * with an error, and no isolate of it is built here again —, and its
   * route calls fail without running. Its counters stay.
   */
  evict(tenantId: string): void {
    const tenant = this.byId.get(tenantId);
    if (tenant === undefined || tenant.evicted) return;
    tenant.evicted = true;
    tenant.probationLeft = 0;
    for (const r of [...tenant.live]) this.disposeRunner(tenant, r);
    log("info", LOG_SCOPE, `tenant ${tenant.id}: runs in another process now; its isolate here is disposed`);
  }

  /** Idle seconds of a tenant: its own limit, else the registry's default; 0 never. */
  private idleSecondsOf(tenant: Tenant): number {
    return tenant.config.limits.idleSeconds ?? this.opts.idleSeconds ?? 0;
  }

  /**
   * Every shortest-idle-time / 4: a tenant with no route call since the
   * previous sweep is marked; one still marked once its idle time has
   * passed has its isolates disposed (ScriptRunner.hibernate). No clock is
   * read per route call: the sweep compares the tenant's message counter.
   */
  private startIdleSweep(): void {
    let shortest = Infinity;
    for (const t of this.byId.values()) {
      const s = this.idleSecondsOf(t);
      if (s > 0) shortest = Math.min(shortest, s);
    }
    if (shortest === Infinity) return;
    const periodMs = Math.max(MIN_IDLE_SWEEP_MS, (shortest * 1000) / IDLE_SWEEPS_PER_IDLE_TIME);
    const idleSince = new Map<Tenant, number>();
    this.idleSweep = setInterval(() => {
      const now = Date.now();
      for (const tenant of this.byId.values()) {
        const idleS = this.idleSecondsOf(tenant);
        if (idleS === 0 || tenant.evicted) continue;
        const calls = tenant.counters.messages;
        if (calls !== tenant.idleMark) {
          tenant.idleMark = calls;
          idleSince.set(tenant, now);
          continue;
        }
        if (now - (idleSince.get(tenant) ?? now) < idleS * 1000) continue;
        this.hibernate(tenant, idleS);
      }
    }, periodMs);
    this.idleSweep.unref();
  }

  /** Disposes the isolates of the tenant's runners no one holds (a transaction's lease keeps its runner's). */
  private hibernate(tenant: Tenant, idleS: number): void {
    let disposed = 0;
    for (const runner of tenant.live) {
      if (this.users.has(runner)) continue;
      if (runner.hibernate?.() === true) disposed++;
    }
    if (disposed === 0) return;
    tenant.counters.idleDisposals++;
    log("dbg", LOG_SCOPE, `tenant ${tenant.id}: isolate disposed after ${idleS} s without a route call; rebuilt at its next message`);
  }

  /** Tells onTenantSwitch when the tenant about to run a route is not the one that ran last. */
  private switchTo(tenant: Tenant): void {
    if (this.lastRunning === tenant) return;
    this.lastRunning = tenant;
    this.opts.onTenantSwitch?.(tenant);
  }

  /** Tenants in file order. */
  get tenants(): readonly Tenant[] {
    return [...this.byId.values()];
  }

  get(id: string): Tenant | undefined {
    return this.byId.get(id);
  }

  /** The tenant for a request (see TenantSelector); undefined: answer `unmatchedStatus`. */
  select(msg: SipMessage, rcv: ReceiveInfo): Tenant | undefined {
    const entry = this.selector.select(msg, rcv);
    return entry === undefined ? undefined : this.byId.get(entry.id);
  }

  /** Status for a request that selects no tenant (config `unmatched`). */
  get unmatchedStatus(): 403 | 404 {
    return this.config.unmatched;
  }

  /**
   * Runs a route of the tenant's current script for ctx (whose
   * `tenant` should be tenant.state). Refused with "over-budget" when the
   * tenant's CPU bucket is empty: the caller answers 503 and the tenant is
   * demoted. The result is synchronous while the tenant runs sync, a
   * promise once it is demoted. Never throws or rejects.
   */
  run(tenant: Tenant, routeName: string, ctx: MessageContext): TenantRouteOutcome | Promise<TenantRouteOutcome> {
    if (tenant.evicted) return { status: "error", kind: "exception", message: `tenant ${tenant.id} runs in another process now` };
    if (this.cpuBudgets && !tenant.budget.admit()) {
      tenant.counters.messages++;
      tenant.counters.overBudget++;
      if (this.autoDemote) this.demote(tenant, "CPU budget exceeded");
      return { status: "over-budget" };
    }
    // A lease without the lease object: this is the per-message path.
    const runner = tenant.current;
    this.hold(runner);
    const result = this.execute(tenant, runner, routeName, ctx);
    if (isPromise(result)) return result.finally(() => this.letGo(tenant, runner));
    this.letGo(tenant, runner);
    return result;
  }

  /** Keeps the tenant's current runner alive until release(), whatever reloads happen meanwhile. */
  acquire(tenant: Tenant): RunnerLease {
    const runner = tenant.current;
    this.hold(runner);
    let released = false;
    return {
      tenant,
      runner,
      run: (routeName, ctx) => this.execute(tenant, runner, routeName, ctx),
      runNested: (routeName, ctx) => {
        this.switchTo(tenant);
        tenant.counters.messages++;
        return this.account(tenant, ctx, runner.runRoute(routeName, ctx));
      },
      release: () => {
        if (released) return;
        released = true;
        this.letGo(tenant, runner);
      },
    };
  }

  /**
   * Moves the tenant to async execution for good: its sync runner is
   * demoted (which counts and reports it, see runnerOptions); a tenant on
   * probation already runs async, so ending its probation is its demotion.
   */
  private demote(tenant: Tenant, reason: string): void {
    if (tenant.probationLeft > 0) {
      tenant.probationLeft = 0;
      tenant.counters.demotions++;
      log("warn", LOG_SCOPE, `tenant ${tenant.id}: failed its probation (${reason}); its routes keep running asynchronously off the main thread`);
      this.opts.onDemote?.(tenant.id, reason);
      return;
    }
    tenant.current.demote(reason);
  }

  /** A route of a tenant on probation completed: one fewer to go; at the last, its runner moves to sync (once nothing is in flight). */
  private proveRoute(tenant: Tenant, outcome: RouteOutcome): void {
    if (outcome.status === "error" && (outcome.kind === "timeout" || outcome.kind === "oom")) {
      this.demote(tenant, outcome.kind === "timeout" ? "route timed out" : "route ran out of memory");
      return;
    }
    if (tenant.probationLeft > 1) {
      tenant.probationLeft--;
      return;
    }
    // The last one: kept at 1 until the runner can switch (no execution in flight).
    if (tenant.current.promote?.() !== true) return;
    tenant.probationLeft = 0;
    log("info", LOG_SCOPE, `tenant ${tenant.id}: passed its probation (${this.opts.probationRoutes} route calls); its routes now run synchronously`);
  }

  private hold(runner: TenantRunner): void {
    this.users.set(runner, (this.users.get(runner) ?? 0) + 1);
  }

  /** One user of the runner less; a retired runner is disposed when its last user lets go. */
  private letGo(tenant: Tenant, runner: TenantRunner): void {
    const left = (this.users.get(runner) ?? 1) - 1;
    if (left > 0) {
      this.users.set(runner, left);
      return;
    }
    this.users.delete(runner);
    if (this.retired.has(runner)) this.disposeRunner(tenant, runner);
  }

  /** Counts a reply the server sent for this tenant itself (unmatched, over budget, route error). */
  recordReply(tenant: Tenant, status: number): void {
    const c = replyClass(status);
    if (c !== undefined) tenant.counters.repliesByClass[c]++;
  }

  /**
   * Recompiles the tenant's script and swaps it in if it loads; otherwise
   * the old script keeps running and the error (file:line: message) is
   * returned and logged. Concurrent reloads of one tenant share one load.
   */
  reload(tenantId: string): Promise<ReloadResult> {
    const tenant = this.byId.get(tenantId);
    if (tenant === undefined) return Promise.resolve({ ok: false, error: `no tenant "${tenantId}"` });
    if (tenant.evicted) return Promise.resolve({ ok: false, error: `tenant ${tenantId} runs in another process now` });
    const pending = this.reloading.get(tenantId);
    if (pending !== undefined) return pending;
    const job = this.doReload(tenant).finally(() => this.reloading.delete(tenantId));
    this.reloading.set(tenantId, job);
    return job;
  }

  /** Reloads every tenant; one result per tenant id. */
  async reloadAll(): Promise<Map<string, ReloadResult>> {
    const ids = [...this.byId.keys()];
    const results = await Promise.all(ids.map((id) => this.reload(id)));
    return new Map(ids.map((id, i) => [id, results[i]!]));
  }

  /**
   * Reloads a tenant whenever its script file changes (debounced). Watches
   * the script's directory, so editors that replace the file are seen too.
   * Returns a function that stops watching; dispose() stops it as well.
   */
  watch(): () => void {
    const debounceMs = this.opts.watchDebounceMs ?? 100;
    const byDir = new Map<string, Map<string, string[]>>();
    for (const tenant of this.byId.values()) {
      const dir = dirname(tenant.config.scriptPath);
      const name = basename(tenant.config.scriptPath);
      const files = byDir.get(dir) ?? new Map<string, string[]>();
      files.set(name, [...(files.get(name) ?? []), tenant.id]);
      byDir.set(dir, files);
    }
    const started: FSWatcher[] = [];
    for (const [dir, files] of byDir) {
      const watcher = watchPath(dir, { persistent: false }, (_event, filename) => {
        const ids = filename === null ? [...files.values()].flat() : files.get(basename(filename.toString()));
        for (const id of ids ?? []) this.scheduleReload(id, debounceMs);
      });
      watcher.on("error", (e) => log("err", LOG_SCOPE, `watching ${dir} failed: ${e.message}`));
      started.push(watcher);
      this.watchers.push(watcher);
    }
    return () => {
      for (const w of started) {
        w.close();
        const i = this.watchers.indexOf(w);
        if (i >= 0) this.watchers.splice(i, 1);
      }
    };
  }

  /** Stops watching and disposes every runner, in use or not. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.idleSweep !== undefined) clearInterval(this.idleSweep);
    for (const w of this.watchers.splice(0)) w.close();
    for (const t of this.debounceTimers.values()) clearTimeout(t);
    this.debounceTimers.clear();
    for (const tenant of this.byId.values()) {
      for (const r of [...tenant.live]) this.disposeRunner(tenant, r);
    }
  }

  private scheduleReload(tenantId: string, debounceMs: number): void {
    if (this.disposed) return;
    const previous = this.debounceTimers.get(tenantId);
    if (previous !== undefined) clearTimeout(previous);
    const timer = setTimeout(() => {
      this.debounceTimers.delete(tenantId);
      void this.reload(tenantId).then((result) => this.opts.onWatchReload?.(tenantId, result));
    }, debounceMs);
    timer.unref();
    this.debounceTimers.set(tenantId, timer);
  }

  private async doReload(tenant: Tenant): Promise<ReloadResult> {
    let fresh: ScriptRunner;
    // The new script's top-level code runs now (off the main thread): a V8 abort in it is this tenant's.
    this.switchTo(tenant);
    try {
      fresh = await ScriptRunner.loadAsync(tenant.config.scriptPath, this.runnerOptions(tenant.config, () => tenant));
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      tenant.counters.reloadFailures++;
      log("err", LOG_SCOPE, `tenant ${tenant.id}: reload failed, the previous script keeps running: ${error}`);
      return { ok: false, error };
    }
    if (this.disposed || tenant.evicted) {
      fresh.dispose();
      return { ok: false, error: this.disposed ? "tenant registry disposed" : `tenant ${tenant.id} runs in another process now` };
    }
    const old = tenant.current;
    tenant.current = fresh;
    tenant.live.add(fresh);
    tenant.counters.reloads++;
    this.retired.add(old);
    if (!this.users.has(old)) this.disposeRunner(tenant, old);
    log("info", LOG_SCOPE, `tenant ${tenant.id}: reloaded ${tenant.config.scriptPath}`);
    return { ok: true };
  }

  private execute(tenant: Tenant, runner: TenantRunner, routeName: string, ctx: MessageContext): TenantRouteOutcome | Promise<TenantRouteOutcome> {
    this.switchTo(tenant);
    tenant.counters.messages++;
    const started = performance.now();
    const result = runner.runRouteAny(routeName, ctx);
    if (isPromise(result)) {
      return result.then((outcome) => {
        tenant.counters.routeLatency.observe((performance.now() - started) / 1000);
        return this.account(tenant, ctx, outcome);
      });
    }
    tenant.counters.routeLatency.observe((performance.now() - started) / 1000);
    return this.account(tenant, ctx, result);
  }

  private account(tenant: Tenant, ctx: MessageContext, outcome: RouteOutcome): RouteOutcome {
    if (this.cpuBudgets) tenant.budget.charge();
    if (tenant.probationLeft > 0) this.proveRoute(tenant, outcome);
    const c = tenant.counters;
    if (outcome.status === "error") {
      c.routeErrors++;
      if (outcome.kind === "timeout") c.timeouts++;
      else if (outcome.kind === "oom") c.oomRestarts++;
    }
    if (ctx.replied !== undefined) this.recordReply(tenant, ctx.replied.status);
    return outcome;
  }

  /** See REPEATED_OUT_OF_MEMORY_WINDOW_MS. */
  private throttleRepeatedOutOfMemory(tenant: Tenant): void {
    const now = (this.opts.nowMs ?? performance.now.bind(performance))();
    const last = tenant.lastOutOfMemoryMs;
    tenant.lastOutOfMemoryMs = now;
    if (last === undefined || now - last >= REPEATED_OUT_OF_MEMORY_WINDOW_MS) return;
    const budget = tenant.budget;
    budget.penalize(budget.capacityMs);
    log(
      "warn",
      LOG_SCOPE,
      `tenant ${tenant.id}: ran out of memory again within ${REPEATED_OUT_OF_MEMORY_WINDOW_MS / 1000} s: its CPU budget is put ${budget.capacityMs.toFixed(0)} ms in debt; its requests are refused until it is paid back`,
    );
  }

  private disposeRunner(tenant: Tenant, runner: TenantRunner): void {
    if (!tenant.live.delete(runner)) return;
    this.retired.delete(runner);
    runner.dispose();
    // A disposed runner still reports the CPU of the isolates it had.
    tenant.disposedCpuNs += runner.cpuTimeNs;
  }

  private runnerOptions(entry: TenantEntry, tenant: () => Tenant | undefined): ScriptRunnerOptions {
    const allowed = entry.modules === undefined ? undefined : new Set(entry.modules);
    return {
      limits: { heapMb: entry.limits.heapMb, routeTimeoutMs: entry.limits.routeTimeoutMs },
      tenant: entry.id,
      // Core functions (KSR.is_INVITE, KSR.setflag, ...) and KSR.x are always there; a module not
      // allowed is absent from the KSR object, so calling it fails like any undefined function.
      modules: allowed === undefined ? this.modules : this.modules.filter((m) => m.name === "" || allowed.has(m.name)),
      // On probation (until it has proved itself) a sync tenant's runner starts async.
      mode: this.onProbation(entry) && (tenant()?.probationLeft ?? 1) > 0 ? "async" : entry.mode,
      autoDemote: this.autoDemote,
      // Once per isolate lost (the executions queued on it each report an oom outcome).
      onOutOfMemory: () => {
        const t = tenant();
        if (t !== undefined && this.cpuBudgets && this.opts.throttleRepeatedOutOfMemory === true) this.throttleRepeatedOutOfMemory(t);
        this.opts.onOutOfMemory?.(entry.id);
      },
      // A route queued behind an out-of-memory is admitted again: a throttled tenant's is not run.
      ...(this.cpuBudgets && this.opts.throttleRepeatedOutOfMemory === true ? { retryQueuedAfterOutOfMemory: () => tenant()?.budget.admit() !== false } : {}),
      onDemote: (reason) => {
        const t = tenant();
        if (t !== undefined) t.counters.demotions++;
        this.opts.onDemote?.(entry.id, reason);
      },
    };
  }
}
