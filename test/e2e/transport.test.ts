/**
 * Transport and addressing over real sockets, with host-side route
 * functions standing in for a script (the script path is covered in
 * scripts.test.ts): framing, connection reuse, keepalives, limits, reply
 * addressing (RFC 3261 §18.2.2, RFC 3581), malformed input, stateless
 * forwarding of requests and responses.
 */
import { TableDnsLookups } from "../../host/dns/table.js";
import { describe, expect, it } from "vitest";
import { HostRouteRunner, startScript, startServer, type HostRoutes, type RunningServer } from "./harness.js";
import {
  TcpListenerPeer,
  TcpPeer,
  buildRequest,
  buildResponseTo,
  headerValue,
  headerValues,
  reasonOf,
  startLineOf,
  statusOf,
} from "./sip-client.js";
import type { SipServerOptions } from "../../host/core/server.js";
import { testbed } from "./testbed.js";

const replyOk: HostRoutes = {
  ksr_request_route: (ctx) => {
    ctx.host.sendReply(ctx, 200, "OK");
  },
};

const forwardAll: HostRoutes = {
  ksr_request_route: (ctx) => {
    ctx.host.forward(ctx);
  },
};

const bed = testbed();
const { logs, udpPeer, tcpPeer, closeAfter } = bed;

async function serve(routes: HostRoutes, options: Partial<SipServerOptions> = {}): Promise<RunningServer> {
  return bed.serve(await startServer(new HostRouteRunner(routes), options));
}

describe("replies over UDP", () => {
  it("answers at the sent-by address and adds no received when sent-by is the source", async () => {
    const srv = await serve(replyOk);
    const client = await udpPeer();
    await client.send(buildRequest({ viaPort: client.port }), srv.udpPort);
    const res = await client.next();
    expect(statusOf(res.data)).toBe(200);
    expect(res.fromPort).toBe(srv.udpPort); // sent from the socket the request came in on
    expect(headerValue(res.data, "via")).not.toContain("received=");
    expect(headerValue(res.data, "to")).toMatch(/;tag=[0-9a-f]+/);
  });

  it("adds received and rport and answers to the source port (RFC 3581)", async () => {
    const srv = await serve(replyOk);
    const client = await udpPeer();
    // sent-by names another host and port: only rport brings the reply back here.
    await client.send(buildRequest({ viaHost: "192.0.2.7", viaPort: 5070, viaParams: ";rport" }), srv.udpPort);
    const res = await client.next();
    expect(statusOf(res.data)).toBe(200);
    expect(headerValue(res.data, "via")).toMatch(new RegExp(`^SIP/2\\.0/UDP 192\\.0\\.2\\.7:5070;branch=z9hG4bK\\w+;rport=${client.port};received=127\\.0\\.0\\.1$`));
  });

  it("adds received when sent-by is not the source address, and keeps the other Vias", async () => {
    const srv = await serve(replyOk);
    const client = await udpPeer();
    // sent-by is a name: the reply goes to received (our client) at the sent-by port.
    const req = buildRequest({ viaHost: "localhost.invalid", viaPort: client.port, headers: ["Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKdown"] });
    await client.send(req, srv.udpPort);
    const res = await client.next();
    const vias = headerValues(res.data, "via");
    expect(vias).toHaveLength(2);
    expect(vias[0]).toContain("received=127.0.0.1");
    expect(vias[1]).toBe("SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKdown");
  });

  it("forces rport when the script asks (force_rport)", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        ctx.forceRport = true;
        ctx.host.sendReply(ctx, 404, "Not Here");
      },
    });
    const client = await udpPeer();
    await client.send(buildRequest({ viaHost: "127.0.0.1", viaPort: 5999 }), srv.udpPort);
    const res = await client.next();
    expect(startLineOf(res.data)).toBe("SIP/2.0 404 Not Here");
    const via = headerValue(res.data, "via")!;
    expect(via).toContain(`;rport=${client.port}`);
    expect(via).toContain(";received=127.0.0.1");
  });

  it("uses one To tag for every reply to the same request, none for 100", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        ctx.host.sendReply(ctx, 100, "Trying");
        ctx.host.sendReply(ctx, 180, "Ringing");
        ctx.host.sendReply(ctx, 486, "Busy Here");
      },
    });
    const client = await udpPeer();
    await client.send(buildRequest({ method: "INVITE", viaPort: client.port }), srv.udpPort);
    const [trying, ringing, busy] = [await client.next(), await client.next(), await client.next()];
    expect(headerValue(trying.data, "to")).not.toContain("tag=");
    const tag = /;tag=(\w+)/.exec(headerValue(ringing.data, "to")!)![1];
    expect(headerValue(busy.data, "to")).toContain(`;tag=${tag}`);
  });

  it("never answers an ACK", async () => {
    let result: boolean | undefined;
    const srv = await serve({
      ksr_request_route: (ctx) => {
        result = ctx.host.sendReply(ctx, 200, "OK");
      },
    });
    const client = await udpPeer();
    await client.send(buildRequest({ method: "ACK", viaPort: client.port }), srv.udpPort);
    expect(await client.poll(300)).toBeUndefined();
    expect(result).toBe(false);
  });

  it("ignores CRLF keepalive datagrams", async () => {
    const srv = await serve(replyOk);
    const client = await udpPeer();
    await client.send("\r\n\r\n", srv.udpPort);
    expect(await client.poll(200)).toBeUndefined();
    expect(logs.find((l) => l.includes("malformed"))).toBeUndefined();
  });
});

describe("TCP", () => {
  it("answers on the connection the request came in on", async () => {
    const srv = await serve(replyOk);
    const client = await tcpPeer(srv.tcpPort);
    // sent-by port 5999 has no listener: only the same connection reaches us.
    await client.write(buildRequest({ transport: "TCP", viaPort: 5999 }));
    const res = await client.next();
    expect(statusOf(res)).toBe(200);
    expect(headerValue(res, "via")).toMatch(/^SIP\/2\.0\/TCP 127\.0\.0\.1:5999;branch=/);
    expect(srv.server.tcpConnectionCount).toBe(1);
  });

  it("frames two messages sent in one write", async () => {
    const srv = await serve(replyOk);
    const client = await tcpPeer(srv.tcpPort);
    const a = buildRequest({ transport: "TCP", callId: "first@test" });
    const b = buildRequest({ transport: "TCP", callId: "second@test", body: "v=0\r\n" , headers: ["Content-Type: application/sdp"]});
    await client.write(a + b);
    const r1 = await client.next();
    const r2 = await client.next();
    expect([headerValue(r1, "call-id"), headerValue(r2, "call-id")]).toEqual(["first@test", "second@test"]);
  });

  it("frames one message split over three writes", async () => {
    const srv = await serve(replyOk);
    const client = await tcpPeer(srv.tcpPort);
    const req = buildRequest({ transport: "TCP", callId: "split@test", body: "hello body", headers: ["Content-Type: text/plain"] });
    const cut1 = 10; // inside the start line
    const cut2 = req.indexOf("\r\n\r\n") + 2; // between the two CRLFs ending the headers
    await client.write(req.slice(0, cut1));
    await new Promise((r) => setTimeout(r, 30));
    await client.write(req.slice(cut1, cut2));
    await new Promise((r) => setTimeout(r, 30));
    expect(await client.poll(50)).toBeUndefined();
    await client.write(req.slice(cut2));
    const res = await client.next();
    expect(statusOf(res)).toBe(200);
    expect(headerValue(res, "call-id")).toBe("split@test");
  });

  it("answers a CRLFCRLF ping with a CRLF pong (RFC 5626 §3.5.1)", async () => {
    const srv = await serve(replyOk);
    const client = await tcpPeer(srv.tcpPort);
    await client.write("\r\n\r\n");
    expect(await client.next()).toBe("\r\n");
    expect(await client.poll(100)).toBeUndefined(); // one pong, not two
  });

  it("closes the connection on a framing error, with a log line", async () => {
    const srv = await serve(replyOk);
    const client = await tcpPeer(srv.tcpPort);
    await client.write("OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nContent-Length: lots\r\n\r\n");
    await client.waitClosed();
    await logs.waitFor((l) => l.startsWith("warn [transport] tcp connection") && l.includes("closing"));
  });

  it("closes idle connections after the idle timeout", async () => {
    const srv = await serve(replyOk, { streamLimits: { idleTimeoutMs: 150 } });
    const client = await tcpPeer(srv.tcpPort);
    const started = Date.now();
    await client.waitClosed(2000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    for (let i = 0; i < 50 && srv.server.tcpConnectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(srv.server.tcpConnectionCount).toBe(0);
  });

  it("refuses connections beyond the limit", async () => {
    const srv = await serve(replyOk, { streamLimits: { maxInboundConnections: 1 } });
    const first = await tcpPeer(srv.tcpPort);
    const second = await tcpPeer(srv.tcpPort);
    await second.waitClosed();
    await first.write(buildRequest({ transport: "TCP" }));
    expect(statusOf(await first.next())).toBe(200);
    expect(logs.find((l) => l.includes("refused connection"))).toBeDefined();
  });
});

describe("malformed messages", () => {
  it("answers 400 naming the problem", async () => {
    const srv = await serve(replyOk);
    const client = await udpPeer();
    const bad = buildRequest({ viaPort: client.port }).replace(/CSeq: 1 OPTIONS/, "CSeq: one OPTIONS");
    await client.send(bad, srv.udpPort);
    const res = await client.next();
    expect(statusOf(res.data)).toBe(400);
    expect(reasonOf(res.data)).toBe("Bad CSeq");
    expect(headerValue(res.data, "call-id")).toBe(headerValue(bad, "call-id"));
    expect(headerValue(res.data, "to")).toMatch(/;tag=/);
  });

  it("answers 400 over TCP on the same connection", async () => {
    const srv = await serve(replyOk);
    const client = await tcpPeer(srv.tcpPort);
    await client.write(buildRequest({ transport: "TCP", viaPort: 5999 }).replace(/^To: .*\r\n/m, ""));
    const res = await client.next();
    expect(startLineOf(res)).toBe("SIP/2.0 400 Missing To");
  });

  it("drops a malformed request without Via, with a log line", async () => {
    const srv = await serve(replyOk);
    const client = await udpPeer();
    const noVia = buildRequest({ viaPort: client.port }).replace(/^Via: .*\r\n/m, "");
    await client.send(noVia, srv.udpPort);
    expect(await client.poll(300)).toBeUndefined();
    expect(logs.find((l) => l.includes("dropped malformed request") && l.includes("Missing Via"))).toBeDefined();
  });

  it("drops a malformed response, with a log line", async () => {
    let replyRouteRan = false;
    const srv = await serve({ ...replyOk, ksr_reply_route: () => (replyRouteRan = true) });
    const client = await udpPeer();
    const bad = `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:${srv.udpPort};branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: abc OPTIONS\r\nContent-Length: 0\r\n\r\n`;
    await client.send(bad, srv.udpPort);
    expect(await client.poll(300)).toBeUndefined();
    expect(replyRouteRan).toBe(false);
    expect(logs.find((l) => l.includes("dropped malformed response") && l.includes("Bad CSeq"))).toBeDefined();
  });

  it("survives a route that throws on the host side (internal error logged)", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        if (ctx.msg.method === "INFO") throw new Error("host bug");
        ctx.host.sendReply(ctx, 200, "OK");
      },
    });
    const client = await udpPeer();
    await client.send(buildRequest({ method: "INFO", viaPort: client.port }), srv.udpPort);
    await logs.waitFor((l) => l.includes("internal error") && l.includes("host bug"));
    await client.send(buildRequest({ viaPort: client.port }), srv.udpPort);
    expect(statusOf((await client.next()).data)).toBe(200);
  });
});

describe("stateless forwarding", () => {
  it("forwards a request with our Via on top, Max-Forwards untouched, same branch on retransmission", async () => {
    const srv = await serve(forwardAll);
    const caller = await udpPeer();
    const callee = await udpPeer();
    const req = buildRequest({ uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: caller.port, maxForwards: 7 });
    await caller.send(req, srv.udpPort);
    const out = await callee.next();
    expect(out.fromPort).toBe(srv.udpPort);
    expect(startLineOf(out.data)).toBe(`OPTIONS sip:bob@127.0.0.1:${callee.port} SIP/2.0`);
    const vias = headerValues(out.data, "via");
    expect(vias).toHaveLength(2);
    expect(vias[0]).toMatch(new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${srv.udpPort};branch=z9hG4bK\\w+$`));
    expect(vias[1]).toBe(headerValue(req, "via"));
    expect(headerValue(out.data, "max-forwards")).toBe("7");

    await caller.send(req, srv.udpPort); // retransmission
    const again = await callee.next();
    expect(headerValues(again.data, "via")[0]).toBe(vias[0]);

    const other = buildRequest({ uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: caller.port });
    await caller.send(other, srv.udpPort);
    expect(headerValues((await callee.next()).data, "via")[0]).not.toBe(vias[0]);
  });

  it("forwards the response per the next Via and drops one whose top Via is not ours", async () => {
    const srv = await serve(forwardAll);
    const caller = await udpPeer();
    const callee = await udpPeer();
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: caller.port }), srv.udpPort);
    const forwarded = (await callee.next()).data;
    await callee.send(buildResponseTo(forwarded, 200, "OK"), srv.udpPort);
    const res = await caller.next();
    expect(statusOf(res.data)).toBe(200);
    expect(headerValues(res.data, "via")).toEqual([headerValues(forwarded, "via")[1]]);

    // A response whose top Via is the caller's own, not ours.
    await callee.send(buildResponseTo(buildRequest({ viaPort: caller.port }), 200, "OK"), srv.udpPort);
    expect(await caller.poll(300)).toBeUndefined();
    expect(logs.find((l) => l.includes("is not ours"))).toBeDefined();
  });

  it("stamps received/rport on the caller's Via so the response finds its way back (RFC 3581)", async () => {
    const srv = await serve(forwardAll);
    const caller = await udpPeer();
    const callee = await udpPeer();
    await caller.send(
      buildRequest({ uri: `sip:bob@127.0.0.1:${callee.port}`, viaHost: "10.9.8.7", viaPort: 5060, viaParams: ";rport" }),
      srv.udpPort,
    );
    const out = (await callee.next()).data;
    const callerVia = headerValues(out, "via")[1]!;
    expect(callerVia).toMatch(new RegExp(`^SIP/2\\.0/UDP 10\\.9\\.8\\.7:5060;branch=z9hG4bK\\w+;rport=${caller.port};received=127\\.0\\.0\\.1$`));
    await callee.send(buildResponseTo(out, 200, "OK"), srv.udpPort);
    const res = await caller.next();
    expect(statusOf(res.data)).toBe(200);
    expect(headerValues(res.data, "via")).toEqual([callerVia]);
  });

  it("adds ;rport to its Via when asked (add_local_rport)", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        ctx.addLocalRport = true;
        ctx.host.forward(ctx);
      },
    });
    const caller = await udpPeer();
    const callee = await udpPeer();
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: caller.port }), srv.udpPort);
    expect(headerValues((await callee.next()).data, "via")[0]).toMatch(/;rport$/);
  });

  it("forwards to an explicit URI, applying the new R-URI and header edits", async () => {
    let target = "";
    const srv = await serve({
      ksr_request_route: (ctx) => {
        ctx.newRequestUri = "sip:carol@example.test";
        ctx.edits.appended.push("X-Edited: yes\r\n");
        ctx.host.forward(ctx, target);
      },
    });
    const caller = await udpPeer();
    const callee = await udpPeer();
    target = `sip:127.0.0.1:${callee.port}`;
    await caller.send(buildRequest({ viaPort: caller.port }), srv.udpPort);
    const out = (await callee.next()).data;
    expect(startLineOf(out)).toBe("OPTIONS sip:carol@example.test SIP/2.0");
    expect(headerValue(out, "x-edited")).toBe("yes");
  });

  it("refuses sips and unknown transports", async () => {
    const results: boolean[] = [];
    const srv = await serve({
      ksr_request_route: (ctx) => {
        results.push(ctx.host.forward(ctx, "sips:bob@127.0.0.1:5999"));
        results.push(ctx.host.forward(ctx, "sip:bob@127.0.0.1:5999;transport=sctp"));
        ctx.host.sendReply(ctx, 200, "OK");
      },
    });
    const caller = await udpPeer();
    await caller.send(buildRequest({ viaPort: caller.port }), srv.udpPort);
    await caller.next();
    expect(results).toEqual([false, false]);
  });

  it("resolves a host name before sending", async () => {
    const dns = new TableDnsLookups({ hosts: { "callee.example.test": "127.0.0.1" } });
    const srv = await serve({ ksr_request_route: (ctx) => void ctx.host.forward(ctx) }, { dns });
    const caller = await udpPeer();
    const callee = await udpPeer();
    await caller.send(buildRequest({ uri: `sip:bob@callee.example.test:${callee.port}`, viaPort: caller.port }), srv.udpPort);
    expect(startLineOf((await callee.next()).data)).toContain("callee.example.test");
    // The port is written: RFC 3263 §4.2 asks for the address only.
    expect(dns.asked).toEqual(["a/callee.example.test"]);
  });

  it("a stateless forward whose TCP connection is refused goes on to the next SRV target (RFC 3263 §4.3)", async () => {
    const dead = await TcpListenerPeer.open();
    const deadPort = dead.port;
    await dead.close(); // nothing listens there now: the connection is refused
    const listener = await TcpListenerPeer.open();
    closeAfter(() => listener.close());
    const dns = new TableDnsLookups({
      srv: {
        "_sip._tcp.failover.test": [
          { priority: 10, weight: 0, port: deadPort, name: "h.test" },
          { priority: 20, weight: 0, port: listener.port, name: "h.test" },
        ],
      },
      hosts: { "h.test": "127.0.0.1" },
    });
    const srv = await serve(forwardAll, { dns });
    const caller = await udpPeer();
    // Resolved after the route call the first time, from the cache the second; both times the dead target comes first.
    await caller.send(buildRequest({ uri: "sip:bob@failover.test;transport=tcp", viaPort: caller.port, callId: "first@test" }), srv.udpPort);
    const conn = await listener.nextConnection();
    closeAfter(() => conn.close());
    expect(headerValue(await conn.next(), "call-id")).toBe("first@test");
    await caller.send(buildRequest({ uri: "sip:bob@failover.test;transport=tcp", viaPort: caller.port, callId: "second@test" }), srv.udpPort);
    expect(headerValue(await conn.next(), "call-id")).toBe("second@test");
    expect(logs.find((l) => l.includes(`connection to tcp:127.0.0.1:${deadPort} failed, trying the next target`))).toBeDefined();
  });

  it("a stateful branch whose TCP connection is refused fails at once and the next SRV target gets the INVITE (RFC 3263 §4.3)", async () => {
    const dead = await TcpListenerPeer.open();
    const deadPort = dead.port;
    await dead.close();
    const listener = await TcpListenerPeer.open();
    closeAfter(() => listener.close());
    const dns = new TableDnsLookups({
      srv: {
        "_sip._tcp.failover.test": [
          { priority: 10, weight: 0, port: deadPort, name: "h.test" },
          { priority: 20, weight: 0, port: listener.port, name: "h.test" },
        ],
      },
      hosts: { "h.test": "127.0.0.1" },
    });
    const srv = bed.serve(await startScript("relay.js", { dns }));
    const caller = await udpPeer();
    await caller.send(buildRequest({ method: "INVITE", uri: "sip:bob@failover.test;transport=tcp", viaPort: caller.port, callId: "stateful-failover@test" }), srv.udpPort);
    // Without the connection failure reported, the branch would wait for its timer (30 s) before the next target.
    const conn = await listener.nextConnection();
    closeAfter(() => conn.close());
    const invite = await conn.next();
    expect(startLineOf(invite)).toMatch(/^INVITE sip:bob@failover\.test;transport=tcp SIP\/2\.0/);
    await conn.write(buildResponseTo(invite, 200, "OK"));
    const answers: number[] = [];
    for (let i = 0; i < 3 && !answers.includes(200); i++) answers.push(statusOf((await caller.next()).data));
    expect(answers).toContain(200);
  });

  it("forwards over TCP (Content-Length kept) and routes the response back over UDP", async () => {
    const srv = await serve(forwardAll);
    const caller = await udpPeer();
    const listener = await TcpListenerPeer.open();
    closeAfter(() => listener.close());
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${listener.port};transport=tcp`, viaPort: caller.port }), srv.udpPort);
    const conn = await listener.nextConnection();
    closeAfter(() => conn.close());
    const out = await conn.next();
    expect(headerValues(out, "via")[0]).toMatch(new RegExp(`^SIP/2\\.0/TCP 127\\.0\\.0\\.1:${srv.tcpPort};branch=`));
    expect(headerValue(out, "content-length")).toBe("0");
    await conn.write(buildResponseTo(out, 200, "OK"));
    expect(statusOf((await caller.next()).data)).toBe(200);

    // A second request to the same destination reuses the open connection.
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${listener.port};transport=tcp`, viaPort: caller.port, callId: "reuse@test" }), srv.udpPort);
    expect(headerValue(await conn.next(), "call-id")).toBe("reuse@test");
    await expect(listener.nextConnection(200)).rejects.toThrow();
  });

  it("sends the response to a TCP caller back on its connection", async () => {
    const srv = await serve(forwardAll);
    const callee = await udpPeer();
    const caller = await tcpPeer(srv.tcpPort);
    // sent-by port 5999 has no listener: only the caller's connection reaches it.
    await caller.write(buildRequest({ transport: "TCP", uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: 5999 }));
    const out = (await callee.next()).data;
    expect(headerValues(out, "via")[0]).toMatch(/;i=\d+$/);
    await callee.send(buildResponseTo(out, 180, "Ringing"), srv.udpPort);
    const res = await caller.next();
    expect(statusOf(res)).toBe(180);
    expect(headerValues(res, "via")).toHaveLength(1);
  });
});

describe("lifecycle", () => {
  it("stop() closes sockets and connections", async () => {
    const srv = await serve(replyOk);
    const client = await tcpPeer(srv.tcpPort);
    await bed.stopServer();
    await client.waitClosed();
    await expect(TcpPeer.connect(srv.tcpPort)).rejects.toThrow();
  });
});
