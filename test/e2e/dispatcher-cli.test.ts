/**
 * `ksr run --dispatcher-list / --dispatcher-param`: a bad list or parameter
 * stops the start with exit code 2 and a message naming the list file and
 * line (or the parameter), before any socket is opened.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { scriptPath } from "./harness.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin/ksr.js");
const dir = mkdtempSync(path.join(tmpdir(), "ksr-dispatcher-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ksrRun(args: string[]) {
  return spawnSync(process.execPath, [BIN, "run", scriptPath("reply-ok.js"), "--listen", "udp:127.0.0.1:0", ...args], { cwd: ROOT, encoding: "utf8", timeout: 20_000 });
}

describe("ksr run --dispatcher-list", { timeout: 30_000 }, () => {
  it("refuses a list with a bad line, naming file and line", () => {
    const list = path.join(dir, "bad.list");
    writeFileSync(list, "1 sip:127.0.0.1:5070\n\n2 sip:127.0.0.1 0 0 weight=0\n");
    const r = ksrRun(["--dispatcher-list", list]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--dispatcher-list: ${list}:3: weight 0 is not in 1..100`);
  });

  it("refuses an unknown parameter, a parameter without a list, and a missing file", () => {
    const list = path.join(dir, "good.list");
    writeFileSync(list, "1 sip:127.0.0.1:5070\n");
    const unknown = ksrRun(["--dispatcher-list", list, "--dispatcher-param", "nope=1"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown dispatcher parameter "nope"');
    const noList = ksrRun(["--dispatcher-param", "flags=2"]);
    expect(noList.status).toBe(2);
    expect(noList.stderr).toContain("--dispatcher-param needs --dispatcher-list");
    const missing = ksrRun(["--dispatcher-list", path.join(dir, "none.list")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("none.list: cannot read");
    const malformed = ksrRun(["--dispatcher-list", list, "--dispatcher-param", "flags"]);
    expect(malformed.status).not.toBe(0);
    expect(malformed.stderr).toContain("is not name=value");
  });
});
