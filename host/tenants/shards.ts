/**
 * Which worker process runs which tenants (`--isolation process`).
 *
 * A worker process costs 50-100 MB resident (Node, V8, isolated-vm, SQLite)
 * before any tenant is in it; an idle tenant's isolate a few MB. So tenants
 * share processes — shards —: `--shards N` processes, each a SipServer over
 * a TenantRegistry of its tenants (host/tenants/worker.ts), the way
 * `--isolation in-process` holds them all in one. A tenant goes to shard
 * `shard:` of the tenants file when given, else to hash(id) mod N (the
 * Call-ID hash of host/tenants/affinity.ts): adding a tenant to the file
 * moves no other one.
 *
 * A process of its own instead: `isolation: own-process` in the tenants
 * file, a pool of `workers: k` (k ≥ 2; a big tenant's several processes,
 * each message by hash(Call-ID)), or — decided at run time — a tenant that
 * was running when its shard process died (quarantine,
 * host/tenants/processes.ts).
 */
import { availableParallelism, totalmem } from "node:os";
import { callIdHash } from "./affinity.js";
import { MAX_SHARDS, type TenantsConfig } from "./config.js";

/** One worker process to start: the tenants it runs, and its place in a tenant's pool. */
export interface ProcessPlan {
  /** How logs, counters and `ksr ctl` name it: the tenant id (with "#index" in a pool), or "shard-<n>". */
  readonly label: string;
  /** The tenants it runs, in tenants-file order. */
  readonly tenantIds: readonly string[];
  /** A shard (shared by the tenants the hash or `shard:` put there), or a process of one tenant only. */
  readonly kind: "shard" | "own";
  /** Its place in the tenant's pool of `workers: k` (0-based) and k; 0 and 1 for a shard or a lone process. */
  readonly index: number;
  readonly poolSize: number;
}

/** Resident memory a shard process is budgeted for when the default shard count is derived from the machine's memory. */
const SHARD_MEMORY_BUDGET_BYTES = 512 * 1024 ** 2;

/**
 * The default shard count: one per core (the shards run their tenants on
 * every core; more processes on the same cores only add their own
 * memory), but no more than a quarter of the machine's memory allows at
 * SHARD_MEMORY_BUDGET_BYTES a shard; at least 1.
 */
export function defaultShardCount(cores = availableParallelism(), memoryBytes = totalmem()): number {
  const byMemory = Math.floor(memoryBytes / 4 / SHARD_MEMORY_BUDGET_BYTES);
  return Math.max(1, Math.min(cores, byMemory, MAX_SHARDS));
}

/** Label of shard n. */
export function shardLabel(n: number): string {
  return `shard-${n}`;
}

/**
 * The processes of a tenants file with `shards` shards: pools and
 * own-process tenants first (in file order), then the non-empty shards in
 * shard order. A tenant's `shard:` must be below `shards` (the caller
 * checks, see shardProblem).
 */
export function planProcesses(config: Pick<TenantsConfig, "tenants">, shards: number): ProcessPlan[] {
  const own: ProcessPlan[] = [];
  const members: string[][] = Array.from({ length: shards }, () => []);
  for (const entry of config.tenants) {
    if (entry.workers > 1) {
      for (let index = 0; index < entry.workers; index++) {
        own.push({ label: `${entry.id}#${index}`, tenantIds: [entry.id], kind: "own", index, poolSize: entry.workers });
      }
    } else if (entry.ownProcess) {
      own.push({ label: entry.id, tenantIds: [entry.id], kind: "own", index: 0, poolSize: 1 });
    } else {
      members[entry.shard ?? callIdHash(entry.id) % shards]!.push(entry.id);
    }
  }
  const shardPlans = members.flatMap((tenantIds, n): ProcessPlan[] =>
    tenantIds.length === 0 ? [] : [{ label: shardLabel(n), tenantIds, kind: "shard", index: 0, poolSize: 1 }],
  );
  return [...own, ...shardPlans];
}

/** A tenant whose `shard:` is not below the shard count, named; undefined when every one is. */
export function shardProblem(config: Pick<TenantsConfig, "tenants" | "file">, shards: number): string | undefined {
  const entry = config.tenants.find((t) => t.shard !== undefined && t.shard >= shards);
  if (entry === undefined) return undefined;
  return `${config.file}: tenant "${entry.id}", field shard: ${entry.shard} is not below the shard count ${shards} (--shards)`;
}
