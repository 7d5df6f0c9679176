// Multi-core spike: how should `ksr run --workers N` spread one script over N
// processes while a transaction's messages keep reaching the worker that holds it?
//
// Self-contained (none of the project's code): a synthetic SIP-sized workload
// (600-byte requests, a 300-byte answer) with a per-message busy loop standing
// in for parsing, routing and the transaction layer. Every message has an
// owner: worker hash(Call-ID) mod N, the rule a real server would apply to every
// message of a call (a proxy keeps the Call-ID on both legs and in responses). A
// message that arrives at another process is handed off to its owner.
//
//   flock /tmp/ksr-bench.lock node bench/workers-spike.mjs [--seconds 3] [--busy 0,50,300]
//       [--workers 2] [--only <substrings of design names, comma-separated>]
//       [--rates-0 ...] [--rates-50 ...] [--rates-300 ...] [--json]
//   node bench/workers-spike.mjs --check-ivm-thread   (isolated-vm inside a worker thread)
//   node bench/workers-spike.mjs --shared-state [--workers 2]   (a cross-process store's cost per operation)
//
// Designs (one server per design, started fresh for each busy level):
//   single          one process, one socket (the baseline)
//   cluster-none    cluster, one UDP handle shared by N workers (the kernel gives each datagram
//                   to whichever worker reads first); every worker handles what it gets, no
//                   affinity: an upper bound, not a correct design
//   cluster-udp     cluster shared handle; a misdelivered message is handed to its owner as a
//                   loopback datagram to the owner's private port
//   cluster-udp-1src the same, load from ONE source socket
//   cluster-udp-hof the same, 16 sources, hand-offs first: a worker hands on the datagrams it
//                   does not own before it works on those it owns
//   cluster-ipc     cluster shared handle; hand-off over IPC through the primary (JSON batches)
//   readers-1       cluster shared handle read by ONE dedicated reader process that hands every
//                   message to its owner among N workers (loopback datagram); the workers only
//                   send on the shared handle (a front without IPC, scripts out of the reader)
//   reuseport-1src  a socket per worker with SO_REUSEPORT, load from ONE source socket (sipp's
//                   default): the kernel's 4-tuple hash sends everything to one worker
//   reuseport-64src the same with 64 source sockets (sipp -t un style, many UAs)
//   front-ipc       a front process owns the socket and posts each message to worker
//                   hash(Call-ID) mod N over IPC in JSON batches, the worker posts the answer
//                   back and the front sends it (today's tenant-process model)
//
// The load generator runs in this process: open loop at a fixed rate from S source
// sockets, each answer matched to its request; latency = answer received - request sent.
// Server CPU = utime+stime of every server process (/proc/<pid>/stat) over the step.
// Each step is --seconds long plus a 0.5 s drain; the whole run is bounded by
// designs x busy levels x rates x (seconds + 1.5 s).
import cluster from "node:cluster";
import dgram from "node:dgram";
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { percentile } from "./lib/stats.mjs";

const ROLE = process.env.WORKERS_SPIKE_ROLE ?? "bench";
const now = () => performance.now();

// ---------------------------------------------------------------- shared helpers

/**
 * FNV-1a with murmur3's final mix. Plain FNV-1a is no good modulo a power of
 * two: its lowest bit is the parity of the characters' lowest bits, so Call-IDs
 * that differ by a counter alternate owners in step with how the kernel
 * alternates readers (the first run of this spike measured 21-46 % hand-offs
 * instead of 50 % for two workers).
 */
function callIdHash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function headerValue(text, name) {
  const start = text.indexOf(`\r\n${name}: `);
  if (start < 0) return "";
  const from = start + name.length + 4;
  return text.slice(from, text.indexOf("\r\n", from));
}

/**
 * The stand-in for routing: a wall-clock spin. (A calibrated computation loop
 * was tried and dropped: V8 re-optimised it after ~1000 calls into code 5x
 * slower; getrusage's thread CPU time is too coarse to spin on.) Under
 * preemption a worker burns less than `us` of CPU per message; the CPU column
 * measures what was actually burnt.
 */
function busyWork(us) {
  const until = now() + us / 1000;
  while (now() < until);
}

/** Routing stand-in: read the message, burn busyUs of CPU, build the answer. */
function route(text, busyUs, receiver, handler) {
  busyWork(busyUs);
  return (
    `SIP/2.0 200 OK\r\nVia: ${headerValue(text, "Via")}\r\nCall-ID: ${headerValue(text, "Call-ID")}\r\n` +
    `CSeq: 1 INVITE\r\nX-Seq: ${headerValue(text, "X-Seq")}\r\nX-Worker: ${receiver},${handler}\r\n` +
    `Server: workers-spike\r\nContent-Length: 0\r\n\r\n`
  );
}

const ownerOf = (text, n) => callIdHash(headerValue(text, "Call-ID")) % n;

// ---------------------------------------------------------------- server roles

const cfg = ROLE === "bench" ? null : JSON.parse(process.env.WORKERS_SPIKE_CFG);

function bigBuffers(socket) {
  socket.setRecvBufferSize(4 << 20);
  socket.setSendBufferSize(4 << 20);
}

function runSingle() {
  const socket = dgram.createSocket("udp4");
  socket.on("message", (msg, rinfo) => {
    socket.send(route(msg.toString("latin1"), cfg.busyUs, 0, 0), rinfo.port, rinfo.address);
  });
  socket.bind(cfg.port, "127.0.0.1", () => {
    bigBuffers(socket);
    process.send({ ready: true, pids: [process.pid] });
  });
}

/**
 * A worker with a public socket (shared handle or SO_REUSEPORT) and, for the UDP
 * hand-off, a private port per worker. The hand-off datagram is the original bytes
 * after a line with the original source, so that the owner answers it directly.
 */
function runAffinityWorker(id, publicSocket, handoff) {
  const n = cfg.workers;
  const answer = (text, port, address, receiver) =>
    publicSocket.send(route(text, cfg.busyUs, receiver, id), port, address);
  let privateSocket = null;
  const ipcPending = [];
  let ipcFlushScheduled = false;
  const flushIpc = () => {
    ipcFlushScheduled = false;
    const byOwner = new Map();
    for (const item of ipcPending) {
      if (!byOwner.has(item[0])) byOwner.set(item[0], []);
      byOwner.get(item[0]).push(item.slice(1));
    }
    ipcPending.length = 0;
    for (const [to, items] of byOwner) process.send({ to, items });
  };
  // With handOffFirst, the messages this worker owns wait until the datagrams
  // libuv read in the same turn have been classified and the others handed on,
  // so that a handed-off message does not queue behind this worker's work too.
  const own = [];
  const drainOwn = () => {
    for (const [text, port, address] of own.splice(0)) answer(text, port, address, id);
  };
  publicSocket.on("message", (msg, rinfo) => {
    const text = msg.toString("latin1");
    const owner = handoff === "none" ? id : ownerOf(text, n);
    if (owner === id && cfg.handOffFirst) {
      if (own.push([text, rinfo.port, rinfo.address]) === 1) setImmediate(drainOwn);
      return;
    }
    if (owner === id) return answer(text, rinfo.port, rinfo.address, id);
    if (handoff === "udp") {
      privateSocket.send(`${rinfo.port} ${rinfo.address} ${id}\n${text}`, cfg.handoffBase + owner, "127.0.0.1");
    } else {
      ipcPending.push([owner, text, rinfo.port, rinfo.address, id]);
      if (!ipcFlushScheduled) {
        ipcFlushScheduled = true;
        setImmediate(flushIpc);
      }
    }
  });
  process.on("message", (batch) => {
    if (!batch.items) return;
    for (const [text, port, address, receiver] of batch.items) answer(text, port, address, receiver);
  });
  const bound = () => process.send({ bound: true, pid: process.pid });
  const bindPublic = (done) =>
    publicSocket.bind({ port: cfg.port, address: "127.0.0.1", exclusive: false }, () => {
      bigBuffers(publicSocket);
      done();
    });
  if (handoff !== "udp") return bindPublic(bound);
  privateSocket = dgram.createSocket("udp4");
  privateSocket.on("message", (msg) => {
    const text = msg.toString("latin1");
    const newline = text.indexOf("\n");
    const [port, address, receiver] = text.slice(0, newline).split(" ");
    answer(text.slice(newline + 1), Number(port), address, Number(receiver));
  });
  privateSocket.bind({ port: cfg.handoffBase + id, address: "127.0.0.1", exclusive: true }, () => {
    bigBuffers(privateSocket);
    bindPublic(bound);
  });
}

/** Starts N children (cluster workers or plain forks) and reports ready once all are bound. */
function superviseChildren(children, relayIpc) {
  let bound = 0;
  const pids = [process.pid];
  children.forEach((child) => {
    child.on("message", (m) => {
      if (m.bound) {
        pids.push(m.pid);
        if (++bound === children.length) process.send({ ready: true, pids });
      } else if (relayIpc && m.items) children[m.to].send(m);
    });
  });
}

function runCluster(handoff) {
  if (cluster.isPrimary) {
    const children = [];
    for (let id = 0; id < cfg.workers; id++) children.push(cluster.fork({ WORKERS_SPIKE_WORKER_ID: String(id) }));
    superviseChildren(children, handoff === "ipc");
  } else {
    runAffinityWorker(Number(process.env.WORKERS_SPIKE_WORKER_ID), dgram.createSocket("udp4"), handoff);
  }
}

/**
 * Dedicated readers: `readers` processes read the shared socket and hand every
 * message to its owner among N workers (loopback datagram); the workers never
 * read the shared socket (libuv's receive stopped on their copy of the handle;
 * `_handle.recvStop()` is Node-internal, good enough for a spike) but answer
 * from it, so that every answer leaves from the listen port.
 */
function runReaderCluster() {
  if (cluster.isPrimary) {
    const children = [];
    for (let id = 0; id < cfg.workers; id++) children.push(cluster.fork({ WORKERS_SPIKE_WORKER_ID: String(id) }));
    for (let r = 0; r < cfg.readers; r++) children.push(cluster.fork({ WORKERS_SPIKE_READER_ID: String(r) }));
    superviseChildren(children, false);
    return;
  }
  const publicSocket = dgram.createSocket("udp4");
  const bound = () => process.send({ bound: true, pid: process.pid });
  const readerId = process.env.WORKERS_SPIKE_READER_ID;
  if (readerId !== undefined) {
    publicSocket.on("message", (msg, rinfo) => {
      const text = msg.toString("latin1");
      const owner = ownerOf(text, cfg.workers);
      publicSocket.send(`${rinfo.port} ${rinfo.address} r${readerId}\n${text}`, cfg.handoffBase + owner, "127.0.0.1");
    });
    publicSocket.bind({ port: cfg.port, address: "127.0.0.1", exclusive: false }, () => {
      bigBuffers(publicSocket);
      bound();
    });
    return;
  }
  const id = Number(process.env.WORKERS_SPIKE_WORKER_ID);
  process.noDeprecation = true; // `_handle` below
  const privateSocket = dgram.createSocket("udp4");
  privateSocket.on("message", (msg) => {
    const text = msg.toString("latin1");
    const newline = text.indexOf("\n");
    const [port, address, receiver] = text.slice(0, newline).split(" ");
    publicSocket.send(route(text.slice(newline + 1), cfg.busyUs, receiver, id), Number(port), address);
  });
  privateSocket.bind({ port: cfg.handoffBase + id, address: "127.0.0.1", exclusive: true }, () => {
    bigBuffers(privateSocket);
    publicSocket.bind({ port: cfg.port, address: "127.0.0.1", exclusive: false }, () => {
      publicSocket._handle.recvStop();
      bound();
    });
  });
}

function runReusePort() {
  if (process.env.WORKERS_SPIKE_WORKER_ID === undefined) {
    const children = [];
    for (let id = 0; id < cfg.workers; id++) {
      children.push(fork(process.argv[1], [], { env: { ...process.env, WORKERS_SPIKE_WORKER_ID: String(id) } }));
    }
    superviseChildren(children, true);
  } else {
    const socket = dgram.createSocket({ type: "udp4", reusePort: true });
    runAffinityWorker(Number(process.env.WORKERS_SPIKE_WORKER_ID), socket, "udp");
  }
}

function runFront() {
  if (process.env.WORKERS_SPIKE_WORKER_ID === undefined) {
    const socket = dgram.createSocket("udp4");
    const children = [];
    for (let id = 0; id < cfg.workers; id++) {
      const child = fork(process.argv[1], [], { env: { ...process.env, WORKERS_SPIKE_WORKER_ID: String(id) } });
      child.on("message", (m) => {
        if (m.out) for (const [text, port, address] of m.out) socket.send(text, port, address);
      });
      children.push(child);
    }
    const pending = children.map(() => []);
    let flushScheduled = false;
    const flush = () => {
      flushScheduled = false;
      pending.forEach((items, id) => {
        if (items.length === 0) return;
        children[id].send({ items });
        pending[id] = [];
      });
    };
    socket.on("message", (msg, rinfo) => {
      const text = msg.toString("latin1");
      pending[ownerOf(text, cfg.workers)].push([text, rinfo.port, rinfo.address]);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });
    const pids = [process.pid];
    let started = 0;
    children.forEach((child) =>
      child.on("message", (m) => {
        if (!m.bound) return;
        pids.push(m.pid);
        if (++started === children.length) {
          socket.bind(cfg.port, "127.0.0.1", () => {
            bigBuffers(socket);
            process.send({ ready: true, pids });
          });
        }
      }),
    );
  } else {
    const id = Number(process.env.WORKERS_SPIKE_WORKER_ID);
    process.on("message", (m) => {
      process.send({ out: m.items.map(([text, port, address]) => [route(text, cfg.busyUs, "front", id), port, address]) });
    });
    process.send({ bound: true, pid: process.pid });
  }
}

// ---------------------------------------------------------------- the bench

const DESIGNS = {
  single: { mode: "single", sources: 16 },
  "cluster-none": { mode: "cluster-none", sources: 16 },
  "cluster-udp": { mode: "cluster-udp", sources: 16 },
  "cluster-udp-1src": { mode: "cluster-udp", sources: 1 },
  "cluster-udp-hof": { mode: "cluster-udp", sources: 16, handOffFirst: true },
  "cluster-ipc": { mode: "cluster-ipc", sources: 16 },
  "readers-1": { mode: "readers", sources: 16, readers: 1 },
  "reuseport-1src": { mode: "reuseport", sources: 1 },
  "reuseport-64src": { mode: "reuseport", sources: 64 },
  "front-ipc": { mode: "front", sources: 16 },
};

function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}
const TICK_MS = 10; // USER_HZ = 100 on Linux

// The generator shares the two cores with the server, so requests are stamped
// from a template (the sequence number written in place, fixed width) and answers
// are read without decoding them whole.
const SEQ_WIDTH = 10;
const SEQ_MARK = "#".repeat(SEQ_WIDTH);
const REQUEST_TEMPLATE = (() => {
  const head =
    `INVITE sip:bob@example.com SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-spike-${SEQ_MARK}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=${SEQ_MARK}\r\nTo: <sip:bob@example.com>\r\n` +
    `Call-ID: ${SEQ_MARK}-workers-spike@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\n` +
    `X-Seq: ${SEQ_MARK}\r\nContent-Type: application/sdp\r\n`;
  const tail = "\r\nContent-Length: 0\r\n\r\n";
  const text = `${head}X-Pad: ${"x".repeat(600 - head.length - 7 - tail.length)}${tail}`;
  const offsets = [];
  for (let at = text.indexOf(SEQ_MARK); at >= 0; at = text.indexOf(SEQ_MARK, at + 1)) offsets.push(at);
  return { bytes: Buffer.from(text, "latin1"), offsets };
})();

function requestBytes(seq) {
  const out = Buffer.allocUnsafe(REQUEST_TEMPLATE.bytes.length);
  REQUEST_TEMPLATE.bytes.copy(out);
  const digits = String(seq).padStart(SEQ_WIDTH, "0");
  for (const at of REQUEST_TEMPLATE.offsets) out.write(digits, at, "latin1");
  return out;
}

const X_SEQ = Buffer.from("\r\nX-Seq: ");
const X_WORKER = Buffer.from("\r\nX-Worker: ");

async function startServer(design, busyUs, args) {
  const env = {
    ...process.env,
    WORKERS_SPIKE_ROLE: "server",
    WORKERS_SPIKE_CFG: JSON.stringify({
      mode: design.mode,
      handOffFirst: design.handOffFirst === true,
      readers: design.readers ?? 0,
      workers: args.workers,
      busyUs,
      port: args.port,
      handoffBase: args.port + 10,
    }),
  };
  delete env.WORKERS_SPIKE_WORKER_ID;
  const child = fork(process.argv[1], [], { env });
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${design.mode}: not ready in 10 s`)), 10_000);
    child.on("message", (m) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.on("exit", (code) => reject(new Error(`${design.mode}: server exited ${code}`)));
  });
  return { child, pids: ready.pids };
}

async function stopServer(server) {
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
  // cluster workers and forks end with their parent's IPC channel; give them a moment
  await new Promise((r) => setTimeout(r, 300));
}

async function openSources(count) {
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const s = dgram.createSocket("udp4");
    await new Promise((r) => s.bind(0, "127.0.0.1", r));
    bigBuffers(s);
    sockets.push(s);
  }
  return sockets;
}

/** One open-loop step at `rate` msg/s: returns answered share, latencies, server CPU and hand-off share. */
async function loadStep(server, sources, rate, seconds, port) {
  const total = Math.round(rate * seconds);
  const sentAt = new Float64Array(total);
  const latencies = [];
  let handedOff = 0;
  const perWorker = new Map();
  const onAnswer = (msg) => {
    const seqAt = msg.indexOf(X_SEQ) + X_SEQ.length;
    const seq = Number(msg.toString("latin1", seqAt, seqAt + SEQ_WIDTH));
    if (!(seq >= 0 && seq < total) || sentAt[seq] === 0) return;
    latencies.push(now() - sentAt[seq]);
    sentAt[seq] = 0;
    const workerAt = msg.indexOf(X_WORKER) + X_WORKER.length;
    const [receiver, handler] = msg.toString("latin1", workerAt, msg.indexOf("\r\n", workerAt)).split(",");
    if (receiver !== handler) handedOff++;
    perWorker.set(receiver, (perWorker.get(receiver) ?? 0) + 1);
  };
  for (const s of sources) s.on("message", onAnswer);
  const cpuBefore = server.pids.map(cpuTicks);
  const selfBefore = process.cpuUsage();
  const start = now();
  let sent = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate));
      for (; sent < due; sent++) {
        sentAt[sent] = now();
        sources[sent % sources.length].send(requestBytes(sent), port, "127.0.0.1");
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const elapsed = (now() - start) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  const cpuAfter = server.pids.map(cpuTicks);
  const self = process.cpuUsage(selfBefore);
  for (const s of sources) s.off("message", onAnswer);
  const cpuUsPerMsgByProcess = cpuAfter.map((t, i) => Math.round(((t - cpuBefore[i]) * TICK_MS * 1000) / total));
  const serverCpuMs = cpuAfter.reduce((sum, t, i) => sum + (t - cpuBefore[i]), 0) * TICK_MS;
  latencies.sort((x, y) => x - y);
  return {
    rate,
    achieved: Math.round(total / elapsed),
    answered: latencies.length / total,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    cpuUsPerMsg: (serverCpuMs * 1000) / total,
    cpuUsPerMsgByProcess,
    generatorUsPerMsg: (self.user + self.system) / total,
    handedOff: latencies.length ? handedOff / latencies.length : 0,
    receivedBy: [...perWorker.entries()].sort().map(([w, c]) => `${w}:${Math.round((100 * c) / latencies.length)}%`).join(" "),
  };
}

/**
 * What script-visible shared state (htable, $shv, pike counters) would cost if
 * kept where every worker process reads and writes it synchronously: a SQLite
 * file in /dev/shm (tmpfs: no disk), WAL, synchronous=OFF, one connection per
 * process. Node has no shared memory between processes without a native
 * addon; this is the synchronous cross-process store at hand. `writers`
 * processes run the same loop at once, to show the write lock's contention.
 */
async function sharedStateCosts(writers, ops) {
  const file = `/dev/shm/workers-spike-${process.pid}.db`;
  const Database = (await import("better-sqlite3")).default;
  const setup = new Database(file);
  setup.pragma("journal_mode = WAL");
  setup.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID");
  setup.close();
  const run = () =>
    new Promise((resolve, reject) => {
      const child = fork(process.argv[1], [], {
        env: { ...process.env, WORKERS_SPIKE_ROLE: "shared-state", WORKERS_SPIKE_CFG: JSON.stringify({ file, ops }) },
      });
      child.once("message", resolve);
      child.once("exit", (code) => code !== 0 && reject(new Error(`shared-state child exited ${code}`)));
    });
  try {
    for (const count of [1, writers]) {
      const results = await Promise.all(Array.from({ length: count }, run));
      const avg = (key) => (results.reduce((sum, r) => sum + r[key], 0) / results.length).toFixed(1);
      console.log(`| ${count} process${count > 1 ? "es at once" : ""} | ${avg("getUs")} | ${avg("setUs")} | ${avg("incUs")} | ${avg("mapGetUs")} |`);
    }
  } finally {
    for (const suffix of ["", "-wal", "-shm"]) {
      try {
        (await import("node:fs")).unlinkSync(file + suffix);
      } catch {}
    }
  }
}

async function sharedStateChild() {
  const Database = (await import("better-sqlite3")).default;
  const db = new Database(cfg.file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  db.pragma("busy_timeout = 5000");
  const get = db.prepare("SELECT v FROM kv WHERE k = ?").pluck();
  const set = db.prepare("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
  const inc = db.prepare("INSERT INTO kv (k, v) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET v = v + 1 RETURNING v").pluck();
  const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}-${process.pid % 7}`);
  const time = (fn) => {
    const t0 = now();
    for (let i = 0; i < cfg.ops; i++) fn(keys[i % keys.length], i);
    return ((now() - t0) * 1000) / cfg.ops;
  };
  const setUs = time((k, i) => set.run(k, i));
  const getUs = time((k) => get.get(k));
  const incUs = time((k) => inc.get(k));
  const map = new Map(keys.map((k) => [k, 1]));
  let sink = 0;
  const mapGetUs = time((k) => (sink += map.get(k)));
  db.close();
  process.send({ getUs, setUs, incUs, mapGetUs, sink });
}

function checkIsolatedVmInWorkerThread() {
  const source = `
    const { parentPort } = require("node:worker_threads");
    const ivm = require("isolated-vm");
    const isolate = new ivm.Isolate({ memoryLimit: 32 });
    const context = isolate.createContextSync();
    const cb = new ivm.Callback((x) => x * 2);
    context.global.setSync("hostDouble", cb);
    const result = isolate.compileScriptSync("hostDouble(21)").runSync(context);
    parentPort.postMessage({ result, node: process.version });`;
  const worker = new Worker(source, { eval: true });
  worker.once("message", (m) => {
    console.log(`isolated-vm in a worker thread: isolate ran, callback into the thread returned ${m.result} (Node ${m.node})`);
    worker.terminate();
  });
  worker.once("error", (e) => {
    console.log(`isolated-vm in a worker thread FAILED: ${e.stack ?? e}`);
    process.exitCode = 1;
  });
}

async function bench() {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "3" },
      busy: { type: "string", default: "0,50,300" },
      workers: { type: "string", default: "2" },
      only: { type: "string" },
      port: { type: "string", default: "15090" },
      "rates-50": { type: "string", default: "5000,9000,13000" },
      "rates-300": { type: "string", default: "2000,3000,3750,4500" },
      "rates-0": { type: "string", default: "8000,16000" },
      "check-ivm-thread": { type: "boolean", default: false },
      "shared-state": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  if (values["check-ivm-thread"]) return checkIsolatedVmInWorkerThread();
  if (values["shared-state"]) {
    console.log(`\n## shared state in SQLite on /dev/shm, µs per operation (${Number(values.workers)} writers at once in the second row)`);
    console.log("| processes | get | set (upsert) | inc (upsert … RETURNING) | in-process Map get |");
    console.log("|---|---:|---:|---:|---:|");
    return sharedStateCosts(Number(values.workers), 50_000);
  }
  const seconds = Number(values.seconds);
  if (!(seconds > 0 && seconds <= 10)) throw new Error("--seconds must be in (0, 10]");
  const args = { workers: Number(values.workers), port: Number(values.port) };
  if (!(Number.isInteger(args.workers) && args.workers >= 1 && args.workers <= 16)) throw new Error("--workers in 1..16");
  const busyLevels = values.busy.split(",").map(Number);
  const wanted = values.only?.split(",");
  const designs = Object.entries(DESIGNS).filter(([name]) => !wanted || wanted.some((part) => name.includes(part)));
  const results = [];
  for (const busyUs of busyLevels) {
    const rates = (values[`rates-${busyUs}`] ?? values["rates-50"]).split(",").map(Number);
    if (rates.length * designs.length * (seconds + 1.5) > 600) throw new Error("run would exceed 10 minutes");
    console.log(`\n## busy ${busyUs} µs per message, ${args.workers} workers, ${seconds} s per step`);
    console.log("| design | offered/s | answered | p50 ms | p99 ms | server CPU µs/msg | by process (parent, workers) | handed off | received by | generator µs/msg |");
    console.log("|---|---:|---:|---:|---:|---:|---|---:|---|---:|");
    for (const [name, design] of designs) {
      const server = await startServer(design, busyUs, args);
      const sources = await openSources(design.sources);
      try {
        // warm-up: JIT and socket buffers
        await loadStep(server, sources, 1000, 0.5, args.port);
        for (const rate of rates) {
          const r = await loadStep(server, sources, rate, seconds, args.port);
          results.push({ design: name, busyUs, ...r });
          console.log(
            `| ${name} | ${rate} | ${(100 * r.answered).toFixed(1)} % | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ` +
              `${r.cpuUsPerMsg.toFixed(0)} | ${r.cpuUsPerMsgByProcess.join(" + ")} | ${(100 * r.handedOff).toFixed(0)} % | ${r.receivedBy} | ${r.generatorUsPerMsg.toFixed(0)} |`,
          );
        }
      } finally {
        for (const s of sources) s.close();
        await stopServer(server);
      }
    }
  }
  if (values.json) console.log(JSON.stringify(results));
}

if (ROLE === "bench") {
  await bench();
} else {
  process.on("disconnect", () => process.exit(0));
  // a worker still answering while its parent stops: the answer is dropped
  process.on("error", () => {});
  if (ROLE === "shared-state") await sharedStateChild();
  else if (cfg.mode === "single") runSingle();
  else if (cfg.mode === "cluster-none") runCluster("none");
  else if (cfg.mode === "cluster-udp") runCluster("udp");
  else if (cfg.mode === "cluster-ipc") runCluster("ipc");
  else if (cfg.mode === "reuseport") runReusePort();
  else if (cfg.mode === "readers") runReaderCluster();
  else if (cfg.mode === "front") runFront();
}
