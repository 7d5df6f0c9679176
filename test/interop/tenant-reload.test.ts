/**
 * Hot reload under load (issue 5, "zero failed calls under sipp load during
 * ten reloads"): `ksr run --tenants` with one tenant running a stateful
 * relay (test/interop/scripts/stateful-relay.js, which tags the INVITEs it
 * relays with its version) between a sipp caller and a sipp callee. While the caller's calls run, the tenant's script file is
 * rewritten between two versions and the server gets SIGHUP ten times.
 *
 * Every call must complete (sipp exit 0 on both sides), the server must log
 * ten successful reloads and no error, and the callee's message trace must
 * show the INVITEs switching script version once per reload: new requests
 * run the new script, while the ACK/BYE of calls set up before a reload are
 * still relayed (the calls would fail otherwise).
 *
 * Needs the sipp binary (Debian package sip-tester); without it the suite
 * fails on purpose, as the other interop suites do.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
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
  RELAY_SCRIPT_TEMPLATE,
  SIPP_SCENARIOS,
  calleeRunAfterCaller,
  describeSipp,
  expectAllCallsSucceeded,
  requireSipp,
  scriptWithSettings,
  startCallee,
} from "./harness.js";
const TENANT_ID = "relay";

const CALLS = 300;
const RATE_PER_SECOND = 30;
const RELOADS = 10;
const RELOAD_INTERVAL_MS = 800;
/** Calls run before the first reload, so that version 1 routes some of them. */
const FIRST_RELOAD_AFTER_MS = 1000;
/** Bound on the callee: the whole batch plus slack for the last BYEs. */
const CALLEE_TIMEOUT_S = Math.ceil(CALLS / RATE_PER_SECOND) + 30;

/**
 * The relay script with the callee's port and a script version (1 or 2).
 * The callee always answers, so the failover of the template is never used;
 * its timers are set to 0, tm's defaults.
 */
function renderRelayScript(uasPort: number, version: number): string {
  return scriptWithSettings(RELAY_SCRIPT_TEMPLATE, {
    UAS_URI: JSON.stringify(`sip:127.0.0.1:${uasPort}`),
    FR_INV_TIMER_MS: "0",
    FR_TIMER_MS: "0",
    SCRIPT_VERSION: String(version),
  });
}

function writeTenantsFile(dir: string, scriptFile: string): string {
  const file = path.join(dir, "tenants.yaml");
  fs.writeFileSync(
    file,
    [
      "unmatched: 404",
      "tenants:",
      `  - id: ${TENANT_ID}`,
      `    script: ${path.basename(scriptFile)}`,
      // The sipp callees listen on loopback, which a tenant may not send to by default.
      "    egress: { allow: [127.0.0.0/8] }",
      "    match:",
      // sipp's Request-URI names the proxy by address.
      '      domains: ["127.0.0.1"]',
      "",
    ].join("\n"),
  );
  return file;
}

/**
 * The X-Script-Version of every INVITE the callee received, in arrival
 * order, from sipp's -trace_msg log (messages are separated by dashed
 * lines; "none" for an INVITE without the header).
 */
function inviteVersionsReceived(messageLog: string): string[] {
  return fs
    .readFileSync(messageLog, "latin1")
    .split(/^-{10,}.*$/m)
    .filter((entry) => /message received \[\d+\] bytes :\s*INVITE /.test(entry))
    .map((entry) => /^X-Script-Version: *(\S+)/m.exec(entry)?.[1] ?? "none");
}

function countVersionSwitches(versions: readonly string[]): number {
  let switches = 0;
  for (let i = 1; i < versions.length; i++) if (versions[i] !== versions[i - 1]) switches++;
  return switches;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function countMatches(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

const RELOADED_LINE = /^\S+ NOTICE \[ksr\] SIGHUP: 1 tenant\(s\) reloaded$/gm;

interface ReloadRun {
  readonly caller: SippRun;
  readonly callee: SippRun;
  readonly inviteVersions: string[];
  readonly reloadsSent: number;
  readonly proxyOutput: string;
  readonly diagnostics: string;
}

async function runCallsWithReloads(): Promise<ReloadRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-tenant-reload-"));
  const [proxyPort, uasPort] = [await findFreePort(), await findFreePort()];
  const scriptFile = path.join(dir, "relay.js");
  fs.writeFileSync(scriptFile, renderRelayScript(uasPort, 1));
  const tenantsFile = writeTenantsFile(dir, scriptFile);
  const calleeMessageLog = path.join(dir, "callee-messages.log");
  let proxy: KsrProcess | null = null;
  let callee: SippProcess | null = null;
  try {
    // startKsr puts its `script` argument right after `run`; `--tenants=file`
    // is the same option in commander's one-argument form. notice level:
    // the SIGHUP outcome lines are notices.
    proxy = await startKsr({ script: `--tenants=${tenantsFile}`, port: proxyPort, readiness: "sockets", logLevel: "notice" });
    callee = await startCallee("sipp callee", {
      scenarioFile: path.join(SIPP_SCENARIOS, "uas-answer.xml"),
      localPort: uasPort,
      calls: CALLS,
      timeoutS: CALLEE_TIMEOUT_S,
      extraArgs: ["-trace_msg", "-message_file", calleeMessageLog],
    });

    const callerRun = runSipp({
      scenarioFile: path.join(SIPP_SCENARIOS, "uac-call.xml"),
      targetPort: proxyPort,
      calls: CALLS,
      rate: RATE_PER_SECOND,
    });
    // Reloads while the calls run: version 2, 1, 2, ... The file is written
    // completely before the signal, so each reload reads one whole version.
    let reloadsSent = 0;
    await sleep(FIRST_RELOAD_AFTER_MS);
    for (let reload = 1; reload <= RELOADS; reload++) {
      fs.writeFileSync(scriptFile, renderRelayScript(uasPort, reload % 2 === 1 ? 2 : 1));
      process.kill(proxy.pid!, "SIGHUP");
      reloadsSent++;
      await sleep(RELOAD_INTERVAL_MS);
    }
    const caller = await callerRun;
    const calleeRun = await calleeRunAfterCaller(callee);
    // The last reload is logged once its isolate is up: bounded wait for it.
    for (let wait = 0; wait < 50 && countMatches(proxy.output(), RELOADED_LINE) < reloadsSent; wait++) await sleep(100);
    const proxyExit = await proxy.stop();
    const inviteVersions = fs.existsSync(calleeMessageLog) ? inviteVersionsReceived(calleeMessageLog) : [];
    const diagnostics = [
      describeSipp("caller", caller),
      describeSipp("callee", calleeRun),
      `INVITE script versions seen by the callee: ${inviteVersions.length} INVITEs, ${countVersionSwitches(inviteVersions)} switches`,
      `ksr exit ${JSON.stringify(proxyExit)}, output (tail):\n${proxy.output().slice(-3000)}`,
    ].join("\n");
    return { caller, callee: calleeRun, inviteVersions, reloadsSent, proxyOutput: proxy.output(), diagnostics };
  } finally {
    // Already stopped on the normal path; this covers an exception above
    // without hiding it.
    await callee?.stop().catch(() => undefined);
    await proxy?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("tenant hot reload under sipp load (ksr run --tenants, SIGHUP)", () => {
  beforeAll(() => {
    requireSipp();
    ensureBuilt();
  });

  it(`completes all ${CALLS} calls while the tenant's script is reloaded ${RELOADS} times`, async () => {
    const run = await runCallsWithReloads();
    const { caller, callee, inviteVersions, diagnostics } = run;

    // Zero failed calls, by sipp's own accounting on both sides (exit 0
    // only when every call succeeded).
    for (const [label, side] of [
      ["caller", caller],
      ["callee", callee],
    ] as const) {
      expectAllCallsSucceeded(label, side, CALLS, diagnostics);
    }
    // Calls set up before a reload still had their ACK and BYE relayed.
    expect(sippMessageCounters(callee, "ACK").Recv, diagnostics).toBe(CALLS);
    expect(sippMessageCounters(callee, "BYE").Recv, diagnostics).toBe(CALLS);

    // Every SIGHUP reloaded the tenant, and nothing went wrong in the server.
    expect(run.reloadsSent).toBe(RELOADS);
    expect(countMatches(run.proxyOutput, RELOADED_LINE), diagnostics).toBe(RELOADS);
    expect(run.proxyOutput, diagnostics).not.toMatch(/^\S+ (ERR|CRIT) /m);

    // Requests arriving after a reload ran the new script: the callee's
    // INVITEs start with version 1 and switch version once per reload
    // (calls arrive every ~33 ms, reloads every 800 ms).
    expect(inviteVersions.length, diagnostics).toBe(CALLS);
    expect(inviteVersions[0], diagnostics).toBe("1");
    expect(new Set(inviteVersions), diagnostics).toEqual(new Set(["1", "2"]));
    expect(countVersionSwitches(inviteVersions), diagnostics).toBe(RELOADS);
  });
});
