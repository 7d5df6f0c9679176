/**
 * Egress policy: a tenant of a tenants file may not send requests to
 * loopback, link-local or private addresses unless its `egress.allow` says
 * so (host/core/egress.ts); a refused destination fails the relay with a
 * log line and nothing is sent. Over real UDP on 127.0.0.1: the first
 * tenant relays to a peer on loopback and is refused, the second has
 * loopback allowed and reaches it; a 10.0.0.1 target is refused without
 * any network.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compileEgress, DEFAULT_EGRESS_DENY } from "../../host/core/egress.js";
import { TableDnsLookups } from "../../host/dns/table.js";
import { UdpPeer } from "../e2e/sip-client.js";
import { LogCapture, ask, startTenants, type TenantServer } from "./harness.js";

const logs = new LogCapture();
let srv: TenantServer | undefined;
let caller: UdpPeer | undefined;
let target: UdpPeer | undefined;

beforeEach(async () => {
  logs.install();
  caller = await UdpPeer.open();
  target = await UdpPeer.open();
});
afterEach(async () => {
  await caller?.close();
  await target?.close();
  await srv?.stop();
  srv = undefined;
  logs.uninstall();
});

/** A stateless relay to `host:port` that answers 500 when the forward fails. */
const relayTo = (host: string, port: number) =>
  `function ksr_request_route() { if (KSR.forward_uri("sip:" + "${host}" + ":" + ${port}) < 0) KSR.sl.sl_send_reply(500, "Not Relayed"); }\n`;

describe("egress policy", () => {
  it("refuses a tenant's request to loopback by default, and sends it where `allow` lets it", async () => {
    srv = await startTenants(
      { "closed.js": relayTo("127.0.0.1", target!.port), "open.js": relayTo("127.0.0.1", target!.port) },
      `tenants:
  - id: closed
    script: closed.js
    match: { domains: [closed.example] }
  - id: open
    script: open.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [open.example] }
`,
    );
    const refused = await ask(caller!, srv.udpPort, { uri: "sip:x@closed.example" });
    expect(refused.status).toBe(500);
    expect(await target!.poll(300)).toBeUndefined();
    await logs.waitFor((l) => l.includes(`to 127.0.0.1 not sent: denied by tenant closed's egress policy`));
    await caller!.send(
      `OPTIONS sip:x@open.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${caller!.port};branch=z9hG4bK-egress-1\r\nFrom: <sip:a@open.example>;tag=1\r\nTo: <sip:x@open.example>\r\nCall-ID: egress-open\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`,
      srv.udpPort,
    );
    const relayed = await target!.poll(2000);
    expect(relayed).toBeDefined();
    expect(relayed!.data).toMatch(/^OPTIONS sip:x@open\.example SIP\/2\.0\r\n/);
  });

  it("refuses 10.0.0.1 without sending anything (a private range)", async () => {
    srv = await startTenants({ "t.js": relayTo("10.0.0.1", 5060) }, `tenants:\n  - id: t\n    script: t.js\n    match: { domains: [t.example] }\n`);
    expect((await ask(caller!, srv.udpPort, { uri: "sip:x@t.example" })).status).toBe(500);
    await logs.waitFor((l) => l.includes("to 10.0.0.1 not sent: denied by tenant t's egress policy"));
  });

  it("holds the addresses a name resolves to (RFC 3263) to the policy: refused on loopback, sent where allowed", async () => {
    const relayByName = `function ksr_request_route() { KSR.tm.t_on_failure("failed"); if (KSR.tm.t_relay_to_proxy("udp:peer.test:${target!.port}") < 0) KSR.sl.sl_send_reply(500, "Not Relayed"); }
function failed() { KSR.tm.t_reply(502, "Refused " + KSR.pv.get("$T_reply_code")); }\n`;
    srv = await startTenants(
      { "closed.js": relayByName, "open.js": relayByName },
      `tenants:
  - id: closed
    script: closed.js
    match: { domains: [closed.example] }
  - id: open
    script: open.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [open.example] }
`,
      { server: { dns: new TableDnsLookups({ hosts: { "peer.test": "127.0.0.1" } }) } },
    );
    // The name is resolved while the transaction waits; the refused send ends the branch as a transport error (503) and the failure route answers.
    const refused = await ask(caller!, srv.udpPort, { uri: "sip:x@closed.example" });
    expect(`${refused.status} ${refused.reason}`).toBe("502 Refused 503");
    await logs.waitFor((l) => l.includes(`to 127.0.0.1 not sent: denied by tenant closed's egress policy`));
    expect(await target!.poll(300)).toBeUndefined();
    await caller!.send(
      `OPTIONS sip:x@open.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${caller!.port};branch=z9hG4bK-egress-dns\r\nFrom: <sip:a@open.example>;tag=1\r\nTo: <sip:x@open.example>\r\nCall-ID: egress-dns-open\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`,
      srv.udpPort,
    );
    const relayed = await target!.poll(2000);
    expect(relayed).toBeDefined();
  });

  it("the default deny list covers loopback, link-local, private and shared ranges; public addresses pass; allow wins", () => {
    const policy = compileEgress({ allow: ["10.1.0.0/16"], deny: [...DEFAULT_EGRESS_DENY] }, "t")!;
    for (const ip of ["127.0.0.1", "10.0.0.1", "172.16.5.5", "192.168.1.1", "169.254.0.1", "100.64.0.1", "::1", "fe80::1", "fd00::1"]) {
      expect(policy.refusal(ip), ip).toBe("denied by tenant t's egress policy");
    }
    for (const ip of ["192.0.2.10", "8.8.8.8", "2001:db8::1", "10.1.2.3"]) expect(policy.refusal(ip), ip).toBeUndefined();
    // Nothing denied: no policy at all (ksr run script.js).
    expect(compileEgress({ allow: [], deny: [] }, "t")).toBeUndefined();
  });
});

describe("log lines per second (quota logLinesPerSecond)", () => {
  it("a tenant's script that logs 300 lines gets its quota of 50 written, then a line saying 250 were suppressed", async () => {
    srv = await startTenants(
      {
        "chatty.js": `var runs = 0;\nfunction ksr_request_route() { runs++; if (runs === 1) { for (var i = 0; i < 300; i++) KSR.info("line " + i + "\\n"); } else KSR.info("again\\n"); KSR.sl.sl_send_reply(200, "run " + runs); }\n`,
      },
      `tenants:\n  - id: chatty\n    script: chatty.js\n    quotas: { logLinesPerSecond: 50 }\n    match: { domains: [chatty.example] }\n`,
    );
    expect((await ask(caller!, srv.udpPort, { uri: "sip:x@chatty.example" })).reason).toBe("run 1");
    const written = () => logs.lines().filter((l) => /\[chatty\] line \d+/.test(l)).length;
    expect(written()).toBe(50);
    // A line of a later second comes after the notice of what was suppressed.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await ask(caller!, srv.udpPort, { uri: "sip:x@chatty.example" })).reason).toBe("run 2");
    await logs.waitFor((l) => l.includes("[chatty] again"));
    const lines = logs.lines();
    const notice = lines.findIndex((l) => l.includes("[chatty] suppressed 250 log line(s) over the tenant's quota of 50 a second"));
    expect(notice).toBeGreaterThan(-1);
    expect(notice).toBeLessThan(lines.findIndex((l) => l.includes("[chatty] again")));
  });
});

describe("pending transactions (quota transactions)", () => {
  it("a tenant whose proxy holds its quota of pending transactions cannot start another: t_relay fails", async () => {
    // The callee never answers: each relayed INVITE stays pending, holding
    // two transactions (the server one and its branch's client one).
    srv = await startTenants(
      {
        "relay.js": `function ksr_request_route() { if (KSR.is_ACK()) return; KSR.setdsturi("sip:127.0.0.1:${target!.port}"); if (KSR.tm.t_relay() < 0) KSR.sl.sl_send_reply(503, "No Transaction"); }\n`,
      },
      `tenants:\n  - id: small\n    script: relay.js\n    egress: { allow: [127.0.0.0/8] }\n    quotas: { transactions: 4 }\n    match: { domains: [small.example] }\n`,
    );
    for (let i = 1; i <= 2; i++) {
      const r = await ask(caller!, srv.udpPort, { method: "INVITE", uri: "sip:x@small.example", callId: `pending-${i}`, branch: `z9hG4bK-pending-${i}` });
      expect(r.status, logs.lines().join("\n")).toBe(100);
    }
    const third = await ask(caller!, srv.udpPort, { method: "INVITE", uri: "sip:x@small.example", callId: "pending-3", branch: "z9hG4bK-pending-3" });
    expect(third.status, logs.lines().join("\n")).toBe(503);
    await logs.waitFor((l) => l.includes("transaction table full (4)"));
  });
});
