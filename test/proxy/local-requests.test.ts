/**
 * The server's own requests (host/proxy/local-requests.ts): what goes on
 * the wire (RFC 3261 §8.1.1 headers, our Via with a fresh branch), the
 * final response or timer F's 408 (§17.1.2.2) to the callback once, and
 * responses of ours kept away from everything else. Time is a FakeClock.
 */
import { describe, expect, it } from "vitest";
import type { ListenSocket } from "../../host/core/context.js";
import type { Destination } from "../../host/core/outbound.js";
import { LOCAL_BRANCH_PREFIX, LocalRequests, type LocalResult } from "../../host/proxy/local-requests.js";
import { parseMessage } from "../../host/sip/parser.js";
import type { SipMessage } from "../../host/sip/message.js";
import { FakeClock } from "../../host/transaction/index.js";

const SOCKET: ListenSocket = { proto: "udp", ip: "127.0.0.1", port: 5060 };

function uac(opts: { sendOk?: boolean } = {}) {
  const clock = new FakeClock();
  const sent: { dest: Destination; data: string; from: ListenSocket | undefined }[] = [];
  const requests = new LocalRequests({
    timers: clock,
    aliases: [],
    viaParams: ";ksr-tenant=t1",
    socketFor: (_proto, _host, forced) => forced ?? SOCKET,
    send: (dest, data, from) => {
      sent.push({ dest, data, from });
      return opts.sendOk ?? true;
    },
  });
  const results: LocalResult[] = [];
  return { clock, sent, requests, results, done: (r: LocalResult) => results.push(r) };
}

function parse(text: string): SipMessage {
  const r = parseMessage(text);
  if (!r.ok) throw new Error(`test message does not parse: ${JSON.stringify(r)}`);
  return r.message;
}

/** A response to the request text, copying its Via, From, To, Call-ID and CSeq (§8.2.6.2). */
function responseTo(request: string, status: number, reason: string): SipMessage {
  const header = (name: string): string => request.split("\r\n").find((l) => l.startsWith(`${name}: `))!;
  return parse(
    [`SIP/2.0 ${status} ${reason}`, header("Via"), header("From"), `${header("To")};tag=peer`, header("Call-ID"), header("CSeq"), "Content-Length: 0", "", ""].join(
      "\r\n",
    ),
  );
}

describe("LocalRequests", () => {
  it("sends an OPTIONS with our Via, a fresh branch and the §8.1.1 headers, and delivers the final response once", () => {
    const u = uac();
    u.requests.send({ method: "OPTIONS", uri: "sip:127.0.0.1:5071", from: "sip:dispatcher@localhost" }, u.done);
    u.requests.send({ method: "OPTIONS", uri: "sip:127.0.0.1:5071", from: "sip:dispatcher@localhost" }, u.done);
    expect(u.sent).toHaveLength(2);
    const [first, second] = u.sent.map((s) => s.data);
    const req = parse(first!);
    expect(req.kind === "request" && req.method).toBe("OPTIONS");
    expect(req.kind === "request" && req.requestUri).toBe("sip:127.0.0.1:5071");
    expect(first).toMatch(new RegExp(`^Via: SIP/2\\.0/UDP 127\\.0\\.0\\.1:5060;branch=${LOCAL_BRANCH_PREFIX}[0-9a-f]+;ksr-tenant=t1\\r$`, "m"));
    for (const h of ["Max-Forwards: 70", "From: <sip:dispatcher@localhost>;tag=", "To: <sip:127.0.0.1:5071>", "Call-ID: ", "CSeq: ", "Content-Length: 0"]) {
      expect(first).toContain(h);
    }
    const branchOf = (t: string): string => /branch=([^;\r]+)/.exec(t)![1]!;
    expect(branchOf(first!)).not.toBe(branchOf(second!));
    expect(u.sent[0]!.dest).toEqual({ proto: "udp", host: "127.0.0.1", port: 5071 });

    expect(u.requests.receiveResponse(responseTo(first!, 100, "Trying"))).toBe(true);
    expect(u.results).toEqual([]);
    expect(u.requests.receiveResponse(responseTo(first!, 200, "OK"))).toBe(true);
    // A retransmitted final response is ours too, and absorbed (§17.1.2.2 "completed").
    expect(u.requests.receiveResponse(responseTo(first!, 200, "OK"))).toBe(true);
    expect(u.results).toEqual([{ status: 200, reason: "OK" }]);
    expect(u.requests.receiveResponse(responseTo(second!, 404, "Not Found"))).toBe(true);
    expect(u.results).toEqual([
      { status: 200, reason: "OK" },
      { status: 404, reason: "Not Found" },
    ]);
  });

  it("retransmits on timer E over UDP and reports 408 when timer F fires; the transaction then leaves the table", () => {
    const u = uac();
    u.requests.send({ method: "OPTIONS", uri: "sip:127.0.0.1:5071", from: "sip:dispatcher@localhost" }, u.done);
    u.clock.advance(64 * 500 - 1);
    expect(u.results).toEqual([]);
    // E at 500, 1000, 2000, 4000 ms then every T2 = 4 s until F at 32 s: 10 retransmissions, each the same bytes.
    expect(u.sent.length).toBe(11);
    expect(new Set(u.sent.map((s) => s.data)).size).toBe(1);
    u.clock.advance(1);
    expect(u.results).toEqual([{ status: 408, reason: "no final response (timer F)" }]);
    expect(u.requests.size).toBe(0);
    // A response after the end is still ours: dropped, not handed to a script.
    expect(u.requests.receiveResponse(responseTo(u.sent[0]!.data, 200, "OK"))).toBe(true);
    expect(u.results).toHaveLength(1);
  });

  it("a request the transport or egress policy refuses ends at once with 503", () => {
    const u = uac({ sendOk: false });
    u.requests.send({ method: "OPTIONS", uri: "sip:10.1.2.3", from: "sip:dispatcher@localhost" }, u.done);
    expect(u.results).toEqual([{ status: 503, reason: "sending to udp:10.1.2.3:5060 failed" }]);
    expect(u.requests.size).toBe(0);
  });

  it("sends from the socket asked for, to the outbound proxy when one is given", () => {
    const u = uac();
    u.requests.send({ method: "OPTIONS", uri: "sip:a.example", from: "sip:d@localhost", socket: "udp:127.0.0.2:5080", outboundProxy: "sip:127.0.0.1:5090" }, u.done);
    expect(u.sent[0]!.from).toEqual({ proto: "udp", ip: "127.0.0.2", port: 5080 });
    expect(u.sent[0]!.dest).toEqual({ proto: "udp", host: "127.0.0.1", port: 5090 });
    expect(u.sent[0]!.data.startsWith("OPTIONS sip:a.example SIP/2.0\r\n")).toBe(true);
  });

  it("refuses what it cannot send as a non-INVITE request, without sending", () => {
    const u = uac();
    u.requests.send({ method: "INVITE", uri: "sip:127.0.0.1", from: "sip:d@localhost" }, u.done);
    u.requests.send({ method: "OPTIONS", uri: "sip:127.0.0.1\r\nX: 1", from: "sip:d@localhost" }, u.done);
    u.requests.send({ method: "OPTIONS", uri: "not a uri", from: "sip:d@localhost" }, u.done);
    expect(u.sent).toEqual([]);
    expect(u.results.map((r) => r.status)).toEqual([503, 503, 503]);
  });

  it("leaves responses to anyone else's requests alone", () => {
    const u = uac();
    const other = parse(
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    expect(u.requests.receiveResponse(other)).toBe(false);
  });
});
