/**
 * The control interface of a running multi-tenant server (`ksr run
 * --tenants file --control path`), in the spirit of Kamailio's ctl /
 * jsonrpcs modules driven by kamcmd: a local socket on which an operator
 * lists the tenants, reloads their scripts and reads their counters.
 *
 * ControlTarget is what the control server (host/control/server.ts) serves;
 * each way of running tenants (in this process, or one process per tenant)
 * provides its own implementation.
 */
import { resolve as resolvePath } from "node:path";
import type { ReloadResult } from "../tenants/registry.js";
import type { OpsHandler } from "../ops/control-ops.js";

/** Where `ksr run --control` (given without a path) and `ksr ctl` put / look for the socket: in the current directory. */
export const DEFAULT_CONTROL_PATH = "ksr.ctl";

/** JSON-RPC 2.0 method names served on the control socket. */
export const CONTROL_METHODS = ["tenants", "reload", "counters"] as const;
export type ControlMethod = (typeof CONTROL_METHODS)[number];

export interface TenantStatus {
  readonly id: string;
  /** Absolute path of the tenant's routing script. */
  readonly script: string;
  /** Whether the tenant's script runs in a child process (its own, or a shard's) or inside the server process. */
  readonly isolation: "process" | "in-process";
  /** e.g. running, restarting, stopped. */
  readonly state: string;
  /** Process running the tenant's script (the server's own pid for in-process tenants). */
  readonly pid?: number;
  /** Times the tenant's process was restarted after dying. */
  readonly restarts?: number;
  /** Execution mode of the current script: sync, async once demoted, or probation (async until proven, in a shard). */
  readonly mode?: string;
  /** Index of this worker in the tenant's pool, when the tenant has several worker processes (one status each). */
  readonly worker?: number;
  /** The shard whose process runs the tenant with other tenants ("shard-<n>"); absent for a process of its own. */
  readonly shard?: string;
}

export interface TenantReloadResult {
  readonly tenant: string;
  readonly ok: boolean;
  /** Why the reload failed (for a script that does not load: file:line:col: message); the previous script keeps running. */
  readonly error?: string;
}

export interface ControlTarget {
  tenants(): Promise<TenantStatus[]>;
  /** one tenant, or every tenant when tenantId is undefined; an unknown id gives one result with ok:false and an error naming it */
  reload(tenantId?: string): Promise<TenantReloadResult[]>;
  /** one line per tenant (the same lines SIGUSR2 logs) */
  counters(): Promise<string[]>;
  /** stats, uptime, version, tcp.list, ul.*, htable.*, tm.stats, pike.list, loglevel (host/ops/control-ops.ts); absent: those methods are not found */
  readonly ops?: OpsHandler;
}

/**
 * The socket path of a `--control` option as an absolute path: `true`
 * (the option given without a value) is DEFAULT_CONTROL_PATH. Absolute so
 * that a server process started elsewhere (the supervised child) and
 * `ksr ctl` agree on the file whatever their working directory.
 */
export function resolveControlPath(option: string | true): string {
  return resolvePath(option === true ? DEFAULT_CONTROL_PATH : option);
}

/** A registry's reload result as the control interface reports it. */
export function reloadResult(tenant: string, result: ReloadResult): TenantReloadResult {
  return result.ok ? { tenant, ok: true } : { tenant, ok: false, error: result.error };
}
