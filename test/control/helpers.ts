/**
 * Helpers for the control-socket suites: a ControlTarget whose answers and
 * calls the test controls, a short temporary socket path (Unix socket paths
 * are limited to ~107 bytes), and a raw client that sends bytes and reads
 * response lines without the project's own client.
 */
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ControlTarget, TenantReloadResult, TenantStatus } from "../../host/control/types.js";

export interface FakeTarget extends ControlTarget {
  /** Every call, as "method" or "reload:<id>" / "reload:*". */
  readonly calls: string[];
}

export interface FakeTargetOptions {
  readonly statuses?: TenantStatus[];
  readonly counterLines?: string[];
  /** Result of reloading one tenant; default ok for "a" and "b", unknown otherwise. */
  readonly reloadOne?: (id: string) => Promise<TenantReloadResult> | TenantReloadResult;
}

export const STATUSES: TenantStatus[] = [
  { id: "a", script: "/srv/a.js", isolation: "in-process", state: "running", pid: 4242, mode: "sync" },
  { id: "b", script: "/srv/b.js", isolation: "process", state: "restarting", pid: 4343, restarts: 2, mode: "async" },
];

export function fakeTarget(opts: FakeTargetOptions = {}): FakeTarget {
  const calls: string[] = [];
  const statuses = opts.statuses ?? STATUSES;
  const reloadOne =
    opts.reloadOne ??
    ((id: string): TenantReloadResult => (statuses.some((s) => s.id === id) ? { tenant: id, ok: true } : { tenant: id, ok: false, error: `no tenant "${id}"` }));
  return {
    calls,
    async tenants() {
      calls.push("tenants");
      return statuses;
    },
    async reload(id) {
      calls.push(`reload:${id ?? "*"}`);
      if (id !== undefined) return [await reloadOne(id)];
      const results: TenantReloadResult[] = [];
      for (const s of statuses) results.push(await reloadOne(s.id));
      return results;
    },
    async counters() {
      calls.push("counters");
      return opts.counterLines ?? ["tenant a: messages=3", "tenant b: messages=0"];
    },
  };
}

/** A fresh directory under the system temp dir and the socket path in it; remove() deletes the directory. */
export function socketDir(): { dir: string; socket: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), "ksr-ctl-"));
  return { dir, socket: path.join(dir, "ksr.ctl"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A raw connection to a control socket: write bytes, read response lines (parsed as JSON). */
export class RawClient {
  private buffered = "";
  private readonly lines: string[] = [];
  private readonly waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf("\n"); nl >= 0; nl = this.buffered.indexOf("\n")) {
        this.lines.push(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static connect(socketPath: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once("connect", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends one request object as a line. */
  send(request: unknown): void {
    this.socket.write(JSON.stringify(request) + "\n");
  }

  /** The next response line, parsed; rejects after timeoutMs or when the connection closed without one. */
  async next(timeoutMs = 3000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error("connection closed without a response line");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response line within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return JSON.parse(this.lines.shift()!);
  }

  /** Whether any line arrives within `ms` (to assert that nothing is answered). */
  async nothingWithin(ms: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.lines.length === 0;
  }

  /** Resolves once the server closed the connection; rejects after timeoutMs. */
  async closedWithin(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`connection still open after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
