/**
 * The DNS caches: entries expire at their TTL, the bound drops the least
 * recently used, negative answers are kept (bounded) too, and one lookup
 * is in flight per name.
 */
import { describe, expect, it } from "vitest";
import { TtlCache } from "../../host/dns/cache.js";
import { CachingDnsLookups, NextHopResolver, parseDnsServer } from "../../host/dns/resolver.js";
import { TableDnsLookups } from "../../host/dns/table.js";
import type { TransportProto } from "../../host/core/context.js";

describe("TtlCache", () => {
  it("an entry is there until its TTL, then gone", () => {
    let now = 1000;
    const c = new TtlCache<string>(() => now, 10);
    c.set("a", "x", 500);
    now = 1499;
    expect(c.get("a")).toBe("x");
    now = 1500;
    expect(c.get("a")).toBeUndefined();
  });

  it("past the bound the least recently used entry goes", () => {
    const c = new TtlCache<number>(() => 0, 3);
    c.set("a", 1, 1000);
    c.set("b", 2, 1000);
    c.set("c", 3, 1000);
    expect(c.get("a")).toBe(1); // a is now the most recent
    c.set("d", 4, 1000);
    expect(c.size).toBe(3);
    expect(c.get("b")).toBeUndefined();
    expect([c.get("a"), c.get("c"), c.get("d")]).toEqual([1, 3, 4]);
  });

  it("a TTL of 0 keeps nothing", () => {
    const c = new TtlCache<number>(() => 0, 3);
    c.set("a", 1, 0);
    expect(c.get("a")).toBeUndefined();
  });
});

describe("CachingDnsLookups", () => {
  it("asks once per TTL, and once for lookups in flight together", async () => {
    let now = 0;
    const table = new TableDnsLookups({ hosts: { "a.test": "192.0.2.1" }, ttlS: 10 });
    const dns = new CachingDnsLookups(table, () => now, 100);
    const [x, y] = await Promise.all([dns.a("a.test"), dns.a("A.TEST")]);
    expect(x.records).toEqual(["192.0.2.1"]);
    expect(y).toBe(x);
    expect(table.asked).toEqual(["a/a.test"]);
    now = 9_999;
    expect(dns.peek("a", "a.test")?.records).toEqual(["192.0.2.1"]);
    now = 10_000;
    expect(dns.peek("a", "a.test")).toBeUndefined();
    await dns.a("a.test");
    expect(table.asked).toEqual(["a/a.test", "a/a.test"]);
  });

  it("a name that does not exist is remembered as such, within the bound", async () => {
    const table = new TableDnsLookups({ ttlS: 30 });
    const dns = new CachingDnsLookups(table, () => 0, 2);
    for (const n of ["x.test", "y.test", "z.test"]) await dns.a(n);
    expect(dns.peek("a", "z.test")?.records).toEqual([]);
    expect(dns.peek("a", "x.test")).toBeUndefined(); // pushed out by the bound
  });

  it("past the bound on lookups in flight, a lookup fails at once instead of queueing", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = {
      naptr: () => Promise.reject(new Error("x")),
      srv: () => Promise.reject(new Error("x")),
      a: async () => {
        await gate;
        return { records: ["192.0.2.1"], ttlS: 10 };
      },
      aaaa: () => Promise.reject(new Error("x")),
    };
    const dns = new CachingDnsLookups(slow, () => 0, 100, 2);
    const first = dns.a("one.test");
    const second = dns.a("two.test");
    await expect(dns.a("three.test")).rejects.toMatchObject({ code: "EBUSY" });
    expect(dns.refusedBusy).toBe(1);
    release();
    expect((await first).records).toEqual(["192.0.2.1"]);
    await second;
    expect((await dns.a("three.test")).records).toEqual(["192.0.2.1"]); // room again
  });

  it("a failed lookup is remembered briefly (5 s) as no records", async () => {
    let now = 0;
    const failing = { naptr: () => Promise.reject(new Error("x")), srv: () => Promise.reject(new Error("x")), a: () => Promise.reject(new Error("ETIMEOUT")), aaaa: () => Promise.reject(new Error("x")) };
    const dns = new CachingDnsLookups(failing, () => now, 10);
    await expect(dns.a("dead.test")).rejects.toThrow("ETIMEOUT");
    expect(dns.peek("a", "dead.test")?.records).toEqual([]);
    now = 5_000;
    expect(dns.peek("a", "dead.test")).toBeUndefined();
  });
});

describe("NextHopResolver", () => {
  const options = () => ({ transports: new Set<TransportProto>(["udp", "tcp"]), ipv6: false });

  it("unknown, then known until the shortest TTL; each use draws the weighted order anew", async () => {
    let now = 0;
    const table = new TableDnsLookups({
      srv: { "_sip._udp.svc.test": [{ priority: 1, weight: 50, port: 5070, name: "a.test" }, { priority: 1, weight: 50, port: 5080, name: "b.test" }] },
      hosts: { "a.test": "192.0.2.1", "b.test": "192.0.2.2" },
      ttlS: 20,
    });
    const draws = [0, 0, 0.99, 0];
    const r = new NextHopResolver(new CachingDnsLookups(table, () => now, 100), () => now, options, () => draws.shift() ?? 0);
    const q = { host: "svc.test", transport: "udp" as const, secure: false };
    expect(r.known(q)).toBeUndefined();
    expect((await r.resolve(q)).map((t) => t.port)).toEqual([5070, 5080]);
    const again = r.known(q);
    expect(again !== "unresolvable" && again?.map((t) => t.port)).toEqual([5080, 5070]);
    now = 20_000;
    expect(r.known(q)).toBeUndefined();
  });

  it("a name without targets is known as unresolvable for the negative TTL", async () => {
    let now = 0;
    const r = new NextHopResolver(new CachingDnsLookups(new TableDnsLookups({}), () => now, 100), () => now, options);
    const q = { host: "nowhere.test", secure: false };
    expect(await r.resolve(q)).toEqual([]);
    expect(r.known(q)).toBe("unresolvable");
    now = 30_000;
    expect(r.known(q)).toBeUndefined();
  });
});

describe("--dns-server", () => {
  it("takes IP, IP:PORT and [IPv6]:PORT", () => {
    expect(parseDnsServer("127.0.0.1:5353")).toBe("127.0.0.1:5353");
    expect(parseDnsServer("10.0.0.1")).toBe("10.0.0.1:53");
    expect(parseDnsServer("[::1]:5353")).toBe("[::1]:5353");
    expect(() => parseDnsServer("dns.example.com")).toThrow(/expected IP/);
    expect(() => parseDnsServer("127.0.0.1:70000")).toThrow(/expected IP/);
  });
});
