/**
 * What only the stateful proxy needs beside the wire messages of
 * host/core/outbound.ts: Kamailio's t_relay_to_proxy address syntax and
 * copies of a route's edit set (each route of a transaction works on its
 * own).
 */
import { nextHopOf, type NextHop } from "../core/outbound.js";
import { asTransportProto } from "../core/context.js";
import { emptyEdits, insertedAfterOf, insertedBeforeOf, replacedOf, type MessageEdits } from "../sip/message.js";
import { isIP } from "node:net";
import { unbracket } from "../transport/listen-socket.js";

/**
 * A next hop written as Kamailio's t_relay_to_proxy takes it:
 * "[proto:]host[:port]", or a SIP URI.
 */
export function parseProxyAddress(text: string): NextHop | string {
  const trimmed = text.trim();
  if (/^sips?:/i.test(trimmed)) return nextHopOf(trimmed);
  const m = /^(?:(udp|tcp|tls|sctp|ws|wss):)?(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?$/i.exec(trimmed);
  if (m === null) return `bad proxy address "${text}"`;
  const proto = asTransportProto(m[1] ?? "udp");
  if (proto === undefined) return `transport ${m[1]!.toLowerCase()} is not supported`;
  const port = m[3] === undefined ? 5060 : Number(m[3]);
  if (port < 1 || port > 65535) return `bad port in "${text}"`;
  const host = unbracket(m[2]!);
  if (isIP(host) !== 0) return { proto, host, port };
  // A name is resolved as sip:host[:port][;transport=proto] would be (RFC 3263 §4).
  return { proto, host, port, query: { host, secure: false, ...(m[3] !== undefined ? { port } : {}), ...(m[1] !== undefined ? { transport: proto } : {}) } };
}

/** A deep copy of an edit set (routes of one transaction must not share their edits); maps only where the source has entries. */
export function copyEdits(edits: MessageEdits): MessageEdits {
  const copy = emptyEdits();
  copyInto(copy, edits);
  return copy;
}

/** Replace the content of `target` (a context's readonly edit set) with a copy of `source`. */
export function loadEdits(target: MessageEdits, source: MessageEdits): void {
  if (target === source) return;
  if (replacedOf(target).size > 0) target.replaced.clear();
  if (insertedBeforeOf(target).size > 0) target.insertedBefore.clear();
  if (insertedAfterOf(target).size > 0) target.insertedAfter.clear();
  target.prepended.length = 0;
  target.appended.length = 0;
  copyInto(target, source);
}

/** Add a deep copy of the entries of `source` to the empty edit set `target`. */
function copyInto(target: MessageEdits, source: MessageEdits): void {
  const replaced = replacedOf(source);
  if (replaced.size > 0) for (const [k, v] of replaced) target.replaced.set(k, v);
  const before = insertedBeforeOf(source);
  if (before.size > 0) for (const [k, v] of before) target.insertedBefore.set(k, [...v]);
  const after = insertedAfterOf(source);
  if (after.size > 0) for (const [k, v] of after) target.insertedAfter.set(k, [...v]);
  for (const line of source.prepended) target.prepended.push(line);
  for (const line of source.appended) target.appended.push(line);
  target.body = source.body;
}
