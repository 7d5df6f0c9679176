// A redis-server of its own for a test or benchmark: started on a loopback
// port with no persistence configured (`--save '' --appendonly no`), in a
// given directory, and stopped by its PID; plus a minimal RESP client for
// one command at a time (the server under test has its own client).
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";

export const REDIS_SERVER = "/usr/bin/redis-server";

/** Whether redis-server is installed where the Debian package puts it. */
export function redisServerInstalled() {
  return fs.existsSync(REDIS_SERVER);
}

/** Whether a RESP reply is complete (simple values, bulk strings, one level of arrays of bulk strings). */
function respComplete(text) {
  if (!text.endsWith("\r\n")) return false;
  if (text[0] === "$") return text.startsWith("$-1") || text.split("\r\n").length >= 3;
  if (text[0] !== "*") return true;
  const count = Number(text.slice(1, text.indexOf("\r\n")));
  return count <= 0 || text.split("\r\n").length - 2 >= count * 2;
}

/** One command to the Redis on 127.0.0.1:port; resolves with its raw RESP reply (5 s bound). */
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${args[0]}: no complete reply within 5 s (${JSON.stringify(reply)})`));
    }, 5_000);
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      if (respComplete(reply)) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
  });
}

/** The elements of an array reply of bulk strings (KEYS). */
export function bulkStrings(reply) {
  return reply.split("\r\n").filter((line, i) => i > 0 && line.length > 0 && !line.startsWith("$"));
}

/**
 * Starts redis-server on 127.0.0.1:port with its files in dir and resolves
 * once it answers PING (10 s bound). A dump.rdb in dir (SHUTDOWN SAVE of an
 * earlier instance) is loaded.
 */
export async function startRedis(port, dir) {
  const child = spawn(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c) => (output += c.toString("utf8")));
  child.stderr.on("data", (c) => (output += c.toString("utf8")));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const server = {
    port,
    pid: child.pid,
    url: `redis://127.0.0.1:${port}/0`,
    output: () => output,
    /** SHUTDOWN SAVE: the dump is written to dir for the next start there. */
    async stopSaving() {
      await redisCommand(port, "SHUTDOWN", "SAVE").catch(() => undefined);
      await exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}):\n${output}`);
    const pong = await redisCommand(port, "PING").catch(() => "");
    if (pong.startsWith("+PONG")) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.kill();
  throw new Error(`redis-server did not answer PING on ${port} within 10 s:\n${output}`);
}
