/**
 * The in-memory hash tables behind KSR.htable and $sht(table=>key)
 * (Kamailio's htable module), one namespace per tenant.
 *
 * Tables. Kamailio declares every table up front with
 * `modparam("htable", "htable", "name=>size=..;autoexpire=..")` and its
 * functions fail on an undeclared name. Here a table comes into being on
 * the first write to it, with the definition configured for its name (see
 * {@link configureHtables}) or, when none is, no expiry. Reads of a table
 * that was never written see an empty table.
 *
 * Expiry (the table's `autoexpire`, or a per-item expire from sht_setxs,
 * sht_setxi, sht_setex): an item expires the given number of seconds after
 * the write that last set its expiry; an update resets it unless the table
 * has `updateExpire: false` (Kamailio's `updateexpire=0`); in a table
 * without autoexpire an update keeps the item's own expiry. Time is the
 * host clock (`ctx.host.now()`, milliseconds). Expired items are removed
 * when touched, when a tenant reaches its item cap, and by
 * {@link sweepExpiredHtableItems}, which the server calls periodically with
 * a bounded budget. Unlike Kamailio, per-item expiry also works in tables
 * without `autoexpire` (Kamailio silently ignores it there).
 *
 * Memory is bounded per tenant: a number of items, a number of bytes
 * (key and string value lengths) and a number of tables. A write that would
 * go past a bound fails; the KSR layer logs it and answers -1.
 */
import { TenantScoped } from "./tenant-scope.js";

export interface HtableDefinition {
  readonly name: string;
  /** Seconds after its last update at which an item expires; 0 (default) = never. */
  readonly autoExpireSec?: number;
  /** Kamailio's `updateexpire`: an update restarts the item's expiry (default true). */
  readonly updateExpire?: boolean;
  /**
   * Kamailio's `initval`: the integer a missing key reads as, and the value
   * sht_inc/sht_dec start from on a missing key. Undefined = missing keys read as null.
   */
  readonly initVal?: number;
  /**
   * Kamailio's `size` (2^size slots). Accepted so definitions can be copied
   * from a kamailio.cfg; it limits nothing there either.
   */
  readonly size?: number;
  /**
   * The table lives in the shared store (`ksr run --store redis://…`) and
   * every server using that store sees the same items (like Kamailio's
   * `dmqreplicate=1`, through Redis). Without a shared store it is an
   * ordinary table.
   */
  readonly shared?: boolean;
}

export interface HtableLimits {
  /** Items per tenant over all its tables (default 100 000). */
  readonly maxItemsPerTenant: number;
  /** Bytes of keys and string values per tenant (default 64 MiB). */
  readonly maxBytesPerTenant: number;
  /** Tables per tenant (default 1000). */
  readonly maxTablesPerTenant: number;
}

export const DEFAULT_HTABLE_LIMITS: HtableLimits = {
  maxItemsPerTenant: 100_000,
  maxBytesPerTenant: 64 * 1024 * 1024,
  maxTablesPerTenant: 1000,
};

export interface ResolvedDefinition {
  readonly autoExpireMs: number;
  readonly updateExpire: boolean;
  readonly initVal: number | undefined;
  readonly shared: boolean;
}

const NO_EXPIRY_DEFINITION: ResolvedDefinition = { autoExpireMs: 0, updateExpire: true, initVal: undefined, shared: false };

const globalDefinitions = new Map<string, ResolvedDefinition>();
const tenantDefinitions = new Map<string, Map<string, ResolvedDefinition>>();
let limits: HtableLimits = DEFAULT_HTABLE_LIMITS;

function resolve(def: HtableDefinition): ResolvedDefinition {
  if (typeof def.name !== "string" || def.name.length === 0) throw new Error("htable definition without a name");
  const expire = def.autoExpireSec ?? 0;
  if (!Number.isInteger(expire) || expire < 0) throw new Error(`htable ${def.name}: autoExpireSec must be a non-negative integer`);
  if (def.initVal !== undefined && !Number.isInteger(def.initVal)) throw new Error(`htable ${def.name}: initVal must be an integer`);
  return { autoExpireMs: expire * 1000, updateExpire: def.updateExpire ?? true, initVal: def.initVal, shared: def.shared ?? false };
}

/**
 * Declare table definitions (Kamailio's `modparam("htable", "htable", ...)`).
 * Without `tenantId` they apply to every tenant; with it, to that tenant
 * only, taking precedence over global ones of the same name. A definition
 * applies to tables already holding items from the next operation on; items
 * keep the expiry they were given. Throws on an invalid definition.
 */
export function configureHtables(defs: readonly HtableDefinition[], opts: { tenantId?: string } = {}): void {
  const resolved = defs.map((d) => [d.name, resolve(d)] as const);
  let target = globalDefinitions;
  if (opts.tenantId !== undefined) {
    target = tenantDefinitions.get(opts.tenantId) ?? new Map();
    tenantDefinitions.set(opts.tenantId, target);
  }
  for (const [name, def] of resolved) target.set(name, def);
}

const HTABLE_MODPARAM_ATTRIBUTES = ["size", "autoexpire", "initval", "updateexpire", "shared"];

/**
 * A table definition in Kamailio's htable modparam syntax,
 * `name=>size=8;autoexpire=60;initval=0;updateexpire=1;shared=1`
 * (`shared` here plays Kamailio's `dmqreplicate`: the table is kept in the
 * shared store). Throws naming what is wrong.
 */
export function parseHtableModparam(text: string): HtableDefinition {
  const arrow = text.indexOf("=>");
  const name = (arrow < 0 ? text : text.slice(0, arrow)).trim();
  if (name.length === 0) throw new Error(`"${text}": no table name (expected name=>attr=value;...)`);
  const def: { -readonly [K in keyof HtableDefinition]: HtableDefinition[K] } = { name };
  const attrs = arrow < 0 ? "" : text.slice(arrow + 2);
  for (const pair of attrs.split(";")) {
    if (pair.trim().length === 0) continue;
    const eq = pair.indexOf("=");
    const attr = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    const value = eq < 0 ? "" : pair.slice(eq + 1).trim();
    if (!HTABLE_MODPARAM_ATTRIBUTES.includes(attr)) throw new Error(`"${text}": unknown attribute ${attr} (${HTABLE_MODPARAM_ATTRIBUTES.join(", ")})`);
    if (!/^-?\d+$/.test(value)) throw new Error(`"${text}": ${attr} needs an integer value`);
    const n = Number(value);
    switch (attr) {
      case "size":
        def.size = n;
        break;
      case "autoexpire":
        def.autoExpireSec = n;
        break;
      case "initval":
        def.initVal = n;
        break;
      case "updateexpire":
        def.updateExpire = n !== 0;
        break;
      case "shared":
        def.shared = n !== 0;
        break;
    }
  }
  resolve(def);
  return def;
}

/** Change the per-tenant memory bounds (all tenants). */
export function configureHtableLimits(next: Partial<HtableLimits>): void {
  limits = { ...limits, ...next };
}

/** Forget all definitions and restore the default limits (tests). */
export function resetHtableConfiguration(): void {
  globalDefinitions.clear();
  tenantDefinitions.clear();
  limits = DEFAULT_HTABLE_LIMITS;
}

/** The current per-tenant memory bounds. */
export function htableLimits(): HtableLimits {
  return limits;
}

/** Tables declared for the tenant (its own and every tenant's), by name. */
export function declaredHtables(tenantId: string): string[] {
  return [...new Set([...globalDefinitions.keys(), ...(tenantDefinitions.get(tenantId)?.keys() ?? [])])];
}

export function definitionFor(tenantId: string, table: string): ResolvedDefinition {
  return tenantDefinitions.get(tenantId)?.get(table) ?? globalDefinitions.get(table) ?? NO_EXPIRY_DEFINITION;
}

export type HtableValue = string | number;

export interface HtableItem {
  value: HtableValue;
  /** Epoch ms at which the item expires; 0 = never. */
  expiresAt: number;
}

/** Why a write was refused. */
export type WriteFailure = "items" | "bytes" | "tables" | "unavailable";

export function describeWriteFailure(failure: WriteFailure): string {
  switch (failure) {
    case "items":
      return `the tenant already holds ${limits.maxItemsPerTenant} htable items`;
    case "bytes":
      return `the tenant's htable items would exceed ${limits.maxBytesPerTenant} bytes`;
    case "tables":
      return `the tenant already has ${limits.maxTablesPerTenant} htables`;
    case "unavailable":
      return "the shared store (Redis) is unavailable";
  }
}

function itemBytes(key: string, value: HtableValue): number {
  return key.length + (typeof value === "string" ? value.length : 8);
}

const isExpired = (item: HtableItem, now: number): boolean => item.expiresAt !== 0 && now >= item.expiresAt;

/** One entry of a tenant's lock table (Kamailio's re-entrant slot lock). */
export interface LockState {
  /** Nesting depth: lock() calls not yet matched by unlock(). */
  depth: number;
  /** Context id of the execution that took the lock first. */
  holder: number;
}

/** A named htable iterator (Kamailio allows 4 at a time). */
export interface HtableIterator {
  readonly table: string;
  /** Keys present when the iterator started, visited in this order. */
  readonly keys: readonly string[];
  /** Index in keys of the current item; -1 before the first next(). */
  position: number;
}

export const MAX_ITERATORS = 4;
export const MAX_ITERATOR_NAME_LENGTH = 31;

/**
 * All tables of one tenant, as the KSR.htable functions see them: in this
 * process's memory (TenantHtables), or in a SQLite file the worker
 * processes of a pool share (host/modules/state/shared-sqlite.ts).
 */
export interface HtableStore {
  readonly tenantId: string;
  /** Items (live or not yet swept) and their bytes. */
  readonly size: number;
  readonly bytes: number;
  /** sht_lock/sht_unlock state and named iterators: per process in either store. */
  readonly locks: Map<string, LockState>;
  readonly iterators: Map<string, HtableIterator>;
  definition(table: string): ResolvedDefinition;
  get(table: string, key: string, now: number): HtableItem | undefined;
  set(table: string, key: string, value: HtableValue, expireSec: number, now: number): WriteFailure | undefined;
  add(table: string, key: string, delta: number, now: number): number | undefined;
  setExpire(table: string, key: string, expireSec: number, now: number): boolean;
  delete(table: string, key: string): boolean;
  reset(table: string): void;
  /** Live items of a table; the caller may delete the item it is given. */
  entries(table: string, now: number): Iterable<[string, HtableItem]>;
  tableNames(): string[];
  sweepStep(now: number, budget: number): { seen: number; finished: boolean };
}

/** All tables of one tenant, in this process's memory. */
export class TenantHtables implements HtableStore {
  private readonly tables = new Map<string, Map<string, HtableItem>>();
  private itemCount = 0;
  private byteCount = 0;
  /** Clock value of the last full sweep triggered by a full store. */
  private lastPressureSweep = Number.NEGATIVE_INFINITY;
  readonly locks = new Map<string, LockState>();
  readonly iterators = new Map<string, HtableIterator>();

  constructor(readonly tenantId: string) {}

  definition(table: string): ResolvedDefinition {
    return definitionFor(this.tenantId, table);
  }

  get size(): number {
    return this.itemCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** The live item, or undefined when missing or expired (an expired item is removed). */
  get(table: string, key: string, now: number): HtableItem | undefined {
    const items = this.tables.get(table);
    if (items === undefined) return undefined;
    const item = items.get(key);
    if (item === undefined) return undefined;
    if (isExpired(item, now)) {
      this.removeItem(table, items, key, item);
      return undefined;
    }
    return item;
  }

  /**
   * Store a value. `expireSec` > 0 gives the item its own expiry; otherwise
   * the table's autoexpire applies (restarted on update unless the table
   * says updateExpire: false).
   */
  set(table: string, key: string, value: HtableValue, expireSec: number, now: number): WriteFailure | undefined {
    const def = this.definition(table);
    const existing = this.get(table, key, now);
    if (existing !== undefined) {
      const grow = itemBytes(key, value) - itemBytes(key, existing.value);
      if (grow > 0 && this.byteCount + grow > limits.maxBytesPerTenant) return "bytes";
      this.byteCount += grow;
      existing.value = value;
      if (expireSec > 0) existing.expiresAt = now + expireSec * 1000;
      else if (def.updateExpire && def.autoExpireMs > 0) existing.expiresAt = now + def.autoExpireMs;
      return undefined;
    }
    const expiresAt = expireSec > 0 ? now + expireSec * 1000 : def.autoExpireMs > 0 ? now + def.autoExpireMs : 0;
    return this.insert(table, key, { value, expiresAt }, now);
  }

  /**
   * Add `delta` to an integer item and return the new value (32-bit wrap,
   * as Kamailio's int). A missing item starts from the table's initVal, or
   * the call fails (undefined) when the table has none; a string item
   * cannot be incremented (undefined).
   */
  add(table: string, key: string, delta: number, now: number): number | undefined {
    const def = this.definition(table);
    const item = this.get(table, key, now);
    if (item === undefined) {
      if (def.initVal === undefined) return undefined;
      const value = (def.initVal + delta) | 0;
      const failure = this.insert(table, key, { value, expiresAt: def.autoExpireMs > 0 ? now + def.autoExpireMs : 0 }, now);
      return failure === undefined ? value : undefined;
    }
    if (typeof item.value === "string") return undefined;
    item.value = (item.value + delta) | 0;
    if (def.updateExpire && def.autoExpireMs > 0) item.expiresAt = now + def.autoExpireMs;
    return item.value;
  }

  /**
   * Make the item exactly this (undefined: absent), outside the limits: a
   * change another server made to a shared table.
   */
  install(table: string, key: string, item: HtableItem | undefined): void {
    const items = this.tables.get(table);
    const existing = items?.get(key);
    if (existing !== undefined) this.removeItem(table, items!, key, existing);
    if (item === undefined) return;
    let target = this.tables.get(table);
    if (target === undefined) {
      target = new Map();
      this.tables.set(table, target);
    }
    target.set(key, item);
    this.itemCount++;
    this.byteCount += itemBytes(key, item.value);
  }

  /** Give an item a new expiry: seconds from now, or never for 0 or less. False when missing. */
  setExpire(table: string, key: string, expireSec: number, now: number): boolean {
    const item = this.get(table, key, now);
    if (item === undefined) return false;
    item.expiresAt = expireSec > 0 ? now + expireSec * 1000 : 0;
    return true;
  }

  delete(table: string, key: string): boolean {
    const items = this.tables.get(table);
    const item = items?.get(key);
    if (items === undefined || item === undefined) return false;
    this.removeItem(table, items, key, item);
    return true;
  }

  /** Remove every item of the table. */
  reset(table: string): void {
    const items = this.tables.get(table);
    if (items === undefined) return;
    for (const [key, item] of items) this.byteCount -= itemBytes(key, item.value);
    this.itemCount -= items.size;
    this.tables.delete(table);
  }

  /**
   * Live items of a table in storage order (expired ones are removed on the
   * way). The callback may delete the item it is given.
   */
  *entries(table: string, now: number): Generator<[string, HtableItem]> {
    const items = this.tables.get(table);
    if (items === undefined) return;
    for (const [key, item] of items) {
      if (isExpired(item, now)) {
        this.removeItem(table, items, key, item);
        continue;
      }
      yield [key, item];
    }
  }

  /** Names of the tables holding at least one item. */
  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  /** Remove every expired item (one pass over all the tenant's items). */
  sweepAll(now: number): void {
    for (const [table, items] of this.tables) {
      for (const [key, item] of items) if (isExpired(item, now)) this.removeItem(table, items, key, item);
    }
  }

  /**
   * Go on with the incremental sweep: look at up to `budget` more items,
   * removing the expired ones. `finished` when the pass over all items is
   * complete (the next call starts a new pass).
   */
  sweepStep(now: number, budget: number): { seen: number; finished: boolean } {
    this.sweepNow = now;
    this.sweepWalk ??= this.walkAll();
    let seen = 0;
    while (seen < budget) {
      if (this.sweepWalk.next().done === true) {
        this.sweepWalk = undefined;
        return { seen, finished: true };
      }
      seen++;
    }
    return { seen, finished: false };
  }

  private sweepWalk: Generator<void> | undefined;
  private sweepNow = 0;

  /** Visits every item once (Map iteration tolerates removals on the way). */
  private *walkAll(): Generator<void> {
    for (const [table, items] of this.tables) {
      for (const [key, item] of items) {
        if (isExpired(item, this.sweepNow)) this.removeItem(table, items, key, item);
        yield;
      }
    }
  }

  private insert(table: string, key: string, item: HtableItem, now: number): WriteFailure | undefined {
    let items = this.tables.get(table);
    const size = itemBytes(key, item.value);
    if (this.itemCount >= limits.maxItemsPerTenant || this.byteCount + size > limits.maxBytesPerTenant) {
      // Expired items may still be taking room; a full sweep costs one pass
      // over the tenant's items, so at most one per second of clock time.
      if (now - this.lastPressureSweep >= 1000) {
        this.lastPressureSweep = now;
        this.sweepAll(now);
        items = this.tables.get(table);
      }
      if (this.itemCount >= limits.maxItemsPerTenant) return "items";
      if (this.byteCount + size > limits.maxBytesPerTenant) return "bytes";
    }
    if (items === undefined) {
      if (this.tables.size >= limits.maxTablesPerTenant) return "tables";
      items = new Map();
      this.tables.set(table, items);
    }
    items.set(key, item);
    this.itemCount++;
    this.byteCount += size;
    return undefined;
  }

  private removeItem(table: string, items: Map<string, HtableItem>, key: string, item: HtableItem): void {
    items.delete(key);
    this.itemCount--;
    this.byteCount -= itemBytes(key, item.value);
    if (items.size === 0) this.tables.delete(table);
  }
}

let createStore: (tenantId: string) => HtableStore = (tenantId) => new TenantHtables(tenantId);

const stores = new TenantScoped((tenantId) => createStore(tenantId));

/** The tables of a tenant (created empty on first use). */
export function tenantHtables(tenantId: string): HtableStore {
  return stores.get(tenantId);
}

/**
 * Where tenants' tables live from now on (a worker of a pool shares them
 * through SQLite); tables created before are forgotten. Set once, at the
 * start of a process, before any message.
 */
export function setHtableBackend(create: (tenantId: string) => HtableStore): void {
  createStore = create;
  stores.clear();
}

/**
 * Remove expired items of all tenants, looking at no more than `budget`
 * items per call (so a periodic caller never stalls the event loop); each
 * call goes on where the previous one stopped. Returns the number of items
 * looked at.
 */
let sweepQueue: string[] = [];
export function sweepExpiredHtableItems(now: number, budget = 10_000): number {
  let seen = 0;
  if (sweepQueue.length === 0) sweepQueue = [...stores.tenants()].map(([id]) => id);
  while (sweepQueue.length > 0 && seen < budget) {
    const tables = stores.peek(sweepQueue[sweepQueue.length - 1]!);
    if (tables === undefined) {
      sweepQueue.pop();
      continue;
    }
    const step = tables.sweepStep(now, budget - seen);
    seen += step.seen;
    if (step.finished) sweepQueue.pop();
  }
  return seen;
}
