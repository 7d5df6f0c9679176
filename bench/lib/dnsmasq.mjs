// dnsmasq as the DNS server of the RFC 3263 interop test
// (test/interop/dns.test.ts) and of the bench's --relay-dns: in the
// foreground on udp:127.0.0.1:<free port>, answering only from the records
// given as its options (--srv-host, --naptr-record, --host-record...);
// names under .test it does not know are NXDOMAIN (--local=/test/), its
// queries are logged (--log-queries).
import { spawn } from "node:child_process";
import fs from "node:fs";
import { findFreePort, isListening } from "./sipp.mjs";

export const DNSMASQ = "/usr/sbin/dnsmasq";

export function dnsmasqInstalled() {
  return fs.existsSync(DNSMASQ);
}

/** Starts dnsmasq with `records` (its options); resolves once it listens. */
export async function startDnsmasq(records) {
  const port = await findFreePort();
  const args = [
    "--no-daemon",
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--conf-file=/dev/null",
    "--pid-file=",
    "--local=/test/",
    "--log-queries",
    ...records,
  ];
  const child = spawn(DNSMASQ, args, { stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const keep = (d) => (text = (text + d.toString("latin1")).slice(-20_000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", () => resolve()));
  for (let i = 0; i < 50 && !isListening("udp", port); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!isListening("udp", port)) {
    child.kill("SIGKILL");
    throw new Error(`dnsmasq did not listen on udp:127.0.0.1:${port}:\n${text}`);
  }
  return {
    port,
    output: () => text,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
