import { describe, expect, it } from "vitest";
import { NonInviteServerTransaction } from "../../host/transaction/non-invite-server.js";
import { resolveTimerConfig } from "../../host/transaction/timers.js";
import { parse, Recorder, request, responseText } from "./fixtures.js";

function setup(reliable = false, T1 = 500) {
  const rec = new Recorder();
  const req = request({ method: "REGISTER", uri: "sip:registrar.example.com" });
  const tx = new NonInviteServerTransaction(req, {
    timers: rec.clock,
    send: rec.send,
    reliable,
    config: resolveTimerConfig({ T1 }),
    user: rec.serverUser,
  });
  return { rec, req, tx };
}

const statuses = (rec: Recorder) => rec.sent.map((s) => [s.at, parse(s.data).status]);

describe("NonInviteServerTransaction over UDP (RFC 3261 §17.2.2)", () => {
  it("'trying': retransmissions are discarded and nothing is sent on its own", () => {
    const { rec, req, tx } = setup();
    expect(tx.state).toBe("trying");
    rec.clock.advance(500);
    tx.receiveRequest(req);
    rec.clock.advance(10_000);
    expect(rec.sent).toHaveLength(0);
    expect(tx.runningTimers).toEqual([]);
  });

  it("'proceeding': a provisional response is sent and resent for each retransmission", () => {
    const { rec, req, tx } = setup();
    expect(tx.respond(100, responseText(req, 100, "Trying"))).toBe(true);
    expect(tx.state).toBe("proceeding");
    rec.clock.advance(500);
    tx.receiveRequest(req);
    rec.clock.advance(1000);
    tx.receiveRequest(req);
    expect(statuses(rec)).toEqual([[0, 100], [500, 100], [1500, 100]]);
  });

  it("'completed': the final response is resent per retransmission, other finals dropped, timer J = 64*T1", () => {
    const { rec, req, tx } = setup();
    tx.respond(100, responseText(req, 100, "Trying"));
    rec.clock.advance(1000);
    expect(tx.respond(200, responseText(req, 200, "OK"))).toBe(true);
    expect(tx.state).toBe("completed");
    expect(tx.finalStatus).toBe(200);
    expect(tx.runningTimers).toEqual(["J"]);
    rec.clock.advance(3000);
    tx.receiveRequest(req);
    expect(tx.respond(500, responseText(req, 500, "Error"))).toBe(false);
    expect(tx.respond(100, responseText(req, 100, "Trying"))).toBe(false);
    expect(statuses(rec)).toEqual([[0, 100], [1000, 200], [4000, 200]]);
    rec.clock.advance(28_999); // 32 999
    expect(tx.state).toBe("completed");
    rec.clock.advance(1); // 1000 + 32 000
    expect(rec.events).toEqual(["terminated @33000"]);
    tx.receiveRequest(req); // after termination: nothing
    expect(rec.sent).toHaveLength(3);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("a final response straight from 'trying' completes, and timer J follows T1", () => {
    const { rec, req, tx } = setup(false, 100);
    tx.respond(404, responseText(req, 404, "Not Found"));
    expect(tx.state).toBe("completed");
    rec.clock.advance(6399);
    expect(tx.state).toBe("completed");
    rec.clock.advance(1);
    expect(tx.state).toBe("terminated");
  });

  it("ignores requests of another method", () => {
    const { rec, req, tx } = setup();
    tx.respond(200, responseText(req, 200, "OK"));
    tx.receiveRequest(request({ method: "OPTIONS" }));
    expect(rec.sent).toHaveLength(1);
  });

  it("a transport error informs the TU and terminates (§17.2.4)", () => {
    const { rec, req, tx } = setup();
    rec.failSends = true;
    rec.clock.advance(20);
    tx.respond(200, responseText(req, 200, "OK"));
    expect(rec.events).toEqual(["transport-error @20", "terminated @20"]);
    expect(tx.state).toBe("terminated");
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("refuses INVITE and ACK", () => {
    const rec = new Recorder();
    const opts = { timers: rec.clock, send: rec.send, reliable: false, user: {} };
    expect(() => new NonInviteServerTransaction(request({ method: "INVITE" }), opts)).toThrow(TypeError);
    expect(() => new NonInviteServerTransaction(request({ method: "ACK" }), opts)).toThrow(TypeError);
  });
});

describe("NonInviteServerTransaction over TCP (reliable)", () => {
  it("timer J is zero: terminated as soon as the final response is sent", () => {
    const { rec, req, tx } = setup(true);
    tx.respond(100, responseText(req, 100, "Trying"));
    expect(tx.state).toBe("proceeding");
    rec.clock.advance(300);
    tx.respond(200, responseText(req, 200, "OK"));
    expect(tx.state).toBe("terminated");
    expect(rec.events).toEqual(["terminated @300"]);
    expect(statuses(rec)).toEqual([[0, 100], [300, 200]]);
    expect(rec.clock.pendingTimers).toBe(0);
  });
});
