/**
 * Host side of the KSR bridge: the flat function table derived from the
 * module export tables, the description the facade builds KSR from, and the
 * dispatcher behind the one ivm.Callback every KSR call goes through.
 *
 * The dispatcher never throws (an exception in a host callback would surface
 * inside the script as a catchable error carrying host details), answers
 * only primitives, and addresses per-message state by the context id the
 * facade passes, so several executions could be in flight later.
 */
import type { MessageContext, LogLevel } from "../host/core/context.js";
import { log } from "../host/core/log.js";
import type { KemiFunction, KemiModule, KemiParamType, KemiReturnType, KemiValue, NativeFunction } from "../host/modules/types.js";
import {
  ARG_ERROR_MISSING,
  ARG_ERROR_TOO_LARGE,
  MAX_PARAMS,
  MODF_ARG_TOO_LARGE,
  OP_ARG_ERROR,
  OP_DROP,
  OP_EXIT,
  OP_MODF,
  type FacadeDescription,
  type WireModule,
} from "../runtime/protocol.js";
import { binaryToText, textToBinary } from "./strings.js";
import type { RouteFlagName } from "../runtime/interpreter.js";
import { expandPvFormat } from "../host/modules/pv.js";

/**
 * Default cap on one string argument from a script: the largest SIP
 * message (DEFAULT_PARSE_LIMITS.maxMessageBytes). No KSR argument a SIP use
 * needs is longer than a whole message, and host work per call stays
 * bounded (a 1 MiB R-URI is not SIP).
 */
export const DEFAULT_MAX_STRING_LENGTH = 65535;

/** One callable KSR entry (exported or unavailable). */
export interface BridgeEntry {
  /** "KSR.sl.sl_send_reply" / "KSR.is_INVITE": for log lines. */
  readonly qualifiedName: string;
  readonly params: readonly KemiParamType[];
  readonly returns: KemiReturnType;
  /** Undefined for an unavailable function. */
  readonly fn?: KemiFunction;
  /** Why an unavailable function cannot work here. */
  readonly unavailableReason?: string;
  /** Reachable through KSR.x.modf (module functions only). */
  readonly module: string;
  /**
   * The Kamailio route types it is meant for: its own declaration, else the
   * union of the natives that run it; undefined when neither says.
   * Not enforced at run time (KEMI does not check them); `ksr check` reports.
   */
  readonly routes?: readonly RouteFlagName[];
}

/** A native (kamailio.cfg) function reachable by KSR.x.modf, resolved against its module's KEMI table. */
export interface NativeEntry {
  readonly name: string;
  readonly params: readonly KemiParamType[];
  /** Kamailio module exporting it. */
  readonly kamailioModule: string;
  /** The KSR function doing the same ("KSR.sl.sl_send_reply"), when there is one. */
  readonly kemiName?: string;
  /** What a call runs; undefined when Kamailio's modf refuses the function. */
  readonly call?: { readonly entry: BridgeEntry } | { readonly run: NonNullable<NativeFunction["run"]> };
  /** Why Kamailio 5.6's modf refuses it. */
  readonly refused?: string;
  /** Its string parameters are taken as written, not as pv formats. */
  readonly literal: boolean;
  /** Kamailio 5.6's route flags of its export row. */
  readonly routes: readonly RouteFlagName[];
}

/** What a failed call answers, by declared return type. */
export function failureValue(returns: KemiReturnType): KemiValue {
  switch (returns) {
    case "int":
      return -1;
    case "bool":
      return false;
    case "xval":
      return null;
    case "none":
      return undefined;
  }
}

export class BridgeTable {
  readonly entries: readonly BridgeEntry[];
  /** Native cfg name → its entries (one per parameter count), for KSR.x.modf. */
  private readonly byNativeName: ReadonlyMap<string, readonly NativeEntry[]>;
  /** The tables as the facade needs them (ids index `entries`). */
  readonly description: Omit<FacadeDescription, "exitToken" | "maxStringLength">;

  constructor(modules: readonly KemiModule[]) {
    const entries: BridgeEntry[] = [];
    /** KSR function → the route flags of the natives that run it. */
    const nativeRoutes = new Map<string, Set<RouteFlagName>>();
    const byNativeName = new Map<string, NativeEntry[]>();
    const wire: WireModule[] = [];
    const seenModules = new Set<string>();
    const coreNames = new Set<string>();
    for (const mod of modules) {
      if (mod.name === "x") throw new Error(`module name "x" is reserved for KSR.x`);
      if (seenModules.has(mod.name)) throw new Error(`duplicate KEMI module "${mod.name}"`);
      seenModules.add(mod.name);
      const prefix = mod.name === "" ? "KSR." : `KSR.${mod.name}.`;
      const wireFunctions: { name: string; id: number; params: KemiParamType[]; returns: KemiReturnType }[] = [];
      const add = (name: string, entry: BridgeEntry): void => {
        if (entry.params.length > MAX_PARAMS) throw new Error(`${entry.qualifiedName}: more than ${MAX_PARAMS} parameters`);
        const id = entries.length;
        entries.push(entry);
        wireFunctions.push({ name, id, params: [...entry.params], returns: entry.returns });
        if (mod.name === "") coreNames.add(name);
        byQualifiedName.set(entry.qualifiedName, entry);
      };
      const byQualifiedName = new Map<string, BridgeEntry>();
      for (const [name, fn] of Object.entries(mod.functions)) {
        add(name, { qualifiedName: prefix + name, params: fn.params, returns: fn.returns, fn, module: mod.name });
      }
      for (const [name, u] of Object.entries(mod.unavailable ?? {})) {
        if (Object.hasOwn(mod.functions, name)) throw new Error(`${prefix}${name} is both exported and unavailable`);
        add(name, { qualifiedName: prefix + name, params: u.params, returns: u.returns, unavailableReason: u.reason, module: mod.name });
      }
      for (const native of mod.native ?? []) {
        const entry = nativeEntry(mod, prefix, native, byQualifiedName);
        const sameName = byNativeName.get(native.name) ?? [];
        if (sameName.some((e) => e.params.length === native.params.length)) {
          throw new Error(`native function ${native.name} with ${native.params.length} parameter(s) is declared twice`);
        }
        sameName.push(entry);
        byNativeName.set(native.name, sameName);
        if (entry.kemiName !== undefined) {
          const routes = nativeRoutes.get(entry.kemiName) ?? new Set<RouteFlagName>();
          for (const r of native.routes) routes.add(r);
          nativeRoutes.set(entry.kemiName, routes);
        }
      }
      wire.push({ name: mod.name, functions: wireFunctions });
    }
    // A KSR function's routes: declared, else its natives' (ANY_ROUTE absorbs the rest).
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const declared = entry.fn?.routes;
      const fromNatives = nativeRoutes.get(entry.qualifiedName);
      const routes = declared ?? (fromNatives === undefined ? undefined : fromNatives.has("ANY_ROUTE") ? (["ANY_ROUTE"] as const) : [...fromNatives]);
      if (routes !== undefined) entries[i] = { ...entry, routes };
    }
    for (const name of coreNames) {
      if (seenModules.has(name)) throw new Error(`core function KSR.${name} collides with module KSR.${name}`);
    }
    this.entries = entries;
    this.byNativeName = byNativeName;
    this.description = { modules: wire };
  }

  /** The native function KSR.x.modf(name, ...) with `paramCount` parameters finds, as app_jsdt's find_export_record. */
  modfTarget(nativeName: string, paramCount: number): NativeEntry | undefined {
    return this.byNativeName.get(nativeName)?.find((e) => e.params.length === paramCount);
  }

  /** Every native entry of that name (one per parameter count). */
  nativeVariants(nativeName: string): readonly NativeEntry[] {
    return this.byNativeName.get(nativeName) ?? [];
  }

  /** Every native function, by name then parameter count. */
  get natives(): NativeEntry[] {
    return [...this.byNativeName.values()].flat().sort((a, b) => a.name.localeCompare(b.name) || a.params.length - b.params.length);
  }
}

/** Checks one native declaration against its module's KEMI table (a mistake is a start-up error, never a wrong call). */
function nativeEntry(mod: KemiModule, prefix: string, native: NativeFunction, kemi: ReadonlyMap<string, BridgeEntry>): NativeEntry {
  const where = `native ${native.name}/${native.params.length} of ${mod.kamailioModule}`;
  if (native.params.length > MAX_PARAMS) throw new Error(`${where}: more than ${MAX_PARAMS} parameters`);
  const target = native.kemi === undefined ? undefined : kemi.get(prefix + native.kemi);
  if (native.kemi !== undefined && target === undefined) throw new Error(`${where}: no KSR function ${prefix}${native.kemi}`);
  const base = {
    name: native.name,
    params: native.params,
    kamailioModule: native.module ?? mod.kamailioModule,
    kemiName: target?.qualifiedName,
    literal: native.literal === true,
    routes: native.routes,
  };
  if (native.refused !== undefined) {
    if (native.run !== undefined) throw new Error(`${where}: refused and implemented`);
    return { ...base, refused: native.refused };
  }
  if (native.run !== undefined) return { ...base, call: { run: native.run } };
  if (target === undefined) throw new Error(`${where}: says neither what it runs nor that it is refused`);
  if (target.params.join() !== native.params.join()) {
    throw new Error(`${where}: parameters (${native.params.join(", ")}) differ from ${target.qualifiedName} (${target.params.join(", ")})`);
  }
  return { ...base, call: { entry: target } };
}

/** Parses an integer parameter given to KSR.x.modf as text (cfg fixup: decimal, optional sign). */
function parseModfInt(text: string): number | undefined {
  if (!/^[+-]?\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= -2147483648 && n <= 2147483647 ? n : undefined;
}

function describeHostError(e: unknown): string {
  if (e instanceof Error) return e.message;
  try {
    return String(e);
  } catch {
    return "(unprintable value)";
  }
}

/**
 * Dispatches bridge calls for one runner. `executions` is the runner's map of
 * in-flight route runs (context id → context).
 */
export class BridgeDispatcher {
  constructor(
    private readonly table: BridgeTable,
    private readonly executions: ReadonlyMap<number, MessageContext>,
    /** Answered when an execution has exited; the facade turns it into the exit sentinel. */
    private readonly exitToken: string,
    private readonly maxStringLength: number,
    /** Log scope for calls that arrive outside any route run (top-level script code). */
    private readonly logScope: string,
    /** A route's time limit in ms, its time in KSR calls included. */
    private readonly routeTimeoutMs: number,
    /** CPU time of the isolate running the executions, in ns. */
    private readonly isolateCpuNs: () => bigint,
  ) {}

  /** Wall time spent in KSR calls, in ms: counted in the tenant's CPU use (ScriptRunner.cpuTimeNs). */
  hostTimeMs = 0;

  /** The ivm.Callback body. Never throws; answers only primitives. */
  dispatch(ctxId: number, op: number, args: unknown[]): unknown {
    const ctx = this.executions.get(ctxId);
    try {
      if (op >= 0) {
        const entry = this.table.entries[op];
        if (entry === undefined) return undefined;
        if (ctx === undefined) return this.outsideRoute(entry.qualifiedName, failureValue(entry.returns));
        if (ctx.exited) return this.exitToken;
        const started = performance.now();
        return this.timed(ctx, started, this.callEntry(ctx, entry, args));
      }
      switch (op) {
        case OP_EXIT:
        case OP_DROP:
          if (ctx !== undefined) {
            if (op === OP_DROP && !ctx.exited) ctx.dropped = true;
            ctx.exited = true;
          }
          return this.exitToken;
        case OP_MODF:
          if (ctx === undefined) return this.outsideRoute("KSR.x.modf", -1);
          if (ctx.exited) return this.exitToken;
          {
            const started = performance.now();
            return this.timed(ctx, started, this.modf(ctx, args));
          }
        case OP_ARG_ERROR:
          return this.argError(ctx, args);
        default:
          return undefined;
      }
    } catch (e) {
      // Only reachable through a failing logger; keep the isolate out of it.
      try {
        log("err", this.logScope, `KSR bridge failure: ${describeHostError(e)}`);
      } catch {
        // nothing left to report to
      }
      return undefined;
    }
  }

  /**
   * Host time is route time: the call's time counts in the tenant's CPU use
   * and in its route's clock. Once a call returns with the route's time in
   * KSR calls, plus its isolate's CPU time when the runner knows where that
   * started (a synchronous route), past the limit, the execution ends as if
   * by KSR.x.exit and the runner reports the route as timed out. The
   * isolate's CPU time (not wall time, which a busy machine stretches) is
   * read only once host time alone reaches a quarter of the limit: KSR calls
   * normally take microseconds. Answers the call's result while in time.
   */
  private timed(ctx: MessageContext, started: number, result: unknown): unknown {
    const elapsed = performance.now() - started;
    this.hostTimeMs += elapsed;
    const clock = ctx.routeClock;
    if (clock === undefined) return result;
    clock.hostMs += elapsed;
    if (clock.hostMs * 4 < this.routeTimeoutMs) return result;
    const isolateMs = clock.startCpuNs === undefined ? 0 : Number(this.isolateCpuNs() - clock.startCpuNs) / 1e6;
    if (clock.hostMs + isolateMs <= this.routeTimeoutMs) return result;
    ctx.routeTimedOut = true;
    ctx.exited = true;
    return this.exitToken;
  }

  private log(ctx: MessageContext | undefined, level: LogLevel, text: string): void {
    if (ctx === undefined) {
      log(level, this.logScope, text);
      return;
    }
    try {
      ctx.host.log(level, text, ctx);
    } catch {
      log(level, this.logScope, text);
    }
  }

  private outsideRoute(name: string, value: KemiValue): KemiValue {
    this.log(undefined, "err", `${name}: called outside a route (no message to work on)`);
    return value;
  }

  private argError(ctx: MessageContext | undefined, args: unknown[]): KemiValue | string {
    const [fnId, reason, index] = args as [number, number, number];
    const entry = this.table.entries[fnId];
    if (entry === undefined) return undefined;
    if (ctx !== undefined && ctx.exited) return this.exitToken;
    if (reason === ARG_ERROR_MISSING) {
      this.log(ctx, "err", `${entry.qualifiedName}: called without its ${entry.params.length} parameter(s)`);
      // app_jsdt answers false here whatever the declared return type.
      return false;
    }
    if (reason === ARG_ERROR_TOO_LARGE) {
      this.log(ctx, "err", `${entry.qualifiedName}: parameter ${index + 1} longer than ${this.maxStringLength} characters, call refused`);
    }
    return failureValue(entry.returns);
  }

  /** Runs one entry with converted arguments; a throwing module function becomes a logged failure. */
  private callEntry(ctx: MessageContext, entry: BridgeEntry, args: unknown[]): unknown {
    if (entry.fn === undefined) {
      this.log(ctx, "err", `${entry.qualifiedName}: not available: ${entry.unavailableReason ?? "not supported"}`);
      return failureValue(entry.returns);
    }
    const params = entry.params;
    for (let i = 0; i < params.length; i++) {
      const value = args[i];
      if (params[i] === "str") {
        if (typeof value !== "string") return this.badArgument(ctx, entry, i);
        if (value.length > this.maxStringLength) return this.badArgument(ctx, entry, i);
        args[i] = textToBinary(value);
      } else if (typeof value !== "number" || !Number.isInteger(value)) {
        return this.badArgument(ctx, entry, i);
      }
    }
    let result: KemiValue;
    try {
      result = entry.fn.run(ctx, ...args);
    } catch (e) {
      this.log(ctx, "err", `${entry.qualifiedName}: failed: ${describeHostError(e)}`);
      result = failureValue(entry.returns);
    }
    // A function may itself end the execution; the facade then throws the sentinel.
    if (ctx.exited) return this.exitToken;
    return this.toScriptValue(ctx, entry, result);
  }

  private badArgument(ctx: MessageContext, entry: BridgeEntry, index: number): KemiValue {
    this.log(ctx, "err", `${entry.qualifiedName}: invalid parameter ${index + 1}`);
    return failureValue(entry.returns);
  }

  /** Normalises a module's result to its declared return type (scripts branch on exact values). */
  private toScriptValue(ctx: MessageContext, entry: BridgeEntry, result: KemiValue): KemiValue {
    switch (entry.returns) {
      case "int":
        if (typeof result === "number") return result;
        if (typeof result === "boolean") return result ? 1 : -1;
        break;
      case "bool":
        if (typeof result === "boolean") return result;
        if (typeof result === "number") return result > 0;
        break;
      case "xval":
        if (typeof result === "string") return binaryToText(result);
        if (typeof result === "number" || result === null) return result;
        if (result === undefined) return null;
        break;
      case "none":
        return undefined;
    }
    this.log(ctx, "err", `${entry.qualifiedName}: returned a ${typeof result}, declared ${entry.returns}`);
    return failureValue(entry.returns);
  }

  /** A native function's own implementation; strings arrive as binary text, as to a KEMI function. */
  private runNative(ctx: MessageContext, name: string, run: NonNullable<NativeFunction["run"]>, args: unknown[]): unknown {
    const converted = args.map((a) => (typeof a === "string" ? textToBinary(a) : a));
    let result: KemiValue;
    try {
      result = run(ctx, ...converted);
    } catch (e) {
      this.log(ctx, "err", `KSR.x.modf: function '${name}' failed: ${describeHostError(e)}`);
      return -1;
    }
    return ctx.exited ? this.exitToken : result;
  }

  /** KSR.x.modf(fname, ...strings): a module function by its native cfg name. */
  private modf(ctx: MessageContext, args: unknown[]): number | string {
    const [fname, argCount] = args as [unknown, number];
    if (typeof fname !== "string") {
      this.log(ctx, "err", "KSR.x.modf: missing function name");
      return -1;
    }
    if (argCount === MODF_ARG_TOO_LARGE) {
      this.log(ctx, "err", `KSR.x.modf: argument longer than ${this.maxStringLength} characters, call refused`);
      return -1;
    }
    const name = textToBinary(fname);
    // As app_jsdt: the name with this parameter count, else "not available";
    // a function whose fixup cannot be freed is refused.
    const native = this.table.modfTarget(name, argCount);
    if (native === undefined) {
      this.log(ctx, "err", `KSR.x.modf: function '${name}' is not available`);
      return -1;
    }
    if (native.call === undefined) {
      this.log(ctx, "err", `KSR.x.modf: function '${name}' has fixup - cannot be used${native.kemiName ? ` (use ${native.kemiName})` : ""}`);
      return -1;
    }
    // As the native fixups: a string parameter is a pv format ("$rU@$rd")
    // unless the function takes it as written; an int one an integer or a PV.
    const converted: unknown[] = [];
    for (let i = 0; i < native.params.length; i++) {
      let text = args[i + 2] as string;
      if (!native.literal && text.includes("$")) {
        const expanded = expandPvFormat(ctx, textToBinary(text));
        if ("error" in expanded) {
          this.log(ctx, "err", `KSR.x.modf: function '${name}' parameter ${i + 1}: ${expanded.error}`);
          return -1;
        }
        text = binaryToText(expanded.value);
      }
      if (native.params[i] === "int") {
        const n = parseModfInt(text);
        if (n === undefined) {
          this.log(ctx, "err", `KSR.x.modf: function '${name}' parameter ${i + 1} is not an integer: '${textToBinary(text)}'`);
          return -1;
        }
        converted.push(n);
      } else {
        converted.push(text);
      }
    }
    const call = native.call;
    const result = "entry" in call ? this.callEntry(ctx, call.entry, converted) : this.runNative(ctx, name, call.run, converted);
    if (result === this.exitToken) return this.exitToken;
    // modf answers an int, like every native cfg function.
    switch (typeof result) {
      case "number":
        return result;
      case "boolean":
        return result ? 1 : -1;
      case "undefined":
        return "entry" in call && call.entry.returns === "none" ? 1 : -1;
      default:
        return result === null ? -1 : 1;
    }
  }
}
