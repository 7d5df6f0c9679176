/**
 * `ksr run` as users run it, for end-to-end tests: the CLI bundle in a
 * child process on an OS-chosen UDP port of 127.0.0.1, its stderr (the log)
 * captured; every child is killed after each test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach } from "vitest";
import { ROOT } from "../tooling/cli.js";

export interface RunningKsr {
  readonly child: ChildProcess;
  readonly udpPort: number;
  stderr(): string;
  /** Resolves when the log matches; rejects after timeoutMs or when ksr exits. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM, then waits for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Registers the after-each cleanup; returns the starter. */
export function ksrCliTestbed(cli: () => string): (args: readonly string[], ready?: RegExp) => Promise<RunningKsr> {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return async (args, ready = /running tenants .* on udp:127\.0\.0\.1:(\d+)/) => {
    const child = spawn(process.execPath, [cli(), "run", ...args, "--listen", "udp:127.0.0.1:0"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (stderr += chunk));
    const waitFor = async (pattern: RegExp, timeoutMs = 10_000): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(stderr)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in ksr's output within ${timeoutMs} ms:\n${stderr}`);
        if (child.exitCode !== null) throw new Error(`ksr exited with ${child.exitCode}:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor(ready, 20_000);
    const udpPort = Number(/on udp:127\.0\.0\.1:(\d+)/.exec(stderr)![1]);
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
}
