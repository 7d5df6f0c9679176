/**
 * Constants shared by the host bridge (sandbox/bridge.ts) and the facade
 * that runs inside the isolate (runtime/facade.ts). Only primitives cross
 * the boundary, so the protocol is numbers and strings.
 */

/** What app_jsdt throws for KSR.x.exit(); scripts sometimes test for it. */
export const EXIT_SENTINEL = "~~ksr~exit~~";

/**
 * Bridge operations. A non-negative op is the id of an exported function
 * (module or core); negative ops are the interpreter-specific KSR.x calls
 * and errors the facade detected before calling.
 */
export const OP_EXIT = -1;
export const OP_DROP = -2;
/** (fname, argCount, arg1..arg6): KSR.x.modf. */
export const OP_MODF = -3;
/** argCount value of OP_MODF when the facade refused an over-long argument. */
export const MODF_ARG_TOO_LARGE = -1;
/** (fnId, reason, argIndex): the facade refused a call; the host logs and answers the failure value. */
export const OP_ARG_ERROR = -4;

export const ARG_ERROR_MISSING = 1;
export const ARG_ERROR_TOO_LARGE = 2;

/** Kamailio functions take at most six parameters (sr_kemi_t). */
export const MAX_PARAMS = 6;

/** Results of the facade's runRoute entry point. */
export const ROUTE_OK = 0;
export const ROUTE_MISSING = 1;
export const ROUTE_FAILED = 2;

export type WireParamType = "str" | "int";
export type WireReturnType = "int" | "bool" | "xval" | "none";

export interface WireFunction {
  readonly name: string;
  readonly id: number;
  readonly params: readonly WireParamType[];
  readonly returns: WireReturnType;
}

export interface WireModule {
  /** "" for the core functions that live directly on KSR. */
  readonly name: string;
  readonly functions: readonly WireFunction[];
}

/** What the host hands to the facade's install function (as JSON). */
export interface FacadeDescription {
  readonly modules: readonly WireModule[];
  /** Longest string (in UTF-16 units) a script may pass to the host. */
  readonly maxStringLength: number;
  /** Per-isolate random value the host returns when the execution has exited. */
  readonly exitToken: string;
}

/** The entry points install() returns to the host (as References). */
export interface FacadeEntryPoints {
  runRoute(ctxId: number, name: string, eventName?: string): number;
  hasRoute(name: string): boolean;
  /** [message, stack] of the last ROUTE_FAILED; cleared when read. */
  takeFailure(): [string, string];
}
