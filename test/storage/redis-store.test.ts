/**
 * The parts of the shared store (host/storage/redis) that need no Redis:
 * store URLs, the tenant key layout, the pending-write rule that keeps a
 * replica from stepping back, htable definitions in modparam syntax, and
 * what the registrar answers while the store is unavailable, KSR.ndb_redis
 * over a stand-in for the round trip. The store
 * against a real redis-server: test/interop/redis-store.test.ts.
 */
import { describe, expect, it } from "vitest";
import { parseRedisUrl, PendingWrites, splitTenantKey, StoreUnavailableError, tenantKey, tenantPrefix } from "../../host/storage/redis/keys.js";
import { parseHtableModparam } from "../../host/modules/state/htable-store.js";
import { registrarModule } from "../../host/modules/registrar.js";
import type { LocationStore } from "../../host/storage/index.js";
import { caller } from "../modules/call.js";
import { contextOn, invite, makeDataHost, register, T0 } from "../registrar/helpers.js";
import { RedisLocationStore } from "../../host/storage/redis/location.js";
import type { RedisConnection } from "../../host/storage/redis/connection.js";
import type { Binding } from "../../host/storage/types.js";
import { commandArgs, commandKeys, ndbRedisModule, ndbRedisPrefix } from "../../host/modules/ndb_redis.js";
import type { RedisReply } from "../../host/storage/redis/sync-command.js";
import { lookupPv } from "../../host/modules/pv.js";
import type { MessageContext } from "../../host/core/context.js";

describe("store URLs", () => {
  it("reads host, port and database, defaulting to 6379 and 0", () => {
    expect(parseRedisUrl("redis://127.0.0.1:6390/2")).toMatchObject({ host: "127.0.0.1", port: 6390, db: 2 });
    expect(parseRedisUrl("redis://cache.example")).toMatchObject({ host: "cache.example", port: 6379, db: 0 });
  });

  it("keeps the password out of the text used in log lines", () => {
    const target = parseRedisUrl("redis://user:s3cret@127.0.0.1:6390/1");
    expect(target).toMatchObject({ username: "user", password: "s3cret" });
    expect(target.display).not.toContain("s3cret");
  });

  it("refuses other schemes and a path that is not a database number", () => {
    expect(() => parseRedisUrl("http://127.0.0.1:6379")).toThrow(/only redis:\/\//);
    expect(() => parseRedisUrl("redis://127.0.0.1:6379/cache")).toThrow(/database number/);
    expect(() => parseRedisUrl("127.0.0.1:6379")).toThrow();
  });
});

describe("tenant keys", () => {
  it("give every tenant its own prefix, whatever its id and the parts contain", () => {
    const key = tenantKey("a:b", "loc", "location", "alice:x@example.com");
    expect(key.startsWith(tenantPrefix("a:b"))).toBe(true);
    expect(key.startsWith(tenantPrefix("a"))).toBe(false);
    expect(splitTenantKey(key)).toEqual({ tenant: "a:b", kind: "loc", parts: ["location", "alice:x@example.com"] });
  });

  it("never map two different items to one key", () => {
    expect(tenantKey("t", "ht", "a:b", "c")).not.toBe(tenantKey("t", "ht", "a", "b:c"));
    expect(tenantKey("t:ht", "x")).not.toBe(tenantKey("t", "ht", "x"));
  });

  it("recognise only keys of this layout", () => {
    expect(splitTenantKey("other:t:loc:x")).toBeUndefined();
    expect(splitTenantKey("ksr:t")).toBeUndefined();
  });
});

describe("pending writes of a replica", () => {
  it("install a key's state only when no write of ours to it is unannounced", () => {
    const pending = new PendingWrites();
    expect(pending.settle("k", false)).toBe(true);
    pending.begin("k");
    pending.begin("k");
    // Another server's write came before ours ran: our announcement will carry it.
    expect(pending.settle("k", false)).toBe(false);
    // Our first write's state is older than our second's: skipped.
    expect(pending.settle("k", true)).toBe(false);
    expect(pending.settle("k", true)).toBe(true);
    expect(pending.settle("k", false)).toBe(true);
  });

  it("forget a write Redis refused, so later announcements are installed again", () => {
    const pending = new PendingWrites();
    pending.begin("k");
    pending.abandon("k");
    expect(pending.settle("k", false)).toBe(true);
  });
});

describe("htable definitions in Kamailio's modparam syntax", () => {
  it("read name, autoexpire, initval, updateexpire and shared", () => {
    expect(parseHtableModparam("calls=>size=8;autoexpire=60;initval=0;updateexpire=0;shared=1")).toEqual({
      name: "calls",
      size: 8,
      autoExpireSec: 60,
      initVal: 0,
      updateExpire: false,
      shared: true,
    });
    expect(parseHtableModparam("plain")).toEqual({ name: "plain" });
  });

  it("refuse unknown attributes, values that are not integers and a missing name", () => {
    expect(() => parseHtableModparam("t=>dbtable=x")).toThrow(/unknown attribute dbtable/);
    expect(() => parseHtableModparam("t=>autoexpire=soon")).toThrow(/integer/);
    expect(() => parseHtableModparam("=>shared=1")).toThrow(/no table name/);
    expect(() => parseHtableModparam("t=>autoexpire=-5")).toThrow(/non-negative/);
  });
});

describe("the registrar while the shared store is unavailable", () => {
  const reg = caller(registrarModule);
  const unavailable = (): never => {
    throw new StoreUnavailableError();
  };
  const awayStore: LocationStore = {
    bindings: unavailable,
    replace: unavailable,
    findByRuid: unavailable,
    sweepExpired: () => 0,
    aorCount: () => 0,
    entries: () => [],
  };
  function awayHost() {
    const host = makeDataHost();
    return Object.assign(host, { data: { ...host.data, locations: awayStore } });
  }

  it("save fails with -1 and answers 500 (Kamailio: error while getting the record)", () => {
    const host = awayHost();
    const { ctx } = contextOn(host, register());
    expect(reg("save", ctx, "location", 0)).toBe(-1);
    expect(host.replies.at(-1)?.status).toBe(500);
  });

  it("lookup fails with -3, registered with -1, unregister with -2", () => {
    const host = awayHost();
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com")).ctx, "location")).toBe(-3);
    expect(reg("registered", contextOn(host, invite("sip:alice@example.com")).ctx, "location")).toBe(-1);
    expect(reg("unregister", contextOn(host, invite("sip:alice@example.com")).ctx, "location", "sip:alice@example.com")).toBe(-2);
    expect(host.logs.some((l) => /registrar: lookup\(\): the shared store \(Redis\) is unavailable/.test(l.text))).toBe(true);
  });
});

describe("KSR.ndb_redis without a store round trip", () => {
  const ndb = caller(ndbRedisModule);
  function hostAnswering(reply: RedisReply) {
    const host = makeDataHost();
    const sent: (readonly string[])[] = [];
    const ndbRedis = {
      run(args: readonly string[]): RedisReply {
        sent.push(args);
        return reply;
      },
    };
    return { host: Object.assign(host, { data: { ...host.data, ndbRedis } }), sent };
  }
  const pv = (ctx: MessageContext, name: string) => lookupPv(name)!.get(ctx);

  it("builds the arguments as hiredis does: split at spaces, %s replaced inside an argument too", () => {
    expect(commandArgs("HSET ksr:t:ndb:user:%s name %s", ["alice", "Alice Liddell"])).toEqual(["HSET", "ksr:t:ndb:user:alice", "name", "Alice Liddell"]);
    expect(commandArgs("GET %s", [])).toBeUndefined();
    expect(commandArgs("SET k 100%%", [])).toEqual(["SET", "k", "100%"]);
  });

  it("finds every key of the commands it allows, and allows no other command", () => {
    expect(commandKeys(["MSET", "a", "1", "b", "2"])).toEqual(["a", "b"]);
    expect(commandKeys(["del", "a", "b", "c"])).toEqual(["a", "b", "c"]);
    expect(commandKeys(["HSET", "h", "f", "v"])).toEqual(["h"]);
    expect(commandKeys(["PING"])).toEqual([]);
    for (const refused of ["KEYS", "SCAN", "EVAL", "FLUSHALL", "CONFIG", "RENAME", "SELECT"]) expect(commandKeys([refused, "x"])).toBeUndefined();
  });

  it("sends a command within the tenant's prefix and keeps the reply for $redis", () => {
    const { host, sent } = hostAnswering({ type: "array", elements: [{ type: "string", value: "a" }, { type: "integer", value: 7 }] });
    const { ctx } = contextOn(host, invite("sip:bob@example.com"), "red");
    expect(ndb("redis_cmd_p1", ctx, "srv", "LRANGE %s 0 -1", `${ndbRedisPrefix("red")}list`, "r")).toBe(0);
    expect(sent).toEqual([["LRANGE", "ksr:red:ndb:list", "0", "-1"]]);
    expect(pv(ctx, "$redis(r=>type)")).toBe(2);
    expect(pv(ctx, "$redis(r=>size)")).toBe(2);
    expect(pv(ctx, "$redis(r=>value[0])")).toBe("a");
    expect(pv(ctx, "$redis(r=>value[1])")).toBe(7);
    expect(pv(ctx, "$redis(r=>type[1])")).toBe(3);
    expect(pv(ctx, "$redisd(prefix)")).toBe("ksr:red:ndb:");
    expect(ndb("redis_free", ctx, "r")).toBe(1);
    expect(pv(ctx, "$redis(r=>type)")).toBeNull();
    expect(ndb("redis_free", ctx, "r")).toBe(-1);
  });

  it("refuses a key outside the tenant's prefix and a command it has no key table for, sending nothing", () => {
    const { host, sent } = hostAnswering({ type: "status", value: "OK" });
    const { ctx } = contextOn(host, invite("sip:bob@example.com"), "red");
    expect(ndb("redis_cmd", ctx, "srv", "GET ksr:blue:ndb:x", "r")).toBe(-1);
    expect(ndb("redis_cmd", ctx, "srv", "DEL ksr:red:ndb:x ksr:red:loc:location:alice", "r")).toBe(-1);
    expect(ndb("redis_cmd", ctx, "srv", "FLUSHALL", "r")).toBe(-1);
    expect(sent).toEqual([]);
    expect(host.logs.some((l) => /outside the tenant's prefix ksr:red:ndb:/.test(l.text))).toBe(true);
  });

  it("answers -1 to an error reply and keeps it ($redis(r=>info))", () => {
    const { host } = hostAnswering({ type: "error", value: "WRONGTYPE Operation against a key holding the wrong kind of value" });
    const { ctx } = contextOn(host, invite("sip:bob@example.com"), "red");
    expect(ndb("redis_cmd", ctx, "srv", "INCR ksr:red:ndb:s", "r")).toBe(-1);
    expect(pv(ctx, "$redis(r=>type)")).toBe(6);
    expect(pv(ctx, "$redis(r=>info)")).toMatch(/^WRONGTYPE/);
  });

  it("fails with -1 without a shared store", () => {
    const host = makeDataHost();
    const { ctx } = contextOn(host, invite("sip:bob@example.com"), "red");
    expect(ndb("redis_cmd", ctx, "srv", "GET ksr:red:ndb:x", "r")).toBe(-1);
  });
});

describe("the location replica (RedisLocationStore) over a stand-in connection", () => {
  interface Write {
    key: string;
    args: (string | number)[];
  }
  function replicaWith(available = true) {
    const writes: Write[] = [];
    const commands = {
      defineCommand() {},
      ksrWriteAor: (key: string, ...args: (string | number)[]) => {
        writes.push({ key, args });
        return Promise.resolve(1);
      },
    };
    const connection = {
      origin: "me",
      commands,
      register() {},
      ensureAvailable() {
        if (!available) throw new StoreUnavailableError();
      },
    };
    const store = new RedisLocationStore(connection as unknown as RedisConnection, () => T0);
    return { store, writes };
  }
  const binding = (ruid: string, contact: string, extra: Partial<Binding> = {}): Binding => ({
    ruid,
    aor: "alice",
    contact,
    expires: T0 + 3_600_000,
    q: -1,
    callId: `call-${ruid}`,
    cseq: 1,
    path: "",
    received: "",
    instance: "",
    regId: 0,
    userAgent: "",
    socket: "",
    branchFlags: 0,
    methods: [],
    lastModified: T0,
    seq: 0,
    memoryOnly: false,
    ...extra,
  });
  /** The announcement Redis would publish: the AoR hash as a flat [field, value, …] list. */
  const announce = (origin: string, bindings: Binding[]) => ({
    r: "loc",
    o: origin,
    k: tenantKey("t1", "loc", "location", "alice"),
    v: bindings.flatMap((b) => [b.ruid, JSON.stringify(b)]),
  });

  it("writes only the changed bindings of the AoR, to the tenant's key, with the longest expiry as TTL", () => {
    const { store, writes } = replicaWith();
    store.replace("t1", "location", "alice", [binding("a", "sip:alice@10.0.0.1")]);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.key).toBe("ksr:t1:loc:location:alice");
    // channel, origin, ttl, deletions count, then ruid/JSON pairs
    expect(writes[0]!.args.slice(1, 4)).toEqual(["me", 3_600_000, 0]);
    expect(writes[0]!.args[4]).toBe("a");
    store.replace("t1", "location", "alice", []);
    expect(writes[1]!.args.slice(3)).toEqual([1, "a"]);
  });

  it("keeps its own newer state while its writes are unannounced, then installs Redis's state with the other server's bindings", () => {
    const { store } = replicaWith();
    const mine = binding("a", "sip:alice@10.0.0.1");
    store.replace("t1", "location", "alice", [mine]);
    const theirs = binding("b", "sip:alice@10.0.0.2");
    // Another server's write ran before ours: its announcement lacks our binding and is skipped.
    store.apply(announce("other", [theirs]));
    expect(store.bindings("t1", "location", "alice").map((b) => b.ruid)).toEqual(["a"]);
    // Our echo carries Redis's state after our write: both bindings.
    store.apply(announce("me", [theirs, mine]));
    expect(store.bindings("t1", "location", "alice").map((b) => b.ruid).sort()).toEqual(["a", "b"]);
    // With nothing of ours pending, another server's removal is installed at once.
    store.apply(announce("other", [mine]));
    expect(store.bindings("t1", "location", "alice").map((b) => b.ruid)).toEqual(["a"]);
  });

  it("keeps a binding saved with flag 0x01 (memory only) out of Redis and through announcements", () => {
    const { store, writes } = replicaWith();
    store.replace("t1", "location", "alice", [binding("m", "sip:alice@10.0.0.3", { memoryOnly: true })]);
    expect(writes).toHaveLength(0);
    store.apply(announce("other", [binding("b", "sip:alice@10.0.0.2")]));
    expect(store.bindings("t1", "location", "alice").map((b) => b.ruid).sort()).toEqual(["b", "m"]);
  });

  it("refuses reads and changes while unavailable, and sweeps expired bindings from the replica without writing", () => {
    const away = replicaWith(false);
    expect(() => away.store.bindings("t1", "location", "alice")).toThrow(StoreUnavailableError);
    expect(() => away.store.replace("t1", "location", "alice", [])).toThrow(StoreUnavailableError);
    const { store, writes } = replicaWith();
    store.apply(announce("other", [binding("old", "sip:alice@10.0.0.9", { expires: T0 - 1 })]));
    expect(store.sweepExpired(T0, 10)).toBe(1);
    expect(writes).toHaveLength(0);
    expect(store.bindings("t1", "location", "alice")).toEqual([]);
  });
});
