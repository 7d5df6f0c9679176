// REGISTER over WebSocket: `examples/webrtc-registrar.js` served by ksr
// (--listen ws:) and, with --kamailio, by Kamailio 5.6 (app_jsdt +
// websocket + xhttp, bench/cfg/kamailio-webrtc.cfg) running the same
// script, in the same run. CONNECTIONS WebSocket clients, each a user of
// its own, send REGISTER after REGISTER (the next once the 200 is in) for
// SECONDS; the result is registrations per second and the latency of each,
// and the ratio ksr / Kamailio.
//
//   flock /tmp/ksr-bench.lock node bench/ws-register.mjs --seconds 10 --connections 20 --kamailio [--workers 2]
//
// Everything on 127.0.0.1; both servers are started and stopped here.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { REPO_ROOT, ensureBuilt, findFreePort, startKsr } from "./lib/sipp.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "20" },
    kamailio: { type: "boolean", default: false },
    // ksr's worker processes behind its front (Kamailio runs 2 TCP workers here).
    workers: { type: "string", default: "1" },
  },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
if (!(SECONDS > 0 && SECONDS <= 120) || !(CONNECTIONS > 0 && CONNECTIONS <= 500)) throw new Error("--seconds 1-120, --connections 1-500");
const WORKERS = Number(values.workers);
if (!(WORKERS >= 1 && WORKERS <= 8)) throw new Error("--workers 1-8");
const SCRIPT = path.join(REPO_ROOT, "examples", "webrtc-registrar.js");

function register(user, cseq) {
  return (
    `REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS ${user}.invalid;branch=z9hG4bK${user}x${cseq}\r\nMax-Forwards: 70\r\n` +
    `From: <sip:${user}@127.0.0.1>;tag=${user}\r\nTo: <sip:${user}@127.0.0.1>\r\nCall-ID: ${user}-reg\r\nCSeq: ${cseq} REGISTER\r\n` +
    `Contact: <sip:${user}@${user}.invalid;transport=ws>;expires=600\r\nContent-Length: 0\r\n\r\n`
  );
}

/** One client: REGISTER after REGISTER until the deadline; resolves with its latencies (ms) and non-200 count. */
function client(port, index, deadline) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ["sip"]);
    const user = `u${index}`;
    const latencies = [];
    const failures = new Map();
    let cseq = 0;
    let sentAt = 0;
    const next = () => {
      if (Date.now() >= deadline) {
        ws.close();
        resolve({ latencies, failures });
        return;
      }
      cseq++;
      sentAt = performance.now();
      ws.send(register(user, cseq));
    };
    ws.on("open", next);
    ws.on("message", (data) => {
      const text = data.toString("latin1");
      if (!text.startsWith("SIP/2.0 ")) return;
      const status = Number(text.slice(8, 11));
      if (status < 200) return;
      latencies.push(performance.now() - sentAt);
      if (status !== 200) failures.set(text.split("\r\n")[0], (failures.get(text.split("\r\n")[0]) ?? 0) + 1);
      next();
    });
    ws.on("error", reject);
  });
}

async function load(port) {
  const deadline = Date.now() + SECONDS * 1000;
  const results = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => client(port, i, deadline)));
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const failures = new Map();
  for (const r of results) for (const [line, n] of r.failures) failures.set(line, (failures.get(line) ?? 0) + n);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { perSecond: latencies.length / SECONDS, total: latencies.length, failures, p50: at(0.5), p99: at(0.99) };
}

function describe(name, r) {
  const notOk = [...r.failures].map(([line, n]) => `${n}× ${line}`).join(", ");
  return `${name}: ${r.perSecond.toFixed(0)} REGISTER/s (${r.total} in ${SECONDS} s${notOk === "" ? ", all 200" : `; not 200: ${notOk}`}), latency p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`;
}

async function waitForTcp(port, child) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`kamailio exited with ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ["sip"]);
      ws.on("open", () => {
        ws.close();
        resolve(true);
      });
      ws.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("kamailio did not accept WebSocket connections within 10 s");
}

async function runKamailio() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-kamailio-ws-"));
  const [udpPort, wsPort] = [await findFreePort(), await findFreePort()];
  const script = path.join(dir, "webrtc-registrar.js");
  fs.writeFileSync(
    script,
    fs.readFileSync(SCRIPT, "utf8") +
      "\n// Kamailio only: xhttp's event callback accepts the WebSocket handshake.\n" +
      'function ksr_xhttp_event(evname) {\n  if (KSR.websocket.handle_handshake() < 0) KSR.xhttp.xhttp_reply(404, "Not Found", "", "");\n}\n',
  );
  const cfg = fs
    .readFileSync(path.join(REPO_ROOT, "bench", "cfg", "kamailio-webrtc.cfg"), "utf8")
    .replaceAll("SIP_UDP_PORT", String(udpPort))
    .replaceAll("WS_PORT", String(wsPort))
    .replace("JS_SCRIPT_PATH", script);
  fs.writeFileSync(path.join(dir, "kamailio.cfg"), cfg);
  const child = spawn("kamailio", ["-f", path.join(dir, "kamailio.cfg"), "-DD", "-E", "-m", "256", "-M", "32", "-Y", dir], { cwd: dir, stdio: ["ignore", "ignore", "ignore"] });
  try {
    await waitForTcp(wsPort, child);
    return await load(wsPort);
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runKsr() {
  ensureBuilt();
  const [sipPort, wsPort] = [await findFreePort(), await findFreePort()];
  // One process keeps its registrations in memory, as Kamailio's usrloc db_mode 0 here; worker
  // processes share theirs through a SQLite file (they cannot share memory).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-ws-bench-"));
  const location = WORKERS > 1 ? ["--workers", String(WORKERS), "--db", path.join(dir, "ksr.sqlite")] : ["--location", "memory", "--db", ":memory:"];
  const ksr = await startKsr({ script: SCRIPT, port: sipPort, extraArgs: ["--listen", `ws:127.0.0.1:${wsPort}`, "--no-supervise", ...location] });
  try {
    return await load(wsPort);
  } finally {
    await ksr.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`REGISTER over WebSocket, ${CONNECTIONS} connections, ${SECONDS} s each (examples/webrtc-registrar.js)`);
const ours = await runKsr();
console.log(describe(`ksr-sandbox${WORKERS > 1 ? ` --workers ${WORKERS}` : ""}`, ours));
if (values.kamailio) {
  const theirs = await runKamailio();
  console.log(describe("Kamailio 5.6 (app_jsdt, websocket)", theirs));
  console.log(`ratio ksr/Kamailio: throughput ${(ours.perSecond / theirs.perSecond).toFixed(2)}, p50 latency ${(ours.p50 / theirs.p50).toFixed(2)}, p99 latency ${(ours.p99 / theirs.p99).toFixed(2)}`);
}
