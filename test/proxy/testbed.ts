/**
 * A stateful proxy without sockets or an isolate: the StatefulProxy of
 * host/proxy with a FakeClock, a transport that records what is sent, and
 * route functions written in the test (host-side functions that call the
 * KSR export tables through `ksr(ctx)`, the way a script calls KSR.*).
 *
 * receiveRequest / receiveResponse follow the server's receive path: the
 * request route (then the end-of-route handling of the proxy), or the
 * reply route, then transaction matching, else stateless forwarding.
 */
import { MessageContext, newTenantState, type HostServices, type ListenSocket, type LogLevel, type ReceiveInfo } from "../../host/core/context.js";
import type { Destination } from "../../host/core/outbound.js";
import { KEMI_MODULES } from "../../host/modules/index.js";
import type { KemiValue } from "../../host/modules/types.js";
import { StatefulProxy, type ProxyHost, type ProxyOptions } from "../../host/proxy/proxy.js";
import { parseMessage } from "../../host/sip/parser.js";
import type { SipMessage } from "../../host/sip/message.js";
import { FakeClock } from "../../host/transaction/index.js";
import type { RouteOutcome, RouteRunner } from "../../sandbox/types.js";

export const PROXY_IP = "192.0.2.1";
export const UAC = { ip: "192.0.2.10", port: 5060 };

export interface SentMessage {
  readonly dest: Destination;
  readonly data: string;
  readonly msg: SipMessage;
}

/** Route functions standing in for a script: name → body. */
export type TestRoutes = Record<string, (ctx: MessageContext) => void>;

class TestRunner implements RouteRunner {
  readonly scriptPath = "test-routes";
  readonly calls: { name: string; routeType: string }[] = [];
  constructor(private readonly routes: TestRoutes) {}
  hasRoute(name: string): boolean {
    return this.routes[name] !== undefined;
  }
  runRoute(name: string, ctx: MessageContext): RouteOutcome {
    const fn = this.routes[name];
    if (fn === undefined) return { status: "missing" };
    this.calls.push({ name, routeType: ctx.routeType });
    try {
      fn(ctx);
    } catch (e) {
      if (e !== EXIT) throw e;
    }
    return { status: "ok" };
  }
  dispose(): void {}
}

/** Thrown by ksr(ctx).x.exit()/drop() to end a route, like KSR.x.exit(). */
const EXIT = Symbol("exit");

type KsrObject = Record<string, any> & { x: { exit(): never; drop(): never } };

/** KSR.* for a host-side route: every export table function bound to ctx. */
export function ksr(ctx: MessageContext): KsrObject {
  const root: Record<string, any> = {};
  for (const m of KEMI_MODULES) {
    const target: Record<string, (...args: unknown[]) => KemiValue> = m.name === "" ? root : (root[m.name] ??= {});
    for (const [name, fn] of Object.entries(m.functions)) target[name] = (...args: unknown[]) => fn.run(ctx, ...args);
  }
  root.x = {
    exit(): never {
      ctx.exited = true;
      throw EXIT;
    },
    drop(): never {
      ctx.dropped = true;
      ctx.exited = true;
      throw EXIT;
    },
  };
  return root as KsrObject;
}

export interface TestBedOptions extends ProxyOptions {
  readonly listen?: readonly ListenSocket[];
  /** RFC 3263 resolution of named next hops (the proxy's host hooks); absent: names go to send() as they are. */
  readonly knownTargets?: ProxyHost["knownTargets"];
  readonly resolveTargets?: ProxyHost["resolveTargets"];
}

export class ProxyTestBed {
  readonly clock = new FakeClock(1_700_000_000_000);
  readonly sent: SentMessage[] = [];
  readonly statelessForwards: { msg: SipMessage; target: string | undefined }[] = [];
  readonly statelessReplies: { status: number; reason: string }[] = [];
  readonly logs: { level: LogLevel; text: string }[] = [];
  readonly tenant = newTenantState("proxy-test");
  readonly proxy: StatefulProxy;
  readonly services: HostServices;
  readonly runner: TestRunner;
  /** Set false to make every send fail. */
  sendResult = true;

  constructor(routes: TestRoutes, options: TestBedOptions = {}) {
    this.runner = new TestRunner(routes);
    const listen = options.listen ?? [
      { proto: "udp", ip: PROXY_IP, port: 5060 },
      { proto: "tcp", ip: PROXY_IP, port: 5060 },
    ];
    const bed = this;
    let proxy: StatefulProxy | undefined;
    this.services = {
      listen,
      aliases: [],
      log: (level, text) => this.logs.push({ level, text }),
      sendReply: (ctx, status, reason) => {
        bed.statelessReplies.push({ status, reason });
        ctx.replied = { status, reason };
        return true;
      },
      forward: (ctx, targetUri) => {
        bed.statelessForwards.push({ msg: ctx.msg, target: targetUri ?? ctx.dstUri ?? ctx.requestUri });
        return true;
      },
      now: () => this.clock.now(),
      get proxy() {
        return proxy;
      },
    };
    proxy = new StatefulProxy(
      {
        services: this.services,
        tenant: this.tenant,
        currentRunner: () => this.runner,
        timers: this.clock,
        socketFor: (proto) => listen.find((l) => l.proto === proto),
        knownTargets: options.knownTargets,
        resolveTargets: options.resolveTargets,
        send: (dest, data) => {
          if (!this.sendResult) return false;
          const parsed = parseMessage(data);
          if (!parsed.ok) throw new Error(`proxy sent an unparsable message: ${parsed.error}\n${data}`);
          this.sent.push({ dest, data, msg: parsed.message });
          return true;
        },
      },
      options,
    );
    this.proxy = proxy;
  }

  /** A request arrives (text with CRLF line ends): the request route runs, then the proxy's end-of-route handling. */
  receiveRequest(text: string, from: { ip: string; port: number; proto?: "udp" | "tcp" } = UAC): MessageContext {
    const msg = parse(text);
    const rcv: ReceiveInfo = {
      proto: from.proto ?? "udp",
      srcIp: from.ip,
      srcPort: from.port,
      localIp: PROXY_IP,
      localPort: 5060,
      connectionId: from.proto === "tcp" ? 7 : -1,
    };
    const ctx = new MessageContext(msg, rcv, "request", this.tenant, this.services);
    this.runner.runRoute("ksr_request_route", ctx);
    this.proxy.requestRouteDone(ctx);
    return ctx;
  }

  /** A response arrives from a downstream element: reply route, then the transaction, else stateless forwarding. */
  receiveResponse(text: string, from: { ip: string; port: number } = { ip: "192.0.2.20", port: 5060 }): boolean {
    const msg = parse(text);
    const rcv: ReceiveInfo = { proto: "udp", srcIp: from.ip, srcPort: from.port, localIp: PROXY_IP, localPort: 5060, connectionId: -1 };
    const ctx = new MessageContext(msg, rcv, "reply", this.tenant, this.services);
    if (this.runner.hasRoute("ksr_reply_route")) {
      this.runner.runRoute("ksr_reply_route", ctx);
      if (ctx.dropped) return false;
    }
    if (this.proxy.receiveResponse(msg, rcv, ctx.edits)) return true;
    this.statelessForwards.push({ msg, target: undefined });
    return false;
  }

  /** Messages sent since the last call, and forget them. */
  take(): SentMessage[] {
    return this.sent.splice(0, this.sent.length);
  }

  /** Sent messages that are requests to the given host (downstream). */
  requestsTo(host: string, method?: string): SentMessage[] {
    return this.sent.filter((s) => s.msg.kind === "request" && s.dest.host === host && (method === undefined || s.msg.method === method));
  }

  /** Sent responses (upstream). */
  responses(): SentMessage[] {
    return this.sent.filter((s) => s.msg.kind === "response");
  }

  statuses(): number[] {
    return this.responses().map((s) => s.msg.status);
  }
}

export function parse(text: string): SipMessage {
  const parsed = parseMessage(text);
  if (!parsed.ok) throw new Error(`test message does not parse: ${parsed.error}\n${text}`);
  return parsed.message;
}

let counter = 0;

export interface InviteSpec {
  method?: string;
  uri?: string;
  branch?: string;
  callId?: string;
  cseq?: number;
  toTag?: string;
  extra?: string[];
}

/** A request from the UAC (192.0.2.10:5060) to the proxy. */
export function request(spec: InviteSpec = {}): string {
  const method = spec.method ?? "INVITE";
  counter++;
  return (
    [
      `${method} ${spec.uri ?? "sip:bob@192.0.2.20"} SIP/2.0`,
      `Via: SIP/2.0/UDP ${UAC.ip}:${UAC.port};branch=${spec.branch ?? `z9hG4bKuac${counter}`}`,
      "Max-Forwards: 70",
      "From: <sip:alice@example.com>;tag=alice-tag",
      `To: <sip:bob@example.com>${spec.toTag ? `;tag=${spec.toTag}` : ""}`,
      `Call-ID: ${spec.callId ?? "call-1@example.com"}`,
      `CSeq: ${spec.cseq ?? 1} ${method === "ACK" ? "ACK" : method}`,
      "Contact: <sip:alice@192.0.2.10>",
      ...(spec.extra ?? []),
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

/** The CANCEL for a request text (same branch, Call-ID, From, To, CSeq number; §9.1). */
export function cancelFor(requestText: string): string {
  const msg = parse(requestText);
  const h = (key: string) => msg.headers.find((x) => x.key === key)!.value;
  return (
    [
      `CANCEL ${msg.requestUri} SIP/2.0`,
      `Via: ${h("via")}`,
      "Max-Forwards: 70",
      `From: ${h("from")}`,
      `To: ${h("to")}`,
      `Call-ID: ${msg.callId}`,
      `CSeq: ${msg.cseq.seq} CANCEL`,
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

/** A downstream element's response to a request the proxy sent (all its Vias copied, To tag added). */
export function responseTo(sent: SipMessage, status: number, reason: string, opts: { toTag?: string; extra?: string[] } = {}): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const h of sent.headers) if (h.key === "via") lines.push(`Via: ${h.value}`);
  const get = (key: string) => sent.headers.find((x) => x.key === key)!.value;
  lines.push(`From: ${get("from")}`);
  const to = get("to");
  lines.push(`To: ${to.includes(";tag=") || status === 100 ? to : `${to};tag=${opts.toTag ?? "uas-tag"}`}`);
  lines.push(`Call-ID: ${sent.callId}`, `CSeq: ${get("cseq")}`, ...(opts.extra ?? []), "Content-Length: 0");
  return lines.join("\r\n") + "\r\n\r\n";
}

/** The value of the first header `key` of a message. */
export function header(msg: SipMessage, key: string): string | undefined {
  return msg.headers.find((h) => h.key === key)?.value;
}

/** Every value of header `key`. */
export function headers(msg: SipMessage, key: string): string[] {
  return msg.headers.filter((h) => h.key === key).map((h) => h.value);
}
