/**
 * A tenant's worker process: the tenant's script, transactions, htables and
 * registrar cache, in a process of their own (host/tenants/processes.ts
 * starts it with the hidden `ksr tenant-worker` command).
 *
 * Why a process: V8 aborts the whole process when an isolate makes one very
 * large allocation beyond its heap limit (`"ab".repeat(2 ** 27).split("")`);
 * isolated-vm cannot catch that. In its own
 * process such a script ends only its own tenant's worker, which the front
 * restarts; the other tenants keep their processes, transactions and data.
 *
 * Inside, it is the in-process server unchanged: a SipServer over a
 * TenantRegistry holding this one tenant, whose transport is the IPC channel
 * to the front (received messages in, bytes to send out).
 */
import { isIP } from "node:net";
import { readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import type { ListenSocket, ReceiveInfo, TransportProto } from "../core/context.js";
import { log, setLogLevel, isLogLevel } from "../core/log.js";
import type { ServerTransport } from "../core/server.js";
import { tenantServer } from "../core/tenant-routing.js";
import type { SendFlags } from "../modules/sendopts.js";
import { pickSendingSocket, type TransportOptions } from "../transport/index.js";
import { proxyOptionsFromTimers } from "../proxy/proxy.js";
import type { DataServices, LocationMode, SharingWorkers } from "../storage/index.js";
import { dividePikeDensity } from "../modules/state/pike-store.js";
import { useSharedState } from "../modules/state/shared-sqlite.js";
import { loadTenantsFile, singleScriptConfig, TenantsConfigError, type TenantsConfig } from "./config.js";
import { TenantRegistry } from "./registry.js";
import {
  MISBEHAVING_NICE,
  NONCE_SECRET_ENV,
  isFrontMessage,
  type FrontMessage,
  type SendItem,
  type WorkerConfig,
  type WorkerMessage,
} from "./worker-protocol.js";

/** TCP connection ids remembered with their remote address (the stateless response path checks them). */
const MAX_REMEMBERED_CONNECTIONS = 4096;

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
  let threads: string[];
  try {
    threads = readdirSync("/proc/self/task");
  } catch {
    threads = [String(process.pid)]; // no /proc: the main thread at least
  }
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

/** The tenants file reduced to one tenant, with the default kept only if it is that tenant. */
export function onlyTenant(config: TenantsConfig, tenantId: string): TenantsConfig {
  const entry = config.tenants.find((t) => t.id === tenantId);
  if (entry === undefined) throw new Error(`${config.file}: no tenant "${tenantId}"`);
  return { ...config, tenants: [entry], defaultTenant: config.defaultTenant === tenantId ? tenantId : undefined };
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

  send(proto: TransportProto, ip: string, port: number, data: string, connectionId?: number, from?: ListenSocket, flags?: SendFlags): boolean {
    if (isIP(ip) === 0) return false;
    this.outbox.send({
      proto,
      ip,
      port,
      data,
      ...(connectionId !== undefined ? { connectionId } : {}),
      ...(from !== undefined ? { from } : {}),
      ...(flags !== undefined ? { flags } : {}),
    });
    return true;
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

/** The registry of this worker's tenant: from the tenants file, or the single script of `ksr run --workers`. */
function workerRegistry(config: WorkerConfig): TenantRegistry {
  if (config.script !== undefined) {
    const { path, heapMb, routeTimeoutMs, settings } = config.script;
    // As `ksr run script.js` in one process: no CPU budgets, no demotion.
    return new TenantRegistry(singleScriptConfig(path, config.tenantId, { heapMb, routeTimeoutMs }, 1, settings), { cpuBudgets: false, autoDemote: false });
  }
  return new TenantRegistry(onlyTenant(loadTenantsFile(config.tenantsFile!), config.tenantId), {
    // Alone in this process, the tenant's CPU share covers all of it: its
    // script, isolate rebuilds, garbage collection and SIP processing.
    budgetCpuNs: processCpuNs,
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
  return { nonceSecret: Buffer.from(hex, "hex"), lane: { index: config.workerIndex, count: config.poolSize } };
}

/**
 * Runs the worker until the front goes away. `openData` opens the tenant's
 * data services (the run database). Exits with code 1 when the script does
 * not load (the error, file:line, goes to stderr first).
 */
export async function runTenantWorker(
  config: WorkerConfig,
  openData: (file: string, location: LocationMode, sharedBy: SharingWorkers | undefined) => DataServices,
): Promise<void> {
  if (isLogLevel(config.logLevel)) setLogLevel(config.logLevel);
  const post = (msg: WorkerMessage): void => {
    // The channel is gone only when the front is; 'disconnect' ends us then.
    if (process.connected) process.send!(msg);
  };
  const label = config.poolSize > 1 ? `${config.tenantId}#${config.workerIndex}` : config.tenantId;
  let registry: TenantRegistry;
  let sharedBy: SharingWorkers | undefined;
  let sharedState: { close(): void } | undefined;
  try {
    sharedBy = sharing(config, (db) => (sharedState = db));
    registry = workerRegistry(config);
  } catch (err) {
    const text = err instanceof TenantsConfigError ? err.issues.map((i) => i.message).join("; ") : ((err as Error)?.message ?? String(err));
    process.stderr.write(`ksr: tenant ${label}: cannot load: ${text}\n`);
    process.exit(1);
  }
  // A flood from one address spreads over the pool by Call-ID: each worker sees 1/poolSize of it.
  dividePikeDensity(config.poolSize);
  const data = openData(config.db, config.location, sharedBy);
  const outbox = new Outbox(post);
  const channel = new IpcTransport(config.listen, outbox);
  const server = tenantServer(
    registry,
    { listen: config.listen, aliases: config.aliases, tenantId: `ksr/${label}`, data, transport: (options) => channel.attach(options) },
    // The front routes responses to this worker by the tenant our Vias name;
    // a single script's front has one tenant, found without it.
    // kemi.event_route_callback's core:worker-one-init: in the pool's first worker only, as Kamailio's first worker.
    { proxy: proxyOptionsFromTimers(config.timers), nameTenantInVia: config.script === undefined, runWorkerOneInit: config.workerIndex === 0 },
  );
  await server.start();
  if (config.watch) registry.watch();

  const onFrontMessage = (msg: FrontMessage): void => {
    switch (msg.t) {
      case "sip":
        for (const item of msg.items) {
          channel.deliver(item.data, item.rcv);
          outbox.handledOne();
        }
        return;
      case "reload":
        void registry.reload(config.tenantId).then((result) => post({ t: "reloaded", id: msg.id, result }));
        return;
      case "counters":
        post({ t: "counters", id: msg.id, lines: server.router.tenantCounterLines() });
        return;
      case "status":
        post({ t: "status", id: msg.id, mode: registry.get(config.tenantId)!.mode });
        return;
    }
  };
  process.on("message", (msg: unknown) => {
    if (isFrontMessage(msg)) onFrontMessage(msg);
  });
  const exit = (): void => {
    registry.dispose();
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
