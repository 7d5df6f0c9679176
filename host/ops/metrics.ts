/**
 * Which metric families each way of running gathers (host/metrics/):
 * a server whose scripts run in it (one script, or tenants in-process),
 * a tenant worker process, and the front of worker processes.
 */
import type { Registry } from "prom-client";
import type { SipServer } from "../core/server.js";
import type { TenantRouting } from "../core/tenant-routing.js";
import { frontFamilies, metricsRegistry, scriptMetricsJson, serverFamilies, slFamilies, tenantFamilies } from "../metrics/collect.js";
import type { MetricsGatherer, MetricsJson } from "../metrics/http.js";
import type { DataServices } from "../storage/index.js";
import type { TenantProcesses } from "../tenants/processes.js";

/** The families of the tenants whose scripts run in this process, their script metrics, and this server's sl replies. */
function tenantsGatherer(server: SipServer<TenantRouting>, data: DataServices | undefined, extra: Registry | undefined): () => Promise<MetricsJson[]> {
  const registry = metricsRegistry([...tenantFamilies({ routing: server.router, data }), ...slFamilies(server.wire)], false);
  const ids = () => new Set(server.router.registry.tenants.map((t) => t.id));
  return async () => [
    ...(extra !== undefined ? [(await extra.getMetricsAsJSON()) as MetricsJson] : []),
    (await registry.getMetricsAsJSON()) as MetricsJson,
    await scriptMetricsJson(ids()),
  ];
}

/** `ksr run script.js` and `ksr run --tenants --isolation in-process`: everything is in this process. */
export function serverMetrics(server: SipServer<TenantRouting>, data: DataServices | undefined): MetricsGatherer {
  return tenantsGatherer(server, data, metricsRegistry(serverFamilies(server), true));
}

/**
 * A tenant worker process: its tenant's families (the front has the
 * sockets), and its own process metrics (event-loop lag, GC, CPU, memory)
 * labelled `process="<worker>"` (the tenant id, `id#index` in a pool), so
 * that the front lists them per worker instead of adding them up.
 */
export function workerMetrics(server: SipServer<TenantRouting>, data: DataServices | undefined, processLabel: string): MetricsGatherer {
  const own = metricsRegistry([], true);
  own.setDefaultLabels({ process: processLabel });
  return tenantsGatherer(server, data, own);
}

/** The front of tenant worker processes: its sockets, what it keeps of its workers, its own process, and every worker's families. */
export function frontMetrics(server: SipServer, processes: TenantProcesses): MetricsGatherer {
  const registry = metricsRegistry(
    [...serverFamilies(server, () => processes.shedders()), ...slFamilies(server.wire), ...frontFamilies(() => processes.workerReadings())],
    false,
  );
  // Its process metrics apart from each worker's (labelled by worker).
  const own = metricsRegistry([], true);
  own.setDefaultLabels({ process: "front" });
  return async () => [
    (await registry.getMetricsAsJSON()) as MetricsJson,
    (await own.getMetricsAsJSON()) as MetricsJson,
    ...(await processes.workerMetrics()),
  ];
}
