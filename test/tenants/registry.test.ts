/**
 * TenantRegistry: loading, allowed modules, counters, CPU budget,
 * demotion to async execution, and hot reload (good script, bad script,
 * executions and leases in flight keep their runner, file watching).
 */
import { writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { MessageContext } from "../../host/core/context.js";
import { setLogSink } from "../../host/core/log.js";
import {
  loadTenantsFile,
  TenantRegistry,
  TenantsConfigError,
  type ReloadResult,
  type Tenant,
  type TenantRegistryOptions,
  type TenantRouteOutcome,
} from "../../host/tenants/index.js";
import { makeRecordingHost, type RecordingHost } from "../helpers/context.js";
import { rcv, request, tenantDir, type TenantDir } from "./fixtures.js";
import type { ScriptRunner } from "../../sandbox/runner.js";

let registry: TenantRegistry | undefined;

beforeEach(() => setLogSink(() => {}));
afterEach(() => {
  registry?.dispose();
  registry = undefined;
  setLogSink(undefined);
});

interface Setup {
  readonly dir: TenantDir;
  readonly registry: TenantRegistry;
  readonly tenant: Tenant;
  readonly scriptPath: string;
}

/** One tenant "t" running `script`, with the given extra YAML lines for the tenant entry. */
function setup(script: string, tenantYaml = "", opts: TenantRegistryOptions = {}): Setup {
  const dir = tenantDir();
  const scriptPath = dir.write("t.js", script);
  const config = loadTenantsFile(dir.write("tenants.yaml", `tenants:\n  - id: t\n    script: t.js\n    match: { domains: ["*"] }\n${tenantYaml}`));
  registry = new TenantRegistry(config, opts);
  return { dir, registry, tenant: registry.get("t")!, scriptPath };
}

function contextFor(tenant: Tenant, host: RecordingHost = makeRecordingHost()): MessageContext {
  return new MessageContext(request(), rcv(), "request", tenant.state, host);
}

async function runOnce(reg: TenantRegistry, tenant: Tenant, host: RecordingHost = makeRecordingHost()): Promise<TenantRouteOutcome> {
  return await reg.run(tenant, "ksr_request_route", contextFor(tenant, host));
}

const replyWith = (reason: string): string => `function ksr_request_route() { KSR.sl.sl_send_reply(200, "${reason}"); }\n`;

describe("loading", () => {
  test("every tenant gets its own runner and state; select() finds the tenant", () => {
    const dir = tenantDir();
    dir.write("a.js", replyWith("a"));
    dir.write("b.js", replyWith("b"));
    const config = loadTenantsFile(
      dir.write(
        "tenants.yaml",
        `tenants:\n  - id: a\n    script: a.js\n    match: { domains: [a.example] }\n  - id: b\n    script: b.js\n    match: { domains: [b.example] }\n`,
      ),
    );
    registry = new TenantRegistry(config);
    const [a, b] = registry.tenants;
    expect(a!.runner).not.toBe(b!.runner);
    expect(a!.state).not.toBe(b!.state);
    expect(a!.state.id).toBe("a");
    expect(registry.select(request({ ruri: "sip:x@b.example" }), rcv())).toBe(b);
    expect(registry.select(request({ ruri: "sip:x@c.example", to: "<sip:x@c.example>" }), rcv())).toBeUndefined();
    expect(registry.unmatchedStatus).toBe(404);
  });

  test("a script that does not compile is reported with file, tenant and field", () => {
    const dir = tenantDir();
    dir.write("good.js", replyWith("ok"));
    dir.write("bad.js", "function ksr_request_route() {\n  let = ;\n}\n");
    const file = dir.write("tenants.yaml", `tenants:\n  - id: good\n    script: good.js\n  - id: bad\n    script: bad.js\n`);
    const config = loadTenantsFile(file);
    let error: unknown;
    try {
      new TenantRegistry(config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TenantsConfigError);
    expect((error as TenantsConfigError).issues).toEqual([
      expect.objectContaining({ file, tenant: "bad", field: "script", message: expect.stringMatching(/bad\.js:2/) }),
    ]);
  });
});

describe("allowed KSR modules", () => {
  const PROBE = `
    function ksr_request_route() {
      KSR.hdr.append_to_reply("X-Probe: " + (typeof KSR.sl) + "/" + (typeof KSR.hdr) + "/" + KSR.x.modf("sl_reply_error") + "\\r\\n");
      KSR.setflag(1); // core functions are always there
      KSR.sl.sl_send_reply(200, "OK");
    }
  `;

  test("a module not allowed is absent: calling it is a TypeError in the script, modf cannot reach it", async () => {
    const { registry: reg, tenant } = setup(PROBE, "    modules: [hdr]\n");
    const host = makeRecordingHost();
    const ctx = contextFor(tenant, host);
    const outcome = await reg.run(tenant, "ksr_request_route", ctx);
    expect(outcome).toMatchObject({ status: "error", kind: "exception", message: expect.stringMatching(/^TypeError: .*sl_send_reply/) });
    expect(ctx.replyHeaders).toEqual(["X-Probe: undefined/object/-1\r\n"]);
    expect(ctx.flags & 2).toBe(2);
    expect(host.replies).toEqual([]);
  });

  test("without a modules list every module is there", async () => {
    const { registry: reg, tenant } = setup(PROBE);
    const host = makeRecordingHost();
    const ctx = contextFor(tenant, host);
    expect(await reg.run(tenant, "ksr_request_route", ctx)).toEqual({ status: "ok" });
    // modf replied first (sl_reply_error: 500 without a recorded error); the direct call follows.
    expect(host.replies[0]).toMatchObject({ status: 500 });
    expect(ctx.replyHeaders[0]).toBe("X-Probe: object/object/1\r\n");
  });
});

describe("counters", () => {
  test("messages, replies by class, route errors and CPU", async () => {
    const { registry: reg, tenant } = setup(`
      function ksr_request_route() {
        const subject = KSR.pv.gete("$rU");
        if (subject === "fail") throw new Error("failing on purpose");
        KSR.sl.sl_send_reply(subject === "missing" ? 404 : 200, "done");
      }
    `);
    const run = (user: string) => reg.run(tenant, "ksr_request_route", new MessageContext(request({ ruri: `sip:${user}@example.com` }), rcv(), "request", tenant.state, makeRecordingHost()));
    expect(await run("ok")).toEqual({ status: "ok" });
    expect(await run("missing")).toEqual({ status: "ok" });
    expect(await run("fail")).toMatchObject({ status: "error", kind: "exception" });
    reg.recordReply(tenant, 500);
    const c = tenant.counters;
    expect([c.messages, c.routeErrors, c.timeouts, c.oomRestarts]).toEqual([3, 1, 0, 0]);
    expect(c.repliesByClass).toEqual({ "1xx": 0, "2xx": 1, "3xx": 0, "4xx": 1, "5xx": 1, "6xx": 0 });
    expect(c.cpuNs).toBeGreaterThan(0n);
  });
});

describe("demotion and CPU budget", () => {
  const LOOP = `function ksr_request_route() { for (;;) {} }\n`;

  test("a timeout demotes the tenant: later runs are asynchronous", async () => {
    const { registry: reg, tenant } = setup(LOOP, "    limits: { routeTimeoutMs: 30 }\n");
    expect(tenant.mode).toBe("sync");
    const first = reg.run(tenant, "ksr_request_route", contextFor(tenant));
    expect(first).toMatchObject({ status: "error", kind: "timeout" });
    expect(tenant.mode).toBe("async");
    const second = reg.run(tenant, "ksr_request_route", contextFor(tenant));
    expect(second).toBeInstanceOf(Promise);
    expect(await second).toMatchObject({ status: "error", kind: "timeout" });
    expect([tenant.counters.timeouts, tenant.counters.routeErrors, tenant.counters.demotions]).toEqual([2, 2, 1]);
  });

  test("with autoDemote off, a timing-out tenant stays sync", () => {
    const { registry: reg, tenant } = setup(LOOP, "    limits: { routeTimeoutMs: 20 }\n", { autoDemote: false });
    expect(reg.run(tenant, "ksr_request_route", contextFor(tenant))).toMatchObject({ kind: "timeout" });
    expect(tenant.mode).toBe("sync");
  });

  test("out of memory in async mode: counted, the isolate is re-created", async () => {
    const { registry: reg, tenant } = setup(
      `function ksr_request_route() { if (KSR.pv.gete("$rU") === "ok") { KSR.sl.sl_send_reply(200, "OK"); return; } const a = []; for (;;) a.push(new Array(100000).fill(1)); }\n`,
      "    mode: async\n    limits: { heapMb: 32, routeTimeoutMs: 5000 }\n",
    );
    expect(await runOnce(reg, tenant)).toMatchObject({ status: "error", kind: "oom" });
    const host = makeRecordingHost();
    expect(await reg.run(tenant, "ksr_request_route", new MessageContext(request({ ruri: "sip:ok@example.com" }), rcv(), "request", tenant.state, host))).toEqual({ status: "ok" });
    expect(host.replies).toEqual([{ status: 200, reason: "OK", headers: [] }]);
    expect(tenant.counters.oomRestarts).toBe(1);
    expect((tenant.runner as ScriptRunner).restarts).toBe(1);
  });

  test("over budget: refused without running, and demoted; admitted again once the bucket refilled", async () => {
    const clock = { ms: 0 };
    const { registry: reg, tenant } = setup(
      `var runs = 0;\nfunction ksr_request_route() { runs++; if (runs === 1) { const end = Date.now() + 40; while (Date.now() < end) {} } KSR.sl.sl_send_reply(200, "run " + runs); }\n`,
      "    limits: { cpuShare: 0.01, cpuBurstMs: 1000 }\n", // a 10 ms bucket
      { nowMs: () => clock.ms, autoDemote: true },
    );
    const host = makeRecordingHost();
    expect(reg.run(tenant, "ksr_request_route", contextFor(tenant, host))).toEqual({ status: "ok" });
    expect(tenant.mode).toBe("sync");
    expect(tenant.budget.tokensMs).toBeLessThan(-25);
    // Still in debt: refused, the script does not run, and the tenant leaves the main thread.
    expect(reg.run(tenant, "ksr_request_route", contextFor(tenant, host))).toEqual({ status: "over-budget" });
    expect(tenant.mode).toBe("async");
    expect(host.replies.map((r) => r.reason)).toEqual(["run 1"]);
    expect([tenant.counters.messages, tenant.counters.overBudget, tenant.counters.demotions]).toEqual([2, 1, 1]);
    // 1 % of a core pays back 40 ms of CPU in 4 s.
    clock.ms += 5000;
    expect(await reg.run(tenant, "ksr_request_route", contextFor(tenant, host))).toEqual({ status: "ok" });
    expect(host.replies.map((r) => r.reason)).toEqual(["run 1", "run 2"]);
  });
});

describe("budget clock and demotion listener", () => {
  test("budgetCpuNs charges what it reports (a worker charges its whole process), and onDemote hears the demotion", () => {
    const clock = { ms: 0 };
    const cpu = { ns: 0n };
    const demoted: string[] = [];
    const { registry: reg, tenant } = setup(
      `function ksr_request_route() { KSR.sl.sl_send_reply(200, "cheap"); }\n`,
      "    limits: { cpuShare: 0.01, cpuBurstMs: 1000 }\n", // a 10 ms bucket
      { nowMs: () => clock.ms, budgetCpuNs: () => cpu.ns, onDemote: (id, reason) => demoted.push(`${id}: ${reason}`) },
    );
    const host = makeRecordingHost();
    expect(reg.run(tenant, "ksr_request_route", contextFor(tenant, host))).toEqual({ status: "ok" });
    // The script costs next to nothing, but the process spent 50 ms of CPU (say, rebuilding an isolate).
    cpu.ns += 50_000_000n;
    expect(reg.run(tenant, "ksr_request_route", contextFor(tenant, host))).toEqual({ status: "over-budget" });
    expect(tenant.budget.tokensMs).toBeCloseTo(-40, 5);
    expect(demoted).toEqual(["t: CPU budget exceeded"]);
    // The counters keep the isolates' own CPU time.
    expect(tenant.counters.cpuNs).toBeLessThan(50_000_000n);
  });
});

describe("reload", () => {
  test("a good script replaces the old one for new messages; tenant state survives", async () => {
    const { registry: reg, tenant, scriptPath } = setup(`function ksr_request_route() { KSR.pv.sets("$var(n)", "kept"); KSR.sl.sl_send_reply(200, "v1"); }\n`);
    const host = makeRecordingHost();
    await runOnce(reg, tenant, host);
    const oldRunner = tenant.runner;
    writeFileSync(scriptPath, `function ksr_request_route() { KSR.sl.sl_send_reply(200, "v2 " + KSR.pv.get("$var(n)")); }\n`);
    expect(await reg.reload("t")).toEqual({ ok: true });
    expect(tenant.runner).not.toBe(oldRunner);
    expect(oldRunner.isDisposed).toBe(true);
    await runOnce(reg, tenant, host);
    expect(host.replies.map((r) => r.reason)).toEqual(["v1", "v2 kept"]);
    expect(tenant.counters.reloads).toBe(1);
  });

  test("a script that fails to load leaves the old one running and says why", async () => {
    const { registry: reg, tenant, scriptPath } = setup(replyWith("old"));
    const oldRunner = tenant.runner;
    for (const [broken, why] of [
      ["function ksr_request_route() {\n  if (\n}\n", /t\.js:3/],
      ["function not_a_route() {}\n", /missing ksr_request_route/],
      ["throw new Error('top level fails');\nfunction ksr_request_route() {}\n", /top level fails/],
      ["for (;;) {}\nfunction ksr_request_route() {}\n", /did not finish/],
    ] as const) {
      writeFileSync(scriptPath, broken);
      const result: ReloadResult = await reg.reload("t");
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toMatch(why);
    }
    expect(tenant.runner).toBe(oldRunner);
    expect(oldRunner.isDisposed).toBe(false);
    const host = makeRecordingHost();
    expect(await runOnce(reg, tenant, host)).toEqual({ status: "ok" });
    expect(host.replies.map((r) => r.reason)).toEqual(["old"]);
    expect(tenant.counters.reloadFailures).toBe(4);
    expect(await reg.reload("nobody")).toEqual({ ok: false, error: 'no tenant "nobody"' });
  });

  test("an execution in flight finishes on the old runner, which is disposed afterwards", async () => {
    const { registry: reg, tenant, scriptPath } = setup(
      `function ksr_request_route() { const end = Date.now() + 150; while (Date.now() < end) {} KSR.sl.sl_send_reply(200, "old"); }\n`,
      "    mode: async\n    limits: { routeTimeoutMs: 2000 }\n",
    );
    const oldRunner = tenant.runner;
    const slowHost = makeRecordingHost();
    const inFlight = reg.run(tenant, "ksr_request_route", contextFor(tenant, slowHost));
    expect(oldRunner.inFlight).toBe(1);
    writeFileSync(scriptPath, replyWith("new"));
    expect(await reg.reload("t")).toEqual({ ok: true });
    expect(oldRunner.isDisposed).toBe(false);
    const newHost = makeRecordingHost();
    expect(await runOnce(reg, tenant, newHost)).toEqual({ status: "ok" });
    expect(newHost.replies.map((r) => r.reason)).toEqual(["new"]);
    expect(await inFlight).toEqual({ status: "ok" });
    expect(slowHost.replies.map((r) => r.reason)).toEqual(["old"]);
    expect(oldRunner.isDisposed).toBe(true);
  });

  test("a lease keeps its runner across reloads until released", async () => {
    const { registry: reg, tenant, scriptPath } = setup(`function ksr_request_route() {}\nfunction ksr_reply_route() { KSR.info("reply route v1"); }\n`);
    const lease = reg.acquire(tenant);
    writeFileSync(scriptPath, `function ksr_request_route() {}\nfunction ksr_reply_route() { KSR.info("reply route v2"); }\n`);
    expect(await reg.reload("t")).toEqual({ ok: true });
    const host = makeRecordingHost();
    expect(await lease.run("ksr_reply_route", contextFor(tenant, host))).toEqual({ status: "ok" });
    await reg.run(tenant, "ksr_reply_route", contextFor(tenant, host));
    expect(host.logs.map((l) => l.text)).toEqual(["reply route v1", "reply route v2"]);
    expect(lease.runner.isDisposed).toBe(false);
    lease.release();
    lease.release();
    expect(lease.runner.isDisposed).toBe(true);
  });

  test("reloadAll reloads every tenant and reports each", async () => {
    const dir = tenantDir();
    dir.write("a.js", replyWith("a"));
    const bPath = dir.write("b.js", replyWith("b"));
    registry = new TenantRegistry(loadTenantsFile(dir.write("tenants.yaml", `tenants:\n  - id: a\n    script: a.js\n  - id: b\n    script: b.js\n`)));
    writeFileSync(bPath, "syntax error here(");
    const results = await registry.reloadAll();
    expect(results.get("a")).toEqual({ ok: true });
    expect(results.get("b")?.ok).toBe(false);
  });

  test("watch() reloads a tenant when its script file changes", async () => {
    const seen: [string, ReloadResult][] = [];
    let notify: () => void = () => {};
    const reloaded = new Promise<void>((resolve) => (notify = resolve));
    const { registry: reg, tenant, scriptPath } = setup(replyWith("before"), "", {
      watchDebounceMs: 30,
      onWatchReload: (id, result) => {
        seen.push([id, result]);
        notify();
      },
    });
    const stop = reg.watch();
    writeFileSync(scriptPath, replyWith("after"));
    const timeout = new Promise<void>((_, reject) => setTimeout(() => reject(new Error("no reload within 5 s")), 5000).unref());
    await Promise.race([reloaded, timeout]);
    stop();
    expect(seen[0]).toEqual(["t", { ok: true }]);
    const host = makeRecordingHost();
    await runOnce(reg, tenant, host);
    expect(host.replies.map((r) => r.reason)).toEqual(["after"]);
  });
});

describe("idle disposal", () => {
  const COUNTING = `let calls = 0;
function ksr_request_route() {
  calls++;
  const kept = KSR.pv.get("$shv(n)");
  const n = (typeof kept === "number" ? kept : 0) + 1;
  KSR.pv.seti("$shv(n)", n);
  KSR.sl.sl_send_reply(200, "calls=" + calls + " shv=" + n);
}
`;

  afterEach(() => vi.useRealTimers());

  test("an idle tenant's isolate is disposed and rebuilt at its next call: script globals start over, $shv stays", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
    const { registry: reg, tenant } = setup(COUNTING, "    limits: { idleSeconds: 2 }\n");
    const host = makeRecordingHost();
    await runOnce(reg, tenant, host);
    await runOnce(reg, tenant, host);
    // A call within the idle time keeps the isolate.
    vi.advanceTimersByTime(1500);
    await runOnce(reg, tenant, host);
    vi.advanceTimersByTime(1500);
    expect(tenant.counters.idleDisposals).toBe(0);
    vi.advanceTimersByTime(1500);
    expect(tenant.counters.idleDisposals).toBe(1);
    // Disposed once: further sweeps find nothing to dispose.
    vi.advanceTimersByTime(5000);
    expect(tenant.counters.idleDisposals).toBe(1);
    expect(await runOnce(reg, tenant, host)).toEqual({ status: "ok" });
    expect(host.replies.map((r) => r.reason)).toEqual(["calls=1 shv=1", "calls=2 shv=2", "calls=3 shv=3", "calls=1 shv=4"]);
    expect(tenant.runner.isDisposed).toBe(false);
  });

  test("the registry's default applies to tenants without their own idle limit; 0 never disposes", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
    const dir = tenantDir();
    dir.write("a.js", COUNTING);
    dir.write("b.js", COUNTING);
    const config = loadTenantsFile(
      dir.write("tenants.yaml", "tenants:\n  - id: a\n    script: a.js\n  - id: b\n    script: b.js\n    limits: { idleSeconds: 0 }\n"),
    );
    registry = new TenantRegistry(config, { idleSeconds: 1 });
    const [a, b] = [registry.get("a")!, registry.get("b")!];
    await runOnce(registry, a);
    await runOnce(registry, b);
    vi.advanceTimersByTime(5000);
    expect(a.counters.idleDisposals).toBe(1);
    expect(b.counters.idleDisposals).toBe(0);
  });

  test("lazyIsolates: the script is loaded (and checked) at start, its isolate built at the first call", async () => {
    const { registry: reg, tenant } = setup(COUNTING, "", { lazyIsolates: true });
    const runner = tenant.runner as ScriptRunner;
    expect(runner.isHibernating).toBe(true);
    const host = makeRecordingHost();
    expect(await runOnce(reg, tenant, host)).toEqual({ status: "ok" });
    expect(runner.isHibernating).toBe(false);
    expect(host.replies.map((r) => r.reason)).toEqual(["calls=1 shv=1"]);
    expect(tenant.counters.idleDisposals).toBe(0);
    expect(runner.restarts).toBe(0);
    // A script that does not load still stops the start.
    expect(() => setup("function ksr_request_route( {", "", { lazyIsolates: true })).toThrow(TenantsConfigError);
  });

  test("tells onTenantSwitch before a route of another tenant than the last one, not for each call", async () => {
    const dir = tenantDir();
    dir.write("a.js", replyWith("a"));
    dir.write("b.js", replyWith("b"));
    const switches: string[] = [];
    registry = new TenantRegistry(loadTenantsFile(dir.write("tenants.yaml", "tenants:\n  - id: a\n    script: a.js\n  - id: b\n    script: b.js\n")), {
      onTenantSwitch: (t) => switches.push(t.id),
    });
    const [a, b] = [registry.get("a")!, registry.get("b")!];
    for (const t of [a, a, b, b, b, a]) await runOnce(registry, t);
    expect(switches).toEqual(["a", "b", "a"]);
  });
});

describe("probation", () => {
  const HEAP_BOMB = `function ksr_request_route() { const a = []; for (;;) a.push(new Array(100000).fill(1)); }\n`;

  test("a sync tenant runs its first routes asynchronously and runs sync once they all completed", async () => {
    const { registry: reg, tenant } = setup(replyWith("hi"), "", { probationRoutes: 3 });
    expect([tenant.mode, tenant.runner.mode, tenant.probation]).toEqual(["probation", "async", 3]);
    for (let i = 0; i < 2; i++) {
      const result = reg.run(tenant, "ksr_request_route", contextFor(tenant));
      expect(result).toBeInstanceOf(Promise);
      expect(await result).toEqual({ status: "ok" });
    }
    expect([tenant.mode, tenant.probation]).toEqual(["probation", 1]);
    expect(await reg.run(tenant, "ksr_request_route", contextFor(tenant))).toEqual({ status: "ok" });
    expect([tenant.mode, tenant.probation]).toEqual(["sync", 0]);
    // Proven: the next route runs on the calling thread.
    expect(reg.run(tenant, "ksr_request_route", contextFor(tenant))).toEqual({ status: "ok" });
    expect(tenant.counters.demotions).toBe(0);
  });

  test("a tenant that runs out of memory on probation stays async, demoted, and its first out-of-memory is reported", async () => {
    const demoted: string[] = [];
    const outOfMemory: string[] = [];
    const { registry: reg, tenant } = setup(HEAP_BOMB, "    limits: { heapMb: 32, routeTimeoutMs: 5000 }\n", {
      probationRoutes: 100,
      onDemote: (id, reason) => demoted.push(`${id}: ${reason}`),
      onOutOfMemory: (id) => outOfMemory.push(id),
    });
    expect(await runOnce(reg, tenant)).toMatchObject({ status: "error", kind: "oom" });
    expect([tenant.mode, tenant.probation, tenant.counters.demotions, tenant.counters.oomRestarts]).toEqual(["async", 0, 1, 1]);
    expect(demoted).toEqual(["t: route ran out of memory"]);
    expect(outOfMemory).toEqual(["t"]);
  });

  test("explicit mode: async and autoDemote off keep no probation", () => {
    expect(setup(replyWith("hi"), "    mode: async\n", { probationRoutes: 3 }).tenant.probation).toBe(0);
    registry?.dispose();
    const { tenant } = setup(replyWith("hi"), "", { probationRoutes: 3, autoDemote: false });
    expect([tenant.mode, tenant.probation]).toEqual(["sync", 0]);
  });
});

describe("eviction", () => {
  test("at the first out-of-memory an evicted tenant's isolate is never rebuilt here: queued and later routes fail without running", async () => {
    let reg!: TenantRegistry;
    const dir = tenantDir();
    dir.write("bomb.js", `function ksr_request_route() { const a = []; for (;;) a.push(new Array(100000).fill(1)); }\n`);
    dir.write("good.js", replyWith("good"));
    const config = loadTenantsFile(
      dir.write(
        "tenants.yaml",
        "tenants:\n  - id: bomb\n    script: bomb.js\n    mode: async\n    match: { domains: [bomb.example] }\n    limits: { heapMb: 32, routeTimeoutMs: 5000 }\n" +
          "  - id: good\n    script: good.js\n    match: { domains: [good.example] }\n",
      ),
    );
    reg = registry = new TenantRegistry(config, { onOutOfMemory: (id) => reg.evict(id) });
    const bomb = reg.get("bomb")!;
    const runner = bomb.runner as ScriptRunner;
    // Three queued on the isolate: the first runs it out of memory; the others must not re-create it.
    const outcomes = await Promise.all([0, 1, 2].map(() => reg.run(bomb, "ksr_request_route", contextFor(bomb))));
    expect(outcomes[0]).toMatchObject({ status: "error", kind: "oom" });
    for (const o of outcomes.slice(1)) expect(o).toMatchObject({ status: "error" });
    expect(runner.isDisposed).toBe(true);
    expect(runner.restarts).toBe(0);
    expect(await runOnce(reg, bomb)).toMatchObject({ status: "error", kind: "exception", message: "tenant bomb runs in another process now" });
    expect(await reg.reload("bomb")).toEqual({ ok: false, error: "tenant bomb runs in another process now" });
    expect(bomb.counters.oomRestarts).toBe(1);
    // Its neighbour is untouched.
    const good = reg.get("good")!;
    const host = makeRecordingHost();
    expect(await runOnce(reg, good, host)).toEqual({ status: "ok" });
    expect(host.replies.map((r) => r.reason)).toEqual(["good"]);
  });
});

describe("repeated out-of-memory", () => {
  test("a second out-of-memory within the window puts the CPU bucket a whole bucket in debt: requests are refused until it is paid back", async () => {
    const clock = { ms: 0 };
    const { registry: reg, tenant } = setup(
      `function ksr_request_route() { if (KSR.pv.gete("$rU") === "ok") { KSR.sl.sl_send_reply(200, "OK"); return; } const a = []; for (;;) a.push(new Array(100000).fill(1)); }\n`,
      "    mode: async\n    limits: { heapMb: 32, routeTimeoutMs: 5000 }\n",
      { nowMs: () => clock.ms, throttleRepeatedOutOfMemory: true },
    );
    const ok = (): Promise<TenantRouteOutcome> =>
      Promise.resolve(reg.run(tenant, "ksr_request_route", new MessageContext(request({ ruri: "sip:ok@example.com" }), rcv(), "request", tenant.state, makeRecordingHost())));
    // One out-of-memory is not throttled: the next request runs on a fresh isolate.
    expect(await runOnce(reg, tenant)).toMatchObject({ status: "error", kind: "oom" });
    clock.ms += 3000; // the bucket refills whatever the heap bomb's fill cost
    expect(await ok()).toEqual({ status: "ok" });
    const runner = tenant.runner as ScriptRunner;
    expect(runner.restarts).toBe(1);
    // A second one within 10 s: refused until a whole bucket (cpuShare 1 × 1000 ms) is paid back;
    // the routes queued behind it are not run on a new isolate either (each would fill a new heap).
    const burst = await Promise.all([0, 1, 2].map(() => runOnce(reg, tenant)));
    expect(burst[0]).toMatchObject({ status: "error", kind: "oom" });
    for (const o of burst.slice(1)) expect(o).toMatchObject({ status: "error" });
    expect(runner.restarts).toBe(1);
    expect(tenant.budget.tokensMs).toBeLessThanOrEqual(-tenant.budget.capacityMs);
    expect(await ok()).toEqual({ status: "over-budget" });
    clock.ms += 900;
    expect(await ok()).toEqual({ status: "over-budget" });
    clock.ms += 10_000;
    expect(await ok()).toEqual({ status: "ok" });
    // Out of memory again only after the window: not throttled.
    clock.ms += 10_000;
    expect(await runOnce(reg, tenant)).toMatchObject({ status: "error", kind: "oom" });
    expect(await ok()).toEqual({ status: "ok" });
    expect(tenant.counters.overBudget).toBe(2);
  });
});
