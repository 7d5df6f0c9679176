import { beforeEach, describe, expect, it } from "vitest";
import { newTenantState } from "../../host/core/context.js";
import { htableModule, HT_NO_INT_VALUE } from "../../host/modules/htable.js";
import { pvModule } from "../../host/modules/pv.js";
import {
  configureHtableLimits,
  configureHtables,
  resetHtableConfiguration,
  sweepExpiredHtableItems,
  tenantHtables,
} from "../../host/modules/state/htable-store.js";
import { clearAllTenantState, dropTenantState } from "../../host/modules/state/tenant-scope.js";
import { caller } from "../modules/call.js";
import { makeContext, makeRecordingHost, request, type RecordingHost } from "../helpers/context.js";

const ht = caller(htableModule);
const pv = caller(pvModule);

let host: RecordingHost;
function ctxFor(tenant = "t1", opts: { srcIp?: string } = {}) {
  return makeContext(request(), { host, tenant: newTenantState(tenant), rcv: opts.srcIp ? { srcIp: opts.srcIp } : {} }).ctx;
}
const errors = () => host.logs.filter((l) => l.level === "err").map((l) => l.text);

beforeEach(() => {
  clearAllTenantState();
  resetHtableConfiguration();
  host = makeRecordingHost();
});

describe("get / set", () => {
  it("stores strings and integers and reads them back with their type", () => {
    const ctx = ctxFor();
    expect(ht("sht_sets", ctx, "t", "s", "hello")).toBe(1);
    expect(ht("sht_seti", ctx, "t", "i", 42)).toBe(1);
    expect(ht("sht_get", ctx, "t", "s")).toBe("hello");
    expect(ht("sht_get", ctx, "t", "i")).toBe(42);
    expect(ht("sht_gete", ctx, "t", "i")).toBe(42);
    expect(ht("sht_getw", ctx, "t", "s")).toBe("hello");
  });

  it("answers null / empty / <null> for a missing item", () => {
    const ctx = ctxFor();
    expect(ht("sht_get", ctx, "t", "nope")).toBeNull();
    expect(ht("sht_gete", ctx, "t", "nope")).toBe("");
    expect(ht("sht_getw", ctx, "t", "nope")).toBe("<null>");
    expect(ht("sht_get", ctx, "never-written", "k")).toBeNull();
  });

  it("replaces the value and its type on a new set", () => {
    const ctx = ctxFor();
    ht("sht_seti", ctx, "t", "k", 1);
    ht("sht_sets", ctx, "t", "k", "one");
    expect(ht("sht_get", ctx, "t", "k")).toBe("one");
    ht("sht_seti", ctx, "t", "k", 2);
    expect(ht("sht_get", ctx, "t", "k")).toBe(2);
    expect(tenantHtables("t1").size).toBe(1);
  });

  it("refuses the empty table name with an error log", () => {
    const ctx = ctxFor();
    expect(ht("sht_sets", ctx, "", "k", "v")).toBe(-1);
    expect(ht("sht_get", ctx, "", "k")).toBeNull();
    expect(ht("sht_rm", ctx, "", "k")).toBe(-1);
    expect(ht("sht_is_null", ctx, "", "k")).toBe(2);
    expect(ht("sht_inc", ctx, "", "k")).toBe(HT_NO_INT_VALUE);
    expect(errors().some((e) => e.includes("no such htable"))).toBe(true);
  });
});

describe("sht_is_null, sht_rm, sht_reset", () => {
  it("is_null: 1 missing, -1 present; rm gives 1 even when absent", () => {
    const ctx = ctxFor();
    expect(ht("sht_is_null", ctx, "t", "k")).toBe(1);
    ht("sht_sets", ctx, "t", "k", "v");
    expect(ht("sht_is_null", ctx, "t", "k")).toBe(-1);
    expect(ht("sht_rm", ctx, "t", "k")).toBe(1);
    expect(ht("sht_is_null", ctx, "t", "k")).toBe(1);
    expect(ht("sht_rm", ctx, "t", "k")).toBe(1);
  });

  it("reset removes every item of one table only and answers 0 as Kamailio's KEMI export", () => {
    const ctx = ctxFor();
    ht("sht_seti", ctx, "a", "1", 1);
    ht("sht_seti", ctx, "a", "2", 2);
    ht("sht_seti", ctx, "b", "1", 3);
    expect(ht("sht_reset", ctx, "a")).toBe(0);
    expect(ht("sht_get", ctx, "a", "1")).toBeNull();
    expect(ht("sht_get", ctx, "b", "1")).toBe(3);
    expect(tenantHtables("t1").size).toBe(1);
  });
});

describe("sht_inc / sht_dec", () => {
  it("returns the new value of an integer item", () => {
    const ctx = ctxFor();
    ht("sht_seti", ctx, "t", "n", 5);
    expect(ht("sht_inc", ctx, "t", "n")).toBe(6);
    expect(ht("sht_inc", ctx, "t", "n")).toBe(7);
    expect(ht("sht_dec", ctx, "t", "n")).toBe(6);
    expect(ht("sht_get", ctx, "t", "n")).toBe(6);
  });

  it("returns -255 for a missing or string item and does not create it", () => {
    const ctx = ctxFor();
    expect(ht("sht_inc", ctx, "t", "missing")).toBe(-255);
    expect(ht("sht_is_null", ctx, "t", "missing")).toBe(1);
    ht("sht_sets", ctx, "t", "s", "text");
    expect(ht("sht_dec", ctx, "t", "s")).toBe(-255);
    expect(ht("sht_get", ctx, "t", "s")).toBe("text");
  });

  it("wraps at 32 bits like Kamailio's int", () => {
    const ctx = ctxFor();
    ht("sht_seti", ctx, "t", "n", 2147483647);
    expect(ht("sht_inc", ctx, "t", "n")).toBe(-2147483648);
  });

  it("starts from initVal in a table that has one; is_null then answers -2", () => {
    configureHtables([{ name: "counters", initVal: 0 }]);
    const ctx = ctxFor();
    expect(ht("sht_get", ctx, "counters", "x")).toBe(0);
    expect(ht("sht_is_null", ctx, "counters", "x")).toBe(-2);
    expect(ht("sht_inc", ctx, "counters", "x")).toBe(1);
    expect(ht("sht_inc", ctx, "counters", "x")).toBe(2);
  });
});

describe("expiry", () => {
  it("never expires items of a table without autoexpire", () => {
    const ctx = ctxFor();
    ht("sht_sets", ctx, "t", "k", "v");
    host.clock.ms += 10 * 365 * 24 * 3600 * 1000;
    expect(ht("sht_get", ctx, "t", "k")).toBe("v");
  });

  it("expires items autoexpire seconds after their last update", () => {
    configureHtables([{ name: "ban", autoExpireSec: 60 }]);
    const ctx = ctxFor();
    ht("sht_seti", ctx, "ban", "1.2.3.4", 1);
    host.clock.ms += 59_000;
    expect(ht("sht_get", ctx, "ban", "1.2.3.4")).toBe(1);
    // An update restarts the 60 s.
    ht("sht_seti", ctx, "ban", "1.2.3.4", 2);
    host.clock.ms += 59_000;
    expect(ht("sht_get", ctx, "ban", "1.2.3.4")).toBe(2);
    host.clock.ms += 1_000;
    expect(ht("sht_get", ctx, "ban", "1.2.3.4")).toBeNull();
    expect(ht("sht_is_null", ctx, "ban", "1.2.3.4")).toBe(1);
    expect(tenantHtables("t1").size).toBe(0);
  });

  it("keeps the first expiry on update when updateExpire is false", () => {
    configureHtables([{ name: "fixed", autoExpireSec: 10, updateExpire: false }]);
    const ctx = ctxFor();
    ht("sht_seti", ctx, "fixed", "k", 1);
    host.clock.ms += 8_000;
    ht("sht_seti", ctx, "fixed", "k", 2);
    expect(ht("sht_inc", ctx, "fixed", "k")).toBe(3);
    host.clock.ms += 2_000;
    expect(ht("sht_get", ctx, "fixed", "k")).toBeNull();
  });

  it("gives items their own expiry with sht_setxs / sht_setxi / sht_setex", () => {
    const ctx = ctxFor();
    expect(ht("sht_setxs", ctx, "t", "s", "v", 5)).toBe(1);
    expect(ht("sht_setxi", ctx, "t", "i", 7, 20)).toBe(1);
    ht("sht_sets", ctx, "t", "later", "x");
    expect(ht("sht_setex", ctx, "t", "later", 3)).toBe(1);
    expect(ht("sht_setex", ctx, "t", "missing", 3)).toBe(1);
    host.clock.ms += 3_000;
    expect(ht("sht_get", ctx, "t", "later")).toBeNull();
    expect(ht("sht_get", ctx, "t", "s")).toBe("v");
    host.clock.ms += 2_000;
    expect(ht("sht_get", ctx, "t", "s")).toBeNull();
    expect(ht("sht_get", ctx, "t", "i")).toBe(7);
    host.clock.ms += 15_000;
    expect(ht("sht_get", ctx, "t", "i")).toBeNull();
  });

  it("sht_setex(0) makes an item permanent again", () => {
    configureHtables([{ name: "e", autoExpireSec: 5 }]);
    const ctx = ctxFor();
    ht("sht_sets", ctx, "e", "k", "v");
    ht("sht_setex", ctx, "e", "k", 0);
    host.clock.ms += 3600_000;
    expect(ht("sht_get", ctx, "e", "k")).toBe("v");
  });

  it("the periodic sweep frees expired items nobody reads, within its budget per call", () => {
    configureHtables([{ name: "e", autoExpireSec: 1 }]);
    const ctx = ctxFor();
    for (let i = 0; i < 50; i++) ht("sht_seti", ctx, "e", `k${i}`, i);
    ht("sht_seti", ctx, "keep", "k", 1);
    host.clock.ms += 1_000;
    expect(tenantHtables("t1").size).toBe(51);
    expect(sweepExpiredHtableItems(host.clock.ms, 20)).toBe(20);
    expect(tenantHtables("t1").size).toBe(31);
    for (let i = 0; i < 5; i++) sweepExpiredHtableItems(host.clock.ms, 20);
    expect(tenantHtables("t1").size).toBe(1);
    expect(ht("sht_get", ctx, "keep", "k")).toBe(1);
  });
});

describe("tenant isolation", () => {
  it("keeps same table and key names of two tenants apart", () => {
    const a = ctxFor("tenant-a");
    const b = ctxFor("tenant-b");
    ht("sht_sets", a, "users", "alice", "A's value");
    expect(ht("sht_get", b, "users", "alice")).toBeNull();
    ht("sht_sets", b, "users", "alice", "B's value");
    expect(ht("sht_get", a, "users", "alice")).toBe("A's value");
    expect(ht("sht_match_name", b, "users", "eq", "alice")).toBe(1);
    ht("sht_reset", b, "users");
    expect(ht("sht_get", a, "users", "alice")).toBe("A's value");
    ht("sht_rm_name_re", a, "users", ".*");
    expect(ht("sht_get", a, "users", "alice")).toBeNull();
    ht("sht_sets", b, "users", "bob", "b");
    dropTenantState("tenant-b");
    expect(ht("sht_get", b, "users", "bob")).toBeNull();
  });

  it("applies a tenant's table definition to that tenant only", () => {
    configureHtables([{ name: "t", autoExpireSec: 10 }], { tenantId: "short" });
    const s = ctxFor("short");
    const l = ctxFor("long");
    ht("sht_sets", s, "t", "k", "v");
    ht("sht_sets", l, "t", "k", "v");
    host.clock.ms += 10_000;
    expect(ht("sht_get", s, "t", "k")).toBeNull();
    expect(ht("sht_get", l, "t", "k")).toBe("v");
  });

  it("keeps a tenant's data across a new TenantState with the same id (script reload)", () => {
    ht("sht_sets", ctxFor("t1"), "t", "k", "kept");
    expect(ht("sht_get", ctxFor("t1"), "t", "k")).toBe("kept");
  });
});

describe("bounded memory", () => {
  it("refuses new items past the per-tenant cap with -1 and an error, other tenants unaffected", () => {
    configureHtableLimits({ maxItemsPerTenant: 3 });
    const ctx = ctxFor();
    for (let i = 0; i < 3; i++) expect(ht("sht_seti", ctx, "t", `k${i}`, i)).toBe(1);
    expect(ht("sht_seti", ctx, "t", "k3", 3)).toBe(-1);
    expect(ht("sht_seti", ctx, "other", "k", 3)).toBe(-1);
    expect(errors().some((e) => e.includes("cannot set sht: t key: k3") && e.includes("3 htable items"))).toBe(true);
    // Updating an existing item needs no room.
    expect(ht("sht_seti", ctx, "t", "k0", 10)).toBe(1);
    expect(ht("sht_seti", ctxFor("t2"), "t", "k3", 3)).toBe(1);
    // Removing makes room.
    ht("sht_rm", ctx, "t", "k1");
    expect(ht("sht_seti", ctx, "t", "k3", 3)).toBe(1);
  });

  it("reclaims expired items when full before refusing", () => {
    configureHtableLimits({ maxItemsPerTenant: 2 });
    configureHtables([{ name: "e", autoExpireSec: 1 }]);
    const ctx = ctxFor();
    ht("sht_seti", ctx, "e", "a", 1);
    ht("sht_seti", ctx, "e", "b", 1);
    host.clock.ms += 1_000;
    expect(ht("sht_seti", ctx, "e", "c", 1)).toBe(1);
  });

  it("bounds the bytes of keys and values", () => {
    configureHtableLimits({ maxBytesPerTenant: 100 });
    const ctx = ctxFor();
    expect(ht("sht_sets", ctx, "t", "k", "x".repeat(90))).toBe(1);
    expect(ht("sht_sets", ctx, "t", "k2", "x".repeat(20))).toBe(-1);
    expect(ht("sht_sets", ctx, "t", "k", "x".repeat(200))).toBe(-1);
    expect(ht("sht_get", ctx, "t", "k")).toBe("x".repeat(90));
    expect(tenantHtables("t1").bytes).toBe(91);
  });
});

describe("matching and bulk removal", () => {
  function fill(ctx: ReturnType<typeof ctxFor>) {
    ht("sht_sets", ctx, "t", "alice@example.com", "sip:alice@10.0.0.1");
    ht("sht_sets", ctx, "t", "bob@example.org", "sip:bob@192.0.2.7");
    ht("sht_seti", ctx, "t", "counter", 12);
  }

  it("sht_match_name with eq / ne / sw / re", () => {
    const ctx = ctxFor();
    fill(ctx);
    expect(ht("sht_match_name", ctx, "t", "eq", "counter")).toBe(1);
    expect(ht("sht_match_name", ctx, "t", "eq", "count")).toBe(-1);
    expect(ht("sht_match_name", ctx, "t", "sw", "bob@")).toBe(1);
    expect(ht("sht_match_name", ctx, "t", "re", "^ALICE@.*\\.com$")).toBe(1);
    expect(ht("sht_match_name", ctx, "t", "re", "^carol")).toBe(-1);
    expect(ht("sht_match_name", ctx, "t", "ne", "counter")).toBe(1);
    expect(ht("sht_match_name", ctx, "t", "xx", "counter")).toBe(-1);
    expect(ht("sht_match_name", ctx, "t", "eq", "")).toBe(-1);
    expect(ht("sht_match_name", ctx, "empty", "ne", "x")).toBe(-1);
  });

  it("sht_match_str_value skips integer items", () => {
    const ctx = ctxFor();
    fill(ctx);
    expect(ht("sht_match_str_value", ctx, "t", "eq", "sip:bob@192.0.2.7")).toBe(1);
    expect(ht("sht_match_str_value", ctx, "t", "eq", "12")).toBe(-1);
    expect(ht("sht_match_str_value", ctx, "t", "re", "10\\.0\\.0\\.")).toBe(1);
  });

  it("sht_rm_name_re / sht_rm_value_re remove what matches", () => {
    const ctx = ctxFor();
    fill(ctx);
    expect(ht("sht_rm_name_re", ctx, "t", "example\\.org$")).toBe(1);
    expect(ht("sht_get", ctx, "t", "bob@example.org")).toBeNull();
    expect(ht("sht_rm_value_re", ctx, "t", "^sip:")).toBe(1);
    expect(ht("sht_get", ctx, "t", "alice@example.com")).toBeNull();
    expect(ht("sht_get", ctx, "t", "counter")).toBe(12);
    expect(ht("sht_rm_name_re", ctx, "unknown", ".*")).toBe(1);
  });

  it("sht_rm_name / sht_rm_value with re / sw / ew / in", () => {
    const ctx = ctxFor();
    fill(ctx);
    expect(ht("sht_rm_name", ctx, "t", "ew", ".org")).toBe(1);
    expect(ht("sht_is_null", ctx, "t", "bob@example.org")).toBe(1);
    expect(ht("sht_rm_value", ctx, "t", "in", "10.0.0")).toBe(1);
    expect(ht("sht_is_null", ctx, "t", "alice@example.com")).toBe(1);
    expect(ht("sht_rm_name", ctx, "t", "sw", "count")).toBe(1);
    expect(tenantHtables("t1").size).toBe(0);
    fill(ctx);
    expect(ht("sht_rm_name", ctx, "t", "re", "^(alice|bob)@")).toBe(1);
    expect(tenantHtables("t1").size).toBe(1);
    expect(ht("sht_rm_name", ctx, "t", "eq", "counter")).toBe(-1);
    expect(ht("sht_rm_value", ctx, "t", "sw", "")).toBe(-1);
    expect(host.logs.some((l) => l.level === "warn" && l.text.includes("unsupported match operator: eq"))).toBe(true);
  });

  it("a bad regex gives -1 and a log line", () => {
    const ctx = ctxFor();
    fill(ctx);
    expect(ht("sht_match_name", ctx, "t", "re", "([a-z")).toBe(-1);
    expect(ht("sht_rm_name_re", ctx, "t", "([a-z")).toBe(-1);
    expect(tenantHtables("t1").size).toBe(3);
    expect(errors().some((e) => e.includes("bad regular expression"))).toBe(true);
  });

  it("a catastrophic regex returns -1 with a log line instead of stalling the host", () => {
    const ctx = ctxFor();
    ht("sht_sets", ctx, "t", "a".repeat(40) + "!", "v");
    const started = performance.now();
    expect(ht("sht_match_name", ctx, "t", "re", "^(a+)+$")).toBe(-1);
    expect(ht("sht_rm_name_re", ctx, "t", "^(a+)+$")).toBe(-1);
    expect(ht("sht_rm_value", ctx, "t", "re", "^(v|v)+x$")).toBe(1);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(ht("sht_is_null", ctx, "t", "a".repeat(40) + "!")).toBe(-1);
    expect(errors().filter((e) => e.includes("took longer than")).length).toBe(2);
  });
});

describe("locks", () => {
  it("lock and unlock answer 1 and nest", () => {
    const ctx = ctxFor();
    expect(ht("sht_lock", ctx, "t", "k")).toBe(1);
    expect(ht("sht_lock", ctx, "t", "k")).toBe(1);
    expect(tenantHtables("t1").locks.get("t\u0000k")?.depth).toBe(2);
    expect(ht("sht_unlock", ctx, "t", "k")).toBe(1);
    expect(tenantHtables("t1").locks.get("t\u0000k")?.depth).toBe(1);
    expect(ht("sht_unlock", ctx, "t", "k")).toBe(1);
    expect(tenantHtables("t1").locks.size).toBe(0);
    expect(host.logs.filter((l) => l.level === "warn")).toEqual([]);
  });

  it("an unlock without lock answers 1 with a warning", () => {
    const ctx = ctxFor();
    expect(ht("sht_unlock", ctx, "t", "k")).toBe(1);
    expect(host.logs.some((l) => l.level === "warn" && l.text.includes("not locked"))).toBe(true);
  });

  it("a lock left held by an earlier execution does not block a later one, and is reported", () => {
    const first = ctxFor();
    ht("sht_lock", first, "t", "k");
    const second = ctxFor();
    expect(ht("sht_lock", second, "t", "k")).toBe(1);
    expect(host.logs.some((l) => l.level === "warn" && l.text.includes("still held by an earlier execution"))).toBe(true);
  });

  it("locks of two tenants are separate; the empty table name fails", () => {
    ht("sht_lock", ctxFor("a"), "t", "k");
    expect(tenantHtables("b").locks.size).toBe(0);
    expect(ht("sht_lock", ctxFor("a"), "", "k")).toBe(-1);
  });
});

describe("iterators", () => {
  it("walks every item; $shtitkey/$shtitval show the current one", () => {
    const ctx = ctxFor();
    ht("sht_seti", ctx, "t", "a", 1);
    ht("sht_sets", ctx, "t", "b", "two");
    expect(ht("sht_iterator_start", ctx, "i1", "t")).toBe(1);
    const seen: [unknown, unknown][] = [];
    for (let n = 0; n < 10 && ht("sht_iterator_next", ctx, "i1") === 1; n++) {
      seen.push([pv("get", ctx, "$shtitkey(i1)"), pv("get", ctx, "$shtitval(i1)")]);
    }
    expect(seen).toEqual([
      ["a", 1],
      ["b", "two"],
    ]);
    expect(ht("sht_iterator_end", ctx, "i1")).toBe(1);
    expect(ht("sht_iterator_end", ctx, "i1")).toBe(-1);
    expect(ht("sht_iterator_next", ctx, "i1")).toBe(-1);
  });

  it("changes and removes the current item", () => {
    const ctx = ctxFor();
    ht("sht_seti", ctx, "t", "a", 1);
    ht("sht_seti", ctx, "t", "b", 2);
    ht("sht_iterator_start", ctx, "it", "t");
    expect(ht("sht_iterator_sets", ctx, "it", "x")).toBe(-1); // not positioned yet
    ht("sht_iterator_next", ctx, "it");
    expect(ht("sht_iterator_seti", ctx, "it", 10)).toBe(1);
    expect(ht("sht_get", ctx, "t", "a")).toBe(10);
    expect(ht("sht_iterator_rm", ctx, "it")).toBe(1);
    expect(ht("sht_get", ctx, "t", "a")).toBeNull();
    expect(pv("get", ctx, "$shtitkey(it)")).toBe("b");
    expect(ht("sht_iterator_sets", ctx, "it", "bee")).toBe(1);
    expect(ht("sht_iterator_setex", ctx, "it", 5)).toBe(1);
    expect(ht("sht_iterator_rm", ctx, "it")).toBe(-2);
    expect(tenantHtables("t1").size).toBe(0);
  });

  it("allows 4 iterators at a time", () => {
    const ctx = ctxFor();
    for (const n of ["a", "b", "c", "d"]) expect(ht("sht_iterator_start", ctx, n, "t")).toBe(1);
    expect(ht("sht_iterator_start", ctx, "e", "t")).toBe(-1);
    expect(ht("sht_iterator_start", ctx, "a", "t")).toBe(1);
    ht("sht_iterator_end", ctx, "d");
    expect(ht("sht_iterator_start", ctx, "e", "t")).toBe(1);
  });
});

describe("$sht and friends in KSR.pv", () => {
  it("gets, sets and unsets items, with int items read as numbers", () => {
    const ctx = ctxFor();
    expect(pv("get", ctx, "$sht(t=>k)")).toBeNull();
    expect(pv("seti", ctx, "$sht(t=>k)", 3)).toBe(true);
    expect(pv("get", ctx, "$sht(t=>k)")).toBe(3);
    expect(ht("sht_get", ctx, "t", "k")).toBe(3);
    expect(pv("sets", ctx, "$sht(t=>k)", "s")).toBe(true);
    expect(pv("get", ctx, "$sht(t=>k)")).toBe("s");
    expect(pv("is_null", ctx, "$sht(t=>k)")).toBe(false);
    expect(pv("unset", ctx, "$sht(t=>k)")).toBe(true);
    expect(pv("is_null", ctx, "$sht(t=>k)")).toBe(true);
    expect(pv("gete", ctx, "$sht(t=>k)")).toBe("");
  });

  it("evaluates pseudo-variables in the key", () => {
    const ctx = ctxFor("t1", { srcIp: "198.51.100.9" });
    ht("sht_seti", ctx, "ipban", "198.51.100.9", 1);
    expect(pv("get", ctx, "$sht(ipban=>$si)")).toBe(1);
    pv("sets", ctx, "$var(user)", "alice");
    pv("sets", ctx, "$sht(u=>user:$var(user))", "registered");
    expect(ht("sht_get", ctx, "u", "user:alice")).toBe("registered");
    expect(pv("get", ctx, "$sht(u=>user:$var(user))")).toBe("registered");
  });

  it("rejects malformed names", () => {
    const ctx = ctxFor();
    expect(pv("get", ctx, "$sht(nokey)")).toBeNull();
    expect(pv("sets", ctx, "$sht(t=>$nosuchpv(x))", "v")).toBe(false);
    expect(pv("sets", ctx, "$sht(t=>$var(x)", "v")).toBe(false);
    expect(errors().filter((e) => e.includes("invalid pv")).length).toBe(3);
  });

  it("$sht fails to set past the memory bound", () => {
    configureHtableLimits({ maxItemsPerTenant: 1 });
    const ctx = ctxFor();
    expect(pv("seti", ctx, "$sht(t=>a)", 1)).toBe(true);
    expect(pv("seti", ctx, "$sht(t=>b)", 1)).toBe(false);
  });

  it("$shtex reads and sets the remaining seconds; $shtinc / $shtdec count", () => {
    const ctx = ctxFor();
    pv("seti", ctx, "$sht(t=>n)", 1);
    expect(pv("get", ctx, "$shtex(t=>n)")).toBe(0);
    expect(pv("seti", ctx, "$shtex(t=>n)", 30)).toBe(true);
    host.clock.ms += 10_500;
    expect(pv("get", ctx, "$shtex(t=>n)")).toBe(20);
    expect(pv("get", ctx, "$shtinc(t=>n)")).toBe(2);
    expect(pv("get", ctx, "$shtdec(t=>n)")).toBe(1);
    expect(pv("get", ctx, "$shtinc(t=>missing)")).toBeNull();
    host.clock.ms += 20_000;
    expect(pv("get", ctx, "$sht(t=>n)")).toBeNull();
  });
});
