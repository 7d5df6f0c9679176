import { describe, expect, it } from "vitest";
import {
  DEFAULT_TIMER_CONFIG,
  FakeClock,
  RealTimerService,
  resolveTimerConfig,
  TimerC,
  timerDFor,
} from "../../host/transaction/timers.js";

describe("FakeClock", () => {
  it("runs due timers in due order, ties in creation order, with now() at each due time", () => {
    const clock = new FakeClock(1000);
    const log: string[] = [];
    clock.setTimer(300, () => log.push(`c@${clock.now()}`));
    clock.setTimer(100, () => log.push(`a@${clock.now()}`));
    clock.setTimer(300, () => log.push(`d@${clock.now()}`));
    clock.setTimer(200, () => log.push(`b@${clock.now()}`));
    expect(clock.advance(250)).toBe(2);
    expect(log).toEqual(["a@1100", "b@1200"]);
    expect(clock.now()).toBe(1250);
    expect(clock.advance(50)).toBe(2);
    expect(log).toEqual(["a@1100", "b@1200", "c@1300", "d@1300"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("runs timers set by callbacks when they fall due inside the same advance", () => {
    const clock = new FakeClock();
    const log: number[] = [];
    const tick = () => {
      log.push(clock.now());
      if (log.length < 5) clock.setTimer(100, tick);
    };
    clock.setTimer(100, tick);
    clock.advance(350);
    expect(log).toEqual([100, 200, 300]);
    clock.advance(1000);
    expect(log).toEqual([100, 200, 300, 400, 500]);
  });

  it("does not run cleared timers; clearing twice is harmless", () => {
    const clock = new FakeClock();
    let ran = 0;
    const h = clock.setTimer(10, () => ran++);
    clock.clearTimer(h);
    clock.clearTimer(h);
    clock.advance(100);
    expect(ran).toBe(0);
  });

  it("treats negative or invalid delays as zero and refuses to go back in time", () => {
    const clock = new FakeClock();
    let ran = 0;
    clock.setTimer(-5, () => ran++);
    clock.setTimer(Number.NaN, () => ran++);
    expect(clock.nextDue()).toBe(0);
    clock.advance(0);
    expect(ran).toBe(2);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });

  it("advanceToNext jumps to the next timer", () => {
    const clock = new FakeClock();
    clock.setTimer(700, () => undefined);
    expect(clock.advanceToNext()).toBe(true);
    expect(clock.now()).toBe(700);
    expect(clock.advanceToNext()).toBe(false);
  });

  it("stops a timer that re-arms itself at 0 ms instead of hanging", () => {
    const clock = new FakeClock();
    const spin = () => void clock.setTimer(0, spin);
    clock.setTimer(0, spin);
    expect(() => clock.advance(1)).toThrow(/timers in one advance/);
  });
});

describe("RealTimerService", () => {
  it("fires after the delay and not when cleared", async () => {
    const timers = new RealTimerService();
    const t0 = timers.now();
    const fired = await new Promise<number>((resolve) => timers.setTimer(20, () => resolve(timers.now())));
    expect(fired - t0).toBeGreaterThanOrEqual(19);
    let cleared = false;
    const h = timers.setTimer(5, () => (cleared = true));
    timers.clearTimer(h);
    await new Promise((r) => setTimeout(r, 30));
    expect(cleared).toBe(false);
  });
});

describe("timer configuration", () => {
  it("defaults to T1 500 ms, T2 4 s, T4 5 s, timer C above 3 minutes", () => {
    expect(DEFAULT_TIMER_CONFIG).toEqual({ T1: 500, T2: 4000, T4: 5000, timerC: 181_000 });
    expect(DEFAULT_TIMER_CONFIG.timerC).toBeGreaterThan(180_000);
    expect(resolveTimerConfig()).toEqual(DEFAULT_TIMER_CONFIG);
    expect(resolveTimerConfig({ T1: 200, T4: undefined })).toEqual({ T1: 200, T2: 4000, T4: 5000, timerC: 181_000 });
  });

  it("rejects non-positive values and T2 below T1", () => {
    expect(() => resolveTimerConfig({ T1: 0 })).toThrow(RangeError);
    expect(() => resolveTimerConfig({ T4: -1 })).toThrow(RangeError);
    expect(() => resolveTimerConfig({ timerC: Number.NaN })).toThrow(RangeError);
    expect(() => resolveTimerConfig({ T1: 5000, T2: 4000 })).toThrow(/T2/);
  });

  it("timer D is 32 s (or 64*T1 if longer) for unreliable transports and zero for reliable ones", () => {
    expect(timerDFor(DEFAULT_TIMER_CONFIG, false)).toBe(32_000);
    expect(timerDFor(resolveTimerConfig({ T1: 100 }), false)).toBe(32_000);
    expect(timerDFor(resolveTimerConfig({ T1: 1000 }), false)).toBe(64_000);
    expect(timerDFor(DEFAULT_TIMER_CONFIG, true)).toBe(0);
  });
});

describe("TimerC (RFC 3261 §16.6 step 11, §16.7 step 2, §16.8)", () => {
  it("fires after its duration, restarts on reset, and stays quiet when stopped", () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    const c = new TimerC(clock, DEFAULT_TIMER_CONFIG.timerC, () => fired.push(clock.now()));
    c.reset(); // not running: no effect
    expect(c.running).toBe(false);
    c.start();
    expect(c.firesAt).toBe(181_000);
    clock.advance(100_000);
    c.reset(); // a provisional response other than 100
    expect(c.firesAt).toBe(281_000);
    clock.advance(180_999);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([281_000]);
    expect(c.running).toBe(false);
    c.start();
    c.stop();
    clock.advance(1_000_000);
    expect(fired).toEqual([281_000]);
    expect(() => new TimerC(clock, 0, () => undefined)).toThrow(RangeError);
  });
});
