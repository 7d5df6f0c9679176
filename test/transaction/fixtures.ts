/** Messages and a recording harness for the transaction-layer tests. */
import type { SipMessage } from "../../host/sip/message.js";
import { parseMessage } from "../../host/sip/parser.js";
import { buildResponse } from "../../host/sip/serialize.js";
import { FakeClock } from "../../host/transaction/timers.js";
import type { ClientTransaction, ClientTransactionUser } from "../../host/transaction/client.js";
import type { ServerTransaction, ServerTransactionUser } from "../../host/transaction/server.js";

export function sipText(lines: readonly string[], body = ""): string {
  return lines.join("\r\n") + "\r\n\r\n" + body;
}

export function parse(text: string): SipMessage {
  const r = parseMessage(text);
  if (!r.ok) throw new Error(`fixture does not parse: ${r.error}\n${text}`);
  return r.message;
}

export interface RequestSpec {
  method?: string;
  uri?: string;
  /** Whole top Via value. */
  via?: string;
  /** Extra Via values below the top one. */
  lowerVias?: string[];
  from?: string;
  to?: string;
  callId?: string;
  cseq?: number;
  routes?: string[];
  maxForwards?: number | null;
  body?: string;
}

export const BRANCH = "z9hG4bKclient1";

export const SDP = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\n";

/** A request as a UAC or upstream proxy would send it. */
export function requestText(spec: RequestSpec = {}): string {
  const method = spec.method ?? "INVITE";
  const lines = [`${method} ${spec.uri ?? "sip:bob@biloxi.example.com"} SIP/2.0`];
  lines.push(`Via: ${spec.via ?? `SIP/2.0/UDP 192.0.2.10:5060;branch=${BRANCH}`}`);
  for (const v of spec.lowerVias ?? []) lines.push(`Via: ${v}`);
  if (spec.maxForwards !== null) lines.push(`Max-Forwards: ${spec.maxForwards ?? 70}`);
  for (const r of spec.routes ?? []) lines.push(`Route: ${r}`);
  lines.push(`From: ${spec.from ?? "Alice <sip:alice@atlanta.example.com>;tag=1928301774"}`);
  lines.push(`To: ${spec.to ?? "Bob <sip:bob@biloxi.example.com>"}`);
  lines.push(`Call-ID: ${spec.callId ?? "a84b4c76e66710@pc33.atlanta.example.com"}`);
  lines.push(`CSeq: ${spec.cseq ?? 314159} ${method}`);
  lines.push("Contact: <sip:alice@192.0.2.10>");
  const body = spec.body ?? "";
  lines.push(`Content-Length: ${body.length}`);
  return sipText(lines, body);
}

export function request(spec: RequestSpec = {}): SipMessage {
  return parse(requestText(spec));
}

/** The response a UAS would send to `req` (Via, From, To, Call-ID, CSeq copied; To tag added above 100). */
export function responseText(req: SipMessage, status: number, reason = "Reason", toTag = "uas-tag"): string {
  return buildResponse(req, status, reason, { toTag });
}

export function response(req: SipMessage, status: number, reason = "Reason", toTag = "uas-tag"): SipMessage {
  return parse(responseText(req, status, reason, toTag));
}

export interface Sent {
  at: number;
  data: string;
}

/** What a transaction sent and told its TU, stamped with fake-clock time. */
export class Recorder {
  readonly clock = new FakeClock();
  readonly sent: Sent[] = [];
  readonly events: string[] = [];
  readonly responses: SipMessage[] = [];
  readonly acks: SipMessage[] = [];
  /** Make sends fail (a transport error) while true. */
  failSends = false;

  readonly send = (data: string): boolean => {
    this.sent.push({ at: this.clock.now(), data });
    return !this.failSends;
  };

  readonly clientUser: ClientTransactionUser = {
    onResponse: (r: SipMessage, _tx: ClientTransaction) => {
      this.responses.push(r);
      this.events.push(`response ${r.status} @${this.clock.now()}`);
    },
    onTimeout: () => void this.events.push(`timeout @${this.clock.now()}`),
    onTransportError: () => void this.events.push(`transport-error @${this.clock.now()}`),
    onTerminated: () => void this.events.push(`terminated @${this.clock.now()}`),
  };

  readonly serverUser: ServerTransactionUser = {
    onAck: (ack: SipMessage, _tx: ServerTransaction) => {
      this.acks.push(ack);
      this.events.push(`ack @${this.clock.now()}`);
    },
    onTimeout: () => void this.events.push(`timeout @${this.clock.now()}`),
    onTransportError: () => void this.events.push(`transport-error @${this.clock.now()}`),
    onTerminated: () => void this.events.push(`terminated @${this.clock.now()}`),
  };

  /** Times at which messages whose start line begins with `prefix` were sent. */
  sentTimes(prefix: string): number[] {
    return this.sent.filter((s) => s.data.startsWith(prefix)).map((s) => s.at);
  }
}

/** Successive sums: first event at `first`, then intervals. */
export function times(first: number, intervals: number[]): number[] {
  const out = [first];
  for (const i of intervals) out.push(out[out.length - 1]! + i);
  return out;
}
