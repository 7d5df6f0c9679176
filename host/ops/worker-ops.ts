/**
 * The operations a tenant worker process answers for the front (the "ops"
 * message of host/tenants/worker-protocol.ts): its metric families, and
 * the inspection methods of `ksr ctl` (host/ops/inspect.ts).
 */
import type { SipServer } from "../core/server.js";
import type { TenantRouting } from "../core/tenant-routing.js";
import type { DataServices } from "../storage/index.js";
import { workerMetrics } from "./metrics.js";
import { isInspectMethod, LocalInspector, OpsError, type Params } from "./inspect.js";

export type WorkerOps = (method: string, params: unknown) => Promise<unknown>;

export function workerOps(server: SipServer<TenantRouting>, data: DataServices | undefined, processLabel: string): WorkerOps {
  const metrics = workerMetrics(server, data, processLabel);
  const inspector = new LocalInspector(server, data);
  return async (method, params) => {
    if (method === "metrics") return metrics();
    if (isInspectMethod(method)) return inspector.call(method, (params ?? {}) as Params);
    throw new OpsError(`unknown operation ${method}`);
  };
}
