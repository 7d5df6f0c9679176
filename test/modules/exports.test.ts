/**
 * Every exported function must exist in Kamailio 5.6.3 with the same return
 * kind and parameter types (kemi-exports-5.6.3.tsv), except the documented
 * hdr.append_hf alias.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KEMI_MODULES } from "../../host/modules/index.js";

const TSV = "/work/shared/kemi/kemi-exports-5.6.3.tsv";
const NOT_IN_KAMAILIO = new Set(["KSR.hdr.append_hf"]);

function loadExports(): Map<string, { returns: string; params: string[] }> {
  const out = new Map<string, { returns: string; params: string[] }>();
  for (const line of readFileSync(TSV, "latin1").split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const [name, returns, params] = line.split("\t");
    out.set(name!, { returns: returns!, params: params === "none" ? [] : params!.split(",").map((p) => p.trim()) });
  }
  return out;
}

describe("export tables match Kamailio 5.6.3", () => {
  const exports = loadExports();
  const rows = KEMI_MODULES.flatMap((m) =>
    Object.entries(m.functions).map(([fn, def]) => ({ full: m.name === "" ? `KSR.${fn}` : `KSR.${m.name}.${fn}`, def })),
  );

  it("has no duplicate module names", () => {
    const names = KEMI_MODULES.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each(rows.map((r) => [r.full, r.def] as const))("%s", (full, def) => {
    if (NOT_IN_KAMAILIO.has(full)) return;
    const k = exports.get(full);
    expect(k, `${full} is not a Kamailio 5.6.3 export`).toBeDefined();
    expect(def.returns).toBe(k!.returns);
    expect(def.params).toEqual(k!.params);
  });
});
