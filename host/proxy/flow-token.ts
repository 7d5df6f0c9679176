/**
 * RFC 5626 flow tokens, as Kamailio's outbound module makes them for rr:
 * when this proxy is the edge proxy of a user agent that uses outbound
 * (§5.3), its Record-Route carries, as user part, a token naming the flow
 * the request came on (transport, the UA's address and port, our socket).
 * A request of the dialog routed back through that Record-Route (its Route
 * value, §5.3 "...the edge proxy MUST forward the request over the flow")
 * goes down the same flow, whatever the Request-URI says: for a browser,
 * down its own WebSocket connection, even when its Contact is a made-up
 * "*.invalid" host and carries no alias.
 *
 * The token is a MAC over the flow (RFC 5626 §5.2: "the flow token MUST be
 * protected against tampering"), so a token from elsewhere cannot point us
 * at an address of its choosing. The key is random for each server start
 * (Kamailio's outbound module does the same without flow_token_secret);
 * the worker processes of one server share it (setFlowTokenKey), so a
 * token one of them made is good in the others.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { ReceiveInfo, TransportProto } from "../core/context.js";
import { asTransportProto } from "../core/context.js";

const MAC_BYTES = 10;
let key: Buffer = randomBytes(32);

/** Use `secret` (shared by a server's worker processes) for every token from now on. */
export function setFlowTokenKey(secret: Buffer): void {
  key = createHmac("sha256", secret).update("ksr flow token").digest();
}

/** What a flow token names. */
export interface Flow {
  readonly proto: TransportProto;
  readonly ip: string;
  readonly port: number;
  readonly localIp: string;
  readonly localPort: number;
}

function mac(data: string): Buffer {
  return createHmac("sha256", key).update(data).digest().subarray(0, MAC_BYTES);
}

/** The token of the flow a message came on: URI-user-safe characters only (base64url and "."). */
export function encodeFlowToken(rcv: ReceiveInfo): string {
  const data = `${rcv.proto}|${rcv.srcIp}|${rcv.srcPort}|${rcv.localIp}|${rcv.localPort}`;
  return `${mac(data).toString("base64url")}.${Buffer.from(data, "latin1").toString("base64url")}`;
}

/** The flow of a token we made, or undefined for anything else (another key, a changed byte, not a token). */
export function decodeFlowToken(token: string): Flow | undefined {
  const dot = token.indexOf(".");
  if (dot <= 0 || token.length > 512) return undefined;
  const data = Buffer.from(token.slice(dot + 1), "base64url").toString("latin1");
  const given = Buffer.from(token.slice(0, dot), "base64url");
  if (given.length !== MAC_BYTES || !timingSafeEqual(given, mac(data))) return undefined;
  const [protoText, ip, port, localIp, localPort] = data.split("|");
  const proto = asTransportProto(protoText ?? "");
  if (proto === undefined || isIP(ip ?? "") === 0 || isIP(localIp ?? "") === 0) return undefined;
  return { proto, ip: ip!, port: Number(port), localIp: localIp!, localPort: Number(localPort) };
}

/** The flow as a next-hop URI: sip:ip:port;transport=proto (IPv6 bracketed). */
export function flowUri(flow: Flow): string {
  const host = flow.ip.includes(":") ? `[${flow.ip}]` : flow.ip;
  return `sip:${host}:${flow.port}${flow.proto === "udp" ? "" : `;transport=${flow.proto}`}`;
}

/** Whether a message came over this flow (then routing "back down" it would send the request to its sender). */
export function cameOver(rcv: ReceiveInfo, flow: Flow): boolean {
  return rcv.proto === flow.proto && rcv.srcIp === flow.ip && rcv.srcPort === flow.port;
}
