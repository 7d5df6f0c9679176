// Profile the server under sipp load: one `ksr run` server process (no
// supervisor) with V8's CPU profiler and GC tracing. Writes the .cpuprofile
// and the GC trace to --out (default /tmp/ksr-profile) and prints the
// hottest functions by self time and by inclusive time (a function counted
// once per sample however deep it recurs), and the GC pause totals.
//
//   node bench/profile-relay.mjs [--scenario relay|basic-register|basic-call] [--rate 500] [--duration 10]
//                                [--script bench/scripts/stateful-relay.js] [--out dir] [--location memory|db]
//                                [--no-cpu-prof] [--heap-snapshot [--snapshot-delay-ms 6000]]
//
// --scenario relay (default): --script relaying to a sipp UAS on 5080, a
// sipp UAC at --rate calls/s for --duration s.
// --scenario basic-register / basic-call: Kamailio's example script
// kamailio-basic-kemi-jsdt.js with two subscribers in a temporary SQLite
// file, registrations kept as --location says (default memory, as the
// bench): REGISTER/401/REGISTER/200 per call from u0001 (the bench's
// basic-register), or u0001 calling u0002 registered from the sipp callee
// on 5080 (INVITE/407/ACK/INVITE/…/BYE, the bench's basic-call).
//
// --heap-snapshot writes a V8 heap snapshot into --out right after the load,
// while the transactions of the run are still held by their timers.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import os from "node:os";
import { spawnSync } from "node:child_process";
import { REPO_ROOT, ensureBuilt, findFreePort, probeOptions, runCallsThroughUas, runSipp, processCpuSeconds } from "./lib/sipp.mjs";
import { obtainBasicKemiScript } from "./lib/kamailio-example.mjs";

const { values: opts } = parseArgs({
  options: {
    scenario: { type: "string", default: "relay" },
    location: { type: "string", default: "memory" },
    rate: { type: "string", default: "500" },
    duration: { type: "string", default: "10" },
    script: { type: "string", default: "bench/scripts/stateful-relay.js" },
    out: { type: "string", default: "/tmp/ksr-profile" },
    port: { type: "string", default: "5060" },
    "no-cpu-prof": { type: "boolean", default: false },
    "heap-snapshot": { type: "boolean", default: false },
    "snapshot-delay-ms": { type: "string", default: "0" },
    "node-args": { type: "string", default: "" },
  },
});
const rate = Number(opts.rate);
const durationS = Number(opts.duration);
const port = Number(opts.port);
if (!(rate > 0 && rate <= 5000) || !(durationS > 0 && durationS <= 120)) throw new Error("--rate in (0, 5000], --duration in (0, 120]");
const SCENARIOS = ["relay", "basic-register", "basic-call"];
if (!SCENARIOS.includes(opts.scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(", ")}`);
if (opts.location !== "memory" && opts.location !== "db") throw new Error("--location must be memory or db");
fs.rmSync(opts.out, { recursive: true, force: true });
fs.mkdirSync(opts.out, { recursive: true });
ensureBuilt();

const BASIC_SCENARIOS = path.join(REPO_ROOT, "test", "interop", "basic");
/** The bench's subscribers (scripts/bench.mjs): the digest realm is the From host, the server's address. */
const SUBSCRIBERS = ["u0001", "u0002"].map((user) => ({ user, domain: "127.0.0.1", password: `pw-${user}` }));
const credentials = (s) => ["-s", s.user, "-au", s.user, "-ap", s.password];
const isBasic = opts.scenario !== "relay";
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-profile-basic-"));
let script = opts.script;
const serverOptions = [];
if (isBasic) {
  script = obtainBasicKemiScript().script;
  const database = path.join(workDir, "ksr.sqlite");
  for (const { user, domain, password } of SUBSCRIBERS) {
    const add = spawnSync(process.execPath, [path.join(REPO_ROOT, "bin", "ksr.js"), "subscriber", "add", `${user}@${domain}`, password, "--db", database], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 30_000,
    });
    if (add.status !== 0) throw new Error(`ksr subscriber add failed:\n${add.stdout}${add.stderr}`);
  }
  serverOptions.push("--db", database, "--location", opts.location);
}

const nodeArgs = [...opts["node-args"].split(" ").filter(Boolean), "--trace-gc", ...(opts["heap-snapshot"] ? ["--heapsnapshot-signal=SIGTTIN", `--diagnostic-dir=${opts.out}`] : []), ...(opts["no-cpu-prof"] ? [] : ["--cpu-prof", `--cpu-prof-dir=${opts.out}`])];
const server = spawn(
  process.execPath,
  [...nodeArgs, path.join(REPO_ROOT, "bin", "ksr.js"), "run", script, "--listen", `udp:127.0.0.1:${port}`, "--log-level", "warn", ...serverOptions],
  { cwd: REPO_ROOT, env: { ...process.env, KSR_SERVER_PROCESS: "1" }, stdio: ["ignore", "pipe", "pipe"] },
);
const gcLog = fs.createWriteStream(path.join(opts.out, "gc.log"));
server.stdout.pipe(gcLog);
let stderr = "";
server.stderr.on("data", (d) => (stderr += d));
for (let i = 0; i < 100 && !(await probeOptions(port, 200)); i++) await new Promise((r) => setTimeout(r, 100));

/** One bounded run of the scenario's load at `rate` for `calls` calls. */
async function runLoad(calls, loadRate, localPort) {
  if (opts.scenario === "relay") return runCallsThroughUas({ targetPort: port, uasPort: 5080, calls, rate: loadRate, recvTimeoutMs: 10_000 });
  if (opts.scenario === "basic-register") {
    return runSipp({ scenarioFile: path.join(BASIC_SCENARIOS, "load-register.xml"), targetPort: port, localPort, calls, rate: loadRate, extraArgs: credentials(SUBSCRIBERS[0]) });
  }
  const [caller, callee] = SUBSCRIBERS;
  return runCallsThroughUas({
    targetPort: port,
    uasPort: 5080,
    calls,
    rate: loadRate,
    recvTimeoutMs: 10_000,
    uas: { scenarioFile: path.join(BASIC_SCENARIOS, "callee.xml") },
    uac: { scenarioFile: path.join(BASIC_SCENARIOS, "load-caller.xml"), extraArgs: ["-s", callee.user, "-key", "caller", caller.user, "-au", caller.user, "-ap", caller.password] },
  });
}
const registerPort = opts.scenario === "basic-register" ? await findFreePort() : undefined;
if (opts.scenario === "basic-call") {
  for (const [subscriber, localPort] of [[SUBSCRIBERS[1], 5080], [SUBSCRIBERS[0], undefined]]) {
    const registration = await runSipp({ scenarioFile: path.join(BASIC_SCENARIOS, "register.xml"), targetPort: port, localPort, calls: 1, rate: 1, extraArgs: credentials(subscriber) });
    if (registration.exitCode !== 0) throw new Error(`registering ${subscriber.user} failed:\n${registration.errors}`);
  }
}
const cpuBefore = processCpuSeconds(server.pid);
const result = await runLoad(rate * durationS, rate, registerPort);
const cpu = processCpuSeconds(server.pid) - cpuBefore;
fs.rmSync(workDir, { recursive: true, force: true });
if (opts["heap-snapshot"]) {
  // Right after the load (plus --snapshot-delay-ms): every transaction of the last 32 s (timers D/J) is still held.
  await new Promise((r) => setTimeout(r, Number(opts["snapshot-delay-ms"])));
  server.kill("SIGTTIN");
  for (let i = 0; i < 600 && !fs.readdirSync(opts.out).some((f) => f.endsWith(".heapsnapshot")); i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 3000));
}
server.kill("SIGTERM");
await new Promise((r) => server.on("exit", r));
gcLog.end();
console.log(`calls ok=${result.successful} failed=${result.failed} retrans=${result.retransmissions} rt p50/p99/max ms ${result.rtMs.p50}/${result.rtMs.p99}/${result.rtMs.max}`);
console.log(`server CPU ${(cpu * 1e6 / (rate * durationS)).toFixed(0)} µs/call`);
if (stderr.trim()) console.log("server stderr (first 2000 chars):\n" + stderr.slice(0, 2000));

// GC pauses from --trace-gc lines: "[pid:addr] 1234 ms: Scavenge 12.3 (..) -> .. , 1.2 / 0.0 ms ..."
const gcText = fs.readFileSync(path.join(opts.out, "gc.log"), "utf8");
const pauses = { Scavenge: [], "Mark-Compact": [], "Minor Mark-Compact": [] };
for (const line of gcText.split("\n")) {
  // Node 24 writes "…MB, pooled: 42 MB, 42.56 / 0.00 ms"; older versions have no "pooled" field.
  const m = /ms: (Scavenge|Mark-Compact|Minor Mark-Compact)[^,]*,(?: pooled: [\d.]+ MB,)? ([\d.]+) \/ ([\d.]+) ms/.exec(line);
  if (m) pauses[m[1]].push(Number(m[2]));
}
for (const [kind, list] of Object.entries(pauses)) {
  if (list.length === 0) continue;
  list.sort((a, b) => a - b);
  const sum = list.reduce((a, b) => a + b, 0);
  console.log(`GC ${kind}: ${list.length} pauses, total ${sum.toFixed(0)} ms, max ${list.at(-1).toFixed(1)} ms, p99 ${list[Math.floor(list.length * 0.99)].toFixed(1)} ms`);
}
// Live set after each full collection and the heap it had grown to, leaving out the ones the heap snapshot forces.
const fulls = [];
for (const line of gcText.split("\n")) {
  const m = /ms: Mark-Compact(?: \(reduce\))? ([\d.]+) \([\d.]+\) -> ([\d.]+) \(/.exec(line);
  if (m && !/heap profiler/.test(line)) fulls.push({ before: Number(m[1]), after: Number(m[2]) });
}
if (fulls.length > 0) {
  const after = fulls.map((f) => f.after);
  const before = fulls.map((f) => f.before);
  console.log(`full collections: ${fulls.length}, live set after them ${Math.min(...after).toFixed(0)}-${Math.max(...after).toFixed(0)} MB, heap before them ${Math.min(...before).toFixed(0)}-${Math.max(...before).toFixed(0)} MB`);
}
const heapLines = gcText.split("\n").filter((l) => /Mark-Compact/.test(l)).slice(-3);
if (heapLines.length) console.log("last Mark-Compacts:\n" + heapLines.join("\n"));

if (!opts["no-cpu-prof"]) {
  const file = fs.readdirSync(opts.out).find((f) => f.endsWith(".cpuprofile"));
  const prof = JSON.parse(fs.readFileSync(path.join(opts.out, file), "utf8"));
  const self = new Map();
  const dt = prof.timeDeltas;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const hits = new Map();
  for (let i = 0; i < prof.samples.length; i++) hits.set(prof.samples[i], (hits.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0));
  let total = 0;
  for (const [id, us] of hits) {
    const key = keyOfNode(byId.get(id));
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 40);
  console.log(`\nCPU profile ${file}: total ${(total / 1e6).toFixed(2)} s sampled; top self time:`);
  for (const [k, us] of top) console.log(`${((us / total) * 100).toFixed(1).padStart(5)} %  ${k}`);

  // Inclusive time: each sample charged once to every distinct function on its stack.
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  for (const [id, us] of hits) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const key = keyOfNode(byId.get(at));
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const topInclusive = [...inclusive].filter(([k]) => !/^\((root|program|idle)\)/.test(k)).sort((a, b) => b[1] - a[1]).slice(0, 50);
  console.log(`\ntop inclusive time:`);
  for (const [k, us] of topInclusive) console.log(`${((us / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
}

function keyOfNode(n) {
  const cf = n.callFrame;
  return `${cf.functionName || "(anon)"} ${cf.url.replace(/^.*\/(dist|node_modules)\//, "$1/")}:${cf.lineNumber + 1}`;
}
