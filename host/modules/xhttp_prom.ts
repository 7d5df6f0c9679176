/**
 * KSR.xhttp_prom (Kamailio xhttp_prom module, its KEMI functions of 5.6):
 * a script's own Prometheus metrics, served with the server's on
 * `ksr run --metrics` (host/metrics/script-metrics.ts: namespaced by
 * tenant, bounded, declared by first use instead of a modparam).
 *
 * The _l0 … _l3 suffix is the number of label values the call gives (none
 * to three, labelled l1, l2, l3 in the output). As in Kamailio: counters
 * grow by a non-negative integer; gauge values and histogram observations
 * are numbers written as strings; every function returns 1 on success and
 * -1 on failure (logged). `dispatch` and `check_uri` serve HTTP requests
 * in Kamailio's event_route[xhttp:request]; this server serves /metrics
 * itself, so they are listed as unavailable.
 */
import type { MessageContext } from "../core/context.js";
import { tenantScriptMetrics, type ScriptMetricFailure } from "../metrics/script-metrics.js";
import type { KemiFunction, KemiModule, KemiParamType } from "./types.js";

function outcome(ctx: MessageContext, fn: string, failure: ScriptMetricFailure | undefined): number {
  if (failure === undefined) return 1;
  ctx.host.log("err", `xhttp_prom.${fn}: ${failure}`, ctx);
  return -1;
}

/** Kamailio's double_parse_str: the whole string is a decimal number. */
function parseNumber(text: string): number | undefined {
  if (!/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(text)) return undefined;
  return Number(text);
}

/** A function taking a number written as a string (Kamailio's double_parse_str): -1, logged, when it is not one. */
function withNumber(ctx: MessageContext, fn: string, value: string, apply: (n: number) => ScriptMetricFailure | undefined): number {
  const number = parseNumber(value);
  return outcome(ctx, fn, number === undefined ? `"${value.slice(0, 40)}" is not a number` : apply(number));
}

const labelParams = (n: number): KemiParamType[] => Array.from({ length: n }, () => "str" as const);

function family(n: number): Record<string, KemiFunction> {
  const which = n === 0 ? "without labels" : `with ${n} label value${n > 1 ? "s" : ""}`;
  return {
    [`counter_inc_l${n}`]: {
      params: ["str", "int", ...labelParams(n)],
      returns: "int",
      doc: `Add a non-negative integer to the script counter named by the first argument, ${which}. 1 on success, -1 on failure.`,
      run: (ctx: MessageContext, name: string, amount: number, ...labels: string[]) =>
        outcome(ctx, `counter_inc_l${n}`, tenantScriptMetrics(ctx.tenant.id).counterInc(name, amount, labels)),
    },
    [`counter_reset_l${n}`]: {
      params: ["str", ...labelParams(n)],
      returns: "int",
      doc: `Set the script counter's series ${which} back to 0. 1 on success, -1 when it does not exist.`,
      run: (ctx: MessageContext, name: string, ...labels: string[]) =>
        outcome(ctx, `counter_reset_l${n}`, tenantScriptMetrics(ctx.tenant.id).reset(name, "counter", labels)),
    },
    [`gauge_set_l${n}`]: {
      params: ["str", "str", ...labelParams(n)],
      returns: "int",
      doc: `Set the script gauge, ${which}, to the number written in the second argument. 1 on success, -1 on failure.`,
      run: (ctx: MessageContext, name: string, value: string, ...labels: string[]) =>
        withNumber(ctx, `gauge_set_l${n}`, value, (number) => tenantScriptMetrics(ctx.tenant.id).gaugeSet(name, number, labels)),
    },
    [`gauge_reset_l${n}`]: {
      params: ["str", ...labelParams(n)],
      returns: "int",
      doc: `Set the script gauge's series ${which} back to 0. 1 on success, -1 when it does not exist.`,
      run: (ctx: MessageContext, name: string, ...labels: string[]) =>
        outcome(ctx, `gauge_reset_l${n}`, tenantScriptMetrics(ctx.tenant.id).reset(name, "gauge", labels)),
    },
    [`histogram_observe_l${n}`]: {
      params: ["str", "str", ...labelParams(n)],
      returns: "int",
      doc: `Observe the number written in the second argument in the script histogram, ${which} (buckets 0.005 … 10). 1 on success, -1 on failure.`,
      run: (ctx: MessageContext, name: string, value: string, ...labels: string[]) =>
        withNumber(ctx, `histogram_observe_l${n}`, value, (number) => tenantScriptMetrics(ctx.tenant.id).histogramObserve(name, number, labels)),
    },
  };
}

export const xhttpPromModule: KemiModule = {
  name: "xhttp_prom",
  kamailioModule: "xhttp_prom",
  functions: { ...family(0), ...family(1), ...family(2), ...family(3) },
  unavailable: {
    dispatch: { params: [], returns: "int", reason: "this server serves /metrics itself (ksr run --metrics); scripts do not handle HTTP" },
    check_uri: { params: [], returns: "int", reason: "this server serves /metrics itself (ksr run --metrics); scripts do not handle HTTP" },
  },
};
