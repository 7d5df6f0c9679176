/**
 * `ksr api`: every KSR function, derived from the module export tables only
 * (like app_jsdt's `api_list` RPC).
 */
import type { KemiModule, KemiParamType, KemiReturnType } from "../modules/types.js";

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
}

export function describeApi(modules: readonly KemiModule[]): ApiEntry[] {
  const out: ApiEntry[] = [];
  for (const mod of modules) {
    for (const [name, fn] of Object.entries(mod.functions)) {
      out.push({ module: mod.name, name, params: fn.params, returns: fn.returns, doc: fn.doc, available: true });
    }
    for (const [name, fn] of Object.entries(mod.unavailable ?? {})) {
      out.push({ module: mod.name, name, params: fn.params, returns: fn.returns, doc: "", available: false, reason: fn.reason });
    }
  }
  out.sort((a, b) => a.module.localeCompare(b.module) || a.name.localeCompare(b.name));
  return out;
}

/** The call as a script writes it: `KSR.sl.sl_send_reply`. */
export function qualifiedName(e: ApiEntry): string {
  return e.module === "" ? `KSR.${e.name}` : `KSR.${e.module}.${e.name}`;
}

export function formatApiText(entries: readonly ApiEntry[]): string {
  let text = "";
  for (const e of entries) {
    const signature = `${e.returns} ${qualifiedName(e)}(${e.params.join(", ")})`;
    const note = e.available ? e.doc : `[unavailable: ${e.reason ?? "not supported"}]`;
    text += note ? `${signature}  — ${note}\n` : `${signature}\n`;
  }
  const unavailable = entries.filter((e) => !e.available).length;
  text += `${entries.length} functions (${entries.length - unavailable} available, ${unavailable} unavailable)\n`;
  return text;
}
