/**
 * The `ksr` command as users run it: the bundled CLI (npm run build →
 * dist/ksr.js, started through bin/ksr.js) in a child process.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { scriptPath } from "./harness.js";
import { TcpPeer, UdpPeer, buildRequest, statusOf } from "./sip-client.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin/ksr.js");

function ksrSync(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8", timeout: 20_000 });
}

const children: ChildProcess[] = [];

beforeAll(() => {
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: ROOT, stdio: "pipe", timeout: 60_000 });
}, 90_000);

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Start `ksr run` and wait for the line saying where it listens; returns the child and its ports. */
async function startKsr(args: string[]): Promise<{ child: ChildProcess; udpPort: number; tcpPort: number; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, "run", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  const ports = await new Promise<{ udpPort: number; tcpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ksr did not start:\n${stderr}`)), 15_000);
    child.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      const udp = /udp:127\.0\.0\.1:(\d+)/.exec(stderr);
      const tcp = /tcp:127\.0\.0\.1:(\d+)/.exec(stderr);
      if (/running .* on /.test(stderr) && udp && tcp) {
        clearTimeout(timer);
        resolve({ udpPort: Number(udp[1]), tcpPort: Number(tcp[1]) });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`ksr exited with ${code}:\n${stderr}`));
    });
  });
  return { child, ...ports, stderr: () => stderr };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

describe("ksr run", () => {
  it("exits 1 printing file:line for a script with a syntax error, without a stack", () => {
    const r = ksrSync(["run", scriptPath("syntax-error.js"), "--listen", "udp:127.0.0.1:0"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/syntax-error\.js:3:\d+: /);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it("refuses --store with --workers, a store URL that is not redis://, and a nonce secret without a store, saying why", () => {
    const workers = ksrSync(["run", scriptPath("reply-ok.js"), "--store", "redis://127.0.0.1:6379", "--workers", "2"]);
    expect(workers.status).toBe(2);
    expect(workers.stderr).toContain("--store with --workers");
    const url = ksrSync(["run", scriptPath("reply-ok.js"), "--store", "http://127.0.0.1:6379"]);
    expect(url.status).not.toBe(0);
    expect(url.stderr).toMatch(/--store.*only redis:\/\/ stores/);
    const secret = ksrSync(["run", scriptPath("reply-ok.js"), "--nonce-secret-file", "secret"]);
    expect(secret.status).toBe(2);
    expect(secret.stderr).toContain("--nonce-secret-file applies with --store");
  });

  it("names the option when a value is bad", () => {
    const heap = ksrSync(["run", scriptPath("reply-ok.js"), "--heap-mb", "lots"]);
    expect(heap.status).not.toBe(0);
    expect(heap.stderr).toContain("--heap-mb");
    const listen = ksrSync(["run", scriptPath("reply-ok.js"), "--listen", "sctp:127.0.0.1:5060"]);
    expect(listen.status).not.toBe(0);
    expect(listen.stderr).toContain("--listen");
    const level = ksrSync(["run", scriptPath("reply-ok.js"), "--log-level", "loud"]);
    expect(level.status).not.toBe(0);
    expect(level.stderr).toContain("--log-level");
    const cap = ksrSync(["run", scriptPath("reply-ok.js"), "--tcp-max-output-bytes", "0"]);
    expect(cap.status).not.toBe(0);
    expect(cap.stderr).toContain("--tcp-max-output-bytes");
    const density = ksrSync(["run", scriptPath("reply-ok.js"), "--pike-reqs-density-per-unit", "-3"]);
    expect(density.status).not.toBe(0);
    expect(density.stderr).toContain("--pike-reqs-density-per-unit");
    const workers = ksrSync(["run", "--tenants", "tenants.yaml", "--pike-remove-latency", "10"]);
    expect(workers.status).toBe(2);
    expect(workers.stderr).toContain("--pike-remove-latency applies to a single script: set modparams: per tenant in the tenants file");
    const modparam = ksrSync(["run", scriptPath("reply-ok.js"), "--modparam", "maxfwd.max_limit=300"]);
    expect(modparam.status).toBe(2);
    expect(modparam.stderr).toContain("--modparam maxfwd.max_limit: must be 0 to 255");
    const unknownParam = ksrSync(["run", scriptPath("reply-ok.js"), "--modparam", "maxfwd.max_limt=30"]);
    expect(unknownParam.stderr).toContain('--modparam maxfwd.max_limt: module maxfwd has no parameter "max_limt" (parameters: max_limit)');
    const onError = ksrSync(["run", scriptPath("reply-ok.js"), "--on-error", "200"]);
    expect(onError.status).not.toBe(0);
    expect(onError.stderr).toContain("--on-error");
    const callback = ksrSync(["run", scriptPath("reply-ok.js"), "--kemi-onsend-route-callback", "not-a-name"]);
    expect(callback.status).not.toBe(0);
    expect(callback.stderr).toContain("--kemi-onsend-route-callback");
    const withTenants = ksrSync(["run", "--tenants", "tenants.yaml", "--on-error", "none"]);
    expect(withTenants.status).toBe(2);
    expect(withTenants.stderr).toContain("--on-error applies to a single script: set onError and kemi: per tenant in the tenants file");
  });

  it("passes the TCP connection limits to the server process: a second connection from one address is refused, and SIGUSR2 counts it", async () => {
    const ksr = await startKsr([scriptPath("reply-ok.js"), "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0", "--tcp-max-inbound-per-ip", "1"]);
    const first = await TcpPeer.connect(ksr.tcpPort);
    const second = await TcpPeer.connect(ksr.tcpPort);
    try {
      await second.waitClosed(5000);
      await first.write(buildRequest({ transport: "TCP", viaPort: 5999 }));
      expect(statusOf(await first.next(5000))).toBe(200);
    } finally {
      first.close();
      second.close();
    }
    ksr.child.kill("SIGUSR2");
    const line = /INFO \[counters\] tcp: inbound=\d+ outbound=0 refused-inbound=0 refused-per-ip=1 /;
    for (let i = 0; i < 100 && !line.test(ksr.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(ksr.stderr()).toMatch(line);
    expect(ksr.stderr()).toContain("(limit 1 connections per address)");
    ksr.child.kill("SIGTERM");
    expect(await exitOf(ksr.child)).toEqual({ code: 0, signal: null });
  }, 30_000);

  it("answers OPTIONS over UDP and TCP, logs the script's counters on SIGUSR2 and stops cleanly on SIGTERM", async () => {
    const ksr = await startKsr([scriptPath("reply-ok.js"), "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0", "--alias", "proxy.example.test"]);
    const client = await UdpPeer.open();
    try {
      await client.send(buildRequest({ viaPort: client.port }), ksr.udpPort);
      expect(statusOf((await client.next(5000)).data)).toBe(200);
    } finally {
      await client.close();
    }
    const tcp = await TcpPeer.connect(ksr.tcpPort);
    try {
      await tcp.write(buildRequest({ transport: "TCP", viaPort: 5999 }));
      expect(statusOf(await tcp.next(5000))).toBe(200);
    } finally {
      tcp.close();
    }
    ksr.child.kill("SIGUSR2");
    const counters = /INFO \[counters\] tenant default: mode=sync messages=2 route-errors=0 .* 2xx=2 /;
    for (let i = 0; i < 100 && !counters.test(ksr.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(ksr.stderr()).toMatch(counters);
    ksr.child.kill("SIGTERM");
    expect(await exitOf(ksr.child)).toEqual({ code: 0, signal: null });
    expect(ksr.stderr()).toContain("SIGTERM: stopping");
  });

  it("restarts a server process that V8 aborts, which then answers again on the same port", async () => {
    const ksr = await startKsr([scriptPath("process-abort.js"), "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0", "--heap-mb", "32", "--timeout-ms", "5000"]);
    const client = await UdpPeer.open();
    try {
      // One request is enough; the loop only guards against a slow start.
      const aborted = () => /server process ended unexpectedly \(signal SIG(ABRT|TRAP)\)/.test(ksr.stderr());
      for (let attempt = 0; attempt < 3 && !aborted(); attempt++) {
        await client.send(buildRequest({ uri: "sip:abort@127.0.0.1", viaPort: client.port }), ksr.udpPort);
        await client.next(2500).catch(() => undefined);
      }
      expect(aborted()).toBe(true);
      // The request that aborted the process gets no answer; the restarted
      // server answers the next ones on the same port.
      let status = 0;
      for (let attempt = 0; attempt < 20 && status !== 200; attempt++) {
        await client.send(buildRequest({ uri: "sip:ok@127.0.0.1", viaPort: client.port }), ksr.udpPort);
        status = await client.next(500).then((m) => statusOf(m.data), () => 0);
      }
      expect(status).toBe(200);
      expect(ksr.stderr()).toMatch(/server process ended unexpectedly \(signal SIG(ABRT|TRAP)\)/);
    } finally {
      await client.close();
    }
    ksr.child.kill("SIGTERM");
    expect(await exitOf(ksr.child)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it("takes the RFC 3261 timers from the command line: T1 100 ms retransmits an unanswered INVITE at 100, 300, 700 ms", async () => {
    const callee = await UdpPeer.open();
    const caller = await UdpPeer.open();
    const ksr = await startKsr([scriptPath("relay.js"), "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0", "--t1-ms", "100", "--t2-ms", "400"]);
    try {
      await caller.send(buildRequest({ method: "INVITE", uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: caller.port }), ksr.udpPort);
      const invites: string[] = [];
      // Timer A doubles from T1 (§17.1.1.2): copies at 0, 100, 300, 700 ms
      // after the first, then 1 500 ms; with the default T1 of 500 ms they
      // would come at 0, 500 and 1 500 ms, only three within 3 s. The window
      // opens at the first copy and is wide, so that a loaded machine, which
      // delays timers, still sees four.
      const first = await callee.next(5_000);
      if (first.data.startsWith("INVITE ")) invites.push(first.data);
      const until = Date.now() + 3_000;
      while (invites.length < 4) {
        const left = until - Date.now();
        if (left <= 0) break;
        const m = await callee.next(left).catch(() => undefined);
        if (m === undefined) break;
        if (m.data.startsWith("INVITE ")) invites.push(m.data);
      }
      expect(invites.length).toBeGreaterThanOrEqual(4);
    } finally {
      await callee.close();
      await caller.close();
    }
  });

  it("refuses timer values that contradict RFC 3261 (T2 below T1), naming them", () => {
    const r = ksrSync(["run", scriptPath("relay.js"), "--t1-ms", "500", "--t2-ms", "100"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("T2 (100 ms) must not be smaller than T1 (500 ms)");
  });

  it("stops cleanly on SIGINT", async () => {
    const ksr = await startKsr([scriptPath("reply-ok.js"), "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0"]);
    ksr.child.kill("SIGINT");
    expect(await exitOf(ksr.child)).toEqual({ code: 0, signal: null });
  });

  it("exits 1 when the port is taken", async () => {
    const holder = await UdpPeer.open();
    try {
      const r = ksrSync(["run", scriptPath("reply-ok.js"), "--listen", `udp:127.0.0.1:${holder.port}`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("cannot listen");
    } finally {
      await holder.close();
    }
  });
});

describe("ksr run with TLS settings", () => {
  it("exits 2 for --tls-cert without --tls-key, and 1 naming the problem for a tls socket without a certificate or with an unreadable one", () => {
    const half = ksrSync(["run", scriptPath("reply-ok.js"), "--tls-cert", "server.pem"]);
    expect(half.status).toBe(2);
    expect(half.stderr).toContain("--tls-cert and --tls-key go together");
    const none = ksrSync(["run", scriptPath("reply-ok.js"), "--no-supervise", "--listen", "tls:127.0.0.1:0"]);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain("a tls listen socket needs a certificate and key");
    const missing = path.join(ROOT, "no-such-dir", "server.pem");
    const unreadable = ksrSync(["run", scriptPath("reply-ok.js"), "--no-supervise", "--listen", "tls:127.0.0.1:0", "--tls-cert", missing, "--tls-key", missing]);
    expect(unreadable.status).toBe(1);
    expect(unreadable.stderr).toContain(`cannot read TLS certificate file ${missing}`);
  });

  it("refuses an unknown --tls-verify-client mode", () => {
    const r = ksrSync(["run", scriptPath("reply-ok.js"), "--tls-verify-client", "sometimes"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('"sometimes" is not none, optional, require');
  });
});

describe("ksr api", () => {
  it("lists the KSR functions from the export tables as JSON", () => {
    const r = ksrSync(["api", "--json"]);
    expect(r.status).toBe(0);
    const entries = JSON.parse(r.stdout) as { module: string; name: string; params: string[]; returns: string; available: boolean }[];
    const reply = entries.find((e) => e.module === "sl" && e.name === "sl_send_reply");
    expect(reply).toMatchObject({ params: ["int", "str"], returns: "int", available: true });
    expect(entries.some((e) => e.module === "" && e.name === "is_method")).toBe(true);
  });

  it("prints one line per function as text", () => {
    const r = ksrSync(["api"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^int KSR\.sl\.sl_send_reply\(int, str\) \[REQUEST_ROUTE\]/m);
    expect(r.stdout).toMatch(/^\d+ functions \(\d+ available, \d+ unavailable\)$/m);
  });

  it("--native lists the native functions KSR.x.modf finds, by name and parameter count, and those Kamailio's modf refuses", () => {
    const r = ksrSync(["api", "--native", "--json"]);
    expect(r.status).toBe(0);
    const natives = JSON.parse(r.stdout) as { name: string; params: string[]; kemi?: string; modf: string }[];
    expect(natives.filter((n) => n.name === "sanity_check").map((n) => [n.params.length, n.modf, n.kemi])).toEqual([
      [0, "call", "KSR.sanity.sanity_check_defaults"],
      [1, "call", undefined],
      [2, "call", "KSR.sanity.sanity_check"],
    ]);
    expect(natives.find((n) => n.name === "sl_send_reply")).toMatchObject({ modf: "refused", kemi: "KSR.sl.sl_send_reply" });
    // KEMI-only names have no native entry.
    expect(natives.some((n) => n.name === "get_ruri" || n.name === "sets")).toBe(false);
    const text = ksrSync(["api", "--native"]);
    expect(text.stdout).toMatch(/^sanity: sanity_check\(int, int\) \[REQUEST_ROUTE\|ONREPLY_ROUTE\]  → KSR\.sanity\.sanity_check$/m);
    expect(natives.find((n) => n.name === "t_relay" && n.params.length === 0)).toMatchObject({ routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"] });
    expect(text.stdout).toMatch(/^\d+ native functions for KSR\.x\.modf \(\d+ callable, \d+ refused as in Kamailio 5\.6\)$/m);
  });
});
