/**
 * A tenant running a stateful proxy, synchronously and demoted to
 * asynchronous execution: the branch route nests inside t_relay, onreply
 * and failure routes carry the transaction on when they finish, and each
 * response goes upstream once, in order.
 */
import { describe, expect, it } from "vitest";
import type { ExecutionMode } from "../../sandbox/runner.js";
import { UdpPeer, buildRequest, buildResponseTo, headerValue, reasonOf, statusOf, type Received } from "../e2e/sip-client.js";
import { expectOptions200, startTenants, type TenantServer, tenantTestbed } from "./harness.js";
import { markedProxy } from "./scripts.js";

const { logs, peer, serve } = tenantTestbed();
let srv: TenantServer | undefined;

const tenants = (mode: ExecutionMode) => `tenants:
  - id: proxy
    script: proxy.js
    egress: { allow: [127.0.0.0/8] }
    mode: ${mode}
    match: { domains: [proxy.example] }
  - id: other
    script: other.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [other.example] }
`;
const OTHER = `function ksr_request_route() { KSR.sl.sl_send_reply(200, "other"); }\n`;

/** The next message that is not a 100 Trying. */
async function nextNot100(p: UdpPeer): Promise<Received> {
  for (let i = 0; i < 5; i++) {
    const m = await p.next(3000);
    if (statusOf(m.data) !== 100) return m;
  }
  throw new Error("only 100 Trying received");
}

describe.each(["sync", "async"] as const)("stateful proxy tenant in %s mode", (mode) => {
  it("runs branch, onreply and failure routes, relaying each response once and in order", async () => {
    srv = serve(await startTenants({ "proxy.js": markedProxy("v1"), "other.js": OTHER }, tenants(mode)));
    expect(srv.registry.get("proxy")!.mode).toBe(mode);
    const caller = await peer();
    const callee = await peer();
    await caller.send(
      buildRequest({ method: "INVITE", uri: "sip:bob@proxy.example", viaPort: caller.port, headers: [`X-Next: sip:127.0.0.1:${callee.port}`] }),
      srv.udpPort,
    );
    const relayed = (await callee.next()).data;
    expect(relayed.startsWith("INVITE sip:bob@proxy.example SIP/2.0")).toBe(true);
    expect(headerValue(relayed, "x-branch")).toBe("v1");
    expect(statusOf((await caller.next()).data)).toBe(100);
    // 180 and 486 back to back: 180 first (with the onreply mark), then the failure route's 488.
    await callee.send(buildResponseTo(relayed, 180, "Ringing"), srv.udpPort);
    await callee.send(buildResponseTo(relayed, 486, "Busy Here"), srv.udpPort);
    const ringing = await caller.next();
    expect(statusOf(ringing.data)).toBe(180);
    expect(headerValue(ringing.data, "x-onreply")).toBe("v1");
    expect(headerValue(ringing.data, "x-reply-route")).toBe("v1");
    const final = await caller.next();
    expect([statusOf(final.data), reasonOf(final.data)]).toEqual([488, "v1 failure 486"]);
    // The callee got its ACK for the 486 (RFC 3261 §17.1.1.3), and the caller nothing more.
    expect((await callee.next()).data.startsWith("ACK ")).toBe(true);
    expect(await caller.poll(300)).toBeUndefined();
    expect(await expectOptions200(caller, srv.udpPort, "other.example")).toBe("other");
    const counters = srv.registry.get("proxy")!.counters;
    // request route, branch route, reply and onreply routes twice (180, 486), failure route
    expect(counters.messages).toBe(7);
    expect(counters.routeErrors).toBe(0);
  });

  it("relays a 2xx to a MESSAGE with the route marks; its retransmission is absorbed by the client transaction", async () => {
    srv = serve(await startTenants({ "proxy.js": markedProxy("v1"), "other.js": OTHER }, tenants(mode)));
    const caller = await peer();
    const callee = await peer();
    await caller.send(
      buildRequest({ method: "MESSAGE", uri: "sip:bob@proxy.example", viaPort: caller.port, headers: [`X-Next: sip:127.0.0.1:${callee.port}`] }),
      srv.udpPort,
    );
    const relayed = (await callee.next()).data;
    await callee.send(buildResponseTo(relayed, 202, "Accepted"), srv.udpPort);
    const answer = await nextNot100(caller);
    expect([statusOf(answer.data), headerValue(answer.data, "x-onreply"), headerValue(answer.data, "x-reply-route")]).toEqual([202, "v1", "v1"]);
    // The non-INVITE client transaction in Completed absorbs the retransmitted 202 (RFC 3261 §17.1.2.2).
    await callee.send(buildResponseTo(relayed, 202, "Accepted"), srv.udpPort);
    expect(await caller.poll(300)).toBeUndefined();
  });
});
