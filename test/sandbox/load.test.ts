import { afterEach, describe, expect, test } from "vitest";
import { compileScript, ScriptLoadError } from "../../sandbox/compile.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { fakeHost, LIMITS, makeContext, TEST_MODULES, writeScript } from "./fixtures.js";

const runners: ScriptRunner[] = [];

function load(path: string, limits = LIMITS): ScriptRunner {
  const runner = ScriptRunner.load(path, { limits, tenant: "t1", modules: TEST_MODULES });
  runners.push(runner);
  return runner;
}

/** The ScriptLoadError that loading `path` throws. */
function loadError(path: string, limits = LIMITS): ScriptLoadError {
  try {
    load(path, limits);
  } catch (e) {
    expect(e).toBeInstanceOf(ScriptLoadError);
    return e as ScriptLoadError;
  }
  throw new Error(`${path} loaded without error`);
}

afterEach(() => {
  for (const r of runners.splice(0)) r.dispose();
});

describe("compileScript", () => {
  test("JavaScript is used exactly as written, without a source map", () => {
    const source = "// comment kept\nfunction ksr_request_route() { KSR.x.exit(); }\n";
    const path = writeScript("asis.js", source);
    const compiled = compileScript(path);
    expect(compiled.code).toBe(source);
    expect(compiled.filename).toBe(path);
    expect(compiled.sourceMap).toBeUndefined();
  });

  test("TypeScript is stripped of types and keeps top-level functions global", () => {
    const path = writeScript("typed.ts", `
interface Reply { code: number; reason: string }
const OK: Reply = { code: 200, reason: "OK" };
enum Flags { Nat = 5 }
function ksr_request_route(): void {
  const r: Reply = OK;
  KSR.setflag(Flags.Nat);
  KSR.sl.sl_send_reply(r.code, r.reason as string);
}
`);
    const compiled = compileScript(path);
    expect(compiled.code).not.toContain("interface");
    expect(compiled.sourceMap).toBeDefined();
    const runner = load(path);
    const host = fakeHost();
    const ctx = makeContext(host);
    expect(runner.runRoute("ksr_request_route", ctx)).toEqual({ status: "ok" });
    expect(host.replies).toEqual([{ status: 200, reason: "OK" }]);
    expect(ctx.flags).toBe(1 << 5);
  });

  test("an unreadable file is a ScriptLoadError naming it", () => {
    expect(() => compileScript("/nonexistent/dir/script.js")).toThrow(ScriptLoadError);
    expect(() => compileScript("/nonexistent/dir/script.js")).toThrow(/^\/nonexistent\/dir\/script\.js: cannot read script/);
  });
});

describe("load errors name file:line", () => {
  test("JavaScript syntax error", () => {
    const path = writeScript("syntax.js", "function ksr_request_route() {\n  var x = ;\n}\n");
    const e = loadError(path);
    expect(e.message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2:11: `));
    expect(e.file).toBe(path);
    expect(e.line).toBe(2);
  });

  test("TypeScript syntax error", () => {
    const path = writeScript("syntax.ts", "type T = string;\nfunction ksr_request_route(): void {\n\n  let x: T = (;\n}\n");
    const e = loadError(path);
    expect(e.message.startsWith(`${path}:4:`)).toBe(true);
    expect(e.line).toBe(4);
  });

  test("JavaScript that only V8 rejects (module syntax in a script) still names the line", () => {
    const path = writeScript("module.js", "// a KEMI script is not a module\n\nexport function ksr_request_route() {}\n");
    const e = loadError(path);
    expect(e.message.startsWith(`${path}:3:`)).toBe(true);
    expect(e.message).toContain("SyntaxError");
  });

  test("a script without ksr_request_route", () => {
    const path = writeScript("noroute.js", "function ksr_reply_route() {}\n");
    const e = loadError(path);
    expect(e.message).toBe(`${path}: missing ksr_request_route`);
  });

  test("top-level code that throws", () => {
    const path = writeScript("throws.js", "function ksr_request_route() {}\n\nnull.property;\n");
    const e = loadError(path);
    expect(e.message.startsWith(`${path}:3:`)).toBe(true);
    expect(e.message).toContain("TypeError");
  });

  test("top-level code that throws a non-Error value", () => {
    const path = writeScript("throws-string.js", "function ksr_request_route() {}\nthrow 'no';\n");
    expect(loadError(path).message).toContain("no");
  });

  test("top-level code that never finishes", () => {
    const path = writeScript("loops.js", "function ksr_request_route() {}\nwhile (true) {}\n");
    const started = Date.now();
    const e = ScriptRunner.load.bind(ScriptRunner, path, { limits: LIMITS, tenant: "t1", modules: TEST_MODULES, loadTimeoutMs: 200 });
    expect(e).toThrow(/did not finish within 200 ms/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test("top-level code that exhausts memory", () => {
    const path = writeScript("hog.js", "function ksr_request_route() {}\nconst hoard = []; for (;;) hoard.push(new Array(100000).fill(1));\n");
    expect(() => ScriptRunner.load(path, { limits: LIMITS, tenant: "t1", modules: TEST_MODULES, loadTimeoutMs: 5000 })).toThrow(/memory limit/);
  });
});

describe("source maps", () => {
  test("a TypeScript runtime error is reported at the .ts line", () => {
    // Type-only lines vanish in the output, so generated and source lines differ.
    const source = [
      "interface A {", //  1
      "  a: string;", //    2
      "}", //               3
      "type B = A & {", //  4
      "  b: number;", //    5
      "};", //              6
      "", //                7
      "function helper(x: B | undefined): number {", // 8
      "  return (x as B).b;", // 9
      "}", //               10
      "", //                11
      "function ksr_request_route(): void {", // 12
      "  const n: number = helper(undefined);", // 13
      "  KSR.info(String(n));", // 14
      "}", //               15
    ].join("\n");
    const path = writeScript("maps.ts", source);
    const compiled = compileScript(path);
    // Sanity: the generated code really moved the failing line.
    const generatedLine = compiled.code.split("\n").findIndex((l) => l.includes("return x.b")) + 1;
    expect(generatedLine).toBeGreaterThan(0);
    expect(generatedLine).not.toBe(9);
    const runner = load(path);
    const outcome = runner.runRoute("ksr_request_route", makeContext());
    expect(outcome).toMatchObject({ status: "error", kind: "exception", location: `${path}:9` });
    expect((outcome as { message: string }).message).toMatch(/^TypeError: Cannot read properties of undefined/);
  });

  test("a TypeScript top-level error is reported at the .ts line", () => {
    const path = writeScript("toplevel.ts", "type X = number;\ntype Y = string;\n\nfunction ksr_request_route(): void {}\nconst bad: any = undefined;\nbad.run();\n");
    const e = loadError(path);
    expect(e.line).toBe(6);
    expect(e.message.startsWith(`${path}:6:`)).toBe(true);
  });

  test("JavaScript errors keep the file's own line", () => {
    const path = writeScript("plain.js", "\n\n\nfunction ksr_request_route() {\n  undefinedFunction();\n}\n");
    const outcome = load(path).runRoute("ksr_request_route", makeContext());
    expect(outcome).toMatchObject({ status: "error", kind: "exception", location: `${path}:5` });
  });
});
