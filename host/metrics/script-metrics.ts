/**
 * Metrics a routing script keeps itself (KSR.xhttp_prom, host/modules/
 * xhttp_prom.ts), one namespace per tenant, exported as
 * `ksr_script_<name>{tenant="<id>", l1=…, l2=…, l3=…}`.
 *
 * Kamailio declares each metric with a modparam (prom_counter,
 * prom_gauge, prom_histogram) before a script may use it. A script here
 * declares a metric by its first use: the function's kind (counter, gauge,
 * histogram) and its number of labels (the _l0 … _l3 suffix) are fixed
 * then, and a later call with another kind or label count fails with -1,
 * as a call that does not match the declaration fails in Kamailio.
 *
 * Bounded: a tenant has at most MAX_SCRIPT_METRICS metrics, each at most
 * MAX_SERIES_PER_METRIC label combinations, label values at most
 * MAX_LABEL_VALUE_LENGTH characters; past a bound the call fails (-1) and
 * nothing is created, so a script cannot grow the scrape without limit
 * (e.g. with a Call-ID as label value).
 */
import { TenantScoped } from "../modules/state/tenant-scope.js";
import { Histogram, type HistogramSample } from "./histogram.js";

export const MAX_SCRIPT_METRICS = 64;
export const MAX_SERIES_PER_METRIC = 256;
export const MAX_LABEL_VALUE_LENGTH = 128;
/** Prometheus metric name rule (https://prometheus.io/docs/concepts/data_model/), short enough to read. */
const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;
/** Kamailio xhttp_prom's default histogram buckets (the Prometheus client defaults). */
export const DEFAULT_SCRIPT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const SCRIPT_METRIC_PREFIX = "ksr_script_";

export type ScriptMetricKind = "counter" | "gauge" | "histogram";

interface ScriptMetric {
  readonly kind: ScriptMetricKind;
  readonly labelCount: number;
  /** Label values joined by NUL (cannot occur in a value: refused) → value or histogram. */
  readonly series: Map<string, { labels: readonly string[]; value: number; histogram?: Histogram }>;
}

/** Why a call failed; the module logs it. */
export type ScriptMetricFailure = string;

export class TenantScriptMetrics {
  private readonly metrics = new Map<string, ScriptMetric>();

  constructor(readonly tenantId: string) {}

  private series(name: string, kind: ScriptMetricKind, labels: readonly string[]): ScriptMetricFailure | { value: number; histogram?: Histogram } {
    if (!METRIC_NAME.test(name)) return `"${name.slice(0, 80)}" is not a metric name ([a-zA-Z_][a-zA-Z0-9_]*, at most 64 characters)`;
    for (const l of labels) {
      if (l === "") return "a label value is empty";
      if (l.length > MAX_LABEL_VALUE_LENGTH) return `a label value is longer than ${MAX_LABEL_VALUE_LENGTH} characters`;
      if (l.includes("\u0000")) return "a label value contains NUL";
    }
    let metric = this.metrics.get(name);
    if (metric === undefined) {
      if (this.metrics.size >= MAX_SCRIPT_METRICS) return `the tenant already has ${MAX_SCRIPT_METRICS} script metrics`;
      metric = { kind, labelCount: labels.length, series: new Map() };
      this.metrics.set(name, metric);
    }
    if (metric.kind !== kind) return `${name} is a ${metric.kind}, not a ${kind}`;
    if (metric.labelCount !== labels.length) return `${name} has ${metric.labelCount} label(s), not ${labels.length}`;
    const key = labels.join("\u0000");
    let entry = metric.series.get(key);
    if (entry === undefined) {
      if (metric.series.size >= MAX_SERIES_PER_METRIC) return `${name} already has ${MAX_SERIES_PER_METRIC} label combinations`;
      entry = { labels: [...labels], value: 0, ...(kind === "histogram" ? { histogram: new Histogram(DEFAULT_SCRIPT_BUCKETS) } : {}) };
      metric.series.set(key, entry);
    }
    return entry;
  }

  counterInc(name: string, amount: number, labels: readonly string[]): ScriptMetricFailure | undefined {
    if (!Number.isInteger(amount) || amount < 0) return "a counter is increased by a non-negative integer";
    const s = this.series(name, "counter", labels);
    if (typeof s === "string") return s;
    s.value += amount;
    return undefined;
  }

  /** Kamailio's counter_reset_lN / gauge_reset_lN: the series back to 0 (it must exist). */
  reset(name: string, kind: "counter" | "gauge", labels: readonly string[]): ScriptMetricFailure | undefined {
    const metric = this.metrics.get(name);
    if (metric === undefined || metric.kind !== kind) return `no ${kind} ${name.slice(0, 80)}`;
    const entry = metric.series.get(labels.join("\u0000"));
    if (entry === undefined) return `${name} has no series with these labels`;
    entry.value = 0;
    return undefined;
  }

  gaugeSet(name: string, value: number, labels: readonly string[]): ScriptMetricFailure | undefined {
    if (!Number.isFinite(value)) return "not a number";
    const s = this.series(name, "gauge", labels);
    if (typeof s === "string") return s;
    s.value = value;
    return undefined;
  }

  histogramObserve(name: string, value: number, labels: readonly string[]): ScriptMetricFailure | undefined {
    if (!Number.isFinite(value)) return "not a number";
    const s = this.series(name, "histogram", labels);
    if (typeof s === "string") return s;
    s.histogram!.observe(value);
    return undefined;
  }

  /** The tenant's metrics as prom-client metric objects' contents. */
  families(): { name: string; kind: ScriptMetricKind; values: HistogramSample[] }[] {
    return [...this.metrics].map(([name, metric]) => {
      const full = SCRIPT_METRIC_PREFIX + name;
      const values: HistogramSample[] = [];
      for (const entry of metric.series.values()) {
        const labels: Record<string, string> = { tenant: this.tenantId };
        entry.labels.forEach((v, i) => (labels[`l${i + 1}`] = v));
        if (entry.histogram !== undefined) values.push(...entry.histogram.samples(full, labels));
        else values.push({ metricName: full, labels, value: entry.value });
      }
      return { name: full, kind: metric.kind, values };
    });
  }
}

const stores = new TenantScoped((tenantId) => new TenantScriptMetrics(tenantId));

export function tenantScriptMetrics(tenantId: string): TenantScriptMetrics {
  return stores.get(tenantId);
}

/** Every tenant's script metrics created in this process. */
export function allScriptMetrics(): TenantScriptMetrics[] {
  return [...stores.tenants()].map(([, m]) => m);
}
