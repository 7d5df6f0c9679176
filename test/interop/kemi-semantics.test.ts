/**
 * KEMI semantics against Kamailio 5.6 + app_jsdt, the same script on both
 * servers on loopback (test/interop/cfg/kamailio-kemi-probe.cfg loads the
 * modules compared):
 *
 *  - KSR.x.modf: native (kamailio.cfg) names with their own parameter
 *    counts; KEMI-only names, core actions and functions whose fixup cannot
 *    be freed answer -1 (test/interop/scripts/modf-probe.js answers
 *    "200 modf <result>" for the call named in X-Call);
 *  - ksr_onsend_route: what $snd shows for a stateless forward and a
 *    stateful relay, and what a KSR.x.drop() there does to each
 *    (test/interop/scripts/onsend-probe.js);
 *  - the branch-failure and failure routes: called without an argument, on
 *    a request that corex.is_faked_msg does not call faked (Kamailio's is
 *    the core's faked message of event routes only; tm's copy for failure
 *    routes is not it) (test/interop/scripts/failure-probe.js);
 *  - kemi.event_route_callback: called once with "core:worker-one-init" on
 *    a faked request (test/interop/scripts/event-probe.js).
 *
 * Needs kamailio (Debian package kamailio), which .ci/run installs; on a
 * machine without it this suite is skipped, saying so.
 */
import dgram from "node:dgram";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, ensureBuilt, findFreePort, startKsr, type KsrProcess } from "../../bench/lib/sipp.mjs";
import { kamailioVersion, startKamailio } from "../../bench/lib/kamailio.mjs";

const PROBE_CFG = path.join(REPO_ROOT, "test", "interop", "cfg", "kamailio-kemi-probe.cfg");
const MODF_PROBE = path.join(REPO_ROOT, "test", "interop", "scripts", "modf-probe.js");
const ONSEND_PROBE = path.join(REPO_ROOT, "test", "interop", "scripts", "onsend-probe.js");
const FAILURE_PROBE = path.join(REPO_ROOT, "test", "interop", "scripts", "failure-probe.js");
const EVENT_PROBE = path.join(REPO_ROOT, "test", "interop", "scripts", "event-probe.js");

/**
 * Native calls compared, as "name|arg|arg". Each is one request; the
 * message is an OPTIONS to sip:probe@127.0.0.1 (a user part, so
 * options_reply answers -1 on both) without a To tag.
 */
const MODF_CALLS = [
  // Refused by app_jsdt: fixup without a free function.
  "sl_send_reply|200|OK",
  "send_reply|200|OK",
  "save|location",
  "t_relay|127.0.0.1|5",
  "record_route|;x=1",
  // Not found: wrong count, KEMI-only names, core actions, unknown.
  "sl_send_reply|200",
  "get_ruri",
  "sets|$var(x)|a",
  "setflag|3",
  "no_such_function",
  "sanity_check|1|1|1",
  // Found with the native counts.
  "sanity_check",
  "sanity_check|1",
  "sanity_check|1|1",
  "is_uri|sip:a@example.com",
  "has_totag",
  "is_request",
  "is_reply",
  "setxflag|3",
  "append_branch",
  "process_maxfwd|10",
  "mf_process_maxfwd_header|10",
  "is_maxfwd_lt|5",
  "options_reply",
  "uri_param|foo",
  "record_route",
  "cmp_uri|sip:a@example.com|sip:a@EXAMPLE.com",
  "cmp_aor|sip:a@example.com|sip:b@example.com",
  "is_numeric|123",
  "is_numeric|12a",
  "is_first_hop",
  "setsflag|2",
  "isbflagset|1",
  "pv_isset|$ru",
  // Parameters are pv formats, evaluated for the message (spve/igp fixups).
  "is_uri|$ru",
  "is_uri|x$fU",
  "cmp_uri|$ru|$ou",
  "cmp_aor|$fu|sip:$fU@$fd",
  "is_numeric|$var(unset)",
  "is_first_hop|$var(unset)",
  "is_uri|$nosuch(x)",
  "sl_reply_error",
];

/** Sends one OPTIONS per call and returns the result each got ("modf <n>"), every reply to it listed. */
async function modfResults(port: number, calls: readonly string[]): Promise<string[]> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const localPort = socket.address().port;
  try {
    const out: string[] = [];
    for (const [i, call] of calls.entries()) {
      const callId = `modf-${i}-${Math.random().toString(16).slice(2)}`;
      const request = [
        `OPTIONS sip:probe@127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK${callId}`,
        "Max-Forwards: 70",
        "From: <sip:probe@127.0.0.1>;tag=p1",
        "To: <sip:probe@127.0.0.1>",
        `Call-ID: ${callId}`,
        "CSeq: 1 OPTIONS",
        `Contact: <sip:probe@127.0.0.1:${localPort}>`,
        `X-Call: ${call}`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n");
      const replies: string[] = [];
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          socket.off("message", onMessage);
          reject(new Error(`no "modf" answer from port ${port} to ${call} (got: ${replies.join(" / ")})`));
        }, 3000);
        function onMessage(m: Buffer): void {
          const text = m.toString("latin1");
          if (!text.includes(`Call-ID: ${callId}\r\n`)) return;
          const status = text.slice(0, text.indexOf("\r\n")).replace(/^SIP\/2\.0 /, "");
          replies.push(status);
          if (/^200 modf /.test(status)) {
            clearTimeout(timer);
            socket.off("message", onMessage);
            resolve();
          }
        }
        socket.on("message", onMessage);
      });
      socket.send(request, port, "127.0.0.1");
      await done;
      out.push(`${call} => ${replies.join(" / ")}`);
    }
    return out;
  } finally {
    socket.close();
  }
}

const KAMAILIO = kamailioVersion();

/**
 * Both servers running `script` for the tests of the enclosing describe:
 * `ksr run` (with `ksrArgs`) and Kamailio on the probe configuration (with
 * `defines`), started before them and stopped after.
 */
function bothServers(script: string, options: { ksrArgs?: string[]; defines?: string[] } = {}): { ksr(): KsrProcess; kamailio(): KsrProcess } {
  let ksr: KsrProcess | undefined;
  let kamailio: KsrProcess | undefined;
  beforeAll(async () => {
    ensureBuilt();
    ksr = await startKsr({ script, port: await findFreePort(), extraArgs: options.ksrArgs ?? [] });
    kamailio = await startKamailio({ script, port: await findFreePort(), cfgTemplate: PROBE_CFG, defines: options.defines ?? [] });
  }, 60_000);
  afterAll(async () => {
    await ksr?.stop();
    await kamailio?.stop();
  });
  return { ksr: () => ksr!, kamailio: () => kamailio! };
}

describe.skipIf(KAMAILIO === null)(`KSR.x.modf as Kamailio 5.6's app_jsdt${KAMAILIO === null ? " (skipped: kamailio is not installed)" : ""}`, () => {
  const servers = bothServers(MODF_PROBE);

  it("finds native names with their own parameter counts, and answers -1 where Kamailio does", async () => {
    const ours = await modfResults(servers.ksr().port, MODF_CALLS);
    const theirs = await modfResults(servers.kamailio().port, MODF_CALLS);
    expect(ours).toEqual(theirs);
    // What the answers are, so that equal-but-trivial cannot pass.
    const result = (call: string): string => ours.find((l) => l.startsWith(`${call} =>`))!.split(" => ")[1]!;
    expect(result("sl_send_reply|200|OK")).toBe("200 modf -1");
    expect(result("get_ruri")).toBe("200 modf -1");
    expect(result("sanity_check")).toBe("200 modf 1");
    expect(result("sanity_check|1|1")).toBe("200 modf 1");
    expect(result("is_numeric|12a")).toBe("200 modf -2");
    expect(result("cmp_aor|$fu|sip:$fU@$fd")).toBe("200 modf 1");
    expect(result("is_uri|$nosuch(x)")).toBe("200 modf -1");
    // sl_reply_error replies 500 itself, then the probe's 200.
    expect(result("sl_reply_error")).toBe("500 I'm terribly sorry, server error occurred (1/SL) / 200 modf 1");
  }, 60_000);
});

/** A next hop on 127.0.0.1: records what it receives and answers `status` to a request whose X-Mode is relay. */
async function startNextHop(status = "200 OK"): Promise<{ port: number; received: string[]; close(): void }> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const received: string[] = [];
  socket.on("message", (m, from) => {
    const text = m.toString("latin1");
    received.push(text);
    if (!/\r\nX-Mode: relay\r\n/.test(text) || text.startsWith("SIP/2.0 ")) return;
    const head = text.slice(0, text.indexOf("\r\n\r\n")).split("\r\n");
    const keep = head.filter((l) => /^(Via|From|Call-ID|CSeq):/i.test(l));
    const to = head.find((l) => /^To:/i.test(l))!;
    const reply = [`SIP/2.0 ${status}`, ...keep, `${to};tag=nexthop`, "Content-Length: 0", "", ""].join("\r\n");
    socket.send(reply, from.port, from.address);
  });
  return { port: socket.address().port, received, close: () => socket.close() };
}

/** One request through the probe; the status lines the client got, in order (waits for a final one). */
async function ask(port: number, method: string, headers: readonly string[]): Promise<string[]> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const localPort = socket.address().port;
  const callId = `onsend-${Math.random().toString(16).slice(2)}`;
  const request = [
    `${method} sip:probe@127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK${callId}`,
    "Max-Forwards: 70",
    "From: <sip:probe@127.0.0.1>;tag=p1",
    "To: <sip:probe@127.0.0.1>",
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    ...headers,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
  const statuses: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no final answer from port ${port} (got: ${statuses.join(" / ")})`)), 5000);
      socket.on("message", (m) => {
        const text = m.toString("latin1");
        const status = text.slice(0, text.indexOf("\r\n")).replace(/^SIP\/2\.0 /, "");
        statuses.push(status);
        if (!/^1\d\d /.test(status)) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.send(request, port, "127.0.0.1");
    });
    return statuses;
  } finally {
    socket.close();
  }
}

describe.skipIf(KAMAILIO === null)(`ksr_onsend_route as Kamailio 5.6's${KAMAILIO === null ? " (skipped: kamailio is not installed)" : ""}`, () => {
  const servers = bothServers(ONSEND_PROBE);

  /** Each case on one server: what the client got, whether the next hop got the request, and $snd as the onsend route saw it. */
  async function cases(port: number): Promise<string[]> {
    const hop = await startNextHop();
    try {
      const out: string[] = [];
      for (const mode of ["forward", "relay"]) {
        for (const drop of [false, true]) {
          const before = hop.received.length;
          const headers = [`X-Target: sip:127.0.0.1:${hop.port}`, `X-Mode: ${mode}`, `X-Drop-Port: ${drop ? hop.port : 1}`];
          const answers = await ask(port, "MESSAGE", headers);
          const requests = hop.received.slice(before).filter((t) => t.startsWith("MESSAGE "));
          const snd = (await ask(port, "OPTIONS", []))[0]!;
          // $snd(len) against the bytes the next hop got (the Vias of the two servers differ in length).
          const len = requests[0] === undefined ? undefined : String(Buffer.byteLength(requests[0], "latin1"));
          const sndShown = snd.replace(` ${hop.port} `, " <hop> ").replace(len === undefined ? /^$/ : ` ${len} `, " <len> ");
          out.push(`${mode}${drop ? " dropped" : ""}: client got ${answers.join(" / ")}; next hop got ${requests.length}; ${sndShown}`);
        }
      }
      return out;
    } finally {
      hop.close();
    }
  }

  it("shows the send in $snd as Kamailio does; a drop stops a stateless forward and a stateful branch (Kamailio 5.6.3's app_jsdt ignores it)", async () => {
    const ours = await cases(servers.ksr().port);
    const theirs = await cases(servers.kamailio().port);
    // Without a drop: the same answers, the same $snd.
    expect([ours[0], ours[2]]).toEqual([theirs[0], theirs[2]]);
    expect(ours[0]).toBe("forward: client got 200 forward 1; next hop got 1; 200 snd 127.0.0.1 <hop> 1 udp 2 <len> MESSAGE");
    expect(ours[2]).toBe("relay: client got 200 OK; next hop got 1; 200 snd 127.0.0.1 <hop> 1 udp 2 <len> MESSAGE");
    // With KSR.x.drop(): not sent here, the forward fails, the branch fails as a send failure (477 from sl_reply_error).
    expect(ours[1]).toMatch(/^forward dropped: client got 200 forward -1; next hop got 0; 200 snd 127\.0\.0\.1 <hop> 1 udp 2 \d+ MESSAGE$/);
    expect(ours[3]).toMatch(/^relay dropped: client got 477 Unfortunately error on sending to next hop occurred; next hop got 0; /);
    // Kamailio 5.6.3 + app_jsdt sends anyway: its KEMI onsend route always answers 1, so run_onsend never sees a drop.
    expect(theirs[1]).toMatch(/^forward dropped: client got 200 forward 1; next hop got 1; /);
    expect(theirs[3]).toMatch(/^relay dropped: client got 200 OK; next hop got 1; /);
  }, 60_000);
});

describe.skipIf(KAMAILIO === null)(`failure routes as Kamailio 5.6's${KAMAILIO === null ? " (skipped: kamailio is not installed)" : ""}`, () => {
  const servers = bothServers(FAILURE_PROBE);

  it("runs the branch-failure and failure routes without an argument, is_faked_msg -1 in both", async () => {
    const hop = await startNextHop("486 Busy Here");
    try {
      const headers = [`X-Target: sip:127.0.0.1:${hop.port}`, "X-Mode: relay"];
      const ours = await ask(servers.ksr().port, "MESSAGE", headers);
      const theirs = await ask(servers.kamailio().port, "MESSAGE", headers);
      expect(ours).toEqual(theirs);
      expect(ours).toEqual(["500 branch-failure args=0 faked=-1 code=486; failure args=0 faked=-1 failure-route=1"]);
    } finally {
      hop.close();
    }
  }, 60_000);
});

describe.skipIf(KAMAILIO === null)(`kemi.event_route_callback as Kamailio 5.6's${KAMAILIO === null ? " (skipped: kamailio is not installed)" : ""}`, () => {
  const servers = bothServers(EVENT_PROBE, { ksrArgs: ["--kemi-event-route-callback", "ksr_core_event"], defines: ['EVENT_ROUTE_CALLBACK="ksr_core_event"'] });

  it('calls the function once with "core:worker-one-init", on a faked request', async () => {
    const ours = await ask(servers.ksr().port, "MESSAGE", []);
    const theirs = await ask(servers.kamailio().port, "MESSAGE", []);
    expect(ours).toEqual(theirs);
    expect(ours).toEqual(["200 event core:worker-one-init args=1 faked=1 method=OPTIONS request-faked=-1"]);
  }, 60_000);
});
