/**
 * A route nested inside a KSR call runs synchronously even when its runner
 * runs asynchronously (demoted): the outer execution waits in the host call,
 * and isolated-vm runs the nested call in the same isolate re-entrantly.
 * This is what lets tm run a demoted tenant's branch route inside t_relay.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { MessageContext } from "../../host/core/context.js";
import type { KemiModule } from "../../host/modules/types.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import type { RouteOutcome } from "../../sandbox/types.js";
import { LIMITS, fakeHost, makeContext } from "./fixtures.js";

let runner: ScriptRunner | undefined;
afterEach(() => runner?.dispose());

function nestingModules(inner: () => RouteOutcome): KemiModule[] {
  return [
    {
      name: "nest",
      kamailioModule: "test",
      functions: {
        run_inner: {
          params: [],
          returns: "int",
          doc: "runs the script's inner route on a new context: 1 when it ended ok",
          run: () => (inner().status === "ok" ? 1 : -1),
        },
        reply: {
          params: ["int"],
          returns: "int",
          doc: "replies with the code on the calling context",
          run: (ctx: MessageContext, code: number) => (ctx.host.sendReply(ctx, code, "Nested") ? 1 : -1),
        },
      },
    },
  ];
}

describe("nested routes of an asynchronous runner", () => {
  it("hasRoute answers inside a KSR call of an execution (the onsend route of a demoted tenant is found)", async () => {
    const host = fakeHost();
    const outer = makeContext(host, "INVITE");
    const seen: boolean[] = [];
    const modules = nestingModules(() => {
      seen.push(runner!.hasRoute("inner_route"), runner!.hasRoute("no_such_route"));
      return { status: "ok" };
    });
    runner = ScriptRunner.fromSource(
      `function ksr_request_route() { KSR.nest.run_inner(); }
       function inner_route() {}`,
      "/scripts/nested-async-has-route.js",
      { limits: LIMITS, tenant: "t1", modules, mode: "async" },
    );
    expect(await runner.runRouteAny("ksr_request_route", outer)).toEqual({ status: "ok" });
    expect(seen).toEqual([true, false]);
  });

  it("run synchronously inside the outer execution's KSR call, on their own context", async () => {
    const host = fakeHost();
    const outer = makeContext(host, "INVITE");
    const innerCtx = makeContext(host, "OPTIONS");
    const modules = nestingModules(() => runner!.runRoute("inner_route", innerCtx));
    runner = ScriptRunner.fromSource(
      `function ksr_request_route() { const r = KSR.nest.run_inner(); KSR.nest.reply(r === 1 ? 200 : 500); }
       function inner_route() { KSR.nest.reply(180); }`,
      "/scripts/nested-async.js",
      { limits: LIMITS, tenant: "t1", modules, mode: "async" },
    );
    expect(runner.mode).toBe("async");
    const pending = runner.runRouteAny("ksr_request_route", outer);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toEqual({ status: "ok" });
    expect(innerCtx.replied).toEqual({ status: 180, reason: "Nested" });
    expect(outer.replied).toEqual({ status: 200, reason: "Nested" });
  });

  /** An outer route that runs `innerRoute` nested (KSR.nest.run_inner), then replies 200: its outcome, the inner one's, the outer context. */
  async function nested(mode: "sync" | "async", innerRoute: string, routeTimeoutMs: number) {
    const host = fakeHost();
    const outer = makeContext(host, "INVITE");
    const innerCtx = makeContext(host, "OPTIONS");
    let innerOutcome: RouteOutcome | undefined;
    const modules = nestingModules(() => (innerOutcome = runner!.runRoute("inner_route", innerCtx)));
    runner = ScriptRunner.fromSource(
      `function ksr_request_route() { KSR.nest.run_inner(); KSR.nest.reply(200); }\n${innerRoute}`,
      "/scripts/nested-async.js",
      { limits: { heapMb: 32, routeTimeoutMs }, tenant: "t1", modules, mode },
    );
    const outcome = await runner.runRouteAny("ksr_request_route", outer);
    return { outcome, innerOutcome, outer };
  }

  it.each(["sync", "async"] as const)("%s: a nested route that loops is stopped by its timeout; its time was the outer route's KSR call's, so the outer route times out too", async (mode) => {
    const { outcome, innerOutcome, outer } = await nested(mode, "function inner_route() { for (;;) {} }", 50);
    // Host time is route time: the KSR call that ran the nested route
    // returned past the outer route's 50 ms, which ends there.
    expect(outcome).toMatchObject({ status: "error", kind: "timeout", message: expect.stringContaining("KSR calls included") });
    expect(innerOutcome).toMatchObject({ status: "error", kind: "timeout" });
    expect(outer.replied).toBeUndefined();
  });

  it.each(["sync", "async"] as const)("%s: a nested route that ends in time leaves the outer route running with its own context", async (mode) => {
    const { outcome, innerOutcome, outer } = await nested(mode, 'function inner_route() { throw new Error("inner failed"); }', 1000);
    expect(outcome).toEqual({ status: "ok" });
    expect(innerOutcome).toMatchObject({ status: "error", kind: "exception" });
    expect(outer.replied).toEqual({ status: 200, reason: "Nested" });
  });

  it("outside a KSR call, runRoute still refuses to block on an asynchronous runner", () => {
    const host = fakeHost();
    runner = ScriptRunner.fromSource(`function ksr_request_route() {}`, "/scripts/plain.js", { limits: LIMITS, tenant: "t1", mode: "async" });
    expect(runner.runRoute("ksr_request_route", makeContext(host, "OPTIONS"))).toMatchObject({ status: "error", kind: "exception" });
  });
});
