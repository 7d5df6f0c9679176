/**
 * A server with two tenants over real UDP: selection by domain, the
 * unmatched status, per-tenant data ($var/$shv through KSR.pv), allowed
 * modules, the error policy and the CPU budget (503 without running).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UdpPeer, buildRequest, buildResponseTo, headerValue, statusOf } from "../e2e/sip-client.js";
import { LogCapture, ask, expectOptions200, startTenants, type TenantServer } from "./harness.js";

const logs = new LogCapture();
let srv: TenantServer | undefined;
let peer: UdpPeer | undefined;

beforeEach(async () => {
  logs.install();
  peer = await UdpPeer.open();
});
afterEach(async () => {
  await peer?.close();
  await srv?.stop();
  srv = undefined;
  logs.uninstall();
});

const TWO_TENANTS = (extra = "") => `${extra}tenants:
  - id: a
    script: a.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [a.example, "*.a.example"] }
  - id: b
    script: b.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [b.example] }
`;

const replyWith = (reason: string) => `function ksr_request_route() { KSR.sl.sl_send_reply(200, "${reason}"); }\n`;

describe("selection", () => {
  it("routes each request to the script of the tenant its domain selects", async () => {
    srv = await startTenants({ "a.js": replyWith("tenant a"), "b.js": replyWith("tenant b") }, TWO_TENANTS());
    expect((await ask(peer!, srv.udpPort, { uri: "sip:x@a.example" })).reason).toBe("tenant a");
    expect((await ask(peer!, srv.udpPort, { uri: "sip:x@sub.a.example" })).reason).toBe("tenant a");
    expect((await ask(peer!, srv.udpPort, { uri: "sip:x@B.EXAMPLE" })).reason).toBe("tenant b");
    expect(srv.registry.get("a")!.counters.messages).toBe(2);
    expect(srv.registry.get("b")!.counters.messages).toBe(1);
    expect(srv.registry.get("a")!.counters.repliesByClass["2xx"]).toBe(2);
  });

  it("answers a request no tenant selects with 404 by default, and never an ACK", async () => {
    srv = await startTenants({ "a.js": replyWith("tenant a"), "b.js": replyWith("tenant b") }, TWO_TENANTS());
    const r = await ask(peer!, srv.udpPort, { method: "INVITE", uri: "sip:x@c.example" });
    expect(r.status).toBe(404);
    expect(r.reason).toBe("Not Found");
    await peer!.send(buildRequest({ method: "ACK", uri: "sip:x@c.example", viaPort: peer!.port }), srv.udpPort);
    expect(await peer!.poll(300)).toBeUndefined();
    expect(srv.server.router.unmatchedRequests).toBe(2);
    expect(srv.registry.get("a")!.counters.messages + srv.registry.get("b")!.counters.messages).toBe(0);
  });

  it("answers 403 when the tenants file says `unmatched: 403`", async () => {
    srv = await startTenants({ "a.js": replyWith("tenant a"), "b.js": replyWith("tenant b") }, TWO_TENANTS("unmatched: 403\n"));
    const r = await ask(peer!, srv.udpPort, { uri: "sip:x@c.example" });
    expect([r.status, r.reason]).toEqual([403, "Forbidden"]);
  });

  it("sends unmatched requests to the default tenant when there is one", async () => {
    srv = await startTenants({ "a.js": replyWith("tenant a"), "b.js": replyWith("tenant b") }, TWO_TENANTS("default: b\n"));
    expect((await ask(peer!, srv.udpPort, { uri: "sip:x@c.example" })).reason).toBe("tenant b");
  });
});

describe("per-tenant data", () => {
  // Sets $var(secret) and $shv(secret) to its own marker when asked
  // (MESSAGE), and always answers with what it sees in both.
  const keeper = (marker: string) => `
function ksr_request_route() {
  if (KSR.is_method("MESSAGE")) {
    KSR.pv.sets("$var(secret)", "${marker}-var");
    KSR.pv.sets("$shv(secret)", "${marker}-shv");
  }
  KSR.sl.sl_send_reply(200, "var=" + KSR.pv.get("$var(secret)") + " shv=" + KSR.pv.get("$shv(secret)"));
}
`;

  it("$var and $shv of one tenant are invisible to the other through KSR.pv", async () => {
    srv = await startTenants({ "a.js": keeper("A"), "b.js": keeper("B") }, TWO_TENANTS());
    const port = srv.udpPort;
    expect((await ask(peer!, port, { method: "MESSAGE", uri: "sip:x@a.example" })).reason).toBe("var=A-var shv=A-shv");
    const bSees = (await ask(peer!, port, { method: "OPTIONS", uri: "sip:x@b.example" })).reason;
    expect(bSees).not.toContain("A-");
    expect((await ask(peer!, port, { method: "MESSAGE", uri: "sip:x@b.example" })).reason).toBe("var=B-var shv=B-shv");
    // A still has its own values, untouched by B's writes under the same names.
    expect((await ask(peer!, port, { method: "OPTIONS", uri: "sip:x@a.example" })).reason).toBe("var=A-var shv=A-shv");
    expect(srv.registry.get("a")!.state.sharedVars.get("secret")).toBe("A-shv");
    expect(srv.registry.get("b")!.state.sharedVars.get("secret")).toBe("B-shv");
  });
});

describe("per-tenant htables", () => {
  // Stores its marker under calls=>last when asked (MESSAGE); answers with what it sees there.
  const htableKeeper = (marker: string) => `
function ksr_request_route() {
  if (KSR.is_method("MESSAGE")) KSR.htable.sht_sets("calls", "last", "${marker}");
  KSR.sl.sl_send_reply(200, "sht=" + KSR.htable.sht_get("calls", "last") + " pv=" + KSR.pv.get("$sht(calls=>last)"));
}
`;
  const yaml = `tenants:
  - id: ht-a
    script: a.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [a.example] }
  - id: ht-b
    script: b.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [b.example] }
`;

  it("an htable entry of one tenant is invisible to the other under the same table and key", async () => {
    srv = await startTenants({ "a.js": htableKeeper("A"), "b.js": htableKeeper("B") }, yaml);
    const port = srv.udpPort;
    expect((await ask(peer!, port, { method: "MESSAGE", uri: "sip:x@a.example" })).reason).toBe("sht=A pv=A");
    expect((await ask(peer!, port, { method: "OPTIONS", uri: "sip:x@b.example" })).reason).toBe("sht=null pv=null");
    expect((await ask(peer!, port, { method: "MESSAGE", uri: "sip:x@b.example" })).reason).toBe("sht=B pv=B");
    expect((await ask(peer!, port, { method: "OPTIONS", uri: "sip:x@a.example" })).reason).toBe("sht=A pv=A");
  });
});

describe("allowed modules and the error policy", () => {
  const noSl = `
function ksr_request_route() {
  if (KSR.is_method("OPTIONS")) {
    // tm may be used: answer statefully, reporting what sl looks like from here.
    KSR.tm.t_newtran();
    KSR.tm.t_reply(200, "sl=" + typeof KSR.sl + " modf=" + KSR.x.modf("sl_reply_error"));
    return;
  }
  KSR.sl.sl_send_reply(200, "must not be sent");
}
`;
  const yaml = `tenants:
  - id: a
    script: a.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [a.example] }
  - id: b
    script: b.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [b.example] }
    modules: [tm, pv]
    onError: { status: 502, reason: B Script Failed }
`;

  it("a tenant without sl has no KSR.sl, cannot reach it through KSR.x.modf, and a call fails into its error policy", async () => {
    srv = await startTenants({ "a.js": replyWith("tenant a"), "b.js": noSl }, yaml);
    const port = srv.udpPort;
    const listed = await ask(peer!, port, { method: "OPTIONS", uri: "sip:x@b.example" });
    expect([listed.status, listed.reason]).toEqual([200, "sl=undefined modf=-1"]);
    const failed = await ask(peer!, port, { method: "MESSAGE", uri: "sip:x@b.example", callId: "no-sl@test" });
    expect([failed.status, failed.reason]).toEqual([502, "B Script Failed"]);
    const line = await logs.waitFor((l) => l.includes("call-id=no-sl@test"));
    expect(line).toMatch(/^err \[b\] tenant=b route=ksr_request_route /);
    expect(line).toMatch(/b\.js:9\b/);
    expect(srv.registry.get("b")!.counters.routeErrors).toBe(1);
    expect(srv.registry.get("b")!.counters.repliesByClass["5xx"]).toBe(1);
    // Tenant a, with every module, is unaffected.
    expect(await expectOptions200(peer!, port, "a.example")).toBe("tenant a");
  });
});

describe("CPU budget", () => {
  // Burns about 30 ms of CPU per request, far beyond a 1 ms bucket, and answers statefully.
  const burner = `
function ksr_request_route() {
  if (KSR.tm.t_newtran() <= 0) return;
  const until = Date.now() + 30;
  while (Date.now() < until) {}
  KSR.tm.t_reply(486, "Busy Burnt");
}
`;
  const yaml = `tenants:
  - id: a
    script: a.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [a.example] }
  - id: hog
    script: hog.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [hog.example] }
    limits: { cpuShare: 0.01, cpuBurstMs: 100 }
`;

  it("a tenant over its budget gets 503 with Retry-After without running; a retransmission still gets its transaction's answer", async () => {
    srv = await startTenants({ "a.js": replyWith("tenant a"), "hog.js": burner }, yaml);
    const port = srv.udpPort;
    const invite = buildRequest({ method: "INVITE", uri: "sip:x@hog.example", viaPort: peer!.port });
    await peer!.send(invite, port);
    expect(statusOf((await peer!.next()).data)).toBe(486);
    const hog = srv.registry.get("hog")!;
    expect(hog.budget.tokensMs).toBeLessThan(0);
    // The same INVITE again (a retransmission): its transaction resends the 486.
    await peer!.send(invite, port);
    const again = await peer!.next();
    expect(statusOf(again.data)).toBe(486);
    // A new request is refused without running the script.
    const refused = await ask(peer!, port, { method: "INVITE", uri: "sip:y@hog.example" });
    expect([refused.status, refused.reason]).toEqual([503, "Service Unavailable"]);
    // 30 ms of debt refilled at 0.01 ms per ms: about 3 s.
    expect(Number(headerValue(refused.text, "retry-after"))).toBeGreaterThanOrEqual(2);
    expect(hog.counters.overBudget).toBe(2);
    expect(hog.counters.repliesByClass["5xx"]).toBe(1);
    expect(srv.server.router.proxyOf("hog")!.table.serverCount).toBe(1);
    // The other tenant is not held to the hog's budget.
    expect(await expectOptions200(peer!, port, "a.example")).toBe("tenant a");
  });
});

describe("responses without a transaction", () => {
  // Forwards statelessly to the URI in X-Next; its reply route marks what passes.
  const forwarder = `
function ksr_request_route() {
  KSR.forward_uri(KSR.pv.get("$hdr(X-Next)"));
}
function ksr_reply_route() {
  KSR.hdr.append("X-Reply-Tenant: a\\r\\n");
}
`;

  it("go back to the tenant that forwarded the request, named in our Via, through its reply route", async () => {
    srv = await startTenants({ "a.js": forwarder, "b.js": replyWith("tenant b") }, TWO_TENANTS());
    const callee = await UdpPeer.open();
    try {
      await peer!.send(
        buildRequest({ method: "MESSAGE", uri: "sip:bob@a.example", viaPort: peer!.port, headers: [`X-Next: sip:127.0.0.1:${callee.port}`] }),
        srv.udpPort,
      );
      const forwarded = (await callee.next()).data;
      expect(headerValue(forwarded, "via")).toMatch(/;ksr-tenant=a(;|$)/);
      // The response's To (example.test) selects no tenant: only our Via names a.
      await callee.send(buildResponseTo(forwarded, 202, "Accepted"), srv.udpPort);
      const back = (await peer!.next()).data;
      expect(statusOf(back)).toBe(202);
      expect(headerValue(back, "x-reply-tenant")).toBe("a");
      expect(headerValue(back, "via")).not.toContain("ksr-tenant");

      // A response that names no tenant and selects none is dropped.
      const stray = buildResponseTo(forwarded, 202, "Accepted").replace(/;ksr-tenant=a/, "");
      await callee.send(stray, srv.udpPort);
      expect(await peer!.poll(300)).toBeUndefined();
      expect(srv.server.router.unclaimedResponses).toBe(1);
    } finally {
      await callee.close();
    }
  });
});
