import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { headerValues, loadScript, loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";
import { ROOT } from "./cli.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

async function example(name: string, opts: Parameters<typeof loadScript>[1] = {}): Promise<ScriptHarness> {
  const h = await loadScript(path.join(ROOT, "examples", name), opts);
  harnesses.push(h);
  return h;
}

async function script(source: string, opts: Parameters<typeof loadScript>[1] = {}, filename = "inline.js"): Promise<ScriptHarness> {
  const h = await loadScriptSource(source, filename, opts);
  harnesses.push(h);
  return h;
}

describe("stateless forward with record_route", () => {
  it("puts our Record-Route above the headers of the forwarded request, once per forward", async () => {
    const h = await script(`function ksr_request_route() {
      KSR.rr.record_route();
      KSR.rr.add_rr_param(";nat=yes");
      KSR.forward_uri("sip:127.0.0.1:5080");
    }`);
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1:5060" });
    expect(r.forwarded).toHaveLength(1);
    const rr = headerValues(r.forwarded[0]!, "record-route");
    expect(rr).toHaveLength(1);
    expect(rr[0]).toMatch(/^<sip:127\.0\.0\.1;lr;ftag=[^;>]+;nat=yes>$/);
  });
});

describe("loadScript + send: the basic proxy example", () => {
  it("forwards a call for a known local user to its address, R-URI rewritten, our Via on top", async () => {
    const h = await example("basic-proxy.js");
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@127.0.0.1:5060" });
    expect(r.replies).toEqual([]);
    expect(r.forwarded).toHaveLength(1);
    const f = r.forwarded[0]!;
    expect(f.kind).toBe("request");
    expect(f.destination).toEqual({ proto: "udp", ip: "127.0.0.1", port: 5080 });
    expect(f.requestUri).toBe("sip:bob@127.0.0.1:5080");
    const vias = headerValues(f, "via");
    expect(vias).toHaveLength(2);
    expect(vias[0]).toMatch(/^SIP\/2\.0\/UDP 127\.0\.0\.1:5060;branch=z9hG4bK/);
    // force_rport: the received Via is stamped with received and rport (RFC 3581 §4).
    expect(vias[1]).toMatch(/;received=192\.0\.2\.10;rport=5060$/);
    expect(f.added).toContain(`Via: ${vias[0]}`);
    expect(f.added).toContain("Max-Forwards: 69");
    expect(f.removed).toContain("Max-Forwards: 70");
    expect(r.exited).toBe(true);
    expect(r.dropped).toBe(false);
    expect(r.ruri).toBe("sip:bob@127.0.0.1:5080");
  });

  it("answers a keepalive OPTIONS with 200 to the source address, with a To tag", async () => {
    const h = await example("basic-proxy.js");
    const r = await h.send({ method: "OPTIONS", ruri: "sip:127.0.0.1:5060" });
    expect(r.forwarded).toEqual([]);
    expect(r.replies.map((x) => [x.status, x.reason])).toEqual([[200, "Keepalive"]]);
    expect(r.replies[0]!.destination).toEqual({ proto: "udp", ip: "192.0.2.10", port: 5060 });
    expect(headerValues(r.replies[0]!, "To")[0]).toMatch(/;tag=\w+/);
    expect(r.replies[0]!.raw).toMatch(/^SIP\/2\.0 200 Keepalive\r\n/);
  });

  it("takes raw text with placeholders, dedented and with CRLF line ends", async () => {
    const h = await example("basic-proxy.js");
    const r = await h.send(`REGISTER sip:127.0.0.1:{{local_port}} SIP/2.0
      Via: SIP/2.0/{{PROTO}} {{source_ip}}:{{source_port}};branch={{branch}}
      Max-Forwards: 70
      From: <sip:alice@127.0.0.1>;tag={{fromtag}}
      To: <sip:alice@127.0.0.1>
      Call-ID: {{callid}}
      CSeq: 1 REGISTER
    `);
    expect(r.sent).toMatch(/^REGISTER sip:127\.0\.0\.1:5060 SIP\/2\.0\r\nVia: SIP\/2\.0\/UDP 192\.0\.2\.10:5060;branch=z9hG4bK\w+\r\n/);
    expect(r.sent).toContain("Content-Length: 0\r\n\r\n");
    expect(r.replies.map((x) => x.status)).toEqual([501]);
  });

  it("refuses an unknown placeholder instead of sending it as text", async () => {
    const h = await example("basic-proxy.js");
    await expect(h.send("OPTIONS sip:{{locl_ip}} SIP/2.0\n")).rejects.toThrow(/unknown placeholder \{\{locl_ip\}\}/);
  });

  it("answers over TCP on the connection's address", async () => {
    const h = await example("basic-proxy.js");
    const r = await h.send({ method: "INVITE", ruri: "sip:nobody@127.0.0.1" }, { source: { proto: "tcp", ip: "192.0.2.20", port: 40000 } });
    expect(r.replies.map((x) => [x.status, x.destination])).toEqual([[404, { proto: "tcp", ip: "192.0.2.20", port: 40000 }]]);
  });

  it("runs the TypeScript example the same way", async () => {
    const h = await example("typescript-proxy.ts");
    const call = await h.send({ method: "INVITE", ruri: "sip:alice@127.0.0.1" });
    expect(call.forwarded.map((f) => [f.destination, f.requestUri])).toEqual([[{ proto: "udp", ip: "127.0.0.1", port: 5070 }, "sip:alice@127.0.0.1:5070"]]);
    const relay = await h.send({ method: "INVITE", ruri: "sip:carol@example.org", from: "<sip:mallory@example.net>;tag=1" });
    expect(relay.replies.map((x) => [x.status, x.reason])).toEqual([[403, "Not relaying"]]);
  });
});

describe("loadScript: what the harness records", () => {
  it("records log lines, flags, drop and the route's R-URI and $du", async () => {
    const h = await script(`function ksr_request_route() {
      KSR.info("routing " + KSR.kx.get_method() + "\\n");
      KSR.setflag(3);
      KSR.setflag(17);
      KSR.setdsturi("sip:127.0.0.1:5999");
      KSR.x.drop();
    }`);
    const r = await h.send({ method: "MESSAGE", ruri: "sip:bob@127.0.0.1" });
    expect(r.logs).toEqual([{ level: "info", text: "routing MESSAGE" }]);
    expect(r.flags).toEqual([3, 17]);
    expect(r.dropped).toBe(true);
    expect(r.exited).toBe(true);
    expect(r.dstUri).toBe("sip:127.0.0.1:5999");
    expect(r.replies).toEqual([]);
    expect(r.forwarded).toEqual([]);
  });

  it("applies the server's error policy: a throwing route gets 500 and the error is reported", async () => {
    const h = await script("function ksr_request_route() {\n  throw new Error('boom');\n}\n", {}, "thrower.js");
    const r = await h.send({ method: "INVITE" });
    expect(r.replies.map((x) => x.status)).toEqual([500]);
    expect(r.error).toMatchObject({ kind: "exception", message: "Error: boom", location: "thrower.js:2" });
    expect(r.logs.some((l) => l.level === "err" && l.text.includes("boom"))).toBe(true);
  });

  it("answers a malformed request 400 without running the route", async () => {
    const h = await script("function ksr_request_route() { KSR.sl.sl_send_reply(200, 'OK'); }");
    const r = await h.send("OPTIONS sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\nCSeq: x OPTIONS\n", {});
    expect(r.route).toBeUndefined();
    expect(r.logs.map((l) => l.text)).toEqual(["malformed request from udp:192.0.2.10:5060: Missing From; answering 400"]);
    expect(r.replies.map((x) => x.status)).toEqual([400]);
  });

  it("runs ksr_reply_route for replies and forwards them by the next Via unless dropped", async () => {
    const h = await script(`function ksr_request_route() {}
      function ksr_reply_route() {
        if (KSR.kx.get_status() == 183) KSR.x.drop();
      }`);
    const reply = (status: number, reason: string) => `SIP/2.0 ${status} ${reason}
      Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsl1
      Via: SIP/2.0/UDP 192.0.2.30:5062;branch=z9hG4bKc1;received=192.0.2.31
      From: <sip:alice@example.com>;tag=1
      To: <sip:bob@example.org>;tag=2
      Call-ID: {{callid}}
      CSeq: 1 INVITE
    `;
    const ok = await h.send(reply(200, "OK"));
    expect(ok.route).toBe("ksr_reply_route");
    expect(ok.replies).toEqual([]);
    expect(ok.forwarded.map((f) => [f.kind, f.status, f.destination])).toEqual([["response", 200, { proto: "udp", ip: "192.0.2.31", port: 5062 }]]);
    expect(ok.forwarded[0]!.removed).toEqual(["Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsl1"]);
    const dropped = await h.send(reply(183, "Session Progress"));
    expect(dropped.dropped).toBe(true);
    expect(dropped.forwarded).toEqual([]);
  });

  it("resolves forward targets by name from the hosts table, and logs a name it does not know", async () => {
    const source = `function ksr_request_route() { KSR.forward_uri(KSR.pv.get("$hdr(X-Target)")); }`;
    const h = await script(source, { hosts: { "gw.example.test": "198.51.100.7" } });
    const known = await h.send({ method: "INVITE", headers: { "X-Target": "sip:gw.example.test:5099" } });
    expect(known.forwarded.map((f) => f.destination)).toEqual([{ proto: "udp", ip: "198.51.100.7", port: 5099 }]);
    const unknown = await h.send({ method: "INVITE", headers: { "X-Target": "sip:other.example.test" } });
    expect(unknown.forwarded).toEqual([]);
    expect(unknown.logs.map((l) => l.text).join("\n")).toMatch(/cannot resolve other\.example\.test/);
  });
});

describe("loadScript: clock and state", () => {
  it("gives the script the harness clock, which tests set and advance", async () => {
    const h = await script(`function ksr_request_route() { KSR.info("now " + KSR.pv.get("$TS")); }`, { now: 1_000_000_000_000 });
    expect((await h.send({})).logs.map((l) => l.text)).toEqual(["now 1000000000"]);
    h.clock.advance(90_000);
    expect((await h.send({})).logs.map((l) => l.text)).toEqual(["now 1000000090"]);
    h.clock.set(2_000_000_000_000);
    expect(h.clock.now()).toBe(2_000_000_000_000);
    expect((await h.send({})).logs.map((l) => l.text)).toEqual(["now 2000000000"]);
  });

  it("seeds $var and $shv, keeps them across messages, and exposes them to the test", async () => {
    const source = `function ksr_request_route() {
      KSR.pv.seti("$var(count)", KSR.pv.get("$var(count)") + 1);
      KSR.info(KSR.pv.get("$shv(greeting)") + " " + KSR.pv.get("$var(count)"));
    }`;
    const h = await script(source, { vars: { count: 41 }, sharedVars: { greeting: "hello" } });
    expect((await h.send({})).logs.map((l) => l.text)).toEqual(["hello 42"]);
    expect(h.state.vars.get("count")).toBe(42);
    h.state.sharedVars.set("greeting", "bye");
    expect((await h.send({})).logs.map((l) => l.text)).toEqual(["bye 43"]);
  });

  it("calls the seed hook with the tenant state before any message", async () => {
    const h = await script(`function ksr_request_route() { KSR.info(KSR.pv.get("$var(seeded)")); }`, {
      tenant: "acme",
      seed: (state) => {
        expect(state.id).toBe("acme");
        state.vars.set("seeded", "yes");
      },
    });
    expect((await h.send({})).logs.map((l) => l.text)).toEqual(["yes"]);
  });

  it("rejects a script that does not load, with file:line", async () => {
    await expect(loadScriptSource("function ksr_request_route() {\n  if (x {\n}\n", "broken.js")).rejects.toThrow(/^broken\.js:2:\d+: /);
  });
});

describe("the ksr-sandbox/testing package entry", () => {
  it("is importable by package name and runs a script", async () => {
    const { spawnSync } = await import("node:child_process");
    const built = spawnSync(process.execPath, ["scripts/build-testing.mjs", "--no-types"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(built.stderr).toBe("");
    expect(built.status).toBe(0);
    const program = [
      'import { loadScript } from "ksr-sandbox/testing";',
      'const h = await loadScript("examples/basic-proxy.js");',
      'const r = await h.send({ method: "OPTIONS", ruri: "sip:127.0.0.1:5060" });',
      "h.close();",
      "console.log(r.replies.map((x) => `${x.status} ${x.reason}`).join());",
    ].join("\n");
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", program], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("200 Keepalive\n");
  }, 120_000);
});
