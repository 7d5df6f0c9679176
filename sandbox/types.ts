/**
 * The contract between the SIP core and a loaded routing script.
 */
import type { MessageContext } from "../host/core/context.js";

export interface ScriptLimits {
  /** Isolate heap limit in MB (isolated-vm memoryLimit). */
  readonly heapMb: number;
  /** CPU/wall timeout of one route call in ms. */
  readonly routeTimeoutMs: number;
}

export const DEFAULT_LIMITS: ScriptLimits = { heapMb: 64, routeTimeoutMs: 100 };

export type RouteFailureKind = "exception" | "timeout" | "oom";

export type RouteOutcome =
  /** The route returned, or ended with KSR.x.exit()/drop() (see ctx.exited / ctx.dropped). */
  | { readonly status: "ok" }
  /** The script does not define this route function. */
  | { readonly status: "missing" }
  /** The route failed; `location` is the script's own file:line when known. */
  | {
      readonly status: "error";
      readonly kind: RouteFailureKind;
      readonly message: string;
      readonly location?: string;
    };

export interface RouteRunner {
  /** The script file this runner was loaded from. */
  readonly scriptPath: string;
  /** True if the script defines a global function of that name (`whenUnknown` when that cannot be asked now; ScriptRunner.hasRoute). */
  hasRoute(name: string, whenUnknown?: boolean): boolean;
  /** Run one route function for ctx. Never throws. */
  runRoute(name: string, ctx: MessageContext): RouteOutcome;
  /** Release the isolate. */
  dispose(): void;
}
