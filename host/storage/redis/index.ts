/**
 * The data services of `ksr run --store redis://HOST:PORT[/DB]`: what
 * several servers share through one Redis (see connection.ts for the
 * replica design and README "Several servers, one Redis").
 */
import { randomBytes } from "node:crypto";
import { DEFAULT_AUTH_SETTINGS, DEFAULT_REGISTRAR_SETTINGS, type DataServices, type DataServicesOptions } from "../index.js";
import { DEFAULT_NONCE_OPTIONS } from "../../auth/nonce.js";
import { setHtableBackend } from "../../modules/state/htable-store.js";
import { RedisConnection, type RedisConnectionOptions } from "./connection.js";
import { RedisLocationStore } from "./location.js";
import { RedisHtableReplica, RedisTenantHtables } from "./htable.js";
import { RedisNonceService } from "./nonce.js";
import { RedisAddressStore, RedisSubscriberStore } from "./tables.js";
import { SyncRedisCommands } from "./sync-command.js";

export interface RedisDataServicesOptions extends Omit<DataServicesOptions, "file" | "location" | "sharedBy"> {
  /** `redis://HOST:PORT[/DB]`. */
  readonly url: string;
  /**
   * The digest nonce secret every server of the service shares; without
   * one a random secret is used and nonces verify only on the server that
   * issued them.
   */
  readonly nonceSecret?: Buffer;
  /** Serve the tenants' shared htables from Redis (default true). */
  readonly htables?: boolean;
  readonly connection?: RedisConnectionOptions;
  /** Longest wait for a KSR.ndb_redis command's reply, ms (default 100); 0: no KSR.ndb_redis. */
  readonly ndbRedisTimeoutMs?: number;
}

export interface RedisDataServices extends DataServices {
  readonly connection: RedisConnection;
}

/**
 * Connect, load the shared data and build the services over it; rejects
 * with a message naming the URL when Redis cannot be reached.
 */
export async function openRedisDataServices(options: RedisDataServicesOptions): Promise<RedisDataServices> {
  const now = options.now ?? Date.now;
  const connection = await RedisConnection.create(options.url, options.connection);
  const locations = new RedisLocationStore(connection, now);
  const subscribers = new RedisSubscriberStore(connection);
  const addresses = new RedisAddressStore(connection);
  if (options.htables !== false) {
    const replica = new RedisHtableReplica(connection, now);
    setHtableBackend((tenantId) => new RedisTenantHtables(tenantId, replica));
  }
  let nonces: RedisNonceService;
  try {
    await connection.commands.connect();
    nonces = await RedisNonceService.open(connection, options.nonceSecret ?? randomBytes(32), { ...DEFAULT_NONCE_OPTIONS, ...options.nonce }, now);
  } catch (err) {
    connection.close();
    throw new Error(`cannot connect to ${connection.target.display}: ${(err as Error)?.message ?? String(err)}`);
  }
  await connection.connect();
  const ndbRedisTimeoutMs = options.ndbRedisTimeoutMs ?? 100;
  const ndbRedis = ndbRedisTimeoutMs > 0 ? new SyncRedisCommands(connection.target, ndbRedisTimeoutMs) : undefined;
  const intervalMs = options.sweepIntervalMs ?? 10_000;
  const batch = options.sweepBatch ?? 1000;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  return {
    connection,
    locations,
    subscribers,
    addresses,
    registrar: { ...DEFAULT_REGISTRAR_SETTINGS, ...options.registrar },
    auth: { ...DEFAULT_AUTH_SETTINGS, ...options.auth },
    nonces,
    ...(ndbRedis !== undefined ? { ndbRedis } : {}),
    startSweeper() {
      if (timer !== undefined || closed) return;
      timer = setInterval(() => locations.sweepExpired(now(), batch), intervalMs);
      timer.unref();
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      ndbRedis?.close();
      connection.close();
    },
  };
}
