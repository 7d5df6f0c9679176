import { afterAll, beforeEach, describe, expect, test } from "vitest";
import { setLogSink, type LogRecord } from "../../host/core/log.js";
import { calls, fakeHost, makeContext, runnerFor } from "./fixtures.js";

/** Runs `body` as ksr_request_route; the script stores its findings with KSR.info(JSON). */
function run(body: string, opts: { method?: string; subject?: string; prelude?: string } = {}) {
  const runner = runnerFor(`${opts.prelude ?? ""}\nfunction ksr_request_route() {\n${body}\n}\n`);
  const host = fakeHost();
  const ctx = makeContext(host, opts.method, opts.subject);
  const outcome = runner.runRoute("ksr_request_route", ctx);
  runner.dispose();
  // Log text is binary on the host (UTF-8 bytes, one char each); decode it to compare.
  const infos = host.logs.filter((l) => l.level === "info").map((l) => Buffer.from(l.text, "latin1").toString("utf8"));
  const errors = host.logs.filter((l) => l.level === "err").map((l) => l.text);
  return { outcome, host, ctx, infos, errors };
}

/** The value the script reported last with report(value). */
function reported(body: string, opts: { method?: string; subject?: string } = {}): unknown {
  const r = run(body, { ...opts, prelude: "function report(v) { KSR.info(JSON.stringify(v === undefined ? '<undefined>' : v)); }" });
  expect(r.outcome).toEqual({ status: "ok" });
  expect(r.infos.length).toBeGreaterThan(0);
  return JSON.parse(r.infos[r.infos.length - 1]!);
}

beforeEach(() => {
  calls.length = 0;
});

describe("KSR object built from the export tables", () => {
  test("core functions sit on KSR, module functions on KSR.<module>, with declared return kinds", () => {
    expect(reported(`report([KSR.is_INVITE(), typeof KSR.sl.sl_send_reply, KSR.tk.sum(2, 3), KSR.tk.get_ruri(), KSR.tk.get_missing(), typeof KSR.info("")])`, { method: "INVITE" }))
      .toEqual([true, "function", 5, "sip:bob@127.0.0.1", null, "undefined"]);
    expect(reported(`report(KSR.is_INVITE())`, { method: "OPTIONS" })).toBe(false);
  });

  test("a bool function answers a boolean, an int function a number", () => {
    expect(reported(`report([KSR.tk.is_even(4), KSR.tk.is_even(3), KSR.sl.sl_send_reply(200, "OK")])`)).toEqual([true, false, 1]);
  });

  test("functions the tables do not export are undefined: calling one is a TypeError in the script", () => {
    const r = run(`KSR.tk.append_hf("X: y\\r\\n");`);
    expect(r.outcome).toMatchObject({ status: "error", kind: "exception", location: "/scripts/test.js:3" });
    expect((r.outcome as { message: string }).message).toMatch(/^TypeError: .*append_hf is not a function/);
  });
});

describe("argument conversion (app_jsdt rules)", () => {
  test("str parameters use JS ToString, int parameters a clamped integer conversion", () => {
    expect(reported(`report([
      KSR.tk.types(42, "200", null),
      KSR.tk.types(undefined, "abc", { toString() { return "obj"; } }),
      KSR.tk.types(true, 3.9, 1.5),
      KSR.tk.types("a", -3.9, "b"),
      KSR.tk.types("a", 1e12, "b"),
      KSR.tk.types("a", -1e12, "b"),
      KSR.tk.types("a", NaN, "b"),
      KSR.tk.types("a", 10n, "b"),
    ])`)).toEqual([
      "string:42|number:200|string:null",
      "string:undefined|number:0|string:obj",
      "string:true|number:3|string:1.5",
      "string:a|number:-3|string:b",
      "string:a|number:2147483647|string:b",
      "string:a|number:-2147483648|string:b",
      "string:a|number:0|string:b",
      "string:a|number:10|string:b",
    ]);
  });

  test("missing trailing arguments are read as undefined; extra ones are ignored", () => {
    expect(reported(`report([KSR.tk.types("a"), KSR.tk.sum(1), KSR.tk.sum(1, 2, 3)])`)).toEqual([
      "string:a|number:0|string:undefined",
      1,
      3,
    ]);
  });

  test("calling a function that declares parameters with none logs an error and answers false", () => {
    const r = run(`KSR.info(String(KSR.sl.sl_send_reply()) + "/" + String(KSR.tk.echo()));`);
    expect(r.infos).toEqual(["false/false"]);
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toContain("KSR.sl.sl_send_reply");
    expect(r.host.replies).toEqual([]);
    expect(calls).toEqual([]);
  });

  test("an argument whose ToString throws raises in the script, the host is not called", () => {
    const r = run(`KSR.tk.echo({ toString() { throw new Error("no string for you"); } });`);
    expect(r.outcome).toMatchObject({ status: "error", kind: "exception", message: "Error: no string for you" });
    expect(calls).toEqual([]);
  });

  test("a Symbol argument cannot become a string: TypeError in the script", () => {
    const r = run(`KSR.tk.echo(Symbol("s"));`);
    expect(r.outcome).toMatchObject({ status: "error", kind: "exception" });
    expect((r.outcome as { message: string }).message).toMatch(/^TypeError/);
    expect(calls).toEqual([]);
  });
});

describe("strings at the boundary", () => {
  test("binary (UTF-8 bytes) message text reaches the script decoded", () => {
    // "héllo wörld" as the UTF-8 bytes the wire carries, one char per byte.
    const wire = Buffer.from("héllo wörld", "utf8").toString("latin1");
    expect(reported(`const s = KSR.tk.get_subject(); report([s, s.length])`, { subject: wire })).toEqual(["héllo wörld", 11]);
  });

  test("script strings reach the host as UTF-8 bytes and come back decoded", () => {
    expect(reported(`report(KSR.tk.echo("ñ€ and 😀"))`)).toBe("ñ€ and 😀");
    expect(calls).toEqual([`echo(${Buffer.from("ñ€ and 😀", "utf8").toString("latin1")})`]);
  });

  test("ASCII passes unchanged both ways", () => {
    expect(reported(`report(KSR.tk.echo("plain ascii ~!"))`)).toBe("plain ascii ~!");
    expect(calls).toEqual(["echo(plain ascii ~!)"]);
  });
});

describe("failures inside host functions", () => {
  test("a throwing module function becomes an error log and the failure value", () => {
    const r = run(`KSR.info(String(KSR.tk.boom()));`);
    expect(r.outcome).toEqual({ status: "ok" });
    expect(r.infos).toEqual(["-1"]);
    expect(r.errors).toEqual([expect.stringContaining("KSR.tk.boom: failed: module failure")]);
  });

  test("a module answering a non-primitive is logged; the script gets the failure value", () => {
    const r = run(`KSR.info(String(KSR.tk.returns_object()));`);
    expect(r.infos).toEqual(["null"]);
    expect(r.errors).toEqual([expect.stringContaining("KSR.tk.returns_object")]);
  });

  test("unavailable functions exist, log their name and reason, and fail by return type", () => {
    const r = run(`KSR.info(String(KSR.tk.rtp_manage("x")) + "/" + String(KSR.tk.rtp_check()));`);
    expect(r.infos).toEqual(["-1/false"]);
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toContain("KSR.tk.rtp_manage");
    expect(r.errors[0]).toContain("no RTP proxy configured");
  });

  test("a module function that ends the execution stops the script like KSR.x.exit()", () => {
    const r = run(`try { KSR.tk.stop(); } catch (e) { KSR.info("caught " + e); } KSR.sl.sl_send_reply(200, "OK"); KSR.info("after");`);
    expect(r.outcome).toEqual({ status: "ok" });
    expect(r.ctx.exited).toBe(true);
    expect(r.host.replies).toEqual([]);
    expect(r.host.logs).toEqual([]);
  });
});

describe("the isolate's global object", () => {
  test("no console, process, require, timers, WebAssembly or bootstrap leftovers", () => {
    expect(
      reported(`report(["console", "process", "require", "module", "setTimeout", "setInterval", "queueMicrotask", "fetch",
        "WebAssembly", "SharedArrayBuffer", "Atomics", "__ksrInstall", "global", "Buffer"].filter((n) => n in globalThis))`),
    ).toEqual([]);
  });

  test("KSR and its members are frozen, null-prototype, and cannot be replaced", () => {
    expect(
      reported(`"use strict";
        const out = [Object.getPrototypeOf(KSR), Object.getPrototypeOf(KSR.sl), Object.getPrototypeOf(KSR.x),
          Object.isFrozen(KSR), Object.isFrozen(KSR.sl), Object.isFrozen(KSR.x), Object.isFrozen(KSR.sl.sl_send_reply),
          KSR.sl.sl_send_reply.prototype === undefined];
        for (const attempt of [() => { KSR.sl = {}; }, () => { KSR.x.exit = () => 0; }, () => { KSR.sl.sl_send_reply = null; },
          () => { globalThis.KSR = {}; }, () => { delete globalThis.KSR; }, () => { KSR.sl.sl_send_reply.extra = 1; }]) {
          try { attempt(); out.push("no error"); } catch (e) { out.push(e.constructor.name); }
        }
        report(out);`),
    ).toEqual([null, null, null, true, true, true, true, true, "TypeError", "TypeError", "TypeError", "TypeError", "TypeError", "TypeError"]);
  });

  test("hasRoute sees global functions only; a missing route is reported as missing", () => {
    const runner = runnerFor(`function ksr_request_route() {}\nvar ksr_reply_route = 5;\nObject.defineProperty(globalThis, "ksr_onsend_route", { get() { throw new Error("getter ran"); } });`);
    expect(runner.hasRoute("ksr_request_route")).toBe(true);
    expect(runner.hasRoute("ksr_reply_route")).toBe(false);
    // Reading an accessor would run script code; it does not count as a route.
    expect(runner.hasRoute("ksr_onsend_route")).toBe(false);
    expect(runner.runRoute("ksr_onsend_route", makeContext())).toEqual({ status: "missing" });
    expect(runner.runRoute("ksr_failure_route", makeContext())).toEqual({ status: "missing" });
    runner.dispose();
  });

  test("KSR calls from top-level code (no message) are logged and fail", () => {
    const records: LogRecord[] = [];
    setLogSink((r) => records.push(r));
    try {
      const runner = runnerFor(`var atLoad = KSR.sl.sl_send_reply(200, "OK");\nfunction ksr_request_route() { KSR.info(String(atLoad)); }`);
      const host = fakeHost();
      runner.runRoute("ksr_request_route", makeContext(host));
      runner.dispose();
      expect(host.logs).toEqual([{ level: "info", text: "-1" }]);
      expect(records).toEqual([expect.objectContaining({ level: "err", text: expect.stringContaining("outside a route") })]);
      expect(calls).toEqual([]);
    } finally {
      setLogSink(undefined);
    }
  });
});

afterAll(() => {
  setLogSink(undefined);
});
