/**
 * Where responses go and which Vias are ours: the addressing rules of
 * RFC 3261 §18.2.1/§18.2.2 and RFC 3581 (rport), shared by locally generated
 * replies and statelessly forwarded responses.
 */
import { isIP } from "node:net";
import type { ListenSocket, ReceiveInfo, TransportProto } from "./context.js";
import type { Via } from "../sip/via.js";
import { setViaParam } from "../sip/via.js";
import { isWildcardIp, sameIp, unbracket } from "../transport/listen-socket.js";

/** A destination before name resolution: `host` may be a host name or an (unbracketed) IP literal. */
export interface Destination {
  readonly proto: TransportProto;
  readonly host: string;
  readonly port: number;
  /** TCP: the connection to try first. */
  readonly connectionId?: number;
}

/** Lowercase transport of a Via, or undefined when we cannot send over it (TLS, SCTP, WS ...). */
export function viaTransport(via: Via): TransportProto | undefined {
  const t = via.transport.toLowerCase();
  return t === "udp" || t === "tcp" ? t : undefined;
}

/**
 * The top Via of a received request as a server stamps it (RFC 3261
 * §18.2.1): `received=<source ip>` when sent-by is not the source address;
 * with RFC 3581 §4 (rport flag present, or forced by the script) also
 * `rport=<source port>`, and then received is added even when equal.
 */
export function stampReceivedVia(via: Via, rcv: ReceiveInfo, forceRport: boolean): Via {
  let out = via;
  const wantsRport = via.rport === "" || forceRport;
  if (wantsRport || !sameIp(unbracket(via.host), rcv.srcIp)) {
    out = setViaParam(out, "received", rcv.srcIp);
  }
  if (wantsRport) out = setViaParam(out, "rport", String(rcv.srcPort));
  return out;
}

/**
 * Where a response goes given the Via it is addressed by (the top Via of
 * the request, as stamped on receipt), per RFC 3261 §18.2.2 and RFC 3581
 * §4:
 *  1. reliable transport: the connection the request came on
 *     (`connectionId`), falling back to received (or sent-by) host and the
 *     sent-by port;
 *  2. maddr: that address, sent-by port (default 5060);
 *  3. rport with a value: received ip and that port;
 *  4. received: that ip, sent-by port;
 *  5. else sent-by host and port.
 * Returns undefined when the Via's transport is not one we have.
 */
export function responseDestination(via: Via, connectionId?: number): Destination | undefined {
  const proto = viaTransport(via);
  if (!proto) return undefined;
  const sentByPort = via.port ?? 5060;
  const receivedHost = via.received !== undefined ? unbracket(via.received) : undefined;
  if (proto === "tcp") {
    const host = receivedHost ?? unbracket(via.host);
    // With rport the source port is where the client's connection is; a new
    // connection still goes to the sent-by port, where it listens.
    return { proto, host, port: sentByPort, connectionId };
  }
  if (via.maddr !== undefined) return { proto, host: unbracket(via.maddr), port: sentByPort };
  if (via.rport !== undefined && via.rport !== "") {
    return { proto, host: receivedHost ?? unbracket(via.host), port: Number(via.rport) };
  }
  if (receivedHost !== undefined) return { proto, host: receivedHost, port: sentByPort };
  return { proto, host: unbracket(via.host), port: sentByPort };
}

/**
 * True when a Via's sent-by names one of our listen sockets or aliases
 * (RFC 3261 §16.7 step 3: a proxy removes the top Via of a response only
 * after checking it is its own; §18.1.2 for a client). A Via without a port
 * means 5060. A wildcard listen address matches any host on its port.
 */
export function isOwnVia(via: Via, listen: readonly ListenSocket[], aliases: readonly string[]): boolean {
  const proto = viaTransport(via);
  const host = unbracket(via.host);
  const port = via.port ?? 5060;
  for (const s of listen) {
    if (s.port !== port) continue;
    if (proto !== undefined && s.proto !== proto) continue;
    if (isWildcardIp(s.ip) || (isIP(host) !== 0 && sameIp(host, s.ip))) return true;
  }
  for (const alias of aliases) {
    const { host: aliasHost, port: aliasPort } = splitHostPort(alias);
    if (aliasHost.toLowerCase() !== host.toLowerCase()) continue;
    if (aliasPort === undefined ? listen.some((s) => s.port === port) : aliasPort === port) return true;
  }
  return false;
}

/** Split `host[:port]` (IPv6 bracketed); the host comes back unbracketed. */
export function splitHostPort(text: string): { host: string; port?: number } {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    const host = text.slice(1, close < 0 ? undefined : close);
    const rest = close < 0 ? "" : text.slice(close + 1);
    return rest.startsWith(":") ? { host, port: Number(rest.slice(1)) } : { host };
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0 || text.indexOf(":") !== colon) return { host: text };
  return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}
