/**
 * KSR.ipops (Kamailio ipops module): IP address checks and DNS queries
 * for scripts, with Kamailio 5.6's return values (scripts branch on them).
 *
 * DNS without blocking. A KEMI call is synchronous (the isolate waits for
 * the host function to return) and a DNS lookup is not, so the DNS
 * functions answer from the server's DNS record cache (host/dns/resolver.ts,
 * the one next-hop resolution uses, with the same --dns-server and TTLs).
 * A name not in the cache is looked up in the background and the call
 * answers as a failed lookup (dns_query and the match functions -4,
 * srv_query and naptr_query -1), logging that the answer is pending; a call
 * after the lookup ends gets the answer. Waiting in the call instead would
 * stop the server's one event loop, every tenant's messages with it, for up
 * to the resolver's timeout.
 *
 * Result containers ($dns(pv=>...), $srvquery(pv=>...), $naptrquery(pv=>...))
 * are kept per tenant and survive the message, as Kamailio keeps them per
 * process; at most MAX_CONTAINERS names per kind and tenant.
 */
import { BlockList, isIP } from "node:net";
import type { MessageContext } from "../core/context.js";
import type { CachingDnsLookups } from "../dns/resolver.js";
import { orderSrv, type NaptrRecord, type SrvRecord } from "../dns/rfc3263.js";
import type { KemiModule, PvClass } from "./types.js";
import type { PvAccessor, PvValue } from "./pv.js";
import { TenantScoped } from "./state/tenant-scope.js";

// ------------------------------------------------------------ IP parsing

type IpKind = "ipv4" | "ipv6" | "ipv6ref" | undefined;

/** Kamailio's ip_parser: an IPv4 address, an IPv6 address, or an IPv6 reference ("[...]"). */
export function ipKind(text: string): IpKind {
  if (isIP(text) === 4) return "ipv4";
  if (isIP(text) === 6) return "ipv6";
  if (text.length > 2 && text.startsWith("[") && text.endsWith("]") && isIP(text.slice(1, -1)) === 6) return "ipv6ref";
  return undefined;
}

/** The address as bytes, for comparing IPv6 written in different forms. */
function addressBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  return expandIpv6(ip);
}

function expandIpv6(ip: string): Buffer {
  let text = ip;
  // An IPv4 tail (::ffff:1.2.3.4) as two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = v4[1]!.split(".").map(Number);
    text = text.slice(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head === "" ? [] : head!.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function sameAddress(a: string, b: string): boolean {
  return isIP(a) === isIP(b) && addressBytes(a).equals(addressBytes(b));
}

const unref = (s: string): string => (s.startsWith("[") ? s.slice(1, -1) : s);

/** compare_ips: 1 when both are addresses (IPv6 references allowed) and equal, else -1. */
function compareIps(a: string, b: string, references: boolean): number {
  const ka = ipKind(a);
  const kb = ipKind(b);
  if (ka === undefined || kb === undefined) return -1;
  if (!references && (ka === "ipv6ref" || kb === "ipv6ref")) return -1;
  return sameAddress(unref(a), unref(b)) ? 1 : -1;
}

/**
 * ip_is_in_subnet / is_in_subnet: 1 when `ip` is in one of the
 * comma-separated subnets ("net/bits", or a bare address for equality),
 * else -1 (also for an invalid address or IPv6 reference).
 */
function ipInSubnets(ip: string, subnets: string): number {
  const kind = ipKind(ip);
  if (kind === undefined || kind === "ipv6ref") return -1;
  for (const part of subnets.split(",")) {
    const s = part.trim();
    if (s === "") continue;
    const slash = s.lastIndexOf("/");
    const net = slash > 0 ? s.slice(0, slash) : s;
    const netKind = ipKind(net);
    if (netKind !== kind) continue;
    if (slash <= 0) {
      if (sameAddress(ip, net)) return 1;
      continue;
    }
    // Kamailio reads the mask with atoi: leading digits, out of range is no match.
    const bits = Number(/^\s*-?\d*/.exec(s.slice(slash + 1))![0] || "0");
    if (bits < 0 || bits > (kind === "ipv4" ? 32 : 128)) continue;
    const list = new BlockList();
    list.addSubnet(net, bits, kind);
    if (list.check(ip, kind)) return 1;
  }
  return -1;
}

/** RFC 1918 private IPv4 space. */
const RFC1918 = blockList("ipv4", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]);

function blockList(family: "ipv4" | "ipv6", cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split("/");
    list.addSubnet(net!, Number(bits), family);
  }
  return list;
}

/**
 * The special-purpose ranges (IANA registries, RFC 6890 and the RFCs it
 * cites) with the names Kamailio's detailed_ip_type gives them; the first
 * that contains the address names it, an IPv4 address in none is PUBLIC.
 */
const IPV4_TYPES: ReadonlyArray<readonly [string, BlockList]> = (
  [
    ["BROADCAST", "255.255.255.255/32"],
    ["TEST-NET", "203.0.113.0/24"],
    ["TEST-NET", "198.51.100.0/24"],
    ["6TO4-RELAY", "192.88.99.0/24"],
    ["TEST-NET", "192.0.2.0/24"],
    ["RESERVED", "192.0.0.0/24"],
    ["PRIVATE", "192.168.0.0/16"],
    ["LINK-LOCAL", "169.254.0.0/16"],
    ["RESERVED", "198.18.0.0/15"],
    ["PRIVATE", "172.16.0.0/12"],
    ["SHARED", "100.64.0.0/10"],
    ["LOOPBACK", "127.0.0.0/8"],
    ["PRIVATE", "10.0.0.0/8"],
    ["PRIVATE", "0.0.0.0/8"],
    ["RESERVED", "240.0.0.0/4"],
    ["MULTICAST", "224.0.0.0/4"],
  ] as const
).map(([name, cidr]) => [name, blockList("ipv4", [cidr])] as const);

const IPV6_TYPES: ReadonlyArray<readonly [string, BlockList]> = (
  [
    ["UNSPECIFIED", "::/128"],
    ["LOOPBACK", "::1/128"],
    ["IPV4MAP", "::ffff:0:0/96"],
    ["DISCARD", "100::/64"],
    ["BMWG", "2001:2::/48"],
    ["TEREDO", "2001::/32"],
    ["DOCUMENTATION", "2001:db8::/32"],
    ["ORCHID", "2001:10::/28"],
    ["6TO4", "2002::/16"],
    ["RESERVED", "fec0::/10"],
    ["LINK-LOCAL-UNICAST", "fe80::/10"],
    ["RESERVED", "fe00::/9"],
    ["RESERVED", "::/8"],
    ["RESERVED", "100::/8"],
    ["MULTICAST", "ff00::/8"],
    ["RESERVED", "200::/7"],
    ["UNIQUE-LOCAL-UNICAST", "fc00::/7"],
    ["RESERVED", "400::/6"],
    ["RESERVED", "f800::/6"],
    ["RESERVED", "800::/5"],
    ["RESERVED", "f000::/5"],
    ["RESERVED", "e000::/4"],
    ["RESERVED", "1000::/4"],
    ["RESERVED", "c000::/3"],
    ["GLOBAL-UNICAST", "2000::/3"],
    ["RESERVED", "4000::/3"],
    ["RESERVED", "6000::/3"],
    ["RESERVED", "8000::/3"],
    ["RESERVED", "a000::/3"],
  ] as const
).map(([name, cidr]) => [name, blockList("ipv6", [cidr])] as const);

/** The detailed type name of an address of the given family, or undefined when it is not one. */
function detailedType(text: string, family: "ipv4" | "ipv6"): string | undefined {
  const ip = text.trim();
  if (family === "ipv4") {
    if (isIP(ip) !== 4) return undefined;
    return IPV4_TYPES.find(([, list]) => list.check(ip, "ipv4"))?.[0] ?? "PUBLIC";
  }
  const bare = unref(ip);
  if (isIP(bare) !== 6) return undefined;
  return IPV6_TYPES.find(([, list]) => list.check(bare, "ipv6"))?.[0];
}

/** detailed_ip*_type: 1 and the type name in `pvName`, -1 when the address is not of the type asked or the PV cannot be set. */
function setDetailedType(ctx: MessageContext, ip: string, pvName: string, family: "ipv4" | "ipv6" | undefined): number {
  const kind = ipKind(ip);
  const wanted = family ?? (kind === "ipv4" ? "ipv4" : kind === undefined ? undefined : "ipv6");
  if (wanted === undefined) return -1;
  const type = detailedType(ip, wanted);
  if (type === undefined) return -1;
  return writePv(ctx, pvName, type) ? 1 : -1;
}

/** Set by the pv module when it loads (pv.ts imports this module's accessors; a direct import would be a cycle). */
let writePvImpl: ((ctx: MessageContext, name: string, value: PvValue) => boolean) | undefined;
export function setIpopsPvWriter(write: (ctx: MessageContext, name: string, value: PvValue) => boolean): void {
  writePvImpl = write;
}
function writePv(ctx: MessageContext, name: string, value: PvValue): boolean {
  if (writePvImpl === undefined || !writePvImpl(ctx, name, value)) {
    ctx.host.log("err", `result pvar is not found or not writable: ${name}\n`, ctx);
    return false;
  }
  return true;
}

// ------------------------------------------------------------ DNS

/** Kamailio's limits: 32 records per SRV/NAPTR container; dns_query keeps up to PV_DNS_RECS addresses. */
const MAX_RECORDS = 32;
const MAX_ADDRESSES = 32;
/** Containers per kind and tenant: names come from scripts, which may build them. */
export const MAX_CONTAINERS = 64;

interface DnsContainer {
  addresses: Array<{ addr: string; type: 4 | 6 }>;
}
interface SrvContainer {
  records: SrvRecord[];
}
interface NaptrContainer {
  records: NaptrRecord[];
}

class Containers<T> {
  private readonly byName = new Map<string, T>();
  constructor(private readonly empty: () => T) {}
  get(name: string): T | undefined {
    return this.byName.get(name);
  }
  /** The container, created when there is room; undefined when the tenant has MAX_CONTAINERS already. */
  obtain(name: string): T | undefined {
    let c = this.byName.get(name);
    if (c === undefined) {
      if (this.byName.size >= MAX_CONTAINERS) return undefined;
      c = this.empty();
      this.byName.set(name, c);
    }
    return c;
  }
}

const dnsContainers = new TenantScoped(() => new Containers<DnsContainer>(() => ({ addresses: [] })));
const srvContainers = new TenantScoped(() => new Containers<SrvContainer>(() => ({ records: [] })));
const naptrContainers = new TenantScoped(() => new Containers<NaptrContainer>(() => ({ records: [] })));

function recordsOf(ctx: MessageContext): CachingDnsLookups | undefined {
  const dns = ctx.host.dnsRecords;
  if (dns === undefined) ctx.host.log("err", "ipops: this server has no DNS resolver\n", ctx);
  return dns;
}

/** Starts a background lookup of what is not cached, with a log line; its outcome only fills the cache. */
function lookUpLater(ctx: MessageContext, dns: CachingDnsLookups, fn: string, type: "a" | "aaaa" | "srv" | "naptr", name: string): void {
  ctx.host.log("info", `${fn}: ${name} (${type.toUpperCase()}) is not in the DNS cache yet: looked up in the background, answered as not resolved now\n`, ctx);
  dns.lookup(type, name).catch(() => {});
}

/**
 * The addresses of a name from the cache (A, then AAAA), the name itself
 * for an IP literal; "pending" when a lookup had to start.
 */
function cachedAddresses(ctx: MessageContext, fn: string, name: string): Array<{ addr: string; type: 4 | 6 }> | "pending" | undefined {
  const literal = isIP(unref(name));
  if (literal !== 0) return [{ addr: unref(name), type: literal === 4 ? 4 : 6 }];
  const dns = recordsOf(ctx);
  if (dns === undefined) return undefined;
  const a = dns.peek("a", name);
  const aaaa = dns.peek("aaaa", name);
  if (a === undefined) lookUpLater(ctx, dns, fn, "a", name);
  if (aaaa === undefined) lookUpLater(ctx, dns, fn, "aaaa", name);
  if (a === undefined || aaaa === undefined) return "pending";
  return [...a.records.map((addr) => ({ addr, type: 4 as const })), ...aaaa.records.map((addr) => ({ addr, type: 6 as const }))];
}

/** dns_query: 1 and the container filled; -2 name too long; -3 no container; -4 not resolved (or not cached yet). */
function dnsQuery(ctx: MessageContext, hostname: string, pvid: string): number {
  if (hostname.length > 255) return -2;
  const container = dnsContainers.get(ctx.tenant.id).obtain(pvid);
  if (container === undefined) return -3;
  container.addresses = [];
  const found = cachedAddresses(ctx, "dns_query", hostname);
  if (found === undefined || found === "pending" || found.length === 0) {
    if (found !== "pending") ctx.host.log("err", `unable to resolve ${hostname}\n`, ctx);
    return -4;
  }
  container.addresses = found.slice(0, MAX_ADDRESSES);
  return 1;
}

/** dns_int_match_ip / dns_sys_match_ip: 1 the name resolves to ip; -1 it does not; -3 ip invalid; -4 not resolved (or not cached yet). */
function dnsMatchIp(ctx: MessageContext, fn: string, hostname: string, ip: string): number {
  const kind = ipKind(ip);
  if (kind === undefined) {
    ctx.host.log("err", `invalid ip address: ${ip}\n`, ctx);
    return -3;
  }
  const found = cachedAddresses(ctx, fn, hostname);
  if (found === undefined || found === "pending" || found.length === 0) return -4;
  return found.some((f) => sameAddress(f.addr, unref(ip))) ? 1 : -1;
}

/**
 * srv_query / naptr_query: 1 and the container filled with the cached
 * records in `order`; -2 no name; -3 no container; -1 not cached yet (a
 * lookup starts).
 */
function recordQuery<R>(
  ctx: MessageContext,
  type: "srv" | "naptr",
  name: string,
  containers: TenantScoped<Containers<{ records: R[] }>>,
  pvid: string,
  order: (records: R[]) => R[],
): number {
  if (name === "") return -2;
  const container = containers.get(ctx.tenant.id).obtain(pvid);
  if (container === undefined) return -3;
  container.records = [];
  const dns = recordsOf(ctx);
  if (dns === undefined) return -1;
  const answer = dns.peek(type, name) as { records: readonly R[] } | undefined;
  if (answer === undefined) {
    lookUpLater(ctx, dns, `${type}_query`, type, name);
    return -1;
  }
  container.records = order(answer.records.slice(0, MAX_RECORDS));
  return 1;
}

/** srv_query: records by priority, weighted within one (RFC 2782). */
function srvQuery(ctx: MessageContext, name: string, pvid: string, random: () => number = Math.random): number {
  return recordQuery(ctx, "srv", name, srvContainers, pvid, (records) => orderSrv(records, random));
}

/** naptr_query: records by order, then preference. */
function naptrQuery(ctx: MessageContext, name: string, pvid: string): number {
  return recordQuery(ctx, "naptr", name, naptrContainers, pvid, (records) => records.sort((a, b) => a.order - b.order || a.preference - b.preference));
}

// ------------------------------------------------------------ result PVs

type IndexOf = (ctx: MessageContext) => number | undefined;

/** "pv=>key[index]" of $dns, $srvquery, $naptrquery: container, key, and index (a number, or a PV giving one). */
function parseContainerPv(inner: string, lookupPv: (name: string) => PvAccessor | null): { container: string; key: string; index: IndexOf } | null {
  const m = /^\s*([^\s=]+)\s*=>\s*([a-z0-9]+)(?:\[(.+)\])?\s*$/.exec(inner);
  if (m === null) return null;
  const indexText = m[3];
  let index: IndexOf = () => 0;
  if (indexText !== undefined) {
    if (/^-?\d+$/.test(indexText)) {
      const n = Number(indexText);
      index = () => n;
    } else if (indexText.startsWith("$")) {
      const pv = lookupPv(indexText);
      if (pv === null) return null;
      index = (ctx) => {
        const v = pv.get(ctx);
        return typeof v === "number" ? v : undefined;
      };
    } else {
      return null;
    }
  }
  return { container: m[1]!, key: m[2]!, index };
}

/** A negative index counts from the end; undefined when out of range. */
function at<T>(list: readonly T[], i: number | undefined): T | undefined {
  if (i === undefined) return undefined;
  const j = i < 0 ? list.length + i : i;
  return j >= 0 && j < list.length ? list[j] : undefined;
}

const DNS_KEYS = new Set(["addr", "type", "ipv4", "ipv6", "count"]);
const SRV_KEYS = new Set(["count", "port", "priority", "target", "weight"]);
const NAPTR_KEYS = new Set(["count", "order", "pref", "flags", "services", "regex", "replace"]);

/** $dns(pv=>key[i]), $srvquery(pv=>key[i]), $naptrquery(pv=>key[i]); null for another class or a malformed name. */
export function ipopsPvAccessor(cls: string, inner: string, lookupPv: (name: string) => PvAccessor | null): PvAccessor | null {
  const p = parseContainerPv(inner, lookupPv);
  if (p === null) return null;
  const { container, key, index } = p;
  switch (cls) {
    case "dns":
      if (!DNS_KEYS.has(key)) return null;
      return {
        get(ctx): PvValue {
          const c = dnsContainers.get(ctx.tenant.id).get(container);
          const list = c?.addresses ?? [];
          if (key === "count") return list.length;
          if (key === "ipv4") return list.some((a) => a.type === 4) ? 1 : 0;
          if (key === "ipv6") return list.some((a) => a.type === 6) ? 1 : 0;
          const item = at(list, index(ctx));
          if (item === undefined) return null;
          return key === "addr" ? item.addr : item.type;
        },
      };
    case "srvquery":
      if (!SRV_KEYS.has(key)) return null;
      return {
        get(ctx): PvValue {
          const list = srvContainers.get(ctx.tenant.id).get(container)?.records ?? [];
          if (key === "count") return list.length;
          const r = at(list, index(ctx));
          if (r === undefined) return null;
          return key === "target" ? r.name : key === "port" ? r.port : key === "priority" ? r.priority : r.weight;
        },
      };
    case "naptrquery":
      if (!NAPTR_KEYS.has(key)) return null;
      return {
        get(ctx): PvValue {
          const list = naptrContainers.get(ctx.tenant.id).get(container)?.records ?? [];
          if (key === "count") return list.length;
          const r = at(list, index(ctx));
          if (r === undefined) return null;
          switch (key) {
            case "order":
              return r.order;
            case "pref":
              return r.preference;
            case "flags":
              return r.flags;
            case "services":
              return r.service;
            case "regex":
              return r.regexp;
            default:
              return r.replacement;
          }
        },
      };
    default:
      return null;
  }
}

// ------------------------------------------------------------ the module

const yesNo = (ok: boolean): number => (ok ? 1 : -1);
const IP_TYPE_CODES = { ipv4: 1, ipv6: 2, ipv6ref: 3 } as const;

/** $dns(pv=>key), $srvquery(pv=>key), $naptrquery(pv=>key): what dns_query, srv_query and naptr_query stored under their container name. */
const IPOPS_PVS: readonly PvClass[] = [
  { names: ["dns"], doc: "dns_query result: count, ipv4, ipv6, addr[i], type[i]" },
  { names: ["srvquery"], doc: "srv_query result: count, port[i], priority[i], target[i], weight[i]" },
  { names: ["naptrquery"], doc: "naptr_query result: count, order[i], pref[i], flags[i], services[i], regex[i], replace[i]" },
].map(({ names, doc }) => ({
  names,
  form: "named",
  nestedInner: true,
  writable: false,
  doc,
  compile: (inner, _index, cls, lookup) => (inner === undefined ? null : ipopsPvAccessor(cls, inner, lookup)),
}));

export const ipopsModule: KemiModule = {
  pvs: IPOPS_PVS,
  name: "ipops",
  kamailioModule: "ipops",
  functions: {
    is_ip: { params: ["str"], returns: "int", doc: "1 if an IPv4 address, IPv6 address or IPv6 reference ([...]); -1 if not.", run: (_ctx, s: string) => yesNo(ipKind(s) !== undefined) },
    is_pure_ip: { params: ["str"], returns: "int", doc: "1 if an IPv4 or IPv6 address (no reference); -1 if not.", run: (_ctx, s: string) => yesNo(ipKind(s) === "ipv4" || ipKind(s) === "ipv6") },
    is_ip4: { params: ["str"], returns: "int", doc: "1 if an IPv4 address; -1 if not.", run: (_ctx, s: string) => yesNo(ipKind(s) === "ipv4") },
    is_ip6: { params: ["str"], returns: "int", doc: "1 if an IPv6 address (not a reference); -1 if not.", run: (_ctx, s: string) => yesNo(ipKind(s) === "ipv6") },
    is_ip6_reference: { params: ["str"], returns: "int", doc: "1 if an IPv6 reference ([...]); -1 if not.", run: (_ctx, s: string) => yesNo(ipKind(s) === "ipv6ref") },
    ip_type: {
      params: ["str"],
      returns: "int",
      doc: "1 IPv4, 2 IPv6, 3 IPv6 reference, -1 not an address.",
      run(_ctx, s: string) {
        const kind = ipKind(s);
        return kind === undefined ? -1 : IP_TYPE_CODES[kind];
      },
    },
    detailed_ipv4_type: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 and the IPv4 address's type (PUBLIC, PRIVATE, LOOPBACK, TEST-NET, ...) in the PV named; -1 not an IPv4 address.",
      run: (ctx, ip: string, pv: string) => setDetailedType(ctx, ip, pv, "ipv4"),
    },
    detailed_ipv6_type: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 and the IPv6 address's type (GLOBAL-UNICAST, LOOPBACK, DOCUMENTATION, ...) in the PV named; -1 not an IPv6 address.",
      run: (ctx, ip: string, pv: string) => setDetailedType(ctx, ip, pv, "ipv6"),
    },
    detailed_ip_type: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 and the address's type (either family) in the PV named; -1 not an address.",
      run: (ctx, ip: string, pv: string) => setDetailedType(ctx, ip, pv, undefined),
    },
    compare_ips: { params: ["str", "str"], returns: "int", doc: "1 if both are the same address (IPv6 references allowed); -1 if not or invalid.", run: (_ctx, a: string, b: string) => compareIps(a, b, true) },
    compare_pure_ips: { params: ["str", "str"], returns: "int", doc: "1 if both are the same address (no references); -1 if not or invalid.", run: (_ctx, a: string, b: string) => compareIps(a, b, false) },
    ip_is_in_subnet: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 if the address is in one of the comma-separated subnets (net/bits); -1 if not or invalid.",
      run: (_ctx, ip: string, subnets: string) => ipInSubnets(ip, subnets),
    },
    is_in_subnet: {
      params: ["str", "str"],
      returns: "int",
      doc: "Same as ip_is_in_subnet.",
      run: (_ctx, ip: string, subnets: string) => ipInSubnets(ip, subnets),
    },
    is_ip_rfc1918: {
      params: ["str"],
      returns: "int",
      doc: "1 if an IPv4 address in RFC 1918 private space; -1 if not.",
      run: (_ctx, s: string) => yesNo(isIP(s) === 4 && RFC1918.check(s, "ipv4")),
    },
    dns_sys_match_ip: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 if the name resolves to the address; -1 if not; -3 invalid address; -4 not resolved (or not in the DNS cache yet: looked up in the background).",
      run: (ctx, name: string, ip: string) => dnsMatchIp(ctx, "dns_sys_match_ip", name, ip),
    },
    dns_int_match_ip: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 if the name resolves to the address; -1 if not; -3 invalid address; -4 not resolved (or not in the DNS cache yet: looked up in the background).",
      run: (ctx, name: string, ip: string) => dnsMatchIp(ctx, "dns_int_match_ip", name, ip),
    },
    dns_query: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 and $dns(pvid=>addr[i]/type[i]/ipv4/ipv6/count) filled; -2 name too long; -3 too many containers; -4 not resolved (or not in the DNS cache yet).",
      run: (ctx, name: string, pvid: string) => dnsQuery(ctx, name, pvid),
    },
    srv_query: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 and $srvquery(pvid=>count/target[i]/port[i]/priority[i]/weight[i]) filled, RFC 2782 order; -2 no name; -1 not in the DNS cache yet.",
      run: (ctx, name: string, pvid: string) => srvQuery(ctx, name, pvid),
    },
    naptr_query: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 and $naptrquery(pvid=>count/order[i]/pref[i]/flags[i]/services[i]/regex[i]/replace[i]) filled; -2 no name; -1 not in the DNS cache yet.",
      run: (ctx, name: string, pvid: string) => naptrQuery(ctx, name, pvid),
    },
  },
  // Native functions (Kamailio ipops cmd exports) for KSR.x.modf.
  native: [
    { name: "is_ip", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_ip" },
    { name: "is_pure_ip", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_pure_ip" },
    { name: "is_ipv4", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_ip4" },
    { name: "is_ipv6", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_ip6" },
    { name: "is_ipv6_reference", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_ip6_reference" },
    { name: "ip_type", params: ["str"], routes: ["ANY_ROUTE"], kemi: "ip_type" },
    { name: "detailed_ipv4_type", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "detailed_ipv4_type", literal: true },
    { name: "detailed_ipv6_type", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "detailed_ipv6_type", literal: true },
    { name: "detailed_ip_type", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "detailed_ip_type", literal: true },
    { name: "compare_ips", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "compare_ips" },
    { name: "compare_pure_ips", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "compare_pure_ips" },
    { name: "is_ip_rfc1918", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_ip_rfc1918" },
    { name: "is_in_subnet", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "is_in_subnet" },
    { name: "dns_sys_match_ip", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "dns_sys_match_ip" },
    { name: "dns_int_match_ip", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "dns_int_match_ip" },
    { name: "dns_query", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "dns_query" },
    { name: "srv_query", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "srv_query" },
    { name: "naptr_query", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "naptr_query" },
  ],
};

/** For unit tests: srv_query with an injected random source. */
export const ipopsInternals = { srvQuery } as const;
