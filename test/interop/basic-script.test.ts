/**
 * Kamailio's own example script `kamailio-basic-kemi-jsdt.js`, unmodified,
 * as the routing script of `ksr run`, driven by sipp over loopback.
 *
 * The script is not part of this repository (it is GPL): it is taken at test
 * time from the Debian package `kamailio` with `apt-get download` and
 * `dpkg -x` (bench/lib/kamailio-example.mjs); nothing of Kamailio is
 * installed or run. When the download fails the suite fails, with apt-get's
 * output: a skipped acceptance test would read as a pass.
 *
 * One server on a temporary SQLite database with three subscribers
 * (alice, bob, carol @127.0.0.1: the script's digest realm is the From host)
 * serves every case in order; the last case restarts it on the same database.
 * Cases (test/interop/basic/*.xml):
 *   - REGISTER without credentials → 401; with them → 200 listing the binding;
 *   - alice calls bob (registered from a sipp callee's port): 407, then the
 *     authenticated INVITE is relayed to bob's Contact and the call completes;
 *   - a call to a local user without binding → 404;
 *   - OPTIONS to the server → 200 Keepalive;
 *   - Max-Forwards 0 → 483;
 *   - a foreign caller to a foreign domain → 403 Not relaying;
 *   - User-Agent friendly-scanner → 200 OK and nothing else (no binding);
 *   - the same REGISTER and call with credentials ending in `algorithm=MD5;`
 *     (sipp scenarios copied around write `[authentication];`), which
 *     Kamailio accepts;
 *   - after a restart on the same database bob's binding still routes calls.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { obtainBasicKemiScript } from "../../bench/lib/kamailio-example.mjs";
import {
  KSR_BIN,
  REPO_ROOT,
  ensureBuilt,
  findFreePort,
  runSipp,
  sippMessageCounters,
  startKsr,
  type KsrProcess,
  type SippRun,
} from "../../bench/lib/sipp.mjs";
import { calleeRunAfterCaller, describeSipp, expectAllCallsSucceeded, requireSipp, startCallee } from "./harness.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIOS = path.join(HERE, "basic");
const scenario = (name: string): string => path.join(SCENARIOS, name);

/**
 * A copy of a scenario whose credentials header ends in ";": sipp expands
 * `[authentication]` to the whole Authorization / Proxy-Authorization line,
 * so `[authentication];` sends `..., algorithm=MD5;` as widely copied
 * scenarios do.
 */
function withTrailingSemicolon(file: string, dir: string): string {
  const text = fs.readFileSync(file, "utf8");
  const copy = path.join(dir, `trailing-semicolon-${path.basename(file)}`);
  const rewritten = text.replace("[authentication]", "[authentication];");
  if (rewritten === text) throw new Error(`${file} has no [authentication] line`);
  fs.writeFileSync(copy, rewritten);
  return copy;
}

/** Subscribers in the realm the script challenges with: the From host, here the server's address. */
const DOMAIN = "127.0.0.1";
const SUBSCRIBERS = { alice: "alice-secret", bob: "bob-secret", carol: "carol-secret" } as const;
type User = keyof typeof SUBSCRIBERS;

const CALLS = 5;
const RATE_PER_SECOND = 5;
/** Bound on a sipp callee: the caller's batch plus slack. */
const CALLEE_TIMEOUT_S = Math.ceil(CALLS / RATE_PER_SECOND) + 20;

/** sipp arguments giving the digest credentials of a user (-au, -ap). */
function credentials(user: User): string[] {
  return ["-au", user, "-ap", SUBSCRIBERS[user]];
}

/** sipp arguments for caller.xml / unknown-user.xml: the caller's From user ([caller]) and credentials. */
function callerArgs(user: User): string[] {
  return ["-key", "caller", user, ...credentials(user)];
}

function ksrCli(args: string[]): string {
  const result = spawnSync(process.execPath, [KSR_BIN, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 30_000 });
  if (result.status !== 0) throw new Error(`ksr ${args.join(" ")} failed (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/**
 * Error-level lines of the server's log. The script calls
 * KSR.rtpproxy.rtpproxy_manage only for NATed calls, which loopback calls
 * are not; its error line (the function is unavailable here) is still
 * tolerated should it appear, anything else at ERR or CRIT is a failure.
 */
function unexpectedServerErrors(output: string): string[] {
  return output
    .split("\n")
    .filter((line) => /^\S+ (ERR|CRIT) /.test(line))
    .filter((line) => !/rtpproxy/i.test(line));
}

describe("Kamailio's kamailio-basic-kemi-jsdt.js, unmodified, under `ksr run` with sipp over UDP", () => {
  let workDir: string;
  let script: string;
  let database: string;
  let serverPort: number;
  /** Where the sipp callee for bob listens, and so bob's registered Contact. */
  let bobPort: number;
  let alicePort: number;
  let server: KsrProcess | undefined;
  /** Output of servers already stopped (the restart case), for the error-line check. */
  const earlierServerOutput: string[] = [];

  const startServer = async (): Promise<KsrProcess> =>
    startKsr({ script, port: serverPort, logLevel: "warn", extraArgs: ["--db", database] });

  beforeAll(async () => {
    requireSipp();
    ensureBuilt();
    // Throws with apt-get's output when the package cannot be downloaded.
    script = obtainBasicKemiScript().script;
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-basic-script-"));
    database = path.join(workDir, "ksr.sqlite");
    for (const [user, password] of Object.entries(SUBSCRIBERS)) {
      ksrCli(["subscriber", "add", `${user}@${DOMAIN}`, password, "--db", database]);
    }
    [serverPort, bobPort, alicePort] = [await findFreePort(), await findFreePort(), await findFreePort()];
    server = await startServer();
  });

  afterAll(async () => {
    await server?.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  const serverTail = (): string => `server output (tail):\n${server?.output().slice(-3000) ?? "(not running)"}`;

  it("`ksr check` finds every KSR function the script calls, and names rtpproxy_manage as unavailable", () => {
    const check = spawnSync(process.execPath, [KSR_BIN, "check", script], { cwd: REPO_ROOT, encoding: "utf8", timeout: 30_000 });
    const report = `${check.stdout}${check.stderr}`;
    // One problem only: the RTP proxy this server does not have.
    expect(check.status, report).toBe(1);
    const problems = report.split("\n").filter((line) => line.startsWith(`${script}:`));
    expect(problems, report).toHaveLength(1);
    expect(problems[0], report).toMatch(/KSR\.rtpproxy\.rtpproxy_manage: not available/);
  });

  /** One REGISTER → 401 → REGISTER with credentials → 200 for user, sent from localPort. */
  async function register(user: User, localPort: number, scenarioFile = scenario("register.xml")): Promise<{ run: SippRun; diagnostics: string }> {
    const run = await runSipp({
      scenarioFile,
      targetPort: serverPort,
      localPort,
      calls: 1,
      rate: 1,
      extraArgs: ["-s", user, ...credentials(user)],
    });
    return { run, diagnostics: `${describeSipp(`REGISTER ${user}`, run)}\n${serverTail()}` };
  }

  it("challenges a REGISTER with 401 and saves the binding once it carries credentials (200 lists the Contact)", async () => {
    for (const [user, port] of [
      ["bob", bobPort],
      ["alice", alicePort],
    ] as const) {
      const { run, diagnostics } = await register(user, port);
      expectAllCallsSucceeded(`REGISTER ${user}`, run, 1, diagnostics);
      expect(sippMessageCounters(run, "401").Recv, diagnostics).toBe(1);
      expect(sippMessageCounters(run, "200").Recv, diagnostics).toBe(1);
    }
  });

  /**
   * CALLS calls from alice to bob: bob's sipp callee listens on his
   * registered port, alice's caller answers the 407 with her credentials.
   */
  async function callBob(callerScenario = scenario("caller.xml")): Promise<{ caller: SippRun; callee: SippRun; diagnostics: string }> {
    const callee = await startCallee("sipp callee", {
      scenarioFile: scenario("callee.xml"),
      localPort: bobPort,
      calls: CALLS,
      timeoutS: CALLEE_TIMEOUT_S,
    });
    try {
      const caller = await runSipp({
        scenarioFile: callerScenario,
        targetPort: serverPort,
        localPort: alicePort,
        calls: CALLS,
        rate: RATE_PER_SECOND,
        extraArgs: ["-s", "bob", ...callerArgs("alice")],
      });
      const calleeRun = await calleeRunAfterCaller(callee);
      const diagnostics = [describeSipp("caller alice", caller), describeSipp("callee bob", calleeRun), serverTail()].join("\n");
      return { caller, callee: calleeRun, diagnostics };
    } finally {
      await callee.stop().catch(() => undefined);
    }
  }

  function expectCallsCompleted({ caller, callee, diagnostics }: { caller: SippRun; callee: SippRun; diagnostics: string }): void {
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("callee", callee, CALLS, diagnostics);
    expect(sippMessageCounters(caller, "407").Recv, diagnostics).toBe(CALLS);
    // Only the authenticated INVITE reached bob, once per call, and the ACK
    // and the BYE followed the record-routed path to him.
    expect(sippMessageCounters(callee, "INVITE").Recv, diagnostics).toBe(CALLS);
    expect(sippMessageCounters(callee, "ACK").Recv, diagnostics).toBe(CALLS);
    expect(sippMessageCounters(callee, "BYE").Recv, diagnostics).toBe(CALLS);
  }

  it("relays an authenticated INVITE from alice to bob's registered Contact and the call completes", async () => {
    expectCallsCompleted(await callBob());
  });

  it("accepts credentials ending in `algorithm=MD5;`: REGISTER 401 → 200 and INVITE 407 → call", async () => {
    const { run, diagnostics } = await register("bob", bobPort, withTrailingSemicolon(scenario("register.xml"), workDir));
    expectAllCallsSucceeded("REGISTER bob (trailing ;)", run, 1, diagnostics);
    expect(sippMessageCounters(run, "401").Recv, diagnostics).toBe(1);
    expect(sippMessageCounters(run, "200").Recv, diagnostics).toBe(1);
    expectCallsCompleted(await callBob(withTrailingSemicolon(scenario("caller.xml"), workDir)));
  });

  /** CALLS authenticated INVITEs from alice to user, each answered 404. */
  async function callUnregistered(user: User | "nobody"): Promise<{ run: SippRun; diagnostics: string }> {
    const run = await runSipp({
      scenarioFile: scenario("unknown-user.xml"),
      targetPort: serverPort,
      localPort: alicePort,
      calls: CALLS,
      rate: RATE_PER_SECOND,
      extraArgs: ["-s", user, ...callerArgs("alice")],
    });
    return { run, diagnostics: `${describeSipp(`INVITE ${user}`, run)}\n${serverTail()}` };
  }

  it("answers 404 Not Found to an authenticated call to a local user without a binding", async () => {
    const { run, diagnostics } = await callUnregistered("nobody");
    expectAllCallsSucceeded("caller", run, CALLS, diagnostics);
    expect(sippMessageCounters(run, "407").Recv, diagnostics).toBe(CALLS);
    expect(sippMessageCounters(run, "404").Recv, diagnostics).toBe(CALLS);
  });

  /** A batch of one-transaction requests (the scenario sets the expected answer). */
  async function requests(file: string, extraArgs: string[] = []): Promise<{ run: SippRun; diagnostics: string }> {
    const run = await runSipp({ scenarioFile: scenario(file), targetPort: serverPort, calls: CALLS, rate: RATE_PER_SECOND, extraArgs });
    return { run, diagnostics: `${describeSipp(file, run)}\n${serverTail()}` };
  }

  it("answers an OPTIONS addressed to the server itself with 200 Keepalive", async () => {
    const { run, diagnostics } = await requests("options-keepalive.xml");
    expectAllCallsSucceeded("OPTIONS", run, CALLS, diagnostics);
    expect(sippMessageCounters(run, "200").Recv, diagnostics).toBe(CALLS);
  });

  it("answers 483 Too Many Hops to a request with Max-Forwards 0", async () => {
    const { run, diagnostics } = await requests("max-forwards-zero.xml", ["-s", "bob"]);
    expectAllCallsSucceeded("Max-Forwards 0", run, CALLS, diagnostics);
    expect(sippMessageCounters(run, "483").Recv, diagnostics).toBe(CALLS);
  });

  it("refuses to relay from a foreign caller to a foreign domain with 403 Not relaying", async () => {
    const { run, diagnostics } = await requests("not-relaying.xml");
    expectAllCallsSucceeded("foreign INVITE", run, CALLS, diagnostics);
    expect(sippMessageCounters(run, "403").Recv, diagnostics).toBe(CALLS);
  });

  it("answers a friendly-scanner REGISTER with 200 OK and processes it no further (no binding)", async () => {
    const scanned = await requests("friendly-scanner.xml", ["-s", "carol"]);
    expectAllCallsSucceeded("friendly-scanner REGISTER", scanned.run, CALLS, scanned.diagnostics);
    expect(sippMessageCounters(scanned.run, "200").Recv, scanned.diagnostics).toBe(CALLS);
    // Had the registrar seen these REGISTERs, carol would now be reachable.
    const { run, diagnostics } = await callUnregistered("carol");
    expectAllCallsSucceeded("INVITE carol", run, CALLS, diagnostics);
    expect(sippMessageCounters(run, "404").Recv, diagnostics).toBe(CALLS);
  });

  it("keeps registrations across a restart on the same database: bob is still reachable", async () => {
    const stopped = server!;
    server = undefined;
    const exit = await stopped.stop();
    earlierServerOutput.push(stopped.output());
    expect(exit, stopped.output().slice(-3000)).toEqual({ code: 0, signal: null });
    server = await startServer();
    expectCallsCompleted(await callBob());
  });

  it("logged no error other than the unavailable RTP proxy", () => {
    const errors = [...earlierServerOutput, server?.output() ?? ""].flatMap(unexpectedServerErrors);
    expect(errors).toEqual([]);
  });
});
