// The density benchmark (`npm run bench -- --scenario density`): many
// tenants — 1 000 by default, each answering OPTIONS with
// bench/scripts/options-200.js — in one `ksr run --tenants` (shards of
// worker processes, its default isolation).
//
// Steps, on one server on 127.0.0.1:
//   1. start-up: from spawning `ksr run` to its "running ..." line (every
//      shard has loaded its tenants' scripts);
//   2. every tenant answers: one OPTIONS to each tenant's domain
//      (t0000.density.example ...), a bounded number in flight, each
//      retransmitted at most twice (500 ms, 1 s); counts the 200s and the
//      response times; resident memory of the server's process tree (front,
//      shards, supervisor) before and after;
//   3. idle disposal: once every tenant has been idle for the server's
//      --idle-dispose-s (and its sweep has run), the resident memory again,
//      then cold starts: one OPTIONS at a time to a sample of the disposed
//      tenants (each rebuilds its isolate), then once more to the same ones
//      (warm), their response times;
//   4. a busy tenant among idle ones: sipp OPTIONS (test/interop/sipp/
//      options.xml, To 127.0.0.1, which only tenant t0000 matches) at
//      --rates[0] for --duration seconds, its p99; with --kamailio the same
//      sipp load against Kamailio 5.6's stateless reply, for the ratio.
//
// Targets (issue #11): resident memory ≤ 8 GB in all and ≤ 8 MB a tenant,
// every tenant answers. --lazy-isolates (the server's option) is passed on
// when asked: the tenants' first answers are then cold starts. Everything stays on 127.0.0.1 on free ports; every
// load is bounded; the server is stopped by the PID this module started.
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { KSR_BIN, KSR_BUNDLE, REPO_ROOT, captureOutput, findFreePort, runSipp } from "./sipp.mjs";
import { buildNoiseRequest, parseResponse } from "./noisy-sipp.mjs";
import { processTreeRssBytes } from "./soak.mjs";
import { percentile } from "./stats.mjs";

const LOCALHOST = "127.0.0.1";
const OPTIONS_SCRIPT = path.join(REPO_ROOT, "bench", "scripts", "options-200.js");
const OPTIONS_SCENARIO = path.join(REPO_ROOT, "test", "interop", "sipp", "options.xml");
export const DENSITY_TARGET_TOTAL_BYTES = 8 * 1024 ** 3;
export const DENSITY_TARGET_PER_TENANT_BYTES = 8 * 1024 ** 2;
/** Requests in flight at once while asking every tenant. */
const IN_FLIGHT = 50;
/** Retransmissions of an unanswered OPTIONS (RFC 3261 §17.1.2.2 Timer E: 500 ms, then doubled). */
const RETRANSMIT_AFTER_MS = [500, 1000];
/** Wait for the last answer after the last retransmission. */
const FINAL_WAIT_MS = 2000;
const MB = 1024 ** 2;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tenant i's id and domain. */
export function densityTenant(i) {
  const id = `t${String(i).padStart(4, "0")}`;
  return { id, domain: `${id}.density.example` };
}

/**
 * The tenants file (JSON) of `count` tenants in dir, each running
 * options-200.js for its domain; tenant t0000 also for 127.0.0.1 (sipp's
 * To host). Returns its path.
 */
export function writeDensityTenants({ dir, count }) {
  fs.copyFileSync(OPTIONS_SCRIPT, path.join(dir, "options-200.js"));
  const tenants = Array.from({ length: count }, (_, i) => {
    const { id, domain } = densityTenant(i);
    return { id, script: "options-200.js", match: { domains: i === 0 ? [domain, LOCALHOST] : [domain] } };
  });
  const file = path.join(dir, "tenants.json");
  fs.writeFileSync(file, JSON.stringify({ unmatched: 404, tenants }) + "\n");
  return file;
}

/**
 * Sends one OPTIONS to each domain (at most IN_FLIGHT at once, each
 * retransmitted per RETRANSMIT_AFTER_MS until answered) and resolves with
 * per-domain { status, ms } (status 0: no final answer); ms from the first
 * send to the first final response.
 */
export async function askEachDomain({ port, domains, inFlight = IN_FLIGHT }) {
  const socket = dgram.createSocket("udp4");
  await new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, LOCALHOST, resolve);
  });
  socket.on("error", () => {});
  const localPort = socket.address().port;
  const runId = `${process.pid}-${localPort}`;
  const results = domains.map(() => ({ status: 0, ms: NaN }));
  const pending = new Map(); // Call-ID -> { index, sentAt, settle }
  socket.on("message", (data) => {
    const response = parseResponse(data);
    const entry = response?.callId ? pending.get(response.callId) : undefined;
    if (entry === undefined || response.status < 200) return;
    pending.delete(response.callId);
    results[entry.index] = { status: response.status, ms: performance.now() - entry.sentAt };
    entry.settle();
  });
  let next = 0;
  const worker = async () => {
    while (next < domains.length) {
      const index = next++;
      const request = buildNoiseRequest({ domain: domains[index], localPort, seq: index, runId });
      await new Promise((resolve) => {
        const timers = [];
        const settle = () => {
          for (const t of timers) clearTimeout(t);
          resolve();
        };
        pending.set(request.callId, { index, sentAt: performance.now(), settle });
        const send = () => socket.send(request.text, port, LOCALHOST, () => {});
        send();
        let at = 0;
        for (const after of RETRANSMIT_AFTER_MS) {
          at += after;
          timers.push(setTimeout(send, at));
        }
        timers.push(
          setTimeout(() => {
            pending.delete(request.callId);
            resolve();
          }, at + FINAL_WAIT_MS),
        );
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, domains.length) }, worker));
  socket.close();
  return results;
}

function summarize(results) {
  const ms = results.filter((r) => r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
  return {
    asked: results.length,
    ok: ms.length,
    notOk: results.length - ms.length,
    p50: percentile(ms, 0.5),
    p99: percentile(ms, 0.99),
    max: ms.at(-1) ?? NaN,
  };
}

/** `ksr run --tenants file` on a free port; resolves once its "running ..." line is logged, with the time that took. */
async function startDensityServer({ tenantsFile, port, idleDisposeS, shards, lazyIsolates, readyTimeoutMs }) {
  if (!fs.existsSync(KSR_BUNDLE)) throw new Error(`${KSR_BUNDLE} is missing: run \`npm run build\` first`);
  const args = [
    KSR_BIN,
    "run",
    "--tenants",
    tenantsFile,
    "--listen",
    `udp:${LOCALHOST}:${port}`,
    "--listen",
    `tcp:${LOCALHOST}:${port}`,
    "--log-level",
    "notice",
    "--db",
    ":memory:",
    "--idle-dispose-s",
    String(idleDisposeS),
    ...(shards !== undefined ? ["--shards", String(shards)] : []),
    ...(lazyIsolates ? ["--lazy-isolates"] : []),
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const output = captureOutput(child, 400_000);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const done = await Promise.race([exited, sleep(10_000).then(() => null)]);
    if (done === null) {
      child.kill("SIGKILL");
      await exited;
    }
  };
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const line = /NOTICE \[ksr\] (running .* worker processes .*)$/m.exec(output());
    if (line) return { pid: child.pid, port, output, stop, startupMs: performance.now() - started, runningLine: line[1] };
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`ksr run exited before it was running:\n${output()}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`ksr run was not running within ${readyTimeoutMs} ms:\n${output()}`);
    }
    await sleep(100);
  }
}

/**
 * Runs the density benchmark. tenants: how many; idleDisposeS: the
 * server's --idle-dispose-s; coldSample: tenants asked one at a time after
 * disposal; rate, durationS: the busy tenant's sipp load; kamailio: a
 * function(calls, rate) running the same sipp load against Kamailio, or
 * undefined. Prints tables; resolves with the numbers and `passed`.
 */
export async function benchDensity({ tenants = 1000, idleDisposeS = 20, coldSample = 20, rate = 1000, durationS = 10, shards, lazyIsolates = false, kamailio, print = console.log }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-bench-density-"));
  let server;
  try {
    const tenantsFile = writeDensityTenants({ dir, count: tenants });
    const port = await findFreePort();
    server = await startDensityServer({ tenantsFile, port, idleDisposeS, shards, lazyIsolates, readyTimeoutMs: 300_000 });
    const rssStarted = processTreeRssBytes(server.pid);
    print(`\n# density: ${tenants} tenants (bench/scripts/options-200.js), one ksr run --tenants, --idle-dispose-s ${idleDisposeS}${lazyIsolates ? ", --lazy-isolates" : ""}`);
    print(`${server.runningLine}`);
    print(`start-up (spawn → running line): ${(server.startupMs / 1000).toFixed(1)} s; resident memory then ${(rssStarted / MB).toFixed(0)} MB`);

    const domains = Array.from({ length: tenants }, (_, i) => densityTenant(i).domain);
    const askedAt = performance.now();
    const first = summarize(await askEachDomain({ port, domains }));
    const askS = (performance.now() - askedAt) / 1000;
    const rssAnswered = processTreeRssBytes(server.pid);

    // Every tenant idle for the idle time, then one sweep period more (a quarter of it) and a margin.
    const idleWaitMs = idleDisposeS * 1000 * 1.25 + 3000;
    await sleep(idleWaitMs);
    const rssDisposed = processTreeRssBytes(server.pid);
    // A sample spread over the file, asked one at a time: each rebuilds its isolate.
    const step = Math.max(1, Math.floor(tenants / coldSample));
    const sample = Array.from({ length: Math.min(coldSample, tenants) }, (_, k) => domains[(k * step + 1) % tenants]);
    const cold = summarize(await askEachDomain({ port, domains: sample, inFlight: 1 }));
    const warm = summarize(await askEachDomain({ port, domains: sample, inFlight: 1 }));

    const calls = rate * durationS;
    const busy = await runSipp({ scenarioFile: OPTIONS_SCENARIO, targetPort: port, transport: "udp", calls, rate });
    const rssBusy = processTreeRssBytes(server.pid);
    const reference = kamailio === undefined ? undefined : await kamailio(calls, rate);

    const peak = Math.max(rssStarted, rssAnswered, rssDisposed, rssBusy);
    const ms = (v) => (Number.isFinite(v) ? v.toFixed(1) : "-");
    print("\n| step | value |");
    print("| --- | ---: |");
    print(`| tenants answering 200 (one OPTIONS each, ${IN_FLIGHT} in flight) | ${first.ok} / ${first.asked} in ${askS.toFixed(1)} s (p50 ${ms(first.p50)} ms, p99 ${ms(first.p99)} ms) |`);
    print(`| resident memory: started / all answered / after idle disposal / busy tenant | ${[rssStarted, rssAnswered, rssDisposed, rssBusy].map((b) => (b / MB).toFixed(0)).join(" / ")} MB |`);
    print(`| peak per tenant | ${(peak / tenants / MB).toFixed(2)} MB |`);
    print(`| cold start of a disposed tenant (${cold.asked} one at a time): ok, p50 / max | ${cold.ok}, ${ms(cold.p50)} / ${ms(cold.max)} ms |`);
    print(`| the same tenants warm: p50 / max | ${ms(warm.p50)} / ${ms(warm.max)} ms |`);
    print(
      `| busy tenant t0000, sipp OPTIONS ${rate}/s × ${durationS} s, ${tenants - 1} idle: ok / failed / retrans, p50 / p99 | ` +
        `${busy.successful} / ${busy.failed} / ${busy.retransmissions}, ${ms(busy.rtMs.p50)} / ${ms(busy.rtMs.p99)} ms |`,
    );
    if (reference !== undefined) {
      print(
        `| Kamailio 5.6 stateless reply, same sipp load: ok / failed / retrans, p50 / p99 | ` +
          `${reference.successful} / ${reference.failed} / ${reference.retransmissions}, ${ms(reference.rtMs.p50)} / ${ms(reference.rtMs.p99)} ms |`,
      );
    }
    const passed = first.ok === tenants && peak <= DENSITY_TARGET_TOTAL_BYTES && peak / tenants <= DENSITY_TARGET_PER_TENANT_BYTES && cold.ok === cold.asked && busy.failed === 0;
    print(
      `\n${passed ? "PASS" : "FAIL"}: every tenant answered (${first.ok === tenants}), peak ${(peak / 1024 ** 3).toFixed(2)} GB ≤ 8 GB and ${(peak / tenants / MB).toFixed(2)} MB ≤ 8 MB a tenant, ` +
        `every cold start answered, the busy tenant lost no call`,
    );
    return { passed, startupMs: server.startupMs, first, rss: { started: rssStarted, answered: rssAnswered, disposed: rssDisposed, busy: rssBusy, peak }, cold, warm, busy, reference };
  } finally {
    if (server) await server.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
