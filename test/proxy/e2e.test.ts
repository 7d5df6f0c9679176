/**
 * The stateful proxy end to end: a real server on 127.0.0.1 running
 * scripts/stateful-proxy.js in an isolate, UDP test peers as UAC and UAS.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { LogCapture, startServer, TEST_LIMITS, type RunningServer } from "../e2e/harness.js";
import { UdpPeer, headerValue, headerValues, randomToken, statusOf, type Received } from "../e2e/sip-client.js";
import { ScriptRunner } from "../../sandbox/runner.js";

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "scripts", "stateful-proxy.js");
const IP = "127.0.0.1";

const logs = new LogCapture();
let running: RunningServer | undefined;
const peers: UdpPeer[] = [];

beforeEach(() => logs.install());
afterEach(async () => {
  for (const p of peers.splice(0)) await p.close();
  await running?.stop();
  running = undefined;
  logs.uninstall();
});

async function setup(uasCount = 1): Promise<{ proxyPort: number; uac: UdpPeer; uas: UdpPeer[] }> {
  const runner = ScriptRunner.load(SCRIPT, { limits: TEST_LIMITS, tenant: "proxy-e2e" });
  running = await startServer(runner, { tenantId: "proxy-e2e" });
  const uac = await UdpPeer.open();
  peers.push(uac);
  const uas: UdpPeer[] = [];
  for (let i = 0; i < uasCount; i++) {
    const p = await UdpPeer.open();
    peers.push(p);
    uas.push(p);
  }
  return { proxyPort: running.udpPort, uac, uas };
}

/** One call's dialog identifiers on the UAC side. */
interface Call {
  readonly callId: string;
  readonly fromTag: string;
  readonly uac: UdpPeer;
  readonly proxyPort: number;
  readonly target: string;
}

function newCall(uac: UdpPeer, proxyPort: number, target: string): Call {
  return { callId: `${randomToken()}@uac`, fromTag: randomToken(), uac, proxyPort, target };
}

function uacRequest(call: Call, method: string, opts: { branch: string; cseq?: number; uri?: string; toTag?: string; headers?: string[] }): string {
  return (
    [
      `${method} ${opts.uri ?? call.target} SIP/2.0`,
      `Via: SIP/2.0/UDP ${IP}:${call.uac.port};branch=${opts.branch}`,
      "Max-Forwards: 70",
      `From: <sip:alice@example.test>;tag=${call.fromTag}`,
      `To: <sip:bob@example.test>${opts.toTag ? `;tag=${opts.toTag}` : ""}`,
      `Call-ID: ${call.callId}`,
      `CSeq: ${opts.cseq ?? 1} ${method}`,
      `Contact: <sip:alice@${IP}:${call.uac.port}>`,
      ...(opts.headers ?? []),
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

/** A UAS response to a received request: all its Vias, its Record-Route, our To tag and Contact. */
function uasResponse(req: string, status: number, reason: string, uas: UdpPeer, toTag = "uas1", extra: string[] = []): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of headerValues(req, "via")) lines.push(`Via: ${v}`);
  for (const rr of headerValues(req, "record-route")) lines.push(`Record-Route: ${rr}`);
  lines.push(`From: ${headerValue(req, "from")}`);
  const to = headerValue(req, "to")!;
  lines.push(`To: ${to.includes(";tag=") ? to : `${to};tag=${toTag}`}`);
  lines.push(`Call-ID: ${headerValue(req, "call-id")}`, `CSeq: ${headerValue(req, "cseq")}`);
  if (status >= 200 && status < 300) lines.push(`Contact: <sip:bob@${IP}:${uas.port}>`);
  lines.push(...extra, "Content-Length: 0");
  return lines.join("\r\n") + "\r\n\r\n";
}

/** Next message that is not a retransmitted INVITE/1xx, with a method or status filter. */
async function expectNext(peer: UdpPeer, what: string | number, timeoutMs = 2000): Promise<Received> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 20; i++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const got = await peer.next(left);
    const matches = typeof what === "number" ? statusOf(got.data) === what : got.data.startsWith(`${what} `);
    if (matches) return got;
  }
  throw new Error(`no ${what} within ${timeoutMs} ms`);
}

/** Messages that arrive within `ms`. */
async function drain(peer: UdpPeer, ms: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 50; i++) {
    const got = await peer.poll(ms);
    if (got === undefined) break;
    out.push(got.data);
  }
  return out;
}

const firstLine = (text: string) => text.slice(0, text.indexOf("\r\n"));

describe("stateful proxy over UDP", () => {
  test("basic call: INVITE/100/180/200/ACK/BYE with Record-Route", async () => {
    const { proxyPort, uac, uas: [uas] } = await setup();
    const call = newCall(uac, proxyPort, `sip:bob@${IP}:${uas!.port}`);
    await uac.send(uacRequest(call, "INVITE", { branch: "z9hG4bKinv1" }), proxyPort);
    expect(statusOf((await uac.next()).data)).toBe(100);

    const invite = (await expectNext(uas!, "INVITE")).data;
    expect(headerValues(invite, "via")).toHaveLength(2);
    expect(headerValue(invite, "max-forwards")).toBe("69");
    const rr = headerValues(invite, "record-route");
    expect(rr).toHaveLength(1);
    expect(rr[0]).toContain(`${IP}:${proxyPort}`);
    expect(headerValue(invite, "x-branch")).toBe("0"); // added by the branch route

    await uas!.send(uasResponse(invite, 180, "Ringing", uas!, "uas1", ["X-Internal: secret"]), proxyPort);
    const ringing = await expectNext(uac, 180);
    expect(headerValues(ringing.data, "via")).toHaveLength(1);
    expect(headerValue(ringing.data, "x-internal")).toBeUndefined(); // removed by the onreply route
    await uas!.send(uasResponse(invite, 200, "OK", uas!), proxyPort);
    const ok = (await expectNext(uac, 200)).data;
    expect(headerValues(ok, "record-route")).toEqual(rr);

    // ACK and BYE follow the route set (§12.2.1.1): Request-URI = the UAS Contact, Route = the Record-Route
    const contact = headerValue(ok, "contact")!.replace(/^<|>$/g, "");
    const route = [`Route: ${rr[0]}`];
    await uac.send(uacRequest(call, "ACK", { branch: "z9hG4bKack1", uri: contact, toTag: "uas1", headers: route }), proxyPort);
    const ack = (await expectNext(uas!, "ACK")).data;
    expect(headerValue(ack, "route")).toBeUndefined();

    await uac.send(uacRequest(call, "BYE", { branch: "z9hG4bKbye1", cseq: 2, uri: contact, toTag: "uas1", headers: route }), proxyPort);
    const bye = (await expectNext(uas!, "BYE")).data;
    await uas!.send(uasResponse(bye, 200, "OK", uas!), proxyPort);
    const byeOk = (await expectNext(uac, 200)).data;
    expect(headerValue(byeOk, "cseq")).toBe("2 BYE");
  });

  test("a retransmitted INVITE is absorbed (the UAS sees one INVITE) and a retransmitted 200 reaches the UAC", async () => {
    const { proxyPort, uac, uas: [uas] } = await setup();
    const call = newCall(uac, proxyPort, `sip:bob@${IP}:${uas!.port}`);
    const inviteText = uacRequest(call, "INVITE", { branch: "z9hG4bKretr" });
    await uac.send(inviteText, proxyPort);
    const invite = (await expectNext(uas!, "INVITE")).data;
    await uas!.send(uasResponse(invite, 180, "Ringing", uas!), proxyPort);
    await expectNext(uac, 180);
    await uac.send(inviteText, proxyPort);
    // the retransmission is answered with the last provisional, not forwarded
    expect(statusOf((await expectNext(uac, 180)).data)).toBe(180);
    expect((await drain(uas!, 300)).filter((m) => m.startsWith("INVITE "))).toEqual([]);
    const ok = uasResponse(invite, 200, "OK", uas!);
    await uas!.send(ok, proxyPort);
    await uas!.send(ok, proxyPort); // the UAS retransmits its 200 (the first was "lost")
    await expectNext(uac, 200);
    await expectNext(uac, 200);
  });

  test("CANCEL of a ringing call: 200 for the CANCEL, CANCEL to the UAS, 487 back to the UAC", async () => {
    const { proxyPort, uac, uas: [uas] } = await setup();
    const call = newCall(uac, proxyPort, `sip:bob@${IP}:${uas!.port}`);
    await uac.send(uacRequest(call, "INVITE", { branch: "z9hG4bKcan" }), proxyPort);
    const invite = (await expectNext(uas!, "INVITE")).data;
    await uas!.send(uasResponse(invite, 180, "Ringing", uas!), proxyPort);
    await expectNext(uac, 180);

    await uac.send(uacRequest(call, "CANCEL", { branch: "z9hG4bKcan" }), proxyPort);
    const cancelOk = (await expectNext(uac, 200)).data;
    expect(headerValue(cancelOk, "cseq")).toBe("1 CANCEL");
    const cancel = (await expectNext(uas!, "CANCEL")).data;
    expect(headerValues(cancel, "via")[0]).toBe(headerValues(invite, "via")[0]); // §9.1: the INVITE's top Via
    await uas!.send(uasResponse(cancel, 200, "OK", uas!), proxyPort);
    await uas!.send(uasResponse(invite, 487, "Request Terminated", uas!), proxyPort);
    const ackDown = (await expectNext(uas!, "ACK")).data;
    expect(headerValue(ackDown, "cseq")).toBe("1 ACK");
    const terminated = (await expectNext(uac, 487)).data;
    expect(headerValue(terminated, "cseq")).toBe("1 INVITE");
    // the UAC's ACK for the 487 is absorbed hop by hop
    await uac.send(uacRequest(call, "ACK", { branch: "z9hG4bKcan", toTag: "uas1" }), proxyPort);
    expect(await drain(uas!, 300)).toEqual([]);
  });

  test("UAS answers 486: relayed to the UAC, ACKed by the proxy", async () => {
    const { proxyPort, uac, uas: [uas] } = await setup();
    const call = newCall(uac, proxyPort, `sip:bob@${IP}:${uas!.port}`);
    await uac.send(uacRequest(call, "INVITE", { branch: "z9hG4bKbusy" }), proxyPort);
    const invite = (await expectNext(uas!, "INVITE")).data;
    await uas!.send(uasResponse(invite, 486, "Busy Here", uas!), proxyPort);
    expect(firstLine((await expectNext(uas!, "ACK")).data)).toBe(`ACK sip:bob@${IP}:${uas!.port} SIP/2.0`);
    expect(statusOf((await expectNext(uac, 486)).data)).toBe(486);
  });

  test("silent UAS: the branch times out (408) and the failure route forwards to a second UAS that answers", async () => {
    const { proxyPort, uac, uas: [silent, backup] } = await setup(2);
    const call = newCall(uac, proxyPort, `sip:bob@${IP}:${silent!.port}`);
    await uac.send(
      uacRequest(call, "INVITE", { branch: "z9hG4bKfo", headers: [`X-Backup: sip:bob@${IP}:${backup!.port}`] }),
      proxyPort,
    );
    await expectNext(silent!, "INVITE");
    const second = (await expectNext(backup!, "INVITE", 3000)).data;
    expect(second.startsWith(`INVITE sip:bob@${IP}:${backup!.port} SIP/2.0`)).toBe(true);
    await backup!.send(uasResponse(second, 200, "OK", backup!, "backup"), proxyPort);
    const ok = (await expectNext(uac, 200)).data;
    expect(headerValue(ok, "to")).toContain("tag=backup");
    // the 408 of the silent branch never reaches the UAC
    expect((await drain(uac, 200)).map(statusOf).filter((s) => s === 408)).toEqual([]);
  });
});
