/**
 * Module state a test starts from (LoadScriptOptions.state / options.state in
 * scenario files): location bindings, subscribers, htable items. Each
 * harness has its own, whatever ran before it in the process.
 */
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";
import { runScenarioFile } from "../../host/testing/scenarios.js";
import { ROOT } from "./cli.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

async function harness(source: string, opts: Parameters<typeof loadScriptSource>[2] = {}): Promise<ScriptHarness> {
  const h = await loadScriptSource(source, "seed.js", opts);
  harnesses.push(h);
  return h;
}

describe("seeded module state", { timeout: 60_000 }, () => {
  it("runs the seeded scenario file: lookup, 404, htable block, auth challenge", async () => {
    const outcomes = await runScenarioFile(path.join(ROOT, "test/tooling/fixtures/registrar-seed.test.yaml"));
    expect(outcomes.map((o) => o.failures)).toEqual([[], [], [], []]);
  });

  it("orders seeded contacts by q and expires them on the harness clock", async () => {
    const script = `function ksr_request_route() {
      if (KSR.registrar.lookup("location") < 0) { KSR.sl.sl_send_reply(404, "Not Found"); KSR.x.exit(); }
      KSR.tm.t_relay();
    }`;
    const h = await harness(script, {
      state: {
        locations: [
          { aor: "sip:bob@example.com", contact: "sip:bob@127.0.0.1:5081", q: 0.5, expires: 60 },
          { aor: "sip:bob@example.com", contact: "sip:bob@127.0.0.1:5082", q: 1, expires: 60 },
        ],
      },
    });
    const first = await h.send({ method: "INVITE", ruri: "sip:bob@example.com" });
    expect(first.forwarded.filter((f) => f.method === "INVITE").map((f) => f.requestUri)).toEqual([
      "sip:bob@127.0.0.1:5082",
      "sip:bob@127.0.0.1:5081",
    ]);
    h.clock.advance(61_000);
    const later = await h.send({ method: "INVITE", ruri: "sip:bob@example.com" });
    expect(later.replies.map((r) => r.status)).toEqual([404]);
  });

  it("gives every harness its own htable, even with the same tenant id", async () => {
    const script = `function ksr_request_route() {
      var seen = KSR.htable.sht_get("t", "k");
      KSR.htable.sht_sets("t", "k", "written");
      KSR.sl.sl_send_reply(200, seen === null ? "empty" : String(seen));
    }`;
    const a = await harness(script, { state: { htable: { t: { k: "seeded" } } } });
    expect((await a.send({ method: "OPTIONS", ruri: "sip:127.0.0.1" })).replies[0]!.reason).toBe("seeded");
    a.close();
    harnesses.splice(harnesses.indexOf(a), 1);
    const b = await harness(script);
    expect((await b.send({ method: "OPTIONS", ruri: "sip:127.0.0.1" })).replies[0]!.reason).toBe("empty");
  });
});
