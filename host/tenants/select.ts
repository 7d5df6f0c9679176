/**
 * Picks the tenant whose routing script handles a request.
 *
 * Tenants are tried in file order; the first with a matching rule wins,
 * else the default tenant, else none (the server answers with the
 * configured `unmatched` status). Within a rule every criterion given must
 * match:
 * - domains: the host of the Request-URI or of the To URI (RFC 3261 §8.1.1.1,
 *   §8.1.1.2), compared case-insensitively (§19.1.4); "*.example.com"
 *   matches any subdomain but not example.com itself; "*" matches any host;
 * - sockets: the local socket that received the message;
 * - sources: the source address, in a CIDR block (IPv4-mapped IPv6
 *   addresses count as the IPv4 address).
 *
 * A response has no Request-URI; the server should route it by its
 * transaction, and select() matches it by the To host only.
 */
import { blockListOf } from "../core/cidr.js";
import { compileHostPatterns, hostMatches, normalizeHost, type HostPatterns } from "../core/host-pattern.js";
import type { BlockList } from "node:net";
import type { ReceiveInfo } from "../core/context.js";
import type { SipMessage } from "../sip/message.js";
import { toHeader } from "../sip/parser.js";
import { parseUri } from "../sip/uri.js";
import { type SocketPattern, type TenantEntry, type TenantMatchRule, type TenantsConfig } from "./config.js";

interface CompiledRule {
  readonly domains: HostPatterns;
  readonly checksDomain: boolean;
  readonly sockets: readonly SocketPattern[];
  readonly sources: BlockList | undefined;
}

/** A rule with its tenant, numbered in file order (tenant, then rule): the lowest matching number wins. */
interface OrderedRule {
  readonly order: number;
  readonly entry: TenantEntry;
  readonly rule: CompiledRule;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

function compileRule(rule: TenantMatchRule): CompiledRule {
  // loadTenantsFile validated every block; a bad one here is a programming error.
  const sources = blockListOf(rule.sources);
  return { domains: compileHostPatterns(rule.domains), checksDomain: rule.domains.length > 0, sockets: rule.sockets, sources };
}

function socketMatches(p: SocketPattern, rcv: ReceiveInfo): boolean {
  if (p.proto !== undefined && p.proto !== rcv.proto) return false;
  if (p.port !== undefined && p.port !== rcv.localPort) return false;
  if (p.ip !== undefined && p.ip !== normalizeIp(rcv.localIp)) return false;
  return true;
}

function normalizeIp(ip: string): string {
  const mapped = MAPPED_V4.exec(ip);
  return mapped !== null ? mapped[1]! : ip.toLowerCase();
}

function sourceMatches(list: BlockList, srcIp: string): boolean {
  const ip = normalizeIp(srcIp);
  try {
    return list.check(ip, ip.includes(":") ? "ipv6" : "ipv4");
  } catch {
    // not an address at all (a hand-built ReceiveInfo)
    return false;
  }
}

/**
 * Rules whose domains are exact host names only are found through a map
 * from host to rules (a tenants file of thousands of tenants, each with
 * its domain, costs one lookup a message, not a scan); the others (a
 * wildcard, no domain criterion) are scanned, only as far as an earlier
 * rule than the best indexed match.
 */
export class TenantSelector {
  /** Exact host → the indexed rules naming it, in file order. */
  private readonly byHost = new Map<string, OrderedRule[]>();
  /** Rules that cannot be looked up by host, in file order. */
  private readonly scanned: OrderedRule[] = [];
  private readonly fallback: TenantEntry | undefined;

  constructor(config: Pick<TenantsConfig, "tenants" | "defaultTenant">) {
    let order = 0;
    for (const entry of config.tenants) {
      for (const match of entry.match) {
        const rule = compileRule(match);
        const ordered: OrderedRule = { order: order++, entry, rule };
        if (!rule.checksDomain || rule.domains.any || rule.domains.suffixes.length > 0) {
          this.scanned.push(ordered);
          continue;
        }
        for (const host of rule.domains.exact) {
          const list = this.byHost.get(host);
          if (list === undefined) this.byHost.set(host, [ordered]);
          else if (list.at(-1) !== ordered) list.push(ordered);
        }
      }
    }
    this.fallback = config.defaultTenant === undefined ? undefined : config.tenants.find((t) => t.id === config.defaultTenant);
  }

  /** The tenant for this message, or undefined when none is selected and there is no default. */
  select(msg: SipMessage, rcv: ReceiveInfo): TenantEntry | undefined {
    let hosts: string[] | undefined;
    let best: OrderedRule | undefined;
    if (this.byHost.size > 0) {
      hosts = messageHosts(msg);
      for (const host of hosts) {
        for (const candidate of this.byHost.get(host) ?? []) {
          if (best !== undefined && candidate.order >= best.order) break;
          // The host is one of its exact domains: the other criteria decide.
          if (criteriaBesidesDomainMatch(candidate.rule, rcv)) {
            best = candidate;
            break;
          }
        }
      }
    }
    for (const candidate of this.scanned) {
      if (best !== undefined && candidate.order >= best.order) break;
      const rule = candidate.rule;
      if (rule.checksDomain) {
        hosts ??= messageHosts(msg);
        if (!hosts.some((h) => domainMatches(rule, h))) continue;
      }
      if (!rule.checksDomain && rule.sockets.length === 0 && rule.sources === undefined) continue;
      if (!criteriaBesidesDomainMatch(rule, rcv)) continue;
      return candidate.entry;
    }
    return best?.entry ?? this.fallback;
  }
}

/** The rule's socket and source criteria, where given, match. */
function criteriaBesidesDomainMatch(rule: CompiledRule, rcv: ReceiveInfo): boolean {
  if (rule.sockets.length > 0 && !rule.sockets.some((p) => socketMatches(p, rcv))) return false;
  if (rule.sources !== undefined && !sourceMatches(rule.sources, rcv.srcIp)) return false;
  return true;
}

function domainMatches(rule: CompiledRule, host: string): boolean {
  return hostMatches(rule.domains, host);
}

/** Hosts of the Request-URI and the To URI (tel: URIs have none). */
function messageHosts(msg: SipMessage): string[] {
  const hosts: string[] = [];
  if (msg.kind === "request") {
    const ruri = parseUri(msg.requestUri);
    if (ruri !== null && ruri.host !== "") hosts.push(normalizeHost(ruri.host));
  }
  try {
    const to = parseUri(toHeader(msg).uri);
    if (to !== null && to.host !== "") hosts.push(normalizeHost(to.host));
  } catch {
    // no To header: only the Request-URI counts
  }
  return hosts;
}
