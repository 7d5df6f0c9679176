/**
 * The kamcmd-like methods of the control socket (host/control/server.ts)
 * beyond tenants/reload/counters: stats, uptime, version, tcp.list,
 * tls.reload, and the inspection methods of host/ops/inspect.ts.
 *
 * A server whose scripts run in its own process answers them itself
 * (localOps). The front of tenant worker processes (frontOps) answers
 * stats, uptime, version, tcp.list and tls.reload itself (it holds the
 * sockets) and asks the workers for the
 * rest: those of one tenant's pool, or every worker, merging their answers
 * (a pool shares its registrations and htables, so the first worker that
 * answers speaks for it; transactions and pike trees are per worker and
 * add up or list together).
 */
import type { SipServer } from "../core/server.js";
import type { TenantRouting } from "../core/tenant-routing.js";
import { isLogLevel, LOG_LEVELS, logLevel, setLogLevel } from "../core/log.js";
import type { MetricsGatherer } from "../metrics/http.js";
import type { DataServices } from "../storage/index.js";
import type { TenantProcesses } from "../tenants/processes.js";
import { INSPECT_METHODS, isInspectMethod, LocalInspector, OpsError, optionalStringParam, type InspectMethod, type Params, type TmStats } from "./inspect.js";
import { versionInfo } from "./version.js";

/** Every method of this module, as the control socket serves them. */
export const OPS_METHODS = ["stats", "uptime", "version", "tcp.list", "tls.reload", ...INSPECT_METHODS] as const;
export type OpsMethod = (typeof OPS_METHODS)[number];

export function isOpsMethod(method: string): method is OpsMethod {
  return (OPS_METHODS as readonly string[]).includes(method);
}

export type OpsHandler = (method: OpsMethod, params: Params) => Promise<unknown>;

const startedAt = Date.now();

function uptime(): { startedAt: string; uptimeS: number } {
  return { startedAt: new Date(startedAt).toISOString(), uptimeS: Math.floor((Date.now() - startedAt) / 1000) };
}

/**
 * Every counter and gauge of the metrics (host/metrics), grouped as
 * kamcmd's stats are: by the metric's family (`sip`, `tenant`,
 * `transactions`, `usrloc`, `nodejs` …), each sample as `name{labels}`.
 * With a tenant, only that tenant's samples. Histogram buckets are left
 * out (their _sum and _count stay).
 */
async function stats(gather: MetricsGatherer, tenant: string | undefined): Promise<Record<string, Record<string, number>>> {
  const { AggregatorRegistry } = await import("prom-client");
  const merged = await AggregatorRegistry.aggregate(await gather()).getMetricsAsJSON();
  const groups: Record<string, Record<string, number>> = {};
  for (const family of merged) {
    const parts = family.name.split("_");
    const group = parts[0] === "ksr" ? parts[1]! : parts[0]!;
    for (const v of family.values as { metricName?: string; labels: Record<string, string | number>; value: number }[]) {
      const name = v.metricName ?? family.name;
      if (name.endsWith("_bucket")) continue;
      if (tenant !== undefined && v.labels["tenant"] !== tenant) continue;
      const labels = Object.entries(v.labels)
        .map(([k, l]) => `${k}="${String(l)}"`)
        .join(",");
      (groups[group] ??= {})[labels === "" ? name : `${name}{${labels}}`] = v.value;
    }
  }
  return groups;
}

function knownTenant(ids: readonly string[], tenant: string | undefined): void {
  if (tenant !== undefined && !ids.includes(tenant)) throw new OpsError(`no tenant "${tenant}" (tenants: ${ids.join(", ")})`);
}

/** `ksr run script.js` and `--tenants --isolation in-process`: everything answered here. */
export function localOps(server: SipServer<TenantRouting>, data: DataServices | undefined, gather: MetricsGatherer): OpsHandler {
  const inspector = new LocalInspector(server, data);
  const ids = () => server.router.registry.tenants.map((t) => t.id);
  return async (method, params) => {
    if (!isInspectMethod(method)) {
      const tenant = optionalStringParam(params, "tenant");
      knownTenant(ids(), tenant);
      return processAnswer(method, server, gather, tenant);
    }
    return inspector.call(method, params);
  };
}

/** What the process holding the sockets answers itself: stats (what it gathers), uptime, version, its TCP connections, a TLS certificate reload. */
function processAnswer(method: Exclude<OpsMethod, InspectMethod>, server: SipServer, gather: MetricsGatherer, tenant: string | undefined): Promise<unknown> | unknown {
  switch (method) {
    case "stats":
      return stats(gather, tenant);
    case "uptime":
      return uptime();
    case "version":
      return versionInfo();
    case "tcp.list":
      return server.tcpConnections();
    case "tls.reload": {
      // As SIGHUP: the files read again; new connections use them, open ones keep theirs.
      const problem = server.reloadTls();
      if (problem !== undefined) throw new OpsError(`TLS certificate not reloaded, the previous one stays in use: ${problem}`);
      return { reloaded: true };
    }
  }
}

/** The front of tenant worker processes: its own methods, the rest from the workers. */
export function frontOps(server: SipServer, processes: TenantProcesses, gather: MetricsGatherer): OpsHandler {
  const ids = processes.config.tenants.map((t) => t.id);
  return async (method, params) => {
    const tenant = optionalStringParam(params, "tenant");
    knownTenant(ids, tenant);
    if (!isInspectMethod(method)) return processAnswer(method, server, gather, tenant);
    switch (method) {
      case "loglevel":
        return frontLogLevel(processes, params, tenant);
      default: {
        if (tenant === undefined && ids.length > 1 && ONE_TENANT_METHODS.has(method)) throw new OpsError(`say which tenant (--tenant): ${ids.join(", ")}`);
        const answers = await processes.askWorkers(method, params, tenant);
        return mergeAnswers(method, answers);
      }
    }
  };
}

/** The front's own level and every asked worker's: the tenant's lines are written by its workers. */
async function frontLogLevel(processes: TenantProcesses, params: Params, tenant: string | undefined): Promise<unknown> {
  const level = optionalStringParam(params, "level");
  if (level !== undefined && !isLogLevel(level)) throw new OpsError(`"${level}" is not a log level (${LOG_LEVELS.join(", ")})`);
  if (level !== undefined) setLogLevel(level, tenant);
  const answers = await processes.askWorkers("loglevel", params, tenant);
  const failed = answers.find((a) => a.error !== undefined);
  if (failed !== undefined) throw new OpsError(`worker ${failed.worker}: ${failed.error}`);
  const tenants: Record<string, string> = {};
  for (const a of answers) Object.assign(tenants, (a.result as { tenants: Record<string, string> }).tenants);
  return { process: logLevel(), tenants };
}

/** Methods about one tenant's data: with several tenants, the tenant must be named. */
const ONE_TENANT_METHODS = new Set<string>(["ul.lookup", "ul.rm", "htable.dump", "htable.get", "htable.sets", "htable.seti", "htable.delete", "htable.flush", "htable.reload", "dispatcher.set_state", "dispatcher.reload"]);

/**
 * Methods that change what each worker keeps for itself (dispatcher
 * destination states and lists are per worker, as they are per Kamailio
 * instance): every worker asked must apply them, else the answer is an error
 * naming the workers that did not.
 */
const EVERY_WORKER_METHODS = new Set<string>(["dispatcher.set_state", "dispatcher.reload"]);

type WorkerAnswer = { worker: string; result?: unknown; error?: string };

/** Per-tenant lists (ul.dump, htable.list, pike.list, tm.stats) and single answers, merged over the workers asked. */
function mergeAnswers(method: string, answers: readonly WorkerAnswer[]): unknown {
  if (answers.length === 0) throw new OpsError("no worker to ask");
  // An operator's mistake (unknown table, AoR, key) is the same on every worker: the first one says it.
  const ok = answers.filter((a) => a.error === undefined);
  if (ok.length === 0) throw new OpsError(answers[0]!.error!);
  if (EVERY_WORKER_METHODS.has(method) && ok.length < answers.length) {
    const failed = answers.filter((a) => a.error !== undefined);
    throw new OpsError(`applied by ${ok.map((a) => a.worker).join(", ")} but not by ${failed.map((a) => `${a.worker} (${a.error})`).join(", ")}`);
  }
  switch (method) {
    case "tm.stats": {
      const byTenant = new Map<string, TmStats>();
      for (const a of ok) {
        for (const s of a.result as TmStats[]) {
          const prev = byTenant.get(s.tenant);
          byTenant.set(s.tenant, prev === undefined ? s : addTmStats(prev, s));
        }
      }
      return [...byTenant.values()];
    }
    case "pike.list": {
      // Each worker of a pool sees its share of the traffic: every worker's addresses, named.
      return ok.flatMap((a) => (a.result as { tenant: string; addresses: unknown[] }[]).map((r) => ({ ...r, worker: a.worker })));
    }
    case "ul.dump":
    case "htable.list":
    case "dispatcher.list": {
      // One entry per tenant: a pool's workers share these, and a shard answers for each of its tenants.
      const seen = new Set<string>();
      const out: unknown[] = [];
      for (const a of ok) {
        for (const item of a.result as { tenant: string }[]) {
          if (seen.has(item.tenant)) continue;
          seen.add(item.tenant);
          out.push(item);
        }
      }
      return out;
    }
    case "dispatcher.set_state":
    case "dispatcher.reload":
      // Every worker applied it (checked above): the first answer, with the workers that applied it.
      return { ...(ok[0]!.result as object), workers: ok.map((a) => a.worker) };
    default:
      // One tenant's shared data (ul.lookup/rm, htable.*): the first worker that answered.
      return ok[0]!.result;
  }
}

function addTmStats(a: TmStats, b: TmStats): TmStats {
  const finals: Record<string, number> = { ...a.finals };
  for (const [k, v] of Object.entries(b.finals)) finals[k] = (finals[k] ?? 0) + v;
  return {
    tenant: a.tenant,
    inUse: a.inUse + b.inUse,
    server: a.server + b.server,
    client: a.client + b.client,
    serverCreated: a.serverCreated + b.serverCreated,
    clientCreated: a.clientCreated + b.clientCreated,
    finals,
  };
}
