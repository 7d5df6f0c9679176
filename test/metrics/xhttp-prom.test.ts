/**
 * KSR.xhttp_prom (host/modules/xhttp_prom.ts) over the per-tenant script
 * metrics (host/metrics/script-metrics.ts): Kamailio 5.6's return values
 * and argument rules, the namespace per tenant, and the bounds.
 */
import { describe, expect, it } from "vitest";
import { newTenantState } from "../../host/core/context.js";
import { xhttpPromModule } from "../../host/modules/xhttp_prom.js";
import { MAX_SCRIPT_METRICS, MAX_SERIES_PER_METRIC, tenantScriptMetrics } from "../../host/metrics/script-metrics.js";
import { WireCounters, COUNTED_METHODS, methodIndex } from "../../host/metrics/wire.js";
import { makeContext, request } from "../helpers/context.js";
import { caller } from "../modules/call.js";

const call = caller(xhttpPromModule);

let tenantSerial = 0;
/** A context of a tenant of its own: each test starts with no script metrics. */
function freshTenant() {
  const id = `xhttp-prom-${++tenantSerial}`;
  const { ctx, host } = makeContext(request(), { tenant: newTenantState(id) });
  return { ctx, host, id, values: () => tenantScriptMetrics(id).families() };
}

describe("KSR.xhttp_prom", () => {
  it("counts with counter_inc_lN, labelled l1..l3 and the tenant, and resets a series to 0", () => {
    const { ctx, id, values } = freshTenant();
    expect(call("counter_inc_l0", ctx, "calls", 2)).toBe(1);
    expect(call("counter_inc_l0", ctx, "calls", 3)).toBe(1);
    expect(call("counter_inc_l2", ctx, "by_route", 1, "INVITE", "carrier-a")).toBe(1);
    expect(values()).toEqual([
      { name: "ksr_script_calls", kind: "counter", values: [{ metricName: "ksr_script_calls", labels: { tenant: id }, value: 5 }] },
      {
        name: "ksr_script_by_route",
        kind: "counter",
        values: [{ metricName: "ksr_script_by_route", labels: { tenant: id, l1: "INVITE", l2: "carrier-a" }, value: 1 }],
      },
    ]);
    expect(call("counter_reset_l0", ctx, "calls")).toBe(1);
    expect(values()[0]!.values[0]!.value).toBe(0);
  });

  it("refuses what Kamailio refuses: a negative increment, a number that is not one, a reset of nothing (-1, logged)", () => {
    const { ctx, host } = freshTenant();
    expect(call("counter_inc_l0", ctx, "calls", -1)).toBe(-1);
    expect(call("gauge_set_l0", ctx, "load", "12abc")).toBe(-1);
    expect(call("histogram_observe_l0", ctx, "rtt", "")).toBe(-1);
    expect(call("counter_reset_l1", ctx, "never", "x")).toBe(-1);
    expect(host.logs.filter((l) => l.level === "err")).toHaveLength(4);
  });

  it("fixes a metric's kind and label count at its first use", () => {
    const { ctx } = freshTenant();
    expect(call("gauge_set_l1", ctx, "load", "0.5", "a")).toBe(1);
    expect(call("counter_inc_l1", ctx, "load", 1, "a")).toBe(-1);
    expect(call("gauge_set_l2", ctx, "load", "0.5", "a", "b")).toBe(-1);
    expect(call("gauge_set_l1", ctx, "load", "-2.5e1", "a")).toBe(1);
  });

  it("observes histograms in Kamailio's default buckets", () => {
    const { ctx, id, values } = freshTenant();
    for (const v of ["0.003", "0.2", "42"]) expect(call("histogram_observe_l0", ctx, "rtt", v)).toBe(1);
    const samples = values()[0]!.values;
    const bucket = (le: number | string) => samples.find((s) => s.metricName === "ksr_script_rtt_bucket" && s.labels["le"] === le)?.value;
    expect(bucket(0.005)).toBe(1);
    expect(bucket(0.25)).toBe(2);
    expect(bucket(10)).toBe(2);
    expect(bucket("+Inf")).toBe(3);
    expect(samples.find((s) => s.metricName === "ksr_script_rtt_count")).toEqual({ metricName: "ksr_script_rtt_count", labels: { tenant: id }, value: 3 });
  });

  it("keeps each tenant's metrics apart", () => {
    const a = freshTenant();
    const b = freshTenant();
    call("counter_inc_l0", a.ctx, "calls", 7);
    expect(b.values()).toEqual([]);
    expect(a.values()[0]!.values[0]!.labels).toEqual({ tenant: a.id });
  });

  it("is bounded: metrics per tenant, label combinations per metric, names and label values", () => {
    const { ctx } = freshTenant();
    for (let i = 0; i < MAX_SCRIPT_METRICS; i++) expect(call("counter_inc_l0", ctx, `m${i}`, 1)).toBe(1);
    expect(call("counter_inc_l0", ctx, "one_too_many", 1)).toBe(-1);
    const other = freshTenant();
    for (let i = 0; i < MAX_SERIES_PER_METRIC; i++) expect(call("counter_inc_l1", other.ctx, "by_caller", 1, `c${i}`)).toBe(1);
    expect(call("counter_inc_l1", other.ctx, "by_caller", 1, "one-more-caller")).toBe(-1);
    expect(call("counter_inc_l1", other.ctx, "by_caller", 1, "c0")).toBe(1);
    expect(call("counter_inc_l0", other.ctx, "bad name", 1)).toBe(-1);
    expect(call("counter_inc_l1", other.ctx, "long", 1, "x".repeat(129))).toBe(-1);
    expect(call("counter_inc_l1", other.ctx, "empty", 1, "")).toBe(-1);
  });
});

describe("WireCounters", () => {
  it("counts what is sent by the method or status class at the start of the bytes", () => {
    const w = new WireCounters();
    w.sent("INVITE sip:a@b SIP/2.0\r\n\r\n");
    w.sent("FOO sip:a@b SIP/2.0\r\n\r\n");
    w.sent("SIP/2.0 180 Ringing\r\n\r\n");
    w.sent("SIP/2.0 486 Busy\r\n\r\n");
    expect(w.requestsSent[methodIndex("INVITE")]).toBe(1);
    expect(w.requestsSent[COUNTED_METHODS.indexOf("other")]).toBe(1);
    expect([...w.repliesSent]).toEqual([0, 1, 0, 0, 1, 0, 0]);
  });
});
