// Per-context state of KSR modules lives in the context (host/core/context.ts, ContextSlot).
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { carryMessageState, ContextSlot, contextSlots } from "../../host/core/context.js";
import { makeContext, request } from "../helpers/context.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const invite = (): string => request({ method: "INVITE" });

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

describe("the per-message slot registry", () => {
  it("refuses a second slot of one name; an instance slot stays out of the registry", () => {
    new ContextSlot<number>("test.unique");
    expect(() => new ContextSlot<number>("test.unique")).toThrow("per-message slot test.unique is declared twice");
    new ContextSlot<number>("test.instance", { instance: true });
    new ContextSlot<number>("test.instance", { instance: true });
    expect(contextSlots().some((s) => s.name === "test.instance")).toBe(false);
  });

  it("carries a slot's value into the routes it names, as its own copy, and nothing into the others", () => {
    const carried = new ContextSlot<{ n: number }>("test.carried", { carry: { branch: (v) => ({ ...v }), failure: (v) => ({ ...v }) } });
    const perMessage = new ContextSlot<number>("test.perMessage");
    const request = makeContext(invite()).ctx;
    carried.set(request, { n: 1 });
    perMessage.set(request, 7);
    const branch = makeContext(invite(), { routeType: "branch" }).ctx;
    const reply = makeContext(invite(), { routeType: "onreply" }).ctx;
    carryMessageState(request, branch, "branch");
    carryMessageState(request, reply, "onreply");
    expect(carried.get(branch)).toEqual({ n: 1 });
    expect(carried.get(branch)).not.toBe(carried.get(request));
    expect(perMessage.get(branch)).toBeUndefined();
    expect(carried.get(reply)).toBeUndefined();
    // A source without the value clears the target's.
    carryMessageState(makeContext(invite()).ctx, branch, "branch");
    expect(carried.get(branch)).toBeUndefined();
  });

  it("the server's slots: what follows a request into its branches and failure routes", async () => {
    // Loading the proxy loads every module with per-message state.
    await import("../../host/proxy/proxy.js");
    await import("../../host/modules/index.js");
    const byName = new Map(contextSlots().map((s) => [s.name, s.carry]));
    expect(byName.get("rr.recordRoute")).toEqual(["branch", "failure"]);
    expect(byName.get("sendopts.options")).toEqual(["branch", "failure"]);
    expect(byName.get("tm.pathRoute")).toEqual(["branch", "failure"]);
    expect(byName.get("maxfwd.storedValue")).toEqual([]);
    expect(byName.get("registrar.pendingReply")).toEqual([]);
  });

  it("no per-message state is kept in a module-level WeakMap keyed by the context", () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (entry.name.endsWith(".ts") && /new WeakMap<MessageContext\b/.test(readFileSync(file, "utf8"))) offenders.push(file);
      }
    };
    for (const dir of ["host", "sandbox", "runtime"]) walk(path.join(ROOT, dir));
    expect(offenders).toEqual([]);
  });
});
