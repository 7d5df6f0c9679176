/**
 * `ksr run --metrics`: the Prometheus metrics after a known sipp run.
 *
 * sipp caller → `ksr run` (the stateful relay of test/interop/scripts,
 * with one KSR.xhttp_prom counter and histogram added) → sipp callee, CALLS
 * basic calls INVITE/100/180/200/ACK/BYE/200, record-routed. Then /metrics
 * is scraped and its counts compared with what the two sipps counted on
 * their side of each message (their retransmissions included, so a
 * retransmission on a busy machine does not make the counts disagree).
 * Runs in one process and with `--workers 2`, where the front sums the
 * workers' per-tenant families.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, findFreePort, runSipp, sippMessageCounters, startKsr, type KsrProcess, type SippRun } from "../../bench/lib/sipp.mjs";
import { RELAY_SCRIPT_TEMPLATE, SIPP_SCENARIOS, calleeRunAfterCaller, describeSipp, expectAllCallsSucceeded, requireSipp, scriptWithSettings, startCallee } from "./harness.js";

const CALLS = 10;
const RATE_PER_SECOND = 10;
const CALLEE_TIMEOUT_S = Math.ceil(CALLS / RATE_PER_SECOND) + 20;

/** The text format's samples as `name{labels}` → value (labels as written by prom-client, in its order). */
function parseSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

function sample(samples: Map<string, number>, key: string): number {
  const value = samples.get(key);
  if (value === undefined) throw new Error(`no sample ${key} in the metrics:\n${[...samples.keys()].join("\n")}`);
  return value;
}

/** Sent and retransmitted, or received with its retransmissions: every copy that crossed the wire. */
function copies(run: SippRun, step: string, occurrence = 0): number {
  const c = sippMessageCounters(run, step, occurrence);
  return (c.Sent ?? c.Recv ?? 0) + (c.Retrans ?? 0);
}

interface Scraped {
  readonly samples: Map<string, number>;
  readonly text: string;
  readonly caller: SippRun;
  readonly callee: SippRun;
  readonly diagnostics: string;
}

async function runAndScrape(workers: number): Promise<Scraped> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-metrics-interop-"));
  const [proxyPort, uasPort, metricsPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
  const relay = scriptWithSettings(RELAY_SCRIPT_TEMPLATE, {
    UAS_URI: JSON.stringify(`sip:127.0.0.1:${uasPort}`),
    FAILOVER_URI: JSON.stringify(`sip:127.0.0.1:${uasPort}`),
    FR_INV_TIMER_MS: "10000",
    FR_TIMER_MS: "1500",
  });
  const counted = relay.replace(
    "function ksr_request_route() {",
    'function ksr_request_route() {\n\tKSR.xhttp_prom.counter_inc_l1("requests", 1, KSR.pv.get("$rm"));\n\tKSR.xhttp_prom.histogram_observe_l0("request_bytes", String(KSR.pv.get("$ml")));',
  );
  if (counted === relay) throw new Error("the relay script has no ksr_request_route to count in");
  const script = path.join(dir, "counted-relay.js");
  fs.writeFileSync(script, counted);
  let proxy: KsrProcess | undefined;
  try {
    proxy = await startKsr({
      script,
      port: proxyPort,
      readiness: "sockets",
      logLevel: "warn",
      extraArgs: ["--metrics", `127.0.0.1:${metricsPort}`, "--db", ":memory:", ...(workers > 1 ? ["--workers", String(workers), "--db", path.join(dir, "ksr.sqlite")] : [])],
    });
    const calleeProcess = await startCallee("sipp callee", {
      scenarioFile: path.join(SIPP_SCENARIOS, "uas-answer.xml"),
      localPort: uasPort,
      calls: CALLS,
      timeoutS: CALLEE_TIMEOUT_S,
    });
    const caller = await runSipp({ scenarioFile: path.join(SIPP_SCENARIOS, "uac-call.xml"), targetPort: proxyPort, calls: CALLS, rate: RATE_PER_SECOND });
    const callee = await calleeRunAfterCaller(calleeProcess);
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await response.text();
    const diagnostics = [describeSipp("caller", caller), describeSipp("callee", callee), `ksr output (tail):\n${proxy.output().slice(-3000)}`, text].join("\n");
    expect(response.status, diagnostics).toBe(200);
    expect(response.headers.get("content-type"), diagnostics).toMatch(/^text\/plain; version=0\.0\.4/);
    return { samples: parseSamples(text), text, caller, callee, diagnostics };
  } finally {
    await proxy?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe.each([1, 2])("ksr run --metrics after a sipp run (workers %i)", (workers) => {
  let run: Scraped;

  beforeAll(async () => {
    requireSipp();
    ensureBuilt();
    run = await runAndScrape(workers);
  });

  it("completed every call (the counts below are of a known run)", () => {
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    expectAllCallsSucceeded("callee", run.callee, CALLS, run.diagnostics);
  });

  it("counts the requests received and sent by method as the sipps counted them", () => {
    const { samples: s, caller, callee, diagnostics } = run;
    expect(sample(s, 'ksr_sip_requests_received_total{method="INVITE"}'), diagnostics).toBe(copies(caller, "INVITE"));
    expect(sample(s, 'ksr_sip_requests_received_total{method="ACK"}'), diagnostics).toBe(copies(caller, "ACK"));
    expect(sample(s, 'ksr_sip_requests_received_total{method="BYE"}'), diagnostics).toBe(copies(caller, "BYE"));
    expect(sample(s, 'ksr_sip_requests_sent_total{method="INVITE"}'), diagnostics).toBe(copies(callee, "INVITE"));
    expect(sample(s, 'ksr_sip_requests_sent_total{method="ACK"}'), diagnostics).toBe(copies(callee, "ACK"));
    expect(sample(s, 'ksr_sip_requests_sent_total{method="BYE"}'), diagnostics).toBe(copies(callee, "BYE"));
    expect(sample(s, 'ksr_sip_requests_received_total{method="OPTIONS"}'), diagnostics).toBe(0);
  });

  it("counts the replies received and sent by class", () => {
    const { samples: s, caller, callee, diagnostics } = run;
    // From the callee: 180 and 200 to each INVITE, 200 to each BYE.
    expect(sample(s, 'ksr_sip_replies_received_total{class="1xx"}'), diagnostics).toBe(copies(callee, "180"));
    expect(sample(s, 'ksr_sip_replies_received_total{class="2xx"}'), diagnostics).toBe(copies(callee, "200", 0) + copies(callee, "200", 1));
    // To the caller: the proxy's own 100 and the relayed 180, the relayed 200s.
    expect(sample(s, 'ksr_sip_replies_sent_total{class="1xx"}'), diagnostics).toBe(copies(caller, "100") + copies(caller, "180"));
    expect(sample(s, 'ksr_sip_replies_sent_total{class="2xx"}'), diagnostics).toBe(copies(caller, "200", 0) + copies(caller, "200", 1));
    expect(sample(s, 'ksr_sip_replies_sent_total{class="4xx"}'), diagnostics).toBe(0);
    expect(sample(s, 'ksr_dropped_messages_total{reason="malformed"}'), diagnostics).toBe(0);
    expect(sample(s, "ksr_udp_receive_buffer_drops_total"), diagnostics).toBeGreaterThanOrEqual(0);
  });

  it("counts the tenant's transactions, route calls and their latency", () => {
    const { samples: s, diagnostics } = run;
    // A server transaction for every INVITE and BYE (the ACK of a 2xx is not one, RFC 3261 §17.1.1.3), each answered 2xx.
    expect(sample(s, 'ksr_transactions_total{tenant="default",kind="server"}'), diagnostics).toBe(2 * CALLS);
    expect(sample(s, 'ksr_transactions_total{tenant="default",kind="client"}'), diagnostics).toBe(2 * CALLS);
    expect(sample(s, 'ksr_transactions_final_total{tenant="default",class="2xx"}'), diagnostics).toBe(2 * CALLS);
    expect(sample(s, 'ksr_transactions_final_total{tenant="default",class="4xx"}'), diagnostics).toBe(0);
    // The request route ran once per request received (INVITE, ACK, BYE and any retransmission).
    const requests = ["INVITE", "ACK", "BYE"].reduce((n, m) => n + sample(s, `ksr_sip_requests_received_total{method="${m}"}`), 0);
    const calls = sample(s, 'ksr_tenant_route_calls_total{tenant="default"}');
    expect(calls, diagnostics).toBeGreaterThanOrEqual(requests);
    expect(sample(s, 'ksr_tenant_route_duration_seconds_count{tenant="default"}'), diagnostics).toBe(calls);
    expect(sample(s, 'ksr_tenant_route_duration_seconds_bucket{tenant="default",le="+Inf"}'), diagnostics).toBe(calls);
    expect(sample(s, 'ksr_tenant_route_errors_total{tenant="default",kind="exception"}'), diagnostics).toBe(0);
    expect(sample(s, 'ksr_tenant_isolate_heap_limit_bytes{tenant="default"}'), diagnostics).toBe(workers * 64 * 1024 * 1024);
    expect(sample(s, 'ksr_tenant_isolate_heap_used_bytes{tenant="default"}'), diagnostics).toBeGreaterThan(0);
  });

  it("exports the script's own KSR.xhttp_prom metrics under its tenant", () => {
    const { samples: s, caller, diagnostics } = run;
    expect(sample(s, 'ksr_script_requests{tenant="default",l1="INVITE"}'), diagnostics).toBe(copies(caller, "INVITE"));
    expect(sample(s, 'ksr_script_requests{tenant="default",l1="BYE"}'), diagnostics).toBe(copies(caller, "BYE"));
    const requests = ["INVITE", "ACK", "BYE"].reduce((n, m) => n + sample(s, `ksr_script_requests{tenant="default",l1="${m}"}`), 0);
    expect(sample(s, 'ksr_script_request_bytes_count{tenant="default"}'), diagnostics).toBe(requests);
  });

  it("has every metric examples/grafana-dashboard.json queries (the front's families of its workers with --workers only)", () => {
    const dashboard = fs.readFileSync(path.join(import.meta.dirname, "..", "..", "examples", "grafana-dashboard.json"), "utf8");
    const exprs = [...dashboard.matchAll(/"expr": "((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    expect(exprs.length).toBeGreaterThan(10);
    const queried = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:ksr|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1]!)));
    const families = new Set([...run.text.matchAll(/^# TYPE (\S+) (\S+)/gm)].flatMap((m) => (m[2] === "histogram" ? [`${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]!])));
    // The front's families of its workers exist with worker processes only.
    const frontOnly = new Set(["ksr_tenant_worker_restarts_total", "ksr_tenant_refused_total", "ksr_tenant_workers_running", "ksr_tenant_queued_messages", "ksr_tenant_front_dropped_total"]);
    const expected = [...queried].filter((name) => workers > 1 || !frontOnly.has(name));
    expect(expected.filter((name) => !families.has(name))).toEqual([]);
  });

  it("has process metrics: event-loop lag and GC time, with worker processes the front's and each worker's", () => {
    expect(run.text).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram/m);
    if (workers === 1) {
      expect(run.text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
      return;
    }
    for (const process of ["front", "default#0", "default#1"]) {
      expect(run.text).toMatch(new RegExp(`^nodejs_eventloop_lag_seconds\\{process="${process}"\\} \\d`, "m"));
    }
  });
});
