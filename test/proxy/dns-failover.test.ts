/**
 * Next hops named by host names, resolved by RFC 3263 (over the harness's
 * DNS table) and failed over (§4.3): a stateful branch whose target answers
 * 503, sends nothing back, or cannot be sent to goes on to the next target
 * of the same resolution; the failure route sees the outcome only when
 * every target failed. Stateless forwarding skips a target it cannot send
 * to.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadScriptSource, type LoadScriptOptions, type ScriptHarness, type SendResult } from "../../host/testing/index.js";
import type { Target } from "../../host/dns/rfc3263.js";
import { cancelFor, ksr, ProxyTestBed, request } from "./testbed.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

const RELAY = `
  function ksr_request_route() {
    KSR.tm.t_on_failure("ksr_failure");
    KSR.info("relay " + KSR.tm.t_relay());
  }
  function ksr_failure() { KSR.info("failure " + KSR.pv.get("$T_reply_code")); }`;

const DNS = {
  srv: {
    "_sip._udp.svc.test": [
      { priority: 10, weight: 0, port: 5080, name: "one.test" },
      { priority: 20, weight: 0, port: 5090, name: "two.test" },
    ],
    "_sip._tcp.svc.test": [{ priority: 10, weight: 0, port: 5070, name: "one.test" }],
    // Hostile: answers that point back at the server itself (it listens on 127.0.0.1:5060).
    "_sip._udp.loop.test": [
      { priority: 10, weight: 0, port: 5060, name: "one.test" },
      { priority: 20, weight: 0, port: 5090, name: "two.test" },
    ],
    "_sip._udp.selfonly.test": [{ priority: 10, weight: 0, port: 5060, name: "one.test" }],
  },
  naptr: {
    "tcpfirst.test": [
      { order: 10, preference: 10, flags: "s", service: "SIP+D2T", regexp: "", replacement: "_sip._tcp.svc.test" },
      { order: 20, preference: 10, flags: "s", service: "SIP+D2U", regexp: "", replacement: "_sip._udp.svc.test" },
    ],
  },
  hosts: { "one.test": "127.0.0.1", "two.test": "127.0.0.2" },
};

async function proxy(source: string, downstream: LoadScriptOptions["downstream"]): Promise<ScriptHarness> {
  const h = await loadScriptSource(source, "dns.js", { dns: DNS, downstream });
  harnesses.push(h);
  return h;
}

const requestsTo = (r: SendResult, method = "INVITE"): string[] =>
  r.forwarded.filter((f) => f.kind === "request" && f.method === method).map((f) => `${f.destination.proto}:${f.destination.ip}:${f.destination.port}`);
const texts = (r: SendResult): string[] => r.logs.map((l) => l.text);
const statuses = (r: SendResult): number[] => r.replies.map((x) => x.status);

describe("RFC 3263 next hops of t_relay", () => {
  it("SRV by priority: the first target is tried first and answers", async () => {
    const h = await proxy(RELAY, { "udp:127.0.0.1:5080": [{ status: 200, after: 0 }] });
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@svc.test" });
    expect(texts(r)).toContain("relay 1");
    expect(requestsTo(r)).toEqual(["udp:127.0.0.1:5080"]);
    expect(statuses(r)).toEqual([100, 200]);
  });

  it("NAPTR picks the transport: TCP first, with the port of its SRV record", async () => {
    const h = await proxy(RELAY, { "tcp:127.0.0.1:5070": [{ status: 200, after: 0 }] });
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@tcpfirst.test" });
    expect(requestsTo(r)).toEqual(["tcp:127.0.0.1:5070"]);
    expect(statuses(r)).toEqual([100, 200]);
  });

  it("a 503 from the first target: the next one gets the request, the failure route does not run", async () => {
    const h = await proxy(RELAY, { "udp:127.0.0.1:5080": [{ status: 503, after: 0 }], "udp:127.0.0.2:5090": [{ status: 200, after: 0 }] });
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@svc.test" });
    expect(requestsTo(r)).toEqual(["udp:127.0.0.1:5080", "udp:127.0.0.2:5090"]);
    expect(texts(r).filter((t) => t.startsWith("failure"))).toEqual([]);
    expect(statuses(r)).toEqual([100, 200]);
  });

  it("no answer at all from the first target: on the branch timeout the next one gets it", async () => {
    const h = await proxy(RELAY, { "udp:127.0.0.1:5080": "never", "udp:127.0.0.2:5090": [{ status: 200, after: 0 }] });
    const first = await h.send({ method: "INVITE", ruri: "sip:bob@svc.test" });
    expect(requestsTo(first)).toEqual(["udp:127.0.0.1:5080"]);
    const later = await h.advance(30_000);
    expect(requestsTo(later)).toContain("udp:127.0.0.2:5090");
    expect(texts(later).filter((t) => t.startsWith("failure"))).toEqual([]);
    expect(statuses(later)).toEqual([200]);
  });

  it("a target that answered provisionally is not failed over on timeout", async () => {
    const h = await proxy(RELAY, { "udp:127.0.0.1:5080": [{ status: 180, after: 0 }], "udp:127.0.0.2:5090": [{ status: 200, after: 0 }] });
    await h.send({ method: "INVITE", ruri: "sip:bob@svc.test" });
    const later = await h.advance(120_000);
    expect(requestsTo(later)).toEqual([]);
    expect(texts(later)).toContain("failure 408");
  });

  it("every target answers 503: the failure route runs once, after the last (UDP's SRV targets, then TCP's)", async () => {
    const h = await proxy(RELAY, {
      "udp:127.0.0.1:5080": [{ status: 503, after: 0 }],
      "udp:127.0.0.2:5090": [{ status: 503, after: 0 }],
      "tcp:127.0.0.1:5070": [{ status: 503, after: 0 }],
    });
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@svc.test" });
    expect(requestsTo(r)).toEqual(["udp:127.0.0.1:5080", "udp:127.0.0.2:5090", "tcp:127.0.0.1:5070"]);
    expect(texts(r).filter((t) => t.startsWith("failure"))).toEqual(["failure 503"]);
    // §16.7 step 6: a 503 goes upstream as 500.
    expect(statuses(r)).toEqual([100, 500]);
  });

  it("a second request uses the cached resolution at once, through the onsend route", async () => {
    const h = await proxy(`${RELAY}\nfunction ksr_onsend_route() { KSR.info("onsend " + KSR.pv.get("$snd(ip)") + ":" + KSR.pv.get("$snd(port)")); }`, {
      "udp:127.0.0.1:5080": [{ status: 200, after: 0 }],
    });
    await h.send({ method: "INVITE", ruri: "sip:bob@svc.test" });
    const second = await h.send({ method: "INVITE", ruri: "sip:bob@svc.test" });
    expect(texts(second)).toContain("onsend 127.0.0.1:5080");
  });

  it("a name that does not resolve: the branch ends with 503 and the failure route sees it", async () => {
    const h = await proxy(RELAY, {});
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@nowhere.test" });
    expect(texts(r)).toContain("failure 503");
    expect(r.forwarded.filter((f) => f.kind === "request")).toEqual([]);
  });
});

describe("serial forking to a name from the failure route", () => {
  it("the failure route's t_relay to a name not cached yet: the caller gets the new branch's answer, not the old failure", async () => {
    const h = await proxy(
      `function ksr_request_route() { KSR.tm.t_on_failure("retry"); KSR.tm.t_relay_to_proxy("udp:127.0.0.3:5099"); }
       function retry() { KSR.seturi("sip:bob@svc.test"); KSR.info("retry " + KSR.tm.t_relay()); }`,
      { "udp:127.0.0.3:5099": [{ status: 486, after: 0 }], "udp:127.0.0.1:5080": [{ status: 200, after: 0 }] },
    );
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@example.com" });
    expect(texts(r)).toContain("retry 1");
    expect(requestsTo(r)).toEqual(["udp:127.0.0.3:5099", "udp:127.0.0.1:5080"]);
    expect(statuses(r)).toEqual([100, 200]);
  });
});

describe("DNS answers that point back at the server", () => {
  it("its own socket is left out: the next target gets the request", async () => {
    const h = await proxy(RELAY, { "udp:127.0.0.2:5090": [{ status: 200, after: 0 }] });
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@loop.test" });
    expect(requestsTo(r)).toEqual(["udp:127.0.0.2:5090"]);
    expect(statuses(r)).toEqual([100, 200]);
  });

  it("nothing but itself: the name counts as unresolvable (503 to the failure route), nothing is sent", async () => {
    const h = await proxy(RELAY, {});
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@selfonly.test" });
    expect(texts(r)).toContain("failure 503");
    expect(r.forwarded.filter((f) => f.kind === "request")).toEqual([]);
  });
});

describe("RFC 3263 next hops of forward", () => {
  it("a stateless forward to a name goes to the first target of its resolution", async () => {
    const h = await proxy(`function ksr_request_route() { KSR.info("forward " + KSR.forward()); }`, {});
    const first = await h.send({ method: "MESSAGE", ruri: "sip:bob@tcpfirst.test" });
    expect(texts(first)).toContain("forward 1");
    expect(requestsTo(first, "MESSAGE")).toEqual(["tcp:127.0.0.1:5070"]);
    const second = await h.send({ method: "MESSAGE", ruri: "sip:bob@tcpfirst.test" });
    expect(requestsTo(second, "MESSAGE")).toEqual(["tcp:127.0.0.1:5070"]);
  });
});

describe("a branch waiting for its resolution", () => {
  /** A test bed whose resolutions end when the test says. */
  function bedWithPendingResolution(): { bed: ProxyTestBed; finish: (targets: readonly Target[]) => void } {
    let finish: (targets: readonly Target[]) => void = () => undefined;
    const pending = new Promise<readonly Target[]>((resolve) => (finish = resolve));
    const bed = new ProxyTestBed(
      {
        ksr_request_route(ctx) {
          const KSR = ksr(ctx);
          if (KSR.is_CANCEL()) {
            if (KSR.tm.t_check_trans() > 0) KSR.tm.t_relay();
            return;
          }
          KSR.tm.t_relay();
        },
      },
      { knownTargets: () => undefined, resolveTargets: () => pending },
    );
    return { bed, finish: (t) => finish(t) };
  }
  const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it("is sent once the name resolves, the transaction staying open meanwhile", async () => {
    const { bed, finish } = bedWithPendingResolution();
    bed.receiveRequest(request({ uri: "sip:bob@svc.test" }));
    expect(bed.statuses()).toEqual([100]);
    expect(bed.sent.filter((s) => s.msg.kind === "request")).toEqual([]);
    finish([{ proto: "udp", ip: "192.0.2.30", port: 5070 }]);
    await flush();
    expect(bed.requestsTo("192.0.2.30", "INVITE")).toHaveLength(1);
    expect(bed.requestsTo("192.0.2.30", "INVITE")[0]!.dest.port).toBe(5070);
  });

  it("a CANCEL meanwhile: the INVITE is answered 487 once the resolution ends, and nothing is sent downstream", async () => {
    const { bed, finish } = bedWithPendingResolution();
    const invite = request({ uri: "sip:bob@svc.test" });
    bed.receiveRequest(invite);
    bed.receiveRequest(cancelFor(invite));
    finish([{ proto: "udp", ip: "192.0.2.30", port: 5070 }]);
    await flush();
    expect(bed.sent.filter((s) => s.msg.kind === "request")).toEqual([]);
    expect(bed.statuses()).toContain(487);
  });
});
