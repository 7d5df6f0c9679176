/**
 * The multi-tenant example (examples/multi-tenant/tenants.yaml) as shipped,
 * over real UDP: the voicemail tenant answers by itself, the acme tenant
 * proxies calls and sends busy ones on to voicemail through the same
 * server, and other domains get 404.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { UdpPeer, buildResponseTo, headerValue, headerValues, randomToken, reasonOf, statusOf, type Received } from "../e2e/sip-client.js";
import { serveTenantsFile, tenantTestbed } from "./harness.js";

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../examples/multi-tenant/tenants.yaml");

const { logs, peer, serve } = tenantTestbed();
let srv: Awaited<ReturnType<typeof serveTenantsFile>> | undefined;

/** A request from `from` with the given Request-URI and To URI. */
function request(method: string, ruri: string, to: string, from: UdpPeer, extra: string[] = []): string {
  const lines = [
    `${method} ${ruri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${from.port};branch=z9hG4bK${randomToken()}`,
    "Max-Forwards: 70",
    `From: <sip:alice@acme.example>;tag=${randomToken()}`,
    `To: <${to}>`,
    `Call-ID: ${randomToken()}@example-test`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:alice@127.0.0.1:${from.port}>`,
    ...extra,
    "Content-Length: 0",
  ];
  return lines.join("\r\n") + "\r\n\r\n";
}

async function finalOf(p: UdpPeer): Promise<Received> {
  for (let i = 0; i < 5; i++) {
    const m = await p.next(3000);
    if (statusOf(m.data) >= 200) return m;
  }
  throw new Error("no final response");
}

describe("examples/multi-tenant", () => {
  it("voicemail answers OPTIONS, INVITE, MESSAGE and anything else by itself", async () => {
    srv = serve(await serveTenantsFile(EXAMPLE));
    const c = await peer();
    const send = async (method: string) => {
      await c.send(request(method, "sip:bob@voicemail.example", "sip:bob@voicemail.example", c), srv!.udpPort);
      return (await c.next()).data;
    };
    const options = await send("OPTIONS");
    expect([statusOf(options), reasonOf(options), headerValue(options, "allow")]).toEqual([200, "Voicemail Ready", "INVITE, ACK, OPTIONS, MESSAGE"]);
    const invite = await send("INVITE");
    expect([statusOf(invite), reasonOf(invite), headerValue(invite, "retry-after")]).toEqual([480, "Out Of Office", "3600"]);
    expect(reasonOf(await send("MESSAGE"))).toBe("Stored 1");
    expect(reasonOf(await send("MESSAGE"))).toBe("Stored 2");
    expect(statusOf(await send("SUBSCRIBE"))).toBe(405);
    // Its $shv is its own: the acme tenant's state has no "messages".
    expect(srv.registry.get("acme")!.state.sharedVars.has("messages")).toBe(false);
  });

  it("acme relays a call to the phone and the phone's 200 back, Record-Routed", async () => {
    srv = serve(await serveTenantsFile(EXAMPLE));
    const caller = await peer();
    const phone = await peer();
    await caller.send(request("INVITE", `sip:bob@127.0.0.1:${phone.port}`, "sip:bob@acme.example", caller), srv.udpPort);
    const relayed = (await phone.next()).data;
    expect(relayed.startsWith(`INVITE sip:bob@127.0.0.1:${phone.port} SIP/2.0`)).toBe(true);
    expect(headerValues(relayed, "record-route")[0]).toContain(`127.0.0.1:${srv.udpPort}`);
    await phone.send(buildResponseTo(relayed, 200, "OK"), srv.udpPort);
    const answer = await finalOf(caller);
    expect(statusOf(answer.data)).toBe(200);
  });

  it("acme sends a busy call on to the voicemail tenant, whose answer reaches the caller", async () => {
    srv = serve(await serveTenantsFile(EXAMPLE));
    const caller = await peer();
    const phone = await peer();
    await caller.send(request("INVITE", `sip:bob@127.0.0.1:${phone.port}`, "sip:bob@acme.example", caller), srv.udpPort);
    const relayed = (await phone.next()).data;
    await phone.send(buildResponseTo(relayed, 486, "Busy Here"), srv.udpPort);
    const answer = await finalOf(caller);
    expect([statusOf(answer.data), reasonOf(answer.data)]).toEqual([480, "Out Of Office"]);
    // The INVITE, and the ACK acme's client transaction sends for the 480 (RFC 3261 §17.1.1.3).
    expect(srv.registry.get("voicemail")!.counters.messages).toBe(2);
    expect(srv.registry.get("acme")!.counters.routeErrors).toBe(0);
  });

  it("answers 404 for a domain no tenant serves", async () => {
    srv = serve(await serveTenantsFile(EXAMPLE));
    const c = await peer();
    await c.send(request("INVITE", "sip:carol@elsewhere.example", "sip:carol@elsewhere.example", c), srv.udpPort);
    expect(statusOf((await c.next()).data)).toBe(404);
  });
});
