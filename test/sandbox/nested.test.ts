/**
 * Routes nest: tm runs a branch route from inside the t_relay call of the
 * route that relays. The inner execution has its own context, and the outer
 * one carries on with its own afterwards.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { KemiModule } from "../../host/modules/types.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { LIMITS, fakeHost, makeContext } from "./fixtures.js";

let runner: ScriptRunner | undefined;
afterEach(() => runner?.dispose());

function nestingModules(inner: () => void): KemiModule[] {
  return [
    {
      name: "nest",
      kamailioModule: "test",
      functions: {
        run_inner: { params: [], returns: "int", doc: "runs the script's inner route on a new context", run: () => (inner(), 1) },
        reply: {
          params: ["int"],
          returns: "int",
          doc: "replies with the code on the calling context",
          run: (ctx, code: number) => (ctx.host.sendReply(ctx, code, "Nested") ? 1 : -1),
        },
      },
    },
  ];
}

describe("nested route executions", () => {
  it("run on their own context; the caller's later KSR calls still address the caller's context", () => {
    const host = fakeHost();
    const outer = makeContext(host, "INVITE");
    const innerCtx = makeContext(host, "OPTIONS");
    const modules = nestingModules(() => {
      expect(runner!.runRoute("inner_route", innerCtx)).toEqual({ status: "ok" });
    });
    runner = ScriptRunner.fromSource(
      `function ksr_request_route() { KSR.nest.run_inner(); KSR.nest.reply(200); }
       function inner_route() { KSR.nest.reply(180); KSR.x.exit(); }`,
      "/scripts/nested.js",
      { limits: LIMITS, tenant: "t1", modules },
    );
    expect(runner.runRoute("ksr_request_route", outer)).toEqual({ status: "ok" });
    expect(innerCtx.replied).toEqual({ status: 180, reason: "Nested" });
    expect(innerCtx.exited).toBe(true);
    // The inner exit ended the inner execution only.
    expect(outer.exited).toBe(false);
    expect(outer.replied).toEqual({ status: 200, reason: "Nested" });
  });
});
