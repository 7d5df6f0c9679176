/**
 * The control target of `ksr run --tenants` with every tenant in its own
 * worker process: the front asks the workers (host/tenants/processes.ts).
 */
import type { TenantProcesses } from "../tenants/processes.js";
import { reloadResult, type ControlTarget, type TenantReloadResult, type TenantStatus } from "./types.js";

export function processesControlTarget(processes: TenantProcesses): ControlTarget {
  const scripts = new Map(processes.config.tenants.map((t) => [t.id, t.scriptPath]));
  return {
    async tenants(): Promise<TenantStatus[]> {
      return (await processes.statuses()).map((s) => ({
        id: s.id,
        ...(s.worker !== undefined ? { worker: s.worker } : {}),
        ...(s.shard !== undefined ? { shard: s.shard } : {}),
        script: scripts.get(s.id)!,
        isolation: "process",
        state: s.state,
        ...(s.pid !== undefined ? { pid: s.pid } : {}),
        restarts: s.restarts,
        ...(s.mode !== undefined ? { mode: s.mode } : {}),
      }));
    },

    async reload(tenantId?: string): Promise<TenantReloadResult[]> {
      return [...(await processes.reload(tenantId))].map(([id, result]) => reloadResult(id, result));
    },

    counters(): Promise<string[]> {
      return processes.counterLines();
    },
  };
}
