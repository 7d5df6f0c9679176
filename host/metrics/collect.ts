/**
 * The metric families of a process, as prom-client metrics whose values
 * are read from the server's plain counters when scraped (nothing is
 * labelled or looked up per message).
 *
 * Three groups, so that the front of tenant worker processes and its
 * workers each export what they hold, and the front sums them
 * (prom-client's AggregatorRegistry.aggregate, the cluster mode of
 * prom-client):
 * - serverFamilies: what crossed the sockets (host/metrics/wire.ts), TCP
 *   connections, shed load. Exported by the process that owns the sockets:
 *   the single server or the front.
 * - tenantFamilies: per tenant (label `tenant`, one value per tenant of the
 *   configuration: bounded): route calls, their latency, errors,
 *   isolate heap, CPU, transactions, registrations, htables, local
 *   replies, the script's own metrics. Exported where the scripts run.
 * - frontFamilies: per tenant, what the front keeps of its workers.
 *
 * Values that every worker of a pool sees alike (registrations and htables
 * live in a file the pool shares) take the max across workers, not the sum.
 */
import { collectDefaultMetrics, Registry, type Aggregator, type MetricObjectWithValues, type MetricValueWithName } from "prom-client";
import type { TenantRouting } from "../core/tenant-routing.js";
import type { DataServices } from "../storage/index.js";
import type { LoadShedder } from "../core/overload.js";
import type { PolicyCounters } from "../transport/index.js";
import { tenantHtables } from "../modules/state/htable-store.js";
import { dispatcherOf } from "../modules/dispatcher/tenants.js";
import { isSkipped, type Destination } from "../modules/dispatcher/list.js";
import { allScriptMetrics } from "./script-metrics.js";
import { udpReceiveBufferDrops } from "./udp-drops.js";
import { COUNTED_METHODS, DROP_REASONS, STATUS_CLASSES, type WireCounters } from "./wire.js";

type MetricType = "counter" | "gauge" | "histogram";
type Labels = Record<string, string | number>;
type Sample = { labels: Labels; value: number; metricName?: string };

/** A metric whose values `read` gives at scrape time; prom-client's registry takes any object with a name and get(). */
interface CollectedMetric {
  readonly name: string;
  get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>>;
}

function family(name: string, help: string, type: MetricType, read: () => Sample[], aggregator: Aggregator = "sum"): CollectedMetric {
  return {
    name,
    get: async () =>
      ({ name, help, type, aggregator, values: read() }) as unknown as MetricObjectWithValues<MetricValueWithName<string>>,
  };
}

/** Samples of an array indexed like `names` (index 0 of status classes is the unused ""). */
function indexed(values: Float64Array, names: readonly string[], label: string, extra: Labels = {}): Sample[] {
  const out: Sample[] = [];
  names.forEach((n, i) => {
    if (n !== "") out.push({ labels: { ...extra, [label]: n }, value: values[i]! });
  });
  return out;
}

/** What the process owning the sockets reports of them. */
export interface ServerMetricSource {
  readonly wire: WireCounters;
  readonly tcpConnectionCount: number;
  readonly tcpPolicyCounters: Readonly<PolicyCounters> | undefined;
  readonly tlsConnectionCount: number;
  readonly tlsPolicyCounters: Readonly<PolicyCounters> | undefined;
  readonly wsConnectionCount: number;
  readonly wsPolicyCounters: Readonly<PolicyCounters> | undefined;
  readonly shedder: LoadShedder | undefined;
}

export function serverFamilies(server: ServerMetricSource, extraShedders: () => readonly LoadShedder[] = () => []): CollectedMetric[] {
  const w = server.wire;
  const shedders = (): LoadShedder[] => [...(server.shedder !== undefined ? [server.shedder] : []), ...extraShedders()];
  return [
    family("ksr_sip_requests_received_total", "SIP requests received, by method (well-formed ones; malformed ones count as drops or sl replies)", "counter", () =>
      indexed(w.requestsReceived, COUNTED_METHODS, "method"),
    ),
    family("ksr_sip_requests_sent_total", "SIP requests sent, by method (forwarded, relayed, CANCELs and ACKs the proxy generates)", "counter", () =>
      indexed(w.requestsSent, COUNTED_METHODS, "method"),
    ),
    family("ksr_sip_replies_received_total", "SIP responses received, by status class", "counter", () => indexed(w.repliesReceived, STATUS_CLASSES, "class")),
    family("ksr_sip_replies_sent_total", "SIP responses sent (relayed and local), by status class", "counter", () => indexed(w.repliesSent, STATUS_CLASSES, "class")),
    family("ksr_dropped_messages_total", "Messages the server dropped, by reason", "counter", () =>
      DROP_REASONS.map((reason, i) => ({ labels: { reason }, value: w.drops[i]! })),
    ),
    family("ksr_udp_receive_buffer_drops_total", "Datagrams the kernel dropped for a full receive buffer on this server's UDP sockets (Linux)", "counter", () => {
      const drops = udpReceiveBufferDrops();
      return drops === undefined ? [] : [{ labels: {}, value: drops }];
    }),
    family("ksr_tcp_connections", "Open TCP connections (inbound and outbound)", "gauge", () => [{ labels: {}, value: server.tcpConnectionCount }]),
    family("ksr_tcp_policy_events_total", "TCP connections refused or closed, and messages dropped, by the connection policy", "counter", () => {
      const c = server.tcpPolicyCounters;
      return c === undefined ? [] : Object.entries(c).map(([event, value]) => ({ labels: { event }, value }));
    }),
    family("ksr_tls_connections", "Open TLS connections (inbound and outbound)", "gauge", () => [{ labels: {}, value: server.tlsConnectionCount }]),
    family("ksr_tls_policy_events_total", "TLS connections refused or closed (failed or timed-out handshakes among them), and messages dropped, by the connection policy", "counter", () => {
      const c = server.tlsPolicyCounters;
      return c === undefined ? [] : Object.entries(c).map(([event, value]) => ({ labels: { event }, value }));
    }),
    family("ksr_ws_connections", "Open WebSocket connections (ws and wss, those in their handshake included)", "gauge", () => [{ labels: {}, value: server.wsConnectionCount }]),
    family("ksr_ws_policy_events_total", "WebSocket connections refused or closed (refused handshakes and pong timeouts among them), and messages dropped, by the connection policy", "counter", () => {
      const c = server.wsPolicyCounters;
      return c === undefined ? [] : Object.entries(c).map(([event, value]) => ({ labels: { event }, value }));
    }),
    family("ksr_shed_requests_total", "Requests refused with 503 for overload, by method", "counter", () => {
      const byMethod = new Map<string, number>();
      for (const s of shedders()) for (const [m, n] of s.counters().shed) byMethod.set(m, (byMethod.get(m) ?? 0) + n);
      return [...byMethod].map(([method, value]) => ({ labels: { method }, value }));
    }),
    family("ksr_overload_shedding", "1 while load is being shed (any shedder), else 0", "gauge", () => [
      { labels: {}, value: shedders().some((s) => s.shedding) ? 1 : 0 },
    ], "max"),
  ];
}

/** Where tenants' scripts run: the single server, the in-process tenants server, or one worker process. */
export interface TenantMetricSource {
  readonly routing: TenantRouting;
  readonly data: DataServices | undefined;
}

interface HeapReading {
  readonly heapBytes?: { used: number; limit: number };
}

export function tenantFamilies(source: TenantMetricSource): CollectedMetric[] {
  const registry = source.routing.registry;
  const tenants = () => registry.tenants;
  const perTenant = (name: string, help: string, type: MetricType, value: (t: (typeof registry.tenants)[number]) => number, aggregator: Aggregator = "sum") =>
    family(name, help, type, () => tenants().map((t) => ({ labels: { tenant: t.id }, value: value(t) })), aggregator);
  const heap = (t: (typeof registry.tenants)[number]) => (t.runner as HeapReading).heapBytes ?? { used: 0, limit: 0 };
  const table = (t: (typeof registry.tenants)[number]) => source.routing.proxyOf(t.id)?.table;
  type Table = NonNullable<ReturnType<typeof table>>;
  /** A family of the tenants' transaction tables, one sample per kind: server, then client. */
  const byKind = (name: string, help: string, type: MetricType, read: (tb: Table) => readonly [number, number]) =>
    family(name, help, type, () =>
      tenants().flatMap((t) => {
        const tb = table(t);
        if (tb === undefined) return [];
        const [server, client] = read(tb);
        return [
          { labels: { tenant: t.id, kind: "server" }, value: server },
          { labels: { tenant: t.id, kind: "client" }, value: client },
        ];
      }),
    );
  return [
    perTenant("ksr_tenant_route_calls_total", "Route calls of the tenant's script (request, reply, failure, branch, onreply routes), refused ones included", "counter", (t) => t.counters.messages),
    family("ksr_tenant_route_errors_total", "Route calls that failed, by kind (exception, timeout, oom)", "counter", () =>
      tenants().flatMap((t) => {
        const c = t.counters;
        return [
          { labels: { tenant: t.id, kind: "exception" }, value: c.routeErrors - c.timeouts - c.oomRestarts },
          { labels: { tenant: t.id, kind: "timeout" }, value: c.timeouts },
          { labels: { tenant: t.id, kind: "oom" }, value: c.oomRestarts },
        ];
      }),
    ),
    perTenant("ksr_tenant_oom_restarts_total", "Isolates discarded and re-created after running out of memory", "counter", (t) => t.counters.oomRestarts),
    perTenant("ksr_tenant_over_budget_total", "Requests refused (503) without running the script: the tenant's CPU budget was empty", "counter", (t) => t.counters.overBudget),
    perTenant("ksr_tenant_reloads_total", "Script reloads that took effect", "counter", (t) => t.counters.reloads),
    family("ksr_tenant_route_duration_seconds", "Wall time of a route call, from the call to its outcome", "histogram", () =>
      tenants().flatMap((t) => t.counters.routeLatency.samples("ksr_tenant_route_duration_seconds", { tenant: t.id })),
    ),
    family("ksr_tenant_replies_total", "Replies sent for the tenant by its script (sl) and by the server on its behalf (error policy, over budget), by class", "counter", () =>
      tenants().flatMap((t) => Object.entries(t.counters.repliesByClass).map(([cls, value]) => ({ labels: { tenant: t.id, class: cls }, value }))),
    ),
    perTenant("ksr_tenant_isolate_heap_used_bytes", "Heap used by the tenant's current isolate", "gauge", (t) => heap(t).used),
    perTenant("ksr_tenant_isolate_heap_limit_bytes", "Heap limit of the tenant's isolate", "gauge", (t) => heap(t).limit),
    perTenant("ksr_tenant_cpu_seconds_total", "CPU time of the tenant's isolates and of the host work for their KSR calls", "counter", (t) => Number(t.counters.cpuNs) / 1e9),
    perTenant("ksr_tenant_cpu_share", "The tenant's CPU share (cores' worth it may use, limits.cpuShare)", "gauge", (t) => t.config.limits.cpuShare),
    perTenant("ksr_tenant_async_mode", "1 once the tenant's script was demoted to asynchronous execution", "gauge", (t) => (t.mode === "async" ? 1 : 0), "max"),
    byKind("ksr_transactions_current", "Transactions in the tenant's table (settled ones waiting for their timers included), by kind", "gauge", (tb) => [tb.serverCount, tb.clientCount]),
    byKind("ksr_transactions_total", "Transactions created, by kind (server: requests handled statefully; client: branches sent)", "counter", (tb) => [tb.serversAdded, tb.clientsAdded]),
    family("ksr_transactions_final_total", "Server transactions answered, by the class of their final response", "counter", () =>
      tenants().flatMap((t) => {
        const tb = table(t);
        return tb === undefined ? [] : indexed(tb.serverFinalsByClass, STATUS_CLASSES, "class", { tenant: t.id });
      }),
    ),
    perTenant("ksr_usrloc_aors", "Addresses-of-record with registrations", "gauge", (t) => source.data?.locations.aorCount(t.id) ?? 0, "max"),
    perTenant(
      "ksr_usrloc_contacts",
      "Registered contacts (expired ones until swept)",
      "gauge",
      (t) => source.data?.locations.entries(t.id).reduce((n, e) => n + e.bindings.length, 0) ?? 0,
      "max",
    ),
    perTenant("ksr_htable_items", "Items in the tenant's htables (expired ones until swept)", "gauge", (t) => tenantHtables(t.id).size, "max"),
    perTenant("ksr_htable_bytes", "Bytes of keys and values in the tenant's htables", "gauge", (t) => tenantHtables(t.id).bytes, "max"),
    family(
      "ksr_htable_table_items",
      "Live items of each of the tenant's htables (tables per tenant are bounded by its htable limits)",
      "gauge",
      () =>
        tenants().flatMap((t) => {
          const store = tenantHtables(t.id);
          const now = Date.now();
          return store.tableNames().map((table) => {
            let n = 0;
            for (const _ of store.entries(table, now)) n++;
            return { labels: { tenant: t.id, table }, value: n };
          });
        }),
      "max",
    ),
    ...dispatcherFamilies(() => tenants().map((t) => t.id)),
  ];
}

/**
 * Destinations of a tenant's dispatcher exported one series each; the rest
 * are counted in ksr_dispatcher_destinations_unexported (a list file may
 * hold thousands, and every series costs every scrape).
 */
export const DISPATCHER_DESTINATIONS_EXPORTED = 100;

/** The first DISPATCHER_DESTINATIONS_EXPORTED destinations of each tenant with a dispatcher (sets in id order, as listed), and how many were left out. */
function dispatcherDestinations(tenantIds: readonly string[]): { tenant: string; set: number; dest: Destination }[] {
  return tenantIds.flatMap((tenant) => {
    const d = dispatcherOf(tenant);
    if (d === undefined) return [];
    const sets = [...d.list.sets.values()].sort((a, b) => a.id - b.id);
    return sets.flatMap((set) => set.dests.map((dest) => ({ tenant, set: set.id, dest }))).slice(0, DISPATCHER_DESTINATIONS_EXPORTED);
  });
}

/**
 * Dispatcher destination states. Each process running a tenant keeps its
 * own states (ds_mark_dst in one worker of a pool does not reach the
 * others), so the front takes the min of "up" (up only where every worker
 * has it up) and the max of the state bits.
 */
function dispatcherFamilies(tenantIds: () => readonly string[]): CollectedMetric[] {
  const labels = (x: { tenant: string; set: number; dest: Destination }) => ({ tenant: x.tenant, set: x.set, destination: x.dest.uri });
  return [
    family(
      "ksr_dispatcher_destination_up",
      `1 when the dispatcher destination is usable (neither inactive nor disabled), else 0; the first ${DISPATCHER_DESTINATIONS_EXPORTED} destinations of each tenant`,
      "gauge",
      () => dispatcherDestinations(tenantIds()).map((x) => ({ labels: labels(x), value: isSkipped(x.dest.flags) ? 0 : 1 })),
      "min",
    ),
    family(
      "ksr_dispatcher_destination_state",
      "The dispatcher destination's Kamailio state bits: 0 active, 1 inactive, 2 trying, 4 disabled, 8 probing (added up)",
      "gauge",
      () => dispatcherDestinations(tenantIds()).map((x) => ({ labels: labels(x), value: x.dest.flags })),
      "max",
    ),
    family(
      "ksr_dispatcher_destinations_unexported",
      `Destinations of the tenant's dispatcher beyond the first ${DISPATCHER_DESTINATIONS_EXPORTED}, which have no series of their own`,
      "gauge",
      () =>
        tenantIds().flatMap((tenant) => {
          const d = dispatcherOf(tenant);
          return d === undefined ? [] : [{ labels: { tenant }, value: Math.max(0, d.list.size - DISPATCHER_DESTINATIONS_EXPORTED) }];
        }),
      "max",
    ),
  ];
}

/** Replies built by a process's server itself: every process that has a server exports them (the front's and the workers' add up). */
export function slFamilies(wire: WireCounters): CollectedMetric[] {
  return [
    family("ksr_sl_replies_total", "Replies the server built itself (sl_send_reply, error policy, 503s, answers to malformed requests), by class", "counter", () =>
      indexed(wire.slReplies, STATUS_CLASSES, "class"),
    ),
  ];
}

/** The scripts' own metrics (KSR.xhttp_prom) of the tenants in this process, a family per name (and kind, should two tenants differ). */
export async function scriptMetricsJson(tenantIds: ReadonlySet<string>): Promise<MetricObjectWithValues<MetricValueWithName<string>>[]> {
  const byName = new Map<string, { kind: MetricType; values: Sample[] }>();
  for (const store of allScriptMetrics()) {
    if (!tenantIds.has(store.tenantId)) continue;
    for (const f of store.families()) {
      let entry = byName.get(f.name);
      let name = f.name;
      if (entry !== undefined && entry.kind !== f.kind) {
        name = `${f.name}_${f.kind}`;
        entry = byName.get(name);
      }
      if (entry === undefined) {
        entry = { kind: f.kind, values: [] };
        byName.set(name, entry);
      }
      const rename = name === f.name ? (s: Sample) => s : (s: Sample) => ({ ...s, metricName: s.metricName?.replace(f.name, name) });
      entry.values.push(...f.values.map((v) => rename({ ...v })));
    }
  }
  return [...byName].map(
    ([name, { kind, values }]) =>
      ({ name, help: "script metric (KSR.xhttp_prom)", type: kind, aggregator: kind === "gauge" ? "max" : "sum", values }) as unknown as MetricObjectWithValues<
        MetricValueWithName<string>
      >,
  );
}

/** What the front of tenant worker processes keeps per worker. */
export interface FrontWorkerReading {
  readonly tenant: string;
  readonly running: boolean;
  readonly restarts: number;
  readonly refusedNoWorker: number;
  readonly refusedQueueFull: number;
  readonly dropped: number;
  readonly queued: number;
}

export function frontFamilies(workers: () => readonly FrontWorkerReading[]): CollectedMetric[] {
  const sum = (pick: (w: FrontWorkerReading) => number) => () => {
    const byTenant = new Map<string, number>();
    for (const w of workers()) byTenant.set(w.tenant, (byTenant.get(w.tenant) ?? 0) + pick(w));
    return [...byTenant].map(([tenant, value]) => ({ labels: { tenant }, value }));
  };
  return [
    family("ksr_tenant_worker_restarts_total", "Worker processes of the tenant restarted after they died", "counter", sum((w) => w.restarts)),
    family("ksr_tenant_workers_running", "Worker processes of the tenant running", "gauge", sum((w) => (w.running ? 1 : 0))),
    family("ksr_tenant_queued_messages", "Messages posted to the tenant's workers and not yet handled", "gauge", sum((w) => w.queued)),
    family("ksr_tenant_refused_total", "Requests the front answered 503 for the tenant, by reason", "counter", () => [
      ...sum((w) => w.refusedNoWorker)().map((s) => ({ ...s, labels: { ...s.labels, reason: "no_worker" } })),
      ...sum((w) => w.refusedQueueFull)().map((s) => ({ ...s, labels: { ...s.labels, reason: "queue_full" } })),
    ]),
    family("ksr_tenant_front_dropped_total", "ACKs and responses the front dropped for the tenant (no worker, or its queue full)", "counter", sum((w) => w.dropped)),
  ];
}

/** A registry of these metrics; `processMetrics` adds prom-client's defaults (event-loop lag, GC time, memory, CPU) of this process. */
export function metricsRegistry(metrics: readonly CollectedMetric[], processMetrics: boolean): Registry {
  const registry = new Registry();
  for (const m of metrics) registry.registerMetric(m as never);
  if (processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}
