/**
 * Shared htables over Redis: the tables a definition marks `shared` live in
 * Redis, one string key per item, `ksr:<tenant>:ht:<table>:<key>`, holding
 * `i:<integer>` or `s:<string>` and expiring with the item (PEXPIRE). Every
 * server keeps a replica of them (see connection.ts) and serves reads from
 * it; a write changes the replica and goes to Redis with a Lua script that
 * writes and announces the item's new state. The tenant's other tables stay
 * in this process's memory.
 *
 * sht_inc/sht_dec run as one Lua script in Redis (read, add with Kamailio's
 * 32-bit wrap, write): no increment made through any server is lost, and
 * every replica ends at the value Redis computed. The value a script gets
 * back is computed from this server's replica, so it lags increments made
 * through other servers less than one announcement ago.
 */
import type { Redis } from "ioredis";
import { log } from "../../core/log.js";
import {
  definitionFor,
  TenantHtables,
  type HtableItem,
  type HtableIterator,
  type HtableStore,
  type HtableValue,
  type LockState,
  type ResolvedDefinition,
  type WriteFailure,
} from "../../modules/state/htable-store.js";
import type { RedisConnection, Replica } from "./connection.js";
import { CHANNEL, KEY_ROOT, PendingWrites, splitTenantKey, tenantKey, type ReplicaMessage } from "./keys.js";

const REPLICA = "ht";

const SET_ITEM = `
local at = tonumber(ARGV[4])
if at > 0 then
  local ttl = at - tonumber(ARGV[5])
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[3])
end
redis.call('PUBLISH', ARGV[1], cjson.encode({r = '${REPLICA}', o = ARGV[2], k = KEYS[1], v = ARGV[3], x = at}))
return 1
`;

/** ARGV: channel, origin, delta, initval ('' none), autoexpire ms, updateexpire 0/1, now ms. */
const ADD_ITEM = `
local current = redis.call('GET', KEYS[1])
local value
local fresh = false
if not current then
  if ARGV[4] == '' then return false end
  value = tonumber(ARGV[4])
  fresh = true
else
  if string.sub(current, 1, 2) ~= 'i:' then return false end
  value = tonumber(string.sub(current, 3))
end
value = (value + tonumber(ARGV[3])) % 4294967296
if value >= 2147483648 then value = value - 4294967296 end
local encoded = 'i:' .. string.format('%d', value)
local auto = tonumber(ARGV[5])
local now = tonumber(ARGV[7])
local at = 0
if auto > 0 and (fresh or ARGV[6] == '1') then
  redis.call('SET', KEYS[1], encoded, 'PX', auto)
  at = now + auto
else
  redis.call('SET', KEYS[1], encoded, 'KEEPTTL')
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then at = now + ttl end
end
redis.call('PUBLISH', ARGV[1], cjson.encode({r = '${REPLICA}', o = ARGV[2], k = KEYS[1], v = encoded, x = at}))
return value
`;

/** ARGV: channel, origin, expires at (0 never), now. */
const EXPIRE_ITEM = `
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local at = tonumber(ARGV[3])
if at > 0 then
  local ttl = at - tonumber(ARGV[4])
  if ttl < 1 then ttl = 1 end
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
redis.call('PUBLISH', ARGV[1], cjson.encode({r = '${REPLICA}', o = ARGV[2], k = KEYS[1], v = value, x = at}))
return 1
`;

const DELETE_ITEM = `
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], cjson.encode({r = '${REPLICA}', o = ARGV[2], k = KEYS[1]}))
return 1
`;

type Script = (key: string, ...args: (string | number)[]) => Promise<unknown>;

function encode(value: HtableValue): string {
  return typeof value === "number" ? `i:${value}` : `s:${value}`;
}

function decode(text: string): HtableValue | undefined {
  if (text.startsWith("i:")) {
    const n = Number(text.slice(2));
    return Number.isInteger(n) ? n : undefined;
  }
  return text.startsWith("s:") ? text.slice(2) : undefined;
}

/** The shared tables of every tenant, as this server last heard of them. */
export class RedisHtableReplica implements Replica {
  readonly name = REPLICA;
  private readonly tenants = new Map<string, TenantHtables>();
  private readonly pending = new PendingWrites();
  private readonly scripts: Record<"set" | "add" | "expire" | "delete", Script>;

  constructor(
    readonly connection: RedisConnection,
    private readonly now: () => number,
  ) {
    const redis = connection.commands;
    redis.defineCommand("ksrHtSet", { numberOfKeys: 1, lua: SET_ITEM });
    redis.defineCommand("ksrHtAdd", { numberOfKeys: 1, lua: ADD_ITEM });
    redis.defineCommand("ksrHtExpire", { numberOfKeys: 1, lua: EXPIRE_ITEM });
    redis.defineCommand("ksrHtDelete", { numberOfKeys: 1, lua: DELETE_ITEM });
    const commands = redis as unknown as Record<string, Script>;
    this.scripts = {
      set: commands["ksrHtSet"]!.bind(redis),
      add: commands["ksrHtAdd"]!.bind(redis),
      expire: commands["ksrHtExpire"]!.bind(redis),
      delete: commands["ksrHtDelete"]!.bind(redis),
    };
    connection.register(this);
  }

  /** The tenant's shared tables (created empty on first use). */
  tables(tenantId: string): TenantHtables {
    let tables = this.tenants.get(tenantId);
    if (tables === undefined) {
      tables = new TenantHtables(tenantId);
      this.tenants.set(tenantId, tables);
    }
    return tables;
  }

  async reload(redis: Redis): Promise<void> {
    const found: { tenant: string; table: string; key: string; item: HtableItem }[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${KEY_ROOT}:*:${REPLICA}:*`, "COUNT", 1000);
      cursor = next;
      const wanted = keys.map((k) => ({ key: k, parts: splitTenantKey(k) })).filter((k) => k.parts?.kind === REPLICA && k.parts.parts.length === 2);
      if (wanted.length === 0) continue;
      const pipeline = redis.pipeline();
      for (const w of wanted) pipeline.get(w.key).pttl(w.key);
      const replies = (await pipeline.exec()) ?? [];
      const now = this.now();
      wanted.forEach((w, i) => {
        const text = replies[2 * i]?.[1];
        const ttl = Number(replies[2 * i + 1]?.[1] ?? -2);
        const value = typeof text === "string" ? decode(text) : undefined;
        if (value === undefined || ttl === -2) return;
        const [table, key] = w.parts!.parts as [string, string];
        found.push({ tenant: w.parts!.tenant, table, key, item: { value, expiresAt: ttl > 0 ? now + ttl : 0 } });
      });
    } while (cursor !== "0");
    this.pending.clear();
    for (const tables of this.tenants.values()) for (const name of tables.tableNames()) tables.reset(name);
    for (const f of found) this.tables(f.tenant).install(f.table, f.key, f.item);
  }

  apply(message: ReplicaMessage): void {
    const parts = splitTenantKey(message.k);
    if (parts === undefined || parts.kind !== REPLICA || parts.parts.length !== 2) return;
    if (!this.pending.settle(message.k, message.o === this.connection.origin)) return;
    const [table, key] = parts.parts as [string, string];
    const text = message["v"];
    const value = typeof text === "string" ? decode(text) : undefined;
    const at = Number(message["x"] ?? 0);
    this.tables(parts.tenant).install(table, key, value === undefined ? undefined : { value, expiresAt: Number.isFinite(at) ? at : 0 });
  }

  /** Send a write of the item; the replica already holds its new state. */
  write(kind: "set" | "add" | "expire" | "delete", key: string, args: (string | number)[]): void {
    this.pending.begin(key);
    this.scripts[kind](key, CHANNEL, this.connection.origin, ...args)
      .then((result) => {
        // A script that changed nothing announces nothing.
        if (result === null || result === 0) this.pending.abandon(key);
      })
      .catch((err: unknown) => {
        this.pending.abandon(key);
        log("err", "redis", `htable ${kind} of ${key} failed: ${(err as Error)?.message ?? String(err)}`);
      });
  }

  /** Remove every item of a shared table from Redis (the replica is already empty). */
  resetInRedis(tenantId: string, table: string): void {
    const pattern = `${tenantKey(tenantId, REPLICA, table)}:*`;
    const redis = this.connection.commands;
    void (async () => {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        for (const key of keys) this.write("delete", key, []);
      } while (cursor !== "0");
    })().catch((err: unknown) => log("err", "redis", `resetting htable ${table} failed: ${(err as Error)?.message ?? String(err)}`));
  }
}

/** A tenant's htables: shared ones through the replica, the others in this process. */
export class RedisTenantHtables implements HtableStore {
  private readonly local: TenantHtables;
  private readonly shared: TenantHtables;
  readonly locks = new Map<string, LockState>();
  readonly iterators = new Map<string, HtableIterator>();

  constructor(
    readonly tenantId: string,
    private readonly replica: RedisHtableReplica,
  ) {
    this.local = new TenantHtables(tenantId);
    this.shared = replica.tables(tenantId);
  }

  get size(): number {
    return this.local.size + this.shared.size;
  }

  get bytes(): number {
    return this.local.bytes + this.shared.bytes;
  }

  definition(table: string): ResolvedDefinition {
    return definitionFor(this.tenantId, table);
  }

  private isShared(table: string): boolean {
    return this.definition(table).shared;
  }

  private key(table: string, key: string): string {
    return tenantKey(this.tenantId, REPLICA, table, key);
  }

  /** Shared tables are read from the replica even while Redis is away (as a reply cache would be). */
  get(table: string, key: string, now: number): HtableItem | undefined {
    return (this.isShared(table) ? this.shared : this.local).get(table, key, now);
  }

  set(table: string, key: string, value: HtableValue, expireSec: number, now: number): WriteFailure | undefined {
    if (!this.isShared(table)) return this.local.set(table, key, value, expireSec, now);
    if (!this.replica.connection.available) return "unavailable";
    const failure = this.shared.set(table, key, value, expireSec, now);
    if (failure !== undefined) return failure;
    const item = this.shared.get(table, key, now)!;
    this.replica.write("set", this.key(table, key), [encode(item.value), item.expiresAt, now]);
    return undefined;
  }

  add(table: string, key: string, delta: number, now: number): number | undefined {
    if (!this.isShared(table)) return this.local.add(table, key, delta, now);
    if (!this.replica.connection.available) return undefined;
    const value = this.shared.add(table, key, delta, now);
    if (value === undefined) return undefined;
    const def = this.definition(table);
    this.replica.write("add", this.key(table, key), [delta, def.initVal === undefined ? "" : def.initVal, def.autoExpireMs, def.updateExpire ? 1 : 0, now]);
    return value;
  }

  setExpire(table: string, key: string, expireSec: number, now: number): boolean {
    if (!this.isShared(table)) return this.local.setExpire(table, key, expireSec, now);
    if (!this.replica.connection.available) return false;
    if (!this.shared.setExpire(table, key, expireSec, now)) return false;
    const item = this.shared.get(table, key, now)!;
    this.replica.write("expire", this.key(table, key), [item.expiresAt, now]);
    return true;
  }

  delete(table: string, key: string): boolean {
    if (!this.isShared(table)) return this.local.delete(table, key);
    if (!this.replica.connection.available) return false;
    const had = this.shared.delete(table, key);
    this.replica.write("delete", this.key(table, key), []);
    return had;
  }

  reset(table: string): void {
    if (!this.isShared(table)) return this.local.reset(table);
    if (!this.replica.connection.available) {
      log("err", "redis", `htable ${table}: not reset, the shared store is unavailable`);
      return;
    }
    this.shared.reset(table);
    this.replica.resetInRedis(this.tenantId, table);
  }

  *entries(table: string, now: number): Generator<[string, HtableItem]> {
    if (!this.isShared(table)) {
      yield* this.local.entries(table, now);
      return;
    }
    // The caller may delete the item it is given: through this store, so Redis follows.
    for (const [key, item] of [...this.shared.entries(table, now)]) yield [key, item];
  }

  tableNames(): string[] {
    return [...new Set([...this.local.tableNames(), ...this.shared.tableNames()])];
  }

  /** Expired items leave the replica by themselves; Redis expires its keys on its own. */
  sweepStep(now: number, budget: number): { seen: number; finished: boolean } {
    const local = this.local.sweepStep(now, budget);
    if (!local.finished) return local;
    const shared = this.shared.sweepStep(now, budget - local.seen);
    return { seen: local.seen + shared.seen, finished: shared.finished };
  }
}
