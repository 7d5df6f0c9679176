import { beforeEach, describe, expect, test } from "vitest";
import { calls, fakeHost, makeContext, runnerFor } from "./fixtures.js";

function run(source: string) {
  const runner = runnerFor(source);
  const host = fakeHost();
  const ctx = makeContext(host);
  const outcome = runner.runRoute("ksr_request_route", ctx);
  runner.dispose();
  return {
    outcome,
    ctx,
    host,
    infos: host.logs.filter((l) => l.level === "info").map((l) => l.text),
    errors: host.logs.filter((l) => l.level === "err").map((l) => l.text),
  };
}

beforeEach(() => {
  calls.length = 0;
});

describe("KSR.x.exit()", () => {
  test("ends the route from a nested helper; the run counts as ok", () => {
    const r = run(`
      function helper() { KSR.info("in helper"); KSR.x.exit(); KSR.info("after exit in helper"); }
      function ksr_request_route() { helper(); KSR.info("after helper"); KSR.sl.sl_send_reply(200, "OK"); }
    `);
    expect(r.outcome).toEqual({ status: "ok" });
    expect(r.infos).toEqual(["in helper"]);
    expect(r.ctx.exited).toBe(true);
    expect(r.ctx.dropped).toBe(false);
    expect(r.host.replies).toEqual([]);
  });

  test("throws the app_jsdt string sentinel, which a script may catch", () => {
    const r = run(`
      function ksr_request_route() {
        try { KSR.x.exit(); } catch (e) { globalThis.caught = [typeof e, e]; }
        // KSR is refused now, so report through the route's own failure.
        throw new Error(JSON.stringify(globalThis.caught));
      }
    `);
    expect(r.outcome).toMatchObject({ status: "error", kind: "exception", message: 'Error: ["string","~~ksr~exit~~"]' });
  });

  test("is final even when caught: every later KSR call is refused and has no effect", () => {
    const runner = runnerFor(`
      var seen = [];
      function ksr_request_route() {
        try { KSR.x.exit(); } catch (e) { seen.push("caught exit"); }
        try { KSR.sl.sl_send_reply(200, "OK"); seen.push("reply returned"); } catch (e) { seen.push("reply refused"); }
        try { KSR.setflag(3); seen.push("setflag returned"); } catch (e) { seen.push("setflag refused"); }
        try { KSR.x.modf("sl_send_reply", "200", "OK"); seen.push("modf returned"); } catch (e) { seen.push("modf refused"); }
        try { KSR.sl.sl_send_reply(); seen.push("no-arg call returned"); } catch (e) { seen.push("no-arg call refused"); }
        try { KSR.x.drop(); } catch (e) { seen.push("drop ended"); }
      }
      function ksr_report() { KSR.info(JSON.stringify(seen)); }
    `);
    const host = fakeHost();
    const ctx = makeContext(host);
    expect(runner.runRoute("ksr_request_route", ctx)).toEqual({ status: "ok" });
    expect(host.replies).toEqual([]);
    expect(calls).toEqual([]);
    expect(ctx.flags).toBe(0);
    // drop after exit does not mark the message dropped: the execution had already ended.
    expect(ctx.dropped).toBe(false);
    expect(host.logs).toEqual([]);
    const reportHost = fakeHost();
    runner.runRoute("ksr_report", makeContext(reportHost));
    expect(JSON.parse(reportHost.logs[0]!.text)).toEqual([
      "caught exit",
      "reply refused",
      "setflag refused",
      "modf refused",
      "no-arg call refused",
      "drop ended",
    ]);
    runner.dispose();
  });

  test("refused calls report the sentinel each time", () => {
    const runner = runnerFor(`
      var seen = [];
      function ksr_request_route() {
        try { KSR.x.exit(); } catch (e) {}
        for (var i = 0; i < 3; i++) { try { KSR.tk.sum(1, 2); seen.push("returned"); } catch (e) { seen.push(e); } }
      }
      function ksr_report() { KSR.info(JSON.stringify(seen)); }
    `);
    const ctx = makeContext();
    expect(runner.runRoute("ksr_request_route", ctx)).toEqual({ status: "ok" });
    const host = fakeHost();
    expect(runner.runRoute("ksr_report", makeContext(host))).toEqual({ status: "ok" });
    expect(host.logs).toEqual([{ level: "info", text: JSON.stringify(["~~ksr~exit~~", "~~ksr~exit~~", "~~ksr~exit~~"]) }]);
    runner.dispose();
  });

  test("exit in one execution does not affect the next one", () => {
    const runner = runnerFor(`function ksr_request_route() { KSR.sl.sl_send_reply(200, "OK"); KSR.x.exit(); }`);
    const first = makeContext();
    const secondHost = fakeHost();
    const second = makeContext(secondHost);
    expect(runner.runRoute("ksr_request_route", first)).toEqual({ status: "ok" });
    expect(runner.runRoute("ksr_request_route", second)).toEqual({ status: "ok" });
    expect(secondHost.replies).toEqual([{ status: 200, reason: "OK" }]);
    expect(second.exited).toBe(true);
    runner.dispose();
  });
});

describe("KSR.x.drop()", () => {
  test("marks the execution dropped and exited, then ends it", () => {
    const r = run(`function ksr_request_route() { KSR.x.drop(); KSR.info("not reached"); }`);
    expect(r.outcome).toEqual({ status: "ok" });
    expect(r.ctx.dropped).toBe(true);
    expect(r.ctx.exited).toBe(true);
    expect(r.infos).toEqual([]);
  });

  test("caught drop is still final", () => {
    const r = run(`function ksr_request_route() { try { KSR.x.drop(); } catch (e) {} try { KSR.sl.sl_send_reply(200, "OK"); } catch (e) {} }`);
    expect(r.outcome).toEqual({ status: "ok" });
    expect(r.ctx.dropped).toBe(true);
    expect(r.host.replies).toEqual([]);
  });
});

describe("KSR.x.modf()", () => {
  test("runs a module function by its native name, converting string arguments to the declared types", () => {
    const r = run(`function ksr_request_route() { KSR.info(String(KSR.x.modf("sl_send_reply", "200", "OK"))); }`);
    expect(r.infos).toEqual(["1"]);
    // The int parameter arrived as the number 200.
    expect(r.host.replies).toEqual([{ status: 200, reason: "OK" }]);
    expect(calls).toEqual(["sl_send_reply(200,OK)"]);
  });

  test("non-string arguments are converted with ToString first", () => {
    const r = run(`function ksr_request_route() { KSR.info(String(KSR.x.modf("sl_send_reply", 404, null))); }`);
    expect(r.infos).toEqual(["1"]);
    expect(r.host.replies).toEqual([{ status: 404, reason: "null" }]);
  });

  test("uses the declared native name, not the KEMI name, when they differ", () => {
    const r = run(`function ksr_request_route() { KSR.info(KSR.x.modf("tk_sum", "-2", "+7") + "," + KSR.x.modf("sum", "1", "2")); }`);
    expect(r.infos).toEqual(["5,-1"]);
    expect(r.errors).toEqual(["KSR.x.modf: function 'sum' is not available"]);
  });

  test("an unknown name logs an error and answers -1", () => {
    const r = run(`function ksr_request_route() { KSR.info(String(KSR.x.modf("no_such_function", "1"))); }`);
    expect(r.infos).toEqual(["-1"]);
    expect(r.errors).toEqual(["KSR.x.modf: function 'no_such_function' is not available"]);
  });

  test("core actions are not reachable, as in Kamailio", () => {
    const r = run(`function ksr_request_route() { KSR.info(String(KSR.x.modf("setflag", "7"))); }`);
    expect(r.infos).toEqual(["-1"]);
    expect(r.errors).toEqual(["KSR.x.modf: function 'setflag' is not available"]);
    expect(r.ctx.flags).toBe(0);
  });

  test("a wrong argument count logs an error and answers -1 without calling the function", () => {
    const r = run(`function ksr_request_route() { KSR.info(KSR.x.modf("sl_send_reply", "200") + "," + KSR.x.modf("sl_send_reply", "200", "OK", "extra")); }`);
    expect(r.infos).toEqual(["-1,-1"]);
    expect(r.errors).toHaveLength(2);
    // As app_jsdt: a name is found with its parameter count or not at all.
    expect(r.errors).toEqual(["KSR.x.modf: function 'sl_send_reply' is not available", "KSR.x.modf: function 'sl_send_reply' is not available"]);
    expect(calls).toEqual([]);
  });

  test("an int parameter that is not an integer is an error", () => {
    const r = run(`function ksr_request_route() { KSR.info(KSR.x.modf("sl_send_reply", "2x0", "OK") + "," + KSR.x.modf("sl_send_reply", "", "OK") + "," + KSR.x.modf("sl_send_reply", "9999999999", "OK")); }`);
    expect(r.infos).toEqual(["-1,-1,-1"]);
    expect(r.errors).toHaveLength(3);
    expect(r.errors[0]).toContain("parameter 1 is not an integer: '2x0'");
    expect(calls).toEqual([]);
  });

  test("bool results become 1 / -1", () => {
    const r = run(`function ksr_request_route() { KSR.info(KSR.x.modf("is_even", "4") + "," + KSR.x.modf("is_even", "3")); }`);
    expect(r.infos).toEqual(["1,-1"]);
  });

  test("unavailable module functions answer -1 and log why", () => {
    const r = run(`function ksr_request_route() { KSR.info(String(KSR.x.modf("rtp_manage", "co"))); }`);
    expect(r.infos).toEqual(["-1"]);
    expect(r.errors).toEqual([expect.stringContaining("no RTP proxy configured")]);
  });

  test("a native function Kamailio's modf refuses (fixup without free) answers -1 without running, naming the KSR function to use", () => {
    const r = run(`function ksr_request_route() { KSR.info(String(KSR.x.modf("tk_refused", "x"))); }`);
    expect(r.infos).toEqual(["-1"]);
    expect(r.errors).toEqual(["KSR.x.modf: function 'tk_refused' has fixup - cannot be used (use KSR.tk.echo)"]);
    expect(calls).toEqual([]);
  });

  test("KSR functions without a native export (KEMI-only names) are not reachable: -1", () => {
    const r = run(`function ksr_request_route() { KSR.info(KSR.x.modf("get_subject") + "," + KSR.x.modf("echo", "a")); }`);
    expect(r.infos).toEqual(["-1,-1"]);
    expect(calls).toEqual([]);
  });

  test("no function name, or a throwing module function, gives -1, never a crash", () => {
    const r = run(`function ksr_request_route() { KSR.info(KSR.x.modf() + "," + KSR.x.modf("boom")); }`);
    expect(r.outcome).toEqual({ status: "ok" });
    expect(r.infos).toEqual(["-1,-1"]);
    expect(r.errors).toHaveLength(2);
  });
});
