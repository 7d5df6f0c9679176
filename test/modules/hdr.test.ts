import { describe, expect, it } from "vitest";
import { hdrModule } from "../../host/modules/hdr.js";
import { makeContext, request } from "../helpers/context.js";
import { caller } from "./call.js";

const call = caller(hdrModule);

const MSG = request({
  method: "INVITE",
  extraHeaders: ["X-Tag: One", "Route: <sip:p1.example.org;lr>", "X-Tag:  two words ", "Subject: Hello World"],
});

/** Index of the header with that exact name and value prefix in the received message. */
function indexOf(ctx: ReturnType<typeof makeContext>["ctx"], name: string, n = 0): number {
  return ctx.msg.headers.map((h, i) => [h, i] as const).filter(([h]) => h.name === name)[n]![1];
}

describe("hdr reads", () => {
  it("get/gete/getw return the first header body or the null forms", () => {
    const { ctx } = makeContext(MSG);
    expect(call("get", ctx, "x-tag")).toBe("One");
    expect(call("get", ctx, "f")).toBe('"Alice" <sip:alice@example.com>;tag=from-tag-1');
    expect(call("get", ctx, "X-Missing")).toBeNull();
    expect(call("gete", ctx, "X-Missing")).toBe("");
    expect(call("getw", ctx, "X-Missing")).toBe("<null>");
    expect(call("get", ctx, "bad name")).toBeNull();
  });

  it("get_idx counts from the top, negative from the bottom", () => {
    const { ctx } = makeContext(MSG);
    expect(call("get_idx", ctx, "X-Tag", 1)).toBe("two words");
    expect(call("get_idx", ctx, "X-Tag", -1)).toBe("two words");
    expect(call("get_idx", ctx, "X-Tag", -2)).toBe("One");
    expect(call("get_idx", ctx, "X-Tag", 2)).toBeNull();
    expect(call("gete_idx", ctx, "X-Tag", -3)).toBe("");
    expect(call("getw_idx", ctx, "X-Tag", 5)).toBe("<null>");
  });

  it("is_present returns 1/-1 and knows compact forms", () => {
    const { ctx } = makeContext(MSG);
    expect(call("is_present", ctx, "Subject")).toBe(1);
    expect(call("is_present", ctx, "s")).toBe(1);
    expect(call("is_present", ctx, "X-Nope")).toBe(-1);
  });

  it("match_content with the four operators and index modes", () => {
    const { ctx } = makeContext(MSG);
    expect(call("match_content", ctx, "X-Tag", "eq", "one", "f")).toBe(true);
    expect(call("match_content", ctx, "X-Tag", "eq", "one", "l")).toBe(false);
    expect(call("match_content", ctx, "X-Tag", "eq", "TWO WORDS", "l")).toBe(true);
    expect(call("match_content", ctx, "X-Tag", "in", "word", "o")).toBe(true);
    expect(call("match_content", ctx, "X-Tag", "in", "o", "a")).toBe(true);
    expect(call("match_content", ctx, "X-Tag", "sw", "tw", "a")).toBe(false);
    expect(call("match_content", ctx, "X-Tag", "ne", "zzz", "a")).toBe(true);
    expect(call("match_content", ctx, "X-Missing", "ne", "zzz", "a")).toBe(false);
    expect(call("match_content", ctx, "X-Tag", "re", ".*", "a")).toBe(false);
    expect(call("match_content", ctx, "X-Tag", "eq", "one", "z")).toBe(false);
  });
});

describe("hdr edits are lumps", () => {
  it("append / insert / append_after / insert_before go to ctx.edits, reads are unchanged", () => {
    const { ctx } = makeContext(MSG);
    expect(call("append", ctx, "X-A: 1\r\n")).toBe(1);
    expect(call("append_hf", ctx, "X-B: 2")).toBe(1);
    expect(call("insert", ctx, "X-C: 3\r\n")).toBe(1);
    expect(call("append_after", ctx, "X-D: 4\r\n", "x-tag")).toBe(1);
    expect(call("insert_before", ctx, "X-E: 5\r\n", "Subject")).toBe(1);
    expect(call("append_after", ctx, "X-F: 6\r\n", "X-Absent")).toBe(1);
    expect(call("insert_before", ctx, "X-G: 7\r\n", "X-Absent")).toBe(1);
    expect(ctx.edits.appended).toEqual(["X-A: 1\r\n", "X-B: 2\r\n", "X-F: 6\r\n"]);
    expect(ctx.edits.prepended).toEqual(["X-C: 3\r\n", "X-G: 7\r\n"]);
    expect(ctx.edits.insertedAfter.get(indexOf(ctx, "X-Tag"))).toEqual(["X-D: 4\r\n"]);
    expect(ctx.edits.insertedBefore.get(indexOf(ctx, "Subject"))).toEqual(["X-E: 5\r\n"]);
    expect(call("is_present", ctx, "X-A")).toBe(-1);
    expect(call("get", ctx, "X-A")).toBeNull();
  });

  it("empty text adds nothing", () => {
    const { ctx } = makeContext(MSG);
    expect(call("append", ctx, "")).toBe(1);
    expect(ctx.edits.appended).toEqual([]);
  });

  it("remove deletes every matching header and returns 1 even when none exists", () => {
    const { ctx } = makeContext(MSG);
    expect(call("remove", ctx, "x-tag")).toBe(1);
    expect([...ctx.edits.replaced.entries()]).toEqual([
      [indexOf(ctx, "X-Tag", 0), ""],
      [indexOf(ctx, "X-Tag", 1), ""],
    ]);
    expect(call("remove", ctx, "X-Never")).toBe(1);
    expect(ctx.edits.replaced.size).toBe(2);
    expect(call("remove", ctx, "bad:name")).toBe(-1);
    // The received headers are still readable.
    expect(call("get", ctx, "X-Tag")).toBe("One");
  });

  it("rmappend / rminsert remove then add", () => {
    const { ctx } = makeContext(MSG);
    expect(call("rmappend", ctx, "Subject", "Subject: New\r\n")).toBe(1);
    expect(call("rminsert", ctx, "Route", "Route: <sip:p2.example.org;lr>\r\n")).toBe(1);
    expect(ctx.edits.replaced.get(indexOf(ctx, "Subject"))).toBe("");
    expect(ctx.edits.replaced.get(indexOf(ctx, "Route"))).toBe("");
    expect(ctx.edits.appended).toEqual(["Subject: New\r\n"]);
    expect(ctx.edits.prepended).toEqual(["Route: <sip:p2.example.org;lr>\r\n"]);
  });

  it("append_to_reply collects lines for the local reply", () => {
    const { ctx } = makeContext(MSG);
    expect(call("append_to_reply", ctx, "Retry-After: 30")).toBe(1);
    expect(ctx.replyHeaders).toEqual(["Retry-After: 30\r\n"]);
  });
});
