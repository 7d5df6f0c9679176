/**
 * Worker pools behind the front (bench/WORKERS-DESIGN.md §5): the owner
 * function hash(Call-ID) mod k, and the front posting every kind of message
 * of a call to the worker that owns its Call-ID, against fake workers.
 */
import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ListenSocket } from "../../host/core/context.js";
import { SipServer } from "../../host/core/server.js";
import { parseMessage } from "../../host/sip/parser.js";
import type { SipMessage } from "../../host/sip/message.js";
import { loadTenantsFile } from "../../host/tenants/config.js";
import { callIdHash, callIdOwner } from "../../host/tenants/affinity.js";
import { TenantProcesses } from "../../host/tenants/processes.js";
import { IpcTransport } from "../../host/tenants/worker.js";
import type { WorkerMessage } from "../../host/tenants/worker-protocol.js";
import { FakeWorker, REPLY_200, rcv, tenantDir } from "./fixtures.js";

/** Plain FNV-1a, without the finalizer: what §5 says fails modulo a power of two. */
function plainFnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The first Call-ID "<prefix>-<n>" that worker `owner` of a pool of `size` owns. */
function callIdOwnedBy(owner: number, size: number, prefix = "call"): string {
  for (let n = 0; n < 1000; n++) {
    const id = `${prefix}-${n}@192.0.2.10`;
    if (callIdOwner(id, size) === owner) return id;
  }
  throw new Error(`no Call-ID for worker ${owner} of ${size} among 1000`);
}

describe("callIdOwner", () => {
  it("is deterministic, in range, and one worker for a pool of one", () => {
    expect(callIdOwner("abc@host", 4)).toBe(callIdOwner("abc@host", 4));
    for (let n = 0; n < 200; n++) {
      const owner = callIdOwner(`x${n}`, 3);
      expect(owner).toBeGreaterThanOrEqual(0);
      expect(owner).toBeLessThan(3);
      expect(callIdOwner(`x${n}`, 1)).toBe(0);
    }
    // Call-IDs compare case-sensitively (RFC 3261 §20.8): different ids may have different owners.
    expect(callIdHash("ABC@host")).not.toBe(callIdHash("abc@host"));
  });

  it("spreads Call-IDs that differ by a counter evenly over 2, 3 and 4 workers, where plain FNV-1a alternates in lockstep", () => {
    const ids = Array.from({ length: 4000 }, (_, n) => `${n}-bench@127.0.0.1`);
    for (const size of [2, 3, 4]) {
      const counts = new Array<number>(size).fill(0);
      for (const id of ids) counts[callIdOwner(id, size)]!++;
      for (const c of counts) expect(Math.abs(c / ids.length - 1 / size)).toBeLessThan(0.04);
    }
    // Plain FNV-1a's lowest bit is the parity of the characters' lowest bits:
    // consecutive counters (same length, last digit +1) alternate owners strictly.
    const parities = ["1-x", "2-x", "3-x", "4-x", "5-x"].map((id) => plainFnv1a(id) % 2);
    expect(parities).toEqual([parities[0], 1 - parities[0]!, parities[0], 1 - parities[0]!, parities[0]]);
    const mixed = ["1-x", "2-x", "3-x", "4-x", "5-x", "6-x", "7-x", "8-x"].map((id) => callIdOwner(id, 2));
    expect(mixed.some((owner, i) => i > 0 && owner === mixed[i - 1])).toBe(true);
  });
});

const LISTEN: ListenSocket[] = [{ proto: "udp", ip: "127.0.0.1", port: 5060 }];

/** A front of tenant "p" with a pool of `size` workers, and tenant "solo" with one. */
function poolFront(size: number) {
  const dir = tenantDir();
  dir.write("p.js", REPLY_200);
  dir.write("solo.js", REPLY_200);
  const config = loadTenantsFile(
    dir.write(
      "tenants.yaml",
      `tenants:\n  - id: p\n    script: p.js\n    workers: ${size}\n    match: { domains: [p.example] }\n` +
        "  - id: solo\n    script: solo.js\n    match: { domains: [solo.example] }\n",
    ),
  );
  const workers: FakeWorker[] = [];
  const soloWorkers: FakeWorker[] = [];
  const spawned: [string, number][] = [];
  let pid = 4_000_000_000; // fake pids far above any real one
  const front = new TenantProcesses(config, {
    spawn: ({ tenantIds, index }) => {
      const id = tenantIds[0]!;
      spawned.push([id, index]);
      const w = new FakeWorker(pid++, index);
      (id === "p" ? workers : soloWorkers).push(w);
      return w as unknown as ChildProcess;
    },
    lowerPriority: () => {},
  });
  const replies: string[] = [];
  const ipc = new IpcTransport(LISTEN, { send: (item) => replies.push(item.data) });
  const server = new SipServer((host) => front.attach(host), { listen: LISTEN, tenantId: "ksr", transport: (o) => ipc.attach(o) });
  void server;
  /** The live worker at each index of p's pool (the latest started there). */
  const at = (index: number): FakeWorker => workers.filter((w) => w.index === index).at(-1)!;
  return { front, workers, spawned, replies, at, solo: () => soloWorkers.at(-1)! };
}

async function startAll(f: ReturnType<typeof poolFront>): Promise<void> {
  const start = f.front.start();
  for (const w of f.workers) w.say({ t: "ready" });
  f.solo().say({ t: "ready" });
  await start;
}

/** Answers the worker's first request of that kind once the front has asked it. */
async function answer(w: FakeWorker, kind: "counters" | "reload", reply: (id: number) => WorkerMessage): Promise<void> {
  await vi.waitFor(() => expect(w.received.some((m) => m.t === kind)).toBe(true));
  const ask = w.received.find((m) => m.t === kind) as { id: number };
  w.say(reply(ask.id));
}

async function posted(worker: FakeWorker): Promise<string[]> {
  await new Promise((r) => setImmediate(r));
  return worker.sipTexts();
}

function parse(text: string): SipMessage {
  const parsed = parseMessage(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.message;
}

/**
 * Every kind of message of one call through a proxy (§5's table): caller
 * 192.0.2.10, callee 192.0.2.20, the proxy's Via branch z9hG4bK-ours.
 */
function callMessages(callId: string): [string, SipMessage][] {
  const headers = (via: string, from: string, to: string, cseq: string) =>
    `Via: ${via}\r\nFrom: ${from}\r\nTo: ${to}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
  const caller = "<sip:alice@p.example>;tag=a1";
  const callee = "<sip:bob@p.example>";
  const callerVia = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-inv";
  const ourVia = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours";
  const req = (name: string, line: string, via: string, from: string, to: string, cseq: string): [string, SipMessage] => [
    name,
    parse(`${line}\r\n${headers(via, from, to, cseq)}`),
  ];
  const res = (name: string, status: string, to: string, cseq: string): [string, SipMessage] => [
    name,
    parse(`SIP/2.0 ${status}\r\n${headers(`${ourVia}\r\nVia: ${callerVia}`, caller, to, cseq)}`),
  ];
  return [
    req("initial INVITE", "INVITE sip:bob@p.example SIP/2.0", callerVia, caller, callee, "1 INVITE"),
    req("retransmitted INVITE", "INVITE sip:bob@p.example SIP/2.0", callerVia, caller, callee, "1 INVITE"),
    res("180 from the callee", "180 Ringing", `${callee};tag=b1`, "1 INVITE"),
    req("CANCEL", "CANCEL sip:bob@p.example SIP/2.0", callerVia, caller, callee, "1 CANCEL"),
    res("487 from the callee", "487 Request Terminated", `${callee};tag=b1`, "1 INVITE"),
    req("ACK of the non-2xx", "ACK sip:bob@p.example SIP/2.0", callerVia, caller, `${callee};tag=b1`, "1 ACK"),
    res("200 from the callee", "200 OK", `${callee};tag=b1`, "1 INVITE"),
    req("ACK of the 2xx", "ACK sip:bob@192.0.2.20 SIP/2.0", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-ack2", caller, `${callee};tag=b1`, "1 ACK"),
    req("in-dialog INFO from the caller", "INFO sip:bob@192.0.2.20 SIP/2.0", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-info", caller, `${callee};tag=b1`, "2 INFO"),
    req("BYE from the callee", "BYE sip:alice@192.0.2.10 SIP/2.0", "SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-bye", `${callee};tag=b1`, caller, "1 BYE"),
  ];
}

afterEach(() => {
  vi.useRealTimers();
});

describe("a tenant's pool of workers behind the front", () => {
  it("starts one worker per pool index, and one for a tenant without `workers`", async () => {
    const f = poolFront(3);
    await startAll(f);
    expect(f.spawned).toEqual([
      ["p", 0],
      ["p", 1],
      ["p", 2],
      ["solo", 0],
    ]);
  });

  it("posts every message of a call — requests, retransmission, CANCEL, both ACKs, in-dialog requests from either side, responses — to the worker owning its Call-ID", async () => {
    const f = poolFront(2);
    await startAll(f);
    const onZero = callIdOwnedBy(0, 2);
    const onOne = callIdOwnedBy(1, 2);
    for (const callId of [onZero, onOne]) {
      for (const [name, msg] of callMessages(callId)) f.front.route(msg, `${callId} ${name}`, rcv());
    }
    const names = callMessages("x").map(([name]) => name);
    expect(await posted(f.at(0))).toEqual(names.map((n) => `${onZero} ${n}`));
    expect(await posted(f.at(1))).toEqual(names.map((n) => `${onOne} ${n}`));
    expect(f.replies).toEqual([]);
  });

  it("posts a UA's REGISTER, its retry after the 401 and its refreshes to one worker (RFC 3261 §10.2, §8.1.3.5)", async () => {
    const f = poolFront(2);
    await startAll(f);
    for (const owner of [0, 1]) {
      const callId = callIdOwnedBy(owner, 2, "reg");
      const register = (cseq: number, extra = "") =>
        parse(
          `REGISTER sip:p.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-r${cseq}\r\nFrom: <sip:alice@p.example>;tag=r\r\n` +
            `To: <sip:alice@p.example>\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\n${extra}Contact: <sip:alice@192.0.2.10>\r\nContent-Length: 0\r\n\r\n`,
        );
      f.front.route(register(1), `${callId} first`, rcv());
      f.front.route(register(2, 'Authorization: Digest username="alice", realm="p.example", nonce="n", uri="sip:p.example", response="r"\r\n'), `${callId} retry`, rcv());
      f.front.route(register(3), `${callId} refresh`, rcv());
      expect(await posted(f.at(owner))).toEqual(expect.arrayContaining([`${callId} first`, `${callId} retry`, `${callId} refresh`]));
      expect((await posted(f.at(1 - owner))).filter((text) => text.startsWith(callId))).toEqual([]);
    }
  });

  it("a dead worker's calls are answered 503 while the other worker keeps serving, and it is restarted alone", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const f = poolFront(2);
    await startAll(f);
    const down = callIdOwnedBy(0, 2);
    const up = callIdOwnedBy(1, 2);
    f.at(0).die("SIGABRT");
    const [, invDown] = callMessages(down)[0]!;
    const [, invUp] = callMessages(up)[0]!;
    f.front.route(invDown, "to the dead worker", rcv());
    f.front.route(invUp, "to the live worker", rcv());
    expect(f.replies).toHaveLength(1);
    expect(f.replies[0]).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\n/);
    expect(await posted(f.at(1))).toEqual(["to the live worker"]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.spawned.filter(([id]) => id === "p")).toEqual([
      ["p", 0],
      ["p", 1],
      ["p", 0],
    ]);
    f.at(0).say({ t: "ready" });
    f.front.route(invDown, "after restart", rcv());
    expect(await posted(f.at(0))).toEqual(["after restart"]);
  });

  it("gathers counters from every worker, each named by its index, and reloads every worker of the pool", async () => {
    const f = poolFront(2);
    await startAll(f);
    const counting = f.front.counterLines();
    for (const w of [f.at(0), f.at(1)]) await answer(w, "counters", (id) => ({ t: "counters", id, lines: [`tenant p: mode=sync messages=${w.index + 5}`] }));
    await answer(f.solo(), "counters", (id) => ({ t: "counters", id, lines: ["tenant solo: mode=sync messages=1"] }));
    const lines = await counting;
    expect(lines.filter((l) => l.includes("messages="))).toEqual([
      "tenant p#0: mode=sync messages=5",
      "tenant p#1: mode=sync messages=6",
      "tenant solo: mode=sync messages=1",
    ]);
    expect(lines.filter((l) => l.includes(": process state="))).toHaveLength(3);
    expect(lines.find((l) => l.startsWith("tenant p#1: process"))).toMatch(/state=running/);

    const reloading = f.front.reload("p");
    for (const w of [f.at(0), f.at(1)]) {
      await answer(w, "reload", (id) => ({ t: "reloaded", id, results: { p: w.index === 1 ? { ok: false, error: "p.js:1:1: broken" } : { ok: true } } }));
    }
    expect((await reloading).get("p")).toEqual({ ok: false, error: "p.js:1:1: broken" });
  });
});
