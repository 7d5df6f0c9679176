/**
 * `ksr run --tenants --isolation process-per-tenant`, each tenant in a
 * worker process of its own: what no in-process design survives — V8 aborting the
 * process from inside a script — ends one tenant's worker only; the other
 * tenant answers throughout, and the dead one is restarted.
 */
import { readdirSync } from "node:fs";
import { getPriority } from "node:os";
import { describe, expect, it } from "vitest";
import { TcpPeer, buildRequest, buildResponseTo, headerValue, headerValues, reasonOf, statusOf } from "../e2e/sip-client.js";
import { tenantDir } from "../tenants/fixtures.js";
import { GOOD_EVIL_TENANTS, ask, expectOptions200, hostile } from "./harness.js";
import { cliTestbed } from "./cli-harness.js";

const { startKsr, peer } = cliTestbed();

const GOOD = `function ksr_request_route() { KSR.sl.sl_send_reply(200, "good"); }\n`;

function tenantsFile(evil: string, tenants = GOOD_EVIL_TENANTS): string {
  const dir = tenantDir();
  dir.write("good.js", GOOD);
  dir.write("evil.js", evil);
  return dir.write("tenants.yaml", tenants);
}

describe("tenants in worker processes", () => {
  it("a script that makes V8 abort ends only its own worker: the other tenant answers throughout, the worker is restarted", async () => {
    const ksr = await startKsr(["--tenants", tenantsFile(hostile('const a = "ab".repeat(2 ** 27).split("");')), "--db", ":memory:", "--isolation", "process-per-tenant"]);
    const good = await peer();
    const evil = await peer();
    expect(await expectOptions200(evil, ksr.udpPort, "evil.example")).toBe("evil ok");

    await evil.send(buildRequest({ method: "INFO", uri: "sip:x@evil.example", viaPort: evil.port }), ksr.udpPort);
    // While the evil worker thrashes and aborts, and while it restarts, good answers every time.
    const deadline = Date.now() + 20_000;
    let answered = 0;
    while (!/tenant worker process ended unexpectedly \(signal SIG(ABRT|TRAP)\)/.test(ksr.stderr())) {
      if (Date.now() > deadline) throw new Error(`the evil worker did not abort:\n${ksr.stderr()}`);
      expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("good");
      answered++;
    }
    expect(answered).toBeGreaterThan(0);
    expect(ksr.stderr()).toMatch(/CRIT \[evil\] tenant worker process ended unexpectedly .*restarting in \d+ ms \(other tenants are not affected\)/);
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("good");

    // The restarted worker runs the script again (503 Retry-After while it is not back yet).
    const until = Date.now() + 15_000;
    let last = { status: 0, reason: "" };
    while (Date.now() < until) {
      last = await ask(evil, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@evil.example" }, 5000);
      if (last.status === 200) break;
      expect(last.status).toBe(503);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last).toMatchObject({ status: 200, reason: "evil ok" });

    ksr.child.kill("SIGUSR2");
    await ksr.waitFor(/INFO \[counters\] tenant evil: process state=running pid=\d+ restarts=1 .*last-exit=signal-SIG(ABRT|TRAP)/);
    await ksr.waitFor(/INFO \[counters\] tenant good: process state=running pid=\d+ restarts=0 /);
    // The server itself never restarted.
    expect(ksr.stderr()).not.toMatch(/server process ended unexpectedly/);
    expect(await ksr.stop()).toBe(0);
  }, 90_000);

  it("an endless loop holds only its own worker: the other tenant's answers do not wait for its timeouts", async () => {
    const ksr = await startKsr(["--tenants", tenantsFile(hostile("while (true) {}")), "--db", ":memory:", "--isolation", "process-per-tenant"]);
    const good = await peer();
    const evil = await peer();
    // Five looping requests queue 1.5 s of timeouts in the evil worker.
    for (let i = 0; i < 5; i++) await evil.send(buildRequest({ method: "INFO", uri: "sip:x@evil.example", viaPort: evil.port }), ksr.udpPort);
    // The good tenant answers while they run: each answer well inside one evil timeout.
    for (let i = 0; i < 5; i++) expect(await expectOptions200(good, ksr.udpPort, "good.example", 250)).toBe("good");
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(statusOf((await evil.next(5000)).data));
    expect(statuses).toEqual([500, 500, 500, 500, 500]);
    await ksr.waitFor(/ERR \[evil\] tenant=evil route=ksr_request_route .* timeout/);
    // Demoted at its first timeout, the evil worker yields the CPU; the good one keeps its priority.
    await ksr.waitFor(/NOTICE \[evil\] tenant evil demoted \(route timed out\): its worker \(pid \d+\) now runs at nice 10/);
    const evilPid = Number(/its worker \(pid (\d+)\) now runs at nice 10/.exec(ksr.stderr())![1]);
    const goodPid = Number(/INFO \[good\] tenant worker running \(pid (\d+)\)/.exec(ksr.stderr())![1]);
    // Every thread of it: the demoted script runs on one of isolated-vm's threads.
    const threads = readdirSync(`/proc/${evilPid}/task`).map(Number);
    expect(threads.length).toBeGreaterThan(1);
    expect(threads.map((tid) => getPriority(tid))).toEqual(threads.map(() => 10));
    expect(getPriority(goodPid)).toBe(getPriority(ksr.child.pid!));
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("a stateful relay in a worker gets its responses back: the front routes them by the tenant on our Via", async () => {
    const dir = tenantDir();
    const uas = await peer();
    dir.write("relay.js", `function ksr_request_route() {\n  KSR.pv.sets("$du", "sip:127.0.0.1:${uas.port}");\n  KSR.tm.t_relay();\n}\n`);
    dir.write("other.js", GOOD);
    const file = dir.write(
      "tenants.yaml",
      `tenants:\n  - id: other\n    script: other.js\n    match: { domains: [other.example] }\n  - id: relay\n    script: relay.js\n    egress: { allow: [127.0.0.0/8] }\n    match: { domains: [relay.example] }\n`,
    );
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--isolation", "process-per-tenant"]);
    const uac = await peer();
    // UTF-8 bytes in the body cross front → worker → front unchanged (SIP text is handled as latin1 strings).
    const body = Buffer.from("v=0\r\ns=héllo ☃\r\n", "utf8").toString("latin1");
    const invite = buildRequest({ method: "INVITE", uri: "sip:bob@relay.example", viaPort: uac.port, body, headers: ["Content-Type: application/sdp"] });
    await uac.send(invite, ksr.udpPort);
    expect(statusOf((await uac.next(3000)).data)).toBe(100); // the transaction's 100 Trying (RFC 3261 §16.2)
    const forwarded = (await uas.next(3000)).data;
    expect(forwarded.startsWith("INVITE sip:bob@relay.example SIP/2.0")).toBe(true);
    expect(headerValues(forwarded, "via")[0]).toMatch(/;ksr-tenant=relay/);
    expect(forwarded.slice(forwarded.indexOf("\r\n\r\n") + 4)).toBe(body);

    await uas.send(buildResponseTo(forwarded, 180, "Ringing"), ksr.udpPort);
    const ringing = (await uac.next(3000)).data;
    expect(statusOf(ringing)).toBe(180);
    await uas.send(buildResponseTo(forwarded, 486, "Busy Here"), ksr.udpPort);
    const ack = (await uas.next(3000)).data; // the proxy's hop-by-hop ACK for the 486 (RFC 3261 §17.1.1.3)
    expect(ack.startsWith("ACK ")).toBe(true);
    const busy = (await uac.next(3000)).data;
    expect(statusOf(busy)).toBe(486);
    expect(reasonOf(busy)).toBe("Busy Here");
    // Our Via is gone from what the UAC gets; the UAC's own is on top.
    expect(headerValues(busy, "via")[0]).toContain(`127.0.0.1:${uac.port}`);
    expect(headerValue(busy, "via")).not.toMatch(/ksr-tenant/);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("an ordinary heap bomb is caught in the worker: its isolate is rebuilt, the worker keeps running", async () => {
    // A route limit far above the time the bomb needs to reach 32 MB, so that
    // on a loaded machine it still ends by its heap limit, not by its time limit.
    const evilWithTime = GOOD_EVIL_TENANTS.replace("routeTimeoutMs: 300", "routeTimeoutMs: 10000");
    const ksr = await startKsr(["--tenants", tenantsFile(hostile("const hoard = []; for (;;) hoard.push(new Array(1 << 20).fill(hoard.length));"), evilWithTime), "--db", ":memory:", "--isolation", "process-per-tenant"]);
    const good = await peer();
    const evil = await peer();
    const bombed = await ask(evil, ksr.udpPort, { method: "INFO", uri: "sip:x@evil.example" }, 10_000);
    expect(bombed.status).toBe(500);
    expect(await expectOptions200(evil, ksr.udpPort, "evil.example")).toBe("evil ok");
    expect(await expectOptions200(good, ksr.udpPort, "good.example")).toBe("good");
    ksr.child.kill("SIGUSR2");
    await ksr.waitFor(/INFO \[counters\] tenant evil: process state=running pid=\d+ restarts=0 /);
    await ksr.waitFor(/INFO \[counters\] tenant evil: mode=\w+ messages=2 route-errors=1 timeouts=0 oom-restarts=1 /);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("answers over the TCP connection a request came in on, through the worker", async () => {
    const ksr = await startKsr(["--tenants", tenantsFile(hostile("")), "--db", ":memory:", "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0"]);
    const tcpPort = Number(/tcp:127\.0\.0\.1:(\d+)/.exec(ksr.stderr())![1]);
    const conn = await TcpPeer.connect(tcpPort);
    try {
      await conn.write(buildRequest({ method: "OPTIONS", uri: "sip:x@good.example", transport: "TCP", viaPort: conn.localPort }));
      const answer = await conn.next(5000);
      expect(statusOf(answer)).toBe(200);
      expect(reasonOf(answer)).toBe("good");
    } finally {
      conn.close();
    }
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("refuses to start when a tenant's script does not load, naming its file and line", async () => {
    const dir = tenantDir();
    dir.write("good.js", GOOD);
    dir.write("broken.js", "function ksr_request_route() {\n  KSR.sl.sl_send_reply(200, \"x\")\n  ++;\n}\n");
    const file = dir.write(
      "tenants.yaml",
      `tenants:\n  - id: good\n    script: good.js\n    match: { domains: [good.example] }\n  - id: broken\n    script: broken.js\n    match: { domains: [broken.example] }\n`,
    );
    await expect(startKsr(["--tenants", file, "--db", ":memory:", "--isolation", "process-per-tenant"])).rejects.toThrow(/exited with 1[\s\S]*broken\.js:3:\d+[\s\S]*tenant broken: worker process ended before it was ready/);
  }, 60_000);
});
