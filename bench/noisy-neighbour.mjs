// Noisy neighbour, in process, through the tenant registry (host/tenants):
// tenant B runs a route shaped like Kamailio's basic script (31 KSR calls
// into the real modules, a small fake HostServices), tenant A runs
// `for (;;) {}` on every message, or allocates until its heap limit.
// Compares B alone with B next to A, under the hybrid design (A demoted to
// async at its first timeout / out-of-memory / budget overrun) with A's
// CPU budget, and under sync only (no demotion, no budget) for reference.
//
//   node bench/noisy-neighbour.mjs [--seconds 3] [--b-rate 2000] [--a-rate 10] [--json]
//
// Per condition:
// - latency: B arrives at a fixed rate from a generator thread (like
//   datagrams queueing while the main thread is busy); latency = finish −
//   scheduled arrival. p99 is given for the whole window and for the part
//   after A's demotion (A pays its first stall once; the steady state is
//   what B lives with afterwards).
// - throughput: B back to back (batches of 64 messages between event-loop
//   turns) while A's messages arrive at their rate; B's messages per second,
//   over a run that includes A's first message (its one sync stall) and
//   over one that starts after it ("after A's first message").
// Conditions are interleaved and repeated (the machine's load drifts);
// medians are shown. Bounded: about 8 × --seconds + 14 s plus set-up
// (≈ 45 s at the default).
import { build } from "esbuild";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { deliverOnSchedule, fixedRateSchedule } from "./lib/arrivals.mjs";
import { percentile } from "./lib/stats.mjs";

const { values: opts } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    "b-rate": { type: "string", default: "2000" },
    "a-rate": { type: "string", default: "10" },
    json: { type: "boolean", default: false },
  },
});
const SECONDS = Number(opts.seconds);
const B_RATE = Number(opts["b-rate"]);
const A_RATE = Number(opts["a-rate"]);
if (!(SECONDS > 0 && SECONDS <= 6)) throw new Error("--seconds must be in (0, 6]");
if (!(B_RATE > 0 && B_RATE <= 20000) || !(A_RATE > 0 && A_RATE <= 1000)) throw new Error("--b-rate in (0, 20000], --a-rate in (0, 1000]");

const REPO = fileURLToPath(new URL("..", import.meta.url));

// The registry is TypeScript: bundle the few entry points next to this file
// (so sandbox/runtime-source.ts finds ../runtime/facade.ts) and import them.
const bundlePath = join(REPO, "bench", `.noisy-neighbour-${process.pid}.bundle.mjs`);
await build({
  stdin: {
    contents: `
      export { TenantRegistry, loadTenantsFile } from "./host/tenants/index.ts";
      export { MessageContext } from "./host/core/context.ts";
      export { parseMessage } from "./host/sip/parser.ts";
      export { setLogSink } from "./host/core/log.ts";
      export { ScriptRunner } from "./sandbox/runner.ts";`,
    resolveDir: REPO,
    loader: "ts",
  },
  bundle: true,
  format: "esm",
  platform: "node",
  packages: "external",
  outfile: bundlePath,
  logLevel: "silent",
});
let lib;
try {
  lib = await import(pathToFileURL(bundlePath).href);
} finally {
  rmSync(bundlePath, { force: true });
}
const { TenantRegistry, loadTenantsFile, MessageContext, parseMessage, setLogSink, ScriptRunner } = lib;
setLogSink(() => {}); // demotion / restart warnings would interleave with the table

// ---------------------------------------------------------------------------
// Scripts and tenants
// ---------------------------------------------------------------------------

const B_SCRIPT = `
// Basic-script shape: request checks, method tests, flags, header and
// pseudo-variable reads, a local reply. 31 KSR calls.
function ksr_request_route() {
  var ua = KSR.pv.gete("$ua");                                                        // 1
  if (ua.indexOf("sipvicious") >= 0) { KSR.sl.sl_send_reply(200, "OK"); KSR.x.exit(); }
  if (KSR.maxfwd.process_maxfwd(10) < 0) { KSR.sl.sl_send_reply(483, "Too Many Hops"); KSR.x.exit(); } // 2
  if (KSR.sanity.sanity_check(1511, 7) < 0) { KSR.x.exit(); }                          // 3
  if (KSR.is_INVITE()) { KSR.setflag(1); }                                            // 4
  if (KSR.is_REGISTER() || KSR.is_ACK() || KSR.is_CANCEL()) { KSR.x.exit(); }         // 5-7
  var ruser = KSR.pv.gete("$rU");                                                     // 8
  var rdomain = KSR.pv.gete("$rd");                                                   // 9
  var fu = KSR.pv.gete("$fu");                                                        // 10
  var tu = KSR.pv.gete("$tu");                                                        // 11
  var ci = KSR.pv.gete("$ci");                                                        // 12
  KSR.pv.sets("$var(last_ci)", ci);                                                   // 13
  for (var f = 2; f < 8; f++) KSR.setflag(f);                                         // 14-19
  if (KSR.hdr.is_present("Route") > 0) { KSR.x.exit(); }                              // 20
  KSR.hdr.is_present("Subject");                                                      // 21
  if (!KSR.is_myself_ruri() && !KSR.is_myself_furi()) { /* would relay */ }           // 22-23
  var src = KSR.kx.get_srcip() + ":" + KSR.kx.get_srcport();                          // 24-25
  KSR.hdr.append_to_reply("X-Route: " + ruser + "@" + rdomain + " " + fu.length + tu.length + src.length + "\\r\\n"); // 26
  if (KSR.isflagset(3)) { KSR.force_rport(); }                                        // 27-28
  KSR.pv.gete("$cs");                                                                 // 29
  KSR.sl.sl_send_reply(200, "OK");                                                    // 30
  KSR.x.exit();                                                                       // 31
}
`;
const A_LOOP = `function ksr_request_route() { for (;;) {} }\n`;
const A_HEAP = `function ksr_request_route() { var hoard = []; for (;;) hoard.push(new Array(100000).fill(hoard.length)); }\n`;

const A_TIMEOUT_MS = 50;
const A_SHARE = 0.1;

function makeRegistry(aScript, hybrid) {
  const dir = mkdtempSync(join(tmpdir(), "ksr-noisy-"));
  writeFileSync(join(dir, "b.js"), B_SCRIPT);
  writeFileSync(join(dir, "a.js"), aScript ?? A_LOOP);
  const aLimits = aScript === A_HEAP
    ? `{ heapMb: 32, routeTimeoutMs: 2000, cpuShare: ${hybrid ? A_SHARE : 16} }`
    : `{ heapMb: 32, routeTimeoutMs: ${A_TIMEOUT_MS}, cpuShare: ${hybrid ? A_SHARE : 16} }`;
  writeFileSync(
    join(dir, "tenants.yaml"),
    `tenants:
  - id: b
    script: b.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [b.example] }
  - id: a
    script: a.js
    egress: { allow: [127.0.0.0/8] }
    match: { domains: [a.example] }
    limits: ${aLimits}
`,
  );
  const registry = new TenantRegistry(loadTenantsFile(join(dir, "tenants.yaml")), { autoDemote: hybrid });
  return { registry, cleanup: () => { registry.dispose(); rmSync(dir, { recursive: true, force: true }); } };
}

const host = {
  listen: [{ proto: "udp", ip: "127.0.0.1", port: 5060 }],
  aliases: [],
  log() {},
  sendReply() { return true; },
  forward() { return false; },
  now: () => Date.now(),
};
const RCV = { proto: "udp", srcIp: "192.0.2.10", srcPort: 5070, localIp: "127.0.0.1", localPort: 5060, connectionId: -1 };
const rawRequest = (domain, n) =>
  `OPTIONS sip:user@${domain} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-${n}\r\nFrom: <sip:alice@${domain}>;tag=a${n}\r\n` +
  `To: <sip:user@${domain}>\r\nCall-ID: noisy-${n}@192.0.2.10\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: bench\r\nContent-Length: 0\r\n\r\n`;

/** Parses and routes one message; returns undefined (done) or a promise. Replies 503 when over budget. */
function handle(registry, domain, n) {
  const parsed = parseMessage(rawRequest(domain, n));
  if (!parsed.ok) throw new Error(parsed.error);
  const tenant = registry.select(parsed.message, RCV);
  const ctx = new MessageContext(parsed.message, RCV, "request", tenant.state, host);
  const result = registry.run(tenant, "ksr_request_route", ctx);
  if (typeof result?.then === "function") return result;
  if (result.status === "over-budget") registry.recordReply(tenant, 503);
  return undefined;
}

// ---------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------

const now = () => performance.now();

function schedule(withA) {
  const rates = [{ tenant: "b", rate: B_RATE, phase: 0 }];
  if (withA) rates.push({ tenant: "a", rate: A_RATE, phase: 0.37 });
  return fixedRateSchedule(rates, SECONDS);
}

async function latencyRun(registry, withA) {
  const bLatencies = []; // [arrival offset ms, latency ms]
  let n = 0;
  const windowMs = await deliverOnSchedule(schedule(withA), (e, arrival) => {
    const result = handle(registry, e.tenant === "b" ? "b.example" : "a.example", n++);
    if (e.tenant !== "b") return result;
    if (result) return result.then(() => bLatencies.push([e.at, now() - arrival]));
    bLatencies.push([e.at, now() - arrival]);
    return undefined;
  });
  return { bLatencies, windowMs };
}

async function throughputRun(registry, withA, seconds) {
  const endAt = now() + seconds * 1000;
  let bDone = 0;
  let n = 0;
  const pending = [];
  const timer = withA
    ? setInterval(() => {
        const r = handle(registry, "a.example", n++);
        if (r) pending.push(r);
      }, 1000 / A_RATE)
    : undefined;
  const start = now();
  while (now() < endAt) {
    for (let i = 0; i < 64; i++) {
      handle(registry, "b.example", n++);
      bDone++;
    }
    await new Promise((r) => setImmediate(r));
  }
  const elapsed = now() - start;
  if (timer) clearInterval(timer);
  await Promise.all(pending);
  return bDone / (elapsed / 1000);
}

function summarize(bLatencies, windowMs, demotedAtMs) {
  const all = bLatencies.map(([, l]) => l).sort((x, y) => x - y);
  const after = demotedAtMs === undefined ? [] : bLatencies.filter(([at]) => at > demotedAtMs + 50).map(([, l]) => l).sort((x, y) => x - y);
  return {
    rate: bLatencies.length / (windowMs / 1000),
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    max: all[all.length - 1],
    p99After: after.length > 0 ? percentile(after, 0.99) : undefined,
  };
}

// ---------------------------------------------------------------------------
// 1. Cost of one B message, sync vs async (the KSR-call thread hop)
// ---------------------------------------------------------------------------

async function routeCost() {
  const { registry, cleanup } = makeRegistry(A_LOOP, true);
  const b = registry.get("b");
  const iterations = Math.round(2000 * Math.min(1, SECONDS / 3));
  for (let i = 0; i < 500; i++) handle(registry, "b.example", i);
  let t = now();
  for (let i = 0; i < iterations; i++) handle(registry, "b.example", i);
  const syncUs = ((now() - t) * 1000) / iterations;
  b.runner.demote("cost measurement");
  for (let i = 0; i < 100; i++) await handle(registry, "b.example", i);
  const asyncIterations = Math.round(iterations / 4);
  t = now();
  for (let i = 0; i < asyncIterations; i++) await handle(registry, "b.example", i);
  const asyncUs = ((now() - t) * 1000) / asyncIterations;
  t = now();
  await Promise.all(Array.from({ length: asyncIterations }, (_, i) => handle(registry, "b.example", i)));
  const asyncConcurrentUs = ((now() - t) * 1000) / asyncIterations;
  cleanup();
  return { syncUs, asyncUs, asyncConcurrentUs, inFlight: asyncIterations, hopUs: (asyncUs - syncUs) / 31 };
}

// ---------------------------------------------------------------------------
// 2. Conditions
// ---------------------------------------------------------------------------

const conditions = [
  { name: "B alone", aScript: undefined, hybrid: true },
  { name: "A loops to 50 ms — hybrid + 10 % budget", aScript: A_LOOP, hybrid: true },
  { name: "A fills its 32 MB heap — hybrid + 10 % budget", aScript: A_HEAP, hybrid: true },
  { name: "A loops to 50 ms — sync only, no budget", aScript: A_LOOP, hybrid: false },
];

const started = now();
const cost = await routeCost();

/** One latency run of a condition: B's latency summary and A's counters. */
async function latencyOf(c) {
  const { registry, cleanup } = makeRegistry(c.aScript, c.hybrid);
  for (let i = 0; i < 300; i++) handle(registry, "b.example", i); // warm-up (JIT on both sides)
  const a = registry.get("a");
  let demotedAtMs;
  const t0 = now();
  const poll = setInterval(() => {
    if (demotedAtMs === undefined && a.mode === "async") demotedAtMs = now() - t0 - 20;
  }, 1);
  const lat = await latencyRun(registry, c.aScript !== undefined);
  clearInterval(poll);
  const aStats = { ran: a.counters.messages - a.counters.overBudget, overBudget: a.counters.overBudget, timeouts: a.counters.timeouts, oom: a.counters.oomRestarts, cpuPct: (100 * Number(a.counters.cpuNs) / 1e6) / lat.windowMs };
  cleanup();
  return { ...summarize(lat.bLatencies, lat.windowMs, c.aScript === undefined ? undefined : demotedAtMs), demotedAtMs, a: c.aScript === undefined ? undefined : aStats };
}

/** B's back-to-back rate; `afterFirstA`: A's first message (its one sync stall) is handled before the measurement. */
async function throughputOf(c, afterFirstA) {
  const { registry, cleanup } = makeRegistry(c.aScript, c.hybrid);
  for (let i = 0; i < 300; i++) handle(registry, "b.example", i);
  if (afterFirstA) await handle(registry, "a.example", 0);
  const result = await throughputRun(registry, c.aScript !== undefined, THROUGHPUT_SECONDS);
  cleanup();
  return result;
}

// Interleaved repeats: the machine's load drifts, and every condition should see the same drift.
const LATENCY_REPEATS = 2;
const THROUGHPUT_REPEATS = 2;
const THROUGHPUT_SECONDS = Math.min(1, SECONDS / 2);
const latencies = conditions.map(() => []);
const throughputs = conditions.map(() => []);
const steadyThroughputs = conditions.map(() => []);
for (let r = 0; r < LATENCY_REPEATS; r++) for (let i = 0; i < conditions.length; i++) latencies[i].push(await latencyOf(conditions[i]));
for (let r = 0; r < THROUGHPUT_REPEATS; r++) {
  for (let i = 0; i < conditions.length; i++) {
    throughputs[i].push(await throughputOf(conditions[i], false));
    if (conditions[i].aScript !== undefined) steadyThroughputs[i].push(await throughputOf(conditions[i], true));
  }
}
const median = (xs) => {
  const s = xs.filter((x) => x !== undefined).sort((x, y) => x - y);
  return s.length === 0 ? undefined : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rows = conditions.map((c, i) => {
  const runs = latencies[i];
  const pick = (k) => median(runs.map((r) => r[k]));
  const range = (k) => runs.map((r) => r[k]).filter((x) => x !== undefined);
  return {
    condition: c.name,
    throughput: median(throughputs[i]),
    throughputs: throughputs[i],
    steadyThroughput: median(steadyThroughputs[i]),
    p50: pick("p50"),
    p99: pick("p99"),
    p99s: range("p99"),
    p99After: pick("p99After"),
    p99Afters: range("p99After"),
    max: pick("max"),
    demotedAtMs: pick("demotedAtMs"),
    a: runs[0].a === undefined ? undefined : {
      ran: median(runs.map((r) => r.a.ran)),
      overBudget: median(runs.map((r) => r.a.overBudget)),
      timeouts: median(runs.map((r) => r.a.timeouts)),
      oom: median(runs.map((r) => r.a.oom)),
      cpuPct: median(runs.map((r) => r.a.cpuPct)),
    },
  };
});
const totalS = (now() - started) / 1000;

if (opts.json) {
  console.log(JSON.stringify({ seconds: SECONDS, bRate: B_RATE, aRate: A_RATE, cost, rows, totalS }, (k, v) => (typeof v === "bigint" ? Number(v) : v), 2));
} else {
  const f = (x, d = 2) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
  const alone = rows[0];
  console.log(`B route (31 KSR calls) per message: sync ${f(cost.syncUs, 1)} µs, async one at a time ${f(cost.asyncUs, 1)} µs ` +
    `(≈ ${f(cost.hopUs, 1)} µs per KSR call thread hop), async with ${cost.inFlight} in flight ${f(cost.asyncConcurrentUs, 1)} µs\n`);
  console.log(`B at ${B_RATE}/s for latency (${LATENCY_REPEATS} runs of ${SECONDS} s, median, [range]) and back to back for throughput ` +
    `(${THROUGHPUT_REPEATS} runs of ${THROUGHPUT_SECONDS} s, median); A at ${A_RATE}/s\n`);
  const rng = (xs) => (xs.length > 1 ? ` [${f(Math.min(...xs))}–${f(Math.max(...xs))}]` : "");
  console.log("| condition | B msg/s back to back | vs alone | after A's first message | B p50 ms | B p99 ms (whole run) | B p99 ms after A's demotion | A ran / over budget | A timeouts / OOM | A CPU % of a core |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const a = r.a;
    console.log(
      `| ${r.condition} | ${Math.round(r.throughput)} | ${f((100 * r.throughput) / alone.throughput, 0)} % | ` +
        `${r.steadyThroughput === undefined ? "–" : `${f((100 * r.steadyThroughput) / alone.throughput, 0)} %`} | ${f(r.p50)} | ${f(r.p99)}${rng(r.p99s)} | ` +
        `${r.p99After === undefined ? "–" : `${f(r.p99After)}${rng(r.p99Afters)} (demoted at ${Math.round(r.demotedAtMs)} ms)`} | ` +
        `${a ? `${a.ran} / ${a.overBudget}` : "–"} | ${a ? `${a.timeouts} / ${a.oom}` : "–"} | ${a ? f(a.cpuPct, 0) : "–"} |`,
    );
  }
  console.log(`\ntotal ${totalS.toFixed(1)} s`);
}
