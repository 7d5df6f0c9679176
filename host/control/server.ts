/**
 * The control socket of a running server: a Unix domain socket speaking
 * newline-delimited JSON-RPC 2.0 (host/control/protocol.ts), served from a
 * ControlTarget. Methods:
 *
 *   tenants                      → TenantStatus[]
 *   reload   {tenant?: string}   → TenantReloadResult[] (every tenant without `tenant`)
 *   counters                     → string[] (the lines SIGUSR2 logs)
 *   stats, ul.*, htable.*, …     → host/ops/control-ops.ts (when the target has `ops`), params by name
 *
 * Whoever can connect can reload scripts, so the socket file is created
 * with mode 0600: only the server's user (and root) may use it. Nothing a
 * client sends may end the server process: every request is answered or
 * refused with a JSON-RPC error, a request line is bounded, and a client
 * that pipelines requests is read no faster than they are answered.
 */
import { lstatSync, unlinkSync } from "node:fs";
import { chmod, lstat, unlink } from "node:fs/promises";
import net from "node:net";
import { log } from "../core/log.js";
import {
  MAX_REQUEST_LINE_BYTES,
  RPC_INTERNAL_ERROR,
  RPC_INVALID_PARAMS,
  RPC_INVALID_REQUEST,
  RPC_METHOD_NOT_FOUND,
  RPC_PARSE_ERROR,
  isRpcId,
  type RpcErrorObject,
  type RpcId,
  type RpcResponse,
} from "./protocol.js";
import { CONTROL_METHODS, type ControlMethod, type ControlTarget } from "./types.js";
import { isOpsMethod, OPS_METHODS, type OpsHandler, type OpsMethod } from "../ops/control-ops.js";
import { OpsError } from "../ops/inspect.js";

/** JSON-RPC 2.0 §5.1 leaves -32000 to -32099 to the server: the request was understood but names something unknown or invalid. */
export const RPC_OPS_ERROR = -32000;

const LOG_SCOPE = "ctl";

export interface ControlServerOptions {
  /** Longest request line in bytes; default MAX_REQUEST_LINE_BYTES. */
  readonly maxLineBytes?: number;
  /** Connections served at once; more are closed on arrival. Default 16. */
  readonly maxConnections?: number;
  /** A connection without traffic (and no request being answered) is closed after this long; default 60 s. */
  readonly idleTimeoutMs?: number;
}

export interface ControlServer {
  /** The socket file's path. */
  readonly path: string;
  /**
   * Stops accepting, closes every connection and removes the socket file.
   * The file is already gone when close() returns (before the promise
   * settles), so a process about to exit need not wait for it.
   */
  close(): Promise<void>;
}

/** JSON-RPC 2.0 §6: at most this many requests in one batch array. */
const MAX_BATCH = 100;

/** sun_path holds 108 bytes on Linux (104 on the BSDs and macOS), the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = process.platform === "linux" ? 107 : 103;

/** How long the start-up probe waits for an existing socket to accept a connection. */
const PROBE_TIMEOUT_MS = 1000;

class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorResponse(id: RpcId, error: RpcErrorObject): RpcResponse {
  return { jsonrpc: "2.0", id, error };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The arguments of a method from its params (JSON-RPC 2.0 §4.2: by name or by position); throws RpcFailure(-32602). */
function methodArgs(method: ControlMethod, params: unknown): { tenant?: string } {
  const invalid = (why: string): never => {
    throw new RpcFailure(RPC_INVALID_PARAMS, `Invalid params: ${why}`);
  };
  if (method !== "reload") {
    const empty = params === undefined || (Array.isArray(params) && params.length === 0) || (isPlainObject(params) && Object.keys(params).length === 0);
    if (!empty) invalid(`${method} takes no params`);
    return {};
  }
  let tenant: unknown;
  if (params === undefined) return {};
  if (Array.isArray(params)) {
    if (params.length > 1) invalid("reload takes at most one param, the tenant id");
    tenant = params[0];
  } else if (isPlainObject(params)) {
    const extra = Object.keys(params).filter((k) => k !== "tenant");
    if (extra.length > 0) invalid(`reload takes only "tenant", not ${extra.map((k) => JSON.stringify(k)).join(", ")}`);
    tenant = params["tenant"];
  } else {
    invalid("params must be an object or an array");
  }
  if (tenant === undefined) return {};
  if (typeof tenant !== "string" || tenant === "") invalid('"tenant" must be a non-empty string');
  return { tenant: tenant as string };
}

async function callMethod(target: ControlTarget, method: ControlMethod, args: { tenant?: string }): Promise<unknown> {
  switch (method) {
    case "tenants":
      return target.tenants();
    case "counters":
      return target.counters();
    case "reload": {
      const what = args.tenant === undefined ? "every tenant" : `tenant ${args.tenant}`;
      log("notice", LOG_SCOPE, `reload of ${what} asked on the control socket`);
      const results = await target.reload(args.tenant);
      const failed = results.filter((r) => !r.ok).map((r) => r.tenant);
      if (failed.length === 0) log("notice", LOG_SCOPE, `reload of ${what}: ${results.length} tenant(s) reloaded`);
      else log("err", LOG_SCOPE, `reload of ${what}: failed for ${failed.join(", ")}; their previous scripts keep running`);
      return results;
    }
  }
}

/** One request object: its response, or undefined for a notification (JSON-RPC 2.0 §4.1: never answered). */
async function answerRequest(target: ControlTarget, request: unknown): Promise<RpcResponse | undefined> {
  if (!isPlainObject(request)) return errorResponse(null, { code: RPC_INVALID_REQUEST, message: "Invalid Request: not a JSON-RPC request object" });
  const hasId = Object.hasOwn(request, "id");
  const id = request["id"];
  if (hasId && !isRpcId(id)) return errorResponse(null, { code: RPC_INVALID_REQUEST, message: "Invalid Request: id must be a string, a number or null" });
  const replyId: RpcId = hasId ? (id as RpcId) : null;
  if (request["jsonrpc"] !== "2.0") return errorResponse(replyId, { code: RPC_INVALID_REQUEST, message: 'Invalid Request: "jsonrpc" must be "2.0"' });
  const method = request["method"];
  if (typeof method !== "string") return errorResponse(replyId, { code: RPC_INVALID_REQUEST, message: 'Invalid Request: "method" must be a string' });
  let response: RpcResponse;
  const ops = target.ops;
  if (isOpsMethod(method) && ops !== undefined) {
    response = await answerOps(ops, method, request["params"], replyId);
  } else if (!(CONTROL_METHODS as readonly string[]).includes(method)) {
    const methods = [...CONTROL_METHODS, ...(ops !== undefined ? OPS_METHODS : [])];
    response = errorResponse(replyId, {
      code: RPC_METHOD_NOT_FOUND,
      message: `Method not found: ${JSON.stringify(method)} (methods: ${methods.join(", ")})`,
    });
  } else {
    try {
      const result = await callMethod(target, method as ControlMethod, methodArgs(method as ControlMethod, request["params"]));
      response = { jsonrpc: "2.0", id: replyId, result };
    } catch (err) {
      response =
        err instanceof RpcFailure
          ? errorResponse(replyId, { code: err.code, message: err.message })
          : errorResponse(replyId, { code: RPC_INTERNAL_ERROR, message: `Internal error: ${errorText(err)}` });
    }
  }
  return hasId ? response : undefined;
}

/**
 * A method of host/ops/control-ops.ts: params by name (an object, or none);
 * what the operator got wrong (unknown tenant, table, AoR; a bad value)
 * is RPC_OPS_ERROR with the reason as the message.
 */
async function answerOps(ops: OpsHandler, method: OpsMethod, params: unknown, replyId: RpcId): Promise<RpcResponse> {
  if (params !== undefined && !isPlainObject(params)) {
    return errorResponse(replyId, { code: RPC_INVALID_PARAMS, message: `Invalid params: ${method} takes its params by name (an object)` });
  }
  try {
    if (method === "loglevel" && isPlainObject(params) && params["level"] !== undefined) {
      log("notice", LOG_SCOPE, `log level ${String(params["level"])} for ${params["tenant"] === undefined ? "the server" : `tenant ${String(params["tenant"])}`} asked on the control socket`);
    }
    return { jsonrpc: "2.0", id: replyId, result: await ops(method, params ?? {}) };
  } catch (err) {
    if (err instanceof OpsError) return errorResponse(replyId, { code: RPC_OPS_ERROR, message: err.message });
    return errorResponse(replyId, { code: RPC_INTERNAL_ERROR, message: `Internal error: ${errorText(err)}` });
  }
}

/** The response line to one request line (no newline), or undefined when nothing is to be sent back. */
export async function answerLine(target: ControlTarget, line: string): Promise<string | undefined> {
  if (line.trim() === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    return JSON.stringify(errorResponse(null, { code: RPC_PARSE_ERROR, message: `Parse error: ${errorText(err)}` }));
  }
  let answer: RpcResponse | RpcResponse[] | undefined;
  if (Array.isArray(parsed)) {
    // JSON-RPC 2.0 §6: a batch; its responses in one array, none for notifications only.
    if (parsed.length === 0) answer = errorResponse(null, { code: RPC_INVALID_REQUEST, message: "Invalid Request: empty batch" });
    else if (parsed.length > MAX_BATCH) answer = errorResponse(null, { code: RPC_INVALID_REQUEST, message: `Invalid Request: more than ${MAX_BATCH} requests in a batch` });
    else {
      const responses: RpcResponse[] = [];
      for (const request of parsed) {
        const response = await answerRequest(target, request);
        if (response !== undefined) responses.push(response);
      }
      answer = responses.length > 0 ? responses : undefined;
    }
  } else {
    answer = await answerRequest(target, parsed);
  }
  if (answer === undefined) return undefined;
  try {
    return JSON.stringify(answer);
  } catch (err) {
    // A result JSON cannot carry (a BigInt, a cycle): the target's fault, told to the client as such.
    const ids = Array.isArray(answer) ? answer.map((a) => a.id) : [answer.id];
    const failures = ids.map((id) => errorResponse(id, { code: RPC_INTERNAL_ERROR, message: `Internal error: result not serializable: ${errorText(err)}` }));
    return JSON.stringify(Array.isArray(answer) ? failures : failures[0]);
  }
}

/**
 * One client connection: lines are answered one at a time, in order; the
 * socket is paused while unanswered input exceeds a line, and while the
 * client does not read its responses.
 */
class ControlConnection {
  private pending: Buffer = Buffer.alloc(0);
  private busy = false;
  private readEnded = false;
  private refused = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly target: ControlTarget,
    private readonly maxLineBytes: number,
    idleTimeoutMs: number,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    // The server is half-open: a client may send its requests and shut down
    // its side (socat, `nc -N`) and still be answered.
    socket.on("end", () => {
      this.readEnded = true;
      this.pump();
    });
    socket.on("error", (err) => log("dbg", LOG_SCOPE, `control connection: ${err.message}`));
    socket.setTimeout(idleTimeoutMs, () => {
      // A request being answered keeps the connection; writing its answer re-arms the timer.
      if (!this.busy) socket.destroy();
    });
  }

  private onData(chunk: Buffer): void {
    if (this.refused) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.busy && this.pending.length > this.maxLineBytes) this.socket.pause();
    this.pump();
  }

  private pump(): void {
    if (this.busy || this.refused || this.socket.destroyed) return;
    const newline = this.pending.indexOf(0x0a);
    let line: Buffer;
    if (newline >= 0 && newline <= this.maxLineBytes) {
      line = this.pending.subarray(0, newline);
      this.pending = this.pending.subarray(newline + 1);
    } else if (newline > this.maxLineBytes || this.pending.length > this.maxLineBytes) {
      this.refuse(`Invalid Request: request line longer than ${this.maxLineBytes} bytes; closing the connection`);
      return;
    } else if (this.readEnded && this.pending.length > 0) {
      // The client's last line, not terminated before it shut down its side.
      line = this.pending;
      this.pending = Buffer.alloc(0);
    } else {
      if (this.readEnded) this.socket.end();
      else if (this.socket.isPaused()) this.socket.resume();
      return;
    }
    this.busy = true;
    void this.answer(line.toString("utf8"));
  }

  private async answer(line: string): Promise<void> {
    let response: string | undefined;
    try {
      response = await answerLine(this.target, line);
    } catch (err) {
      // answerLine catches what a method throws; this is the last guard.
      response = JSON.stringify(errorResponse(null, { code: RPC_INTERNAL_ERROR, message: `Internal error: ${errorText(err)}` }));
    }
    if (this.socket.destroyed) return;
    if (response !== undefined && !this.socket.write(response + "\n")) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off("drain", done);
          this.socket.off("close", done);
          resolve();
        };
        this.socket.on("drain", done);
        this.socket.on("close", done);
      });
    }
    this.busy = false;
    this.pump();
  }

  /** Answers with an error, stops reading requests and closes our side. */
  private refuse(message: string): void {
    this.refused = true;
    this.pending = Buffer.alloc(0);
    log("warn", LOG_SCOPE, `control connection closed: ${message}`);
    this.socket.end(JSON.stringify(errorResponse(null, { code: RPC_INVALID_REQUEST, message })) + "\n");
    // What the client still sends is discarded until it closes or the idle timeout ends it.
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Whether a server accepts connections on the socket file at `path`. */
function probeListening(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    const finish = (answer: boolean | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (answer instanceof Error) reject(answer);
      else resolve(answer);
    };
    // No accept within the time (a full backlog): something is there; do not take its place.
    const timer = setTimeout(() => finish(true), PROBE_TIMEOUT_MS);
    socket.once("connect", () => finish(true));
    socket.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED" || err.code === "ENOENT") finish(false);
      else finish(new Error(`cannot check ${path}: ${err.message}`));
    });
  });
}

function liveSocketError(path: string): Error {
  return new Error(`another server is already listening on ${path} (stop it, or give another --control path)`);
}

/** Clears the way for our socket: a stale socket file goes, a live socket or any other file is an error. */
async function claimSocketPath(path: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!stats.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  if (await probeListening(path)) throw liveSocketError(path);
  log("info", LOG_SCOPE, `removing stale control socket ${path} (nothing listens on it)`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

/**
 * Binds with the umask cleared of group and other bits, so that the socket
 * file is never accessible to anyone else, not even between bind and chmod
 * (server.listen binds synchronously for a path). Worker threads cannot
 * change the umask; there the chmod that follows is all there is.
 */
function listenPrivately(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(err.code === "EADDRINUSE" ? liveSocketError(path) : err);
    };
    server.once("error", onError);
    let previousUmask: number | undefined;
    try {
      previousUmask = process.umask(0o177);
    } catch {
      previousUmask = undefined;
    }
    try {
      server.listen(path, () => {
        server.off("error", onError);
        resolve();
      });
    } finally {
      if (previousUmask !== undefined) process.umask(previousUmask);
    }
  });
}

export async function startControlServer(path: string, target: ControlTarget, options: ControlServerOptions = {}): Promise<ControlServer> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`control socket path ${path} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have`);
  }
  const maxLineBytes = options.maxLineBytes ?? MAX_REQUEST_LINE_BYTES;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  await claimSocketPath(path);
  const connections = new Set<ControlConnection>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const connection = new ControlConnection(socket, target, maxLineBytes, idleTimeoutMs);
    connections.add(connection);
    socket.once("close", () => connections.delete(connection));
  });
  server.maxConnections = options.maxConnections ?? 16;
  await listenPrivately(server, path);
  server.on("error", (err) => log("err", LOG_SCOPE, `control socket ${path}: ${err.message}`));
  let inode: number;
  try {
    await chmod(path, 0o600);
    inode = (await lstat(path)).ino;
  } catch (err) {
    server.close();
    throw err;
  }
  log("info", LOG_SCOPE, `control socket listening on ${path}`);

  let closing: Promise<void> | undefined;
  return {
    path,
    close(): Promise<void> {
      if (closing !== undefined) return closing;
      closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.destroy();
      // Only our own file: another server may have replaced it meanwhile.
      try {
        if (lstatSync(path).ino === inode) unlinkSync(path);
      } catch {
        // Already gone.
      }
      return closing;
    },
  };
}
