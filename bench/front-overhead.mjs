// What the front of worker processes costs: the stateful relay
// (bench/scripts/stateful-relay.js, sipp UAC → ksr → sipp UAS on
// 127.0.0.1:5080) served three ways, one after the other, at one rate:
//   one process            `ksr run relay.js`
//   one tenant worker      `ksr run --tenants` (a tenants file of that one script)
//   a pool of workers      `ksr run relay.js --workers N`
// and the server CPU per call of each process of the server (depth 1: the
// server or front; depth 2: its workers; the supervisor, idle, left out).
//
//   flock /tmp/ksr-bench.lock node bench/front-overhead.mjs [--rate 300] [--seconds 6] [--workers 2]
//
// Bounded: a warm-up of 1 000 calls at 250/s, then rate × seconds calls, per way.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT, ensureBuilt, findFreePort, isListening, processTreeCpuByProcess, runCallsThroughUas, startKsr } from "./lib/sipp.mjs";

const { values: opts } = parseArgs({
  options: { rate: { type: "string", default: "300" }, seconds: { type: "string", default: "6" }, workers: { type: "string", default: "2" } },
});
const RATE = Number(opts.rate);
const SECONDS = Number(opts.seconds);
const WORKERS = Number(opts.workers);
if (!(Number.isInteger(RATE) && RATE > 0 && RATE <= 5000)) throw new Error("--rate must be an integer in [1, 5000]");
if (!(SECONDS > 0 && SECONDS <= 60)) throw new Error("--seconds must be in (0, 60]");
if (!(Number.isInteger(WORKERS) && WORKERS >= 2 && WORKERS <= 64)) throw new Error("--workers must be an integer in [2, 64]");
const UAS_PORT = 5080;
if (isListening("udp", UAS_PORT)) throw new Error(`udp 127.0.0.1:${UAS_PORT} is taken: the relay's UAS must listen there`);

const script = path.join(REPO_ROOT, "bench", "scripts", "stateful-relay.js");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-front-overhead-"));
const tenants = path.join(dir, "tenants.yaml");
fs.writeFileSync(tenants, `default: relay\ntenants:\n  - id: relay\n    script: ${JSON.stringify(script)}\n    egress: { allow: [127.0.0.0/8] }\n`);
const ways = [
  ["one process", script, []],
  ["one tenant worker (--tenants)", `--tenants=${tenants}`, []],
  [`--workers ${WORKERS}`, script, ["--workers", String(WORKERS), "--db", path.join(dir, "ksr.sqlite")]],
];

if (ensureBuilt()) console.log("built dist/ksr.js");
console.log(`| ${RATE} calls/s for ${SECONDS} s | calls ok | p99 ms | server CPU µs per call | by process (server or front, then workers) |`);
console.log("|---|---:|---:|---:|---|");
try {
  for (const [name, first, extraArgs] of ways) {
    const port = await findFreePort();
    const server = await startKsr({ script: first, port, logLevel: "warn", readiness: "sockets", extraArgs });
    try {
      await runCallsThroughUas({ targetPort: port, uasPort: UAS_PORT, calls: 1000, rate: 250, recvTimeoutMs: 10_000 });
      const calls = RATE * SECONDS;
      const before = processTreeCpuByProcess(server.pid);
      const result = await runCallsThroughUas({ targetPort: port, uasPort: UAS_PORT, calls, rate: RATE, recvTimeoutMs: 10_000 });
      const after = processTreeCpuByProcess(server.pid);
      const perCall = (depth) =>
        [...after].filter(([, p]) => p.depth === depth).map(([pid, p]) => ((p.seconds - (before.get(pid)?.seconds ?? 0)) * 1e6) / calls);
      const server1 = perCall(1);
      const workers = name === "one process" ? [] : perCall(2);
      const total = [...server1, ...workers].reduce((a, b) => a + b, 0);
      const parts = [...server1, ...workers].map((v) => v.toFixed(0)).join(" + ");
      console.log(`| ${name} | ${result.successful}/${calls} | ${result.rtMs.p99} | ${total.toFixed(0)} | ${parts} |`);
    } finally {
      await server.stop();
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
