/**
 * The load-shedding core (host/core/overload.ts) on a fake clock and a
 * delay the test sets: the decision per message, the hysteresis, the
 * counters and the per-second log line.
 */
import { describe, expect, test } from "vitest";
import type { ReceiveInfo } from "../../host/core/context.js";
import {
  DEFAULT_OVERLOAD_SUSTAIN_MS,
  DelayGauge,
  LoadShedder,
  RecentRequests,
  SHED_REPLIES_PER_SOURCE_PER_S,
  SHED_TAG_PREFIX,
  isInitialRequest,
  overloadAction,
  type ShedderHost,
} from "../../host/core/overload.js";
import type { SipMessage } from "../../host/sip/message.js";
import { parseMessage } from "../../host/sip/parser.js";

const RCV: ReceiveInfo = { proto: "udp", srcIp: "127.0.0.1", srcPort: 5070, localIp: "127.0.0.1", localPort: 5060, connectionId: -1 };

function request(method: string, opts: { toTag?: string; branch?: string } = {}): SipMessage {
  const text =
    [
      `${method} sip:bob@example.test SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:5070;branch=${opts.branch ?? "z9hG4bK-1"}`,
      "Max-Forwards: 70",
      "From: <sip:alice@example.test>;tag=a1",
      `To: <sip:bob@example.test>${opts.toTag !== undefined ? `;tag=${opts.toTag}` : ""}`,
      "Call-ID: c1@example.test",
      `CSeq: 1 ${method}`,
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n";
  const parsed = parseMessage(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.message;
}

function response(status: number): SipMessage {
  const text =
    [
      `SIP/2.0 ${status} Whatever`,
      "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-2",
      "From: <sip:alice@example.test>;tag=a1",
      "To: <sip:bob@example.test>;tag=b1",
      "Call-ID: c1@example.test",
      "CSeq: 1 INVITE",
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n";
  const parsed = parseMessage(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.message;
}

describe("overloadAction", () => {
  test("new INVITE, REGISTER and other out-of-dialog requests are sheddable; ACK and CANCEL are not", () => {
    for (const method of ["INVITE", "REGISTER", "OPTIONS", "SUBSCRIBE", "MESSAGE"]) {
      expect(isInitialRequest(request(method))).toBe(true);
      expect(overloadAction(request(method), true)).toBe("transaction-or-shed");
    }
    expect(overloadAction(request("ACK"), true)).toBe("transaction-or-serve");
    expect(overloadAction(request("CANCEL"), true)).toBe("transaction-or-serve");
  });

  test("in-dialog requests and responses are never shed", () => {
    expect(overloadAction(request("BYE", { toTag: "b1" }), true)).toBe("transaction-or-serve");
    expect(overloadAction(request("INVITE", { toTag: "b1" }), true)).toBe("transaction-or-serve");
    expect(overloadAction(response(200), true)).toBe("serve");
    expect(overloadAction(response(180), true)).toBe("serve");
  });

  test("without overload everything is served, but the ACK of a shed 503 is absorbed", () => {
    expect(overloadAction(request("INVITE"), false)).toBe("serve");
    expect(overloadAction(request("ACK", { toTag: "b1" }), false)).toBe("serve");
    expect(overloadAction(request("ACK", { toTag: `${SHED_TAG_PREFIX}0a1b` }), false)).toBe("absorb-ack");
    expect(overloadAction(request("ACK", { toTag: `${SHED_TAG_PREFIX}0a1b` }), true)).toBe("absorb-ack");
  });
});

describe("DelayGauge", () => {
  test("the delay is that of the last entry out, or the age of the oldest still in", () => {
    let now = 0;
    const gauge = new DelayGauge(() => now);
    expect(gauge.delayMs()).toBe(0);
    const first = gauge.enter();
    now = 10;
    const second = gauge.enter();
    now = 40;
    expect(gauge.delayMs()).toBe(40); // the first is 40 ms old and not out
    gauge.leaveUpTo(first);
    expect(gauge.delayMs()).toBe(40); // it came out 40 ms late; the second is 30 ms old
    now = 45;
    gauge.leaveUpTo(second);
    expect(gauge.delayMs()).toBe(35);
    expect(gauge.size).toBe(0);
  });

  test("an entry coming out passes every earlier one (lost probes); unknown numbers are ignored", () => {
    let now = 0;
    const gauge = new DelayGauge(() => now);
    gauge.enter();
    gauge.enter();
    const third = gauge.enter();
    now = 5;
    gauge.leaveUpTo(third);
    expect(gauge.size).toBe(0);
    expect(gauge.delayMs()).toBe(5);
    gauge.leaveUpTo(third); // already out
    gauge.leaveUpTo(99);
    gauge.leaveUpTo(Number.NaN);
    expect(gauge.delayMs()).toBe(5);
  });

  test("leave(n) takes the n oldest, as a worker reports handled messages", () => {
    let now = 0;
    const gauge = new DelayGauge(() => now);
    for (let i = 0; i < 5; i++) {
      gauge.enter();
      now += 10;
    }
    gauge.leave(2); // entered at 0 and 10, out at 50
    expect(gauge.size).toBe(3);
    expect(gauge.delayMs()).toBe(40); // last out 40 ms late; the oldest in (20) is 30 ms old
    gauge.leave(10);
    expect(gauge.size).toBe(0);
    expect(gauge.delayMs()).toBe(10);
    gauge.reset();
    expect(gauge.delayMs()).toBe(0);
  });

  test("stays correct over many entries (compaction)", () => {
    let now = 0;
    const gauge = new DelayGauge(() => now);
    for (let i = 0; i < 5000; i++) {
      const seq = gauge.enter();
      now += 1;
      gauge.leaveUpTo(seq);
    }
    expect(gauge.size).toBe(0);
    expect(gauge.delayMs()).toBe(1);
    const seq = gauge.enter();
    now += 7;
    gauge.leaveUpTo(seq);
    expect(gauge.delayMs()).toBe(7);
  });
});

interface Recorder extends ShedderHost {
  readonly replies: { method: string; retryAfterS: number; toTag: string }[];
  readonly lines: { level: string; text: string }[];
  transactions: Map<SipMessage, "absorbed" | "pass">;
}

function recorder(): Recorder {
  const replies: Recorder["replies"] = [];
  const lines: Recorder["lines"] = [];
  const host: Recorder = {
    replies,
    lines,
    transactions: new Map(),
    toTransaction: (msg) => host.transactions.get(msg) ?? "new",
    sendShedReply: (msg, _rcv, retryAfterS, toTag) => replies.push({ method: msg.method, retryAfterS, toTag }),
    log: (level, text) => lines.push({ level, text }),
  };
  return host;
}

/** A shedder that starts at the first reading over the threshold (sustainMs 0) unless told otherwise. */
function shedderAt(thresholdMs = 100, sustainMs = 0) {
  const clock = { now: 0, delay: 0 };
  const host = recorder();
  const shedder = new LoadShedder({ thresholdMs, sustainMs }, () => clock.delay, () => clock.now, host);
  return { clock, host, shedder };
}

describe("LoadShedder", () => {
  test("below the threshold nothing is shed", () => {
    const { clock, host, shedder } = shedderAt(100);
    clock.delay = 99;
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(false);
    expect(shedder.shedding).toBe(false);
    expect(host.replies).toEqual([]);
    expect(host.lines).toEqual([]);
  });

  test("over it: new INVITE and REGISTER get 503 with Retry-After and a recognisable To tag; in-dialog requests and responses pass", () => {
    const { clock, host, shedder } = shedderAt(100);
    clock.delay = 150;
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(true);
    expect(shedder.intercept(request("REGISTER"), RCV)).toBe(true);
    expect(shedder.intercept(request("BYE", { toTag: "b1" }), RCV)).toBe(false);
    expect(shedder.intercept(request("CANCEL"), RCV)).toBe(false);
    expect(shedder.intercept(request("ACK", { toTag: "b1" }), RCV)).toBe(false);
    expect(shedder.intercept(response(200), RCV)).toBe(false);
    expect(host.replies.map((r) => r.method)).toEqual(["INVITE", "REGISTER"]);
    expect(host.replies.every((r) => r.retryAfterS === 1 && r.toTag.startsWith(SHED_TAG_PREFIX))).toBe(true);
    expect(host.lines[0]!.text).toMatch(/^overload: queueing delay 150 ms reached the 100 ms threshold/);
  });

  test("a retransmission goes to its transaction, not a 503; a request of a transaction elsewhere is passed on", () => {
    const { clock, host, shedder } = shedderAt(100);
    clock.delay = 500;
    const retransmission = request("INVITE", { branch: "z9hG4bK-old" });
    const elsewhere = request("INVITE", { branch: "z9hG4bK-worker" });
    const bye = request("BYE", { toTag: "b1" });
    host.transactions.set(retransmission, "absorbed");
    host.transactions.set(elsewhere, "pass");
    host.transactions.set(bye, "absorbed");
    expect(shedder.intercept(retransmission, RCV)).toBe(true);
    expect(shedder.intercept(elsewhere, RCV)).toBe(false);
    expect(shedder.intercept(bye, RCV)).toBe(true);
    expect(host.replies).toEqual([]);
    expect(shedder.counters().absorbed).toBe(2);
  });

  test("hysteresis: shedding goes on down to half the threshold, then ends with a line", () => {
    const { clock, host, shedder } = shedderAt(100);
    clock.delay = 100;
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(true);
    clock.now = 200;
    clock.delay = 60;
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(true);
    clock.now = 400;
    clock.delay = 49;
    shedder.poll();
    expect(shedder.shedding).toBe(false);
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(false);
    expect(host.lines.at(-1)).toEqual({ level: "notice", text: "overload over after 0.4 s: 2 request(s) shed (queueing delay 49 ms)" });
    // The partial window was logged before the end.
    expect(host.lines.at(-2)!.text).toBe("shed 2 INVITE, 0 REGISTER in the last 0.4 s (queueing delay 49 ms)");
    expect(shedder.counters().episodes).toBe(1);
  });

  test("one line a second while shedding, with the counts of that second", () => {
    const { clock, host, shedder } = shedderAt(100);
    clock.delay = 300;
    for (let i = 0; i < 3; i++) shedder.intercept(request("INVITE"), RCV);
    shedder.intercept(request("REGISTER"), RCV);
    shedder.intercept(request("OPTIONS"), RCV);
    clock.now = 999;
    shedder.poll();
    expect(host.lines).toHaveLength(1); // the start line only
    clock.now = 1000;
    shedder.poll();
    expect(host.lines.at(-1)).toEqual({ level: "warn", text: "shed 3 INVITE, 1 REGISTER, 1 other in the last second (queueing delay 300 ms)" });
    shedder.intercept(request("INVITE"), RCV);
    clock.now = 2000;
    clock.delay = 250;
    shedder.poll();
    expect(host.lines.at(-1)!.text).toBe("shed 1 INVITE, 0 REGISTER in the last second (queueing delay 250 ms)");
    expect(shedder.counterLine()).toBe("overload: shedding=yes overload-episodes=1 shed=INVITE:4,REGISTER:1,OPTIONS:1 absorbed-retransmissions=0 absorbed-acks-of-503=0 shed-unanswered=0");
  });

  test(`a source gets at most ${SHED_REPLIES_PER_SOURCE_PER_S} 503s a second; past it its requests are dropped unanswered and counted`, () => {
    const { clock, host, shedder } = shedderAt(100);
    clock.delay = 300;
    for (let i = 0; i < SHED_REPLIES_PER_SOURCE_PER_S + 5; i++) expect(shedder.intercept(request("OPTIONS"), RCV)).toBe(true);
    // Another source still gets its answer.
    shedder.intercept(request("INVITE"), { ...RCV, srcIp: "192.0.2.99" });
    expect(host.replies).toHaveLength(SHED_REPLIES_PER_SOURCE_PER_S + 1);
    clock.now = 1000;
    shedder.poll();
    expect(host.lines.at(-1)!.text).toContain(`; 5 dropped unanswered (over ${SHED_REPLIES_PER_SOURCE_PER_S} 503s/s to one source)`);
    // A new second: the flooding source is answered again, up to the limit.
    shedder.intercept(request("OPTIONS"), RCV);
    expect(host.replies).toHaveLength(SHED_REPLIES_PER_SOURCE_PER_S + 2);
    expect(shedder.counterLine()).toContain("shed-unanswered=5");
  });

  test("the ACK of a shed 503 is absorbed and counted, shedding or not", () => {
    const { host, shedder } = shedderAt(100);
    expect(shedder.intercept(request("ACK", { toTag: `${SHED_TAG_PREFIX}1234` }), RCV)).toBe(true);
    expect(shedder.counters().shedAcks).toBe(1);
    expect(host.replies).toEqual([]);
  });

  test("shedding starts only once the delay has stayed over the threshold for sustainMs: one stall is no overload", () => {
    const { clock, host, shedder } = shedderAt(100, DEFAULT_OVERLOAD_SUSTAIN_MS);
    clock.delay = 300; // a stall: over the threshold once...
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(false);
    clock.now += 10;
    clock.delay = 20; // ...and drained at the next reading
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(false);
    clock.now += 100;
    clock.delay = 300; // a queue that stays: counted from its first reading over
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(false);
    clock.now += DEFAULT_OVERLOAD_SUSTAIN_MS - 1;
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(false);
    clock.now += 1;
    expect(shedder.intercept(request("INVITE"), RCV)).toBe(true);
    expect(shedder.shedding).toBe(true);
    expect(host.replies.map((r) => r.method)).toEqual(["INVITE"]);
  });

  test("a threshold that is not a positive number is refused", () => {
    expect(() => new LoadShedder({ thresholdMs: 0 }, () => 0, () => 0, recorder())).toThrow(/positive/);
    expect(() => new LoadShedder({ thresholdMs: Number.NaN }, () => 0, () => 0, recorder())).toThrow(/positive/);
  });
});

describe("RecentRequests", () => {
  test("remembers a request by method and branch for one to two spans", () => {
    let now = 0;
    const recent = new RecentRequests(() => now, 1000);
    const invite = request("INVITE", { branch: "z9hG4bK-a" });
    recent.add(invite);
    expect(recent.has(request("INVITE", { branch: "z9hG4bK-a" }))).toBe(true);
    expect(recent.has(request("INVITE", { branch: "z9hG4bK-b" }))).toBe(false);
    expect(recent.has(request("CANCEL", { branch: "z9hG4bK-a" }))).toBe(false);
    now = 1500;
    expect(recent.has(invite)).toBe(true); // previous generation
    now = 2600;
    expect(recent.has(invite)).toBe(false);
    recent.add(invite);
    now = 10_000; // a long quiet gap forgets both generations
    expect(recent.has(invite)).toBe(false);
  });
});
