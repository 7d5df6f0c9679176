/**
 * Test doubles for the sandbox tests: a host without sockets, a message
 * context around a parsed OPTIONS/INVITE, and a small export table of our
 * own so these tests do not depend on the real KSR modules.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  MessageContext,
  newTenantState,
  type HostServices,
  type LogLevel,
  type ReceiveInfo,
} from "../../host/core/context.js";
import type { KemiModule } from "../../host/modules/types.js";
import { parseMessage } from "../../host/sip/parser.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import type { ScriptLimits } from "../../sandbox/types.js";

export interface FakeHost extends HostServices {
  readonly logs: { level: LogLevel; text: string }[];
  readonly replies: { status: number; reason: string }[];
}

export function fakeHost(): FakeHost {
  const logs: { level: LogLevel; text: string }[] = [];
  const replies: { status: number; reason: string }[] = [];
  return {
    listen: [{ proto: "udp", ip: "127.0.0.1", port: 5060 }],
    aliases: [],
    logs,
    replies,
    log(level, text) {
      logs.push({ level, text });
    },
    sendReply(ctx, status, reason) {
      replies.push({ status, reason });
      ctx.replied = { status, reason };
      return true;
    },
    forward() {
      return false;
    },
    now() {
      return 0;
    },
  };
}

const RECEIVE: ReceiveInfo = {
  proto: "udp",
  srcIp: "127.0.0.1",
  srcPort: 5080,
  localIp: "127.0.0.1",
  localPort: 5060,
  connectionId: -1,
};

/** A request as wire bytes (binary string). `subject` may hold UTF-8 bytes. */
export function rawRequest(method: string, subject = "hello"): string {
  return (
    `${method} sip:bob@127.0.0.1 SIP/2.0\r\n` +
    "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-test-1\r\n" +
    "From: <sip:alice@127.0.0.1>;tag=a1\r\n" +
    "To: <sip:bob@127.0.0.1>\r\n" +
    "Call-ID: sandbox-test@127.0.0.1\r\n" +
    `CSeq: 1 ${method}\r\n` +
    "Max-Forwards: 70\r\n" +
    `Subject: ${subject}\r\n` +
    "Content-Length: 0\r\n\r\n"
  );
}

export function makeContext(host: FakeHost = fakeHost(), method = "OPTIONS", subject?: string): MessageContext {
  const parsed = parseMessage(rawRequest(method, subject));
  if (!parsed.ok) throw new Error(`test message does not parse: ${parsed.error}`);
  return new MessageContext(parsed.message, RECEIVE, "request", newTenantState("t1"), host);
}

/** Every call the test modules saw, in order: "sl_send_reply(200,OK)". */
export const calls: string[] = [];

export const TEST_MODULES: readonly KemiModule[] = [
  {
    name: "",
    kamailioModule: "core",
    functions: {
      is_INVITE: { params: [], returns: "bool", doc: "", run: (ctx) => ctx.msg.method === "INVITE" },
      setflag: {
        params: ["int"],
        returns: "bool",
        doc: "",
        run(ctx, flag: number) {
          if (flag < 0 || flag > 31) return false;
          ctx.flags |= 1 << flag;
          return true;
        },
      },
      info: {
        params: ["str"],
        returns: "none",
        doc: "",
        run(ctx, text: string) {
          ctx.host.log("info", text, ctx);
          return undefined;
        },
      },
    },
  },
  {
    name: "sl",
    kamailioModule: "sl",
    functions: {
      sl_send_reply: {
        params: ["int", "str"],
        returns: "int",
        doc: "",
        run(ctx, code: number, reason: string) {
          calls.push(`sl_send_reply(${code},${reason})`);
          return ctx.host.sendReply(ctx, code, reason) ? 1 : -1;
        },
      },
    },
    // Callable here (in Kamailio 5.6 its fixup makes modf refuse it), so that modf's mechanics have a reply to show.
    native: [{ name: "sl_send_reply", params: ["int", "str"], routes: ["REQUEST_ROUTE"], kemi: "sl_send_reply" }],
  },
  {
    name: "tk",
    kamailioModule: "test",
    functions: {
      /** The Subject header, binary as on the wire; null when absent. */
      get_subject: {
        params: [],
        returns: "xval",
        doc: "",
        run: (ctx) => ctx.msg.headers.find((h) => h.key === "subject")?.value ?? null,
      },
      get_ruri: { params: [], returns: "xval", doc: "", run: (ctx) => ctx.requestUri },
      get_missing: { params: [], returns: "xval", doc: "", run: () => null },
      /** Records its argument as the host sees it (binary) and answers it back. */
      echo: {
        params: ["str"],
        returns: "xval",
        doc: "",
        run(_ctx, text: string) {
          calls.push(`echo(${text})`);
          return text;
        },
      },
      sum: { params: ["int", "int"], returns: "int", doc: "", run: (_ctx, a: number, b: number) => a + b },
      types: {
        params: ["str", "int", "str"],
        returns: "xval",
        doc: "",
        run: (_ctx, a: string, b: number, c: string) => `${typeof a}:${a}|${typeof b}:${b}|${typeof c}:${c}`,
      },
      is_even: { params: ["int"], returns: "bool", doc: "", run: (_ctx, n: number) => n % 2 === 0 },
      boom: {
        params: [],
        returns: "int",
        doc: "",
        run() {
          throw new Error("module failure with host detail /etc/secret");
        },
      },
      returns_object: { params: [], returns: "xval", doc: "", run: () => ({ host: "object" }) as unknown as string },
      stop: {
        params: [],
        returns: "int",
        doc: "",
        run(ctx) {
          ctx.exited = true;
          return 0;
        },
      },
    },
    unavailable: {
      rtp_manage: { params: ["str"], returns: "int", reason: "no RTP proxy configured" },
      rtp_check: { params: [], returns: "bool", reason: "no RTP proxy configured" },
    },
    native: [
      { name: "tk_sum", params: ["int", "int"], routes: ["ANY_ROUTE"], kemi: "sum" },
      { name: "is_even", params: ["int"], routes: ["ANY_ROUTE"], kemi: "is_even" },
      { name: "boom", params: [], routes: ["ANY_ROUTE"], kemi: "boom" },
      { name: "rtp_manage", params: ["str"], routes: ["ANY_ROUTE"], kemi: "rtp_manage" },
      { name: "tk_refused", params: ["str"], routes: ["ANY_ROUTE"], kemi: "echo", refused: "fixup without free" },
    ],
  },
];

export const LIMITS: ScriptLimits = { heapMb: 32, routeTimeoutMs: 100 };

export function runnerFor(source: string, filename = "/scripts/test.js", limits: ScriptLimits = LIMITS): ScriptRunner {
  return ScriptRunner.fromSource(source, filename, { limits, tenant: "t1", modules: TEST_MODULES });
}

let scriptDir: string | undefined;

/** Writes a script file under a fresh temporary directory and returns its path. */
export function writeScript(name: string, source: string): string {
  scriptDir ??= mkdtempSync(join(tmpdir(), "ksr-sandbox-test-"));
  const path = join(scriptDir, name);
  writeFileSync(path, source);
  return path;
}

/** A route that must still work after a hostile one: replies 200 through the bridge. */
export const HEALTHY_ROUTE = `
function ksr_healthy() {
  KSR.sl.sl_send_reply(200, "still alive");
}
`;

/** Runs HEALTHY_ROUTE on a fresh context and returns what happened. */
export function checkHealthy(runner: ScriptRunner): { outcome: unknown; replies: FakeHost["replies"] } {
  const host = fakeHost();
  const outcome = runner.runRoute("ksr_healthy", makeContext(host));
  return { outcome, replies: host.replies };
}
