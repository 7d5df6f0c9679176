/**
 * Listen socket descriptors as written on the command line and in logs:
 * `udp:127.0.0.1:5060`, `tcp:[::1]:5060` (IPv6 in brackets, as in a SIP
 * URI host, RFC 3261 §25.1).
 */
import { isIP, type AddressInfo, type Server } from "node:net";
import { TRANSPORT_PROTOS as PROTOS, type ListenSocket, type TransportProto } from "../core/context.js";

/** Parse `proto:ip:port`. Throws an Error whose message says what is wrong. */
export function parseListenSocket(text: string): ListenSocket {
  const first = text.indexOf(":");
  if (first < 0) throw new Error(`"${text}" is not proto:ip:port`);
  const proto = text.slice(0, first).toLowerCase();
  if (!PROTOS.includes(proto as TransportProto)) {
    throw new Error(`"${text}": unsupported transport "${proto}" (use ${PROTOS.join(", ")})`);
  }
  const rest = text.slice(first + 1);
  let ip: string;
  let portText: string;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0 || rest[close + 1] !== ":") throw new Error(`"${text}": expected [ipv6]:port`);
    ip = rest.slice(1, close);
    portText = rest.slice(close + 2);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon < 0) throw new Error(`"${text}" is not proto:ip:port`);
    ip = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
  }
  if (isIP(ip) === 0) throw new Error(`"${text}": "${ip}" is not an IP address`);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new Error(`"${text}": "${portText}" is not a port number`);
  }
  return { proto: proto as TransportProto, ip, port: Number(portText) };
}

/** `ip:port` with IPv6 bracketed, as used in Via sent-by and URIs. */
export function formatHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function formatListenSocket(s: ListenSocket): string {
  return `${s.proto}:${formatHostPort(s.ip, s.port)}`;
}

/** Strip the brackets of an IPv6 reference ("[::1]" → "::1"). */
export function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * Compare two IP literals, tolerating the IPv4-mapped IPv6 form Node reports
 * for dual-stack sockets ("::ffff:127.0.0.1") and IPv6 case differences.
 */
export function sameIp(a: string, b: string): boolean {
  return normalizeIp(a) === normalizeIp(b);
}

export function normalizeIp(ip: string): string {
  const bare = unbracket(ip).toLowerCase();
  return bare.startsWith("::ffff:") && isIP(bare.slice(7)) === 4 ? bare.slice(7) : bare;
}

export function isWildcardIp(ip: string): boolean {
  return ip === "0.0.0.0" || ip === "::";
}

/**
 * Binds a stream server (TCP, TLS handshake front, WebSocket's HTTP server)
 * to `config`; resolves with the socket bound (port 0 resolved). A wildcard
 * "::" also accepts IPv4 (ipv6Only off).
 */
export function listenStream(server: Server, config: ListenSocket, proto: TransportProto): Promise<ListenSocket> {
  return new Promise<ListenSocket>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: config.ip, port: config.port, ipv6Only: config.ip === "::" ? false : undefined }, () => {
      server.off("error", reject);
      resolve({ proto, ip: config.ip, port: (server.address() as AddressInfo).port });
    });
  });
}
