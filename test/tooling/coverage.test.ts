import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runScenarioFile } from "../../host/testing/scenarios.js";
import { formatCoverageSummary, formatLcov, mergeCoverage, type ScriptCoverage } from "../../sandbox/coverage.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { runKsr } from "./cli.js";

const scratch = mkdtempSync(path.join(tmpdir(), "ksr-coverage-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Line numbers matter: the expectations below name them.
const JS_SCRIPT = [
  "function ksr_request_route() {", // 1
  '  if (KSR.pv.get("$rm") === "OPTIONS") {', // 2
  '    KSR.sl.sl_send_reply(200, "OK");', // 3
  "    return;", // 4
  "  }", // 5
  '  KSR.sl.sl_send_reply(404, "Not here");', // 6
  "}", // 7
  "", // 8
  "function ksr_reply_route() {", // 9
  '  KSR.info("reply\\n");', // 10
  "}", // 11
  "",
].join("\n");

const TS_SCRIPT = [
  "interface Unused {", // 1
  "  field: number;", // 2
  "}", // 3
  "type Method = string;", // 4
  "", // 5
  "function ksr_request_route(): void {", // 6
  '  const method = KSR.pv.get("$rm") as Method;', // 7
  '  if (method === "OPTIONS") {', // 8
  '    KSR.sl.sl_send_reply(200, "OK");', // 9
  "    return;", // 10
  "  }", // 11
  '  KSR.sl.sl_send_reply(404, "Not here");', // 12
  "}", // 13
  "",
].join("\n");

const OPTIONS_ONLY = (script: string) => `script: ${script}
scenarios:
  - name: OPTIONS is answered
    send: { method: OPTIONS, ruri: "sip:server@127.0.0.1" }
    expect:
      reply: { status: 200 }
`;

function writeFixture(name: string, script: string): { scriptPath: string; scenarioPath: string } {
  const scriptPath = path.join(scratch, name);
  const scenarioPath = path.join(scratch, `${name}.test.yaml`);
  writeFileSync(scriptPath, script);
  writeFileSync(scenarioPath, OPTIONS_ONLY(name));
  return { scriptPath, scenarioPath };
}

async function coverageOf(scenarioPath: string): Promise<ScriptCoverage[]> {
  const taken: ScriptCoverage[] = [];
  const outcomes = await runScenarioFile(scenarioPath, { onCoverage: (c) => taken.push(c) });
  expect(outcomes.map((o) => o.failures)).toEqual([[]]);
  return taken;
}

// isolated-vm 7.0.2's inspector aborts the process on Node 26 (see
// startCoverage in sandbox/runner.ts): there coverage is refused instead.
const inspectorWorks = Number(process.versions.node.split(".")[0]) < 26;

describe.runIf(!inspectorWorks)("script coverage on Node 26+", () => {
  it("is refused with an error that names Node 24, and the process lives on", async () => {
    const { scenarioPath } = writeFixture("refused.js", JS_SCRIPT);
    const outcomes = await runScenarioFile(scenarioPath, { onCoverage: () => undefined });
    expect(outcomes.map((o) => o.failures.join("\n"))).toEqual([expect.stringMatching(/script coverage needs Node 24/)]);
  });
});

describe.runIf(inspectorWorks)("script coverage", { timeout: 60_000 }, () => {
  it("reports exactly which lines and routes of a JS script ran", async () => {
    const { scriptPath, scenarioPath } = writeFixture("branchy.js", JS_SCRIPT);
    const [coverage] = await coverageOf(scenarioPath);
    expect(coverage!.file).toBe(scriptPath);
    // The OPTIONS branch ran; the 404 line after it and the reply route did not.
    expect([...coverage!.lines]).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [6, 0],
      [9, 0],
      [10, 0],
    ]);
    expect(coverage!.functions).toEqual([
      { name: "ksr_request_route", line: 1, count: 1 },
      { name: "ksr_reply_route", line: 9, count: 0 },
    ]);
    expect(formatCoverageSummary(coverage!)).toBe(
      `${scriptPath}: lines 4/7 (57.1%), routes 1/2\n  never ran: ksr_reply_route (line 9)\n  lines not run: 6, 9-10\n`,
    );
  });

  it("maps the lines of a TypeScript script to the .ts file", async () => {
    const { scriptPath, scenarioPath } = writeFixture("branchy.ts", TS_SCRIPT);
    const [coverage] = await coverageOf(scenarioPath);
    expect(coverage!.file).toBe(scriptPath);
    // Type-only lines (1-4) produce no code and are not counted.
    expect([...coverage!.lines]).toEqual([
      [6, 1],
      [7, 1],
      [8, 1],
      [9, 1],
      [10, 1],
      [12, 0],
    ]);
    expect(coverage!.functions).toEqual([{ name: "ksr_request_route", line: 6, count: 1 }]);
  });

  it("sums the coverage of several runs and writes it as lcov", () => {
    const first: ScriptCoverage = { file: "/s.js", lines: new Map([[1, 1], [2, 0], [4, 0]]), functions: [{ name: "a", line: 1, count: 1 }, { name: "b", line: 4, count: 0 }] };
    const second: ScriptCoverage = { file: "/s.js", lines: new Map([[1, 2], [2, 1], [4, 0]]), functions: [{ name: "a", line: 1, count: 2 }, { name: "b", line: 4, count: 0 }] };
    const merged = mergeCoverage(first, second);
    expect([...merged.lines]).toEqual([[1, 3], [2, 1], [4, 0]]);
    expect(formatLcov([merged])).toBe(
      ["SF:/s.js", "FN:1,a", "FN:4,b", "FNDA:3,a", "FNDA:0,b", "FNF:2", "FNH:1", "DA:1,3", "DA:2,1", "DA:4,0", "LF:3", "LH:2", "end_of_record", ""].join("\n"),
    );
  });

  it("is refused by the sync loaders, which cannot wait for the inspector", () => {
    expect(() => ScriptRunner.fromSource(JS_SCRIPT, "/x.js", { limits: { heapMb: 32, routeTimeoutMs: 100 }, tenant: "t", coverage: true })).toThrow(
      /loadAsync/,
    );
  });

  it("ksr test --coverage prints the summary and --coverage-lcov writes the tracefile", async () => {
    const { scriptPath, scenarioPath } = writeFixture("cli.js", JS_SCRIPT);
    const lcovPath = path.join(scratch, "cli.lcov");
    const r = await runKsr(["test", scenarioPath, "--coverage", "--coverage-lcov", lcovPath]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`${scriptPath}: lines 4/7 (57.1%), routes 1/2\n  never ran: ksr_reply_route (line 9)\n`);
    expect(readFileSync(lcovPath, "utf8")).toBe(
      [
        `SF:${scriptPath}`,
        "FN:1,ksr_request_route",
        "FN:9,ksr_reply_route",
        "FNDA:1,ksr_request_route",
        "FNDA:0,ksr_reply_route",
        "FNF:2",
        "FNH:1",
        "DA:1,1",
        "DA:2,1",
        "DA:3,1",
        "DA:4,1",
        "DA:6,0",
        "DA:9,0",
        "DA:10,0",
        "LF:7",
        "LH:4",
        "end_of_record",
        "",
      ].join("\n"),
    );
  });

  it("prints nothing about coverage without --coverage", async () => {
    const { scenarioPath } = writeFixture("plain.js", JS_SCRIPT);
    const r = await runKsr(["test", scenarioPath]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain("routes");
  });
});
