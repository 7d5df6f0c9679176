import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { describe, expect, it } from "vitest";
import ts from "typescript";
import { checkScript, checkScriptFully, checkSource, formatFinding } from "../../host/cli/check.js";
import { KEMI_MODULES } from "../../host/modules/index.js";
import type { KemiModule } from "../../host/modules/types.js";
import { ROOT, runKsr } from "./cli.js";
import { BridgeTable } from "../../sandbox/bridge.js";
import { routeAllows, routeFlags, type RouteFlagName } from "../../runtime/interpreter.js";

const fixture = (name: string) => path.join(ROOT, "test/tooling/fixtures", name);

/** The messages of checkSource, as "line:col: message". */
function check(source: string, filename = "script.js", modules?: readonly KemiModule[]): string[] {
  return checkSource(source, filename, modules).map((f) => `${f.line}:${f.column}: ${f.message}`);
}

// A TypeScript file with a syntax error, kept out of the project's own tsc run.
const scratch = mkdtempSync(path.join(tmpdir(), "ksr-check-"));
const BROKEN_TS = path.join(scratch, "check-syntax.ts");
writeFileSync(
  BROKEN_TS,
  ["function ksr_request_route(): void {", "  const status: number = 200;", "  if (status > 100 {", '    KSR.sl.sl_send_reply(status, "OK");', "  }", "}", ""].join("\n"),
);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const route = (body: string) => `function ksr_request_route() {\n${body}\n}\n`;

describe("ksr check: KSR calls", () => {
  it("reports a function no module provides, at the call", () => {
    expect(check(route('  KSR.sl.sl_send_replyy(404, "Not Found");'))).toEqual([
      "2:3: KSR.sl.sl_send_replyy is not provided by module sl",
    ]);
  });

  it("reports an unknown module and an unknown core function", () => {
    expect(check(route("  KSR.nosuch.go();\n  if (KSR.is_INVITEE()) return;"))).toEqual([
      "2:3: KSR.nosuch is not provided by any module",
      "3:7: KSR.is_INVITEE is not provided by any module",
    ]);
  });

  it("reports unknown names also when they are not called, and through string-literal members", () => {
    expect(check(route('  var send = KSR.sl.reply;\n  KSR["sl"]["nope"](1, "x");'))).toEqual([
      "2:14: KSR.sl.reply is not provided by module sl",
      "3:3: KSR.sl.nope is not provided by module sl",
    ]);
  });

  it("reports calls with fewer arguments than declared parameters, and with more", () => {
    expect(check(route("  KSR.sl.sl_send_reply(404);\n  KSR.is_INVITE(1);"))).toEqual([
      "2:3: KSR.sl.sl_send_reply takes 2 arguments (int, str), 1 given",
      "3:3: KSR.is_INVITE takes 0 arguments (none), 1 given; the extra ones are ignored",
    ]);
  });

  it("accepts correct calls, spreads it cannot count, and properties of functions", () => {
    const body = [
      '  KSR.sl.sl_send_reply(200, "OK");',
      "  var args = [200, 'OK'];",
      "  KSR.sl.sl_send_reply(...args);",
      "  KSR.sl.sl_send_reply.apply(undefined, args);",
      "  var sl = KSR.sl;",
      "  KSR.x.exit();",
    ].join("\n");
    expect(check(route(body))).toEqual([]);
  });

  it("checks KSR.x: unknown members, modf names and modf parameter counts", () => {
    const body = [
      "  KSR.x.leave();",
      "  KSR.x.modf();",
      '  KSR.x.modf("no_such_function");',
      '  KSR.x.modf("sl_send_reply", "200");',
      '  KSR.x.modf("sl_send_reply", "200", "OK");',
      "  KSR.x.modf(someName, 1);",
      '  KSR.x.modf("get_ruri");',
      '  KSR.x.modf("sanity_check");',
      '  KSR.x.modf("sanity_check", "1", "2");',
      '  KSR.x.modf("sanity_check", "1", "2", "3");',
      "  KSR.x.drop();",
    ].join("\n");
    expect(check(route(body), "s.js", KEMI_MODULES)).toEqual([
      "2:3: KSR.x.leave does not exist (KSR.x has exit, drop, modf)",
      "3:3: KSR.x.modf needs the name of a module function",
      '4:3: KSR.x.modf("no_such_function"): no native module function of that name is provided (KSR.x.modf reaches native kamailio.cfg functions only, not KEMI-only ones; it answers -1)',
      '5:3: KSR.x.modf("sl_send_reply") takes 2 parameters, 1 given (it answers -1)',
      '6:3: KSR.x.modf("sl_send_reply") with 2 parameters: Kamailio 5.6 refuses it (fixup without free; it answers -1); call KSR.sl.sl_send_reply instead',
      '8:3: KSR.x.modf("get_ruri"): no native module function of that name is provided (KSR.x.modf reaches native kamailio.cfg functions only, not KEMI-only ones; it answers -1)',
      '11:3: KSR.x.modf("sanity_check") takes 0, 1 or 2 parameters, 3 given (it answers -1)',
    ]);
  });

  it("reports functions a module lists as unavailable, with the reason (rtpproxy: no RTP proxy here)", () => {
    const modules = KEMI_MODULES;
    expect(check(route('  KSR.rtpproxy.rtpproxy_manage("co");\n  KSR.x.modf("rtpproxy_manage", "co");'), "s.js", modules)).toEqual([
      "2:3: KSR.rtpproxy.rtpproxy_manage: not available here: no RTP proxy is configured",
      '3:3: KSR.x.modf("rtpproxy_manage") (KSR.rtpproxy.rtpproxy_manage): not available here: no RTP proxy is configured',
    ]);
  });
});

describe("ksr check: route types (Kamailio's route flags)", () => {
  it("reports a request-only function in the reply and onsend routes, and allows what Kamailio allows there", () => {
    const source = [
      route('KSR.sl.sl_send_reply(200, "OK");'),
      "function ksr_reply_route() {",
      '  KSR.sl.sl_send_reply(200, "OK");',
      '  KSR.registrar.save("location", 0);', // REQUEST_ROUTE|FAILURE_ROUTE|ONREPLY_ROUTE
      '  KSR.info("no flags: no finding");',
      "}",
      "function ksr_onsend_route() { KSR.rr.record_route(); KSR.siputils.has_totag(); }",
    ].join("\n");
    expect(check(source)).toEqual([
      "6:3: KSR.sl.sl_send_reply in ksr_reply_route() (reply route, CORE_ONREPLY_ROUTE): Kamailio 5.6 allows it in REQUEST_ROUTE only; KEMI does not check, the call runs",
      "10:31: KSR.rr.record_route in ksr_onsend_route() (onsend route, ONSEND_ROUTE): Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE only; KEMI does not check, the call runs",
    ]);
    expect(checkSource(source, "s.js").every((f) => f.kind === "route")).toBe(true);
  });

  it("checks the routes a script names with a literal, not the helpers they call (a sub-route is a request route to Kamailio's cfg parser); KSR.x.modf by its native's flags", () => {
    const source = [
      "function helper() { KSR.sl.sl_send_reply(500, \"x\"); }",
      "function ksr_request_route() {",
      '  KSR.tm.t_on_failure("on_fail"); KSR.tm.t_on_reply("on_reply");',
      "  helper(); KSR.tm.t_relay();",
      "}",
      'function on_fail() { KSR.tm.t_reply(500, "x"); KSR.sl.sl_send_reply(500, "x"); helper(); }',
      'var on_reply = function () { KSR.x.modf("t_relay"); KSR.x.modf("has_totag"); };',
      "function not_a_route() { KSR.sl.sl_send_reply(500, \"x\"); }",
    ].join("\n");
    expect(check(source)).toEqual([
      "6:48: KSR.sl.sl_send_reply in on_fail() (failure route, FAILURE_ROUTE): Kamailio 5.6 allows it in REQUEST_ROUTE only; KEMI does not check, the call runs",
      '7:30: KSR.x.modf("t_relay") in on_reply() (onreply route, TM_ONREPLY_ROUTE): Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE only; KEMI does not check, the call runs',
    ]);
  });
});

describe("route flags as Kamailio's cfg parser matches them", () => {
  it("needs every bit of the route's type, except that an event route takes request-route functions", () => {
    const flags = (...names: RouteFlagName[]) => routeFlags(names);
    expect(routeAllows(flags("ONREPLY_ROUTE"), "reply")).toBe(true);
    expect(routeAllows(flags("ONREPLY_ROUTE"), "onreply")).toBe(true);
    expect(routeAllows(flags("TM_ONREPLY_ROUTE"), "reply")).toBe(false);
    expect(routeAllows(flags("REQUEST_ROUTE"), "event")).toBe(true);
    expect(routeAllows(flags("FAILURE_ROUTE"), "event")).toBe(false);
    expect(routeAllows(flags("ANY_ROUTE"), "branch_failure")).toBe(true);
    expect(routeAllows(flags("REQUEST_ROUTE", "FAILURE_ROUTE"), "branch_failure")).toBe(false);
  });

  it("every native function declares its routes, and a KSR function a native runs has that native's", () => {
    const table = new BridgeTable(KEMI_MODULES);
    for (const native of table.natives) expect(native.routes.length, `${native.name}/${native.params.length}`).toBeGreaterThan(0);
    const byName = new Map(table.entries.map((e) => [e.qualifiedName, e.routes]));
    // Spot checks against Kamailio 5.6.3's cmd_exports (sl.c, tm.c, registrar.c).
    expect(byName.get("KSR.sl.sl_send_reply")).toEqual(["REQUEST_ROUTE"]);
    expect(byName.get("KSR.tm.t_relay")).toEqual(["REQUEST_ROUTE", "FAILURE_ROUTE"]);
    expect(byName.get("KSR.registrar.save")).toEqual(["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"]);
    expect(byName.get("KSR.siputils.has_totag")).toEqual(["ANY_ROUTE"]);
    // No native, no declaration: unknown, never reported.
    expect(byName.get("KSR.info")).toBeUndefined();
  });
});

describe("ksr check: script shape", () => {
  it("reports a missing ksr_request_route", () => {
    expect(check("function ksr_reply_route() {}\n")).toEqual([
      "1:1: missing ksr_request_route(): every request would be logged as unhandled",
    ]);
  });

  it("accepts ksr_request_route defined by var or globalThis assignment", () => {
    expect(check("var ksr_request_route = function () {};\n")).toEqual([]);
    expect(check("globalThis.ksr_request_route = () => {};\n")).toEqual([]);
  });

  it("reports a JavaScript syntax error with file:line:col", () => {
    const findings = checkSource("function ksr_request_route() {\n  if (x {\n}\n", "broken.js");
    expect(findings).toHaveLength(1);
    expect(formatFinding(findings[0]!)).toMatch(/^broken\.js:2:\d+: /);
  });

  it("reports a TypeScript syntax error with file:line:col", () => {
    const findings = checkScript(BROKEN_TS);
    expect(findings).toHaveLength(1);
    expect(formatFinding(findings[0]!)).toMatch(/check-syntax\.ts:3:\d+: /);
  });

  it("maps TypeScript positions back to the source", () => {
    const source = [
      "interface Reply { status: number; reason: string }",
      "",
      "const NOT_FOUND: Reply = { status: 404, reason: 'Not Found' };",
      "function ksr_request_route(): void {",
      "  KSR.sl.sl_send_reply(NOT_FOUND.status);",
      "}",
    ].join("\n");
    expect(check(source, "script.ts")).toEqual(["5:3: KSR.sl.sl_send_reply takes 2 arguments (int, str), 1 given"]);
  });

  it("finds nothing in the shipped example script", () => {
    expect(checkScript(path.join(ROOT, "examples/basic-proxy.js"))).toEqual([]);
  });
});

describe("ksr check: TypeScript types", { timeout: 60_000 }, () => {
  const TYPED = path.join(scratch, "typed.ts");
  writeFileSync(
    TYPED,
    [
      "function ksr_request_route(): void {",
      "  const code: number = KSR.kx.get_ua();",
      '  KSR.sl.sl_send_replyy(404, "Not Found");',
      '  KSR.sl.sl_send_reply("404", "Not Found");',
      "}",
      "",
    ].join("\n"),
  );

  it("reports type errors against the typings, leaving out lines with a KSR finding", () => {
    expect(checkScriptFully(TYPED, KEMI_MODULES, ts).map((f) => `${f.line}:${f.column}: ${f.kind}: ${f.message}`)).toEqual([
      "2:9: type: type error TS2322: Type 'string | number | null' is not assignable to type 'number'. Type 'null' is not assignable to type 'number'.",
      "3:3: api: KSR.sl.sl_send_replyy is not provided by module sl",
      "4:24: type: type error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'.",
    ]);
  });

  it("does not type-check without the typescript package, nor JavaScript", () => {
    expect(checkScriptFully(TYPED, KEMI_MODULES, undefined).map((f) => f.kind)).toEqual(["api"]);
    expect(checkScriptFully(path.join(ROOT, "examples/basic-proxy.js"), KEMI_MODULES, ts)).toEqual([]);
  });

  it("finds no type errors in the TypeScript example, which references its own typings", () => {
    expect(checkScriptFully(path.join(ROOT, "examples/typescript-proxy.ts"), KEMI_MODULES, ts)).toEqual([]);
  });
});

describe("ksr check command", { timeout: 60_000 }, () => {
  it("prints file:line:col findings and a summary, exit 1", async () => {
    const file = fixture("check-problems.js");
    const r = await runKsr(["check", file]);
    expect(r.status).toBe(1);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toEqual([
      `${file}:3:3: KSR.sl.sl_send_reply takes 2 arguments (int, str), 1 given`,
      `${file}:4:3: KSR.sl.sl_send_replyy is not provided by module sl`,
      `${file}:5:3: KSR.nosuchmodule is not provided by any module`,
      `${file}:6:3: KSR.x.modf("sl_send_reply") takes 2 parameters, 1 given (it answers -1)`,
      `${file}:7:3: KSR.x.leave does not exist (KSR.x has exit, drop, modf)`,
      "5 problems found in 1 file",
    ]);
  });

  it("exits 1 on a syntax error, naming file:line", async () => {
    const r = await runKsr(["check", BROKEN_TS]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/check-syntax\.ts:3:\d+: .*\n1 problem found in 1 file\n$/);
  });

  it("exits 0 for clean scripts", async () => {
    const r = await runKsr(["check", "examples/basic-proxy.js", "examples/typescript-proxy.ts"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("no problems found in 2 files\n");
    expect(r.status).toBe(0);
  });

  it("reports an unreadable file as a problem", async () => {
    const r = await runKsr(["check", "does/not/exist.js"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^does\/not\/exist\.js:1:1: cannot read script: /);
  });
});
