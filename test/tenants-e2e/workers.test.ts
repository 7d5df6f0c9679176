/**
 * `ksr run script.js --workers 2` end to end over UDP and TCP on 127.0.0.1: the
 * front posts each call to worker hash(Call-ID) mod 2 (host/tenants/
 * affinity.ts), so a call's retransmission, CANCEL, ACKs and in-dialog
 * requests find its transactions; a REGISTER handled by one worker is found
 * by `lookup` on the other; over TCP both workers answer on the caller's
 * one connection, which the front keeps; htables and $shv are one for both
 * workers. Every response and relayed request carries the
 * pid ($pp) of the worker that ran the script, so the tests see which
 * worker served what.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { callIdOwner } from "../../host/tenants/affinity.js";
import { headerValue, statusOf, TcpPeer, type UdpPeer } from "../e2e/sip-client.js";
import { tenantDir } from "../tenants/fixtures.js";
import { cliTestbed, type RunningKsr } from "./cli-harness.js";

const { startKsr, peer, cli } = cliTestbed();

/**
 * A registrar and transaction-stateful relay in the style of Kamailio's
 * default script, marking what it relays or answers with its worker's pid.
 * The ACK of a 2xx is relayed only when it matches the INVITE's transaction
 * (t_check_trans() 1), so it reaches the callee only on the INVITE's worker.
 */
const SCRIPT = `
function ksr_request_route() {
  var pid = KSR.pv.get("$pp");
  KSR.hdr.append_to_reply("X-Worker: " + pid + "\\r\\n");
  if (KSR.is_REGISTER()) {
    KSR.registrar.save("location", 0);
    return;
  }
  KSR.hdr.append("X-Worker: " + pid + "\\r\\n");
  if (KSR.is_CANCEL()) {
    if (KSR.tm.t_check_trans() > 0) KSR.tm.t_relay();
    return;
  }
  if (KSR.siputils.has_totag() > 0) {
    if (KSR.is_ACK()) {
      if (KSR.tm.t_check_trans() > 0) KSR.tm.t_relay();
      return;
    }
    KSR.tm.t_relay();
    return;
  }
  if (!KSR.is_ACK()) {
    if (KSR.tmx.t_precheck_trans() > 0) {
      KSR.tm.t_check_trans();
      return;
    }
    if (KSR.tm.t_check_trans() == 0) return;
  }
  if (KSR.registrar.lookup("location") < 0) {
    KSR.sl.sl_send_reply(404, "Not Found");
    return;
  }
  KSR.tm.t_relay();
}
`;

/** The first Call-ID "<prefix>-<n>@test" that worker `owner` of two owns. */
function callIdOn(owner: number, prefix: string): string {
  for (let n = 0; n < 1000; n++) {
    const id = `${prefix}-${n}@test`;
    if (callIdOwner(id, 2) === owner) return id;
  }
  throw new Error(`no Call-ID for worker ${owner}`);
}

interface Leg {
  readonly callId: string;
  readonly from: string;
  readonly to: string;
  readonly via: string;
}

function request(method: string, uri: string, leg: Leg, cseq: string, extra: string[] = []): string {
  return (
    [
      `${method} ${uri} SIP/2.0`,
      `Via: ${leg.via}`,
      "Max-Forwards: 70",
      `From: ${leg.from}`,
      `To: ${leg.to}`,
      `Call-ID: ${leg.callId}`,
      `CSeq: ${cseq}`,
      ...extra,
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

/** A response to a received request, echoing its Vias, From, To (with this To tag when it has none), Call-ID and CSeq. */
function answer(received: string, status: number, reason: string, toTag: string): string {
  const vias = received
    .slice(0, received.indexOf("\r\n\r\n"))
    .split("\r\n")
    .filter((l) => /^via:/i.test(l));
  const to = headerValue(received, "to")!;
  return (
    [
      `SIP/2.0 ${status} ${reason}`,
      ...vias,
      `From: ${headerValue(received, "from")}`,
      `To: ${to.includes(";tag=") ? to : `${to};tag=${toTag}`}`,
      `Call-ID: ${headerValue(received, "call-id")}`,
      `CSeq: ${headerValue(received, "cseq")}`,
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

/** The next message that is not a 100 Trying. */
async function nextNot100(p: UdpPeer): Promise<string> {
  for (let i = 0; i < 5; i++) {
    const m = await p.next(3000);
    if (statusOf(m.data) !== 100) return m.data;
  }
  throw new Error("only 100 Trying received");
}

async function startWorkers(): Promise<{ ksr: RunningKsr; cleanup: () => void }> {
  const dir = tenantDir();
  const script = dir.write("relay.js", SCRIPT);
  const ksr = await startKsr([script, "--workers", "2", "--db", `${dir.dir}/ksr.sqlite`, "--no-supervise"], {
    ready: /running .* in 2 worker processes on udp:127\.0\.0\.1:(\d+)/,
  });
  return { ksr, cleanup: () => rmSync(dir.dir, { recursive: true, force: true }) };
}

/** The callee (bob) registers its peer's address through the worker owning `callId`; returns that worker's pid. */
async function registerBob(ksr: RunningKsr, callee: UdpPeer, callId: string): Promise<string> {
  const leg: Leg = {
    callId,
    from: "<sip:bob@workers.example>;tag=r1",
    to: "<sip:bob@workers.example>",
    via: `SIP/2.0/UDP 127.0.0.1:${callee.port};branch=z9hG4bK-reg-${callId.replace(/[^A-Za-z0-9-]/g, "")}`,
  };
  await callee.send(request("REGISTER", "sip:workers.example", leg, "1 REGISTER", [`Contact: <sip:bob@127.0.0.1:${callee.port}>`, "Expires: 600"]), ksr.udpPort);
  const ok = (await callee.next()).data;
  expect(statusOf(ok)).toBe(200);
  return headerValue(ok, "x-worker")!;
}

// Each test starts a front and two worker processes: on a loaded machine that alone can pass the default 5 s.
describe("ksr run --workers 2", { timeout: 30_000 }, () => {
  it("over UDP: finds on one worker the registration another took; a call's 2xx ACK and the callee's BYE cross the proxy", async () => {
    const { ksr, cleanup } = await startWorkers();
    try {
      const caller = await peer();
      const callee = await peer();
      // Before bob registers, the call's worker has looked him up (and opened its cache): not found.
      const early: Leg = {
        callId: callIdOn(1, "early"),
        from: "<sip:alice@workers.example>;tag=a0",
        to: "<sip:bob@workers.example>",
        via: `SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bK-early`,
      };
      await caller.send(request("INVITE", "sip:bob@workers.example", early, "1 INVITE"), ksr.udpPort);
      expect(statusOf(await nextNot100(caller))).toBe(404);
      await caller.send(request("ACK", "sip:bob@workers.example", early, "1 ACK"), ksr.udpPort);
      const registrar = await registerBob(ksr, callee, callIdOn(0, "reg"));

      const leg: Leg = {
        callId: callIdOn(1, "call"),
        from: "<sip:alice@workers.example>;tag=a1",
        to: "<sip:bob@workers.example>",
        via: `SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bK-inv-1`,
      };
      await caller.send(request("INVITE", "sip:bob@workers.example", leg, "1 INVITE", [`Contact: <sip:alice@127.0.0.1:${caller.port}>`]), ksr.udpPort);
      const relayed = (await callee.next()).data;
      // lookup on the other worker found the binding: the R-URI is bob's contact.
      expect(relayed.startsWith(`INVITE sip:bob@127.0.0.1:${callee.port} SIP/2.0`)).toBe(true);
      const invitePid = headerValue(relayed, "x-worker")!;
      expect(invitePid).not.toBe(registrar);
      expect(statusOf((await caller.next()).data)).toBe(100);

      await callee.send(answer(relayed, 200, "OK", "b1"), ksr.udpPort);
      const ok = await nextNot100(caller);
      expect(statusOf(ok)).toBe(200);
      const answered: Leg = { ...leg, to: headerValue(ok, "to")! };

      // The ACK of the 2xx (a new transaction, RFC 3261 §13.2.2.4) matches the INVITE on its worker.
      await caller.send(
        request("ACK", `sip:bob@127.0.0.1:${callee.port}`, { ...answered, via: `SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bK-ack-1` }, "1 ACK"),
        ksr.udpPort,
      );
      const ack = (await callee.next()).data;
      expect(ack.startsWith("ACK ")).toBe(true);
      expect(headerValue(ack, "x-worker")).toBe(invitePid);

      // The callee hangs up through the proxy (From and To swapped, RFC 3261 §12.2.1.1).
      const byeLeg: Leg = { callId: leg.callId, from: answered.to, to: leg.from, via: `SIP/2.0/UDP 127.0.0.1:${callee.port};branch=z9hG4bK-bye-1` };
      await callee.send(request("BYE", `sip:alice@127.0.0.1:${caller.port}`, byeLeg, "1 BYE"), ksr.udpPort);
      const bye = (await caller.next()).data;
      expect(bye.startsWith(`BYE sip:alice@127.0.0.1:${caller.port} SIP/2.0`)).toBe(true);
      expect(headerValue(bye, "x-worker")).toBe(invitePid);
      await caller.send(answer(bye, 200, "OK", "unused"), ksr.udpPort);
      expect(statusOf(await nextNot100(callee))).toBe(200);
      expect(ksr.stderr()).not.toMatch(/^\S+ (ERR|CRIT) /m);
    } finally {
      await ksr.stop();
      cleanup();
    }
  });

  it("over UDP: absorbs a retransmitted INVITE and cancels the call on its worker, for a call on either worker", async () => {
    const { ksr, cleanup } = await startWorkers();
    try {
      const caller = await peer();
      const callee = await peer();
      await registerBob(ksr, callee, callIdOn(0, "reg"));
      const pids = new Set<string>();
      for (const owner of [0, 1]) {
        const leg: Leg = {
          callId: callIdOn(owner, "cancel"),
          from: "<sip:alice@workers.example>;tag=a2",
          to: "<sip:bob@workers.example>",
          via: `SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bK-inv-c${owner}`,
        };
        const invite = request("INVITE", "sip:bob@workers.example", leg, "1 INVITE", [`Contact: <sip:alice@127.0.0.1:${caller.port}>`]);
        await caller.send(invite, ksr.udpPort);
        const relayed = (await callee.next()).data;
        pids.add(headerValue(relayed, "x-worker")!);
        expect(statusOf((await caller.next()).data)).toBe(100);
        // The retransmission reaches the INVITE's server transaction, which resends its 100 (RFC 3261 §17.2.1)
        // and relays nothing.
        await caller.send(invite, ksr.udpPort);
        expect(statusOf((await caller.next()).data)).toBe(100);
        await callee.send(answer(relayed, 180, "Ringing", "b2"), ksr.udpPort);
        expect(statusOf((await caller.next()).data)).toBe(180);

        // CANCEL: same Call-ID and branch (RFC 3261 §9.1): answered 200 and relayed by the INVITE's worker.
        await caller.send(request("CANCEL", "sip:bob@workers.example", leg, "1 CANCEL"), ksr.udpPort);
        expect(statusOf((await caller.next()).data)).toBe(200);
        const cancel = (await callee.next()).data;
        expect(cancel.startsWith("CANCEL ")).toBe(true);
        await callee.send(answer(cancel, 200, "OK", "b2"), ksr.udpPort);
        await callee.send(answer(relayed, 487, "Request Terminated", "b2"), ksr.udpPort);
        const terminated = await caller.next();
        expect(statusOf(terminated.data)).toBe(487);
        // The proxy acknowledges the 487 itself (§17.1.1.3) and absorbs the caller's ACK of its 487 (§17.2.1).
        expect((await callee.next()).data.startsWith("ACK ")).toBe(true);
        await caller.send(request("ACK", "sip:bob@workers.example", { ...leg, to: headerValue(terminated.data, "to")! }, "1 ACK"), ksr.udpPort);
        expect(await callee.poll(300)).toBeUndefined();
      }
      // One call on each worker.
      expect(pids.size).toBe(2);
      expect(ksr.stderr()).not.toMatch(/^\S+ (ERR|CRIT) /m);
    } finally {
      await ksr.stop();
      cleanup();
    }
  });

  it("over TCP: calls owned by either worker answered on the caller's one connection, which the front keeps; the callee's BYE reuses it", async () => {
    const dir = tenantDir();
    const script = dir.write("relay.js", SCRIPT);
    const ksr = await startKsr(
      [script, "--workers", "2", "--db", `${dir.dir}/ksr.sqlite`, "--no-supervise", "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0"],
      { ready: /running .* in 2 worker processes on udp:127\.0\.0\.1:(\d+)/ },
    );
    const tcpPort = Number(/running .* on udp:127\.0\.0\.1:\d+, tcp:127\.0\.0\.1:(\d+)/.exec(ksr.stderr())![1]);
    const caller = await TcpPeer.connect(tcpPort);
    try {
      const callee = await peer();
      const registrar = await registerBob(ksr, callee, callIdOn(0, "reg"));
      const via = (branch: string) => `SIP/2.0/TCP 127.0.0.1:${caller.localPort};branch=z9hG4bK-${branch}`;
      const leg: Leg = { callId: callIdOn(1, "tcp-call"), from: "<sip:alice@workers.example>;tag=t1", to: "<sip:bob@workers.example>", via: via("tcp-inv") };
      await caller.write(request("INVITE", "sip:bob@workers.example", leg, "1 INVITE", [`Contact: <sip:alice@127.0.0.1:${caller.localPort};transport=tcp>`]));
      const relayed = (await callee.next()).data;
      const invitePid = headerValue(relayed, "x-worker")!;
      expect(invitePid).not.toBe(registrar);
      expect(statusOf(await caller.next())).toBe(100);
      await callee.send(answer(relayed, 200, "OK", "b3"), ksr.udpPort);
      const ok = await caller.next();
      expect(statusOf(ok)).toBe(200);

      // Another transaction on the same connection, owned by the other worker.
      const options: Leg = { callId: callIdOn(0, "tcp-options"), from: "<sip:alice@workers.example>;tag=t2", to: "<sip:bob@workers.example>", via: via("tcp-opt") };
      await caller.write(request("OPTIONS", "sip:bob@workers.example", options, "1 OPTIONS"));
      const relayedOptions = (await callee.next()).data;
      expect(headerValue(relayedOptions, "x-worker")).toBe(registrar);
      await callee.send(answer(relayedOptions, 200, "OK", "b4"), ksr.udpPort);
      const optionsOk = await caller.next();
      expect([statusOf(optionsOk), headerValue(optionsOk, "call-id")]).toEqual([200, options.callId]);

      // The callee hangs up: the INVITE's worker relays the BYE over the caller's connection.
      const byeLeg: Leg = { callId: leg.callId, from: headerValue(ok, "to")!, to: leg.from, via: `SIP/2.0/UDP 127.0.0.1:${callee.port};branch=z9hG4bK-tcp-bye` };
      await callee.send(request("BYE", `sip:alice@127.0.0.1:${caller.localPort};transport=tcp`, byeLeg, "1 BYE"), ksr.udpPort);
      const bye = await caller.next();
      expect(bye.startsWith("BYE ")).toBe(true);
      expect(headerValue(bye, "x-worker")).toBe(invitePid);
      expect(ksr.stderr()).not.toMatch(/^\S+ (ERR|CRIT) /m);
    } finally {
      caller.close();
      await ksr.stop();
      rmSync(dir.dir, { recursive: true, force: true });
    }
  });

  it("shares htables and $shv: what one worker writes, the other reads and increments; the shared file goes with the server", async () => {
    const dir = tenantDir();
    const script = dir.write(
      "state.js",
      `function ksr_request_route() {
  var pid = KSR.pv.get("$pp");
  KSR.hdr.append_to_reply("X-Worker: " + pid + "\\r\\n");
  if (KSR.hdr.get("X-Op") == "write") {
    KSR.htable.sht_sets("t", "k", "written by " + pid);
    KSR.htable.sht_seti("c", "n", 0);
    KSR.pv.sets("$shv(who)", "shv by " + pid);
  } else {
    KSR.hdr.append_to_reply("X-K: " + KSR.htable.sht_get("t", "k") + "\\r\\n");
    KSR.hdr.append_to_reply("X-N: " + KSR.htable.sht_inc("c", "n") + "\\r\\n");
    KSR.hdr.append_to_reply("X-Shv: " + KSR.pv.get("$shv(who)") + "\\r\\n");
  }
  KSR.sl.sl_send_reply(200, "OK");
}
`,
    );
    const ksr = await startKsr([script, "--workers", "2", "--db", `${dir.dir}/ksr.sqlite`, "--no-supervise"], {
      ready: /running .* in 2 worker processes on udp:127\.0\.0\.1:(\d+)/,
    });
    const sharedFiles = () => (existsSync("/dev/shm") ? readdirSync("/dev/shm").filter((f) => f.startsWith(`ksr-shared-state-${ksr.child.pid}-`)) : []);
    try {
      const client = await peer();
      const ask = async (callId: string, op: string): Promise<string> => {
        const leg: Leg = { callId, from: "<sip:alice@workers.example>;tag=s1", to: "<sip:state@workers.example>", via: `SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bK-${callId.replace(/[^A-Za-z0-9-]/g, "")}` };
        await client.send(request("OPTIONS", "sip:state@workers.example", leg, "1 OPTIONS", [`X-Op: ${op}`]), ksr.udpPort);
        const reply = (await client.next()).data;
        expect(statusOf(reply)).toBe(200);
        return reply;
      };
      const written = await ask(callIdOn(0, "write"), "write");
      const writer = headerValue(written, "x-worker")!;
      const firstRead = await ask(callIdOn(1, "read-a"), "read");
      expect(headerValue(firstRead, "x-worker")).not.toBe(writer);
      expect([headerValue(firstRead, "x-k"), headerValue(firstRead, "x-n"), headerValue(firstRead, "x-shv")]).toEqual([
        `written by ${writer}`,
        "1",
        `shv by ${writer}`,
      ]);
      // The counter is one: increments from either worker add up.
      expect(headerValue(await ask(callIdOn(0, "read-b"), "read"), "x-n")).toBe("2");
      expect(headerValue(await ask(callIdOn(1, "read-c"), "read"), "x-n")).toBe("3");
      if (existsSync("/dev/shm")) expect(sharedFiles().filter((f) => f.endsWith(".sqlite"))).toHaveLength(1);
    } finally {
      await ksr.stop();
      rmSync(dir.dir, { recursive: true, force: true });
    }
    expect(sharedFiles()).toEqual([]);
  });

  it("a killed worker is restarted alone; the other keeps serving its calls meanwhile", async () => {
    const { ksr, cleanup } = await startWorkers();
    try {
      const client = await peer();
      let n = 0;
      /** An OPTIONS for nobody on a new Call-ID owned by `owner`: the 404 names the worker that ran the script, a 503 comes from the front. */
      const ask = async (owner: number): Promise<{ status: number; pid: string | undefined }> => {
        const callId = callIdOn(owner, `probe${n++}`);
        const leg: Leg = { callId, from: "<sip:alice@workers.example>;tag=k1", to: "<sip:nobody@workers.example>", via: `SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bK-probe${n}` };
        await client.send(request("OPTIONS", "sip:nobody@workers.example", leg, "1 OPTIONS"), ksr.udpPort);
        const reply = await nextNot100(client);
        return { status: statusOf(reply), pid: headerValue(reply, "x-worker") };
      };
      const first = await ask(0);
      const second = await ask(1);
      expect([first.status, second.status]).toEqual([404, 404]);
      process.kill(Number(first.pid), "SIGKILL");
      await ksr.waitFor(/CRIT \[default#0\] tenant worker process ended unexpectedly \(signal SIGKILL\)/);
      // The other worker answers its calls as before.
      expect(await ask(1)).toEqual(second);
      // Worker 0's calls get 503 from the front until its new process is ready (100 ms), then its 404.
      let after = await ask(0);
      for (let i = 0; i < 50 && after.status === 503; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await ask(0);
      }
      expect(after.status).toBe(404);
      expect(after.pid).not.toBe(first.pid);
      expect(after.pid).not.toBe(second.pid);
    } finally {
      await ksr.stop();
      cleanup();
    }
  });

  it("ksr ctl lists each worker and gathers every worker's counters", async () => {
    const dir = tenantDir();
    const script = dir.write("relay.js", SCRIPT);
    const socket = `${dir.dir}/ctl.sock`;
    const ksr = await startKsr([script, "--workers", "2", "--db", `${dir.dir}/ksr.sqlite`, "--no-supervise", "--control", socket], {
      ready: /running .* in 2 worker processes on udp:127\.0\.0\.1:(\d+)/,
    });
    const ctl = (...args: string[]) => spawnSync(process.execPath, [cli(), "ctl", "--control", socket, ...args], { encoding: "utf8", timeout: 20_000 });
    try {
      const tenants = ctl("--json", "tenants");
      expect(tenants.status).toBe(0);
      const statuses = JSON.parse(tenants.stdout) as { id: string; worker: number; state: string; pid: number }[];
      expect(statuses.map((s) => [s.id, s.worker, s.state])).toEqual([
        ["default", 0, "running"],
        ["default", 1, "running"],
      ]);
      expect(new Set(statuses.map((s) => s.pid)).size).toBe(2);
      const counters = ctl("counters");
      expect(counters.status).toBe(0);
      for (const label of ["default#0", "default#1"]) {
        expect(counters.stdout).toMatch(new RegExp(`^tenant ${label}: process state=running`, "m"));
        expect(counters.stdout).toMatch(new RegExp(`^tenant ${label}: mode=sync messages=`, "m"));
      }
    } finally {
      await ksr.stop();
      rmSync(dir.dir, { recursive: true, force: true });
    }
  });

  it("refuses --workers 2 with --db :memory:, saying why", async () => {
    const dir = tenantDir();
    const script = dir.write("relay.js", SCRIPT);
    await expect(startKsr([script, "--workers", "2", "--db", ":memory:", "--no-supervise"], { ready: /running/ })).rejects.toThrow(
      /--workers 2: --db :memory: is private to each process/,
    );
  });
});
