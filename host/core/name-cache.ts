/**
 * What the last lookups of next-hop host names answered (RFC 3263 is not
 * applied: one A or AAAA lookup per name and family). A route runs
 * synchronously and a lookup does not, so a forward to a name seen before
 * is decided from here while the route runs: its address (the request is
 * sent at once, through the onsend route like any other), or that it does
 * not resolve (the forward fails, the branch is not created — as
 * Kamailio's forward and t_relay fail for an unresolvable destination). A
 * name not seen yet is looked up after the route call.
 *
 * Entries last `ttlMs` (the OS resolver gives no TTL); the table is bounded,
 * the oldest entry going first.
 */
export const NAME_CACHE_TTL_MS = 30_000;
export const NAME_CACHE_MAX_ENTRIES = 10_000;

/** An address, "unresolvable", or undefined when the name has not been looked up lately. */
export type KnownAddress = string | "unresolvable" | undefined;

export class HostNameCache {
  private readonly entries = new Map<string, { readonly answer: string | "unresolvable"; readonly expires: number }>();

  constructor(
    private readonly now: () => number,
    private readonly ttlMs = NAME_CACHE_TTL_MS,
    private readonly maxEntries = NAME_CACHE_MAX_ENTRIES,
  ) {}

  known(host: string, family: 4 | 6): KnownAddress {
    const key = `${family}/${host.toLowerCase()}`;
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.answer;
  }

  remember(host: string, family: 4 | 6, answer: string | "unresolvable"): void {
    const key = `${family}/${host.toLowerCase()}`;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { answer, expires: this.now() + this.ttlMs });
  }
}
