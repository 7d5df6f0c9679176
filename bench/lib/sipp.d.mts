// Types for sipp.mjs (plain ESM so that scripts/bench.mjs runs without a TypeScript loader).

export declare const REPO_ROOT: string;
export declare const KSR_BIN: string;
export declare const KSR_BUNDLE: string;

export declare function sippVersion(): string | null;
export declare function findFreePort(): Promise<number>;
export declare function probeOptions(port: number, timeoutMs?: number): Promise<string | null>;
export declare function ensureBuilt(options?: { force?: boolean }): boolean;

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface KsrProcess {
  readonly pid: number;
  readonly port: number;
  output(): string;
  stop(): Promise<ProcessExit | null>;
}

export declare function startKsr(options: {
  script: string;
  port: number;
  logLevel?: string;
  extraArgs?: string[];
  readyTimeoutMs?: number;
}): Promise<KsrProcess>;

export declare function readSippStats(file: string): Map<string, string>;

export interface SippResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly transport: "udp" | "tcp";
  readonly calls: number;
  readonly rate: number;
  readonly created: number;
  readonly successful: number;
  readonly failed: number;
  readonly retransmissions: number;
  readonly timeouts: number;
  readonly achievedRate: number;
  readonly elapsedS: number;
  readonly wallS: number;
  readonly rtMs: { readonly mean: number; readonly p50: number; readonly p99: number; readonly max: number };
  readonly errors: string;
  readonly output: string;
  /** sipp's working directory, kept only when sipp did not exit 0. */
  readonly keptWorkDir: string | null;
}

export declare function runSipp(options: {
  scenarioFile: string;
  targetPort: number;
  transport?: "udp" | "tcp";
  calls: number;
  rate: number;
  localPort?: number;
  recvTimeoutMs?: number;
  extraArgs?: string[];
}): Promise<SippResult>;

export declare function processCpuSeconds(pid: number): number;
export declare function processTreeCpuSeconds(pid: number): number;
export declare function udpReceiveBufferErrors(): number;
