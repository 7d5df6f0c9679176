/**
 * Generates runtime/ksr.d.ts, the typings of the global `KSR` object for
 * script authors, from the module export tables (scripts/gen-dts.mjs writes
 * it; test/tooling/typings.test.ts keeps the committed copy fresh).
 *
 * The export tables carry parameter types but no parameter names, so
 * parameters are named by position.
 */
import type { KemiModule, KemiParamType, KemiReturnType } from "../modules/types.js";

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

/** Route functions a script defines; Kamailio calls them by name. */
const ROUTES: readonly [string, string][] = [
  ["ksr_request_route", "every SIP request received (required)."],
  ["ksr_reply_route", "every SIP reply received, before it is forwarded by its Via; KSR.x.drop() keeps it from being forwarded (optional)."],
  ["ksr_onsend_route", "each request about to be sent, $snd(ip|port|proto|buf) describing the send (optional; KSR.x.drop() keeps it from being sent)."],
];

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

function members(mod: KemiModule, indent: string): string {
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
      out += comment([fn.doc, native, RETURN_NOTE[fn.returns]], indent);
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
  let out = "";
  out += "// Generated from the KEMI export tables (host/modules) by scripts/gen-dts.mjs; do not edit.\n";
  out += "// Reference it from a TypeScript routing script:\n";
  out += '//   /// <reference path="node_modules/ksr-sandbox/runtime/ksr.d.ts" />\n';
  out += "// or list it in the \"include\" (or \"files\") of your tsconfig.json.\n";
  out += "//\n";
  out += "// A routing script is a plain script, not a module: it defines these global\n";
  out += "// functions, which the server calls by name with no arguments:\n";
  for (const [name, what] of ROUTES) out += `//   ${name}(): ${what}\n`;
  out += "// Their return values are ignored; KSR.x.exit() ends a route early. The optional ones can be\n";
  out += "// renamed (kemi.onsend_route_callback, kemi.reply_route_callback); kemi.event_route_callback\n";
  out += "// names a function called with the event name (\"core:worker-one-init\").\n\n";

  out += "declare namespace KSRTypes {\n";
  out += "  /** The KEMI interpreter functions (Kamailio app_jsdt's KSR.x). */\n";
  out += "  interface XModule {\n";
  out += comment(["Ends the route execution here, like `exit` in kamailio.cfg. Every later KSR call of this execution is refused."], "    ");
  out += "    exit(): never;\n";
  out += comment(["Ends the route execution and drops the message, like `drop` in kamailio.cfg: a reply is not forwarded."], "    ");
  out += "    drop(): never;\n";
  out += comment(
    [
      "Calls a module's native kamailio.cfg function, found by name and parameter count, every",
      "parameter given as a string and converted as its fixup does (`ksr api --native` lists them).",
      "-1 for a KEMI-only name, an unknown name or count, or a function Kamailio's modf refuses",
      "(fixup without free: sl_send_reply, t_reply, save, ...). Prefer the dedicated KSR function.",
    ],
    "    ",
  );
  out += "    modf(fname: string, ...params: string[]): number;\n";
  out += "  }\n";
  for (const mod of modulesSorted) {
    out += `\n  /** KSR.${mod.name}: Kamailio module ${mod.kamailioModule}. */\n`;
    out += `  interface ${interfaceName(mod.name)} {\n`;
    out += members(mod, "    ");
    out += "  }\n";
  }
  out += "\n  /** The KSR object: core functions and one member per module. */\n";
  out += "  interface KSR {\n";
  out += "    readonly x: XModule;\n";
  for (const mod of modulesSorted) out += `    readonly ${mod.name}: ${interfaceName(mod.name)};\n`;
  if (core !== undefined) out += members(core, "    ");
  out += "  }\n";
  out += "\n  /** The type of a route function (ksr_request_route and the others). */\n";
  out += "  type RouteFunction = () => void;\n";
  out += "}\n\n";
  out += "/** The Kamailio KEMI API, as in app_jsdt. */\n";
  out += "declare const KSR: KSRTypes.KSR;\n";
  return out;
}
