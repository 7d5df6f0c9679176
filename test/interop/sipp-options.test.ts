/**
 * Interop with sipp: `ksr run` as its own process, a bounded OPTIONS load
 * from sipp over UDP and over TCP, every call must end with a 200.
 *
 * Needs the sipp binary (Debian package sip-tester). Without it the suite
 * fails on purpose: .ci/run installs it, and a skipped interop suite would
 * read as a pass.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  REPO_ROOT,
  ensureBuilt,
  findFreePort,
  isAlive,
  runSipp,
  startKsr,
  type KsrProcess,
  type SippResult,
} from "../../bench/lib/sipp.mjs";
import { SIPP_SCENARIOS, expectAllCallsSucceeded, requireSipp } from "./harness.js";

const OPTIONS_SCENARIO = path.join(SIPP_SCENARIOS, "options.xml");
/** The load benchmark's minimal script: 200 OK to every request but ACK. */
const OPTIONS_200_SCRIPT = path.join(REPO_ROOT, "bench", "scripts", "options-200.js");

const CALLS = 500;
const RATE_PER_SECOND = 200;

function describeRun(result: SippResult, server: KsrProcess): string {
  return [
    `sipp exit ${result.exitCode} (signal ${result.signal}), ${result.successful}/${result.calls} successful, ` +
      `${result.failed} failed, ${result.retransmissions} retransmissions, ${result.timeouts} timeouts`,
    result.keptWorkDir ? `sipp files kept in ${result.keptWorkDir}` : "",
    result.errors ? `sipp errors:\n${result.errors}` : "",
    `sipp output (tail):\n${result.output.slice(-1500)}`,
    `server output (tail):\n${server.output().slice(-1500)}`,
  ]
    .filter(Boolean)
    .join("\n");
}

describe("sipp OPTIONS load against `ksr run`", () => {
  let server: KsrProcess | undefined;

  beforeAll(async () => {
    requireSipp();
    ensureBuilt();
    server = await startKsr({ script: OPTIONS_200_SCRIPT, port: await findFreePort() });
  });

  afterAll(async () => {
    await server?.stop();
  });

  for (const transport of ["udp", "tcp"] as const) {
    it(`answers ${CALLS} OPTIONS at ${RATE_PER_SECOND}/s over ${transport.toUpperCase()} with 200`, async () => {
      const running = server!;
      const result = await runSipp({
        scenarioFile: OPTIONS_SCENARIO,
        targetPort: running.port,
        transport,
        calls: CALLS,
        rate: RATE_PER_SECOND,
      });
      const diagnostics = describeRun(result, running);
      expectAllCallsSucceeded(`OPTIONS over ${transport}`, result, CALLS, diagnostics);
      expect(isAlive(running.pid), diagnostics).toBe(true);
      // The load must not have produced error-level log lines (the server runs with --log-level warn).
      expect(running.output(), diagnostics).not.toMatch(/^\S+ (ERR|CRIT) /m);
    });
  }

  it("stops with exit code 0 on SIGTERM after the load", async () => {
    const running = server!;
    const exit = await running.stop();
    server = undefined;
    expect(exit, running.output()).toEqual({ code: 0, signal: null });
  });
});
