/**
 * The `ksr` command.
 *
 *   ksr run <script> [--listen proto:ip:port]... [--alias host[:port]]...
 *                    [--workers n] [--heap-mb n] [--timeout-ms n] [--log-level level]
 *                    [--no-supervise] [--overload-delay-ms n] [--no-overload-shedding]
 *   ksr run --tenants <tenants.yaml> [--watch] [--listen ...] [--alias ...]
 *                    [--isolation process|process-per-tenant|in-process] [--shards n] [--idle-dispose-s n]
 *                    [--log-level level] [--no-supervise] [--overload-delay-ms n] [--no-overload-shedding]
 *   ksr ctl [--control <path>] tenants | reload [tenant] | counters | stats | ul ... | htable ... | loglevel ...   (host/cli/ctl.ts)
 *   ksr api [--native] [--json]
 *   ksr check <script...>
 *   ksr test [files...] [--reporter text|junit] [--watch]
 *   ksr subscriber|address|dispatcher add|rm|list ...   (host/cli/db-commands.ts)
 *
 * `ksr run` also takes --db <file>: the SQLite file of the location,
 * subscriber and address tables (default ./ksr.sqlite), and --location
 * memory|db: registrations written through to that file (db, the default)
 * or kept in memory only and lost at a restart (memory).
 *
 * `ksr run script.js --workers N` (N ≥ 2) runs the script in N worker
 * processes behind the front of the tenant processes (host/tenants/
 * processes.ts), each call on worker hash(Call-ID) mod N; a tenants file
 * gives a tenant N workers with `workers: N`. Workers of a pool share the
 * registrations through the --db file (not ":memory:", not --location
 * memory) and one nonce secret.
 */
import { parseDnsServer } from "../dns/resolver.js";
import { Command, InvalidArgumentError, Option } from "commander";
import { resolve as resolvePath } from "node:path";
import type { ListenSocket, LogLevel } from "../core/context.js";
import { LOG_FORMATS, LOG_LEVELS, isLogFormat, isLogLevel, log, setLogFormat, setLogLevel, type LogFormat } from "../core/log.js";
import { SipServer } from "../core/server.js";
import { proxyOptionsFromTimers, type ProxyOptions } from "../proxy/proxy.js";
import { loadTenantsFile, singleScriptConfig, TenantRegistry, TenantsConfigError } from "../tenants/index.js";
import { DISPATCHER_SETTING_NAMES, dispatcherProblem, type TenantDispatcherConfig } from "../modules/dispatcher/tenants.js";
import { resolveDispatcherList } from "../modules/dispatcher/db.js";
import { domainPatternProblem, parseCallbackName, parseErrorPolicy, type SingleScriptSettings } from "../tenants/config.js";
import type { KemiCallbacks } from "../core/context.js";
import { SETTING_ROUTES } from "../../runtime/interpreter.js";
import { tenantServer } from "../core/tenant-routing.js";
import { KEMI_MODULES } from "../modules/index.js";
import { DEFAULT_LIMITS } from "../../sandbox/types.js";
import { formatListenSocket, parseListenSocket } from "../transport/listen-socket.js";
import { fileURLToPath } from "node:url";
import {
  describeApi,
  describeModParams,
  describeNatives,
  describePvs,
  describeRoutes,
  formatApiText,
  formatModParamsText,
  formatNativesText,
  formatPvsText,
  formatRoutesText,
} from "./api.js";
import { runCheck } from "./check.js";
import { runTests, watchTests, type TestReporter } from "./test.js";
import { DEFAULT_DB_FILE, DEFAULT_TENANT, openRunDatabase, registerDbCommands } from "./db-commands.js";
import { announceReady, isServerProcess, supervise } from "./supervisor.js";
import { registerCtlCommand } from "./ctl.js";
import { inProcessControlTarget } from "../control/in-process.js";
import { processesControlTarget } from "../control/processes.js";
import { startControlServer, type ControlServer } from "../control/server.js";
import { CONTROL_HTTP_PATH, controlHttpHandler, readControlToken } from "../control/http.js";
import { DEFAULT_CONTROL_PATH, resolveControlPath, type ControlTarget } from "../control/types.js";
import { fork } from "node:child_process";
import type { TenantsConfig } from "../tenants/config.js";
import { isLocationMode, LOCATION_MODES, sharingProblem, type DataServices, type LocationMode, type SharingWorkers } from "../storage/index.js";
import { parseRedisUrl } from "../storage/redis/keys.js";
import { configureHtables, parseHtableModparam, type HtableDefinition } from "../modules/state/htable-store.js";
import { randomBytes } from "node:crypto";
import { MAX_SHARDS, MAX_WORKERS } from "../tenants/config.js";
import { defaultShardCount, planProcesses, shardProblem, type ProcessPlan } from "../tenants/shards.js";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { openSharedStateFile } from "../modules/state/shared-sqlite.js";
import { TenantProcesses, type WorkerSpawn } from "../tenants/processes.js";
import { runTenantWorker } from "../tenants/worker.js";
import { NONCE_SECRET_ENV, type SingleScript, type WorkerConfig } from "../tenants/worker-protocol.js";
import {
  DEFAULT_STREAM_LIMITS,
  TLS_CLIENT_VERIFICATIONS,
  TLS_MIN_VERSIONS,
  DEFAULT_WEBSOCKET_SETTINGS,
  type WebSocketSettings,
  TransportLayer,
  type StreamConnectionLimits,
  type TlsClientVerification,
  type TlsMinVersion,
  type TlsServerName,
  type TlsSettings,
} from "../transport/index.js";
import { DEFAULT_OVERLOAD_DELAY_MS, type OverloadOptions } from "../core/overload.js";
import { pikeModule } from "../modules/pike.js";
import { modParamFlags, parseModParams, type ModParamIssue, type ModParamValues } from "../modules/modparams.js";
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT, parseMetricsAddress, startMetricsServer, type MetricsGatherer, type MetricsServer } from "../metrics/http.js";
import { frontMetrics, serverMetrics } from "../ops/metrics.js";
import { frontOps, localOps } from "../ops/control-ops.js";

/** The hidden command a tenant's worker process runs. */
const WORKER_COMMAND = "tenant-worker";

const DEFAULT_LISTEN = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"];

function collect<T>(parse: (value: string) => T) {
  return (value: string, previous: T[] | undefined): T[] => [...(previous ?? []), parse(value)];
}

function listenOption(value: string): ListenSocket {
  try {
    return parseListenSocket(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function dnsServerOption(value: string): string {
  try {
    return parseDnsServer(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function storeOption(value: string): string {
  try {
    parseRedisUrl(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

function htableOption(value: string): HtableDefinition {
  try {
    return parseHtableModparam(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** The modparam text of a definition (for the server process's arguments). */
function formatHtableModparam(d: HtableDefinition): string {
  const attrs = [
    d.size === undefined ? undefined : `size=${d.size}`,
    d.autoExpireSec === undefined ? undefined : `autoexpire=${d.autoExpireSec}`,
    d.initVal === undefined ? undefined : `initval=${d.initVal}`,
    d.updateExpire === undefined ? undefined : `updateexpire=${d.updateExpire ? 1 : 0}`,
    d.shared === undefined ? undefined : `shared=${d.shared ? 1 : 0}`,
  ].filter((a) => a !== undefined);
  return `${d.name}=>${attrs.join(";")}`;
}

function aliasOption(value: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(value)) {
    throw new InvalidArgumentError(`"${value}" is not host[:port]`);
  }
  return value;
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return Number(value);
}

function onErrorOption(value: string): string {
  if (parseErrorPolicy(value) === undefined) throw new InvalidArgumentError(`"${value}" is neither a status 300-699 nor none`);
  return value;
}

function callbackOption(value: string): string {
  if (parseCallbackName(value) === undefined) throw new InvalidArgumentError(`"${value}" is not a function name (or none)`);
  return value;
}

/** The flags of the one script's error policy and KEMI callbacks, as SingleScriptSettings. */
function scriptSettings(opts: RunOptions): SingleScriptSettings {
  const name = (value: string | undefined, fallback: string): string => (value === undefined ? fallback : parseCallbackName(value)!);
  return {
    ...(opts.onError !== undefined ? { onError: parseErrorPolicy(opts.onError)! } : {}),
    kemi: Object.fromEntries(SETTING_ROUTES.map((r) => [r.kind, name(opts[optionKey(r.naming.cliOption)], r.naming.defaultName)])) as KemiCallbacks,
    ...(opts.dispatcherList !== undefined ? { dispatcher: dispatcherConfigOf(opts.dispatcherList, opts.dispatcherParam ?? []) } : {}),
    modparams: scriptModParams(opts).values,
  };
}

/** --dispatcher-list FILE and --dispatcher-param name=value pairs as a tenant's dispatcher configuration. */
function dispatcherConfigOf(list: string, params: readonly string[]): TenantDispatcherConfig {
  const byName: Record<string, string> = {};
  for (const p of params) {
    const eq = p.indexOf("=");
    byName[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return { list: resolveDispatcherList(list, resolvePath), params: byName };
}

function dispatcherParamOption(value: string): string {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`"${value}" is not name=value (names: ${DISPATCHER_SETTING_NAMES.join(", ")})`);
  return value;
}

type KemiCallbackKey = `kemi${string}RouteCallback`;

/** The key commander gives a --kemi-*-route-callback value: "--kemi-reply-route-callback" → kemiReplyRouteCallback. */
function optionKey(flag: string): KemiCallbackKey {
  const key = flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  if (!/^kemi.+RouteCallback$/.test(key)) throw new Error(`${flag} is not a --kemi-*-route-callback option`);
  return key as KemiCallbackKey;
}

/** The single-script flags of scriptSettings, with the option names commander gives them. */
const SCRIPT_SETTING_FLAGS: readonly (readonly ["onError" | KemiCallbackKey, string])[] = [
  ["onError", "--on-error"],
  ...SETTING_ROUTES.map((r) => [optionKey(r.naming.cliOption), r.naming.cliOption] as const),
];

function workersOption(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_WORKERS) throw new InvalidArgumentError(`"${value}" is more than ${MAX_WORKERS} workers`);
  return n;
}

function reporterOption(value: string): TestReporter {
  if (value !== "text" && value !== "junit") throw new InvalidArgumentError(`"${value}" is not text or junit`);
  return value;
}

function logFormatOption(value: string): LogFormat {
  if (!isLogFormat(value)) throw new InvalidArgumentError(`"${value}" is not one of ${LOG_FORMATS.join(", ")}`);
  return value;
}

function logLevelOption(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`"${value}" is not one of ${LOG_LEVELS.join(", ")}`);
  return value;
}

/**
 * How tenants are kept apart: in shards of worker processes (host/tenants/shards.ts), each
 * in a worker process of its own, or all in the server's process.
 */
type Isolation = "process" | "process-per-tenant" | "in-process";
const ISOLATIONS: readonly Isolation[] = ["process", "process-per-tenant", "in-process"];

/** `--idle-dispose-s` default: a tenant's isolate goes after five minutes without a route call. */
const DEFAULT_IDLE_DISPOSE_S = 300;

function locationOption(value: string): LocationMode {
  if (!isLocationMode(value)) throw new InvalidArgumentError(`"${value}" is not ${LOCATION_MODES.join(" or ")}`);
  return value;
}

function metricsOption(value: string): string {
  try {
    parseMetricsAddress(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

function isolationOption(value: string): Isolation {
  if (!(ISOLATIONS as readonly string[]).includes(value)) throw new InvalidArgumentError(`"${value}" is not one of ${ISOLATIONS.join(", ")}`);
  return value as Isolation;
}

function shardsOption(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_SHARDS) throw new InvalidArgumentError(`"${value}" is more than ${MAX_SHARDS} shards`);
  return n;
}

function secondsOption(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a whole number of seconds`);
  return Number(value);
}

interface RunOptions {
  /** Tenants file: serve its tenants instead of one script. */
  tenants?: string;
  /** With --tenants: shards of worker processes (default), a worker process per tenant, or all in one process. */
  isolation: Isolation;
  /** With --tenants and --isolation process: how many shards (default from cores and memory). */
  shards?: number;
  /** With --tenants: seconds without a route call before a tenant's isolate is disposed (0: never). */
  idleDisposeS: number;
  /** With --tenants: dispose each isolate once its script has loaded; built at the tenant's first message. */
  lazyIsolates?: boolean;
  /** With --tenants: reload a tenant when its script file changes. */
  watch?: boolean;
  /** With --tenants: Unix socket path for `ksr ctl` (true: --control given without a path); off when undefined. */
  control?: string | true;
  /** `--metrics [ip:]port`: serve /metrics (true: the option without a value, the default address); off when undefined. */
  metrics?: string | true;
  /** `--control-token-file FILE`: also serve the control methods at POST /rpc on the --metrics listener, for holders of the token in FILE. */
  controlTokenFile?: string;
  listen?: ListenSocket[];
  alias?: string[];
  /** `--dns-server IP:PORT`, repeatable: where next hops and KSR.ipops are resolved (default: the system's servers). */
  dnsServer?: string[];
  /** Worker processes running the one script (1: the script runs in the server's process). */
  workers: number;
  heapMb: number;
  timeoutMs: number;
  logLevel: LogLevel;
  /** Lines as text (default) or one JSON object each (host/core/log.ts). */
  logFormat: LogFormat;
  /** false with --no-supervise: serve in this process, no restart on a crash. */
  supervise: boolean;
  /** SQLite file of the location, subscriber and address tables. */
  db: string;
  /** Registrations written through to the file (db) or in memory only. */
  location: LocationMode;
  /** redis://HOST:PORT[/DB]: the shared store instead of the --db file (host/storage/redis). */
  store?: string;
  /** File holding the digest nonce secret every server of a shared store uses. */
  nonceSecretFile?: string;
  /** htable definitions in Kamailio's modparam syntax. */
  htable?: HtableDefinition[];
  /** RFC 3261 §17 timers T1, T2, T4 and tm's fr_timer / fr_inv_timer, in ms. */
  t1Ms?: number;
  t2Ms?: number;
  t4Ms?: number;
  frTimerMs?: number;
  frInvTimerMs?: number;
  /** Queueing delay (ms) past which new requests are answered 503 (host/core/overload.ts). */
  overloadDelayMs: number;
  /** false with --no-overload-shedding. */
  overloadShedding: boolean;
  /** TCP connection limits given (host/transport/connection-policy.ts); the defaults for the others. */
  tcpIdleTimeoutMs?: number;
  tcpMessageDeadlineMs?: number;
  tcpMaxOutputBytes?: number;
  tcpMaxKeepalivesPerMin?: number;
  tcpMaxInbound?: number;
  tcpMaxInboundPerIp?: number;
  tcpMaxOutbound?: number;
  tlsHandshakeTimeoutMs?: number;
  /** --on-error as given (validated; see scriptSettings). */
  onError?: string;
  /** The --kemi-*-route-callback flags of runtime/interpreter.ts's SETTING_ROUTES, as given (validated), by optionKey. */
  [kemiCallbackOption: KemiCallbackKey]: string | undefined;
  /** --dispatcher-list and --dispatcher-param (host/modules/dispatcher/tenants.ts). */
  dispatcherList?: string;
  dispatcherParam?: string[];
  /** The --pike-* flags (PIKE_FLAGS): pike's modparams for the one script. */
  [pikeOption: `pike${string}`]: number | undefined;
  /** --modparam module.name=value, repeatable. */
  modparam?: string[];
  /** PEM certificate and key of the tls listen sockets, CA file, verification modes (host/transport/tls.ts). */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsVerifyClient?: TlsClientVerification;
  tlsVerifyServer?: boolean;
  tlsMinVersion?: TlsMinVersion;
  tlsCiphers?: string;
  /** --tls-server-name NAMES:CERT:KEY, repeatable. */
  tlsServerName?: TlsServerName[];
  /** WebSocket handshake lists and keep-alive (host/transport/ws.ts). */
  wsPath?: string[];
  wsOrigin?: string[];
  wsPingIntervalMs?: number;
  wsPongTimeoutMs?: number;
}

function wsPathOption(value: string): string {
  if (!value.startsWith("/")) throw new InvalidArgumentError(`"${value}" is not a path (it starts with /)`);
  return value;
}

/** The `ksr run` options setting a WebSocket keep-alive time. */
const WS_FLAGS = [
  ["wsPingIntervalMs", "--ws-ping-interval-ms", "pingIntervalMs", "send a WebSocket ping on every ws/wss connection this often"],
  ["wsPongTimeoutMs", "--ws-pong-timeout-ms", "pongTimeoutMs", "close a WebSocket connection whose pong has not come this long after a ping"],
] as const satisfies readonly SettingFlag<keyof typeof DEFAULT_WEBSOCKET_SETTINGS>[];

/** The WebSocket settings of the flags. */
function webSocketSettings(opts: RunOptions): WebSocketSettings {
  return {
    ...(opts.wsPath !== undefined ? { allowedPaths: opts.wsPath } : {}),
    ...(opts.wsOrigin !== undefined ? { allowedOrigins: opts.wsOrigin } : {}),
    ...settingsFromFlags(opts, WS_FLAGS),
  };
}

/** The WebSocket list flags again, for a server process (the numeric ones go with the other setting flags). */
function wsArgs(opts: RunOptions): string[] {
  return [...(opts.wsPath ?? []).flatMap((p) => ["--ws-path", p]), ...(opts.wsOrigin ?? []).flatMap((o) => ["--ws-origin", o])];
}

function tlsMinVersionOption(value: string): TlsMinVersion {
  if (!TLS_MIN_VERSIONS.includes(value as TlsMinVersion)) throw new InvalidArgumentError(`"${value}" is not ${TLS_MIN_VERSIONS.join(" or ")}`);
  return value as TlsMinVersion;
}

/** `--tls-server-name sip.example.com,*.example.com:cert.pem:key.pem` (file names without ":"). */
function tlsServerNameOption(value: string): TlsServerName {
  const parts = value.split(":");
  if (parts.length !== 3 || parts.some((p) => p === "")) throw new InvalidArgumentError(`"${value}" is not NAMES:CERT:KEY (e.g. sip.example.com,*.example.com:example.pem:example.key)`);
  const names = parts[0]!.split(",").map((n) => n.trim().toLowerCase());
  for (const name of names) {
    const problem = name === "*" ? '"*" would claim every server name: --tls-cert is the certificate for names no other covers' : domainPatternProblem(name);
    if (problem !== undefined) throw new InvalidArgumentError(`"${value}": ${problem}`);
  }
  return { names, certFile: resolvePath(parts[1]!), keyFile: resolvePath(parts[2]!) };
}

function tlsVerifyClientOption(value: string): TlsClientVerification {
  if (!TLS_CLIENT_VERIFICATIONS.includes(value as TlsClientVerification)) throw new InvalidArgumentError(`"${value}" is not ${TLS_CLIENT_VERIFICATIONS.join(", ")}`);
  return value as TlsClientVerification;
}

/** The TLS settings of the flags (file names absolute) with the certificates of the tenants, or undefined without --tls-cert. */
function tlsSettings(opts: RunOptions, tenants?: TenantsConfig): TlsSettings | undefined {
  if (opts.tlsCert === undefined || opts.tlsKey === undefined) return undefined;
  return {
    certFile: resolvePath(opts.tlsCert),
    keyFile: resolvePath(opts.tlsKey),
    ...(opts.tlsCa !== undefined ? { caFile: resolvePath(opts.tlsCa) } : {}),
    verifyClient: opts.tlsVerifyClient ?? "none",
    verifyServer: opts.tlsVerifyServer === true,
    ...(opts.tlsMinVersion !== undefined ? { minVersion: opts.tlsMinVersion } : {}),
    ...(opts.tlsCiphers !== undefined ? { ciphers: opts.tlsCiphers } : {}),
    serverNames: [...(opts.tlsServerName ?? []), ...(tenants?.tenants.flatMap((t) => (t.tls === undefined ? [] : [t.tls])) ?? [])],
  };
}

/** The TLS flags again, for a server process. */
function tlsArgs(opts: RunOptions): string[] {
  const settings = tlsSettings(opts);
  if (settings === undefined) return [];
  return [
    "--tls-cert",
    settings.certFile,
    "--tls-key",
    settings.keyFile,
    ...(settings.caFile !== undefined ? ["--tls-ca", settings.caFile] : []),
    "--tls-verify-client",
    settings.verifyClient!,
    ...(settings.verifyServer === true ? ["--tls-verify-server"] : []),
    ...(settings.minVersion !== undefined ? ["--tls-min-version", settings.minVersion] : []),
    ...(settings.ciphers !== undefined ? ["--tls-ciphers", settings.ciphers] : []),
    // The tenants' certificates come from the tenants file, which the server process reads again.
    ...(opts.tlsServerName ?? []).flatMap((n) => ["--tls-server-name", `${n.names.join(",")}:${n.certFile}:${n.keyFile}`]),
  ];
}

/** A numeric `ksr run` option that sets one field of a settings object: option key, flag, field, meaning (--help). */
type SettingFlag<Field extends string> = readonly [keyof RunOptions, string, Field, string];

/** The settings the flags given on the command line set. */
function settingsFromFlags<Field extends string>(opts: RunOptions, flags: readonly SettingFlag<Field>[]): Partial<Record<Field, number>> {
  const settings: Partial<Record<Field, number>> = {};
  for (const [key, , field] of flags) {
    const value = opts[key];
    if (typeof value === "number") settings[field] = value;
  }
  return settings;
}

/**
 * `--pike-<param>` for each of pike's modparams (its table's declarations):
 * short forms of `--modparam pike.<param>=n` for the one script.
 */
const PIKE_FLAGS: readonly (readonly [`pike${string}`, string, string, string, number])[] = (pikeModule.modparams ?? []).map((p) => {
  const flag = `--pike-${p.name.replace(/_/g, "-")}`;
  const key = flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as `pike${string}`;
  return [key, flag, p.name, `pike's ${p.name}: ${p.doc}`, p.default as number] as const;
});

/** The one script's module parameters: --pike-* and --modparam, checked against the modules' declarations. */
function scriptModParams(opts: RunOptions): { readonly values: ModParamValues; readonly issues: readonly ModParamIssue[] } {
  const flags = modParamFlags(opts.modparam ?? []);
  const given: Record<string, Record<string, string | number>> = flags.given;
  for (const [key, , name] of PIKE_FLAGS) {
    const value = opts[key];
    if (value !== undefined) (given.pike ??= {})[name] = value;
  }
  const parsed = parseModParams(KEMI_MODULES, given);
  return { values: parsed.values, issues: [...flags.issues, ...parsed.issues] };
}

/** The `ksr run` options setting a TCP connection limit. */
const TCP_LIMIT_FLAGS = [
  ["tcpIdleTimeoutMs", "--tcp-idle-timeout-ms", "idleTimeoutMs", "close a TCP connection after this long without a message or answered keep-alive"],
  ["tcpMessageDeadlineMs", "--tcp-message-deadline-ms", "messageDeadlineMs", "a message must be complete this long after its first byte (slow senders are closed)"],
  ["tcpMaxOutputBytes", "--tcp-max-output-bytes", "maxOutputBytes", "bytes queued for a peer that does not read before its connection is closed"],
  ["tcpMaxKeepalivesPerMin", "--tcp-max-keepalives-per-min", "maxKeepalivesPerMinute", "CRLF keep-alive pings answered per connection and minute; more close it"],
  ["tcpMaxInbound", "--tcp-max-inbound", "maxInboundConnections", "TCP connections peers may open to us"],
  ["tcpMaxInboundPerIp", "--tcp-max-inbound-per-ip", "maxInboundPerIp", "TCP connections one IP address may open to us"],
  ["tcpMaxOutbound", "--tcp-max-outbound", "maxOutboundConnections", "TCP connections we may open (next hops), apart from inbound ones"],
  ["tlsHandshakeTimeoutMs", "--tls-handshake-timeout-ms", "handshakeTimeoutMs", "close a TLS connection whose handshake is not done this long after it opened"],
] as const satisfies readonly SettingFlag<keyof StreamConnectionLimits>[];

/** The load shedding `ksr run` applies; undefined with --no-overload-shedding. */
function overloadOptions(opts: RunOptions): OverloadOptions | undefined {
  return opts.overloadShedding ? { thresholdMs: opts.overloadDelayMs } : undefined;
}

/** The transaction timer options given, as `ksr run` arguments. */
const TIMER_FLAGS = [
  ["t1Ms", "--t1-ms"],
  ["t2Ms", "--t2-ms"],
  ["t4Ms", "--t4-ms"],
  ["frTimerMs", "--fr-timer-ms"],
  ["frInvTimerMs", "--fr-inv-timer-ms"],
] as const;

/** Stateful proxy settings from the timer options (defaults where not given); throws naming a bad combination. */
function proxyOptions(opts: RunOptions): ProxyOptions {
  return proxyOptionsFromTimers(opts);
}

/** The `ksr run` arguments for a supervised server process. */
function serverArgs(scriptPath: string | undefined, opts: RunOptions, listen: readonly string[] | undefined): string[] {
  const sockets = listen ?? (opts.listen ?? DEFAULT_LISTEN.map(parseListenSocket)).map(formatListenSocket);
  const common = [
    ...sockets.flatMap((s) => ["--listen", s]),
    ...(opts.alias ?? []).flatMap((a) => ["--alias", a]),
    ...(opts.dnsServer ?? []).flatMap((a) => ["--dns-server", a]),
    "--log-level",
    opts.logLevel,
    "--log-format",
    opts.logFormat,
    "--db",
    opts.db,
    "--location",
    opts.location,
    ...(opts.store === undefined ? [] : ["--store", opts.store]),
    ...(opts.nonceSecretFile === undefined ? [] : ["--nonce-secret-file", resolvePath(opts.nonceSecretFile)]),
    ...(opts.htable ?? []).flatMap((d) => ["--htable", formatHtableModparam(d)]),
    ...TIMER_FLAGS.flatMap(([key, flag]) => (opts[key] === undefined ? [] : [flag, String(opts[key])])),
    "--overload-delay-ms",
    String(opts.overloadDelayMs),
    ...(opts.overloadShedding ? [] : ["--no-overload-shedding"]),
    ...[...TCP_LIMIT_FLAGS, ...WS_FLAGS].flatMap(([key, flag]) => (opts[key] === undefined ? [] : [flag, String(opts[key])])),
    ...PIKE_FLAGS.flatMap(([key, flag]) => (opts[key] === undefined ? [] : [flag, String(opts[key])])),
    ...(opts.modparam ?? []).flatMap((p) => ["--modparam", p]),
    ...tlsArgs(opts),
    ...wsArgs(opts),
    // Only ever set with --tenants (runUsageProblem); absolute, whatever the server process's directory.
    ...(opts.control === undefined ? [] : ["--control", resolveControlPath(opts.control)]),
    ...(opts.metrics === undefined ? [] : ["--metrics", opts.metrics === true ? `${DEFAULT_METRICS_HOST}:${DEFAULT_METRICS_PORT}` : opts.metrics]),
    ...(opts.controlTokenFile === undefined ? [] : ["--control-token-file", resolvePath(opts.controlTokenFile)]),
  ];
  if (scriptPath === undefined) {
    return [
      "run",
      "--tenants",
      resolvePath(opts.tenants!),
      "--isolation",
      opts.isolation,
      ...(opts.shards !== undefined ? ["--shards", String(opts.shards)] : []),
      "--idle-dispose-s",
      String(opts.idleDisposeS),
      ...(opts.lazyIsolates === true ? ["--lazy-isolates"] : []),
      ...(opts.watch === true ? ["--watch"] : []),
      ...common,
    ];
  }
  const settings = SCRIPT_SETTING_FLAGS.flatMap(([key, flag]) => (opts[key] === undefined ? [] : [flag, opts[key]!]));
  const dispatcher = [
    ...(opts.dispatcherList === undefined ? [] : ["--dispatcher-list", resolvePath(opts.dispatcherList)]),
    ...(opts.dispatcherParam ?? []).flatMap((p) => ["--dispatcher-param", p]),
  ];
  return ["run", scriptPath, ...common, ...settings, ...dispatcher, "--workers", String(opts.workers), "--heap-mb", String(opts.heapMb), "--timeout-ms", String(opts.timeoutMs)];
}

/** Options that only make sense for one of the two ways of running; the message says why. */
function runUsageProblem(scriptPath: string | undefined, opts: RunOptions, fromCli: (option: string) => boolean): string | undefined {
  if (scriptPath !== undefined && opts.tenants !== undefined) return "give either a script or --tenants, not both";
  if (scriptPath === undefined && opts.tenants === undefined) return "missing the script to run (or --tenants <file>)";
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) return "--tls-cert and --tls-key go together";
  if (opts.tenants === undefined && opts.watch === true) return "--watch reloads the scripts of a tenants file: use it with --tenants";
  if (opts.tenants !== undefined && fromCli("workers")) return "--workers applies to a single script: give a tenant several workers with `workers: N` in the tenants file";
  if (opts.tenants === undefined && opts.workers >= 2) {
    const problem = sharingProblem(opts.db, opts.location);
    if (problem !== undefined) return `--workers ${opts.workers}: ${problem}`;
  }
  if (opts.store !== undefined) {
    if (opts.tenants === undefined && opts.workers >= 2) return "--store with --workers: run one server process per core against the shared store instead (each a --store server of its own)";
  } else if (opts.nonceSecretFile !== undefined) return "--nonce-secret-file applies with --store";
  if (opts.tenants === undefined && fromCli("isolation")) return "--isolation separates the tenants of a tenants file: use it with --tenants";
  if (opts.tenants === undefined && fromCli("idleDisposeS")) return "--idle-dispose-s disposes idle tenants' isolates: use it with --tenants";
  if (opts.tenants === undefined && opts.lazyIsolates === true) return "--lazy-isolates builds tenants' isolates at their first message: use it with --tenants";
  if (opts.shards !== undefined && (opts.tenants === undefined || opts.isolation !== "process")) return "--shards applies to --tenants with --isolation process";
  if (opts.dispatcherParam !== undefined && opts.dispatcherList === undefined) return "--dispatcher-param needs --dispatcher-list";
  if (opts.controlTokenFile !== undefined) {
    if (opts.metrics === undefined) return "--control-token-file serves the control methods on the --metrics listener: give --metrics too";
    try {
      readControlToken(opts.controlTokenFile);
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (opts.dispatcherList !== undefined) {
    if (opts.tenants !== undefined) return "--dispatcher-list applies to a single script: give a tenant its list with `dispatcher: { list: FILE }` in the tenants file";
    const problem = dispatcherProblem(dispatcherConfigOf(opts.dispatcherList, opts.dispatcherParam ?? []), DEFAULT_TENANT);
    if (problem !== undefined) return `--dispatcher-list: ${problem}`;
  }
  try {
    proxyOptions(opts);
  } catch (err) {
    return (err as Error).message;
  }
  const pikeFlag = PIKE_FLAGS.find(([key]) => opts[key] !== undefined);
  if (opts.tenants !== undefined && (pikeFlag !== undefined || opts.modparam !== undefined)) {
    return `${pikeFlag?.[1] ?? "--modparam"} applies to a single script: set modparams: per tenant in the tenants file`;
  }
  const modparamIssue = scriptModParams(opts).issues[0];
  if (modparamIssue !== undefined) {
    const flag = PIKE_FLAGS.find(([, , name]) => modparamIssue.field === `pike.${name}`)?.[1];
    return flag !== undefined ? `${flag}: ${modparamIssue.message}` : `--modparam ${modparamIssue.field}: ${modparamIssue.message}`.replace("--modparam : ", "--modparam: ");
  }
  const settingFlag = SCRIPT_SETTING_FLAGS.find(([key]) => opts[key] !== undefined);
  if (opts.tenants !== undefined && settingFlag !== undefined) {
    return `${settingFlag[1]} applies to a single script: set onError and kemi: per tenant in the tenants file`;
  }
  if (opts.tenants !== undefined) {
    for (const [key, flag] of [["heapMb", "--heap-mb"], ["timeoutMs", "--timeout-ms"]] as const) {
      if (fromCli(key)) return `${flag} does not apply with --tenants: set limits per tenant in the tenants file`;
    }
  }
  return undefined;
}

/**
 * The data services of a server: the shared store of --store (connected
 * and loaded, or the process exits naming the URL), else the --db file.
 */
async function openRunData(opts: RunOptions): Promise<DataServices> {
  if (opts.store === undefined) return openRunDatabase(opts.db, opts.location);
  return openStoreOrExit(opts.store, opts.nonceSecretFile);
}

/** A tenant worker process's data services: the front's --store, else the run database. */
function openWorkerData(config: WorkerConfig, sharedBy: SharingWorkers | undefined): DataServices | Promise<DataServices> {
  if (config.store === undefined) return openRunDatabase(config.db, config.location, sharedBy);
  return openStoreOrExit(config.store, config.nonceSecretFile);
}

async function openStoreOrExit(url: string, nonceSecretFile: string | undefined): Promise<DataServices> {
  if (nonceSecretFile === undefined) log("warn", "redis", "no --nonce-secret-file: digest nonces verify only on the server that issued them");
  try {
    // Loaded only when a store is used: the Redis client adds to every start otherwise.
    const { openRedisDataServices } = await import("../storage/redis/index.js");
    const data = await openRedisDataServices({ url, ...(nonceSecretFile !== undefined ? { nonceSecret: readNonceSecret(nonceSecretFile) } : {}) });
    data.startSweeper();
    return data;
  } catch (err) {
    process.stderr.write(`ksr: --store: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  }
}

/** The nonce secret file's bytes (surrounding white space dropped), at least 16 of them. */
function readNonceSecret(file: string): Buffer {
  const secret = Buffer.from(readFileSync(file, "utf8").trim(), "utf8");
  if (secret.length < 16) throw new Error(`${file}: the nonce secret must be at least 16 bytes`);
  return secret;
}

async function run(scriptPath: string | undefined, opts: RunOptions, fromCli: (option: string) => boolean): Promise<void> {
  const problem = runUsageProblem(scriptPath, opts, fromCli);
  if (problem !== undefined) {
    process.stderr.write(`ksr run: ${problem}\n`);
    process.exit(2);
  }
  setLogLevel(opts.logLevel);
  setLogFormat(opts.logFormat);
  if (opts.htable !== undefined) configureHtables(opts.htable);
  if (opts.supervise && !isServerProcess()) {
    const entry = fileURLToPath(import.meta.url);
    process.exit(await supervise({ entry, argsFor: (listen) => serverArgs(scriptPath, opts, listen) }));
  }
  if (scriptPath === undefined) return opts.isolation === "in-process" ? runTenants(opts.tenants!, opts) : runTenantProcesses(opts.tenants!, opts);
  if (opts.workers >= 2) return runScriptWorkers(scriptPath, opts);
  const tenant = DEFAULT_TENANT;
  let registry: TenantRegistry;
  try {
    // A single script is a tenants file of one tenant: the same inbound path,
    // without CPU budgets (nobody to share with) and synchronous throughout,
    // a route timeout included (no demotion).
    registry = new TenantRegistry(singleScriptConfig(scriptPath, tenant, { heapMb: opts.heapMb, routeTimeoutMs: opts.timeoutMs }, 1, scriptSettings(opts)), {
      cpuBudgets: false,
      autoDemote: false,
    });
  } catch (err) {
    // The load error already reads "file:line:col: message"; no stack.
    const text = err instanceof TenantsConfigError ? err.issues.map((i) => i.message).join("; ") : `${scriptPath}: ${(err as Error)?.message ?? String(err)}`;
    process.stderr.write(`ksr: cannot load script: ${text}\n`);
    process.exit(1);
  }
  const data = await openRunData(opts);
  const server = tenantServer(
    registry,
    {
      listen: opts.listen ?? DEFAULT_LISTEN.map(parseListenSocket),
      aliases: opts.alias ?? [],
      dnsServers: opts.dnsServer,
      tenantId: tenant,
      data,
      overload: overloadOptions(opts),
      streamLimits: settingsFromFlags(opts, TCP_LIMIT_FLAGS),
      tls: tlsSettings(opts),
      webSocket: webSocketSettings(opts),
    },
    // Alone, the tenant needs no name on our Vias: the next hops see plain ones.
    { proxy: proxyOptions(opts), nameTenantInVia: false },
  );
  let metrics: MetricsServer | undefined;
  let control: ControlServer | undefined;
  await serveUntilStopped(server, () => {
    void metrics?.close();
    void control?.close();
    registry.dispose();
    data.close();
  });
  const gather = serverMetrics(server, data);
  const target: ControlTarget = { ...inProcessControlTarget(registry, server.router), ops: localOps(server, data, gather) };
  metrics = await startMetricsOrExit(opts, gather, target);
  control = await startControlOrExit(opts, target);
  // SIGHUP would end the process by default; a single script is not reloaded.
  process.on("SIGHUP", () => log("notice", "ksr", "SIGHUP: only a server started with --tenants reloads its scripts; ignored"));
  // SIGUSR2 would end the process too: it logs the script's counters and the load shedding's.
  process.on("SIGUSR2", () => {
    for (const line of server.router.tenantCounterLines()) log("info", "counters", line);
    log("info", "counters", server.shedder?.counterLine() ?? "overload: shedding off (--no-overload-shedding)");
    const tcp = server.tcpCounterLine();
    if (tcp !== undefined) log("info", "counters", tcp);
  });
  // Announced only once the signal handlers are in place: whoever waits for
  // this line may stop the server right away.
  log("notice", "ksr", `running ${scriptPath} on ${server.listen.map(formatListenSocket).join(", ")}`);
  announceReady(server.listen.map(formatListenSocket));
}

/**
 * Start listening and stop cleanly on SIGINT/SIGTERM, or when the
 * supervisor is gone (a server process must not linger holding the ports,
 * even if its supervisor was killed with SIGKILL). `release` frees what the
 * server used; a failure to listen exits with code 1.
 */
async function serveUntilStopped(server: SipServer, release: () => void): Promise<void> {
  try {
    await server.start();
  } catch (err) {
    release();
    process.stderr.write(`ksr: cannot listen: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log("notice", "ksr", `${reason}: stopping`);
    server.stop().then(
      () => {
        release();
        process.exit(0);
      },
      (err) => {
        process.stderr.write(`ksr: error while stopping: ${(err as Error)?.message ?? String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  if (isServerProcess()) process.on("disconnect", () => shutdown("supervisor gone"));
}

/**
 * With --control: the control socket `ksr ctl` talks to, serving `target`
 * (host/control/server.ts); undefined without --control. A socket that
 * cannot be opened (another server on it, not a socket) exits 1.
 */
async function startControlOrExit(opts: RunOptions, target: ControlTarget): Promise<ControlServer | undefined> {
  if (opts.control === undefined) return undefined;
  try {
    return await startControlServer(resolveControlPath(opts.control), target);
  } catch (err) {
    process.stderr.write(`ksr: cannot open the control socket: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  }
}

/**
 * With --metrics: the /metrics listener serving what `gather` gathers, and
 * with --control-token-file also `target`'s control methods at POST /rpc
 * (host/control/http.ts); a listener that cannot be opened exits 1.
 */
async function startMetricsOrExit(opts: RunOptions, gather: MetricsGatherer, target: ControlTarget): Promise<MetricsServer | undefined> {
  if (opts.metrics === undefined) return undefined;
  try {
    const rpc =
      opts.controlTokenFile === undefined ? undefined : { path: CONTROL_HTTP_PATH, handle: controlHttpHandler(target, readControlToken(opts.controlTokenFile)) };
    return await startMetricsServer(parseMetricsAddress(opts.metrics), gather, rpc);
  } catch (err) {
    process.stderr.write(`ksr: cannot serve the metrics: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  }
}

/** The tenants file, or exit 1 naming every problem in it. */
function loadTenantsOrExit(tenantsFile: string, opts: RunOptions): TenantsConfig {
  let config: TenantsConfig;
  try {
    config = loadTenantsFile(tenantsFile);
  } catch (err) {
    const text = err instanceof TenantsConfigError ? err.message : `${tenantsFile}: ${(err as Error)?.message ?? String(err)}`;
    process.stderr.write(`ksr: cannot load the tenants: ${text}\n`);
    process.exit(1);
  }
  // A tenant's certificate is an alternative to the server's, presented on its tls sockets.
  const withTls = config.tenants.find((t) => t.tls !== undefined);
  if (withTls !== undefined && tlsSettings(opts) === undefined) {
    process.stderr.write(`ksr: ${config.file}: tenant "${withTls.id}", field tls: a tenant's certificate needs the server's own for the names no tenant covers (--tls-cert, --tls-key) and a tls listen socket\n`);
    process.exit(1);
  }
  return config;
}

/**
 * `ksr run --tenants file` with worker processes: this process keeps the
 * sockets and hands each message to the worker process running its tenant
 * (host/tenants/processes.ts): with --isolation process (the default) the
 * shards of host/tenants/shards.ts (--shards, default from the cores and
 * memory), with --isolation process-per-tenant a process each. A worker
 * that dies is restarted alone (a shard without the tenant that was
 * running, quarantined). A worker whose script does not load stops the
 * start (it printed why, file:line). A tenant with `workers: N` has a pool
 * of N workers.
 * SIGHUP reloads every tenant in its workers, `--watch` a tenant whose
 * script changes; SIGUSR2 logs each worker's counters.
 */
async function runTenantProcesses(tenantsFile: string, opts: RunOptions): Promise<void> {
  const config = loadTenantsOrExit(tenantsFile, opts);
  for (const entry of config.tenants) {
    if (entry.workers > 1 && opts.store !== undefined) {
      // A pool shares htables and $shv through a SQLite file of the server; with a store its workers would not.
      process.stderr.write(`ksr: ${config.file}: tenant "${entry.id}", field workers: ${entry.workers}: a pool of workers does not run on --store; give it workers: 1 and run more servers instead\n`);
      process.exit(2);
    }
    const problem = entry.workers > 1 ? sharingProblem(opts.db, opts.location) : undefined;
    if (problem !== undefined) {
      process.stderr.write(`ksr: ${config.file}: tenant "${entry.id}", field workers: ${entry.workers} workers need shared registrations: ${problem}\n`);
      process.exit(2);
    }
  }
  const shards = opts.shards ?? defaultShardCount();
  const problem = opts.isolation === "process" ? shardProblem(config, shards) : undefined;
  if (problem !== undefined) {
    process.stderr.write(`ksr: ${problem}\n`);
    process.exit(2);
  }
  const plan =
    opts.isolation === "process"
      ? planProcesses(config, shards)
      : planProcesses({ tenants: config.tenants.map((t) => ({ ...t, ownProcess: true, shard: undefined })) }, 1);
  const { server, target } = await startWorkerProcesses(config, { tenantsFile: config.file }, opts, plan);
  const shardCount = plan.filter((p) => p.kind === "shard").length;
  const own = plan.filter((p) => p.kind === "own");
  const listed = config.tenants.length <= 10 ? `tenants ${config.tenants.map((t) => (t.workers > 1 ? `${t.id} (${t.workers} workers)` : t.id)).join(", ")}` : `${config.tenants.length} tenants`;
  serveTenantSignals(
    server,
    target,
    `running ${listed} of ${config.file} in ${plan.length} worker processes (${shardCount} shards, ${own.length} processes of one tenant)`,
  );
}

/**
 * `ksr run script.js --workers N`: the tenant processes' front with one
 * tenant, the script, served by a pool of N worker processes. SIGUSR2 logs
 * the counters of every worker; SIGHUP is ignored as for a single script
 * in one process.
 */
async function runScriptWorkers(scriptPath: string, opts: RunOptions): Promise<void> {
  const path = resolvePath(scriptPath);
  const script: SingleScript = { path, heapMb: opts.heapMb, routeTimeoutMs: opts.timeoutMs, settings: scriptSettings(opts) };
  const config = singleScriptConfig(path, DEFAULT_TENANT, { heapMb: opts.heapMb, routeTimeoutMs: opts.timeoutMs }, opts.workers, script.settings);
  const { server, target } = await startWorkerProcesses(config, { script }, opts, planProcesses(config, 1));
  process.on("SIGHUP", () => log("notice", "ksr", "SIGHUP: only a server started with --tenants reloads its scripts; ignored"));
  process.on("SIGUSR2", () => {
    void target.counters().then((lines) => {
      for (const line of lines) log("info", "counters", line);
    });
  });
  log("notice", "ksr", `running ${scriptPath} in ${opts.workers} worker processes on ${server.listen.map(formatListenSocket).join(", ")}`);
  announceReady(server.listen.map(formatListenSocket));
}

/**
 * The front of worker processes (host/tenants/processes.ts): listens,
 * starts every tenant's pool of workers (exit 1 naming the one that does
 * not start), and opens the control socket when asked.
 */
async function startWorkerProcesses(
  config: TenantsConfig,
  source: Pick<WorkerConfig, "tenantsFile" | "script">,
  opts: RunOptions,
  plan: readonly ProcessPlan[],
): Promise<{ server: SipServer; target: ControlTarget }> {
  const entry = fileURLToPath(import.meta.url);
  let server: SipServer | undefined;
  // One secret for every worker of the server: a nonce one issued verifies on another (host/auth/nonce.ts).
  const nonceSecret = randomBytes(32).toString("hex");
  const sharedState = config.tenants.some((t) => t.workers > 1) ? createSharedStateFile() : undefined;
  const workerConfig = (worker: WorkerSpawn): WorkerConfig => ({
    ...source,
    tenantIds: worker.tenantIds,
    label: worker.label,
    kind: worker.kind,
    workerIndex: worker.index,
    poolSize: worker.poolSize,
    ...(worker.runningFile !== undefined ? { runningFile: worker.runningFile } : {}),
    ...(source.tenantsFile !== undefined ? { idleSeconds: opts.idleDisposeS, lazyIsolates: opts.lazyIsolates === true } : {}),
    ...(sharedState !== undefined ? { sharedStateFile: sharedState.file } : {}),
    listen: server!.listen,
    aliases: opts.alias ?? [],
    dnsServers: opts.dnsServer ?? [],
    db: opts.db === ":memory:" ? opts.db : resolvePath(opts.db),
    location: opts.location,
    ...(opts.store !== undefined ? { store: opts.store } : {}),
    ...(opts.nonceSecretFile !== undefined ? { nonceSecretFile: resolvePath(opts.nonceSecretFile) } : {}),
    ...(opts.htable !== undefined ? { htables: opts.htable } : {}),
    logLevel: opts.logLevel,
    logFormat: opts.logFormat,
    watch: opts.watch === true,
    timers: { t1Ms: opts.t1Ms, t2Ms: opts.t2Ms, t4Ms: opts.t4Ms, frTimerMs: opts.frTimerMs, frInvTimerMs: opts.frInvTimerMs },
  });
  const processes = new TenantProcesses(config, {
    overload: overloadOptions(opts),
    plan,
    runningDir: existsSync("/dev/shm") ? "/dev/shm" : tmpdir(),
    spawn: (worker) =>
      fork(entry, [WORKER_COMMAND, JSON.stringify(workerConfig(worker))], {
        // JSON: measured 2-3x cheaper per SIP message than "advanced" (structured clone)
        // for these objects of strings and numbers; latin1 strings round-trip.
        serialization: "json",
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        // Only the workers of a pool need the secret; in the environment, not the argument list others can read.
        env: worker.poolSize > 1 ? { ...process.env, [NONCE_SECRET_ENV]: nonceSecret } : process.env,
      }),
  });
  server = new SipServer((host) => processes.attach(host), {
    listen: opts.listen ?? DEFAULT_LISTEN.map(parseListenSocket),
    aliases: opts.alias ?? [],
    dnsServers: opts.dnsServer,
    tenantId: "ksr",
    streamLimits: settingsFromFlags(opts, TCP_LIMIT_FLAGS),
      tls: tlsSettings(opts, config),
      webSocket: webSocketSettings(opts),
  });
  let control: ControlServer | undefined;
  let metrics: MetricsServer | undefined;
  await serveUntilStopped(server, () => {
    void control?.close();
    void metrics?.close();
    void processes.stop();
    // The workers may still have it open: unlinked, it goes with them.
    sharedState?.remove();
  });
  try {
    await processes.start();
  } catch (err) {
    process.stderr.write(`ksr: cannot start the tenants: ${(err as Error).message}\n`);
    await server.stop();
    sharedState?.remove();
    process.exit(1);
  }
  const gather = frontMetrics(server, processes);
  const target: ControlTarget = { ...processesControlTarget(processes), ops: frontOps(server, processes, gather) };
  control = await startControlOrExit(opts, target);
  metrics = await startMetricsOrExit(opts, gather, target);
  return { server, target };
}

/**
 * The file the workers of pools keep htables and $shv in
 * (host/modules/state/shared-sqlite.ts): on /dev/shm (memory) when the
 * machine has it, else the temporary directory; created with its schema
 * before the workers start, removed when the front stops (a front killed
 * with SIGKILL leaves it behind: ksr-shared-state-<pid>-*.sqlite).
 */
function createSharedStateFile(): { file: string; remove: () => void } {
  const dir = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const file = joinPath(dir, `ksr-shared-state-${process.pid}-${randomBytes(4).toString("hex")}.sqlite`);
  try {
    openSharedStateFile(file).close();
  } catch (err) {
    process.stderr.write(`ksr: cannot create the shared state file ${file}: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  }
  return { file, remove: () => ["", "-wal", "-shm"].forEach((suffix) => rmSync(file + suffix, { force: true })) };
}

/**
 * The last step of starting a tenants server, either isolation: SIGHUP
 * reloads every tenant's script, SIGUSR2 logs the counters (both through
 * the same ControlTarget as the control socket), then the ready line.
 */
function serveTenantSignals(server: SipServer, target: ControlTarget, running: string): void {
  process.on("SIGHUP", () => {
    log("notice", "ksr", "SIGHUP: reloading every tenant's script");
    void target.reload().then((results) => {
      const failed = results.filter((r) => !r.ok).map((r) => r.tenant);
      log(
        failed.length === 0 ? "notice" : "err",
        "ksr",
        failed.length === 0 ? `SIGHUP: ${results.length} tenant(s) reloaded` : `SIGHUP: reload failed for ${failed.join(", ")}; their previous scripts keep running`,
      );
    });
  });
  process.on("SIGUSR2", () => {
    void target.counters().then((lines) => {
      for (const line of lines) log("info", "counters", line);
    });
  });
  // Announced only once the signal handlers are in place: whoever waits for
  // this line may signal the server right away.
  log("notice", "ksr", `${running} on ${server.listen.map(formatListenSocket).join(", ")}`);
  announceReady(server.listen.map(formatListenSocket));
}

/**
 * `ksr run --tenants file --isolation in-process`: every tenant's script loaded (any that does not
 * load, or a file that does not validate, stops the start with every
 * problem listed), one server for all. SIGHUP reloads every tenant,
 * `--watch` a tenant whose script file changes; a script that fails to
 * load leaves the old one running (the registry logs why, naming the
 * tenant and file:line). SIGUSR2 logs each tenant's counters.
 */
async function runTenants(tenantsFile: string, opts: RunOptions): Promise<void> {
  let registry: TenantRegistry;
  const config = loadTenantsOrExit(tenantsFile, opts);
  const pooled = config.tenants.find((t) => t.workers > 1);
  if (pooled !== undefined) {
    process.stderr.write(`ksr: ${config.file}: tenant "${pooled.id}", field workers: ${pooled.workers} worker processes need --isolation process\n`);
    process.exit(2);
  }
  try {
    registry = new TenantRegistry(config, { idleSeconds: opts.idleDisposeS, lazyIsolates: opts.lazyIsolates === true });
  } catch (err) {
    const text = err instanceof TenantsConfigError ? err.message : `${tenantsFile}: ${(err as Error)?.message ?? String(err)}`;
    process.stderr.write(`ksr: cannot load the tenants: ${text}\n`);
    process.exit(1);
  }
  const data = await openRunData(opts);
  const server = tenantServer(
    registry,
    {
      listen: opts.listen ?? DEFAULT_LISTEN.map(parseListenSocket),
      aliases: opts.alias ?? [],
      dnsServers: opts.dnsServer,
      tenantId: "ksr",
      data,
      overload: overloadOptions(opts),
      streamLimits: settingsFromFlags(opts, TCP_LIMIT_FLAGS),
      tls: tlsSettings(opts, config),
      webSocket: webSocketSettings(opts),
    },
    { proxy: proxyOptions(opts) },
  );
  let control: ControlServer | undefined;
  let metrics: MetricsServer | undefined;
  await serveUntilStopped(server, () => {
    // close() removes the socket file at once; the process exits right after.
    void control?.close();
    void metrics?.close();
    registry.dispose();
    data.close();
  });
  if (opts.watch === true) registry.watch();
  const gather = serverMetrics(server, data);
  const tenantsTarget: ControlTarget = { ...inProcessControlTarget(registry, server.router), ops: localOps(server, data, gather) };
  // Load shedding is the server's (one receive queue for every tenant): its line after the tenants'.
  const shedder = server.shedder;
  const target: ControlTarget =
    shedder === undefined ? tenantsTarget : { ...tenantsTarget, counters: async () => [...(await tenantsTarget.counters()), shedder.counterLine()] };
  control = await startControlOrExit(opts, target);
  metrics = await startMetricsOrExit(opts, gather, target);
  const ids = registry.tenants.map((t) => t.id).join(", ");
  serveTenantSignals(server, target, `running tenants ${ids} of ${registry.config.file}`);
}

export function buildProgram(): Command {
  const program = new Command();
  program.name("ksr").description("SIP server routed by Kamailio KEMI scripts in isolated-vm isolates");

  const runCommand = program
    .command("run")
    .description("run a routing script (or the tenants of a tenants file) as a SIP server")
    .argument("[script]", "routing script (.js or .ts) defining ksr_request_route()")
    .option("--tenants <file>", "serve the tenants of this file (YAML or JSON) instead of one script")
    .option("--watch", "with --tenants: reload a tenant when its script file changes")
    .option("--control [path]", `Unix socket for \`ksr ctl\` (tenants, reload, counters, stats, ul, htable, tm, tcp, pike, loglevel …; default path ${DEFAULT_CONTROL_PATH}); off when not given`)
    .option(
      "--metrics [address]",
      `serve Prometheus metrics on http://[ip:]port/metrics (default ${DEFAULT_METRICS_HOST}:${DEFAULT_METRICS_PORT}; loopback unless an ip is given); off when not given`,
      metricsOption,
    )
    .option(
      "--control-token-file <file>",
      "with --metrics: also serve the control methods (as `ksr ctl`) at POST /rpc on the metrics listener, to requests bearing the token in this file (Authorization: Bearer)",
    )
    .option(
      "--isolation <mode>",
      "with --tenants: process (tenants in shards of worker processes), process-per-tenant (each in a worker process of its own) or in-process",
      isolationOption,
      "process" as Isolation,
    )
    .option("--shards <n>", `with --isolation process: worker processes the tenants share (default: one per core, fewer on small memory; at most ${MAX_SHARDS})`, shardsOption)
    .option("--lazy-isolates", "with --tenants: dispose each tenant's isolate once its script has loaded at start; it is built at the tenant's first message")
    .option("--idle-dispose-s <n>", "with --tenants: dispose a tenant's isolate after this many seconds without a route call, rebuilt at its next message (0: never)", secondsOption, DEFAULT_IDLE_DISPOSE_S)
    .option("--tls-cert <file>", "PEM certificate (chain) of the tls listen sockets, also presented to TLS next hops")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--tls-ca <file>", "PEM CA certificates peer certificates are verified against (default: Node's bundled CAs)")
    .option("--tls-verify-client <mode>", "client certificates: none (not asked for), optional (asked for, KSR.tls.is_peer_verified() tells), require (connection closed without a verified one) (default none)", tlsVerifyClientOption)
    .option("--tls-verify-server", "verify the certificate of a TLS next hop against --tls-ca and the address connected to (default off)")
    .option("--tls-min-version <version>", `lowest TLS version, both directions: ${TLS_MIN_VERSIONS.join(" or ")} (default TLSv1.2)`, tlsMinVersionOption)
    .option("--tls-ciphers <list>", "OpenSSL cipher list for TLS 1.2, both directions (default Node's)")
    .option(
      "--tls-server-name <names:cert:key>",
      "present this certificate instead of --tls-cert to TLS clients asking (SNI) for one of the comma-separated names (*.example.com: subdomains), repeatable; tenants give theirs with tls: in the tenants file",
      collect(tlsServerNameOption),
    )
    .option("--ws-path <path>", "a request path WebSocket handshakes may ask for, repeatable (default: any path)", collect(wsPathOption))
    .option("--ws-origin <origin>", "an Origin WebSocket handshakes may come from, repeatable (default: any, or none)", collect((v: string) => v))
    .option("--listen <proto:ip:port>", `listen socket, repeatable (default ${DEFAULT_LISTEN.join(" and ")})`, collect(listenOption))
    .option("--alias <host[:port]>", "another name of this server (is_myself, Via checks), repeatable", collect(aliasOption))
    .option("--dns-server <ip:port>", "DNS server for next hops (RFC 3263) and KSR.ipops, repeatable (default: the system's)", collect(dnsServerOption))
    .option(
      "--workers <n>",
      `run the script in n worker processes behind one front, each call on worker hash(Call-ID) mod n (1 to ${MAX_WORKERS}; 1: in the server's process)`,
      workersOption,
      1,
    )
    .option("--heap-mb <n>", "isolate heap limit in MB", positiveInt, DEFAULT_LIMITS.heapMb)
    .option("--timeout-ms <n>", "time limit of one route call in ms", positiveInt, DEFAULT_LIMITS.routeTimeoutMs)
    .option("--log-level <level>", `one of ${LOG_LEVELS.join(", ")}`, logLevelOption, "info" as LogLevel)
    .option("--log-format <format>", "text (one line per record, for a terminal) or json (one JSON object per line)", logFormatOption, "text" as LogFormat)
    .option("--no-supervise", "serve in this process (no restart of a crashed server process)")
    .option("--db <file>", 'SQLite file of the location, subscriber and address tables (":memory:" for none)', DEFAULT_DB_FILE)
    .option(
      "--location <mode>",
      "registrations: db (kept in memory and written through to the --db file, reloaded at start) or memory (in memory only, lost when the server stops; Kamailio usrloc db_mode 0)",
      locationOption,
      "db" as LocationMode,
    )
    .option("--store <url>", "redis://HOST:PORT[/DB]: keep registrations, subscribers, addresses, shared htables and nonce uses in this Redis, shared with every server using it (instead of --db)", storeOption)
    .option("--nonce-secret-file <file>", "with --store: the digest nonce secret every server of the service shares (16 bytes or more)")
    .option("--htable <definition>", "an htable definition in Kamailio's modparam syntax, name=>autoexpire=60;initval=0;updateexpire=1;shared=1, repeatable", collect(htableOption))
    .option("--t1-ms <n>", "RFC 3261 timer T1, the round-trip estimate (default 500)", positiveInt)
    .option("--t2-ms <n>", "RFC 3261 timer T2, the longest retransmit interval (default 4000)", positiveInt)
    .option("--t4-ms <n>", "RFC 3261 timer T4, how long a message may live in the network (default 5000)", positiveInt)
    .option("--fr-timer-ms <n>", "tm fr_timer: wait for a first reply to a branch (default 30000)", positiveInt)
    .option("--fr-inv-timer-ms <n>", "tm fr_inv_timer: wait for a final reply after a provisional (default 120000)", positiveInt)
    .option("--overload-delay-ms <n>", "queueing delay past which new requests are answered 503 with Retry-After", positiveInt, DEFAULT_OVERLOAD_DELAY_MS)
    .option("--no-overload-shedding", "never answer 503 for overload (requests queue up instead)")
    .option("--on-error <status|none>", "reply to a request whose route failed before answering it: a status 300-699, or none (no reply, as app_jsdt) (default 500)", onErrorOption)
    .option("--dispatcher-list <file>", "KSR.dispatcher destination sets in Kamailio's dispatcher.list format")
    .option("--modparam <module.name=value>", "a module parameter (Kamailio modparam) for the script, repeatable (ksr api --modparams)", collect((v: string) => v))
    .option("--dispatcher-param <name=value>", `a Kamailio dispatcher modparam, repeatable (${DISPATCHER_SETTING_NAMES.join(", ")})`, collect(dispatcherParamOption))
;
  for (const route of SETTING_ROUTES) {
    const { cliOption, setting, defaultName } = route.naming;
    runCommand.option(`${cliOption} <name|none>`, `Kamailio ${setting}: names the ${route.kind} route function (default ${defaultName || "none"}; ksr api --routes)`, callbackOption);
  }
  const settingFlags = [
    ...TCP_LIMIT_FLAGS.map(([, flag, field, help]) => [flag, help, DEFAULT_STREAM_LIMITS[field]] as const),
    ...PIKE_FLAGS.map(([, flag, , help, fallback]) => [flag, help, fallback] as const),
    ...WS_FLAGS.map(([, flag, field, help]) => [flag, help, DEFAULT_WEBSOCKET_SETTINGS[field]] as const),
  ];
  for (const [flag, help, fallback] of settingFlags) {
    runCommand.addOption(new Option(`${flag} <n>`, `${help} (default ${fallback})`).argParser(positiveInt));
  }
  runCommand.action((script: string | undefined, opts: RunOptions, command: Command) =>
    run(script, opts, (option) => command.getOptionValueSource(option) === "cli"),
  );

  program
    .command("api")
    .description("list every KSR function this server provides")
    .option("--json", "print JSON")
    .option("--native", "list the native (kamailio.cfg) functions KSR.x.modf finds instead")
    .option("--routes", "list the route functions a script defines and the server calls instead")
    .option("--pvs", "list the pseudo-variables each module provides instead")
    .option("--modparams", "list the module parameters (settable per tenant) instead")
    .action((opts: { json?: boolean; native?: boolean; routes?: boolean; pvs?: boolean; modparams?: boolean }) => {
      if (opts.modparams === true) {
        const params = describeModParams(KEMI_MODULES);
        process.stdout.write(opts.json ? JSON.stringify(params, null, 2) + "\n" : formatModParamsText(params));
        return;
      }
      if (opts.pvs === true) {
        const pvs = describePvs(KEMI_MODULES);
        process.stdout.write(opts.json ? JSON.stringify(pvs, null, 2) + "\n" : formatPvsText(pvs));
        return;
      }
      if (opts.routes === true) {
        const routes = describeRoutes();
        process.stdout.write(opts.json ? JSON.stringify(routes, null, 2) + "\n" : formatRoutesText(routes));
        return;
      }
      if (opts.native === true) {
        const natives = describeNatives(KEMI_MODULES);
        process.stdout.write(opts.json ? JSON.stringify(natives, null, 2) + "\n" : formatNativesText(natives));
        return;
      }
      const entries = describeApi(KEMI_MODULES);
      process.stdout.write(opts.json ? JSON.stringify(entries, null, 2) + "\n" : formatApiText(entries));
    });

  program
    .command("check")
    .description("check routing scripts against the KSR export tables without running them")
    .argument("<script...>", "routing scripts (.js or .ts)")
    .action(async (scripts: string[]) => {
      process.exitCode = await runCheck(scripts, (line) => process.stdout.write(line + "\n"));
    });

  program
    .command("test")
    .description("run YAML scenario files against their routing scripts, without sockets")
    .argument("[files...]", "scenario files (default: every *.test.yaml under the current directory)")
    .option("--reporter <name>", "text or junit (JUnit XML on stdout)", reporterOption, "text" as TestReporter)
    .option("--watch", "run again whenever a scenario file or its script changes (Ctrl-C stops)")
    .option("--coverage", "print per script the lines and routes that ran")
    .option("--coverage-lcov <file>", "also write the coverage as an lcov tracefile")
    .action(async (files: string[], opts: { reporter: TestReporter; watch?: boolean; coverage?: boolean; coverageLcov?: string }) => {
      const io = {
        reporter: opts.reporter,
        ...(opts.coverage === true ? { coverage: true } : {}),
        ...(opts.coverageLcov !== undefined ? { coverageLcov: opts.coverageLcov } : {}),
        out: (text: string) => process.stdout.write(text),
        err: (text: string) => process.stderr.write(text),
      };
      if (!opts.watch) {
        process.exitCode = await runTests(files, io);
        return;
      }
      const stop = new AbortController();
      const interrupt = () => stop.abort();
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      process.exitCode = await watchTests(files, { ...io, signal: stop.signal });
    });

  registerDbCommands(program);
  registerCtlCommand(program);

  // A tenant's worker process (started by `ksr run --tenants`, not by hand).
  program
    .command(WORKER_COMMAND, { hidden: true })
    .argument("<config>", "worker configuration (JSON)")
    .action((config: string) => runTenantWorker(JSON.parse(config) as WorkerConfig, openWorkerData));

  return program;
}

await buildProgram().parseAsync(process.argv);
