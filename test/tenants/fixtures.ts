/**
 * Test helpers for the tenant suites: a temporary directory holding a
 * tenants file and its scripts, messages with receive information, and a
 * fake worker process for the front (host/tenants/processes.ts).
 */
import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ReceiveInfo } from "../../host/core/context.js";
import { parseMessage } from "../../host/sip/parser.js";
import type { SipMessage } from "../../host/sip/message.js";
import type { FrontMessage, WorkerMessage } from "../../host/tenants/worker-protocol.js";

export interface TenantDir {
  readonly dir: string;
  /** Writes a file under the directory; returns its absolute path. */
  write(name: string, text: string): string;
}

export function tenantDir(): TenantDir {
  const dir = mkdtempSync(join(tmpdir(), "ksr-tenants-test-"));
  return {
    dir,
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
  };
}

export const REPLY_200 = `function ksr_request_route() { KSR.sl.sl_send_reply(200, "OK"); }\n`;

export function request(opts: { ruri?: string; to?: string; method?: string; branch?: string } = {}): SipMessage {
  const method = opts.method ?? "OPTIONS";
  const ruri = opts.ruri ?? "sip:bob@example.com";
  const to = opts.to ?? "<sip:bob@example.com>";
  const text =
    `${method} ${ruri} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 10.0.0.1:5070;branch=${opts.branch ?? "z9hG4bK-tenant-1"}\r\n` +
    "From: <sip:alice@example.org>;tag=a1\r\n" +
    `To: ${to}\r\n` +
    "Call-ID: tenants-test@10.0.0.1\r\n" +
    `CSeq: 1 ${method}\r\n` +
    "Max-Forwards: 70\r\n" +
    "Content-Length: 0\r\n\r\n";
  const parsed = parseMessage(text);
  if (!parsed.ok) throw new Error(`test message does not parse: ${parsed.error}`);
  return parsed.message;
}

export function rcv(overrides: Partial<ReceiveInfo> = {}): ReceiveInfo {
  return { proto: "udp", srcIp: "192.0.2.10", srcPort: 5070, localIp: "127.0.0.1", localPort: 5060, connectionId: -1, ...overrides };
}

/** A worker process as the front sees it: IPC messages both ways, kill → exit. */
export class FakeWorker extends EventEmitter {
  readonly received: FrontMessage[] = [];
  connected = true;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  constructor(
    readonly pid: number,
    /** Index in its tenant's pool of workers. */
    readonly index = 0,
  ) {
    super();
  }
  send(msg: FrontMessage): boolean {
    this.received.push(msg);
    return true;
  }
  /** The worker says something to the front. */
  say(msg: WorkerMessage): void {
    this.emit("message", msg);
  }
  die(signal: NodeJS.Signals | null, code: number | null = null): void {
    this.connected = false;
    this.signalCode = signal;
    this.exitCode = code;
    this.emit("exit", code, signal);
  }
  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    queueMicrotask(() => this.die(signal));
    return true;
  }
  sipTexts(): string[] {
    return this.received.flatMap((m) => (m.t === "sip" ? m.items.map((i) => i.data) : []));
  }
}
