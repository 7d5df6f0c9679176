/**
 * Where a tenant's script may send requests (`egress:` in the tenants
 * file): a hosted script must not be able to aim the server at the
 * operator's own network. A destination address is allowed when it is in
 * the tenant's `allow` list, refused when it is in its `deny` list, and
 * allowed otherwise. The default `deny` of a tenants-file tenant is every
 * address that is not public: loopback, link-local, private (RFC 1918,
 * RFC 4193), shared (RFC 6598) and "this network"; `ksr run script.js`
 * (the operator's own script) sends anywhere. The check is on the address
 * a request is actually sent to, after any host name is resolved;
 * responses go where the protocol sends them (RFC 3261 §18.2.2) and are
 * not checked.
 */
import { BlockList, isIP } from "node:net";

/** What is refused unless allowed, for a tenant of a tenants file. */
export const DEFAULT_EGRESS_DENY: readonly string[] = Object.freeze([
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "::/128",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
]);

/** The lists as written (CIDRs or single addresses). */
export interface EgressRules {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/** No restriction: `ksr run script.js`. */
export const UNRESTRICTED_EGRESS: EgressRules = Object.freeze({ allow: [], deny: [] });

export interface EgressPolicy {
  /** Undefined when the address may be sent to, else why not. */
  refusal(ip: string): string | undefined;
}

/** A CIDR ("10.0.0.0/8", "fe80::/10") or a single address; an error text when it is neither. */
export function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf("/");
  const addr = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return `"${text}" is not an IP address or CIDR`;
  if (slash === -1) return undefined;
  const bits = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return `"${text}" has a bad prefix length`;
  return undefined;
}

function blockListOf(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const c of cidrs) {
    const problem = cidrProblem(c);
    if (problem !== undefined) throw new Error(problem);
    const slash = c.indexOf("/");
    const addr = slash === -1 ? c : c.slice(0, slash);
    const type = isIP(addr) === 6 ? "ipv6" : "ipv4";
    if (slash === -1) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(c.slice(slash + 1)), type);
  }
  return list;
}

/** The policy of the rules of `tenant`; undefined when nothing is denied (every address allowed). */
export function compileEgress(rules: EgressRules, tenant: string): EgressPolicy | undefined {
  const deny = blockListOf(rules.deny);
  if (deny === undefined) return undefined;
  const allow = blockListOf(rules.allow);
  return {
    refusal(ip: string): string | undefined {
      const type = isIP(ip) === 6 ? "ipv6" : "ipv4";
      if (allow?.check(ip, type) === true) return undefined;
      return deny.check(ip, type) ? `denied by tenant ${tenant}'s egress policy` : undefined;
    },
  };
}
