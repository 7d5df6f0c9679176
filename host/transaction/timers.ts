/**
 * Time for the transaction layer: an injectable timer service (a real one
 * over setTimeout and a fake one for tests), the configurable base timer
 * values T1/T2/T4 of RFC 3261 §17.1.1.1 / Appendix A, and timer C, the
 * proxy's INVITE timeout (§16.6 step 11, §16.8).
 */

/** An opaque handle returned by {@link TimerService.setTimer}. */
export type TimerHandle = object;

/**
 * Where every transaction timer comes from. Injected so that tests (and the
 * `ksr test` harness) can drive time by hand with {@link FakeClock}.
 */
export interface TimerService {
  /** Current time in milliseconds (monotonic for the real service). */
  now(): number;
  /** Run `fn` once after `ms` milliseconds. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Cancel a timer; harmless for a timer that already ran or was cleared. */
  clearTimer(handle: TimerHandle): void;
}

/**
 * Timers over Node's setTimeout. They are unref'd: a pending retransmission
 * or wait timer never keeps the process alive on its own (the listening
 * sockets do that for a running server).
 */
export class RealTimerService implements TimerService {
  now(): number {
    return performance.timeOrigin + performance.now();
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  }

  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }
}

interface FakeTimer {
  due: number;
  /** Creation order: timers due at the same instant run in the order they were set. */
  seq: number;
  fn: () => void;
}

/**
 * A hand-driven clock for tests. Time stands still until {@link advance}
 * moves it; due timers then run in order of due time (then creation order),
 * each with `now()` equal to its due time, including timers set by other
 * timers' callbacks if they fall due within the advanced interval.
 */
export class FakeClock implements TimerService {
  /** Upper bound on timers run by one advance() call, so a timer that keeps re-arming itself at 0 ms cannot hang a test. */
  static readonly MAX_TIMERS_PER_ADVANCE = 1_000_000;

  private current: number;
  private seq = 0;
  /** Pending timers sorted by (due, seq). */
  private readonly queue: FakeTimer[] = [];

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer: FakeTimer = { due: this.current + delay, seq: this.seq++, fn };
    // Binary search for the insertion point after every timer due no later.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.queue[mid]!.due <= timer.due) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    const idx = this.queue.indexOf(handle as FakeTimer);
    if (idx !== -1) this.queue.splice(idx, 1);
  }

  /**
   * Move time forward by `ms`, running every timer that falls due on the
   * way. Returns the number of timers run.
   */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`cannot advance by ${ms} ms`);
    const target = this.current + ms;
    let ran = 0;
    while (this.queue.length > 0 && this.queue[0]!.due <= target) {
      if (ran >= FakeClock.MAX_TIMERS_PER_ADVANCE) {
        throw new Error(`more than ${FakeClock.MAX_TIMERS_PER_ADVANCE} timers in one advance()`);
      }
      const timer = this.queue.shift()!;
      this.current = Math.max(this.current, timer.due);
      ran++;
      timer.fn();
    }
    this.current = target;
    return ran;
  }

  /** Advance to the next pending timer and run it (and any due at the same instant). Returns false when none is pending. */
  advanceToNext(): boolean {
    const next = this.nextDue();
    if (next === undefined) return false;
    this.advance(next - this.current);
    return true;
  }

  /** Due time of the earliest pending timer. */
  nextDue(): number | undefined {
    return this.queue[0]?.due;
  }

  /** Number of timers waiting to run. */
  get pendingTimers(): number {
    return this.queue.length;
  }
}

/**
 * Base timer values (RFC 3261 §17.1.1.1, Appendix A) and the proxy INVITE
 * timeout. All in milliseconds.
 */
export interface TimerConfig {
  /** RTT estimate (default 500 ms). */
  readonly T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s). */
  readonly T2: number;
  /** Maximum duration a message remains in the network (default 5 s). */
  readonly T4: number;
  /**
   * Timer C, the proxy INVITE transaction timeout (§16.6 step 11): "MUST
   * be set ... larger than 3 minutes". Default 181 s. Deployments that
   * mimic Kamailio's fr_inv_timer may configure less.
   */
  readonly timerC: number;
}

export const DEFAULT_TIMER_CONFIG: TimerConfig = Object.freeze({ T1: 500, T2: 4000, T4: 5000, timerC: 181_000 });

/**
 * A complete, validated timer configuration from a partial one (missing
 * values take the defaults). Throws RangeError for non-positive values or
 * T2 < T1 (§17.1.2.2 caps intervals at T2, which must not undercut T1).
 */
export function resolveTimerConfig(partial?: Partial<TimerConfig>): TimerConfig {
  const c: TimerConfig = { ...DEFAULT_TIMER_CONFIG, ...stripUndefined(partial) };
  for (const name of ["T1", "T2", "T4", "timerC"] as const) {
    const v = c[name];
    if (!Number.isFinite(v) || v <= 0) throw new RangeError(`timer ${name} must be a positive number of ms, got ${v}`);
  }
  if (c.T2 < c.T1) throw new RangeError(`T2 (${c.T2} ms) must not be smaller than T1 (${c.T1} ms)`);
  return Object.freeze(c);
}

function stripUndefined(p: Partial<TimerConfig> | undefined): Partial<TimerConfig> {
  const out: { -readonly [K in keyof TimerConfig]?: number } = {};
  if (p === undefined) return out;
  for (const [k, v] of Object.entries(p) as [keyof TimerConfig, number | undefined][]) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Timer D, the INVITE client's wait for response retransmissions in
 * "Completed" (§17.1.1.2): "at least 32 seconds for unreliable transports"
 * and zero for reliable ones. It must outlast the server's retransmission
 * window, timer H = 64*T1, so a T1 above 500 ms lengthens it.
 */
export function timerDFor(config: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : Math.max(32_000, 64 * config.T1);
}

/**
 * Timer C (§16.6 step 11, §16.8): the proxy starts it when it forwards an
 * INVITE on a branch, resets it on every provisional response other than
 * 100 (§16.7 step 2) and, when it fires, cancels the branch if a
 * provisional response was received or else treats it as a 408 (§16.8).
 * The transaction machines do not run it; the proxy owns one per branch.
 */
export class TimerC {
  private handle: TimerHandle | undefined;
  private due: number | undefined;

  constructor(
    private readonly timers: TimerService,
    private readonly durationMs: number,
    private readonly onFire: () => void,
  ) {
    if (!Number.isFinite(durationMs) || durationMs <= 0) throw new RangeError(`timer C must be positive, got ${durationMs}`);
  }

  /** (Re)start the timer for its full duration. */
  start(): void {
    this.stop();
    this.due = this.timers.now() + this.durationMs;
    this.handle = this.timers.setTimer(this.durationMs, () => {
      this.handle = undefined;
      this.due = undefined;
      this.onFire();
    });
  }

  /** §16.7 step 2: a provisional response other than 100 resets timer C. Does nothing when stopped. */
  reset(): void {
    if (this.handle !== undefined) this.start();
  }

  stop(): void {
    if (this.handle !== undefined) this.timers.clearTimer(this.handle);
    this.handle = undefined;
    this.due = undefined;
  }

  get running(): boolean {
    return this.handle !== undefined;
  }

  /** When the timer will fire (timer-service time), or undefined when stopped. */
  get firesAt(): number | undefined {
    return this.due;
  }
}

/**
 * Many deadlines on one timer: a binary min-heap ordered by due time, with
 * a single TimerService timer armed for the earliest. For large numbers of
 * long, rarely cancelled waits (settled transactions waiting out timers
 * J, L, D ... for 32 s), where one setTimeout each would cost a timer
 * object and a closure per entry. Items are never removed early: an
 * owner that is done with one ignores it in `onDue`. Items due at the same
 * instant come out in insertion order.
 */
export class DeadlineQueue<T extends { readonly due: number }> {
  private readonly heap: T[] = [];
  /** Insertion sequence of each heap slot, for a stable order among equal due times. */
  private readonly seqs: number[] = [];
  private nextSeq = 0;
  private armed: TimerHandle | undefined;
  private armedDue = Infinity;

  constructor(
    private readonly timers: TimerService,
    private readonly onDue: (item: T) => void,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  add(item: T): void {
    this.heap.push(item);
    this.seqs.push(this.nextSeq++);
    this.siftUp(this.heap.length - 1);
    if (item.due < this.armedDue) this.arm();
  }

  private before(i: number, j: number): boolean {
    const a = this.heap[i]!.due;
    const b = this.heap[j]!.due;
    return a < b || (a === b && this.seqs[i]! < this.seqs[j]!);
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const s = this.seqs;
    [h[i], h[j]] = [h[j]!, h[i]!];
    [s[i], s[j]] = [s[j]!, s[i]!];
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.before(l, m)) m = l;
      if (r < n && this.before(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private pop(): T {
    const top = this.heap[0]!;
    const lastItem = this.heap.pop()!;
    const lastSeq = this.seqs.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = lastItem;
      this.seqs[0] = lastSeq;
      this.siftDown(0);
    }
    return top;
  }

  private arm(): void {
    if (this.armed !== undefined) this.timers.clearTimer(this.armed);
    this.armed = undefined;
    this.armedDue = Infinity;
    const head = this.heap[0];
    if (head === undefined) return;
    this.armedDue = head.due;
    this.armed = this.timers.setTimer(head.due - this.timers.now(), () => this.fire());
  }

  private fire(): void {
    this.armed = undefined;
    this.armedDue = Infinity;
    const now = this.timers.now();
    while (this.heap.length > 0 && this.heap[0]!.due <= now) this.onDue(this.pop());
    // onDue may have added items (and armed for them); arm for the head either way.
    this.arm();
  }
}
