/**
 * The state and NAT modules as a script sees them: through the isolate
 * facade and the bridge, and through `ksr check`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { newTenantState } from "../../host/core/context.js";
import { checkSource } from "../../host/cli/check.js";
import { configureHtables, resetHtableConfiguration } from "../../host/modules/state/htable-store.js";
import { configurePike, resetPikeConfiguration } from "../../host/modules/state/pike-store.js";
import { clearAllTenantState } from "../../host/modules/state/tenant-scope.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { makeContext, makeRecordingHost, request, type RecordingHost } from "../helpers/context.js";

const LIMITS = { heapMb: 32, routeTimeoutMs: 200 };
let runners: ScriptRunner[] = [];
let host: RecordingHost;

function runner(source: string): ScriptRunner {
  const r = ScriptRunner.fromSource(source, "/scripts/state.js", { limits: LIMITS, tenant: "t1" });
  runners.push(r);
  return r;
}

function run(r: ScriptRunner, srcIp = "198.51.100.4", tenant = "t1") {
  const { ctx } = makeContext(request({ method: "OPTIONS" }), { host, tenant: newTenantState(tenant), rcv: { srcIp } });
  const outcome = r.runRoute("ksr_request_route", ctx);
  return { outcome, ctx };
}

beforeEach(() => {
  clearAllTenantState();
  resetHtableConfiguration();
  resetPikeConfiguration();
  host = makeRecordingHost();
});

afterEach(() => {
  for (const r of runners) r.dispose();
  runners = [];
});

describe("KSR.rtpproxy without an RTP proxy", () => {
  const SCRIPT = `
    function ksr_request_route() {
      var rc = KSR.rtpproxy.rtpproxy_manage("co");
      KSR.info("rtpproxy_manage returned " + rc + " (" + typeof rc + ")");
    }
  `;

  it("answers -1 at run time and logs an error naming the function", () => {
    const { outcome } = run(runner(SCRIPT));
    expect(outcome).toEqual({ status: "ok" });
    expect(host.logs.map((l) => [l.level, l.text])).toEqual([
      ["err", "KSR.rtpproxy.rtpproxy_manage: not available: no RTP proxy is configured"],
      ["info", "rtpproxy_manage returned -1 (number)"],
    ]);
  });

  it("is reported by ksr check", () => {
    const findings = checkSource(SCRIPT, "/scripts/state.js");
    expect(findings.map((f) => f.message)).toEqual([
      "KSR.rtpproxy.rtpproxy_manage: not available here: no RTP proxy is configured",
    ]);
  });

  it("declares the module's other exports the same way", () => {
    const findings = checkSource(
      `function ksr_request_route() { KSR.rtpproxy.rtpproxy_offer("co"); KSR.rtpproxy.rtpproxy_answer("co"); KSR.rtpproxy.rtpproxy_destroy0(); }`,
      "/scripts/state.js",
    );
    expect(findings).toHaveLength(3);
    expect(findings.every((f) => f.message.endsWith("not available here: no RTP proxy is configured"))).toBe(true);
  });
});

describe("the basic example script's flood protection, through the sandbox", () => {
  // The request-init logic of Kamailio's kamailio-basic-kemi-jsdt.js.
  const SCRIPT = `
    function ksr_request_route() {
      var srcip = KSR.kx.get_srcip();
      if (KSR.htable.sht_match_name("ipban", "eq", srcip) > 0) {
        KSR.info("blocked " + srcip);
        KSR.x.exit();
      }
      if (KSR.pike.pike_check_req() < 0) {
        KSR.err("ALERT: pike blocking " + srcip);
        KSR.htable.sht_seti("ipban", srcip, 1);
        KSR.x.exit();
      }
      KSR.info("passed " + srcip + " count=" + KSR.pv.get("$shtinc(seen=>$si)"));
    }
  `;

  it("bans a flooding address for the table's autoexpire, other addresses unaffected", () => {
    configureHtables([{ name: "ipban", autoExpireSec: 300 }, { name: "seen", initVal: 0 }]);
    configurePike({ reqsDensityPerUnit: 3 });
    const r = runner(SCRIPT);
    // Density 3 (prefixes hot at once): 4 requests grow the address's 4 bytes, then it counts; the 3rd count floods.
    for (let i = 0; i < 8; i++) run(r);
    const infos = () => host.logs.filter((l) => l.level === "info").map((l) => l.text);
    expect(infos()).toEqual([1, 2, 3, 4, 5, 6].map((n) => `passed 198.51.100.4 count=${n}`).concat(["blocked 198.51.100.4"]));
    expect(host.logs.filter((l) => l.level === "err").map((l) => l.text)).toEqual(["ALERT: pike blocking 198.51.100.4"]);

    run(r, "198.51.100.5");
    expect(infos().at(-1)).toBe("passed 198.51.100.5 count=1");
    // Another tenant with the same address is not banned.
    run(r, "198.51.100.4", "t2");
    expect(infos().at(-1)).toBe("passed 198.51.100.4 count=1");

    host.clock.ms += 300_000;
    run(r);
    expect(infos().at(-1)).toBe("passed 198.51.100.4 count=7");
  });
});
