/**
 * `ksr run --tenants` with tenants sharing worker processes (shards, the
 * default of --isolation process): several tenants answer from one
 * process; a tenant that aborts V8 costs its shard neighbours their state
 * once, then runs in a quarantine process of its own; an idle tenant's
 * isolate is disposed and rebuilt at its next message.
 */
import { readFileSync, readdirSync } from "node:fs";
import { getPriority } from "node:os";
import { describe, expect, it } from "vitest";
import { buildRequest } from "../e2e/sip-client.js";
import { tenantDir } from "../tenants/fixtures.js";
import { ask, expectOptions200, hostile } from "./harness.js";
import { cliTestbed } from "./cli-harness.js";
import { isIsolatedVmThread } from "../../host/tenants/worker-protocol.js";

const { startKsr, peer } = cliTestbed();

/** Answers with how many requests this isolate has seen (a script global: lost with the process or the isolate). */
const COUNTING = `let seen = 0;\nfunction ksr_request_route() { seen++; KSR.sl.sl_send_reply(200, "seen=" + seen); }\n`;

function occurrences(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, "g"))?.length ?? 0;
}

/** Asks until the tenant answers 200 (503 while its process restarts), bounded; the reason. */
async function answered(client: Awaited<ReturnType<typeof peer>>, port: number, domain: string, seconds = 30): Promise<string> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const r = await ask(client, port, { method: "OPTIONS", uri: `sip:ping@${domain}` }, 5000);
    if (r.status === 200) return r.reason;
    expect(r.status).toBe(503);
    if (Date.now() > deadline) throw new Error(`${domain} did not answer 200 within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("tenants in shards", () => {
  it("several tenants answer from one shard process", async () => {
    const dir = tenantDir();
    for (const id of ["a", "b", "c"]) dir.write(`${id}.js`, `function ksr_request_route() { KSR.sl.sl_send_reply(200, "${id} here"); }\n`);
    const file = dir.write(
      "tenants.yaml",
      ["a", "b", "c"].map((id) => `  - id: ${id}\n    script: ${id}.js\n    match: { domains: [${id}.example] }\n`).join("").replace(/^/, "tenants:\n"),
    );
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--shards", "1"]);
    const client = await peer();
    for (const id of ["a", "b", "c", "a"]) expect(await expectOptions200(client, ksr.udpPort, `${id}.example`)).toBe(`${id} here`);
    expect(ksr.stderr()).toMatch(/INFO \[shard-0\] shard of 3 tenants running \(pid \d+\)/);
    expect(occurrences(ksr.stderr(), /running \(pid \d+\)/)).toBe(1);
    ksr.child.kill("SIGUSR2");
    await ksr.waitFor(/INFO \[counters\] shard-0 tenants=3: process state=running pid=\d+ restarts=0 /);
    await ksr.waitFor(/INFO \[counters\] tenant c: mode=probation messages=1 /);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("a tenant that aborts V8 every time it runs costs its shard neighbour one round, then runs quarantined in a process of its own", async () => {
    const dir = tenantDir();
    dir.write("good.js", COUNTING);
    dir.write("evil.js", hostile('const a = "ab".repeat(2 ** 27).split("");'));
    const file = dir.write(
      "tenants.yaml",
      "tenants:\n  - id: good\n    script: good.js\n    match: { domains: [good.example] }\n" +
        "  - id: evil\n    script: evil.js\n    match: { domains: [evil.example] }\n    limits: { heapMb: 32, routeTimeoutMs: 300 }\n",
    );
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--shards", "1"]);
    const good = await peer();
    const evil = await peer();
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=1");
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=2");
    expect(await expectOptions200(evil, ksr.udpPort, "evil.example")).toBe("evil ok");

    // First abort: the shard dies with good in it; the running file names evil.
    await evil.send(buildRequest({ method: "INFO", uri: "sip:x@evil.example", viaPort: evil.port }), ksr.udpPort);
    await ksr.waitFor(
      /CRIT \[shard-0\] shard process ended unexpectedly \(signal SIG(ABRT|TRAP)\) after \d+ ms while running tenant evil; shard-0 \(tenants good, evil\): transactions and in-memory data lost; tenant evil quarantined into a process of its own; restarting the shard without it in 100 ms/,
      30_000,
    );
    await ksr.waitFor(/NOTICE \[evil\] tenant quarantined: it was running when shard-0 died; it now runs in a process of its own/);
    // The one round good loses: its script's state starts over.
    expect(await answered(good, ksr.udpPort, "good.example")).toBe("seen=1");

    // From now on evil aborts only its own process: good answers every time and keeps its state.
    let seen = 1;
    for (let round = 1; round <= 2; round++) {
      expect(await answered(evil, ksr.udpPort, "evil.example")).toBe("evil ok");
      const before = occurrences(ksr.stderr(), /CRIT \[evil\] tenant worker process ended unexpectedly/);
      await evil.send(buildRequest({ method: "INFO", uri: "sip:x@evil.example", viaPort: evil.port }), ksr.udpPort);
      const deadline = Date.now() + 30_000;
      while (occurrences(ksr.stderr(), /CRIT \[evil\] tenant worker process ended unexpectedly \(signal SIG(ABRT|TRAP)\)/) === before) {
        if (Date.now() > deadline) throw new Error(`evil's own process did not abort:\n${ksr.stderr()}`);
        expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe(`seen=${++seen}`);
      }
      expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe(`seen=${++seen}`);
    }
    expect(occurrences(ksr.stderr(), /shard process ended unexpectedly/)).toBe(1);
    ksr.child.kill("SIGUSR2");
    await ksr.waitFor(/INFO \[counters\] shard-0 tenants=1: process state=running pid=\d+ restarts=1 /);
    await ksr.waitFor(/INFO \[counters\] tenant evil: process state=\w+ pid=[\d-]+ restarts=2 /);
    expect(await ksr.stop()).toBe(0);
  }, 120_000);

  it("a looping tenant demoted in a shard runs on lowered isolated-vm threads; the shard's main thread keeps its priority", async () => {
    const dir = tenantDir();
    dir.write("good.js", COUNTING);
    dir.write("evil.js", hostile("while (true) {}"));
    const file = dir.write(
      "tenants.yaml",
      "tenants:\n  - id: good\n    script: good.js\n    match: { domains: [good.example] }\n" +
        "  - id: evil\n    script: evil.js\n    match: { domains: [evil.example] }\n    limits: { routeTimeoutMs: 50 }\n",
    );
    // Without load shedding: until the looping tenant is demoted its routes hold
    // the shard's main thread, and on a loaded machine the queueing delay this
    // causes would have the shard answer the good tenant 503 (not what this tests).
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--shards", "1", "--no-overload-shedding"]);
    const good = await peer();
    const evil = await peer();
    for (let i = 0; i < 3; i++) await evil.send(buildRequest({ method: "INFO", uri: "sip:x@evil.example", viaPort: evil.port }), ksr.udpPort);
    await ksr.waitFor(/NOTICE \[evil\] tenant evil demoted \(route timed out\): its routes run on isolated-vm's threads at nice 10/);
    const shardPid = Number(/shard of 2 tenants running \(pid (\d+)\)/.exec(ksr.stderr())![1]);
    // The test cannot know which threads existed when the shard started, so it
    // counts every thread as started later (on Node 22 that includes V8's own).
    const name = (tid: number): string => readFileSync(`/proc/${shardPid}/task/${tid}/comm`, "latin1").trim();
    const loweredThreads = (): number[] =>
      readdirSync(`/proc/${shardPid}/task`)
        .map(Number)
        .filter((tid) => tid !== shardPid && isIsolatedVmThread({ name: name(tid), existedAtStart: false }, name(shardPid)) && getPriority(tid) === 10);
    const deadline = Date.now() + 10_000;
    while (loweredThreads().length === 0) {
      if (Date.now() > deadline) throw new Error("no isolated-vm thread of the shard was lowered");
      await evil.send(buildRequest({ method: "INFO", uri: "sip:x@evil.example", viaPort: evil.port }), ksr.udpPort);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(getPriority(shardPid)).toBe(getPriority(ksr.child.pid!));
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=1");
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("a tenant that runs out of memory in a shard is moved into a process of its own; its neighbour keeps its state", async () => {
    const dir = tenantDir();
    dir.write("good.js", COUNTING);
    dir.write("evil.js", hostile("const hoard = []; for (;;) hoard.push(new Array(1 << 20).fill(hoard.length));"));
    const file = dir.write(
      "tenants.yaml",
      "tenants:\n  - id: good\n    script: good.js\n    match: { domains: [good.example] }\n" +
        "  - id: evil\n    script: evil.js\n    match: { domains: [evil.example] }\n    limits: { heapMb: 32, routeTimeoutMs: 2000 }\n",
    );
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--shards", "1"]);
    const good = await peer();
    const evil = await peer();
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=1");
    expect((await ask(evil, ksr.udpPort, { method: "INFO", uri: "sip:x@evil.example" }, 10_000)).status).toBe(500);
    await ksr.waitFor(/NOTICE \[evil\] tenant moved into a process of its own: shard-0 asked to move it out \(route ran out of memory\)/);
    await ksr.waitFor(/INFO \[evil\] tenant worker running \(pid \d+\)/);
    // Its new process runs the script; the shard and its other tenant carry on untouched.
    expect(await answered(evil, ksr.udpPort, "evil.example")).toBe("evil ok");
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=2");
    expect(ksr.stderr()).not.toMatch(/process ended unexpectedly/);
    ksr.child.kill("SIGUSR2");
    await ksr.waitFor(/INFO \[counters\] shard-0 tenants=1: process state=running pid=\d+ restarts=0 /);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("a tenant of mode: async is moved out of its shard at its first out-of-memory, not rebuilt there; its neighbour keeps its state", async () => {
    const dir = tenantDir();
    dir.write("good.js", COUNTING);
    dir.write("evil.js", hostile("const hoard = []; for (;;) hoard.push(new Array(1 << 20).fill(hoard.length));"));
    const file = dir.write(
      "tenants.yaml",
      "tenants:\n  - id: good\n    script: good.js\n    match: { domains: [good.example] }\n" +
        "  - id: evil\n    script: evil.js\n    mode: async\n    match: { domains: [evil.example] }\n    limits: { heapMb: 32, routeTimeoutMs: 2000 }\n",
    );
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--shards", "1"]);
    const good = await peer();
    const evil = await peer();
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=1");
    expect((await ask(evil, ksr.udpPort, { method: "INFO", uri: "sip:x@evil.example" }, 10_000)).status).toBe(500);
    await ksr.waitFor(/NOTICE \[evil\] tenant moved into a process of its own: shard-0 asked to move it out \(route ran out of memory\)/);
    await ksr.waitFor(/INFO \[evil\] tenant worker running \(pid \d+\)/);
    expect(await answered(evil, ksr.udpPort, "evil.example")).toBe("evil ok");
    // A second out-of-memory happens in its own process: the shard never rebuilt its isolate.
    expect((await ask(evil, ksr.udpPort, { method: "INFO", uri: "sip:x@evil.example" }, 10_000)).status).toBe(500);
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=2");
    expect(occurrences(ksr.stderr(), /tenant moved into a process of its own/)).toBe(1);
    expect(ksr.stderr()).not.toMatch(/process ended unexpectedly/);
    ksr.child.kill("SIGUSR2");
    // Its one out-of-memory since the move is counted in its own process.
    await ksr.waitFor(/INFO \[counters\] tenant evil: mode=async messages=2 route-errors=1 timeouts=0 oom-restarts=1 /);
    await ksr.waitFor(/INFO \[counters\] tenant good: mode=probation messages=2 route-errors=0 timeouts=0 oom-restarts=0 /);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("a tenant's first route calls in a shard run off the main thread (probation); after 100 it runs on the main thread", async () => {
    const dir = tenantDir();
    dir.write("good.js", COUNTING);
    const file = dir.write("tenants.yaml", "tenants:\n  - id: good\n    script: good.js\n    match: { domains: [good.example] }\n");
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--shards", "1"]);
    const good = await peer();
    for (let i = 1; i <= 99; i++) expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe(`seen=${i}`);
    ksr.child.kill("SIGUSR2");
    await ksr.waitFor(/INFO \[counters\] tenant good: mode=probation messages=99 /);
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=100");
    await ksr.waitFor(/tenant good: passed its probation \(100 route calls\); its routes now run synchronously/);
    // The same isolate: its state carries over.
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("seen=101");
    ksr.child.kill("SIGUSR2");
    await ksr.waitFor(/INFO \[counters\] tenant good: mode=sync messages=101 .*demotions=0 /);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("disposes an idle tenant's isolate and rebuilds it at its next message", async () => {
    const dir = tenantDir();
    dir.write("idle.js", COUNTING);
    const file = dir.write("tenants.yaml", "tenants:\n  - id: idle\n    script: idle.js\n    match: { domains: [idle.example] }\n");
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--shards", "1", "--idle-dispose-s", "1"]);
    const client = await peer();
    expect(await expectOptions200(client, ksr.udpPort, "idle.example")).toBe("seen=1");
    expect(await expectOptions200(client, ksr.udpPort, "idle.example")).toBe("seen=2");
    const deadline = Date.now() + 20_000;
    while (!/tenant idle: mode=probation messages=2 .*idle-disposals=1 /.test(ksr.stderr())) {
      if (Date.now() > deadline) throw new Error(`the isolate was not disposed:\n${ksr.stderr()}`);
      ksr.child.kill("SIGUSR2");
      await new Promise((r) => setTimeout(r, 300));
    }
    // Rebuilt from the script: its globals start over.
    expect(await expectOptions200(client, ksr.udpPort, "idle.example")).toBe("seen=1");
    expect(await ksr.stop()).toBe(0);
  }, 60_000);
});
