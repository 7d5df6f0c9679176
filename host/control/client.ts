/**
 * Calls a method on the control socket of a running server (see
 * host/control/server.ts): one JSON-RPC 2.0 request on a fresh connection,
 * one response line back.
 */
import net from "node:net";
import { MAX_RESPONSE_LINE_BYTES, type RpcErrorObject } from "./protocol.js";

/** How long `ksr ctl` waits for an answer by default: a reload compiles scripts. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export type ControlErrorKind =
  /** No server at the path, or not allowed to connect to it. */
  | "unreachable"
  /** No answer in time. */
  | "timeout"
  /** The server answered with a JSON-RPC error. */
  | "rpc"
  /** The server's answer is not a JSON-RPC response to the request, or the connection ended without one. */
  | "protocol";

export class ControlError extends Error {
  constructor(
    message: string,
    readonly kind: ControlErrorKind,
    /** The JSON-RPC error, for kind "rpc". */
    readonly rpcError?: RpcErrorObject,
  ) {
    super(message);
    this.name = "ControlError";
  }
}

export interface CallControlOptions {
  /** Time allowed for connecting, sending and receiving the answer; default DEFAULT_CALL_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

function unreachable(path: string, err: NodeJS.ErrnoException): ControlError {
  switch (err.code) {
    case "ENOENT":
    case "ECONNREFUSED":
    case "ENOTSOCK":
      return new ControlError(`no ksr server is listening on ${path} (is it running with --control ${path}?)`, "unreachable");
    case "EACCES":
    case "EPERM":
      return new ControlError(`permission denied on ${path}: the control socket is only for the user running the server`, "unreachable");
    default:
      return new ControlError(`cannot reach the ksr server on ${path}: ${err.message}`, "unreachable");
  }
}

/** The server dropped the connection (e.g. it was stopping, or had as many connections as it serves). */
function closedWithoutAnswer(path: string): ControlError {
  return new ControlError(`the ksr server on ${path} closed the connection without answering`, "protocol");
}

/** The result of the response to request id 1, or the ControlError it stands for. */
function resultOf(path: string, line: string): unknown {
  let response: unknown;
  try {
    response = JSON.parse(line);
  } catch {
    throw new ControlError(`the server on ${path} answered something that is not JSON: ${line.slice(0, 200)}`, "protocol");
  }
  if (typeof response !== "object" || response === null || (response as { jsonrpc?: unknown }).jsonrpc !== "2.0") {
    throw new ControlError(`the server on ${path} answered something that is not a JSON-RPC 2.0 response: ${line.slice(0, 200)}`, "protocol");
  }
  const r = response as { id?: unknown; result?: unknown; error?: unknown };
  if (r.error !== undefined) {
    const e = r.error as Partial<RpcErrorObject> | null;
    const code = typeof e?.code === "number" ? e.code : 0;
    const message = typeof e?.message === "string" ? e.message : JSON.stringify(r.error);
    throw new ControlError(`the server on ${path} refused the request: ${message} (JSON-RPC error ${code})`, "rpc", {
      code,
      message,
      ...(e?.data !== undefined ? { data: e.data } : {}),
    });
  }
  if (r.id !== 1 || !Object.hasOwn(r, "result")) {
    throw new ControlError(`the server on ${path} answered something that is not the response to our request: ${line.slice(0, 200)}`, "protocol");
  }
  return r.result;
}

/**
 * Calls `method` with `params` on the control socket at `path`; resolves
 * with the JSON-RPC result. Rejects with a ControlError whose message says
 * what went wrong in words an operator can act on.
 */
export function callControl(path: string, method: string, params?: unknown, options: CallControlOptions = {}): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const request = JSON.stringify({ jsonrpc: "2.0", id: 1, method, ...(params !== undefined ? { params } : {}) });
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (outcome: { result: unknown } | { error: ControlError }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if ("error" in outcome) reject(outcome.error);
      else resolve(outcome.result);
    };
    const timer = setTimeout(
      () => settle({ error: new ControlError(`no answer from the ksr server on ${path} within ${timeoutMs} ms`, "timeout") }),
      timeoutMs,
    );
    let connected = false;
    socket.once("connect", () => {
      connected = true;
      socket.write(request + "\n");
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      // Refused before connecting: nobody there. After connecting: the server went away mid-call.
      if (!connected) settle({ error: unreachable(path, err) });
      else if (err.code === "EPIPE" || err.code === "ECONNRESET") settle({ error: closedWithoutAnswer(path) });
      else settle({ error: new ControlError(`connection to the ksr server on ${path} failed: ${err.message}`, "protocol") });
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const newline = received.indexOf(0x0a);
      if (newline < 0) {
        if (received.length > MAX_RESPONSE_LINE_BYTES) {
          settle({ error: new ControlError(`the answer of the ksr server on ${path} is longer than ${MAX_RESPONSE_LINE_BYTES} bytes`, "protocol") });
        }
        return;
      }
      try {
        settle({ result: resultOf(path, received.subarray(0, newline).toString("utf8")) });
      } catch (err) {
        settle({ error: err as ControlError });
      }
    });
    socket.on("close", () => settle({ error: closedWithoutAnswer(path) }));
  });
}

/**
 * Calls `method` with `params` over HTTP (host/control/http.ts): POST to
 * `url` (e.g. http://127.0.0.1:9464/rpc) with the bearer `token`. Resolves
 * and rejects as callControl does.
 */
export async function callControlHttp(url: string, token: string, method: string, params?: unknown, options: CallControlOptions = {}): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const request = JSON.stringify({ jsonrpc: "2.0", id: 1, method, ...(params !== undefined ? { params } : {}) });
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: request,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if ((err as Error).name === "TimeoutError") throw new ControlError(`no answer from the ksr server at ${url} within ${timeoutMs} ms`, "timeout");
    throw new ControlError(`cannot reach the ksr server at ${url}: ${cause?.message ?? (err as Error).message}`, "unreachable");
  }
  const text = await response.text();
  if (response.status === 401) throw new ControlError(`the ksr server at ${url} refused the token (HTTP 401): check --token-file`, "unreachable");
  if (response.status !== 200) throw new ControlError(`the ksr server at ${url} answered HTTP ${response.status}: ${text.trim().slice(0, 200)}`, "protocol");
  return resultOf(url, text.trim());
}
