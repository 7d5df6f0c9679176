/**
 * KSR.x.modf with the real modules: native names with their own parameter
 * counts, and parameters evaluated as the native fixups evaluate them (a pv
 * format for most string parameters, an integer or a PV for int ones; taken
 * as written where Kamailio's fixup does, e.g. add_uri_param). Compared with
 * Kamailio 5.6.3 in test/interop/kemi-semantics.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

async function results(calls: string): Promise<{ line: string; ruri?: string; errors: string[] }> {
  const h = await loadScriptSource(`function ksr_request_route() { KSR.info(${calls}); }`, "modf.js");
  harnesses.push(h);
  const r = await h.send({ method: "OPTIONS", ruri: "sip:bob@example.com", from: "<sip:alice@example.net>;tag=1" });
  return { line: r.logs.find((l) => l.level === "info")!.text, ruri: r.ruri, errors: r.logs.filter((l) => l.level === "err").map((l) => l.text) };
}

describe("KSR.x.modf with the server's modules", () => {
  it("finds sanity_check with 0, 1 and 2 parameters, and not with 3", async () => {
    const r = await results(`[KSR.x.modf("sanity_check"), KSR.x.modf("sanity_check", "1"), KSR.x.modf("sanity_check", "1", "1"), KSR.x.modf("sanity_check", "1", "1", "1")].join(",")`);
    expect(r.line).toBe("1,1,1,-1");
  });

  it("answers -1 for KEMI-only names and for functions Kamailio's modf refuses, naming the KSR function", async () => {
    const r = await results(`[KSR.x.modf("get_ruri"), KSR.x.modf("sets", "$var(x)", "a"), KSR.x.modf("sl_send_reply", "200", "OK")].join(",")`);
    expect(r.line).toBe("-1,-1,-1");
    expect(r.errors).toContain("KSR.x.modf: function 'sl_send_reply' has fixup - cannot be used (use KSR.sl.sl_send_reply)");
  });

  it("evaluates pv formats in parameters; an unknown PV fails the call", async () => {
    const r = await results(
      `[KSR.x.modf("cmp_aor", "$fu", "sip:$fU@$fd"), KSR.x.modf("is_uri", "x$fU"), KSR.x.modf("is_first_hop", "$var(none)"), KSR.x.modf("is_uri", "$nosuch(x)")].join(",")`,
    );
    expect(r.line).toBe("1,-1,1,-1");
    expect(r.errors).toContain(`KSR.x.modf: function 'is_uri' parameter 1: "$nosuch(x)" is not a valid pv format`);
  });

  it("takes add_uri_param's parameter as written, as Kamailio's fixup_str", async () => {
    const r = await results(`KSR.x.modf("add_uri_param", "u=$rU")`);
    expect(r.line).toBe("1");
    expect(r.ruri).toBe("sip:bob@example.com;u=$rU");
  });
});
