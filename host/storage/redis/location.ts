/**
 * The location table over Redis: one hash per AoR,
 * `ksr:<tenant>:loc:<table>:<aor>`, field = ruid, value = the binding as
 * JSON; the hash expires with its longest-lived binding (PEXPIRE), and a
 * binding's own `expires` field decides its validity as in one process.
 *
 * Every server serves `lookup` from its replica (CachedLocationStore) and
 * writes a `save`'s changes with one Lua script that deletes and sets the
 * changed fields and announces the AoR's whole resulting hash, which every
 * server (the writer included) installs in its replica. Two servers
 * changing different contacts of one AoR at once do not overwrite each
 * other (each writes only its own fields).
 */
import type { Redis } from "ioredis";
import { log } from "../../core/log.js";
import { CachedLocationStore, type StoredBinding } from "../location.js";
import type { Binding } from "../types.js";
import type { RedisConnection, Replica } from "./connection.js";
import { CHANNEL, KEY_ROOT, PendingWrites, splitTenantKey, tenantKey, type ReplicaMessage } from "./keys.js";

const REPLICA = "loc";

/** KEYS[1] the AoR hash; ARGV: channel, origin, ttl ms (0: leave), deletion count, ruids to delete, then ruid/JSON pairs. */
const WRITE_AOR = `
local key = KEYS[1]
local deletions = tonumber(ARGV[4])
local i = 5
for _ = 1, deletions do redis.call('HDEL', key, ARGV[i]); i = i + 1 end
while i < #ARGV do redis.call('HSET', key, ARGV[i], ARGV[i + 1]); i = i + 2 end
local ttl = tonumber(ARGV[3])
if ttl > 0 and redis.call('EXISTS', key) == 1 then
  local current = redis.call('PTTL', key)
  if current < ttl then redis.call('PEXPIRE', key, ttl) end
end
local state = redis.call('HGETALL', key)
redis.call('PUBLISH', ARGV[1], cjson.encode({r = '${REPLICA}', o = ARGV[2], k = key, v = state}))
return #state
`;

type WriteAor = (key: string, ...args: (string | number)[]) => Promise<number>;

function parseBinding(json: string): Binding | undefined {
  try {
    const b = JSON.parse(json) as Binding;
    return typeof b.ruid === "string" && typeof b.aor === "string" && typeof b.expires === "number" ? b : undefined;
  } catch {
    return undefined;
  }
}

/** The bindings of a flat HGETALL reply ([field, value, …]; cjson makes an empty one `{}`). */
function bindingsOfFlat(flat: unknown): Binding[] {
  if (!Array.isArray(flat)) return [];
  const out: Binding[] = [];
  for (let i = 1; i < flat.length; i += 2) {
    const b = parseBinding(String(flat[i]));
    if (b !== undefined) out.push(b);
  }
  return out;
}

export class RedisLocationStore extends CachedLocationStore implements Replica {
  readonly name = REPLICA;
  private readonly pending = new PendingWrites();
  private readonly writeAor: WriteAor;
  /** Set while a sweep removes expired bindings from the replica only. */
  private sweeping = false;

  constructor(
    private readonly connection: RedisConnection,
    private readonly now: () => number,
  ) {
    super(undefined, now());
    connection.commands.defineCommand("ksrWriteAor", { numberOfKeys: 1, lua: WRITE_AOR });
    this.writeAor = (connection.commands as unknown as { ksrWriteAor: WriteAor }).ksrWriteAor.bind(connection.commands);
    connection.register(this);
  }

  async reload(redis: Redis): Promise<void> {
    const now = this.now();
    const loaded: StoredBinding[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${KEY_ROOT}:*:${REPLICA}:*`, "COUNT", 1000);
      cursor = next;
      const wanted = keys.map((k) => ({ key: k, parts: splitTenantKey(k) })).filter((k) => k.parts?.kind === REPLICA && k.parts.parts.length === 2);
      if (wanted.length === 0) continue;
      const pipeline = redis.pipeline();
      for (const w of wanted) pipeline.hgetall(w.key);
      const replies = (await pipeline.exec()) ?? [];
      wanted.forEach((w, i) => {
        const [error, hash] = replies[i] ?? [null, {}];
        if (error !== null) return;
        const [table, aor] = w.parts!.parts as [string, string];
        for (const json of Object.values(hash as Record<string, string>)) {
          const binding = parseBinding(json);
          if (binding !== undefined && binding.aor === aor && binding.expires > now) loaded.push({ tenant: w.parts!.tenant, table, binding });
        }
      });
    } while (cursor !== "0");
    this.pending.clear();
    this.fill(loaded);
  }

  apply(message: ReplicaMessage): void {
    const parts = splitTenantKey(message.k);
    if (parts === undefined || parts.kind !== REPLICA || parts.parts.length !== 2) return;
    if (!this.pending.settle(message.k, message.o === this.connection.origin)) return;
    const [table, aor] = parts.parts as [string, string];
    // Bindings saved with flag 0x01 are this server's alone: they stay.
    const local = super.bindings(parts.tenant, table, aor).filter((b) => b.memoryOnly);
    this.install(parts.tenant, table, aor, [...bindingsOfFlat(message["v"]).filter((b) => b.aor === aor), ...local]);
  }

  override bindings(tenant: string, table: string, aor: string): readonly Binding[] {
    this.connection.ensureAvailable();
    return super.bindings(tenant, table, aor);
  }

  override replace(tenant: string, table: string, aor: string, next: readonly Binding[]): void {
    if (!this.sweeping) this.connection.ensureAvailable();
    super.replace(tenant, table, aor, next);
  }

  override findByRuid(tenant: string, table: string, ruid: string): Binding | undefined {
    this.connection.ensureAvailable();
    return super.findByRuid(tenant, table, ruid);
  }

  /**
   * Expired bindings leave the replica only: Redis drops an AoR's hash when
   * its last binding expires, and the next save of the AoR deletes expired
   * fields; N servers need not write the same deletions N times.
   */
  override sweepExpired(now: number, limit: number): number {
    this.sweeping = true;
    try {
      return super.sweepExpired(now, limit);
    } finally {
      this.sweeping = false;
    }
  }

  protected override persist(tenant: string, table: string, aor: string, upserts: readonly StoredBinding[], deletions: readonly string[]): void {
    if (this.sweeping) return;
    const key = tenantKey(tenant, REPLICA, table, aor);
    const now = this.now();
    const longest = upserts.reduce((max, u) => Math.max(max, u.binding.expires), 0);
    const ttl = longest > now ? longest - now : 0;
    const args: (string | number)[] = [CHANNEL, this.connection.origin, ttl, deletions.length, ...deletions];
    for (const u of upserts) args.push(u.binding.ruid, JSON.stringify(u.binding));
    this.pending.begin(key);
    this.writeAor(key, ...args).catch((err: unknown) => {
      // Redis refused the script (not a lost connection: those are resent).
      this.pending.abandon(key);
      log("err", "redis", `writing the bindings of ${aor} failed: ${(err as Error)?.message ?? String(err)}`);
    });
  }
}
