/**
 * A map whose entries expire after their own TTL and whose size is bounded:
 * past the bound the least recently used entry goes (a Map keeps insertion
 * order; a read moves the entry to the end).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly expires: number }>();

  constructor(
    private readonly now: () => number,
    readonly maxEntries: number,
  ) {
    if (!(maxEntries >= 1)) throw new Error(`cache bound must be at least 1 (got ${maxEntries})`);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** Keep `value` for `ttlMs` (0 or less: not kept). */
  set(key: string, value: V, ttlMs: number): void {
    this.entries.delete(key);
    if (!(ttlMs > 0)) return;
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expires: this.now() + ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }
}
