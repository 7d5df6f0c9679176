/**
 * SIP over TLS (RFC 3261 §26) on a real server over loopback, with
 * certificates the test makes (tls-certs.ts): requests in over TLS and on
 * to a TLS or UDP next hop, sips: and ;transport=tls routing, connection
 * reuse, client certificate verification, and the connections that must
 * end with a log line and nothing left open: an untrusted, expired or
 * wrongly named certificate, a client that never finishes its handshake,
 * plain SIP sent to the TLS port.
 */
import net from "node:net";
import tls from "node:tls";
import { copyFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostRouteRunner, startServer, type HostRoutes, type RunningServer } from "./harness.js";
import { LOCALHOST, TcpPeer, buildRequest, headerValues, statusOf, buildResponseTo, UdpPeer, until } from "./sip-client.js";
import type { SipServerOptions } from "../../host/core/server.js";
import type { MessageContext, ReceiveInfo } from "../../host/core/context.js";
import { tlsAttribute } from "../../host/modules/tls.js";
import type { TlsSettings } from "../../host/transport/index.js";
import { testbed } from "./testbed.js";
import { makeTestPki, type CertFiles, type TestPki } from "./tls-certs.js";
import { readFileSync } from "node:fs";

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** Requests to sip:relay@... go to `relayTarget`; others are answered 200 (with `padding`, when set). Each request's ReceiveInfo is kept. */
let relayTarget = "";
let padding = "";
const received: ReceiveInfo[] = [];
const routes: HostRoutes = {
  ksr_request_route: (ctx) => {
    received.push(ctx.rcv);
    if (ctx.msg.kind === "request" && ctx.msg.requestUri.startsWith("sip:relay@")) {
      ctx.host.forward(ctx, relayTarget);
      return;
    }
    if (padding !== "") ctx.replyHeaders.push(`X-Padding: ${padding}`);
    ctx.host.sendReply(ctx, 200, "OK");
  },
};

const bed = testbed();
const { logs, closeAfter } = bed;

async function serve(tlsSettings: Partial<TlsSettings> = {}, options: Partial<SipServerOptions> = {}): Promise<RunningServer> {
  relayTarget = "";
  padding = "";
  received.length = 0;
  return bed.serve(
    await startServer(new HostRouteRunner(routes), {
      listen: [
        { proto: "udp", ip: LOCALHOST, port: 0 },
        { proto: "tcp", ip: LOCALHOST, port: 0 },
        { proto: "tls", ip: LOCALHOST, port: 0 },
      ],
      tls: { certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.caFile, ...tlsSettings },
      ...options,
    }),
  );
}

function tlsPort(srv: RunningServer): number {
  return srv.server.portOf("tls");
}

/** A TLS connection to the server, trusting the test CA; `cert` presents a client certificate. */
async function tlsClient(port: number, cert?: CertFiles): Promise<TcpPeer> {
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect(
      {
        host: LOCALHOST,
        port,
        ca: readFileSync(pki.caFile),
        ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
      },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  const peer = TcpPeer.wrap(socket);
  closeAfter(() => peer.close());
  return peer;
}

/** A TLS next hop presenting `cert`; its accepted connections as TcpPeers. */
async function tlsNextHop(cert: CertFiles): Promise<{ port: number; next(): Promise<TcpPeer>; accepted: () => number }> {
  const waiting: TcpPeer[] = [];
  const waiters: ((p: TcpPeer) => void)[] = [];
  let accepted = 0;
  const server = tls.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (socket) => {
    accepted++;
    const peer = TcpPeer.wrap(socket);
    closeAfter(() => peer.close());
    const w = waiters.shift();
    if (w) w(peer);
    else waiting.push(peer);
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  closeAfter(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () =>
      new Promise<TcpPeer>((resolve, reject) => {
        const p = waiting.shift();
        if (p) return resolve(p);
        waiters.push(resolve);
        setTimeout(() => reject(new Error("no TLS connection to the next hop")), 5000).unref();
      }),
    accepted: () => accepted,
  };
}

/** A TLS client whose handshake the server refuses: resolves with the error the client saw (or "closed"). */
function refusedClient(port: number, cert?: CertFiles): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: LOCALHOST,
      port,
      ca: readFileSync(pki.caFile),
      ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
    });
    let error = "closed";
    s.on("error", (err) => (error = err.message));
    // TLS 1.3: the client's handshake is done before the server checks its certificate, so the refusal comes as an alert or a close after it.
    s.on("secureConnect", () => s.write(buildRequest({ transport: "TCP" })));
    s.on("close", () => resolve(error));
  });
}

describe("SIP over TLS", () => {
  it("answers a request on its TLS connection, with $pr tls and what the handshake negotiated", async () => {
    const srv = await serve();
    const client = await tlsClient(tlsPort(srv));
    await client.write(buildRequest({ transport: "TCP", viaParams: "" }).replace("SIP/2.0/TCP", "SIP/2.0/TLS"));
    expect(statusOf(await client.next(5000))).toBe(200);
    expect(received[0]!.proto).toBe("tls");
    expect(received[0]!.tls?.version).toMatch(/^TLSv1\.[23]$/);
    expect(received[0]!.tls?.local?.subjectAttrs.CN).toBe("server.test");
    // No client certificate was asked for (verify-client none).
    expect(received[0]!.tls?.peer).toBeUndefined();
    expect(received[0]!.tls?.peerVerified).toBe(false);
  });

  it("relays to a TLS next hop named by ;transport=tls with a TLS Via, reusing one connection, and the response back", async () => {
    const srv = await serve();
    const hop = await tlsNextHop(pki.server);
    relayTarget = `sip:hop@127.0.0.1:${hop.port};transport=tls`;
    const client = await tlsClient(tlsPort(srv));
    let upstream: TcpPeer | undefined;
    for (let i = 0; i < 2; i++) {
      await client.write(buildRequest({ transport: "TCP", uri: "sip:relay@127.0.0.1" }).replace("SIP/2.0/TCP", "SIP/2.0/TLS"));
      upstream ??= await hop.next();
      const request = await upstream.next(5000);
      expect(headerValues(request, "via")[0]).toMatch(new RegExp(`^SIP/2\\.0/TLS 127\\.0\\.0\\.1:${tlsPort(srv)};branch=`));
      await upstream.write(buildResponseTo(request, 200, "OK"));
      expect(statusOf(await client.next(5000))).toBe(200);
    }
    expect(hop.accepted()).toBe(1);
  });

  it("routes a sips: target over TLS", async () => {
    const srv = await serve();
    const hop = await tlsNextHop(pki.server);
    relayTarget = `sips:hop@127.0.0.1:${hop.port}`;
    const udp = await bed.udpPeer();
    await udp.send(buildRequest({ uri: "sip:relay@127.0.0.1", viaPort: udp.port }), srv.udpPort);
    const upstream = await hop.next();
    const request = await upstream.next(5000);
    expect(request.startsWith("OPTIONS sip:relay@127.0.0.1 SIP/2.0")).toBe(true);
    expect(headerValues(request, "via")[0]).toMatch(/^SIP\/2\.0\/TLS /);
  });

  it("relays a request that came over TLS to a UDP next hop", async () => {
    const srv = await serve();
    const hop = await UdpPeer.open();
    closeAfter(() => hop.close());
    relayTarget = `sip:hop@127.0.0.1:${hop.port}`;
    const client = await tlsClient(tlsPort(srv));
    await client.write(buildRequest({ method: "INVITE", transport: "TCP", uri: "sip:relay@127.0.0.1" }).replace("SIP/2.0/TCP", "SIP/2.0/TLS"));
    const request = (await hop.next(5000)).data;
    expect(headerValues(request, "via")[0]).toMatch(/^SIP\/2\.0\/UDP /);
    expect(headerValues(request, "via")[1]).toMatch(/^SIP\/2\.0\/TLS /);
    await hop.send(buildResponseTo(request, 486, "Busy Here"), srv.udpPort);
    expect(statusOf(await client.next(5000))).toBe(486);
  });
});

describe("client certificates", () => {
  it("optional: a client with a certificate of the CA is verified, with its fields; one without is let in unverified", async () => {
    const srv = await serve({ verifyClient: "optional" });
    const alice = await tlsClient(tlsPort(srv), pki.client);
    await alice.write(buildRequest({ transport: "TCP" }));
    expect(statusOf(await alice.next(5000))).toBe(200);
    const info = received[0]!.tls!;
    expect(info.peerVerified).toBe(true);
    expect(info.peer?.subjectAttrs.CN).toBe("alice.test");
    expect(info.peer?.issuerAttrs.CN).toBe("ksr test CA");
    expect(info.peer?.san.email).toEqual(["alice@example.test"]);
    expect(info.peer?.selfSigned).toBe(false);
    // As the script reads them ($tls_*, KSR.tls.cget): OpenSSL's one-line names, the certificate's order.
    const seen = { rcv: received[0]! } as unknown as MessageContext;
    expect(tlsAttribute(seen, "tls_peer_subject")).toBe("/CN=alice.test/O=ksr test");
    expect(tlsAttribute(seen, "tls_peer_issuer_cn")).toBe("ksr test CA");
    expect(tlsAttribute(seen, "tls_my_subject_cn")).toBe("server.test");
    expect(tlsAttribute(seen, "tls_peer_notAfter")).toMatch(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT$/);
    expect(tlsAttribute(seen, "tls_peer_expired")).toBe(0);

    const anonymous = await tlsClient(tlsPort(srv));
    await anonymous.write(buildRequest({ transport: "TCP" }));
    expect(statusOf(await anonymous.next(5000))).toBe(200);
    expect(received[1]!.tls?.peerVerified).toBe(false);
  });

  it("optional: a self-signed client certificate is let in, not verified", async () => {
    const srv = await serve({ verifyClient: "optional" });
    const rogue = await tlsClient(tlsPort(srv), pki.selfSigned);
    await rogue.write(buildRequest({ transport: "TCP" }));
    expect(statusOf(await rogue.next(5000))).toBe(200);
    expect(received[0]!.tls?.peerVerified).toBe(false);
    expect(received[0]!.tls?.peer?.selfSigned).toBe(true);
  });

  it.each([
    ["no certificate", undefined, /client sent no certificate/],
    ["a self-signed certificate", "selfSigned", /client certificate not accepted: DEPTH_ZERO_SELF_SIGNED_CERT/],
    ["an expired certificate", "expired", /client certificate not accepted: CERT_HAS_EXPIRED/],
  ] as const)("require: a client with %s is refused with a log line and its connection closed", async (_what, certName, reason) => {
    const srv = await serve({ verifyClient: "require" });
    await refusedClient(tlsPort(srv), certName === undefined ? undefined : pki[certName]);
    await until("the handshake failure", () => srv.server.tlsPolicyCounters?.failedHandshake === 1);
    expect(logs.lines().some((l) => /tls connection \d+ from 127\.0\.0\.1:\d+: TLS handshake failed: /.test(l) && reason.test(l))).toBe(true);
    await until("the connection closed", () => srv.server.tlsConnectionCount === 0);
    expect(received).toEqual([]);
    // The server goes on: a verified client is served.
    const alice = await tlsClient(tlsPort(srv), pki.client);
    await alice.write(buildRequest({ transport: "TCP" }));
    expect(statusOf(await alice.next(5000))).toBe(200);
  });
});

describe("next hop certificates (--tls-verify-server)", () => {
  it.each([
    ["names another host", "wrongName", /does not match certificate's altnames/],
    ["has expired", "expired", /certificate has expired/],
    ["is self-signed", "selfSigned", /self.signed certificate/],
  ] as const)("a next hop whose certificate %s gets nothing: logged, connection closed", async (_what, certName, reason) => {
    const srv = await serve({ verifyServer: true });
    const hop = await tlsNextHop(pki[certName]);
    relayTarget = `sip:hop@127.0.0.1:${hop.port};transport=tls`;
    const udp = await bed.udpPeer();
    await udp.send(buildRequest({ uri: "sip:relay@127.0.0.1", viaPort: udp.port }), srv.udpPort);
    await until("the refused handshake logged", () => logs.lines().some((l) => /tls connection to 127\.0\.0\.1:\d+: /.test(l) && reason.test(l)));
    await until("the connection closed", () => srv.server.tlsConnectionCount === 0);
  });

  it("a next hop with a certificate of the CA for its address is reached", async () => {
    const srv = await serve({ verifyServer: true });
    const hop = await tlsNextHop(pki.server);
    relayTarget = `sip:hop@127.0.0.1:${hop.port};transport=tls`;
    const udp = await bed.udpPeer();
    await udp.send(buildRequest({ uri: "sip:relay@127.0.0.1", viaPort: udp.port }), srv.udpPort);
    const request = await (await hop.next()).next(5000);
    expect(headerValues(request, "via")[0]).toMatch(/^SIP\/2\.0\/TLS /);
  });
});

describe("connections that never become TLS", () => {
  it("a client that never finishes its handshake is closed after the handshake timeout, logged and counted", async () => {
    const srv = await serve({}, { streamLimits: { handshakeTimeoutMs: 200 } });
    const silent = net.connect({ host: LOCALHOST, port: tlsPort(srv) });
    silent.on("error", () => {});
    closeAfter(() => silent.destroy());
    const closed = new Promise<void>((resolve) => silent.on("close", () => resolve()));
    await closed;
    expect(srv.server.tlsPolicyCounters?.closedHandshakeTimeout).toBe(1);
    expect(logs.lines().some((l) => /tls connection \d+ from 127\.0\.0\.1:\d+: TLS handshake not finished within 200 ms; closing/.test(l))).toBe(true);
    await until("the connection released", () => srv.server.tlsConnectionCount === 0);
  });

  it("a connection in its handshake counts against the per-address limit, and gives its place back when it times out", async () => {
    const srv = await serve({}, { streamLimits: { maxInboundPerIp: 1, handshakeTimeoutMs: 300 } });
    const silent = net.connect({ host: LOCALHOST, port: tlsPort(srv) });
    silent.on("error", () => {});
    closeAfter(() => silent.destroy());
    await until("the silent connection admitted", () => srv.server.tlsConnectionCount === 1);
    // The second connection from 127.0.0.1 is refused (closed) while the first is still in its handshake.
    await refusedClient(tlsPort(srv));
    expect(srv.server.tlsPolicyCounters?.refusedPerIp).toBe(1);
    await new Promise<void>((resolve) => silent.on("close", () => resolve()));
    await until("the place given back", () => srv.server.tlsConnectionCount === 0);
    const client = await tlsClient(tlsPort(srv));
    await client.write(buildRequest({ transport: "TCP" }));
    expect(statusOf(await client.next(5000))).toBe(200);
  });

  it("the output cap closes the TLS connection of a client that does not read, dropping the reply that does not fit", async () => {
    const srv = await serve({}, { streamLimits: { maxOutputBytes: 256 * 1024 } });
    padding = "x".repeat(60_000);
    const stalled = await tlsClient(tlsPort(srv));
    stalled.socket.pause(); // never reads: the replies pile up in the kernel, then in the server
    // 60 kB a reply; loopback's kernel buffers hold a few MB, so at most 1 000 requests fill them and the queue behind.
    for (let i = 0; i < 1000 && srv.server.tlsPolicyCounters?.closedOutputFull === 0; i++) {
      if (stalled.socket.destroyed) break;
      stalled.socket.write(buildRequest({ transport: "TCP" }));
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await until("the stalled connection closed", () => srv.server.tlsPolicyCounters?.closedOutputFull === 1, 10_000);
    expect(srv.server.tlsPolicyCounters?.droppedMessages).toBe(1);
    await until("the connection released", () => srv.server.tlsConnectionCount === 0);
  }, 20_000);

  it("the idle timeout closes an established TLS connection and gives its place back", async () => {
    const srv = await serve({}, { streamLimits: { idleTimeoutMs: 300 } });
    const client = await tlsClient(tlsPort(srv));
    await client.write(buildRequest({ transport: "TCP" }));
    expect(statusOf(await client.next(5000))).toBe(200);
    await client.waitClosed(5000);
    expect(srv.server.tlsPolicyCounters?.closedIdle).toBe(1);
    await until("the connection released", () => srv.server.tlsConnectionCount === 0);
  });

  it("plain SIP sent to the TLS port fails the handshake: logged, closed, nothing routed", async () => {
    const srv = await serve();
    const plain = await TcpPeer.connect(tlsPort(srv));
    closeAfter(() => plain.close());
    await plain.write(buildRequest({ transport: "TCP" }));
    await plain.waitClosed(5000);
    expect(received).toEqual([]);
    await until("the handshake failure", () => srv.server.tlsPolicyCounters?.failedHandshake === 1);
    expect(logs.lines().some((l) => /tls connection \d+ from 127\.0\.0\.1:\d+: TLS handshake failed: /.test(l))).toBe(true);
  });
});

describe("reload", () => {
  it("reads the certificate files again: new connections get the new certificate; unreadable files keep the old one", async () => {
    const cert = `${pki.dir}/live.pem`;
    const key = `${pki.dir}/live.key`;
    copyFileSync(pki.server.cert, cert);
    copyFileSync(pki.server.key, key);
    const srv = await serve({ certFile: cert, keyFile: key });
    const subjectCn = async (): Promise<string | undefined> => {
      const peer = await tlsClient(tlsPort(srv));
      return (peer.socket as tls.TLSSocket).getPeerCertificate().subject.CN as string | undefined;
    };
    expect(await subjectCn()).toBe("server.test");
    copyFileSync(pki.server2.cert, cert);
    copyFileSync(pki.server2.key, key);
    expect(srv.server.reloadTls()).toBeUndefined();
    expect(await subjectCn()).toBe("reloaded.test");
    // A key that does not match the certificate: refused, the previous pair stays.
    copyFileSync(pki.server.key, key);
    expect(srv.server.reloadTls()).toMatch(/key values mismatch|does not match|key/i);
    expect(await subjectCn()).toBe("reloaded.test");
  });

  it("a tls listen socket without certificate settings does not start", async () => {
    await expect(
      startServer(new HostRouteRunner(routes), {
        listen: [
          { proto: "udp", ip: LOCALHOST, port: 0 },
          { proto: "tcp", ip: LOCALHOST, port: 0 },
          { proto: "tls", ip: LOCALHOST, port: 0 },
        ],
      }),
    ).rejects.toThrow(/tls listen socket needs a certificate and key/);
  });
});

/** A TLS handshake with `options` (SNI, versions, ciphers): what the server presented and negotiated, or the client's error. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<{ cn?: string; version?: string; cipher?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: LOCALHOST, port, ca: readFileSync(pki.caFile), ...options }, () => {
      const result = { cn: s.getPeerCertificate().subject.CN as string, version: s.getProtocol() ?? "", cipher: s.getCipher().name };
      s.end();
      resolve(result);
    });
    s.once("error", (err) => resolve({ error: err.message }));
  });
}

describe("server names (SNI) and protocol options", () => {
  it("presents a server name's own certificate to a client asking for it (wildcards for subdomains), the default to the others; the script sees which", async () => {
    const srv = await serve({ serverNames: [{ names: ["sip.acme.test", "*.acme.test"], certFile: pki.acme.cert, keyFile: pki.acme.key, owner: "tenant acme" }] });
    const port = tlsPort(srv);
    // The client verifies the name it asked for: only the acme certificate passes.
    expect(await handshake(port, { servername: "sip.acme.test" })).toMatchObject({ cn: "sip.acme.test" });
    expect(await handshake(port, { servername: "pbx.acme.test" })).toMatchObject({ cn: "sip.acme.test" });
    expect(await handshake(port, { servername: "ACME.test", checkServerIdentity: () => undefined })).toMatchObject({ cn: "server.test" });
    expect(await handshake(port, { servername: "other.example", checkServerIdentity: () => undefined })).toMatchObject({ cn: "server.test" });
    expect(await handshake(port, {})).toMatchObject({ cn: "server.test" });

    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: LOCALHOST, port, servername: "sip.acme.test", ca: readFileSync(pki.caFile) }, () => resolve(s));
      s.once("error", reject);
    });
    const client = TcpPeer.wrap(socket);
    closeAfter(() => client.close());
    await client.write(buildRequest({ transport: "TCP", viaParams: "" }).replace("SIP/2.0/TCP", "SIP/2.0/TLS"));
    expect(statusOf(await client.next(5000))).toBe(200);
    expect(received[0]!.tls?.serverName).toBe("sip.acme.test");
    expect(received[0]!.tls?.local?.subjectAttrs.CN).toBe("sip.acme.test");
  });

  it("warns at start about a server name its certificate does not cover, and a reload reads the names' files again", async () => {
    const cert = `${pki.dir}/named.pem`;
    const key = `${pki.dir}/named.key`;
    copyFileSync(pki.acme.cert, cert);
    copyFileSync(pki.acme.key, key);
    const srv = await serve({ serverNames: [{ names: ["sip.acme.test", "sip.globex.test"], certFile: cert, keyFile: key, owner: "tenant acme" }] });
    expect(logs.lines().some((l) => l.includes(`TLS certificate ${cert} of tenant acme does not name sip.globex.test`))).toBe(true);
    copyFileSync(pki.server2.cert, cert);
    copyFileSync(pki.server2.key, key);
    expect(srv.server.reloadTls()).toBeUndefined();
    expect(await handshake(tlsPort(srv), { servername: "sip.acme.test", checkServerIdentity: () => undefined })).toMatchObject({ cn: "reloaded.test" });
  });

  it("--tls-min-version TLSv1.3 refuses a TLS 1.2 client; a cipher list chooses TLS 1.2's cipher", async () => {
    const strict = await serve({ minVersion: "TLSv1.3" });
    expect((await handshake(tlsPort(strict), { maxVersion: "TLSv1.2" })).error).toBeDefined();
    expect(await handshake(tlsPort(strict), {})).toMatchObject({ version: "TLSv1.3" });
    await strict.stop();
    const ciphered = await serve({ ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384" });
    expect(await handshake(tlsPort(ciphered), { maxVersion: "TLSv1.2" })).toMatchObject({ version: "TLSv1.2", cipher: "ECDHE-ECDSA-AES256-GCM-SHA384" });
    expect((await handshake(tlsPort(ciphered), { maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" })).error).toBeDefined();
  });

  it("a cipher list OpenSSL does not know, or a server name's unreadable file, stops the start naming it", async () => {
    const start = (settings: Partial<TlsSettings>) =>
      startServer(new HostRouteRunner(routes), {
        listen: [{ proto: "tls", ip: LOCALHOST, port: 0 }],
        tls: { certFile: pki.server.cert, keyFile: pki.server.key, ...settings },
      });
    await expect(start({ ciphers: "NO-SUCH-CIPHER" })).rejects.toThrow(/TLS ciphers "NO-SUCH-CIPHER": .*OpenSSL cipher list/);
    await expect(start({ serverNames: [{ names: ["sip.acme.test"], certFile: `${pki.dir}/missing.pem`, keyFile: pki.acme.key }] })).rejects.toThrow(
      /cannot read TLS certificate file .*missing\.pem/,
    );
  });
});
