import { spawn } from "node:child_process";
import { appendFileSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildCli, ROOT } from "./cli.js";

const scratch = mkdtempSync(path.join(tmpdir(), "ksr-watch-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Resolves once `predicate` holds for the text read so far; rejects after `ms`. */
function waitFor(read: () => string, predicate: (text: string) => boolean, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (predicate(read())) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(poll);
        reject(new Error(`timed out; output so far:\n${read()}`));
      }
    }, 25);
  });
}

const summaries = (text: string) => text.split("\n").filter((l) => /^\d+ passed, \d+ failed$/.test(l));

describe("ksr test --watch", { timeout: 60_000 }, () => {
  it("runs again when the script under test changes, and stops on SIGINT", async () => {
    copyFileSync(path.join(ROOT, "examples/basic-proxy.js"), path.join(scratch, "proxy.js"));
    const file = path.join(scratch, "proxy.test.yaml");
    writeFileSync(file, 'script: proxy.js\nscenarios:\n  - name: keepalive\n    send: { method: OPTIONS, ruri: "sip:127.0.0.1:5060" }\n    expect: { reply: { status: 200 } }\n');
    const cli = await buildCli();
    const child = spawn(process.execPath, [cli, "test", "--watch", file], { cwd: scratch, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor(() => stderr, (t) => t.includes("Ctrl-C stops"), 20_000);
      expect(summaries(stdout)).toEqual(["1 passed, 0 failed"]);
      // A change that makes the scenario fail: the re-run must show it.
      appendFileSync(path.join(scratch, "proxy.js"), '\nfunction ksr_request_route() { KSR.sl.sl_send_reply(403, "Changed"); }\n');
      await waitFor(() => stdout, (t) => summaries(t).length === 2, 20_000);
      expect(stdout).toMatch(/─+ re-run /);
      expect(summaries(stdout)).toEqual(["1 passed, 0 failed", "0 passed, 1 failed"]);
      expect(stdout).toContain("reply.status:\n      - expected 200\n      + actual   403\n");
      child.kill("SIGINT");
      // Exit code of the last run.
      expect(await exited).toBe(1);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});
