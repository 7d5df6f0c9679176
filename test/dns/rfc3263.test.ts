/**
 * RFC 3263 §4 resolution over a table of records: which lookups, which
 * transport, the order of targets (NAPTR order/preference, SRV priority,
 * RFC 2782 weights drawn from an injected random source).
 */
import { describe, expect, it } from "vitest";
import { materialize, orderByWeight, orderSrv, resolvePlan, usableNaptrs, type NaptrRecord, type SrvRecord } from "../../host/dns/rfc3263.js";
import { TableDnsLookups } from "../../host/dns/table.js";
import type { TransportProto } from "../../host/core/context.js";

const ALL = { transports: new Set<TransportProto>(["udp", "tcp", "tls"]), ipv6: false };
const UDP_TCP = { transports: new Set<TransportProto>(["udp", "tcp"]), ipv6: false };

function naptr(order: number, preference: number, service: string, replacement: string): NaptrRecord {
  return { order, preference, flags: "s", service, regexp: "", replacement };
}
function srv(priority: number, weight: number, port: number, name: string): SrvRecord {
  return { priority, weight, port, name };
}
/** A random source that returns the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error("random source exhausted");
    return values[i++]!;
  };
}

describe("NAPTR selection (§4.1)", () => {
  it("orders by order then preference and keeps only transports with a listen socket", () => {
    const records = [
      naptr(20, 10, "SIP+D2U", "_sip._udp.example.com"),
      naptr(10, 20, "SIP+D2T", "_sip._tcp.example.com"),
      naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com"),
      naptr(5, 10, "SIP+D2S", "_sip._sctp.example.com"),
      naptr(1, 1, "SIP+D2W", "_sip._ws.example.com"),
    ];
    expect(usableNaptrs(records, false, ALL.transports).map((r) => r.proto)).toEqual(["tls", "tcp", "udp"]);
    expect(usableNaptrs(records, false, UDP_TCP.transports).map((r) => r.proto)).toEqual(["tcp", "udp"]);
  });

  it("a SIPS URI takes only SIPS+D2T; records with a regexp or another flag are skipped", () => {
    const records = [
      naptr(10, 10, "SIP+D2U", "_sip._udp.example.com"),
      { ...naptr(5, 10, "SIPS+D2T", "x"), regexp: "!^.*$!sip:a@b!" },
      { ...naptr(6, 10, "SIPS+D2T", "_sips._tcp.example.com"), flags: "S" },
      { ...naptr(7, 10, "SIPS+D2T", "y"), flags: "a" },
    ];
    expect(usableNaptrs(records, true, ALL.transports)).toEqual([{ proto: "tls", replacement: "_sips._tcp.example.com" }]);
  });
});

describe("SRV ordering (RFC 2782)", () => {
  const a = srv(10, 60, 5060, "a");
  const b = srv(10, 30, 5060, "b");
  const c = srv(10, 10, 5060, "c");
  const z = srv(10, 0, 5060, "z");

  it("priority first, lowest first, whatever the weights", () => {
    const ordered = orderSrv([srv(20, 100, 1, "low"), srv(10, 1, 2, "high"), srv(30, 0, 3, "last")], () => 0.99);
    expect(ordered.map((r) => r.name)).toEqual(["high", "low", "last"]);
  });

  it("within a priority, the running sum of weights picks: draw 0 takes the weight-0 record first", () => {
    expect(orderByWeight([a, b, c, z], sequence(0, 0, 0, 0)).map((r) => r.name)).toEqual(["z", "a", "b", "c"]);
  });

  it("a draw past a's share takes b, then what is left is drawn again", () => {
    // sum 100: floor(0.65 * 101) = 65 > 60 (a) and <= 90 (a+b) → b; then sum 70: floor(0.95 * 71) = 67 > 60 → c; then a.
    expect(orderByWeight([a, b, c], sequence(0.65, 0.95, 0)).map((r) => r.name)).toEqual(["b", "c", "a"]);
  });

  it("over many draws the first choice follows the weights", () => {
    let seed = 12345;
    const lcg = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const firsts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const first = orderByWeight([a, b, c], lcg)[0]!.name;
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    expect(firsts.get("a")! / 10_000).toBeCloseTo(0.6, 1);
    expect(firsts.get("b")! / 10_000).toBeCloseTo(0.3, 1);
    expect(firsts.get("c")! / 10_000).toBeCloseTo(0.1, 1);
  });
});

describe("resolution (§4.1-4.2)", () => {
  const table = {
    naptr: {
      "example.com": [naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com"), naptr(20, 10, "SIP+D2U", "_sip._udp.example.com")],
    },
    srv: {
      "_sip._tcp.example.com": [srv(20, 0, 5070, "b.example.com"), srv(10, 0, 5080, "a.example.com")],
      "_sip._udp.example.com": [srv(10, 0, 5090, "a.example.com")],
      "_sip._udp.srvonly.com": [srv(10, 0, 5062, "a.example.com")],
      "_sip._tcp.srvonly.com": [srv(10, 0, 5063, "b.example.com")],
      "_sip._udp.dead.com": [srv(10, 0, 5060, ".")],
    },
    hosts: { "a.example.com": "192.0.2.1", "b.example.com": ["192.0.2.2", "2001:db8::2"], "plain.com": "192.0.2.9" },
  };

  it("NAPTR → SRV → A: the transport of the best NAPTR, its SRV by priority, then the next NAPTR", async () => {
    const dns = new TableDnsLookups(table);
    const plan = await resolvePlan({ host: "example.com", secure: false }, dns, ALL);
    expect(materialize(plan, () => 0)).toEqual([
      { proto: "tcp", ip: "192.0.2.1", port: 5080 },
      { proto: "tcp", ip: "192.0.2.2", port: 5070 },
      { proto: "udp", ip: "192.0.2.1", port: 5090 },
    ]);
    expect(dns.asked.slice(0, 2)).toEqual(["naptr/example.com", "srv/_sip._tcp.example.com"]);
  });

  it("without a TCP socket the UDP NAPTR is used", async () => {
    const plan = await resolvePlan({ host: "example.com", secure: false }, new TableDnsLookups(table), { transports: new Set<TransportProto>(["udp"]), ipv6: false });
    expect(materialize(plan, () => 0)).toEqual([{ proto: "udp", ip: "192.0.2.1", port: 5090 }]);
  });

  it("no NAPTR: SRV of each transport, UDP first; AAAA asked only with an IPv6 socket", async () => {
    const plan = await resolvePlan({ host: "srvonly.com", secure: false }, new TableDnsLookups(table), { ...UDP_TCP, ipv6: true });
    expect(materialize(plan, () => 0)).toEqual([
      { proto: "udp", ip: "192.0.2.1", port: 5062 },
      { proto: "tcp", ip: "192.0.2.2", port: 5063 },
      { proto: "tcp", ip: "2001:db8::2", port: 5063 },
    ]);
  });

  it("a transport written: SRV of that transport only, no NAPTR", async () => {
    const dns = new TableDnsLookups(table);
    const plan = await resolvePlan({ host: "srvonly.com", transport: "tcp", secure: false }, dns, ALL);
    expect(materialize(plan, () => 0)).toEqual([{ proto: "tcp", ip: "192.0.2.2", port: 5063 }]);
    expect(dns.asked[0]).toBe("srv/_sip._tcp.srvonly.com");
  });

  it("a port written: the address only, UDP (TLS for SIPS)", async () => {
    const dns = new TableDnsLookups(table);
    expect(materialize(await resolvePlan({ host: "example.com", port: 5099, secure: false }, dns, ALL), () => 0)).toEqual([]);
    expect(materialize(await resolvePlan({ host: "a.example.com", port: 5099, secure: true }, dns, ALL), () => 0)).toEqual([{ proto: "tls", ip: "192.0.2.1", port: 5099 }]);
    expect(dns.asked).toEqual(["a/example.com", "a/a.example.com"]);
  });

  it("no NAPTR, no SRV: A with the default port; SRV target '.' means no service", async () => {
    expect(materialize(await resolvePlan({ host: "plain.com", secure: false }, new TableDnsLookups(table), ALL), () => 0)).toEqual([{ proto: "udp", ip: "192.0.2.9", port: 5060 }]);
    expect((await resolvePlan({ host: "dead.com", secure: false }, new TableDnsLookups(table), ALL)).entries).toEqual([]);
  });

  it("the plan lasts as long as its shortest TTL; failed lookups count as no records", async () => {
    const plan = await resolvePlan({ host: "plain.com", secure: false }, new TableDnsLookups({ ...table, ttlS: 42 }), ALL);
    expect(plan.ttlS).toBe(42);
    const failing = { naptr: () => Promise.reject(new Error("timeout")), srv: () => Promise.reject(new Error("timeout")), a: () => Promise.reject(new Error("timeout")), aaaa: () => Promise.reject(new Error("timeout")) };
    const dead = await resolvePlan({ host: "plain.com", secure: false }, failing, ALL);
    expect(dead.entries).toEqual([]);
    expect(dead.ttlS).toBe(5);
  });

  it("an unreachable server fails the resolution at the first question instead of timing out on each", async () => {
    const asked: string[] = [];
    const timeout = (name: string) => {
      asked.push(name);
      return Promise.reject(Object.assign(new Error("queryNaptr ETIMEOUT"), { code: "ETIMEOUT" }));
    };
    await expect(resolvePlan({ host: "plain.com", secure: false }, { naptr: timeout, srv: timeout, a: timeout, aaaa: timeout }, ALL)).rejects.toThrow("ETIMEOUT");
    expect(asked).toEqual(["plain.com"]);
  });

  it("a hostile answer is bounded: at most 32 targets", async () => {
    const many = Array.from({ length: 500 }, (_, i) => srv(10, 1, 6000 + i, "a.example.com"));
    const plan = await resolvePlan({ host: "big.com", transport: "udp", secure: false }, new TableDnsLookups({ ...table, srv: { "_sip._udp.big.com": many } }), ALL);
    expect(materialize(plan, Math.random)).toHaveLength(32);
  });
});
