/**
 * Host time is route time (issue: a route with a 50 ms limit ran 92 ms of
 * host calls and completed): the time a script spends inside KSR calls
 * counts against its route's limit — the route ends with the timeout error
 * as soon as a call returns past it — and against the tenant's CPU use
 * (ScriptRunner.cpuTimeNs), in both execution modes. A host module that
 * works for a fixed number of milliseconds stands in for expensive host
 * calls (no timing is asserted beyond what the limit itself decides).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { MessageContext } from "../../host/core/context.js";
import type { KemiModule } from "../../host/modules/types.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { fakeHost, makeContext } from "./fixtures.js";

let runner: ScriptRunner | undefined;
afterEach(() => runner?.dispose());

let hostCalls = 0;

/** KSR.slow.work(ms): busy on the host for ms milliseconds. */
const SLOW: KemiModule[] = [
  {
    name: "slow",
    kamailioModule: "test",
    functions: {
      work: {
        params: ["int"],
        returns: "int",
        doc: "busy on the host for the given milliseconds",
        run: (_ctx: MessageContext, ms: number) => {
          hostCalls++;
          const until = performance.now() + ms;
          while (performance.now() < until) {
            // host work the isolate's own clock does not see
          }
          return 1;
        },
      },
      reply: {
        params: ["int"],
        returns: "int",
        doc: "replies with the code",
        run: (ctx: MessageContext, code: number) => (ctx.host.sendReply(ctx, code, "Done") ? 1 : -1),
      },
    },
  },
];

describe.each(["sync", "async"] as const)("%s runner: time in KSR calls", (mode) => {
  it("counts against the route's limit: the route ends with the timeout error once a call returns past it", async () => {
    hostCalls = 0;
    const host = fakeHost();
    const ctx = makeContext(host, "OPTIONS");
    runner = ScriptRunner.fromSource(
      `function ksr_request_route() { for (var i = 0; i < 10; i++) KSR.slow.work(20); KSR.slow.reply(200); }`,
      "/scripts/slow-host.js",
      { limits: { heapMb: 32, routeTimeoutMs: 50 }, tenant: "t1", modules: SLOW, mode },
    );
    const outcome = await runner.runRouteAny("ksr_request_route", ctx);
    expect(outcome).toMatchObject({ status: "error", kind: "timeout", message: "route exceeded its 50 ms time limit (time in KSR calls included)" });
    // 20 ms each: the third call returns past 50 ms (the second already may,
    // on a loaded machine, since a call's time is its wall time); no further
    // call and no reply.
    expect(hostCalls).toBeGreaterThanOrEqual(2);
    expect(hostCalls).toBeLessThanOrEqual(3);
    expect(ctx.replied).toBeUndefined();
  });

  it("a route whose KSR calls fit in its limit completes", async () => {
    hostCalls = 0;
    const ctx = makeContext(fakeHost(), "OPTIONS");
    runner = ScriptRunner.fromSource(
      `function ksr_request_route() { KSR.slow.work(5); KSR.slow.reply(200); }`,
      "/scripts/quick-host.js",
      { limits: { heapMb: 32, routeTimeoutMs: 1000 }, tenant: "t1", modules: SLOW, mode },
    );
    expect(await runner.runRouteAny("ksr_request_route", ctx)).toEqual({ status: "ok" });
    expect(ctx.replied).toEqual({ status: 200, reason: "Done" });
  });

  it("counts in the tenant's CPU use", async () => {
    runner = ScriptRunner.fromSource(
      `function ksr_request_route() { KSR.slow.work(30); }`,
      "/scripts/cpu-host.js",
      { limits: { heapMb: 32, routeTimeoutMs: 1000 }, tenant: "t1", modules: SLOW, mode },
    );
    const before = runner.cpuTimeNs;
    expect(await runner.runRouteAny("ksr_request_route", makeContext(fakeHost(), "OPTIONS"))).toEqual({ status: "ok" });
    // The isolate itself ran for well under a millisecond; the 30 ms are the host's.
    expect(runner.cpuTimeNs - before).toBeGreaterThanOrEqual(30_000_000n);
  });
});
