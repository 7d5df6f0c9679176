import { describe, expect, it } from "vitest";
import { slModule } from "../../host/modules/sl.js";
import { maxfwdModule } from "../../host/modules/maxfwd.js";
import { makeContext, request, response } from "../helpers/context.js";
import { caller } from "./call.js";

const sl = caller(slModule);
const mf = caller(maxfwdModule);

describe("sl", () => {
  it("sl_send_reply sends through the host and returns 1", () => {
    const { ctx, host } = makeContext(request());
    ctx.replyHeaders.push("X-Why: test\r\n");
    expect(sl("sl_send_reply", ctx, 404, "Not Here")).toBe(1);
    expect(host.replies).toEqual([{ status: 404, reason: "Not Here", headers: ["X-Why: test\r\n"] }]);
    expect(ctx.replied).toEqual({ status: 404, reason: "Not Here" });
  });

  it("refuses codes outside 100..699, ACK, replies and failed sends", () => {
    const { ctx, host } = makeContext(request());
    expect(sl("sl_send_reply", ctx, 99, "x")).toBe(-1);
    expect(sl("send_reply", ctx, 700, "x")).toBe(-1);
    expect(sl("sl_send_reply", makeContext(request({ method: "ACK" })).ctx, 200, "OK")).toBe(-1);
    expect(sl("sl_send_reply", makeContext(response(200, "OK")).ctx, 200, "OK")).toBe(-1);
    host.sendReplyResult = false;
    expect(sl("sl_send_reply", ctx, 200, "OK")).toBe(-1);
    expect(host.replies).toEqual([]);
    expect(ctx.replied).toBeUndefined();
  });

  it("send_reply replies statelessly", () => {
    const { ctx, host } = makeContext(request());
    expect(sl("send_reply", ctx, 200, "OK")).toBe(1);
    expect(host.replies.map((r) => r.status)).toEqual([200]);
  });

  it("sl_reply_error uses ctx.lastError, else 500 with Kamailio's text for an unspecified error", () => {
    const a = makeContext(request());
    expect(sl("sl_reply_error", a.ctx)).toBe(1);
    expect(a.host.replies[0]).toMatchObject({ status: 500, reason: "I'm terribly sorry, server error occurred (1/SL)" });
    const b = makeContext(request());
    b.ctx.lastError = { status: 477, reason: "Unfortunately error on sending to next hop occurred" };
    expect(sl("sl_reply_error", b.ctx)).toBe(1);
    expect(b.host.replies[0]).toMatchObject({ status: 477 });
  });

  it("declares its native functions as Kamailio 5.6 exports them: the reply functions refused by modf (fixup without free)", () => {
    const natives = (slModule.native ?? []).map((n) => `${n.name}/${n.params.length}${n.refused ? " refused" : ""}`);
    expect(natives).toEqual(["sl_send_reply/2 refused", "sl_reply/2 refused", "send_reply/2 refused", "sl_reply_error/0"]);
  });
});

function withMaxForwards(value: string | undefined): string {
  const base = request().replace("Max-Forwards: 70\r\n", "");
  return value === undefined ? base : base.replace("Call-ID:", `Max-Forwards: ${value}\r\nCall-ID:`);
}

describe("maxfwd", () => {
  it("adds Max-Forwards with the limit when absent: 2", () => {
    const { ctx } = makeContext(withMaxForwards(undefined));
    expect(mf("process_maxfwd", ctx, 10)).toBe(2);
    expect(ctx.edits.prepended).toEqual(["Max-Forwards: 10\r\n"]);
  });

  it("decrements an existing value: 1, replacing the header in the edits", () => {
    const { ctx } = makeContext(withMaxForwards("5"));
    const idx = ctx.msg.headers.findIndex((h) => h.key === "max-forwards");
    expect(mf("process_maxfwd", ctx, 10)).toBe(1);
    expect(ctx.edits.replaced.get(idx)).toBe("Max-Forwards: 4\r\n");
    expect(mf("process_maxfwd", ctx, 10)).toBe(1);
    expect(ctx.edits.replaced.get(idx)).toBe("Max-Forwards: 3\r\n");
  });

  it("caps values above the module max_limit (70)", () => {
    const { ctx } = makeContext(withMaxForwards("200"));
    expect(mf("process_maxfwd", ctx, 10)).toBe(1);
    expect([...ctx.edits.replaced.values()]).toEqual(["Max-Forwards: 70\r\n"]);
  });

  it("returns -1 when the value is 0 and changes nothing", () => {
    const { ctx, host } = makeContext(withMaxForwards("0"));
    expect(mf("process_maxfwd", ctx, 10)).toBe(-1);
    expect(ctx.edits.replaced.size).toBe(0);
    expect(host.replies).toEqual([]);
  });

  it("rejects a limit outside 0..255", () => {
    const { ctx } = makeContext(withMaxForwards("5"));
    expect(mf("process_maxfwd", ctx, 256)).toBe(-1);
    expect(mf("is_maxfwd_lt", ctx, -1)).toBe(-1);
  });

  it("is_maxfwd_lt: 1 below, -1 at/above, -2 without header; sees the decremented value", () => {
    const { ctx } = makeContext(withMaxForwards("5"));
    expect(mf("is_maxfwd_lt", ctx, 6)).toBe(1);
    expect(mf("is_maxfwd_lt", ctx, 5)).toBe(-1);
    mf("process_maxfwd", ctx, 10);
    expect(mf("is_maxfwd_lt", ctx, 5)).toBe(1);
    expect(mf("is_maxfwd_lt", makeContext(withMaxForwards(undefined)).ctx, 5)).toBe(-2);
  });
});
