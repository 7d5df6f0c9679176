/**
 * Generates runtime/ksr.d.ts, the typings of the global `KSR` object for
 * script authors, from the module export tables (scripts/gen-dts.mjs writes
 * it; test/tooling/typings.test.ts keeps the committed copy fresh).
 *
 * The export tables carry parameter types but no parameter names, so
 * parameters are named by position.
 */
import type { KemiModule, KemiParamType, KemiReturnType } from "../modules/types.js";
import { KSR_X, ROUTE_ENTRY_POINTS, routeEntryPoint, type RouteEntryPoint, type RouteFlagName } from "../../runtime/interpreter.js";
import { BridgeTable } from "../../sandbox/bridge.js";

const PARAM_TYPE: Record<KemiParamType, string> = { str: "string", int: "number" };

const RETURN_TYPE: Record<KemiReturnType, string> = {
  int: "number",
  bool: "boolean",
  xval: "string | number | null",
  none: "void",
};

const RETURN_NOTE: Record<KemiReturnType, string> = {
  int: "@returns > 0 on success, < 0 on failure (Kamailio's int convention).",
  bool: "",
  xval: "@returns a string, a number, or null.",
  none: "",
};

/** One line of the header for a route kind: how its function is named, with what, and when it runs. */
function routeLine(route: RouteEntryPoint): string {
  const args = route.args.map((a) => `${a}: string`).join(", ");
  const naming = route.naming;
  switch (naming.by) {
    case "fixed":
      return `${naming.name}(${args}): ${route.doc}${route.required ? " (required)" : ""}.`;
    case "setting":
      return naming.defaultName !== ""
        ? `${naming.defaultName}(${args}): ${route.doc} (optional; renamed or turned off by ${naming.setting}).`
        : `the function ${naming.setting} names (${args}): ${route.doc} (none by default).`;
    case "script":
      return `the function ${naming.call}("name") names (${args}): ${route.doc}.`;
  }
}

function comment(lines: readonly string[], indent: string): string {
  const body = lines.filter((l) => l !== "");
  if (body.length === 0) return "";
  // "*/" inside a doc text would end the comment early.
  const safe = body.map((l) => l.replace(/\*\//g, "*\\/"));
  if (safe.length === 1) return `${indent}/** ${safe[0]} */\n`;
  return `${indent}/**\n${safe.map((l) => `${indent} * ${l}`).join("\n")}\n${indent} */\n`;
}

function signature(name: string, params: readonly KemiParamType[], returns: KemiReturnType): string {
  const list = params.map((p, i) => `p${i + 1}: ${PARAM_TYPE[p]}`).join(", ");
  return `${name}(${list}): ${RETURN_TYPE[returns]};`;
}

function interfaceName(moduleName: string): string {
  return moduleName
    .split(/[^A-Za-z0-9]+/)
    .filter((s) => s !== "")
    .map((s) => s[0]!.toUpperCase() + s.slice(1))
    .join("") + "Module";
}

/** The doc line of a function's route flags; "" when unrestricted or unknown. */
function routesNote(routes: readonly RouteFlagName[] | undefined): string {
  if (routes === undefined || routes.includes("ANY_ROUTE")) return "";
  return `Kamailio 5.6 allows it in ${routes.join(", ")} (ksr check reports calls in other routes; the call runs).`;
}

function members(mod: KemiModule, indent: string, routesOf: ReadonlyMap<string, readonly RouteFlagName[] | undefined>): string {
  let out = "";
  const names = [...Object.keys(mod.functions), ...Object.keys(mod.unavailable ?? {})].sort();
  // KSR function → the native calls (name/parameter count) through which KSR.x.modf runs it.
  const nativeCalls = new Map<string, string[]>();
  for (const n of mod.native ?? []) {
    if (n.refused !== undefined || n.run !== undefined || n.kemi === undefined) continue;
    nativeCalls.set(n.kemi, [...(nativeCalls.get(n.kemi) ?? []), `"${n.name}" (${n.params.length})`]);
  }
  for (const name of names) {
    const fn = mod.functions[name];
    if (fn !== undefined) {
      const calls = nativeCalls.get(name);
      const native = calls !== undefined ? `KSR.x.modf reaches it as ${calls.join(", ")}.` : "";
      const routes = routesNote(routesOf.get(mod.name === "" ? `KSR.${name}` : `KSR.${mod.name}.${name}`));
      out += comment([fn.doc, native, routes, RETURN_NOTE[fn.returns]], indent);
      out += `${indent}${signature(name, fn.params, fn.returns)}\n`;
    } else {
      const u = mod.unavailable![name]!;
      out += comment([`@deprecated Not available here: ${u.reason}. Logs an error and returns a failure value.`], indent);
      out += `${indent}${signature(name, u.params, u.returns)}\n`;
    }
  }
  return out;
}

/** The text of runtime/ksr.d.ts for these modules. */
export function generateKsrDts(modules: readonly KemiModule[]): string {
  const modulesSorted = [...modules].filter((m) => m.name !== "").sort((a, b) => a.name.localeCompare(b.name));
  const core = modules.find((m) => m.name === "");
  const routesOf = new Map(new BridgeTable(modules).entries.map((e) => [e.qualifiedName, e.routes]));
  let out = "";
  out += "// Generated from the KEMI export tables (host/modules) and the interpreter table (runtime/interpreter.ts)\n// by scripts/gen-dts.mjs; do not edit.\n";
  out += "// Reference it from a TypeScript routing script:\n";
  out += '//   /// <reference path="node_modules/ksr-sandbox/runtime/ksr.d.ts" />\n';
  out += "// or list it in the \"include\" (or \"files\") of your tsconfig.json.\n";
  out += "//\n";
  out += "// A routing script is a plain script, not a module: it defines global functions,\n";
  out += "// which the server calls by name:\n";
  for (const route of ROUTE_ENTRY_POINTS) out += `//   ${routeLine(route)}\n`;
  out += "// Their return values are ignored; KSR.x.exit() ends a route early.\n\n";

  out += "declare namespace KSRTypes {\n";
  out += "  /** The KEMI interpreter functions (Kamailio app_jsdt's KSR.x). */\n";
  out += "  interface XModule {\n";
  for (const fn of KSR_X) {
    out += comment(fn.doc, "    ");
    out += `    ${fn.name}${fn.signature};\n`;
  }
  out += "  }\n";
  for (const mod of modulesSorted) {
    out += `\n  /** KSR.${mod.name}: Kamailio module ${mod.kamailioModule}. */\n`;
    out += `  interface ${interfaceName(mod.name)} {\n`;
    out += members(mod, "    ", routesOf);
    out += "  }\n";
  }
  out += "\n  /** The KSR object: core functions and one member per module. */\n";
  out += "  interface KSR {\n";
  out += "    readonly x: XModule;\n";
  for (const mod of modulesSorted) out += `    readonly ${mod.name}: ${interfaceName(mod.name)};\n`;
  if (core !== undefined) out += members(core, "    ", routesOf);
  out += "  }\n";
  const routeType = (route: RouteEntryPoint): string => `(${route.args.map((a) => `${a}: string`).join(", ")}) => void`;
  out += "\n  /** The type of a route function (ksr_request_route and the others). */\n";
  out += `  type RouteFunction = ${routeType(routeEntryPoint("request"))};\n`;
  out += "\n  /** The type of the function kemi.event_route_callback names. */\n";
  out += `  type EventRouteFunction = ${routeType(routeEntryPoint("event"))};\n`;
  out += "}\n\n";
  out += "/** The Kamailio KEMI API, as in app_jsdt. */\n";
  out += "declare const KSR: KSRTypes.KSR;\n";
  return out;
}
