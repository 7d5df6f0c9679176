/**
 * CIDR blocks as the tenants file writes them ("10.0.0.0/8", "2001:db8::/32",
 * or a bare address): tenant selection by source (`match.sources`) and the
 * egress policy (`egress.allow` / `egress.deny`) read them the same way.
 */
import { BlockList, isIP } from "node:net";

/** Splits "addr/prefix" (or a bare address) into its parts; a string is the problem. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | string {
  const [address, prefixText, extra] = text.trim().split("/");
  if (extra !== undefined) return `"${text}" is not a CIDR block`;
  const version = isIP(address ?? "");
  if (version === 0) return `"${text}": "${address}" is not an IP address`;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return `"${text}": prefix length must be 0..${max}`;
    prefix = Number(prefixText);
  }
  return { address: address!, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/** The blocks as one BlockList; undefined for none. Throws on a block loadTenantsFile would have refused. */
export function blockListOf(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const c of cidrs) {
    const cidr = parseCidr(c);
    if (typeof cidr === "string") throw new Error(cidr);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return list;
}
