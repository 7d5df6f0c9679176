/**
 * `ksr run --tenants` as users run it: the CLI bundle in a supervised child
 * process, reloading on SIGHUP (forwarded by the supervisor) and with
 * --watch, logging counters on SIGUSR2.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { UdpPeer } from "../e2e/sip-client.js";
import { ROOT } from "../tooling/cli.js";
import { ask } from "./harness.js";
import { answerScript, cliTestbed, twoTenants } from "./cli-harness.js";

const { cli: cliPath, startKsr, peer } = cliTestbed();
const answer = answerScript;
const setup = twoTenants;

/** Asks until the answer's reason is `want` (a reload takes effect asynchronously); bounded. */
async function untilReason(p: UdpPeer, port: number, domain: string, want: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    last = (await ask(p, port, { method: "OPTIONS", uri: `sip:x@${domain}` })).reason;
    if (last === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${domain} still answers "${last}", not "${want}"`);
}

describe("ksr run --tenants", { timeout: 30_000 }, () => {
  it("refuses a script together with --tenants, --watch or --isolation without it, --heap-mb with it, an unknown isolation", () => {
    const { file } = setup();
    const both = spawnSync(process.execPath, [cliPath(), "run", path.join(ROOT, "examples/basic-proxy.js"), "--tenants", file], { encoding: "utf8", timeout: 20_000 });
    expect(both.status).toBe(2);
    expect(both.stderr).toContain("either a script or --tenants");
    const watch = spawnSync(process.execPath, [cliPath(), "run", path.join(ROOT, "examples/basic-proxy.js"), "--watch"], { encoding: "utf8", timeout: 20_000 });
    expect(watch.status).toBe(2);
    expect(watch.stderr).toContain("--watch");
    const heap = spawnSync(process.execPath, [cliPath(), "run", "--tenants", file, "--heap-mb", "32"], { encoding: "utf8", timeout: 20_000 });
    expect(heap.status).toBe(2);
    expect(heap.stderr).toContain("per tenant");
    const isolation = spawnSync(process.execPath, [cliPath(), "run", path.join(ROOT, "examples/basic-proxy.js"), "--isolation", "process"], { encoding: "utf8", timeout: 20_000 });
    expect(isolation.status).toBe(2);
    expect(isolation.stderr).toContain("--isolation separates the tenants of a tenants file");
    const mode = spawnSync(process.execPath, [cliPath(), "run", "--tenants", file, "--isolation", "threads"], { encoding: "utf8", timeout: 20_000 });
    expect(mode.status).not.toBe(0);
    expect(mode.stderr).toContain('"threads" is not one of process, process-per-tenant, in-process');
  });

  it("refuses --workers with --tenants, more than 64 workers, and a pool of workers without shared registrations or in one process", () => {
    const { dir, file } = setup();
    const script = path.join(ROOT, "examples/basic-proxy.js");
    const run = (args: string[]) => spawnSync(process.execPath, [cliPath(), "run", ...args, "--listen", "udp:127.0.0.1:0"], { encoding: "utf8", timeout: 20_000 });
    const withTenants = run(["--tenants", file, "--workers", "2"]);
    expect(withTenants.status).toBe(2);
    expect(withTenants.stderr).toContain("`workers: N` in the tenants file");
    const tooMany = run([script, "--workers", "65"]);
    expect(tooMany.status).not.toBe(0);
    expect(tooMany.stderr).toContain("more than 64 workers");
    const memory = run([script, "--workers", "2", "--location", "memory"]);
    expect(memory.status).toBe(2);
    expect(memory.stderr).toContain("--workers 2: --location memory keeps registrations in each process's memory");
    const pooled = dir.write("pooled.yaml", `tenants:\n  - id: a\n    script: a.js\n    workers: 2\n    match: { domains: [a.example] }\n`);
    const pooledMemory = run(["--tenants", pooled, "--db", ":memory:", "--no-supervise"]);
    expect(pooledMemory.status).toBe(2);
    expect(pooledMemory.stderr).toMatch(/pooled\.yaml: tenant "a", field workers: 2 workers need shared registrations: --db :memory:/);
    const inProcess = run(["--tenants", pooled, "--isolation", "in-process", "--no-supervise"]);
    expect(inProcess.status).toBe(2);
    expect(inProcess.stderr).toMatch(/tenant "a", field workers: 2 worker processes need --isolation process/);
  });

  it("exits 1 naming file, tenant and field for an invalid tenants file", () => {
    const { dir } = setup();
    const bad = dir.write("bad.yaml", `tenants:\n  - id: a\n    script: a.js\n    limits: { heapMb: 2 }\n`);
    const r = spawnSync(process.execPath, [cliPath(), "run", "--tenants", bad, "--listen", "udp:127.0.0.1:0"], { encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml: tenant "a", field limits\.heapMb: /);
  });

});

describe.each(["process", "in-process"])("ksr run --tenants --isolation %s", (isolation) => {
  it("reloads every tenant on SIGHUP through the supervisor, keeps the old script when the new one is broken, logs counters on SIGUSR2", async () => {
    const { dir, file } = setup();
    const ksr = await startKsr(["--tenants", file, "--isolation", isolation]);
    const client = await peer();
    expect((await ask(client, ksr.udpPort, { uri: "sip:x@a.example" })).reason).toBe("a v1");
    expect((await ask(client, ksr.udpPort, { uri: "sip:x@c.example" })).status).toBe(404);

    dir.write("a.js", answer("a v2"));
    ksr.child.kill("SIGHUP");
    await ksr.waitFor(/SIGHUP: 2 tenant\(s\) reloaded/);
    expect((await ask(client, ksr.udpPort, { uri: "sip:x@a.example" })).reason).toBe("a v2");

    dir.write("b.js", 'function ksr_request_route() {\n  KSR.sl.sl_send_reply(200, "b v2")\n  ++;\n}\n');
    ksr.child.kill("SIGHUP");
    await ksr.waitFor(/ERR \[ksr\] SIGHUP: reload failed for b; their previous scripts keep running/);
    expect(ksr.stderr()).toMatch(/ERR \[tenants\] tenant b: reload failed, the previous script keeps running: .*b\.js:3:\d+/);
    expect((await ask(client, ksr.udpPort, { uri: "sip:x@b.example" })).reason).toBe("b v1");

    ksr.child.kill("SIGUSR2");
    // In a shard (--isolation process) a new tenant runs on probation, off the main thread, for its first routes.
    const mode = isolation === "process" ? "probation" : "sync";
    await ksr.waitFor(new RegExp(`INFO \\[counters\\] tenant b: mode=${mode} messages=1 .*reloads=1 reload-failures=1 .*2xx=1 `));
    await ksr.waitFor(/INFO \[counters\] no tenant: requests answered 404=1/);
    // Still the same server process: the supervisor forwarded the signals instead of dying or restarting.
    expect(ksr.stderr()).not.toMatch(/restarting/);
    ksr.child.kill("SIGTERM");
    await new Promise((r) => ksr.child.once("exit", r));
    expect(ksr.child.exitCode).toBe(0);
  }, 40_000);

  it("--watch reloads the tenant whose script file changed", async () => {
    const { dir, file } = setup();
    const ksr = await startKsr(["--tenants", file, "--isolation", isolation, "--watch"]);
    const client = await peer();
    expect((await ask(client, ksr.udpPort, { uri: "sip:x@b.example" })).reason).toBe("b v1");
    writeFileSync(path.join(dir.dir, "b.js"), answer("b v2"));
    await untilReason(client, ksr.udpPort, "b.example", "b v2");
    await ksr.waitFor(/INFO \[tenants\] tenant b: reloaded .*b\.js/);
    expect((await ask(client, ksr.udpPort, { uri: "sip:x@a.example" })).reason).toBe("a v1");
    expect(ksr.stderr()).not.toMatch(/tenant a: reloaded/);
  }, 40_000);
});
