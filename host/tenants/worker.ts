/**
 * A worker process: the scripts, transactions, htables and registrar cache
 * of its tenants — one tenant (its own process, or one of its pool), or
 * the many of a shard (host/tenants/shards.ts) — in a process apart from
 * the front's (host/tenants/processes.ts starts it with the hidden
 * `ksr tenant-worker` command).
 *
 * Why a process: V8 aborts the whole process when an isolate makes one very
 * large allocation beyond its heap limit (`"ab".repeat(2 ** 27).split("")`);
 * isolated-vm cannot catch that. Such a script ends only the worker it runs
 * in, which the front restarts; the tenants of other workers keep their
 * processes, transactions and data. A shard writes the index of the tenant
 * whose route starts into its running file (only when it is another tenant
 * than the last one: one pwrite, no IPC message), so the front knows whom
 * to quarantine when the shard dies. A shard's tenants share its main
 * thread, so a new tenant runs its first routes off it (probation,
 * SHARD_PROBATION_ROUTES), and one whose route runs out of memory is moved
 * into a process of its own at once (shardEviction).
 *
 * Inside, it is the in-process server unchanged: a SipServer over a
 * TenantRegistry holding this worker's tenants, whose transport is the IPC
 * channel to the front (received messages in, bytes to send out).
 */
import { setFlowTokenKey } from "../proxy/flow-token.js";
import { isIP } from "node:net";
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import type { ListenSocket, ReceiveInfo, TransportProto } from "../core/context.js";
import { log, setLogLevel, isLogLevel, isLogFormat, setLogFormat } from "../core/log.js";
import type { ServerTransport } from "../core/server.js";
import { tenantServer } from "../core/tenant-routing.js";
import type { SendFlags } from "../modules/sendopts.js";
import { pickSendingSocket, type TransportOptions } from "../transport/index.js";
import { proxyOptionsFromTimers } from "../proxy/proxy.js";
import type { DataServices, LocationMode, SharingWorkers } from "../storage/index.js";
import { dividePikeDensity } from "../modules/state/pike-store.js";
import { useSharedState } from "../modules/state/shared-sqlite.js";
import { configureHtables } from "../modules/state/htable-store.js";
import { loadTenantsFile, singleScriptConfig, TenantsConfigError, type TenantsConfig } from "./config.js";
import { TenantRegistry } from "./registry.js";
import { workerOps } from "../ops/worker-ops.js";
import {
  isIsolatedVmThread,
  MISBEHAVING_NICE,
  NONCE_SECRET_ENV,
  isFrontMessage,
  type FrontMessage,
  type ReceivedItem,
  type SendItem,
  type WorkerConfig,
  type WorkerMessage,
} from "./worker-protocol.js";

/** TCP connection ids remembered with their remote address (the stateless response path checks them). */
const MAX_REMEMBERED_CONNECTIONS = 4096;
/**
 * Sends whose outcome the worker waits to hear of (requests to WebSocket
 * clients). The front answers each batch at once; the bound only keeps a
 * front that never answers from growing the map.
 */
const MAX_PENDING_FAILURE_CALLBACKS = 4096;

/** CPU time of this whole process (all threads: the isolate's too), in ns. */
function processCpuNs(): bigint {
  const usage = process.cpuUsage();
  return BigInt(usage.user + usage.system) * 1000n;
}

/**
 * Lowers this worker's priority for good (see MISBEHAVING_NICE). On Linux a
 * nice value belongs to a thread, and a demoted script runs on one of
 * isolated-vm's threads, started long before: every thread of the process
 * is lowered (threads started later inherit it from the main thread).
 */
function yieldCpu(tenantId: string, why: string): void {
  if (getPriority() >= MISBEHAVING_NICE) return;
  const listed = listThreads();
  const threads = listed.length > 0 ? listed : [String(process.pid)]; // no /proc: the main thread at least
  let failed = 0;
  for (const tid of threads) {
    try {
      setPriority(Number(tid), MISBEHAVING_NICE);
    } catch {
      failed++; // a thread that ended meanwhile
    }
  }
  if (failed === threads.length) {
    log("warn", tenantId, `${why}: cannot lower the priority of its worker (pid ${process.pid})`);
    return;
  }
  log("notice", tenantId, `${why}: its worker (pid ${process.pid}) now runs at nice ${MISBEHAVING_NICE}, yielding the CPU to other tenants`);
}

/** How often a shard with a demoted tenant lowers isolated-vm's threads again (the pool starts threads as it needs them). */
const SHARD_YIELD_INTERVAL_MS = 200;

/** This process's threads when it started, before any isolate ran asynchronously (see isIsolatedVmThread). */
const THREADS_AT_START: ReadonlySet<string> = new Set(listThreads());

function listThreads(): string[] {
  try {
    return readdirSync("/proc/self/task");
  } catch {
    return []; // no /proc
  }
}

function threadName(tid: string): string {
  return readFileSync(`/proc/self/task/${tid}/comm`, "latin1").trim();
}

/**
 * A shard's demoted tenants run on isolated-vm's threads, which it starts
 * from the main thread and so are named like it (see isIsolatedVmThread)
 * but have their own thread ids. Lowering those — not the main thread,
 * which runs the shard's well-behaved tenants, nor V8's and libuv's
 * helpers — gives the demoted scripts the CPU the others leave, as a
 * process of its own at MISBEHAVING_NICE does (see yieldCpu). Returns how
 * many threads were lowered now.
 */
function yieldIsolateThreads(): number {
  let lowered = 0;
  let mainThreadName: string;
  try {
    mainThreadName = threadName(String(process.pid));
  } catch {
    return 0; // no /proc: nothing to lower
  }
  for (const tid of listThreads()) {
    if (Number(tid) === process.pid) continue;
    try {
      if (!isIsolatedVmThread({ name: threadName(tid), existedAtStart: THREADS_AT_START.has(tid) }, mainThreadName)) continue;
      if (getPriority(Number(tid)) >= MISBEHAVING_NICE) continue;
      setPriority(Number(tid), MISBEHAVING_NICE);
      lowered++;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return lowered;
}

/**
 * Route calls a tenant of a shard runs off the main thread before it runs
 * there (TenantRegistryOptions.probationRoutes): a few hundred ms of a
 * busy tenant's traffic, enough that a script that misbehaves from its
 * first messages (a heap bomb fills its heap for hundreds of ms, a loop
 * runs to its timeout) does so on isolated-vm's lowered threads, not on
 * the thread its neighbours share.
 */
export const SHARD_PROBATION_ROUTES = 100;

/**
 * A shard's isolated-vm threads run its tenants on probation and its
 * demoted ones, never the proven ones (those run on the main thread): they
 * are kept at MISBEHAVING_NICE from the start, as the pool starts them.
 * A demotion is logged.
 */
function shardYield(): (tenantId: string, reason: string) => void {
  yieldIsolateThreads();
  setInterval(yieldIsolateThreads, SHARD_YIELD_INTERVAL_MS).unref();
  return (tenantId, reason) => {
    const lowered = yieldIsolateThreads();
    log("notice", tenantId, `tenant ${tenantId} demoted (${reason}): its routes run on isolated-vm's threads at nice ${MISBEHAVING_NICE} (${lowered} lowered now); the shard's main thread keeps its priority`);
  };
}

/**
 * A shard moves a tenant out at its first out-of-memory, before its isolate
 * is rebuilt here: every rebuild costs the shard's main thread, and so its
 * neighbours, whatever the threads' priority. Its runners here are
 * disposed, the front is asked (`evict`) to start a process of its own, and
 * its messages that reach the shard from now on are handed back to the
 * front (`return`), which passes them on to that process. Never the shard's
 * last tenant (the front refuses that too). `isEvicted` is what the
 * shard's message loop asks.
 */
function shardEviction(post: (msg: WorkerMessage) => void, registry: () => TenantRegistry): { onOutOfMemory: (tenantId: string) => void; isEvicted: (tenantId: string) => boolean } {
  const evicted = new Set<string>();
  return {
    onOutOfMemory: (tenantId) => {
      const reg = registry();
      if (evicted.has(tenantId) || reg.tenants.length - evicted.size <= 1) return;
      evicted.add(tenantId);
      reg.evict(tenantId);
      post({ t: "evict", tenant: tenantId, reason: OUT_OF_MEMORY_REASON });
    },
    isEvicted: (tenantId) => evicted.has(tenantId),
  };
}

/** Why a shard asks to move a tenant out. */
const OUT_OF_MEMORY_REASON = "route ran out of memory";

/**
 * The tenants file reduced to some tenants (in file order), with the
 * default kept only if it is one of them. The front selected the tenant of
 * each message among all; the worker's selection among its own, in the same
 * order, gives the same one: any of them before it that matched would have
 * been the front's choice.
 */
export function onlyTenants(config: TenantsConfig, tenantIds: readonly string[]): TenantsConfig {
  const wanted = new Set(tenantIds);
  const tenants = config.tenants.filter((t) => wanted.has(t.id));
  if (tenants.length !== wanted.size) {
    const missing = tenantIds.find((id) => !tenants.some((t) => t.id === id));
    throw new Error(`${config.file}: no tenant "${missing}"`);
  }
  return { ...config, tenants, defaultTenant: config.defaultTenant !== undefined && wanted.has(config.defaultTenant) ? config.defaultTenant : undefined };
}

/** A tenants-file index as the running file holds it (little-endian int32). */
export function encodeRunningTenant(index: number, into = Buffer.alloc(4)): Buffer {
  into.writeInt32LE(index, 0);
  return into;
}

/** Writes the index of the tenant starting a route at offset 0 of the running file (one pwrite; errors ignored: it is a diagnostic). */
function runningRecorder(file: string): { record: (index: number) => void; close: () => void } {
  const fd = openSync(file, "r+");
  const buf = Buffer.alloc(4);
  return {
    record: (index) => {
      try {
        writeSync(fd, encodeRunningTenant(index, buf), 0, 4, 0);
      } catch {
        // the file was removed under us (the front stopping): nothing to record
      }
    },
    close: () => closeSync(fd),
  };
}

/** What the worker posts to the front, batched per turn of the event loop. */
class Outbox {
  private sends: SendItem[] = [];
  private handled = 0;
  private scheduled = false;

  constructor(private readonly post: (msg: WorkerMessage) => void) {}

  send(item: SendItem): void {
    this.sends.push(item);
    this.schedule();
  }

  /** One received message handled. */
  handledOne(): void {
    this.handled++;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const msg: WorkerMessage = { t: "out", sends: this.sends, handled: this.handled };
    this.sends = [];
    this.handled = 0;
    this.post(msg);
  }
}

/**
 * The worker's transport: what the server sends is posted to the front,
 * which owns the sockets; what the front posts is received. A send is
 * reported as done once posted (the front logs a send the OS refuses).
 */
export class IpcTransport implements ServerTransport {
  private onMessage: TransportOptions["onMessage"] | undefined;
  private started = false;
  private readonly connections = new Map<number, string>();
  /** What to call if the front reports a send as failed, by ref, until it reports on it; the oldest forgotten past MAX_PENDING_FAILURE_CALLBACKS. */
  private readonly failureCallbacks = new Map<number, () => void>();
  private nextRef = 1;

  constructor(
    private readonly sockets: readonly ListenSocket[],
    private readonly outbox: { send(item: SendItem): void },
  ) {}

  /** The TransportOptions factory SipServer calls. */
  attach(options: TransportOptions): this {
    this.onMessage = options.onMessage;
    return this;
  }

  /** A message the front received for this tenant. */
  deliver(data: string, rcv: ReceiveInfo): void {
    if (rcv.proto !== "udp" && rcv.connectionId >= 0) {
      this.connections.delete(rcv.connectionId);
      this.connections.set(rcv.connectionId, rcv.srcIp);
      if (this.connections.size > MAX_REMEMBERED_CONNECTIONS) this.connections.delete(this.connections.keys().next().value!);
    }
    this.onMessage?.(data, rcv);
  }

  async start(): Promise<ListenSocket[]> {
    this.started = true;
    return [...this.sockets];
  }

  async stop(): Promise<void> {
    this.started = false;
  }

  get isStarted(): boolean {
    return this.started;
  }

  send(proto: TransportProto, ip: string, port: number, data: string, connectionId?: number, from?: ListenSocket, flags?: SendFlags, onFailedLater?: () => void): boolean {
    if (isIP(ip) === 0) return false;
    // A WebSocket client is reached only over its own connection, which the
    // front holds: whether it is still there is known once the front tries
    // (RFC 7118; a request to it then fails as a transport error).
    let ref: number | undefined;
    if (onFailedLater !== undefined && (proto === "ws" || proto === "wss")) {
      ref = this.nextRef++;
      this.failureCallbacks.set(ref, onFailedLater);
      if (this.failureCallbacks.size > MAX_PENDING_FAILURE_CALLBACKS) this.failureCallbacks.delete(this.failureCallbacks.keys().next().value!);
    }
    this.outbox.send({
      proto,
      ip,
      port,
      data,
      ...(connectionId !== undefined ? { connectionId } : {}),
      ...(from !== undefined ? { from } : {}),
      ...(flags !== undefined ? { flags } : {}),
      ...(ref !== undefined ? { ref } : {}),
    });
    return true;
  }

  /** What the front made of the sends that carried a ref: the failed ones fail now. */
  sendResults(sent: readonly number[], failed: readonly number[]): void {
    for (const ref of sent) this.failureCallbacks.delete(ref);
    for (const ref of failed) {
      const callback = this.failureCallbacks.get(ref);
      this.failureCallbacks.delete(ref);
      try {
        callback?.();
      } catch (err) {
        log("err", "transport", `send failure callback failed: ${(err as Error)?.message ?? String(err)}`);
      }
    }
  }

  socketFor(proto: TransportProto, dstIp: string, forced?: ListenSocket): ListenSocket | undefined {
    return pickSendingSocket(this.sockets, proto, dstIp, forced);
  }

  /** The remote address of a TCP connection this tenant received on (the front owns the connection itself). */
  tcpConnectionRemoteIp(connectionId: number): string | undefined {
    return this.connections.get(connectionId);
  }

  /** TCP connections this tenant has received on (recently); the front has the open ones. */
  get tcpConnectionCount(): number {
    return this.connections.size;
  }
}

/** The registry of this worker's tenants: from the tenants file, or the single script of `ksr run --workers`. */
function workerRegistry(
  config: WorkerConfig,
  recordRunning: ((index: number) => void) | undefined,
  eviction: ReturnType<typeof shardEviction> | undefined,
): TenantRegistry {
  if (config.script !== undefined) {
    const { path, heapMb, routeTimeoutMs, settings } = config.script;
    // As `ksr run script.js` in one process: no CPU budgets, no demotion.
    return new TenantRegistry(singleScriptConfig(path, config.tenantIds[0]!, { heapMb, routeTimeoutMs }, 1, settings), { cpuBudgets: false, autoDemote: false });
  }
  const tenants = onlyTenants(loadTenantsFile(config.tenantsFile!), config.tenantIds);
  const idle = { ...(config.idleSeconds !== undefined ? { idleSeconds: config.idleSeconds } : {}), ...(config.lazyIsolates === true ? { lazyIsolates: true } : {}) };
  if (config.kind === "shard") {
    // Shared, as in-process: each tenant's CPU share is its isolates' time, and
    // a demoted tenant runs off the main thread, on lowered threads; the main thread keeps its priority.
    const position = new Map(config.tenantIds.map((id, i) => [id, i]));
    return new TenantRegistry(tenants, {
      ...idle,
      onDemote: shardYield(),
      probationRoutes: SHARD_PROBATION_ROUTES,
      throttleRepeatedOutOfMemory: true,
      ...(eviction !== undefined ? { onOutOfMemory: eviction.onOutOfMemory } : {}),
      ...(recordRunning !== undefined ? { onTenantSwitch: (t) => recordRunning(position.get(t.id)!) } : {}),
    });
  }
  return new TenantRegistry(tenants, {
    ...idle,
    // Alone in this process, the tenant's CPU share covers all of it: its
    // script, isolate rebuilds, garbage collection and SIP processing.
    budgetCpuNs: processCpuNs,
    throttleRepeatedOutOfMemory: true,
    onDemote: (tenantId, reason) => yieldCpu(tenantId, `tenant ${tenantId} demoted (${reason})`),
  });
}

/**
 * What this worker shares with the other workers of its pool: the nonce
 * secret the front put in the environment and its lane of nonce ids (for
 * the data services), htables and $shv in the shared state file (from now
 * on; its first worker sweeps expired items). Undefined for a tenant's only
 * worker. `opened` receives the shared state file, to close at exit.
 */
function sharing(config: WorkerConfig, opened: (db: { close(): void }) => void): SharingWorkers | undefined {
  if (config.poolSize <= 1) return undefined;
  if (config.sharedStateFile === undefined) throw new Error("worker of a pool started without the shared state file");
  opened(useSharedState(config.sharedStateFile, { sweeps: config.workerIndex === 0 }));
  const hex = process.env[NONCE_SECRET_ENV];
  delete process.env[NONCE_SECRET_ENV];
  if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) throw new Error(`worker of a pool started without the server's nonce secret (${NONCE_SECRET_ENV})`);
  const nonceSecret = Buffer.from(hex, "hex");
  // The pool's workers share the dialogs of its calls: a flow token one made (RFC 5626) must be good in the others.
  setFlowTokenKey(nonceSecret);
  return { nonceSecret, lane: { index: config.workerIndex, count: config.poolSize } };
}

/**
 * Runs the worker until the front goes away. `openData` opens the tenant's
 * data services (the run database, or the shared store of config.store).
 * Exits with code 1 when the script does not load (the error, file:line,
 * goes to stderr first).
 */
export async function runTenantWorker(
  config: WorkerConfig,
  openData: (config: WorkerConfig, sharedBy: SharingWorkers | undefined) => DataServices | Promise<DataServices>,
): Promise<void> {
  if (isLogLevel(config.logLevel)) setLogLevel(config.logLevel);
  if (config.logFormat !== undefined && isLogFormat(config.logFormat)) setLogFormat(config.logFormat);
  if (config.htables !== undefined) configureHtables(config.htables);
  const post = (msg: WorkerMessage): void => {
    // The channel is gone only when the front is; 'disconnect' ends us then.
    if (process.connected) process.send!(msg);
  };
  const label = config.label;
  let registry: TenantRegistry;
  let sharedBy: SharingWorkers | undefined;
  let sharedState: { close(): void } | undefined;
  let running: ReturnType<typeof runningRecorder> | undefined;
  let eviction: ReturnType<typeof shardEviction> | undefined;
  try {
    sharedBy = sharing(config, (db) => (sharedState = db));
    if (config.runningFile !== undefined) running = runningRecorder(config.runningFile);
    if (config.kind === "shard" && config.script === undefined) eviction = shardEviction(post, () => registry);
    registry = workerRegistry(config, running?.record, eviction);
  } catch (err) {
    const text =
      err instanceof TenantsConfigError
        ? err.issues.map((i) => (config.kind === "shard" && i.tenant !== undefined ? `tenant ${i.tenant}: ${i.message}` : i.message)).join("; ")
        : ((err as Error)?.message ?? String(err));
    process.stderr.write(`ksr: ${config.kind === "shard" ? label : `tenant ${label}`}: cannot load: ${text}\n`);
    process.exit(1);
  }
  // A flood from one address spreads over the pool by Call-ID: each worker sees 1/poolSize of it.
  dividePikeDensity(config.poolSize);
  const data = await openData(config, sharedBy);
  const outbox = new Outbox(post);
  const channel = new IpcTransport(config.listen, outbox);
  const server = tenantServer(
    registry,
    { listen: config.listen, aliases: config.aliases, dnsServers: config.dnsServers, tenantId: `ksr/${label}`, data, transport: (options) => channel.attach(options) },
    // The front routes responses to this worker by the tenant our Vias name;
    // a single script's front has one tenant, found without it.
    // kemi.event_route_callback's core:worker-one-init: in the pool's first worker only, as Kamailio's first worker.
    // Responses to the worker's own requests (dispatcher pings) come back to it through the front by their Call-ID.
    {
      proxy: proxyOptionsFromTimers(config.timers),
      nameTenantInVia: config.script === undefined,
      runWorkerOneInit: config.workerIndex === 0,
      callIdLane: { index: config.workerIndex, count: config.poolSize },
    },
  );
  await server.start();
  if (config.watch) registry.watch();

  const ops = workerOps(server, data, label);
  const onFrontMessage = (msg: FrontMessage): void => {
    switch (msg.t) {
      case "sendResults":
        channel.sendResults(msg.sent, msg.failed);
        return;
      case "sip": {
        // Messages of a tenant moved out meanwhile go back to the front, for its new process.
        let returned: ReceivedItem[] | undefined;
        for (const item of msg.items) {
          if (item.tenant !== undefined && eviction?.isEvicted(item.tenant) === true) (returned ??= []).push(item);
          else channel.deliver(item.data, item.rcv);
          outbox.handledOne();
        }
        if (returned !== undefined) post({ t: "return", items: returned });
        return;
      }
      case "reload": {
        const ids = msg.tenant === undefined ? registry.tenants.filter((t) => eviction?.isEvicted(t.id) !== true).map((t) => t.id) : [msg.tenant];
        void Promise.all(ids.map((id) => registry.reload(id))).then((results) =>
          post({ t: "reloaded", id: msg.id, results: Object.fromEntries(ids.map((id, i) => [id, results[i]!])) }),
        );
        return;
      }
      case "counters":
        post({ t: "counters", id: msg.id, lines: server.router.tenantCounterLines() });
        return;
      case "status":
        post({ t: "status", id: msg.id, modes: Object.fromEntries(registry.tenants.map((t) => [t.id, t.mode])) });
        return;
      case "ops":
        ops(msg.method, msg.params).then(
          (result) => post({ t: "ops", id: msg.id, result }),
          (err: unknown) => post({ t: "ops", id: msg.id, error: err instanceof Error ? err.message : String(err) }),
        );
        return;
    }
  };
  process.on("message", (msg: unknown) => {
    if (isFrontMessage(msg)) onFrontMessage(msg);
  });
  const exit = (): void => {
    registry.dispose();
    running?.close();
    data.close();
    sharedState?.close();
    process.exit(0);
  };
  // The front decides when a worker ends: it sends SIGTERM, or it is gone.
  process.on("disconnect", exit);
  process.on("SIGTERM", exit);
  // A terminal's Ctrl-C reaches the whole process group; the front stops us.
  for (const signal of ["SIGINT", "SIGHUP", "SIGUSR2"] as const) process.on(signal, () => {});
  log("dbg", `ksr/${label}`, `tenant worker ready (pid ${process.pid})`);
  post({ t: "ready" });
}
