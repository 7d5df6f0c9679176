/**
 * What the interop suites share on top of bench/lib/sipp.mjs (which starts
 * the processes): the sipp precondition, sipp callees that are listening
 * and the end of their batch, the relay script with the settings of a run,
 * and how a sipp run is judged and described when it fails.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { isListening, sippVersion, startSipp, type SippProcess, type SippRun } from "../../bench/lib/sipp.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** test/interop/sipp: the sipp scenarios of the OPTIONS and stateful proxy suites. */
export const SIPP_SCENARIOS = path.join(HERE, "sipp");

/**
 * The transaction-stateful relay the proxy suites run, as a template for
 * scriptWithSettings (its `var` lines: UAS_URI, FAILOVER_URI,
 * FR_INV_TIMER_MS, FR_TIMER_MS, SCRIPT_VERSION).
 */
export const RELAY_SCRIPT_TEMPLATE = path.join(HERE, "scripts", "stateful-relay.js");

/** Serial retries from the failure route, as a template (`var` lines: UAS_URI, RETARGET, DISABLE_6XX). */
export const FAILURE_RETRY_SCRIPT_TEMPLATE = path.join(HERE, "scripts", "failure-retry.js");

/**
 * Throws when sipp is missing: the suites fail on purpose then, since a
 * skipped interop suite would read as a pass (.ci/run installs sipp).
 */
export function requireSipp(): void {
  if (sippVersion() === null) {
    throw new Error(
      "sipp is not installed, the interop suite cannot run. Install it (Debian/Ubuntu: apt-get install -y sip-tester); .ci/run does.",
    );
  }
}

/** Waits (at most 5 s) until something listens on udp:127.0.0.1:port, e.g. a sipp callee just started. */
async function waitForUdpListener(port: number, what: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (isListening("udp", port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} did not open udp:127.0.0.1:${port} within 5 s`);
}

/**
 * A sipp callee (UAS) on udp:127.0.0.1:options.localPort, resolved once it
 * listens there; `what` names it in the error when it does not (it is then
 * stopped).
 */
export async function startCallee(
  what: string,
  options: Parameters<typeof startSipp>[0] & { readonly localPort: number },
): Promise<SippProcess> {
  const callee = await startSipp(options);
  try {
    await waitForUdpListener(options.localPort, what);
  } catch (e) {
    await callee.stop().catch(() => undefined);
    throw e;
  }
  return callee;
}

/**
 * The run of a sipp callee, which ends by itself after its -m calls. One
 * still running `graceMs` after the caller is done is stopped, and its run
 * then shows what it lacked.
 */
export async function calleeRunAfterCaller(callee: SippProcess, graceMs = 5_000): Promise<SippRun> {
  const settled = await Promise.race([callee.finished, new Promise<null>((resolve) => setTimeout(() => resolve(null), graceMs))]);
  return settled ?? (await callee.stop());
}

/**
 * A routing script's text with settings of this run: scripts have no
 * environment, so each `var NAME = ...;` line of the template named in
 * `values` is rewritten (a template without that line is an error).
 */
export function scriptWithSettings(templateFile: string, values: Readonly<Record<string, string>>): string {
  let text = fs.readFileSync(templateFile, "utf8");
  for (const [name, value] of Object.entries(values)) {
    const line = new RegExp(`^var ${name} = .*;$`, "m");
    if (!line.test(text)) throw new Error(`${templateFile} has no "var ${name} = ...;" line to set`);
    text = text.replace(line, `var ${name} = ${value};`);
  }
  return text;
}

/** One sipp run for a failure message: outcome, counts and per-step counters. */
export function describeSipp(label: string, run: SippRun): string {
  return [
    `${label}: sipp exit ${run.exitCode} (signal ${run.signal}), ${run.created} created, ${run.successful} successful, ` +
      `${run.failed} failed (${run.unexpected} on an unexpected message), ${run.timeouts} timeouts, ${run.retransmissions} retransmissions sent`,
    `  steps: ${run.messages.map((m) => `${m.index}:${m.name} ${JSON.stringify(m.counters)}`).join(" | ")}`,
    run.keptWorkDir ? `  sipp files kept in ${run.keptWorkDir}` : "",
    run.errors ? `  errors:\n${run.errors.slice(0, 2000)}` : "",
  ]
    .filter(Boolean)
    .join("\n");
}

/** Every one of `calls` calls of the run completed, by sipp's own accounting. */
export function expectAllCallsSucceeded(label: string, run: SippRun, calls: number, diagnostics: string): void {
  // sipp exits 0 only when every call succeeded (1: at least one failed);
  // the counts say the batch was complete.
  expect(run.exitCode, `${label}\n${diagnostics}`).toBe(0);
  expect(run.created, `${label}\n${diagnostics}`).toBe(calls);
  expect(run.successful, `${label}\n${diagnostics}`).toBe(calls);
  expect(run.failed, `${label}\n${diagnostics}`).toBe(0);
}
