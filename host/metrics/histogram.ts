/**
 * A histogram kept as plain numbers (bucket counts, sum, count), observed
 * on the per-message path without labels or strings; turned into the
 * Prometheus histogram samples (`_bucket{le}`, `_sum`, `_count`) only when
 * scraped.
 */

/** Upper bounds in seconds of route-call latency: 50 µs (a trivial route) up to 1 s (beyond any route timeout a tenant should have). */
export const ROUTE_LATENCY_BUCKETS_S: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export interface HistogramSample {
  readonly metricName: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

export class Histogram {
  /** counts[i]: observations ≤ bounds[i] and > bounds[i-1]; the last slot holds those above every bound. */
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new RangeError("histogram bounds must increase");
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** The Prometheus samples of this histogram under `name`, each with `labels` (cumulative buckets, le="+Inf" last). */
  samples(name: string, labels: Record<string, string | number>): HistogramSample[] {
    const out: HistogramSample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: this.bounds[i]! }, value: cumulative });
    }
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: this.count });
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: this.count });
    return out;
  }
}
