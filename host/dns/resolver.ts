/**
 * DNS for the server: lookups through Node's asynchronous resolver (c-ares,
 * never the thread pool's blocking getaddrinfo), a record cache in front of
 * it, and the next-hop resolver (RFC 3263) that the forwarding paths and
 * KSR.ipops ask.
 *
 * Routes run synchronously and lookups do not, so everything a route needs
 * is answered from the caches (`known`, `peek`); what is not cached is
 * looked up in the background and callers continue when it is (see
 * README "DNS").
 */
import { Resolver } from "node:dns/promises";
import type { TransportProto } from "../core/context.js";
import { isWildcardIp, sameIp } from "../transport/listen-socket.js";
import { TtlCache } from "./cache.js";
import {
  FAILED_LOOKUP_TTL_S,
  materialize,
  resolvePlan,
  type Answer,
  type DnsLookups,
  type HopQuery,
  type NaptrRecord,
  type Plan,
  type ResolveOptions,
  type SrvRecord,
  type Target,
} from "./rfc3263.js";

/**
 * Node's resolver gives TTLs for A and AAAA only; NAPTR and SRV answers are
 * kept this long (and never longer than the addresses they lead to).
 */
export const RECORD_TTL_WITHOUT_TTL_S = 60;
/** How long "no such name / no such record" is kept (Node does not give the SOA minimum of RFC 2308). */
export const NEGATIVE_TTL_S = 30;
/** Bounds of the caches: records (positive and negative each), next-hop resolutions (positive and negative each). */
export const DNS_CACHE_MAX_ENTRIES = 10_000;
/**
 * Lookups waiting for the server at once, at most: names come from
 * requests (any R-URI host), so a flood of made-up names must not queue
 * unbounded work. Past it a lookup fails at once (the name counts as not
 * resolving, for FAILED_LOOKUP_TTL_S).
 */
export const MAX_LOOKUPS_IN_FLIGHT = 1_000;
/** Per query: how long to wait for a server and how many times to ask (c-ares). */
export const DNS_TIMEOUT_MS = 1_000;
export const DNS_TRIES = 2;

export type RecordType = "naptr" | "srv" | "a" | "aaaa";
type RecordOf<T extends RecordType> = T extends "naptr" ? NaptrRecord : T extends "srv" ? SrvRecord : string;

/** "IP:PORT" or "IP" (port 53), IPv6 as "[IP]:PORT": what `--dns-server` takes. */
export function parseDnsServer(text: string): string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3}))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = m?.[3] === undefined ? 53 : Number(m[3]);
  if (m === null || port < 1 || port > 65535) throw new Error(`--dns-server ${text}: expected IP or IP:PORT ([IPv6]:PORT)`);
  return m[1] !== undefined ? `[${m[1]}]:${port}` : `${m[2]}:${port}`;
}

/** Lookups through c-ares, to the given servers (default: the system's). */
export class NodeDnsLookups implements DnsLookups {
  private readonly resolver: Resolver;

  constructor(servers: readonly string[] = [], timeoutMs = DNS_TIMEOUT_MS, tries = DNS_TRIES) {
    this.resolver = new Resolver({ timeout: timeoutMs, tries });
    if (servers.length > 0) this.resolver.setServers(servers.map(parseDnsServer));
  }

  naptr(name: string): Promise<Answer<NaptrRecord>> {
    return this.noTtl(this.resolver.resolveNaptr(name));
  }

  srv(name: string): Promise<Answer<SrvRecord>> {
    return this.noTtl(this.resolver.resolveSrv(name));
  }

  a(name: string): Promise<Answer<string>> {
    return this.addresses(this.resolver.resolve4(name, { ttl: true }));
  }

  aaaa(name: string): Promise<Answer<string>> {
    return this.addresses(this.resolver.resolve6(name, { ttl: true }));
  }

  cancel(): void {
    this.resolver.cancel();
  }

  private async noTtl<T>(p: Promise<T[]>): Promise<Answer<T>> {
    try {
      return { records: await p, ttlS: RECORD_TTL_WITHOUT_TTL_S };
    } catch (err) {
      return negativeOrThrow(err);
    }
  }

  private async addresses(p: Promise<Array<{ address: string; ttl: number }>>): Promise<Answer<string>> {
    try {
      const records = await p;
      return { records: records.map((r) => r.address), ttlS: Math.min(...records.map((r) => r.ttl)) };
    } catch (err) {
      return negativeOrThrow(err);
    }
  }
}

/** NXDOMAIN and NODATA are answers (nothing there); anything else (timeout, refused, SERVFAIL) is a failed lookup. */
function negativeOrThrow(err: unknown): Answer<never> {
  const code = (err as { code?: string }).code;
  if (code === "ENOTFOUND" || code === "ENODATA") return { records: [], ttlS: NEGATIVE_TTL_S };
  throw err;
}

/**
 * Records by type and name, kept for their TTL (at most `maxEntries` with
 * records and as many without), one lookup in flight per key.
 */
export class CachingDnsLookups implements DnsLookups {
  private readonly positive: TtlCache<Answer<unknown>>;
  private readonly negative: TtlCache<Answer<unknown>>;
  private readonly inFlight = new Map<string, Promise<Answer<unknown>>>();
  /** Lookups that went to the network (for tests and counters). */
  misses = 0;
  /** Lookups refused because MAX_LOOKUPS_IN_FLIGHT were waiting. */
  refusedBusy = 0;

  constructor(
    private readonly upstream: DnsLookups,
    now: () => number,
    maxEntries = DNS_CACHE_MAX_ENTRIES,
    private readonly maxInFlight = MAX_LOOKUPS_IN_FLIGHT,
  ) {
    this.positive = new TtlCache(now, maxEntries);
    this.negative = new TtlCache(now, maxEntries);
  }

  /** The cached answer, or undefined when it is not cached (nothing is looked up). */
  peek<T extends RecordType>(type: T, name: string): Answer<RecordOf<T>> | undefined {
    const key = `${type}/${name.toLowerCase()}`;
    return (this.positive.get(key) ?? this.negative.get(key)) as Answer<RecordOf<T>> | undefined;
  }

  lookup<T extends RecordType>(type: T, name: string): Promise<Answer<RecordOf<T>>> {
    const key = `${type}/${name.toLowerCase()}`;
    const cached = this.peek(type, name);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending as Promise<Answer<RecordOf<T>>>;
    if (this.inFlight.size >= this.maxInFlight) {
      this.refusedBusy++;
      return Promise.reject(Object.assign(new Error(`${this.maxInFlight} DNS lookups already in flight: ${type} ${name} not asked`), { code: "EBUSY" }));
    }
    this.misses++;
    const asked = (this.upstream[type] as (n: string) => Promise<Answer<unknown>>).call(this.upstream, name).then(
      (answer) => {
        this.inFlight.delete(key);
        (answer.records.length > 0 ? this.positive : this.negative).set(key, answer, answer.ttlS * 1000);
        return answer;
      },
      (err: unknown) => {
        this.inFlight.delete(key);
        // A failed lookup is remembered briefly so that a dead server is not asked again for every message.
        this.negative.set(key, { records: [], ttlS: FAILED_LOOKUP_TTL_S }, FAILED_LOOKUP_TTL_S * 1000);
        throw err;
      },
    );
    this.inFlight.set(key, asked);
    return asked as Promise<Answer<RecordOf<T>>>;
  }

  naptr(name: string): Promise<Answer<NaptrRecord>> {
    return this.lookup("naptr", name);
  }
  srv(name: string): Promise<Answer<SrvRecord>> {
    return this.lookup("srv", name);
  }
  a(name: string): Promise<Answer<string>> {
    return this.lookup("a", name);
  }
  aaaa(name: string): Promise<Answer<string>> {
    return this.lookup("aaaa", name);
  }

  clear(): void {
    this.positive.clear();
    this.negative.clear();
  }
}

/** What is known of a next hop now: its targets in order, that it does not resolve, or nothing yet. */
export type KnownTargets = readonly Target[] | "unresolvable" | undefined;

/**
 * RFC 3263 resolutions of next hops, cached for the shortest TTL of the
 * records they used (bounded, least recently used first out); a name that
 * gives no target is remembered as such for NEGATIVE_TTL_S (or less when
 * its lookups failed). Each use draws the order anew (RFC 2782 weights).
 */
export class NextHopResolver {
  private readonly plans: TtlCache<Plan>;
  private readonly unresolvable: TtlCache<true>;
  private readonly inFlight = new Map<string, Promise<readonly Target[]>>();

  constructor(
    readonly dns: CachingDnsLookups,
    now: () => number,
    private readonly options: () => ResolveOptions,
    private readonly random: () => number = Math.random,
    maxEntries = DNS_CACHE_MAX_ENTRIES,
    /** Told of answers worth a log line (every target was ourselves). */
    private readonly onWarning?: (text: string) => void,
  ) {
    this.plans = new TtlCache(now, maxEntries);
    this.unresolvable = new TtlCache(now, maxEntries);
  }

  known(q: HopQuery): KnownTargets {
    const key = queryKey(q);
    const plan = this.plans.get(key);
    if (plan !== undefined) {
      const targets = this.usable(plan);
      return targets.length > 0 ? targets : "unresolvable";
    }
    return this.unresolvable.get(key) === true ? "unresolvable" : undefined;
  }

  /** The plan's targets in a fresh order, without this server's own sockets. */
  private usable(plan: Plan): Target[] {
    const own = this.options().isOwnSocket;
    const targets = materialize(plan, this.random);
    return own === undefined ? targets : targets.filter((t) => !own(t));
  }

  /** The targets of q in order (empty: it does not resolve); never rejects. */
  resolve(q: HopQuery): Promise<readonly Target[]> {
    const known = this.known(q);
    if (known !== undefined) return Promise.resolve(known === "unresolvable" ? [] : known);
    const key = queryKey(q);
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    const asked = resolvePlan(q, this.dns, this.options()).then(
      (plan) => {
        this.inFlight.delete(key);
        if (plan.entries.length === 0) {
          this.unresolvable.set(key, true, Math.min(plan.ttlS, NEGATIVE_TTL_S) * 1000);
          return [];
        }
        this.plans.set(key, plan, plan.ttlS * 1000);
        const targets = this.usable(plan);
        if (targets.length === 0) this.onWarning?.(`${q.host}: every target of its DNS answer is this server itself; not sent (it would loop)`);
        return targets;
      },
      () => {
        this.inFlight.delete(key);
        this.unresolvable.set(key, true, FAILED_LOOKUP_TTL_S * 1000);
        return [];
      },
    );
    this.inFlight.set(key, asked);
    return asked;
  }
}

function queryKey(q: HopQuery): string {
  return `${q.secure ? "sips" : "sip"}|${q.host.toLowerCase()}|${q.port ?? ""}|${q.transport ?? ""}`;
}

/**
 * Transports with a listen socket, whether any is IPv6, and which targets
 * are our own sockets (same transport and port, and the same address, or
 * a loopback one for a wildcard socket): what the resolver may choose from.
 */
export function resolveOptionsFor(listen: ReadonlyArray<{ readonly proto: TransportProto; readonly ip: string; readonly port: number }>): ResolveOptions {
  return {
    transports: new Set(listen.map((l) => l.proto)),
    ipv6: listen.some((l) => l.ip.includes(":")),
    isOwnSocket: (t) =>
      listen.some((l) => l.proto === t.proto && l.port === t.port && (sameIp(l.ip, t.ip) || (isWildcardIp(l.ip) && (t.ip.startsWith("127.") || t.ip === "::1")))),
  };
}
