/**
 * `ksr api`: every KSR function, derived from the module export tables only
 * (like app_jsdt's `api_list` RPC).
 */
import type { KemiModule, KemiParamType, KemiReturnType } from "../modules/types.js";
import { KSR_X, ROUTE_ENTRY_POINTS, ROUTE_FLAG, type RouteFlagName, type RouteKind } from "../../runtime/interpreter.js";
import { BridgeTable } from "../../sandbox/bridge.js";

export interface ApiEntry {
  /** Module name as scripts see it ("" for the core: KSR.<name>). */
  readonly module: string;
  readonly name: string;
  readonly params: readonly KemiParamType[];
  readonly returns: KemiReturnType;
  readonly doc: string;
  readonly available: boolean;
  /** Why an unavailable function cannot work here. */
  readonly reason?: string;
  /** The last parameter repeats (KSR.x.modf). */
  readonly variadic?: true;
  /** Kamailio route types it is meant for (declared, or its native functions'); absent when unknown. `ksr check` reports calls elsewhere. */
  readonly routes?: readonly RouteFlagName[];
}

/** Every KSR function: KSR.x's (module "x", runtime/interpreter.ts), the core's (module "") and the modules'. */
export function describeApi(modules: readonly KemiModule[]): ApiEntry[] {
  const out: ApiEntry[] = [];
  for (const fn of KSR_X) {
    out.push({ module: "x", name: fn.name, params: fn.params, returns: fn.returns, doc: fn.doc.join(" "), available: true, ...(fn.variadic ? { variadic: true as const } : {}) });
  }
  const routes = new Map(new BridgeTable(modules).entries.map((e) => [e.qualifiedName, e.routes]));
  for (const mod of modules) {
    for (const [name, fn] of Object.entries(mod.functions)) {
      const known = routes.get(qualifiedName({ module: mod.name, name }));
      out.push({ module: mod.name, name, params: fn.params, returns: fn.returns, doc: fn.doc, available: true, ...(known !== undefined ? { routes: known } : {}) });
    }
    for (const [name, fn] of Object.entries(mod.unavailable ?? {})) {
      out.push({ module: mod.name, name, params: fn.params, returns: fn.returns, doc: "", available: false, reason: fn.reason });
    }
  }
  out.sort((a, b) => a.module.localeCompare(b.module) || a.name.localeCompare(b.name));
  return out;
}

/** The call as a script writes it: `KSR.sl.sl_send_reply`. */
export function qualifiedName(e: Pick<ApiEntry, "module" | "name">): string {
  return e.module === "" ? `KSR.${e.name}` : `KSR.${e.module}.${e.name}`;
}

export function formatApiText(entries: readonly ApiEntry[]): string {
  let text = "";
  for (const e of entries) {
    const routes = e.routes === undefined || e.routes.includes("ANY_ROUTE") ? "" : ` [${e.routes.join("|")}]`;
    const signature = `${e.returns} ${qualifiedName(e)}(${e.params.join(", ")}${e.variadic ? "..." : ""})${routes}`;
    const note = e.available ? e.doc : `[unavailable: ${e.reason ?? "not supported"}]`;
    text += note ? `${signature}  — ${note}\n` : `${signature}\n`;
  }
  const unavailable = entries.filter((e) => !e.available).length;
  text += `${entries.length} functions (${entries.length - unavailable} available, ${unavailable} unavailable)\n`;
  return text;
}

/** One native (kamailio.cfg) function KSR.x.modf finds, from the modules' `native` declarations. */
export interface NativeApiEntry {
  readonly name: string;
  readonly params: readonly KemiParamType[];
  /** Kamailio module exporting it. */
  readonly kamailioModule: string;
  /** "KSR.sl.sl_reply_error": the KSR function a call runs (or, when refused, the one to use instead). */
  readonly kemi?: string;
  /** "call": KSR.x.modf runs it; "refused": Kamailio 5.6's modf refuses it (and so does this server). */
  readonly modf: "call" | "refused";
  readonly reason?: string;
  /** Kamailio 5.6's route flags of its export row. */
  readonly routes: readonly RouteFlagName[];
}

export function describeNatives(modules: readonly KemiModule[]): NativeApiEntry[] {
  const out: NativeApiEntry[] = [];
  for (const mod of modules) {
    for (const n of mod.native ?? []) {
      const kemi = n.kemi === undefined ? undefined : qualifiedName({ module: mod.name, name: n.kemi });
      out.push({
        name: n.name,
        params: n.params,
        kamailioModule: n.module ?? mod.kamailioModule,
        ...(kemi !== undefined ? { kemi } : {}),
        modf: n.refused === undefined ? "call" : "refused",
        ...(n.refused !== undefined ? { reason: n.refused } : {}),
        routes: n.routes,
      });
    }
  }
  out.sort((a, b) => a.name.localeCompare(b.name) || a.params.length - b.params.length);
  return out;
}

export function formatNativesText(entries: readonly NativeApiEntry[]): string {
  let text = "";
  for (const e of entries) {
    const signature = `${e.kamailioModule}: ${e.name}(${e.params.join(", ")}) [${e.routes.join("|")}]`;
    const what =
      e.modf === "refused"
        ? `[refused by Kamailio 5.6's modf: ${e.reason}]${e.kemi ? ` use ${e.kemi}` : ""}`
        : e.kemi !== undefined
          ? `→ ${e.kemi}`
          : "→ own implementation";
    text += `${signature}  ${what}\n`;
  }
  const refused = entries.filter((e) => e.modf === "refused").length;
  text += `${entries.length} native functions for KSR.x.modf (${entries.length - refused} callable, ${refused} refused as in Kamailio 5.6)\n`;
  return text;
}

/** One route entry point, for `ksr api --routes`. */
export interface RouteApiEntry {
  readonly kind: RouteKind;
  /** The function's name when fixed or defaulted; "" when a setting names it and has no default. */
  readonly name: string;
  /** How it is named: "fixed", the kemi.* setting, or the KSR function a script names it with. */
  readonly namedBy: string;
  readonly args: readonly string[];
  readonly required: boolean;
  /** Kamailio's route type while it runs (its flag names and value). */
  readonly flag: string;
  readonly flagValue: number;
  readonly doc: string;
}

export function describeRoutes(): RouteApiEntry[] {
  return ROUTE_ENTRY_POINTS.map((r) => {
    const naming = r.naming;
    const name = naming.by === "fixed" ? naming.name : naming.by === "setting" ? naming.defaultName : "";
    const namedBy = naming.by === "fixed" ? "fixed" : naming.by === "setting" ? naming.setting : naming.call;
    return { kind: r.kind, name, namedBy, args: r.args, required: r.required, flag: r.flag, flagValue: ROUTE_FLAG[r.flag], doc: r.doc };
  });
}

export function formatRoutesText(entries: readonly RouteApiEntry[]): string {
  let text = "";
  for (const e of entries) {
    const fn = e.name !== "" ? `${e.name}(${e.args.join(", ")})` : `(${e.args.join(", ")})`;
    const naming = e.namedBy === "fixed" ? "" : e.namedBy.startsWith("KSR.") ? ` named by ${e.namedBy}("name")` : ` named by ${e.namedBy}${e.name === "" ? ", none by default" : ""}`;
    text += `${e.kind}: ${fn}${naming}${e.required ? " [required]" : ""} ${e.flag} — ${e.doc}\n`;
  }
  text += `${entries.length} route kinds\n`;
  return text;
}

/** One pseudo-variable class, for `ksr api --pvs`. */
export interface PvApiEntry {
  /** The Kamailio module declaring it ("core" for the core's). */
  readonly module: string;
  /** How a script writes it: "$ru", "$var(name)", "$(hdr(name)[i])". */
  readonly forms: readonly string[];
  readonly writable: boolean;
  readonly doc: string;
}

/** Every module's pseudo-variables, from the tables' `pvs`, by module. */
export function describePvs(modules: readonly KemiModule[]): PvApiEntry[] {
  const out: PvApiEntry[] = [];
  for (const mod of modules) {
    for (const cls of mod.pvs ?? []) {
      const forms = cls.names.map((n) => (cls.form === "plain" ? `$${n}` : cls.indexable === true ? `$(${n}(name)[i])` : `$${n}(name)`));
      out.push({ module: mod.kamailioModule, forms, writable: cls.writable, doc: cls.doc });
    }
  }
  return out;
}

export function formatPvsText(entries: readonly PvApiEntry[]): string {
  let text = "";
  let module = "";
  for (const e of entries) {
    if (e.module !== module) {
      module = e.module;
      text += `${module}:\n`;
    }
    text += `  ${e.forms.join(", ")}${e.writable ? " (writable)" : ""}  — ${e.doc}\n`;
  }
  text += `${entries.length} pseudo-variable classes\n`;
  return text;
}

/** One module parameter, for `ksr api --modparams`. */
export interface ModParamApiEntry {
  /** The module as in KSR.<module> and in the tenants file's modparams: block. */
  readonly module: string;
  readonly name: string;
  readonly type: "int" | "str";
  readonly default: number | string;
  readonly doc: string;
}

export function describeModParams(modules: readonly KemiModule[]): ModParamApiEntry[] {
  return modules.flatMap((m) => (m.modparams ?? []).map((p) => ({ module: m.name, name: p.name, type: p.type, default: p.default, doc: p.doc })));
}

export function formatModParamsText(entries: readonly ModParamApiEntry[]): string {
  let text = "";
  for (const e of entries) text += `${e.module}.${e.name} ${e.type} (default ${JSON.stringify(e.default)})  — ${e.doc}\n`;
  text += `${entries.length} module parameters (per tenant: modparams: in the tenants file; ksr run --modparam module.name=value)\n`;
  return text;
}
