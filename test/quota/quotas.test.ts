/**
 * Host memory a tenant can fill through ordinary KSR calls is bounded per
 * tenant (host/core/quota.ts): $var and $shv per tenant, $avp per
 * transaction, header text added per message. A call past a quota fails
 * (false for pv.sets, -1 for hdr.*) with one log line naming the tenant and the quota,
 * stores nothing, and frees room when values are removed.
 */
import { describe, expect, it } from "vitest";
import { newTenantState } from "../../host/core/context.js";
import { DEFAULT_TENANT_QUOTAS, type TenantQuotas } from "../../host/core/quota.js";
import { hdrModule } from "../../host/modules/hdr.js";
import { pvModule } from "../../host/modules/pv.js";
import { makeContext, request } from "../helpers/context.js";
import { caller } from "../modules/call.js";

const pv = caller(pvModule);
const hdr = caller(hdrModule);

const SMALL: TenantQuotas = { varBytes: 1000, shvBytes: 2000, avpBytes: 500, editBytes: 300, aors: 2, logLinesPerSecond: 10, transactions: 5 };

function tenantWith(quotas: TenantQuotas) {
  return newTenantState("greedy", quotas);
}

describe("tenant quotas", () => {
  it("$var: values past varBytes are refused with a log line naming the tenant; replacing and unsetting free room", () => {
    const tenant = tenantWith(SMALL);
    const { ctx, host } = makeContext(request(), { tenant });
    expect(pv("sets", ctx, "$var(a)", "x".repeat(600))).toBe(true);
    expect(pv("sets", ctx, "$var(b)", "y".repeat(600))).toBe(false);
    expect(tenant.vars.has("b")).toBe(false);
    // The quota's line, then the one Kamailio logs for any failed assignment.
    expect(host.logs.filter((l) => l.level === "err").map((l) => l.text)).toEqual([
      "tenant greedy: $var(b) refused: quota varBytes (1000 bytes) reached\n",
      "unable to set pv [$var(b)]\n",
    ]);
    // Replacing a value counts only the difference; unsetting frees it.
    expect(pv("sets", ctx, "$var(a)", "x".repeat(900))).toBe(true);
    expect(pv("unset", ctx, "$var(a)")).toBe(true);
    expect(tenant.usage.varBytes).toBe(0);
    expect(pv("sets", ctx, "$var(b)", "y".repeat(900))).toBe(true);
    // Integers count 8 bytes plus their name.
    expect(pv("seti", ctx, "$var(n)", 7)).toBe(true);
    expect(tenant.usage.varBytes).toBe(1 + 900 + 1 + 8);
  });

  it("$var and $shv are counted apart, across messages of the tenant", () => {
    const tenant = tenantWith(SMALL);
    for (let i = 0; i < 3; i++) {
      const { ctx } = makeContext(request(), { tenant });
      expect(pv("sets", ctx, `$shv(s${i})`, "z".repeat(600))).toBe(i < 3);
    }
    expect(tenant.sharedVars.size).toBe(3);
    const { ctx } = makeContext(request(), { tenant });
    expect(pv("sets", ctx, "$shv(s3)", "z".repeat(600))).toBe(false);
    expect(pv("sets", ctx, "$var(v)", "z".repeat(600))).toBe(true);
  });

  it("$avp: per transaction store, [*] assignment replaces the values it removes", () => {
    const tenant = tenantWith(SMALL);
    const { ctx, host } = makeContext(request(), { tenant });
    expect(pv("sets", ctx, "$avp(x)", "a".repeat(200))).toBe(true);
    expect(pv("sets", ctx, "$avp(x)", "b".repeat(200))).toBe(true);
    expect(pv("sets", ctx, "$avp(x)", "c".repeat(200))).toBe(false);
    expect(host.logs.some((l) => l.text === "tenant greedy: $avp(x) refused: quota avpBytes (500 bytes) reached\n")).toBe(true);
    expect(pv("sets", ctx, "$(avp(x)[*])", "d".repeat(300))).toBe(true);
    // A new message (new transaction) has its own store.
    const other = makeContext(request(), { tenant });
    expect(pv("sets", other.ctx, "$avp(x)", "e".repeat(400))).toBe(true);
  });

  it("header text added to one message and its replies is bounded by editBytes", () => {
    const tenant = tenantWith(SMALL);
    const { ctx, host } = makeContext(request(), { tenant });
    expect(hdr("append", ctx, `X-A: ${"a".repeat(200)}\r\n`)).toBe(1);
    expect(hdr("append_to_reply", ctx, `X-B: ${"b".repeat(200)}\r\n`)).toBe(-1);
    expect(hdr("insert", ctx, `X-C: ${"c".repeat(50)}\r\n`)).toBe(1);
    expect(ctx.edits.appended).toHaveLength(1);
    expect(ctx.replyHeaders).toEqual([]);
    expect(host.logs.filter((l) => l.level === "err")).toHaveLength(1);
    // The next message starts afresh.
    const next = makeContext(request(), { tenant });
    expect(hdr("append_to_reply", next.ctx, `X-B: ${"b".repeat(200)}\r\n`)).toBe(1);
  });

  it("defaults bound what a tenant keeps: 40 values of 64 KiB in $shv stop at 4 MiB", () => {
    const tenant = newTenantState("default-quotas");
    let stored = 0;
    for (let i = 0; i < 100; i++) {
      const { ctx } = makeContext(request(), { tenant });
      if (pv("sets", ctx, `$shv(big${i})`, "q".repeat(65_000)) === true) stored++;
    }
    expect(stored).toBe(Math.floor(DEFAULT_TENANT_QUOTAS.shvBytes / (65_000 + 6)));
    expect(tenant.usage.shvBytes).toBeLessThanOrEqual(DEFAULT_TENANT_QUOTAS.shvBytes);
  });
});

describe("registered AoRs", () => {
  it("a new AoR past the tenant's aors quota is refused (save -1, 500 by sl_reply_error); refreshing a known one is not", async () => {
    const { makeDataHost, register } = await import("../registrar/helpers.js");
    const { registrarModule } = await import("../../host/modules/registrar.js");
    const { slModule } = await import("../../host/modules/sl.js");
    const reg = caller(registrarModule);
    const sl = caller(slModule);
    const host = makeDataHost();
    const tenant = tenantWith(SMALL);
    const save = (user: string, cseq = 1) => {
      const { ctx } = makeContext(register({ aor: `sip:${user}@example.com`, contacts: [`<sip:${user}@10.0.0.1:5070>`], callId: `reg-${user}`, cseq }), { host, tenant });
      const code = reg("save", ctx, "location", 0);
      if (code !== 1) sl("sl_reply_error", ctx);
      return code;
    };
    expect(save("a")).toBe(1);
    expect(save("b")).toBe(1);
    expect(save("c")).toBe(-1);
    expect(host.replies.at(-1)).toMatchObject({ status: 500 });
    expect(host.logs.map((l) => l.text)).toContain("tenant greedy: registering c refused: quota aors (2) reached\n");
    // A refresh of a registered AoR still works (2: contacts updated, as Kamailio's save answers).
    expect(save("a", 2)).toBe(2);
  });
});

describe("log lines per second", () => {
  it("past the quota a second's lines are dropped and counted; the next second starts with one line saying how many", async () => {
    const { LogRateLimit } = await import("../../host/core/quota.js");
    const limit = new LogRateLimit(3);
    const notices: string[] = [];
    const admitted = [0, 10, 20, 30, 40, 999].map((t) => limit.admit(t, (n) => notices.push(n)));
    expect(admitted).toEqual([true, true, true, false, false, false]);
    expect(notices).toEqual([]);
    expect(limit.admit(1000, (n) => notices.push(n))).toBe(true);
    expect(notices).toEqual(["suppressed 3 log line(s) over the tenant's quota of 3 a second"]);
    // 0: no limit (ksr run script.js).
    const none = new LogRateLimit(0);
    for (let i = 0; i < 10_000; i++) expect(none.admit(0, () => undefined)).toBe(true);
  });
});

describe("quotas in the tenants file", () => {
  it("are read per tenant with defaults for what is not given; a bad value names the field", async () => {
    const { loadTenantsFile, TenantsConfigError } = await import("../../host/tenants/index.js");
    const { REPLY_200, tenantDir } = await import("../tenants/fixtures.js");
    const d = tenantDir();
    d.write("a.js", REPLY_200);
    const good = d.write("good.yaml", "tenants:\n  - id: a\n    script: a.js\n    quotas: { varBytes: 4096, editBytes: 1000 }\n");
    expect(loadTenantsFile(good).tenants[0]!.quotas).toEqual({ ...DEFAULT_TENANT_QUOTAS, varBytes: 4096, editBytes: 1000 });
    const bad = d.write("bad.yaml", "tenants:\n  - id: a\n    script: a.js\n    quotas: { avpBytes: -1, nonsense: 3 }\n");
    let error: unknown;
    try {
      loadTenantsFile(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TenantsConfigError);
    expect((error as Error).message).toContain("quotas.avpBytes");
    expect((error as Error).message).toContain("nonsense");
  });
});
