/**
 * Scripts that try to hang, exhaust, crash or escape the sandbox. After each
 * one the same runner must still run a normal route correctly.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { setLogSink } from "../../host/core/log.js";
import type { ScriptRunner } from "../../sandbox/runner.js";
import type { ScriptLimits } from "../../sandbox/types.js";
import { calls, checkHealthy, fakeHost, HEALTHY_ROUTE, LIMITS, makeContext, runnerFor } from "./fixtures.js";
import { DEFAULT_MAX_STRING_LENGTH } from "../../sandbox/bridge.js";

/** Filling a heap takes longer than the default 100 ms route limit; memory tests get more time. */
const MEMORY_TEST_LIMITS: ScriptLimits = { heapMb: 32, routeTimeoutMs: 3000 };

let runner: ScriptRunner | undefined;

/** Loads `source` plus the healthy route, runs ksr_request_route once. */
function attack(source: string, limits: ScriptLimits = LIMITS) {
  runner = runnerFor(`${source}\n${HEALTHY_ROUTE}`, "/scripts/test.js", limits);
  const host = fakeHost();
  const ctx = makeContext(host);
  const outcome = runner.runRoute("ksr_request_route", ctx);
  return { outcome, host, ctx, runner };
}

function expectHealthy(): void {
  const { outcome, replies } = checkHealthy(runner!);
  expect(outcome).toEqual({ status: "ok" });
  expect(replies).toEqual([{ status: 200, reason: "still alive" }]);
}

beforeEach(() => {
  calls.length = 0;
  // Restart warnings would clutter the test output.
  setLogSink(() => {});
});

afterEach(() => {
  runner?.dispose();
  runner = undefined;
  setLogSink(undefined);
});

describe("resource exhaustion", () => {
  test("an endless loop times out and the isolate keeps serving", () => {
    const started = Date.now();
    const { outcome } = attack(`function ksr_request_route() { while (true) {} }`);
    expect(outcome).toMatchObject({ status: "error", kind: "timeout" });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(runner!.restarts).toBe(0);
    // The loop's CPU time is accounted to the runner (input for per-tenant CPU budgets).
    expect(runner!.cpuTimeNs).toBeGreaterThan(10_000_000n);
    expectHealthy();
  });

  test("an endless loop that swallows every exception still times out", () => {
    const { outcome } = attack(`function ksr_request_route() { for (;;) { try { KSR.x.exit(); } catch (e) {} } }`);
    expect(outcome).toMatchObject({ status: "error", kind: "timeout" });
    expectHealthy();
  });

  test("an allocation bomb runs out of memory; the isolate is re-created from the script", () => {
    const { outcome } = attack(`
      var counter = 0;
      function ksr_count() { counter++; KSR.sl.sl_send_reply(200, "count " + counter); }
      function ksr_request_route() { counter = 100; const hoard = []; for (;;) hoard.push(new Array(100000).fill(counter)); }
    `, MEMORY_TEST_LIMITS);
    expect(outcome).toMatchObject({ status: "error", kind: "oom" });
    expectHealthy();
    expect(runner!.restarts).toBe(1);
    // A fresh isolate: the script's globals start over from its top-level code.
    const host = fakeHost();
    expect(runner!.runRoute("ksr_count", makeContext(host))).toEqual({ status: "ok" });
    expect(host.replies).toEqual([{ status: 200, reason: "count 1" }]);
  });

  test("hoarding large strings runs out of memory too", () => {
    const { outcome } = attack(`function ksr_request_route() { const a = []; for (;;) a.push("x".repeat(1e6) + Math.random()); }`, MEMORY_TEST_LIMITS);
    expect(outcome).toMatchObject({ status: "error", kind: "oom" });
    expectHealthy();
    expect(runner!.restarts).toBe(1);
  });

  test("infinite recursion is a RangeError exception with the script location", () => {
    const { outcome } = attack(`function f(n) { return f(n + 1) + 1; }\nfunction ksr_request_route() { f(0); }`);
    expect(outcome).toMatchObject({
      status: "error",
      kind: "exception",
      message: "RangeError: Maximum call stack size exceeded",
      location: "/scripts/test.js:1",
    });
    expectHealthy();
  });
});

describe("thrown values that are not Errors are described safely", () => {
  const cases: [string, string, string | RegExp][] = [
    ["a string", `throw "plain string"`, 'uncaught string "plain string"'],
    ["a number", `throw 42`, "uncaught number 42"],
    ["null", `throw null`, "uncaught null"],
    ["undefined", `throw undefined`, "uncaught undefined"],
    ["a Symbol", `throw Symbol("sym")`, "uncaught symbol sym"],
    ["an object with a throwing toString", `throw { toString() { throw new Error("nope"); } }`, "uncaught object (value cannot be converted to a string)"],
    ["an object with a Symbol-returning toString", `throw { toString() { return Symbol("x"); } }`, "uncaught object (value cannot be converted to a string)"],
    ["a plain object", `throw { code: 7 }`, "uncaught object [object Object]"],
    ["a Proxy whose every trap throws", `throw new Proxy({}, { get() { throw 1; }, getPrototypeOf() { throw 2; }, has() { throw 3; } })`, /^uncaught /],
    ["an Error with throwing getters", `const e = new Error("m"); Object.defineProperty(e, "name", { get() { throw 1; } }); Object.defineProperty(e, "stack", { get() { throw 2; } }); throw e`, "Error: m"],
    ["a huge string", `throw "x".repeat(5000000)`, /^uncaught string "x{1000}\.\.\."$/],
  ];
  for (const [label, statement, expected] of cases) {
    test(label, () => {
      const { outcome } = attack(`function ksr_request_route() { ${statement}; }`);
      expect(outcome).toMatchObject({ status: "error", kind: "exception" });
      const message = (outcome as { message: string }).message;
      if (typeof expected === "string") expect(message).toBe(expected);
      else expect(message).toMatch(expected);
      expectHealthy();
    });
  }
});

describe("escape attempts", () => {
  test("constructor.constructor('return process')() finds no process", () => {
    const { outcome } = attack(`function ksr_request_route() { return constructor.constructor("return process")(); }`);
    expect(outcome).toMatchObject({ status: "error", kind: "exception", message: "ReferenceError: process is not defined" });
    expectHealthy();
  });

  test("KSR.constructor.constructor(...) does not exist (null-prototype KSR)", () => {
    const { outcome } = attack(`function ksr_request_route() { return KSR.constructor.constructor("return process")(); }`);
    expect(outcome).toMatchObject({ status: "error", kind: "exception" });
    expect((outcome as { message: string }).message).toMatch(/^TypeError: Cannot read properties of undefined/);
    expectHealthy();
  });

  test("function prototypes of KSR members lead only to the isolate's own intrinsics", () => {
    const { outcome, host } = attack(`
      function ksr_request_route() {
        const proto = Object.getPrototypeOf(KSR.sl.sl_send_reply);
        const viaProto = KSR.sl.sl_send_reply.__proto__.constructor("return [typeof process, typeof require, typeof this.KSR]")();
        const viaExit = KSR.x.exit.constructor("return Object.getOwnPropertyNames(globalThis)")();
        const walked = [];
        for (let o = KSR.sl.sl_send_reply; o !== null; o = Object.getPrototypeOf(o)) walked.push(Object.getOwnPropertyNames(o).sort().join(","));
        KSR.info(JSON.stringify({
          sameFunctionPrototype: proto === Function.prototype,
          ksrProtoIsNull: KSR.__proto__ === undefined && Object.getPrototypeOf(KSR) === null,
          viaProto,
          suspicious: viaExit.filter((n) => /ivm|isolate|callback|bridge|install|process|require/i.test(n)),
          walked,
          source: Function.prototype.toString.call(KSR.sl.sl_send_reply).includes("[native code]") ? "native" : "js",
        }));
      }
    `);
    expect(outcome).toEqual({ status: "ok" });
    const seen = JSON.parse(host.logs[0]!.text);
    expect(seen.sameFunctionPrototype).toBe(true);
    expect(seen.ksrProtoIsNull).toBe(true);
    expect(seen.viaProto).toEqual(["undefined", "undefined", "object"]);
    expect(seen.suspicious).toEqual([]);
    // Own properties only: length/name on the facade function, then Function.prototype, Object.prototype.
    expect(seen.walked[0]).toBe("length,name");
    expect(seen.walked).toHaveLength(3);
    expectHealthy();
  });

  test("overwriting KSR.x.exit has no effect in sloppy code; exit still ends the route", () => {
    const { outcome, host, ctx } = attack(`
      function ksr_request_route() {
        KSR.x.exit = function () { KSR.info("fake exit"); };
        KSR.x = { exit() {} };
        KSR.x.exit();
        KSR.info("not reached");
      }
    `);
    expect(outcome).toEqual({ status: "ok" });
    expect(ctx.exited).toBe(true);
    expect(host.logs).toEqual([]);
    expectHealthy();
  });

  test("tampering with built-ins does not break or redirect the bridge", () => {
    const { outcome, host, ctx } = attack(`
      Function.prototype.call = function () { throw new Error("call hijacked"); };
      Function.prototype.apply = function () { throw new Error("apply hijacked"); };
      Reflect.apply = function () { throw new Error("Reflect.apply hijacked"); };
      Array.prototype[Symbol.iterator] = function () { throw new Error("iterator hijacked"); };
      Object.defineProperty(Array.prototype, "0", { set(v) { throw new Error("index setter hijacked"); }, configurable: true });
      Object.defineProperty(Object.prototype, "value", { get() { throw new Error("value getter hijacked"); }, configurable: true });
      String.prototype.slice = function () { throw new Error("slice hijacked"); };
      JSON.stringify = function () { throw new Error("stringify hijacked"); };
      JSON.parse = function () { throw new Error("parse hijacked"); };
      Object.freeze = function (o) { return o; };
      Object.getOwnPropertyDescriptor = function () { return { value: function () { KSR.info("hijacked route"); } }; };
      Number = function () { return 99; };
      Error = function () {};
      function ksr_request_route() {
        KSR.sl.sl_send_reply("486", "Busy");
        KSR.info(String(KSR.tk.sum("2", 3)) + "," + String(KSR.x.modf("tk_sum", "4", "5")));
        throw "after tampering " + "x".repeat(2000);
      }
    `);
    expect(outcome).toMatchObject({ status: "error", kind: "exception" });
    expect((outcome as { message: string }).message).toMatch(/^uncaught string "after tampering x+\.\.\."$/);
    expect(host.replies).toEqual([{ status: 486, reason: "Busy" }]);
    expect(host.logs).toEqual([{ level: "info", text: "5,9" }]);
    expect(ctx.exited).toBe(false);
    expectHealthy();
    expect(runner!.hasRoute("no_such_route")).toBe(false);
    expect(runner!.runRoute("no_such_route", makeContext())).toEqual({ status: "missing" });
  });

  test("the host callback cannot be reached to forge calls for another execution", () => {
    // Every name the script can see on the global object and on KSR members.
    const { outcome, host } = attack(`
      function ksr_request_route() {
        const names = [];
        for (const n of Reflect.ownKeys(globalThis)) names.push(String(n));
        for (const m of Reflect.ownKeys(KSR)) { names.push("KSR." + String(m)); const v = KSR[m]; if (typeof v === "object") for (const f of Reflect.ownKeys(v)) names.push("KSR." + String(m) + "." + String(f)); }
        KSR.info(JSON.stringify(names.filter((n) => /ivm|callback|host|bridge|install|ctx/i.test(n))));
      }
    `);
    expect(outcome).toEqual({ status: "ok" });
    expect(JSON.parse(host.logs[0]!.text)).toEqual([]);
    expectHealthy();
  });
});

describe("huge strings", () => {
  test("a string argument over the cap is refused before it reaches the host", () => {
    const { outcome, host } = attack(`
      function ksr_request_route() {
        const big = "y".repeat(2 * 1024 * 1024);
        KSR.info(String(KSR.tk.echo(big)) + "," + String(KSR.sl.sl_send_reply(200, big)) + "," + String(KSR.x.modf("sl_send_reply", "200", big)) + "," + String(KSR.x.modf(big)));
      }
    `);
    expect(outcome).toEqual({ status: "ok" });
    expect(host.logs.filter((l) => l.level === "info").map((l) => l.text)).toEqual(["null,-1,-1,-1"]);
    expect(host.logs.filter((l) => l.level === "err")).toHaveLength(4);
    expect(host.replies).toEqual([]);
    expect(calls).toEqual([]);
    expectHealthy();
  });

  test("a string at the cap (the largest SIP message) passes, one character more does not", () => {
    const { outcome, host } = attack(
      `function ksr_request_route() { KSR.info(String(KSR.tk.echo("z".repeat(${DEFAULT_MAX_STRING_LENGTH})).length) + "," + String(KSR.tk.echo("z".repeat(${DEFAULT_MAX_STRING_LENGTH + 1})))); }`,
    );
    expect(outcome).toEqual({ status: "ok" });
    expect(host.logs.filter((l) => l.level === "info")).toEqual([{ level: "info", text: `${DEFAULT_MAX_STRING_LENGTH},null` }]);
  });

  test("a huge route return value is ignored, not copied to the host", () => {
    const { outcome } = attack(`var big = "r".repeat(8 * 1024 * 1024);\nfunction ksr_request_route() { return big; }`);
    expect(outcome).toEqual({ status: "ok" });
    expectHealthy();
  });
});
