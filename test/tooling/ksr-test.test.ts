import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parseScenarioFile, ScenarioFileError } from "../../host/testing/scenarios.js";
import { ROOT, runKsr } from "./cli.js";

const FAILING = "test/tooling/fixtures/failing-scenarios.yaml";
const exampleScenarioFiles = readdirSync(path.join(ROOT, "examples"))
  .filter((f) => f.endsWith(".test.yaml"))
  .map((f) => `examples/${f}`);

function scenarioCount(file: string): number {
  return (parseYaml(readFileSync(path.join(ROOT, file), "utf8")) as { scenarios: unknown[] }).scenarios.length;
}

const scratch = mkdtempSync(path.join(tmpdir(), "ksr-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("ksr test on the example scenario files", { timeout: 60_000 }, () => {
  it("covers every example", () => {
    expect(exampleScenarioFiles).toEqual(["examples/anti-flood.test.yaml", "examples/basic-proxy.test.yaml", "examples/typescript-proxy.test.yaml", "examples/webrtc-registrar.test.yaml"]);
  });

  it("passes every scenario, one line each, and exits 0", async () => {
    const r = await runKsr(["test", ...exampleScenarioFiles]);
    const total = exampleScenarioFiles.reduce((n, f) => n + scenarioCount(f), 0);
    expect(r.stdout.split("\n").filter((l) => l.startsWith("✓ "))).toHaveLength(total);
    expect(r.stdout).not.toContain("✗");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(`${total} passed, 0 failed`);
    expect(r.status).toBe(0);
  });
});

describe("ksr test arguments", { timeout: 60_000 }, () => {
  it("takes a directory for the scenario files below it", async () => {
    const r = await runKsr(["test", "examples"]);
    const total = exampleScenarioFiles.reduce((n, f) => n + scenarioCount(f), 0);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(`${total} passed, 0 failed`);
    expect(r.status).toBe(0);
  });
});

describe("ksr test reporting failures", { timeout: 60_000 }, () => {
  it("reports wrong expectations with an expected/actual diff and exits 1", async () => {
    const r = await runKsr(["test", FAILING]);
    expect(r.status).toBe(1);
    const lines = r.stdout.split("\n");
    expect(lines).toContain(`✗ ${FAILING} › wrong status (${/\((\d+) ms\)/.exec(lines.find((l) => l.includes("wrong status"))!)![1]} ms)`);
    expect(r.stdout).toContain("    reply.status:\n      - expected 486\n      + actual   404\n");
    expect(r.stdout).toContain('    forward.destination:\n      - expected "udp:127.0.0.1:5070"\n      + actual   "udp:127.0.0.1:5080"\n');
    expect(r.stdout).toContain('    forwards:\n      - expected "1 forwarded message"\n      + actual   []\n');
    expect(r.stdout).toContain("    message 2: logs[0]:\n");
    expect(lines.filter((l) => l.startsWith("✓ "))).toEqual([expect.stringContaining("right expectation")]);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("1 passed, 4 failed");
  });

  it("writes JUnit XML with --reporter junit, the closing line on stderr", async () => {
    const r = await runKsr(["test", "--reporter", "junit", FAILING, "examples/basic-proxy.test.yaml"]);
    expect(r.status).toBe(1);
    expect(r.stdout.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="ksr test" ')).toBe(true);
    const basic = scenarioCount("examples/basic-proxy.test.yaml");
    expect(r.stdout).toContain(`tests="${basic + 5}" failures="4"`);
    expect(r.stdout.match(/<testsuite /g)).toHaveLength(2);
    expect(r.stdout.match(/<testcase /g)).toHaveLength(basic + 5);
    expect(r.stdout.match(/<failure /g)).toHaveLength(4);
    expect(r.stdout).toContain('<failure message="reply.status: - expected 486 + actual   404">');
    expect(r.stderr).toBe(`${basic + 1} passed, 4 failed\n`);
  });

  it("counts a scenario file that cannot be used as a failure", async () => {
    const bad = path.join(scratch, "bad.test.yaml");
    writeFileSync(bad, "script: nowhere.js\nscenarios:\n  - name: x\n    send: { method: OPTIONS }\n    expct: {}\n");
    const r = await runKsr(["test", bad]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`    ${bad}: scenarios[0]: unknown key "expct"`);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("0 passed, 1 failed");
  });

  it("fails a scenario whose script does not load, naming file:line", async () => {
    writeFileSync(path.join(scratch, "broken.js"), "function ksr_request_route() {\n  if (x {\n}\n");
    const file = path.join(scratch, "broken.test.yaml");
    writeFileSync(file, "script: broken.js\nscenarios:\n  - name: anything\n    send: { method: OPTIONS }\n");
    const r = await runKsr(["test", file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/cannot load .*broken\.js: .*broken\.js:2:\d+: /);
  });

  it("exits 1 when there is no scenario file to run", async () => {
    const empty = mkdtempSync(path.join(scratch, "empty-"));
    const r = await runKsr(["test"], empty);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("no scenario files");
  });
});

describe("scenario files", () => {
  const parse = (text: string) => parseScenarioFile(text, "/dir/s.test.yaml");

  it("reads a send step's repeat, and refuses one that is not a count from 1 to 10 000", () => {
    const file = parse(`
script: proxy.js
scenarios:
  - name: many
    steps:
      - send: { method: OPTIONS }
        repeat: 40
`);
    expect(file.scenarios[0]!.steps[0]).toMatchObject({ kind: "send", repeat: 40 });
    for (const bad of ["0", "1.5", "10001", "lots"]) {
      expect(() => parse(`script: p.js\nscenarios:\n  - name: x\n    steps:\n      - send: { method: OPTIONS }\n        repeat: ${bad}\n`)).toThrow(/steps\[0\]\.repeat/);
    }
  });

  it("resolves the script next to the file and reads messages, steps and expectations", () => {
    const file = parse(`
script: proxy.js
options: { aliases: [proxy.example.test], vars: { n: 1 }, shv: { s: x }, source: { proto: tcp, ip: 192.0.2.1, port: 5070 } }
scenarios:
  - name: one
    send: { method: INVITE, ruri: "sip:a@b", source: { proto: udp } }
    expect: { reply: { status: 404 }, flags: [3, 1] }
  - name: two
    steps:
      - send: "OPTIONS sip:x SIP/2.0\\n"
      - advance: 5000
      - clock: 42
`);
    expect(file.script).toBe("/dir/proxy.js");
    expect(file.options).toEqual({
      aliases: ["proxy.example.test"],
      vars: { n: 1 },
      sharedVars: { s: "x" },
      source: { proto: "tcp", ip: "192.0.2.1", port: 5070 },
    });
    expect(file.scenarios[0]!.steps).toEqual([
      { kind: "send", message: { method: "INVITE", ruri: "sip:a@b" }, raw: false, source: { proto: "udp" }, expect: { reply: { status: 404 }, flags: [3, 1] }, repeat: 1 },
    ]);
    expect(file.scenarios[1]!.steps.map((s) => s.kind)).toEqual(["send", "advance", "clock"]);
  });

  it.each([
    ["scenarios: []\nscript: a.js", "scenarios: is empty"],
    ["script: a.js\nscenarios:\n  - name: a\n    send: {}\n    expect: { reply: { stauts: 200 } }", 'scenarios[0].expect.reply: unknown key "stauts"'],
    ["script: a.js\nscenarios:\n  - name: a\n    send: {}\n    expect: { ruri: '/(/' }", "scenarios[0].expect.ruri: invalid regular expression /(/"],
    ["script: a.js\nscenarios:\n  - name: a\n    send: {}\n  - name: a\n    send: {}", 'scenarios[1].name: "a" is used twice'],
    ["script: a.js\nscenarios:\n  - name: a\n    send: { text: x, method: INVITE }", "scenarios[0].send: text and request fields (method) do not go together"],
    ["scenarios:\n  - name: a\n    send: {}", "script: must be a string"],
    ["script: a.js\nscenarios: [ {", "invalid YAML"],
  ])("rejects %j", (text, message) => {
    expect(() => parse(text)).toThrow(ScenarioFileError);
    expect(() => parse(text)).toThrow(message);
  });
});
