/**
 * One Redis command with its reply in hand before returning: what
 * KSR.ndb_redis.redis_cmd needs, since a script reads `$redis(r=>value)`
 * right after the call. A worker thread keeps its own connection to the
 * store and runs the command; the calling thread waits for the reply on a
 * shared buffer (Atomics.wait), at most `timeoutMs`. The route — and, as
 * routes run on the main thread, the server — waits for that one round
 * trip, as a Kamailio worker process waits in ndb_redis; nothing else of
 * the shared store does (see connection.ts).
 */
import { Worker } from "node:worker_threads";
import type { RedisTarget } from "./keys.js";

/** A reply in hiredis's terms (Kamailio's $redis(r=>type) values). */
export type RedisReply =
  | { readonly type: "string" | "status" | "error"; readonly value: string }
  | { readonly type: "integer"; readonly value: number }
  | { readonly type: "nil" }
  | { readonly type: "array"; readonly elements: readonly RedisReply[] };

/** Largest reply accepted (bytes of its JSON form); a bigger one is an error reply. */
const REPLY_BYTES = 1 << 20;

/**
 * The worker: a minimal RESP2 client (RESP arrays of bulk strings out,
 * every reply type in). It connects on the first command and again after
 * the connection broke; a command while it cannot connect is answered with
 * an error reply.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const net = require("node:net");
const { host, port, db, username, password, buffer } = workerData;
const state = new Int32Array(buffer, 0, 2);
const data = new Uint8Array(buffer, 8);
let socket, pending = [], input = Buffer.alloc(0), ready;
function encode(args) {
  let out = "*" + args.length + "\\r\\n";
  for (const a of args) out += "$" + Buffer.byteLength(a) + "\\r\\n" + a + "\\r\\n";
  return out;
}
function parse(buf, at) {
  const end = buf.indexOf("\\r\\n", at);
  if (end < 0) return undefined;
  const kind = String.fromCharCode(buf[at]);
  const line = buf.toString("utf8", at + 1, end);
  const next = end + 2;
  if (kind === "+") return [{ type: "status", value: line }, next];
  if (kind === "-") return [{ type: "error", value: line }, next];
  if (kind === ":") return [{ type: "integer", value: Number(line) }, next];
  if (kind === "$") {
    const n = Number(line);
    if (n < 0) return [{ type: "nil" }, next];
    if (buf.length < next + n + 2) return undefined;
    return [{ type: "string", value: buf.toString("utf8", next, next + n) }, next + n + 2];
  }
  if (kind === "*") {
    const n = Number(line);
    if (n < 0) return [{ type: "nil" }, next];
    const elements = [];
    let pos = next;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, pos);
      if (r === undefined) return undefined;
      elements.push(r[0]);
      pos = r[1];
    }
    return [{ type: "array", elements }, pos];
  }
  return [{ type: "error", value: "unparsable reply" }, buf.length];
}
function answer(seq, reply) {
  let bytes = Buffer.from(JSON.stringify(reply));
  if (bytes.length > data.length) bytes = Buffer.from(JSON.stringify({ type: "error", value: "reply too large" }));
  data.set(bytes);
  Atomics.store(state, 1, bytes.length);
  Atomics.store(state, 0, seq);
  Atomics.notify(state, 0);
}
function fail(text) {
  for (const p of pending) if (!p.internal) answer(p.seq, { type: "error", value: text });
  pending = [];
  socket = undefined;
  ready = undefined;
  input = Buffer.alloc(0);
}
function connect() {
  ready = new Promise((resolve) => {
    const s = net.createConnection({ host, port });
    socket = s;
    s.setNoDelay(true);
    s.on("connect", () => {
      if (password !== undefined) {
        pending.push({ internal: true });
        s.write(encode(username !== undefined ? ["AUTH", username, password] : ["AUTH", password]));
      }
      if (db !== 0) {
        pending.push({ internal: true });
        s.write(encode(["SELECT", String(db)]));
      }
      resolve(true);
    });
    s.on("data", (chunk) => {
      input = Buffer.concat([input, chunk]);
      for (;;) {
        const r = parse(input, 0);
        if (r === undefined) break;
        input = input.subarray(r[1]);
        const p = pending.shift();
        if (p !== undefined && !p.internal) answer(p.seq, r[0]);
      }
    });
    s.on("error", (err) => {
      if (socket === s) fail("connection to the store failed: " + err.message);
      resolve(false);
    });
    s.on("close", () => {
      if (socket === s) fail("connection to the store closed");
      resolve(false);
    });
  });
  return ready;
}
parentPort.on("message", async ({ seq, args }) => {
  if (socket === undefined) connect();
  const s = socket;
  if (!(await ready) || s !== socket) {
    answer(seq, { type: "error", value: "the store is unreachable" });
    return;
  }
  pending.push({ seq });
  s.write(encode(args));
});
`;

export class SyncRedisCommands {
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private readonly data: Uint8Array;
  private seq = 0;

  constructor(
    target: RedisTarget,
    private readonly timeoutMs: number,
  ) {
    const buffer = new SharedArrayBuffer(8 + REPLY_BYTES);
    this.state = new Int32Array(buffer, 0, 2);
    this.data = new Uint8Array(buffer, 8);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { host: target.host, port: target.port, db: target.db, username: target.username, password: target.password, buffer },
    });
    // The worker must not keep a stopping server alive.
    this.worker.unref();
  }

  /** Run the command; an error reply when the store does not answer within the timeout. */
  run(args: readonly string[]): RedisReply {
    const seq = (this.seq = (this.seq % 0x7fffffff) + 1);
    this.worker.postMessage({ seq, args });
    const deadline = performance.now() + this.timeoutMs;
    // A reply to an earlier command that timed out may land first: wait for ours.
    while (Atomics.load(this.state, 0) !== seq) {
      const left = deadline - performance.now();
      if (left <= 0) return { type: "error", value: `no reply from the store within ${this.timeoutMs} ms` };
      Atomics.wait(this.state, 0, Atomics.load(this.state, 0), left);
    }
    const length = Atomics.load(this.state, 1);
    return JSON.parse(Buffer.from(this.data.subarray(0, length)).toString("utf8")) as RedisReply;
  }

  close(): void {
    void this.worker.terminate();
  }
}
