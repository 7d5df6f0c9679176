// Driving `ksr run` and sipp as child processes, shared by the sipp interop
// tests (test/interop) and the load benchmark (scripts/bench.mjs).
//
// Everything here stays on 127.0.0.1, every wait is bounded, and processes
// are stopped by the PID this module started, never by name.
import { spawn, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { percentile } from "./stats.mjs";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const KSR_BIN = path.join(REPO_ROOT, "bin", "ksr.js");
export const KSR_BUNDLE = path.join(REPO_ROOT, "dist", "ksr.js");

const LOCALHOST = "127.0.0.1";

/**
 * Collects a child's stdout and stderr as one text, bounded under chatty
 * logs: past maxChars only the newest half is kept. Returns a reader.
 */
export function captureOutput(child, maxChars) {
  let output = "";
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > maxChars) output = output.slice(-maxChars / 2);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  return () => output;
}

/** The sipp version line, or null when sipp is not on PATH. */
export function sippVersion() {
  const probe = spawnSync("sipp", ["-v"], { encoding: "utf8", timeout: 10_000 });
  if (probe.error) return null;
  const line = `${probe.stdout}\n${probe.stderr}`.split("\n").find((l) => /SIPp v?\d/i.test(l));
  return (line ?? "sipp (unknown version)").trim();
}

function bindUdp(port) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4");
    socket.once("error", reject);
    socket.bind(port, LOCALHOST, () => resolve(socket));
  });
}

function listenTcp(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(port, LOCALHOST, () => resolve(server));
  });
}

/**
 * A port that is free on 127.0.0.1 for both UDP and TCP right now (the OS
 * picks it for UDP; TCP is then checked on the same number). Bounded retries.
 */
export async function findFreePort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = await bindUdp(0);
    const port = udp.address().port;
    try {
      const tcp = await listenTcp(port);
      await new Promise((resolve) => tcp.close(resolve));
      return port;
    } catch {
      // taken on TCP: try another number
    } finally {
      udp.close();
    }
  }
  throw new Error("no port free on both UDP and TCP on 127.0.0.1 after 20 attempts");
}

/**
 * Sends one OPTIONS over UDP and resolves with the status line of the first
 * answer, or null when nothing came back within timeoutMs.
 */
export async function probeOptions(port, timeoutMs = 500) {
  const socket = await bindUdp(0);
  const localPort = socket.address().port;
  const branch = `z9hG4bK-probe-${process.pid}-${Date.now()}`;
  const request =
    `OPTIONS sip:probe@${LOCALHOST}:${port} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${LOCALHOST}:${localPort};branch=${branch}\r\n` +
    `From: <sip:probe@${LOCALHOST}>;tag=probe\r\n` +
    `To: <sip:probe@${LOCALHOST}>\r\n` +
    `Call-ID: ${branch}@${LOCALHOST}\r\n` +
    "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      socket.on("message", (data) => {
        clearTimeout(timer);
        resolve(data.toString("latin1").split("\r\n")[0]);
      });
      socket.send(request, port, LOCALHOST);
    });
  } finally {
    socket.close();
  }
}

/**
 * Whether something listens on 127.0.0.1:port (or the wildcard address) for
 * this protocol, read from /proc/net/{udp,tcp} so that checking never takes
 * the port itself (a bind attempt could make the server's own bind fail).
 */
export function isListening(protocol, port) {
  const TCP_LISTEN = "0A";
  const wanted = new Set([`0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`, `00000000:${port.toString(16).toUpperCase().padStart(4, "0")}`]);
  return fs
    .readFileSync(`/proc/net/${protocol}`, "latin1")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .some((fields) => wanted.has(fields[1]) && (protocol === "udp" || fields[3] === TCP_LISTEN));
}

/** Builds dist/ksr.js (npm run build) when it is missing or older than a source file. */
export function ensureBuilt({ force = false } = {}) {
  const newestSource = ["host", "sandbox", "runtime"]
    .map((dir) => path.join(REPO_ROOT, dir))
    .filter((dir) => fs.existsSync(dir))
    .flatMap((dir) => fs.readdirSync(dir, { recursive: true }).map((f) => path.join(dir, f)))
    .filter((f) => f.endsWith(".ts"))
    .reduce((newest, f) => Math.max(newest, fs.statSync(f).mtimeMs), 0);
  const built = fs.existsSync(KSR_BUNDLE) ? fs.statSync(KSR_BUNDLE).mtimeMs : 0;
  if (!force && built >= newestSource) return false;
  const result = spawnSync(process.execPath, [path.join(REPO_ROOT, "scripts", "build.mjs")], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) {
    throw new Error(`build failed (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  }
  return true;
}

function waitForExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/**
 * Starts `node bin/ksr.js run <script>` listening on UDP and TCP 127.0.0.1:port
 * and resolves once it is ready (bounded by readyTimeoutMs): with readiness
 * "options" (default) once it answers an OPTIONS probe; with "sockets" once
 * its UDP and TCP sockets are open (for scripts that relay an OPTIONS rather
 * than answer it, so that a probe would reach whatever is behind them).
 * Returns { pid, port, output(), stop() }; stop() sends SIGTERM to that PID,
 * then SIGKILL if it has not exited within 5 s.
 */
export async function startKsr({
  script,
  port,
  logLevel = "warn",
  extraArgs = [],
  readyTimeoutMs = 15_000,
  readiness = "options",
}) {
  if (readiness !== "options" && readiness !== "sockets") throw new Error(`readiness must be "options" or "sockets"`);
  if (!fs.existsSync(KSR_BUNDLE)) throw new Error(`${KSR_BUNDLE} is missing: run \`npm run build\` first`);
  const args = [
    KSR_BIN,
    "run",
    script,
    "--listen",
    `udp:${LOCALHOST}:${port}`,
    "--listen",
    `tcp:${LOCALHOST}:${port}`,
    "--log-level",
    logLevel,
    ...extraArgs,
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const output = captureOutput(child, 200_000);
  const handle = {
    pid: child.pid,
    port,
    output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return waitForExit(child, 0);
      child.kill("SIGTERM");
      const exited = await waitForExit(child, 5_000);
      if (exited) return exited;
      child.kill("SIGKILL");
      return (await waitForExit(child, 5_000)) ?? { code: null, signal: "SIGKILL" };
    },
  };
  const spawnError = new Promise((_, reject) => child.once("error", reject));
  spawnError.catch(() => {});
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`ksr run exited (code ${child.exitCode}, signal ${child.signalCode}) before answering:\n${output()}`);
    }
    if (readiness === "options") {
      const status = await Promise.race([probeOptions(port, 300), spawnError]);
      if (status !== null) return handle;
    } else {
      if (isListening("udp", port) && isListening("tcp", port)) return handle;
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), spawnError]);
    }
  }
  await handle.stop();
  const awaited = readiness === "options" ? "answer OPTIONS" : "listen";
  throw new Error(`ksr run did not ${awaited} on udp:${LOCALHOST}:${port} within ${readyTimeoutMs} ms:\n${output()}`);
}

/** "HH:MM:SS" or "HH:MM:SS:uuuuuu" (sipp's stat format) to seconds. */
function sippDurationToSeconds(value) {
  const parts = value.trim().split(":").map(Number);
  const [h, m, s, us = 0] = parts;
  return h * 3600 + m * 60 + s + us / 1e6;
}

/** The last row of a sipp -trace_stat CSV as a header -> value map. */
export function readSippStats(file) {
  const rows = fs
    .readFileSync(file, "latin1")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.split(";"));
  if (rows.length < 2) throw new Error(`${file} has no statistics row`);
  const header = rows[0];
  const last = rows[rows.length - 1];
  return new Map(header.map((name, i) => [name, last[i]]));
}

/**
 * Per-message counters of a sipp -trace_counts CSV (last row), in scenario
 * order. sipp names each column "<index>_<method or status>_<counter>";
 * counters are Sent/Retrans(/Timeout) for a send and Recv/Retrans/Timeout/Unexp
 * for a reception, where Retrans of a reception counts the retransmissions
 * sipp received and folded into it.
 */
export function readSippCounts(file) {
  const stats = readSippStats(file);
  const byIndex = new Map();
  for (const [column, value] of stats) {
    const match = /^(\d+)_(.+)_([A-Za-z]+)$/.exec(column);
    if (!match) continue;
    const index = Number(match[1]);
    const entry = byIndex.get(index) ?? { index, name: match[2], counters: {} };
    entry.counters[match[3]] = Number(value);
    byIndex.set(index, entry);
  }
  return [...byIndex.values()].sort((x, y) => x.index - y.index);
}

/**
 * The counters of the occurrence-th (0-based) scenario step named name
 * ("INVITE", "200", ...) in a SippRun's messages; throws when there is none,
 * so a test cannot silently read a missing step as zero.
 */
export function sippMessageCounters(run, name, occurrence = 0) {
  const steps = run.messages.filter((m) => m.name === name);
  const step = steps[occurrence];
  if (!step) {
    throw new Error(`sipp counts have ${steps.length} step(s) named ${name}, not occurrence ${occurrence}: ${JSON.stringify(run.messages)}`);
  }
  return step.counters;
}

/**
 * Starts one bounded sipp process on 127.0.0.1 and returns at once.
 *
 * A UAC when remotePort is given (sipp sends to 127.0.0.1:remotePort at
 * `rate` calls/s), otherwise a UAS waiting for calls on localPort. The
 * scenario is a file (scenarioFile) or one of sipp's built-in ones
 * (builtinScenario: "uac", "uas", ...). Bounds: sipp stops after `calls`
 * calls (-m; optional for a UAS, which then runs until stopped) or after
 * timeoutS seconds (-timeout); the process is killed 10 s after that bound
 * if it is still running.
 *
 * Returns { pid, localPort, finished, stop() }: finished resolves with the
 * SippRun once sipp exits; stop() sends SIGTERM to that PID (then SIGKILL)
 * and resolves with the same SippRun.
 */
export async function startSipp({
  scenarioFile,
  builtinScenario,
  remotePort,
  localPort,
  transport = "udp",
  calls,
  rate,
  timeoutS,
  recvTimeoutMs = 5_000,
  extraArgs = [],
}) {
  if ((scenarioFile === undefined) === (builtinScenario === undefined)) {
    throw new Error("give exactly one of scenarioFile and builtinScenario");
  }
  const isUac = remotePort !== undefined;
  // A UAS may run without -m: a message it cannot map to a call (a late
  // retransmission) counts as a call of its own, so -m could end it early.
  if (calls !== undefined ? !(calls > 0) : isUac) throw new Error("calls must be positive (and given for a UAC)");
  if (isUac && !(rate > 0)) throw new Error("a UAC needs a positive rate");
  if (!(timeoutS > 0)) throw new Error("timeoutS must be positive");
  const port = localPort ?? (await findFreePort());
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-sipp-"));
  const args = [
    ...(isUac ? [`${LOCALHOST}:${remotePort}`] : []),
    ...(scenarioFile !== undefined ? ["-sf", path.resolve(scenarioFile)] : ["-sn", builtinScenario]),
    "-t",
    transport === "tcp" ? "t1" : "u1",
    "-i",
    LOCALHOST,
    "-p",
    String(port),
    ...(calls !== undefined ? ["-m", String(calls)] : []),
    ...(isUac ? ["-r", String(rate), "-rp", "1000"] : []),
    "-recv_timeout",
    String(recvTimeoutMs),
    "-timeout",
    `${timeoutS}s`,
    "-nostdin",
    "-buff_size",
    "4194304",
    "-trace_stat",
    "-stf",
    path.join(workDir, "stat.csv"),
    "-trace_counts",
    "-fd",
    "1",
    "-trace_err",
    ...(isUac ? ["-trace_rtt", "-rtt_freq", "1"] : []),
    ...extraArgs,
  ];
  const started = performance.now();
  // sipp writes its trace files into its working directory.
  const child = spawn("sipp", args, { cwd: workDir, stdio: ["ignore", "pipe", "pipe"] });
  const output = captureOutput(child, 100_000);
  const exit = new Promise((resolve, reject) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), (timeoutS + 10) * 1000);
    child.once("error", (err) => {
      clearTimeout(killer);
      reject(new Error(`cannot run sipp: ${err.message}`));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal });
    });
  });
  const finished = exit.then((result) => collectSippRun(workDir, result, (performance.now() - started) / 1000, output()));
  finished.catch(() => {}); // observed by whoever awaits it; no unhandled rejection meanwhile
  return {
    pid: child.pid,
    localPort: port,
    finished,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const stopped = await Promise.race([exit.then(() => true), new Promise((r) => setTimeout(() => r(false), 5_000))]);
        if (!stopped) child.kill("SIGKILL");
      }
      return finished;
    },
  };
}

/** Reads what a finished sipp left in workDir; removes workDir unless sipp failed. */
function collectSippRun(workDir, exit, wallS, output) {
  const statFile = path.join(workDir, "stat.csv");
  if (!fs.existsSync(statFile)) {
    throw new Error(`sipp wrote no statistics (exit ${exit.code}, signal ${exit.signal}); files in ${workDir}:\n${output.slice(-3000)}`);
  }
  const stats = readSippStats(statFile);
  const count = (name) => Number(stats.get(name) ?? NaN);
  const files = fs.readdirSync(workDir);
  const rttFile = files.find((f) => f.endsWith("_rtt.csv"));
  const rtts = rttFile
    ? fs
        .readFileSync(path.join(workDir, rttFile), "latin1")
        .split("\n")
        .slice(1)
        .map((l) => Number(l.split(";")[1]))
        .filter((v) => Number.isFinite(v))
        .sort((x, y) => x - y)
    : [];
  const countsFile = files.find((f) => f.endsWith("_counts.csv"));
  const messages = countsFile ? readSippCounts(path.join(workDir, countsFile)) : [];
  const errorFile = files.find((f) => f.endsWith("_errors.log"));
  const errors = errorFile ? fs.readFileSync(path.join(workDir, errorFile), "latin1").slice(0, 4000) : "";
  // Keep sipp's files only when something went wrong, for the post-mortem.
  const keptWorkDir = exit.code === 0 ? null : workDir;
  if (!keptWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
  return {
    exitCode: exit.code,
    signal: exit.signal,
    created: (stats.has("OutgoingCall(C)") ? count("OutgoingCall(C)") : 0) + (stats.has("IncomingCall(C)") ? count("IncomingCall(C)") : 0),
    successful: count("SuccessfulCall(C)"),
    failed: count("FailedCall(C)"),
    retransmissions: count("Retransmissions(C)"),
    timeouts: count("FailedMaxUDPRetrans(C)") + count("FailedTimeoutOnRecv(C)"),
    unexpected: count("FailedUnexpectedMessage(C)"),
    achievedRate: count("CallRate(C)"),
    elapsedS: sippDurationToSeconds(stats.get("ElapsedTime(C)") ?? "0:0:0"),
    wallS,
    rtMs: {
      mean: rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : NaN,
      p50: percentile(rtts, 0.5),
      p99: percentile(rtts, 0.99),
      max: rtts.length ? rtts[rtts.length - 1] : NaN,
    },
    messages,
    errors,
    output,
    keptWorkDir,
  };
}

/**
 * Runs one bounded sipp UAC load against 127.0.0.1:targetPort.
 *   transport: "udp" (sipp -t u1) or "tcp" (sipp -t t1, one connection)
 *   calls, rate: sipp -m and -r (calls per second)
 *   scenarioFile, or builtinScenario for one of sipp's own ("uac")
 * Resolves with sipp's exit code and counters from its final statistics row;
 * response times (ms, sipp resolution 1 ms) from its per-call rtt trace.
 */
export async function runSipp({
  scenarioFile,
  builtinScenario,
  targetPort,
  transport = "udp",
  calls,
  rate,
  localPort,
  recvTimeoutMs = 5_000,
  extraArgs = [],
}) {
  if (!(calls > 0 && rate > 0)) throw new Error("calls and rate must be positive");
  // Bound: the time the calls need at this rate, plus room for the last
  // answers and sipp's retransmissions.
  const timeoutS = Math.ceil(calls / rate) + Math.ceil(recvTimeoutMs / 1000) + 20;
  const sipp = await startSipp({
    scenarioFile,
    builtinScenario,
    remotePort: targetPort,
    localPort,
    transport,
    calls,
    rate,
    timeoutS,
    recvTimeoutMs,
    extraArgs,
  });
  const run = await sipp.finished;
  return { ...run, transport, calls, rate };
}

// Fields of /proc/<pid>/stat after "(comm) ": state [0], ppid [1], utime [11], stime [12] (clock ticks).
function readProcStat(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/**
 * Calls through the server under test: a fresh sipp UAS on uasPort (without
 * -m: a late retransmitted BYE would count as a call and end it early;
 * stopped by PID once the UAC is done), and a sipp UAC sending `calls` calls
 * at `rate` to targetPort with -d 0 (no pause before the BYE) and a 180
 * forwarded after its 200 ignored instead of failing the call (anything else
 * unexpected still ends as a failed call). `uac` names the UAC scenario and
 * any extra arguments, `uas` the UAS scenario (default sipp's uas). Resolves with the UAC's result and the UAS's CPU
 * share over the run.
 */
export async function runCallsThroughUas({ targetPort, uasPort, calls, rate, recvTimeoutMs, uac = {}, uas: uasScenario = {} }) {
  const uas = await startSipp({
    ...(uasScenario.scenarioFile !== undefined ? { scenarioFile: uasScenario.scenarioFile } : { builtinScenario: "uas" }),
    localPort: uasPort,
    timeoutS: Math.ceil(calls / rate) + 40,
    recvTimeoutMs,
  });
  for (let i = 0; i < 50 && !isListening("udp", uasPort); i++) await new Promise((r) => setTimeout(r, 100));
  const uasCpuBefore = processCpuSeconds(uas.pid);
  const started = performance.now();
  try {
    const result = await runSipp({
      ...(uac.scenarioFile !== undefined ? { scenarioFile: uac.scenarioFile } : { builtinScenario: "uac" }),
      targetPort,
      transport: "udp",
      calls,
      rate,
      recvTimeoutMs,
      extraArgs: [...(uac.extraArgs ?? []), "-d", "0", "-default_behaviors", "bye,pingreply"],
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
}

/** Whether a process of that pid exists (signal 0). */
export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** CPU time (user + system, all threads) of a live process in seconds, from /proc. */
export function processCpuSeconds(pid) {
  return readProcStat(pid).ticks / clockTicksPerSecond();
}

/**
 * CPU time of a live process and all its live descendants in seconds (for
 * servers with worker processes, such as Kamailio); 0 when pid is gone.
 */
export function processTreeCpuSeconds(pid) {
  const stats = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      stats.set(Number(entry), readProcStat(entry));
    } catch {
      // exited while we were reading
    }
  }
  if (!stats.has(pid)) return 0;
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [child, { ppid }] of stats) {
      if (tree.has(ppid) && !tree.has(child)) {
        tree.add(child);
        grew = true;
      }
    }
  }
  let ticks = 0;
  for (const member of tree) ticks += stats.get(member).ticks;
  return ticks / clockTicksPerSecond();
}

/**
 * CPU seconds of each live process of the tree under pid, with its depth
 * (0: pid itself): for `ksr run --workers`, depth 0 is the supervisor, 1
 * the front, 2 the workers. Empty when pid is gone.
 */
export function processTreeCpuByProcess(pid) {
  const stats = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      stats.set(Number(entry), readProcStat(entry));
    } catch {
      // exited while we were reading
    }
  }
  const out = new Map();
  if (!stats.has(pid)) return out;
  const depth = new Map([[pid, 0]]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [child, { ppid }] of stats) {
      if (depth.has(ppid) && !depth.has(child)) {
        depth.set(child, depth.get(ppid) + 1);
        grew = true;
      }
    }
  }
  for (const [member, d] of depth) out.set(member, { depth: d, seconds: stats.get(member).ticks / clockTicksPerSecond() });
  return out;
}

let ticksPerSecond;
function clockTicksPerSecond() {
  if (ticksPerSecond === undefined) {
    const probe = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5_000 });
    const value = Number(probe.stdout?.trim());
    ticksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return ticksPerSecond;
}

/**
 * The system-wide UDP receive-buffer overflow counter (Udp: RcvbufErrors in
 * /proc/net/snmp): datagrams the kernel dropped because a socket's receive
 * buffer was full. Any socket counts, so read it around a run.
 */
export function udpReceiveBufferErrors() {
  const udpLines = fs
    .readFileSync("/proc/net/snmp", "latin1")
    .split("\n")
    .filter((l) => l.startsWith("Udp:"));
  if (udpLines.length < 2) return NaN;
  const names = udpLines[0].trim().split(/\s+/);
  const values = udpLines[1].trim().split(/\s+/);
  return Number(values[names.indexOf("RcvbufErrors")]);
}
