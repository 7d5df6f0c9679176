/**
 * SIP over WebSocket (RFC 7118) on a real server over loopback, with the
 * `ws` package as the client: one SIP message per frame (text or binary),
 * the handshake refused without the sip subprotocol, on another path or
 * from another Origin, the ping/pong keep-alive, the connection limits, and
 * the registrar example's routing back down a browser's own connection
 * (and the failure once that connection is gone).
 */
import net from "node:net";
import tls from "node:tls";
import path from "node:path";
import { copyFileSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostRouteRunner, startScript, startServer, TEST_LIMITS, type HostRoutes, type RunningServer } from "./harness.js";
import { LOCALHOST, buildRequest, buildResponseTo, headerValue, statusOf, reasonOf, startLineOf, until } from "./sip-client.js";
import type { SipServerOptions } from "../../host/core/server.js";
import type { ReceiveInfo } from "../../host/core/context.js";
import type { WebSocketSettings } from "../../host/transport/index.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { openDataServices, type DataServices } from "../../host/storage/index.js";
import { testbed } from "./testbed.js";
import { makeTestPki, type TestPki } from "./tls-certs.js";

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "examples", "webrtc-registrar.js");

const received: ReceiveInfo[] = [];
/** Added to every reply as X-Padding when set (the output cap test). */
let padding = "";
const routes: HostRoutes = {
  ksr_request_route: (ctx) => {
    received.push(ctx.rcv);
    if (padding !== "") ctx.replyHeaders.push(`X-Padding: ${padding}`);
    ctx.host.sendReply(ctx, 200, "OK");
  },
};

const bed = testbed();
const { logs, closeAfter } = bed;
const logText = (): string => logs.lines().join("\n");

/** A response text with one more header line (before Content-Length). */
function withHeader(response: string, line: string): string {
  return response.replace("Content-Length:", `${line}\r\nContent-Length:`);
}

async function serve(webSocket: WebSocketSettings = {}, options: Partial<SipServerOptions> = {}): Promise<RunningServer> {
  received.length = 0;
  padding = "";
  return bed.serve(
    await startServer(new HostRouteRunner(routes), {
      listen: [
        { proto: "udp", ip: LOCALHOST, port: 0 },
        { proto: "tcp", ip: LOCALHOST, port: 0 },
        { proto: "ws", ip: LOCALHOST, port: 0 },
      ],
      webSocket,
      ...options,
    }),
  );
}

/** A WebSocket client whose frames queue up for next(). */
interface WsPeer {
  readonly ws: WebSocket;
  /** ws:ip:port of our end, as the server sees it. */
  readonly localPort: number;
  next(timeoutMs?: number): Promise<{ text: string; binary: boolean }>;
  send(text: string, binary?: boolean): void;
  readonly closed: Promise<number>;
}

interface ClientOptions {
  readonly path?: string;
  readonly protocols?: string[];
  readonly origin?: string;
  readonly autoPong?: boolean;
  readonly scheme?: "ws" | "wss";
  readonly ca?: Buffer;
}

function wsUrl(port: number, o: ClientOptions): string {
  return `${o.scheme ?? "ws"}://${LOCALHOST}:${port}${o.path ?? "/"}`;
}

async function wsClient(port: number, o: ClientOptions = {}): Promise<WsPeer> {
  const ws = new WebSocket(wsUrl(port, o), o.protocols ?? ["sip"], {
    ...(o.origin !== undefined ? { origin: o.origin } : {}),
    autoPong: o.autoPong ?? true,
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
  });
  const frames: { text: string; binary: boolean }[] = [];
  const waiters: ((f: { text: string; binary: boolean }) => void)[] = [];
  ws.on("message", (data: Buffer, binary: boolean) => {
    const f = { text: data.toString("latin1"), binary };
    const w = waiters.shift();
    if (w) w(f);
    else frames.push(f);
  });
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  closeAfter(() => ws.terminate());
  return {
    ws,
    localPort: (ws as unknown as { _socket: net.Socket })._socket.localPort!,
    next: (timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const f = frames.shift();
        if (f) return resolve(f);
        waiters.push(resolve);
        setTimeout(() => reject(new Error("no WebSocket frame")), timeoutMs).unref();
      }),
    send: (text, binary = false) => ws.send(Buffer.from(text, "latin1"), { binary }),
    closed,
  };
}

/** A handshake the server must refuse: resolves with the HTTP status it answered. */
function refusedHandshake(port: number, o: ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(port, o), o.protocols ?? ["sip"], o.origin !== undefined ? { origin: o.origin } : {});
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => reject(new Error("the handshake was accepted")));
    ws.on("error", () => {});
  });
}

function wsRequest(spec: Omit<NonNullable<Parameters<typeof buildRequest>[0]>, "transport"> & { transport?: "WS" | "WSS" } = {}): string {
  // A browser's Via: WS (or WSS) and a made-up host without a port, as JsSIP writes it.
  const transport = spec.transport ?? "WS";
  return buildRequest({ ...spec, transport: "TCP", viaHost: "df7jal23ls0d.invalid" }).replace(/SIP\/2\.0\/TCP (\S+?):5999;/, `SIP/2.0/${transport} $1;`);
}

describe("SIP over WebSocket", () => {
  it("answers a request sent in one text frame with one text frame, on the same connection; $pr is ws", async () => {
    const srv = await serve();
    const client = await wsClient(srv.server.portOf("ws"));
    client.send(wsRequest());
    const reply = await client.next();
    expect(reply.binary).toBe(false);
    expect(statusOf(reply.text)).toBe(200);
    // One SIP message per frame: the frame ends where the message does.
    expect(reply.text.endsWith("\r\n\r\n")).toBe(true);
    expect(headerValue(reply.text, "via")).toContain(";received=127.0.0.1");
    expect(received[0]).toMatchObject({ proto: "ws", srcIp: "127.0.0.1", srcPort: client.localPort });
    expect(received[0]!.connectionId).toBeGreaterThan(0);
  });

  it("takes binary frames too, and a message without Content-Length (the frame is the message)", async () => {
    const srv = await serve();
    const client = await wsClient(srv.server.portOf("ws"));
    client.send(wsRequest(), true);
    expect(statusOf((await client.next()).text)).toBe(200);
    client.send(wsRequest().replace(/Content-Length: 0\r\n/, ""));
    expect(statusOf((await client.next()).text)).toBe(200);
    expect(received).toHaveLength(2);
  });

  it("answers a CRLF keep-alive frame with CRLF", async () => {
    const srv = await serve();
    const client = await wsClient(srv.server.portOf("ws"));
    client.send("\r\n\r\n");
    expect((await client.next()).text).toBe("\r\n");
    expect(received).toHaveLength(0);
  });

  it("refuses a handshake without the sip subprotocol, or with another one, with 400 and a log line", async () => {
    const srv = await serve();
    const port = srv.server.portOf("ws");
    expect(await refusedHandshake(port, { protocols: [] })).toBe(400);
    expect(await refusedHandshake(port, { protocols: ["chat"] })).toBe(400);
    expect(srv.server.wsPolicyCounters?.failedHandshake).toBe(2);
    expect(logText()).toContain('no Sec-WebSocket-Protocol (RFC 7118 §4 requires "sip")');
    // The server still serves a good client.
    const client = await wsClient(port);
    client.send(wsRequest());
    expect(statusOf((await client.next()).text)).toBe(200);
  });

  it("refuses a path not listed (404) and an Origin not listed or missing (403); accepts the listed ones", async () => {
    const srv = await serve({ allowedPaths: ["/sip"], allowedOrigins: ["https://app.example.test"] });
    const port = srv.server.portOf("ws");
    expect(await refusedHandshake(port, { path: "/other", origin: "https://app.example.test" })).toBe(404);
    expect(await refusedHandshake(port, { path: "/sip", origin: "https://evil.example.test" })).toBe(403);
    expect(await refusedHandshake(port, { path: "/sip" })).toBe(403);
    expect(srv.server.wsPolicyCounters?.failedHandshake).toBe(3);
    // Refusals are logged at most once a second per kind (the counter has them all).
    expect(logText()).toContain('WebSocket handshake refused with 404: path "/other" is not one of /sip; closing');
    const client = await wsClient(port, { path: "/sip?token=1", origin: "https://app.example.test" });
    client.send(wsRequest());
    expect(statusOf((await client.next()).text)).toBe(200);
  });

  it("answers a plain HTTP request 426", async () => {
    const srv = await serve();
    const res = await fetch(`http://${LOCALHOST}:${srv.server.portOf("ws")}/`);
    expect(res.status).toBe(426);
  });

  it("closes a connection whose pong does not come, and keeps one that answers its pings", async () => {
    const srv = await serve({ pingIntervalMs: 100, pongTimeoutMs: 100 });
    const port = srv.server.portOf("ws");
    const answering = await wsClient(port);
    const silent = await wsClient(port, { autoPong: false });
    await silent.closed;
    expect(srv.server.wsPolicyCounters?.closedPongTimeout).toBe(1);
    expect(logText()).toMatch(/ws connection \d+ from 127\.0\.0\.1:\d+: no pong within 100 ms of a ping; closing/);
    expect(answering.ws.readyState).toBe(WebSocket.OPEN);
    answering.send(wsRequest());
    expect(statusOf((await answering.next()).text)).toBe(200);
  });

  it("a pong counts as activity: a client answering pings outlives the idle timeout", async () => {
    const srv = await serve({ pingIntervalMs: 50, pongTimeoutMs: 1000 }, { streamLimits: { idleTimeoutMs: 200 } });
    const port = srv.server.portOf("ws");
    const answering = await wsClient(port);
    // The idle timeout closes a connection that answers nothing (here: no pongs) ...
    const silent = await wsClient(port, { autoPong: false });
    await silent.closed;
    expect(srv.server.wsPolicyCounters?.closedIdle).toBe(1);
    // ... while the other one, opened before it, is still open.
    expect(answering.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("closes a connection whose handshake never comes after the handshake timeout", async () => {
    const srv = await serve({}, { streamLimits: { handshakeTimeoutMs: 100 } });
    const socket = net.connect(srv.server.portOf("ws"), LOCALHOST);
    closeAfter(() => socket.destroy());
    await new Promise<void>((resolve) => socket.on("close", () => resolve()));
    expect(srv.server.wsPolicyCounters?.closedHandshakeTimeout).toBe(1);
    await until("the connection to be released", () => srv.server.wsConnectionCount === 0);
  });

  it("refuses connections past the per-address limit, counted apart from TCP; a closed one frees its place", async () => {
    const srv = await serve({}, { streamLimits: { maxInboundPerIp: 2 } });
    const port = srv.server.portOf("ws");
    const first = await wsClient(port);
    await wsClient(port);
    await expect(wsClient(port)).rejects.toThrow();
    expect(srv.server.wsPolicyCounters?.refusedPerIp).toBe(1);
    expect(srv.server.tcpPolicyCounters?.refusedPerIp).toBe(0);
    first.ws.close();
    await first.closed;
    await until("the closed connection to be released", () => srv.server.wsConnectionCount === 1);
    const again = await wsClient(port);
    again.send(wsRequest());
    expect(statusOf((await again.next()).text)).toBe(200);
  });

  it("closes the connection of a message over the size limit (1009)", async () => {
    const srv = await serve({}, { parseLimits: { maxMessageBytes: 2000, maxHeaders: 256 } });
    const client = await wsClient(srv.server.portOf("ws"));
    client.send(wsRequest({ body: "x".repeat(3000) }));
    expect(await client.closed).toBe(1009);
    expect(logText()).toContain("message over 2000 bytes; closing");
    expect(received).toHaveLength(0);
  });

  it("survives garbage frames: a frame that is no SIP message is dropped, the connection keeps serving", async () => {
    const srv = await serve();
    const client = await wsClient(srv.server.portOf("ws"));
    client.send("\x00\xff\xfe garbage \x80\x81", true);
    client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // A request without a Via cannot be answered: dropped with a log line.
    client.send(wsRequest().replace(/^Via: .*\r\n/m, ""));
    client.send(wsRequest({ callId: "after-garbage" }));
    const reply = await client.next();
    expect(statusOf(reply.text)).toBe(200);
    expect(headerValue(reply.text, "call-id")).toBe("after-garbage");
    expect(received).toHaveLength(1);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("answers a message that does not parse 400 down its connection, as over TCP", async () => {
    const srv = await serve();
    const client = await wsClient(srv.server.portOf("ws"));
    client.send(wsRequest().replace(/^CSeq: 1 OPTIONS/m, "CSeq: one OPTIONS"));
    const reply = await client.next();
    expect(statusOf(reply.text)).toBe(400);
    expect(received).toHaveLength(0);
  });

  it("the output cap closes the connection of a client that does not read, dropping the reply that does not fit", async () => {
    const srv = await serve({}, { streamLimits: { maxOutputBytes: 256 * 1024 } });
    padding = "x".repeat(60_000);
    const stalled = await wsClient(srv.server.portOf("ws"));
    // Never reads: the replies pile up in the kernel, then in the server.
    (stalled.ws as unknown as { _socket: net.Socket })._socket.pause();
    // 60 kB a reply; loopback's kernel buffers hold a few MB, so at most 1 000 requests fill them and the queue behind.
    for (let i = 0; i < 1000 && srv.server.wsPolicyCounters?.closedOutputFull === 0; i++) {
      if (stalled.ws.readyState !== WebSocket.OPEN) break;
      stalled.send(wsRequest());
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await until("the stalled connection closed", () => srv.server.wsPolicyCounters?.closedOutputFull === 1, 10_000);
    expect(srv.server.wsPolicyCounters?.droppedMessages).toBe(1);
    await until("the connection released", () => srv.server.wsConnectionCount === 0);
  }, 20_000);

  it("never connects to a ws address: t_relay to one without a connection fails at once (-2), sl_reply_error answers 477", async () => {
    const srv = bed.serve(
      await startScript("ws-relay-gone.js", {
        listen: [
          { proto: "udp", ip: LOCALHOST, port: 0 },
          { proto: "tcp", ip: LOCALHOST, port: 0 },
          { proto: "ws", ip: LOCALHOST, port: 0 },
        ],
      }),
    );
    const client = await wsClient(srv.server.portOf("ws"));
    client.send(wsRequest({ method: "INVITE" }));
    let reply = (await client.next()).text;
    if (statusOf(reply) === 100) reply = (await client.next()).text;
    expect(statusOf(reply)).toBe(477);
    expect(logText()).toContain("ws: no open WebSocket connection from 198.51.100.99:40000: not sent");
    expect(logText()).toContain("t_relay failed");
    expect(srv.server.wsConnectionCount).toBe(1);
  });

  it("lists WebSocket connections with the TCP ones and counts them", async () => {
    const srv = await serve();
    const client = await wsClient(srv.server.portOf("ws"));
    const list = srv.server.tcpConnections();
    expect(list).toEqual([
      expect.objectContaining({ remote: `127.0.0.1:${client.localPort}`, local: `ws:127.0.0.1:${srv.server.portOf("ws")}`, direction: "inbound" }),
    ]);
    expect(srv.server.wsConnectionCount).toBe(1);
    expect(srv.server.tcpConnectionCount).toBe(0);
  });
});

describe("SIP over secure WebSocket (wss)", () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki.remove());

  it("answers over wss with the certificate of the tls options; $pr is wss and the TLS details are the script's", async () => {
    const srv = await serve(
      {},
      {
        listen: [
          { proto: "udp", ip: LOCALHOST, port: 0 },
          { proto: "tcp", ip: LOCALHOST, port: 0 },
          { proto: "wss", ip: LOCALHOST, port: 0 },
        ],
        tls: { certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.caFile },
      },
    );
    const client = await wsClient(srv.server.portOf("wss"), { scheme: "wss", ca: readFileSync(pki.caFile) });
    client.send(wsRequest({ transport: "WSS" }));
    expect(statusOf((await client.next()).text)).toBe(200);
    expect(received[0]).toMatchObject({ proto: "wss" });
    expect(received[0]!.tls?.version).toMatch(/^TLSv1\.[23]$/);
  });

  it("a TLS reload gives new wss connections the new certificate", async () => {
    const cert = `${pki.dir}/ws-live.pem`;
    const key = `${pki.dir}/ws-live.key`;
    copyFileSync(pki.server.cert, cert);
    copyFileSync(pki.server.key, key);
    const srv = await serve(
      {},
      {
        listen: [
          { proto: "udp", ip: LOCALHOST, port: 0 },
          { proto: "tcp", ip: LOCALHOST, port: 0 },
          { proto: "wss", ip: LOCALHOST, port: 0 },
        ],
        tls: { certFile: cert, keyFile: key, caFile: pki.caFile },
      },
    );
    const subjectCn = async (): Promise<string> => {
      const client = await wsClient(srv.server.portOf("wss"), { scheme: "wss", ca: readFileSync(pki.caFile) });
      return (client.ws as unknown as { _socket: tls.TLSSocket })._socket.getPeerCertificate().subject.CN as string;
    };
    expect(await subjectCn()).toBe("server.test");
    copyFileSync(pki.server2.cert, cert);
    copyFileSync(pki.server2.key, key);
    expect(srv.server.reloadTls()).toBeUndefined();
    expect(await subjectCn()).toBe("reloaded.test");
  });

  it("a client that is not TLS on the wss port fails the handshake once, logged and counted, and the socket serves on", async () => {
    const listen = [
      { proto: "udp" as const, ip: LOCALHOST, port: 0 },
      { proto: "tcp" as const, ip: LOCALHOST, port: 0 },
      { proto: "wss" as const, ip: LOCALHOST, port: 0 },
    ];
    const srv = await serve({}, { listen, tls: { certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.caFile } });
    const port = srv.server.portOf("wss");
    const plain = net.connect(port, LOCALHOST, () => plain.write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"));
    closeAfter(() => plain.destroy());
    plain.on("error", () => {});
    await new Promise<void>((resolve) => plain.on("close", () => resolve()));
    await until("the failure counted", () => srv.server.wsPolicyCounters?.failedHandshake === 1);
    await until("the connection released", () => srv.server.wsConnectionCount === 0);
    expect(logText()).toMatch(/wss connection \d+ from 127\.0\.0\.1:\d+: TLS handshake failed: .*; closing/);
    const client = await wsClient(port, { scheme: "wss", ca: readFileSync(pki.caFile) });
    client.send(wsRequest({ transport: "WSS" }));
    expect(statusOf((await client.next()).text)).toBe(200);
    expect(srv.server.wsPolicyCounters?.failedHandshake).toBe(1);
  });

  it("refuses to start a wss socket without a certificate", async () => {
    await expect(
      startServer(new HostRouteRunner(routes), { listen: [{ proto: "udp", ip: LOCALHOST, port: 0 }, { proto: "wss", ip: LOCALHOST, port: 0 }] }),
    ).rejects.toThrow("a wss listen socket needs a certificate and key");
  });
});

describe("examples/webrtc-registrar.js over WebSocket", () => {
  let dir: string;
  let data: DataServices;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ksr-ws-reg-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function serveExample(): Promise<RunningServer> {
    data = openDataServices({ file: path.join(dir, `${Date.now()}-${Math.random()}.sqlite`) });
    closeAfter(() => data.close());
    const runner = ScriptRunner.load(EXAMPLE, { limits: TEST_LIMITS, tenant: "webrtc" });
    return bed.serve(
      await startServer(runner, {
        tenantId: "webrtc",
        data,
        listen: [
          { proto: "udp", ip: LOCALHOST, port: 0 },
          { proto: "tcp", ip: LOCALHOST, port: 0 },
          { proto: "ws", ip: LOCALHOST, port: 0 },
        ],
      }),
    );
  }

  function register(user: string): string {
    return [
      `REGISTER sip:127.0.0.1 SIP/2.0`,
      `Via: SIP/2.0/WS ${user}host.invalid;branch=z9hG4bK${user}reg`,
      "Max-Forwards: 70",
      `From: <sip:${user}@127.0.0.1>;tag=${user}r`,
      `To: <sip:${user}@127.0.0.1>`,
      `Call-ID: ${user}-reg`,
      "CSeq: 1 REGISTER",
      `Contact: <sip:${user}@${user}host.invalid;transport=ws>;expires=600`,
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
  }

  function invite(callId: string): string {
    return [
      `INVITE sip:alice@127.0.0.1 SIP/2.0`,
      `Via: SIP/2.0/WS bobhost.invalid;branch=z9hG4bK${callId}`,
      "Max-Forwards: 70",
      `From: <sip:bob@127.0.0.1>;tag=bobtag`,
      `To: <sip:alice@127.0.0.1>`,
      `Call-ID: ${callId}`,
      "CSeq: 1 INVITE",
      `Contact: <sip:bob@bobhost.invalid;transport=ws>`,
      "Content-Type: application/sdp",
      "Content-Length: 4",
      "",
      "v=0\r\n".slice(0, 4),
    ].join("\r\n");
  }

  it("RFC 5626: the Record-Route of an outbound browser's INVITE carries its flow token; a request routed back through it goes down that flow, a request from the flow itself does not", async () => {
    const srv = await serveExample();
    const port = srv.server.portOf("ws");
    const alice = await wsClient(port);
    alice.send(register("alice"));
    expect(statusOf((await alice.next()).text)).toBe(200);
    const bob = await wsClient(port);
    // JsSIP's INVITE: ";ob" in the Contact (RFC 5626 §4.2.1), one Via.
    bob.send(invite("call-ob").replace("<sip:bob@bobhost.invalid;transport=ws>", "<sip:bob@bobhost.invalid;transport=ws;ob>"));
    const atAlice = (await alice.next()).text;
    const recordRoute = headerValue(atAlice, "record-route")!;
    expect(recordRoute).toMatch(new RegExp(`^<sip:[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+@127\\.0\\.0\\.1:${port};transport=ws;lr;ftag=bobtag>$`));
    alice.send(withHeader(buildResponseTo(atAlice, 200, "OK"), "Contact: <sip:alice@alicehost.invalid;transport=ws>"));
    const ok = await nextNot100(bob);
    expect(statusOf(ok)).toBe(200);
    const aliceTag = /tag=([^;>\s]+)/.exec(headerValue(ok, "to")!)![1];

    // alice's BYE to bob's Contact as he sent it (no alias): only the flow token in the Route can reach him.
    const byeToBob = [
      "BYE sip:bob@bobhost.invalid;transport=ws;ob SIP/2.0",
      "Via: SIP/2.0/WS alicehost.invalid;branch=z9hG4bKbyeob",
      "Max-Forwards: 70",
      `Route: ${recordRoute}`,
      `From: <sip:alice@127.0.0.1>;tag=${aliceTag}`,
      "To: <sip:bob@127.0.0.1>;tag=bobtag",
      "Call-ID: call-ob",
      "CSeq: 1 BYE",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    alice.send(byeToBob);
    const atBob = (await bob.next()).text;
    expect(startLineOf(atBob)).toBe("BYE sip:bob@bobhost.invalid;transport=ws;ob SIP/2.0");
    expect(headerValue(atBob, "route")).toBeUndefined();
    bob.send(buildResponseTo(atBob, 200, "OK"));
    expect(statusOf(await nextNot100(alice))).toBe(200);

    // A token changed by a byte is not ours: the R-URI decides, and bobhost.invalid does not resolve.
    const forged = recordRoute.replace(/^<sip:(.)/, (_m, c: string) => `<sip:${c === "A" ? "B" : "A"}`);
    alice.send(byeToBob.replace(recordRoute, forged).replace("z9hG4bKbyeob", "z9hG4bKbyeob2").replace("CSeq: 1 BYE", "CSeq: 2 BYE"));
    const refused = await nextNot100(alice);
    expect(statusOf(refused)).toBeGreaterThanOrEqual(400);
    expect(srv.server.wsConnectionCount).toBe(2);
  });

  /** Frames from a client until one that is not 100 Trying. */
  async function nextNot100(client: WsPeer): Promise<string> {
    for (let i = 0; i < 5; i++) {
      const f = await client.next();
      if (statusOf(f.text) !== 100) return f.text;
    }
    throw new Error("only 100 Trying");
  }

  it("sends a call to a registered browser down the connection it registered over, and answers 480 once that connection is gone", async () => {
    const srv = await serveExample();
    const port = srv.server.portOf("ws");
    const alice = await wsClient(port);
    alice.send(register("alice"));
    expect(statusOf((await alice.next()).text)).toBe(200);
    const bob = await wsClient(port);

    bob.send(invite("call-1"));
    const atAlice = (await alice.next()).text;
    expect(startLineOf(atAlice)).toBe(`INVITE sip:alice@alicehost.invalid;transport=ws SIP/2.0`);
    // Our Via names the WebSocket transport; the caller's Contact carries the alias of its connection.
    expect(headerValue(atAlice, "via")).toMatch(new RegExp(`^SIP/2\\.0/WS 127\\.0\\.0\\.1:${port};branch=`));
    expect(headerValue(atAlice, "contact")).toBe(`<sip:bob@bobhost.invalid;alias=127.0.0.1~${bob.localPort}~5;transport=ws>`);
    expect(headerValue(atAlice, "record-route")).toMatch(new RegExp(`^<sip:127\\.0\\.0\\.1:${port};transport=ws;lr`));
    // No connection was opened for it: still the two clients'.
    expect(srv.server.wsConnectionCount).toBe(2);

    alice.send(withHeader(buildResponseTo(atAlice, 200, "OK"), "Contact: <sip:alice@alicehost.invalid;transport=ws>"));
    const ok = await nextNot100(bob);
    expect(statusOf(ok)).toBe(200);
    expect(headerValue(ok, "contact")).toBe(`<sip:alice@alicehost.invalid;alias=127.0.0.1~${alice.localPort}~5;transport=ws>`);

    // A request within the dialog to alice's Contact (with its alias) finds her connection again.
    const bye = [
      `BYE sip:alice@alicehost.invalid;alias=127.0.0.1~${alice.localPort}~5;transport=ws SIP/2.0`,
      `Via: SIP/2.0/WS bobhost.invalid;branch=z9hG4bKbye1`,
      "Max-Forwards: 70",
      `Route: ${headerValue(atAlice, "record-route")}`,
      `From: <sip:bob@127.0.0.1>;tag=bobtag`,
      `To: <sip:alice@127.0.0.1>;tag=${/tag=([^;>\s]+)/.exec(headerValue(ok, "to")!)![1]}`,
      `Call-ID: call-1`,
      "CSeq: 2 BYE",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    bob.send(bye);
    const byeAtAlice = (await alice.next()).text;
    expect(startLineOf(byeAtAlice)).toBe("BYE sip:alice@alicehost.invalid;transport=ws SIP/2.0");
    alice.send(buildResponseTo(byeAtAlice, 200, "OK"));
    expect(statusOf(await nextNot100(bob))).toBe(200);

    // Alice's connection goes; her binding stays. A new call cannot reach her.
    alice.ws.close();
    await alice.closed;
    await until("alice's connection to be released", () => srv.server.wsConnectionCount === 1);
    bob.send(invite("call-2"));
    const refused = await nextNot100(bob);
    expect(statusOf(refused)).toBe(480);
    expect(reasonOf(refused)).toBe("Temporarily Unavailable");
    expect(logText()).toMatch(new RegExp(`no open WebSocket connection from 127\\.0\\.0\\.1:${alice.localPort}: not sent`));
    expect(srv.server.wsConnectionCount).toBe(1);
  });
});
