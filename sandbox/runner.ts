/**
 * One routing script in one isolated-vm isolate.
 *
 * Routes run synchronously on the calling thread (`applySync` with a
 * per-call timeout) and every KSR call is a synchronous ivm.Callback into
 * the host (about 1 µs; see bench/route-call.bench.ts). The callback carries
 * the execution's context id, so the asynchronous mode below, with several
 * executions in flight, needs no change to the bridge.
 *
 * Execution modes (bench/EXECUTION-DESIGN.md): a runner starts in "sync"
 * mode. demote() (or, with `autoDemote`, its first timeout or out-of-memory)
 * moves it to "async" mode for good: routes then run with `apply` on
 * isolated-vm's thread pool, so a looping or allocating script can no longer
 * stall the main thread. The isolate runs one execution at a time and queues
 * the rest; every KSR call of an async execution is a hop to the main
 * thread and back (about 30 µs each, against about 1 µs in sync mode). In
 * async mode runRoute() refuses to run, because applySync on an isolate with
 * executions in flight would block the main thread behind them; callers use
 * runRouteAny(), which picks by mode.
 *
 * Failures stay inside the runner: an exception or timeout is reported as a
 * RouteOutcome and the isolate keeps serving (isolated-vm leaves an isolate
 * usable after a timeout); an out-of-memory disposes the isolate, and the
 * next call re-creates it from the compiled script.
 */
import { randomBytes } from "node:crypto";
import type ivm from "isolated-vm";
import isolatedVm from "./isolated-vm.js";
import type { MessageContext } from "../host/core/context.js";
import { log } from "../host/core/log.js";
import { KEMI_MODULES } from "../host/modules/index.js";
import type { KemiModule } from "../host/modules/types.js";
import { ROUTE_FAILED, ROUTE_MISSING, ROUTE_OK } from "../runtime/protocol.js";
import { REQUEST_ROUTE } from "../runtime/interpreter.js";
import { BridgeDispatcher, BridgeTable, DEFAULT_MAX_STRING_LENGTH } from "./bridge.js";
import { compileScript, compileSource, ScriptLoadError, type CompiledScript } from "./compile.js";
import { firstScriptPosition, remapPositions } from "./sourcemap.js";
import { RUNTIME_FILENAME, runtimeSource } from "./runtime-source.js";
import { IsolateCoverageSession, scriptCoverageFromV8, type ScriptCoverage } from "./coverage.js";
import type { RouteOutcome, RouteRunner, ScriptLimits } from "./types.js";

/** The running Node major version (some isolated-vm features depend on it). */
const NODE_MAJOR = Number(process.versions.node.split(".")[0]);

export interface ScriptRunnerOptions {
  readonly limits: ScriptLimits;
  /** Tenant id, for log lines. */
  readonly tenant: string;
  /** Export tables the script's KSR object is built from; default KEMI_MODULES. */
  readonly modules?: readonly KemiModule[];
  /** Time the script's top-level code may take when (re)loaded; default 1000 ms. */
  readonly loadTimeoutMs?: number;
  /** Longest string a script may pass to one KSR parameter; default 1 MiB. */
  readonly maxStringLength?: number;
  /** Initial execution mode; default "sync". */
  readonly mode?: ExecutionMode;
  /** Move to async mode at the first route timeout or out-of-memory in sync mode; default false. */
  readonly autoDemote?: boolean;
  /** Called once when the runner moves to async mode, with the reason. */
  readonly onDemote?: (reason: string) => void;
  /**
   * Called when a route ran the isolate out of memory, in either mode, as
   * soon as the runner knows it and before any later call could re-create
   * the isolate: a shard moves such a tenant out rather than rebuild it on
   * its neighbours' process (host/tenants/worker.ts). May dispose the runner.
   */
  readonly onOutOfMemory?: () => void;
  /**
   * Asked when an async execution queued behind one that ran the isolate
   * out of memory never started: true (the default) runs it on a
   * re-created isolate, false fails it without (a tenant throttled for
   * running out of memory repeatedly, host/tenants/registry.ts, whose
   * queued requests would each fill a new heap).
   */
  readonly retryQueuedAfterOutOfMemory?: () => boolean;
  /**
   * Count which lines and functions of the script run (takeCoverage()); default
   * false, and then no inspector is attached. Needs loadAsync/fromSourceAsync.
   * Counts cover the current isolate: one re-created after an out-of-memory
   * starts again from zero.
   */
  readonly coverage?: boolean;
}

/** Where route calls run: on the calling thread, or on isolated-vm's thread pool. */
export type ExecutionMode = "sync" | "async";

const DEFAULT_LOAD_TIMEOUT_MS = 1000;
const TIMEOUT_MESSAGE = "Script execution timed out.";
/** Budget for the few facade calls that never run script code (hasRoute, takeFailure). */
const FACADE_CALL_TIMEOUT_MS = 1000;

/** isolated-vm's rejection for an async call that never started because the isolate was gone. */
const DISPOSED_BEFORE_START = "Isolate is disposed";

/**
 * Runs a route and, when it failed, takes the failure description in the same
 * isolate task: with several async executions queued, a separate takeFailure
 * call could read the description of a later execution. Evaluated as a
 * closure, so the function is never reachable from the script's globals;
 * array literals define own properties, so script changes to
 * Array.prototype cannot intercept the result.
 */
const COLLECTING_RUN_ROUTE = `
const runRoute = $0, takeFailure = $1, failed = $2;
return function runRouteCollected(ctxId, name, eventName) {
  const code = runRoute(ctxId, name, eventName);
  if (code !== failed) return [code, "", ""];
  const failure = takeFailure();
  return [code, failure[0], failure[1]];
};
`;

const OK: RouteOutcome = Object.freeze({ status: "ok" });
const MISSING: RouteOutcome = Object.freeze({ status: "missing" });

/** The live parts of one isolate; replaced as a whole after an out-of-memory. */
interface IsolateInstance {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly runRoute: ivm.Reference<(ctxId: number, name: string, eventName: string | undefined) => number>;
  readonly hasRoute: ivm.Reference<(name: string) => boolean>;
  readonly takeFailure: ivm.Reference<() => [string, string]>;
  /** runRoute + takeFailure in one isolate task (async mode). */
  readonly runRouteCollected: ivm.Reference<(ctxId: number, name: string, eventName: string | undefined) => [number, string, string]>;
  /** Last cpuTime read from this isolate, kept for when it is discarded and can no longer be asked. */
  lastCpuNs: bigint;
  /** Present when the runner counts coverage. */
  coverage?: IsolateCoverageSession;
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  try {
    return String(e);
  } catch {
    return "(unprintable value)";
  }
}

export class ScriptRunner implements RouteRunner {
  readonly scriptPath: string;
  private readonly table: BridgeTable;
  private readonly executions = new Map<number, MessageContext>();
  private readonly dispatcher: BridgeDispatcher;
  private readonly exitToken = `~~ksr~exited~${randomBytes(16).toString("hex")}~~`;
  private readonly maxStringLength: number;
  private readonly loadTimeoutMs: number;
  private readonly logScope: string;
  private instance: IsolateInstance | undefined;
  private disposed = false;
  private restartCount = 0;
  /** The isolate was disposed for idleness (hibernate()): the next call rebuilds it, which is not an out-of-memory restart. */
  private hibernating = false;
  /** CPU time of isolates already released (see cpuTimeNs). */
  private retiredCpuNs = 0n;
  private currentMode: ExecutionMode;
  /** Async executions started and not yet settled. */
  private inFlightCount = 0;
  /** Re-creation of the isolate in progress (async mode), shared by every execution that waits for it. */
  private pendingInstance: Promise<IsolateInstance> | undefined;
  /**
   * hasRoute answers. A runner's script never changes (a reload makes a new
   * runner), so each name is asked of the isolate once: the onsend route's
   * check before every send would otherwise be an isolate crossing per
   * forwarded request and per branch. Also what answers while the isolate
   * is busy with async executions and cannot be asked.
   */
  private readonly knownRoutes = new Map<string, boolean>();
  /** KSR calls of this runner's isolate being answered on the main thread right now (routes nest inside them). */
  private hostCallDepth = 0;

  private constructor(
    private readonly compiled: CompiledScript,
    private readonly opts: ScriptRunnerOptions,
  ) {
    this.scriptPath = compiled.filename;
    this.table = new BridgeTable(opts.modules ?? KEMI_MODULES);
    this.maxStringLength = opts.maxStringLength ?? DEFAULT_MAX_STRING_LENGTH;
    this.loadTimeoutMs = opts.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
    this.logScope = `script:${opts.tenant}`;
    this.dispatcher = new BridgeDispatcher(
      this.table,
      this.executions,
      this.exitToken,
      this.maxStringLength,
      this.logScope,
      opts.limits.routeTimeoutMs,
      () => this.liveIsolateCpuNs(),
    );
    this.currentMode = opts.mode ?? "sync";
  }

  /**
   * Compiles and evaluates a script file. Throws ScriptLoadError (message
   * `file:line:col: ...`) when it does not compile, when its top-level code
   * throws, times out or runs out of memory, or when it has no
   * ksr_request_route.
   */
  static load(path: string, opts: ScriptRunnerOptions): ScriptRunner {
    return ScriptRunner.fromCompiled(compileScript(path), opts);
  }

  /** Same as load() for script text that is not (or not only) on disk; `filename` decides JS or TS. */
  static fromSource(source: string, filename: string, opts: ScriptRunnerOptions): ScriptRunner {
    return ScriptRunner.fromCompiled(compileSource(source, filename), opts);
  }

  /**
   * load() with the isolate built by isolated-vm's async calls: compiling
   * the runtime and running the script's top-level code (up to
   * loadTimeoutMs) happen off the main thread. For reloading a script
   * while the server keeps serving. Rejects with the same ScriptLoadErrors.
   */
  static async loadAsync(path: string, opts: ScriptRunnerOptions): Promise<ScriptRunner> {
    return ScriptRunner.fromCompiledAsync(compileScript(path), opts);
  }

  /** loadAsync() for script text; `filename` decides JS or TS. */
  static async fromSourceAsync(source: string, filename: string, opts: ScriptRunnerOptions): Promise<ScriptRunner> {
    return ScriptRunner.fromCompiledAsync(compileSource(source, filename), opts);
  }

  private static async fromCompiledAsync(compiled: CompiledScript, opts: ScriptRunnerOptions): Promise<ScriptRunner> {
    const runner = new ScriptRunner(compiled, opts);
    runner.instance = await runner.instantiateAsync();
    let defined = false;
    try {
      defined = (await runner.instance.hasRoute.apply(undefined, [REQUEST_ROUTE], { timeout: FACADE_CALL_TIMEOUT_MS })) === true;
    } catch {
      defined = false;
    }
    if (!defined) {
      runner.dispose();
      throw ScriptLoadError.at(runner.scriptPath, `missing ${REQUEST_ROUTE}`);
    }
    runner.knownRoutes.set(REQUEST_ROUTE, true);
    return runner;
  }

  private static fromCompiled(compiled: CompiledScript, opts: ScriptRunnerOptions): ScriptRunner {
    if (opts.coverage === true) {
      // Coverage must be on before the script is compiled, which only an async load can wait for.
      throw new Error("the coverage option needs ScriptRunner.loadAsync or fromSourceAsync");
    }
    const runner = new ScriptRunner(compiled, opts);
    runner.instance = runner.instantiate();
    if (!runner.hasRoute(REQUEST_ROUTE)) {
      runner.dispose();
      throw ScriptLoadError.at(compiled.filename, `missing ${REQUEST_ROUTE}`);
    }
    return runner;
  }

  /** How many times the isolate was re-created after running out of memory. */
  get restarts(): number {
    return this.restartCount;
  }

  /**
   * CPU time spent in this runner's isolates, in ns (input for per-tenant
   * CPU budgets). An isolate discarded for running out of memory can no
   * longer be asked; it counts with the last reading taken from it plus the
   * wall time of the execution that exhausted it (for an async execution
   * that includes its wait in the isolate's queue, so it errs high).
   */
  get cpuTimeNs(): bigint {
    const instance = this.instance;
    let current = 0n;
    if (instance !== undefined && !instance.isolate.isDisposed) {
      try {
        current = instance.isolate.cpuTime;
        instance.lastCpuNs = current;
      } catch {
        // disposed between the check and the read (another thread ran it out of memory)
        current = instance.lastCpuNs;
      }
    }
    // Time in KSR calls is the tenant's too (the isolate's clock stops while
    // the host works for it).
    return this.retiredCpuNs + current + BigInt(Math.round(this.dispatcher.hostTimeMs * 1e6));
  }

  /**
   * Heap of the current isolate in bytes: used, and the limit it runs
   * under (read when metrics are scraped; 0 used when there is no live
   * isolate, e.g. between an out-of-memory and its re-creation).
   */
  get heapBytes(): { used: number; limit: number } {
    const limit = this.opts.limits.heapMb * 1024 * 1024;
    const instance = this.instance;
    if (instance === undefined || instance.isolate.isDisposed) return { used: 0, limit };
    try {
      const stats = instance.isolate.getHeapStatisticsSync();
      return { used: stats.used_heap_size + stats.externally_allocated_size, limit };
    } catch {
      return { used: 0, limit };
    }
  }

  /** CPU time of the current isolate in ns (0 when there is none or it is gone). */
  private liveIsolateCpuNs(): bigint {
    const instance = this.instance;
    if (instance === undefined || instance.isolate.isDisposed) return 0n;
    try {
      return instance.isolate.cpuTime;
    } catch {
      return 0n;
    }
  }

  /** "sync" until demoted; "async" for good after that. */
  get mode(): ExecutionMode {
    return this.currentMode;
  }

  /** Async executions started and not yet finished. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** True once dispose() ran. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Moves the runner to async execution for good. Idempotent. */
  demote(reason = "demoted"): void {
    if (this.currentMode === "async") return;
    this.currentMode = "async";
    log("warn", this.logScope, `${this.scriptPath}: routes now run asynchronously off the main thread (${reason})`);
    try {
      this.opts.onDemote?.(reason);
    } catch (e) {
      log("err", this.logScope, `demotion listener failed: ${errorMessage(e)}`);
    }
  }

  /**
   * Moves an async runner back to sync execution (a tenant that proved
   * itself on probation, host/tenants/registry.ts). Only when nothing is in
   * flight or being rebuilt: a sync call on an isolate busy with async
   * executions would block the calling thread behind them. True when the
   * runner now runs sync.
   */
  promote(): boolean {
    if (this.currentMode === "sync") return true;
    if (this.disposed || this.inFlightCount > 0 || this.pendingInstance !== undefined || this.hostCallDepth > 0) return false;
    this.currentMode = "sync";
    return true;
  }

  /**
   * True if the script defines a global function of that name. The isolate
   * is asked once per name; a route run also answers it (a "missing"
   * outcome is false). While async executions are in flight the isolate
   * cannot be asked without waiting for them: a name never answered is then
   * `whenUnknown` (false unless given) — true for a caller that runs the
   * route anyway and lets its outcome answer.
   */
  hasRoute(name: string, whenUnknown = false): boolean {
    const known = this.knownRoutes.get(name);
    if (known !== undefined) return known;
    // Inside a KSR call of an execution the isolate waits for us and answers
    // re-entrantly, as for a nested route (the onsend route inside t_relay).
    const busy = this.inFlightCount > 0 && this.hostCallDepth === 0;
    if (busy || this.pendingInstance !== undefined) return whenUnknown;
    const instance = this.liveInstance();
    if (instance === undefined) return false;
    try {
      const defined = instance.hasRoute.applySync(undefined, [name], { timeout: FACADE_CALL_TIMEOUT_MS }) === true;
      this.knownRoutes.set(name, defined);
      return defined;
    } catch {
      this.noteFailure(instance);
      return false;
    }
  }

  /** Runs the route the way the current mode says: a RouteOutcome in sync mode, a promise of one in async mode. */
  runRouteAny(name: string, ctx: MessageContext): RouteOutcome | Promise<RouteOutcome> {
    return this.currentMode === "sync" ? this.runRoute(name, ctx) : this.runRouteAsync(name, ctx);
  }

  /**
   * Runs one route on isolated-vm's thread pool. Never rejects. Several may
   * be in flight; the isolate runs them one after the other. Same outcomes
   * as runRoute, with the same timeout (counted from when the isolate starts
   * the execution) and memory limit.
   */
  async runRouteAsync(name: string, ctx: MessageContext): Promise<RouteOutcome> {
    if (this.disposed) return { status: "error", kind: "exception", message: "script runner disposed" };
    this.executions.set(ctx.id, ctx);
    this.inFlightCount++;
    try {
      // One retry: an execution queued behind one that ran the isolate out of
      // memory never started, so it runs on the re-created isolate.
      for (let attempt = 0; ; attempt++) {
        // Disposed meanwhile (onOutOfMemory may dispose it): no isolate is re-created.
        if (this.disposed) return { status: "error", kind: "exception", message: "script runner disposed" };
        let instance: IsolateInstance;
        try {
          instance = this.instance ?? (await this.restartAsync());
        } catch (e) {
          return { status: "error", kind: "exception", message: `script could not be reloaded: ${errorMessage(e)}` };
        }
        if (this.disposed) return { status: "error", kind: "exception", message: "script runner disposed" };
        const started = performance.now();
        // Where the execution's isolate time starts is not known here (it
        // may wait behind others): its clock counts the time in KSR calls,
        // and isolated-vm's timeout the isolate's own.
        ctx.routeClock = { startCpuNs: undefined, hostMs: 0 };
        try {
          const [code, message, stack] = (await instance.runRouteCollected.apply(undefined, [ctx.id, name, ctx.eventName], {
            timeout: this.opts.limits.routeTimeoutMs,
            result: { copy: true },
          })) as [number, string, string];
          this.knownRoutes.set(name, code !== ROUTE_MISSING);
          if (ctx.routeTimedOut) return this.hostTimeout();
          if (code === ROUTE_OK) return OK;
          if (code === ROUTE_MISSING) return MISSING;
          if (code === ROUTE_FAILED) return this.describeException(message, stack);
          return { status: "error", kind: "exception", message: `unexpected route result ${String(code)}` };
        } catch (e) {
          if (this.disposed) return { status: "error", kind: "exception", message: "script runner disposed" };
          if (errorMessage(e) === DISPOSED_BEFORE_START && attempt === 0) {
            this.noteFailure(instance);
            if (this.opts.retryQueuedAfterOutOfMemory?.() === false) {
              return { status: "error", kind: "exception", message: "not run: the isolate ran out of memory before this route started, and the tenant is throttled" };
            }
            continue;
          }
          return this.routeAbort(instance, e, started);
        }
      }
    } finally {
      this.inFlightCount--;
      this.executions.delete(ctx.id);
    }
  }

  /**
   * Runs one route on the calling thread. In async mode only as a nested
   * route: from inside a KSR call of this runner's own execution (tm's
   * branch route inside t_relay). The isolate is then blocked in that call,
   * waiting for the main thread, and isolated-vm runs the nested call in it
   * re-entrantly; an async call would queue behind the waiting execution.
   */
  runRoute(name: string, ctx: MessageContext): RouteOutcome {
    if (this.disposed) return { status: "error", kind: "exception", message: "script runner disposed" };
    if (this.currentMode === "async" && this.hostCallDepth === 0) {
      return {
        status: "error",
        kind: "exception",
        message: "script runner runs asynchronously (demoted); use runRouteAny or runRouteAsync",
      };
    }
    let instance: IsolateInstance;
    try {
      instance = this.instance ?? this.restart();
    } catch (e) {
      return { status: "error", kind: "exception", message: `script could not be reloaded: ${errorMessage(e)}` };
    }
    this.executions.set(ctx.id, ctx);
    const started = performance.now();
    // A nested route (the branch route inside t_relay) runs on its own
    // context, within the time of the call that runs it.
    ctx.routeClock = { startCpuNs: this.liveIsolateCpuNs(), hostMs: 0 };
    try {
      const code = instance.runRoute.applySync(undefined, [ctx.id, name, ctx.eventName], { timeout: this.opts.limits.routeTimeoutMs });
      this.knownRoutes.set(name, code !== ROUTE_MISSING);
      if (ctx.routeTimedOut) return this.hostTimeout();
      if (code === ROUTE_OK) return OK;
      if (code === ROUTE_MISSING) return MISSING;
      if (code === ROUTE_FAILED) return this.routeException(instance);
      return { status: "error", kind: "exception", message: `unexpected route result ${String(code)}` };
    } catch (e) {
      const outcome = this.routeAbort(instance, e, started);
      if (this.opts.autoDemote === true && outcome.status === "error" && (outcome.kind === "timeout" || outcome.kind === "oom")) {
        this.demote(outcome.kind === "timeout" ? "route timed out" : "route ran out of memory");
      }
      return outcome;
    } finally {
      this.executions.delete(ctx.id);
    }
  }

  /**
   * Disposes the isolate of an idle runner, keeping the compiled script:
   * the next route call builds a fresh isolate from it (the script's
   * top-level code runs again; its globals start over). False, and
   * nothing done, while an execution is in flight, a rebuild pending or
   * there is no isolate.
   */
  hibernate(): boolean {
    if (this.disposed || this.instance === undefined || this.inFlightCount > 0 || this.pendingInstance !== undefined || this.hostCallDepth > 0) return false;
    this.releaseInstance();
    this.hibernating = true;
    return true;
  }

  /** True while the isolate is disposed for idleness and not yet rebuilt. */
  get isHibernating(): boolean {
    return this.hibernating;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseInstance();
  }

  /** An exception the script did not catch: read its description from the facade. */
  private routeException(instance: IsolateInstance): RouteOutcome {
    let message = "uncaught exception";
    let stack = "";
    try {
      [message, stack] = instance.takeFailure.applySync(undefined, [], {
        timeout: FACADE_CALL_TIMEOUT_MS,
        result: { copy: true },
      }) as [string, string];
    } catch (e) {
      this.noteFailure(instance);
      message = `uncaught exception (description lost: ${errorMessage(e)})`;
    }
    return this.describeException(message, stack);
  }

  /** The outcome for an uncaught exception, positions mapped back to the script's source. */
  private describeException(message: string, stack: string): RouteOutcome {
    const { filename, sourceMap } = this.compiled;
    const position = firstScriptPosition(stack, filename, sourceMap);
    const mappedMessage = remapPositions(message, filename, sourceMap);
    return position === undefined
      ? { status: "error", kind: "exception", message: mappedMessage }
      : { status: "error", kind: "exception", message: mappedMessage, location: `${filename}:${position.line}` };
  }

  /** The route's time ran out in (or just after) a KSR call: a timeout like the isolate's own. */
  private hostTimeout(): RouteOutcome {
    return { status: "error", kind: "timeout", message: `route exceeded its ${this.opts.limits.routeTimeoutMs} ms time limit (time in KSR calls included)` };
  }

  /** apply/applySync itself threw: the isolate stopped the script (timeout) or died (memory). */
  private routeAbort(instance: IsolateInstance, e: unknown, startedMs: number): RouteOutcome {
    if (instance.isolate.isDisposed) {
      // The discarded isolate's CPU can no longer be read: count the fatal
      // execution's wall time, which it spent allocating on one thread.
      if (this.instance === instance) instance.lastCpuNs += BigInt(Math.round((performance.now() - startedMs) * 1e6));
      this.noteFailure(instance);
      return {
        status: "error",
        kind: "oom",
        message: `script exceeded its memory limit of ${this.opts.limits.heapMb} MB; isolate discarded`,
      };
    }
    const message = errorMessage(e);
    if (message === TIMEOUT_MESSAGE) {
      return { status: "error", kind: "timeout", message: `route exceeded its ${this.opts.limits.routeTimeoutMs} ms time limit` };
    }
    return { status: "error", kind: "exception", message };
  }

  /** Tells onOutOfMemory (once per isolate lost: the executions queued behind it report the same loss). */
  private notifyOutOfMemory(): void {
    try {
      this.opts.onOutOfMemory?.();
    } catch (e) {
      log("err", this.logScope, `out-of-memory listener failed: ${errorMessage(e)}`);
    }
  }

  /**
   * After a failed call: forget a disposed isolate so the next call
   * re-creates it. The runner disposes its isolates only through
   * releaseInstance, which forgets them first, so a current isolate found
   * disposed was discarded by isolated-vm for running out of memory:
   * onOutOfMemory hears of it here, once per isolate, whichever execution
   * finds out first (with several queued, one that never started may).
   */
  private noteFailure(instance: IsolateInstance): void {
    if (this.instance !== instance || !instance.isolate.isDisposed) return;
    this.releaseInstance();
    this.notifyOutOfMemory();
  }

  private liveInstance(): IsolateInstance | undefined {
    if (this.disposed) return undefined;
    if (this.instance !== undefined) return this.instance;
    try {
      return this.restart();
    } catch {
      return undefined;
    }
  }

  private restart(): IsolateInstance {
    if (this.hibernating) {
      this.instance = this.instantiate();
      this.hibernating = false;
      return this.instance;
    }
    log("warn", this.logScope, `${this.scriptPath}: re-creating the script isolate after it ran out of memory`);
    this.instance = this.instantiate();
    this.restartCount++;
    return this.instance;
  }

  private releaseInstance(): void {
    const instance = this.instance;
    this.instance = undefined;
    if (instance === undefined) return;
    if (!instance.isolate.isDisposed) {
      try {
        instance.lastCpuNs = instance.isolate.cpuTime;
        instance.coverage?.dispose();
        instance.isolate.dispose();
      } catch {
        // discarded by isolated-vm meanwhile (out of memory on another thread)
      }
    }
    this.retiredCpuNs += instance.lastCpuNs;
  }

  /**
   * Async mode's restart: the script's isolate is rebuilt with isolated-vm's
   * async calls, so compiling the runtime and running the script's
   * top-level code happen off the main thread. Concurrent callers share one
   * restart.
   */
  private restartAsync(): Promise<IsolateInstance> {
    this.pendingInstance ??= (async () => {
      const waking = this.hibernating;
      if (!waking) log("warn", this.logScope, `${this.scriptPath}: re-creating the script isolate after it ran out of memory`);
      try {
        const instance = await this.instantiateAsync();
        if (this.disposed) {
          instance.coverage?.dispose();
          instance.isolate.dispose();
          throw new Error("script runner disposed");
        }
        this.instance = instance;
        this.hibernating = false;
        if (!waking) this.restartCount++;
        return instance;
      } finally {
        this.pendingInstance = undefined;
      }
    })();
    return this.pendingInstance;
  }

  private bridgeCallback(): ivm.Callback {
    return new isolatedVm.Callback((ctxId: number, op: number, ...args: unknown[]) => {
      this.hostCallDepth++;
      try {
        return this.dispatcher.dispatch(ctxId, op, args);
      } finally {
        this.hostCallDepth--;
      }
    });
  }

  private facadeDescription(): string {
    return JSON.stringify({ ...this.table.description, maxStringLength: this.maxStringLength, exitToken: this.exitToken });
  }

  /** instantiate() with isolated-vm's async calls (same steps, same failures). */
  private async instantiateAsync(): Promise<IsolateInstance> {
    const isolate = this.newIsolate();
    let coverage: IsolateCoverageSession | undefined;
    try {
      const context = await isolate.createContext();
      const runtime = await isolate.compileScript(runtimeSource(), { filename: RUNTIME_FILENAME });
      await runtime.run(context);
      runtime.release();
      const install = (await context.global.get("__ksrInstall", { reference: true })) as ivm.Reference<
        (bridge: unknown, descriptionJson: string) => unknown
      >;
      await context.global.delete("__ksrInstall");
      const entryPoints = (await install.apply(undefined, [this.bridgeCallback(), this.facadeDescription()], {
        result: { reference: true },
      })) as unknown as ivm.Reference<Record<string, unknown>>;
      install.release();
      const runRoute = (await entryPoints.get("runRoute", { reference: true })) as IsolateInstance["runRoute"];
      const hasRoute = (await entryPoints.get("hasRoute", { reference: true })) as IsolateInstance["hasRoute"];
      const takeFailure = (await entryPoints.get("takeFailure", { reference: true })) as IsolateInstance["takeFailure"];
      entryPoints.release();
      const runRouteCollected = (await context.evalClosure(
        COLLECTING_RUN_ROUTE,
        [runRoute.derefInto(), takeFailure.derefInto(), ROUTE_FAILED],
        { result: { reference: true } },
      )) as unknown as IsolateInstance["runRouteCollected"];
      const instance: IsolateInstance = { isolate, context, runRoute, hasRoute, takeFailure, runRouteCollected, lastCpuNs: 0n };
      instance.coverage = coverage = this.startCoverage(isolate);
      await coverage?.started;
      await this.runTopLevelAsync(isolate, context);
      return instance;
    } catch (e) {
      coverage?.dispose();
      if (!isolate.isDisposed) isolate.dispose();
      throw e;
    }
  }

  private newIsolate(): ivm.Isolate {
    return new isolatedVm.Isolate({ memoryLimit: this.opts.limits.heapMb, ...(this.opts.coverage === true ? { inspector: true } : {}) });
  }

  private startCoverage(isolate: ivm.Isolate): IsolateCoverageSession | undefined {
    if (this.opts.coverage !== true) return undefined;
    // isolated-vm 7.0.2's inspector session fails a V8 thread check and
    // aborts the whole process on Node 26 ("Check failed:
    // IsCreationThread()"); refuse with an error instead of dying.
    if (NODE_MAJOR >= 26) throw new Error(`script coverage needs Node 24: isolated-vm's inspector aborts the process on Node ${process.versions.node}`);
    return new IsolateCoverageSession(isolate.createInspectorSession());
  }

  /**
   * Lines and functions of the script run so far in the current isolate
   * (requires the `coverage` option). Asynchronous: the inspector answers
   * from the isolate's thread.
   */
  async takeCoverage(): Promise<ScriptCoverage> {
    const { code, filename, sourceMap } = this.compiled;
    const session = this.instance?.coverage;
    if (this.opts.coverage !== true) throw new Error("takeCoverage: the runner was created without the coverage option");
    const v8 = session === undefined || this.instance?.isolate.isDisposed === true ? undefined : await session.take(filename);
    return scriptCoverageFromV8(v8, code, filename, sourceMap);
  }

  /** A fresh isolate with the facade installed and the script's top-level code run. */
  private instantiate(): IsolateInstance {
    const isolate = this.newIsolate();
    let coverage: IsolateCoverageSession | undefined;
    try {
      const context = isolate.createContextSync();
      isolate.compileScriptSync(runtimeSource(), { filename: RUNTIME_FILENAME }).runSync(context);
      const install = context.global.getSync("__ksrInstall", { reference: true }) as ivm.Reference<
        (bridge: unknown, descriptionJson: string) => unknown
      >;
      context.global.deleteSync("__ksrInstall");
      const entryPoints = install.applySync(undefined, [this.bridgeCallback(), this.facadeDescription()], {
        result: { reference: true },
      }) as unknown as ivm.Reference<Record<string, unknown>>;
      install.release();
      const runRoute = entryPoints.getSync("runRoute", { reference: true }) as IsolateInstance["runRoute"];
      const takeFailure = entryPoints.getSync("takeFailure", { reference: true }) as IsolateInstance["takeFailure"];
      const instance: IsolateInstance = {
        isolate,
        context,
        runRoute,
        hasRoute: entryPoints.getSync("hasRoute", { reference: true }) as IsolateInstance["hasRoute"],
        takeFailure,
        runRouteCollected: context.evalClosureSync(
          COLLECTING_RUN_ROUTE,
          [runRoute.derefInto(), takeFailure.derefInto(), ROUTE_FAILED],
          { result: { reference: true } },
        ) as unknown as IsolateInstance["runRouteCollected"],
        lastCpuNs: 0n,
      };
      entryPoints.release();
      // Best effort: the inspector turns coverage on from another thread, and
      // nothing here can wait for it, so the first code may go uncounted. Only
      // a sync re-creation after an out-of-memory comes here with coverage on;
      // loading with coverage goes through instantiateAsync.
      instance.coverage = coverage = this.startCoverage(isolate);
      this.runTopLevel(isolate, context);
      return instance;
    } catch (e) {
      coverage?.dispose();
      if (!isolate.isDisposed) isolate.dispose();
      throw e;
    }
  }

  /** Compiles and evaluates the script; any failure becomes a ScriptLoadError naming file:line. */
  private runTopLevel(isolate: ivm.Isolate, context: ivm.Context): void {
    const { code, filename } = this.compiled;
    let script: ivm.Script;
    try {
      script = isolate.compileScriptSync(code, { filename });
    } catch (e) {
      throw this.compileError(e);
    }
    try {
      script.runSync(context, { timeout: this.loadTimeoutMs });
    } catch (e) {
      throw this.topLevelError(isolate, e);
    } finally {
      script.release();
    }
  }

  /** runTopLevel with isolated-vm's async calls: the script's top-level code runs off the main thread. */
  private async runTopLevelAsync(isolate: ivm.Isolate, context: ivm.Context): Promise<void> {
    const { code, filename } = this.compiled;
    let script: ivm.Script;
    try {
      script = await isolate.compileScript(code, { filename });
    } catch (e) {
      throw this.compileError(e);
    }
    try {
      await script.run(context, { timeout: this.loadTimeoutMs });
    } catch (e) {
      throw this.topLevelError(isolate, e);
    } finally {
      script.release();
    }
  }

  private compileError(e: unknown): ScriptLoadError {
    const { filename, sourceMap } = this.compiled;
    // isolated-vm reports V8 syntax errors as "SyntaxError: message [file:line:col]".
    const message = errorMessage(e);
    const position = firstScriptPosition(message, filename, sourceMap);
    const text = message.replace(/ \[[^\]]*\]$/, "");
    return ScriptLoadError.at(filename, `SyntaxError: ${text}`, position?.line, position?.column);
  }

  private topLevelError(isolate: ivm.Isolate, e: unknown): ScriptLoadError {
    const { filename, sourceMap } = this.compiled;
    if (isolate.isDisposed) {
      return ScriptLoadError.at(filename, `top-level code exceeded the memory limit of ${this.opts.limits.heapMb} MB`);
    }
    const message = errorMessage(e);
    if (message === TIMEOUT_MESSAGE) {
      return ScriptLoadError.at(filename, `top-level code did not finish within ${this.loadTimeoutMs} ms`);
    }
    const stack = e instanceof Error && typeof e.stack === "string" ? e.stack : "";
    const position = firstScriptPosition(stack, filename, sourceMap);
    const name = e instanceof Error ? e.name : "uncaught value";
    return ScriptLoadError.at(filename, `${name}: ${remapPositions(message, filename, sourceMap)}`, position?.line, position?.column);
  }
}
