/**
 * Several servers, one service: `ksr run --store redis://…` against a real
 * redis-server (started here on a free loopback port, no persistence
 * configured; the restart case saves and reloads its dump explicitly).
 *
 * Servers A and B run Kamailio's kamailio-basic-kemi-jsdt.js, unmodified
 * (taken from the Debian package as in basic-script.test.ts), with one
 * nonce secret, against one Redis holding the subscribers (added with
 * `ksr subscriber add --store`). Cases, in order:
 *   - bob registers through A; alice's call through B reaches bob (sipp UAS);
 *   - a nonce A issued verifies on B, and is refused as used on A after B accepted it;
 *   - bob unregisters through B; alice's call through A gets 404;
 *   - `ksr ctl ul lookup|rm` on B sees and removes a binding saved through A;
 *   - Redis stopped: REGISTER through A → 401 then 500, a call through B → 404,
 *     one "unreachable" log line per server; Redis restarted (its dump
 *     reloaded): bob's binding, saved before the stop, routes a call again.
 * Servers C (tenants in its own process) and D (tenants in worker
 * processes) serve two tenants each (red.test, blue.test) from one tenants
 * file with a probe script (scripts/shared-htable.js) and a shared htable: a value set through C for red is read through D for red, never
 * for blue; increments through both servers add up; a table not marked
 * shared stays on its server; no key of red's lies outside red's prefix.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { obtainBasicKemiScript } from "../../bench/lib/kamailio-example.mjs";
import { KSR_BIN, REPO_ROOT, ensureBuilt, findFreePort, runSipp, sippMessageCounters, startKsr, type KsrProcess, type SippRun } from "../../bench/lib/sipp.mjs";
import { bulkStrings, redisCommand, redisServerInstalled, REDIS_SERVER, startRedis, type RedisServer } from "../../bench/lib/redis.mjs";
import { calleeRunAfterCaller, describeSipp, expectAllCallsSucceeded, requireSipp, startCallee } from "./harness.js";
import { buildRequest, headerValue, reasonOf, statusOf, until, UdpPeer } from "../e2e/sip-client.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const basicScenario = (name: string): string => path.join(HERE, "basic", name);
const redisScenario = (name: string): string => path.join(HERE, "redis", name);
const HTABLE_SCRIPT = path.join(HERE, "scripts", "shared-htable.js");

const DOMAIN = "127.0.0.1";
const SUBSCRIBERS = { alice: "alice-secret", bob: "bob-secret" } as const;
type User = keyof typeof SUBSCRIBERS;
const CALLS = 3;
const RATE_PER_SECOND = 5;
const CALLEE_TIMEOUT_S = Math.ceil(CALLS / RATE_PER_SECOND) + 20;

function credentials(user: User): string[] {
  return ["-au", user, "-ap", SUBSCRIBERS[user]];
}

function ksrCli(args: string[]): string {
  const result = spawnSync(process.execPath, [KSR_BIN, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 30_000 });
  if (result.status !== 0) throw new Error(`ksr ${args.join(" ")} failed (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

const md5 = (text: string): string => createHash("md5").update(text).digest("hex");

/** Digest credentials without qop (RFC 2617 §3.2.2.1), as the basic script challenges (auth_challenge flags 0). */
function authorization(user: User, challenge: string, method: string, uri: string): string {
  const realm = /realm="([^"]*)"/.exec(challenge)![1]!;
  const nonce = /nonce="([^"]*)"/.exec(challenge)![1]!;
  const response = md5(`${md5(`${user}:${realm}:${SUBSCRIBERS[user]}`)}:${nonce}:${md5(`${method}:${uri}`)}`);
  return `Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
}

describe("two servers sharing one Redis (`ksr run --store redis://…`)", () => {
  let workDir: string;
  let redis: RedisServer | undefined;
  let storeUrl: string;
  let serverA: KsrProcess | undefined;
  let serverB: KsrProcess | undefined;
  let portA: number;
  let portB: number;
  let bobPort: number;
  let alicePort: number;
  let controlA: string;
  let controlB: string;

  beforeAll(async () => {
    requireSipp();
    ensureBuilt();
    if (!redisServerInstalled()) throw new Error(`${REDIS_SERVER} is missing: apt-get install -y redis-server (.ci/run does)`);
    const script = obtainBasicKemiScript().script;
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-redis-store-"));
    redis = await startRedis(await findFreePort(), workDir);
    storeUrl = redis.url;
    const secretFile = path.join(workDir, "nonce-secret");
    fs.writeFileSync(secretFile, "a shared secret of the two servers\n");
    for (const [user, password] of Object.entries(SUBSCRIBERS)) ksrCli(["subscriber", "add", `${user}@${DOMAIN}`, password, "--store", storeUrl]);
    [portA, portB, bobPort, alicePort] = [await findFreePort(), await findFreePort(), await findFreePort(), await findFreePort()];
    const args = ["--store", storeUrl, "--nonce-secret-file", secretFile];
    [controlA, controlB] = [path.join(workDir, "a.ctl"), path.join(workDir, "b.ctl")];
    [serverA, serverB] = await Promise.all([
      startKsr({ script, port: portA, logLevel: "notice", extraArgs: [...args, "--control", controlA] }),
      startKsr({ script, port: portB, logLevel: "notice", extraArgs: [...args, "--control", controlB] }),
    ]);
  });

  afterAll(async () => {
    await serverA?.stop();
    await serverB?.stop();
    await redis?.kill();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  const tails = (): string =>
    [`server A (tail):\n${serverA?.output().slice(-2500) ?? ""}`, `server B (tail):\n${serverB?.output().slice(-2500) ?? ""}`].join("\n");

  async function register(user: User, port: number, localPort: number, file = basicScenario("register.xml")): Promise<{ run: SippRun; diagnostics: string }> {
    const run = await runSipp({ scenarioFile: file, targetPort: port, localPort, calls: 1, rate: 1, extraArgs: ["-s", user, ...credentials(user)] });
    return { run, diagnostics: `${describeSipp(`${path.basename(file)} ${user}`, run)}\n${tails()}` };
  }

  async function callBobThrough(port: number): Promise<{ caller: SippRun; callee: SippRun; diagnostics: string }> {
    const callee = await startCallee("sipp callee bob", { scenarioFile: basicScenario("callee.xml"), localPort: bobPort, calls: CALLS, timeoutS: CALLEE_TIMEOUT_S });
    try {
      const caller = await runSipp({
        scenarioFile: basicScenario("caller.xml"),
        targetPort: port,
        localPort: alicePort,
        calls: CALLS,
        rate: RATE_PER_SECOND,
        extraArgs: ["-s", "bob", "-key", "caller", "alice", ...credentials("alice")],
      });
      const calleeRun = await calleeRunAfterCaller(callee);
      return { caller, callee: calleeRun, diagnostics: [describeSipp("caller alice", caller), describeSipp("callee bob", calleeRun), tails()].join("\n") };
    } finally {
      await callee.stop().catch(() => undefined);
    }
  }

  function expectCallsCompleted({ caller, callee, diagnostics }: { caller: SippRun; callee: SippRun; diagnostics: string }): void {
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("callee", callee, CALLS, diagnostics);
    expect(sippMessageCounters(callee, "INVITE").Recv, diagnostics).toBe(CALLS);
  }

  async function callBobExpecting404(port: number): Promise<void> {
    const run = await runSipp({
      scenarioFile: basicScenario("unknown-user.xml"),
      targetPort: port,
      localPort: alicePort,
      calls: CALLS,
      rate: RATE_PER_SECOND,
      extraArgs: ["-s", "bob", "-key", "caller", "alice", ...credentials("alice")],
    });
    const diagnostics = `${describeSipp("INVITE bob", run)}\n${tails()}`;
    expectAllCallsSucceeded("caller", run, CALLS, diagnostics);
    expect(sippMessageCounters(run, "404").Recv, diagnostics).toBe(CALLS);
  }

  it("REGISTER through A, INVITE through B reaches the contact", async () => {
    const { run, diagnostics } = await register("bob", portA, bobPort);
    expectAllCallsSucceeded("REGISTER bob through A", run, 1, diagnostics);
    expect(sippMessageCounters(run, "200").Recv, diagnostics).toBe(1);
    expectCallsCompleted(await callBobThrough(portB));
  });

  it("a nonce A issued verifies on B, and its second use is refused on A", async () => {
    const peer = await UdpPeer.open();
    try {
      const uri = `sip:${DOMAIN}`;
      const registerRequest = (cseq: number, extra: string[]): string =>
        buildRequest({
          method: "REGISTER",
          uri,
          viaPort: peer.port,
          viaParams: ";rport",
          callId: `nonce-${process.pid}@test`,
          cseq,
          headers: [`Contact: <sip:alice@127.0.0.1:${peer.port}>`, "Expires: 60", ...extra],
        })
          .replace(/^From: .*$/m, `From: <sip:alice@${DOMAIN}>;tag=nonce-test`)
          .replace(/^To: .*$/m, `To: <sip:alice@${DOMAIN}>`);
      await peer.send(registerRequest(1, []), portA);
      const challenge = await peer.next(5_000);
      expect(statusOf(challenge.data), challenge.data).toBe(401);
      const credentialsLine = authorization("alice", headerValue(challenge.data, "WWW-Authenticate")!, "REGISTER", uri);
      await peer.send(registerRequest(2, [credentialsLine]), portB);
      const accepted = await peer.next(5_000);
      expect(statusOf(accepted.data), `${accepted.data}\n${tails()}`).toBe(200);
      // Without qop a nonce is good once (Kamailio one_time_nonce); B's use
      // reached A through Redis, so A refuses the same credentials (401, stale).
      // B answered once its use was recorded locally; the announcement
      // reaches A through Redis moments later (well under a millisecond on
      // loopback; the pause leaves room on a loaded machine).
      await new Promise((r) => setTimeout(r, 200));
      await peer.send(registerRequest(3, [credentialsLine]), portA);
      const replay = await peer.next(5_000);
      expect(statusOf(replay.data), `${replay.data}\n${tails()}`).toBe(401);
      // Remove alice's binding again: the call cases route to bob only.
      const fresh = authorization("alice", headerValue(replay.data, "WWW-Authenticate")!, "REGISTER", uri);
      await peer.send(registerRequest(4, [fresh]).replace("Expires: 60", "Expires: 0"), portA);
      expect(statusOf((await peer.next(5_000)).data)).toBe(200);
    } finally {
      await peer.close();
    }
  });

  it("unregister through B: the next call through A gets 404", async () => {
    const { run, diagnostics } = await register("bob", portB, bobPort, redisScenario("unregister.xml"));
    expectAllCallsSucceeded("unREGISTER bob through B", run, 1, diagnostics);
    await callBobExpecting404(portA);
  });

  /** `ksr ctl` against a server's control socket: exit status and output. */
  function ctl(control: string, ...args: string[]): { status: number | null; output: string } {
    const r = spawnSync(process.execPath, [KSR_BIN, "ctl", "--control", control, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 30_000 });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }

  it("`ksr ctl ul` works against the shared store: a binding saved through A is listed by B, removed through B, gone from A", async () => {
    const { run, diagnostics } = await register("bob", portA, bobPort);
    expectAllCallsSucceeded("REGISTER bob through A", run, 1, diagnostics);
    const listed = ctl(controlB, "ul", "lookup", "bob");
    expect(listed.status, listed.output).toBe(0);
    expect(listed.output).toContain(`sip:bob@127.0.0.1:${bobPort}`);
    const removed = ctl(controlB, "ul", "rm", "bob");
    expect(removed.status, removed.output).toBe(0);
    await until("A no longer lists bob", () => ctl(controlA, "ul", "lookup", "bob").status !== 0, 10_000);
    expect(ctl(controlA, "ul", "lookup", "bob").output).toMatch(/not found/);
    await callBobExpecting404(portA);
  });

  it("Redis stopped: REGISTER gets 500 and calls 404, one log line per server; restarted: bindings intact, calls go through", async () => {
    const { run, diagnostics } = await register("bob", portA, bobPort);
    expectAllCallsSucceeded("REGISTER bob through A", run, 1, diagnostics);
    await redis!.stopSaving();
    for (const server of [serverA!, serverB!]) await until("the server noticed", () => /unreachable/.test(server.output()), 10_000);

    const refused = await register("alice", portA, alicePort, redisScenario("register-refused.xml"));
    expectAllCallsSucceeded("REGISTER alice through A while Redis is away", refused.run, 1, refused.diagnostics);
    expect(sippMessageCounters(refused.run, "500").Recv, refused.diagnostics).toBe(1);
    await callBobExpecting404(portB);
    for (const server of [serverA!, serverB!]) {
      // ioredis keeps trying meanwhile; the state change is logged once.
      expect(server.output().match(/unreachable/g)?.length, server.output().slice(-3000)).toBe(1);
    }

    redis = await startRedis(redis!.port, workDir);
    for (const server of [serverA!, serverB!]) await until("the server is back", () => /reachable again/.test(server.output()), 20_000);
    expectCallsCompleted(await callBobThrough(portB));
    for (const server of [serverA!, serverB!]) {
      expect(server.output().match(/unreachable/g)?.length, server.output().slice(-3000)).toBe(1);
      expect(server.output().match(/reachable again/g)?.length, server.output().slice(-3000)).toBe(1);
      expect(server.output(), "no crash, no error other than the store's").not.toMatch(/uncaught|TypeError|ReferenceError/i);
    }
  });
});

describe("two tenants on two servers sharing one Redis", () => {
  let workDir: string;
  let redis: RedisServer | undefined;
  let serverC: KsrProcess | undefined;
  let serverD: KsrProcess | undefined;
  let peer: UdpPeer;

  beforeAll(async () => {
    ensureBuilt();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-redis-tenants-"));
    redis = await startRedis(await findFreePort(), workDir);
    const tenants = path.join(workDir, "tenants.yaml");
    fs.writeFileSync(
      tenants,
      [
        "unmatched: 404",
        "tenants:",
        ...["red", "blue"].flatMap((id) => [`  - id: ${id}`, `    script: ${HTABLE_SCRIPT}`, "    match:", `      domains: [${id}.test]`]),
        "",
      ].join("\n"),
    );
    const args = [
      "--store",
      redis.url,
      "--htable",
      "carriers=>shared=1",
      "--htable",
      "calls=>shared=1;initval=0",
      "--htable",
      "mine=>initval=0",
    ];
    const [portC, portD] = [await findFreePort(), await findFreePort()];
    // startKsr runs `ksr run <script>`; a tenants server is `ksr run --tenants <file>`.
    // C runs its tenants in its own process, D in worker processes (the default): both paths reach the store.
    [serverC, serverD] = await Promise.all([
      startTenantsServer(tenants, portC, ["--isolation", "in-process", ...args]),
      startTenantsServer(tenants, portD, args),
    ]);
    peer = await UdpPeer.open();
  });

  afterAll(async () => {
    await peer?.close();
    await serverC?.stop();
    await serverD?.stop();
    await redis?.kill();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  async function startTenantsServer(file: string, port: number, args: string[]): Promise<KsrProcess> {
    return startKsr({ script: `--tenants=${file}`, port, logLevel: "notice", extraArgs: args, readiness: "sockets" });
  }

  /** The reason phrase of the probe script's answer to op on the tenant's table through the server. */
  async function probe(server: KsrProcess, tenant: string, op: string, table: string, key: string, value?: string): Promise<string> {
    const request = buildRequest({
      method: "OPTIONS",
      uri: `sip:${op}@${tenant}.test`,
      viaPort: peer.port,
      headers: [`X-Table: ${table}`, `X-Key: ${key}`, ...(value === undefined ? [] : [`X-Value: ${value}`])],
    });
    await peer.send(request, server.port);
    const answer = await peer.next(5_000);
    expect(statusOf(answer.data), answer.data).toBe(200);
    return reasonOf(answer.data);
  }

  it("a value set through C is read through D by the same tenant, and by no other", async () => {
    expect(await probe(serverC!, "red", "set", "carriers", "carrier", "one")).toBe("set 1");
    let seen = "";
    for (let attempt = 0; attempt < 50 && seen !== "value one"; attempt++) {
      seen = await probe(serverD!, "red", "get", "carriers", "carrier");
      if (seen !== "value one") await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toBe("value one");
    expect(await probe(serverD!, "blue", "get", "carriers", "carrier")).toBe("value <null>");
    expect(await probe(serverC!, "blue", "get", "carriers", "carrier")).toBe("value <null>");
  });

  it("sht_inc through both servers: no increment is lost", async () => {
    const rounds = 20;
    for (let i = 0; i < rounds; i++) {
      await probe(serverC!, "red", "inc", "calls", "count");
      await probe(serverD!, "red", "inc", "calls", "count");
    }
    const stored = await redisCommand(redis!.port, "GET", "ksr:red:ht:calls:count");
    expect(stored).toContain(`i:${2 * rounds}`);
    let seen = "";
    for (let attempt = 0; attempt < 50 && seen !== `value ${2 * rounds}`; attempt++) {
      seen = await probe(serverC!, "red", "get", "calls", "count");
      if (seen !== `value ${2 * rounds}`) await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toBe(`value ${2 * rounds}`);
  });

  it("a table not marked shared stays on its server", async () => {
    expect(await probe(serverC!, "red", "inc", "mine", "n")).toBe("inc 1");
    expect(await probe(serverD!, "red", "get", "mine", "n")).toBe("value 0");
  });

  /** The probe's answer to a KSR.ndb_redis command line run for the tenant through the server. */
  async function redisCmd(server: KsrProcess, tenant: string, line: string): Promise<string> {
    const request = buildRequest({ method: "OPTIONS", uri: `sip:redis@${tenant}.test`, viaPort: peer.port, headers: [`X-Command: ${line}`] });
    await peer.send(request, server.port);
    const answer = await peer.next(5_000);
    expect(statusOf(answer.data), answer.data).toBe(200);
    return reasonOf(answer.data);
  }

  it("KSR.ndb_redis: a value set through C is read through D within the tenant's prefix; other keys and commands are refused", async () => {
    const prefix = "ksr:red:ndb:";
    expect(await probe(serverC!, "red", "prefix", "-", "-")).toBe(prefix);
    // redis_cmd answers 0 as Kamailio 5.6's KEMI function; type 5 = status, 1 = string (hiredis).
    expect(await redisCmd(serverC!, "red", `SET ${prefix}greeting hello`)).toBe("redis 0 5 null");
    expect(await redisCmd(serverD!, "red", `GET ${prefix}greeting`)).toBe("redis 0 1 hello");
    expect(await redisCmd(serverD!, "red", `INCR ${prefix}n`)).toBe("redis 0 3 1");
    // Outside the tenant's prefix (another tenant's, the server's own keys), or a command without a key table entry: refused, nothing sent.
    expect(await redisCmd(serverD!, "blue", `GET ${prefix}greeting`)).toBe("redis -1 null null");
    expect(await redisCmd(serverC!, "red", "GET ksr:red:ht:calls:count")).toBe("redis -1 null null");
    expect(await redisCmd(serverC!, "red", `MSET ${prefix}a 1 ksr:blue:ndb:a 2`)).toBe("redis -1 null null");
    expect(await redisCmd(serverC!, "red", "KEYS *")).toBe("redis -1 null null");
    expect(await redisCommand(redis!.port, "EXISTS", "ksr:blue:ndb:a")).toBe(":0\r\n");
    // An error reply: -1, the reply kept with type 6.
    expect(await redisCmd(serverC!, "red", `INCR ${prefix}greeting`)).toBe("redis -1 6 null");
  });

  it("`ksr address` works against the shared store, per tenant", () => {
    const store = ["--store", redis!.url];
    ksrCli(["address", "add", "1", "192.0.2.0/24", "--port", "5060", "--tag", "gw", "--tenant", "red", ...store]);
    expect(ksrCli(["address", "list", "--tenant", "red", ...store])).toMatch(/^1\t192\.0\.2\.0\/24\t5060\tgw$/m);
    expect(ksrCli(["address", "list", "--tenant", "blue", ...store])).toBe("");
    expect(ksrCli(["address", "rm", "1", "192.0.2.0/24", "--tenant", "red", ...store])).toContain("1 address entry removed");
    expect(ksrCli(["address", "list", "--tenant", "red", ...store])).toBe("");
  });

  it("every key a tenant wrote lies under its own prefix", async () => {
    const keys = bulkStrings(await redisCommand(redis!.port, "KEYS", "*")).filter((k) => k !== "ksr:nonce-lane");
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(/^ksr:red:(ht:(calls|carriers)|ndb):/);
  });
});
