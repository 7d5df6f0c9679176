/**
 * The pseudo-variable registry: host/modules/pv.ts finds every PV name
 * through the `pvs` the module tables declare, none hard-coded beside them.
 */
import { describe, expect, it } from "vitest";
import { KEMI_MODULES } from "../../host/modules/index.js";
import { lookupPv, pvModule, registerPvClasses } from "../../host/modules/pv.js";
import type { KemiModule } from "../../host/modules/types.js";
import { describePvs } from "../../host/cli/api.js";
import { makeContext, request } from "../helpers/context.js";

describe("the PV registry", () => {
  it("finds every class every module declares, in its declared form only", () => {
    for (const mod of KEMI_MODULES) {
      for (const cls of mod.pvs ?? []) {
        for (const name of cls.names) {
          // htable's names need table=>key, $T_req/$T_rpl a PV, ipops' container=>key, the others any inner name.
          const inner =
            name.startsWith("sht") && !name.startsWith("shtit")
              ? "t=>k"
              : name.startsWith("T_r")
                ? "$ci"
                : ["dns", "srvquery", "naptrquery"].includes(name)
                  ? "pv=>count"
                  : name === "redis"
                    ? "r=>value"
                    : name === "redisd"
                      ? "prefix"
                      : "x";
          const good = cls.form === "plain" ? `$${name}` : `$${name}(${inner})`;
          const wrongForm = cls.form === "plain" ? `$${name}(${inner})` : `$${name}`;
          if (name === "snd" || name === "sndto" || name === "TV" || name === "HN") continue; // inner names of their own, below
          expect(lookupPv(good), good).not.toBeNull();
          expect(lookupPv(wrongForm), wrongForm).toBeNull();
          if (cls.form === "named") expect(lookupPv(`$(${name}(${inner})[1])`) !== null, `${name} indexable`).toBe(cls.indexable === true);
          expect(lookupPv(good)!.set !== undefined, `${good} writable`).toBe(cls.writable);
        }
      }
    }
    expect(lookupPv("$snd(ip)")).not.toBeNull();
    expect(lookupPv("$TV(s)")).not.toBeNull();
    expect(lookupPv("$HN(n)")).not.toBeNull();
    expect(lookupPv("$no_such_pv")).toBeNull();
  });

  it("a module's PVs are known once its table is registered, and read through KSR.pv", () => {
    const mod: KemiModule = {
      name: "pvtest",
      kamailioModule: "pvtest",
      functions: {},
      pvs: [{ names: ["pvtest_answer"], form: "plain", writable: false, doc: "a test PV", compile: () => ({ get: () => 42 }) }],
    };
    expect(lookupPv("$pvtest_answer")).toBeNull();
    registerPvClasses(mod);
    const { ctx } = makeContext(request({ method: "OPTIONS" }));
    expect(pvModule.functions.get!.run(ctx, "$pvtest_answer")).toBe(42);
    // Registering again is harmless; another module claiming the name is an error naming both.
    registerPvClasses(mod);
    const clash: KemiModule = { ...mod, kamailioModule: "other", pvs: [{ ...mod.pvs![0]! }] };
    expect(() => registerPvClasses(clash)).toThrow("pseudo-variable $pvtest_answer is declared by pvtest and other");
  });

  it("ksr api --pvs lists them by module", () => {
    const pvs = describePvs(KEMI_MODULES);
    expect(pvs.find((p) => p.forms.includes("$T_reply_code"))).toMatchObject({ module: "tm", writable: false });
    expect(pvs.find((p) => p.forms.includes("$sht(name)"))).toMatchObject({ module: "htable", writable: true });
    expect(pvs.find((p) => p.forms.includes("$tls_version"))).toMatchObject({ module: "tls" });
    expect(pvs.find((p) => p.forms.includes("$ru"))).toMatchObject({ module: "core", writable: true });
  });
});
