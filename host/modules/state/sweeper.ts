/**
 * Periodic removal of expired shared state (htable items past their
 * expiry, pike addresses past remove_latency), in bounded steps so a sweep
 * never holds the event loop for long. Expired entries are also dropped
 * whenever they are touched; this only reclaims memory of entries nobody
 * reads any more.
 */
import { sweepExpiredHtableItems } from "./htable-store.js";
import { sweepPike } from "./pike-store.js";

export interface StateSweeperOptions {
  /** Time between steps (default 1000 ms). */
  readonly intervalMs?: number;
  /** htable items looked at per step (default 10 000). */
  readonly htableBudget?: number;
}

/** One sweep step at clock time `now` (ms). */
export function sweepSharedState(now: number, htableBudget = 10_000): void {
  sweepExpiredHtableItems(now, htableBudget);
  sweepPike(now);
}

/**
 * Run sweep steps on a timer with the given clock (the server's
 * HostServices.now). The timer does not keep the process alive. Returns a
 * function that stops it.
 */
export function startStateSweeper(now: () => number, opts: StateSweeperOptions = {}): () => void {
  const timer = setInterval(() => sweepSharedState(now(), opts.htableBudget), opts.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
