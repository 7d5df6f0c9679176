/**
 * Next hops named by a host name that does not resolve (Kamailio: forward
 * and t_relay fail for an unresolvable destination; sl_reply_error then
 * answers 478). A name is looked up after the route call the first time;
 * a stateful branch to it gets its 503 as soon as the lookup fails (its
 * failure route runs then, not fr_timer's 408 later), and while the answer
 * is remembered, forward and t_relay fail at once. A name that resolved is
 * sent to at once the next time, through the onsend route.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

async function script(source: string): Promise<ScriptHarness> {
  const h = await loadScriptSource(source, "names.js", {
    hosts: { "known.example.com": "127.0.0.1" },
    downstream: { "udp:127.0.0.1:5080": [{ status: 200, after: 0 }] },
  });
  harnesses.push(h);
  return h;
}

const texts = (logs: readonly { text: string }[]): string[] => logs.map((l) => l.text);

describe("a stateful branch to a name that does not resolve", () => {
  it("the first time: 503 for the branch once the lookup fails, the failure route runs without any clock advance", async () => {
    const h = await script(`
      function ksr_request_route() {
        KSR.tm.t_on_failure("ksr_failure");
        KSR.info("relay " + KSR.tm.t_relay_to_proxy("udp:nowhere.invalid:5060"));
      }
      function ksr_failure() { KSR.info("failure " + KSR.pv.get("$T_reply_code")); KSR.tm.t_reply(404, "Gone"); }`);
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@example.com" });
    expect(texts(r.logs)).toContain("relay 1");
    expect(texts(r.logs)).toContain("failure 503");
    expect(r.replies.map((x) => x.status)).toEqual([100, 404]);
  });

  it("once known not to resolve: t_relay fails at once and sl_reply_error answers 478", async () => {
    const h = await script(`
      function ksr_request_route() {
        var r = KSR.tm.t_relay_to_proxy("udp:nowhere.invalid:5060");
        KSR.info("relay " + r);
        if (r < 0) KSR.sl.sl_reply_error();
      }`);
    await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    const second = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(texts(second.logs)).toContain("relay -1");
    expect(second.replies.map((x) => `${x.status} ${x.reason}`)).toEqual(["478 Unresolvable destination (478/SL)"]);
  });
});

describe("a stateless forward to a name", () => {
  it("that does not resolve: -1 once the lookup has failed", async () => {
    const h = await script(`function ksr_request_route() { KSR.info("forward " + KSR.forward_uri("sip:nowhere.invalid")); }`);
    const first = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    // Not known yet: looked up after the route call, nothing sent.
    expect(texts(first.logs)).toContain("forward 1");
    expect(first.forwarded).toEqual([]);
    const second = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(texts(second.logs)).toContain("forward -1");
  });

  it("that resolved: sent at once the next time, through the onsend route with its address", async () => {
    const h = await script(`
      function ksr_onsend_route() { KSR.info("onsend " + KSR.pv.get("$snd(ip)") + ":" + KSR.pv.get("$snd(port)")); }
      function ksr_request_route() { KSR.forward_uri("sip:known.example.com:5080"); }`);
    const first = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(first.forwarded).toHaveLength(1);
    expect(texts(first.logs).filter((t) => t.startsWith("onsend"))).toEqual([]);
    const second = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(second.forwarded).toHaveLength(1);
    expect(texts(second.logs).filter((t) => t.startsWith("onsend"))).toEqual(["onsend 127.0.0.1:5080"]);
  });
});
