import { beforeEach, describe, expect, it } from "vitest";
import { newTenantState } from "../../host/core/context.js";
import { pikeModule } from "../../host/modules/pike.js";
import { configurePike, dividePikeDensity, ipAddressBytes, resetPikeConfiguration, sweepPike, tenantPike } from "../../host/modules/state/pike-store.js";
import { clearAllTenantState } from "../../host/modules/state/tenant-scope.js";
import { caller } from "../modules/call.js";
import { makeContext, makeRecordingHost, request, type RecordingHost } from "../helpers/context.js";

const pike = caller(pikeModule);

let host: RecordingHost;
/** Clock at the start of a 2 s sampling window, so window arithmetic in the tests is exact. */
const WINDOW_START = 1_700_000_000_000;

function ctxFor(srcIp = "203.0.113.5", tenant = "t1") {
  return makeContext(request(), { host, tenant: newTenantState(tenant), rcv: { srcIp } }).ctx;
}

/** n requests from one source at the current clock; the results in order. */
function burst(n: number, srcIp = "203.0.113.5", tenant = "t1"): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(pike("pike_check_req", ctxFor(srcIp, tenant)) as number);
  return out;
}

beforeEach(() => {
  clearAllTenantState();
  resetPikeConfiguration();
  dividePikeDensity(1);
  host = makeRecordingHost({ now: WINDOW_START });
});

/**
 * Requests a source needs before its own count starts, with the default
 * density 30 (a prefix is hot at 30 >> 2 = 7 hits): the first byte's node
 * takes 7 hits, then each request grows one more byte, so the full address
 * exists after 7 + (bytes - 2) requests and counts from the next one.
 */
const WARMUP_IPV4 = 9;
const WARMUP_IPV6 = 21;

describe("pike_check_req with Kamailio's defaults (2 s windows, 30 requests, 120 s latency)", () => {
  it("counts a new address once its prefixes are hot: 38 requests pass, the 39th is detected (-2), then -1", () => {
    const results = burst(WARMUP_IPV4 + 32);
    expect(results.slice(0, WARMUP_IPV4 + 29).every((r) => r === 1)).toBe(true);
    expect(results[WARMUP_IPV4 + 29]).toBe(-2);
    expect(results.slice(WARMUP_IPV4 + 30)).toEqual([-1, -1]);
    expect(host.logs.filter((l) => l.text.includes("PIKE - BLOCKing ip 203.0.113.5"))).toHaveLength(1);
  });

  it("an IPv6 source has 16 bytes to warm up: detected at its 51st request", () => {
    const results = burst(WARMUP_IPV6 + 30, "2001:db8::5");
    expect(results.slice(0, WARMUP_IPV6 + 29).every((r) => r === 1)).toBe(true);
    expect(results[WARMUP_IPV6 + 29]).toBe(-2);
  });

  it("counts each full address on its own; a neighbour under a hot prefix starts counting sooner", () => {
    expect(burst(WARMUP_IPV4 + 29, "203.0.113.5").every((r) => r === 1)).toBe(true);
    // 203.0.113 is hot: the neighbour's own node is grown by its first request, counted from its second.
    expect(burst(1, "203.0.113.6")).toEqual([1]);
    expect(burst(1, "203.0.113.5")).toEqual([-2]);
    expect(burst(29, "203.0.113.6").every((r) => r === 1)).toBe(true);
    expect(burst(1, "203.0.113.6")).toEqual([-2]);
  });

  it("does not fold the addresses of an IPv6 /64 into one source, as Kamailio does not", () => {
    // 2 000 requests from 2 000 addresses of one /64 in one window: none is flagged.
    const results: number[] = [];
    for (let i = 0; i < 2000; i++) results.push(...burst(1, `2001:db8:0:1::${(i + 1).toString(16)}`));
    expect(results.every((r) => r === 1)).toBe(true);
  });

  it("remembers the previous window: a full previous window keeps the address hot", () => {
    burst(WARMUP_IPV4 + 30);
    host.clock.ms += 2_000; // next window: previous = 30 → still hot, still flooding
    expect(burst(1)).toEqual([-1]);
    host.clock.ms += 2_000; // previous = 1, current = 0 → cooled down, unmarked
    expect(burst(1)).toEqual([1]);
  });

  it("splits requests into fixed windows, not a sliding one", () => {
    burst(WARMUP_IPV4);
    host.clock.ms += 1_900;
    burst(20); // end of one window
    host.clock.ms += 200;
    // 40 requests in 0.2 s, split 20 + 20: the mean of the two windows is 20.
    expect(burst(20).every((r) => r === 1)).toBe(true);
  });

  it("an address silent for two windows starts over", () => {
    burst(WARMUP_IPV4 + 29);
    host.clock.ms += 4_000;
    expect(burst(29).every((r) => r === 1)).toBe(true);
  });

  it("forgets an address remove_latency after its last request, its prefixes one latency after that", () => {
    burst(WARMUP_IPV4 + 5);
    expect(tenantPike("t1").size).toBe(4); // one node per byte
    host.clock.ms += 119_000;
    sweepPike(host.clock.ms);
    expect(tenantPike("t1").size).toBe(4);
    host.clock.ms += 1_000;
    sweepPike(host.clock.ms);
    expect(tenantPike("t1").size).toBe(3); // the address; its prefix now ends the branch
    host.clock.ms += 120_000;
    sweepPike(host.clock.ms);
    expect(tenantPike("t1").size).toBe(2);
  });

  it("lets a prefix with few hits expire however often it is hit (a slow scan does not keep nodes)", () => {
    burst(1, "198.51.100.1");
    for (let i = 0; i < 5; i++) {
      host.clock.ms += 20_000;
      burst(1, `198.51.100.${i + 2}`); // each in a window of its own: the prefix never warms
    }
    host.clock.ms += 20_001; // 120 s after the first request
    sweepPike(host.clock.ms);
    expect(tenantPike("t1").size).toBe(0);
  });
});

describe("configuration, tenants and bounds", () => {
  it("follows configured parameters", () => {
    // Density 4: prefixes are hot at 1 hit, so the address counts from its 5th request.
    configurePike({ samplingTimeUnitSec: 10, reqsDensityPerUnit: 4 });
    expect(burst(9)).toEqual([1, 1, 1, 1, 1, 1, 1, -2, -1]);
    host.clock.ms += 9_000; // same 10 s window
    expect(burst(1)).toEqual([-1]);
  });

  it("keeps tenants apart and applies a tenant's own settings to it only", () => {
    configurePike({ reqsDensityPerUnit: 2 }, { tenantId: "strict" });
    expect(burst(6, "203.0.113.5", "strict")).toEqual([1, 1, 1, 1, 1, -2]);
    expect(burst(6, "203.0.113.5", "relaxed")).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it("rejects invalid settings", () => {
    expect(() => configurePike({ reqsDensityPerUnit: 0 })).toThrow(/positive integer/);
    expect(() => configurePike({ samplingTimeUnitSec: 1.5 })).toThrow(/positive integer/);
  });

  it("holds at most maxNodesPerTenant nodes, forgetting those closest to expiry", () => {
    configurePike({ maxNodesPerTenant: 100, reqsDensityPerUnit: 4 });
    // A scan of 5 000 addresses in one /16 (each warmed up to a full address would be 4 nodes).
    for (let i = 0; i < 5000; i++) {
      burst(5, `10.1.${i >> 8}.${i & 255}`);
      expect(tenantPike("t1").size).toBeLessThanOrEqual(100);
    }
    // A source arriving now is still counted and caught.
    expect(burst(9, "192.0.2.77")).toEqual([1, 1, 1, 1, 1, 1, 1, -2, -1]);
    expect(tenantPike("t1").size).toBeLessThanOrEqual(100);
  });
});

describe("pike_check_ip", () => {
  it("counts the given IPv4 address like a request from it", () => {
    const ctx = ctxFor("198.51.100.1");
    const results = Array.from({ length: WARMUP_IPV4 + 30 }, () => pike("pike_check_ip", ctx, "203.0.113.9"));
    expect(results.indexOf(-2)).toBe(WARMUP_IPV4 + 29);
    expect(tenantPike("t1").isFlooding("203.0.113.9", host.clock.ms)).toBe(true);
    expect(tenantPike("t1").isFlooding("198.51.100.1", host.clock.ms)).toBe(false);
  });

  it("answers -1 with an error for an IPv6 address, as Kamailio 5.6 (its str2ip reads IPv4 only)", () => {
    const ctx = ctxFor();
    expect(pike("pike_check_ip", ctx, "2001:db8::1")).toBe(-1);
    expect(pike("pike_check_ip", ctx, "[2001:db8::1]")).toBe(-1);
    expect(host.logs.some((l) => l.level === "err" && l.text.includes("failed to parse ip address: 2001:db8::1"))).toBe(true);
  });

  it("answers -1 with an error for something that is not an address", () => {
    const ctx = ctxFor();
    expect(pike("pike_check_ip", ctx, "example.com")).toBe(-1);
    expect(pike("pike_check_ip", ctx, "")).toBe(-1);
    expect(host.logs.some((l) => l.level === "err" && l.text.includes("failed to parse ip address: example.com"))).toBe(true);
  });
});

describe("pike in one worker of a pool (ksr run --workers N)", () => {
  it("marks an address at ceil(density / N): each worker sees about 1/N of a flood", () => {
    dividePikeDensity(4);
    // 30 per window over 4 workers: 8 here, so the prefixes warm up and the
    // address is detected at its 12th request instead of its 39th.
    const results = burst(13);
    expect(results.slice(0, 11).every((r) => r === 1)).toBe(true);
    expect(results.slice(11)).toEqual([-2, -1]);
    dividePikeDensity(64);
    // Never below one request per window: the second request already marks it.
    expect(burst(3, "203.0.113.77")).toEqual([1, -2, -1]);
  });
});

describe("address bytes (the tree's keys)", () => {
  it("are 4 for IPv4 and 16 for IPv6, whatever the IPv6 notation", () => {
    expect([...ipAddressBytes("192.0.2.1")!]).toEqual([192, 0, 2, 1]);
    const full = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    expect([...ipAddressBytes("2001:db8::1")!]).toEqual(full);
    expect([...ipAddressBytes("2001:db8:0:0:0:0:0:1")!]).toEqual(full);
    expect([...ipAddressBytes("::")!]).toEqual(Array(16).fill(0));
    expect([...ipAddressBytes("64:ff9b::192.0.2.1")!]).toEqual([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
    expect([...ipAddressBytes("fe80::1:2:3:4")!]).toEqual([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4]);
    expect(ipAddressBytes("example.com")).toBeUndefined();
  });
});
