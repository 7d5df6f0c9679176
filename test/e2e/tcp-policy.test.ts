/**
 * The stream connection policy (host/transport/connection-policy.ts) on a
 * real server over loopback TCP: peers that do not read, ping floods,
 * slow and trickling senders, per-address and inbound/outbound connection
 * limits, and thousands of hostile connections next to a legitimate client
 * and an outbound relay. Hostile peers connect from other loopback
 * addresses (127.0.0.0/8 is all local on Linux) so that the per-address
 * limit can tell them from the legitimate client on 127.0.0.1.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { HostRouteRunner, startServer, type HostRoutes, type RunningServer } from "./harness.js";
import { TcpListenerPeer, TcpPeer, buildRequest, statusOf, until } from "./sip-client.js";
import type { SipServerOptions } from "../../host/core/server.js";
import { DEFAULT_STREAM_LIMITS, streamLimits, type PolicyCounters } from "../../host/transport/index.js";
import { testbed } from "./testbed.js";

/** Requests to sip:relay@... are forwarded to `relayTarget` (set per test); others are answered 200. */
let relayTarget = "";
/** Extra header of every 200, to make replies big (back-pressure test). */
let padding = "";
const routes: HostRoutes = {
  ksr_request_route: (ctx) => {
    if (ctx.msg.kind === "request" && ctx.msg.requestUri.startsWith("sip:relay@")) {
      ctx.host.forward(ctx, relayTarget);
      return;
    }
    if (padding !== "") ctx.replyHeaders.push(`X-Padding: ${padding}`);
    ctx.host.sendReply(ctx, 200, "OK");
  },
};

const bed = testbed();
const { logs, tcpPeer, closeAfter } = bed;

async function serve(options: Partial<SipServerOptions> = {}): Promise<RunningServer> {
  relayTarget = "";
  padding = "";
  return bed.serve(await startServer(new HostRouteRunner(routes), options));
}

function counters(srv: RunningServer): Readonly<PolicyCounters> {
  const c = srv.server.tcpPolicyCounters;
  if (c === undefined) throw new Error("the server has no TCP connection policy");
  return c;
}

/** A raw connection from `localAddress` that ignores whatever happens to it. */
function rawConnection(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    socket.on("error", () => {});
    socket.once("connect", () => resolve(socket));
    // Refused (reset) before or right after connecting: still a settled attempt.
    socket.once("close", () => resolve(socket));
  });
}

async function ask(client: TcpPeer, uri = "sip:service@127.0.0.1"): Promise<number> {
  await client.write(buildRequest({ transport: "TCP", uri }));
  return statusOf(await client.next(5000));
}

describe("limits", () => {
  it("take the defaults where not given and refuse a value that is not a positive integer, naming the field", () => {
    expect(streamLimits({ maxInboundPerIp: 3 })).toEqual({ ...DEFAULT_STREAM_LIMITS, maxInboundPerIp: 3 });
    expect(() => streamLimits({ maxOutputBytes: 0 })).toThrow(/maxOutputBytes must be a positive integer, not 0/);
    expect(() => streamLimits({ messageDeadlineMs: 1.5 })).toThrow(/messageDeadlineMs/);
  });
});

describe("back-pressure", () => {
  it("closes the connection of a peer that does not read once its queue passes the cap, dropping the message that does not fit", async () => {
    const srv = await serve({ streamLimits: { maxOutputBytes: 256 * 1024 } });
    padding = "x".repeat(60_000);
    const reader = await tcpPeer(srv.tcpPort);
    const stalled = await tcpPeer(srv.tcpPort);
    stalled.socket.pause(); // never reads: the replies pile up in the kernel, then in the server
    // Each request brings a 60 kB reply; the kernel buffers of loopback hold a few MB, so at most
    // 1 000 requests (60 MB of replies) fill them and the server's queue behind them.
    for (let i = 0; i < 1000 && counters(srv).closedOutputFull === 0; i++) {
      if (stalled.socket.destroyed) break;
      stalled.socket.write(buildRequest({ transport: "TCP" }));
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await until("the stalled connection to be closed", () => counters(srv).closedOutputFull === 1);
    expect(counters(srv).droppedMessages).toBe(1);
    expect(logs.find((l) => l.includes("peer is not reading") && l.includes("message of") && l.includes("dropped"))).toBeDefined();
    // The server carries on: the other client is answered.
    padding = "";
    expect(await ask(reader)).toBe(200);
    await until("the closed connection to be gone", () => srv.server.tcpConnectionCount === 1);
  }, 30_000);
});

describe("keep-alive pings", () => {
  it("answers pings up to the per-minute limit and closes a connection that floods them", async () => {
    const srv = await serve({ streamLimits: { maxKeepalivesPerMinute: 5 } });
    const client = await tcpPeer(srv.tcpPort);
    for (let i = 0; i < 5; i++) {
      await client.write("\r\n\r\n");
      expect(await client.next()).toBe("\r\n"); // RFC 5626 §3.5.1 pong
    }
    // A megabyte of CRLFs: the sixth ping closes the connection; the rest is never worked through.
    await client.write("\r\n".repeat(512 * 1024));
    await client.waitClosed(5000);
    expect(counters(srv).closedKeepaliveFlood).toBe(1);
    expect(logs.find((l) => l.includes("more than 5 keep-alive pings in a minute"))).toBeDefined();
    const other = await tcpPeer(srv.tcpPort);
    expect(await ask(other)).toBe(200);
  });
});

describe("slow and idle peers", () => {
  it("closes a connection whose message is not complete within the deadline after its first byte (slowloris)", async () => {
    const srv = await serve({ streamLimits: { messageDeadlineMs: 300 } });
    const slow = await tcpPeer(srv.tcpPort);
    const message = buildRequest({ transport: "TCP" });
    // One byte every 20 ms: the message would take seconds; each byte is "traffic".
    for (let i = 0; i < message.length - 1 && !slow.closed; i++) {
      slow.socket.write(message[i]!);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(slow.closed).toBe(true);
    expect(counters(srv).closedSlowMessage).toBe(1);
    expect(logs.find((l) => l.includes("message not complete 300 ms after its first byte"))).toBeDefined();
  }, 20_000);

  it("does not hold a pipelining client to the deadline of the message before", async () => {
    const srv = await serve({ streamLimits: { messageDeadlineMs: 400 } });
    const client = await tcpPeer(srv.tcpPort);
    // Whole messages each followed by the start of the next, sent 250 ms apart:
    // every message completes within 400 ms of its own first byte.
    const messages = [0, 1, 2, 3].map(() => buildRequest({ transport: "TCP" }));
    let carry = "";
    for (const m of messages) {
      const half = m.length >> 1;
      client.socket.write(carry + m.slice(0, half));
      carry = m.slice(half);
      await new Promise((r) => setTimeout(r, 250));
    }
    client.socket.write(carry);
    for (let i = 0; i < messages.length; i++) expect(statusOf(await client.next())).toBe(200);
    expect(client.closed).toBe(false);
    expect(counters(srv).closedSlowMessage).toBe(0);
  });

  it("closes an idle connection however many single bytes trickle in", async () => {
    // The message deadline is far off: only the idle timeout can close this connection.
    const srv = await serve({ streamLimits: { idleTimeoutMs: 300, messageDeadlineMs: 60_000 } });
    const trickling = await tcpPeer(srv.tcpPort);
    const message = buildRequest({ transport: "TCP" });
    for (let i = 0; i < message.length - 1 && !trickling.closed; i++) {
      trickling.socket.write(message[i]!);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(trickling.closed).toBe(true);
    expect(counters(srv).closedIdle).toBe(1);
    expect(counters(srv).closedSlowMessage).toBe(0);
  }, 20_000);

  it("keeps a connection that sends whole messages and pings within the limits", async () => {
    const srv = await serve({ streamLimits: { idleTimeoutMs: 300 } });
    const client = await tcpPeer(srv.tcpPort);
    // 8 rounds 150 ms apart outlast the idle timeout several times over.
    for (let i = 0; i < 8; i++) {
      if (i % 2 === 0) expect(await ask(client)).toBe(200);
      else {
        await client.write("\r\n\r\n");
        expect(await client.next()).toBe("\r\n");
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(client.closed).toBe(false);
  }, 20_000);
});

describe("connection limits", () => {
  it("limits the connections of one source address and serves the others", async () => {
    const srv = await serve({ streamLimits: { maxInboundPerIp: 5 } });
    const hostile: net.Socket[] = [];
    closeAfter(() => hostile.forEach((s) => s.destroy()));
    for (let i = 0; i < 8; i++) hostile.push(await rawConnection(srv.tcpPort, "127.0.0.2"));
    await until("3 refusals", () => counters(srv).refusedPerIp === 3);
    expect(srv.server.tcpConnectionCount).toBe(5);
    expect(logs.find((l) => l.includes("refused connection from 127.0.0.2 (limit 5 connections per address)"))).toBeDefined();
    const legit = await tcpPeer(srv.tcpPort);
    expect(await ask(legit)).toBe(200);
    // A hostile connection closing makes room for exactly one more from that address.
    hostile[0]!.destroy();
    await until("the closed connection to be released", () => srv.server.tcpConnectionCount === 5);
    const again = await rawConnection(srv.tcpPort, "127.0.0.2");
    hostile.push(again);
    await until("the new connection to be counted", () => srv.server.tcpConnectionCount === 6);
    expect(counters(srv).refusedPerIp).toBe(3);
  });

  it("keeps opening connections to next hops while inbound connections are at their limit", async () => {
    const srv = await serve({ streamLimits: { maxInboundConnections: 20, maxInboundPerIp: 20, maxOutboundConnections: 4 } });
    const nextHop = await TcpListenerPeer.open();
    closeAfter(() => nextHop.close());
    relayTarget = `sip:relay@127.0.0.1:${nextHop.port};transport=tcp`;
    const legit = await tcpPeer(srv.tcpPort);
    const hostile: net.Socket[] = [];
    closeAfter(() => hostile.forEach((s) => s.destroy()));
    for (let i = 0; i < 40; i++) hostile.push(await rawConnection(srv.tcpPort, "127.0.0.3"));
    // 19 fit next to the legitimate client, 21 are refused.
    await until("21 refusals", () => counters(srv).refusedInbound === 21);
    expect(srv.server.tcpConnectionCount).toBe(20);
    // Inbound is full; the relay opens an outbound connection all the same.
    await legit.write(buildRequest({ transport: "TCP", uri: "sip:relay@127.0.0.1" }));
    const hop = await nextHop.nextConnection(5000);
    closeAfter(() => hop.close());
    expect(await hop.next(5000)).toMatch(/^OPTIONS sip:relay@127\.0\.0\.1 SIP\/2\.0\r\n/);
    expect(counters(srv).refusedOutbound).toBe(0);
  }, 20_000);

  it("refuses outbound connections beyond their own limit with a log line", async () => {
    const srv = await serve({ streamLimits: { maxOutboundConnections: 1 } });
    const hops = [await TcpListenerPeer.open(), await TcpListenerPeer.open()];
    closeAfter(() => Promise.all(hops.map((h) => h.close())));
    const legit = await tcpPeer(srv.tcpPort);
    relayTarget = `sip:relay@127.0.0.1:${hops[0]!.port};transport=tcp`;
    await legit.write(buildRequest({ transport: "TCP", uri: "sip:relay@127.0.0.1" }));
    const first = await hops[0]!.nextConnection(5000);
    closeAfter(() => first.close());
    relayTarget = `sip:relay@127.0.0.1:${hops[1]!.port};transport=tcp`;
    await legit.write(buildRequest({ transport: "TCP", uri: "sip:relay@127.0.0.1" }));
    await logs.waitFor((l) => l.includes("limit of 1 outbound connections reached"));
    expect(counters(srv).refusedOutbound).toBe(1);
  });
});

describe("thousands of hostile connections", () => {
  it("3 000 slowloris connections from 20 addresses: the legitimate client and an outbound relay keep working, and the server recovers", async () => {
    const hostileCount = 3000;
    // Under the fd limit: 3 000 client sockets, at most 2 048 accepted ones, the test's own.
    // The deadline outlasts opening them all (a few seconds), so that they are there together.
    const srv = await serve({ streamLimits: { messageDeadlineMs: 10_000 } });
    const nextHop = await TcpListenerPeer.open();
    closeAfter(() => nextHop.close());
    relayTarget = `sip:relay@127.0.0.1:${nextHop.port};transport=tcp`;
    const legit = await tcpPeer(srv.tcpPort);
    expect(await ask(legit)).toBe(200);

    const hostile: net.Socket[] = [];
    closeAfter(() => hostile.forEach((s) => s.destroy()));
    const opening: Promise<net.Socket>[] = [];
    for (let i = 0; i < hostileCount; i++) {
      // 150 per address: under the default 256 per address, over the 2 048 inbound in all.
      opening.push(
        rawConnection(srv.tcpPort, `127.0.0.${10 + (i % 20)}`).then((s) => {
          if (!s.destroyed) s.write("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKslow\r\n");
          return s;
        }),
      );
      if (opening.length % 200 === 0) hostile.push(...(await Promise.all(opening.splice(0))));
    }
    hostile.push(...(await Promise.all(opening)));
    const c = counters(srv);
    await until("every hostile connection accepted or refused", () => srv.server.tcpConnectionCount - 1 + c.refusedInbound + c.closedSlowMessage >= hostileCount);
    expect(c.refusedInbound).toBeGreaterThan(0); // the inbound limit was reached

    // The established client is served, and the proxy still opens a connection to its next hop.
    expect(await ask(legit)).toBe(200);
    await legit.write(buildRequest({ transport: "TCP", uri: "sip:relay@127.0.0.1" }));
    const hop = await nextHop.nextConnection(5000);
    closeAfter(() => hop.close());
    expect(await hop.next(5000)).toMatch(/^OPTIONS sip:relay@/);

    // Every slow connection is closed by the message deadline; a new client gets in.
    await until("the slow connections to be closed", () => srv.server.tcpConnectionCount === 2, 30_000);
    expect(c.closedSlowMessage).toBe(hostileCount - c.refusedInbound);
    const late = await tcpPeer(srv.tcpPort);
    expect(await ask(late)).toBe(200);
    // Log lines about refusals are throttled: far fewer than the refusals.
    expect(logs.lines().filter((l) => l.includes("refused connection")).length).toBeLessThan(c.refusedInbound);
  }, 60_000);
});
