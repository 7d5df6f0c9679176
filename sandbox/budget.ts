/**
 * Per-tenant CPU budget: a token bucket over the CPU time a tenant's
 * isolates report (isolated-vm `cpuTime`).
 *
 * The bucket holds `share × burstMs` milliseconds of CPU and refills at
 * `share` ms per ms of wall time, so over any long window a tenant gets
 * `share` of one core, with bursts up to the bucket size. It is charged
 * with the CPU the isolates used since the last reading; an execution that
 * overruns leaves the bucket in debt, and admit() answers false until the
 * refill has paid the debt back. A message that is not admitted is answered
 * without running the script (503, bench/EXECUTION-DESIGN.md): that is the
 * only way to take CPU back from a script that burns its whole timeout on
 * every message.
 */

export interface CpuBudgetOptions {
  /** Fraction of one core the tenant may use on average (0.1 = 10 %); > 0. */
  readonly share: number;
  /** Wall time whose worth of share the bucket holds, in ms; default 1000. */
  readonly burstMs?: number;
  /** Cumulative CPU time of the tenant in ns; must only grow (see CpuBudget.charge). */
  readonly readCpuNs: () => bigint;
  /** Monotonic clock in ms; default performance.now. */
  readonly nowMs?: () => number;
}

export const DEFAULT_BURST_MS = 1000;

export class CpuBudget {
  readonly share: number;
  /** Bucket size in ms of CPU. */
  readonly capacityMs: number;
  private tokens: number;
  private lastRefillMs: number;
  private lastCpuNs: bigint;
  private chargedNs = 0n;
  private readonly readCpuNs: () => bigint;
  private readonly nowMs: () => number;

  constructor(opts: CpuBudgetOptions) {
    if (!(opts.share > 0) || !Number.isFinite(opts.share)) throw new RangeError(`CPU share must be a positive number, got ${opts.share}`);
    const burstMs = opts.burstMs ?? DEFAULT_BURST_MS;
    if (!(burstMs > 0) || !Number.isFinite(burstMs)) throw new RangeError(`CPU burst window must be a positive number of ms, got ${burstMs}`);
    this.share = opts.share;
    this.capacityMs = opts.share * burstMs;
    this.readCpuNs = opts.readCpuNs;
    this.nowMs = opts.nowMs ?? (() => performance.now());
    this.tokens = this.capacityMs;
    this.lastRefillMs = this.nowMs();
    this.lastCpuNs = this.readCpuNs();
  }

  /** CPU ms left in the bucket (negative while in debt), as of the last admit/charge. */
  get tokensMs(): number {
    return this.tokens;
  }

  /** All CPU charged to the bucket so far, in ns. */
  get chargedCpuNs(): bigint {
    return this.chargedNs;
  }

  /**
   * Refills for the time passed, charges the CPU used since the last
   * reading, and answers whether one more execution may run.
   */
  admit(): boolean {
    this.refill();
    this.charge();
    return this.tokens > 0;
  }

  /**
   * Takes the CPU used since the last reading out of the bucket. Call after
   * each execution (admit() calls it too, so CPU used by executions still
   * in flight is charged at the next admission). A reading lower than the
   * previous one (a reader that restarted from zero) charges nothing and
   * becomes the new baseline.
   */
  charge(): void {
    const cpu = this.readCpuNs();
    const delta = cpu - this.lastCpuNs;
    this.lastCpuNs = cpu;
    if (delta <= 0n) return;
    this.chargedNs += delta;
    this.tokens -= Number(delta) / 1e6;
  }

  /**
   * Empties the bucket and puts it `debtMs` in debt (a penalty for what
   * the tenant made the host do outside its measured CPU, e.g. rebuilding
   * an isolate it ran out of memory again): admit() answers false until
   * the refill has paid it back, debtMs / share ms of wall time.
   */
  penalize(debtMs: number): void {
    this.refill();
    this.tokens = Math.min(this.tokens, 0) - debtMs;
  }

  private refill(): void {
    const now = this.nowMs();
    const elapsed = now - this.lastRefillMs;
    this.lastRefillMs = now;
    if (elapsed <= 0) return;
    this.tokens = Math.min(this.capacityMs, this.tokens + elapsed * this.share);
  }
}
