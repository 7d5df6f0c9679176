/**
 * Forking (parallel and serial), best-response selection (§16.7), the
 * branch / onreply / failure routes, CANCEL (§16.10) and the branch timers
 * (§16.8), against a fake clock and a recording transport.
 */
import { describe, expect, test } from "vitest";
import type { MessageContext } from "../../host/core/context.js";
import { cancelFor, header, headers, ksr, ProxyTestBed, request, responseTo, UAC, type TestRoutes } from "./testbed.js";

const B1 = "192.0.2.21";
const B2 = "192.0.2.22";
const B3 = "192.0.2.23";

/** Fork to the R-URI and two more contacts. */
function forkRoutes(extra: Partial<TestRoutes> = {}, before?: (ctx: MessageContext) => void): TestRoutes {
  return {
    ksr_request_route(ctx) {
      const KSR = ksr(ctx);
      if (KSR.tm.t_check_trans() === 0) KSR.x.exit();
      if (KSR.is_CANCEL()) {
        KSR.tm.t_relay();
        return;
      }
      before?.(ctx);
      KSR.seturi(`sip:bob@${B1}`);
      KSR.corex.append_branch_uri(`sip:bob@${B2}`);
      KSR.corex.append_branch_uri(`sip:bob@${B3}`);
      if (KSR.tm.t_relay() < 0) KSR.sl.sl_reply_error();
    },
    ...extra,
  } as TestRoutes;
}

function invitesByHost(bed: ProxyTestBed) {
  const sent = bed.take();
  const find = (host: string) => sent.find((s) => s.msg.method === "INVITE" && s.msg.kind === "request" && s.dest.host === host)!.msg;
  return { sent, b1: find(B1), b2: find(B2), b3: find(B3) };
}

describe("parallel forking", () => {
  test("append_branch_uri: one INVITE per branch, each with its own Via branch and R-URI", () => {
    const bed = new ProxyTestBed(forkRoutes());
    bed.receiveRequest(request());
    const { b1, b2, b3 } = invitesByHost(bed);
    expect([b1.requestUri, b2.requestUri, b3.requestUri]).toEqual([`sip:bob@${B1}`, `sip:bob@${B2}`, `sip:bob@${B3}`]);
    const branches = [b1, b2, b3].map((m) => headers(m, "via")[0]!.match(/branch=([^;]+)/)![1]);
    expect(new Set(branches).size).toBe(3);
  });

  test("append_branch() copies the R-URI into the set without consuming it: t_relay sends the R-URI too, as Kamailio 5.6 does", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.seturi(`sip:bob@${B1}`);
        KSR.corex.append_branch();
        KSR.seturi(`sip:bob@${B2}`);
        KSR.corex.append_branch();
        KSR.tm.t_relay();
      },
    });
    bed.receiveRequest(request());
    const invites = bed.take().filter((s) => s.msg.kind === "request");
    // The R-URI branch first (still new: KEMI's corex.append_branch does
    // not consume it), then the set in order; B2 twice, as Kamailio sends it.
    expect(invites.map((s) => s.dest.host)).toEqual([B2, B1, B2]);
  });

  test("best response: the lowest class wins, 4xx prefers 401/407/415/420/484 (§16.7 step 6)", () => {
    const bed = new ProxyTestBed(forkRoutes());
    bed.receiveRequest(request());
    const { b1, b2, b3 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b1, 503, "Service Unavailable"));
    bed.receiveResponse(responseTo(b2, 486, "Busy Here"));
    expect(bed.statuses()).toEqual([]); // a branch is still pending
    bed.receiveResponse(responseTo(b3, 484, "Address Incomplete"));
    expect(bed.statuses()).toEqual([484]);
  });

  test("a lone 503 goes upstream as 500 (§16.7 step 6)", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        ksr(ctx).tm.t_relay();
      },
    });
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 503, "Service Unavailable"));
    const upstream = bed.responses();
    expect(upstream.map((s) => `${s.msg.status} ${s.msg.reason}`)).toEqual(["500 Server Internal Error"]);
    expect(headers(upstream[0]!.msg, "via")).toHaveLength(1);
  });

  test("401 and 407 challenges of all branches are collected into the response (§16.7 step 7)", () => {
    const bed = new ProxyTestBed(forkRoutes());
    bed.receiveRequest(request());
    const { b1, b2, b3 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b1, 407, "Proxy Authentication Required", { extra: ['Proxy-Authenticate: Digest realm="one", nonce="1"'] }));
    bed.receiveResponse(responseTo(b2, 401, "Unauthorized", { extra: ['WWW-Authenticate: Digest realm="two", nonce="2"'] }));
    bed.receiveResponse(responseTo(b3, 404, "Not Found"));
    const [final] = bed.responses();
    expect(final!.msg.status).toBe(401);
    expect(headers(final!.msg, "www-authenticate")).toEqual(['Digest realm="two", nonce="2"']);
    expect(headers(final!.msg, "proxy-authenticate")).toEqual(['Digest realm="one", nonce="1"']);
  });

  test("a 2xx goes upstream at once and the other branches are cancelled with a Reason (§16.7 step 10)", () => {
    const bed = new ProxyTestBed(forkRoutes());
    bed.receiveRequest(request());
    const { b1, b2, b3 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b1, 180, "Ringing", { toTag: "t1" }));
    bed.receiveResponse(responseTo(b2, 180, "Ringing", { toTag: "t2" }));
    bed.take();
    bed.receiveResponse(responseTo(b2, 200, "OK", { toTag: "t2" }));
    const sent = bed.take();
    expect(sent[0]!.msg.status).toBe(200);
    const cancels = sent.filter((s) => s.msg.method === "CANCEL" && s.msg.kind === "request");
    // b1 had a provisional: CANCEL now; b3 had none: its CANCEL waits (§9.1)
    expect(cancels.map((s) => s.dest.host)).toEqual([B1]);
    expect(headers(cancels[0]!.msg, "via")).toEqual([headers(b1, "via")[0]]);
    expect(header(cancels[0]!.msg, "reason")).toBe('SIP;cause=200;text="Call completed elsewhere"');
    bed.receiveResponse(responseTo(b3, 180, "Ringing", { toTag: "t3" }));
    const late = bed.take();
    expect(late.map((s) => `${s.msg.method}@${s.dest.host}`)).toEqual([`CANCEL@${B3}`]); // and the 180 is not relayed after the 200
  });

  test("2xx from two forks both go upstream (§16.7 step 5)", () => {
    const bed = new ProxyTestBed(forkRoutes());
    bed.receiveRequest(request());
    const { b1, b2 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b1, 200, "OK", { toTag: "t1" }));
    bed.receiveResponse(responseTo(b2, 200, "OK", { toTag: "t2" }));
    expect(bed.responses().map((s) => `${s.msg.status} ${header(s.msg, "to")}`)).toEqual([
      "200 <sip:bob@example.com>;tag=t1",
      "200 <sip:bob@example.com>;tag=t2",
    ]);
  });

  test("a 6xx cancels the pending branches and wins over the 487s they answer (§16.7 step 5)", () => {
    const bed = new ProxyTestBed(forkRoutes());
    bed.receiveRequest(request());
    const { b1, b2, b3 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b1, 180, "Ringing", { toTag: "t1" }));
    bed.receiveResponse(responseTo(b3, 180, "Ringing", { toTag: "t3" }));
    bed.take();
    bed.receiveResponse(responseTo(b2, 603, "Decline", { toTag: "t2" }));
    const cancels = bed.take().filter((s) => s.msg.method === "CANCEL" && s.msg.kind === "request");
    expect(cancels.map((s) => s.dest.host).sort()).toEqual([B1, B3]);
    bed.receiveResponse(responseTo(b1, 487, "Request Terminated", { toTag: "t1" }));
    bed.receiveResponse(responseTo(b3, 487, "Request Terminated", { toTag: "t3" }));
    expect(bed.statuses()).toEqual([603]);
  });

  test("t_set_disable_6xx: a 6xx no longer cancels the others", () => {
    const bed = new ProxyTestBed(forkRoutes({}, (ctx) => ksr(ctx).tm.t_set_disable_6xx(1)));
    bed.receiveRequest(request());
    const { b1, b2 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b1, 180, "Ringing", { toTag: "t1" }));
    bed.take();
    bed.receiveResponse(responseTo(b2, 603, "Decline"));
    expect(bed.take().filter((s) => s.msg.method === "CANCEL" && s.msg.kind === "request")).toEqual([]);
  });
});

describe("branch route", () => {
  test("runs once per branch with its R-URI and index; drop there cancels only that branch", () => {
    const seen: [string, number, unknown][] = [];
    const bed = new ProxyTestBed(
      forkRoutes(
        {
          branch(ctx) {
            const KSR = ksr(ctx);
            seen.push([KSR.pv.get("$ru") as string, KSR.tm.t_get_branch_index(), KSR.pv.get("$T_branch_idx")]);
            if (KSR.pv.get("$rd") === B2) KSR.x.drop();
            KSR.hdr.append(`X-Branch: ${KSR.tm.t_get_branch_index()}\r\n`);
          },
        },
        (ctx) => ksr(ctx).tm.t_on_branch("branch"),
      ),
    );
    bed.receiveRequest(request());
    expect(seen).toEqual([
      [`sip:bob@${B1}`, 0, 0],
      [`sip:bob@${B2}`, 1, 1],
      [`sip:bob@${B3}`, 1, 1], // the dropped branch's index is reused
    ]);
    const invites = bed.take().filter((s) => s.msg.kind === "request");
    expect(invites.map((s) => [s.dest.host, header(s.msg, "x-branch")])).toEqual([
      [B1, "0"],
      [B3, "1"],
    ]);
  });

  test("every branch dropped: t_relay returns -1 inside the route and sl_reply_error answers 500", () => {
    const bed = new ProxyTestBed(
      forkRoutes({ branch: (ctx) => ksr(ctx).x.drop() }, (ctx) => ksr(ctx).tm.t_on_branch("branch")),
    );
    bed.receiveRequest(request({ method: "OPTIONS" }));
    expect(bed.take().filter((s) => s.msg.kind === "request")).toEqual([]);
    expect(bed.statelessReplies).toEqual([{ status: 500, reason: "Server Internal Error" }]);
  });

  test("the branch route runs inside t_relay: code after t_relay runs after it", () => {
    const order: string[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.tm.t_on_branch("branch");
        KSR.seturi(`sip:bob@${B1}`);
        KSR.corex.append_branch_uri(`sip:bob@${B2}`);
        order.push(`t_relay ${KSR.tm.t_relay()}`);
      },
      branch(ctx) {
        order.push(`branch ${ksr(ctx).tm.t_get_branch_index()}`);
      },
    } as TestRoutes);
    bed.receiveRequest(request());
    expect(order).toEqual(["branch 0", "branch 1", "t_relay 1"]);
  });
});

describe("onreply route", () => {
  test("runs for each response with its branch; drop stops a provisional, not a final", () => {
    const seen: string[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.setflag(3);
        KSR.tm.t_on_reply("onreply");
        KSR.tm.t_relay();
      },
      onreply(ctx) {
        const KSR = ksr(ctx);
        seen.push(`${KSR.pv.get("$rs")}/${KSR.pv.get("$T_reply_code")}/${KSR.tm.t_get_branch_index()}/${KSR.isflagset(3)}`);
        KSR.hdr.remove("X-Secret");
        if (KSR.pv.get("$rs") === 180 || KSR.pv.get("$rs") === 200) KSR.x.drop();
      },
    });
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    bed.receiveResponse(responseTo(invite, 183, "Session Progress", { extra: ["X-Secret: 1"] }));
    bed.receiveResponse(responseTo(invite, 200, "OK", { extra: ["X-Secret: 2"] }));
    expect(seen).toEqual(["180/180/0/true", "183/183/0/true", "200/200/0/true"]);
    const upstream = bed.responses();
    expect(upstream.map((s) => s.msg.status)).toEqual([183, 200]);
    expect(upstream.map((s) => header(s.msg, "x-secret"))).toEqual([undefined, undefined]);
  });

  test("the core reply route runs first; drop there stops the response before the transaction sees it", () => {
    const order: string[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        ksr(ctx).tm.t_on_reply("onreply");
        ksr(ctx).tm.t_relay();
      },
      ksr_reply_route(ctx) {
        order.push(`core ${ctx.msg.status}`);
        if (ctx.msg.status === 181) ksr(ctx).x.drop();
      },
      onreply(ctx) {
        order.push(`tm ${ctx.msg.status}`);
      },
    });
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 181, "Forwarded"));
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    expect(order).toEqual(["core 181", "core 180", "tm 180"]);
    expect(bed.statuses()).toEqual([180]);
  });
});

describe("failure route and serial forking", () => {
  /**
   * One INVITE to B1 answered 486; the failure route runs `change` and
   * t_relay(). Returns t_relay's result and where INVITEs went after the first.
   */
  function retryAfter(change: (KSR: ReturnType<typeof ksr>) => void): { relayed: number; retries: string[] } {
    let relayed = 0;
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.seturi(`sip:bob@${B1}`);
        KSR.tm.t_on_failure("failure");
        KSR.tm.t_relay();
      },
      failure(ctx) {
        const KSR = ksr(ctx);
        change(KSR);
        relayed = KSR.tm.t_relay();
      },
    });
    bed.receiveRequest(request({ uri: "sip:bob@example.com" }));
    const first = bed.requestsTo(B1, "INVITE")[0]!.msg;
    bed.take();
    bed.receiveResponse(responseTo(first, 486, "Busy Here"));
    const retries = bed
      .take()
      .filter((s) => s.msg.kind === "request" && s.msg.method === "INVITE")
      .map((s) => s.dest.host);
    return { relayed, retries };
  }

  test("any R-URI assignment in the failure route, the same value included, makes t_relay start a new branch (Kamailio's ruri_mark_new)", () => {
    const same = `sip:bob@${B1}`;
    expect(retryAfter((KSR) => KSR.seturi(same))).toEqual({ relayed: 1, retries: [B1] });
    expect(retryAfter((KSR) => KSR.pv.sets("$ru", same))).toEqual({ relayed: 1, retries: [B1] });
    expect(retryAfter((KSR) => KSR.sethost(B1))).toEqual({ relayed: 1, retries: [B1] });
    expect(retryAfter((KSR) => KSR.setuser("bob"))).toEqual({ relayed: 1, retries: [B1] });
    expect(retryAfter((KSR) => KSR.pv.sets("$rU", "bob"))).toEqual({ relayed: 1, retries: [B1] });
  });

  test("$du assigned through the PV is a new branch; KSR.setdsturi alone and nothing at all are not", () => {
    expect(retryAfter((KSR) => KSR.pv.sets("$du", `sip:${B2}`))).toEqual({ relayed: 1, retries: [B2] });
    expect(retryAfter((KSR) => KSR.setdsturi(`sip:${B2}`))).toEqual({ relayed: -1, retries: [] });
    expect(retryAfter(() => undefined)).toEqual({ relayed: -1, retries: [] });
    // Unsetting $du marks nothing (Kamailio resets it and returns).
    expect(retryAfter((KSR) => KSR.pv.unset("$du"))).toEqual({ relayed: -1, retries: [] });
  });

  test("append_branch in the failure route: without a URI the R-URI once (it starts consumed), with one that URI", () => {
    expect(retryAfter((KSR) => KSR.corex.append_branch())).toEqual({ relayed: 1, retries: [B1] });
    expect(retryAfter((KSR) => KSR.corex.append_branch_uri(`sip:bob@${B2}`))).toEqual({ relayed: 1, retries: [B2] });
  });

  test("setting only $du in the failure route leaves no branch: t_relay returns -1, as in Kamailio", () => {
    const relays: number[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.seturi(`sip:bob@${B1}`);
        KSR.tm.t_on_failure("failure");
        KSR.tm.t_relay();
      },
      failure(ctx) {
        const KSR = ksr(ctx);
        KSR.setdsturi(`sip:${B2}`);
        relays.push(KSR.tm.t_relay());
        KSR.seturi(`sip:bob@${B2}`);
        relays.push(KSR.tm.t_relay());
      },
    });
    bed.receiveRequest(request({ uri: "sip:bob@example.com" }));
    const first = bed.requestsTo(B1, "INVITE")[0]!.msg;
    bed.take();
    bed.receiveResponse(responseTo(first, 486, "Busy Here"));
    expect(relays).toEqual([-1, 1]);
    expect(bed.requestsTo(B2, "INVITE")).toHaveLength(1);
  });

  test("a negative final runs the failure route with the request as relayed; t_relay there forks serially", () => {
    const seen: unknown[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.setflag(5);
        KSR.pv.sets("$avp(target)", `sip:voicemail@${B2}`);
        KSR.hdr.append("X-From-Request: 1\r\n");
        KSR.seturi(`sip:bob@${B1}`);
        KSR.tm.t_on_failure("failure");
        KSR.tm.t_relay();
        KSR.resetflag(5); // after t_relay: not part of the transaction's request
      },
      failure(ctx) {
        const KSR = ksr(ctx);
        seen.push(
          KSR.pv.get("$ru"),
          KSR.isflagset(5),
          KSR.pv.get("$T_reply_code"),
          KSR.pv.get("$T_reply_reason"),
          KSR.tm.t_check_status("486"),
          KSR.tm.t_get_status_code(),
          KSR.tm.t_branch_replied(),
          KSR.tm.t_branch_timeout(),
          KSR.tm.t_is_canceled(),
          KSR.pv.get("$T_rpl($rr)"),
          KSR.pv.get("$T_req($ru)"),
        );
        KSR.seturi(KSR.pv.get("$avp(target)") as string);
        seen.push(KSR.tm.t_relay());
      },
    });
    bed.receiveRequest(request({ uri: "sip:bob@example.com" }));
    const first = bed.requestsTo(B1, "INVITE")[0]!.msg;
    bed.take();
    bed.receiveResponse(responseTo(first, 486, "Busy Here"));
    expect(seen).toEqual([`sip:bob@${B1}`, true, 486, "Busy Here", 1, 486, 1, -1, -1, "Busy Here", "sip:bob@example.com", 1]);
    const sent = bed.take();
    expect(sent.map((s) => `${s.msg.kind === "request" ? s.msg.method : s.msg.status}@${s.dest.host}`)).toEqual([
      `ACK@${B1}`,
      `INVITE@${B2}`,
    ]);
    const second = sent[1]!.msg;
    expect(second.requestUri).toBe(`sip:voicemail@${B2}`);
    expect(header(second, "x-from-request")).toBe("1");
    bed.receiveResponse(responseTo(second, 200, "OK", { toTag: "vm" }));
    expect(bed.statuses()).toEqual([200]);
  });

  test("a failure route that does not relay lets the best response go upstream; it runs once per arming", () => {
    let runs = 0;
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        ksr(ctx).tm.t_on_failure("failure");
        ksr(ctx).tm.t_relay();
      },
      failure() {
        runs++;
      },
    });
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 404, "Not Found"));
    expect(runs).toBe(1);
    expect(bed.statuses()).toEqual([404]);
  });

  test("t_reply in the failure route answers instead of the received response", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        ksr(ctx).tm.t_on_failure("failure");
        ksr(ctx).tm.t_relay();
      },
      failure(ctx) {
        ksr(ctx).tm.t_reply(480, "Temporarily Unavailable");
      },
    });
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.receiveResponse(responseTo(invite, 404, "Not Found"));
    expect(bed.responses().map((s) => `${s.msg.status} ${s.msg.reason}`)).toEqual(["480 Temporarily Unavailable"]);
  });

  test("branch-failure route runs per failed branch, the failure route once at the end", () => {
    const order: string[] = [];
    const bed = new ProxyTestBed(
      forkRoutes(
        {
          bfail(ctx) {
            order.push(`branch-failure ${ksr(ctx).tm.t_get_branch_index()} ${ksr(ctx).pv.get("$T_reply_code")}`);
          },
          failure(ctx) {
            order.push(`failure ${ksr(ctx).pv.get("$T_reply_code")}`);
          },
        },
        (ctx) => {
          ksr(ctx).tm.t_on_branch_failure("bfail");
          ksr(ctx).tm.t_on_failure("failure");
        },
      ),
    );
    bed.receiveRequest(request());
    const { b1, b2, b3 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b2, 486, "Busy Here"));
    bed.receiveResponse(responseTo(b1, 404, "Not Found"));
    bed.receiveResponse(responseTo(b3, 480, "Temporarily Unavailable"));
    expect(order).toEqual(["branch-failure 1 486", "branch-failure 0 404", "branch-failure 2 480", "failure 404"]);
  });
});

describe("branch timers (§16.8)", () => {
  test("no response within fr_timer: 408 upstream, retransmissions stop, no CANCEL", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        ksr(ctx).tm.t_set_fr(60_000, 2_000);
        ksr(ctx).tm.t_relay();
      },
    });
    bed.receiveRequest(request());
    bed.take();
    bed.clock.advance(1_999);
    // timer A retransmissions at 500 and 1500 ms (§17.1.1.2)
    expect(bed.take().map((s) => s.msg.method)).toEqual(["INVITE", "INVITE"]);
    bed.clock.advance(1);
    expect(bed.take().map((s) => `${s.msg.kind === "request" ? s.msg.method : s.msg.status} ${s.dest.host}`)).toEqual([`408 ${UAC.ip}`]);
    bed.clock.advance(30_000);
    expect(bed.take().filter((s) => s.msg.kind === "request")).toEqual([]);
  });

  test("after a provisional, fr_inv_timer runs; on expiry the branch is cancelled and 408 goes upstream", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        ksr(ctx).tm.t_set_fr(10_000, 2_000);
        ksr(ctx).tm.t_relay();
      },
    });
    bed.receiveRequest(request());
    const invite = bed.take()[1]!.msg;
    bed.clock.advance(1_000);
    bed.receiveResponse(responseTo(invite, 180, "Ringing"));
    bed.take();
    bed.clock.advance(9_999);
    expect(bed.take()).toEqual([]);
    bed.clock.advance(1);
    const sent = bed.take();
    expect(sent.map((s) => (s.msg.kind === "request" ? s.msg.method : String(s.msg.status)))).toEqual(["CANCEL", "408"]);
    // the 487 answering the CANCEL is ACKed downstream, nothing more goes upstream
    bed.receiveResponse(responseTo(invite, 487, "Request Terminated"));
    expect(bed.take().map((s) => (s.msg.kind === "request" ? s.msg.method : String(s.msg.status)))).toEqual(["ACK"]);
  });

  test("timeout with a failure route: t_branch_timeout is 1 and the failure route forwards to a second target", () => {
    const seen: number[] = [];
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        KSR.seturi(`sip:bob@${B1}`);
        KSR.tm.t_set_fr(0, 3_000);
        KSR.tm.t_on_failure("failure");
        KSR.tm.t_relay();
      },
      failure(ctx) {
        const KSR = ksr(ctx);
        seen.push(KSR.tm.t_branch_timeout(), KSR.tm.t_branch_replied(), KSR.tm.t_any_timeout(), KSR.pv.get("$T_reply_code") as number);
        KSR.seturi(`sip:bob@${B2}`);
        KSR.tm.t_relay();
      },
    });
    bed.receiveRequest(request());
    bed.take();
    bed.clock.advance(3_000);
    expect(seen).toEqual([1, -1, 1, 408]);
    const second = bed.take().filter((s) => s.msg.kind === "request" && s.dest.host === B2);
    expect(second).toHaveLength(1);
    bed.receiveResponse(responseTo(second[0]!.msg, 200, "OK"));
    expect(bed.statuses()).toEqual([200]);
  });
});

describe("CANCEL (§16.10)", () => {
  test("CANCEL of a ringing call: 200 to the CANCEL, CANCEL downstream, 487 relayed upstream, t_is_canceled 1", () => {
    const seen: number[] = [];
    const bed = new ProxyTestBed(forkRoutes({ failure: (ctx) => seen.push(ksr(ctx).tm.t_is_canceled(), ksr(ctx).tm.t_relay()) }, (ctx) => ksr(ctx).tm.t_on_failure("failure")));
    const inviteText = request({ branch: "z9hG4bKcall" });
    bed.receiveRequest(inviteText);
    const { b1, b2, b3 } = invitesByHost(bed);
    for (const [m, tag] of [[b1, "t1"], [b2, "t2"]] as const) bed.receiveResponse(responseTo(m, 180, "Ringing", { toTag: tag }));
    bed.take();
    bed.receiveRequest(cancelFor(inviteText));
    const sent = bed.take();
    const ok = sent.find((s) => s.msg.kind === "response")!;
    expect(`${ok.msg.status} ${ok.msg.cseq.method}`).toBe("200 CANCEL");
    expect(sent.filter((s) => s.msg.method === "CANCEL" && s.msg.kind === "request").map((s) => s.dest.host).sort()).toEqual([B1, B2]);
    // b3 had no provisional: its CANCEL goes once one arrives (§9.1)
    bed.receiveResponse(responseTo(b3, 100, "Trying"));
    expect(bed.take().map((s) => `${s.msg.method}@${s.dest.host}`)).toEqual([`CANCEL@${B3}`]);
    for (const [m, tag] of [[b1, "t1"], [b2, "t2"], [b3, "t3"]] as const) bed.receiveResponse(responseTo(m, 487, "Request Terminated", { toTag: tag }));
    const final = bed.take().filter((s) => s.msg.kind === "response");
    expect(final.map((s) => `${s.msg.status} ${s.msg.cseq.method} ${s.dest.host}`)).toEqual([`487 INVITE ${UAC.ip}`]);
    expect(seen).toEqual([1, -1]); // a cancelled transaction does not fork again
  });

  test("a CANCEL before any branch was sent answers the INVITE with 487", () => {
    const bed = new ProxyTestBed({
      ksr_request_route(ctx) {
        const KSR = ksr(ctx);
        if (KSR.is_CANCEL()) {
          KSR.tm.t_relay();
          return;
        }
        KSR.tm.t_newtran();
      },
    });
    const inviteText = request({ branch: "z9hG4bKearly" });
    bed.receiveRequest(inviteText);
    bed.receiveRequest(cancelFor(inviteText));
    expect(bed.responses().map((s) => `${s.msg.status} ${s.msg.cseq.method}`)).toEqual(["487 INVITE", "200 CANCEL"]);
  });

  test("a retransmitted CANCEL gets the 200 again and cancels nothing twice", () => {
    const bed = new ProxyTestBed(forkRoutes());
    const inviteText = request({ branch: "z9hG4bKrx" });
    bed.receiveRequest(inviteText);
    const { b1 } = invitesByHost(bed);
    bed.receiveResponse(responseTo(b1, 180, "Ringing"));
    bed.take();
    bed.receiveRequest(cancelFor(inviteText));
    bed.take();
    bed.receiveRequest(cancelFor(inviteText));
    expect(bed.take().map((s) => `${s.msg.kind === "request" ? s.msg.method : s.msg.status}`)).toEqual(["200"]);
  });

  test("a CANCEL matching no transaction is forwarded statelessly (the next hop answers 481)", () => {
    const bed = new ProxyTestBed(forkRoutes());
    bed.receiveRequest(cancelFor(request({ callId: "nothing" })));
    expect(bed.statelessForwards.map((f) => f.msg.method)).toEqual(["CANCEL"]);
    expect(bed.take()).toEqual([]);
  });
});
