// Edit sets make their maps when first written (host/sip/message.ts);
// copies between the routes of a transaction (host/proxy/messages.ts) stay
// deep and independent.
import { describe, expect, it } from "vitest";
import { emptyEdits, hasEdits, insertedAfterOf, insertedBeforeOf, replacedOf, type MessageEdits } from "../../host/sip/message.js";
import { copyEdits, loadEdits } from "../../host/proxy/messages.js";

describe("edit sets", () => {
  it("reading an untouched edit set sees no entries, writing through its maps is seen by every reader", () => {
    const e = emptyEdits();
    expect(hasEdits(e)).toBe(false);
    expect(replacedOf(e).size + insertedBeforeOf(e).size + insertedAfterOf(e).size).toBe(0);
    e.insertedAfter.set(2, ["X-A: 1\r\n"]);
    expect(hasEdits(e)).toBe(true);
    expect(insertedAfterOf(e).get(2)).toEqual(["X-A: 1\r\n"]);
    expect(replacedOf(e).size).toBe(0);
    e.replaced.set(1, "");
    expect(replacedOf(e)).toBe(e.replaced);
  });

  it("a plain object edit set is read as it is", () => {
    const plain: MessageEdits = { replaced: new Map([[0, ""]]), insertedBefore: new Map(), insertedAfter: new Map(), prepended: [], appended: [] };
    expect(replacedOf(plain)).toBe(plain.replaced);
    expect(hasEdits(plain)).toBe(true);
  });

  it("copyEdits is deep: changing the copy leaves the original, and back", () => {
    const e = emptyEdits();
    e.replaced.set(3, "Max-Forwards: 69\r\n");
    e.insertedBefore.set(0, ["Via: a\r\n"]);
    e.prepended.push("X-P: 1\r\n");
    e.body = "b";
    const c = copyEdits(e);
    expect([...replacedOf(c)]).toEqual([[3, "Max-Forwards: 69\r\n"]]);
    expect(insertedAfterOf(c).size).toBe(0);
    c.insertedBefore.get(0)!.push("Via: b\r\n");
    c.replaced.delete(3);
    c.prepended.length = 0;
    expect(e.insertedBefore.get(0)).toEqual(["Via: a\r\n"]);
    expect(e.replaced.get(3)).toBe("Max-Forwards: 69\r\n");
    expect(e.prepended).toEqual(["X-P: 1\r\n"]);
    expect(c.body).toBe("b");
  });

  it("loadEdits replaces a context's edits with a copy of the saved ones", () => {
    const target = emptyEdits();
    target.replaced.set(1, "");
    target.insertedAfter.set(4, ["X-Old: 1\r\n"]);
    target.appended.push("X-Old-Tail: 1\r\n");
    target.body = "old";
    const saved = emptyEdits();
    saved.insertedBefore.set(0, ["Via: saved\r\n"]);
    loadEdits(target, saved);
    expect(replacedOf(target).size).toBe(0);
    expect(insertedAfterOf(target).size).toBe(0);
    expect(target.appended).toEqual([]);
    expect(target.body).toBeUndefined();
    expect(target.insertedBefore.get(0)).toEqual(["Via: saved\r\n"]);
    target.insertedBefore.get(0)!.push("Via: later\r\n");
    expect(saved.insertedBefore.get(0)).toEqual(["Via: saved\r\n"]);
    loadEdits(target, target);
    expect(target.insertedBefore.get(0)).toEqual(["Via: saved\r\n", "Via: later\r\n"]);
  });
});
