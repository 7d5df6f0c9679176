/**
 * KEMI semantics against Kamailio 5.6 + app_jsdt, the same script on both
 * servers on loopback (test/interop/cfg/kamailio-kemi-probe.cfg loads the
 * modules compared):
 *
 *  - KSR.x.modf: native (kamailio.cfg) names with their own parameter
 *    counts; KEMI-only names, core actions and functions whose fixup cannot
 *    be freed answer -1 (test/interop/scripts/modf-probe.js answers
 *    "200 modf <result>" for the call named in X-Call).
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

describe.skipIf(KAMAILIO === null)(`KSR.x.modf as Kamailio 5.6's app_jsdt${KAMAILIO === null ? " (skipped: kamailio is not installed)" : ""}`, () => {
  let ksr: KsrProcess | undefined;
  let kamailio: KsrProcess | undefined;

  beforeAll(async () => {
    ensureBuilt();
    ksr = await startKsr({ script: MODF_PROBE, port: await findFreePort() });
    kamailio = await startKamailio({ script: MODF_PROBE, port: await findFreePort(), cfgTemplate: PROBE_CFG });
  }, 60_000);

  afterAll(async () => {
    await ksr?.stop();
    await kamailio?.stop();
  });

  it("finds native names with their own parameter counts, and answers -1 where Kamailio does", async () => {
    const ours = await modfResults(ksr!.port, MODF_CALLS);
    const theirs = await modfResults(kamailio!.port, MODF_CALLS);
    expect(ours).toEqual(theirs);
    // What the answers are, so that equal-but-trivial cannot pass.
    const result = (call: string): string => ours.find((l) => l.startsWith(`${call} =>`))!.split(" => ")[1]!;
    expect(result("sl_send_reply|200|OK")).toBe("200 modf -1");
    expect(result("get_ruri")).toBe("200 modf -1");
    expect(result("sanity_check")).toBe("200 modf 1");
    expect(result("sanity_check|1|1")).toBe("200 modf 1");
    expect(result("is_numeric|12a")).toBe("200 modf -2");
    // sl_reply_error replies 500 itself, then the probe's 200.
    expect(result("sl_reply_error")).toBe("500 I'm terribly sorry, server error occurred (1/SL) / 200 modf 1");
  }, 60_000);
});
