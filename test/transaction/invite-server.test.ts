import { describe, expect, it } from "vitest";
import type { SipMessage } from "../../host/sip/message.js";
import { InviteServerTransaction, TRYING_DELAY_MS } from "../../host/transaction/invite-server.js";
import { resolveTimerConfig } from "../../host/transaction/timers.js";
import { buildAckForNonSuccess } from "../../host/transaction/requests.js";
import { parse, Recorder, request, responseText, times } from "./fixtures.js";

function setup(opts: { reliable?: boolean; trying100?: "after-200ms" | "immediately"; buildTrying?: (r: SipMessage) => string } = {}) {
  const rec = new Recorder();
  const invite = request();
  const tx = new InviteServerTransaction(invite, {
    timers: rec.clock,
    send: rec.send,
    reliable: opts.reliable ?? false,
    config: resolveTimerConfig(),
    user: rec.serverUser,
    trying100: opts.trying100,
    buildTrying: opts.buildTrying,
  });
  return { rec, invite, tx };
}

/** The hop-by-hop ACK the upstream client transaction would send for `final`. */
function ackFor(invite: SipMessage, finalText: string): SipMessage {
  return parse(buildAckForNonSuccess(invite, parse(finalText)));
}

describe("InviteServerTransaction: 100 Trying (RFC 3261 §17.2.1)", () => {
  it("sends 100 Trying 200 ms after creation when the TU has not answered", () => {
    const { rec, tx } = setup();
    expect(TRYING_DELAY_MS).toBe(200);
    expect(tx.state).toBe("proceeding");
    rec.clock.advance(199);
    expect(rec.sent).toHaveLength(0);
    rec.clock.advance(1);
    expect(rec.sent.map((s) => s.at)).toEqual([200]);
    const trying = parse(rec.sent[0]!.data);
    expect(trying.status).toBe(100);
    expect(trying.headers.find((h) => h.key === "via")!.value).toBe("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKclient1");
    expect(trying.headers.find((h) => h.key === "to")!.value).toBe("Bob <sip:bob@biloxi.example.com>"); // no tag on 100
    rec.clock.advance(60_000);
    expect(rec.sent).toHaveLength(1); // never retransmitted
  });

  it("sends no 100 when the TU answers within 200 ms", () => {
    const { rec, invite, tx } = setup();
    rec.clock.advance(150);
    expect(tx.respond(180, responseText(invite, 180, "Ringing"))).toBe(true);
    rec.clock.advance(10_000);
    expect(rec.sent.map((s) => [s.at, parse(s.data).status])).toEqual([[150, 180]]);
  });

  it("sends 100 Trying at once when configured (Kamailio relay behaviour)", () => {
    const { rec } = setup({ trying100: "immediately" });
    expect(rec.sent.map((s) => [s.at, parse(s.data).status])).toEqual([[0, 100]]);
    rec.clock.advance(1000);
    expect(rec.sent).toHaveLength(1);
  });

  it("uses the TU's 100 Trying builder", () => {
    const { rec, invite } = setup({ trying100: "immediately", buildTrying: (r) => responseText(r, 100, "Custom Trying") });
    expect(rec.sent[0]!.data).toBe(responseText(invite, 100, "Custom Trying"));
  });
});

describe("InviteServerTransaction over UDP", () => {
  it("'proceeding': a retransmitted INVITE gets the latest provisional response (none before one exists)", () => {
    const { rec, invite, tx } = setup();
    rec.clock.advance(100);
    tx.receiveRequest(invite);
    expect(rec.sent).toHaveLength(0);
    rec.clock.advance(100); // 100 Trying at 200
    rec.clock.advance(300);
    tx.receiveRequest(invite); // at 500: resend the 100
    tx.respond(180, responseText(invite, 180, "Ringing"));
    rec.clock.advance(1000);
    tx.receiveRequest(invite); // at 1500: resend the 180
    expect(rec.sent.map((s) => [s.at, parse(s.data).status])).toEqual([
      [200, 100],
      [500, 100],
      [500, 180],
      [1500, 180],
    ]);
    expect(tx.state).toBe("proceeding");
    expect(rec.events).toEqual([]);
  });

  it("300-699: timer G retransmits at T1 doubling up to T2, timer H times out at 64*T1", () => {
    const { rec, invite, tx } = setup({ trying100: "immediately" });
    rec.clock.advance(1000);
    const busy = responseText(invite, 486, "Busy Here");
    expect(tx.respond(486, busy)).toBe(true);
    expect(tx.state).toBe("completed");
    expect(tx.finalStatus).toBe(486);
    expect(tx.runningTimers.sort()).toEqual(["G", "H"]);
    rec.clock.advance(31_999);
    const expected = times(1000, [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
    expect(rec.sentTimes("SIP/2.0 486")).toEqual(expected); // 1.5 ... 32.5 s: original + 10 retransmissions
    expect(rec.sent.filter((s) => s.data.startsWith("SIP/2.0 486")).every((s) => s.data === busy)).toBe(true);
    expect(rec.events).toEqual([]);
    rec.clock.advance(1); // H at 1000 + 32 000
    expect(rec.events).toEqual(["timeout @33000", "terminated @33000"]);
    expect(tx.state).toBe("terminated");
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("'completed': a retransmitted INVITE gets the final response; further TU responses are dropped", () => {
    const { rec, invite, tx } = setup();
    tx.respond(404, responseText(invite, 404, "Not Found"));
    rec.clock.advance(300);
    tx.receiveRequest(invite);
    expect(rec.sentTimes("SIP/2.0 404")).toEqual([0, 300]);
    expect(tx.respond(180, responseText(invite, 180, "Ringing"))).toBe(false);
    expect(tx.respond(200, responseText(invite, 200, "OK"))).toBe(false);
    expect(tx.respond(500, responseText(invite, 500, "Error"))).toBe(false);
    expect(rec.sent).toHaveLength(2);
    expect(tx.state).toBe("completed");
  });

  it("ACK for the non-2xx final: 'confirmed', G and H stop, later ACKs and INVITEs absorbed, timer I = T4", () => {
    const { rec, invite, tx } = setup();
    const busy = responseText(invite, 486, "Busy Here");
    tx.respond(486, busy);
    rec.clock.advance(2000); // retransmissions at 500 and 1500
    const ack = ackFor(invite, busy);
    tx.receiveRequest(ack);
    expect(tx.state).toBe("confirmed");
    expect(tx.runningTimers).toEqual(["I"]);
    tx.receiveRequest(ack);
    tx.receiveRequest(invite);
    rec.clock.advance(4999);
    expect(tx.state).toBe("confirmed");
    rec.clock.advance(1); // 2000 + T4
    expect(tx.state).toBe("terminated");
    expect(rec.sentTimes("SIP/2.0 486")).toEqual([0, 500, 1500]);
    expect(rec.events).toEqual(["terminated @7000"]); // the ACK is absorbed, not reported
    expect(rec.acks).toHaveLength(0);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("RFC 6026 §7.1: a 2xx enters 'accepted' (timer L = 64*T1); INVITEs absorbed, TU 2xx sent, ACK to TU", () => {
    const { rec, invite, tx } = setup();
    rec.clock.advance(50);
    const ok = responseText(invite, 200, "OK");
    expect(tx.respond(200, ok)).toBe(true);
    expect(tx.state).toBe("accepted");
    expect(tx.runningTimers).toEqual(["L"]);
    rec.clock.advance(500);
    tx.receiveRequest(invite); // absorbed: nothing sent
    expect(rec.sent.map((s) => s.at)).toEqual([50]);
    expect(tx.respond(200, ok)).toBe(true); // TU (UAS) retransmission, or a 2xx of another fork
    expect(tx.respond(180, responseText(invite, 180, "Ringing"))).toBe(false);
    expect(tx.respond(486, responseText(invite, 486, "Busy"))).toBe(false);
    expect(rec.sent.map((s) => [s.at, parse(s.data).status])).toEqual([[50, 200], [550, 200]]);
    const ack = parse(buildAckForNonSuccess(invite, parse(ok)));
    tx.receiveRequest(ack);
    expect(rec.acks).toEqual([ack]);
    expect(tx.state).toBe("accepted");
    rec.clock.advance(31_499); // 32 049
    expect(tx.state).toBe("accepted");
    rec.clock.advance(1); // 50 + 32 000
    expect(rec.events).toEqual(["ack @550", "terminated @32050"]);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("a transport error is reported and the state kept (RFC 6026 §8.8); timers still run", () => {
    const { rec, invite, tx } = setup();
    rec.failSends = true;
    tx.respond(503, responseText(invite, 503, "Service Unavailable"));
    expect(tx.state).toBe("completed");
    expect(rec.events).toEqual(["transport-error @0"]);
    rec.failSends = false;
    rec.clock.advance(500); // timer G retransmits
    expect(rec.sentTimes("SIP/2.0 503")).toEqual([0, 500]);
    tx.transportError();
    expect(tx.state).toBe("completed");
    expect(rec.events).toEqual(["transport-error @0", "transport-error @500"]);
  });

  it("rejects invalid status codes and non-INVITE requests", () => {
    const { tx } = setup();
    expect(() => tx.respond(99, "x")).toThrow(RangeError);
    expect(() => tx.respond(700, "x")).toThrow(RangeError);
    const rec = new Recorder();
    expect(
      () => new InviteServerTransaction(request({ method: "BYE" }), { timers: rec.clock, send: rec.send, reliable: false, user: {} }),
    ).toThrow(TypeError);
  });
});

describe("InviteServerTransaction over TCP (reliable)", () => {
  it("no timer G: the final response is sent once; timer H still fires at 64*T1", () => {
    const { rec, invite, tx } = setup({ reliable: true, trying100: "immediately" });
    tx.respond(480, responseText(invite, 480, "Temporarily Unavailable"));
    expect(tx.runningTimers).toEqual(["H"]);
    rec.clock.advance(32_000);
    expect(rec.sentTimes("SIP/2.0 480")).toEqual([0]);
    expect(rec.events).toEqual(["timeout @32000", "terminated @32000"]);
  });

  it("timer I is zero: the ACK terminates the transaction at once", () => {
    const { rec, invite, tx } = setup({ reliable: true });
    const final = responseText(invite, 486, "Busy Here");
    tx.respond(486, final);
    rec.clock.advance(700);
    tx.receiveRequest(ackFor(invite, final));
    expect(tx.state).toBe("terminated");
    expect(rec.events).toEqual(["terminated @700"]);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("timer L is 64*T1 on any transport", () => {
    const { rec, invite, tx } = setup({ reliable: true });
    tx.respond(200, responseText(invite, 200, "OK"));
    rec.clock.advance(31_999);
    expect(tx.state).toBe("accepted");
    rec.clock.advance(1);
    expect(tx.state).toBe("terminated");
  });
});
