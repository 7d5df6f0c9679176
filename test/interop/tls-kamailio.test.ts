/**
 * SIP over TLS between ksr and Kamailio 5.6 with its tls module, on
 * loopback, both ways, with certificates the test makes:
 * - ksr relays a request (received over UDP) to Kamailio over TLS,
 *   verifying Kamailio's certificate (--tls-verify-server), and Kamailio
 *   sees ksr's client certificate;
 * - Kamailio relays a request to ksr over TLS, ksr asking for a client
 *   certificate (optional) and verifying the one Kamailio presents.
 *
 * Needs kamailio and its tls module (Debian kamailio-tls-modules, which
 * .ci/run installs); without them this suite is skipped, saying so.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreePort, isListening } from "../../bench/lib/sipp.mjs";
import { kamailioVersion } from "../../bench/lib/kamailio.mjs";
import { HostRouteRunner, startServer, type RunningServer } from "../e2e/harness.js";
import { LOCALHOST, UdpPeer, buildRequest, headerValue, reasonOf, statusOf } from "../e2e/sip-client.js";
import { makeTestPki, type TestPki } from "../e2e/tls-certs.js";
import type { ReceiveInfo } from "../../host/core/context.js";

const TLS_MODULE_DIRS = ["/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules"];
const TLS_MODULE = TLS_MODULE_DIRS.find((d) => existsSync(path.join(d, "tls.so")));
const KAMAILIO = kamailioVersion();
const SKIP = KAMAILIO === null ? "kamailio is not installed" : TLS_MODULE === undefined ? "kamailio's tls module (kamailio-tls-modules) is not installed" : undefined;

interface Kamailio {
  readonly udpPort: number;
  readonly tlsPort: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Kamailio answering "200 kamailio over <proto>" with the subject CN of the
 * client certificate it was shown (X-Tls-Peer), and relaying a request for
 * user "forward" to the URI in its X-Next header.
 */
async function startKamailio(pki: TestPki, dir: string): Promise<Kamailio> {
  const udpPort = await findFreePort();
  const tlsPort = await findFreePort();
  writeFileSync(
    path.join(dir, "tls.cfg"),
    [
      "[server:default]",
      "method = TLSv1.2+",
      // Ask the client for a certificate, do not insist (is $tls_peer_subject_cn filled?).
      "verify_certificate = yes",
      "require_certificate = no",
      `certificate = ${pki.server.cert}`,
      `private_key = ${pki.server.key}`,
      `ca_list = ${pki.caFile}`,
      "[client:default]",
      "method = TLSv1.2+",
      "verify_certificate = no",
      `certificate = ${pki.client.cert}`,
      `private_key = ${pki.client.key}`,
      `ca_list = ${pki.caFile}`,
      "",
    ].join("\n"),
  );
  writeFileSync(
    path.join(dir, "kamailio.cfg"),
    [
      "#!KAMAILIO",
      "debug=2",
      "log_stderror=yes",
      "children=1",
      "tcp_children=1",
      "enable_tls=yes",
      `listen=udp:127.0.0.1:${udpPort}`,
      `listen=tls:127.0.0.1:${tlsPort}`,
      `mpath="${TLS_MODULE}"`,
      'loadmodule "sl.so"',
      'loadmodule "tm.so"',
      'loadmodule "tls.so"',
      'loadmodule "pv.so"',
      'loadmodule "textops.so"',
      'loadmodule "xlog.so"',
      `modparam("tls", "config", "${path.join(dir, "tls.cfg")}")`,
      "request_route {",
      '  xlog("L_NOTICE", "kamailio got $rm $ru over $pr from $si:$sp\\n");',
      '  if ($rU == "forward") {',
      "    $ru = $hdr(X-Next);",
      "    t_relay();",
      "    exit;",
      "  }",
      '  if ($pr == "tls") append_to_reply("X-Tls-Peer: $tls_peer_subject_cn\\r\\n");',
      '  sl_send_reply("200", "kamailio over $pr");',
      "}",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("kamailio", ["-f", path.join(dir, "kamailio.cfg"), "-DD", "-E", "-m", "64", "-M", "8", "-Y", dir], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString("latin1")).slice(-100_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const handle: Kamailio = {
    udpPort,
    tlsPort,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  const deadline = Date.now() + 15_000;
  while (!(isListening("udp", udpPort) && isListening("tcp", tlsPort))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`kamailio exited before listening:\n${out}`);
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`kamailio did not listen within 15 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return handle;
}

describe.skipIf(SKIP !== undefined)(`TLS with Kamailio 5.6's tls module${SKIP !== undefined ? ` (skipped: ${SKIP})` : ""}`, () => {
  let pki: TestPki;
  let dir: string;
  let kamailio: Kamailio | undefined;
  let ksr: RunningServer | undefined;
  let relayTarget = "";
  const received: ReceiveInfo[] = [];

  beforeAll(async () => {
    pki = makeTestPki();
    dir = mkdtempSync(path.join(tmpdir(), "ksr-kamailio-tls-"));
    kamailio = await startKamailio(pki, dir);
    ksr = await startServer(
      new HostRouteRunner({
        ksr_request_route: (ctx) => {
          received.push(ctx.rcv);
          if (ctx.msg.kind === "request" && ctx.msg.requestUri.startsWith("sip:relay@")) {
            ctx.host.forward(ctx, relayTarget);
            return;
          }
          ctx.host.sendReply(ctx, 200, `ksr over ${ctx.rcv.proto}`);
        },
      }),
      {
        listen: [
          { proto: "udp", ip: LOCALHOST, port: 0 },
          { proto: "tcp", ip: LOCALHOST, port: 0 },
          { proto: "tls", ip: LOCALHOST, port: 0 },
        ],
        tls: { certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.caFile, verifyClient: "optional", verifyServer: true },
      },
    );
  }, 60_000);

  afterAll(async () => {
    await ksr?.stop();
    await kamailio?.stop();
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  it("ksr relays to Kamailio over TLS (Kamailio's certificate verified) and the answer comes back; Kamailio saw ksr's certificate", async () => {
    relayTarget = `sip:kamailio@127.0.0.1:${kamailio!.tlsPort};transport=tls`;
    const uac = await UdpPeer.open();
    try {
      await uac.send(buildRequest({ uri: "sip:relay@127.0.0.1", viaPort: uac.port }), ksr!.udpPort);
      const answer = (await uac.next(10_000)).data;
      expect(statusOf(answer), kamailio!.output()).toBe(200);
      expect(reasonOf(answer)).toBe("kamailio over tls");
      // ksr presents its --tls-cert as a client too.
      expect(headerValue(answer, "x-tls-peer")).toBe("server.test");
    } finally {
      await uac.close();
    }
  }, 30_000);

  it("Kamailio relays to ksr over TLS; ksr verifies Kamailio's client certificate", async () => {
    received.length = 0;
    const uac = await UdpPeer.open();
    try {
      await uac.send(
        buildRequest({
          uri: "sip:forward@127.0.0.1",
          viaPort: uac.port,
          headers: [`X-Next: sip:service@127.0.0.1:${ksr!.server.portOf("tls")};transport=tls`],
        }),
        kamailio!.udpPort,
      );
      const answer = (await uac.next(10_000)).data;
      expect(statusOf(answer), kamailio!.output()).toBe(200);
      expect(reasonOf(answer)).toBe("ksr over tls");
      expect(received[0]?.proto).toBe("tls");
      expect(received[0]?.tls?.peerVerified).toBe(true);
      expect(received[0]?.tls?.peer?.subjectAttrs.CN).toBe("alice.test");
    } finally {
      await uac.close();
    }
  }, 30_000);
});
