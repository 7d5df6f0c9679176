import { describe, expect, it } from "vitest";
import { NonInviteClientTransaction } from "../../host/transaction/non-invite-client.js";
import { resolveTimerConfig } from "../../host/transaction/timers.js";
import { Recorder, request, requestText, response } from "./fixtures.js";

function setup(reliable = false, config = resolveTimerConfig()) {
  const rec = new Recorder();
  const req = request({ method: "OPTIONS" });
  const tx = new NonInviteClientTransaction(req, { timers: rec.clock, send: rec.send, reliable, config, user: rec.clientUser });
  return { rec, req, tx };
}

describe("NonInviteClientTransaction over UDP (RFC 3261 §17.1.2.2)", () => {
  it("retransmits with timer E doubling up to T2 and times out with timer F at 64*T1", () => {
    const { rec, tx } = setup();
    tx.start();
    expect(tx.state).toBe("trying");
    expect(tx.runningTimers.sort()).toEqual(["E", "F"]);
    rec.clock.advance(31_999);
    // intervals 0.5, 1, 2, 4, then capped at T2 = 4 s
    expect(rec.sentTimes("OPTIONS ")).toEqual([0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]);
    expect(rec.events).toEqual([]);
    rec.clock.advance(1);
    expect(rec.events).toEqual(["timeout @32000", "terminated @32000"]);
    expect(tx.state).toBe("terminated");
    expect(rec.clock.pendingTimers).toBe(0);
    expect(rec.sent).toHaveLength(11);
  });

  it("caps the interval at a configured T2", () => {
    const { rec, tx } = setup(false, resolveTimerConfig({ T1: 500, T2: 1000 }));
    tx.start();
    rec.clock.advance(6000);
    expect(rec.sentTimes("OPTIONS ")).toEqual([0, 500, 1500, 2500, 3500, 4500, 5500]);
  });

  it("in 'proceeding' timer E retransmits at T2 intervals until timer F", () => {
    const { rec, req, tx } = setup();
    tx.start();
    rec.clock.advance(600); // one retransmission at 500; E next due at 1500
    tx.receiveResponse(response(req, 100, "Trying"));
    expect(tx.state).toBe("proceeding");
    rec.clock.advance(31_400); // to 32 000
    // 1500 (E set earlier), then every T2: 5.5, 9.5 ... 29.5 s
    expect(rec.sentTimes("OPTIONS ")).toEqual([0, 500, 1500, 5500, 9500, 13_500, 17_500, 21_500, 25_500, 29_500]);
    expect(rec.events).toEqual(["response 100 @600", "timeout @32000", "terminated @32000"]);
  });

  it("passes every provisional response up while proceeding", () => {
    const { rec, req, tx } = setup();
    tx.start();
    tx.receiveResponse(response(req, 100, "Trying"));
    tx.receiveResponse(response(req, 100, "Trying"));
    expect(rec.responses.map((r) => r.status)).toEqual([100, 100]);
  });

  it("a final response in 'trying' completes; timer K = T4 absorbs retransmissions", () => {
    const { rec, req, tx } = setup();
    tx.start();
    rec.clock.advance(2000);
    tx.receiveResponse(response(req, 200, "OK"));
    expect(tx.state).toBe("completed");
    expect(tx.runningTimers).toEqual(["K"]);
    rec.clock.advance(1000);
    tx.receiveResponse(response(req, 200, "OK"));
    tx.receiveResponse(response(req, 100, "Trying"));
    rec.clock.advance(3999); // 6999
    expect(tx.state).toBe("completed");
    rec.clock.advance(1); // 2000 + T4
    expect(rec.events).toEqual(["response 200 @2000", "terminated @7000"]);
    expect(rec.sentTimes("OPTIONS ")).toEqual([0, 500, 1500]);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("a final response in 'proceeding' completes too", () => {
    const { rec, req, tx } = setup();
    tx.start();
    tx.receiveResponse(response(req, 100, "Trying"));
    rec.clock.advance(4000);
    tx.receiveResponse(response(req, 404, "Not Found"));
    expect(tx.state).toBe("completed");
    rec.clock.advance(5000);
    expect(rec.events).toEqual(["response 100 @0", "response 404 @4000", "terminated @9000"]);
  });

  it("a transport error on a retransmission informs the TU and terminates", () => {
    const { rec, tx } = setup();
    tx.start();
    rec.clock.advance(1000);
    rec.failSends = true;
    rec.clock.advance(500);
    expect(rec.events).toEqual(["transport-error @1500", "terminated @1500"]);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("refuses INVITE and ACK (ACK forms no transaction, §17)", () => {
    const rec = new Recorder();
    const opts = { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser };
    expect(() => new NonInviteClientTransaction(requestText({ method: "INVITE" }), opts)).toThrow(TypeError);
    expect(() => new NonInviteClientTransaction(requestText({ method: "ACK" }), opts)).toThrow(TypeError);
    expect(new NonInviteClientTransaction(requestText({ method: "BYE" }), opts).method).toBe("BYE");
  });
});

describe("NonInviteClientTransaction over TCP (reliable)", () => {
  it("never retransmits; timer F still fires at 64*T1", () => {
    const { rec, tx } = setup(true);
    tx.start();
    expect(tx.runningTimers).toEqual(["F"]);
    rec.clock.advance(32_000);
    expect(rec.sent.map((s) => s.at)).toEqual([0]);
    expect(rec.events).toEqual(["timeout @32000", "terminated @32000"]);
  });

  it("timer K is zero: terminated right after the final response reaches the TU", () => {
    const { rec, req, tx } = setup(true);
    tx.start();
    rec.clock.advance(250);
    tx.receiveResponse(response(req, 200, "OK"));
    expect(rec.events).toEqual(["response 200 @250", "terminated @250"]);
    expect(rec.clock.pendingTimers).toBe(0);
  });
});
