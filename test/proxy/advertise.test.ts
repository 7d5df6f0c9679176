/**
 * KSR.set_advertised_address / set_advertised_port on a stateful relay:
 * every branch's Via carries them (Record-Route: test/rr, where the
 * advertised address goes in the sending side's header).
 */
import { afterEach, describe, expect, it } from "vitest";
import { headerValues, loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

describe("set_advertised_address / set_advertised_port with t_relay", () => {
  it("puts them in the Via of every branch", async () => {
    const h = await loadScriptSource(
      `function ksr_request_route() {
        KSR.set_advertised_address("203.0.113.9");
        KSR.set_advertised_port("5999");
        KSR.corex.append_branch_uri("sip:carol@127.0.0.1:5081");
        KSR.tm.t_relay();
      }`,
      "advertise.js",
    );
    harnesses.push(h);
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1:5080" });
    const requests = r.forwarded.filter((f) => f.kind === "request");
    expect(requests.map((f) => f.destination.port)).toEqual([5080, 5081]);
    for (const f of requests) {
      expect(headerValues(f, "via")[0]).toMatch(/^SIP\/2\.0\/UDP 203\.0\.113\.9:5999;branch=z9hG4bK/);
    }
  });
});
