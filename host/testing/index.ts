/**
 * ksr-sandbox/testing: run a routing script in-process, with no sockets,
 * and see what the server did with each message.
 *
 *   import { loadScript } from "ksr-sandbox/testing";
 *   const h = await loadScript("proxy.js");
 *   const r = await h.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1" });
 *   r.forwarded[0].destination; // { proto: "udp", ip: "127.0.0.1", port: 5080 }
 *   h.close();
 *
 * Messages go through the real SipServer (host/core/server.ts): the same
 * parsing, the same route invocation and error policy, the same reply and
 * forwarding code. Only the transport is replaced by one that records what
 * would have been sent, and host names are resolved from a table instead
 * of DNS. The clock every KSR function reads (HostServices.now) is the
 * harness's, and the tenant state ($var, $shv; later location and htable)
 * can be seeded before the first message.
 *
 * Stateful routing (KSR.tm) runs on the harness clock too: its transaction
 * timers (retransmissions, fr_timer / fr_inv_timer) fire only when the
 * clock is moved on. `downstream` says how each destination answers what
 * the script relays there; `advance(ms)` moves the clock and resolves with
 * what the server sent meanwhile (relayed replies, the failure route's new
 * branch, the ACK or CANCEL the proxy generated):
 *
 *   const h = await loadScript("proxy.js", {
 *     downstream: {
 *       "udp:127.0.0.1:5080": [{ after: 0, status: 180 }, { after: 2000, status: 486 }],
 *       "udp:127.0.0.1:5090": "never",
 *     },
 *   });
 *   const r = await h.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1" });
 *   r.replies;  // 180 relayed to the caller (answers due at 0 ms are in send()'s result)
 *   const later = await h.advance(2000);
 *   later.replies; later.forwarded; later.routes;  // 486 / failure route outcome
 */
import { TableDnsLookups, type DnsTable } from "../dns/table.js";
import type { DnsLookups } from "../dns/rfc3263.js";
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import type { ListenSocket, LogLevel, MessageContext, ReceiveInfo, TenantState, TransportProto } from "../core/context.js";
import { SipServer, type ServerTransport } from "../core/server.js";
import { TenantRouting } from "../core/tenant-routing.js";
import { singleScriptConfig, type SingleScriptSettings } from "../tenants/config.js";
import { TenantRegistry, type TenantRunner } from "../tenants/registry.js";
import type { KemiModule } from "../modules/types.js";
import type { SipMessage } from "../sip/message.js";
import { canonicalHeaderKey } from "../sip/headers.js";
import { parseMessage } from "../sip/parser.js";
import { parseListenSocket, pickSendingSocket } from "../transport/index.js";
import { FakeClock, type TimerHandle } from "../transaction/index.js";
import { ScriptRunner, type ExecutionMode } from "../../sandbox/runner.js";
import type { ScriptCoverage } from "../../sandbox/coverage.js";
import { binaryToText, textToBinary } from "../../sandbox/strings.js";
import { subscriberRow } from "../cli/db-commands.js";
import { aorOf } from "../modules/registrar.js";
import { tenantHtables } from "../modules/state/htable-store.js";
import { dropTenantState } from "../modules/state/tenant-scope.js";
import { openDataServices, type DataServices } from "../storage/index.js";
import type { Binding } from "../storage/types.js";
import { DEFAULT_LIMITS, type RouteOutcome, type ScriptLimits } from "../../sandbox/types.js";

export type { ListenSocket, LogLevel, TenantState, TransportProto } from "../core/context.js";

/** Where a test message comes from. */
export interface SourceAddress {
  readonly proto?: TransportProto;
  readonly ip?: string;
  readonly port?: number;
  /** TCP connection id the message arrives on (default 1 for TCP). */
  readonly connectionId?: number;
}

export interface LoadScriptOptions {
  /** Sockets the server "listens" on, as "proto:ip:port" or objects. Default udp and tcp on 127.0.0.1:5060. */
  readonly listen?: readonly (string | ListenSocket)[];
  /** Other names of the server (is_myself, Via checks), host[:port]. */
  readonly aliases?: readonly string[];
  /** Start time of the clock in ms since the epoch. Default 1_700_000_000_000. */
  readonly now?: number;
  readonly limits?: Partial<ScriptLimits>;
  /** Tenant id (log scope, TenantState id). Default "test". */
  readonly tenant?: string;
  /** Host name → IP address for forwarding to names (no DNS is asked; an A record, or AAAA for an IPv6 address). */
  readonly hosts?: Readonly<Record<string, string>>;
  /** DNS records beyond `hosts` (SRV, NAPTR) for RFC 3263 resolution of next hops; names absent do not exist. */
  readonly dns?: DnsTable;
  /** Default source of sent messages. Default udp 192.0.2.10:5060 (TEST-NET-1, RFC 5737). */
  readonly source?: SourceAddress;
  /** Initial $var values. */
  readonly vars?: Readonly<Record<string, string | number>>;
  /** Initial $shv values. */
  readonly sharedVars?: Readonly<Record<string, string | number>>;
  /** Called once with the tenant state before any message, to seed state of other modules. */
  readonly seed?: (state: TenantState) => void;
  /** Export tables the script's KSR is built from (default: all modules). */
  readonly modules?: readonly KemiModule[];
  /** Also write log lines to the process log (stderr). Default false: they are only recorded. */
  readonly printLogs?: boolean;
  /**
   * How destinations ("proto:ip:port") answer the requests sent to them.
   * A destination not listed never answers, like "never".
   */
  readonly downstream?: Readonly<Record<string, DownstreamBehaviour>>;
  /** Location, subscriber and htable contents before the first message. */
  readonly state?: SeedState;
  /** Count the script's lines and functions that run (ScriptHarness.takeCoverage). Default false. */
  readonly coverage?: boolean;
  /** The error policy and KEMI callback names, as `ksr run --on-error` / `--kemi-*-callback` set them. */
  readonly settings?: SingleScriptSettings;
}

/**
 * Module state to start from. The harness keeps it in an in-memory
 * database of its own, so nothing persists and harnesses do not share it.
 */
export interface SeedState {
  /** Registrations as KSR.registrar.save would store them. */
  readonly locations?: readonly SeedBinding[];
  /** Digest users for KSR.auth_db, as `ksr subscriber add` stores them. */
  readonly subscribers?: readonly { readonly user: string /* user@domain */; readonly password: string }[];
  /** htable items: table → key → value (integers stay numbers). */
  readonly htable?: Readonly<Record<string, Readonly<Record<string, string | number>>>>;
}

export interface SeedBinding {
  /** The address of record as a URI, e.g. "sip:bob@example.com". */
  readonly aor: string;
  /** Where to reach it, e.g. "sip:bob@192.0.2.20:5062". */
  readonly contact: string;
  /** Seconds from the harness's start time until it expires. Default 3600. */
  readonly expires?: number;
  /** q-value 0..1 (RFC 3261 §20.10). Default unspecified. */
  readonly q?: number;
  /** usrloc table. Default "location". */
  readonly table?: string;
}

/** One response a simulated downstream element sends to each request it receives. */
export interface DownstreamResponse {
  /** Milliseconds after the request was received (harness clock). */
  readonly after: number;
  readonly status: number;
  /** Reason phrase; default the standard one of the status. */
  readonly reason?: string;
  /** Extra header lines ("Name: value"). */
  readonly headers?: readonly string[];
}

/** The responses of a destination to every request (except ACK) it receives, or "never" for a silent one. */
export type DownstreamBehaviour = "never" | readonly DownstreamResponse[];

/** A request described by fields; everything not given gets a valid default. */
export interface RequestSpec {
  readonly method?: string;
  /** Request-URI. Default sip:test@<local ip>:<local port>. */
  readonly ruri?: string;
  /** From header value. Default <sip:alice@example.com>;tag=<random>. */
  readonly from?: string;
  /** To header value. Default <Request-URI>. */
  readonly to?: string;
  readonly callId?: string;
  readonly cseq?: number;
  /** Via header values, top first. Default one Via of the source address with a fresh branch. */
  readonly via?: string | readonly string[];
  /** Max-Forwards value; null leaves the header out. Default 70. */
  readonly maxForwards?: number | null;
  readonly contact?: string;
  readonly userAgent?: string;
  /** More headers: name → value(s), or whole "Name: value" lines. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>> | readonly string[];
  readonly body?: string;
  /** Content-Type of the body (default application/sdp when there is a body). */
  readonly contentType?: string;
}

export interface SendOptions {
  /** Source address for this message (merged over the harness default). */
  readonly source?: SourceAddress;
  /**
   * Send raw text exactly as given: no placeholders, no line-end
   * conversion, no Content-Length. Default false.
   */
  readonly raw?: boolean;
  /** Extra {{name}} placeholder values (override the generated ones). */
  readonly values?: Readonly<Record<string, string>>;
}

export interface MessageHeader {
  readonly name: string;
  readonly value: string;
}

export interface WireDestination {
  readonly proto: TransportProto;
  readonly ip: string;
  readonly port: number;
}

/** A reply the server generated for the request. */
export interface SentReply {
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly MessageHeader[];
  /** The whole reply as it would go on the wire. */
  readonly raw: string;
  readonly destination: WireDestination;
}

/** A message the server sent on: the request (or, for a reply sent in, the reply). */
export interface SentForward {
  readonly kind: "request" | "response";
  readonly destination: WireDestination;
  /** The local socket it leaves from. */
  readonly from?: ListenSocket;
  /** Method of a forwarded request (INVITE, or the ACK / CANCEL the proxy generated); "" for a response. */
  readonly method: string;
  /** Request-URI of a forwarded request ("" for a response). */
  readonly requestUri: string;
  /** Status of a forwarded response (0 for a request). */
  readonly status: number;
  readonly headers: readonly MessageHeader[];
  /** Header lines ("Name: value") present in the sent message and not in the received one. */
  readonly added: readonly string[];
  /** Header lines of the received message missing from the sent one. */
  readonly removed: readonly string[];
  readonly raw: string;
}

export interface LogLine {
  readonly level: LogLevel;
  /** The text without its trailing newline. */
  readonly text: string;
}

/** Everything that happened for one message. */
export interface SendResult {
  /** The message as sent in (after placeholders). */
  readonly sent: string;
  /** The {{placeholder}} values used for this message (fresh callid, branch, fromtag, totag per message). */
  readonly values: Readonly<Record<string, string>>;
  readonly replies: readonly SentReply[];
  readonly forwarded: readonly SentForward[];
  /** KSR.x.drop() or KSR.set_drop() ran. */
  readonly dropped: boolean;
  /** The route ended through KSR.x.exit() or KSR.x.drop(). */
  readonly exited: boolean;
  readonly logs: readonly LogLine[];
  /** Indexes (0..31) of the message flags set when the route ended. */
  readonly flags: readonly number[];
  /** Name of the route function that ran last, if any (ksr_request_route / ksr_reply_route / a failure route...). */
  readonly route?: string;
  /** Names of every route function run, in order (request, branch, onreply, failure routes). */
  readonly routes: readonly string[];
  /** The route failed (exception, timeout, out of memory). */
  readonly error?: { readonly kind: string; readonly message: string; readonly location?: string };
  /** R-URI ($ru) when the route ended, for a request. */
  readonly ruri?: string;
  /** Destination URI ($du) when the route ended, if set. */
  readonly dstUri?: string;
}

/** A loaded script ready for messages. */
export interface ScriptHarness {
  /**
   * Sends one message in and resolves when everything it caused was "sent",
   * including downstream answers due at once (`after: 0`) and what they caused.
   */
  send(message: string | RequestSpec, options?: SendOptions): Promise<SendResult>;
  /**
   * Moves the clock on by `ms`, firing the transaction timers and the
   * downstream answers that fall due; resolves with what was sent meanwhile.
   * Its `added`/`removed` header lines and `values` refer to the last message sent in.
   */
  advance(ms: number): Promise<SendResult>;
  /** The clock; its advance() and set() fire due timers too but keep nothing of what they sent (use advance() above for that). */
  readonly clock: {
    now(): number;
    set(ms: number): void;
    advance(ms: number): void;
  };
  /** The tenant state the KSR functions use ($var, $shv, ...): read or change it between messages. */
  readonly state: TenantState;
  readonly listen: readonly ListenSocket[];
  readonly scriptPath: string;
  /** Releases the isolate. */
  close(): void;
  /** Lines and functions of the script run so far (loadScript with `coverage: true`). */
  takeCoverage(): Promise<ScriptCoverage>;
}

const DEFAULT_NOW = 1_700_000_000_000;
const DEFAULT_LISTEN = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"];
const DEFAULT_SOURCE = { proto: "udp", ip: "192.0.2.10", port: 5060 } as const;
const DEFAULT_TCP_CONNECTION_ID = 1;
/** Connection ids of WebSocket clients (one per source address) start here, clear of the ids tests use. */
const WEBSOCKET_CONNECTION_BASE = 2_000_000;
/** TCP connection ids of downstream elements start here, clear of the ids tests use. */
const DOWNSTREAM_TCP_CONNECTION_BASE = 1_000_000;
/** Bound on lookup/timer rounds while one message or one advance settles. */
const MAX_SETTLE_ROUNDS = 100_000;

/** One message handed to the recording transport. */
interface Transmission {
  readonly proto: TransportProto;
  readonly ip: string;
  readonly port: number;
  readonly data: string;
  readonly from?: ListenSocket;
  /** Sent while the server handled a response the test sent in: a relayed response, not a reply to the caller. */
  readonly causedByResponseSentIn: boolean;
}

/** The server's transport, minus the sockets: remembers what it was asked to send. */
class RecordingTransport implements ServerTransport {
  readonly sent: Transmission[] = [];
  /** TCP connection id → remote IP, for connections test messages arrived on. */
  readonly connections = new Map<number, string>();
  /**
   * "ws:ip:port" of the WebSocket clients test messages came from. A
   * WebSocket client is reachable only over the connection it opened (RFC
   * 7118), so a message for any other ws/wss address is not sent (the send
   * fails, as with the real transport when the connection is gone).
   */
  readonly webSocketPeers = new Map<string, { readonly connectionId: number; readonly ip: string; readonly port: number }>();

  /** The connection id of the WebSocket client at proto:ip:port, one per address (given ones kept). */
  webSocketConnection(proto: TransportProto, ip: string, port: number, given: number | undefined): number {
    const key = formatDestination({ proto, ip, port });
    const known = this.webSocketPeers.get(key);
    if (known !== undefined && (given === undefined || given === known.connectionId)) return known.connectionId;
    const connectionId = given ?? WEBSOCKET_CONNECTION_BASE + this.webSocketPeers.size;
    this.webSocketPeers.set(key, { connectionId, ip, port });
    return connectionId;
  }

  /** Where a ws/wss message goes: the connection named, else the one from ip:port; undefined when there is none. */
  private webSocketDestination(proto: TransportProto, ip: string, port: number, connectionId: number | undefined): { ip: string; port: number } | undefined {
    for (const peer of this.webSocketPeers.values()) if (connectionId !== undefined && peer.connectionId === connectionId) return peer;
    return this.webSocketPeers.get(formatDestination({ proto, ip, port }));
  }
  /** True while the server handles a response sent in by the test. */
  handlingResponseSentIn = false;
  /** Told of every message after it is recorded (the simulated downstream elements listen here). */
  onSend: ((t: Transmission) => void) | undefined;

  constructor(private readonly sockets: readonly ListenSocket[]) {}

  async start(): Promise<ListenSocket[]> {
    return [...this.sockets];
  }

  async stop(): Promise<void> {}

  get isStarted(): boolean {
    return true;
  }

  get tcpConnectionCount(): number {
    return this.connections.size;
  }

  send(proto: TransportProto, ip: string, port: number, data: string, connectionId?: number, from?: ListenSocket): boolean {
    if (proto === "ws" || proto === "wss") {
      // Down the client's own connection, recorded as its address; never a new connection.
      const peer = this.webSocketDestination(proto, ip, port, connectionId);
      if (peer === undefined) return false;
      ip = peer.ip;
      port = peer.port;
    }
    const t: Transmission = { proto, ip, port, data, from, causedByResponseSentIn: this.handlingResponseSentIn };
    this.sent.push(t);
    this.onSend?.(t);
    return true;
  }

  socketFor(proto: TransportProto, dstIp: string, forced?: ListenSocket): ListenSocket | undefined {
    return pickSendingSocket(this.sockets, proto, dstIp, forced);
  }

  tcpConnectionRemoteIp(connectionId: number): string | undefined {
    return this.connections.get(connectionId);
  }
}

/** Passes route runs through to the script, keeping the context and outcome of each. */
class RecordingRunner implements TenantRunner {
  readonly runs: { name: string; ctx: MessageContext; outcome: RouteOutcome }[] = [];

  constructor(private readonly inner: ScriptRunner) {}

  get scriptPath(): string {
    return this.inner.scriptPath;
  }

  get mode(): ExecutionMode {
    return this.inner.mode;
  }

  get inFlight(): number {
    return this.inner.inFlight;
  }

  get cpuTimeNs(): bigint {
    return this.inner.cpuTimeNs;
  }

  get isDisposed(): boolean {
    return this.inner.isDisposed;
  }

  hasRoute(name: string, whenUnknown?: boolean): boolean {
    return this.inner.hasRoute(name, whenUnknown);
  }

  runRoute(name: string, ctx: MessageContext): RouteOutcome {
    return this.record(name, ctx, this.inner.runRoute(name, ctx));
  }

  runRouteAny(name: string, ctx: MessageContext): RouteOutcome | Promise<RouteOutcome> {
    const result = this.inner.runRouteAny(name, ctx);
    return result instanceof Promise ? result.then((outcome) => this.record(name, ctx, outcome)) : this.record(name, ctx, result);
  }

  demote(reason?: string): void {
    this.inner.demote(reason);
  }

  dispose(): void {
    this.inner.dispose();
  }

  private record(name: string, ctx: MessageContext, outcome: RouteOutcome): RouteOutcome {
    this.runs.push({ name, ctx, outcome });
    return outcome;
  }
}

/** The real server, with its log lines (its own and the script's) recorded. */
class HarnessServer extends SipServer<TenantRouting> {
  lines: LogLine[] = [];
  printLogs = false;

  override logAs(scope: string, level: LogLevel, text: string): void {
    this.lines.push({ level, text: text.endsWith("\n") ? text.slice(0, -1) : text });
    if (this.printLogs) super.logAs(scope, level, text);
  }
}

function randomToken(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

/**
 * The lines of a message written in a test (a template literal): leading
 * blank lines and the closing backtick's line dropped, common indentation
 * removed. `endsWithNewline`: the text ended with a line break.
 */
export function dedentMessageLines(text: string): { lines: string[]; endsWithNewline: boolean } {
  let lines = text.replace(/\r\n/g, "\n").split("\n");
  while (lines.length > 0 && lines[0]!.trim() === "") lines.shift();
  let endsWithNewline = false;
  if (lines.length > 0 && lines[lines.length - 1]!.trim() === "") {
    lines.pop();
    endsWithNewline = true;
  }
  // A template literal's first line follows the backtick unindented: the
  // common indentation is then that of the lines after it.
  const indentOf = (l: string) => /^[ \t]*/.exec(l)![0].length;
  const firstFlush = lines.length > 1 && indentOf(lines[0]!) === 0;
  const measured = (firstFlush ? lines.slice(1) : lines).filter((l) => l.trim() !== "").map(indentOf);
  const cut = measured.length > 0 ? Math.min(...measured) : 0;
  lines = lines.map((l) => l.slice(Math.min(cut, indentOf(l))));
  return { lines, endsWithNewline };
}

/** Test-friendly text → wire text: CRLF line ends, common indentation removed, header block terminated. */
export function toWireText(text: string): string {
  const { lines, endsWithNewline } = dedentMessageLines(text);
  const blank = lines.findIndex((l) => l === "");
  const head = blank === -1 ? lines : lines.slice(0, blank);
  const bodyLines = blank === -1 ? [] : lines.slice(blank + 1);
  const body = bodyLines.length === 0 ? "" : bodyLines.join("\r\n") + (endsWithNewline ? "\r\n" : "");
  // A message written without Content-Length gets one: stream transports
  // require it (RFC 3261 §18.3) and a body without it is easy to get wrong.
  if (!head.some((l) => /^(content-length|l)[ \t]*:/i.test(l))) {
    head.push(`Content-Length: ${Buffer.byteLength(body, "utf8")}`);
  }
  return head.join("\r\n") + "\r\n\r\n" + body;
}

/** Replaces {{name}} placeholders; an unknown name is an error (a typo would otherwise go out as text). */
export function fillPlaceholders(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_whole, name: string) => {
    const value = values[name];
    if (value === undefined) {
      throw new Error(`unknown placeholder {{${name}}} (known: ${Object.keys(values).sort().join(", ")})`);
    }
    return value;
  });
}

function formatHost(ip: string): string {
  return isIP(ip) === 6 ? `[${ip}]` : ip;
}

/** Builds a request from fields (RFC 3261 §8.1.1: the mandatory headers are always present). */
export function buildRequestText(spec: RequestSpec, values: Readonly<Record<string, string>>): string {
  const method = spec.method ?? "OPTIONS";
  const ruri = spec.ruri ?? `sip:test@${formatHost(values.local_ip!)}:${values.local_port}`;
  const vias = spec.via === undefined ? [`SIP/2.0/${values.PROTO} ${formatHost(values.source_ip!)}:${values.source_port};branch=${values.branch}`] : typeof spec.via === "string" ? [spec.via] : spec.via;
  const lines = [`${method} ${ruri} SIP/2.0`, ...vias.map((v) => `Via: ${v}`)];
  if (spec.maxForwards !== null) lines.push(`Max-Forwards: ${spec.maxForwards ?? 70}`);
  lines.push(`From: ${spec.from ?? `<sip:alice@example.com>;tag=${values.fromtag}`}`);
  lines.push(`To: ${spec.to ?? `<${ruri}>`}`);
  lines.push(`Call-ID: ${spec.callId ?? values.callid}`);
  lines.push(`CSeq: ${spec.cseq ?? 1} ${method}`);
  if (spec.contact !== undefined) lines.push(`Contact: ${spec.contact}`);
  if (spec.userAgent !== undefined) lines.push(`User-Agent: ${spec.userAgent}`);
  if (Array.isArray(spec.headers)) {
    lines.push(...(spec.headers as readonly string[]));
  } else if (spec.headers !== undefined) {
    for (const [name, value] of Object.entries(spec.headers as Record<string, string | readonly string[]>)) {
      for (const v of typeof value === "string" ? [value] : value) lines.push(`${name}: ${v}`);
    }
  }
  const body = spec.body ?? "";
  if (body !== "") lines.push(`Content-Type: ${spec.contentType ?? "application/sdp"}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body, "utf8")}`);
  return lines.join("\r\n") + "\r\n\r\n" + body;
}

/** The spec with {{placeholders}} filled in every string field. */
function fillSpecPlaceholders(spec: RequestSpec, values: Readonly<Record<string, string>>): RequestSpec {
  const fill = (v: unknown): unknown => {
    if (typeof v === "string") return fillPlaceholders(v, values);
    if (Array.isArray(v)) return v.map(fill);
    if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  return fill(spec) as RequestSpec;
}

function headersOf(msg: SipMessage): MessageHeader[] {
  return msg.headers.map((h) => ({ name: binaryToText(h.name), value: binaryToText(h.value) }));
}

/** Multiset difference a − b of header lines. */
function headerLinesMissing(a: readonly MessageHeader[], b: readonly MessageHeader[]): string[] {
  const counts = new Map<string, number>();
  for (const h of b) {
    const line = `${h.name}: ${h.value}`;
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  const out: string[] = [];
  for (const h of a) {
    const line = `${h.name}: ${h.value}`;
    const n = counts.get(line) ?? 0;
    if (n > 0) counts.set(line, n - 1);
    else out.push(line);
  }
  return out;
}

function flagIndexes(flags: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 32; i++) if ((flags >>> i) & 1) out.push(i);
  return out;
}

function toListenSocket(s: string | ListenSocket): ListenSocket {
  return typeof s === "string" ? parseListenSocket(s) : s;
}

/** Standard reason phrases (RFC 3261 §21) of the statuses a downstream answer usually has. */
const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: "Trying",
  180: "Ringing",
  181: "Call Is Being Forwarded",
  182: "Queued",
  183: "Session Progress",
  200: "OK",
  202: "Accepted",
  301: "Moved Permanently",
  302: "Moved Temporarily",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  500: "Server Internal Error",
  503: "Service Unavailable",
  600: "Busy Everywhere",
  603: "Decline",
};

/** "proto:ip:port" of a destination, IPv6 in brackets (the form scenario files use). */
export function formatDestination(d: { readonly proto: string; readonly ip: string; readonly port: number }): string {
  return `${d.proto}:${formatHost(d.ip)}:${d.port}`;
}

/** A downstream key as given ("UDP:127.0.0.1:5080") in the canonical form; throws when it is not proto:ip:port. */
function canonicalDestinationKey(key: string): string {
  const m = /^(udp|tcp):(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/i.exec(key.trim());
  if (m === null) throw new Error(`downstream: "${key}" is not proto:ip:port (e.g. udp:127.0.0.1:5080)`);
  const ip = m[2]!.startsWith("[") ? m[2]!.slice(1, -1) : m[2]!;
  if (isIP(ip) === 0) throw new Error(`downstream: "${key}": ${ip} is not an IP address`);
  return formatDestination({ proto: m[1]!.toLowerCase(), ip, port: Number(m[3]) });
}

/** The branch parameter of the top Via (RFC 3261 §8.1.1.7: it identifies the transaction). */
function topViaBranch(msg: SipMessage): string {
  const via = msg.headers.find((h) => h.key === "via");
  return /;\s*branch=([^;,\s]+)/i.exec(via?.value ?? "")?.[1] ?? "";
}

/**
 * A response built from a received request as a UAS does (RFC 3261
 * §8.2.6.2): Via headers (all, in order), From, Call-ID and CSeq copied, To
 * copied with the UAS's tag added unless the request had one (a 100 Trying
 * gets none). A 1xx/2xx to an INVITE carries a Contact of the element, so
 * that the dialog it may establish has a remote target (§12.1.1).
 */
function buildDownstreamResponse(request: SipMessage, status: number, reason: string, toTag: string, extraHeaders: readonly string[], contact: string): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const h of request.headers) {
    if (h.key === "via" || h.key === "from" || h.key === "call-id" || h.key === "cseq") lines.push(`${binaryToText(h.name)}: ${binaryToText(h.value)}`);
    if (h.key === "to") {
      const to = binaryToText(h.value);
      lines.push(`${binaryToText(h.name)}: ${status === 100 || /;\s*tag=/i.test(to) ? to : `${to};tag=${toTag}`}`);
    }
  }
  if (request.method === "INVITE" && status > 100 && status < 300) lines.push(`Contact: ${contact}`);
  lines.push(...extraHeaders, "Content-Length: 0");
  return lines.join("\r\n") + "\r\n\r\n";
}

/** A request a simulated downstream element received, and its answers still to come. */
interface ReceivedRequest {
  readonly transmission: Transmission;
  readonly request: SipMessage;
  readonly toTag: string;
  timers: TimerHandle[];
  answeredFinally: boolean;
}

/**
 * The elements behind the destinations of LoadScriptOptions.downstream: each
 * answers every new request sent to it (retransmissions are absorbed, as a
 * UAS's server transaction does, RFC 3261 §17.2) with its configured
 * responses at their times on the harness clock. A CANCEL is answered
 * 200 and the INVITE it cancels 487 if it had no final response yet (§9.2).
 * ACK gets no response (§17.1.1.3). Responses configured after a final one
 * are not sent: a UAS sends one final response per request.
 */
class SimulatedDownstream {
  private readonly behaviours = new Map<string, DownstreamBehaviour>();
  private readonly received = new Map<string, ReceivedRequest>();

  constructor(
    behaviours: Readonly<Record<string, DownstreamBehaviour>>,
    private readonly timers: FakeClock,
    private readonly deliver: (from: Transmission, data: string) => void,
  ) {
    for (const [key, behaviour] of Object.entries(behaviours)) {
      if (behaviour !== "never" && !Array.isArray(behaviour)) throw new Error(`downstream "${key}": must be "never" or a list of responses`);
      for (const r of behaviour === "never" ? [] : behaviour) {
        if (!Number.isInteger(r.status) || r.status < 100 || r.status > 699) throw new Error(`downstream "${key}": status ${r.status} is not 100..699`);
        if (!(r.after >= 0)) throw new Error(`downstream "${key}": after must be a number of ms >= 0`);
      }
      this.behaviours.set(canonicalDestinationKey(key), behaviour);
    }
  }

  onSend(t: Transmission): void {
    const destination = formatDestination(t);
    const behaviour = this.behaviours.get(destination);
    if (behaviour === undefined || behaviour === "never") return;
    const parsed = parseMessage(t.data);
    if (!parsed.ok || parsed.message.kind !== "request" || parsed.message.method === "ACK") return;
    const request = parsed.message;
    const branch = topViaBranch(request);
    const id = `${destination}|${branch}|${request.method}`;
    if (this.received.has(id)) return;
    const entry: ReceivedRequest = { transmission: t, request, toTag: randomToken(4), timers: [], answeredFinally: false };
    this.received.set(id, entry);
    if (request.method === "CANCEL") {
      entry.timers.push(this.timers.setTimer(0, () => this.answer(entry, 200)));
      const invite = this.received.get(`${destination}|${branch}|INVITE`);
      if (invite !== undefined && !invite.answeredFinally) {
        for (const h of invite.timers) this.timers.clearTimer(h);
        invite.timers = [this.timers.setTimer(0, () => this.answer(invite, 487))];
      }
      return;
    }
    for (const r of behaviour) entry.timers.push(this.timers.setTimer(r.after, () => this.answer(entry, r.status, r.reason, r.headers)));
  }

  private answer(entry: ReceivedRequest, status: number, reason?: string, headers: readonly string[] = []): void {
    if (entry.answeredFinally) return;
    if (status >= 200) entry.answeredFinally = true;
    const t = entry.transmission;
    const contact = `<sip:${formatHost(t.ip)}:${t.port}${t.proto === "udp" ? "" : `;transport=${t.proto}`}>`;
    const text = buildDownstreamResponse(entry.request, status, reason ?? REASON_PHRASES[status] ?? "Response", entry.toTag, headers, contact);
    this.deliver(t, textToBinary(text));
  }
}

class Harness implements ScriptHarness {
  private readonly server: HarnessServer;
  private readonly transport: RecordingTransport;
  private readonly runner: RecordingRunner;
  private readonly scriptRunner: ScriptRunner;
  /** The script as the one tenant of a registry. */
  private readonly registry: TenantRegistry;
  private readonly pendingLookups = new Set<Promise<unknown>>();
  private readonly defaultSource: Required<Omit<SourceAddress, "connectionId">> & { connectionId?: number };
  /** The transaction timers and downstream answers run on it; HostServices.now is it plus `offset`. */
  private readonly timers: FakeClock;
  /** How far clock.set() moved the script's clock back (timers never run backwards). */
  private offset = 0;
  private readonly downstream: SimulatedDownstream;
  /** TCP connection ids of downstream elements' answers, by destination. */
  private readonly downstreamConnections = new Map<string, number>();
  /** The last message sent in and its placeholder values: advance() results refer to them. */
  private lastIncoming: SipMessage | undefined;
  private lastValues: Readonly<Record<string, string>> = {};
  /** Tenant id: the namespace of this harness's module state. */
  private readonly tenantId: string;
  /** The location, subscriber and address tables, in memory. */
  private readonly data: DataServices;
  readonly listen: readonly ListenSocket[];
  readonly clock: ScriptHarness["clock"];

  constructor(scriptRunner: ScriptRunner, opts: LoadScriptOptions) {
    this.timers = new FakeClock(opts.now ?? DEFAULT_NOW);
    this.listen = (opts.listen ?? DEFAULT_LISTEN).map(toListenSocket);
    if (this.listen.length === 0) throw new Error("loadScript: at least one listen socket is needed");
    this.defaultSource = { ...DEFAULT_SOURCE, ...opts.source };
    this.transport = new RecordingTransport(this.listen);
    this.runner = new RecordingRunner(scriptRunner);
    this.scriptRunner = scriptRunner;
    this.tenantId = opts.tenant ?? "test";
    // The script is a tenant of its own, as `ksr run script.js` serves it:
    // synchronous, no CPU budget, no tenant name on our Vias.
    this.registry = new TenantRegistry(singleScriptConfig(scriptRunner.scriptPath, this.tenantId, { ...DEFAULT_LIMITS, ...opts.limits }, 1, opts.settings), {
      load: () => this.runner,
      cpuBudgets: false,
      autoDemote: false,
    });
    const hosts = opts.hosts ?? {};
    // Shared module state (htable, pike) is keyed by tenant id process-wide:
    // every harness starts from nothing, whatever ran before it.
    dropTenantState(this.tenantId);
    this.data = openDataServices({ file: ":memory:", now: () => this.now() });
    const registry = this.registry;
    const timers = this.timers;
    this.server = new HarnessServer((host) => new TenantRouting(registry, host, { timers, nameTenantInVia: false }), {
      data: this.data,
      listen: this.listen,
      aliases: opts.aliases,
      tenantId: this.tenantId,
      now: () => this.now(),
      transport: () => this.transport,
      dns: trackedLookups(new TableDnsLookups({ ...opts.dns, hosts: { ...opts.dns?.hosts, ...hosts } }), (lookup) => this.pendingLookups.add(lookup)),
    });
    this.server.printLogs = opts.printLogs ?? false;
    for (const [k, v] of Object.entries(opts.vars ?? {})) this.state.vars.set(k, v);
    for (const [k, v] of Object.entries(opts.sharedVars ?? {})) this.state.sharedVars.set(k, v);
    if (opts.state !== undefined) seedState(opts.state, this.tenantId, this.data, this.now());
    opts.seed?.(this.state);
    this.downstream = new SimulatedDownstream(opts.downstream ?? {}, this.timers, (t, data) => this.receiveFromDownstream(t, data));
    this.transport.onSend = (t) => this.downstream.onSend(t);
    const self = this;
    this.clock = {
      now: () => self.now(),
      set(ms: number) {
        const now = self.now();
        if (ms >= now) self.timers.advance(ms - now);
        else self.offset += ms - now;
      },
      advance(ms: number) {
        self.timers.advance(ms);
      },
    };
  }

  private now(): number {
    return this.timers.now() + this.offset;
  }

  /** A downstream element's answer arrives from the destination the request went to. */
  private receiveFromDownstream(t: Transmission, data: string): void {
    const local = t.from ?? this.listen.find((l) => l.proto === t.proto) ?? this.listen[0]!;
    let connectionId = -1;
    if (t.proto === "tcp") {
      const key = formatDestination(t);
      connectionId = this.downstreamConnections.get(key) ?? DOWNSTREAM_TCP_CONNECTION_BASE + this.downstreamConnections.size;
      this.downstreamConnections.set(key, connectionId);
      this.transport.connections.set(connectionId, t.ip);
    }
    this.server.receive(data, { proto: t.proto, srcIp: t.ip, srcPort: t.port, localIp: local.ip, localPort: local.port, connectionId });
  }

  /** Waits for the host-name lookups of forwards (they are sent once the table lookup settles). */
  private async settleLookups(): Promise<void> {
    for (let round = 0; this.pendingLookups.size > 0; round++) {
      if (round >= MAX_SETTLE_ROUNDS) throw new Error(`forwards still waiting for host lookups after ${MAX_SETTLE_ROUNDS} rounds`);
      const pending = [...this.pendingLookups];
      this.pendingLookups.clear();
      await Promise.allSettled(pending);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Moves the timer clock to `target`, one due timer at a time, letting the forwards each one causes go out. */
  private async runTimersUntil(target: number): Promise<void> {
    await this.settleLookups();
    for (let round = 0; ; round++) {
      const due = this.timers.nextDue();
      if (due === undefined || due > target) break;
      if (round >= MAX_SETTLE_ROUNDS) throw new Error(`more than ${MAX_SETTLE_ROUNDS} timers due before ${target}`);
      this.timers.advance(Math.max(0, due - this.timers.now()));
      await this.settleLookups();
    }
    if (target > this.timers.now()) this.timers.advance(target - this.timers.now());
  }

  private beginRecording(): void {
    this.transport.sent.length = 0;
    this.runner.runs.length = 0;
    this.server.lines = [];
  }

  async advance(ms: number): Promise<SendResult> {
    if (!(ms >= 0)) throw new RangeError(`cannot advance by ${ms} ms`);
    this.beginRecording();
    await this.runTimersUntil(this.timers.now() + ms);
    return this.result("", this.lastValues, this.lastIncoming);
  }

  get state(): TenantState {
    return this.registry.get(this.tenantId)!.state;
  }

  get scriptPath(): string {
    return this.runner.scriptPath;
  }

  /** Placeholder values for one message from `source` received on `local`. */
  private placeholders(source: Required<Omit<SourceAddress, "connectionId">>, local: ListenSocket, extra: Readonly<Record<string, string>>): Record<string, string> {
    return {
      callid: `${randomToken(8)}@${source.ip}`,
      branch: `z9hG4bK${randomToken(8)}`,
      fromtag: randomToken(4),
      totag: randomToken(4),
      source_ip: source.ip,
      source_port: String(source.port),
      local_ip: local.ip,
      local_port: String(local.port),
      proto: source.proto,
      PROTO: source.proto.toUpperCase(),
      ...extra,
    };
  }

  async send(message: string | RequestSpec, options: SendOptions = {}): Promise<SendResult> {
    const source = { ...this.defaultSource, ...options.source };
    const local = this.listen.find((l) => l.proto === source.proto);
    if (local === undefined) throw new Error(`send: the harness does not listen on ${source.proto}`);
    const values = this.placeholders(source, local, options.values ?? {});
    let text: string;
    if (typeof message !== "string") text = buildRequestText(fillSpecPlaceholders(message, values), values);
    else if (options.raw) text = message;
    else text = toWireText(fillPlaceholders(message, values));

    const webSocket = source.proto === "ws" || source.proto === "wss";
    const connectionId = webSocket
      ? this.transport.webSocketConnection(source.proto, source.ip, source.port, source.connectionId)
      : source.proto !== "udp"
        ? (source.connectionId ?? DEFAULT_TCP_CONNECTION_ID)
        : -1;
    if (source.proto !== "udp") this.transport.connections.set(connectionId, source.ip);
    const rcv: ReceiveInfo = { proto: source.proto, srcIp: source.ip, srcPort: source.port, localIp: local.ip, localPort: local.port, connectionId };

    const wire = textToBinary(text);
    const parsed = parseMessage(wire);
    const incoming = parsed.ok ? parsed.message : undefined;
    this.beginRecording();
    this.transport.handlingResponseSentIn = incoming?.kind === "response";
    try {
      this.server.receive(wire, rcv);
      await this.settleLookups();
    } finally {
      this.transport.handlingResponseSentIn = false;
    }
    this.lastIncoming = incoming;
    this.lastValues = values;
    // Downstream answers due at once (after: 0) belong to this message.
    await this.runTimersUntil(this.timers.now());
    return this.result(text, values, incoming);
  }

  private result(sentText: string, values: Readonly<Record<string, string>>, incoming: SipMessage | undefined): SendResult {
    const replies: SentReply[] = [];
    const forwarded: SentForward[] = [];
    const incomingHeaders = incoming ? headersOf(incoming) : [];
    for (const t of this.transport.sent) {
      const parsed = parseMessage(t.data);
      const destination: WireDestination = { proto: t.proto, ip: t.ip, port: t.port };
      const raw = binaryToText(t.data);
      if (!parsed.ok) {
        // The 400 answer to a malformed request echoes its broken headers
        // (RFC 3261 §8.2.6.1 copies From, To, Call-ID...), so it may not
        // parse: read its status line alone.
        const statusLine = /^SIP\/2\.0 (\d{3}) ([^\r\n]*)\r\n/.exec(raw);
        if (statusLine !== null) {
          replies.push({ status: Number(statusLine[1]), reason: statusLine[2]!, headers: [], raw, destination });
        } else {
          forwarded.push({ kind: "request", destination, from: t.from, method: "", requestUri: "", status: 0, headers: [], added: [], removed: [], raw });
        }
        continue;
      }
      const msg = parsed.message;
      const headers = headersOf(msg);
      // A response is a reply to the caller (local, or relayed from a
      // downstream element) unless it relays a response the test sent in.
      if (msg.kind === "response" && !t.causedByResponseSentIn) {
        replies.push({ status: msg.status, reason: binaryToText(msg.reason), headers, raw, destination });
      } else {
        forwarded.push({
          kind: msg.kind,
          destination,
          from: t.from,
          method: msg.kind === "request" ? binaryToText(msg.method) : "",
          requestUri: binaryToText(msg.requestUri),
          status: msg.status,
          headers,
          added: headerLinesMissing(headers, incomingHeaders),
          removed: headerLinesMissing(incomingHeaders, headers),
          raw,
        });
      }
    }
    const run = this.runner.runs[this.runner.runs.length - 1];
    const ctx = run?.ctx;
    const outcome = run?.outcome;
    return {
      sent: sentText,
      values,
      replies,
      forwarded,
      dropped: ctx?.dropped ?? false,
      exited: ctx?.exited ?? false,
      logs: [...this.server.lines],
      flags: flagIndexes(ctx?.flags ?? 0),
      ...(run !== undefined ? { route: run.name } : {}),
      routes: this.runner.runs.map((r) => r.name),
      ...(outcome?.status === "error"
        ? { error: { kind: outcome.kind, message: outcome.message, ...(outcome.location !== undefined ? { location: outcome.location } : {}) } }
        : {}),
      ...(ctx !== undefined && ctx.isRequest ? { ruri: binaryToText(ctx.requestUri) } : {}),
      ...(ctx?.dstUri !== undefined ? { dstUri: binaryToText(ctx.dstUri) } : {}),
    };
  }

  takeCoverage(): Promise<ScriptCoverage> {
    return this.scriptRunner.takeCoverage();
  }

  close(): void {
    this.registry.dispose();
    this.data.close();
    dropTenantState(this.tenantId);
  }
}

/** Put the seed state where the modules look for it (see SeedState). */
function seedState(state: SeedState, tenant: string, data: DataServices, now: number): void {
  for (const [i, b] of (state.locations ?? []).entries()) {
    const aor = aorOf(textToBinary(b.aor), data.registrar);
    if (aor === undefined) throw new Error(`state.locations[${i}].aor: "${b.aor}" is not a SIP URI`);
    const table = b.table ?? "location";
    const binding: Binding = {
      ruid: `seed-${i}`,
      aor,
      contact: textToBinary(b.contact),
      expires: now + (b.expires ?? 3600) * 1000,
      q: b.q === undefined ? -1 : Math.round(b.q * 1000),
      callId: `seed-${i}`,
      cseq: 1,
      path: "",
      received: "",
      instance: "",
      regId: 0,
      userAgent: "",
      socket: "",
      branchFlags: 0,
      methods: [],
      lastModified: now,
      seq: 0,
      memoryOnly: false,
    };
    data.locations.replace(tenant, table, aor, [...data.locations.bindings(tenant, table, aor), binding]);
  }
  for (const s of state.subscribers ?? []) data.subscribers.put(tenant, subscriberRow(s.user, s.password));
  const htables = tenantHtables(tenant);
  for (const [table, items] of Object.entries(state.htable ?? {})) {
    for (const [key, value] of Object.entries(items)) htables.set(table, key, value, 0, now);
  }
}

function runnerOptions(opts: LoadScriptOptions) {
  return {
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
    tenant: opts.tenant ?? "test",
    ...(opts.modules !== undefined ? { modules: opts.modules } : {}),
    ...(opts.coverage === true ? { coverage: true } : {}),
  };
}

/**
 * Loads a routing script file (.js or .ts). Rejects with the load error
 * (`file:line:col: message`) when it does not compile or run.
 */
export async function loadScript(path: string, opts: LoadScriptOptions = {}): Promise<ScriptHarness> {
  const runner = opts.coverage === true ? await ScriptRunner.loadAsync(path, runnerOptions(opts)) : ScriptRunner.load(path, runnerOptions(opts));
  return new Harness(runner, opts);
}

/** Same as loadScript for script text; `filename` decides JS or TS and names the script in errors. */
export async function loadScriptSource(source: string, filename: string, opts: LoadScriptOptions = {}): Promise<ScriptHarness> {
  const runner =
    opts.coverage === true
      ? await ScriptRunner.fromSourceAsync(source, filename, runnerOptions(opts))
      : ScriptRunner.fromSource(source, filename, runnerOptions(opts));
  return new Harness(runner, opts);
}

/** Values of the header `name`, in order (case-insensitive; "v" and "Via" are the same header, RFC 3261 §7.3.3). */
export function headerValues(message: { readonly headers: readonly MessageHeader[] }, name: string): string[] {
  const wanted = canonicalHeaderKey(name);
  return message.headers.filter((h) => canonicalHeaderKey(h.name) === wanted).map((h) => h.value);
}

/** Lookups from `table`, each handed to `track` so that the harness can wait for forwards that wait for them. */
function trackedLookups(table: TableDnsLookups, track: (lookup: Promise<unknown>) => void): DnsLookups {
  const tracked = <T>(p: Promise<T>): Promise<T> => {
    track(p);
    return p;
  };
  return {
    naptr: (name) => tracked(table.naptr(name)),
    srv: (name) => tracked(table.srv(name)),
    a: (name) => tracked(table.a(name)),
    aaaa: (name) => tracked(table.aaaa(name)),
  };
}
