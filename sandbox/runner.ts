/**
 * One routing script in one isolated-vm isolate.
 *
 * Routes run synchronously on the calling thread (`applySync` with a
 * per-call timeout) and every KSR call is a synchronous ivm.Callback into
 * the host (about 1 µs; see bench/route-call.bench.ts). The callback carries
 * the execution's context id, so an asynchronous `apply` mode, with several
 * executions in flight, needs no change to the bridge.
 *
 * Failures stay inside the runner: an exception or timeout is reported as a
 * RouteOutcome and the isolate keeps serving (isolated-vm leaves an isolate
 * usable after a timeout); an out-of-memory disposes the isolate, and the
 * next call re-creates it from the compiled script.
 */
import { randomBytes } from "node:crypto";
import ivm from "isolated-vm";
import type { MessageContext } from "../host/core/context.js";
import { log } from "../host/core/log.js";
import { KEMI_MODULES } from "../host/modules/index.js";
import type { KemiModule } from "../host/modules/types.js";
import { ROUTE_FAILED, ROUTE_MISSING, ROUTE_OK } from "../runtime/protocol.js";
import { BridgeDispatcher, BridgeTable, DEFAULT_MAX_STRING_LENGTH } from "./bridge.js";
import { compileScript, compileSource, ScriptLoadError, type CompiledScript } from "./compile.js";
import { firstScriptPosition, remapPositions } from "./sourcemap.js";
import { RUNTIME_FILENAME, runtimeSource } from "./runtime-source.js";
import type { RouteOutcome, RouteRunner, ScriptLimits } from "./types.js";

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
}

const DEFAULT_LOAD_TIMEOUT_MS = 1000;
const TIMEOUT_MESSAGE = "Script execution timed out.";
/** Budget for the few facade calls that never run script code (hasRoute, takeFailure). */
const FACADE_CALL_TIMEOUT_MS = 1000;

const OK: RouteOutcome = Object.freeze({ status: "ok" });
const MISSING: RouteOutcome = Object.freeze({ status: "missing" });

/** The live parts of one isolate; replaced as a whole after an out-of-memory. */
interface IsolateInstance {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly runRoute: ivm.Reference<(ctxId: number, name: string) => number>;
  readonly hasRoute: ivm.Reference<(name: string) => boolean>;
  readonly takeFailure: ivm.Reference<() => [string, string]>;
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
  /** CPU time of isolates released while still readable (see cpuTimeNs). */
  private retiredCpuNs = 0n;

  private constructor(
    private readonly compiled: CompiledScript,
    private readonly opts: ScriptRunnerOptions,
  ) {
    this.scriptPath = compiled.filename;
    this.table = new BridgeTable(opts.modules ?? KEMI_MODULES);
    this.maxStringLength = opts.maxStringLength ?? DEFAULT_MAX_STRING_LENGTH;
    this.loadTimeoutMs = opts.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
    this.logScope = `script:${opts.tenant}`;
    this.dispatcher = new BridgeDispatcher(this.table, this.executions, this.exitToken, this.maxStringLength, this.logScope);
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

  private static fromCompiled(compiled: CompiledScript, opts: ScriptRunnerOptions): ScriptRunner {
    const runner = new ScriptRunner(compiled, opts);
    runner.instance = runner.instantiate();
    if (!runner.hasRoute("ksr_request_route")) {
      runner.dispose();
      throw ScriptLoadError.at(compiled.filename, "missing ksr_request_route");
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
   * longer be asked, so its time is missing from the sum.
   */
  get cpuTimeNs(): bigint {
    const current = this.instance && !this.instance.isolate.isDisposed ? this.instance.isolate.cpuTime : 0n;
    return this.retiredCpuNs + current;
  }

  hasRoute(name: string): boolean {
    const instance = this.liveInstance();
    if (instance === undefined) return false;
    try {
      return instance.hasRoute.applySync(undefined, [name], { timeout: FACADE_CALL_TIMEOUT_MS }) === true;
    } catch {
      this.noteFailure(instance);
      return false;
    }
  }

  runRoute(name: string, ctx: MessageContext): RouteOutcome {
    if (this.disposed) return { status: "error", kind: "exception", message: "script runner disposed" };
    let instance: IsolateInstance;
    try {
      instance = this.instance ?? this.restart();
    } catch (e) {
      return { status: "error", kind: "exception", message: `script could not be reloaded: ${errorMessage(e)}` };
    }
    this.executions.set(ctx.id, ctx);
    try {
      const code = instance.runRoute.applySync(undefined, [ctx.id, name], { timeout: this.opts.limits.routeTimeoutMs });
      if (code === ROUTE_OK) return OK;
      if (code === ROUTE_MISSING) return MISSING;
      if (code === ROUTE_FAILED) return this.routeException(instance);
      return { status: "error", kind: "exception", message: `unexpected route result ${String(code)}` };
    } catch (e) {
      return this.routeAbort(instance, e);
    } finally {
      this.executions.delete(ctx.id);
    }
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
    const { filename, sourceMap } = this.compiled;
    const position = firstScriptPosition(stack, filename, sourceMap);
    const mappedMessage = remapPositions(message, filename, sourceMap);
    return position === undefined
      ? { status: "error", kind: "exception", message: mappedMessage }
      : { status: "error", kind: "exception", message: mappedMessage, location: `${filename}:${position.line}` };
  }

  /** applySync itself threw: the isolate stopped the script (timeout) or died (memory). */
  private routeAbort(instance: IsolateInstance, e: unknown): RouteOutcome {
    if (instance.isolate.isDisposed) {
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

  /** After a failed facade call: forget a disposed isolate so the next call re-creates it. */
  private noteFailure(instance: IsolateInstance): void {
    if (this.instance === instance && instance.isolate.isDisposed) this.releaseInstance();
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
      this.retiredCpuNs += instance.isolate.cpuTime;
      instance.isolate.dispose();
    }
  }

  /** A fresh isolate with the facade installed and the script's top-level code run. */
  private instantiate(): IsolateInstance {
    const isolate = new ivm.Isolate({ memoryLimit: this.opts.limits.heapMb });
    try {
      const context = isolate.createContextSync();
      isolate.compileScriptSync(runtimeSource(), { filename: RUNTIME_FILENAME }).runSync(context);
      const install = context.global.getSync("__ksrInstall", { reference: true }) as ivm.Reference<
        (bridge: unknown, descriptionJson: string) => unknown
      >;
      context.global.deleteSync("__ksrInstall");
      const description = JSON.stringify({
        ...this.table.description,
        maxStringLength: this.maxStringLength,
        exitToken: this.exitToken,
      });
      const bridge = new ivm.Callback((ctxId: number, op: number, ...args: unknown[]) =>
        this.dispatcher.dispatch(ctxId, op, args),
      );
      const entryPoints = install.applySync(undefined, [bridge, description], {
        result: { reference: true },
      }) as unknown as ivm.Reference<Record<string, unknown>>;
      install.release();
      const instance: IsolateInstance = {
        isolate,
        context,
        runRoute: entryPoints.getSync("runRoute", { reference: true }) as IsolateInstance["runRoute"],
        hasRoute: entryPoints.getSync("hasRoute", { reference: true }) as IsolateInstance["hasRoute"],
        takeFailure: entryPoints.getSync("takeFailure", { reference: true }) as IsolateInstance["takeFailure"],
      };
      entryPoints.release();
      this.runTopLevel(isolate, context);
      return instance;
    } catch (e) {
      if (!isolate.isDisposed) isolate.dispose();
      throw e;
    }
  }

  /** Compiles and evaluates the script; any failure becomes a ScriptLoadError naming file:line. */
  private runTopLevel(isolate: ivm.Isolate, context: ivm.Context): void {
    const { code, filename, sourceMap } = this.compiled;
    let script: ivm.Script;
    try {
      script = isolate.compileScriptSync(code, { filename });
    } catch (e) {
      // isolated-vm reports V8 syntax errors as "SyntaxError: message [file:line:col]".
      const message = errorMessage(e);
      const position = firstScriptPosition(message, filename, sourceMap);
      const text = message.replace(/ \[[^\]]*\]$/, "");
      throw ScriptLoadError.at(filename, `SyntaxError: ${text}`, position?.line, position?.column);
    }
    try {
      script.runSync(context, { timeout: this.loadTimeoutMs });
    } catch (e) {
      if (isolate.isDisposed) {
        throw ScriptLoadError.at(filename, `top-level code exceeded the memory limit of ${this.opts.limits.heapMb} MB`);
      }
      const message = errorMessage(e);
      if (message === TIMEOUT_MESSAGE) {
        throw ScriptLoadError.at(filename, `top-level code did not finish within ${this.loadTimeoutMs} ms`);
      }
      const stack = e instanceof Error && typeof e.stack === "string" ? e.stack : "";
      const position = firstScriptPosition(stack, filename, sourceMap);
      const name = e instanceof Error ? e.name : "uncaught value";
      throw ScriptLoadError.at(filename, `${name}: ${remapPositions(message, filename, sourceMap)}`, position?.line, position?.column);
    } finally {
      script.release();
    }
  }
}
