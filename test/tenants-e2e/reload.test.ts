/**
 * Reloading a tenant's script while the server serves: new messages run the
 * new script, a transaction started before the reload finishes with the
 * routes of the script that started it, a script that does not compile
 * leaves the old one running, and the other tenant never notices.
 */
import { describe, expect, it } from "vitest";
import { UdpPeer, buildRequest, buildResponseTo, headerValue, reasonOf, statusOf, type Received } from "../e2e/sip-client.js";
import { resolveTimerConfig } from "../../host/transaction/index.js";
import { ask, expectOptions200, startTenants, type TenantServer, tenantTestbed } from "./harness.js";
import { markedProxy } from "./scripts.js";

const { logs, peer, serve } = tenantTestbed();
let srv: TenantServer | undefined;

const TENANTS = `tenants:
  - id: p
    script: p.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [p.example] }
  - id: other
    script: other.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [other.example] }
`;
const OTHER = `function ksr_request_route() { KSR.sl.sl_send_reply(200, "other"); }\n`;

/** The next message with this Call-ID that passes `accept` (retransmissions of others are skipped); bounded. */
async function nextOf(p: UdpPeer, callId: string, accept: (text: string) => boolean = () => true): Promise<Received> {
  for (let i = 0; i < 200; i++) {
    const m = await p.next(3000);
    if (headerValue(m.data, "call-id") === callId && accept(m.data)) return m;
  }
  throw new Error(`no matching message for ${callId}`);
}

async function nextFinal(p: UdpPeer, callId = ""): Promise<Received> {
  for (let i = 0; i < 200; i++) {
    const m = await p.next(3000);
    if (statusOf(m.data) >= 200 && (callId === "" || headerValue(m.data, "call-id") === callId)) return m;
  }
  throw new Error("no final response");
}

describe("reload", () => {
  it("under traffic: no request goes unanswered, and once the new script answers the old one never does again", async () => {
    srv = serve(await startTenants({ "p.js": markedProxy("v1"), "other.js": OTHER }, TENANTS));
    const s = srv;
    const client = await peer();
    const otherClient = await peer();
    s.rewrite("p.js", markedProxy("v2"));
    const reload = s.registry.reload("p");
    const reasons: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await ask(client, s.udpPort, { method: "OPTIONS", uri: `sip:n${i}@p.example` });
      expect(r.status).toBe(200);
      reasons.push(r.reason);
      if (i % 10 === 0) expect(await expectOptions200(otherClient, s.udpPort, "other.example")).toBe("other");
      if (i === 30) expect(await reload).toEqual({ ok: true });
    }
    const firstNew = reasons.indexOf("v2");
    expect(firstNew).toBeGreaterThanOrEqual(0);
    expect(reasons.slice(firstNew).every((r) => r === "v2")).toBe(true);
    expect(reasons.slice(0, firstNew).every((r) => r === "v1")).toBe(true);
    expect(s.registry.get("p")!.counters.reloads).toBe(1);
    await logs.waitFor((l) => /^info \[tenants\] tenant p: reloaded .*p\.js$/.test(l));
  });

  it("a transaction started before the reload finishes with the old script's routes; a new one uses the new script", async () => {
    // Short RFC 3261 timers, so that the first transaction ends (Timer I = T4) within the test.
    const timerConfig = resolveTimerConfig({ T1: 10, T2: 40, T4: 20 });
    srv = serve(await startTenants({ "p.js": markedProxy("v1"), "other.js": OTHER }, TENANTS, { routing: { proxy: { timerConfig } } }));
    const s = srv;
    const caller = await peer();
    const callee = await peer();
    const invite = (callId: string) =>
      buildRequest({ method: "INVITE", uri: "sip:bob@p.example", callId, viaPort: caller.port, headers: [`X-Next: sip:127.0.0.1:${callee.port}`] });
    const firstInvite = invite("before-reload@test");
    await caller.send(firstInvite, s.udpPort);
    const first = (await nextOf(callee, "before-reload@test")).data;
    expect(headerValue(first, "x-branch")).toBe("v1");

    s.rewrite("p.js", markedProxy("v2"));
    expect(await s.registry.reload("p")).toEqual({ ok: true });
    const tenant = s.registry.get("p")!;
    // The old script stays alive for its transaction.
    expect(tenant.live.size).toBe(2);

    await caller.send(invite("after-reload@test"), s.udpPort);
    const second = (await nextOf(callee, "after-reload@test")).data;
    expect(headerValue(second, "x-branch")).toBe("v2");

    await callee.send(buildResponseTo(first, 486, "Busy Here"), s.udpPort);
    const firstFinal = await nextFinal(caller, "before-reload@test");
    expect(headerValue(firstFinal.data, "call-id")).toBe("before-reload@test");
    expect(reasonOf(firstFinal.data)).toBe("v1 failure 486");

    await callee.send(buildResponseTo(second, 486, "Busy Here"), s.udpPort);
    const secondFinal = await nextFinal(caller, "after-reload@test");
    expect(headerValue(secondFinal.data, "call-id")).toBe("after-reload@test");
    expect(reasonOf(secondFinal.data)).toBe("v2 failure 486");

    // The caller's ACK for the first 488 (§17.1.1.3) confirms that transaction; once it ends,
    // the old script, which nothing uses any more, is disposed.
    const oldRunner = [...tenant.live].find((r) => r !== tenant.runner)!;
    const ack = [
      "ACK sip:bob@p.example SIP/2.0",
      `Via: ${headerValue(firstInvite, "via")}`,
      "Max-Forwards: 70",
      `From: ${headerValue(firstInvite, "from")}`,
      `To: ${headerValue(firstFinal.data, "to")}`,
      "Call-ID: before-reload@test",
      "CSeq: 1 ACK",
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n";
    await caller.send(ack, s.udpPort);
    for (let i = 0; i < 100 && tenant.live.size > 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(tenant.live.size).toBe(1);
    expect(oldRunner.isDisposed).toBe(true);
    expect(tenant.runner.isDisposed).toBe(false);
  });

  it("a script that does not compile leaves the old one running and logs file:line", async () => {
    srv = serve(await startTenants({ "p.js": markedProxy("v1"), "other.js": OTHER }, TENANTS));
    const s = srv;
    const client = await peer();
    s.rewrite("p.js", 'function ksr_request_route() {\n  KSR.sl.sl_send_reply(200, "v2");\n  if (\n}\n');
    const result = await s.registry.reload("p");
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.error).toMatch(/p\.js:4:\d+: Unexpected "}"/);
    const line = await logs.waitFor((l) => l.includes("tenant p: reload failed"));
    expect(line).toMatch(/^err \[tenants\] tenant p: reload failed, the previous script keeps running: .*p\.js:4:\d+: Unexpected "}"/);
    expect((await ask(client, s.udpPort, { method: "OPTIONS", uri: "sip:x@p.example" })).reason).toBe("v1");
    expect(s.registry.get("p")!.counters.reloadFailures).toBe(1);
    expect(await expectOptions200(client, s.udpPort, "other.example")).toBe("other");
  });
});
