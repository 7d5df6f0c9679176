/**
 * Interop of the stateful proxy with sipp over loopback: sipp caller →
 * `ksr run` (test/interop/scripts/stateful-relay.js) → sipp callee(s), one
 * bounded batch of calls per case, every call must complete as the scenario
 * files in test/interop/sipp describe:
 *
 *   - basic call INVITE/100/180/200/ACK/BYE/200 with Record-Route;
 *   - CANCEL of a ringing call (200 for the CANCEL, 487 for the INVITE);
 *   - callee answers 486;
 *   - silent callee → 408 from the proxy's timer → failure route → second callee;
 *   - a "lost" 200 OK retransmitted by the callee reaches the caller;
 *   - a retransmitted INVITE is absorbed (the callee sees one INVITE);
 *   - failure-route semantics (test/interop/scripts/failure-retry.js): which
 *     changes of the request let t_relay() in a failure route start a new
 *     branch (serial retries 503 → 486 → 200 to the same UAS), $T_reply_code
 *     and t_check_status there, t_on_failure re-armed, a header added there,
 *     and a 603 with and without t_set_disable_6xx.
 *
 * Each case starts its own server on free ports and stops every process it
 * started by PID. Against ksr every case runs twice: in one process, and
 * with `--workers 2` (the script in two worker processes behind the front,
 * each call on worker hash(Call-ID) mod 2; sipp's Call-IDs spread the calls
 * over both), where each call's CANCEL, ACKs, BYE, retransmissions and
 * responses must still reach its transactions. KSR_INTEROP_PROXY=kamailio runs the same cases against
 * Kamailio 5.6 + app_jsdt with the same script (a check of the scenarios
 * themselves against the reference implementation).
 *
 * Needs the sipp binary (Debian package sip-tester); without it the suite
 * fails on purpose, as sipp-options.test.ts does.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kamailioVersion, startKamailio } from "../../bench/lib/kamailio.mjs";
import {
  ensureBuilt,
  findFreePort,
  runSipp,
  sippMessageCounters,
  startKsr,
  type KsrProcess,
  type SippProcess,
  type SippRun,
} from "../../bench/lib/sipp.mjs";
import {
  FAILURE_RETRY_SCRIPT_TEMPLATE,
  RELAY_SCRIPT_TEMPLATE,
  SIPP_SCENARIOS,
  calleeRunAfterCaller,
  describeSipp,
  expectAllCallsSucceeded,
  requireSipp,
  scriptWithSettings,
  startCallee,
} from "./harness.js";

const PROXY = process.env.KSR_INTEROP_PROXY ?? "ksr";
if (PROXY !== "ksr" && PROXY !== "kamailio") throw new Error(`KSR_INTEROP_PROXY must be ksr or kamailio, not ${PROXY}`);

const CALLS = 10;
const RATE_PER_SECOND = 10;
/** The proxy's fr_timer in the generated script: how long the silent callee is waited for. */
const FR_TIMER_MS = 1500;
const FR_INV_TIMER_MS = 10_000;
/** The silent callee stays in its call longer than the proxy waits for it. */
const SILENCE_MS = FR_TIMER_MS + 1500;
/** Bound on every sipp callee: the whole batch plus the longest call plus slack. */
const CALLEE_TIMEOUT_S = Math.ceil(CALLS / RATE_PER_SECOND) + Math.ceil(SILENCE_MS / 1000) + 20;

interface RelaySettings {
  readonly uasPort: number;
  readonly failoverPort: number;
}

/** Writes a case's routing script into dir: the file to run. */
type ScriptRenderer = (dir: string, settings: RelaySettings) => string;

/** The relay script with this case's callee ports and timers, written into dir. */
function renderRelayScript(dir: string, settings: RelaySettings): string {
  const text = scriptWithSettings(RELAY_SCRIPT_TEMPLATE, {
    UAS_URI: JSON.stringify(`sip:127.0.0.1:${settings.uasPort}`),
    FAILOVER_URI: JSON.stringify(`sip:127.0.0.1:${settings.failoverPort}`),
    FR_INV_TIMER_MS: String(FR_INV_TIMER_MS),
    FR_TIMER_MS: String(FR_TIMER_MS),
  });
  const file = path.join(dir, "stateful-relay.js");
  fs.writeFileSync(file, text);
  return file;
}

/** `ksr run --workers` counts each case runs with (Kamailio: its own 1 worker). */
const WORKER_COUNTS = PROXY === "ksr" ? [1, 2] : [1];

async function startProxy(script: string, port: number, workers: number): Promise<KsrProcess> {
  // One worker: with several, Kamailio may forward a 180 after its 200,
  // which these strict scenarios would count as a failure.
  if (PROXY === "kamailio") return startKamailio({ script, port, children: 1 });
  // The relay forwards an OPTIONS probe instead of answering it: wait for
  // the sockets instead.
  const extraArgs = workers > 1 ? ["--workers", String(workers)] : [];
  return startKsr({ script, port, readiness: "sockets", logLevel: "warn", extraArgs });
}

interface CalleeSpec {
  readonly label: string;
  readonly scenario: string;
  readonly extraArgs?: string[];
}

interface CaseSpec {
  readonly callees: readonly CalleeSpec[];
  readonly caller: { readonly scenario: string; readonly extraArgs?: string[] };
  /** The routing script; the relay script by default. */
  readonly script?: ScriptRenderer;
}

interface CaseRun {
  readonly caller: SippRun;
  readonly callees: Record<string, SippRun>;
  readonly diagnostics: string;
  readonly proxyOutput: string;
}

/** ksr runs with --log-level warn: an error-level line means something went wrong inside the server. */
function expectNoServerErrors(run: CaseRun, expected?: RegExp): void {
  if (PROXY !== "ksr") return;
  const errors = run.proxyOutput.split("\n").filter((line) => /^\S+ (ERR|CRIT) /.test(line) && !(expected?.test(line) ?? false));
  expect(errors, run.diagnostics).toEqual([]);
}

/**
 * One case: a proxy running the relay script towards this case's callees,
 * the callees, then CALLS calls from the caller at RATE_PER_SECOND. The
 * callees are started before the calls and each expects exactly CALLS calls.
 */
async function runCase(spec: CaseSpec, workers: number): Promise<CaseRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-stateful-interop-"));
  const [proxyPort, uasPort, failoverPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
  const calleePorts = [uasPort, failoverPort];
  const script = (spec.script ?? renderRelayScript)(dir, { uasPort, failoverPort });
  const proxy = await startProxy(script, proxyPort, workers);
  const callees: { spec: CalleeSpec; sipp: SippProcess }[] = [];
  try {
    for (const [i, callee] of spec.callees.entries()) {
      const sipp = await startCallee(`sipp ${callee.label}`, {
        scenarioFile: path.isAbsolute(callee.scenario) ? callee.scenario : path.join(SIPP_SCENARIOS, callee.scenario),
        localPort: calleePorts[i]!,
        calls: CALLS,
        timeoutS: CALLEE_TIMEOUT_S,
        extraArgs: callee.extraArgs ?? [],
      });
      callees.push({ spec: callee, sipp });
    }
    const caller = await runSipp({
      scenarioFile: path.isAbsolute(spec.caller.scenario) ? spec.caller.scenario : path.join(SIPP_SCENARIOS, spec.caller.scenario),
      targetPort: proxyPort,
      calls: CALLS,
      rate: RATE_PER_SECOND,
      extraArgs: spec.caller.extraArgs ?? [],
    });
    const calleeRuns: Record<string, SippRun> = {};
    for (const { spec: callee, sipp } of callees) calleeRuns[callee.label] = await calleeRunAfterCaller(sipp);
    const proxyExit = await proxy.stop();
    const diagnostics = [
      describeSipp("caller", caller),
      ...Object.entries(calleeRuns).map(([label, run]) => describeSipp(label, run)),
      `${PROXY} exit ${JSON.stringify(proxyExit)}, output (tail):\n${proxy.output().slice(-3000)}`,
    ].join("\n");
    return { caller, callees: calleeRuns, diagnostics, proxyOutput: proxy.output() };
  } finally {
    // Already stopped on the normal path; this covers an exception above
    // without hiding it.
    for (const { sipp } of callees) await sipp.stop().catch(() => undefined);
    await proxy.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe.each(WORKER_COUNTS)(`stateful proxy (${PROXY}, workers %i) between sipp caller and callees over UDP`, (workers) => {
  beforeAll(() => {
    requireSipp();
    if (PROXY === "kamailio" && kamailioVersion() === null) throw new Error("KSR_INTEROP_PROXY=kamailio but kamailio is not installed");
    if (PROXY === "ksr") ensureBuilt();
  });

  it("relays a basic call INVITE/100/180/200/ACK/BYE/200, record-routed", async () => {
    const run = await runCase({
      callees: [{ label: "callee", scenario: "uas-answer.xml" }],
      caller: { scenario: "uac-call.xml" },
    }, workers);
    const { caller, callees, diagnostics } = run;
    expectNoServerErrors(run);
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
    // The ACK and the BYE reached the callee through the route set: one each per call.
    expect(sippMessageCounters(callees.callee!, "ACK").Recv, diagnostics).toBe(CALLS);
    expect(sippMessageCounters(callees.callee!, "BYE").Recv, diagnostics).toBe(CALLS);
  });

  it("cancels a ringing call: 200 for the CANCEL, 487 for the INVITE, ACK hop by hop", async () => {
    const run = await runCase({
      callees: [{ label: "callee", scenario: "uas-ring-cancel.xml" }],
      caller: { scenario: "uac-cancel.xml" },
    }, workers);
    const { caller, callees, diagnostics } = run;
    expectNoServerErrors(run);
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
    expect(sippMessageCounters(caller, "487").Recv, diagnostics).toBe(CALLS);
    // The proxy acknowledged the callee's 487 itself (RFC 3261 §17.1.1.3).
    expect(sippMessageCounters(callees.callee!, "ACK").Recv, diagnostics).toBe(CALLS);
  });

  it("relays a 486 from the callee and absorbs the caller's ACK for it", async () => {
    const run = await runCase({
      callees: [{ label: "callee", scenario: "uas-busy.xml" }],
      caller: { scenario: "uac-rejected.xml" },
    }, workers);
    const { caller, callees, diagnostics } = run;
    expectNoServerErrors(run);
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
    expect(sippMessageCounters(caller, "486").Recv, diagnostics).toBe(CALLS);
    expect(sippMessageCounters(callees.callee!, "ACK").Recv, diagnostics).toBe(CALLS);
  });

  it("fails over to a second callee from the failure route when the first stays silent (408)", async () => {
    const run = await runCase({
      callees: [
        { label: "silent callee", scenario: "uas-silent.xml", extraArgs: ["-d", String(SILENCE_MS)] },
        { label: "failover callee", scenario: "uas-answer.xml" },
      ],
      caller: { scenario: "uac-call.xml" },
    }, workers);
    const { caller, callees, diagnostics } = run;
    expectNoServerErrors(run);
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("silent callee", callees["silent callee"]!, CALLS, diagnostics);
    expectAllCallsSucceeded("failover callee", callees["failover callee"]!, CALLS, diagnostics);
    const silentInvite = sippMessageCounters(callees["silent callee"]!, "INVITE");
    expect(silentInvite.Recv, diagnostics).toBe(CALLS);
    // RFC 3261 §17.1.1.2 Timer A: over UDP the unanswered INVITE was sent
    // again at least once (after T1 = 500 ms) before the 1.5 s timer fired.
    expect(silentInvite.Retrans, diagnostics).toBeGreaterThanOrEqual(CALLS);
    // The caller's call was answered only after the proxy's timer fired
    // (less a timer tick: Kamailio's own run shows 1472 ms for 1500).
    expect(caller.rtMs.p50, diagnostics).toBeGreaterThanOrEqual(FR_TIMER_MS - 250);
  });

  it("relays the callee's retransmitted 200 OK to a caller that lost the first one", async () => {
    const run = await runCase({
      callees: [{ label: "callee", scenario: "uas-answer.xml" }],
      caller: { scenario: "uac-lost-200.xml", extraArgs: ["-nr"] },
    }, workers);
    const { caller, callees, diagnostics } = run;
    expectNoServerErrors(run);
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
    expect(sippMessageCounters(caller, "200", 0).Recv, diagnostics).toBe(CALLS);
    expect(sippMessageCounters(caller, "200", 1).Recv, diagnostics).toBe(CALLS);
    // The second 200 is the callee's own retransmission (uas-answer.xml's
    // first 200 step is the answer to the INVITE).
    expect(sippMessageCounters(callees.callee!, "200", 0).Retrans, diagnostics).toBeGreaterThanOrEqual(CALLS);
  });

  it("absorbs a retransmitted INVITE: the callee sees one INVITE per call", async () => {
    const run = await runCase({
      callees: [{ label: "callee", scenario: "uas-single-invite.xml", extraArgs: ["-nr"] }],
      caller: { scenario: "uac-retransmitted-invite.xml", extraArgs: ["-nr"] },
    }, workers);
    const { caller, callees, diagnostics } = run;
    expectNoServerErrors(run);
    expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
    expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
    const invite = sippMessageCounters(callees.callee!, "INVITE");
    expect(invite.Recv, diagnostics).toBe(CALLS);
    expect(callees.callee!.unexpected, diagnostics).toBe(0);
    // RFC 3261 §17.2.1: the proxy answered the retransmission with its last
    // provisional response (the second 100 step of the caller).
    expect(sippMessageCounters(caller, "100", 1).Recv, diagnostics).toBe(CALLS);
  });
});

/** How the failure route of failure-retry.js changes the request before its t_relay(). */
type Retarget = "none" | "seturi-same" | "pv-ru-same" | "sethost" | "pv-du" | "setdsturi" | "append-branch" | "append-branch-uri";

function failureRetryScript(retarget: Retarget, disable6xx = false): ScriptRenderer {
  return (dir, settings) => {
    const text = scriptWithSettings(FAILURE_RETRY_SCRIPT_TEMPLATE, {
      UAS_URI: JSON.stringify(`sip:127.0.0.1:${settings.uasPort}`),
      RETARGET: JSON.stringify(retarget),
      DISABLE_6XX: disable6xx ? "1" : "0",
    });
    const file = path.join(dir, "failure-retry.js");
    fs.writeFileSync(file, text);
    return file;
  };
}

/**
 * A copy of one of SIPP_SCENARIOS (in a directory removed after the suite)
 * with its final status replaced: the 486 of uas-busy.xml / uac-rejected.xml
 * becomes another rejection.
 */
function withRejection(file: string, status: number, reason: string, dir: string): string {
  const text = fs.readFileSync(path.join(SIPP_SCENARIOS, file), "utf8");
  const rewritten = text.replace("SIP/2.0 486 Busy Here", `SIP/2.0 ${status} ${reason}`).replace('response="486"', `response="${status}"`);
  if (rewritten === text) throw new Error(`${file} has no 486 to replace`);
  const copy = path.join(dir, `${status}-${file}`);
  fs.writeFileSync(copy, rewritten);
  return copy;
}

describe(`failure route (${PROXY}): which request changes make t_relay() start a new branch`, () => {
  let scenarioDir: string;
  beforeAll(() => {
    requireSipp();
    if (PROXY === "kamailio" && kamailioVersion() === null) throw new Error("KSR_INTEROP_PROXY=kamailio but kamailio is not installed");
    if (PROXY === "ksr") ensureBuilt();
    scenarioDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-failure-route-scenarios-"));
  });
  afterAll(() => {
    if (scenarioDir) fs.rmSync(scenarioDir, { recursive: true, force: true });
  });

  // Kamailio marks the R-URI "new" (usable for a branch again) on every
  // R-URI assignment, the same value included, and on a $du assignment
  // through the PV; a failure route starts with it consumed.
  const retrying: Retarget[] = ["seturi-same", "pv-ru-same", "sethost", "pv-du", "append-branch", "append-branch-uri"];
  for (const retarget of retrying) {
    it(`retries 503 → 486 → 200 on the same UAS after ${retarget}: $T_reply_code, t_check_status, t_on_failure re-armed`, async () => {
      const run = await runCase({
        script: failureRetryScript(retarget),
        callees: [{ label: "callee", scenario: "uas-serial.xml" }],
        caller: { scenario: "uac-call.xml" },
      }, 1);
      const { caller, callees, diagnostics } = run;
      expectNoServerErrors(run);
      expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
      // Each retry carried the X-Retry-After of its failure route (checked by the scenario).
      expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
      expect(sippMessageCounters(callees.callee!, "INVITE", 0).Recv, diagnostics).toBe(CALLS);
      expect(sippMessageCounters(callees.callee!, "INVITE", 1).Recv, diagnostics).toBe(CALLS);
      expect(sippMessageCounters(callees.callee!, "INVITE", 2).Recv, diagnostics).toBe(CALLS);
    });
  }

  // KSR.setdsturi() does not mark the R-URI new in Kamailio 5.6 (the core
  // KEMI function sets $du only; the PV and the native setdsturi() do).
  for (const retarget of ["none", "setdsturi"] as const) {
    it(`relays nothing new after ${retarget}: the caller gets the 503, as a 500 (RFC 3261 §16.7 step 6)`, async () => {
      const run = await runCase({
        script: failureRetryScript(retarget),
        callees: [{ label: "callee", scenario: withRejection("uas-busy.xml", 503, "Service Unavailable", scenarioDir) }],
        caller: { scenario: withRejection("uac-rejected.xml", 500, "Server Internal Error", scenarioDir) },
      }, 1);
      const { caller, callees, diagnostics } = run;
      // Kamailio logs the same at error level (tm t_fwd.c).
      expectNoServerErrors(run, /no branches for forwarding/);
      expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
      expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
      expect(sippMessageCounters(callees.callee!, "INVITE").Recv, diagnostics).toBe(CALLS);
      if (PROXY === "ksr") expect(run.proxyOutput, diagnostics).toContain("no branches for forwarding");
    });
  }

  for (const disable6xx of [false, true]) {
    it(`retries after a 603 from the failure route ${disable6xx ? "with" : "without"} t_set_disable_6xx`, async () => {
      const run = await runCase({
        script: failureRetryScript("seturi-same", disable6xx),
        callees: [{ label: "callee", scenario: "uas-decline-then-answer.xml" }],
        caller: { scenario: "uac-call.xml" },
      }, 1);
      const { caller, callees, diagnostics } = run;
      expectNoServerErrors(run);
      expectAllCallsSucceeded("caller", caller, CALLS, diagnostics);
      expectAllCallsSucceeded("callee", callees.callee!, CALLS, diagnostics);
    });
  }
});
