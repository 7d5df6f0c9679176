/**
 * Starting servers for end-to-end tests: an in-process SipServer on
 * 127.0.0.1 with OS-chosen ports, running either a real script in an
 * isolate or host-side route functions (for transport tests that are about
 * bytes on sockets, not scripts). Log lines are captured.
 */
import { fileURLToPath } from "node:url";
import path from "node:path";
import type { MessageContext } from "../../host/core/context.js";
import { setLogSink, setLogLevel, type LogRecord } from "../../host/core/log.js";
import { SipServer, type SipServerOptions } from "../../host/core/server.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import type { RouteOutcome, RouteRunner, ScriptLimits } from "../../sandbox/types.js";

export const SCRIPTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "scripts");

export function scriptPath(name: string): string {
  return path.join(SCRIPTS_DIR, name);
}

/** Collects log records for assertions; install() swaps the process log sink. */
export class LogCapture {
  readonly records: LogRecord[] = [];

  install(): void {
    setLogLevel("dbg");
    setLogSink((r) => this.records.push(r));
  }

  uninstall(): void {
    setLogSink(undefined);
    setLogLevel("info");
  }

  lines(): string[] {
    return this.records.map((r) => `${r.level} [${r.scope}] ${r.text}`);
  }

  find(predicate: (line: string) => boolean): string | undefined {
    return this.lines().find(predicate);
  }

  /** Waits (bounded) until a line matching the predicate was logged. */
  async waitFor(predicate: (line: string) => boolean, timeoutMs = 2000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.find(predicate);
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) throw new Error(`no matching log line within ${timeoutMs} ms; got:\n${this.lines().join("\n")}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** Route functions run on the host, standing in for a script. */
export type HostRoutes = Partial<Record<string, (ctx: MessageContext) => void>>;

export class HostRouteRunner implements RouteRunner {
  readonly scriptPath = "host-routes";
  constructor(private readonly routes: HostRoutes) {}
  hasRoute(name: string): boolean {
    return this.routes[name] !== undefined;
  }
  runRoute(name: string, ctx: MessageContext): RouteOutcome {
    const fn = this.routes[name];
    if (!fn) return { status: "missing" };
    fn(ctx);
    return { status: "ok" };
  }
  dispose(): void {}
}

export interface RunningServer {
  readonly server: SipServer;
  readonly runner: RouteRunner;
  readonly udpPort: number;
  readonly tcpPort: number;
  stop(): Promise<void>;
}

export async function startServer(runner: RouteRunner, options: Partial<SipServerOptions> = {}): Promise<RunningServer> {
  const server = new SipServer(runner, {
    listen: [
      { proto: "udp", ip: "127.0.0.1", port: 0 },
      { proto: "tcp", ip: "127.0.0.1", port: 0 },
    ],
    tenantId: "e2e",
    ...options,
  });
  await server.start();
  return {
    server,
    runner,
    udpPort: server.portOf("udp"),
    tcpPort: server.portOf("tcp"),
    async stop() {
      await server.stop();
      runner.dispose();
    },
  };
}

export const TEST_LIMITS: ScriptLimits = { heapMb: 32, routeTimeoutMs: 100 };

export function startScript(name: string, options: Partial<SipServerOptions> = {}, limits: ScriptLimits = TEST_LIMITS): Promise<RunningServer> {
  const runner = ScriptRunner.load(scriptPath(name), { limits, tenant: options.tenantId ?? "e2e" });
  return startServer(runner, options);
}
