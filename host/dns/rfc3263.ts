/**
 * Locating SIP servers (RFC 3263 §4): from a SIP or SIPS URI whose host is
 * a name to an ordered list of (transport, address, port) targets, through
 * NAPTR (§4.1), SRV (RFC 2782) and A/AAAA records.
 *
 * The lookups are given (DnsLookups), so the same code runs against a real
 * server, a cache, or a table in a test. A resolution is kept as a *plan*
 * (every SRV entry with its priority and weight); the order of targets is
 * drawn from it each time it is used (materialize), so a cached answer still
 * spreads load by the weights as RFC 2782 asks.
 */
import { isIP } from "node:net";
import type { TransportProto } from "../core/context.js";

/** What a URI says of its next hop before DNS: a name, and the port and transport when written. */
export interface HopQuery {
  readonly host: string;
  /** The port written in the URI (§4.2: then no SRV lookup). */
  readonly port?: number;
  /** The transport written (transport= parameter, or a forced one): §4.1 then skips NAPTR. */
  readonly transport?: TransportProto;
  /** A SIPS URI: only TLS targets (§4.1). */
  readonly secure: boolean;
}

/** One place to send a request to. */
export interface Target {
  readonly proto: TransportProto;
  readonly ip: string;
  readonly port: number;
}

export interface NaptrRecord {
  readonly order: number;
  readonly preference: number;
  readonly flags: string;
  readonly service: string;
  readonly regexp: string;
  readonly replacement: string;
}

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly name: string;
}

/** Records of one name and type with how long they may be kept (seconds); no records: the name or type does not exist. */
export interface Answer<T> {
  readonly records: readonly T[];
  readonly ttlS: number;
}

export interface DnsLookups {
  naptr(name: string): Promise<Answer<NaptrRecord>>;
  srv(name: string): Promise<Answer<SrvRecord>>;
  a(name: string): Promise<Answer<string>>;
  aaaa(name: string): Promise<Answer<string>>;
}

/** RFC 3263 §4.1 and RFC 3261 §26: the NAPTR services of the transports this server speaks (no SCTP, no WebSocket here). */
export const NAPTR_SERVICES: Readonly<Record<string, TransportProto>> = { "SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls" };

/**
 * The SRV owner prefix per transport (RFC 3263 §4.1, RFC 2782). WebSocket
 * has none: a ws/wss next hop is reached only down a connection its client
 * opened (RFC 7118), never looked up.
 */
export const SRV_PREFIX: Readonly<Partial<Record<TransportProto, string>>> = { udp: "_sip._udp.", tcp: "_sip._tcp.", tls: "_sips._tcp." };

/** RFC 3261 §19.1.2 default ports. */
export function defaultPort(proto: TransportProto): number {
  return proto === "tls" ? 5061 : 5060;
}

/** Bounds against answers crafted to cost memory or time: records looked at per answer, targets per resolution. */
export const MAX_RECORDS_PER_ANSWER = 32;
export const MAX_TARGETS = 32;

/** One SRV entry (or an A/AAAA fallback) of a plan: its addresses share transport, port, priority and weight. */
export interface PlanEntry {
  readonly proto: TransportProto;
  /** Position of the NAPTR record (or of the transport in our SRV query order): groups are tried in this order first. */
  readonly rank: number;
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly addresses: readonly string[];
}

/** A resolution: entries sorted by rank, then priority; empty when nothing usable was found. */
export interface Plan {
  readonly entries: readonly PlanEntry[];
  /** Seconds the shortest-lived record used may be kept. */
  readonly ttlS: number;
}

export interface ResolveOptions {
  /** Transports there is a listen socket for: others are skipped (§4.1, "supported by the client"). */
  readonly transports: ReadonlySet<TransportProto>;
  /** Ask for AAAA records too (there is an IPv6 listen socket). */
  readonly ipv6: boolean;
  /**
   * A target that is this server itself (a DNS answer pointing back at
   * us): left out, since sending there would loop until Max-Forwards ran out.
   */
  readonly isOwnSocket?: (t: Target) => boolean;
}

/**
 * §4.1: NAPTR records usable here, best first: flag "s", no regexp, a
 * service of a transport we speak (SIPS only for a SIPS URI), ordered by
 * order then preference (RFC 3403 §4.1).
 */
export function usableNaptrs(records: readonly NaptrRecord[], secure: boolean, transports: ReadonlySet<TransportProto>): Array<{ proto: TransportProto; replacement: string }> {
  return records
    .slice(0, MAX_RECORDS_PER_ANSWER)
    .filter((r) => {
      const proto = NAPTR_SERVICES[r.service.toUpperCase()];
      if (proto === undefined || !transports.has(proto)) return false;
      if (secure && proto !== "tls") return false;
      return r.flags.toLowerCase() === "s" && r.regexp === "" && r.replacement !== "" && r.replacement !== ".";
    })
    .sort((x, y) => x.order - y.order || x.preference - y.preference)
    .map((r) => ({ proto: NAPTR_SERVICES[r.service.toUpperCase()]!, replacement: r.replacement }));
}

/**
 * RFC 2782's order of SRV records: by priority, lowest first; within one
 * priority a weighted random draw, repeated over what is left (records of
 * weight 0 first in the running sum, so they are chosen rarely but never
 * starved). `random` gives [0, 1).
 */
export function orderByWeight<T extends { readonly weight: number }>(group: readonly T[], random: () => number): T[] {
  const remaining = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight !== 0)];
  const out: T[] = [];
  while (remaining.length > 0) {
    const sum = remaining.reduce((s, r) => s + r.weight, 0);
    const pick = Math.floor(random() * (sum + 1));
    let running = 0;
    let index = remaining.length - 1;
    for (let i = 0; i < remaining.length; i++) {
      running += remaining[i]!.weight;
      if (running >= pick) {
        index = i;
        break;
      }
    }
    out.push(remaining[index]!);
    remaining.splice(index, 1);
  }
  return out;
}

export function orderSrv<T extends { readonly priority: number; readonly weight: number }>(records: readonly T[], random: () => number): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  return priorities.flatMap((p) => orderByWeight(records.filter((r) => r.priority === p), random));
}

/** The targets of a plan in the order to try them: groups by rank and priority, weighted within a group (RFC 2782), duplicates dropped. */
export function materialize(plan: Plan, random: () => number): Target[] {
  const out: Target[] = [];
  const seen = new Set<string>();
  const entries = plan.entries;
  let i = 0;
  while (i < entries.length && out.length < MAX_TARGETS) {
    let j = i;
    while (j < entries.length && entries[j]!.rank === entries[i]!.rank && entries[j]!.priority === entries[i]!.priority) j++;
    for (const e of orderByWeight(entries.slice(i, j), random)) {
      for (const ip of e.addresses) {
        const key = `${e.proto}|${ip}|${e.port}`;
        if (seen.has(key) || out.length >= MAX_TARGETS) continue;
        seen.add(key);
        out.push({ proto: e.proto, ip, port: e.port });
      }
    }
    i = j;
  }
  return out;
}

/** §4.1: the transport when NAPTR is not used: the one written, else UDP for SIP and TLS for SIPS. */
function plainTransport(q: HopQuery): TransportProto {
  return q.transport ?? (q.secure ? "tls" : "udp");
}

/**
 * RFC 3263 §4.1-4.2 for a name (an IP literal gives one target): the plan
 * of every usable target. A lookup that fails counts as no records; one
 * that finds the server unreachable (timeout, refused connection) rejects
 * the whole resolution, rather than waiting out the timeout once per
 * remaining question.
 */
export async function resolvePlan(q: HopQuery, dns: DnsLookups, o: ResolveOptions): Promise<Plan> {
  if (isIP(q.host) !== 0) {
    const proto = plainTransport(q);
    return { entries: [{ proto, rank: 0, priority: 0, weight: 0, port: q.port ?? defaultPort(proto), addresses: [q.host] }], ttlS: Number.POSITIVE_INFINITY };
  }
  const ttls: number[] = [];
  const addresses = async (name: string): Promise<string[]> => {
    const v4 = await settle(dns.a(name));
    ttls.push(v4.ttlS);
    const out = v4.records.slice(0, MAX_RECORDS_PER_ANSWER);
    if (o.ipv6) {
      const v6 = await settle(dns.aaaa(name));
      ttls.push(v6.ttlS);
      out.push(...v6.records.slice(0, MAX_RECORDS_PER_ANSWER));
    }
    return out;
  };
  const fromSrv = async (owner: string, proto: TransportProto, rank: number): Promise<PlanEntry[]> => {
    const srv = await settle(dns.srv(owner));
    ttls.push(srv.ttlS);
    const entries: PlanEntry[] = [];
    // RFC 2782: a target of "." means the service is decidedly not available.
    for (const r of srv.records.slice(0, MAX_RECORDS_PER_ANSWER)) {
      if (r.name === "." || r.name === "") continue;
      const ips = await addresses(r.name);
      if (ips.length > 0) entries.push({ proto, rank, priority: r.priority, weight: r.weight, port: r.port, addresses: ips });
    }
    return entries.sort((x, y) => x.priority - y.priority);
  };
  const done = (entries: PlanEntry[]): Plan => ({ entries, ttlS: Math.min(...ttls) });

  // §4.2: a port written means A/AAAA only.
  if (q.port !== undefined) {
    const proto = plainTransport(q);
    const ips = await addresses(q.host);
    return done(ips.length === 0 ? [] : [{ proto, rank: 0, priority: 0, weight: 0, port: q.port, addresses: ips }]);
  }
  if (q.transport === undefined) {
    // §4.1: NAPTR first, restricted to the transports we have.
    const naptr = await settle(dns.naptr(q.host));
    ttls.push(naptr.ttlS);
    const usable = usableNaptrs(naptr.records, q.secure, o.transports);
    const entries: PlanEntry[] = [];
    for (const [rank, n] of usable.entries()) entries.push(...(await fromSrv(n.replacement, n.proto, rank)));
    if (entries.length > 0) return done(entries);
    // No (usable) NAPTR: SRV queries for each transport we support, in our order of preference.
    const protos: TransportProto[] = q.secure ? ["tls"] : ["udp", "tcp", "tls"];
    for (const [rank, proto] of protos.filter((p) => o.transports.has(p)).entries()) {
      entries.push(...(await fromSrv(SRV_PREFIX[proto]! + q.host, proto, rank)));
    }
    if (entries.length > 0) return done(entries);
  } else {
    // §4.2: a transport written and no port: SRV for that transport.
    const prefix = SRV_PREFIX[q.secure ? "tls" : q.transport];
    const entries = prefix === undefined ? [] : await fromSrv(prefix + q.host, q.transport, 0);
    if (entries.length > 0) return done(entries);
  }
  // §4.2: no SRV records: A/AAAA with the transport's default port.
  const proto = plainTransport(q);
  const ips = await addresses(q.host);
  return done(ips.length === 0 ? [] : [{ proto, rank: 0, priority: 0, weight: 0, port: defaultPort(proto), addresses: ips }]);
}

/** Negative TTL for a lookup that failed outright (timeout, refused): retry soon, not at once. */
export const FAILED_LOOKUP_TTL_S = 5;

/** Errors that say the server itself cannot be reached: asking it the next question would only wait again. */
const SERVER_UNREACHABLE = new Set(["ETIMEOUT", "ECONNREFUSED"]);

/** A lookup's answer; one that failed counts as no records, unless the server is unreachable (then the resolution fails). */
async function settle<T>(p: Promise<Answer<T>>): Promise<Answer<T>> {
  try {
    return await p;
  } catch (err) {
    if (SERVER_UNREACHABLE.has((err as { code?: string }).code ?? "")) throw err;
    return { records: [], ttlS: FAILED_LOOKUP_TTL_S };
  }
}
