/**
 * runtime/interpreter.ts is the one list of KSR.x and of the route entry
 * points. These tests fail when a view of it disagrees: the facade inside
 * the isolate, `ksr check`, the typings, `ksr api`, the kemi.* settings of
 * the tenants file and of `ksr run`, and the routing's defaults.
 */
import { describe, expect, test } from "vitest";
import { KSR_X, REQUEST_ROUTE, ROUTE_ENTRY_POINTS, ROUTE_FLAG, SETTING_ROUTES } from "../../runtime/interpreter.js";
import { checkSource } from "../../host/cli/check.js";
import { generateKsrDts } from "../../host/cli/typings.js";
import { describeApi, describeRoutes } from "../../host/cli/api.js";
import { KEMI_MODULES } from "../../host/modules/index.js";
import { DEFAULT_KEMI_CALLBACKS } from "../../host/core/context.js";
import { loadTenantsFile } from "../../host/tenants/index.js";
import { tenantDir } from "../tenants/fixtures.js";
import { fakeHost, makeContext, runnerFor } from "../sandbox/fixtures.js";
import { runKsr } from "./cli.js";

describe("KSR.x", () => {
  test("the isolate's KSR.x has exactly the declared functions", () => {
    const runner = runnerFor(`function ${REQUEST_ROUTE}() { throw new Error(JSON.stringify(Object.getOwnPropertyNames(KSR.x).sort())); }`);
    const outcome = runner.runRoute(REQUEST_ROUTE, makeContext(fakeHost()));
    runner.dispose();
    expect(outcome).toMatchObject({ status: "error", message: `Error: ${JSON.stringify(KSR_X.map((f) => f.name).sort())}` });
  });

  test("ksr check knows each declared function and no other", () => {
    for (const fn of KSR_X) {
      const args = Array.from({ length: fn.minArgs }, () => '"get_ruri_no_such"').join(", ");
      const findings = checkSource(`function ${REQUEST_ROUTE}() { KSR.x.${fn.name}(${args}); }`, "s.js");
      expect(findings.filter((f) => f.message.includes("does not exist"))).toEqual([]);
    }
    const unknown = checkSource(`function ${REQUEST_ROUTE}() { KSR.x.restart(); }`, "s.js").map((f) => f.message);
    expect(unknown).toEqual([`KSR.x.restart does not exist (KSR.x has ${KSR_X.map((f) => f.name).join(", ")})`]);
  });

  test("the typings and ksr api list each declared function", () => {
    const dts = generateKsrDts(KEMI_MODULES);
    const api = describeApi(KEMI_MODULES).filter((e) => e.module === "x");
    for (const fn of KSR_X) expect(dts).toContain(`    ${fn.name}${fn.signature};`);
    expect(api.map((e) => e.name).sort()).toEqual(KSR_X.map((f) => f.name).sort());
  });
});

describe("route entry points", () => {
  test("every kind is in the typings header and in ksr api --routes", () => {
    const dts = generateKsrDts(KEMI_MODULES);
    const header = dts.slice(0, dts.indexOf("declare namespace"));
    for (const route of ROUTE_ENTRY_POINTS) {
      const naming = route.naming;
      const named = naming.by === "fixed" ? naming.name : naming.by === "setting" ? naming.setting : naming.call;
      expect(header).toContain(named);
    }
    expect(describeRoutes().map((r) => [r.kind, r.flagValue])).toEqual(ROUTE_ENTRY_POINTS.map((r) => [r.kind, ROUTE_FLAG[r.flag]]));
  });

  test("ksr check asks for the required route by its name", () => {
    expect(checkSource(`function ${REQUEST_ROUTE}() {}`, "s.js")).toEqual([]);
    expect(checkSource("function ksr_route() {}", "s.js").map((f) => f.message)).toEqual([
      `missing ${REQUEST_ROUTE}(): every request would be logged as unhandled`,
    ]);
  });

  test("a route a script names is named by a KSR function that exists and takes the name", () => {
    const api = describeApi(KEMI_MODULES);
    for (const route of ROUTE_ENTRY_POINTS) {
      if (route.naming.by !== "script") continue;
      const [, module, name] = route.naming.call.split(".");
      expect(api.find((e) => e.module === module && e.name === name)).toMatchObject({ params: ["str"], available: true });
    }
  });

  test("each kemi.* setting: its default is the routing's, its tenants-file key and its ksr run flag are accepted", async () => {
    for (const route of SETTING_ROUTES) expect(DEFAULT_KEMI_CALLBACKS[route.kind]).toBe(route.naming.defaultName);
    const d = tenantDir();
    d.write("a.js", `function ${REQUEST_ROUTE}() {}`);
    const keys = SETTING_ROUTES.map((r, i) => `${r.naming.tenantKey}: cb${i}`).join(", ");
    const file = d.write("tenants.yaml", `tenants:\n  - id: a\n    script: a.js\n    kemi: { ${keys} }\n`);
    const tenant = loadTenantsFile(file).tenants[0]!;
    expect(tenant.kemi).toEqual(Object.fromEntries(SETTING_ROUTES.map((r, i) => [r.kind, `cb${i}`])));
    const help = await runKsr(["run", "--help"]);
    for (const route of SETTING_ROUTES) expect(help.stdout).toContain(`${route.naming.cliOption} <name|none>`);
  });
});
