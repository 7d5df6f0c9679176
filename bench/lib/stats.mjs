// Summary statistics shared by the benches.

/** Nearest-rank percentile (p in (0, 1]) of ascending values; NaN when there are none. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}
