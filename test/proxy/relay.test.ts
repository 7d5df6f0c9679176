/**
 * Stateful relaying through the proxy core (RFC 3261 §16 over §17) with a
 * fake clock and a recording transport: a call's requests and responses,
 * retransmissions, ACK handling and the tm return codes scripts branch on.
 */
import { describe, expect, test } from "vitest";
import { cancelFor, header, headers, ksr, parse, ProxyTestBed, request, responseTo, UAC, type TestRoutes } from "./testbed.js";

const UAS_IP = "192.0.2.20";

/** The request route of Kamailio's basic KEMI example, reduced to the stateful relay part. */
const relayRoutes: TestRoutes = {
  ksr_request_route(ctx) {
    const KSR = ksr(ctx);
    if (!KSR.is_ACK()) {
      if (KSR.tm.t_check_trans() === 0) KSR.x.exit();
    }
    if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
  },
};

/**
 * A relay that records what t_check_trans answered for each ACK (which it
 * then relays) and what t_relay answered for every other request.
 */
function recordingRelay(): { routes: TestRoutes; ackChecks: number[]; relays: number[] } {
  const ackChecks: number[] = [];
  const relays: number[] = [];
  const routes: TestRoutes = {
    ksr_request_route(ctx) {
      const KSR = ksr(ctx);
      if (KSR.is_ACK()) {
        ackChecks.push(KSR.tm.t_check_trans());
        KSR.tm.t_relay();
        return;
      }
      relays.push(KSR.tm.t_relay());
    },
  };
  return { routes, ackChecks, relays };
}

describe("INVITE relayed statefully", () => {
  test("100 Trying upstream, the INVITE downstream with our Via on top and Max-Forwards decremented (§16.6)", () => {
    const bed = new ProxyTestBed(relayRoutes);
    bed.receiveRequest(request());
    const [trying, invite, ...rest] = bed.take();
    expect(rest).toEqual([]);
    expect(trying!.msg.status).toBe(100);
    expect(trying!.dest).toEqual({ proto: "udp", host: UAC.ip, port: UAC.port });
    expect(header(trying!.msg, "to")).toBe("<sip:bob@example.com>"); // no tag on a 100 (§8.2.6.2)
    expect(invite!.msg.method).toBe("INVITE");
    expect(invite!.msg.requestUri).toBe("sip:bob@192.0.2.20");
    expect(invite!.dest).toEqual({ proto: "udp", host: UAS_IP, port: 5060 });
    const vias = headers(invite!.msg, "via");
    expect(vias).toHaveLength(2);
    expect(vias[0]).toMatch(/^SIP\/2\.0\/UDP 192\.0\.2\.1:5060;branch=z9hG4bK[0-9a-f]{24}$/);
    expect(vias[1]).toBe(`SIP/2.0/UDP ${UAC.ip}:${UAC.port};branch=z9hG4bKuac${vias[1]!.match(/uac(\d+)/)![1]}`);
    expect(header(invite!.msg, "max-forwards")).toBe("69");
  });

  test("180 and 200 go upstream without our Via; 100 is absorbed (§16.7 steps 2, 3, 9)", () => {
    const bed = new ProxyTestBed(relayRoutes);
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    expect(bed.receiveResponse(responseTo(invite, 100, "Trying"))).toBe(true);
    expect(bed.take()).toEqual([]);
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    bed.receiveResponse(responseTo(invite, 200, "OK"));
    const [ringing, ok] = bed.take();
    expect(ringing!.msg.status).toBe(180);
    expect(ok!.msg.status).toBe(200);
    for (const r of [ringing!, ok!]) {
      expect(headers(r.msg, "via")).toEqual([headers(invite, "via")[1]]);
      expect(r.dest).toEqual({ proto: "udp", host: UAC.ip, port: UAC.port });
    }
    expect(header(ok!.msg, "to")).toBe("<sip:bob@example.com>;tag=uas-tag");
  });

  test("every 2xx retransmission is relayed, and the ACK for the 2xx is forwarded end to end (t_check_trans 1)", () => {
    const relay = recordingRelay();
    const bed = new ProxyTestBed(relay.routes);
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    const ok = responseTo(invite, 200, "OK");
    bed.receiveResponse(ok);
    bed.receiveResponse(ok);
    expect(bed.take().map((s) => s.msg.status)).toEqual([200, 200]);
    bed.receiveRequest(request({ method: "ACK", toTag: "uas-tag", branch: "z9hG4bKack1" }));
    expect(relay.ackChecks).toEqual([1]);
    expect(bed.statelessForwards).toHaveLength(1);
    expect(bed.statelessForwards[0]!.msg.method).toBe("ACK");
    expect(bed.take()).toEqual([]); // not through a transaction
  });

  test("a retransmitted INVITE is absorbed: t_relay returns 0, the UAS sees one INVITE, the 100 is resent", () => {
    const results: number[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        results.push(ksr(ctx).tm.t_relay());
      },
    });
    const text = request({ branch: "z9hG4bKsame" });
    bed.receiveRequest(text);
    bed.receiveRequest(text);
    expect(results).toEqual([1, 0]);
    const sent = bed.take();
    expect(sent.filter((s) => s.msg.method === "INVITE" && s.msg.kind === "request")).toHaveLength(1);
    expect(sent.filter((s) => s.msg.status === 100)).toHaveLength(2);
  });

  test("486: relayed upstream, the ACK to the UAS comes from the client transaction, the UAC's ACK is absorbed (t_check_trans 0)", () => {
    let ackCheck: number | undefined;
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        if (KSR.is_ACK()) {
          ackCheck = KSR.tm.t_check_trans();
          return;
        }
        KSR.tm.t_relay();
      },
    });
    const text = request({ branch: "z9hG4bKbusy" });
    bed.receiveRequest(text);
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 486, "Busy Here"));
    const [ackDown, busy] = bed.take();
    expect(ackDown!.msg.method).toBe("ACK");
    expect(ackDown!.dest.host).toBe(UAS_IP);
    expect(headers(ackDown!.msg, "via")).toEqual([headers(invite, "via")[0]]); // §17.1.1.3: the INVITE's top Via
    expect(busy!.msg.status).toBe(486);
    expect(busy!.dest.host).toBe(UAC.ip);
    // the UAC's ACK: same branch as its INVITE (§17.1.1.3)
    bed.receiveRequest(request({ method: "ACK", branch: "z9hG4bKbusy", toTag: "uas-tag" }));
    expect(ackCheck).toBe(0);
    expect(bed.take()).toEqual([]);
    expect(bed.statelessForwards).toEqual([]);
    // after the ACK the 486 is no longer retransmitted (§17.2.1 "confirmed")
    bed.clock.advance(10_000);
    expect(bed.take()).toEqual([]);
  });

  test("the 486 is retransmitted upstream until the ACK arrives (timer G)", () => {
    const bed = new ProxyTestBed(relayRoutes);
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 486, "Busy Here"));
    bed.take();
    bed.clock.advance(500);
    expect(bed.take().map((s) => s.msg.status)).toEqual([486]);
  });

  test("a non-INVITE request is relayed and its 200 returned; no 100 is generated", () => {
    const bed = new ProxyTestBed(relayRoutes);
    bed.receiveRequest(request({ method: "MESSAGE" }));
    const [message, ...rest] = bed.take();
    expect(rest).toEqual([]);
    expect(message!.msg.method).toBe("MESSAGE");
    bed.receiveResponse(responseTo(message!.msg, 200, "OK"));
    expect(bed.take().map((s) => s.msg.status)).toEqual([200]);
  });

  test("$du is the next hop, the R-URI stays; t_relay_to_proto_addr overrides both", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        if (KSR.pv.gete("$rU") === "viaproxy") KSR.setdsturi("sip:192.0.2.30:5080");
        if (KSR.pv.gete("$rU") === "explicit") {
          KSR.tm.t_relay_to_proto_addr("tcp", "192.0.2.40", 5090);
          return;
        }
        KSR.tm.t_relay();
      },
    });
    bed.receiveRequest(request({ uri: "sip:viaproxy@example.com", callId: "a" }));
    const first = bed.requestsTo("192.0.2.30", "INVITE")[0]!;
    expect(first.dest.port).toBe(5080);
    expect(first.msg.requestUri).toBe("sip:viaproxy@example.com");
    bed.receiveRequest(request({ uri: "sip:explicit@example.com", callId: "b" }));
    const second = bed.requestsTo("192.0.2.40", "INVITE")[0]!;
    expect(second.dest).toEqual({ proto: "tcp", host: "192.0.2.40", port: 5090 });
    expect(headers(second.msg, "via")[0]).toMatch(/^SIP\/2\.0\/TCP /);
  });

  test("a request the script changed is relayed with the changes (R-URI, headers)", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.seturi("sip:carol@192.0.2.21");
        KSR.hdr.append("X-Routed: yes\r\n");
        KSR.tm.t_relay();
      },
    });
    bed.receiveRequest(request());
    const invite = bed.requestsTo("192.0.2.21", "INVITE")[0]!.msg;
    expect(invite.requestUri).toBe("sip:carol@192.0.2.21");
    expect(header(invite, "x-routed")).toBe("yes");
  });

  test("a failed send makes t_relay return -1 and sl_reply_error answer 477; the transaction is then released", () => {
    let relayed: number | undefined;
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        const code: number = KSR.tm.t_relay();
        relayed = code;
        if (code < 0) KSR.sl.sl_reply_error();
      },
    });
    bed.sendResult = false;
    bed.receiveRequest(request({ method: "OPTIONS" }));
    expect(relayed).toBe(-1);
    expect(bed.statelessReplies).toEqual([{ status: 477, reason: "Unfortunately error on sending to next hop occurred" }]);
  });

  test("without a reply from the script, a failed relay gets the delayed error reply statefully", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        ksr(ctx).tm.t_relay();
      },
    });
    // a tel: R-URI cannot be routed: the transaction exists, no branch went out
    bed.receiveRequest(request({ method: "OPTIONS", uri: "tel:+15551234" }));
    expect(bed.statuses()).toEqual([500]);
  });
});

describe("after the wait time (Kamailio wt_timer): a finished transaction keeps only what retransmissions need", () => {
  /** The relay, with an onreply route that counts its runs and reads $T_req. */
  function onreplyBed(): { bed: ProxyTestBed; onreplyRuns: (string | null)[] } {
    const onreplyRuns: (string | null)[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        if (KSR.is_ACK()) {
          KSR.tm.t_relay();
          return;
        }
        KSR.tm.t_on_reply("on_reply");
        KSR.tm.t_relay();
      },
      on_reply(ctx) {
        onreplyRuns.push(ksr(ctx).pv.get("$T_req($ci)") as string | null);
      },
    });
    return { bed, onreplyRuns };
  }

  test("within the wait time a retransmitted 2xx runs the onreply route again; after it, it matches no transaction and is forwarded by its Via", () => {
    const { bed, onreplyRuns } = onreplyBed();
    const callId = parse(request()).callId;
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    const ok = responseTo(invite, 200, "OK");
    bed.receiveResponse(ok);
    bed.clock.advance(4_999);
    bed.receiveResponse(ok);
    expect(onreplyRuns).toEqual([callId, callId]);
    expect(bed.take().map((s) => s.msg.status)).toEqual([200, 200]);
    bed.clock.advance(1);
    expect(bed.receiveResponse(ok)).toBe(false);
    expect(onreplyRuns).toHaveLength(2);
    expect(bed.take()).toEqual([]);
    expect(bed.statelessForwards.map((f) => f.msg.status)).toEqual([200]);
  });

  test("a finished transaction still absorbs its INVITE's retransmission (no second INVITE downstream) and matches the end-to-end ACK", () => {
    const relay = recordingRelay();
    const bed = new ProxyTestBed(relay.routes);
    const text = request({ branch: "z9hG4bKfinished" });
    bed.receiveRequest(text);
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 200, "OK"));
    bed.take();
    bed.clock.advance(5_000);
    bed.receiveRequest(text);
    expect(relay.relays).toEqual([1, 0]);
    expect(bed.take().filter((s) => s.msg.kind === "request")).toEqual([]);
    bed.receiveRequest(request({ method: "ACK", toTag: "uas-tag", branch: "z9hG4bKack2" }));
    expect(relay.ackChecks).toEqual([1]);
    expect(bed.statelessForwards.map((f) => f.msg.method)).toEqual(["ACK"]);
  });

  test("a finished transaction is compacted: a record answers for it until timer L (e2e ACK, CANCEL 200, retransmission), then nothing is left", () => {
    const relay = recordingRelay();
    const bed = new ProxyTestBed(relay.routes);
    const text = request({ branch: "z9hG4bKcompact" });
    bed.receiveRequest(text);
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 200, "OK"));
    bed.take();
    expect(bed.proxy.table.compactedCount).toBe(0);
    bed.clock.advance(5_000);
    // The INVITE server transaction (Accepted, timer L) is now a record; the branch's client (Accepted) was ended.
    expect([bed.proxy.table.compactedCount, bed.proxy.table.size]).toEqual([1, 1]);
    bed.receiveRequest(text);
    expect(relay.relays).toEqual([1, 0]);
    bed.receiveRequest(cancelFor(text));
    expect(bed.take().map((s) => (s.msg.kind === "request" ? s.msg.method : s.msg.status))).toEqual([200]);
    bed.receiveRequest(request({ method: "ACK", toTag: "uas-tag", branch: "z9hG4bKack3" }));
    expect(relay.ackChecks).toEqual([1]);
    // Timer L = 64*T1 from the 2xx: the record and the end-to-end ACK's entry go.
    bed.clock.advance(27_000);
    bed.receiveRequest(request({ method: "ACK", toTag: "uas-tag", branch: "z9hG4bKack4" }));
    expect(relay.ackChecks).toEqual([1, -1]);
    // What is left is the CANCEL's own transaction (answered at 5 s, compacted at 10 s), until its timer J.
    expect([bed.proxy.table.compactedCount, bed.proxy.table.size]).toEqual([1, 1]);
    bed.clock.advance(5_000);
    expect(bed.proxy.table.size).toBe(0);
  });

  test("the script sees a retransmission's transaction until the wait time ends; after it, the record absorbs it without showing a transaction", () => {
    const seen: string[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        seen.push(`${KSR.tm.t_get_status_code()}/${KSR.pv.get("$T_reply_code")}/${KSR.tm.t_check_trans()}`);
        if (seen.length === 1) KSR.tm.t_relay();
      },
    });
    const text = request({ method: "OPTIONS", branch: "z9hG4bKseen" });
    bed.receiveRequest(text);
    const options = bed.take()[0]!.msg;
    bed.receiveResponse(responseTo(options, 200, "OK"));
    expect(bed.take().map((s) => s.msg.status)).toEqual([200]);
    bed.clock.advance(4_999);
    bed.receiveRequest(text);
    bed.clock.advance(1);
    bed.receiveRequest(text);
    expect(seen).toEqual(["-1/0/-1", "200/200/0", "-1/0/0"]);
    // Both retransmissions got the 200 again (§17.2.2), the second from the record.
    expect(bed.take().map((s) => s.msg.status)).toEqual([200, 200]);
  });

  test("a non-2xx final: the UAS's retransmitted 486 is ACKed again by the finished client transaction and not relayed twice", () => {
    const bed = new ProxyTestBed(relayRoutes);
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    const busy = responseTo(invite, 486, "Busy Here");
    bed.receiveResponse(busy);
    expect(bed.take().map((s) => (s.msg.kind === "request" ? s.msg.method : s.msg.status))).toEqual(["ACK", 486]);
    bed.clock.advance(5_000);
    // Meanwhile timer G resent the 486 upstream, as the UAC has not ACKed it (§17.2.1).
    expect(bed.take().map((s) => s.msg.status)).toEqual([486, 486, 486]);
    bed.receiveResponse(busy);
    expect(bed.take().map((s) => (s.msg.kind === "request" ? s.msg.method : s.msg.status))).toEqual(["ACK"]);
  });

  test("a 2xx that races the CANCEL of a timed-out branch still goes upstream after the wait time (§16.7 step 5)", () => {
    const bed = new ProxyTestBed(relayRoutes, { frInvTimerMs: 1_000 });
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    bed.clock.advance(1_000); // fr_inv_timer: the branch is CANCELled and counts as 408
    bed.clock.advance(5_000); // the wait time after the 408 went upstream
    const before = bed.take();
    // The CANCEL (retransmitted by timer E) downstream; the 408 (retransmitted by timer G) upstream.
    expect(new Set(before.filter((s) => s.msg.kind === "request").map((s) => s.msg.method))).toEqual(new Set(["CANCEL"]));
    expect(new Set(before.filter((s) => s.msg.kind === "response").map((s) => s.msg.status))).toEqual(new Set([180, 408]));
    expect(bed.receiveResponse(responseTo(invite, 200, "OK"))).toBe(true);
    const after = bed.take();
    expect(after.map((s) => (s.msg.kind === "request" ? s.msg.method : s.msg.status))).toEqual([200]);
    expect(after[0]!.dest).toEqual({ proto: "udp", host: UAC.ip, port: UAC.port });
  });

  test("the wait time runs from the final response, and waits for branches still pending (a CANCELled fork)", () => {
    const { bed, onreplyRuns } = onreplyBed();
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    bed.clock.advance(10_000);
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    expect(onreplyRuns).toHaveLength(2); // no final yet: the transaction is whole
    const ok = responseTo(invite, 200, "OK");
    bed.receiveResponse(ok);
    bed.clock.advance(4_000);
    bed.receiveResponse(ok);
    expect(onreplyRuns).toHaveLength(4);
  });
});

describe("tm return codes", () => {
  test("t_newtran: 1, then -10 for the same message; 0 for its retransmission", () => {
    const codes: number[][] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        const first = KSR.tm.t_newtran();
        if (first === 0) {
          codes.push([first]);
          KSR.x.exit();
        }
        codes.push([first, KSR.tm.t_newtran()]);
        KSR.tm.t_reply(404, "Not Here");
      },
    });
    const text = request({ method: "OPTIONS", branch: "z9hG4bKnt" });
    bed.receiveRequest(text);
    bed.receiveRequest(text);
    expect(codes).toEqual([[1, -10], [0]]);
    // the retransmission got the stored 404 again (§17.2.2)
    expect(bed.statuses()).toEqual([404, 404]);
  });

  test("t_check_trans: -1 for a new request, 0 for a retransmission (the last reply is resent)", () => {
    const codes: number[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        const c = KSR.tm.t_check_trans();
        codes.push(c);
        if (c === 0) KSR.x.exit();
        KSR.tm.t_relay();
      },
    });
    const text = request({ branch: "z9hG4bKct" });
    bed.receiveRequest(text);
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    bed.take();
    bed.receiveRequest(text);
    expect(codes).toEqual([-1, 0]);
    expect(bed.take().map((s) => s.msg.status)).toEqual([180]); // §17.2.1: last provisional resent
  });

  test("t_check_trans for CANCEL: 1 when its INVITE transaction exists, -1 otherwise; on a reply 1 / -1", () => {
    const codes: Record<string, number> = {};
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        if (KSR.is_CANCEL()) {
          codes[`cancel-${ctx.msg.callId}`] = KSR.tm.t_check_trans();
          return;
        }
        KSR.tm.t_relay();
      },
      ksr_reply_route(ctx) {
        codes[`reply-${ctx.msg.status}`] = ksr(ctx).tm.t_check_trans();
      },
    });
    const invite = request({ callId: "known" });
    bed.receiveRequest(invite);
    const sent = bed.take()[1]!.msg;
    bed.receiveRequest(cancelFor(invite));
    bed.receiveRequest(cancelFor(request({ callId: "unknown" })));
    bed.receiveResponse(responseTo(sent, 180, "Ringing"));
    const stray = responseTo(sent, 183, "Session Progress").replace(/branch=z9hG4bK[0-9a-f]+/, "branch=z9hG4bKnomatch");
    bed.receiveResponse(stray);
    expect(codes).toEqual({ "cancel-known": 1, "cancel-unknown": -1, "reply-180": 1, "reply-183": -1 });
  });

  test("t_check_trans and tmx route tests inside transaction routes", () => {
    const seen: Record<string, number[]> = {};
    const probe = (name: string) => (ctx: import("../../host/core/context.js").MessageContext) => {
      const KSR = ksr(ctx);
      seen[name] = [
        KSR.tm.t_check_trans(),
        KSR.tmx.t_is_request_route(),
        KSR.tmx.t_is_branch_route(),
        KSR.tmx.t_is_reply_route(),
        KSR.tmx.t_is_failure_route(),
      ];
    };
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.tm.t_on_branch("branch");
        KSR.tm.t_on_reply("onreply");
        KSR.tm.t_on_failure("failure");
        seen.requestBefore = [KSR.tm.t_is_set("branch_route"), KSR.tm.t_is_set("failure_route"), KSR.tm.t_is_set("onreply_route"), KSR.tmx.t_is_request_route(), KSR.tmx.t_precheck_trans()];
        KSR.tm.t_relay();
      },
      branch: probe("branch"),
      onreply: probe("onreply"),
      failure: probe("failure"),
    });
    bed.receiveRequest(request());
    const invite = bed.requestsTo("192.0.2.20", "INVITE")[0]!.msg;
    bed.receiveResponse(responseTo(invite, 404, "Not Found"));
    expect(seen).toEqual({
      requestBefore: [1, 1, 1, 1, -1],
      branch: [1, -1, 1, -1, -1],
      onreply: [1, -1, -1, 1, -1],
      failure: [1, -1, -1, -1, 1],
    });
  });

  test("t_reply without a transaction is -1; t_send_reply creates one; send_reply is stateful after t_newtran", () => {
    const codes: number[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        const user = KSR.pv.gete("$rU");
        if (user === "a") codes.push(KSR.tm.t_reply(404, "Nope"));
        if (user === "b") codes.push(KSR.tm.t_send_reply(403, "Forbidden"));
        if (user === "c") {
          codes.push(KSR.tm.t_newtran());
          codes.push(KSR.sl.send_reply(480, "Later"));
        }
      },
    });
    bed.receiveRequest(request({ method: "OPTIONS", uri: "sip:a@example.com", callId: "a" }));
    bed.receiveRequest(request({ method: "OPTIONS", uri: "sip:b@example.com", callId: "b" }));
    const cText = request({ method: "OPTIONS", uri: "sip:c@example.com", callId: "c", branch: "z9hG4bKc" });
    bed.receiveRequest(cText);
    expect(codes).toEqual([-1, 1, 1, 1]);
    expect(bed.statuses()).toEqual([403, 480]);
    expect(bed.statelessReplies).toEqual([]);
    // stateful: the retransmission is answered from the transaction
    bed.take();
    bed.receiveRequest(cText);
    expect(bed.statuses()).toEqual([480]);
  });

  test("t_get_status_code and $T_reply_code in the request route follow the last reply sent", () => {
    const seen: unknown[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        seen.push(KSR.tm.t_get_status_code());
        KSR.tm.t_newtran();
        seen.push(KSR.tm.t_get_status_code(), KSR.pv.get("$T_reply_code"));
        KSR.tm.t_reply(183, "Progress");
        seen.push(KSR.tm.t_get_status_code(), KSR.pv.get("$T_reply_code"), KSR.tm.t_check_status("18[0-9]"), KSR.tm.t_check_status("^2"));
        KSR.tm.t_reply(486, "Busy");
      },
    });
    bed.receiveRequest(request());
    expect(seen).toEqual([-1, 0, 0, 183, 183, 1, -1]);
    expect(bed.statuses()).toEqual([183, 486]);
  });

  test("an ACK never creates a transaction: t_newtran returns 1 and nothing is kept", () => {
    let code: number | undefined;
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        code = ksr(ctx).tm.t_newtran();
      },
    });
    bed.receiveRequest(request({ method: "ACK", toTag: "x" }));
    expect(code).toBe(1);
    expect(bed.proxy.table.serverCount).toBe(0);
  });

  test("a transaction the script neither relays nor answers stays silent (no late 100) and is removed after the wait time", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.tm.t_newtran();
        KSR.sl.sl_send_reply(404, "Not Found");
      },
    });
    bed.receiveRequest(request());
    expect(bed.statelessReplies).toEqual([{ status: 404, reason: "Not Found" }]);
    bed.clock.advance(1000);
    expect(bed.take()).toEqual([]);
    expect(bed.proxy.table.serverCount).toBe(1);
    bed.clock.advance(5000);
    expect(bed.proxy.table.serverCount).toBe(0);
  });
});

describe("parse helper sanity", () => {
  test("responseTo copies the Vias of the request it answers", () => {
    const msg = parse(request());
    expect(headers(parse(responseTo(msg, 200, "OK")), "via")).toEqual(headers(msg, "via"));
  });
});
