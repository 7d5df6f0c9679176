/**
 * `ksr ctl` as an operator runs it, for the control e2e tests: one run with
 * its exit status and output, or a `--json` run whose answer is parsed.
 */
import { spawnSync } from "node:child_process";
import { expect } from "vitest";

export interface CtlRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `ksr ctl` bound to the CLI entry of a test bed (cliTestbed().cli). */
export function ctlRunner(cli: () => string): { ctl(socket: string, args: string[]): CtlRun; json<T>(socket: string, args: string[]): T } {
  const ctl = (socket: string, args: string[]): CtlRun => {
    const r = spawnSync(process.execPath, [cli(), "ctl", "--control", socket, ...args], { encoding: "utf8", timeout: 20_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = <T>(socket: string, args: string[]): T => {
    const r = ctl(socket, ["--json", ...args]);
    expect(r.status, `ksr ctl ${args.join(" ")}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  return { ctl, json };
}
