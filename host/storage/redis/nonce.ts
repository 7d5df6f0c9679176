/**
 * Digest nonces several servers share: every server signs with the secret
 * of the configuration (`--nonce-secret-file`), so a nonce one server
 * issued verifies on any; each issues ids of its own lane (taken from a
 * Redis counter at start), so two servers never issue the same nonce.
 *
 * One-time use and the nonce-count rule (RFC 2617 §3.2.2) hold across the
 * servers through Redis: a verified use is written to
 * `ksr:<tenant>:nonce:<id>:<expiry ms>` (the highest nc, expiring with the
 * nonce) by a Lua script that announces it, and every server enters the
 * announced uses in its own table, reloaded from Redis after a reconnect.
 * A verification is answered from this server's table (synchronously); a
 * replay sent to a second server before the first use's announcement
 * reached it (on one LAN, well under a millisecond) is accepted there, and
 * the script that records it tells and logs it.
 */
import type { Redis } from "ioredis";
import { log } from "../../core/log.js";
import { NonceService, type CheckedNonce, type NonceOptions } from "../../auth/nonce.js";
import type { RedisConnection, Replica } from "./connection.js";
import { CHANNEL, KEY_ROOT, splitTenantKey, tenantKey, type ReplicaMessage } from "./keys.js";

const REPLICA = "nonce";

/** ARGV: channel, origin, nc (0: without qop), ttl ms. Returns 1 when the use was a replay Redis had seen. */
const USE_NONCE = `
local current = redis.call('GET', KEYS[1])
local nc = tonumber(ARGV[3])
local replay = 0
if current then
  local last = tonumber(current)
  if nc == 0 or last == 0 or nc <= last then replay = 1 end
end
if not current or nc > tonumber(current) then
  redis.call('SET', KEYS[1], nc, 'PX', ARGV[4])
  redis.call('PUBLISH', ARGV[1], cjson.encode({r = '${REPLICA}', o = ARGV[2], k = KEYS[1], n = nc}))
end
return replay
`;

/** Ids per lane: the lane count; a server's lane is a Redis counter modulo this. */
const LANES = 1024;

type UseNonce = (key: string, channel: string, origin: string, nc: number, ttlMs: number) => Promise<number>;

export class RedisNonceService extends NonceService implements Replica {
  readonly name = REPLICA;
  private readonly useNonce: UseNonce;

  private constructor(
    private readonly connection: RedisConnection,
    secret: Buffer,
    options: NonceOptions,
    lane: number,
    private readonly now: () => number,
  ) {
    super(secret, options, { index: lane, count: LANES });
    connection.commands.defineCommand("ksrUseNonce", { numberOfKeys: 1, lua: USE_NONCE });
    this.useNonce = (connection.commands as unknown as { ksrUseNonce: UseNonce }).ksrUseNonce.bind(connection.commands);
    connection.register(this);
  }

  /** A service with a lane of its own (INCR of a shared counter). */
  static async open(connection: RedisConnection, secret: Buffer, options: NonceOptions, now: () => number): Promise<RedisNonceService> {
    const n = await connection.commands.incr(`${KEY_ROOT}:nonce-lane`);
    return new RedisNonceService(connection, secret, options, n % LANES, now);
  }

  /** Every server verifies every server's nonces: the use table is shared. */
  protected override tracksUseOf(): boolean {
    return true;
  }

  override commit(checked: CheckedNonce, nowMs: number): void {
    super.commit(checked, nowMs);
    const cut = checked.key.indexOf("\u0000");
    const tenant = checked.key.slice(0, cut);
    const id = checked.key.slice(cut + 1);
    const key = tenantKey(tenant, REPLICA, id, String(checked.expiresAtMs));
    // While Redis is away the use waits in ioredis's queue and is written when it is back.
    this.useNonce(key, CHANNEL, this.connection.origin, checked.nc ?? 0, Math.max(1, checked.expiresAtMs - nowMs))
      .then((replay) => {
        if (replay === 1) log("warn", "auth", `nonce ${id} of tenant ${tenant} was used through two servers before the first use reached the second`);
      })
      .catch((err: unknown) => log("err", "redis", `recording a nonce use failed: ${(err as Error)?.message ?? String(err)}`));
  }

  async reload(redis: Redis): Promise<void> {
    const uses: CheckedNonce[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${KEY_ROOT}:*:${REPLICA}:*`, "COUNT", 1000);
      cursor = next;
      const wanted = keys.filter((k) => splitTenantKey(k)?.kind === REPLICA);
      if (wanted.length === 0) continue;
      const values = await redis.mget(...wanted);
      wanted.forEach((key, i) => {
        const use = this.useOf(key, Number(values[i]));
        if (use !== undefined) uses.push(use);
      });
    } while (cursor !== "0");
    this.used.clear();
    const now = this.now();
    for (const use of uses.sort((a, b) => a.expiresAtMs - b.expiresAtMs)) if (use.expiresAtMs > now) this.record(use, now);
  }

  apply(message: ReplicaMessage): void {
    if (message.o === this.connection.origin) return;
    const use = this.useOf(message.k, Number(message["n"]));
    if (use !== undefined) this.record(use, this.now());
  }

  private useOf(key: string, nc: number): CheckedNonce | undefined {
    const parts = splitTenantKey(key);
    if (parts === undefined || parts.kind !== REPLICA || parts.parts.length !== 2 || !Number.isInteger(nc)) return undefined;
    const [id, expires] = parts.parts as [string, string];
    const expiresAtMs = Number(expires);
    if (!/^\d+$/.test(id) || !Number.isFinite(expiresAtMs)) return undefined;
    return { key: `${parts.tenant}\u0000${id}`, expiresAtMs, nc: nc === 0 ? undefined : nc };
  }
}
