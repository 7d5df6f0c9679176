import { describe, expect, it } from "vitest";
import { InviteClientTransaction } from "../../host/transaction/invite-client.js";
import { resolveTimerConfig } from "../../host/transaction/timers.js";
import { Recorder, request, requestText, response, times } from "./fixtures.js";

function setup(reliable = false, config = resolveTimerConfig()) {
  const rec = new Recorder();
  const invite = request();
  const tx = new InviteClientTransaction(invite, {
    timers: rec.clock,
    send: rec.send,
    reliable,
    config,
    user: rec.clientUser,
  });
  return { rec, invite, tx };
}

describe("InviteClientTransaction over UDP (RFC 3261 §17.1.1.2)", () => {
  it("sends the INVITE on start and arms timers A and B in 'calling'", () => {
    const { rec, tx } = setup();
    expect(rec.sent).toHaveLength(0);
    tx.start();
    expect(tx.state).toBe("calling");
    expect(rec.sent.map((s) => s.at)).toEqual([0]);
    expect(rec.sent[0]!.data).toBe(requestText());
    expect(tx.runningTimers.sort()).toEqual(["A", "B"]);
    expect(() => tx.start()).toThrow(/already started/);
  });

  it("retransmits at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s and times out with timer B at 32 s", () => {
    const { rec, tx } = setup();
    tx.start();
    rec.clock.advance(31_999);
    expect(rec.sentTimes("INVITE ")).toEqual([0, 500, 1500, 3500, 7500, 15_500, 31_500]);
    expect(tx.state).toBe("calling");
    expect(rec.events).toEqual([]);
    rec.clock.advance(1);
    expect(rec.events).toEqual(["timeout @32000", "terminated @32000"]);
    expect(tx.state).toBe("terminated");
    expect(rec.clock.pendingTimers).toBe(0);
    rec.clock.advance(100_000);
    expect(rec.sent).toHaveLength(7);
    // every retransmission is the same bytes as the original
    for (const s of rec.sent) expect(s.data).toBe(rec.sent[0]!.data);
  });

  it("enters 'proceeding' on a provisional response: retransmissions and timer B stop", () => {
    const { rec, invite, tx } = setup();
    tx.start();
    rec.clock.advance(700);
    tx.receiveResponse(response(invite, 100, "Trying"));
    expect(tx.state).toBe("proceeding");
    expect(tx.runningTimers).toEqual([]);
    rec.clock.advance(5000);
    tx.receiveResponse(response(invite, 180, "Ringing"));
    rec.clock.advance(200_000);
    expect(rec.sentTimes("INVITE ")).toEqual([0, 500]);
    expect(rec.events).toEqual(["response 100 @700", "response 180 @5700"]);
    expect(tx.state).toBe("proceeding");
  });

  it("on 300-699 in 'calling': passes it up, sends the ACK, absorbs retransmissions, timer D = 32 s", () => {
    const { rec, invite, tx } = setup();
    tx.start();
    rec.clock.advance(1000);
    tx.receiveResponse(response(invite, 486, "Busy Here"));
    expect(tx.state).toBe("completed");
    expect(tx.runningTimers).toEqual(["D"]);
    expect(rec.sentTimes("ACK ")).toEqual([1000]);
    expect(rec.sent[rec.sent.length - 1]!.data).toBe(tx.ackData);
    expect(rec.events).toEqual(["response 486 @1000"]);

    rec.clock.advance(1000);
    tx.receiveResponse(response(invite, 486, "Busy Here"));
    rec.clock.advance(2000);
    tx.receiveResponse(response(invite, 486, "Busy Here"));
    expect(rec.sentTimes("ACK ")).toEqual([1000, 2000, 4000]);
    expect(rec.events).toEqual(["response 486 @1000"]);

    // responses other than the final one's retransmissions are ignored
    tx.receiveResponse(response(invite, 180, "Ringing"));
    tx.receiveResponse(response(invite, 200, "OK"));
    expect(rec.events).toEqual(["response 486 @1000"]);

    rec.clock.advance(28_999); // 32 999
    expect(tx.state).toBe("completed");
    rec.clock.advance(1); // D fires at 1000 + 32 000
    expect(rec.events).toEqual(["response 486 @1000", "terminated @33000"]);
    expect(rec.sentTimes("INVITE ")).toEqual([0, 500]);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("on 300-699 in 'proceeding' behaves the same", () => {
    const { rec, invite, tx } = setup();
    tx.start();
    tx.receiveResponse(response(invite, 180, "Ringing"));
    rec.clock.advance(10_000);
    tx.receiveResponse(response(invite, 603, "Decline"));
    expect(tx.state).toBe("completed");
    expect(rec.sentTimes("ACK ")).toEqual([10_000]);
    rec.clock.advance(32_000);
    expect(rec.events).toEqual(["response 180 @0", "response 603 @10000", "terminated @42000"]);
  });

  it("RFC 6026 §7.2: a 2xx enters 'accepted' for timer M = 64*T1 and every 2xx there goes up", () => {
    const { rec, invite, tx } = setup();
    tx.start();
    rec.clock.advance(2000);
    tx.receiveResponse(response(invite, 200, "OK", "fork-a"));
    expect(tx.state).toBe("accepted");
    expect(tx.runningTimers).toEqual(["M"]);
    expect(rec.sentTimes("ACK ")).toEqual([]); // the ACK for a 2xx is the TU's
    rec.clock.advance(500);
    tx.receiveResponse(response(invite, 200, "OK", "fork-a")); // retransmission
    tx.receiveResponse(response(invite, 200, "OK", "fork-b")); // another fork
    tx.receiveResponse(response(invite, 180, "Ringing")); // no transition: discarded
    tx.receiveResponse(response(invite, 486, "Busy Here")); // discarded
    expect(rec.responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(rec.sentTimes("INVITE ")).toEqual([0, 500, 1500]);
    rec.clock.advance(31_499); // 33 999
    expect(tx.state).toBe("accepted");
    rec.clock.advance(1); // 2000 + 32 000
    expect(tx.state).toBe("terminated");
    expect(rec.events[rec.events.length - 1]).toBe("terminated @34000");
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("uses the configured T1: A doubles from T1, B at 64*T1, D at least 32 s", () => {
    const { rec, tx } = setup(false, resolveTimerConfig({ T1: 100 }));
    tx.start();
    rec.clock.advance(6400);
    expect(rec.sentTimes("INVITE ")).toEqual(times(0, [100, 200, 400, 800, 1600, 3200]));
    expect(rec.events).toEqual(["timeout @6400", "terminated @6400"]);

    const slow = setup(false, resolveTimerConfig({ T1: 1000, T2: 4000 }));
    slow.tx.start();
    slow.tx.receiveResponse(response(slow.invite, 404, "Not Found"));
    slow.rec.clock.advance(63_999);
    expect(slow.tx.state).toBe("completed");
    slow.rec.clock.advance(1); // D = max(32 s, 64*T1) so the server's timer H window is covered
    expect(slow.tx.state).toBe("terminated");
  });

  it("a transport error on the first send informs the TU and terminates at once", () => {
    const { rec, tx } = setup();
    rec.failSends = true;
    tx.start();
    expect(tx.state).toBe("terminated");
    expect(rec.events).toEqual(["transport-error @0", "terminated @0"]);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("a transport error on a retransmission terminates the transaction (§17.1.4)", () => {
    const { rec, tx } = setup();
    tx.start();
    rec.failSends = true;
    rec.clock.advance(500);
    expect(rec.events).toEqual(["transport-error @500", "terminated @500"]);
    rec.clock.advance(60_000);
    expect(rec.sent).toHaveLength(2);
  });

  it("a failed ACK still delivers the response, then reports the transport error", () => {
    const { rec, invite, tx } = setup();
    tx.start();
    rec.failSends = true;
    tx.receiveResponse(response(invite, 500, "Server Error"));
    expect(rec.events).toEqual(["response 500 @0", "transport-error @0", "terminated @0"]);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("an asynchronous transport error (transportError()) terminates", () => {
    const { rec, tx } = setup();
    tx.start();
    rec.clock.advance(100);
    tx.transportError();
    expect(rec.events).toEqual(["transport-error @100", "terminated @100"]);
    tx.transportError(); // no effect once terminated
    expect(rec.events).toHaveLength(2);
  });

  it("accepts the request as text and refuses non-INVITE requests", () => {
    const rec = new Recorder();
    const opts = { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser };
    const tx = new InviteClientTransaction(requestText(), opts);
    expect(tx.branch).toBe("z9hG4bKclient1");
    expect(tx.method).toBe("INVITE");
    expect(() => new InviteClientTransaction(requestText({ method: "OPTIONS" }), opts)).toThrow(TypeError);
    expect(() => new InviteClientTransaction("garbage", opts)).toThrow(/no SIP\/2\.0 Request-Line/);
    const noVia = requestText()
      .split("\r\n")
      .filter((line) => !/^via:/i.test(line))
      .join("\r\n");
    expect(() => new InviteClientTransaction(noVia, opts)).toThrow(/no usable Via/);
  });

  it("takes method and branch from the text and parses the rest only when asked (the ACK of a non-2xx needs it)", () => {
    const rec = new Recorder();
    const folded = requestText().replace(/^Via: (.*)$/m, "v:\r\n  $1");
    const tx = new InviteClientTransaction(folded, { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser });
    expect(tx.branch).toBe("z9hG4bKclient1");
    expect(tx.request.method).toBe("INVITE");
    expect(tx.request.callId).toBe(request().callId);
  });
});

describe("InviteClientTransaction over TCP (reliable)", () => {
  it("never retransmits; timer B still times out at 64*T1", () => {
    const { rec, tx } = setup(true);
    tx.start();
    expect(tx.runningTimers).toEqual(["B"]);
    rec.clock.advance(32_000);
    expect(rec.sent.map((s) => s.at)).toEqual([0]);
    expect(rec.events).toEqual(["timeout @32000", "terminated @32000"]);
  });

  it("timer D is zero: a non-2xx final is ACKed, passed up, and the transaction terminates", () => {
    const { rec, invite, tx } = setup(true);
    tx.start();
    rec.clock.advance(3000);
    tx.receiveResponse(response(invite, 404, "Not Found"));
    expect(rec.sentTimes("ACK ")).toEqual([3000]);
    expect(rec.events).toEqual(["response 404 @3000", "terminated @3000"]);
    expect(tx.state).toBe("terminated");
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("a 2xx still holds 'accepted' for timer M = 64*T1 (RFC 6026 §7.2 applies to all transports)", () => {
    const { rec, invite, tx } = setup(true);
    tx.start();
    tx.receiveResponse(response(invite, 200, "OK"));
    expect(tx.state).toBe("accepted");
    rec.clock.advance(31_999);
    expect(tx.state).toBe("accepted");
    rec.clock.advance(1);
    expect(tx.state).toBe("terminated");
  });
});
