/**
 * The location table served from memory (Kamailio usrloc with a write-
 * through database): reads never touch the backend, every change is
 * written through to it in one transaction, and at start the backend's
 * unexpired rows are loaded (usrloc "preload").
 */
import type { Binding, LocationStore } from "./types.js";

/** A binding with the keys it is filed under in the backend. */
export interface StoredBinding {
  readonly tenant: string;
  readonly table: string;
  readonly binding: Binding;
}

/** What the cache needs of a persistent backend. */
export interface LocationPersistence {
  /** Every stored binding still valid at `now` (expired rows may be dropped). */
  loadValid(now: number): StoredBinding[];
  /** Apply upserts and deletions (by ruid) atomically. */
  apply(upserts: readonly StoredBinding[], deletions: readonly string[]): void;
  /**
   * Whether another connection committed to the backend since the last call
   * (its own `apply` does not count). Only SharedLocationStore asks.
   */
  changedElsewhere(): boolean;
}

/** Sort order of an AoR's bindings: q descending (unspecified -1 last), then oldest first. */
function byPriority(a: Binding, b: Binding): number {
  return b.q - a.q || a.seq - b.seq;
}

function keyOf(tenant: string, table: string, aor: string): string {
  // NUL cannot occur in a tenant id, table name or AoR taken from SIP text.
  return `${tenant}\u0000${table}\u0000${aor}`;
}

export class CachedLocationStore implements LocationStore {
  private readonly records = new Map<string, Binding[]>();
  private readonly aorsPerTenant = new Map<string, number>();
  private nextSeq = 1;
  /** Where the bounded sweep goes on from (Map iteration order is insertion order). */
  private sweepCursor: Iterator<[string, Binding[]]> | undefined;

  constructor(
    protected readonly persistence: LocationPersistence | undefined,
    now: number,
  ) {
    this.load(now);
  }

  /** (Re)fills the cache with the backend's bindings valid at `now`. */
  protected load(now: number): void {
    if (this.persistence !== undefined) this.fill(this.persistence.loadValid(now));
    else this.fill([]);
  }

  /** Replace the whole cache with these bindings (a backend's contents). */
  protected fill(stored: Iterable<StoredBinding>): void {
    this.records.clear();
    this.aorsPerTenant.clear();
    this.sweepCursor = undefined;
    for (const { tenant, table, binding } of stored) {
      const key = keyOf(tenant, table, binding.aor);
      let list = this.records.get(key);
      if (list === undefined) {
        list = [];
        this.records.set(key, list);
        this.bumpAors(tenant, 1);
      }
      list.push(binding);
      if (binding.seq >= this.nextSeq) this.nextSeq = binding.seq + 1;
    }
    for (const list of this.records.values()) list.sort(byPriority);
  }

  /** Make the cache hold exactly `list` for the AoR, writing nothing to the backend (a change made elsewhere). */
  protected install(tenant: string, table: string, aor: string, list: readonly Binding[]): void {
    const key = keyOf(tenant, table, aor);
    for (const b of list) if (b.seq >= this.nextSeq) this.nextSeq = b.seq + 1;
    if (list.length === 0) {
      if (this.records.delete(key)) this.bumpAors(tenant, -1);
      return;
    }
    if (!this.records.has(key)) this.bumpAors(tenant, 1);
    this.records.set(key, [...list].sort(byPriority));
  }

  bindings(tenant: string, table: string, aor: string): readonly Binding[] {
    return this.records.get(keyOf(tenant, table, aor)) ?? [];
  }

  replace(tenant: string, table: string, aor: string, next: readonly Binding[]): void {
    const key = keyOf(tenant, table, aor);
    const before = this.records.get(key) ?? [];
    const list = next.map((b) => (b.seq > 0 ? b : { ...b, seq: this.nextSeq++ })).sort(byPriority);
    const kept = new Set(list.map((b) => b.ruid));
    const deletions = before.filter((b) => !kept.has(b.ruid) && !b.memoryOnly).map((b) => b.ruid);
    const previous = new Map(before.map((b) => [b.ruid, b]));
    const upserts: StoredBinding[] = [];
    for (const b of list) {
      if (previous.get(b.ruid) === b) continue; // unchanged object: nothing to write
      if (b.memoryOnly) {
        // A binding saved with flag 0x01 after it was persisted: the stored row
        // would come back at the next start, so it goes (Kamailio FL_MEM).
        if (previous.get(b.ruid)?.memoryOnly === false) deletions.push(b.ruid);
        continue;
      }
      upserts.push({ tenant, table, binding: b });
    }
    if (upserts.length > 0 || deletions.length > 0) this.persist(tenant, table, aor, upserts, deletions);
    if (list.length === 0) {
      if (this.records.delete(key)) this.bumpAors(tenant, -1);
    } else {
      if (!this.records.has(key)) this.bumpAors(tenant, 1);
      this.records.set(key, list);
    }
  }

  /**
   * Write one AoR's changes to the backend before the cache takes them (a
   * throw leaves the cache as it was): the persistent bindings that are new
   * or changed, and the ruids of those that went.
   */
  protected persist(_tenant: string, _table: string, _aor: string, upserts: readonly StoredBinding[], deletions: readonly string[]): void {
    this.persistence?.apply(upserts, deletions);
  }

  findByRuid(tenant: string, table: string, ruid: string): Binding | undefined {
    const prefix = `${tenant}\u0000${table}\u0000`;
    for (const [key, list] of this.records) {
      if (!key.startsWith(prefix)) continue;
      const hit = list.find((b) => b.ruid === ruid);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  sweepExpired(now: number, limit: number): number {
    let removed = 0;
    let visited = 0;
    // Visit at most as many AoRs as the map holds in one call, resuming where
    // the previous call stopped, so a sweep's cost is bounded and every AoR
    // is reached in turn.
    const budget = this.records.size;
    while (removed < limit && visited < budget) {
      this.sweepCursor ??= this.records.entries();
      const step = this.sweepCursor.next();
      if (step.done === true) {
        this.sweepCursor = undefined;
        if (visited === 0) break;
        continue;
      }
      visited++;
      const [key, list] = step.value;
      const expired = list.filter((b) => b.expires <= now);
      if (expired.length === 0) continue;
      const take = expired.slice(0, limit - removed);
      const gone = new Set(take.map((b) => b.ruid));
      const [tenant, table, aor] = key.split("\u0000") as [string, string, string];
      this.replace(tenant, table, aor, list.filter((b) => !gone.has(b.ruid)));
      removed += take.length;
    }
    return removed;
  }

  aorCount(tenant: string): number {
    return this.aorsPerTenant.get(tenant) ?? 0;
  }

  entries(tenant: string): { table: string; aor: string; bindings: readonly Binding[] }[] {
    const prefix = `${tenant}\u0000`;
    const out: { table: string; aor: string; bindings: readonly Binding[] }[] = [];
    for (const [key, list] of this.records) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const cut = rest.indexOf("\u0000");
      out.push({ table: rest.slice(0, cut), aor: rest.slice(cut + 1), bindings: list });
    }
    return out;
  }

  private bumpAors(tenant: string, delta: number): void {
    const n = (this.aorsPerTenant.get(tenant) ?? 0) + delta;
    if (n <= 0) this.aorsPerTenant.delete(tenant);
    else this.aorsPerTenant.set(tenant, n);
  }
}

/**
 * The location cache of one of several worker processes sharing the
 * database file (`ksr run --workers`, `workers:` in a tenants file): a
 * REGISTER handled by one worker must be found by `lookup` on another.
 * Before every read and write it asks SQLite whether another connection
 * committed since (PRAGMA data_version, a read of the WAL index), and if
 * so reloads every binding from the file. Between writes, lookups stay in
 * memory. A single process uses CachedLocationStore and pays none of this.
 *
 * Two workers changing the bindings of one AoR at the same moment (two UAs
 * registering one AoR, their Call-IDs owned by different workers) can
 * interleave read and write: the later write is computed from what its
 * worker read, and the bindings the other worker added in between may be
 * dropped until the UA's next refresh. One UA's registrations keep their
 * Call-ID (RFC 3261 §10.2), so they are serialised on one worker.
 */
export class SharedLocationStore extends CachedLocationStore {
  constructor(
    persistence: LocationPersistence,
    private readonly now: () => number,
  ) {
    super(persistence, now());
    // What was just loaded is current: the first look-up need not reload.
    persistence.changedElsewhere();
  }

  private refresh(): void {
    if (this.persistence!.changedElsewhere()) this.load(this.now());
  }

  override bindings(tenant: string, table: string, aor: string): readonly Binding[] {
    this.refresh();
    return super.bindings(tenant, table, aor);
  }

  override replace(tenant: string, table: string, aor: string, next: readonly Binding[]): void {
    this.refresh();
    super.replace(tenant, table, aor, next);
  }

  override findByRuid(tenant: string, table: string, ruid: string): Binding | undefined {
    this.refresh();
    return super.findByRuid(tenant, table, ruid);
  }

  override sweepExpired(now: number, limit: number): number {
    this.refresh();
    return super.sweepExpired(now, limit);
  }

  override aorCount(tenant: string): number {
    this.refresh();
    return super.aorCount(tenant);
  }

  override entries(tenant: string): { table: string; aor: string; bindings: readonly Binding[] }[] {
    this.refresh();
    return super.entries(tenant);
  }
}
