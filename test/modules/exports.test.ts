/**
 * Every exported function must exist in Kamailio 5.6.3 with the same return
 * kind and parameter types (test/fixtures/kemi-exports-5.6.3.tsv: the
 * app_jsdt api_list of a live Kamailio 5.6.3), except the documented
 * hdr.append_hf alias and the functions of modules that list did not load.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { KEMI_MODULES } from "../../host/modules/index.js";

const TSV = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/kemi-exports-5.6.3.tsv");
/** hdr.append_hf: alias that Kamailio's own JS example calls (not exported by 5.6). */
const NOT_IN_KAMAILIO = new Set(["KSR.hdr.append_hf"]);
/**
 * Modules the reference list was made without (they need a database,
 * ndb_redis a Redis server, tls its certificates), and auth functions newer
 * than 5.6.3; their names and parameter types follow Kamailio's source
 * instead (ndb_redis: sr_kemi_ndb_redis_exports in ndb_redis_mod.c).
 */
const NOT_IN_REFERENCE_LIST = new Set(["auth_db", "permissions", "tls", "ndb_redis"]);
const NEWER_THAN_5_6_3 = new Set(["KSR.auth.www_challenge", "KSR.auth.proxy_challenge"]);

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
  const rows = KEMI_MODULES.filter((m) => !NOT_IN_REFERENCE_LIST.has(m.name)).flatMap((m) =>
    Object.entries(m.functions).map(([fn, def]) => ({ full: m.name === "" ? `KSR.${fn}` : `KSR.${m.name}.${fn}`, def })),
  );

  it("has no duplicate module names", () => {
    const names = KEMI_MODULES.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each(rows.map((r) => [r.full, r.def] as const))("%s", (full, def) => {
    if (NOT_IN_KAMAILIO.has(full) || NEWER_THAN_5_6_3.has(full)) return;
    const k = exports.get(full);
    expect(k, `${full} is not a Kamailio 5.6.3 export`).toBeDefined();
    expect(def.returns).toBe(k!.returns);
    expect(def.params).toEqual(k!.params);
  });
});
