// `npm run bench`: load benchmark of the SIP server plus the in-process
// micro-benchmarks.
//
//   npm run bench [-- --scenario options|stateful-relay|basic-register|basic-call|noisy-neighbour|overload|soak|flood|density]
//                 [--rates 2000,4000,8000] [--duration 10] [--transport udp|tcp]
//                 [--port 5060] [--users 10] [--no-micro] [--no-load] [--kamailio]
//                 [--noisy loop,heap,crash] [--noisy-rate 20] [--noisy-cpu-share x] [--noisy-mode sync|async] [--same-shard]
//                 [--tenants 1000] [--idle-dispose-s 20] [--shards n] [--lazy-isolates]
//                 [--isolation process|in-process] [--repeat 1] [--location memory|db] [--store redis]
//                 [--clean-rate R] [--overload-delay-ms N] [--soak-minutes 10]
//                 [--workers 1,2]
//                 [--flood-rate 20000] [--call-rate 20] [--relay-dns]
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
//    - basic-register and basic-call: Kamailio's own example script
//      kamailio-basic-kemi-jsdt.js, unmodified, taken from the Debian
//      package kamailio (apt-get download + dpkg -x, see
//      bench/lib/kamailio-example.mjs), on a temporary SQLite database with
//      --users subscribers u0001..uNNNN@127.0.0.1 (`ksr subscriber add`).
//      basic-register: each call registers a subscriber again with digest
//      authentication, REGISTER/401/REGISTER/200, a new Call-ID and so a
//      new challenge per call (test/interop/basic/load-register.xml; rt =
//      first REGISTER → 200); run k of the ladder registers subscriber k
//      (sipp cannot vary credentials per call: SIPp issue #640).
//      basic-call: u0001 calls u0002, who is registered from the sipp callee
//      on 127.0.0.1:5080: INVITE/407/ACK/INVITE/100/180/200/ACK/BYE/200
//      (test/interop/basic/load-caller.xml and callee.xml; rt = authenticated
//      INVITE → 200). UDP only.
//      ksr keeps the registrations in memory only (`ksr run --location
//      memory`), as Kamailio's usrloc does in the reference (db_mode 0), so
//      that the comparison is like for like; --location db writes them
//      through to the SQLite file (ksr's default). The header of the ksr
//      ladder says which.
//      --store redis (basic-*): three ksr ladders in one run, registrations
//      in memory only (--location memory), written through to SQLite
//      (--location db), and in a redis-server this run starts on a free
//      loopback port (`ksr run --store redis://…`, subscribers added with
//      `ksr subscriber add --store`); the redis ladder's server CPU counts
//      redis-server's too. Ratios of the second and third to the first.
//      With --kamailio also Kamailio with usrloc on db_redis (db_mode 3, its
//      own redis-server; package kamailio-redis-modules), against ksr's.
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
// --relay-dns (stateful-relay): after the ksr ladder(s), one more ksr ladder
// whose script relays to sip:uas.bench.test instead of 127.0.0.1:5080, a
// name located by RFC 3263 through dnsmasq (bench/lib/dnsmasq.mjs; no
// NAPTR, an SRV record _sip._udp.uas.bench.test → uas-host.bench.test:5080,
// an A record 127.0.0.1), ksr run with --dns-server: what a next hop by name
// costs once cached, against the same relay to the address in the same run.
//
// --workers N[,M...] (options, stateful-relay, basic-*): `ksr run --workers N`,
// the script in N worker processes behind the front, one ksr ladder per
// count, in order, in the same run (with --kamailio, Kamailio's after them
// and the ratios for each). Without it ksr runs as `ksr run script` does by
// default (one process). The server CPU counts every process of the server
// (supervisor, front, workers). For basic-* with N ≥ 2 give --location db:
// workers share registrations through the SQLite file.
//
// --scenario noisy-neighbour (bench/lib/noisy-sipp.mjs) is not a ladder: at
// each rate of --rates (default 200 calls/s) it runs phases of --duration
// seconds, each on a fresh `ksr run --tenants` server: tenant B (b.example,
// the stateful relay to a sipp UAS) with sipp calls, first alone, then next
// to tenant A (a.example) receiving --noisy-rate OPTIONS per second whose
// script, per --noisy variant, loops until its route timeout (loop),
// allocates until its heap limit (heap), or aborts V8 with one huge
// allocation (crash: only survivable with tenants in separate processes, so
// not run unless asked). It reports B's completed calls and p99 against the
// alone phase, PASS when above 90 % and under 2×, and what A got back.
// --isolation is passed on to `ksr run` when given; --noisy-cpu-share sets
// A's cpuShare (default: the tenants file's default), --noisy-mode A's
// execution mode (default: sync); --repeat runs every
// phase that many times, interleaved, and judges the medians.
//
// --same-shard (noisy-neighbour) puts A and B in one shard (`shard: 0`
// both, `ksr run --shards 1`): one worker process runs both scripts.
//
// --scenario density (bench/lib/density.mjs): --tenants tenants (default
// 1 000), each answering OPTIONS (bench/scripts/options-200.js), in one
// `ksr run --tenants` with --idle-dispose-s (default 20) and --shards when
// given (and --lazy-isolates when given): start-up time, every tenant asked once, resident memory of the
// server's processes (started, all answered, after idle disposal, busy),
// cold starts of disposed tenants, and sipp OPTIONS to one busy tenant at
// the first of --rates (default 1000/s) for --duration s while the others
// idle; with --kamailio the same sipp load against Kamailio's stateless
// reply. PASS: every tenant answered, peak ≤ 8 GB and ≤ 8 MB a tenant.
//
// --scenario overload (overload without collapse): the stateful-relay load
// offered at twice the highest clean rate R. R is found with the
// stateful-relay ladder (--rates) on a ksr server, or given with
// --clean-rate R. Then 2R calls/s for --duration seconds against: ksr with
// load shedding (its default; --overload-delay-ms passed on), ksr with
// --no-overload-shedding, and with --kamailio Kamailio's stateful relay (no
// shedding in that configuration), each on a fresh server after the same
// warm-up. Reports offered and completed calls (goodput: sipp's successful
// calls; sipp's UAC counts a 503 to its INVITE as a failed call), failed
// calls, the 503s the server logged ("shed N INVITE ..." lines), sipp's
// retransmissions, p99 INVITE → 200 and the server's CPU. PASS when ksr
// with shedding completes at least 90 % of R × duration calls.
//
// --scenario soak holds the stateful relay load at one rate (the first of
// --rates, default 600 calls/s) for --soak-minutes (default 10) on one
// `ksr run` server and samples the resident memory of its process tree
// every 10 s (bench/lib/soak.mjs). It prints the calls, failures,
// retransmissions, p99, CPU per call and the RSS curve, and judges: zero
// failed calls, and memory flat after warm-up (the highest RSS of the
// second half at most 10 % above the highest between the warm-up and the
// half). The command exits 1 when either fails.
//
// --scenario flood (bench/lib/flood.mjs): examples/anti-flood.js (pike +
// an htable ban list in front of a stateful relay) on a fresh server; sipp
// calls at --call-rate (default 20/s) from 127.0.0.3 through it to a sipp
// UAS, first alone, then with a sipp OPTIONS flood at --flood-rate (default
// 20 000/s) from 127.0.0.2, each phase --duration seconds (≤ 60). pike's
// density is 300 requests per 2 s on both servers (the call source sends
// 3 per call). ksr runs twice, with its load shedding (default) and with
// --no-overload-shedding. Reports the calls' success and p50/p99 (INVITE → 200), the
// flood's answered and unanswered requests, the bans logged, ksr's 503s, the server's
// CPU and peak resident memory, and the host's UDP receive-buffer drops.
// With --kamailio the same phases run against Kamailio 5.6 with the same
// script (bench/cfg/kamailio-anti-flood.cfg).
//
// --kamailio runs the same load against Kamailio 5.6 + app_jsdt running the
// same logic (stateless-reply.js or stateful-relay.js), through the shared
// Kamailio harness ($KAMAILIO_BENCH_DIR, default ../shared/bench next to the
// repository), right after the ksr ladder. For the basic-* scenarios
// Kamailio runs its own copy of the same example script with
// bench/cfg/kamailio-basic-kemi.cfg (every module the script calls; the
// same subscribers in a db_text database; usrloc in memory; 2 workers).
// It is only for comparison on a developer machine with kamailio installed.
// After both ladders it prints the ratios ksr / Kamailio: highest clean rate,
// and server CPU per call at the highest rate both ran cleanly.
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
  processTreeCpuByProcess,
  isAlive,
  isListening,
  runCallsThroughUas,
  runSipp,
  sippVersion,
  startKsr,
  udpReceiveBufferErrors,
} from "../bench/lib/sipp.mjs";
import { obtainBasicKemiScript } from "../bench/lib/kamailio-example.mjs";
import { KAMAILIO_REDIS_LOCATION_VERSION, makeKamailioBasicDbDir, startKamailioBasic, writeKamailioBasicDatabase } from "../bench/lib/kamailio-basic.mjs";
import { NOISY_VARIANTS, benchNoisyNeighbour } from "../bench/lib/noisy-sipp.mjs";
import { formatRssCurve, soakRelay } from "../bench/lib/soak.mjs";
import { BENCH_PIKE_DENSITY, CALLS_SOURCE_IP, FLOOD_SCRIPT, FLOOD_SOURCE_IP, floodPhase } from "../bench/lib/flood.mjs";
import { startKamailio } from "../bench/lib/kamailio.mjs";
import { DNSMASQ, dnsmasqInstalled, startDnsmasq } from "../bench/lib/dnsmasq.mjs";
import { REDIS_SERVER, redisCommand, redisServerInstalled, startRedis } from "../bench/lib/redis.mjs";
import { benchDensity } from "../bench/lib/density.mjs";

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
    users: { type: "string", default: "10" },
    noisy: { type: "string", default: "loop,heap" },
    "noisy-rate": { type: "string", default: "20" },
    "noisy-cpu-share": { type: "string" },
    "noisy-mode": { type: "string" },
    isolation: { type: "string" },
    repeat: { type: "string", default: "1" },
    "soak-minutes": { type: "string", default: "10" },
    "clean-rate": { type: "string" },
    "overload-delay-ms": { type: "string" },
    location: { type: "string", default: "memory" },
    store: { type: "string" },
    workers: { type: "string" },
    "flood-rate": { type: "string", default: "20000" },
    "call-rate": { type: "string", default: "20" },
    "same-shard": { type: "boolean", default: false },
    tenants: { type: "string", default: "1000" },
    "idle-dispose-s": { type: "string", default: "20" },
    shards: { type: "string" },
    "lazy-isolates": { type: "boolean", default: false },
    "relay-dns": { type: "boolean", default: false },
  },
});

const SCENARIO = opts.scenario;
/** `ksr run --workers` counts, one ksr ladder each; [undefined]: the flag not given. */
const WORKER_COUNTS = opts.workers === undefined ? [undefined] : opts.workers.split(",").map(Number);
if (WORKER_COUNTS.some((n) => n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 64))) throw new Error("--workers: comma-separated integers in [1, 64]");
const DEFAULT_RATES = {
  options: "1000,2000,4000,6000,8000,10000,12000,14000,16000,20000",
  "stateful-relay": "250,500,750,1000,1250,1500,2000,2500,3000",
  "basic-register": "250,500,1000,1500,2000,3000,4000,6000,8000",
  "basic-call": "100,250,500,750,1000,1250,1500,2000,2500",
  "noisy-neighbour": "200",
  soak: "600",
  // The ladder that finds the clean rate R; the overload is then 2R.
  overload: "250,500,750,1000,1250,1500,2000",
  // Not a ladder: --call-rate and --flood-rate.
  flood: "20",
  // Not a ladder: the busy tenant's rate among the idle ones.
  density: "1000",
};
const IS_BASIC = SCENARIO === "basic-register" || SCENARIO === "basic-call";
const USERS = Number(opts.users);
const KSR_LOCATION = opts.location;
if (KSR_LOCATION !== "memory" && KSR_LOCATION !== "db") throw new Error("--location must be memory or db");
if (opts.store !== undefined && (opts.store !== "redis" || !IS_BASIC)) throw new Error("--store: only redis, with --scenario basic-register or basic-call");
if (opts.store !== undefined && opts.workers !== undefined) throw new Error("--store redis compares one-process servers: leave out --workers");
/** The ksr ladders' storage: [undefined] = --location as given; with --store redis, memory, SQLite and Redis in turn. */
const KSR_STORES = opts.store === "redis" ? ["memory", "db", "redis"] : [undefined];
if (!(SCENARIO in DEFAULT_RATES)) throw new Error(`--scenario must be one of ${Object.keys(DEFAULT_RATES).join(", ")}`);
const RATES = (opts.rates ?? DEFAULT_RATES[SCENARIO]).split(",").map(Number);
const DURATION_S = Number(opts.duration);
const TRANSPORT = opts.transport;
const MAX_CLEAN_P99_MS = Number(opts["max-p99-ms"]);
// Past this p99 the server (or sipp) is clearly saturated; higher rates only pile up.
const SATURATED_P99_MS = 1000;
if (RATES.some((r) => !(Number.isInteger(r) && r > 0))) throw new Error("--rates: comma-separated positive integers");
const SOAK_MINUTES = Number(opts["soak-minutes"]);
if (!(SOAK_MINUTES > 0 && SOAK_MINUTES <= 60)) throw new Error("--soak-minutes must be in (0, 60]");
if (!(DURATION_S > 0 && DURATION_S <= 60)) throw new Error("--duration must be in (0, 60] seconds");
if (TRANSPORT !== "udp" && TRANSPORT !== "tcp") throw new Error("--transport must be udp or tcp");
const CLEAN_RATE = opts["clean-rate"] === undefined ? undefined : Number(opts["clean-rate"]);
if (CLEAN_RATE !== undefined && !(Number.isInteger(CLEAN_RATE) && CLEAN_RATE > 0 && CLEAN_RATE <= 20_000)) throw new Error("--clean-rate must be an integer in [1, 20000]");
const OVERLOAD_DELAY_MS = opts["overload-delay-ms"];
if (OVERLOAD_DELAY_MS !== undefined && !/^[1-9]\d*$/.test(OVERLOAD_DELAY_MS)) throw new Error("--overload-delay-ms must be a positive integer");
if (SCENARIO !== "options" && TRANSPORT !== "udp") throw new Error(`--scenario ${SCENARIO} runs over UDP only`);
if (!(Number.isInteger(USERS) && USERS >= 2 && USERS <= 10_000)) throw new Error("--users must be an integer in [2, 10000]");
const FLOOD_RATE = Number(opts["flood-rate"]);
const CALL_RATE = Number(opts["call-rate"]);
if (!(Number.isInteger(FLOOD_RATE) && FLOOD_RATE >= 0 && FLOOD_RATE <= 200_000)) throw new Error("--flood-rate must be an integer in [0, 200000] requests/s");
if (!(Number.isInteger(CALL_RATE) && CALL_RATE > 0 && CALL_RATE < BENCH_PIKE_DENSITY / 6)) {
  throw new Error(`--call-rate must be an integer in [1, ${BENCH_PIKE_DENSITY / 6 - 1}] calls/s (3 requests a call, 2 s windows: under pike's ${BENCH_PIKE_DENSITY})`);
}
const NOISY = {
  variants: opts.noisy.split(",").map((v) => v.trim()),
  aRate: Number(opts["noisy-rate"]),
  aCpuShare: opts["noisy-cpu-share"] === undefined ? undefined : Number(opts["noisy-cpu-share"]),
  aMode: opts["noisy-mode"],
  isolation: opts.isolation,
  repeat: Number(opts.repeat),
  sameShard: opts["same-shard"],
};
const DENSITY = {
  tenants: Number(opts.tenants),
  idleDisposeS: Number(opts["idle-dispose-s"]),
  shards: opts.shards === undefined ? undefined : Number(opts.shards),
  lazyIsolates: opts["lazy-isolates"],
};
if (!(Number.isInteger(DENSITY.tenants) && DENSITY.tenants >= 1 && DENSITY.tenants <= 10_000)) throw new Error("--tenants must be an integer in [1, 10000]");
if (!(Number.isInteger(DENSITY.idleDisposeS) && DENSITY.idleDisposeS >= 1 && DENSITY.idleDisposeS <= 120)) throw new Error("--idle-dispose-s must be an integer in [1, 120]");
if (DENSITY.shards !== undefined && !(Number.isInteger(DENSITY.shards) && DENSITY.shards >= 1 && DENSITY.shards <= 256)) throw new Error("--shards must be an integer in [1, 256]");
if (NOISY.variants.some((v) => !NOISY_VARIANTS.includes(v))) throw new Error(`--noisy: comma-separated variants among ${NOISY_VARIANTS.join(", ")}`);
if (!(NOISY.aRate > 0 && NOISY.aRate <= 1000)) throw new Error("--noisy-rate must be in (0, 1000] requests/s");
if (!(Number.isInteger(NOISY.repeat) && NOISY.repeat >= 1 && NOISY.repeat <= 10)) throw new Error("--repeat must be an integer in [1, 10]");
if (NOISY.aCpuShare !== undefined && !(NOISY.aCpuShare > 0 && NOISY.aCpuShare <= 256)) throw new Error("--noisy-cpu-share must be in (0, 256]");
if (NOISY.aMode !== undefined && NOISY.aMode !== "sync" && NOISY.aMode !== "async") throw new Error("--noisy-mode must be sync or async");

const OPTIONS_SCENARIO = path.join(REPO_ROOT, "test", "interop", "sipp", "options.xml");
const BENCH_SCRIPTS = {
  options: path.join(REPO_ROOT, "bench", "scripts", "options-200.js"),
  "stateful-relay": path.join(REPO_ROOT, "bench", "scripts", "stateful-relay.js"),
  soak: path.join(REPO_ROOT, "bench", "scripts", "stateful-relay.js"),
  overload: path.join(REPO_ROOT, "bench", "scripts", "stateful-relay.js"),
};
/** The shared harness's name for each scenario's Kamailio script. */
const KAMAILIO_SCENARIOS = { options: "stateless-reply", "stateful-relay": "stateful-relay", overload: "stateful-relay", density: "stateless-reply" };
const BASIC_SCENARIOS = path.join(REPO_ROOT, "test", "interop", "basic");
/** The digest realm of the basic script is the From host: the server's address. */
const BASIC_DOMAIN = "127.0.0.1";
/** Where both relays send calls: the port of the UAS in ../shared/bench/js/stateful-relay.js. */
const RELAY_UAS_PORT = 5080;
/** run-load.sh's -recv_timeout for the relay: a call waiting longer for a message fails. */
const RELAY_RECV_TIMEOUT_MS = 10_000;
const PAUSE_BETWEEN_RATES_MS = 2000;

const fmt = (v, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "-");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));


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
      return runCallsThroughUas({ targetPort, uasPort: RELAY_UAS_PORT, calls, rate, recvTimeoutMs: RELAY_RECV_TIMEOUT_MS });
    },
  };
}

/** The basic script's subscribers: u0001..uNNNN@127.0.0.1, password "pw-" + user. */
function basicSubscribers() {
  return Array.from({ length: USERS }, (_, i) => {
    const user = `u${String(i + 1).padStart(4, "0")}`;
    return { user, domain: BASIC_DOMAIN, password: `pw-${user}` };
  });
}

/** sipp arguments: the request's user (-s) and the digest credentials (-au, -ap) of a subscriber. */
const sippCredentials = (subscriber) => ["-s", subscriber.user, "-au", subscriber.user, "-ap", subscriber.password];

/**
 * Each call registers one subscriber again with digest authentication; run
 * k of the ladder uses subscriber k (round robin over the pool).
 */
function basicRegisterLoad(targetPort, subscribers) {
  // One source port for every run, so that each subscriber keeps one
  // binding that its runs refresh (a new port per run would add a contact
  // per run, up to the registrar's max_contacts).
  let localPort;
  let runs = 0;
  return {
    describe:
      `Kamailio's kamailio-basic-kemi-jsdt.js: REGISTER/401/REGISTER with credentials/200 per call over UDP, ` +
      `one of ${subscribers.length} subscribers per run (rt = first REGISTER sent → 200 received)`,
    unit: "registrations/s",
    warmUp: { calls: 1000, rate: 250 },
    async prepare() {
      localPort = await findFreePort();
    },
    run: (calls, rate) =>
      runSipp({
        scenarioFile: path.join(BASIC_SCENARIOS, "load-register.xml"),
        targetPort,
        localPort,
        transport: "udp",
        calls,
        rate,
        extraArgs: sippCredentials(subscribers[runs++ % subscribers.length]),
      }),
  };
}

/**
 * Calls from the first subscriber to the second, registered (digest) from
 * the callee's port before the ladder; a fresh sipp callee per run.
 */
function basicCallLoad(targetPort, subscribers) {
  const [caller, callee] = subscribers;
  return {
    describe:
      `Kamailio's kamailio-basic-kemi-jsdt.js: ${caller.user} calls ${callee.user} registered at 127.0.0.1:${RELAY_UAS_PORT}, ` +
      "INVITE/407/ACK/INVITE/100/180/200/ACK/BYE/200 per call over UDP (rt = authenticated INVITE sent → 200 received)",
    unit: "calls/s",
    warmUp: { calls: 500, rate: 100 },
    async prepare() {
      if (isListening("udp", RELAY_UAS_PORT)) {
        throw new Error(`udp 127.0.0.1:${RELAY_UAS_PORT} is taken: the callee must register and listen there`);
      }
      for (const [subscriber, localPort] of [
        [callee, RELAY_UAS_PORT],
        [caller, undefined],
      ]) {
        const registration = await runSipp({
          scenarioFile: path.join(BASIC_SCENARIOS, "register.xml"),
          targetPort,
          localPort,
          calls: 1,
          rate: 1,
          extraArgs: sippCredentials(subscriber),
        });
        if (registration.exitCode !== 0) {
          throw new Error(`registering ${subscriber.user} failed (sipp exit ${registration.exitCode}):\n${registration.errors}`);
        }
      }
    },
    run(calls, rate) {
      return runCallsThroughUas({
        targetPort,
        uasPort: RELAY_UAS_PORT,
        calls,
        rate,
        recvTimeoutMs: RELAY_RECV_TIMEOUT_MS,
        uas: { scenarioFile: path.join(BASIC_SCENARIOS, "callee.xml") },
        uac: {
          scenarioFile: path.join(BASIC_SCENARIOS, "load-caller.xml"),
          extraArgs: ["-s", callee.user, "-key", "caller", caller.user, "-au", caller.user, "-ap", caller.password],
        },
      });
    },
  };
}

/**
 * Runs the rate ladder of load against the server whose root process is
 * serverPid. Stops at the first rate with a failure or a saturated p99.
 */
/**
 * µs per call of each process of a `ksr run --workers` server over one run
 * (depth 1: the front; depth 2: its workers; the supervisor left out, it
 * idles), from two processTreeCpuByProcess readings; a worker restarted
 * meanwhile counts from 0.
 */
function cpuByProcess(before, after, calls) {
  const us = (d) =>
    [...after]
      .filter(([, p]) => p.depth === d)
      .map(([pid, p]) => (((p.seconds - (before.get(pid)?.seconds ?? 0)) * 1e6) / calls).toFixed(0));
  return `front ${us(1).join(" + ")} µs, workers ${us(2).join(" + ")} µs`;
}

async function rateLadder(label, serverPid, load, opts = {}) {
  console.log(`\n## ${label}: ${load.describe}, ${DURATION_S} s per rate\n`);
  console.log(
    `| ${load.unit} | calls | ok | failed | retrans | UDP drops | achieved/s | rt mean ms | rt p50 | rt p99 | rt max | server CPU % of a core | server CPU µs/call | UAS CPU % | sipp exit |`,
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  await load.prepare?.();
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
    const serverCpu = () => [serverPid, ...(opts.alsoCpuOf ?? [])].reduce((sum, pid) => sum + processTreeCpuSeconds(pid), 0);
    const cpuBefore = serverCpu();
    const byProcessBefore = opts.splitByProcess ? processTreeCpuByProcess(serverPid) : undefined;
    const dropsBefore = udpReceiveBufferErrors();
    const started = performance.now();
    const result = await load.run(calls, rate);
    const wallS = (performance.now() - started) / 1000;
    const cpuS = serverCpu() - cpuBefore;
    const byProcess = byProcessBefore === undefined ? undefined : cpuByProcess(byProcessBefore, processTreeCpuByProcess(serverPid), calls);
    const udpDrops = udpReceiveBufferErrors() - dropsBefore;
    const noFailure = result.exitCode === 0 && result.failed === 0 && result.successful === calls;
    const clean = noFailure && result.retransmissions === 0 && result.rtMs.p99 <= MAX_CLEAN_P99_MS;
    const row = { rate, calls, noFailure, clean, udpDrops, result, cpuShare: cpuS / wallS, cpuUsPerRequest: (cpuS * 1e6) / calls, byProcess };
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
  if (opts.splitByProcess) {
    console.log(`\nserver CPU per call by process: ${rows.map((r) => `${r.rate}/s: ${r.byProcess}`).join("; ")}`);
  }
  console.log(`\n${summarize(best, "highest rate with zero failures")}`);
  console.log(`\n${summarize(bestClean, `highest clean rate (zero failures and retransmissions, p99 ≤ ${MAX_CLEAN_P99_MS} ms)`)}`);
  return { label, rows, best, bestClean };
}

const BENCH_SCRIPT = IS_BASIC ? null : BENCH_SCRIPTS[SCENARIO];
// The relay forwards an OPTIONS probe to the UAS instead of answering it;
// the basic script answers one (a 407 challenge for the probe's user).
// Scripts that relay an OPTIONS to a next hop not yet running cannot answer a probe.
const KSR_READINESS = ["stateful-relay", "overload", "soak", "flood"].includes(SCENARIO) ? "sockets" : "options";
const makeLoad = (targetPort, basic) => {
  if (SCENARIO === "options") return optionsLoad(targetPort, TRANSPORT);
  if (SCENARIO === "stateful-relay" || SCENARIO === "overload") return statefulRelayLoad(targetPort);
  if (SCENARIO === "basic-register") return basicRegisterLoad(targetPort, basic.subscribers);
  return basicCallLoad(targetPort, basic.subscribers);
};

/**
 * For the basic-* scenarios: Kamailio's example script (downloaded once),
 * the subscriber pool and a working directory for both servers' databases.
 */
function prepareBasic() {
  const { script, version } = obtainBasicKemiScript();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-bench-basic-"));
  console.log(`kamailio-basic-kemi-jsdt.js from the Debian package kamailio ${version}: ${script}`);
  return { script, version, workDir, subscribers: basicSubscribers() };
}

/** The subscriber pool added with `ksr subscriber add` (one process each) to the store the arguments name. */
function addKsrSubscribers(basic, storeArgs) {
  const started = performance.now();
  for (const { user, domain, password } of basic.subscribers) {
    const add = spawnSync(process.execPath, [path.join(REPO_ROOT, "bin", "ksr.js"), "subscriber", "add", `${user}@${domain}`, password, ...storeArgs], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 30_000,
    });
    if (add.status !== 0) throw new Error(`ksr subscriber add ${user}@${domain} failed:\n${add.stdout}${add.stderr}`);
  }
  console.log(`${basic.subscribers.length} subscribers added with \`ksr subscriber add ${storeArgs.join(" ")}\` in ${fmt((performance.now() - started) / 1000, 1)} s`);
}

/** A SQLite database for `ksr run --db` holding the subscriber pool. */
function writeKsrSubscriberDatabase(basic) {
  const database = path.join(basic.workDir, `ksr-${Date.now()}.sqlite`);
  addKsrSubscribers(basic, ["--db", database]);
  return database;
}

/** A redis-server of this run, holding the subscriber pool; its server is stopped by the caller. */
async function startKsrRedis(basic) {
  if (!redisServerInstalled()) throw new Error(`--store redis: ${REDIS_SERVER} is missing (apt-get install -y redis-server)`);
  const dir = fs.mkdtempSync(path.join(basic.workDir, "redis-"));
  const redis = await startRedis(await findFreePort(), dir);
  addKsrSubscribers(basic, ["--store", redis.url]);
  return redis;
}

/** `ksr run script` on 127.0.0.1: --port, else 5060 when free, else a free port. */
async function startBenchKsr(script, extraArgs) {
  let port = opts.port ? Number(opts.port) : 5060;
  const taken = isListening("udp", port) || isListening("tcp", port) || (await probeOptions(port, 200)) !== null;
  if (!opts.port && taken) port = await findFreePort();
  let server;
  try {
    server = await startKsr({ script, port, logLevel: "warn", readiness: KSR_READINESS, extraArgs });
  } catch (err) {
    if (opts.port) throw err;
    // 5060 may have been taken meanwhile.
    server = await startKsr({ script, port: await findFreePort(), logLevel: "warn", readiness: KSR_READINESS, extraArgs });
  }
  return server;
}

/** Stops a bench server, reporting an unclean exit and the error lines it logged. */
async function stopBenchKsr(server, label = "ksr") {
  const exit = await server.stop();
  if (!exit || exit.code !== 0) console.log(`${label} exited with ${JSON.stringify(exit)}:\n${server.output().slice(-2000)}`);
  const errors = server.output().split("\n").filter((line) => /^\S+ (ERR|CRIT) /.test(line));
  if (errors.length > 0) console.log(`\n${label} logged ${errors.length} error line(s), first ones:\n${errors.slice(0, 5).join("\n")}`);
}

/** One ksr ladder; `store` is "memory", "db" or "redis" (--store redis), else --location as given; `dns` names the relay's next hop (--relay-dns). */
async function benchKsr(basic, workers, store, dns) {
  const built = ensureBuilt();
  if (built) console.log("built dist/ksr.js");
  const script = basic ? basic.script : dns?.script ?? BENCH_SCRIPT;
  const workerArgs = workers === undefined ? [] : ["--workers", String(workers)];
  const location = store === undefined || store === "redis" ? KSR_LOCATION : store;
  const redis = store === "redis" ? await startKsrRedis(basic) : undefined;
  const storeArgs = !basic ? [] : redis !== undefined ? ["--store", redis.url] : ["--db", writeKsrSubscriberDatabase(basic), "--location", location];
  const dnsArgs = dns ? ["--dns-server", `127.0.0.1:${dns.server.port}`] : [];
  try {
    const server = await startBenchKsr(script, [...storeArgs, ...workerArgs, ...dnsArgs]);
    try {
      console.log(`ksr run ${basic ? script : path.relative(REPO_ROOT, script)} ${[...storeArgs, ...workerArgs].join(" ")} on 127.0.0.1:${server.port} (pid ${server.pid})`);
      const where = !basic
        ? ""
        : redis !== undefined
          ? ", --store redis (registrations in Redis; server CPU includes redis-server's)"
          : `, --location ${location}${location === "memory" ? " (registrations in memory only)" : " (registrations written through to SQLite)"}`;
      const pool = workers === undefined ? "" : `, --workers ${workers}`;
      const byName = dns ? `, next hop ${RELAY_DNS_NAME} by RFC 3263` : "";
      return await rateLadder(`ksr (${path.basename(script)}${where}${pool}${byName})`, server.pid, makeLoad(server.port, basic), {
        splitByProcess: workers !== undefined && workers > 1,
        ...(redis !== undefined ? { alsoCpuOf: [redis.pid] } : {}),
      });
    } finally {
      await stopBenchKsr(server);
    }
  } finally {
    await redis?.kill();
  }
}

const RELAY_DNS_NAME = "uas.bench.test";

/** --relay-dns: the relay script with its UAS named, dnsmasq answering for the name, one ksr ladder. */
async function benchKsrRelayByName() {
  if (SCENARIO !== "stateful-relay") throw new Error("--relay-dns needs --scenario stateful-relay");
  if (!dnsmasqInstalled()) throw new Error(`--relay-dns: ${DNSMASQ} is not installed`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-bench-dns-"));
  const script = path.join(dir, "stateful-relay.js");
  const text = fs.readFileSync(BENCH_SCRIPT, "utf8");
  if (!text.includes(`var UAS_URI = "sip:127.0.0.1:${RELAY_UAS_PORT}";`)) throw new Error(`${BENCH_SCRIPT}: no UAS_URI line to rewrite`);
  fs.writeFileSync(script, text.replace(`var UAS_URI = "sip:127.0.0.1:${RELAY_UAS_PORT}";`, `var UAS_URI = "sip:${RELAY_DNS_NAME}";`));
  const server = await startDnsmasq([
    `--srv-host=_sip._udp.${RELAY_DNS_NAME},uas-host.bench.test,${RELAY_UAS_PORT},10,0`,
    "--host-record=uas-host.bench.test,127.0.0.1",
  ]);
  try {
    await sleep(PAUSE_BETWEEN_RATES_MS);
    return await benchKsr(undefined, undefined, undefined, { script, server });
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Kamailio running its own copy of the basic script, same subscribers (db_text), same load. */
async function benchKamailioBasic(basic) {
  const dbDir = makeKamailioBasicDbDir();
  writeKamailioBasicDatabase(dbDir, basic.subscribers);
  const server = await startKamailioBasic({ script: basic.script, port: await findFreePort(), dbDir });
  try {
    console.log(`kamailio ${path.basename(basic.script)} with bench/cfg/kamailio-basic-kemi.cfg on 127.0.0.1:${server.port} (pid ${server.pid})`);
    return await rateLadder(`kamailio 5.6 app_jsdt (${path.basename(basic.script)})`, server.pid, makeLoad(server.port, basic));
  } finally {
    await server.stop();
    fs.rmSync(dbDir, { recursive: true, force: true });
  }
}

/** Kamailio with the basic script and usrloc on db_redis (db_mode 3) in a redis-server of its own: --store redis. */
async function benchKamailioBasicRedis(basic) {
  const dbDir = makeKamailioBasicDbDir();
  writeKamailioBasicDatabase(dbDir, basic.subscribers);
  const redis = await startRedis(await findFreePort(), fs.mkdtempSync(path.join(basic.workDir, "redis-kamailio-")));
  try {
    await redisCommand(redis.port, ...KAMAILIO_REDIS_LOCATION_VERSION);
    const server = await startKamailioBasic({ script: basic.script, port: await findFreePort(), dbDir, redisUrl: redis.url });
    try {
      console.log(`kamailio ${path.basename(basic.script)} with usrloc on db_redis (${redis.url}, db_mode 3) on 127.0.0.1:${server.port} (pid ${server.pid})`);
      return await rateLadder(
        `kamailio 5.6 app_jsdt (${path.basename(basic.script)}, usrloc db_redis db_mode 3; server CPU includes redis-server's)`,
        server.pid,
        makeLoad(server.port, basic),
        { alsoCpuOf: [redis.pid] },
      );
    } finally {
      await server.stop();
    }
  } finally {
    await redis.kill();
    fs.rmSync(dbDir, { recursive: true, force: true });
  }
}

async function benchKamailio(basic) {
  if (basic) {
    if (spawnSync("kamailio", ["-v"], { timeout: 10_000 }).error) {
      console.log("\n--kamailio: kamailio is not installed; skipped");
      return null;
    }
    return benchKamailioBasic(basic);
  }
  const kamailioScenario = KAMAILIO_SCENARIOS[SCENARIO];
  return withKamailio((pid) => {
    // The shared configuration listens on UDP 127.0.0.1:5060 only.
    const load = SCENARIO === "options" ? optionsLoad(5060, "udp") : statefulRelayLoad(5060);
    return rateLadder(`kamailio 5.6 app_jsdt (${kamailioScenario}.js)`, pid, load);
  });
}

/**
 * Runs use(pid) against Kamailio started by the shared harness with the
 * scenario's script (UDP 127.0.0.1:5060), then stops it; null when it is
 * not installed or does not start.
 */
async function withKamailio(use) {
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
  const start = spawnSync(path.join(harness, "start-kamailio.sh"), [KAMAILIO_SCENARIOS[SCENARIO]], { env, encoding: "utf8", timeout: 30_000 });
  if (start.status !== 0) {
    console.log(`\n--kamailio: start-kamailio.sh failed:\n${start.stdout}${start.stderr}`);
    return null;
  }
  const pid = Number(fs.readFileSync(path.join(runDir, "kamailio.pid"), "utf8").trim());
  try {
    return await use(pid);
  } finally {
    spawnSync(path.join(harness, "stop-kamailio.sh"), [], { env, encoding: "utf8", timeout: 30_000 });
  }
}

/** --scenario soak: one rate held for minutes, the server's RSS sampled (bench/lib/soak.mjs). */
async function benchSoak() {
  const built = ensureBuilt();
  if (built) console.log("built dist/ksr.js");
  if (isListening("udp", RELAY_UAS_PORT)) throw new Error(`udp 127.0.0.1:${RELAY_UAS_PORT} is taken: the relay's UAS must listen there`);
  const rate = RATES[0];
  const server = await startBenchKsr(BENCH_SCRIPTS.soak, []);
  try {
    console.log(`\n## soak: ksr run bench/scripts/stateful-relay.js (pid ${server.pid}), sipp relay load at ${rate} calls/s for ${SOAK_MINUTES} min\n`);
    const soak = await soakRelay({ serverPid: server.pid, targetPort: server.port, uasPort: RELAY_UAS_PORT, rate, minutes: SOAK_MINUTES });
    const { result, verdict } = soak;
    const calls = Math.round(rate * soak.durationS);
    console.log(
      `calls ${calls}: ok ${result.successful}, failed ${result.failed}, retransmissions ${result.retransmissions}, ` +
        `rt p50/p99/max ${fmt(result.rtMs.p50)}/${fmt(result.rtMs.p99)}/${fmt(result.rtMs.max)} ms, server CPU ${fmt(soak.cpuUsPerCall, 1)} µs per call\n`,
    );
    console.log(formatRssCurve(soak.samples));
    const noFailure = result.exitCode === 0 && result.failed === 0 && result.successful === calls;
    const flatText =
      verdict.flat === undefined
        ? verdict.reason
        : `highest RSS ${fmt(verdict.middleMax / 2 ** 20, 1)} MB from ${fmt(verdict.warmUpS)} s to the half, ${fmt(verdict.lateMax / 2 ** 20, 1)} MB in the second half (${fmt(verdict.growth * 100, 1)} %)`;
    console.log(`\n**soak: ${noFailure ? "zero failed calls" : "FAILED calls"}; memory ${verdict.flat === true ? "flat" : verdict.flat === false ? "GROWING" : "not judged"}** — ${flatText}`);
    return noFailure && verdict.flat !== false;
  } finally {
    await stopBenchKsr(server);
  }
}

/** The requests a ksr server answered 503 for overload: the sum of its "shed N INVITE, M REGISTER[, K other]" lines. */
function shedCountInLog(output) {
  let total = 0;
  for (const match of output.matchAll(/\bshed (\d+) INVITE, (\d+) REGISTER(?:, (\d+) other)? in the last/g)) {
    total += Number(match[1]) + Number(match[2]) + Number(match[3] ?? 0);
  }
  return total;
}

/**
 * One overload run: a warm-up, then `rate` calls/s for DURATION_S seconds of
 * the stateful-relay load against the server on `port` whose root process is
 * `pid`. shedCount() reads the 503s it logged (null: it logs none).
 */
async function overloadRun(label, port, pid, rate, shedCount) {
  const load = statefulRelayLoad(port);
  await load.run(load.warmUp.calls, load.warmUp.rate);
  await sleep(PAUSE_BETWEEN_RATES_MS);
  const shedBefore = shedCount?.() ?? null;
  const calls = rate * DURATION_S;
  const cpuBefore = processTreeCpuSeconds(pid);
  const started = performance.now();
  const result = await load.run(calls, rate);
  const wallS = (performance.now() - started) / 1000;
  const cpuShare = (processTreeCpuSeconds(pid) - cpuBefore) / wallS;
  // The last second's line is written once the episode ends: give it time to.
  await sleep(1500);
  const shed = shedBefore === null ? null : shedCount() - shedBefore;
  return { label, calls, rate, result, cpuShare, shed, alive: isAlive(pid) };
}

/** --scenario overload: 2R offered to ksr with and without shedding (and Kamailio); PASS on ksr's goodput with shedding. */
async function benchOverload() {
  const built = ensureBuilt();
  if (built) console.log("built dist/ksr.js");
  const script = BENCH_SCRIPTS.overload;
  const sheddingArgs = OVERLOAD_DELAY_MS === undefined ? [] : ["--overload-delay-ms", OVERLOAD_DELAY_MS];
  let cleanRate = CLEAN_RATE;
  if (cleanRate === undefined) {
    const server = await startBenchKsr(script, sheddingArgs);
    try {
      const ladder = await rateLadder(`ksr (${path.basename(script)}) to find the clean rate R`, server.pid, statefulRelayLoad(server.port));
      cleanRate = ladder.bestClean?.rate;
    } finally {
      await stopBenchKsr(server);
    }
    if (cleanRate === undefined) {
      console.log("\nno clean rate found: no overload run");
      return { passed: false };
    }
    await sleep(PAUSE_BETWEEN_RATES_MS);
  }
  const offered = 2 * cleanRate;
  const target = cleanRate * DURATION_S;
  console.log(
    `\n## Overload: ${offered} calls/s offered (2 × the clean rate R = ${cleanRate}${CLEAN_RATE === undefined ? ", measured above" : ", --clean-rate"}) ` +
      `for ${DURATION_S} s; PASS when ksr with shedding completes ≥ 90 % of R × ${DURATION_S} s = ${Math.ceil(0.9 * target)} calls\n`,
  );
  const runs = [];
  for (const [label, args] of [
    [`ksr, shedding (--overload-delay-ms ${OVERLOAD_DELAY_MS ?? "default"})`, sheddingArgs],
    ["ksr --no-overload-shedding", ["--no-overload-shedding"]],
  ]) {
    const server = await startBenchKsr(script, args);
    try {
      runs.push(await overloadRun(label, server.port, server.pid, offered, () => shedCountInLog(server.output())));
    } finally {
      await stopBenchKsr(server, label);
    }
    await sleep(PAUSE_BETWEEN_RATES_MS);
  }
  if (opts.kamailio) {
    const kamailio = await withKamailio((pid) => overloadRun("kamailio 5.6 app_jsdt (stateful-relay.js, no shedding)", 5060, pid, offered, null));
    if (kamailio) runs.push(kamailio);
  }
  console.log(
    "| server | offered | completed (goodput) | % of R × duration | failed | 503 sent | retrans | rt p50 ms | rt p99 | server CPU % of a core |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const run of runs) {
    const r = run.result;
    console.log(
      `| ${run.label} | ${run.calls} | ${r.successful} | ${fmt((100 * r.successful) / target)} | ${r.failed} | ${run.shed === null ? "-" : run.shed} | ` +
        `${r.retransmissions} | ${fmt(r.rtMs.p50)} | ${fmt(r.rtMs.p99)} | ${fmt(run.cpuShare * 100)}${run.alive ? "" : " (died)"} |`,
    );
  }
  const shedding = runs[0];
  const passed = shedding.result.successful >= 0.9 * target;
  console.log(
    `\n**overload: ${passed ? "PASS" : "FAIL"}** — ksr with shedding completed ${shedding.result.successful} of ${shedding.calls} offered calls, ` +
      `${fmt((100 * shedding.result.successful) / target)} % of R × duration (${target}); without shedding ${runs[1].result.successful}` +
      (runs[2] ? `; Kamailio ${runs[2].result.successful}` : ""),
  );
  return { passed };
}

/** --scenario flood: calls alone, then calls + flood, on ksr (and Kamailio); the table of both phases. */
async function benchFlood() {
  const built = ensureBuilt();
  if (built) console.log("built dist/ksr.js");
  console.log(
    `\n## Flood: ${path.relative(REPO_ROOT, FLOOD_SCRIPT)}; calls ${CALL_RATE}/s from ${CALLS_SOURCE_IP}, ` +
      `flood ${FLOOD_RATE} OPTIONS/s from ${FLOOD_SOURCE_IP}, ${DURATION_S} s per phase; pike density ${BENCH_PIKE_DENSITY} per 2 s\n`,
  );
  const rows = [];
  const phases = async (label, port, pid, output, shedCount) => {
    for (const floodRate of [0, FLOOD_RATE]) {
      rows.push({ label, floodRate, ...(await floodPhase({ port, pid, callRate: CALL_RATE, floodRate, durationS: DURATION_S, output, shedCount })) });
      await sleep(PAUSE_BETWEEN_RATES_MS);
    }
  };
  const pike = ["--pike-reqs-density-per-unit", String(BENCH_PIKE_DENSITY)];
  for (const [label, args] of [
    ["ksr (load shedding on, its default)", pike],
    ["ksr --no-overload-shedding", [...pike, "--no-overload-shedding"]],
  ]) {
    const server = await startBenchKsr(FLOOD_SCRIPT, args);
    try {
      await phases(label, server.port, server.pid, server.output, () => shedCountInLog(server.output()));
    } finally {
      await stopBenchKsr(server, label);
    }
  }
  if (opts.kamailio) {
    const kamailio = await startKamailio({
      script: FLOOD_SCRIPT,
      port: await findFreePort(),
      cfgTemplate: path.join(REPO_ROOT, "bench", "cfg", "kamailio-anti-flood.cfg"),
      defines: [`PIKE_REQS_DENSITY=${BENCH_PIKE_DENSITY}`],
    });
    try {
      await phases("kamailio 5.6 app_jsdt, 2 workers", kamailio.port, kamailio.pid, kamailio.output);
    } finally {
      await kamailio.stop();
    }
  }
  console.log(
    "| server | flood OPTIONS/s offered | calls completed / offered | calls failed | call retrans | INVITE→200 p50 / p99 ms | flood sent | flood answered 200 | flood not answered 200 | bans logged | 503 shed | server CPU % of a core | RSS start → peak MB | host UDP rcvbuf drops |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    const c = r.calls;
    const f = r.flood;
    const floodSent = f ? f.created : 0;
    console.log(
      `| ${r.label} | ${r.floodRate === 0 ? "none" : `${r.floodRate} (achieved ${fmt(floodSent / DURATION_S)})`} | ${c.successful} / ${CALL_RATE * DURATION_S} | ${c.failed} | ${c.retransmissions} | ` +
        `${fmt(c.rtMs.p50)} / ${fmt(c.rtMs.p99)} | ${f ? floodSent : "-"} | ${f ? f.successful : "-"} | ${f ? f.failed : "-"} | ${r.bans} | ${r.shed ?? "-"} | ` +
        `${fmt(r.cpuShare * 100)}${r.alive ? "" : " (died)"} | ${fmt(r.rssStartMb)} → ${fmt(r.rssMaxMb)} | ${r.kernelDrops} |`,
    );
  }
  const underFlood = rows.filter((r) => r.floodRate > 0);
  return { passed: underFlood.every((r) => r.alive && r.calls.successful >= 0.99 * CALL_RATE * DURATION_S) };
}

/**
 * ksr / Kamailio: highest clean rate (above 1 is better for ksr), and
 * server CPU per call at the highest rate both ladders ran cleanly (below 1
 * is better for ksr), where the load was the same for both.
 */
/** Each ksr ladder against the first one (--workers 1,2: two workers against one). */
function printWorkerRatios(ladders) {
  const [base, ...others] = ladders;
  const ratio = (a, b) => (a > 0 && b > 0 ? fmt(a / b, 2) + "×" : "n/a");
  for (const other of others) {
    console.log(`\n## ${other.label} / ${base.label}\n`);
    console.log(`highest clean rate: ${other.bestClean?.rate ?? "none"} / ${base.bestClean?.rate ?? "none"} = ${ratio(other.bestClean?.rate, base.bestClean?.rate)}`);
    console.log(`highest rate with zero failures: ${other.best?.rate ?? "none"} / ${base.best?.rate ?? "none"} = ${ratio(other.best?.rate, base.best?.rate)}`);
    for (const row of other.rows) {
      const baseRow = base.rows.find((r) => r.rate === row.rate);
      if (baseRow === undefined) continue;
      console.log(
        `at ${row.rate}/s: server CPU per call ${fmt(row.cpuUsPerRequest, 1)} / ${fmt(baseRow.cpuUsPerRequest, 1)} µs = ${ratio(row.cpuUsPerRequest, baseRow.cpuUsPerRequest)}, ` +
          `rt p99 ${fmt(row.result.rtMs.p99)} / ${fmt(baseRow.result.rtMs.p99)} ms`,
      );
    }
  }
}

/** Ratios of a ksr ladder to a reference ladder (Kamailio's, or another ksr ladder), each named by its label. */
function printRatios(ksr, kamailio) {
  const ratio = (a, b) => (a > 0 && b > 0 ? fmt(a / b, 2) + "×" : "n/a");
  const cleanRates = (ladder) => new Set(ladder.rows.filter((r) => r.clean).map((r) => r.rate));
  const kamailioClean = cleanRates(kamailio);
  const common = [...cleanRates(ksr)].filter((rate) => kamailioClean.has(rate)).sort((a, b) => a - b).at(-1);
  const at = (ladder) => ladder.rows.find((r) => r.rate === common);
  console.log(`\n## ${ksr.label} / ${kamailio.label}\n`);
  console.log(`highest clean rate: ${ksr.bestClean?.rate ?? "none"} / ${kamailio.bestClean?.rate ?? "none"} = ${ratio(ksr.bestClean?.rate, kamailio.bestClean?.rate)}`);
  console.log(
    common === undefined
      ? "server CPU per call: no rate ran cleanly on both"
      : `server CPU per call at ${common}/s: ${fmt(at(ksr).cpuUsPerRequest, 1)} / ${fmt(at(kamailio).cpuUsPerRequest, 1)} µs = ${ratio(at(ksr).cpuUsPerRequest, at(kamailio).cpuUsPerRequest)}`,
  );
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
  } else if (SCENARIO === "soak") {
    if (!(await benchSoak())) failed = true;
    if (opts.kamailio) console.log("\n--kamailio: the soak runs ksr only (Kamailio's shared memory is reserved up front, its RSS says little)");
  } else if (SCENARIO === "noisy-neighbour") {
    const built = ensureBuilt();
    if (built) console.log("built dist/ksr.js");
    const noisy = await benchNoisyNeighbour({ rates: RATES, durationS: DURATION_S, ...NOISY });
    if (!noisy.passed) failed = true;
    if (opts.kamailio) console.log("\n--kamailio: Kamailio has no tenants; not run for the noisy-neighbour scenario");
  } else if (SCENARIO === "density") {
    const built = ensureBuilt();
    if (built) console.log("built dist/ksr.js");
    // The shared configuration listens on UDP 127.0.0.1:5060 only.
    const kamailio = opts.kamailio
      ? (calls, rate) => withKamailio(() => runSipp({ scenarioFile: OPTIONS_SCENARIO, targetPort: 5060, transport: "udp", calls, rate }))
      : undefined;
    const density = await benchDensity({ ...DENSITY, rate: RATES[0], durationS: DURATION_S, kamailio: kamailio && (async (calls, rate) => (await kamailio(calls, rate)) ?? undefined) });
    if (!density.passed) failed = true;
  } else if (SCENARIO === "flood") {
    const flood = await benchFlood();
    if (!flood.passed) failed = true;
  } else if (SCENARIO === "overload") {
    const overload = await benchOverload();
    if (!overload.passed) failed = true;
  } else {
    const basic = IS_BASIC ? prepareBasic() : null;
    try {
      const ladders = [];
      for (const workers of WORKER_COUNTS) {
        for (const store of KSR_STORES) {
          const ksr = await benchKsr(basic, workers, store);
          if (!ksr.best) failed = true;
          ladders.push(ksr);
          if (WORKER_COUNTS.length > 1 || KSR_STORES.length > 1) await sleep(PAUSE_BETWEEN_RATES_MS);
        }
      }
      if (ladders.length > 1) printWorkerRatios(ladders);
      if (opts["relay-dns"]) {
        const byName = await benchKsrRelayByName();
        if (!byName.best) failed = true;
        printRatios(byName, ladders[0]);
        ladders.push(byName);
      }
      if (opts.kamailio) {
        const kamailio = await benchKamailio(basic);
        if (kamailio) for (const ksr of ladders) printRatios(ksr, kamailio);
        // With --store redis: Redis against Redis, when kamailio-redis-modules is installed.
        if (kamailio && KSR_STORES.includes("redis")) {
          if (!fs.existsSync("/usr/lib/x86_64-linux-gnu/kamailio/modules/db_redis.so")) {
            console.log("\n--kamailio --store redis: db_redis.so is missing (apt-get install -y kamailio-redis-modules); Kamailio on Redis skipped");
          } else {
            const kamailioRedis = await benchKamailioBasicRedis(basic);
            printRatios(ladders[KSR_STORES.indexOf("redis")], kamailioRedis);
          }
        }
      }
    } finally {
      if (basic) fs.rmSync(basic.workDir, { recursive: true, force: true });
    }
  }
}
if (!opts["no-micro"]) {
  const code = await runMicroBenchmarks();
  if (code !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
