/**
 * KSR.pike against Kamailio 5.6's pike, request by request: the same probe
 * script (test/interop/scripts/pike-probe.js answers "pike <verdict>") on
 * `ksr run` and on Kamailio (bench/cfg/kamailio-anti-flood.cfg), the same
 * bursts sent to both: from a new IPv4 address, from a neighbour under its
 * now-hot prefix, and pike_check_ip of an IPv4 and of an IPv6 address
 * (which Kamailio 5.6 cannot parse: -1). The verdict sequences must be
 * equal. (IPv6 sources cannot be compared here: loopback has one IPv6
 * address; the IPv6 tree is covered by test/modules-state/pike.test.ts.)
 *
 * Needs kamailio (Debian package kamailio: pike, htable and app_jsdt are in
 * it), which .ci/run installs; on a machine without it this suite is
 * skipped, saying so.
 *
 * Windows: Kamailio cuts its windows from its own start, ksr on multiples
 * of the unit; a 10 s unit on both makes a window boundary inside a burst
 * (under a second) unlikely, and a burst set that differs is run again
 * from fresh addresses (at most 3 times) before it counts as a difference.
 */
import dgram from "node:dgram";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, ensureBuilt, findFreePort, startKsr, type KsrProcess } from "../../bench/lib/sipp.mjs";
import { kamailioVersion, startKamailio } from "../../bench/lib/kamailio.mjs";

const PROBE = path.join(REPO_ROOT, "test", "interop", "scripts", "pike-probe.js");
const CFG = path.join(REPO_ROOT, "bench", "cfg", "kamailio-anti-flood.cfg");
const UNIT_S = 10;

/** One UDP source on 127.0.0.x asking `port` for pike verdicts, one request at a time. */
async function verdicts(port: number, sourceIp: string, count: number, pikeIp?: (i: number) => string): Promise<number[]> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, sourceIp, resolve));
  const localPort = socket.address().port;
  try {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const callId = `pike-${sourceIp}-${i}-${Math.random().toString(16).slice(2)}`;
      const request = [
        `OPTIONS sip:pike@127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP ${sourceIp}:${localPort};branch=z9hG4bK${callId}`,
        "Max-Forwards: 70",
        `From: <sip:probe@${sourceIp}>;tag=${i}`,
        "To: <sip:probe@127.0.0.1>",
        `Call-ID: ${callId}`,
        "CSeq: 1 OPTIONS",
        ...(pikeIp ? [`X-Pike-Ip: ${pikeIp(i)}`] : []),
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n");
      const answer = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer from port ${port} to request ${i} from ${sourceIp}`)), 3000);
        socket.once("message", (m) => {
          clearTimeout(timer);
          resolve(m.toString("latin1"));
        });
      });
      socket.send(request, port, "127.0.0.1");
      const m = /^SIP\/2\.0 200 pike (-?\d+)\r\n/.exec(await answer);
      if (m === null) throw new Error(`unexpected answer from port ${port}`);
      out.push(Number(m[1]));
    }
    return out;
  } finally {
    socket.close();
  }
}

/** The four bursts of one attempt; `n` makes every address fresh. */
async function bursts(port: number, n: number): Promise<Record<string, number[]>> {
  return {
    ipv4: await verdicts(port, `127.0.${n}.21`, 45),
    neighbour: await verdicts(port, `127.0.${n}.22`, 35),
    checkIp: await verdicts(port, `127.0.${n}.23`, 45, () => `198.51.${n}.7`),
    checkIpv6: await verdicts(port, `127.0.${n}.24`, 5, () => `2001:db8:${n}::5`),
  };
}

const KAMAILIO = kamailioVersion();

describe.skipIf(KAMAILIO === null)(`KSR.pike gives Kamailio 5.6's verdicts${KAMAILIO === null ? " (skipped: kamailio is not installed)" : ""}`, () => {
  let ksr: KsrProcess | undefined;
  let kamailio: KsrProcess | undefined;

  beforeAll(async () => {
    ensureBuilt();
    ksr = await startKsr({ script: PROBE, port: await findFreePort(), extraArgs: ["--pike-sampling-time-unit", String(UNIT_S)] });
    kamailio = await startKamailio({ script: PROBE, port: await findFreePort(), cfgTemplate: CFG, defines: [`PIKE_SAMPLING_TIME_UNIT=${UNIT_S}`] });
  }, 60_000);

  afterAll(async () => {
    await ksr?.stop();
    await kamailio?.stop();
  });

  it("for a new IPv4 source, its neighbour, and pike_check_ip of IPv4 and IPv6 addresses", async () => {
    let ours: Record<string, number[]> = {};
    let theirs: Record<string, number[]> = {};
    for (let attempt = 1; attempt <= 3; attempt++) {
      ours = await bursts(ksr!.port, attempt);
      theirs = await bursts(kamailio!.port, attempt);
      if (JSON.stringify(ours) === JSON.stringify(theirs)) break;
    }
    expect(ours).toEqual(theirs);
    // What the sequences are (so that equal-but-trivial cannot pass): a new address is caught at its 39th request.
    expect(ours.ipv4!.indexOf(-2)).toBe(38);
    expect(ours.checkIp!.indexOf(-2)).toBe(38);
    expect(ours.neighbour!.indexOf(-2)).toBeGreaterThan(0);
    expect(ours.checkIpv6).toEqual([-1, -1, -1, -1, -1]);
  }, 120_000);
});
