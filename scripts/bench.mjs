// `npm run bench`: load benchmark of the SIP server plus the in-process
// micro-benchmarks.
//
//   npm run bench [-- --scenario options|stateful-relay] [--rates 2000,4000,8000]
//                 [--duration 10] [--transport udp|tcp] [--port 5060]
//                 [--no-micro] [--no-load] [--kamailio]
//
// 1. Builds dist/ if needed and starts `ksr run` on 127.0.0.1 (port 5060 when
//    free, otherwise a free port) with the scenario's script:
//    - options (default): bench/scripts/options-200.js answers every request
//      200; the load is sipp OPTIONS, one transaction per call.
//    - stateful-relay: bench/scripts/stateful-relay.js relays statefully
//      (record-routing, t_relay) to sipp's built-in UAS on 127.0.0.1:5080;
//      the load is sipp's built-in UAC, INVITE/100/180/200/ACK/BYE/200 per
//      call, as ../shared/bench/run-load.sh runs it (-sn uac
//      -default_behaviors bye,pingreply -d 0, -recv_timeout 10 s). UDP only,
//      the transport of the Kamailio reference.
// 2. Runs the load at increasing rates, each for a bounded duration, until a
//    rate has a failure (a failed call, or fewer completed calls than
//    started) or a backlog (p99 response time over 1 s). Reports the highest
//    rate with zero failures, the highest "clean" rate (zero failures, zero
//    retransmissions, i.e. no request over UDP waited 500 ms for its answer,
//    and a p99 response time within --max-p99-ms, which is what shows a
//    backlog over TCP, where sipp does not retransmit), sipp's response times
//    (OPTIONS sent → 200, or INVITE sent → 200) and the server's CPU (% of one
//    core, and µs per call).
// 3. Runs `vitest bench --run bench/` (bench/*.bench.ts: parser, route call).
//
// --kamailio runs the same load against Kamailio 5.6 + app_jsdt running the
// same logic (stateless-reply.js or stateful-relay.js), through the shared
// Kamailio harness ($KAMAILIO_BENCH_DIR, default ../shared/bench next to the
// repository), right after the ksr ladder. It is only for comparison on a
// developer machine with kamailio installed.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  REPO_ROOT,
  ensureBuilt,
  findFreePort,
  probeOptions,
  processTreeCpuSeconds,
  isListening,
  processCpuSeconds,
  runSipp,
  sippVersion,
  startKsr,
  startSipp,
  udpReceiveBufferErrors,
} from "../bench/lib/sipp.mjs";

const { values: opts } = parseArgs({
  options: {
    scenario: { type: "string", default: "options" },
    rates: { type: "string" },
    duration: { type: "string", default: "10" },
    transport: { type: "string", default: "udp" },
    port: { type: "string" },
    "no-micro": { type: "boolean", default: false },
    "no-load": { type: "boolean", default: false },
    kamailio: { type: "boolean", default: false },
    "max-p99-ms": { type: "string", default: "100" },
  },
});

const SCENARIO = opts.scenario;
const DEFAULT_RATES = {
  options: "1000,2000,4000,6000,8000,10000,12000,14000,16000,20000",
  "stateful-relay": "250,500,750,1000,1250,1500,2000,2500,3000",
};
if (!(SCENARIO in DEFAULT_RATES)) throw new Error(`--scenario must be one of ${Object.keys(DEFAULT_RATES).join(", ")}`);
const RATES = (opts.rates ?? DEFAULT_RATES[SCENARIO]).split(",").map(Number);
const DURATION_S = Number(opts.duration);
const TRANSPORT = opts.transport;
const MAX_CLEAN_P99_MS = Number(opts["max-p99-ms"]);
// Past this p99 the server (or sipp) is clearly saturated; higher rates only pile up.
const SATURATED_P99_MS = 1000;
if (RATES.some((r) => !(Number.isInteger(r) && r > 0))) throw new Error("--rates: comma-separated positive integers");
if (!(DURATION_S > 0 && DURATION_S <= 60)) throw new Error("--duration must be in (0, 60] seconds");
if (TRANSPORT !== "udp" && TRANSPORT !== "tcp") throw new Error("--transport must be udp or tcp");
if (SCENARIO === "stateful-relay" && TRANSPORT !== "udp") throw new Error("--scenario stateful-relay runs over UDP only");

const OPTIONS_SCENARIO = path.join(REPO_ROOT, "test", "interop", "sipp", "options.xml");
const BENCH_SCRIPTS = {
  options: path.join(REPO_ROOT, "bench", "scripts", "options-200.js"),
  "stateful-relay": path.join(REPO_ROOT, "bench", "scripts", "stateful-relay.js"),
};
/** The shared harness's name for each scenario's Kamailio script. */
const KAMAILIO_SCENARIOS = { options: "stateless-reply", "stateful-relay": "stateful-relay" };
/** Where both relays send calls: the port of the UAS in ../shared/bench/js/stateful-relay.js. */
const RELAY_UAS_PORT = 5080;
/** run-load.sh's -recv_timeout for the relay: a call waiting longer for a message fails. */
const RELAY_RECV_TIMEOUT_MS = 10_000;
const PAUSE_BETWEEN_RATES_MS = 2000;

const fmt = (v, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "-");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One kind of sipp load against a server on targetPort: describe is the
 * table heading, run(calls, rate) one bounded run resolving with runSipp's
 * result (plus uasCpuShare for the relay), warmUp the unreported first run.
 */
function optionsLoad(targetPort, transport) {
  return {
    describe: `sipp OPTIONS over ${transport.toUpperCase()}`,
    unit: "req/s",
    warmUp: { calls: 2000, rate: 1000 },
    run: (calls, rate) => runSipp({ scenarioFile: OPTIONS_SCENARIO, targetPort, transport, calls, rate }),
  };
}

function statefulRelayLoad(targetPort) {
  return {
    describe:
      `sipp -sn uac → server → sipp -sn uas on 127.0.0.1:${RELAY_UAS_PORT} over UDP ` +
      "(INVITE/100/180/200/ACK/BYE/200 per call; rt = INVITE sent → 200 received)",
    unit: "calls/s",
    warmUp: { calls: 1000, rate: 250 },
    async run(calls, rate) {
      if (isListening("udp", RELAY_UAS_PORT)) {
        throw new Error(`udp 127.0.0.1:${RELAY_UAS_PORT} is taken: the relay's UAS must listen there`);
      }
      // A fresh UAS per run, as run-load.sh does, without -m (a late
      // retransmitted BYE would count as a call and end it early); it is
      // stopped by PID once the UAC is done.
      const uas = await startSipp({
        builtinScenario: "uas",
        localPort: RELAY_UAS_PORT,
        timeoutS: Math.ceil(calls / rate) + 40,
        recvTimeoutMs: RELAY_RECV_TIMEOUT_MS,
      });
      for (let i = 0; i < 50 && !isListening("udp", RELAY_UAS_PORT); i++) await sleep(100);
      const uasCpuBefore = processCpuSeconds(uas.pid);
      const started = performance.now();
      try {
        const result = await runSipp({
          builtinScenario: "uac",
          targetPort,
          transport: "udp",
          calls,
          rate,
          recvTimeoutMs: RELAY_RECV_TIMEOUT_MS,
          // A 180 forwarded after its 200 (Kamailio's workers can do that)
          // is ignored instead of aborting the call; anything else
          // unexpected still ends as a failed call (timeout).
          extraArgs: ["-d", "0", "-default_behaviors", "bye,pingreply"],
        });
        let uasCpuShare = NaN;
        try {
          uasCpuShare = (processCpuSeconds(uas.pid) - uasCpuBefore) / ((performance.now() - started) / 1000);
        } catch {
          // the UAS already exited
        }
        return { ...result, uasCpuShare };
      } finally {
        await uas.stop().catch(() => {});
      }
    },
  };
}

/**
 * Runs the rate ladder of load against the server whose root process is
 * serverPid. Stops at the first rate with a failure or a saturated p99.
 */
async function rateLadder(label, serverPid, load) {
  console.log(`\n## ${label}: ${load.describe}, ${DURATION_S} s per rate\n`);
  console.log(
    `| ${load.unit} | calls | ok | failed | retrans | UDP drops | achieved/s | rt mean ms | rt p50 | rt p99 | rt max | server CPU % of a core | server CPU µs/call | UAS CPU % | sipp exit |`,
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  // Warm-up, not reported: JIT compilation in the server and its isolate, and
  // first-use allocations, would otherwise land in the first rate's numbers.
  const warmUp = await load.run(load.warmUp.calls, load.warmUp.rate);
  if (warmUp.exitCode !== 0) {
    console.log(`(warm-up: ${warmUp.successful}/${load.warmUp.calls} ok, ${warmUp.retransmissions} retransmissions)\n`);
  }
  await sleep(PAUSE_BETWEEN_RATES_MS);
  const rows = [];
  for (const rate of RATES) {
    const calls = rate * DURATION_S;
    const cpuBefore = processTreeCpuSeconds(serverPid);
    const dropsBefore = udpReceiveBufferErrors();
    const started = performance.now();
    const result = await load.run(calls, rate);
    const wallS = (performance.now() - started) / 1000;
    const cpuS = processTreeCpuSeconds(serverPid) - cpuBefore;
    const udpDrops = udpReceiveBufferErrors() - dropsBefore;
    const noFailure = result.exitCode === 0 && result.failed === 0 && result.successful === calls;
    const clean = noFailure && result.retransmissions === 0 && result.rtMs.p99 <= MAX_CLEAN_P99_MS;
    const row = { rate, calls, noFailure, clean, udpDrops, result, cpuShare: cpuS / wallS, cpuUsPerRequest: (cpuS * 1e6) / calls };
    rows.push(row);
    console.log(
      `| ${rate} | ${calls} | ${result.successful} | ${result.failed} | ${result.retransmissions} | ${fmt(udpDrops)} | ${fmt(result.achievedRate)} | ` +
        `${fmt(result.rtMs.mean, 2)} | ${fmt(result.rtMs.p50)} | ${fmt(result.rtMs.p99)} | ${fmt(result.rtMs.max)} | ` +
        `${fmt(row.cpuShare * 100)} | ${fmt(row.cpuUsPerRequest, 1)} | ${fmt((result.uasCpuShare ?? NaN) * 100)} | ` +
        `${result.exitCode}${noFailure ? "" : " (failures)"}${clean ? "" : " not clean"} |`,
    );
    if (!isAlive(serverPid)) {
      console.log(`\nThe server (pid ${serverPid}) died during the run at ${rate}/s.`);
      break;
    }
    if (!noFailure || result.rtMs.p99 > SATURATED_P99_MS) {
      if (result.keptWorkDir) console.log(`\nsipp's files for ${rate}/s are in ${result.keptWorkDir}`);
      break;
    }
    await sleep(PAUSE_BETWEEN_RATES_MS);
  }
  const summarize = (row, what) =>
    row
      ? `**${label}: ${what} ${row.rate} ${load.unit}** (${row.calls} calls, ${row.result.retransmissions} retransmissions), ` +
        `rt p50/p99/max ${fmt(row.result.rtMs.p50)}/${fmt(row.result.rtMs.p99)}/${fmt(row.result.rtMs.max)} ms, ` +
        `server CPU ${fmt(row.cpuShare * 100)} % of a core (${fmt(row.cpuUsPerRequest, 1)} µs per call)` +
        (row === rows.at(-1) && rows.length === RATES.length ? " — the top of the ladder, not a limit" : "")
      : `**${label}: ${what}: none** (lowest tried: ${RATES[0]}/s)`;
  // Both are taken from the ladder's prefix: a rate counts only if every lower rate also passed.
  const firstFailure = rows.findIndex((r) => !r.noFailure);
  const passed = firstFailure < 0 ? rows : rows.slice(0, firstFailure);
  const firstUnclean = passed.findIndex((r) => !r.clean);
  const best = passed.at(-1);
  const bestClean = (firstUnclean < 0 ? passed : passed.slice(0, firstUnclean)).at(-1);
  console.log(`\n${summarize(best, "highest rate with zero failures")}`);
  console.log(`\n${summarize(bestClean, `highest clean rate (zero failures and retransmissions, p99 ≤ ${MAX_CLEAN_P99_MS} ms)`)}`);
  return { label, rows, best, bestClean };
}

const BENCH_SCRIPT = BENCH_SCRIPTS[SCENARIO];
// The relay forwards an OPTIONS probe to the UAS instead of answering it.
const KSR_READINESS = SCENARIO === "options" ? "options" : "sockets";
const makeLoad = (targetPort) => (SCENARIO === "options" ? optionsLoad(targetPort, TRANSPORT) : statefulRelayLoad(targetPort));

async function benchKsr() {
  const built = ensureBuilt();
  if (built) console.log("built dist/ksr.js");
  let port = opts.port ? Number(opts.port) : 5060;
  const taken = isListening("udp", port) || isListening("tcp", port) || (await probeOptions(port, 200)) !== null;
  if (!opts.port && taken) port = await findFreePort();
  let server;
  try {
    server = await startKsr({ script: BENCH_SCRIPT, port, logLevel: "warn", readiness: KSR_READINESS });
  } catch (err) {
    if (opts.port) throw err;
    // 5060 may have been taken meanwhile.
    server = await startKsr({ script: BENCH_SCRIPT, port: await findFreePort(), logLevel: "warn", readiness: KSR_READINESS });
  }
  try {
    console.log(`ksr run ${path.relative(REPO_ROOT, BENCH_SCRIPT)} on 127.0.0.1:${server.port} (pid ${server.pid})`);
    return await rateLadder(`ksr (${path.basename(BENCH_SCRIPT)})`, server.pid, makeLoad(server.port));
  } finally {
    const exit = await server.stop();
    if (!exit || exit.code !== 0) console.log(`ksr exited with ${JSON.stringify(exit)}:\n${server.output().slice(-2000)}`);
  }
}

async function benchKamailio() {
  const harness = path.resolve(process.env.KAMAILIO_BENCH_DIR ?? path.join(REPO_ROOT, "..", "shared", "bench"));
  if (spawnSync("kamailio", ["-v"], { timeout: 10_000 }).error) {
    console.log("\n--kamailio: kamailio is not installed; skipped");
    return null;
  }
  if (!fs.existsSync(path.join(harness, "start-kamailio.sh"))) {
    console.log(`\n--kamailio: no start-kamailio.sh in ${harness} (set KAMAILIO_BENCH_DIR); skipped`);
    return null;
  }
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-kamailio-"));
  const env = { ...process.env, BENCH_RUN: runDir, BENCH_RESULTS: runDir };
  const kamailioScenario = KAMAILIO_SCENARIOS[SCENARIO];
  const start = spawnSync(path.join(harness, "start-kamailio.sh"), [kamailioScenario], { env, encoding: "utf8", timeout: 30_000 });
  if (start.status !== 0) {
    console.log(`\n--kamailio: start-kamailio.sh failed:\n${start.stdout}${start.stderr}`);
    return null;
  }
  const pid = Number(fs.readFileSync(path.join(runDir, "kamailio.pid"), "utf8").trim());
  try {
    // The shared configuration listens on UDP 127.0.0.1:5060 only.
    const load = SCENARIO === "options" ? optionsLoad(5060, "udp") : statefulRelayLoad(5060);
    return await rateLadder(`kamailio 5.6 app_jsdt (${kamailioScenario}.js)`, pid, load);
  } finally {
    spawnSync(path.join(harness, "stop-kamailio.sh"), [], { env, encoding: "utf8", timeout: 30_000 });
  }
}

function runMicroBenchmarks() {
  const benchFiles = fs.readdirSync(path.join(REPO_ROOT, "bench")).filter((f) => /\.bench\.[cm]?[jt]s$/.test(f));
  if (benchFiles.length === 0) {
    console.log("\nno bench/*.bench.ts files; micro-benchmarks skipped");
    return Promise.resolve(0);
  }
  console.log(`\n## In-process micro-benchmarks (${benchFiles.join(", ")})\n`);
  const vitest = path.join(REPO_ROOT, "node_modules", "vitest", "vitest.mjs");
  const child = spawn(process.execPath, [vitest, "bench", "--run", "bench/"], { cwd: REPO_ROOT, stdio: "inherit" });
  return new Promise((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
}

console.log(
  `# ksr benchmark — ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "unknown"}), node ${process.version}, ` +
    `${sippVersion() ?? "sipp not installed"}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
);

let failed = false;
if (!opts["no-load"]) {
  if (sippVersion() === null) {
    console.log("sipp is not installed (Debian/Ubuntu: apt-get install -y sip-tester); load benchmark skipped");
    failed = true;
  } else {
    const ksr = await benchKsr();
    if (!ksr.best) failed = true;
    if (opts.kamailio) await benchKamailio();
  }
}
if (!opts["no-micro"]) {
  const code = await runMicroBenchmarks();
  if (code !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
