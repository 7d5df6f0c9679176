/**
 * KSR.dispatcher's choice against Kamailio 5.6's on the same list: the
 * hash algorithms (0 Call-ID, 1 From URI, 2 To URI) must pick the same
 * destination for the same message, which needs Kamailio's hash function
 * and its order of a set's destinations (priority, then last line first);
 * round robin (4) and priority (8) must walk the same sequence, skipping
 * an inactive destination; call load (10) must send INVITEs to the same
 * least loaded destinations as BYEs (ds_load_update) free them. Each
 * request is answered by test/interop/scripts/dispatcher-probe.js with the
 * destination it selected.
 */
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kamailioVersion, startKamailio } from "../../bench/lib/kamailio.mjs";
import { REPO_ROOT, ensureBuilt, findFreePort, startKsr, type KsrProcess } from "../../bench/lib/sipp.mjs";

const PROBE = path.join(REPO_ROOT, "test", "interop", "scripts", "dispatcher-probe.js");
const CFG = path.join(REPO_ROOT, "test", "interop", "cfg", "kamailio-dispatcher.cfg");

const LIST = [
  "# set 1: priorities 0 and 5, equal priorities in file order",
  "1 sip:10.0.0.1:5060",
  "1 sip:10.0.0.2:5060 0 5",
  "1 sip:10.0.0.3:5060",
  "1 sip:10.0.0.4:5060 0 5 duid=d4",
  "1 sip:10.0.0.5:5070",
  "1 sip:10.0.0.6;transport=tcp 1", // flags 1: inactive, skipped
  "2 sip:10.0.2.1:5060",
  "2 sip:10.0.2.2:5060",
  "2 sip:10.0.2.3:5060",
  "# set 3: call load, one destination taking at most two calls",
  "3 sip:10.0.3.1:5060 0 0 duid=x1",
  "3 sip:10.0.3.2:5060 0 0 duid=x2;maxload=2",
  "3 sip:10.0.3.3:5060 0 0 duid=x3",
  "",
].join("\n");

interface Probe {
  /** OPTIONS unless given; algorithm 10 dispatches INVITEs only. */
  readonly method?: "INVITE" | "BYE";
  readonly set: number;
  readonly alg: number;
  readonly callId: string;
  readonly from: string;
  readonly to: string;
}

function probes(): Probe[] {
  const out: Probe[] = [];
  for (let i = 0; i < 12; i++) {
    const common = { callId: `c${i}-${(i * 7919).toString(36)}@host${i}.example.net`, from: `sip:user${i}@example${i % 5}.com${i % 3 === 0 ? `:${5000 + i}` : ""}`, to: `sip:dest${i * 3}@example.org${i % 4 === 1 ? ":5060" : ""}` };
    for (const alg of [0, 1, 2]) out.push({ set: 1 + (i % 2), alg, ...common });
  }
  for (let i = 0; i < 7; i++) out.push({ set: 1, alg: 4, callId: `rr${i}@x`, from: "sip:a@x", to: "sip:b@y" });
  for (let i = 0; i < 4; i++) out.push({ set: 2, alg: 4, callId: `rr2-${i}@x`, from: "sip:a@x", to: "sip:b@y" });
  out.push({ set: 1, alg: 8, callId: "prio@x", from: "sip:a@x", to: "sip:b@y" });
  out.push({ set: 7, alg: 0, callId: "noset@x", from: "sip:a@x", to: "sip:b@y" });
  const call = (method: "INVITE" | "BYE", n: number): Probe => ({ method, set: 3, alg: 10, callId: `load${n}@x`, from: "sip:a@x", to: "sip:b@y" });
  for (const n of [1, 2, 3, 4, 5]) out.push(call("INVITE", n));
  out.push(call("BYE", 2), call("BYE", 3), call("INVITE", 6), call("INVITE", 7), call("BYE", 99), call("INVITE", 8));
  out.push({ set: 3, alg: 10, callId: "load-options@x", from: "sip:a@x", to: "sip:b@y" });
  return out;
}

/** Each probe as one OPTIONS; the reason phrase of its 200 ("ds <rc> <$du>"). */
async function selections(port: number, list: readonly Probe[]): Promise<string[]> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const localPort = socket.address().port;
  try {
    const out: string[] = [];
    for (const [i, p] of list.entries()) {
      const method = p.method ?? "OPTIONS";
      const request = [
        `${method} sip:probe@127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bKds${i}x${Date.now()}`,
        "Max-Forwards: 70",
        `From: <${p.from}>;tag=p${i}`,
        `To: <${p.to}>`,
        `Call-ID: ${p.callId}`,
        `CSeq: ${method === "BYE" ? 2 : 1} ${method}`,
        ...(method === "INVITE" ? [`Contact: <sip:probe@127.0.0.1:${localPort}>`] : []),
        `X-Set: ${p.set}`,
        `X-Alg: ${p.alg}`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n");
      const answer = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          socket.off("message", onMessage);
          reject(new Error(`no answer from port ${port} to probe ${i} ${JSON.stringify(p)}`));
        }, 3000);
        function onMessage(m: Buffer): void {
          const text = m.toString("latin1");
          if (!text.includes(`Call-ID: ${p.callId}\r\n`)) return;
          clearTimeout(timer);
          socket.off("message", onMessage);
          resolve(text.slice(0, text.indexOf("\r\n")).replace(/^SIP\/2\.0 200 /, ""));
        }
        socket.on("message", onMessage);
      });
      socket.send(request, port, "127.0.0.1");
      out.push(`${method} set ${p.set} alg ${p.alg} ${p.callId}: ${await answer}`);
    }
    return out;
  } finally {
    socket.close();
  }
}

describe("dispatcher selection: ksr and Kamailio 5.6 pick the same destinations", () => {
  let dir: string;
  let ksr: KsrProcess | undefined;
  let kamailio: KsrProcess | undefined;
  let ksrWorkers: KsrProcess | undefined;

  beforeAll(async () => {
    if (kamailioVersion() === null) throw new Error("kamailio is not installed: the reference cannot start");
    ensureBuilt();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-dispatcher-selection-"));
    const list = path.join(dir, "dispatcher.list");
    fs.writeFileSync(list, LIST);
    ksr = await startKsr({ script: PROBE, port: await findFreePort(), extraArgs: ["--dispatcher-list", list, "--dispatcher-param", "flags=2", "--dispatcher-param", "ds_hash_size=8"] });
    // The list reaches worker processes too (each keeps its own round robin and states).
    ksrWorkers = await startKsr({ script: PROBE, port: await findFreePort(), extraArgs: ["--workers", "2", "--dispatcher-list", list, "--dispatcher-param", "flags=2", "--dispatcher-param", "ds_hash_size=8"] });
    kamailio = await startKamailio({ script: PROBE, port: await findFreePort(), children: 1, cfgTemplate: CFG, defines: [`DS_LIST="${list}"`] });
  }, 60_000);

  afterAll(async () => {
    await ksr?.stop();
    await ksrWorkers?.stop();
    await kamailio?.stop();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("hash of Call-ID, From and To, round robin, priority, call load and an unknown set", async () => {
    const list = probes();
    const fromKamailio = await selections(kamailio!.port, list);
    const fromKsr = await selections(ksr!.port, list);
    // The reference picked more than one destination per set, so the comparison says something.
    expect(new Set(fromKamailio.filter((l) => l.startsWith("OPTIONS set 1 alg 0")).map((l) => l.replace(/^.*: /, ""))).size).toBeGreaterThan(2);
    expect(fromKsr).toEqual(fromKamailio);
  });

  it("with --workers 2: the hash and priority algorithms pick what Kamailio picks", async () => {
    // Round robin and call load are per process: each worker keeps its own.
    const list = probes().filter((p) => p.alg !== 4 && p.alg !== 10);
    expect(await selections(ksrWorkers!.port, list)).toEqual(await selections(kamailio!.port, list));
  });
});
