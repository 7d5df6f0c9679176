/**
 * KSR.dispatcher end to end over loopback: a sipp caller → the server
 * running test/interop/scripts/dispatcher-failover.js (round robin over set
 * 1, failover from the failure route with ds_mark_dst + ds_next_dst) → two
 * sipp callees A and B listed in set 1, in three batches on one server:
 *
 *   1. A and B up: the calls alternate, each callee answers half of them;
 *   2. B gone (its sipp ended): every call B is picked for times out
 *      (fr_timer), fails over to A, and B is marked inactive (the
 *      dispatcher event_callback runs once with dispatcher:dst-down) — A
 *      answers all calls, the caller sees all succeed;
 *   3. B back: it stays inactive (no probing here), so A still answers
 *      every call and B receives no INVITE.
 *
 * The same cases run against Kamailio 5.6 + app_jsdt + dispatcher on the
 * same list and script, as the reference: the server kind is chosen by
 * describe.each, both by default (KSR_INTEROP_PROXY=ksr or kamailio runs one).
 * Needs sipp (Debian sip-tester) and, for the reference, kamailio.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kamailioVersion, startKamailio } from "../../bench/lib/kamailio.mjs";
import { REPO_ROOT, ensureBuilt, findFreePort, runSipp, sippMessageCounters, startKsr, type KsrProcess } from "../../bench/lib/sipp.mjs";
import { SIPP_SCENARIOS, calleeRunAfterCaller, describeSipp, expectAllCallsSucceeded, requireSipp, scriptWithSettings, startCallee } from "./harness.js";

const SCRIPT_TEMPLATE = path.join(REPO_ROOT, "test", "interop", "scripts", "dispatcher-failover.js");
const KAMAILIO_CFG = path.join(REPO_ROOT, "test", "interop", "cfg", "kamailio-dispatcher.cfg");
/** How long the server waits for a silent destination before failing over. */
const FR_TIMER_MS = 1000;
const RATE_PER_SECOND = 10;
const CALLEE_TIMEOUT_S = 40;

const only = process.env.KSR_INTEROP_PROXY;
const SERVERS = (only === undefined ? ["ksr", "kamailio"] : [only]) as ("ksr" | "kamailio")[];

describe.each(SERVERS)("dispatcher round robin and failover (%s) between sipp caller and two callees", (server) => {
  let dir: string;
  let proxy: KsrProcess | undefined;
  let proxyPort: number;
  let portA: number;
  let portB: number;

  beforeAll(async () => {
    requireSipp();
    if (server === "kamailio" && kamailioVersion() === null) throw new Error("kamailio is not installed: the reference run cannot start");
    if (server === "ksr") ensureBuilt();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-dispatcher-interop-"));
    [proxyPort, portA, portB] = [await findFreePort(), await findFreePort(), await findFreePort()];
    const list = path.join(dir, "dispatcher.list");
    fs.writeFileSync(list, `# set 1: callees A and B\n1 sip:127.0.0.1:${portA}\n1 sip:127.0.0.1:${portB}\n`);
    const script = path.join(dir, "dispatcher-failover.js");
    fs.writeFileSync(script, scriptWithSettings(SCRIPT_TEMPLATE, { FR_TIMER_MS: String(FR_TIMER_MS) }));
    proxy =
      server === "kamailio"
        ? await startKamailio({ script, port: proxyPort, children: 1, cfgTemplate: KAMAILIO_CFG, defines: [`DS_LIST="${list}"`] })
        : await startKsr({
            script,
            port: proxyPort,
            readiness: "sockets",
            logLevel: "info",
            extraArgs: ["--dispatcher-list", list, "--dispatcher-param", "flags=2", "--dispatcher-param", "event_callback=ksr_dispatcher_event"],
          });
  });

  afterAll(async () => {
    await proxy?.stop();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function batch(calls: number, callees: { label: string; port: number; calls: number | undefined }[]) {
    const started = [];
    try {
      for (const c of callees) {
        started.push({
          label: c.label,
          sipp: await startCallee(`sipp ${c.label}`, {
            scenarioFile: path.join(SIPP_SCENARIOS, "uas-answer.xml"),
            localPort: c.port,
            ...(c.calls !== undefined ? { calls: c.calls } : {}),
            timeoutS: CALLEE_TIMEOUT_S,
          }),
        });
      }
      const caller = await runSipp({ scenarioFile: path.join(SIPP_SCENARIOS, "uac-call.xml"), targetPort: proxyPort, calls, rate: RATE_PER_SECOND });
      const runs: Record<string, Awaited<ReturnType<typeof calleeRunAfterCaller>>> = {};
      for (const { label, sipp } of started) runs[label] = await calleeRunAfterCaller(sipp, 3_000);
      const diagnostics = [describeSipp("caller", caller), ...Object.entries(runs).map(([l, r]) => describeSipp(l, r)), `${server} output (tail):\n${proxy!.output().slice(-3000)}`].join("\n");
      return { caller, runs, diagnostics };
    } finally {
      for (const { sipp } of started) await sipp.stop().catch(() => undefined);
    }
  }

  it("1. alternates the calls between A and B", async () => {
    const { caller, runs, diagnostics } = await batch(10, [
      { label: "A", port: portA, calls: 5 },
      { label: "B", port: portB, calls: 5 },
    ]);
    expectAllCallsSucceeded("caller", caller, 10, diagnostics);
    expectAllCallsSucceeded("A", runs.A!, 5, diagnostics);
    expectAllCallsSucceeded("B", runs.B!, 5, diagnostics);
  });

  it("2. with B gone, fails over to A from the failure route: every call succeeds", async () => {
    const { caller, runs, diagnostics } = await batch(10, [{ label: "A", port: portA, calls: 10 }]);
    expectAllCallsSucceeded("caller", caller, 10, diagnostics);
    expectAllCallsSucceeded("A", runs.A!, 10, diagnostics);
    // The failure route ran for B's timeout (the script logs it) before failing over.
    expect(proxy!.output(), diagnostics).toContain(`destination sip:127.0.0.1:${portB} failed with 408`);
    // ds_mark_dst took it down once: the event_callback ran with dispatcher:dst-down, once.
    expect(proxy!.output().split("dispatcher event dispatcher:dst-down").length - 1, diagnostics).toBe(1);
  });

  it("3. B marked down by ds_mark_dst stays out of the rotation when it is back", async () => {
    const { caller, runs, diagnostics } = await batch(4, [
      { label: "A", port: portA, calls: 4 },
      { label: "B", port: portB, calls: undefined },
    ]);
    expectAllCallsSucceeded("caller", caller, 4, diagnostics);
    expectAllCallsSucceeded("A", runs.A!, 4, diagnostics);
    expect(sippMessageCounters(runs.B!, "INVITE").Recv, diagnostics).toBe(0);
  });
});
