/**
 * Cost of one route call through the sandbox: an empty route, and a route
 * shaped like Kamailio's basic KEMI script (about 30 KSR calls: method
 * tests, flag handling, getters, a reply). Uses the sandbox tests' own
 * export table, so it measures the bridge, not the real modules.
 *
 *   npx vitest bench --run bench/route-call.bench.ts
 */
import { afterAll, bench, describe } from "vitest";
import { MessageContext, newTenantState, type HostServices, type ReceiveInfo } from "../host/core/context.js";
import { parseMessage } from "../host/sip/parser.js";
import { ScriptRunner } from "../sandbox/runner.js";
import { rawRequest, TEST_MODULES } from "../test/sandbox/fixtures.js";

const SCRIPT = `
function ksr_empty() {}

// Same call pattern as a basic proxy script: sanity, in-dialog check,
// flags, R-URI and header reads, then a local reply. 30 KSR calls.
function ksr_request_route() {
  if (KSR.tk.sum(70, -1) <= 0) { KSR.sl.sl_send_reply(483, "Too Many Hops"); KSR.x.exit(); }  // 1
  if (!KSR.tk.is_even(10)) { return; }                                                         // 2
  if (KSR.is_INVITE()) { KSR.setflag(1); }                                                     // 3
  const ruri = KSR.tk.get_ruri();                                                              // 4
  const subject = KSR.tk.get_subject();                                                        // 5
  if (ruri === null || subject === null) { KSR.sl.sl_send_reply(400, "Bad"); KSR.x.exit(); }
  for (let f = 2; f < 10; f++) KSR.setflag(f);                                                 // 6..13
  for (let f = 2; f < 10; f++) KSR.tk.is_even(f);                                              // 14..21
  KSR.tk.echo(ruri);                                                                           // 22
  KSR.tk.echo("Via: SIP/2.0/UDP 127.0.0.1");                                                   // 23
  KSR.tk.types("a", 5, subject);                                                               // 24
  KSR.tk.get_missing();                                                                        // 25
  KSR.tk.sum(1, 2);                                                                            // 26
  KSR.is_INVITE();                                                                             // 27
  KSR.info("routing " + ruri);                                                                 // 28
  KSR.tk.get_ruri();                                                                           // 29
  KSR.sl.sl_send_reply(200, "OK");                                                             // 30
  KSR.x.exit();
}
`;

const RECEIVE: ReceiveInfo = { proto: "udp", srcIp: "127.0.0.1", srcPort: 5080, localIp: "127.0.0.1", localPort: 5060, connectionId: -1 };

let calls = 0;
const host: HostServices = {
  listen: [],
  aliases: [],
  log() {},
  sendReply() {
    return true;
  },
  forward() {
    return false;
  },
  now: () => 0,
};

// Count every KSR call once, to keep the "about 30" honest.
const countedModules = TEST_MODULES.map((m) => ({
  ...m,
  functions: Object.fromEntries(
    Object.entries(m.functions).map(([name, fn]) => [
      name,
      { ...fn, run: (ctx: MessageContext, ...args: unknown[]) => (calls++, fn.run(ctx, ...args)) },
    ]),
  ),
}));

const parsed = parseMessage(rawRequest("OPTIONS"));
if (!parsed.ok) throw new Error(parsed.error);
const message = parsed.message;
const tenant = newTenantState("bench");

const runner = ScriptRunner.fromSource(SCRIPT, "/bench/basic.js", {
  limits: { heapMb: 64, routeTimeoutMs: 100 },
  tenant: "bench",
  modules: countedModules,
});

function newContext(): MessageContext {
  return new MessageContext(message, RECEIVE, "request", tenant, host);
}

calls = 0;
if (runner.runRoute("ksr_request_route", newContext()).status !== "ok") throw new Error("bench route failed");
// The 30 calls include KSR.x.exit(), which the bridge handles itself.
const perRoute = calls + 1;

describe(`route call (${perRoute} KSR calls in the basic route)`, () => {
  bench("empty route", () => {
    runner.runRoute("ksr_empty", newContext());
  });
  bench(`basic-script route, ${perRoute} KSR calls`, () => {
    runner.runRoute("ksr_request_route", newContext());
  });
  bench("new MessageContext only (baseline)", () => {
    newContext();
  });
});

afterAll(() => runner.dispose());
