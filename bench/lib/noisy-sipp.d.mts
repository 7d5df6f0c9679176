// Types for noisy-sipp.mjs (plain ESM so that scripts/bench.mjs runs without a TypeScript loader).
import type { SippResult } from "./sipp.mjs";

export declare const B_DOMAIN: string;
export declare const A_DOMAIN: string;

export type NoisyVariant = "loop" | "heap" | "crash";
export type NoisyPhaseVariant = "alone" | NoisyVariant;

export declare const NOISY_VARIANTS: readonly NoisyVariant[];
export declare const NOISY_TENANTS: Readonly<Record<NoisyVariant, { readonly script: string; readonly heapMb: number; readonly routeTimeoutMs: number }>>;
export declare const NOISY_DESCRIPTIONS: Readonly<Record<NoisyVariant, string>>;
export declare const A_ON_ERROR_STATUS: number;
export declare const THROUGHPUT_MIN_RATIO: number;
export declare const P99_MAX_RATIO: number;

/** bench/scripts/stateful-relay.js (or `source`) with its UAS at 127.0.0.1:uasPort; throws if the UAS line is missing. */
export declare function relayScriptFor(uasPort: number, source?: string): string;

/** Writes tenants.json and the tenants' scripts into dir; returns the tenants file's path. */
export declare function writeNoisyTenants(options: {
  dir: string;
  variant: NoisyPhaseVariant;
  uasPort: number;
  aCpuShare?: number;
}): string;

export declare function buildNoiseRequest(options: { domain: string; localPort: number; seq: number; runId: string }): {
  callId: string;
  text: string;
};

export declare function parseResponse(datagram: string | Buffer): { status: number; callId: string | null } | null;

export interface NoiseReport {
  readonly sent: number;
  readonly sendingS: number;
  /** First final response per request, counted by status code. */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Requests without a final response replyWaitMs after the last send. */
  readonly unanswered: number;
  readonly provisional: number;
  /** Datagrams that were not a response to one of this sender's requests. */
  readonly stray: number;
  readonly sendErrors: number;
  readonly responseMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

export declare function startNoiseSender(options: {
  targetPort: number;
  domain?: string;
  rate: number;
  count: number;
  replyWaitMs?: number;
}): Promise<{ localPort: number; finished: Promise<NoiseReport> }>;

export declare function formatStatusCounts(byStatus: Readonly<Record<string, number>>): string;

export interface TenantCounters {
  mode: string | undefined;
  replies: Record<string, number>;
  [counter: string]: number | string | undefined | Record<string, number>;
}

export declare function parseTenantCounters(output: string): Map<string, TenantCounters>;

export interface PhaseVerdict {
  readonly throughputRatio: number;
  readonly p99Ratio: number;
  readonly throughputPass: boolean;
  readonly p99Pass: boolean;
  readonly pass: boolean;
}

export declare function judgePhase(
  alone: { successful: number; p99Ms: number },
  phase: { successful: number; p99Ms: number },
  thresholds?: { minThroughputRatio?: number; maxP99Ratio?: number },
): PhaseVerdict;

export interface NoisyPhaseResult {
  readonly variant: NoisyPhaseVariant;
  readonly rate: number;
  readonly calls: number;
  readonly warmUp: { readonly calls: number; readonly successful: number };
  readonly b: SippResult & { readonly uasCpuShare: number };
  readonly a: NoiseReport | null;
  readonly serverAlive: boolean;
  readonly serverCpuShare: number;
  readonly serverCpuUsPerCall: number;
  readonly udpDrops: number;
  /** Server or tenant worker processes that ended unexpectedly (and were restarted). */
  readonly restarts: number;
  readonly tenants: Map<string, TenantCounters>;
  readonly errorLines: string[];
}

export declare function runNoisyPhase(options: {
  variant: NoisyPhaseVariant;
  rate: number;
  durationS: number;
  aRate: number;
  aCpuShare?: number;
  isolation?: string;
  warmUpCalls: number;
}): Promise<NoisyPhaseResult>;

/** The median of the finite values (NaN when there is none). */
export declare function median(values: readonly number[]): number;

export interface NoisyVariantResult {
  readonly rate: number;
  readonly variant: NoisyPhaseVariant;
  /** Medians over the runs: B's successful calls and p99 response time (ms). */
  readonly summary: { readonly successful: number; readonly p99Ms: number };
  /** null for the alone phase (the baseline). */
  readonly verdict: PhaseVerdict | null;
  /** The crash variant without process isolation. */
  readonly expectedToFail: boolean;
  readonly runs: (NoisyPhaseResult & { readonly run: number })[];
}

export declare function benchNoisyNeighbour(options: {
  rates: number[];
  durationS: number;
  variants: NoisyVariant[];
  aRate: number;
  aCpuShare?: number;
  isolation?: string;
  /** Runs of each phase, interleaved; verdicts on the medians. Default 1. */
  repeat?: number;
  print?: (line: string) => void;
}): Promise<{ passed: boolean; results: NoisyVariantResult[] }>;
