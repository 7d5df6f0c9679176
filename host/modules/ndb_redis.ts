/**
 * KSR.ndb_redis (Kamailio ndb_redis, its KEMI functions of 5.6) and the
 * $redis(name=>key) pseudo-variable, over the shared store of
 * `ksr run --store redis://…` (the server name a script gives is not
 * looked up: every name is that store).
 *
 * A tenant reaches only its own keys: every key a command names must start
 * with the tenant's prefix, `ksr:<tenant>:ndb:` (`ksr:` + the tenant id
 * percent-encoded + `:ndb:`; a script learns it from $redisd(prefix)). The
 * key arguments are found from a table of the commands allowed here (their
 * key positions as Redis's command table gives them); any other command
 * (KEYS, SCAN, EVAL, FLUSHALL, CONFIG, …) is refused, as is a command
 * naming a key outside the prefix: -1 and an error log line, nothing sent.
 *
 * A command waits for its reply (host/storage/redis/sync-command.ts), as
 * in Kamailio. Return codes are Kamailio 5.6's KEMI ones: 0 when Redis
 * answered, -1 on an error reply (the reply is kept: $redis(r=>info) is
 * its text), on no answer, or a refused command. Replies are kept per
 * tenant under their name until redis_free or the next command with that
 * name, at most MAX_REPLIES names.
 */
import type { MessageContext } from "../core/context.js";
import { TenantScoped } from "./state/tenant-scope.js";
import type { RedisReply } from "../storage/redis/sync-command.js";
import { tenantPrefix } from "../storage/redis/keys.js";
import type { KemiModule, PvClass } from "./types.js";
import type { PvAccessor } from "./pv.js";

/** The keys of ndb_redis commands are under this sub-prefix of the tenant's. */
export function ndbRedisPrefix(tenant: string): string {
  return `${tenantPrefix(tenant)}ndb:`;
}

/** Replies kept at once per tenant (Kamailio keeps one per name for the process's life). */
const MAX_REPLIES = 64;

const replies = new TenantScoped<Map<string, RedisReply>>(() => new Map());

/**
 * Where the keys are in a command's arguments (after the name): `first`
 * index, then every `step`-th up to `last` (-1: the last argument).
 * Redis's own command table (COMMAND INFO) gives these positions.
 */
interface KeySpec {
  readonly first: number;
  readonly last: number;
  readonly step: number;
}

const ONE: KeySpec = { first: 0, last: 0, step: 1 };
const ALL: KeySpec = { first: 0, last: -1, step: 1 };
const NONE: KeySpec = { first: 0, last: -1, step: 0 };

const COMMANDS: Readonly<Record<string, KeySpec>> = {
  PING: NONE,
  ECHO: NONE,
  TIME: NONE,
  GET: ONE,
  SET: ONE,
  SETEX: ONE,
  PSETEX: ONE,
  SETNX: ONE,
  GETSET: ONE,
  GETDEL: ONE,
  APPEND: ONE,
  STRLEN: ONE,
  INCR: ONE,
  INCRBY: ONE,
  DECR: ONE,
  DECRBY: ONE,
  EXPIRE: ONE,
  PEXPIRE: ONE,
  PERSIST: ONE,
  TTL: ONE,
  PTTL: ONE,
  TYPE: ONE,
  DEL: ALL,
  UNLINK: ALL,
  EXISTS: ALL,
  MGET: ALL,
  MSET: { first: 0, last: -1, step: 2 },
  HGET: ONE,
  HSET: ONE,
  HSETNX: ONE,
  HMSET: ONE,
  HMGET: ONE,
  HDEL: ONE,
  HGETALL: ONE,
  HKEYS: ONE,
  HVALS: ONE,
  HLEN: ONE,
  HEXISTS: ONE,
  HINCRBY: ONE,
  LPUSH: ONE,
  RPUSH: ONE,
  LPOP: ONE,
  RPOP: ONE,
  LLEN: ONE,
  LRANGE: ONE,
  LINDEX: ONE,
  LREM: ONE,
  LTRIM: ONE,
  SADD: ONE,
  SREM: ONE,
  SMEMBERS: ONE,
  SISMEMBER: ONE,
  SCARD: ONE,
  ZADD: ONE,
  ZREM: ONE,
  ZSCORE: ONE,
  ZCARD: ONE,
  ZINCRBY: ONE,
  ZRANGE: ONE,
  ZRANGEBYSCORE: ONE,
  ZREVRANGE: ONE,
};

/** The keys a command names; undefined when the command is not allowed here. */
export function commandKeys(args: readonly string[]): string[] | undefined {
  const spec = COMMANDS[(args[0] ?? "").toUpperCase()];
  if (spec === undefined) return undefined;
  const rest = args.slice(1);
  if (spec.step === 0) return [];
  const last = spec.last < 0 ? rest.length - 1 : Math.min(spec.last, rest.length - 1);
  const keys: string[] = [];
  for (let i = spec.first; i <= last; i += spec.step) keys.push(rest[i]!);
  return keys;
}

/**
 * The arguments of a command line as hiredis's redisCommand makes them:
 * split at spaces, each `%s` replaced by the next parameter (inside an
 * argument too, "user:%s"); `%%` is a literal `%`.
 */
export function commandArgs(line: string, params: readonly string[]): string[] | undefined {
  let next = 0;
  const args: string[] = [];
  for (const token of line.split(" ").filter((t) => t.length > 0)) {
    let failed = false;
    const arg = token.replace(/%[sb%]/g, (spec) => {
      if (spec === "%%") return "%";
      if (next >= params.length) {
        failed = true;
        return "";
      }
      return params[next++]!;
    });
    if (failed) return undefined;
    args.push(arg);
  }
  return args;
}

function run(ctx: MessageContext, fn: string, line: string, params: readonly string[], name: string): number {
  const store = ctx.host.data?.ndbRedis;
  if (store === undefined) {
    ctx.host.log("err", `ndb_redis.${fn}: no shared store (ksr run --store redis://…)\n`, ctx);
    return -1;
  }
  const args = commandArgs(line, params);
  if (args === undefined || args.length === 0) {
    ctx.host.log("err", `ndb_redis.${fn}: "${line.slice(0, 80)}" has more %s than parameters\n`, ctx);
    return -1;
  }
  const keys = commandKeys(args);
  if (keys === undefined) {
    ctx.host.log("err", `ndb_redis.${fn}: ${args[0]!.slice(0, 40)} is not allowed here\n`, ctx);
    return -1;
  }
  const prefix = ndbRedisPrefix(ctx.tenant.id);
  const outside = keys.find((k) => !k.startsWith(prefix));
  if (outside !== undefined) {
    ctx.host.log("err", `ndb_redis.${fn}: key "${outside.slice(0, 80)}" is outside the tenant's prefix ${prefix}\n`, ctx);
    return -1;
  }
  const reply = store.run(args);
  const kept = replies.get(ctx.tenant.id);
  if (!kept.has(name) && kept.size >= MAX_REPLIES) {
    ctx.host.log("err", `ndb_redis.${fn}: ${MAX_REPLIES} replies are kept already; redis_free some\n`, ctx);
    return -1;
  }
  kept.set(name, reply);
  if (reply.type === "error") {
    ctx.host.log("err", `ndb_redis.${fn}: Redis error: ${reply.value}\n`, ctx);
    return -1;
  }
  return 0;
}

/** hiredis's reply type numbers ($redis(r=>type)). */
const TYPE_CODES: Readonly<Record<RedisReply["type"], number>> = { string: 1, array: 2, integer: 3, nil: 4, status: 5, error: 6 };

type PvValue = string | number | null;

/** $redis(name=>value|type|info|size) with [i] indexes into arrays, as Kamailio parses them. */
export function ndbRedisPvAccessor(cls: string, inner: string): PvAccessor | null {
  if (cls === "redisd") {
    if (inner !== "prefix") return null;
    return { get: (ctx) => ndbRedisPrefix(ctx.tenant.id) };
  }
  if (cls !== "redis") return null;
  const m = /^([^=]+)=>(value|type|info|size)((?:\[\d+\])*)$/.exec(inner);
  if (m === null) return null;
  const name = m[1]!;
  const key = m[2]!;
  const positions = [...m[3]!.matchAll(/\[(\d+)\]/g)].map((p) => Number(p[1]));
  return {
    get(ctx): PvValue {
      let reply = replies.peek(ctx.tenant.id)?.get(name);
      if (reply === undefined) return null;
      // Arrays within arrays: every index but the last selects an element.
      for (const pos of positions.slice(0, -1)) {
        if (reply.type !== "array" || pos >= reply.elements.length) return null;
        reply = reply.elements[pos]!;
      }
      const pos = positions.at(-1);
      switch (key) {
        case "value": {
          if (reply.type === "array") {
            const element = pos === undefined ? undefined : reply.elements[pos];
            return element !== undefined && (element.type === "string" || element.type === "integer") ? element.value : null;
          }
          if (pos !== undefined) return null;
          return reply.type === "string" || reply.type === "integer" ? reply.value : null;
        }
        case "type": {
          if (pos === undefined) return TYPE_CODES[reply.type];
          if (reply.type !== "array") return null;
          const element = reply.elements[pos];
          return element === undefined ? null : TYPE_CODES[element.type];
        }
        case "info":
          return reply.type === "string" || reply.type === "status" || reply.type === "error" ? reply.value : null;
        default:
          return reply.type === "array" ? reply.elements.length : null;
      }
    },
  };
}

/** $redis(name=>value|type|info|size) and $redisd(prefix). */
const NDB_REDIS_PVS: readonly PvClass[] = [
  { names: ["redis"], doc: "reply kept by redis_cmd: name=>value|type|info|size, [i] into arrays" },
  { names: ["redisd"], doc: "prefix: the tenant's key prefix (an addition of this server)" },
].map(({ names, doc }) => ({
  names,
  form: "named",
  writable: false,
  doc,
  compile: (inner, _index, cls) => (inner === undefined ? null : ndbRedisPvAccessor(cls, inner)),
}));

export const ndbRedisModule: KemiModule = {
  pvs: NDB_REDIS_PVS,
  name: "ndb_redis",
  kamailioModule: "ndb_redis",
  functions: {
    redis_cmd: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: "Run a Redis command line (server, command, reply name) on the shared store; keys must start with $redisd(prefix). 0 answered, -1 error.",
      run: (ctx, _srv: string, cmd: string, res: string) => run(ctx, "redis_cmd", cmd, [], res),
    },
    redis_cmd_p1: {
      params: ["str", "str", "str", "str"],
      returns: "int",
      doc: "redis_cmd with one %s parameter (server, command, p1, reply name).",
      run: (ctx, _srv: string, cmd: string, p1: string, res: string) => run(ctx, "redis_cmd_p1", cmd, [p1], res),
    },
    redis_cmd_p2: {
      params: ["str", "str", "str", "str", "str"],
      returns: "int",
      doc: "redis_cmd with two %s parameters (server, command, p1, p2, reply name).",
      run: (ctx, _srv: string, cmd: string, p1: string, p2: string, res: string) => run(ctx, "redis_cmd_p2", cmd, [p1, p2], res),
    },
    redis_cmd_p3: {
      params: ["str", "str", "str", "str", "str", "str"],
      returns: "int",
      doc: "redis_cmd with three %s parameters (server, command, p1, p2, p3, reply name).",
      run: (ctx, _srv: string, cmd: string, p1: string, p2: string, p3: string, res: string) => run(ctx, "redis_cmd_p3", cmd, [p1, p2, p3], res),
    },
    redis_free: {
      params: ["str"],
      returns: "int",
      doc: "Forget the reply kept under that name. 1, or -1 when there is none.",
      run: (ctx, res: string) => (replies.peek(ctx.tenant.id)?.delete(res) === true ? 1 : -1),
    },
  },
  // Kamailio 5.6's cmd exports: fixup_redis_cmd6 and fixup_spve_null have no
  // free function, so its KSR.x.modf refuses them.
  native: [
    { name: "redis_cmd", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "redis_cmd", refused: "fixup without free" },
    { name: "redis_cmd", params: ["str", "str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "redis_cmd_p1", refused: "fixup without free" },
    { name: "redis_cmd", params: ["str", "str", "str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "redis_cmd_p2", refused: "fixup without free" },
    { name: "redis_cmd", params: ["str", "str", "str", "str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "redis_cmd_p3", refused: "fixup without free" },
    { name: "redis_free", params: ["str"], routes: ["ANY_ROUTE"], kemi: "redis_free", refused: "fixup without free" },
  ],
};
