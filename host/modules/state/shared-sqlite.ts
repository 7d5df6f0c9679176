/**
 * htable items and $shv shared by the worker processes of a pool
 * (`ksr run --workers N`, `workers:` in a tenants file): one SQLite file,
 * on /dev/shm when there is one (tmpfs: no disk), that every worker opens;
 * the front creates it at start and removes it at stop, so, as Kamailio's
 * shared memory, its content lives as long as the server
 * (bench/WORKERS-DESIGN.md §6).
 *
 * Every KSR.htable / $sht / $shv read and write goes to the file: a read is
 * a query (~5 µs measured), a write a transaction (~25-35 µs) under SQLite's
 * one write lock, so at most some 30 000 writes per second for the whole
 * server. sht_inc/sht_dec read and write in one IMMEDIATE transaction:
 * atomic across workers. Expiry works as in the in-memory store
 * (htable-store.ts); expired rows are skipped by reads and deleted by the
 * sweep of one worker (index 0).
 *
 * Differences from the in-memory store: the item limit per tenant is
 * checked against a count at most once a second (the byte and table limits
 * are not enforced); sht_lock/sht_unlock and the named iterators stay per
 * worker (a lock orders the scripts of one worker only; sht_inc is atomic
 * without it); the order of sht_iterator and dumps is by key.
 */
import Database from "better-sqlite3";
import { setSharedVarsBackend } from "../../core/context.js";
import {
  definitionFor,
  htableLimits,
  setHtableBackend,
  type HtableItem,
  type HtableIterator,
  type HtableStore,
  type HtableValue,
  type LockState,
  type ResolvedDefinition,
  type WriteFailure,
} from "./htable-store.js";

type Db = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS htable (
  tenant TEXT NOT NULL,
  tbl TEXT NOT NULL,
  key TEXT NOT NULL,
  str TEXT,
  int INTEGER,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, tbl, key)
);
CREATE INDEX IF NOT EXISTS htable_expiry ON htable (tenant, expires_at) WHERE expires_at > 0;
CREATE TABLE IF NOT EXISTS shv (
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  str TEXT,
  int INTEGER,
  PRIMARY KEY (tenant, name)
);
`;

/** A value as stored: a string in `str`, an integer in `int`. */
interface ValueRow {
  str: string | null;
  int: number | null;
}

function valueOf(row: ValueRow): HtableValue {
  return row.str !== null ? row.str : Number(row.int);
}

function columns(value: HtableValue): { str: string | null; int: number | null } {
  return typeof value === "string" ? { str: value, int: null } : { str: null, int: value };
}

/** Opens (creating) the shared file: WAL so readers never wait for the writer, no fsync (tmpfs, and the content is transient anyway). */
export function openSharedStateFile(file: string): Db {
  const db = new Database(file);
  try {
    db.pragma("busy_timeout = 5000");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    db.exec(SCHEMA);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** How often the item count of a tenant is taken again for the item limit. */
const COUNT_EVERY_MS = 1000;

/** One tenant's tables in the shared file. */
export class SharedTenantHtables implements HtableStore {
  readonly locks = new Map<string, LockState>();
  readonly iterators = new Map<string, HtableIterator>();
  private countedAt = Number.NEGATIVE_INFINITY;
  private counted = 0;

  constructor(
    readonly tenantId: string,
    private readonly q: HtableStatements,
  ) {}

  definition(table: string): ResolvedDefinition {
    return definitionFor(this.tenantId, table);
  }

  get size(): number {
    return (this.q.count.get(this.tenantId) as { n: number }).n;
  }

  get bytes(): number {
    return Number((this.q.bytes.get(this.tenantId) as { n: number | null }).n ?? 0);
  }

  get(table: string, key: string, now: number): HtableItem | undefined {
    const row = this.q.get.get(this.tenantId, table, key, now) as (ValueRow & { expires_at: number }) | undefined;
    return row === undefined ? undefined : { value: valueOf(row), expiresAt: row.expires_at };
  }

  set(table: string, key: string, value: HtableValue, expireSec: number, now: number): WriteFailure | undefined {
    const def = this.definition(table);
    if (this.full(now) && this.get(table, key, now) === undefined) return "items";
    const fresh = expireSec > 0 ? now + expireSec * 1000 : def.autoExpireMs > 0 ? now + def.autoExpireMs : 0;
    // An update keeps the item's expiry unless given one, or the table's autoexpire restarts on update.
    const restart = expireSec > 0 || (def.updateExpire && def.autoExpireMs > 0);
    this.q.set.run({ tenant: this.tenantId, tbl: table, key, ...columns(value), expires: fresh, now, restart: restart ? 1 : 0 });
    return undefined;
  }

  add(table: string, key: string, delta: number, now: number): number | undefined {
    return this.q.add.immediate(this, table, key, delta, now);
  }

  /** sht_inc/sht_dec inside the IMMEDIATE transaction (HtableStatements.add). */
  addInTransaction(table: string, key: string, delta: number, now: number): number | undefined {
    const def = this.definition(table);
    const item = this.get(table, key, now);
    if (item === undefined) {
      if (def.initVal === undefined || this.full(now)) return undefined;
      const value = (def.initVal + delta) | 0;
      this.q.put.run(this.tenantId, table, key, null, value, def.autoExpireMs > 0 ? now + def.autoExpireMs : 0);
      this.counted++;
      return value;
    }
    if (typeof item.value === "string") return undefined;
    const value = (item.value + delta) | 0;
    const expiresAt = def.updateExpire && def.autoExpireMs > 0 ? now + def.autoExpireMs : item.expiresAt;
    this.q.put.run(this.tenantId, table, key, null, value, expiresAt);
    return value;
  }

  setExpire(table: string, key: string, expireSec: number, now: number): boolean {
    return this.q.setExpire.run(expireSec > 0 ? now + expireSec * 1000 : 0, this.tenantId, table, key, now).changes > 0;
  }

  delete(table: string, key: string): boolean {
    return this.q.delete.run(this.tenantId, table, key).changes > 0;
  }

  reset(table: string): void {
    this.q.reset.run(this.tenantId, table);
  }

  entries(table: string, now: number): [string, HtableItem][] {
    const rows = this.q.entries.all(this.tenantId, table, now) as (ValueRow & { key: string; expires_at: number })[];
    return rows.map((r) => [r.key, { value: valueOf(r), expiresAt: r.expires_at }]);
  }

  tableNames(): string[] {
    return (this.q.tables.all(this.tenantId) as { tbl: string }[]).map((r) => r.tbl);
  }

  /** Deletes up to `budget` expired items; only the pool's sweeping worker does (the others report a finished pass). */
  sweepStep(now: number, budget: number): { seen: number; finished: boolean } {
    if (!this.q.sweeps) return { seen: 0, finished: true };
    const seen = this.q.sweep.run(this.tenantId, now, budget).changes;
    return { seen, finished: seen < budget };
  }

  /** Whether the tenant holds its item limit (counted at most once a second; own inserts counted in between). */
  private full(now: number): boolean {
    if (now - this.countedAt >= COUNT_EVERY_MS || now < this.countedAt) {
      this.countedAt = now;
      this.counted = this.size;
    }
    return this.counted >= htableLimits().maxItemsPerTenant;
  }
}

/** The prepared statements of the htable table, shared by every tenant's store in this process. */
class HtableStatements {
  readonly get;
  readonly set;
  readonly put;
  readonly setExpire;
  readonly delete;
  readonly reset;
  readonly entries;
  readonly tables;
  readonly count;
  readonly bytes;
  readonly sweep;
  readonly add;

  constructor(
    db: Db,
    /** Whether this process sweeps expired items (one worker of the pool does). */
    readonly sweeps: boolean,
  ) {
    const live = "(expires_at = 0 OR expires_at > ?)";
    this.get = db.prepare(`SELECT str, int, expires_at FROM htable WHERE tenant = ? AND tbl = ? AND key = ? AND ${live}`);
    this.set = db.prepare(
      `INSERT INTO htable (tenant, tbl, key, str, int, expires_at) VALUES (@tenant, @tbl, @key, @str, @int, @expires)
       ON CONFLICT (tenant, tbl, key) DO UPDATE SET str = excluded.str, int = excluded.int,
         expires_at = CASE WHEN @restart = 1 OR (htable.expires_at > 0 AND htable.expires_at <= @now) THEN excluded.expires_at ELSE htable.expires_at END`,
    );
    this.put = db.prepare("INSERT OR REPLACE INTO htable (tenant, tbl, key, str, int, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
    this.setExpire = db.prepare(`UPDATE htable SET expires_at = ? WHERE tenant = ? AND tbl = ? AND key = ? AND ${live}`);
    this.delete = db.prepare("DELETE FROM htable WHERE tenant = ? AND tbl = ? AND key = ?");
    this.reset = db.prepare("DELETE FROM htable WHERE tenant = ? AND tbl = ?");
    this.entries = db.prepare(`SELECT key, str, int, expires_at FROM htable WHERE tenant = ? AND tbl = ? AND ${live} ORDER BY key`);
    this.tables = db.prepare("SELECT DISTINCT tbl FROM htable WHERE tenant = ?");
    this.count = db.prepare("SELECT count(*) AS n FROM htable WHERE tenant = ?");
    this.bytes = db.prepare("SELECT sum(length(key) + coalesce(length(str), 8)) AS n FROM htable WHERE tenant = ?");
    this.sweep = db.prepare(
      "DELETE FROM htable WHERE rowid IN (SELECT rowid FROM htable WHERE tenant = ? AND expires_at > 0 AND expires_at <= ? LIMIT ?)",
    );
    this.add = db.transaction((store: SharedTenantHtables, table: string, key: string, delta: number, now: number) =>
      store.addInTransaction(table, key, delta, now),
    );
  }
}

/**
 * $shv of one tenant in the shared file: the Map methods the PV layer and
 * the test harness use (get, set, delete, has, clear, iteration, size),
 * each a statement.
 */
export class SharedVarMap extends Map<string, string | number> {
  constructor(
    private readonly tenant: string,
    private readonly q: ShvStatements,
  ) {
    super();
  }

  override get(name: string): string | number | undefined {
    const row = this.q.get.get(this.tenant, name) as ValueRow | undefined;
    return row === undefined ? undefined : valueOf(row);
  }

  override set(name: string, value: string | number): this {
    // Map.prototype's constructor calls set for initial entries: none are given.
    const { str, int } = columns(value);
    this.q.set.run(this.tenant, name, str, int);
    return this;
  }

  override has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  override delete(name: string): boolean {
    return this.q.delete.run(this.tenant, name).changes > 0;
  }

  override clear(): void {
    this.q.clear.run(this.tenant);
  }

  override get size(): number {
    return (this.q.count.get(this.tenant) as { n: number }).n;
  }

  override *entries(): MapIterator<[string, string | number]> {
    for (const row of this.q.all.all(this.tenant) as (ValueRow & { name: string })[]) yield [row.name, valueOf(row)];
  }

  override *keys(): MapIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  override *values(): MapIterator<string | number> {
    for (const [, value] of this.entries()) yield value;
  }

  override [Symbol.iterator](): MapIterator<[string, string | number]> {
    return this.entries();
  }

  override forEach(fn: (value: string | number, key: string, map: Map<string, string | number>) => void): void {
    for (const [name, value] of this.entries()) fn(value, name, this);
  }
}

class ShvStatements {
  readonly get;
  readonly set;
  readonly delete;
  readonly clear;
  readonly count;
  readonly all;

  constructor(db: Db) {
    this.get = db.prepare("SELECT str, int FROM shv WHERE tenant = ? AND name = ?");
    this.set = db.prepare("INSERT OR REPLACE INTO shv (tenant, name, str, int) VALUES (?, ?, ?, ?)");
    this.delete = db.prepare("DELETE FROM shv WHERE tenant = ? AND name = ?");
    this.clear = db.prepare("DELETE FROM shv WHERE tenant = ?");
    this.count = db.prepare("SELECT count(*) AS n FROM shv WHERE tenant = ?");
    this.all = db.prepare("SELECT name, str, int FROM shv WHERE tenant = ? ORDER BY name");
  }
}

/** One process's connection to the shared file, with the stores of its tenants. */
export class SharedStateFile {
  private readonly db: Db;
  private readonly htableStatements: HtableStatements;
  private readonly shvStatements: ShvStatements;

  /** `sweeps`: this process deletes expired htable items (one worker of the pool). */
  constructor(file: string, opts: { sweeps: boolean }) {
    this.db = openSharedStateFile(file);
    this.htableStatements = new HtableStatements(this.db, opts.sweeps);
    this.shvStatements = new ShvStatements(this.db);
  }

  htables(tenantId: string): SharedTenantHtables {
    return new SharedTenantHtables(tenantId, this.htableStatements);
  }

  sharedVars(tenantId: string): SharedVarMap {
    return new SharedVarMap(tenantId, this.shvStatements);
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Makes this process keep every tenant's htables and $shv in the shared
 * file from now on (a worker of a pool, at its start, before its tenant is
 * loaded). `sweeps`: this worker deletes expired items. Returns the
 * connection, for the worker to close at exit.
 */
export function useSharedState(file: string, opts: { sweeps: boolean }): SharedStateFile {
  const shared = new SharedStateFile(file, opts);
  setHtableBackend((tenantId) => shared.htables(tenantId));
  setSharedVarsBackend((tenantId) => shared.sharedVars(tenantId));
  return shared;
}
