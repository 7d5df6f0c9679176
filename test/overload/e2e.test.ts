/**
 * Load shedding end to end: a real server on 127.0.0.1 running the stateful
 * proxy script, UDP peers as UAC and UAS. The overload is forced by the
 * delay source the test controls (the probe's measure, which follows the
 * machine's load, is replaced), and the shedder's clock is the test's, so
 * the per-second line is due when the test says.
 */
import dgram from "node:dgram";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { LogCapture, startServer, TEST_LIMITS, type RunningServer } from "../e2e/harness.js";
import { UdpPeer, headerValue, headerValues, randomToken, statusOf, type Received } from "../e2e/sip-client.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { ReceiveQueueProbe, SHED_TAG_PREFIX } from "../../host/core/overload.js";
import type { ReceiveInfo } from "../../host/core/context.js";

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "proxy", "scripts", "stateful-proxy.js");
const IP = "127.0.0.1";

const logs = new LogCapture();
let running: RunningServer | undefined;
const closers: (() => Promise<void>)[] = [];

beforeEach(() => logs.install());
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await running?.stop();
  running = undefined;
  logs.uninstall();
});

async function peer(): Promise<UdpPeer> {
  const p = await UdpPeer.open();
  closers.push(() => p.close());
  return p;
}

interface Call {
  readonly callId: string;
  readonly fromTag: string;
}

function newCall(): Call {
  return { callId: `${randomToken()}@uac`, fromTag: randomToken() };
}

function uacRequest(uac: UdpPeer, call: Call, method: string, opts: { branch: string; target: string; cseq?: number; toTag?: string; route?: string[] }): string {
  return (
    [
      `${method} ${opts.target} SIP/2.0`,
      `Via: SIP/2.0/UDP ${IP}:${uac.port};branch=${opts.branch}`,
      ...(opts.route ?? []).map((r) => `Route: ${r}`),
      "Max-Forwards: 70",
      `From: <sip:alice@example.test>;tag=${call.fromTag}`,
      `To: <sip:bob@example.test>${opts.toTag ? `;tag=${opts.toTag}` : ""}`,
      `Call-ID: ${call.callId}`,
      `CSeq: ${opts.cseq ?? 1} ${method}`,
      `Contact: <sip:alice@${IP}:${uac.port}>`,
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

function uasResponse(req: string, status: number, reason: string, uas: UdpPeer): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of headerValues(req, "via")) lines.push(`Via: ${v}`);
  for (const rr of headerValues(req, "record-route")) lines.push(`Record-Route: ${rr}`);
  lines.push(`From: ${headerValue(req, "from")}`);
  const to = headerValue(req, "to")!;
  lines.push(`To: ${to.includes(";tag=") ? to : `${to};tag=uas1`}`);
  lines.push(`Call-ID: ${headerValue(req, "call-id")}`, `CSeq: ${headerValue(req, "cseq")}`);
  if (status >= 200 && status < 300) lines.push(`Contact: <sip:bob@${IP}:${uas.port}>`);
  lines.push("Content-Length: 0");
  return lines.join("\r\n") + "\r\n\r\n";
}

/** The next message whose start line begins with `what` (a method) or has status `what`, skipping others (bounded); every message taken is added to `seen`. */
async function expectNext(p: UdpPeer, what: string | number, seen: string[] = []): Promise<Received> {
  for (let i = 0; i < 20; i++) {
    const got = await p.next();
    seen.push(got.data);
    const matches = typeof what === "number" ? statusOf(got.data) === what : got.data.startsWith(`${what} `);
    if (matches) return got;
  }
  throw new Error(`no ${what} among 20 messages`);
}

describe("load shedding over UDP", () => {
  test("over the threshold: a new INVITE gets 503 with Retry-After, the call in progress completes, its retransmission is absorbed", async () => {
    const clock = { now: 1_000_000, delay: 0 };
    const runner = ScriptRunner.load(SCRIPT, { limits: TEST_LIMITS, tenant: "overload-e2e" });
    running = await startServer(runner, {
      tenantId: "overload-e2e",
      now: () => clock.now,
      overload: { thresholdMs: 100, sustainMs: 0, delaySource: () => clock.delay },
    });
    const proxyPort = running.udpPort;
    const uac = await peer();
    const uas = await peer();
    const target = `sip:bob@${IP}:${uas.port}`;

    // A call accepted before the overload.
    const call = newCall();
    const invite = uacRequest(uac, call, "INVITE", { branch: "z9hG4bKaccepted", target });
    await uac.send(invite, proxyPort);
    expect(statusOf((await uac.next()).data)).toBe(100);
    const atUas: string[] = [];
    const relayed = (await expectNext(uas, "INVITE", atUas)).data;

    clock.delay = 250;

    // A new call is refused without running the script.
    const refused = newCall();
    await uac.send(uacRequest(uac, refused, "INVITE", { branch: "z9hG4bKrefused", target }), proxyPort);
    const reply = (await uac.next()).data;
    expect(statusOf(reply)).toBe(503);
    expect(headerValue(reply, "retry-after")).toBe("1");
    const shedTag = /;tag=([^;\s]+)/.exec(headerValue(reply, "to")!)?.[1];
    expect(shedTag?.startsWith(SHED_TAG_PREFIX)).toBe(true);
    expect(logs.find((l) => l.includes("overload: queueing delay 250 ms reached the 100 ms threshold"))).toBeDefined();
    // Its ACK ends here (hop by hop, RFC 3261 §17.1.1.3).
    await uac.send(uacRequest(uac, refused, "ACK", { branch: "z9hG4bKrefused", target, toTag: shedTag }), proxyPort);

    // The accepted INVITE's retransmission goes to its transaction: the 100 again, not a 503.
    await uac.send(invite, proxyPort);
    expect(statusOf((await uac.next()).data)).toBe(100);

    // Responses are served: the 180 and 200 reach the UAC.
    await uas.send(uasResponse(relayed, 180, "Ringing", uas), proxyPort);
    expect(statusOf((await uac.next()).data)).toBe(180);
    const ok = uasResponse(relayed, 200, "OK", uas);
    await uas.send(ok, proxyPort);
    const okAtUac = (await expectNext(uac, 200)).data;
    const routeSet = headerValues(okAtUac, "record-route");
    expect(routeSet.length).toBeGreaterThan(0);

    // In-dialog requests are served: the ACK of the 200 and the BYE reach the UAS.
    await uac.send(uacRequest(uac, call, "ACK", { branch: "z9hG4bKack2xx", target, toTag: "uas1", route: routeSet }), proxyPort);
    expect((await expectNext(uas, "ACK", atUas)).data).toContain(`Call-ID: ${call.callId}`);
    await uac.send(uacRequest(uac, call, "BYE", { branch: "z9hG4bKbye", target, cseq: 2, toTag: "uas1", route: routeSet }), proxyPort);
    const bye = (await expectNext(uas, "BYE", atUas)).data;
    await uas.send(uasResponse(bye, 200, "OK", uas), proxyPort);
    expect(headerValue((await expectNext(uac, 200)).data, "cseq")).toBe("2 BYE");

    // The UAS saw neither the refused INVITE nor its ACK (the BYE came after them on the same path).
    expect(atUas.filter((m) => m.includes(refused.callId))).toEqual([]);
    const counters = running.server.shedder!.counters();
    expect(counters.shed.get("INVITE")).toBe(1);
    expect(counters.shedAcks).toBe(1);
    expect(counters.absorbed).toBe(1);

    // A second later the line with that second's counts.
    clock.now += 1000;
    await uac.send(uacRequest(uac, newCall(), "REGISTER", { branch: "z9hG4bKreg", target: `sip:${IP}` }), proxyPort);
    expect(statusOf((await uac.next()).data)).toBe(503);
    expect(logs.find((l) => l.includes("shed 1 INVITE, 0 REGISTER in the last second (queueing delay 250 ms)"))).toBeDefined();

    // Below half the threshold new calls are routed again.
    clock.delay = 10;
    clock.now += 200;
    const later = newCall();
    await uac.send(uacRequest(uac, later, "INVITE", { branch: "z9hG4bKlater", target }), proxyPort);
    expect(statusOf((await uac.next()).data)).toBe(100);
    expect((await expectNext(uas, "INVITE")).data).toContain(`Call-ID: ${later.callId}`);
    expect(logs.find((l) => l.includes("overload over after 1.2 s: 2 request(s) shed (queueing delay 10 ms)"))).toBeDefined();
    expect(running.server.shedder!.counterLine()).toBe(
      "overload: shedding=no overload-episodes=1 shed=INVITE:1,REGISTER:1 absorbed-retransmissions=1 absorbed-acks-of-503=1 shed-unanswered=0",
    );
  });
});

describe("ReceiveQueueProbe", () => {
  test("probes the first UDP socket with datagrams only it recognises, and measures them out of the queue", async () => {
    const target = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => target.bind(0, IP, () => resolve()));
    closers.push(() => new Promise((resolve) => target.close(() => resolve())));
    const { port } = target.address();
    const probe = new ReceiveQueueProbe(Date.now, () => {});
    closers.push(async () => probe.stop());
    const received = new Promise<{ data: string; rcv: ReceiveInfo }>((resolve) =>
      target.once("message", (buf, rinfo) =>
        resolve({
          data: buf.toString("latin1"),
          rcv: { proto: "udp", srcIp: rinfo.address, srcPort: rinfo.port, localIp: IP, localPort: port, connectionId: -1 },
        }),
      ),
    );
    await probe.start([
      { proto: "tcp", ip: IP, port: 1 },
      { proto: "udp", ip: IP, port },
    ]);
    const { data, rcv } = await received;
    expect(probe.takeProbe(data, rcv)).toBe(true);
    // The same bytes from another port, or another key from the probe's port, are not probes.
    expect(probe.takeProbe(data, { ...rcv, srcPort: rcv.srcPort + 1 })).toBe(false);
    expect(probe.takeProbe(data.replace(/[0-9a-f]{16}/, "0".repeat(16)), rcv)).toBe(false);
    expect(probe.takeProbe(data, { ...rcv, proto: "tcp" })).toBe(false);
    expect(probe.delayMs()).toBeGreaterThanOrEqual(0);
  });
});

describe("ReceiveQueueProbe without a UDP socket", () => {
  test("the timer's lateness counts while it is late: a turn of the event loop that keeps it waiting shows as delay", async () => {
    let now = 5000;
    const probe = new ReceiveQueueProbe(() => now, () => {});
    closers.push(async () => probe.stop());
    await probe.start([{ proto: "tcp", ip: IP, port: 1 }]);
    // No await below: the timer cannot run between these lines.
    expect(probe.delayMs()).toBe(0);
    now += 350;
    expect(probe.delayMs()).toBe(340); // 350 ms since the timer last ran, 10 ms of which are its interval
  });
});
