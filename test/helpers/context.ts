/**
 * Test helper: a MessageContext for a SIP message written as text, with a
 * fake HostServices that records what the KSR functions asked for instead
 * of touching the network.
 *
 *   const { ctx, host } = makeContext(`OPTIONS sip:127.0.0.1 SIP/2.0
 *   Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1
 *   ...
 *   `);
 *   KSR_function.run(ctx, ...);
 *   expect(host.replies).toEqual([{ status: 200, reason: "OK", headers: [] }]);
 *
 * Message text: lines may end in "\n" (converted to "\r\n"); leading
 * indentation common to all lines is removed, so template literals can be
 * indented with the test code; a message written without the empty line
 * that ends the headers gets one. Pass `{ raw: true }` to use the text
 * byte-for-byte instead (e.g. to test a body longer than Content-Length).
 *
 * The fake host listens on 127.0.0.1:5060 over UDP and TCP unless `listen`
 * is given, has no aliases unless `aliases` is given, and its clock
 * (`now()`) is `opts.now` (default 1_700_000_000_000) and can be changed
 * through `host.clock.ms`.
 */
import { dedentMessageLines } from "../../host/testing/index.js";
import { parseMessage } from "../../host/sip/parser.js";
import type { SipMessage } from "../../host/sip/message.js";
import {
  MessageContext,
  newTenantState,
  type HostServices,
  type ListenSocket,
  type LogLevel,
  type ReceiveInfo,
  type RouteType,
  type TenantState,
} from "../../host/core/context.js";

export interface RecordedReply {
  readonly status: number;
  readonly reason: string;
  /** ctx.replyHeaders at the time of the reply (hdr.append_to_reply & co). */
  readonly headers: readonly string[];
}

export interface RecordedForward {
  /** The explicit target URI, or undefined for "$du, else R-URI". */
  readonly uri: string | undefined;
}

export interface RecordedLog {
  readonly level: LogLevel;
  readonly text: string;
}

/** HostServices that records replies, forwards and log lines. */
export interface RecordingHost extends HostServices {
  readonly replies: RecordedReply[];
  readonly forwards: RecordedForward[];
  readonly logs: RecordedLog[];
  readonly clock: { ms: number };
  /** Results sendReply/forward return (default true): set false to simulate send failures. */
  sendReplyResult: boolean;
  forwardResult: boolean;
}

export interface MakeContextOptions {
  /** Use the text exactly as given (no newline conversion, no dedent). */
  raw?: boolean;
  rcv?: Partial<ReceiveInfo>;
  routeType?: RouteType;
  tenant?: TenantState;
  listen?: readonly ListenSocket[];
  aliases?: readonly string[];
  now?: number;
  /** Reuse an existing recording host (several messages, one "server"). */
  host?: RecordingHost;
}

export const DEFAULT_LISTEN: readonly ListenSocket[] = [
  { proto: "udp", ip: "127.0.0.1", port: 5060 },
  { proto: "tcp", ip: "127.0.0.1", port: 5060 },
];

export const DEFAULT_RCV: ReceiveInfo = {
  proto: "udp",
  srcIp: "10.0.0.1",
  srcPort: 5070,
  localIp: "127.0.0.1",
  localPort: 5060,
  connectionId: -1,
};

export function makeRecordingHost(opts: Pick<MakeContextOptions, "listen" | "aliases" | "now"> = {}): RecordingHost {
  const host: RecordingHost = {
    listen: opts.listen ?? DEFAULT_LISTEN,
    aliases: opts.aliases ?? [],
    replies: [],
    forwards: [],
    logs: [],
    clock: { ms: opts.now ?? 1_700_000_000_000 },
    sendReplyResult: true,
    forwardResult: true,
    log(level, text) {
      host.logs.push({ level, text });
    },
    sendReply(ctx, status, reason) {
      if (!host.sendReplyResult) return false;
      host.replies.push({ status, reason, headers: [...ctx.replyHeaders] });
      return true;
    },
    forward(_ctx, targetUri) {
      if (!host.forwardResult) return false;
      host.forwards.push({ uri: targetUri });
      return true;
    },
    now: () => host.clock.ms,
  };
  return host;
}

/** Turn test-friendly text into wire text: dedent, CRLF line ends, header terminator. */
export function toWireText(text: string): string {
  // Unlike the harness's toWireText, no Content-Length is added: parser tests omit it on purpose.
  const { lines, endsWithNewline } = dedentMessageLines(text);
  const blank = lines.findIndex((l) => l === "");
  if (blank === -1) return lines.join("\r\n") + "\r\n\r\n";
  const head = lines.slice(0, blank);
  const body = lines.slice(blank + 1);
  if (body.length === 0) return head.join("\r\n") + "\r\n\r\n";
  return head.join("\r\n") + "\r\n\r\n" + body.join("\r\n") + (endsWithNewline ? "\r\n" : "");
}

/** Parse the text (see the module comment) or throw with the parser's error. */
export function parseTestMessage(text: string, raw = false): SipMessage {
  const parsed = parseMessage(raw ? text : toWireText(text));
  if (!parsed.ok) throw new Error(`test message does not parse: ${parsed.error}`);
  return parsed.message;
}

export interface TestContext {
  readonly ctx: MessageContext;
  readonly host: RecordingHost;
}

/** A context for an already built SipMessage (e.g. one changed by hand to be malformed). */
export function makeContextFromMessage(msg: SipMessage, opts: MakeContextOptions = {}): TestContext {
  const host = opts.host ?? makeRecordingHost(opts);
  const rcv: ReceiveInfo = { ...DEFAULT_RCV, ...opts.rcv };
  const ctx = new MessageContext(
    msg,
    rcv,
    opts.routeType ?? (msg.kind === "request" ? "request" : "reply"),
    opts.tenant ?? newTenantState("test"),
    host,
  );
  return { ctx, host };
}

export function makeContext(rawSipText: string, opts: MakeContextOptions = {}): TestContext {
  return makeContextFromMessage(parseTestMessage(rawSipText, opts.raw), opts);
}

/** A minimal valid request; fields can be overridden. Handy when only one header matters. */
export function request(opts: {
  method?: string;
  uri?: string;
  extraHeaders?: string[];
  body?: string;
  via?: string[];
  from?: string;
  to?: string;
} = {}): string {
  const method = opts.method ?? "OPTIONS";
  const vias = opts.via ?? ["SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-test-1"];
  const body = opts.body ?? "";
  return [
    `${method} ${opts.uri ?? "sip:bob@127.0.0.1"} SIP/2.0`,
    ...vias.map((v) => `Via: ${v}`),
    "Max-Forwards: 70",
    `From: ${opts.from ?? '"Alice" <sip:alice@example.com>;tag=from-tag-1'}`,
    `To: ${opts.to ?? "<sip:bob@example.org>"}`,
    "Call-ID: call-1@10.0.0.1",
    `CSeq: 1 ${method === "ACK" ? "ACK" : method}`,
    ...(opts.extraHeaders ?? []),
    `Content-Length: ${body.length}`,
    "",
    body,
  ].join("\r\n");
}

/** A minimal valid response to `request()`. */
export function response(status: number, reason: string, opts: { method?: string; extraHeaders?: string[] } = {}): string {
  return [
    `SIP/2.0 ${status} ${reason}`,
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-proxy-1",
    "Via: SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK-test-1;received=10.0.0.9",
    'From: "Alice" <sip:alice@example.com>;tag=from-tag-1',
    "To: <sip:bob@example.org>;tag=to-tag-2",
    "Call-ID: call-1@10.0.0.1",
    `CSeq: 1 ${opts.method ?? "INVITE"}`,
    ...(opts.extraHeaders ?? []),
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}
