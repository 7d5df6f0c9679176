// The noisy-neighbour load benchmark (`npm run bench -- --scenario
// noisy-neighbour`): tenant B relays sipp calls statefully while tenant A's
// script misbehaves on every request sent to it, one server per phase.
//
// Phases, each on a fresh `ksr run --tenants` server on 127.0.0.1:
//   alone  B only (A is configured with the looping script but gets no traffic)
//   loop   B + A spinning until its route timeout on every request
//   heap   B + A allocating until its isolate's heap limit on every request
//   crash  B + A making one allocation far beyond its heap limit, which
//          aborts V8 in the process that runs A: expected to fail unless
//          tenants run in separate processes
// B's load is the same in every phase: sipp calls (INVITE/ACK/BYE through
// the relay to a sipp UAS) at a fixed rate for a fixed number of calls. A's
// load is a bounded node UDP sender (OPTIONS for a.example at a fixed rate).
// B's completed calls and p99 response time in each noisy phase are compared
// with the alone phase: the requirement is more than 90 % of the calls and a
// p99 under 2× the alone p99.
//
// Everything stays on 127.0.0.1 on ports chosen free; every load is bounded
// (call and request counts, sipp -timeout, reply waits); processes are
// stopped by the PID this module started.
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  REPO_ROOT,
  findFreePort,
  isAlive,
  processTreeCpuSeconds,
  runCallsThroughUas,
  startKsr,
  udpReceiveBufferErrors,
} from "./sipp.mjs";
import { percentile } from "./stats.mjs";

const LOCALHOST = "127.0.0.1";
export const B_DOMAIN = "b.example";
export const A_DOMAIN = "a.example";

/** The noisy variants of tenant A, in the order they run. */
export const NOISY_VARIANTS = ["loop", "heap", "crash"];

/**
 * Tenant A per variant: its script (bench/scripts) and limits. The loop
 * variant's timeout is short (a looping request costs exactly that much CPU);
 * the heap variant's is long enough for the heap to fill first, so that the
 * run ends on the heap limit, not on the clock. The crash variant's script
 * never reaches either: the process aborts.
 */
export const NOISY_TENANTS = {
  loop: { script: "noisy-loop.js", heapMb: 32, routeTimeoutMs: 50 },
  heap: { script: "noisy-heap.js", heapMb: 32, routeTimeoutMs: 2000 },
  crash: { script: "noisy-crash.js", heapMb: 32, routeTimeoutMs: 50 },
};

/** What each noisy phase shows; "crash" names its precondition. */
export const NOISY_DESCRIPTIONS = {
  loop: "A loops until its route timeout on every request",
  heap: "A allocates until its heap limit on every request",
  crash: "A makes one allocation far beyond its heap limit (V8 aborts the process running A: in a shard with B once, then A is quarantined into a process of its own; in-process, every time)",
};

/** The status tenant A's failed routes are answered with, distinct from the 503 of a refused (over-budget) request. */
export const A_ON_ERROR_STATUS = 500;

export const THROUGHPUT_MIN_RATIO = 0.9;
export const P99_MAX_RATIO = 2;

const BENCH_SCRIPTS_DIR = path.join(REPO_ROOT, "bench", "scripts");
const RELAY_SCRIPT = path.join(BENCH_SCRIPTS_DIR, "stateful-relay.js");
const UAC_SCENARIO = path.join(REPO_ROOT, "bench", "sipp", "uac-tenant-domain.xml");
/** The relay script's UAS address line, rewritten to the UAS port of the run. */
const RELAY_UAS_LINE = /^var UAS_URI = "sip:127\.0\.0\.1:\d+";$/m;
/** A call waiting longer than this for a message fails (run-load.sh's -recv_timeout for the relay). */
const RECV_TIMEOUT_MS = 10_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Tenants file
// ---------------------------------------------------------------------------

/** bench/scripts/stateful-relay.js with its UAS at 127.0.0.1:uasPort. */
export function relayScriptFor(uasPort, source = fs.readFileSync(RELAY_SCRIPT, "utf8")) {
  if (!RELAY_UAS_LINE.test(source)) throw new Error(`${RELAY_SCRIPT} has no line matching ${RELAY_UAS_LINE}: cannot point it at the UAS`);
  return source.replace(RELAY_UAS_LINE, `var UAS_URI = "sip:127.0.0.1:${uasPort}";`);
}

/**
 * The tenants file (JSON) of one phase, written in dir with its scripts:
 * b (the relay to 127.0.0.1:uasPort, domain b.example) and a (domain
 * a.example, the variant's script and limits; "alone" uses the loop script,
 * which then gets no traffic). aCpuShare: A's cpuShare, or undefined for the
 * tenants file's default. aMode: A's execution mode (sync, async), or
 * undefined for the default. Returns the file's path.
 */
export function writeNoisyTenants({ dir, variant, uasPort, aCpuShare, aMode, sameShard = false }) {
  const a = NOISY_TENANTS[variant === "alone" ? "loop" : variant];
  if (a === undefined) throw new Error(`unknown noisy variant "${variant}" (known: alone, ${NOISY_VARIANTS.join(", ")})`);
  fs.writeFileSync(path.join(dir, "b-relay.js"), relayScriptFor(uasPort));
  fs.copyFileSync(path.join(BENCH_SCRIPTS_DIR, a.script), path.join(dir, a.script));
  const tenants = {
    unmatched: 404,
    tenants: [
      { id: "b", script: "b-relay.js", match: { domains: [B_DOMAIN] }, egress: { allow: ["127.0.0.0/8"] }, ...(sameShard ? { shard: 0 } : {}) },
      {
        id: "a",
        script: a.script,
        match: { domains: [A_DOMAIN] },
        limits: { heapMb: a.heapMb, routeTimeoutMs: a.routeTimeoutMs, ...(aCpuShare !== undefined ? { cpuShare: aCpuShare } : {}) },
        onError: { status: A_ON_ERROR_STATUS },
        ...(aMode !== undefined ? { mode: aMode } : {}),
        ...(sameShard ? { shard: 0 } : {}),
      },
    ],
  };
  const file = path.join(dir, "tenants.json");
  fs.writeFileSync(file, JSON.stringify(tenants, null, 2) + "\n");
  return file;
}

// ---------------------------------------------------------------------------
// Tenant A's traffic: a bounded UDP sender
// ---------------------------------------------------------------------------

/** One OPTIONS for sip:noise@domain, identified by its Call-ID (RFC 3261 §8.1.1.4). */
export function buildNoiseRequest({ domain, localPort, seq, runId }) {
  const callId = `noise-${runId}-${seq}@${LOCALHOST}`;
  const text =
    `OPTIONS sip:noise@${domain} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${LOCALHOST}:${localPort};rport;branch=z9hG4bK-noise-${runId}-${seq}\r\n` +
    `From: <sip:noise@${LOCALHOST}>;tag=noise-${runId}\r\n` +
    `To: <sip:noise@${domain}>\r\n` +
    `Call-ID: ${callId}\r\n` +
    `CSeq: ${seq + 1} OPTIONS\r\n` +
    "Max-Forwards: 70\r\n" +
    "User-Agent: ksr-bench-noise\r\n" +
    "Content-Length: 0\r\n\r\n";
  return { callId, text };
}

/**
 * The status code and Call-ID of a SIP response datagram (RFC 3261 §7.2
 * status line, §20.8 Call-ID, compact form "i"), or null for anything else.
 */
export function parseResponse(datagram) {
  const text = typeof datagram === "string" ? datagram : datagram.toString("latin1");
  const statusLine = /^SIP\/2\.0 ([1-6]\d\d) /.exec(text);
  if (!statusLine) return null;
  const headerEnd = text.indexOf("\r\n\r\n");
  const head = headerEnd < 0 ? text : text.slice(0, headerEnd);
  const callId = /^(?:call-id|i)[ \t]*:[ \t]*(\S+)[ \t]*$/im.exec(head);
  return { status: Number(statusLine[1]), callId: callId ? callId[1] : null };
}

/**
 * Sends `count` OPTIONS for `domain` to 127.0.0.1:targetPort at `rate` per
 * second (an open loop on a fixed schedule: a slow server does not slow the
 * sender), without retransmissions: it stands for traffic, not for a user
 * agent. Each request's first final response (≥ 200) is counted by status
 * with its response time; a request without one replyWaitMs after the last
 * send is counted as unanswered. Returns at once with { finished }.
 */
export async function startNoiseSender({ targetPort, domain = A_DOMAIN, rate, count, replyWaitMs = 3000 }) {
  if (!(Number.isInteger(count) && count > 0 && rate > 0)) throw new Error("count must be a positive integer and rate positive");
  const socket = dgram.createSocket("udp4");
  await new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, LOCALHOST, resolve);
  });
  const localPort = socket.address().port;
  const runId = `${process.pid}-${localPort}`;
  const sentAt = new Map(); // Call-ID -> send time, until its final response
  const byStatus = {};
  const responseMs = [];
  let provisional = 0;
  let stray = 0;
  socket.on("message", (data) => {
    const response = parseResponse(data);
    if (response === null || response.callId === null || !sentAt.has(response.callId)) {
      stray++;
      return;
    }
    if (response.status < 200) {
      provisional++;
      return;
    }
    responseMs.push(performance.now() - sentAt.get(response.callId));
    sentAt.delete(response.callId);
    byStatus[response.status] = (byStatus[response.status] ?? 0) + 1;
  });
  socket.on("error", () => {}); // ICMP port unreachable while the server restarts: the request just goes unanswered
  const finished = (async () => {
    const started = performance.now();
    let sendErrors = 0;
    for (let seq = 0; seq < count; seq++) {
      const due = started + (seq * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const request = buildNoiseRequest({ domain, localPort, seq, runId });
      sentAt.set(request.callId, performance.now());
      socket.send(request.text, targetPort, LOCALHOST, (err) => {
        if (err) sendErrors++;
      });
    }
    const sendingS = (performance.now() - started) / 1000;
    for (let waited = 0; sentAt.size > 0 && waited < replyWaitMs; waited += 50) await sleep(50);
    socket.close();
    responseMs.sort((x, y) => x - y);
    return {
      sent: count,
      sendingS,
      byStatus,
      unanswered: sentAt.size,
      provisional,
      stray,
      sendErrors,
      responseMs: { p50: percentile(responseMs, 0.5), p99: percentile(responseMs, 0.99), max: responseMs.at(-1) ?? NaN },
    };
  })();
  finished.catch(() => {});
  return { localPort, finished };
}

/** "500×380 503×20" (ascending status), or "none". */
export function formatStatusCounts(byStatus) {
  const entries = Object.entries(byStatus).sort(([x], [y]) => Number(x) - Number(y));
  return entries.length === 0 ? "none" : entries.map(([status, n]) => `${status}×${n}`).join(" ");
}

// ---------------------------------------------------------------------------
// The server's per-tenant counters (SIGUSR2, logged at level info)
// ---------------------------------------------------------------------------

/**
 * The last counters line of each tenant in a `ksr run --tenants` log
 * ("tenant <id>: mode=sync messages=12 ... cpu-ms=3.5 ... replies: 1xx=0 2xx=12 ...",
 * host/core/tenant-routing.ts counterLines), as id -> { mode, numeric
 * counters by name, replies by class }.
 */
export function parseTenantCounters(output) {
  const counters = new Map();
  for (const line of output.split("\n")) {
    const match = /tenant ([A-Za-z0-9][A-Za-z0-9_.-]*): (mode=\S+ .*)$/.exec(line);
    if (!match) continue;
    const [fields, replies = ""] = match[2].split(" replies: ");
    const entry = { mode: undefined, replies: {} };
    for (const pair of fields.trim().split(/\s+/)) {
      const [name, value] = pair.split("=");
      if (value === undefined) continue;
      if (name === "mode") entry.mode = value;
      else entry[name] = Number(value);
    }
    for (const pair of replies.trim().split(/\s+/)) {
      const [name, value] = pair.split("=");
      if (value !== undefined) entry.replies[name] = Number(value);
    }
    counters.set(match[1], entry);
  }
  return counters;
}

// ---------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------

/**
 * A noisy phase against the alone phase: B's completed calls (same offered
 * load, so the ratio of successful calls is the throughput ratio) and its
 * p99 response time. sipp's response times have a 1 ms resolution, so a p99
 * of 0 ms alone is taken as 1 ms (the resolution) for the ratio.
 */
export function judgePhase(alone, phase, { minThroughputRatio = THROUGHPUT_MIN_RATIO, maxP99Ratio = P99_MAX_RATIO } = {}) {
  const throughputRatio = alone.successful > 0 ? phase.successful / alone.successful : NaN;
  const aloneP99 = Math.max(alone.p99Ms, 1);
  const p99Ratio = Number.isFinite(phase.p99Ms) && Number.isFinite(alone.p99Ms) ? phase.p99Ms / aloneP99 : NaN;
  const throughputPass = throughputRatio > minThroughputRatio;
  const p99Pass = p99Ratio < maxP99Ratio;
  return { throughputRatio, p99Ratio, throughputPass, p99Pass, pass: throughputPass && p99Pass };
}

// ---------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------


/** B's sipp calls through the server to a UAS on uasPort: calls at rate, bounded. */
function runBCalls({ serverPort, uasPort, calls, rate }) {
  return runCallsThroughUas({
    targetPort: serverPort,
    uasPort,
    calls,
    rate,
    recvTimeoutMs: RECV_TIMEOUT_MS,
    uac: { scenarioFile: UAC_SCENARIO, extraArgs: ["-key", "tenant_domain", B_DOMAIN] },
  });
}

/**
 * One phase on a fresh server: warm-up calls for B (not measured), then B's
 * measured calls with, for a noisy variant, A's sender running alongside
 * over the same window. Resolves with B's sipp result, A's sender report,
 * the server's CPU, UDP drops, restarts and per-tenant counters.
 */
export async function runNoisyPhase({ variant, rate, durationS, aRate, aCpuShare, aMode, isolation, sameShard = false, warmUpCalls }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-bench-noisy-"));
  let server;
  try {
    const uasPort = await findFreePort();
    const tenantsFile = writeNoisyTenants({ dir, variant, uasPort, aCpuShare, aMode, sameShard });
    const serverPort = await findFreePort();
    // "--tenants=<file>" in the script position: startKsr puts its `script`
    // right after `run`, and commander reads the joined form as the option.
    server = await startKsr({
      script: `--tenants=${tenantsFile}`,
      port: serverPort,
      // info: the per-tenant counters are logged at info on SIGUSR2.
      logLevel: "info",
      // The probe (sip:probe@127.0.0.1) selects no tenant and is answered 404.
      readiness: "options",
      extraArgs: ["--db", ":memory:", ...(isolation !== undefined ? ["--isolation", isolation] : []), ...(sameShard ? ["--shards", "1"] : [])],
    });
    const warmUp = await runBCalls({ serverPort, uasPort, calls: warmUpCalls, rate: Math.min(rate, 250) });
    await sleep(1000);
    const calls = rate * durationS;
    const noise =
      variant === "alone" ? null : await startNoiseSender({ targetPort: serverPort, rate: aRate, count: Math.max(1, Math.round(aRate * durationS)) });
    const cpuBefore = processTreeCpuSeconds(server.pid);
    const dropsBefore = udpReceiveBufferErrors();
    const started = performance.now();
    const b = await runBCalls({ serverPort, uasPort, calls, rate });
    const wallS = (performance.now() - started) / 1000;
    const cpuS = processTreeCpuSeconds(server.pid) - cpuBefore;
    const udpDrops = udpReceiveBufferErrors() - dropsBefore;
    const a = noise ? await noise.finished : null;
    const serverAlive = isAlive(server.pid);
    if (serverAlive) {
      process.kill(server.pid, "SIGUSR2");
      await sleep(300);
    }
    const output = server.output();
    return {
      variant,
      rate,
      calls,
      warmUp: { calls: warmUpCalls, successful: warmUp.successful },
      b,
      a,
      serverAlive,
      serverCpuShare: cpuS / wallS,
      serverCpuUsPerCall: (cpuS * 1e6) / calls,
      udpDrops,
      // A crashed server process (supervisor) or tenant worker process, restarted.
      restarts: (output.match(/process ended unexpectedly/g) ?? []).length,
      tenants: parseTenantCounters(output),
      errorLines: output.split("\n").filter((line) => /^\S+ (ERR|CRIT) /.test(line)),
    };
  } finally {
    if (server) await server.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (v, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "-");
const pct = (ratio) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)} %` : "-");

/** The median of the finite values (NaN when there is none). */
export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs the alone phase and then each variant at each rate, `repeat` times
 * interleaved (alone, loop, heap, alone, loop, heap, ...: a drift in the
 * machine's load hits every phase alike), printing (through print) every
 * run and then the verdict per variant on the medians over the runs.
 * Resolves with { passed, results }: passed is false when a variant
 * expected to pass failed (the crash variant fails the run only when
 * isolation is "process"; otherwise its failure is expected).
 */
export async function benchNoisyNeighbour({ rates, durationS, variants, aRate, aCpuShare, aMode, isolation, sameShard = false, repeat = 1, print = console.log }) {
  const isolationLabel = `${isolation ?? "the server's default"}${sameShard ? ", A and B in the same shard (--shards 1)" : ""}`;
  const aShare = `${aCpuShare === undefined ? "the tenants file's default cpuShare" : `cpuShare ${aCpuShare}`}${aMode === undefined ? "" : `, mode ${aMode}`}`;
  print(
    `\n## Noisy neighbour: tenant B (${B_DOMAIN}, stateful relay) next to tenant A (${A_DOMAIN}), isolation: ${isolationLabel}\n\n` +
      `B: sipp calls INVITE/100/180/200/ACK/BYE/200 through the relay to a sipp UAS, ${durationS} s per phase, a fresh server per phase ` +
      `(rt = INVITE sent → 200 received, 1 ms resolution). A: OPTIONS at ${aRate}/s over the same window, no retransmissions, ${aShare}; ` +
      `A's failed routes are answered ${A_ON_ERROR_STATUS}, requests refused over its CPU budget 503.\n` +
      variants.map((v) => `- ${v}: ${NOISY_DESCRIPTIONS[v]} (limits ${JSON.stringify(NOISY_TENANTS[v])})`).join("\n"),
  );
  let passed = true;
  const results = [];
  for (const rate of rates) {
    const phases = [];
    for (let run = 1; run <= repeat; run++) {
      for (const variant of ["alone", ...variants]) {
        const phase = await runNoisyPhase({ variant, rate, durationS, aRate, aCpuShare, aMode, isolation, sameShard, warmUpCalls: Math.min(rate, 250) * 2 });
        phases.push({ ...phase, run });
        await sleep(1000);
      }
    }
    print(`\n### B at ${rate} calls/s (${rate * durationS} calls per phase${repeat > 1 ? `, ${repeat} runs of each phase, interleaved` : ""})\n`);
    print(
      "| phase | B ok / calls | failed | retrans | rt p50 ms | rt p99 ms | rt max ms | server CPU % of a core | µs/call | UDP drops | " +
        "process restarts | A replies | A unanswered / sent | A rt p50/p99 ms | A counters (server) |",
    );
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |");
    for (const p of phases) {
      const counters = p.tenants.get("a");
      const aCounters = counters
        ? `mode=${counters.mode} timeouts=${fmt(counters.timeouts)} oom=${fmt(counters["oom-restarts"])} over-budget=${fmt(counters["over-budget"])} cpu-ms=${fmt(counters["cpu-ms"])}` +
          (p.restarts > 0 ? " (since the last restart)" : "")
        : p.serverAlive
          ? "-"
          : "server gone";
      print(
        `| ${p.variant}${repeat > 1 ? ` #${p.run}` : ""} | ${p.b.successful} / ${p.calls} | ${p.b.failed} | ${p.b.retransmissions} | ` +
          `${fmt(p.b.rtMs.p50)} | ${fmt(p.b.rtMs.p99)} | ${fmt(p.b.rtMs.max)} | ` +
          `${fmt(p.serverCpuShare * 100)} | ${fmt(p.serverCpuUsPerCall, 1)} | ${fmt(p.udpDrops)} | ${p.restarts} | ` +
          `${p.a ? formatStatusCounts(p.a.byStatus) : "-"} | ${p.a ? `${p.a.unanswered} / ${p.a.sent}` : "-"} | ` +
          `${p.a ? `${fmt(p.a.responseMs.p50)}/${fmt(p.a.responseMs.p99)}` : "-"} | ${p.variant === "alone" ? "-" : aCounters} |`,
      );
      if (p.b.keptWorkDir) print(`\nsipp's files for B in ${p.variant}${repeat > 1 ? ` #${p.run}` : ""}: ${p.b.keptWorkDir}\n`);
    }
    const summaryOf = (variant) => {
      const runs = phases.filter((p) => p.variant === variant);
      return { successful: median(runs.map((p) => p.b.successful)), p99Ms: median(runs.map((p) => p.b.rtMs.p99)) };
    };
    const alone = summaryOf("alone");
    // A baseline that itself lost calls would make every ratio meaningless.
    const aloneFailures = phases.filter((p) => p.variant === "alone").reduce((n, p) => n + (p.calls - p.b.successful), 0);
    if (aloneFailures > 0) {
      passed = false;
      print(`\nNo verdict at ${rate} calls/s: B alone did not complete ${aloneFailures} of its calls, so it is no baseline (see its sipp files above).`);
    }
    print(`\nVerdict${repeat > 1 ? ` (medians of ${repeat} runs)` : ""}: B's throughput vs alone > ${THROUGHPUT_MIN_RATIO * 100} % and p99 vs alone < ${P99_MAX_RATIO}×\n`);
    print("| phase | B ok | rt p99 ms | throughput vs alone | p99 vs alone | verdict |");
    print("| --- | ---: | ---: | ---: | ---: | --- |");
    print(`| alone | ${fmt(alone.successful)} | ${fmt(alone.p99Ms)} | - | - | baseline |`);
    for (const variant of variants) {
      const summary = summaryOf(variant);
      const verdict = judgePhase(alone, summary);
      // In one process with A (in-process, or one shard) B loses its calls in flight when A aborts V8.
      const expectedToFail = variant === "crash" && (isolation === "in-process" || sameShard);
      if (!verdict.pass && !expectedToFail) passed = false;
      const verdictText =
        (aloneFailures > 0 ? "no verdict (baseline failed calls); would be " : "") +
        `${verdict.pass ? "PASS" : "FAIL"}${verdict.throughputPass ? "" : " (throughput)"}${verdict.p99Pass ? "" : " (p99)"}` +
        (expectedToFail ? ` — expected to fail: A aborts the process B runs in${sameShard ? " (once; A is then quarantined)" : ""}` : "");
      print(
        `| ${variant} | ${fmt(summary.successful)} | ${fmt(summary.p99Ms)} | ${pct(verdict.throughputRatio)} | ${fmt(verdict.p99Ratio, 2)}× | ${verdictText} |`,
      );
      results.push({ rate, variant, summary, verdict, expectedToFail, runs: phases.filter((p) => p.variant === variant) });
    }
    results.push({ rate, variant: "alone", summary: alone, verdict: null, expectedToFail: false, runs: phases.filter((p) => p.variant === "alone") });
    print(
      "\n(Same offered load in every phase, so throughput = successful calls; a p99 of 0 ms alone counts as 1 ms, sipp's resolution. " +
        "The p99 of one short run moves by tens of ms on a busy 2-core machine: use --repeat and a longer --duration before reading a ratio.)",
    );
  }
  return { passed, results };
}
