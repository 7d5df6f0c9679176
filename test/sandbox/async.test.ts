/**
 * The runner's asynchronous mode: routes run with isolated-vm's async
 * `apply` on its thread pool, several executions may be in flight for one
 * runner, and the outcomes are the same as in sync mode.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { setLogSink } from "../../host/core/log.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import type { RouteOutcome, ScriptLimits } from "../../sandbox/types.js";
import { calls, fakeHost, HEALTHY_ROUTE, LIMITS, makeContext, TEST_MODULES } from "./fixtures.js";

const MEMORY_TEST_LIMITS: ScriptLimits = { heapMb: 32, routeTimeoutMs: 3000 };

const runners: ScriptRunner[] = [];

function asyncRunner(source: string, limits: ScriptLimits = LIMITS, extra: { autoDemote?: boolean; onDemote?: (r: string) => void; mode?: "sync" | "async" } = {}): ScriptRunner {
  const runner = ScriptRunner.fromSource(`${source}\n${HEALTHY_ROUTE}`, "/scripts/async.js", {
    limits,
    tenant: "t1",
    modules: TEST_MODULES,
    mode: extra.mode ?? "async",
    ...(extra.autoDemote !== undefined ? { autoDemote: extra.autoDemote } : {}),
    ...(extra.onDemote !== undefined ? { onDemote: extra.onDemote } : {}),
  });
  runners.push(runner);
  return runner;
}

async function expectHealthyAsync(runner: ScriptRunner): Promise<void> {
  const host = fakeHost();
  expect(await runner.runRouteAsync("ksr_healthy", makeContext(host))).toEqual({ status: "ok" });
  expect(host.replies).toEqual([{ status: 200, reason: "still alive" }]);
}

/** Counts event-loop turns while `work` is pending: proof that the main thread was free. */
async function loopTurnsDuring<T>(work: Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  let done = false;
  const tick = (): void => {
    if (done) return;
    turns++;
    setTimeout(tick, 1);
  };
  setTimeout(tick, 1);
  const result = await work;
  done = true;
  return { result, turns };
}

beforeEach(() => {
  calls.length = 0;
  setLogSink(() => {});
});

afterEach(() => {
  for (const r of runners.splice(0)) r.dispose();
  setLogSink(undefined);
});

describe("async mode: same route semantics as sync", () => {
  test("a route runs, calls KSR functions and replies", async () => {
    const runner = asyncRunner(`function ksr_request_route() { KSR.sl.sl_send_reply(KSR.tk.sum(200, 2), "async " + KSR.tk.get_subject()); }`);
    expect(runner.mode).toBe("async");
    const host = fakeHost();
    const ctx = makeContext(host, "OPTIONS", "subj");
    const pending = runner.runRouteAsync("ksr_request_route", ctx);
    expect(runner.inFlight).toBe(1);
    expect(await pending).toEqual({ status: "ok" });
    expect(runner.inFlight).toBe(0);
    expect(host.replies).toEqual([{ status: 202, reason: "async subj" }]);
  });

  test("KSR.x.exit ends the route; later calls are refused", async () => {
    const runner = asyncRunner(`
      function ksr_request_route() {
        KSR.info("before");
        try { KSR.x.exit(); } catch (e) {}
        KSR.sl.sl_send_reply(200, "after exit");
      }`);
    const host = fakeHost();
    const ctx = makeContext(host);
    expect(await runner.runRouteAsync("ksr_request_route", ctx)).toEqual({ status: "ok" });
    expect(ctx.exited).toBe(true);
    expect(ctx.dropped).toBe(false);
    expect(host.replies).toEqual([]);
    expect(host.logs.filter((l) => l.level === "info").map((l) => l.text)).toEqual(["before"]);
  });

  test("KSR.x.drop sets the drop flag", async () => {
    const runner = asyncRunner(`function ksr_request_route() { KSR.x.drop(); KSR.sl.sl_send_reply(200, "never"); }`);
    const host = fakeHost();
    const ctx = makeContext(host);
    expect(await runner.runRouteAsync("ksr_request_route", ctx)).toEqual({ status: "ok" });
    expect(ctx.exited && ctx.dropped).toBe(true);
    expect(host.replies).toEqual([]);
  });

  test("KSR.x.modf calls a module function by its native name", async () => {
    const runner = asyncRunner(`function ksr_request_route() { KSR.sl.sl_send_reply(200, "sum " + KSR.x.modf("tk_sum", "40", "2")); }`);
    const host = fakeHost();
    expect(await runner.runRouteAsync("ksr_request_route", makeContext(host))).toEqual({ status: "ok" });
    expect(host.replies).toEqual([{ status: 200, reason: "sum 42" }]);
  });

  test("a missing route is reported as missing", async () => {
    const runner = asyncRunner(`function ksr_request_route() {}`);
    expect(await runner.runRouteAsync("ksr_reply_route", makeContext())).toEqual({ status: "missing" });
  });

  test("an uncaught exception carries its message and the script's line", async () => {
    const runner = asyncRunner(`function ksr_request_route() {\n  null.x;\n}`);
    expect(await runner.runRouteAsync("ksr_request_route", makeContext())).toMatchObject({
      status: "error",
      kind: "exception",
      message: expect.stringContaining("TypeError"),
      location: "/scripts/async.js:2",
    });
  });
});

describe("async mode: several executions in flight", () => {
  test("each execution's KSR calls address its own context", async () => {
    const runner = asyncRunner(`function ksr_request_route() { for (let i = 0; i < 5; i++) KSR.tk.echo("x"); KSR.sl.sl_send_reply(200, KSR.tk.get_subject()); }`);
    const hosts = Array.from({ length: 20 }, () => fakeHost());
    const ctxs = hosts.map((h, i) => makeContext(h, "OPTIONS", `message-${i}`));
    const pending = ctxs.map((c) => runner.runRouteAsync("ksr_request_route", c));
    expect(runner.inFlight).toBe(20);
    const outcomes = await Promise.all(pending);
    expect(outcomes.every((o) => o.status === "ok")).toBe(true);
    hosts.forEach((h, i) => expect(h.replies).toEqual([{ status: 200, reason: `message-${i}` }]));
    expect(runner.inFlight).toBe(0);
  });

  test("failure descriptions of queued executions are not mixed up", async () => {
    const runner = asyncRunner(`function ksr_request_route() { throw new Error("failed for " + KSR.tk.get_subject()); }`);
    const ctxs = Array.from({ length: 10 }, (_, i) => makeContext(fakeHost(), "OPTIONS", `m${i}`));
    const outcomes = await Promise.all(ctxs.map((c) => runner.runRouteAsync("ksr_request_route", c)));
    outcomes.forEach((o, i) => expect(o).toMatchObject({ status: "error", kind: "exception", message: `Error: failed for m${i}` }));
  });

  test("exit in one execution does not affect another in flight", async () => {
    const runner = asyncRunner(`
      function ksr_request_route() {
        if (KSR.tk.get_subject() === "exit") KSR.x.exit();
        KSR.sl.sl_send_reply(200, "went on");
      }`);
    const exitHost = fakeHost();
    const goOnHost = fakeHost();
    const [a, b] = await Promise.all([
      runner.runRouteAsync("ksr_request_route", makeContext(exitHost, "OPTIONS", "exit")),
      runner.runRouteAsync("ksr_request_route", makeContext(goOnHost, "OPTIONS", "go on")),
    ]);
    expect([a, b]).toEqual([{ status: "ok" }, { status: "ok" }]);
    expect(exitHost.replies).toEqual([]);
    expect(goOnHost.replies).toEqual([{ status: 200, reason: "went on" }]);
  });
});

describe("async mode: limits", () => {
  test("an endless loop times out without blocking the main thread; the isolate keeps serving", async () => {
    const runner = asyncRunner(`function ksr_request_route() { for (;;) {} }`, { heapMb: 32, routeTimeoutMs: 150 });
    const cpuBefore = runner.cpuTimeNs;
    const started = performance.now();
    const { result, turns } = await loopTurnsDuring(runner.runRouteAsync("ksr_request_route", makeContext()));
    expect(result).toMatchObject({ status: "error", kind: "timeout", message: "route exceeded its 150 ms time limit" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    // A blocked main thread would not have turned its event loop at all meanwhile.
    expect(turns).toBeGreaterThan(10);
    expect(runner.cpuTimeNs - cpuBefore).toBeGreaterThan(100_000_000n);
    expect(runner.restarts).toBe(0);
    await expectHealthyAsync(runner);
  });

  test("out of memory discards the isolate; executions queued behind it run on the re-created one", async () => {
    const runner = asyncRunner(
      `function ksr_request_route() { const hoard = []; for (;;) hoard.push(new Array(100000).fill(1)); }`,
      MEMORY_TEST_LIMITS,
    );
    const cpuBefore = runner.cpuTimeNs;
    const bombHost = fakeHost();
    const queuedHosts = [fakeHost(), fakeHost(), fakeHost()];
    const bomb = runner.runRouteAsync("ksr_request_route", makeContext(bombHost));
    const queued = queuedHosts.map((h) => runner.runRouteAsync("ksr_healthy", makeContext(h)));
    const { result, turns } = await loopTurnsDuring(bomb);
    expect(result).toMatchObject({ status: "error", kind: "oom", message: "script exceeded its memory limit of 32 MB; isolate discarded" });
    expect(turns).toBeGreaterThan(0);
    const queuedOutcomes = await Promise.all(queued);
    expect(queuedOutcomes).toEqual([{ status: "ok" }, { status: "ok" }, { status: "ok" }]);
    queuedHosts.forEach((h) => expect(h.replies).toEqual([{ status: 200, reason: "still alive" }]));
    expect(runner.restarts).toBe(1);
    // The discarded isolate's CPU still counts (estimated by the fatal execution's duration).
    expect(runner.cpuTimeNs).toBeGreaterThan(cpuBefore);
    await expectHealthyAsync(runner);
  });
});

describe("modes and demotion", () => {
  test("runRouteAny answers synchronously in sync mode and with a promise in async mode", async () => {
    const runner = asyncRunner(`function ksr_request_route() { KSR.sl.sl_send_reply(200, "OK"); }`, LIMITS, { mode: "sync" });
    const syncResult = runner.runRouteAny("ksr_request_route", makeContext());
    expect(syncResult).toEqual({ status: "ok" });
    runner.demote();
    expect(runner.mode).toBe("async");
    const asyncResult = runner.runRouteAny("ksr_request_route", makeContext());
    expect(asyncResult).toBeInstanceOf(Promise);
    expect(await asyncResult).toEqual({ status: "ok" });
  });

  test("a demoted runner refuses sync runRoute instead of blocking behind async work", async () => {
    const runner = asyncRunner(`function ksr_request_route() { for (;;) {} }`, { heapMb: 32, routeTimeoutMs: 200 });
    const looping = runner.runRouteAsync("ksr_request_route", makeContext());
    const started = performance.now();
    const refused = runner.runRoute("ksr_healthy", makeContext());
    expect(performance.now() - started).toBeLessThan(50);
    expect(refused).toMatchObject({ status: "error", kind: "exception", message: expect.stringContaining("asynchronously") });
    expect(await looping).toMatchObject({ kind: "timeout" });
  });

  test("with autoDemote a sync timeout moves the runner to async mode, once", () => {
    const reasons: string[] = [];
    const runner = asyncRunner(`function ksr_request_route() { for (;;) {} }`, LIMITS, {
      mode: "sync",
      autoDemote: true,
      onDemote: (r) => reasons.push(r),
    });
    expect(runner.mode).toBe("sync");
    expect(runner.runRoute("ksr_request_route", makeContext())).toMatchObject({ kind: "timeout" });
    expect(runner.mode).toBe("async");
    runner.demote("again");
    expect(reasons).toEqual(["route timed out"]);
  });

  test("with autoDemote a sync out-of-memory moves the runner to async mode", async () => {
    const runner = asyncRunner(
      `function ksr_request_route() { const hoard = []; for (;;) hoard.push(new Array(100000).fill(1)); }`,
      MEMORY_TEST_LIMITS,
      { mode: "sync", autoDemote: true },
    );
    expect(runner.runRoute("ksr_request_route", makeContext())).toMatchObject({ kind: "oom" });
    expect(runner.mode).toBe("async");
    // The re-creation happens asynchronously at the next call.
    await expectHealthyAsync(runner);
    expect(runner.restarts).toBe(1);
  });

  test("without autoDemote a timeout leaves the runner in sync mode", () => {
    const runner = asyncRunner(`function ksr_request_route() { for (;;) {} }`, LIMITS, { mode: "sync" });
    expect(runner.runRoute("ksr_request_route", makeContext())).toMatchObject({ kind: "timeout" });
    expect(runner.mode).toBe("sync");
  });

  test("an exception does not demote", () => {
    const runner = asyncRunner(`function ksr_request_route() { throw new Error("x"); }`, LIMITS, { mode: "sync", autoDemote: true });
    const outcome: RouteOutcome = runner.runRoute("ksr_request_route", makeContext());
    expect(outcome).toMatchObject({ kind: "exception" });
    expect(runner.mode).toBe("sync");
  });

  test("hasRoute answers from what it knew while async executions are in flight", async () => {
    const runner = asyncRunner(`function ksr_request_route() { for (;;) {} }\nfunction ksr_reply_route() {}`, { heapMb: 32, routeTimeoutMs: 200 });
    expect(runner.hasRoute("ksr_reply_route")).toBe(true);
    const looping = runner.runRouteAsync("ksr_request_route", makeContext());
    const started = performance.now();
    expect(runner.hasRoute("ksr_reply_route")).toBe(true);
    expect(runner.hasRoute("ksr_never_asked")).toBe(false);
    expect(performance.now() - started).toBeLessThan(50);
    await looping;
  });

  test("a name never asked is the caller's whenUnknown while busy; a route run answers it for later", async () => {
    const runner = asyncRunner(`function ksr_request_route() { for (;;) {} }\nfunction ksr_other() {}`, { heapMb: 32, routeTimeoutMs: 200 });
    const looping = runner.runRouteAsync("ksr_request_route", makeContext());
    expect(runner.hasRoute("ksr_reply_route", true)).toBe(true);
    expect(runner.hasRoute("ksr_other", true)).toBe(true);
    const [missing, ran] = await Promise.all([runner.runRouteAsync("ksr_reply_route", makeContext()), runner.runRouteAsync("ksr_other", makeContext()), looping]);
    expect(missing).toEqual({ status: "missing" });
    expect(ran).toEqual({ status: "ok" });
    // Known now, busy or not.
    const again = runner.runRouteAsync("ksr_request_route", makeContext());
    expect(runner.hasRoute("ksr_reply_route", true)).toBe(false);
    expect(runner.hasRoute("ksr_other")).toBe(true);
    await again;
  });

  test("a disposed runner answers every async call with an error", async () => {
    const runner = asyncRunner(`function ksr_request_route() { for (;;) {} }`, { heapMb: 32, routeTimeoutMs: 2000 });
    const looping = runner.runRouteAsync("ksr_request_route", makeContext());
    runner.dispose();
    expect(await looping).toMatchObject({ status: "error", message: "script runner disposed" });
    expect(await runner.runRouteAsync("ksr_request_route", makeContext())).toMatchObject({ message: "script runner disposed" });
  });
});
