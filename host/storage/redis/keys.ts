/**
 * What the shared store's code needs without a connection (so that the CLI
 * and the KSR modules do not load the Redis client until a store is used):
 * store URLs, the key layout, the replica messages, the unavailable error,
 * and the pending-write rule of the replicas.
 */
/** Where a store URL points: `redis://[user:pass@]HOST:PORT[/DB]`. */
export interface RedisTarget {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  /** The URL without its password, for log lines. */
  readonly display: string;
}

/** Parse `--store`; throws a message naming what is wrong. */
export function parseRedisUrl(text: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${text}" is not a URL; expected redis://HOST:PORT[/DB]`);
  }
  if (url.protocol !== "redis:") throw new Error(`"${text}": only redis:// stores are supported`);
  if (url.hostname === "") throw new Error(`"${text}": no host`);
  const port = url.port === "" ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) throw new Error(`"${text}": the path must be a database number`);
  const db = path === "" ? 0 : Number(path);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return {
    host,
    port,
    db,
    ...(url.username !== "" ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== "" ? { password: decodeURIComponent(url.password) } : {}),
    display: `redis://${url.host}/${db}`,
  };
}

/** The key prefix every key of this project starts with (one Redis may serve other applications too). */
export const KEY_ROOT = "ksr";

/**
 * The key of a tenant's item: `ksr:<tenant>:<kind>:<part>:…`, each part
 * percent-encoded so that a ":" inside a tenant id, table name or AoR cannot
 * make two different items share a key, and a tenant's keys all start with
 * {@link tenantPrefix}.
 */
export function tenantKey(tenant: string, kind: string, ...parts: readonly string[]): string {
  return [tenantPrefix(tenant) + kind, ...parts.map(encodeURIComponent)].join(":");
}

/** Every key of the tenant starts with this (ndb_redis scripts are held inside it). */
export function tenantPrefix(tenant: string): string {
  return `${KEY_ROOT}:${encodeURIComponent(tenant)}:`;
}

/** The parts of a key made by tenantKey: tenant, kind, parts. Undefined for a key of another shape. */
export function splitTenantKey(key: string): { tenant: string; kind: string; parts: string[] } | undefined {
  const fields = key.split(":");
  if (fields.length < 3 || fields[0] !== KEY_ROOT) return undefined;
  try {
    return { tenant: decodeURIComponent(fields[1]!), kind: fields[2]!, parts: fields.slice(3).map(decodeURIComponent) };
  } catch {
    return undefined;
  }
}

/** One message on the shared channel: which replica it is for, who wrote, and what. */
export interface ReplicaMessage {
  /** The replica ("loc", "ht", …). */
  readonly r: string;
  /** The writing connection's id. */
  readonly o: string;
  /** The key written. */
  readonly k: string;
  readonly [field: string]: unknown;
}

/** The channel all writes are announced on. */
export const CHANNEL = `${KEY_ROOT}:replica`;

/** Thrown by a shared store used while Redis is away; the KSR layer turns it into its error code. */
export class StoreUnavailableError extends Error {
  constructor() {
    super("the shared store (Redis) is unavailable");
  }
}

/**
 * Per key, the writes this server made that Redis has not announced back
 * yet. While a key has some, announcements of other servers' writes to it
 * are skipped: each of ours comes back later carrying the state after it,
 * which includes theirs if Redis ran theirs first. Only the announcement of
 * our last pending write is installed, so the replica never steps back to
 * the state after an earlier write of ours.
 */
export class PendingWrites {
  private readonly counts = new Map<string, number>();

  begin(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** An announcement for the key arrived; whether to install its state. */
  settle(key: string, ours: boolean): boolean {
    const n = this.counts.get(key);
    if (n === undefined) return true;
    if (!ours) return false;
    if (n <= 1) {
      this.counts.delete(key);
      return true;
    }
    this.counts.set(key, n - 1);
    return false;
  }

  /** A write failed in Redis: it will not be announced. */
  abandon(key: string): void {
    const n = this.counts.get(key);
    if (n === undefined) return;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  clear(): void {
    this.counts.clear();
  }
}
