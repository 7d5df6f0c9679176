/**
 * The front of tenant worker processes (host/tenants/processes.ts) against
 * fake worker processes: which worker a message goes to, holding messages
 * while a worker starts, the queue limit, restarts, and control requests.
 */
import type { ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ListenSocket } from "../../host/core/context.js";
import { SipServer } from "../../host/core/server.js";
import { parseMessage } from "../../host/sip/parser.js";
import type { SipMessage } from "../../host/sip/message.js";
import { loadTenantsFile } from "../../host/tenants/config.js";
import { TenantProcesses } from "../../host/tenants/processes.js";
import { IpcTransport, onlyTenants } from "../../host/tenants/worker.js";
import type { SendItem } from "../../host/tenants/worker-protocol.js";
import { FakeWorker, REPLY_200, rcv, request, tenantDir } from "./fixtures.js";
import { SHED_TAG_PREFIX, type OverloadOptions } from "../../host/core/overload.js";

const LISTEN: ListenSocket[] = [{ proto: "udp", ip: "127.0.0.1", port: 5060 }];

interface Front {
  readonly front: TenantProcesses;
  /** Workers started so far, per tenant, in order. */
  readonly workers: Map<string, FakeWorker[]>;
  /** The texts the front's server sent: its own replies (404, 503) and what workers asked it to send. */
  readonly replies: string[];
  /** The same, with where each went. */
  readonly sends: SendItem[];
  /** Pids of workers started at a lower priority. */
  readonly lowered: number[];
  latest(id: string): FakeWorker;
}

function makeFront(maxQueue?: number, overload?: OverloadOptions): Front {
  const dir = tenantDir();
  dir.write("a.js", REPLY_200);
  dir.write("b.js", REPLY_200);
  const config = loadTenantsFile(
    dir.write(
      "tenants.yaml",
      "unmatched: 404\ntenants:\n  - id: a\n    script: a.js\n    match: { domains: [a.example] }\n  - id: b\n    script: b.js\n    match: { domains: [b.example] }\n",
    ),
  );
  const workers = new Map<string, FakeWorker[]>();
  const lowered: number[] = [];
  // Fake pids far above any real one: nothing here may touch a real process.
  let pid = 4_000_000_000;
  const front = new TenantProcesses(config, {
    spawn: ({ label: id }) => {
      const w = new FakeWorker(pid++);
      workers.set(id, [...(workers.get(id) ?? []), w]);
      return w as unknown as ChildProcess;
    },
    ...(maxQueue !== undefined ? { maxQueue } : {}),
    lowerPriority: (p) => lowered.push(p),
    ...(overload !== undefined ? { overload } : {}),
  });
  const replies: string[] = [];
  const sends: SendItem[] = [];
  const ipc = new IpcTransport(LISTEN, {
    send: (item) => {
      replies.push(item.data);
      sends.push(item);
    },
  });
  new SipServer((host) => front.attach(host), { listen: LISTEN, tenantId: "ksr", transport: (o) => ipc.attach(o) });
  return { front, workers, replies, sends, lowered, latest: (id) => workers.get(id)!.at(-1)! };
}

function deliver(f: Front, msg: SipMessage, text = "raw"): void {
  f.front.route(msg, text, rcv());
}

function response(via: string, to = "<sip:bob@c.example>;tag=x"): SipMessage {
  const text = `SIP/2.0 200 OK\r\nVia: ${via}\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-up\r\nFrom: <sip:alice@example.org>;tag=a1\r\nTo: ${to}\r\nCall-ID: r@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
  const parsed = parseMessage(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.message;
}

async function started(f: Front): Promise<void> {
  const start = f.front.start();
  for (const id of ["a", "b"]) f.latest(id).say({ t: "ready" });
  await start;
}

afterEach(() => {
  vi.useRealTimers();
});

/** What the worker got once the front's batch of this turn went out (SIP messages cross once per event-loop turn). */
async function posted(worker: FakeWorker): Promise<string[]> {
  await new Promise((r) => setImmediate(r));
  return worker.sipTexts();
}

describe("TenantProcesses", () => {
  it("hands each request to the worker of the tenant its rules select, and answers the unmatched status itself", async () => {
    const f = makeFront();
    await started(f);
    deliver(f, request({ ruri: "sip:x@a.example" }), "to a");
    deliver(f, request({ ruri: "sip:x@b.example" }), "to b");
    deliver(f, request({ ruri: "sip:x@c.example" }), "to nobody");
    expect(await posted(f.latest("a"))).toEqual(["to a"]);
    expect(await posted(f.latest("b"))).toEqual(["to b"]);
    expect(f.replies).toHaveLength(1);
    expect(f.replies[0]).toMatch(/^SIP\/2\.0 404 Not Found\r\n/);
    expect(f.front.unmatchedRequests).toBe(1);
  });

  it("hands a response to the tenant named on our Via, else to the tenant of its To host; drops it when neither exists", async () => {
    const f = makeFront();
    await started(f);
    deliver(f, response("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;ksr-tenant=b", "<sip:x@a.example>"), "named b");
    deliver(f, response("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2", "<sip:x@a.example>"), "to host a");
    deliver(f, response("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK3;ksr-tenant=zz"), "nobody");
    expect(await posted(f.latest("b"))).toEqual(["named b"]);
    expect(await posted(f.latest("a"))).toEqual(["to host a"]);
    expect(f.front.unclaimedResponses).toBe(1);
  });

  it("holds messages while a worker starts and posts them, in order, once it is ready", async () => {
    const f = makeFront();
    const start = f.front.start();
    deliver(f, request({ ruri: "sip:x@a.example" }), "first");
    deliver(f, request({ ruri: "sip:x@a.example" }), "second");
    expect(await posted(f.latest("a"))).toEqual([]);
    f.latest("a").say({ t: "ready" });
    f.latest("b").say({ t: "ready" });
    await start;
    expect(await posted(f.latest("a"))).toEqual(["first", "second"]);
    // In one IPC message: a batch per turn of the event loop.
    expect(f.latest("a").received.filter((m) => m.t === "sip")).toHaveLength(1);
    expect(f.replies).toEqual([]);
  });

  it("answers 503 with Retry-After and drops ACKs while a worker has maxQueue messages not yet handled", async () => {
    const f = makeFront(2);
    await started(f);
    const a = f.latest("a");
    deliver(f, request({ ruri: "sip:x@a.example" }), "1");
    deliver(f, request({ ruri: "sip:x@a.example" }), "2");
    deliver(f, request({ ruri: "sip:x@a.example" }), "3");
    deliver(f, request({ ruri: "sip:x@a.example", method: "ACK" }), "ack");
    expect(await posted(a)).toEqual(["1", "2"]);
    expect(f.replies).toHaveLength(1);
    expect(f.replies[0]).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\n/);
    expect(f.replies[0]).toMatch(/\r\nRetry-After: \d+\r\n/);
    // b is not held up by a's queue.
    deliver(f, request({ ruri: "sip:x@b.example" }), "b1");
    expect(await posted(f.latest("b"))).toEqual(["b1"]);
    // The worker reports two handled: the queue has room again.
    a.say({ t: "out", sends: [], handled: 2 });
    deliver(f, request({ ruri: "sip:x@a.example" }), "4");
    expect(await posted(a)).toEqual(["1", "2", "4"]);
  });

  it("restarts a worker that dies, alone, answering its requests 503 until the new one is ready", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const f = makeFront();
    await started(f);
    const first = f.latest("a");
    first.die("SIGABRT");
    deliver(f, request({ ruri: "sip:x@a.example" }), "while down");
    expect(f.replies[0]).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\n/);
    deliver(f, request({ ruri: "sip:x@b.example" }), "b meanwhile");
    expect(await posted(f.latest("b"))).toEqual(["b meanwhile"]);
    expect(f.workers.get("a")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.workers.get("a")).toHaveLength(2);
    expect(f.workers.get("b")).toHaveLength(1);
    // It died right after starting: the new worker yields the CPU to the others.
    expect(f.lowered).toEqual([f.latest("a").pid]);
    // Held while the new worker starts, posted once it is ready.
    deliver(f, request({ ruri: "sip:x@a.example" }), "after restart");
    f.latest("a").say({ t: "ready" });
    expect(await posted(f.latest("a"))).toEqual(["after restart"]);
  });

  it("rejects start() naming the tenant whose worker ends before it is ready, and stops the others", async () => {
    const f = makeFront();
    const start = f.front.start();
    f.latest("a").say({ t: "ready" });
    f.latest("b").die(null, 1);
    await expect(start).rejects.toThrow("tenant b: worker process ended before it was ready (exit code 1)");
    expect(f.latest("a").signalCode).toBe("SIGTERM");
  });

  it("reloads through the worker and reports a tenant that does not exist or has no worker", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const f = makeFront();
    await started(f);
    const a = f.latest("a");
    const pending = f.front.reload("a");
    const asked = a.received.find((m) => m.t === "reload")!;
    a.say({ t: "reloaded", id: (asked as { id: number }).id, results: { a: { ok: false, error: "a.js:3:5: Unexpected" } } });
    expect([...(await pending)]).toEqual([["a", { ok: false, error: "a.js:3:5: Unexpected" }]]);
    expect([...(await f.front.reload("nope"))]).toEqual([["nope", { ok: false, error: 'no tenant "nope"' }]]);
    f.latest("b").die("SIGKILL");
    const b = await f.front.reload("b");
    expect(b.get("b")).toEqual({ ok: false, error: "tenant b: worker is restarting, not answering" });
  });

  it("sends what a worker asks from the front's sockets", async () => {
    const f = makeFront();
    await started(f);
    f.latest("b").say({ t: "out", sends: [{ proto: "udp", ip: "192.0.2.1", port: 5070, data: "bytes", from: LISTEN[0] }], handled: 0 });
    expect(f.sends).toEqual([{ proto: "udp", ip: "192.0.2.1", port: 5070, data: "bytes", from: LISTEN[0] }]);
  });

  it("counts restarts and refusals per tenant in its counter lines", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const f = makeFront(1);
    await started(f);
    deliver(f, request({ ruri: "sip:x@a.example" }), "1");
    deliver(f, request({ ruri: "sip:x@a.example" }), "2 refused");
    f.latest("b").die("SIGABRT");
    const counting = f.front.counterLines();
    // The fake workers never answer the counters request: the front gives up after its timeout.
    await vi.advanceTimersByTimeAsync(6000);
    const lines = await counting;
    expect(lines.find((l) => l.startsWith("tenant a: process"))).toMatch(/state=running pid=\d+ restarts=0 queued=1 refused-no-worker=0 refused-queue-full=1 dropped=0/);
    expect(lines).toContain("tenant a: worker not answering (running)");
    expect(lines.find((l) => l.startsWith("tenant b: process"))).toMatch(/restarts=1 .*last-exit=signal-SIGABRT/);
    expect(lines.at(-1)).toBe("no tenant: requests answered 404=0 responses dropped=0");
  });

  it("sheds a tenant's new requests while its worker lags, and passes on retransmissions, in-dialog requests and responses", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    vi.setSystemTime(1_000_000);
    const f = makeFront(undefined, { thresholdMs: 100, sustainMs: 0 });
    await started(f);
    const a = f.latest("a");
    const invite = (branch: string, to?: string) => request({ ruri: "sip:x@a.example", method: "INVITE", branch, ...(to !== undefined ? { to } : {}) });
    deliver(f, invite("z9hG4bK-first"), "first");
    expect(await posted(a)).toEqual(["first"]);
    // The worker has not handled it 150 ms later: a's queueing delay is over the threshold.
    vi.setSystemTime(1_000_150);
    deliver(f, invite("z9hG4bK-second"), "second");
    expect(f.replies).toHaveLength(1);
    expect(f.replies[0]).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\n/);
    expect(f.replies[0]).toMatch(/\r\nRetry-After: 1\r\n/);
    expect(f.replies[0]).toContain(`;tag=${SHED_TAG_PREFIX}`);
    // The first INVITE's retransmission goes to the worker's transaction; so do in-dialog requests and responses.
    deliver(f, invite("z9hG4bK-first"), "first again");
    deliver(f, request({ ruri: "sip:x@a.example", method: "BYE", to: "<sip:x@a.example>;tag=b1", branch: "z9hG4bK-bye" }), "bye");
    deliver(f, response("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK9;ksr-tenant=a"), "response");
    expect(await posted(a)).toEqual(["first", "first again", "bye", "response"]);
    // Tenant b's worker keeps up: its new calls go through.
    deliver(f, request({ ruri: "sip:x@b.example", method: "INVITE", branch: "z9hG4bK-b" }), "b call");
    expect(await posted(f.latest("b"))).toEqual(["b call"]);
    // The worker catches up: a's new calls go through again.
    vi.setSystemTime(1_000_160);
    a.say({ t: "out", sends: [], handled: 4 });
    deliver(f, invite("z9hG4bK-third"), "third");
    expect(await posted(a)).toEqual(["first", "first again", "bye", "response", "third"]);
    expect(f.replies).toHaveLength(1);
    const counting = f.front.counterLines();
    await vi.advanceTimersByTimeAsync(12_000); // the fake workers do not answer the counters request
    expect((await counting).find((l) => l.startsWith("tenant a: process"))).toMatch(
      / shedding=no overload-episodes=1 shed=INVITE:1 absorbed-retransmissions=0 absorbed-acks-of-503=0 shed-unanswered=0$/,
    );
  });
});

describe("TenantProcesses with shards", () => {
  it("quarantines the tenant the dead shard's running file names into a process of its own and restarts the shard without it", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const dir = tenantDir();
    for (const id of ["a", "b", "c"]) dir.write(`${id}.js`, REPLY_200);
    const config = loadTenantsFile(
      dir.write("tenants.yaml", `tenants:\n${["a", "b", "c"].map((id) => `  - id: ${id}\n    script: ${id}.js\n    match: { domains: [${id}.example] }\n`).join("")}`),
    );
    const spawned: { label: string; tenantIds: readonly string[]; worker: FakeWorker }[] = [];
    let pid = 4_000_000_000; // fake pids far above any real one
    const front = new TenantProcesses(config, {
      plan: [{ label: "shard-0", tenantIds: ["a", "b", "c"], kind: "shard", index: 0, poolSize: 1 }],
      runningDir: dir.dir,
      spawn: (w) => {
        const worker = new FakeWorker(pid++);
        spawned.push({ label: w.label, tenantIds: w.tenantIds, worker });
        return worker as unknown as ChildProcess;
      },
      lowerPriority: () => {},
    });
    const ipc = new IpcTransport(LISTEN, { send: () => {} });
    new SipServer((host) => front.attach(host), { listen: LISTEN, tenantId: "ksr", transport: (o) => ipc.attach(o) });
    const start = front.start();
    const runningFile = `${dir.dir}/ksr-running-${process.pid}-shard-0`;
    // Nothing has run yet: the file names no one. The worker opens it before it is ready.
    expect(readFileSync(runningFile).readInt32LE(0)).toBe(-1);
    const shardFd = openSync(runningFile, "r+");
    spawned[0]!.worker.say({ t: "ready" });
    await start;
    // Its name is gone once the worker is ready: nothing is left behind, whatever ends the front.
    expect(existsSync(runningFile)).toBe(false);
    // The shard was running b (its index in the list it was started with) when it died.
    const record = Buffer.alloc(4);
    record.writeInt32LE(1, 0);
    writeSync(shardFd, record, 0, 4, 0);
    closeSync(shardFd);
    spawned[0]!.worker.die("SIGTRAP");
    await vi.advanceTimersByTimeAsync(1000);
    expect(spawned.slice(1).map((s) => [s.label, [...s.tenantIds]]).sort()).toEqual([
      ["b", ["b"]],
      ["shard-0", ["a", "c"]],
    ]);
    for (const s of spawned.slice(1)) s.worker.say({ t: "ready" });
    expect(existsSync(runningFile)).toBe(false);
    front.route(request({ ruri: "sip:x@b.example" }), "to b", rcv());
    front.route(request({ ruri: "sip:x@c.example" }), "to c", rcv());
    await new Promise((r) => setImmediate(r));
    const workerOf = (label: string) => spawned.filter((s) => s.label === label).at(-1)!.worker;
    expect(workerOf("b").sipTexts()).toEqual(["to b"]);
    expect(workerOf("shard-0").sipTexts()).toEqual(["to c"]);
    // A second death with nothing recorded restarts the shard with the tenants it has.
    workerOf("shard-0").die("SIGKILL");
    await vi.advanceTimersByTimeAsync(1000);
    expect([...spawned.at(-1)!.tenantIds]).toEqual(["a", "c"]);
    spawned.at(-1)!.worker.say({ t: "ready" });
    // The fake workers do not answer status requests: their modes stay unknown.
    const asking = front.statuses();
    await vi.advanceTimersByTimeAsync(6000);
    const statuses = await asking;
    expect(statuses.map((x) => [x.id, x.shard ?? "own"])).toEqual([
      ["a", "shard-0"],
      ["b", "own"],
      ["c", "shard-0"],
    ]);
    await front.stop();
    expect(existsSync(runningFile)).toBe(false);
  });
});

describe("TenantProcesses: a tenant a shard moves out", () => {
  it("starts a process of its own at the shard's evict, and passes on the messages the shard hands back to it", async () => {
    const dir = tenantDir();
    for (const id of ["a", "b"]) dir.write(`${id}.js`, REPLY_200);
    const config = loadTenantsFile(
      dir.write("tenants.yaml", `tenants:\n${["a", "b"].map((id) => `  - id: ${id}\n    script: ${id}.js\n    match: { domains: [${id}.example] }\n`).join("")}`),
    );
    const spawned: { label: string; tenantIds: readonly string[]; worker: FakeWorker }[] = [];
    let pid = 4_000_000_000; // fake pids far above any real one
    const lowered: number[] = [];
    const front = new TenantProcesses(config, {
      plan: [{ label: "shard-0", tenantIds: ["a", "b"], kind: "shard", index: 0, poolSize: 1 }],
      spawn: (w) => {
        const worker = new FakeWorker(pid++);
        spawned.push({ label: w.label, tenantIds: w.tenantIds, worker });
        return worker as unknown as ChildProcess;
      },
      lowerPriority: (p) => lowered.push(p),
    });
    const ipc = new IpcTransport(LISTEN, { send: () => {} });
    new SipServer((host) => front.attach(host), { listen: LISTEN, tenantId: "ksr", transport: (o) => ipc.attach(o) });
    const start = front.start();
    const shard = spawned[0]!.worker;
    shard.say({ t: "ready" });
    await start;
    front.route(request({ ruri: "sip:x@a.example" }), "a1", rcv());
    front.route(request({ ruri: "sip:x@b.example" }), "b1", rcv());
    await new Promise((r) => setImmediate(r));
    // A shard's messages name their tenant, for it to hand back those of a tenant it moved out.
    const items = shard.received.flatMap((m) => (m.t === "sip" ? m.items : []));
    expect(items.map((i) => [i.data, i.tenant])).toEqual([
      ["a1", "a"],
      ["b1", "b"],
    ]);
    shard.say({ t: "evict", tenant: "a", reason: "route ran out of memory" });
    expect(spawned.map((s) => [s.label, [...s.tenantIds]])).toEqual([
      ["shard-0", ["a", "b"]],
      ["a", ["a"]],
    ]);
    const own = spawned[1]!.worker;
    // It misbehaved: its process starts at the lowered priority.
    expect(lowered).toEqual([own.pid]);
    // The shard hands back a's message it received after moving a out; held while a's process starts.
    shard.say({ t: "return", items: [items[0]!] });
    front.route(request({ ruri: "sip:x@a.example" }), "a2", rcv());
    front.route(request({ ruri: "sip:x@b.example" }), "b2", rcv());
    await new Promise((r) => setImmediate(r));
    expect(own.sipTexts()).toEqual([]);
    own.say({ t: "ready" });
    await new Promise((r) => setImmediate(r));
    expect(own.sipTexts()).toEqual(["a1", "a2"]);
    // Messages to a process of its own carry no tenant name.
    expect(own.received.flatMap((m) => (m.t === "sip" ? m.items.map((i) => i.tenant) : []))).toEqual([undefined, undefined]);
    expect(shard.sipTexts()).toEqual(["a1", "b1", "b2"]);
    // The shard's last tenant is never moved out.
    shard.say({ t: "evict", tenant: "b", reason: "route ran out of memory" });
    expect(spawned).toHaveLength(2);
    await front.stop();
  });
});

describe("onlyTenants", () => {
  it("keeps the tenants named, in file order, and the default only when it is one of them", () => {
    const dir = tenantDir();
    dir.write("a.js", REPLY_200);
    dir.write("b.js", REPLY_200);
    const config = loadTenantsFile(dir.write("t.yaml", "default: b\ntenants:\n  - id: a\n    script: a.js\n  - id: b\n    script: b.js\n"));
    expect(onlyTenants(config, ["a"])).toMatchObject({ tenants: [{ id: "a" }], defaultTenant: undefined });
    expect(onlyTenants(config, ["b"])).toMatchObject({ tenants: [{ id: "b" }], defaultTenant: "b" });
    expect(onlyTenants(config, ["b", "a"])).toMatchObject({ tenants: [{ id: "a" }, { id: "b" }], defaultTenant: "b" });
    expect(() => onlyTenants(config, ["a", "c"])).toThrow('no tenant "c"');
  });
});
