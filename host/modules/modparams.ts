/**
 * Module parameters per tenant. Each module declares its parameters
 * (`modparams` in its table: name, type, Kamailio's default); a tenant's
 * values live in its TenantState (`modparams`), set from the tenants file's
 * `modparams:` block or `ksr run --modparam module.name=value`, so that
 * tenants in one process never share a setting. A module reads the value
 * for the message's tenant with intParam/strParam; a tenant that sets
 * nothing gets the declared default.
 */
import type { MessageContext } from "../core/context.js";
import type { KemiModule, ModParam } from "./types.js";

/** A tenant's parameter values: module name (as in KSR.<module>) → parameter → value. Only values set. */
export type ModParamValues = Readonly<Record<string, Readonly<Record<string, number | string>>>>;

export const NO_MODPARAMS: ModParamValues = Object.freeze({});

function declared(mod: KemiModule, name: string, type: ModParam["type"]): ModParam {
  const param = mod.modparams?.find((p) => p.name === name);
  // A module reading a parameter it does not declare is a programming error.
  if (param === undefined || param.type !== type) throw new Error(`module ${mod.name} declares no ${type} parameter ${name}`);
  return param;
}

/** The message's tenant's value of an int parameter of `mod`. */
export function intParam(ctx: MessageContext, mod: KemiModule, name: string): number {
  const param = declared(mod, name, "int");
  const value = ctx.tenant.modparams[mod.name]?.[name];
  return typeof value === "number" ? value : (param.default as number);
}

/** The message's tenant's value of a str parameter of `mod`. */
export function strParam(ctx: MessageContext, mod: KemiModule, name: string): string {
  const param = declared(mod, name, "str");
  const value = ctx.tenant.modparams[mod.name]?.[name];
  return typeof value === "string" ? value : (param.default as string);
}

/** A tenant's value of a parameter, outside any message (settings applied when the tenant is set up). */
export function tenantParam(values: ModParamValues, mod: KemiModule, name: string): number | string {
  const param = mod.modparams?.find((p) => p.name === name);
  if (param === undefined) throw new Error(`module ${mod.name} declares no parameter ${name}`);
  return values[mod.name]?.[name] ?? param.default;
}

export interface ModParamIssue {
  /** "maxfwd.max_limit", "maxfwd", or "" for the block itself. */
  readonly field: string;
  readonly message: string;
}

/**
 * Checks given values against the modules' declarations: an unknown module
 * or parameter, a value of the wrong type (an int given as text, as a
 * command line gives it, must be a whole number) or one its check refuses
 * is an issue naming `module.name`.
 */
export function parseModParams(
  modules: readonly KemiModule[],
  given: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
): { readonly values: ModParamValues; readonly issues: readonly ModParamIssue[] } {
  const issues: ModParamIssue[] = [];
  const values: Record<string, Record<string, number | string>> = {};
  const withParams = modules.filter((m) => (m.modparams ?? []).length > 0);
  for (const [modName, params] of Object.entries(given)) {
    const mod = withParams.find((m) => m.name === modName);
    if (mod === undefined) {
      issues.push({ field: modName, message: `no module "${modName}" with parameters (modules with parameters: ${withParams.map((m) => m.name).join(", ")})` });
      continue;
    }
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      issues.push({ field: modName, message: "must be a map of parameter names to values" });
      continue;
    }
    for (const [name, raw] of Object.entries(params)) {
      const field = `${modName}.${name}`;
      const param = mod.modparams!.find((p) => p.name === name);
      if (param === undefined) {
        issues.push({ field, message: `module ${modName} has no parameter "${name}" (parameters: ${mod.modparams!.map((p) => p.name).join(", ")})` });
        continue;
      }
      let value: number | string;
      if (param.type === "int") {
        const text = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw.trim() : "";
        if (!/^-?\d{1,10}$/.test(text) || !Number.isSafeInteger(Number(text))) {
          issues.push({ field, message: `must be a whole number, not ${JSON.stringify(raw)}` });
          continue;
        }
        value = Number(text);
      } else {
        if (typeof raw !== "string") {
          issues.push({ field, message: `must be a string, not ${JSON.stringify(raw)}` });
          continue;
        }
        value = raw;
      }
      const problem = param.check?.(value);
      if (problem !== undefined) {
        issues.push({ field, message: problem });
        continue;
      }
      (values[modName] ??= {})[name] = value;
    }
  }
  return { values, issues };
}

/** `--modparam module.name=value` texts as the given values of parseModParams; malformed ones as issues. */
export function modParamFlags(texts: readonly string[]): { readonly given: Record<string, Record<string, string>>; readonly issues: readonly ModParamIssue[] } {
  const given: Record<string, Record<string, string>> = {};
  const issues: ModParamIssue[] = [];
  for (const text of texts) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(text);
    if (m === null) {
      issues.push({ field: "", message: `"${text}" is not module.name=value` });
      continue;
    }
    (given[m[1]!] ??= {})[m[2]!] = m[3]!;
  }
  return { given, issues };
}
