/**
 * The dispatcher gauges of host/metrics/collect.ts: one series per
 * destination up to the cap per tenant, the rest counted, values following
 * the destination's state bits.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TenantRouting } from "../../host/core/tenant-routing.js";
import { DISPATCHER_DESTINATIONS_EXPORTED, tenantFamilies } from "../../host/metrics/collect.js";
import { configureDispatcher, removeDispatcher } from "../../host/modules/dispatcher/tenants.js";
import { dispatcherSetState } from "../../host/ops/dispatcher-ops.js";

const TENANTS = ["ds-metrics-big", "ds-metrics-none"];

/** Only what the dispatcher families read: the tenants' ids. */
const routing = { registry: { tenants: TENANTS.map((id) => ({ id })) }, proxyOf: () => undefined } as unknown as TenantRouting;

async function values(name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = tenantFamilies({ routing, data: undefined }).find((m) => m.name === name);
  if (metric === undefined) throw new Error(`no family ${name}`);
  return (await metric.get()).values as { labels: Record<string, string | number>; value: number }[];
}

afterEach(() => {
  for (const t of TENANTS) removeDispatcher(t);
});

describe("dispatcher metrics", () => {
  it("exports the first destinations of a tenant up to the cap, counts the rest, and follows set-state", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-ds-metrics-"));
    const extra = 30;
    // Set 2 written first: sets are exported in id order, so set 1's destinations come first.
    const lines = [`2 sip:127.0.0.2:5060`];
    for (let i = 0; i < DISPATCHER_DESTINATIONS_EXPORTED + extra - 1; i++) lines.push(`1 sip:127.0.0.1:${10000 + i}`);
    const file = path.join(dir, "ds.list");
    fs.writeFileSync(file, lines.join("\n") + "\n");
    configureDispatcher("ds-metrics-big", file);

    const up = await values("ksr_dispatcher_destination_up");
    expect(up).toHaveLength(DISPATCHER_DESTINATIONS_EXPORTED);
    expect(up.every((s) => s.labels["tenant"] === "ds-metrics-big" && s.labels["set"] === 1 && s.value === 1)).toBe(true);
    expect(await values("ksr_dispatcher_destinations_unexported")).toEqual([{ labels: { tenant: "ds-metrics-big" }, value: extra }]);

    const uri = String(up[0]!.labels["destination"]);
    dispatcherSetState("ds-metrics-big", "ip", 1, uri);
    const first = (await values("ksr_dispatcher_destination_up")).filter((s) => s.value === 0);
    expect(first.map((s) => s.labels["destination"])).toEqual([uri]);
    const state = (await values("ksr_dispatcher_destination_state")).find((s) => s.labels["destination"] === uri);
    expect(state?.value).toBe(9);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
