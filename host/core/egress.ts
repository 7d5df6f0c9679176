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
import { isIP } from "node:net";
import { blockListOf } from "./cidr.js";

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
