/**
 * The subscriber (auth_db) and address (permissions) tables over Redis:
 * one hash per tenant and table, `ksr:<tenant>:sub` (field: the JSON pair
 * [username, domain], value: the row as JSON) and `ksr:<tenant>:addr`
 * (field: a random id, value: the entry as JSON). Each server answers
 * from a replica in a private in-memory SQLite database, so the queries
 * (user and domain rules, CIDR matching) are the embedded store's own; a
 * change (`ksr subscriber|address … --store redis://…`) is written with a
 * Lua script that announces it, and every server applies it to its replica.
 * Address ids are the replica's own row ids, so they may differ between
 * servers; entries are removed by group, network and port as before.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { log } from "../../core/log.js";
import { openSqlite, SqliteAddressStore, SqliteSubscriberStore, type Db } from "../sqlite.js";
import type { AddressEntry, AddressStore, Subscriber, SubscriberStore } from "../types.js";
import type { RedisConnection, Replica } from "./connection.js";
import { CHANNEL, KEY_ROOT, splitTenantKey, tenantKey, type ReplicaMessage } from "./keys.js";

/** ARGV: channel, origin, replica, field, value ('' deletes). */
const WRITE_FIELD = `
if ARGV[5] == '' then
  if redis.call('HDEL', KEYS[1], ARGV[4]) == 0 then return 0 end
  redis.call('PUBLISH', ARGV[1], cjson.encode({r = ARGV[3], o = ARGV[2], k = KEYS[1], f = ARGV[4]}))
else
  redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
  redis.call('PUBLISH', ARGV[1], cjson.encode({r = ARGV[3], o = ARGV[2], k = KEYS[1], f = ARGV[4], v = ARGV[5]}))
end
return 1
`;

type WriteField = (key: string, channel: string, origin: string, replica: string, field: string, value: string) => Promise<number>;

/** The Lua writer shared by both tables (defined once per connection). */
function fieldWriter(connection: RedisConnection): WriteField {
  const redis = connection.commands as unknown as Redis & { ksrWriteField?: WriteField };
  if (redis.ksrWriteField === undefined) redis.defineCommand("ksrWriteField", { numberOfKeys: 1, lua: WRITE_FIELD });
  return redis.ksrWriteField!.bind(redis);
}

/** Every hash of one kind: tenant and its fields. */
async function loadHashes(redis: Redis, kind: string): Promise<{ tenant: string; fields: Record<string, string> }[]> {
  const out: { tenant: string; fields: Record<string, string> }[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${KEY_ROOT}:*:${kind}`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) {
      const parts = splitTenantKey(key);
      if (parts?.kind !== kind || parts.parts.length !== 0) continue;
      out.push({ tenant: parts.tenant, fields: await redis.hgetall(key) });
    }
  } while (cursor !== "0");
  return out;
}

function send(connection: RedisConnection, write: WriteField, key: string, replica: string, field: string, value: string): void {
  write(key, CHANNEL, connection.origin, replica, field, value).catch((err: unknown) =>
    log("err", "redis", `writing ${replica} ${field} failed: ${(err as Error)?.message ?? String(err)}`),
  );
}

abstract class SqliteReplica implements Replica {
  protected db: Db = openSqlite(":memory:");
  protected readonly write: WriteField;

  constructor(
    readonly name: string,
    protected readonly connection: RedisConnection,
  ) {
    this.write = fieldWriter(connection);
    connection.register(this);
  }

  abstract reload(redis: Redis): Promise<void>;
  abstract apply(message: ReplicaMessage): void;

  /** Replace the database (a reload): the stores over the old one are rebuilt. */
  protected fresh(): Db {
    const previous = this.db;
    this.db = openSqlite(":memory:");
    previous.close();
    return this.db;
  }
}

const SUB = "sub";

export class RedisSubscriberStore extends SqliteReplica implements SubscriberStore {
  private rows = new SqliteSubscriberStore(this.db);

  constructor(connection: RedisConnection) {
    super(SUB, connection);
  }

  async reload(redis: Redis): Promise<void> {
    const hashes = await loadHashes(redis, SUB);
    const rows = new SqliteSubscriberStore(this.fresh());
    for (const { tenant, fields } of hashes) {
      for (const json of Object.values(fields)) rows.put(tenant, JSON.parse(json) as Subscriber);
    }
    this.rows = rows;
  }

  apply(message: ReplicaMessage): void {
    const parts = splitTenantKey(message.k);
    if (parts?.kind !== SUB) return;
    const value = message["v"];
    if (typeof value === "string") {
      this.rows.put(parts.tenant, JSON.parse(value) as Subscriber);
      return;
    }
    const [username, domain] = JSON.parse(String(message["f"])) as [string, string];
    this.rows.remove(parts.tenant, username, domain);
  }

  find(tenant: string, username: string, domain: string): Subscriber | undefined {
    return this.rows.find(tenant, username, domain);
  }

  findByUsername(tenant: string, username: string): readonly Subscriber[] {
    return this.rows.findByUsername(tenant, username);
  }

  put(tenant: string, subscriber: Subscriber): void {
    this.connection.ensureAvailable();
    this.rows.put(tenant, subscriber);
    send(this.connection, this.write, tenantKey(tenant, SUB), SUB, JSON.stringify([subscriber.username, subscriber.domain]), JSON.stringify(subscriber));
  }

  remove(tenant: string, username: string, domain: string): boolean {
    this.connection.ensureAvailable();
    const had = this.rows.remove(tenant, username, domain);
    send(this.connection, this.write, tenantKey(tenant, SUB), SUB, JSON.stringify([username, domain]), "");
    return had;
  }

  list(tenant: string): readonly Subscriber[] {
    return this.rows.list(tenant);
  }
}

const ADDR = "addr";

type StoredAddress = Omit<AddressEntry, "id">;

export class RedisAddressStore extends SqliteReplica implements AddressStore {
  private rows = new SqliteAddressStore(this.db);

  constructor(connection: RedisConnection) {
    super(ADDR, connection);
  }
  /** The Redis field of each stored entry, per tenant, in the order added. */
  private fields = new Map<string, Map<string, StoredAddress>>();

  async reload(redis: Redis): Promise<void> {
    const hashes = await loadHashes(redis, ADDR);
    const rows = new SqliteAddressStore(this.fresh());
    const fields = new Map<string, Map<string, StoredAddress>>();
    for (const { tenant, fields: stored } of hashes) {
      const mine = new Map<string, StoredAddress>();
      for (const [field, json] of Object.entries(stored)) {
        const entry = JSON.parse(json) as StoredAddress;
        mine.set(field, entry);
        rows.add(tenant, entry);
      }
      fields.set(tenant, mine);
    }
    this.rows = rows;
    this.fields = fields;
  }

  apply(message: ReplicaMessage): void {
    if (message.o === this.connection.origin) return;
    const parts = splitTenantKey(message.k);
    if (parts?.kind !== ADDR) return;
    const field = String(message["f"]);
    const value = message["v"];
    if (typeof value === "string") this.insert(parts.tenant, field, JSON.parse(value) as StoredAddress);
    else this.drop(parts.tenant, field);
  }

  match(tenant: string, group: number, ip: string, port: number): AddressEntry | undefined {
    return this.rows.match(tenant, group, ip, port);
  }

  matchAnyGroup(tenant: string, ip: string, port: number): AddressEntry | undefined {
    return this.rows.matchAnyGroup(tenant, ip, port);
  }

  add(tenant: string, entry: StoredAddress): AddressEntry {
    this.connection.ensureAvailable();
    const field = randomBytes(8).toString("hex");
    const stored = this.insert(tenant, field, entry);
    send(this.connection, this.write, tenantKey(tenant, ADDR), ADDR, field, JSON.stringify(entry));
    return stored;
  }

  remove(tenant: string, group: number, ip: string, mask: number, port?: number): number {
    this.connection.ensureAvailable();
    const doomed = [...(this.fields.get(tenant) ?? [])].filter(
      ([, e]) => e.group === group && e.ip === ip && e.mask === mask && (port === undefined || e.port === port),
    );
    for (const [field] of doomed) {
      this.drop(tenant, field);
      send(this.connection, this.write, tenantKey(tenant, ADDR), ADDR, field, "");
    }
    return doomed.length;
  }

  list(tenant: string): readonly AddressEntry[] {
    return this.rows.list(tenant);
  }

  private insert(tenant: string, field: string, entry: StoredAddress): AddressEntry {
    let mine = this.fields.get(tenant);
    if (mine === undefined) {
      mine = new Map();
      this.fields.set(tenant, mine);
    }
    mine.set(field, entry);
    return this.rows.add(tenant, entry);
  }

  /** Remove the entry stored under the field (rows equal to it are one row each in the replica). */
  private drop(tenant: string, field: string): void {
    const mine = this.fields.get(tenant);
    const entry = mine?.get(field);
    if (entry === undefined) return;
    mine!.delete(field);
    this.rows.remove(tenant, entry.group, entry.ip, entry.mask, entry.port);
    // Entries equal to it under other fields are still stored: put them back.
    for (const other of mine!.values()) {
      if (other.group === entry.group && other.ip === entry.ip && other.mask === entry.mask && other.port === entry.port) this.rows.add(tenant, other);
    }
  }
}
