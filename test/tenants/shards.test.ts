/**
 * host/tenants/shards.ts: which worker process runs which tenants, and the
 * tenants-file fields that decide it (isolation, shard, workers).
 */
import { describe, expect, it } from "vitest";
import { loadTenantsFile, TenantsConfigError } from "../../host/tenants/index.js";
import { defaultShardCount, planProcesses, shardProblem } from "../../host/tenants/shards.js";
import { REPLY_200, tenantDir } from "./fixtures.js";

function tenantsFile(entries: string): ReturnType<typeof loadTenantsFile> {
  const dir = tenantDir();
  dir.write("t.js", REPLY_200);
  return loadTenantsFile(dir.write("tenants.yaml", `tenants:\n${entries}`));
}

describe("planProcesses", () => {
  it("puts shared tenants in shards by hash or by their shard field, pools and own-process tenants apart", () => {
    const config = tenantsFile(
      [
        "  - { id: a, script: t.js }",
        "  - { id: big, script: t.js, workers: 2 }",
        "  - { id: alone, script: t.js, isolation: own-process }",
        "  - { id: pinned, script: t.js, shard: 1 }",
        ...Array.from({ length: 40 }, (_, i) => `  - { id: t${i}, script: t.js }`),
        "",
      ].join("\n"),
    );
    const plan = planProcesses(config, 3);
    expect(plan.slice(0, 3)).toEqual([
      { label: "big#0", tenantIds: ["big"], kind: "own", index: 0, poolSize: 2 },
      { label: "big#1", tenantIds: ["big"], kind: "own", index: 1, poolSize: 2 },
      { label: "alone", tenantIds: ["alone"], kind: "own", index: 0, poolSize: 1 },
    ]);
    const shards = plan.slice(3);
    expect(shards.map((p) => p.label)).toEqual(["shard-0", "shard-1", "shard-2"]);
    expect(shards.every((p) => p.kind === "shard" && p.poolSize === 1)).toBe(true);
    expect(shards[1]!.tenantIds).toContain("pinned");
    // Every shared tenant in exactly one shard, in file order within it.
    const placed = shards.flatMap((p) => p.tenantIds);
    expect(placed.sort()).toEqual(["a", "pinned", ...Array.from({ length: 40 }, (_, i) => `t${i}`)].sort());
    for (const p of shards) expect(p.tenantIds.length).toBeGreaterThan(0);
    // The same file gives the same plan; a tenant added moves no other one.
    expect(planProcesses(config, 3)).toEqual(plan);
    const grown = tenantsFile(
      [
        "  - { id: a, script: t.js }",
        "  - { id: newcomer, script: t.js }",
        ...Array.from({ length: 40 }, (_, i) => `  - { id: t${i}, script: t.js }`),
        "",
      ].join("\n"),
    );
    const shardOf = (p: ReturnType<typeof planProcesses>, id: string) => p.find((x) => x.tenantIds.includes(id))!.label;
    const grownPlan = planProcesses(grown, 3);
    for (const id of ["a", "t0", "t17", "t39"]) expect(shardOf(grownPlan, id)).toBe(shardOf(plan, id));
  });

  it("leaves out empty shards", () => {
    const plan = planProcesses(tenantsFile("  - { id: only, script: t.js, shard: 2 }\n"), 4);
    expect(plan).toEqual([{ label: "shard-2", tenantIds: ["only"], kind: "shard", index: 0, poolSize: 1 }]);
  });

  it("names a tenant whose shard is not below the shard count", () => {
    const config = tenantsFile("  - { id: a, script: t.js, shard: 3 }\n");
    expect(shardProblem(config, 4)).toBeUndefined();
    expect(shardProblem(config, 3)).toMatch(/tenant "a", field shard: 3 is not below the shard count 3 \(--shards\)$/);
  });
});

describe("defaultShardCount", () => {
  it("is one shard per core, fewer when a quarter of the memory does not hold 512 MB a shard, at least one", () => {
    const GB = 1024 ** 3;
    expect(defaultShardCount(2, 24 * GB)).toBe(2);
    expect(defaultShardCount(16, 4 * GB)).toBe(2);
    expect(defaultShardCount(8, 0.5 * GB)).toBe(1);
  });
});

describe("tenants file: isolation and shard", () => {
  it("refuses a shard for a tenant with a process of its own, and an unknown isolation", () => {
    const issues = (entries: string) => {
      try {
        tenantsFile(entries);
      } catch (e) {
        if (e instanceof TenantsConfigError) return e.issues.map((i) => `${i.tenant} ${i.field}: ${i.message}`);
        throw e;
      }
      return [];
    };
    expect(issues("  - { id: a, script: t.js, isolation: own-process, shard: 1 }\n")).toEqual([
      "a shard: a tenant with a process of its own (isolation: own-process, or workers ≥ 2) has no shard",
    ]);
    expect(issues("  - { id: a, script: t.js, workers: 2, shard: 1 }\n")).toHaveLength(1);
    expect(issues("  - { id: a, script: t.js, isolation: thread }\n")[0]).toMatch(/^a isolation: /);
    expect(issues("  - { id: a, script: t.js, shard: -1 }\n")[0]).toMatch(/^a shard: must be 0 or more/);
    expect(tenantsFile("  - { id: a, script: t.js, isolation: own-process }\n").tenants[0]).toMatchObject({ ownProcess: true, shard: undefined });
  });
});
