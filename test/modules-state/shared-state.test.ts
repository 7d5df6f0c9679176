/**
 * htables and $shv in the file the workers of a pool share
 * (host/modules/state/shared-sqlite.ts): two connections to one file stand
 * for two worker processes; what one writes, the other reads, through the
 * stores and through KSR.htable / KSR.pv.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { newTenantState, setSharedVarsBackend } from "../../host/core/context.js";
import { htableModule, HT_NO_INT_VALUE } from "../../host/modules/htable.js";
import { pvModule } from "../../host/modules/pv.js";
import { configureHtables, resetHtableConfiguration, setHtableBackend, TenantHtables } from "../../host/modules/state/htable-store.js";
import { SharedStateFile } from "../../host/modules/state/shared-sqlite.js";
import { caller } from "../modules/call.js";
import { makeContext, makeRecordingHost, request } from "../helpers/context.js";

const ht = caller(htableModule);
const pv = caller(pvModule);
const T0 = 1_700_000_000_000;

let dir: string;
/** Two workers' connections to one shared file; the first sweeps. */
let first: SharedStateFile;
let second: SharedStateFile;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "ksr-shared-state-"));
  const file = path.join(dir, "shared.sqlite");
  first = new SharedStateFile(file, { sweeps: true });
  second = new SharedStateFile(file, { sweeps: false });
  resetHtableConfiguration();
});

afterEach(() => {
  first.close();
  second.close();
  rmSync(dir, { recursive: true, force: true });
  // Back to this process's memory for the other suites.
  setHtableBackend((tenantId) => new TenantHtables(tenantId));
  setSharedVarsBackend(() => new Map());
  resetHtableConfiguration();
});

describe("the shared htable store", () => {
  it("what one worker sets, the other reads with its type; deletes and resets are seen too", () => {
    const a = first.htables("t1");
    const b = second.htables("t1");
    expect(a.set("t", "s", "hello", 0, T0)).toBeUndefined();
    a.set("t", "i", 42, 0, T0);
    expect(b.get("t", "s", T0)).toEqual({ value: "hello", expiresAt: 0 });
    expect(b.get("t", "i", T0)?.value).toBe(42);
    expect(b.tableNames()).toEqual(["t"]);
    expect(b.entries("t", T0).map(([k, item]) => [k, item.value])).toEqual([
      ["i", 42],
      ["s", "hello"],
    ]);
    expect(b.delete("t", "s")).toBe(true);
    expect(a.get("t", "s", T0)).toBeUndefined();
    b.reset("t");
    expect(a.size).toBe(0);
    // Another tenant's tables are apart.
    a.set("t", "x", 1, 0, T0);
    expect(second.htables("t2").get("t", "x", T0)).toBeUndefined();
  });

  it("sht_inc from both workers adds up; a missing item starts from initVal, a string cannot be incremented", () => {
    configureHtables([{ name: "counters", initVal: 10 }]);
    const a = first.htables("t1");
    const b = second.htables("t1");
    expect(a.add("counters", "n", 1, T0)).toBe(11);
    expect(b.add("counters", "n", 1, T0)).toBe(12);
    expect(a.add("counters", "n", -5, T0)).toBe(7);
    expect(b.get("counters", "n", T0)?.value).toBe(7);
    expect(a.add("plain", "n", 1, T0)).toBeUndefined();
    b.set("plain", "s", "x", 0, T0);
    expect(a.add("plain", "s", 1, T0)).toBeUndefined();
    // 32-bit wrap, as Kamailio's int.
    a.set("plain", "big", 2147483647, 0, T0);
    expect(b.add("plain", "big", 1, T0)).toBe(-2147483648);
  });

  it("expires items as the in-memory store does: autoexpire restarted by updates, per-item expiry, sht_setex", () => {
    configureHtables([{ name: "auto", autoExpireSec: 10 }, { name: "sticky", autoExpireSec: 10, updateExpire: false }]);
    const a = first.htables("t1");
    const b = second.htables("t1");
    a.set("auto", "k", "v", 0, T0);
    expect(b.get("auto", "k", T0 + 9_999)?.value).toBe("v");
    b.set("auto", "k", "v2", 0, T0 + 5_000);
    expect(a.get("auto", "k", T0 + 14_999)?.value).toBe("v2");
    expect(a.get("auto", "k", T0 + 15_000)).toBeUndefined();
    a.set("sticky", "k", "v", 0, T0);
    b.set("sticky", "k", "v2", 0, T0 + 5_000);
    expect(a.get("sticky", "k", T0 + 10_000)).toBeUndefined();
    // An expired item written again is new: the table's expiry from now.
    b.set("sticky", "k", "v3", 0, T0 + 20_000);
    expect(a.get("sticky", "k", T0 + 29_999)?.value).toBe("v3");
    a.set("none", "k", 1, 3, T0);
    expect(b.get("none", "k", T0 + 2_999)?.expiresAt).toBe(T0 + 3_000);
    expect(b.setExpire("none", "k", 0, T0 + 1)).toBe(true);
    expect(a.get("none", "k", T0 + 60_000)?.value).toBe(1);
  });

  it("only the sweeping worker deletes expired items, in bounded steps", () => {
    const a = first.htables("t1");
    const b = second.htables("t1");
    for (let i = 0; i < 5; i++) a.set("t", `k${i}`, i, 1, T0);
    a.set("t", "keep", 1, 0, T0);
    expect(b.sweepStep(T0 + 2_000, 10)).toEqual({ seen: 0, finished: true });
    expect(b.size).toBe(6);
    expect(a.sweepStep(T0 + 2_000, 3)).toEqual({ seen: 3, finished: false });
    expect(a.sweepStep(T0 + 2_000, 3)).toEqual({ seen: 2, finished: true });
    expect(b.size).toBe(1);
  });
});

describe("KSR.htable and $shv with the shared store, from one worker to the other", () => {
  const host = makeRecordingHost({ now: T0 });
  const ctxOf = (worker: SharedStateFile) => {
    // What a worker does at its start: its backends, then its tenant's state.
    setHtableBackend((tenantId) => worker.htables(tenantId));
    setSharedVarsBackend((tenantId) => worker.sharedVars(tenantId));
    return makeContext(request(), { host, tenant: newTenantState("t1") }).ctx;
  };

  it("sht_seti / sht_inc / $sht on one worker, sht_get / $sht on the other", () => {
    const a = ctxOf(first);
    expect(ht("sht_seti", a, "calls", "n", 41)).toBe(1);
    expect(pv("sets", a, "$sht(calls=>who)", "first")).toBe(true);
    const b = ctxOf(second);
    expect(ht("sht_inc", b, "calls", "n")).toBe(42);
    expect(ht("sht_get", b, "calls", "who")).toBe("first");
    expect(pv("get", b, "$sht(calls=>n)")).toBe(42);
    expect(ht("sht_inc", b, "calls", "who")).toBe(HT_NO_INT_VALUE);
  });

  it("$shv set on one worker is read, changed and reset on the other", () => {
    const a = ctxOf(first);
    expect(pv("sets", a, "$shv(greeting)", "hello")).toBe(true);
    expect(pv("seti", a, "$shv(count)", 7)).toBe(true);
    const b = ctxOf(second);
    expect(pv("get", b, "$shv(greeting)")).toBe("hello");
    expect(pv("get", b, "$shv(count)")).toBe(7);
    expect([...b.tenant.sharedVars.keys()]).toEqual(["count", "greeting"]);
    pv("unset", b, "$shv(greeting)");
    const again = ctxOf(first);
    // Kamailio script variables reset to integer 0.
    expect(pv("get", again, "$shv(greeting)")).toBe(0);
    expect(again.tenant.sharedVars.size).toBe(1);
  });
});
