/**
 * Messages between the front process (sockets, parsing, tenant selection;
 * host/tenants/processes.ts) and a tenant's worker process (its script,
 * transactions and data; host/tenants/worker.ts), over the Node IPC channel
 * with JSON serialization (plain objects of strings and numbers only).
 *
 * SIP messages cross as the bytes received (a latin1 string) with their
 * ReceiveInfo, and come back as the bytes to send with their addressing:
 * the worker runs the same SipServer as the in-process mode, only its
 * transport is this channel.
 */
import type { SingleScriptSettings } from "./config.js";
import type { SendFlags } from "../modules/sendopts.js";
import type { LocationMode } from "../storage/index.js";
import type { HtableDefinition } from "../modules/state/htable-store.js";
import type { ListenSocket, ReceiveInfo, TransportProto } from "../core/context.js";
import type { ProxyTimerSettings } from "../proxy/proxy.js";
import type { ReloadResult } from "./registry.js";

/** A SIP message received by the front for one of the worker's tenants. */
export interface ReceivedItem {
  readonly data: string;
  readonly rcv: ReceiveInfo;
  /** The tenant the front chose, on messages to a shard (which hands back those of a tenant it moved out). */
  readonly tenant?: string;
}

/** Bytes the worker asks the front to send (TransportLayer.send's arguments). */
export interface SendItem {
  readonly proto: TransportProto;
  readonly ip: string;
  readonly port: number;
  readonly data: string;
  readonly connectionId?: number;
  readonly from?: ListenSocket;
  /** What the front's stream transport does with it (KSR.set_forward_close and co). */
  readonly flags?: SendFlags;
  /**
   * Set when the worker wants to hear of a failure (a request to a
   * WebSocket client: only the front knows whether its connection is still
   * there); the front answers with this number in "sendResults".
   */
  readonly ref?: number;
}

/**
 * The nice value of a tenant worker whose tenant misbehaves (its script
 * was demoted for a timeout, out of memory or CPU overrun; or its worker
 * keeps dying). Under CPU contention Linux then gives it about a tenth of
 * the weight of a worker at nice 0, so the well-behaved tenants keep their
 * latency; an idle machine still runs it at full speed. An unprivileged
 * process cannot lower its nice value again: it stays until the worker is
 * restarted.
 */
/** The name (/proc/.../comm) Node gives its main thread, which threads started from it inherit: Node 26 prefixes its threads' names with "node-". */
export const MAIN_THREAD_NAMES: ReadonlySet<string> = new Set(["MainThread", "node-MainThread"]);

/**
 * Whether a thread of a process is one of isolated-vm's, which inherit the
 * name of the main thread that starts them. Node 24 and 26 give the main
 * thread a name of its own (MAIN_THREAD_NAMES). Node 22 leaves it, and
 * V8's platform workers with it, named after the executable ("node"), and
 * names libuv's pool "libuv-worker"; there isolated-vm's threads are the
 * ones named like the main thread that did not exist when the process
 * started (its pool starts with the first asynchronous route call).
 */
export function isIsolatedVmThread(thread: { readonly name: string; readonly existedAtStart: boolean }, mainThreadName: string): boolean {
  return MAIN_THREAD_NAMES.has(thread.name) || (!thread.existedAtStart && thread.name === mainThreadName);
}

export const MISBEHAVING_NICE = 10;

/**
 * Front → worker. SIP traffic crosses in batches, one per turn of the
 * sender's event loop: under load an IPC message per SIP
 * message costs more than the SIP message itself.
 */
export type FrontMessage =
  | { readonly t: "sip"; readonly items: readonly ReceivedItem[] }
  /** Reload one tenant's script, or (no tenant) every tenant's of the worker. */
  | { readonly t: "reload"; readonly id: number; readonly tenant?: string }
  | { readonly t: "counters"; readonly id: number }
  | { readonly t: "status"; readonly id: number }
  /** An operation of host/ops (metrics, `ksr ctl` inspection) run in the worker. */
  | { readonly t: "ops"; readonly id: number; readonly method: string; readonly params?: unknown }
  /** What became of the sends that carried a ref: made (`sent`) or not (`failed`). */
  | { readonly t: "sendResults"; readonly sent: readonly number[]; readonly failed: readonly number[] };

/** Worker → front. */
export type WorkerMessage =
  | { readonly t: "ready" }
  /** What to send, and how many received messages were handled since the last batch (the front's queue accounting). */
  | { readonly t: "out"; readonly sends: readonly SendItem[]; readonly handled: number }
  | { readonly t: "reloaded"; readonly id: number; readonly results: Readonly<Record<string, ReloadResult>> }
  | { readonly t: "counters"; readonly id: number; readonly lines: readonly string[] }
  /** The answer to an "ops" request: its result, or why it failed. */
  | { readonly t: "ops"; readonly id: number; readonly result?: unknown; readonly error?: string }
  /** A shard asks that one of its tenants be moved into a process of its own (it ran out of memory). */
  | { readonly t: "evict"; readonly tenant: string; readonly reason: string }
  /** Messages a shard received for a tenant it moved out (evict): the front passes them on to the tenant's process. */
  | { readonly t: "return"; readonly items: readonly ReceivedItem[] }
  /** Each tenant's execution mode. */
  | { readonly t: "status"; readonly id: number; readonly modes: Readonly<Record<string, string>> };

/** `ksr run script.js --workers N`: the one script every worker runs, with its limits. */
export interface SingleScript {
  readonly path: string;
  readonly heapMb: number;
  readonly routeTimeoutMs: number;
  /** --on-error and the --kemi-*-callback flags. */
  readonly settings?: SingleScriptSettings;
}

/**
 * The environment variable carrying the server's nonce secret (hex) to the
 * workers of a pool: in the environment, readable by the same user only,
 * rather than in the argument list every user can read.
 */
export const NONCE_SECRET_ENV = "KSR_NONCE_SECRET";

/** What a worker is started with (JSON in its argument list). */
export interface WorkerConfig {
  /** The tenants file the tenant comes from; unset when `script` is. */
  readonly tenantsFile?: string;
  /** The single script of `ksr run script.js --workers N`, instead of a tenants file. */
  readonly script?: SingleScript;
  /** The tenants this worker runs (one, unless it is a shard; host/tenants/shards.ts). */
  readonly tenantIds: readonly string[];
  /** How its logs name it: the tenant id ("id#index" in a pool) or "shard-<n>". */
  readonly label: string;
  /** A shard shares the process among its tenants (per-isolate CPU budgets; no process-wide nice). */
  readonly kind: "shard" | "own";
  /** This worker's place in the tenant's pool (0-based) and the pool's size (1 for a shard). */
  readonly workerIndex: number;
  readonly poolSize: number;
  /**
   * A shard's record of the tenant running a route (host/tenants/processes.ts
   * reads it when the shard dies): 4 bytes, the tenant's position in tenantIds (little-endian int32), written with
   * pwrite whenever another tenant than the last one starts a route.
   */
  readonly runningFile?: string;
  /** Idle seconds before a tenant's isolate is disposed, for tenants whose tenants-file limit does not say (`ksr run --idle-dispose-s`). */
  readonly idleSeconds?: number;
  /** `ksr run --lazy-isolates`: no isolate until a tenant's first message. */
  readonly lazyIsolates?: boolean;
  /**
   * The SQLite file holding htables and $shv for every worker of the pools
   * (host/modules/state/shared-sqlite.ts); set when some tenant has a pool
   * of several workers.
   */
  readonly sharedStateFile?: string;
  /** The front's sockets as bound: the worker's Via, Record-Route and sending-socket choices use them. */
  readonly listen: readonly ListenSocket[];
  readonly aliases: readonly string[];
  /** --dns-server of the front process (empty: the system's). */
  readonly dnsServers?: readonly string[];
  readonly db: string;
  /** Where registrations live (`ksr run --location`). */
  readonly location: LocationMode;
  /** `ksr run --store`: the shared store's URL, used instead of db (never with pools). */
  readonly store?: string;
  /** `ksr run --nonce-secret-file`, an absolute path. */
  readonly nonceSecretFile?: string;
  /** `ksr run --htable` definitions. */
  readonly htables?: readonly HtableDefinition[];
  readonly logLevel: string;
  /** `ksr run --log-format`: text or json. */
  readonly logFormat?: string;
  readonly watch: boolean;
  readonly timers: ProxyTimerSettings;
}

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === "object" && value !== null && typeof (value as { t?: unknown }).t === "string";
}

export function isFrontMessage(value: unknown): value is FrontMessage {
  return typeof value === "object" && value !== null && typeof (value as { t?: unknown }).t === "string";
}
