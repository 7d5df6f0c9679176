/**
 * "Is this address one of ours?" — Kamailio's check_self(), used by
 * KSR.is_myself*, siputils.is_first_hop and options handling.
 *
 * A host matches when it equals the IP of a listening socket (IPv6 compared
 * in canonical form, brackets ignored) or one of the configured aliases
 * (case-insensitive). As in Kamailio, a port of 0 (the URI had no port)
 * matches any port, and a protocol of "" (no ;transport) matches any
 * protocol; a given port must equal the socket's / alias's port. A socket
 * bound to a wildcard address (0.0.0.0 / ::) stands for every address of
 * the machine's interfaces, as Kamailio expands such a listen line.
 */
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { HostServices, ListenSocket } from "../core/context.js";
import { parseUriCached } from "./msgutil.js";

/** Lowercase IP text without brackets, IPv6 fully expanded; else the input lowercased. */
export function canonicalHost(host: string): string {
  let h = host;
  if (h.length > 2 && h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  h = h.toLowerCase();
  if (isIP(h) === 6) return expandIPv6(h);
  return h;
}

function expandIPv6(ip: string): string {
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  let text = ip;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const b = tail.split(".").map(Number);
    text = text.slice(0, lastColon + 1) + ((b[0]! << 8) | b[1]!).toString(16) + ":" + ((b[2]! << 8) | b[3]!).toString(16);
  }
  const [head, rest] = text.split("::") as [string, string | undefined];
  const headParts = head.length ? head.split(":") : [];
  const restParts = rest === undefined ? [] : rest.length ? rest.split(":") : [];
  const fill = rest === undefined ? 0 : 8 - headParts.length - restParts.length;
  const parts = [...headParts, ...Array<string>(fill).fill("0"), ...restParts];
  return parts.map((p) => parseInt(p, 16).toString(16)).join(":");
}

/** What "local" is made of: the listening sockets and the alias names. */
export type LocalAddresses = Pick<HostServices, "listen" | "aliases">;

let localAddressCache: { at: number; addrs: Set<string> } | undefined;

/** Addresses of the machine's interfaces (re-read at most every 30 s). */
function localAddresses(): Set<string> {
  const now = Date.now();
  if (localAddressCache === undefined || now - localAddressCache.at > 30_000) {
    const addrs = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) addrs.add(canonicalHost(a.address.split("%")[0]!));
    }
    localAddressCache = { at: now, addrs };
  }
  return localAddressCache.addrs;
}

function socketMatches(s: ListenSocket, host: string, port: number, proto: string): boolean {
  if (port !== 0 && s.port !== port) return false;
  if (proto !== "" && s.proto !== proto) return false;
  const ip = canonicalHost(s.ip);
  if (ip === host) return true;
  if (ip === "0.0.0.0" || ip === "0:0:0:0:0:0:0:0") {
    const wantV6 = ip !== "0.0.0.0";
    return (isIP(host) === 6) === wantV6 && localAddresses().has(host);
  }
  return false;
}

interface Alias {
  readonly host: string;
  readonly port: number;
  readonly proto: string;
}

const aliasCache = new WeakMap<readonly string[], Alias[]>();

/** Aliases as "[proto:]host[:port]" (IPv6 in brackets), parsed once per list. */
function parsedAliases(list: readonly string[]): Alias[] {
  let out = aliasCache.get(list);
  if (out === undefined) {
    out = list.map(parseAlias).filter((a): a is Alias => a !== null);
    aliasCache.set(list, out);
  }
  return out;
}

function parseAlias(text: string): Alias | null {
  const spec = parseSocketSpec(text);
  return spec === null ? null : { host: canonicalHost(spec.host), port: spec.port, proto: spec.proto };
}

/**
 * "[proto:]host[:port]" as aliases and $fs are written: proto and port
 * optional (port 0 = not given); an IPv6 host in brackets, or bare when the
 * text has several colons and no port. Null when malformed.
 */
export function parseSocketSpec(text: string): { proto: string; host: string; port: number } | null {
  let rest = text.trim();
  let proto = "";
  // "udp:5060" is host "udp" with a port, not a protocol without a host.
  const m = /^(udp|tcp|tls|sctp|ws|wss):(?!\d+$)/i.exec(rest);
  if (m !== null && !rest.startsWith("[")) {
    proto = m[1]!.toLowerCase();
    rest = rest.slice(m[0].length);
  }
  let host = rest;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close === -1) return null;
    host = rest.slice(0, close + 1);
    const after = rest.slice(close + 1);
    if (after.length > 0) {
      if (!after.startsWith(":")) return null;
      portText = after.slice(1);
    }
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon !== -1 && rest.indexOf(":") === colon) {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    }
  }
  if (portText !== undefined && !/^\d{1,5}$/.test(portText)) return null;
  const port = portText === undefined ? 0 : Number(portText);
  if (port > 65535 || host.length === 0) return null;
  return { proto, host, port };
}

/**
 * check_self(host, port, proto): port 0 = any port, proto "" = any protocol.
 * An empty host (tel: URI) never matches.
 */
export function isLocalAddress(services: LocalAddresses, host: string, port: number, proto: string): boolean {
  if (host.length === 0) return false;
  const h = canonicalHost(host);
  for (const s of services.listen) if (socketMatches(s, h, port, proto)) return true;
  for (const a of parsedAliases(services.aliases)) {
    if (a.host === h && (a.port === 0 || port === 0 || a.port === port) && (a.proto === "" || proto === "" || a.proto === proto)) {
      return true;
    }
  }
  return false;
}

/**
 * KSR.is_myself(text): a "sip:"/"sips:" URI is parsed and its host, port (0
 * when absent) and transport parameter are checked; any other text is
 * taken whole as a host name (so "1.2.3.4:5060" is not split, as in
 * Kamailio). An unparsable URI is not local.
 */
export function isMyselfText(services: LocalAddresses, text: string): boolean {
  if (text.length > 4 && (text.startsWith("sip:") || text.startsWith("sips:"))) {
    const u = parseUriCached(text);
    if (u === null) return false;
    return isLocalAddress(services, u.host, u.port ?? 0, uriTransportParam(u.params));
  }
  return isLocalAddress(services, text, 0, "");
}

/** The ;transport value lowercased, "" when absent (Kamailio proto 0). */
export function uriTransportParam(params: readonly { name: string; value?: string }[]): string {
  for (const p of params) if (p.name.toLowerCase() === "transport") return (p.value ?? "").toLowerCase();
  return "";
}
