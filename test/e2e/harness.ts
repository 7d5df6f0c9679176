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
import type { SipServer, SipServerOptions } from "../../host/core/server.js";
import { tenantServer, type TenantRouting, type TenantRoutingOptions } from "../../host/core/tenant-routing.js";
import { singleScriptConfig } from "../../host/tenants/config.js";
import { TenantRegistry, type TenantRunner } from "../../host/tenants/registry.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import type { RouteOutcome, ScriptLimits } from "../../sandbox/types.js";

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

export class HostRouteRunner implements TenantRunner {
  readonly scriptPath = "host-routes";
  readonly mode = "sync";
  readonly inFlight = 0;
  readonly cpuTimeNs = 0n;
  isDisposed = false;
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
  runRouteAny(name: string, ctx: MessageContext): RouteOutcome {
    return this.runRoute(name, ctx);
  }
  /** Host routes run on the calling thread only. */
  demote(): void {}
  dispose(): void {
    this.isDisposed = true;
  }
}

export interface RunningServer {
  readonly server: SipServer<TenantRouting>;
  readonly runner: TenantRunner;
  readonly udpPort: number;
  readonly tcpPort: number;
  stop(): Promise<void>;
}

/** A server of one script, as `ksr run script.js` builds it, running `runner`. */
export async function startServer(runner: TenantRunner, options: Partial<SipServerOptions> = {}, routing: TenantRoutingOptions = {}): Promise<RunningServer> {
  const tenantId = options.tenantId ?? "e2e";
  const registry = new TenantRegistry(singleScriptConfig(runner.scriptPath, tenantId, TEST_LIMITS), { load: () => runner, cpuBudgets: false, autoDemote: false });
  const server = tenantServer(
    registry,
    {
      listen: [
        { proto: "udp", ip: "127.0.0.1", port: 0 },
        { proto: "tcp", ip: "127.0.0.1", port: 0 },
      ],
      tenantId,
      ...options,
    },
    { nameTenantInVia: false, ...routing },
  );
  await server.start();
  return {
    server,
    runner,
    udpPort: server.portOf("udp"),
    tcpPort: server.portOf("tcp"),
    async stop() {
      await server.stop();
      registry.dispose();
    },
  };
}

export const TEST_LIMITS: ScriptLimits = { heapMb: 32, routeTimeoutMs: 100 };

export function startScript(name: string, options: Partial<SipServerOptions> = {}, limits: ScriptLimits = TEST_LIMITS): Promise<RunningServer> {
  const runner = ScriptRunner.load(scriptPath(name), { limits, tenant: options.tenantId ?? "e2e" });
  return startServer(runner, options);
}
