/**
 * The control target of `ksr run --tenants` with every tenant's script in
 * the server process: the TenantRegistry reloads, the TenantRouting counts.
 */
import type { TenantRouting } from "../core/tenant-routing.js";
import type { TenantRegistry } from "../tenants/registry.js";
import { reloadResult, type ControlTarget, type TenantReloadResult, type TenantStatus } from "./types.js";

export function inProcessControlTarget(registry: TenantRegistry, routing: TenantRouting): ControlTarget {
  return {
    async tenants(): Promise<TenantStatus[]> {
      return registry.tenants.map((t) => ({
        id: t.id,
        script: t.config.scriptPath,
        isolation: "in-process",
        // In-process tenants live and die with the server: one answering is running.
        state: "running",
        pid: process.pid,
        mode: t.mode,
      }));
    },

    async reload(tenantId?: string): Promise<TenantReloadResult[]> {
      if (tenantId !== undefined) return [reloadResult(tenantId, await registry.reload(tenantId))];
      // reloadAll's map is in file order, like registry.tenants.
      return [...(await registry.reloadAll())].map(([id, result]) => reloadResult(id, result));
    },

    async counters(): Promise<string[]> {
      return routing.counterLines();
    },
  };
}
