/**
 * ksr_onsend_route (Kamailio core/onsend.c, KEMI callback
 * kemi.onsend_route_callback): it runs before a request leaves, for a
 * stateless forward and for each branch of a stateful relay, with $snd
 * showing the send; KSR.x.drop() there stops that send.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

async function script(source: string, opts: Parameters<typeof loadScriptSource>[2] = {}): Promise<ScriptHarness> {
  const h = await loadScriptSource(source, "onsend.js", opts);
  harnesses.push(h);
  return h;
}

/** Logs what $snd shows, and drops sends to port 5099. */
const ONSEND = `
function ksr_onsend_route() {
  KSR.info("onsend " + KSR.pv.get("$snd(ip)") + " " + KSR.pv.get("$snd(port)") + " " + KSR.pv.get("$snd(proto)") + " " +
    KSR.pv.get("$snd(sproto)") + " " + KSR.pv.get("$snd(af)") + " len=" + KSR.pv.get("$snd(len)") + " " +
    (KSR.pv.get("$snd(buf)").indexOf("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=") > 0 ? "our-via" : "no-via") + " " + KSR.pv.get("$rm"));
  if (KSR.pv.get("$snd(port)") == 5099) KSR.x.drop();
}
`;

function onsendLines(logs: readonly { text: string }[]): string[] {
  return logs.map((l) => l.text).filter((t) => t.startsWith("onsend "));
}

describe("ksr_onsend_route on a stateless forward", () => {
  it("sees the destination and the request as it will be written, and the forward goes out", async () => {
    const h = await script(`${ONSEND}
      function ksr_request_route() { KSR.info("forward " + KSR.forward_uri("sip:127.0.0.1:5080")); }`);
    const r = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(r.forwarded).toHaveLength(1);
    const lines = onsendLines(r.logs);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`onsend 127.0.0.1 5080 1 udp 2 len=${r.forwarded[0]!.raw.length} our-via MESSAGE`);
    expect(r.logs.map((l) => l.text)).toContain("forward 1");
  });

  it("KSR.x.drop() there stops the send and the forward reports failure", async () => {
    const h = await script(`${ONSEND}
      function ksr_request_route() { KSR.info("forward " + KSR.forward_uri("sip:127.0.0.1:5099")); }`);
    const r = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(r.forwarded).toEqual([]);
    expect(onsendLines(r.logs)).toHaveLength(1);
    expect(r.logs.map((l) => l.text)).toContain("forward -1");
    // The request route itself was not dropped.
    expect(r.dropped).toBe(false);
  });

  it("$snd is null outside an onsend route", async () => {
    const h = await script(`function ksr_request_route() { KSR.info("snd " + KSR.pv.get("$snd(ip)") + " " + KSR.pv.getw("$snd(port)")); }`);
    const r = await h.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(r.logs.map((l) => l.text)).toContain("snd null <null>");
  });

  it("is not run for a reply forwarded by its Via (Kamailio's onsend_route_reply is off)", async () => {
    const h = await script(`${ONSEND}
      function ksr_request_route() { KSR.forward_uri("sip:127.0.0.1:5080"); }`);
    const r = await h.send(
      [
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKours",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKcaller",
        "From: <sip:a@example.com>;tag=1",
        "To: <sip:b@example.com>;tag=2",
        "Call-ID: onsend-reply",
        "CSeq: 1 MESSAGE",
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      { raw: true },
    );
    expect(r.forwarded).toHaveLength(1);
    expect(onsendLines(r.logs)).toEqual([]);
  });
});

describe("ksr_onsend_route on a stateful relay", () => {
  it("runs for each branch; a dropped branch is not sent and fails like a send failure, the others go", async () => {
    const h = await script(
      `${ONSEND}
      function ksr_request_route() {
        KSR.corex.append_branch_uri("sip:carol@127.0.0.1:5099");
        KSR.info("relay " + KSR.tm.t_relay());
      }`,
      { downstream: { "udp:127.0.0.1:5080": [{ status: 200, after: 0 }] } },
    );
    const r = await h.send({ method: "MESSAGE", ruri: "sip:bob@127.0.0.1:5080" });
    const lines = onsendLines(r.logs);
    expect(lines.map((l) => l.split(" ").slice(1, 3).join(":"))).toEqual(["127.0.0.1:5080", "127.0.0.1:5099"]);
    expect(r.forwarded.filter((f) => f.kind === "request").map((f) => f.destination.port)).toEqual([5080]);
    expect(r.logs.map((l) => l.text)).toContain("relay 1");
    expect(r.replies.map((x) => x.status)).toEqual([200]);
  });

  it("with every branch dropped, t_relay fails as when no branch could be sent", async () => {
    const h = await script(`${ONSEND}
      function ksr_request_route() {
        var r = KSR.tm.t_relay();
        KSR.info("relay " + r);
        if (r < 0) KSR.sl.sl_reply_error();
      }`);
    const r = await h.send({ method: "MESSAGE", ruri: "sip:bob@127.0.0.1:5099" });
    expect(r.forwarded.filter((f) => f.kind === "request")).toEqual([]);
    expect(r.logs.map((l) => l.text)).toContain("relay -1");
    // sl_reply_error: the send error (Kamailio's E_SEND, 477).
    expect(r.replies.map((x) => `${x.status} ${x.reason}`)).toEqual(["477 Unfortunately error on sending to next hop occurred"]);
  });
});

describe("kemi.*_route_callback settings and the error policy", () => {
  const RESPONSE = [
    "SIP/2.0 200 OK",
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKours",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKcaller",
    "From: <sip:a@example.com>;tag=1",
    "To: <sip:b@example.com>;tag=2",
    "Call-ID: callbacks",
    "CSeq: 1 MESSAGE",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");

  it("kemi.onsend_route_callback renames the onsend route; none turns it off", async () => {
    const source = `
      function my_onsend() { KSR.info("my_onsend " + KSR.pv.get("$snd(port)")); }
      function ksr_onsend_route() { KSR.info("default onsend"); }
      function ksr_request_route() { KSR.forward_uri("sip:127.0.0.1:5080"); }`;
    const renamed = await script(source, { settings: { kemi: { onsend: "my_onsend", reply: "ksr_reply_route", event: "" } } });
    const r1 = await renamed.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(r1.logs.map((l) => l.text)).toEqual(["my_onsend 5080"]);
    const off = await script(source, { settings: { kemi: { onsend: "", reply: "ksr_reply_route", event: "" } } });
    const r2 = await off.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(r2.logs.map((l) => l.text)).toEqual([]);
    expect(r2.forwarded).toHaveLength(1);
  });

  it("kemi.reply_route_callback renames the reply route (a drop there keeps the response); none turns it off", async () => {
    const source = `
      function my_reply() { KSR.info("my_reply " + KSR.kx.get_status()); KSR.x.drop(); }
      function ksr_reply_route() { KSR.info("default reply route"); }
      function ksr_request_route() {}`;
    const renamed = await script(source, { settings: { kemi: { onsend: "ksr_onsend_route", reply: "my_reply", event: "" } } });
    const r1 = await renamed.send(RESPONSE, { raw: true });
    expect(r1.logs.map((l) => l.text)).toEqual(["my_reply 200"]);
    expect(r1.forwarded).toEqual([]);
    const off = await script(source, { settings: { kemi: { onsend: "ksr_onsend_route", reply: "", event: "" } } });
    const r2 = await off.send(RESPONSE, { raw: true });
    expect(r2.logs.map((l) => l.text)).toEqual([]);
    expect(r2.forwarded).toHaveLength(1);
  });

  it('a route exception gets the error policy\'s reply (500 by default), or none with onError "none" (as app_jsdt)', async () => {
    const source = `function ksr_request_route() { throw new Error("boom"); }`;
    const byDefault = await script(source);
    const r1 = await byDefault.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(r1.replies.map((x) => `${x.status} ${x.reason}`)).toEqual(["500 Server Internal Error"]);
    const other = await script(source, { settings: { onError: { status: 503, reason: "Service Unavailable" } } });
    expect((await other.send({ method: "MESSAGE", ruri: "sip:bob@example.com" })).replies.map((x) => x.status)).toEqual([503]);
    const none = await script(source, { settings: { onError: "none" } });
    const r3 = await none.send({ method: "MESSAGE", ruri: "sip:bob@example.com" });
    expect(r3.error).toMatchObject({ kind: "exception" });
    expect(r3.replies).toEqual([]);
  });
});

describe("kemi.event_route_callback", () => {
  it('is called once, at load, with "core:worker-one-init" on a faked request (is_faked_msg 1), before any message', async () => {
    const h = await script(
      `function ksr_core_event(evname) {
        KSR.info("event " + evname + " faked=" + KSR.corex.is_faked_msg() + " args=" + arguments.length);
        KSR.pv.sets("$shv(started)", evname);
      }
      function ksr_request_route() { KSR.info("request faked=" + KSR.corex.is_faked_msg()); KSR.sl.sl_send_reply(200, KSR.pv.get("$shv(started)")); }`,
      { settings: { kemi: { onsend: "ksr_onsend_route", reply: "ksr_reply_route", event: "ksr_core_event" } } },
    );
    const r = await h.send({ method: "OPTIONS", ruri: "sip:bob@example.com" });
    expect(r.replies.map((x) => x.reason)).toEqual(["core:worker-one-init"]);
    expect(r.logs.map((l) => l.text)).toEqual(["request faked=-1"]);
    expect(h.state.sharedVars.get("started")).toBe("core:worker-one-init");
  });

  it("is not called without the setting (Kamailio's default is none)", async () => {
    const h = await script(`function ksr_core_event(evname) { KSR.pv.sets("$shv(started)", evname); }
      function ksr_request_route() { KSR.sl.sl_send_reply(200, "started=" + KSR.pv.getw("$shv(started)")); }`);
    const r = await h.send({ method: "OPTIONS", ruri: "sip:bob@example.com" });
    expect(r.replies.map((x) => x.reason)).toEqual(["started=0"]); // $shv starts at 0
  });
});
