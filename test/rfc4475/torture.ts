/**
 * Sending RFC 4475's torture messages to a running server and collecting
 * what it did with each: every transmission it made (wherever the RFC 3261
 * §18.2.2 rules addressed it) and its log lines.
 *
 * The server is the real one (host/core/server.ts with real UDP/TCP sockets
 * on 127.0.0.1, the script in an isolate); its transport is wrapped so that
 * each send is also recorded, since many of these messages name
 * documentation addresses in their Via and a reply to them is never seen
 * on loopback. Messages are sent one at a time; after each, an OPTIONS
 * from the same socket acts as a barrier: once its answer arrives, the
 * server has finished with the message before it (one event loop, and the
 * script runs synchronously).
 */
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setLogSink, setLogLevel, type LogRecord } from "../../host/core/log.js";
import type { SipServer } from "../../host/core/server.js";
import { tenantServer, type TenantRouting } from "../../host/core/tenant-routing.js";
import { singleScriptConfig } from "../../host/tenants/config.js";
import { TenantRegistry } from "../../host/tenants/registry.js";
import { TransportLayer, type TransportOptions } from "../../host/transport/index.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { BARRIER_CALL_ID_PREFIX, barrierOptions } from "../../bench/lib/barrier.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const MESSAGES_DIR = path.join(HERE, "messages");
export const UAS_SCRIPT = path.join(HERE, "uas.js");

/** The bytes of one archived message (e.g. "wsinv"). */
export function torture(name: string): Buffer {
  return fs.readFileSync(path.join(MESSAGES_DIR, `${name}.dat`));
}

export interface Transmission {
  readonly proto: string;
  readonly ip: string;
  readonly port: number;
  readonly data: string;
  /** "SIP/2.0 400 Bad Request" or "INVITE sip:..." */
  readonly firstLine: string;
}

export interface Outcome {
  readonly sent: readonly Transmission[];
  readonly logs: readonly string[];
}

/** Status code of a transmitted response, undefined for requests. */
export function statusOf(t: Transmission): number | undefined {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(t.firstLine);
  return m === null ? undefined : Number(m[1]);
}

export class TortureBench {
  private constructor(
    private readonly server: SipServer<TenantRouting>,
    private readonly registry: TenantRegistry,
    private readonly sent: Transmission[],
    private readonly logs: string[],
  ) {}

  static async start(): Promise<TortureBench> {
    const sent: Transmission[] = [];
    const logs: string[] = [];
    setLogLevel("dbg");
    setLogSink((r: LogRecord) => logs.push(`${r.level} [${r.scope}] ${r.text}`));
    const runner = ScriptRunner.load(UAS_SCRIPT, { limits: { heapMb: 32, routeTimeoutMs: 1000 }, tenant: "rfc4475" });
    const registry = new TenantRegistry(singleScriptConfig(UAS_SCRIPT, "rfc4475", { heapMb: 32, routeTimeoutMs: 1000 }), {
      load: () => runner,
      cpuBudgets: false,
      autoDemote: false,
    });
    const recordingTransport = (options: TransportOptions) => {
      const layer = new TransportLayer(options);
      const send = layer.send.bind(layer);
      layer.send = (proto, ip, port, data, connectionId, from) => {
        sent.push({ proto, ip, port, data, firstLine: data.slice(0, data.indexOf("\r\n")) });
        return send(proto, ip, port, data, connectionId, from);
      };
      return layer;
    };
    const server = tenantServer(
      registry,
      {
        listen: [
          { proto: "udp", ip: "127.0.0.1", port: 0 },
          { proto: "tcp", ip: "127.0.0.1", port: 0 },
        ],
        tenantId: "rfc4475",
        transport: recordingTransport,
      },
      { nameTenantInVia: false },
    );
    await server.start();
    return new TortureBench(server, registry, sent, logs);
  }

  async stop(): Promise<void> {
    await this.server.stop();
    this.registry.dispose();
    setLogSink(undefined);
    setLogLevel("info");
  }

  private barriers = 0;

  /** Send the bytes in one UDP datagram; the server's reaction to them. */
  async sendUdp(bytes: Buffer): Promise<Outcome> {
    const port = this.server.portOf("udp");
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const n = ++this.barriers;
    const [sentBefore, logsBefore] = [this.sent.length, this.logs.length];
    try {
      const answered = new Promise<void>((resolve) =>
        socket.on("message", (m) => {
          if (m.toString("latin1").includes(`${BARRIER_CALL_ID_PREFIX}${n}\r\n`)) resolve();
        }),
      );
      socket.send(bytes, port, "127.0.0.1");
      socket.send(barrierOptions(n, socket.address().port, "UDP"), port, "127.0.0.1");
      await withTimeout(answered, 5_000, `no answer to the barrier OPTIONS ${n}`);
    } finally {
      socket.close();
    }
    return this.since(sentBefore, logsBefore, n);
  }

  /** Send the bytes on a new TCP connection, then the barrier on the same connection. */
  async sendTcp(bytes: Buffer): Promise<Outcome & { readonly received: string }> {
    const port = this.server.portOf("tcp");
    const n = ++this.barriers;
    const [sentBefore, logsBefore] = [this.sent.length, this.logs.length];
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("error", reject);
      });
      const answered = new Promise<void>((resolve, reject) => {
        socket.on("data", (d) => {
          received += d.toString("latin1");
          if (received.includes(`${BARRIER_CALL_ID_PREFIX}${n}\r\n`)) resolve();
        });
        socket.on("close", () => reject(new Error(`connection closed before the barrier was answered; received:\n${received}`)));
      });
      socket.write(bytes);
      socket.write(barrierOptions(n, socket.localPort!, "TCP"));
      await withTimeout(answered, 5_000, `no answer to the barrier OPTIONS ${n} on TCP`);
    } finally {
      socket.destroy();
    }
    return { ...this.since(sentBefore, logsBefore, n), received };
  }

  private since(sentBefore: number, logsBefore: number, n: number): Outcome {
    const isBarrier = (t: Transmission) => t.data.includes(`${BARRIER_CALL_ID_PREFIX}${n}\r\n`);
    return {
      sent: this.sent.slice(sentBefore).filter((t) => !isBarrier(t)),
      logs: this.logs.slice(logsBefore).filter((l) => !l.includes(BARRIER_CALL_ID_PREFIX)),
    };
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
