/**
 * Load shedding: past its capacity the server answers new requests 503
 * (Service Unavailable, RFC 3261 §21.5.4) with Retry-After (§20.33) without
 * running the script, so that the calls it has accepted still complete.
 *
 * Why: over UDP a saturated server collapses. Requests wait in the socket's
 * receive buffer (4 MiB, thousands of datagrams) for longer than T1, their
 * senders retransmit (§17.1.1.2), the retransmissions join the same queue,
 * and the server spends its time on copies of requests whose calls have
 * failed already. Answering a new call 503 costs a parse and one datagram;
 * routing it costs the script, a transaction and the rest of the call.
 *
 * The measure is the queueing delay: how late the server handles what
 * arrived. The event loop's own lag does not show it — libuv reads at most
 * 32 datagrams per socket and turn, so timers run on time while the kernel
 * buffer holds seconds of requests —, so the server sends itself a probe
 * datagram every PROBE_INTERVAL_MS to its own UDP socket and measures when
 * it comes out of that queue (DelayGauge). A probe not back yet counts with
 * its age, so the delay shows while it grows, and a probe the kernel dropped
 * is passed by the next one that arrives. The timer's own lateness is added
 * for what the probe cannot see (TCP only, a turn of the event loop spent
 * on many slow routes).
 *
 * The decision (overloadAction), while the delay is over the threshold
 * (shedding starts at `thresholdMs`, ends below half of it: hysteresis, so
 * it does not flap at every probe):
 * - shed: every out-of-dialog request (no To tag) but ACK and CANCEL —
 *   INVITE and REGISTER, and also OPTIONS, SUBSCRIBE, MESSAGE...: each
 *   starts new work, and like Kamailio's pike and ratelimit, which an
 *   operator applies to whatever initial requests the script lets through,
 *   the point is to refuse new work, not one method;
 * - never shed: responses and in-dialog requests (they finish accepted
 *   calls; a BYE left unanswered keeps a call's resources), CANCEL (it ends
 *   an INVITE transaction, §9.2), ACK (never answered, §17.2.1);
 * - a request of an existing server transaction (a retransmission, or the
 *   ACK of a non-2xx final) goes to that transaction, which resends its
 *   last response or absorbs the ACK (§17.2.1, §17.2.2) without the script:
 *   it must not get a 503 contradicting the call in progress;
 * - the ACK of a 503 sent here (To tag with SHED_TAG_PREFIX) is absorbed,
 *   shedding or not: it acknowledges a hop-by-hop final response (§17.1.1.3)
 *   and has nowhere to go.
 *
 * Every shed request is counted and, while shedding, one line a second says
 * how many of each method (LoadShedder.poll).
 */
import dgram from "node:dgram";
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import type { SipMessage } from "../sip/message.js";
import { toHeader, topVia } from "../sip/parser.js";
import { headerParam } from "../sip/nameaddr.js";
import type { ListenSocket, LogLevel, ReceiveInfo } from "./context.js";
import { isWildcardIp } from "../transport/listen-socket.js";

/**
 * Default shedding threshold. A UDP sender retransmits a request after
 * T1 = 500 ms without an answer (§17.1.1.2); the server must act well before
 * that. Measured with `npm run bench -- --scenario overload` (README,
 * Benchmarks): at 1000-1500 calls/s, which the stateful relay completes
 * without a single retransmission, its queueing delay still peaks at
 * 60-270 ms (p99 of the INVITE → 200 time); a 100 ms threshold shed
 * hundreds of those calls for nothing. At 200 ms those bursts pass, and
 * a real overload (the delay grows without bound) is still cut short well
 * before T1.
 */
export const DEFAULT_OVERLOAD_DELAY_MS = 200;

/**
 * Retry-After of a shed request, seconds (§20.33). Short: an overload
 * episode lasts as long as the queue takes to drain, and a longer value
 * would keep clients away after it; clients spread their retries anyway.
 */
export const SHED_RETRY_AFTER_S = 1;

/**
 * 503s one source address gets per second while shedding; past it its
 * requests are dropped without an answer (counted). A flood source would
 * otherwise have every datagram answered, and the send is the costliest
 * part of handling one (a 20 000/s OPTIONS flood from one address was
 * answered 245 806 times while calls from another source failed).
 */
export const SHED_REPLIES_PER_SOURCE_PER_S = 20;

/** How often the server probes its own receive queue. 100 datagrams a second cost nothing measurable. */
export const PROBE_INTERVAL_MS = 10;

/** To tag prefix of the 503s sent while shedding, so that their ACKs are recognised without state (Kamailio's sl does the same). */
export const SHED_TAG_PREFIX = "ksr503";

/** What the overload gate does with one message, given whether the server is shedding. */
export type OverloadAction =
  /** Route it as usual. */
  | "serve"
  /** The ACK of a 503 this server sent while shedding: absorbed. */
  | "absorb-ack"
  /** Shedding, not new work: to its server transaction if it has one, else routed. */
  | "transaction-or-serve"
  /** Shedding, new work: to its server transaction if it has one (a retransmission), else 503. */
  | "transaction-or-shed";

/** An out-of-dialog request that starts new work: no To tag (§8.2.6.2, §12.1), neither ACK nor CANCEL. */
export function isInitialRequest(msg: SipMessage): boolean {
  if (msg.kind !== "request" || msg.method === "ACK" || msg.method === "CANCEL") return false;
  return !hasToTag(msg);
}

function hasToTag(msg: SipMessage): boolean {
  const tag = toTagOf(msg);
  return tag !== undefined && tag !== "";
}

function toTagOf(msg: SipMessage): string | undefined {
  try {
    return headerParam(toHeader(msg), "tag");
  } catch {
    return undefined;
  }
}

/** The ACK of a 503 this server sent while shedding (its To tag). */
export function isAckOfShedReply(msg: SipMessage): boolean {
  return msg.kind === "request" && msg.method === "ACK" && toTagOf(msg)?.startsWith(SHED_TAG_PREFIX) === true;
}

export function overloadAction(msg: SipMessage, shedding: boolean): OverloadAction {
  if (msg.kind === "response") return "serve";
  if (msg.method === "ACK" && isAckOfShedReply(msg)) return "absorb-ack";
  if (!shedding) return "serve";
  return isInitialRequest(msg) ? "transaction-or-shed" : "transaction-or-serve";
}

/** A To tag for a shed request's 503. */
export function shedReplyTag(): string {
  return SHED_TAG_PREFIX + randomBytes(4).toString("hex");
}

// ------------------------------------------------------------------ measure

/**
 * Queueing delay of a FIFO: entries go in with enter() and come out in
 * order (leaveUpTo / leave). The delay is that of the last entry out, or
 * the age of the oldest still in when that is more (a queue that stopped
 * moving shows its delay without waiting for the entry to come out).
 * Used for the probe datagrams through the receive queue, and by the
 * front of tenant processes for the messages a worker has not handled yet.
 */
export class DelayGauge {
  /** Entry times of the entries still in, oldest first, from index `head`. */
  private times: number[] = [];
  private head = 0;
  /** Sequence number of times[head]. */
  private firstSeq = 0;
  private lastDelay = 0;

  constructor(private readonly now: () => number) {}

  /** One entry in; returns its sequence number. */
  enter(): number {
    this.times.push(this.now());
    return this.firstSeq + this.times.length - this.head - 1;
  }

  /** Entry `seq` came out, and with it every earlier one (a FIFO: they were passed or lost). Unknown numbers are ignored. */
  leaveUpTo(seq: number): void {
    const index = this.head + (seq - this.firstSeq);
    if (!Number.isInteger(seq) || index < this.head || index >= this.times.length) return;
    this.lastDelay = this.now() - this.times[index]!;
    this.drop(index + 1 - this.head);
  }

  /** The `count` oldest entries came out. */
  leave(count: number): void {
    const inside = this.times.length - this.head;
    if (count <= 0 || inside === 0) return;
    this.leaveUpTo(this.firstSeq + Math.min(count, inside) - 1);
  }

  /** Entries in. */
  get size(): number {
    return this.times.length - this.head;
  }

  /** Current queueing delay in ms. */
  delayMs(): number {
    const oldest = this.times[this.head];
    return oldest === undefined ? this.lastDelay : Math.max(this.lastDelay, this.now() - oldest);
  }

  /** Forget everything (the queue is gone: a worker restarted). */
  reset(): void {
    this.times = [];
    this.head = 0;
    this.firstSeq = 0;
    this.lastDelay = 0;
  }

  private drop(count: number): void {
    this.head += count;
    this.firstSeq += count;
    // Compact now and then rather than shift() per entry.
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}

// ------------------------------------------------------------------ decide

export interface OverloadSettings {
  /** Queueing delay in ms at which shedding starts; it ends below half of it. */
  readonly thresholdMs: number;
  /**
   * How long (ms) the delay must stay at or over the threshold before
   * shedding starts (default DEFAULT_OVERLOAD_SUSTAIN_MS): one stall (a
   * garbage collection, a burst drained in one turn) is no overload.
   */
  readonly sustainMs?: number;
  /** Retry-After of the 503s, seconds (default SHED_RETRY_AFTER_S). */
  readonly retryAfterS?: number;
}

/** What the shedder needs from whoever receives the messages. */
export interface ShedderHost {
  /**
   * A request while shedding: "absorbed" when its server transaction took it
   * (retransmission, ACK of a non-2xx), "pass" when it belongs to a
   * transaction that is elsewhere and must be routed, "new" otherwise.
   */
  toTransaction(msg: SipMessage, rcv: ReceiveInfo): "absorbed" | "pass" | "new";
  /** Send the 503 with Retry-After and this To tag. */
  sendShedReply(msg: SipMessage, rcv: ReceiveInfo, retryAfterS: number, toTag: string): void;
  log(level: LogLevel, text: string): void;
}

/** Counts since the server started. */
export interface ShedCounters {
  /** Shed requests by method. */
  readonly shed: ReadonlyMap<string, number>;
  /** Requests handed to their transaction without the script while shedding. */
  readonly absorbed: number;
  /** ACKs of our 503s absorbed. */
  readonly shedAcks: number;
  /** Times shedding started. */
  readonly episodes: number;
}

/** Methods the per-second line names one by one; the rest are "other". */
const NAMED_METHODS = ["INVITE", "REGISTER"] as const;
const LOG_WINDOW_MS = 1000;

/**
 * The decision with hysteresis, the counters and the per-second log line.
 * `delayMs` is read on each message and each poll(); the clock only dates
 * the log windows. Nothing here reads the real time: tests drive both.
 */
/**
 * Default of OverloadSettings.sustainMs. Measured: with shedding on at the
 * first probe over 200 ms, a relay offered 1 500 calls/s that it carried
 * without shedding (p99 144 ms) shed 3 792 INVITEs after a stall, and
 * sipp's resent INVITEs took the p99 to 3.7 s. Five probe intervals tell a
 * stall from a queue that keeps growing, well within T1 (500 ms).
 */
export const DEFAULT_OVERLOAD_SUSTAIN_MS = 50;

export class LoadShedder {
  private sheddingNow = false;
  /** When the delay was first seen at or over the threshold in this run of readings; undefined while under it. */
  private overSince: number | undefined;
  private since = 0;
  private windowStart = 0;
  private readonly window = new Map<string, number>();
  private windowAbsorbed = 0;
  /** Shed requests dropped unanswered in this log window / in all. */
  private windowSilent = 0;
  private shedSilentlyTotal = 0;
  /** 503s sent per source address in the current second (SHED_REPLIES_PER_SOURCE_PER_S). */
  private readonly repliesBySource = new Map<string, number>();
  private repliesSince = 0;
  private episodeShed = 0;
  private readonly shedTotal = new Map<string, number>();
  private absorbedTotal = 0;
  private shedAcksTotal = 0;
  private episodeCount = 0;
  private readonly resumeBelowMs: number;
  readonly retryAfterS: number;

  constructor(
    readonly settings: OverloadSettings,
    private readonly delayMs: () => number,
    private readonly now: () => number,
    private readonly host: ShedderHost,
  ) {
    if (!(settings.thresholdMs > 0)) throw new Error("the overload threshold must be a positive number of ms");
    this.resumeBelowMs = settings.thresholdMs / 2;
    this.retryAfterS = settings.retryAfterS ?? SHED_RETRY_AFTER_S;
  }

  get shedding(): boolean {
    return this.sheddingNow;
  }

  /**
   * The gate of the receive path: true when the message was taken care of
   * here (shed, absorbed), false when it is to be routed as usual.
   */
  intercept(msg: SipMessage, rcv: ReceiveInfo): boolean {
    const action = overloadAction(msg, msg.kind === "request" && this.evaluate());
    switch (action) {
      case "serve":
        return false;
      case "absorb-ack":
        this.shedAcksTotal++;
        return true;
      case "transaction-or-serve":
      case "transaction-or-shed": {
        const owner = this.host.toTransaction(msg, rcv);
        if (owner === "absorbed") {
          this.absorbedTotal++;
          this.windowAbsorbed++;
          return true;
        }
        if (owner === "pass" || action === "transaction-or-serve") return false;
        this.shed(msg, rcv);
        return true;
      }
    }
  }

  /** Re-evaluates the delay and writes the per-second line when due; call it from a timer as well, so an episode ends even without traffic. */
  poll(): void {
    this.evaluate();
  }

  counters(): ShedCounters {
    return { shed: new Map(this.shedTotal), absorbed: this.absorbedTotal, shedAcks: this.shedAcksTotal, episodes: this.episodeCount };
  }

  /** The counters as `name=value` fields (the front of tenant processes adds them to a tenant's line). */
  counterFields(): string {
    const shed = [...this.shedTotal].map(([m, n]) => `${m}:${n}`).join(",");
    return (
      `shedding=${this.sheddingNow ? "yes" : "no"} overload-episodes=${this.episodeCount} shed=${shed === "" ? "0" : shed} ` +
      `absorbed-retransmissions=${this.absorbedTotal} absorbed-acks-of-503=${this.shedAcksTotal} shed-unanswered=${this.shedSilentlyTotal}`
    );
  }

  /** One line for SIGUSR2 / `ksr ctl counters`. */
  counterLine(): string {
    return `overload: ${this.counterFields()}`;
  }

  private shed(msg: SipMessage, rcv: ReceiveInfo): void {
    this.window.set(msg.method, (this.window.get(msg.method) ?? 0) + 1);
    this.shedTotal.set(msg.method, (this.shedTotal.get(msg.method) ?? 0) + 1);
    this.episodeShed++;
    const now = this.now();
    if (now - this.repliesSince >= 1000) {
      this.repliesBySource.clear();
      this.repliesSince = now;
    }
    const sent = this.repliesBySource.get(rcv.srcIp) ?? 0;
    if (sent >= SHED_REPLIES_PER_SOURCE_PER_S) {
      this.shedSilentlyTotal++;
      this.windowSilent++;
      return;
    }
    this.repliesBySource.set(rcv.srcIp, sent + 1);
    this.host.sendShedReply(msg, rcv, this.retryAfterS, shedReplyTag());
  }

  /** Hysteresis on the current delay; logs the transitions and the per-second line. Returns whether shedding. */
  private evaluate(): boolean {
    const delay = this.delayMs();
    const now = this.now();
    if (!this.sheddingNow) {
      if (delay < this.settings.thresholdMs) {
        this.overSince = undefined;
        return false;
      }
      this.overSince ??= now;
      if (now - this.overSince < (this.settings.sustainMs ?? DEFAULT_OVERLOAD_SUSTAIN_MS)) return false;
      this.overSince = undefined;
      this.sheddingNow = true;
      this.since = now;
      this.windowStart = now;
      this.episodeShed = 0;
      this.episodeCount++;
      this.host.log(
        "warn",
        `overload: queueing delay ${Math.round(delay)} ms reached the ${this.settings.thresholdMs} ms threshold; ` +
          `new requests are answered 503 (Retry-After ${this.retryAfterS} s) until it is below ${this.resumeBelowMs} ms`,
      );
      return true;
    }
    if (now - this.windowStart >= LOG_WINDOW_MS) this.logWindow(delay, now);
    if (delay >= this.resumeBelowMs) return true;
    if (this.window.size > 0 || this.windowAbsorbed > 0) this.logWindow(delay, now);
    this.sheddingNow = false;
    this.host.log(
      "notice",
      `overload over after ${((now - this.since) / 1000).toFixed(1)} s: ${this.episodeShed} request(s) shed (queueing delay ${Math.round(delay)} ms)`,
    );
    return false;
  }

  private logWindow(delay: number, now: number): void {
    const parts = NAMED_METHODS.map((m) => `${this.window.get(m) ?? 0} ${m}`);
    let other = 0;
    for (const [method, n] of this.window) if (!(NAMED_METHODS as readonly string[]).includes(method)) other += n;
    if (other > 0) parts.push(`${other} other`);
    const seconds = (now - this.windowStart) / 1000;
    const span = seconds >= 0.95 && seconds < 1.5 ? "the last second" : `the last ${seconds.toFixed(1)} s`;
    const absorbed = this.windowAbsorbed > 0 ? `; ${this.windowAbsorbed} retransmission(s) absorbed` : "";
    const silent = this.windowSilent > 0 ? `; ${this.windowSilent} dropped unanswered (over ${SHED_REPLIES_PER_SOURCE_PER_S} 503s/s to one source)` : "";
    this.host.log("warn", `shed ${parts.join(", ")} in ${span} (queueing delay ${Math.round(delay)} ms)${absorbed}${silent}`);
    this.window.clear();
    this.windowAbsorbed = 0;
    this.windowSilent = 0;
    this.windowStart = now;
  }
}

// ------------------------------------------------------------------ probe

/**
 * The probe of a server's receive queue: a datagram every PROBE_INTERVAL_MS
 * from a socket of its own to the server's first UDP socket, carrying a
 * random key (a datagram from anyone else is not a probe) and a sequence
 * number. The server hands every datagram to takeProbe() before parsing.
 * Each tick also measures the timer's own lateness (event-loop delay), which
 * is what a TCP-only server or a long route shows.
 */
export class ReceiveQueueProbe {
  private readonly key = `KSR-QUEUE-PROBE ${randomBytes(8).toString("hex")} `;
  private readonly gauge: DelayGauge;
  private socket: dgram.Socket | undefined;
  private target: { ip: string; port: number } | undefined;
  private probePort = -1;
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private loopLagMs = 0;

  constructor(
    private readonly now: () => number,
    private readonly onTick: () => void,
  ) {
    this.gauge = new DelayGauge(now);
  }

  /** Starts probing the first UDP socket of `sockets` (as bound); only the timer without one. */
  async start(sockets: readonly ListenSocket[]): Promise<void> {
    const udp = sockets.find((s) => s.proto === "udp");
    if (udp !== undefined) {
      const family = isIP(udp.ip) === 6 ? 6 : 4;
      const ip = isWildcardIp(udp.ip) ? (family === 6 ? "::1" : "127.0.0.1") : udp.ip;
      const socket = dgram.createSocket(family === 6 ? "udp6" : "udp4");
      socket.on("error", () => {}); // a lost probe shows as delay; nothing to report
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(0, ip, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      socket.unref();
      this.socket = socket;
      this.probePort = socket.address().port;
      this.target = { ip, port: udp.port };
    }
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.socket?.close();
    this.socket = undefined;
  }

  /**
   * Queueing delay now: the probes', or the timer's lateness, whichever is
   * more. The timer's lateness counts while it is late, not only once it
   * has run: libuv hands over up to 32 datagrams in one turn, and 32 slow
   * routes keep the timers (and the probes) waiting for that whole turn.
   */
  delayMs(): number {
    const late = this.timer === undefined ? 0 : this.now() - this.lastTick - PROBE_INTERVAL_MS;
    return Math.max(this.gauge.delayMs(), this.loopLagMs, late);
  }

  /** True (and measured) when `data` is one of our probes. */
  takeProbe(data: string, rcv: ReceiveInfo): boolean {
    if (rcv.proto !== "udp" || rcv.srcPort !== this.probePort || !data.startsWith(this.key)) return false;
    this.gauge.leaveUpTo(Number(data.slice(this.key.length)));
    return true;
  }

  private tick(): void {
    const now = this.now();
    this.loopLagMs = Math.max(0, now - this.lastTick - PROBE_INTERVAL_MS);
    this.lastTick = now;
    if (this.socket !== undefined && this.target !== undefined) {
      const seq = this.gauge.enter();
      this.socket.send(this.key + seq, this.target.port, this.target.ip);
    }
    this.onTick();
  }
}

/** A probe when `source` is not given, else the delay `source` says (tests). */
export interface OverloadOptions extends OverloadSettings {
  /** Replaces the probe: the queueing delay in ms, read on each message (tests force overload with it). */
  readonly delaySource?: () => number;
}

/**
 * Initial requests recently let through to a tenant's worker, by method and
 * top Via branch: while shedding, the front passes their retransmissions on
 * to the worker's transaction instead of answering them 503. Two
 * generations of `spanMs` each: memory is bounded by the request rate.
 */
export class RecentRequests {
  private current = new Set<string>();
  private previous = new Set<string>();
  private rotatedAt: number;

  constructor(
    private readonly now: () => number,
    private readonly spanMs: number,
  ) {
    this.rotatedAt = now();
  }

  add(msg: SipMessage): void {
    this.rotate();
    const key = requestKey(msg);
    if (key !== undefined) this.current.add(key);
  }

  has(msg: SipMessage): boolean {
    this.rotate();
    const key = requestKey(msg);
    return key !== undefined && (this.current.has(key) || this.previous.has(key));
  }

  private rotate(): void {
    const now = this.now();
    if (now - this.rotatedAt < this.spanMs) return;
    this.previous = now - this.rotatedAt < 2 * this.spanMs ? this.current : new Set();
    this.current = new Set();
    this.rotatedAt = now;
  }
}

/** §17.2.3: the top Via branch (with sent-by) and method identify a request's server transaction; Call-ID and CSeq stand in without an RFC 3261 branch. */
function requestKey(msg: SipMessage): string | undefined {
  const via = topVia(msg);
  if (via === undefined) return undefined;
  const id = via.branch?.startsWith("z9hG4bK") ? via.branch : `${msg.callId}\n${msg.cseq.seq}`;
  return `${msg.method}\n${via.host}:${via.port ?? ""}\n${id}`;
}
