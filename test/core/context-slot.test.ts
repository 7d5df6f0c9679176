// Per-context state of KSR modules lives in the context (host/core/context.ts, ContextSlot).
import { describe, expect, it } from "vitest";
import { ContextSlot } from "../../host/core/context.js";
import { makeContext, request } from "../helpers/context.js";

describe("ContextSlot", () => {
  it("keeps one value per context and slot, with WeakMap's get/set/delete", () => {
    const a = makeContext(request()).ctx;
    const b = makeContext(request()).ctx;
    const count = new ContextSlot<number>("test.count");
    const label = new ContextSlot<string>("test.label");
    expect(count.get(a)).toBeUndefined();
    expect(count.delete(a)).toBe(false);
    count.set(a, 1).set(b, 2);
    label.set(a, "x");
    expect([count.get(a), count.get(b), label.get(a), label.get(b)]).toEqual([1, 2, "x", undefined]);
    expect(count.delete(a)).toBe(true);
    expect(count.get(a)).toBeUndefined();
    expect(label.get(a)).toBe("x");
    count.set(a, 0);
    expect(count.get(a)).toBe(0);
  });
});
