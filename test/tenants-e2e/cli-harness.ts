/**
 * `ksr run` as users run it, for end-to-end tests: the CLI bundle (built
 * once per file from the current sources) in child processes on 127.0.0.1,
 * their stderr (the log) captured, UDP peers to talk to them; every child
 * and peer is released after each test. Plus the two-tenant setup (a, b)
 * several suites start from.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, beforeAll, expect } from "vitest";
import { UdpPeer } from "../e2e/sip-client.js";
import { ROOT, buildCli } from "../tooling/cli.js";
import { tenantDir, type TenantDir } from "../tenants/fixtures.js";

export interface RunningKsr {
  readonly child: ChildProcess;
  /** The first UDP listen port, as announced. */
  readonly udpPort: number;
  stderr(): string;
  /** Resolves when the log contains the text or matches the pattern; rejects after timeoutMs or when ksr exits. */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** SIGTERM, then waits for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface StartOptions {
  readonly cwd?: string;
  /** The log line that says ksr serves (default: the tenants server's). */
  readonly ready?: RegExp;
}

export interface CliTestbed {
  /** Path of the built CLI bundle (after beforeAll). */
  cli(): string;
  /** `ksr run ...args`; `--listen udp:127.0.0.1:0` is added unless args listen somewhere. */
  startKsr(args: readonly string[], opts?: StartOptions): Promise<RunningKsr>;
  peer(): Promise<UdpPeer>;
}

/** Call once at the top of a test file: registers the build and the cleanup. */
export function cliTestbed(): CliTestbed {
  let cli = "";
  beforeAll(async () => {
    cli = await buildCli();
  }, 60_000);
  const children: ChildProcess[] = [];
  const peers: UdpPeer[] = [];
  afterEach(async () => {
    for (const p of peers.splice(0)) await p.close();
    // A server still running here was not stopped by its test; it is killed
    // either way (no test may leave one behind holding its ports).
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      expect(child.exitCode !== null || child.signalCode !== null).toBe(true);
    }
  });
  const startKsr = async (args: readonly string[], opts: StartOptions = {}): Promise<RunningKsr> => {
    const listen = args.includes("--listen") ? [] : ["--listen", "udp:127.0.0.1:0"];
    const child = spawn(process.execPath, [cli, "run", ...args, ...listen], { cwd: opts.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (stderr += chunk));
    const waitFor = async (pattern: RegExp | string, timeoutMs = 10_000): Promise<void> => {
      const found = (): boolean => (typeof pattern === "string" ? stderr.includes(pattern) : pattern.test(stderr));
      const deadline = Date.now() + timeoutMs;
      while (!found()) {
        if (Date.now() > deadline) throw new Error(`no ${String(pattern)} in ksr's output within ${timeoutMs} ms:\n${stderr}`);
        if (child.exitCode !== null) throw new Error(`ksr exited with ${child.exitCode}:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor(opts.ready ?? /running tenants .* on udp:127\.0\.0\.1:(\d+)/, 20_000);
    // The ready line names the port the OS chose for port 0.
    const announced = /on udp:127\.0\.0\.1:(\d+)/.exec(stderr);
    expect(announced, `ksr's ready line names its UDP port:\n${stderr}`).not.toBeNull();
    const udpPort = Number(announced![1]);
    expect(udpPort).toBeGreaterThan(0);
    const stop = async (): Promise<number | null> => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      return child.exitCode;
    };
    return { child, udpPort, stderr: () => stderr, waitFor, stop };
  };
  return {
    cli: () => cli,
    startKsr,
    async peer() {
      const p = await UdpPeer.open();
      peers.push(p);
      return p;
    },
  };
}

/** A script answering every request 200 with this reason. */
export const answerScript = (reason: string): string => `function ksr_request_route() {\n  KSR.sl.sl_send_reply(200, "${reason}");\n}\n`;

/** A script that does not compile: the error is at line 3. */
export const BROKEN_SCRIPT = 'function ksr_request_route() {\n  KSR.sl.sl_send_reply(200, "broken")\n  ++;\n}\n';

/** Tenants a (a.example, answers "a v1") and b (b.example, "b v1") in a fresh directory. */
export function twoTenants(): { dir: TenantDir; file: string } {
  const dir = tenantDir();
  dir.write("a.js", answerScript("a v1"));
  dir.write("b.js", answerScript("b v1"));
  const file = dir.write(
    "tenants.yaml",
    `tenants:\n  - id: a\n    script: a.js\n    match: { domains: [a.example] }\n  - id: b\n    script: b.js\n    match: { domains: [b.example] }\n`,
  );
  return { dir, file };
}
