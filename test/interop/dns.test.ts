/**
 * RFC 3263 next hops against a real DNS server: dnsmasq on a free loopback
 * port (started here, records given on its command line), `ksr run
 * --dns-server 127.0.0.1:PORT` running test/interop/scripts/dns-relay.js,
 * which sends every call to a host name; sipp callees (UAS) behind the
 * names' SRV records and a sipp caller in front, all on 127.0.0.1:
 *
 *   - NAPTR → SRV → A: the NAPTR record of the best order names TCP, so the
 *     calls reach the callee listening on TCP at the port of its SRV record;
 *   - SRV priority: the callee of the lower priority gets every call, the
 *     other none;
 *   - failover (§4.3): the first target answers 503, or answers nothing
 *     until the branch timer: every call goes on to the second target and
 *     is answered there, the failure route does not run;
 *   - a name that does not resolve: the first call's branch fails as soon
 *     as the lookup does, its failure route sees 503 and answers 503; the
 *     next calls find the name in the negative cache and t_relay fails at
 *     once (the script answers 503);
 *   - a DNS server that does not answer: the same, after the resolver's
 *     timeout.
 *
 * Needs dnsmasq (Debian package dnsmasq) and sipp (sip-tester); without
 * them the suite fails on purpose, as the other interop suites do.
 */
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DNSMASQ, dnsmasqInstalled, startDnsmasq } from "../../bench/lib/dnsmasq.mjs";
import { ensureBuilt, findFreePort, isListening, runSipp, sippMessageCounters, startKsr, startSipp, type SippProcess } from "../../bench/lib/sipp.mjs";
import { CachingDnsLookups, NextHopResolver, NodeDnsLookups } from "../../host/dns/resolver.js";
import { SIPP_SCENARIOS, calleeRunAfterCaller, describeSipp, expectAllCallsSucceeded, requireSipp, scriptWithSettings } from "./harness.js";

const DNS_RELAY_TEMPLATE = path.join(path.dirname(new URL(import.meta.url).pathname), "scripts", "dns-relay.js");
const CALLS = 3;
const RATE = 5;
const FR_TIMER_MS = 1500;
const CALLEE_TIMEOUT_S = 30;

interface CalleeSpec {
  readonly label: string;
  readonly scenario: string;
  readonly transport?: "udp" | "tcp";
  readonly extraArgs?: string[];
}

interface CaseSpec {
  readonly target: string;
  /** dnsmasq options; {PORT0}, {PORT1} stand for the callees' ports. */
  readonly records: readonly string[];
  readonly callees: readonly CalleeSpec[];
  readonly callerScenario: string;
  /** Point ksr at a UDP port that swallows queries instead of at dnsmasq. */
  readonly deafDnsServer?: boolean;
  /** `ksr run --workers N`: the script (and the resolution) in N worker processes. */
  readonly workers?: number;
}

async function startCallee(spec: CalleeSpec, port: number): Promise<SippProcess> {
  const transport = spec.transport ?? "udp";
  const sipp = await startSipp({ scenarioFile: path.join(SIPP_SCENARIOS, spec.scenario), localPort: port, transport, calls: CALLS, timeoutS: CALLEE_TIMEOUT_S, extraArgs: spec.extraArgs ?? [] });
  for (let i = 0; i < 50 && !isListening(transport, port); i++) await new Promise((r) => setTimeout(r, 100));
  if (!isListening(transport, port)) {
    await sipp.stop().catch(() => undefined);
    throw new Error(`sipp ${spec.label} did not listen on ${transport}:127.0.0.1:${port}`);
  }
  return sipp;
}

async function runCase(spec: CaseSpec) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-dns-interop-"));
  const ports = [await findFreePort(), await findFreePort()];
  const records = spec.records.map((r) => r.replaceAll("{PORT0}", String(ports[0])).replaceAll("{PORT1}", String(ports[1])));
  const dns = await startDnsmasq(records);
  // A socket that never answers: the resolver's timeout is what ends the lookup.
  const deaf = spec.deafDnsServer === true ? dgram.createSocket("udp4") : undefined;
  if (deaf !== undefined) await new Promise<void>((resolve) => deaf.bind(0, "127.0.0.1", () => resolve()));
  const dnsServer = deaf !== undefined ? `127.0.0.1:${deaf.address().port}` : `127.0.0.1:${dns.port}`;
  const script = path.join(dir, "dns-relay.js");
  fs.writeFileSync(script, scriptWithSettings(DNS_RELAY_TEMPLATE, { TARGET: JSON.stringify(spec.target), FR_TIMER_MS: String(FR_TIMER_MS) }));
  const proxyPort = await findFreePort();
  const proxy = await startKsr({ script, port: proxyPort, readiness: "sockets", logLevel: "info", extraArgs: ["--dns-server", dnsServer, ...(spec.workers !== undefined ? ["--workers", String(spec.workers)] : [])] });
  const callees: { spec: CalleeSpec; sipp: SippProcess }[] = [];
  try {
    for (const [i, c] of spec.callees.entries()) callees.push({ spec: c, sipp: await startCallee(c, ports[i]!) });
    const caller = await runSipp({ scenarioFile: path.join(SIPP_SCENARIOS, spec.callerScenario), targetPort: proxyPort, calls: CALLS, rate: RATE });
    const calleeRuns: Record<string, Awaited<ReturnType<typeof calleeRunAfterCaller>>> = {};
    for (const { spec: c, sipp } of callees) calleeRuns[c.label] = await calleeRunAfterCaller(sipp);
    await proxy.stop();
    const diagnostics = [
      describeSipp("caller", caller),
      ...Object.entries(calleeRuns).map(([label, run]) => describeSipp(label, run)),
      `ksr output (tail):\n${proxy.output().slice(-4000)}`,
      `dnsmasq output (tail):\n${dns.output().slice(-2000)}`,
    ].join("\n");
    return { caller, callees: calleeRuns, diagnostics, proxyOutput: proxy.output() };
  } finally {
    for (const { sipp } of callees) await sipp.stop().catch(() => undefined);
    await proxy.stop();
    await dns.stop();
    deaf?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const failureRouteLines = (output: string): string[] => output.split("\n").filter((l) => l.includes("failure route:"));

/** Two SRV targets of svc.test over UDP, priority 10 then 20, both at 127.0.0.1. */
const TWO_TARGETS = [
  "--srv-host=_sip._udp.svc.test,first.test,{PORT0},10,0",
  "--srv-host=_sip._udp.svc.test,second.test,{PORT1},20,0",
  "--host-record=first.test,127.0.0.1",
  "--host-record=second.test,127.0.0.1",
];

describe("RFC 3263 next hops with dnsmasq and sipp", () => {
  beforeAll(() => {
    requireSipp();
    if (!dnsmasqInstalled()) throw new Error(`${DNSMASQ} is missing: the DNS interop suite cannot run (Debian/Ubuntu: apt-get install -y dnsmasq; .ci/run does)`);
    ensureBuilt();
  });

  it("NAPTR → SRV → A: the NAPTR of the best order names TCP, the calls reach the TCP callee at its SRV port", async () => {
    const run = await runCase({
      target: "naptr.test",
      records: [
        "--naptr-record=naptr.test,10,10,S,SIP+D2T,,_sip._tcp.naptr.test",
        "--naptr-record=naptr.test,20,10,S,SIP+D2U,,_sip._udp.naptr.test",
        "--srv-host=_sip._tcp.naptr.test,callee.test,{PORT0},10,0",
        "--srv-host=_sip._udp.naptr.test,callee.test,{PORT1},10,0",
        "--host-record=callee.test,127.0.0.1",
      ],
      callees: [{ label: "tcp callee", scenario: "uas-answer.xml", transport: "tcp" }],
      callerScenario: "uac-call.xml",
    });
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    expectAllCallsSucceeded("tcp callee", run.callees["tcp callee"]!, CALLS, run.diagnostics);
    expect(sippMessageCounters(run.callees["tcp callee"]!, "INVITE").Recv, run.diagnostics).toBe(CALLS);
  });

  it("SRV priority: the target of priority 10 gets every call, the one of 20 none", async () => {
    const run = await runCase({
      target: "svc.test",
      records: TWO_TARGETS,
      callees: [
        { label: "priority 10", scenario: "uas-answer.xml" },
        { label: "priority 20", scenario: "uas-answer.xml" },
      ],
      callerScenario: "uac-call.xml",
    });
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    expect(sippMessageCounters(run.callees["priority 10"]!, "INVITE").Recv, run.diagnostics).toBe(CALLS);
    expect(sippMessageCounters(run.callees["priority 20"]!, "INVITE").Recv, run.diagnostics).toBe(0);
  });

  it("failover on 503: every call goes on to the second target and is answered; the failure route does not run", async () => {
    const run = await runCase({
      target: "svc.test",
      records: TWO_TARGETS,
      callees: [
        { label: "unavailable", scenario: "uas-unavailable.xml" },
        { label: "second", scenario: "uas-answer.xml" },
      ],
      callerScenario: "uac-call.xml",
    });
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    expectAllCallsSucceeded("unavailable", run.callees.unavailable!, CALLS, run.diagnostics);
    expectAllCallsSucceeded("second", run.callees.second!, CALLS, run.diagnostics);
    expect(failureRouteLines(run.proxyOutput), run.diagnostics).toEqual([]);
  });

  it("failover on 503 with --workers 2: each worker resolves through the DNS server given to the front", async () => {
    const run = await runCase({
      target: "svc.test",
      records: TWO_TARGETS,
      callees: [
        { label: "unavailable", scenario: "uas-unavailable.xml" },
        { label: "second", scenario: "uas-answer.xml" },
      ],
      callerScenario: "uac-call.xml",
      workers: 2,
    });
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    expectAllCallsSucceeded("unavailable", run.callees.unavailable!, CALLS, run.diagnostics);
    expectAllCallsSucceeded("second", run.callees.second!, CALLS, run.diagnostics);
    expect(failureRouteLines(run.proxyOutput), run.diagnostics).toEqual([]);
  });

  it("failover on timeout: the first target never answers, on the branch timer the second gets the call", async () => {
    const run = await runCase({
      target: "svc.test",
      records: TWO_TARGETS,
      callees: [
        { label: "silent", scenario: "uas-silent.xml", extraArgs: ["-d", String(FR_TIMER_MS + 1500)] },
        { label: "second", scenario: "uas-answer.xml" },
      ],
      callerScenario: "uac-call.xml",
    });
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    expectAllCallsSucceeded("second", run.callees.second!, CALLS, run.diagnostics);
    expect(sippMessageCounters(run.callees.silent!, "INVITE").Recv, run.diagnostics).toBe(CALLS);
    expect(failureRouteLines(run.proxyOutput), run.diagnostics).toEqual([]);
  });

  it("a name that does not resolve: the first call's failure route sees 503, later calls' t_relay fails at once; every caller gets 503", async () => {
    const run = await runCase({ target: "nowhere.test", records: TWO_TARGETS, callees: [], callerScenario: "uac-unavailable.xml" });
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    // The first call resolved the name while its transaction waited: its branch failed with 503 (not fr_timer's 408).
    expect(failureRouteLines(run.proxyOutput), run.diagnostics).toEqual([expect.stringContaining("failure route: 503 for sip:callee@nowhere.test")]);
    // The others found it in the negative cache: no branch, t_relay -1 (its error reply would be 478, Kamailio's E_BAD_ADDRESS).
    const relayFailures = run.proxyOutput.split("\n").filter((l) => l.includes("relay failed: -1 for sip:callee@nowhere.test"));
    expect(relayFailures.length, run.diagnostics).toBe(CALLS - 1);
  });

  it("the cache keeps an answer for the TTL the server gave, then asks again (clock injected)", async () => {
    const dns = await startDnsmasq(["--host-record=ttl.test,127.0.0.1,7", "--srv-host=_sip._udp.ttl.test,ttl.test,5062,10,0"]);
    try {
      let now = 0;
      const cache = new CachingDnsLookups(new NodeDnsLookups([`127.0.0.1:${dns.port}`]), () => now);
      const resolver = new NextHopResolver(cache, () => now, () => ({ transports: new Set(["udp" as const]), ipv6: false }));
      const targets = await resolver.resolve({ host: "ttl.test", transport: "udp", secure: false });
      expect(targets).toEqual([{ proto: "udp", ip: "127.0.0.1", port: 5062 }]);
      expect((await cache.a("ttl.test")).ttlS).toBe(7);
      // Asked of the server so far: the SRV record and the A record.
      expect(cache.misses).toBe(2);
      now = 6_999; // within the A record's 7 s: the resolution (its shortest TTL) and the record are cached
      expect(resolver.known({ host: "ttl.test", transport: "udp", secure: false })).toEqual(targets);
      await cache.a("ttl.test");
      expect(cache.misses).toBe(2);
      now = 7_000; // expired: the resolution is unknown again and the record is asked for again
      expect(resolver.known({ host: "ttl.test", transport: "udp", secure: false })).toBeUndefined();
      await resolver.resolve({ host: "ttl.test", transport: "udp", secure: false });
      expect(cache.misses).toBe(3); // the A record again; the SRV record (kept 60 s) not
      // A name the server does not have (NXDOMAIN under --local=/test/) is an empty answer, kept as such.
      expect((await cache.a("missing.test")).records).toEqual([]);
      expect(cache.peek("a", "missing.test")?.records).toEqual([]);
    } finally {
      await dns.stop();
    }
  });

  it("a DNS server that does not answer: after the resolver's timeout the branch fails with 503", async () => {
    const run = await runCase({ target: "svc.test", records: TWO_TARGETS, callees: [], callerScenario: "uac-unavailable.xml", deafDnsServer: true });
    expectAllCallsSucceeded("caller", run.caller, CALLS, run.diagnostics);
    // Calls that came while the lookup waited share it and fail with it (failure route); later ones find the failure cached.
    const failed = failureRouteLines(run.proxyOutput).length + run.proxyOutput.split("\n").filter((l) => l.includes("relay failed: -1")).length;
    expect(failureRouteLines(run.proxyOutput).length, run.diagnostics).toBeGreaterThanOrEqual(1);
    expect(failed, run.diagnostics).toBe(CALLS);
  });
});
