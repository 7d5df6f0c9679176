#!/usr/bin/env node
/**
 * RFC 4475's torture messages (test/rfc4475/messages) sent over UDP, byte
 * for byte, to `ksr run` and to Kamailio 5.6 running the same script
 * (test/rfc4475/uas.js): prints a Markdown table of what each server did
 * with each message — the answer that came back to the sender (the script
 * answers to the source port, RFC 3581) and, when nothing came back, what
 * the server logged (an answer addressed by the message's own Via goes to
 * an address nobody listens on here).
 *
 *   npm run build && node bench/rfc4475-compare.mjs [--only ksr|kamailio]
 *
 * The test suite (test/rfc4475/torture.test.ts) asserts ksr's side against
 * the RFC; this script is for the comparison in the README.
 */
import dgram from "node:dgram";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { startKamailio, kamailioVersion } from "./lib/kamailio.mjs";
import { findFreePort, REPO_ROOT, startKsr } from "./lib/sipp.mjs";
import { BARRIER_CALL_ID_PREFIX, barrierOptions } from "./lib/barrier.mjs";

const MESSAGES = path.join(REPO_ROOT, "test", "rfc4475", "messages");
const SCRIPT = path.join(REPO_ROOT, "test", "rfc4475", "uas.js");
const KAMAILIO_CFG = path.join(REPO_ROOT, "bench", "cfg", "kamailio-rfc4475.cfg");

const { values } = parseArgs({ options: { only: { type: "string" } } });

/** Each message, then a barrier OPTIONS from the same socket: once it is answered the server is done with the message. */
async function run(server) {
  const results = new Map();
  let n = 0;
  for (const file of fs.readdirSync(MESSAGES).filter((f) => f.endsWith(".dat")).sort()) {
    const socket = dgram.createSocket("udp4");
    await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const got = [];
    const id = ++n;
    const logBefore = server.output().length;
    const answered = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file}: the barrier was not answered`)), 5000);
      socket.on("message", (m) => {
        const text = m.toString("latin1");
        if (text.includes(`${BARRIER_CALL_ID_PREFIX}${id}\r\n`)) {
          clearTimeout(timer);
          resolve();
        } else got.push(text.slice(0, text.indexOf("\r\n")));
      });
    });
    socket.send(fs.readFileSync(path.join(MESSAGES, file)), server.port, "127.0.0.1");
    socket.send(barrierOptions(id, socket.address().port), server.port, "127.0.0.1");
    await answered;
    socket.close();
    const log = server
      .output()
      .slice(logBefore)
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.includes(BARRIER_CALL_ID_PREFIX));
    results.set(file.replace(/\.dat$/, ""), { answers: got, log });
  }
  return results;
}

function summary(r) {
  if (r.answers.length > 0) return r.answers.join(", ");
  const line = r.log.find((l) => /answering|dropped|ERROR|WARNING|rfc4475: response/.test(l));
  if (line === undefined) return "nothing sent, nothing logged";
  return `nothing back; log: ${line.replace(/^.*?(answering|dropped|ERROR|WARNING|rfc4475)/, "$1").slice(0, 110)}`;
}

const columns = [];
if (values.only !== "kamailio") {
  const port = await findFreePort();
  const ksr = await startKsr({ script: SCRIPT, port, logLevel: "info", readiness: "sockets" });
  try {
    columns.push(["ksr-sandbox", await run(ksr)]);
  } finally {
    await ksr.stop();
  }
}
if (values.only !== "ksr") {
  if (kamailioVersion() === null) throw new Error("kamailio is not installed (apt-get install kamailio)");
  const port = await findFreePort();
  const kamailio = await startKamailio({ script: SCRIPT, port, children: 1, cfgTemplate: KAMAILIO_CFG });
  try {
    const version = /kamailio (\S+)/.exec(kamailioVersion())?.[1] ?? "";
    columns.push([`Kamailio ${version}`, await run(kamailio)]);
  } finally {
    await kamailio.stop();
  }
}

console.log(`| message | ${columns.map(([name]) => name).join(" | ")} |`);
console.log(`|---|${columns.map(() => "---").join("|")}|`);
for (const file of columns[0][1].keys()) {
  console.log(`| ${file} | ${columns.map(([, results]) => summary(results.get(file)).replace(/\|/g, "\\|")).join(" | ")} |`);
}
