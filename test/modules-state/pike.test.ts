import { beforeEach, describe, expect, it } from "vitest";
import { newTenantState } from "../../host/core/context.js";
import { pikeModule } from "../../host/modules/pike.js";
import { configurePike, dividePikeDensity, resetPikeConfiguration, sweepPike, tenantPike } from "../../host/modules/state/pike-store.js";
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

describe("pike_check_req with Kamailio's defaults (2 s windows, 30 requests, 120 s latency)", () => {
  it("lets 29 requests of a window through, detects the 30th (-2), then answers -1", () => {
    const results = burst(32);
    expect(results.slice(0, 29).every((r) => r === 1)).toBe(true);
    expect(results[29]).toBe(-2);
    expect(results.slice(30)).toEqual([-1, -1]);
    expect(host.logs.filter((l) => l.text.includes("PIKE - BLOCKing ip 203.0.113.5"))).toHaveLength(1);
  });

  it("counts each source address separately", () => {
    burst(29, "203.0.113.5");
    expect(burst(1, "203.0.113.6")).toEqual([1]);
    expect(burst(1, "203.0.113.5")).toEqual([-2]);
    expect(burst(1, "203.0.113.6")).toEqual([1]);
  });

  it("remembers the previous window: a full previous window keeps the address hot", () => {
    burst(30);
    host.clock.ms += 2_000; // next window: previous = 30 → still hot, still flooding
    expect(burst(1)).toEqual([-1]);
    host.clock.ms += 2_000; // previous = 1, current = 0 → cooled down, unmarked
    expect(burst(1)).toEqual([1]);
  });

  it("splits requests into fixed windows, not a sliding one", () => {
    host.clock.ms += 1_900;
    burst(20); // end of one window
    host.clock.ms += 200;
    expect(burst(20).every((r) => r === 1)).toBe(true); // 40 requests in 0.2 s, split 20 + 20
  });

  it("an address silent for two windows starts over", () => {
    burst(29);
    host.clock.ms += 4_000;
    expect(burst(29).every((r) => r === 1)).toBe(true);
  });

  it("forgets an address remove_latency after its last request", () => {
    burst(5);
    expect(tenantPike("t1").size).toBe(1);
    host.clock.ms += 119_000;
    sweepPike(host.clock.ms);
    expect(tenantPike("t1").size).toBe(1);
    host.clock.ms += 1_000;
    sweepPike(host.clock.ms);
    expect(tenantPike("t1").size).toBe(0);
  });
});

describe("configuration, tenants and bounds", () => {
  it("follows configured parameters", () => {
    configurePike({ samplingTimeUnitSec: 10, reqsDensityPerUnit: 3 });
    expect(burst(4)).toEqual([1, 1, -2, -1]);
    host.clock.ms += 9_000; // same 10 s window
    expect(burst(1)).toEqual([-1]);
  });

  it("keeps tenants apart and applies a tenant's own settings to it only", () => {
    configurePike({ reqsDensityPerUnit: 2 }, { tenantId: "strict" });
    expect(burst(2, "203.0.113.5", "strict")).toEqual([1, -2]);
    expect(burst(2, "203.0.113.5", "relaxed")).toEqual([1, 1]);
  });

  it("rejects invalid settings", () => {
    expect(() => configurePike({ reqsDensityPerUnit: 0 })).toThrow(/positive integer/);
    expect(() => configurePike({ samplingTimeUnitSec: 1.5 })).toThrow(/positive integer/);
  });

  it("tracks at most maxAddressesPerTenant addresses, dropping the least recently seen", () => {
    configurePike({ maxAddressesPerTenant: 3 });
    for (const ip of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) burst(1, ip);
    burst(1, "192.0.2.1"); // 192.0.2.2 is now the least recently seen
    burst(1, "192.0.2.4");
    expect(tenantPike("t1").size).toBe(3);
    expect(tenantPike("t1").isFlooding("192.0.2.2", host.clock.ms)).toBe(false);
    configurePike({ reqsDensityPerUnit: 3 });
    expect(burst(1, "192.0.2.1")).toEqual([-2]); // its count was kept
  });
});

describe("pike_check_ip", () => {
  it("counts the given address, with IPv6 written in any form as one address", () => {
    configurePike({ reqsDensityPerUnit: 3 });
    const ctx = ctxFor();
    expect(pike("pike_check_ip", ctx, "2001:db8::1")).toBe(1);
    expect(pike("pike_check_ip", ctx, "2001:DB8:0:0::1")).toBe(1);
    expect(pike("pike_check_ip", ctx, "[2001:db8::1]")).toBe(-2);
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
    // 30 per window over 4 workers: 8 here.
    const results = burst(9);
    expect(results.slice(0, 7).every((r) => r === 1)).toBe(true);
    expect(results.slice(7)).toEqual([-2, -1]);
    dividePikeDensity(64);
    // Never below one request per window.
    expect(burst(1, "203.0.113.77")).toEqual([-2]);
  });
});
