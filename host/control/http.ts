/**
 * The control methods over HTTP, for remote tooling: `POST /rpc` on the
 * `--metrics` listener, with one JSON-RPC 2.0 request (or batch) as the
 * body, answered exactly as the control socket answers it
 * (host/control/server.ts answerLine). Off unless `--control-token-file`
 * names a file holding a token; every request must carry it as
 * `Authorization: Bearer <token>` (RFC 6750 §2.1), since these methods
 * reload scripts, remove registrations and flush tables. The token is read
 * once at start and compared in constant time.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type http from "node:http";
import { log } from "../core/log.js";
import { MAX_REQUEST_LINE_BYTES } from "./protocol.js";
import { answerLine } from "./server.js";
import type { ControlTarget } from "./types.js";

/** The path the control methods are served at on the metrics listener. */
export const CONTROL_HTTP_PATH = "/rpc";

/** A shorter token is refused at start: it could be guessed. */
export const MIN_CONTROL_TOKEN_LENGTH = 16;

/** At most one log line about refused requests per this many ms (with the count), so a scanner cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** The token in `file` (surrounding whitespace removed); throws an Error naming the option, the file and what is wrong. */
export function readControlToken(file: string, option = "--control-token-file"): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${option} ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  const token = text.trim();
  if (token.length < MIN_CONTROL_TOKEN_LENGTH) {
    throw new Error(`${option} ${file}: the token must be at least ${MIN_CONTROL_TOKEN_LENGTH} characters (it has ${token.length})`);
  }
  if (/\s/.test(token)) throw new Error(`${option} ${file}: the token must be one word, without spaces or line breaks`);
  return token;
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** A request handler for CONTROL_HTTP_PATH: answers every request it is given. */
export type ControlHttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function controlHttpHandler(target: ControlTarget, token: string): ControlHttpHandler {
  // Comparing digests keeps the comparison constant-time whatever the length offered.
  const expected = digest(token);
  let refusedSinceLog = 0;
  let lastRefusalLog = 0;
  const refuse = (res: http.ServerResponse, req: http.IncomingMessage, status: number, why: string, headers: Record<string, string> = {}): void => {
    refusedSinceLog++;
    const now = Date.now();
    if (now - lastRefusalLog >= REFUSAL_LOG_INTERVAL_MS) {
      log("warn", "ctl", `refused ${refusedSinceLog} control request(s) over HTTP, the last from ${req.socket.remoteAddress ?? "?"}: ${why}`);
      refusedSinceLog = 0;
      lastRefusalLog = now;
    }
    res.writeHead(status, { "content-type": "text/plain", ...headers }).end(why + "\n");
  };
  return (req, res) => {
    if (req.method !== "POST") {
      res.writeHead(405, { allow: "POST", "content-type": "text/plain" }).end(`only POST ${CONTROL_HTTP_PATH}\n`);
      return;
    }
    const auth = /^Bearer ([!-~]+)$/.exec(req.headers.authorization ?? "");
    if (auth === null || !timingSafeEqual(digest(auth[1]!), expected)) {
      // RFC 6750 §3: the challenge names the scheme; invalid_token when one was offered.
      refuse(res, req, 401, "a valid bearer token is needed", {
        "www-authenticate": auth === null ? 'Bearer realm="ksr"' : 'Bearer realm="ksr", error="invalid_token"',
      });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_LINE_BYTES) {
        if (!tooLarge) res.writeHead(413, { "content-type": "text/plain", connection: "close" }).end(`a request is at most ${MAX_REQUEST_LINE_BYTES} bytes\n`);
        tooLarge = true;
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooLarge) return;
      const body = Buffer.concat(chunks).toString("utf8");
      if (body.trim() === "") {
        res.writeHead(400, { "content-type": "text/plain" }).end("the body must be a JSON-RPC 2.0 request or batch\n");
        return;
      }
      answerLine(target, body).then(
        (answer) => {
          // A notification (no id) gets no JSON-RPC answer (JSON-RPC 2.0 §4.1).
          if (answer === undefined) res.writeHead(204).end();
          else res.writeHead(200, { "content-type": "application/json" }).end(answer + "\n");
        },
        (err: unknown) => {
          log("err", "ctl", `control request over HTTP failed: ${(err as Error)?.message ?? String(err)}`);
          res.writeHead(500, { "content-type": "text/plain" }).end("internal error\n");
        },
      );
    });
  };
}
