import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { headerValues, loadScript, type ScriptHarness } from "../../host/testing/index.js";
import { runScenarioFile } from "../../host/testing/scenarios.js";
import { ROOT, runKsr } from "./cli.js";

const SCRIPT = path.join(ROOT, "test/tooling/fixtures/stateful-failover.js");
const PASSING = "test/tooling/fixtures/downstream.test.yaml";
const FAILING = "test/tooling/fixtures/failing-downstream.yaml";

let harness: ScriptHarness | undefined;
afterEach(() => {
  harness?.close();
  harness = undefined;
});

describe("simulated downstream answers in scenario files", { timeout: 60_000 }, () => {
  it("passes the failover scenarios (relayed 180, 486 and fr_timer 408 into the failure route)", async () => {
    const outcomes = await runScenarioFile(path.join(ROOT, PASSING));
    expect(outcomes.map((o) => ({ name: o.name, failures: o.failures }))).toEqual([
      { name: "busy primary fails over to the backup", failures: [] },
      { name: "silent destination times out into the failure route", failures: [] },
      { name: "a request the script answers itself reaches no destination", failures: [] },
    ]);
  });

  it("ksr test reports a wrong expectation about an advance step as a failure", async () => {
    const r = await runKsr(["test", FAILING, PASSING]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("    advance 2000 ms after message 1: replies:\n      - expected \"1 reply\"\n      + actual   []\n");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("3 passed, 1 failed");
  });

  it("rejects a downstream key that is not proto:ip:port", async () => {
    const outcomes = await runScenarioFile(path.join(ROOT, "test/tooling/fixtures/downstream-bad-key.yaml"));
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.passed).toBe(false);
    expect(outcomes[0]!.failures[0]).toContain('options.downstream.127.0.0.1:5080: the key must be proto:ip:port');
  });
});

describe("loadScript downstream option and advance()", () => {
  it("builds each answer from the relayed request (RFC 3261 §8.2.6.2) and relays it to the caller", async () => {
    harness = await loadScript(SCRIPT, { downstream: { "udp:127.0.0.1:5080": [{ after: 300, status: 183, headers: ["X-Probe: 1"] }] } });
    const sent = await harness.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1" });
    expect(sent.replies.map((r) => r.status)).toEqual([100]);
    const relayed = sent.forwarded[0]!;
    const later = await harness.advance(300);
    expect(later.replies.map((r) => r.status)).toEqual([183]);
    const reply = later.replies[0]!;
    expect(reply.reason).toBe("Session Progress");
    expect(reply.destination).toEqual({ proto: "udp", ip: "192.0.2.10", port: 5060 });
    // The proxy removed its own Via: the caller sees its own, as it sent it.
    expect(headerValues(reply, "Via")).toEqual(headerValues(relayed, "Via").slice(1));
    expect(headerValues(reply, "Call-ID")).toEqual(headerValues(relayed, "Call-ID"));
    expect(headerValues(reply, "CSeq")).toEqual(["1 INVITE"]);
    expect(headerValues(reply, "From")).toEqual(headerValues(relayed, "From"));
    expect(headerValues(reply, "To")[0]).toMatch(new RegExp(`^${headerValues(relayed, "To")[0]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")};tag=[0-9a-f]+$`));
    expect(headerValues(reply, "X-Probe")).toEqual(["1"]);
  });

  it("answers a CANCEL with 200 and the pending INVITE with 487 (RFC 3261 §9.2)", async () => {
    harness = await loadScript(SCRIPT, { downstream: { "udp:127.0.0.1:5080": [{ after: 0, status: 180 }, { after: 10_000, status: 200 }] } });
    const invite = await harness.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1" });
    expect(invite.replies.map((r) => r.status)).toEqual([100, 180]);
    const via = headerValues({ headers: invite.forwarded[0]!.headers }, "Via").at(-1)!;
    // The CANCEL matches the INVITE: same top Via branch, Call-ID, From and CSeq number (RFC 3261 §9.1).
    const cancel = await harness.send({
      method: "CANCEL",
      ruri: "sip:bob@127.0.0.1",
      via,
      from: headerValues(invite.forwarded[0]!, "From")[0]!,
      callId: invite.values.callid!,
    });
    expect(cancel.forwarded.map((f) => `${f.method} ${f.destination.port}`)).toEqual(["CANCEL 5080", "ACK 5080"]);
    expect(cancel.replies.map((r) => `${r.status} ${headerValues(r, "CSeq")[0]}`)).toEqual(["200 1 CANCEL", "487 1 INVITE"]);
    // The 200 that was due at 10 s was withdrawn with the 487.
    const later = await harness.advance(20_000);
    expect(later.replies.filter((r) => r.status === 200)).toEqual([]);
  });

  it("does not answer a destination that is not listed, and clock.advance still fires the timers", async () => {
    harness = await loadScript(SCRIPT, {});
    await harness.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1" });
    harness.clock.advance(1000);
    const after = await harness.advance(0);
    expect(after.replies).toEqual([]);
    expect(harness.clock.now()).toBe(1_700_000_001_000);
    // fr_timer already ran under clock.advance: the failure route relayed
    // to the backup, which keeps silent too; its branch times out a second
    // later and, with no failure route armed any more, the caller gets 408.
    const later = await harness.advance(1000);
    expect(later.routes).toEqual([]);
    expect(later.forwarded.map((f) => `${f.method} ${f.destination.port}`)).toEqual(["INVITE 5070"]);
    expect(later.replies.map((r) => r.status)).toEqual([408]);
  });
});
