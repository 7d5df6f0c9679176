/**
 * The KSR facade, run inside each isolate before the routing script.
 *
 * Bundled to a plain script by sandbox/runtime-source.ts. Running it defines
 * a configurable global `__ksrInstall`, which the host takes (as a
 * Reference) and deletes before any script code runs. install() then builds
 * the frozen `KSR` object from the export-table description and returns the
 * entry points the host calls for each route run.
 *
 * Hardening rules for this file, because script code runs in the same realm
 * after us and may tamper with every built-in:
 * - capture every intrinsic used after install() at install time;
 * - never use spread, for-of, destructuring of iterables, or methods reached
 *   through a prototype (Function.prototype.call/apply, String.prototype.*)
 *   on paths that run after the script was loaded;
 * - hand the script only null-prototype frozen objects and frozen functions;
 *   the host callback lives only in this closure.
 */
import {
  ARG_ERROR_MISSING,
  ARG_ERROR_TOO_LARGE,
  EXIT_SENTINEL,
  MODF_ARG_TOO_LARGE,
  OP_ARG_ERROR,
  OP_DROP,
  OP_EXIT,
  OP_MODF,
  ROUTE_FAILED,
  ROUTE_MISSING,
  ROUTE_OK,
  type FacadeDescription,
  type FacadeEntryPoints,
  type WireFunction,
} from "./protocol.js";
import { KSR_X } from "./interpreter.js";

/** The ivm.Callback as seen from inside the isolate. */
type HostCall = (ctxId: number, op: number, ...args: unknown[]) => unknown;

const MAX_MESSAGE_LENGTH = 1000;
const MAX_STACK_LENGTH = 8000;

/** Globals a routing script has no business with; removed before it runs. */
const REMOVED_GLOBALS = [
  // V8's built-in console (present in a bare context); Kamailio scripts log through KSR.
  "console",
  // Can allocate memory outside the JS heap and block the thread (Atomics.wait).
  "WebAssembly",
  "SharedArrayBuffer",
  "Atomics",
];

function install(hostCall: HostCall, descriptionJson: string): FacadeEntryPoints {
  const global = globalThis as unknown as Record<string, unknown>;
  const freeze = Object.freeze;
  const create = Object.create;
  const defineProperty = Object.defineProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const hasOwn = Object.hasOwn;
  const reflectApply = Reflect.apply;
  const toNumber = Number;
  const stringSlice = String.prototype.slice;
  const ErrorClass = Error;
  const jsonStringify = JSON.stringify;

  const description = JSON.parse(descriptionJson) as FacadeDescription;
  const exitToken = description.exitToken;
  const maxStringLength = description.maxStringLength;
  /** Marks an argument that failed the size check; never leaves this closure. */
  const TOO_LARGE: object = freeze(create(null));

  /**
   * Id of the execution (MessageContext.id) the isolate is running now. Only
   * one route runs in an isolate at a time, even with async host calls,
   * because route functions are synchronous; the host addresses its state by
   * this id, never by a "current context" of its own.
   */
  let currentCtxId = 0;
  let lastFailure: [string, string] = ["", ""];

  for (let i = 0; i < REMOVED_GLOBALS.length; i++) delete global[REMOVED_GLOBALS[i]!];

  function truncate(text: string, max: number): string {
    return text.length > max ? (reflectApply(stringSlice, text, [0, max]) as string) + "..." : text;
  }

  /** app_jsdt's duk_to_string: JS ToString (throws for Symbols, like any ToString). */
  function toStr(value: unknown): string {
    return typeof value === "string" ? value : `${value as string}`;
  }

  /** duk_to_int: ToNumber, NaN → 0, truncate, clamp to the int32 range. */
  function toInt(value: unknown): number {
    const n = typeof value === "number" ? value : toNumber(value);
    if (n !== n) return 0;
    if (n >= 2147483647) return 2147483647;
    if (n <= -2147483648) return -2147483648;
    return n | 0;
  }

  function convert(type: string, value: unknown): unknown {
    if (type === "int") return toInt(value);
    const s = toStr(value);
    return s.length > maxStringLength ? TOO_LARGE : s;
  }

  /**
   * Every answer from the host passes here: the exit token means "this
   * execution has ended". `ctxId` is the execution that made the call: a
   * route nested inside the call (tm's branch route in t_relay) that was
   * stopped by its timeout never ran runRoute's finally, so the caller's id
   * is put back here.
   */
  function answer(result: unknown, ctxId: number): unknown {
    currentCtxId = ctxId;
    if (result === exitToken) throw EXIT_SENTINEL;
    return result;
  }

  function argError(fnId: number, reason: number, index: number): unknown {
    const ctxId = currentCtxId;
    return answer(hostCall(ctxId, OP_ARG_ERROR, fnId, reason, index), ctxId);
  }

  function makeFunction(fn: WireFunction): Function {
    const id = fn.id;
    const count = fn.params.length;
    const t0 = fn.params[0] ?? "";
    const t1 = fn.params[1] ?? "";
    const t2 = fn.params[2] ?? "";
    const t3 = fn.params[3] ?? "";
    const t4 = fn.params[4] ?? "";
    const t5 = fn.params[5] ?? "";
    // A method definition: no `prototype` property, not a constructor, but it has `arguments`.
    const holder = {
      ksr(a0?: unknown, a1?: unknown, a2?: unknown, a3?: unknown, a4?: unknown, a5?: unknown): unknown {
        const ctxId = currentCtxId;
        if (count === 0) return answer(hostCall(ctxId, id), ctxId);
        // app_jsdt: a function that declares params, called with none, is an error returning false.
        if (arguments.length === 0) return argError(id, ARG_ERROR_MISSING, 0);
        const c0 = convert(t0, a0);
        if (c0 === TOO_LARGE) return argError(id, ARG_ERROR_TOO_LARGE, 0);
        if (count === 1) return answer(hostCall(ctxId, id, c0), ctxId);
        const c1 = convert(t1, a1);
        if (c1 === TOO_LARGE) return argError(id, ARG_ERROR_TOO_LARGE, 1);
        if (count === 2) return answer(hostCall(ctxId, id, c0, c1), ctxId);
        const c2 = convert(t2, a2);
        if (c2 === TOO_LARGE) return argError(id, ARG_ERROR_TOO_LARGE, 2);
        if (count === 3) return answer(hostCall(ctxId, id, c0, c1, c2), ctxId);
        const c3 = convert(t3, a3);
        if (c3 === TOO_LARGE) return argError(id, ARG_ERROR_TOO_LARGE, 3);
        if (count === 4) return answer(hostCall(ctxId, id, c0, c1, c2, c3), ctxId);
        const c4 = convert(t4, a4);
        if (c4 === TOO_LARGE) return argError(id, ARG_ERROR_TOO_LARGE, 4);
        if (count === 5) return answer(hostCall(ctxId, id, c0, c1, c2, c3, c4), ctxId);
        const c5 = convert(t5, a5);
        if (c5 === TOO_LARGE) return argError(id, ARG_ERROR_TOO_LARGE, 5);
        return answer(hostCall(ctxId, id, c0, c1, c2, c3, c4, c5), ctxId);
      },
    };
    const f = holder.ksr;
    defineProperty(f, "name", { value: fn.name });
    return freeze(f);
  }

  const x = create(null) as Record<string, unknown>;
  const exitHolder = {
    exit(): never {
      hostCall(currentCtxId, OP_EXIT);
      throw EXIT_SENTINEL;
    },
    drop(): never {
      hostCall(currentCtxId, OP_DROP);
      throw EXIT_SENTINEL;
    },
    modf(fname?: unknown, a0?: unknown, a1?: unknown, a2?: unknown, a3?: unknown, a4?: unknown, a5?: unknown): unknown {
      const id = currentCtxId;
      if (arguments.length === 0) return answer(hostCall(id, OP_MODF, undefined, 0), id);
      // The host checks the count against the function's declaration; only up to six are converted.
      const argc = arguments.length - 1;
      const name = toStr(fname);
      // Strings only, as in Kamailio (KSR.x.modf passes every parameter as a string).
      const s0 = argc > 0 ? toStr(a0) : "";
      const s1 = argc > 1 ? toStr(a1) : "";
      const s2 = argc > 2 ? toStr(a2) : "";
      const s3 = argc > 3 ? toStr(a3) : "";
      const s4 = argc > 4 ? toStr(a4) : "";
      const s5 = argc > 5 ? toStr(a5) : "";
      if (
        name.length > maxStringLength ||
        s0.length > maxStringLength ||
        s1.length > maxStringLength ||
        s2.length > maxStringLength ||
        s3.length > maxStringLength ||
        s4.length > maxStringLength ||
        s5.length > maxStringLength
      ) {
        return answer(hostCall(id, OP_MODF, "", MODF_ARG_TOO_LARGE), id);
      }
      switch (argc) {
        case 0: return answer(hostCall(id, OP_MODF, name, argc), id);
        case 1: return answer(hostCall(id, OP_MODF, name, argc, s0), id);
        case 2: return answer(hostCall(id, OP_MODF, name, argc, s0, s1), id);
        case 3: return answer(hostCall(id, OP_MODF, name, argc, s0, s1, s2), id);
        case 4: return answer(hostCall(id, OP_MODF, name, argc, s0, s1, s2, s3), id);
        case 5: return answer(hostCall(id, OP_MODF, name, argc, s0, s1, s2, s3, s4), id);
        default: return answer(hostCall(id, OP_MODF, name, argc, s0, s1, s2, s3, s4, s5), id);
      }
    },
  };
  // KSR.x has exactly the functions runtime/interpreter.ts declares; one
  // declared there and not implemented here is an install error, not a
  // silently missing function.
  const implementations = exitHolder as unknown as Record<string, Function | undefined>;
  for (let i = 0; i < KSR_X.length; i++) {
    const name = KSR_X[i]!.name;
    const implementation = hasOwn(implementations, name) ? implementations[name] : undefined;
    if (typeof implementation !== "function") throw new ErrorClass(`KSR.x.${name} is declared but not implemented`);
    x[name] = freeze(implementation);
  }

  const ksr = create(null) as Record<string, unknown>;
  for (let m = 0; m < description.modules.length; m++) {
    const mod = description.modules[m]!;
    const target = mod.name === "" ? ksr : (create(null) as Record<string, unknown>);
    for (let f = 0; f < mod.functions.length; f++) {
      const fn = mod.functions[f]!;
      target[fn.name] = makeFunction(fn);
    }
    if (mod.name !== "") ksr[mod.name] = freeze(target);
  }
  ksr.x = freeze(x);
  defineProperty(global, "KSR", { value: freeze(ksr), writable: false, enumerable: false, configurable: false });

  /** A global function the script defined, read without running any script code (no getters). */
  function routeFunction(name: string): Function | undefined {
    const d = getOwnPropertyDescriptor(global, name);
    if (d === undefined || !hasOwn(d, "value")) return undefined;
    const value = d.value as unknown;
    return typeof value === "function" ? (value as Function) : undefined;
  }

  /** Describe any thrown value without trusting it: every step may run hostile script code. */
  function describe(thrown: unknown): [string, string] {
    try {
      switch (typeof thrown) {
        case "string":
          return [`uncaught string ${jsonStringify(truncate(thrown, MAX_MESSAGE_LENGTH))}`, ""];
        case "number":
        case "boolean":
        case "bigint":
          return [`uncaught ${typeof thrown} ${`${thrown}`}`, ""];
        case "undefined":
          return ["uncaught undefined", ""];
        case "symbol":
          return [`uncaught symbol ${truncate(toStr((thrown as symbol).description), MAX_MESSAGE_LENGTH)}`, ""];
      }
      if (thrown === null) return ["uncaught null", ""];
      let stack = "";
      try {
        const s: unknown = (thrown as { stack?: unknown }).stack;
        if (typeof s === "string") stack = truncate(s, MAX_STACK_LENGTH);
      } catch {
        // stack getter threw: no location
      }
      let isError = false;
      try {
        isError = thrown instanceof ErrorClass;
      } catch {
        // hostile Proxy
      }
      if (isError) {
        let name = "Error";
        let message = "";
        // Hostile getters: each read on its own, keeping what could be read.
        try {
          const n: unknown = (thrown as Error).name;
          if (typeof n === "string") name = n;
        } catch {
          // keep "Error"
        }
        try {
          const msg: unknown = (thrown as Error).message;
          if (typeof msg === "string") message = msg;
        } catch {
          // no message
        }
        return [truncate(message === "" ? name : `${name}: ${message}`, MAX_MESSAGE_LENGTH), stack];
      }
      let text: string;
      try {
        text = toStr(thrown);
      } catch {
        text = "(value cannot be converted to a string)";
      }
      return [`uncaught ${typeof thrown} ${truncate(toStr(text), MAX_MESSAGE_LENGTH)}`, stack];
    } catch {
      return ["uncaught value (cannot be described)", ""];
    }
  }

  const entryPoints = create(null) as FacadeEntryPoints;
  // An event route (kemi.event_route_callback) is called with the event name, as Kamailio does.
  entryPoints.runRoute = function runRoute(ctxId: number, name: string, eventName?: string): number {
    const route = routeFunction(name);
    if (route === undefined) return ROUTE_MISSING;
    // Routes nest: tm runs a branch route from inside the t_relay call of
    // the route that relays, so the caller's execution is restored after.
    const callerCtxId = currentCtxId;
    currentCtxId = ctxId;
    try {
      reflectApply(route, undefined, typeof eventName === "string" ? [eventName] : []);
      return ROUTE_OK;
    } catch (thrown) {
      if (thrown === EXIT_SENTINEL) return ROUTE_OK;
      lastFailure = describe(thrown);
      return ROUTE_FAILED;
    } finally {
      currentCtxId = callerCtxId;
    }
  };
  entryPoints.hasRoute = function hasRoute(name: string): boolean {
    return routeFunction(name) !== undefined;
  };
  entryPoints.takeFailure = function takeFailure(): [string, string] {
    const failure = lastFailure;
    lastFailure = ["", ""];
    return failure;
  };
  return freeze(entryPoints);
}

Object.defineProperty(globalThis, "__ksrInstall", { value: install, configurable: true, writable: false, enumerable: false });
