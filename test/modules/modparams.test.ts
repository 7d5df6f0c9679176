/**
 * Module parameters: declared by the modules, checked where they are given
 * (tenants file, ksr run), and read per tenant, so that two tenants in one
 * process never share a setting.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { newTenantState, type TenantState } from "../../host/core/context.js";
import { KEMI_MODULES } from "../../host/modules/index.js";
import { maxfwdModule } from "../../host/modules/maxfwd.js";
import { modParamFlags, parseModParams, type ModParamValues } from "../../host/modules/modparams.js";
import { configureTenantPike, pikeModule } from "../../host/modules/pike.js";
import { sanityModule } from "../../host/modules/sanity.js";
import { dividePikeDensity, resetPikeConfiguration } from "../../host/modules/state/pike-store.js";
import { clearAllTenantState } from "../../host/modules/state/tenant-scope.js";
import { loadTenantsFile, TenantsConfigError } from "../../host/tenants/index.js";
import { makeContext, makeRecordingHost, request } from "../helpers/context.js";
import { tenantDir } from "../tenants/fixtures.js";
import { caller } from "./call.js";

const mf = caller(maxfwdModule);
const sanity = caller(sanityModule);
const pike = caller(pikeModule);

function tenant(id: string, given: Record<string, Record<string, unknown>>): TenantState {
  const parsed = parseModParams(KEMI_MODULES, given);
  expect(parsed.issues).toEqual([]);
  return newTenantState(id, undefined, undefined, undefined, parsed.values);
}

describe("declared parameters, checked where given", () => {
  it("takes ints written as text (a command line) and refuses what the declaration does not allow, naming module.name", () => {
    const ok = parseModParams(KEMI_MODULES, { maxfwd: { max_limit: "30" }, sanity: { proxy_require: "foo,bar", noreply: 1 } });
    expect(ok).toEqual({ values: { maxfwd: { max_limit: 30 }, sanity: { proxy_require: "foo,bar", noreply: 1 } }, issues: [] });
    expect(parseModParams(KEMI_MODULES, { maxfwd: { max_limit: 256 }, sanity: { noreply: "yes", proxy_require: 5 }, nosuch: { a: 1 }, pike: { remove_latncy: 1 } }).issues).toEqual([
      { field: "maxfwd.max_limit", message: "must be 0 to 255" },
      { field: "sanity.noreply", message: 'must be a whole number, not "yes"' },
      { field: "sanity.proxy_require", message: "must be a string, not 5" },
      { field: "nosuch", message: expect.stringContaining('no module "nosuch" with parameters (modules with parameters: ') },
      { field: "pike.remove_latncy", message: 'module pike has no parameter "remove_latncy" (parameters: sampling_time_unit, reqs_density_per_unit, remove_latency)' },
    ]);
    expect(modParamFlags(["maxfwd.max_limit=30", "max_limit=30"])).toEqual({
      given: { maxfwd: { max_limit: "30" } },
      issues: [{ field: "", message: '"max_limit=30" is not module.name=value' }],
    });
  });

  it("the tenants file's modparams: reach the tenant; a bad one names its field", () => {
    const d = tenantDir();
    d.write("a.js", "function ksr_request_route() {}\n");
    const good = d.write("good.yaml", "tenants:\n  - id: a\n    script: a.js\n    modparams:\n      maxfwd: { max_limit: 20 }\n      pike: { reqs_density_per_unit: 3 }\n");
    expect(loadTenantsFile(good).tenants[0]!.modparams).toEqual({ maxfwd: { max_limit: 20 }, pike: { reqs_density_per_unit: 3 } });
    expect(loadTenantsFile(d.write("none.yaml", "tenants:\n  - id: a\n    script: a.js\n")).tenants[0]!.modparams).toEqual({});
    const bad = d.write("bad.yaml", "tenants:\n  - id: a\n    script: a.js\n    modparams: { maxfwd: { max_limt: 20 }, sanity: { noreply: on } }\n");
    let issues: unknown;
    try {
      loadTenantsFile(bad);
    } catch (e) {
      issues = (e as TenantsConfigError).issues;
    }
    expect(issues).toEqual([
      expect.objectContaining({ tenant: "a", field: "modparams.maxfwd.max_limt", message: expect.stringContaining('no parameter "max_limt"') }),
      expect.objectContaining({ tenant: "a", field: "modparams.sanity.noreply", message: 'must be a whole number, not "on"' }),
    ]);
  });
});

describe("per tenant in one process", () => {
  beforeEach(() => {
    clearAllTenantState();
    resetPikeConfiguration();
    dividePikeDensity(1);
  });

  it("maxfwd.max_limit: each tenant lowers a large Max-Forwards to its own limit", () => {
    const lowered = (state: TenantState): string[] => {
      const { ctx } = makeContext(request().replace("Max-Forwards: 70", "Max-Forwards: 200"), { tenant: state });
      expect(mf("process_maxfwd", ctx, 10)).toBe(1);
      return [...ctx.edits.replaced.values()];
    };
    expect(lowered(tenant("low", { maxfwd: { max_limit: 16 } }))).toEqual(["Max-Forwards: 16\r\n"]);
    expect(lowered(tenant("default", {}))).toEqual(["Max-Forwards: 70\r\n"]);
  });

  it("sanity.noreply and proxy_require: one tenant's failing check replies, the other's waits for sanity_reply; one accepts a Proxy-Require tag", () => {
    const check = (state: TenantState): { result: unknown; replies: number } => {
      const { ctx, host } = makeContext(request({ extraHeaders: ["Proxy-Require: foo"] }), { tenant: state });
      return { result: sanity("sanity_check", ctx, 512, 0), replies: host.replies.length };
    };
    expect(check(tenant("replies", {}))).toEqual({ result: -1, replies: 1 });
    expect(check(tenant("quiet", { sanity: { noreply: 1 } }))).toEqual({ result: -1, replies: 0 });
    expect(check(tenant("knows-foo", { sanity: { proxy_require: "foo" } }))).toEqual({ result: 1, replies: 0 });
  });

  it("pike's reqs_density_per_unit: one tenant's flood threshold does not change another's", () => {
    const host = makeRecordingHost({ now: 1_700_000_000_000 });
    const strict = tenant("strict", { pike: { reqs_density_per_unit: 2 } });
    const lenient = tenant("lenient", {});
    configureTenantPike(strict.id, strict.modparams);
    configureTenantPike(lenient.id, lenient.modparams);
    const burst = (state: TenantState): unknown[] =>
      Array.from({ length: 6 }, () => pike("pike_check_req", makeContext(request(), { host, tenant: state, rcv: { srcIp: "203.0.113.5" } }).ctx));
    // Density 2: prefixes are hot at 1 hit, so the address counts from its 3rd request (as in pike.test.ts).
    expect(burst(strict)).toEqual([1, 1, 1, 1, 1, -2]);
    expect(burst(lenient)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it("a tenant's values are its own object: nothing set on one is seen by another", () => {
    const values: ModParamValues = tenant("a", { maxfwd: { max_limit: 5 } }).modparams;
    expect(tenant("b", {}).modparams).toEqual({});
    expect(values).toEqual({ maxfwd: { max_limit: 5 } });
  });
});
