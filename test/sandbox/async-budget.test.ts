/**
 * CpuBudget: the token bucket over isolate CPU time that decides whether a
 * tenant's message may run (bench/EXECUTION-DESIGN.md). Clock and CPU
 * readings are injected, so every number below is exact.
 */
import { afterEach, describe, expect, test } from "vitest";
import { CpuBudget } from "../../sandbox/budget.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { fakeHost, makeContext, TEST_MODULES } from "./fixtures.js";

function harness(share: number, burstMs?: number) {
  const state = { nowMs: 0, cpuNs: 0n };
  const budget = new CpuBudget({
    share,
    ...(burstMs !== undefined ? { burstMs } : {}),
    readCpuNs: () => state.cpuNs,
    nowMs: () => state.nowMs,
  });
  /** The tenant burns `ms` of CPU over `ms` of wall time. */
  const burn = (ms: number): void => {
    state.nowMs += ms;
    state.cpuNs += BigInt(ms * 1e6);
  };
  return { state, budget, burn };
}

describe("CpuBudget", () => {
  test("the bucket starts full: share × burst window", () => {
    const { budget } = harness(0.1, 2000);
    expect(budget.capacityMs).toBeCloseTo(200);
    expect(budget.tokensMs).toBeCloseTo(200);
    expect(budget.admit()).toBe(true);
  });

  test("an overrun leaves debt; admission resumes once the refill paid it back", () => {
    const { state, budget, burn } = harness(0.1); // 100 ms bucket, refills 0.1 ms per ms
    // One execution of 150 ms CPU from a full bucket: the refill is capped at
    // the bucket size before the charge, so 100 - 150 = -50.
    burn(150);
    expect(budget.admit()).toBe(false);
    expect(budget.tokensMs).toBeCloseTo(-50);
    state.nowMs += 490; // +49 → -1
    expect(budget.admit()).toBe(false);
    state.nowMs += 20; // +2 → +1
    expect(budget.admit()).toBe(true);
    expect(budget.tokensMs).toBeCloseTo(1);
  });

  test("refill never goes above the bucket size", () => {
    const { state, budget } = harness(0.25, 1000);
    state.nowMs += 60_000;
    expect(budget.admit()).toBe(true);
    expect(budget.tokensMs).toBeCloseTo(250);
  });

  test("a tenant that burns everything it is admitted for gets its share over a long window", () => {
    const { state, budget } = harness(0.1, 1000);
    let ranMs = 0;
    // 10 s of arrivals every 10 ms, each burning 50 ms of CPU when admitted (on another thread, so wall time advances by arrivals only).
    for (let t = 0; t < 10_000; t += 10) {
      state.nowMs = t;
      if (budget.admit()) {
        state.cpuNs += 50_000_000n;
        budget.charge();
        ranMs += 50;
      }
    }
    // 10 % of 10 s = 1000 ms, plus the initial 100 ms bucket, plus at most one overrunning execution.
    expect(ranMs).toBeGreaterThanOrEqual(1000);
    expect(ranMs).toBeLessThanOrEqual(1000 + 100 + 50);
    expect(budget.chargedCpuNs).toBe(BigInt(ranMs) * 1_000_000n);
  });

  test("a reading that goes backwards charges nothing and becomes the baseline", () => {
    const { state, budget } = harness(0.5);
    state.cpuNs = 100_000_000n;
    budget.charge();
    expect(budget.tokensMs).toBeCloseTo(400);
    state.cpuNs = 10_000_000n; // the reader restarted
    budget.charge();
    expect(budget.tokensMs).toBeCloseTo(400);
    state.cpuNs = 30_000_000n;
    budget.charge();
    expect(budget.tokensMs).toBeCloseTo(380);
  });

  test("a penalty empties the bucket and leaves it that much in debt, paid back by the refill", () => {
    const { budget, state } = harness(0.5, 1000); // a 500 ms bucket, refilled at 0.5 ms per ms
    budget.penalize(500);
    expect(budget.tokensMs).toBe(-500);
    state.nowMs += 999;
    expect(budget.admit()).toBe(false);
    state.nowMs += 2;
    expect(budget.admit()).toBe(true);
    // Already in debt: the penalty adds to it.
    state.cpuNs += 100_000_000n;
    budget.charge();
    budget.penalize(500);
    expect(budget.tokensMs).toBeCloseTo(-599.5, 6);
  });

  test("rejects shares and windows that are not positive numbers", () => {
    const readCpuNs = () => 0n;
    expect(() => new CpuBudget({ share: 0, readCpuNs })).toThrow(RangeError);
    expect(() => new CpuBudget({ share: Number.NaN, readCpuNs })).toThrow(RangeError);
    expect(() => new CpuBudget({ share: 0.5, burstMs: -1, readCpuNs })).toThrow(RangeError);
  });
});

describe("CpuBudget over a real isolate", () => {
  const runners: ScriptRunner[] = [];
  afterEach(() => {
    for (const r of runners.splice(0)) r.dispose();
  });

  test("a looping route drains a 5 % budget and the next message is refused", () => {
    const runner = ScriptRunner.fromSource(`function ksr_request_route() { for (;;) {} }`, "/scripts/loop.js", {
      limits: { heapMb: 32, routeTimeoutMs: 80 },
      tenant: "loop",
      modules: TEST_MODULES,
    });
    runners.push(runner);
    const budget = new CpuBudget({ share: 0.05, readCpuNs: () => runner.cpuTimeNs }); // 50 ms bucket
    expect(budget.admit()).toBe(true);
    expect(runner.runRoute("ksr_request_route", makeContext(fakeHost()))).toMatchObject({ kind: "timeout" });
    budget.charge();
    expect(budget.admit()).toBe(false);
    expect(Number(budget.chargedCpuNs)).toBeGreaterThan(70e6);
  });
});
