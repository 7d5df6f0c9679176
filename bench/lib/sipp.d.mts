// Types for sipp.mjs (plain ESM so that scripts/bench.mjs runs without a TypeScript loader).

export declare const REPO_ROOT: string;
export declare const KSR_BIN: string;
export declare const KSR_BUNDLE: string;

export declare function captureOutput(
  child: { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream },
  maxChars: number,
): () => string;
export declare function sippVersion(): string | null;
export declare function findFreePort(): Promise<number>;
export declare function probeOptions(port: number, timeoutMs?: number): Promise<string | null>;
export declare function isListening(protocol: "udp" | "tcp", port: number): boolean;
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
  /** "options" (default): answers an OPTIONS probe; "sockets": its UDP and TCP sockets are open. */
  readiness?: "options" | "sockets";
}): Promise<KsrProcess>;

export declare function readSippStats(file: string): Map<string, string>;

/** One scenario step's counters from sipp -trace_counts (see readSippCounts). */
export interface SippMessageCounts {
  /** Position of the step in the scenario (0-based, pauses and nops included). */
  readonly index: number;
  /** The request method or response status of the step ("INVITE", "200", "Pause", ...). */
  readonly name: string;
  /** Sent, Retrans, Timeout for a send; Recv, Retrans, Timeout, Unexp for a reception. */
  readonly counters: Readonly<Record<string, number>>;
}

/** What a finished sipp process left: exit status, final statistics, per-step counts. */
export interface SippRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Calls sipp started (UAC) or accepted (UAS). */
  readonly created: number;
  readonly successful: number;
  readonly failed: number;
  /** Retransmissions sipp sent. */
  readonly retransmissions: number;
  readonly timeouts: number;
  /** Calls failed on an unexpected message. */
  readonly unexpected: number;
  readonly achievedRate: number;
  readonly elapsedS: number;
  readonly wallS: number;
  /** Response times (ms, 1 ms resolution) of the UAC's rtd; NaN for a UAS. */
  readonly rtMs: { readonly mean: number; readonly p50: number; readonly p99: number; readonly max: number };
  readonly messages: readonly SippMessageCounts[];
  readonly errors: string;
  readonly output: string;
  /** sipp's working directory, kept only when sipp did not exit 0. */
  readonly keptWorkDir: string | null;
}

export interface SippResult extends SippRun {
  readonly transport: "udp" | "tcp";
  readonly calls: number;
  readonly rate: number;
}

export declare function readSippCounts(file: string): SippMessageCounts[];
export declare function sippMessageCounters(
  run: SippRun,
  name: string,
  occurrence?: number,
): Readonly<Record<string, number>>;

export interface SippProcess {
  readonly pid: number;
  readonly localPort: number;
  /** Resolves once sipp exits by itself (after -m calls or -timeout). */
  readonly finished: Promise<SippRun>;
  /** SIGTERM to this sipp's PID (SIGKILL after 5 s); resolves with its run. */
  stop(): Promise<SippRun>;
}

export declare function startSipp(options: {
  scenarioFile?: string;
  builtinScenario?: string;
  /** Given: a UAC sending to 127.0.0.1:remotePort. Absent: a UAS on localPort. */
  remotePort?: number;
  localPort?: number;
  transport?: "udp" | "tcp";
  /** sipp -m; required for a UAC, optional for a UAS (which then runs until stopped or timeoutS). */
  calls?: number;
  rate?: number;
  timeoutS: number;
  recvTimeoutMs?: number;
  extraArgs?: string[];
}): Promise<SippProcess>;

export declare function runSipp(options: {
  scenarioFile?: string;
  builtinScenario?: string;
  targetPort: number;
  transport?: "udp" | "tcp";
  calls: number;
  rate: number;
  localPort?: number;
  recvTimeoutMs?: number;
  extraArgs?: string[];
}): Promise<SippResult>;

export declare function runCallsThroughUas(options: {
  targetPort: number;
  uasPort: number;
  calls: number;
  rate: number;
  recvTimeoutMs?: number;
  uac?: { scenarioFile?: string; extraArgs?: string[] };
  uas?: { scenarioFile?: string };
}): Promise<SippResult & { uasCpuShare: number }>;

/** Whether a process of that pid exists (signal 0). */
export declare function isAlive(pid: number): boolean;

export declare function processCpuSeconds(pid: number): number;
export declare function processTreeCpuSeconds(pid: number): number;
export declare function udpReceiveBufferErrors(): number;
