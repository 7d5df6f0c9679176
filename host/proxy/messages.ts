/**
 * What only the stateful proxy needs beside the wire messages of
 * host/core/outbound.ts: Kamailio's t_relay_to_proxy address syntax and
 * copies of a route's edit set (each route of a transaction works on its
 * own).
 */
import { nextHopOf, type NextHop } from "../core/outbound.js";
import type { MessageEdits } from "../sip/message.js";
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
  const proto = (m[1] ?? "udp").toLowerCase();
  if (proto !== "udp" && proto !== "tcp" && proto !== "tls") return `transport ${proto} is not supported`;
  const port = m[3] === undefined ? 5060 : Number(m[3]);
  if (port < 1 || port > 65535) return `bad port in "${text}"`;
  return { proto, host: unbracket(m[2]!), port };
}

/** A deep copy of an edit set (routes of one transaction must not share their edits). */
export function copyEdits(edits: MessageEdits): MessageEdits {
  return {
    replaced: new Map(edits.replaced),
    insertedBefore: new Map([...edits.insertedBefore].map(([k, v]) => [k, [...v]])),
    insertedAfter: new Map([...edits.insertedAfter].map(([k, v]) => [k, [...v]])),
    prepended: [...edits.prepended],
    appended: [...edits.appended],
    ...(edits.body !== undefined ? { body: edits.body } : {}),
  };
}

/** Replace the content of `target` (a context's readonly edit set) with a copy of `source`. */
export function loadEdits(target: MessageEdits, source: MessageEdits): void {
  const copy = copyEdits(source);
  target.replaced.clear();
  for (const [k, v] of copy.replaced) target.replaced.set(k, v);
  target.insertedBefore.clear();
  for (const [k, v] of copy.insertedBefore) target.insertedBefore.set(k, v);
  target.insertedAfter.clear();
  for (const [k, v] of copy.insertedAfter) target.insertedAfter.set(k, v);
  target.prepended.length = 0;
  target.prepended.push(...copy.prepended);
  target.appended.length = 0;
  target.appended.push(...copy.appended);
  target.body = copy.body;
}
