import { describe, expect, it } from "vitest";
import { buildAckForNonSuccess, buildCancel } from "../../host/transaction/requests.js";
import { InviteClientTransaction } from "../../host/transaction/invite-client.js";
import { parse, Recorder, request, response, sipText, SDP } from "./fixtures.js";

const ROUTED = {
  uri: "sip:bob@192.0.2.20:5062;transport=udp",
  via: "SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bKproxy7;rport",
  lowerVias: ["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKuac1;received=192.0.2.10"],
  routes: ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"],
  maxForwards: 69,
  body: SDP,
};

describe("ACK for a non-2xx final response (RFC 3261 §17.1.1.3)", () => {
  it("copies Request-URI, Call-ID, From, CSeq number and Routes; takes To from the response; one Via", () => {
    const invite = request(ROUTED);
    const busy = response(invite, 486, "Busy Here", "callee-77");
    expect(buildAckForNonSuccess(invite, busy)).toBe(
      sipText([
        "ACK sip:bob@192.0.2.20:5062;transport=udp SIP/2.0",
        "Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bKproxy7;rport",
        "Route: <sip:p1.example.com;lr>",
        "Route: <sip:p2.example.com;lr>",
        "Max-Forwards: 69",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "To: Bob <sip:bob@biloxi.example.com>;tag=callee-77",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 ACK",
        "Content-Length: 0",
      ]),
    );
  });

  it("keeps only the first value of a comma-separated top Via field, and defaults Max-Forwards to 70", () => {
    const invite = parse(
      sipText([
        "INVITE sip:bob@example.com SIP/2.0",
        "v: SIP/2.0/TCP a.example.com;branch=z9hG4bKtop , SIP/2.0/UDP b.example.com;branch=z9hG4bKlow",
        "f: <sip:alice@example.com>;tag=f1",
        "t: <sip:bob@example.com>",
        "i: cid-9",
        "CSeq: 7 INVITE",
        "l: 0",
      ]),
    );
    const ack = parse(buildAckForNonSuccess(invite, response(invite, 404, "Not Found", "t9")));
    expect(ack.method).toBe("ACK");
    expect(ack.headers.filter((h) => h.key === "via").map((h) => h.value)).toEqual(["SIP/2.0/TCP a.example.com;branch=z9hG4bKtop"]);
    expect(ack.headers.find((h) => h.key === "max-forwards")!.value).toBe("70");
    expect(ack.headers.find((h) => h.key === "from")!.value).toBe("<sip:alice@example.com>;tag=f1");
    expect(ack.headers.find((h) => h.key === "to")!.value).toBe("<sip:bob@example.com>;tag=t9");
    expect(ack.callId).toBe("cid-9");
    expect(ack.cseq).toEqual({ seq: 7, method: "ACK" });
    expect(ack.body).toBe("");
  });

  it("is what the INVITE client transaction sends", () => {
    const rec = new Recorder();
    const invite = request(ROUTED);
    const tx = new InviteClientTransaction(invite, { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser });
    tx.start();
    const decline = response(invite, 603, "Decline", "x1");
    tx.receiveResponse(decline);
    expect(rec.sent[1]!.data).toBe(buildAckForNonSuccess(invite, decline));
  });
});

describe("CANCEL (RFC 3261 §9.1)", () => {
  it("copies Request-URI, Call-ID, To, From, CSeq number, top Via and Routes; adds extra headers", () => {
    const invite = request(ROUTED);
    expect(buildCancel(invite, ['Reason: SIP;cause=480;text="Timeout"'])).toBe(
      sipText([
        "CANCEL sip:bob@192.0.2.20:5062;transport=udp SIP/2.0",
        "Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bKproxy7;rport",
        "Route: <sip:p1.example.com;lr>",
        "Route: <sip:p2.example.com;lr>",
        "Max-Forwards: 69",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "To: Bob <sip:bob@biloxi.example.com>",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 CANCEL",
        'Reason: SIP;cause=480;text="Timeout"',
        "Content-Length: 0",
      ]),
    );
  });

  it("refuses to derive from a response", () => {
    const invite = request();
    expect(() => buildCancel(response(invite, 180, "Ringing"))).toThrow(TypeError);
  });
});
