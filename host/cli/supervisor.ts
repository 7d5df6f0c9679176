/**
 * `ksr run` keeps the SIP server in a child process and restarts it if it
 * dies.
 *
 * Nothing a script does through the KSR bridge, and no input, is meant to
 * end the server; errors, timeouts and ordinary heap exhaustion are caught
 * inside the isolate. One case is beyond reach from JavaScript: V8 aborts
 * the whole process when an isolate makes a single very large allocation
 * beyond its heap limit, e.g. `"ab".repeat(2 ** 27).split("")` (SIGTRAP,
 * isolated-vm 7 on Node 24; with isolated-vm 5 on Node 20
 * `new Array(2 ** 26).fill(1.5)` did it too, which isolated-vm 7 now turns
 * into an ordinary out-of-memory error). isolated-vm documents its
 * memory limit as a guideline for that reason. The supervisor turns such an abort into a
 * restart of the server process instead of an outage.
 */
import { fork, type ChildProcess } from "node:child_process";
import { log } from "../core/log.js";

/** Set in the server process's environment so that it serves instead of supervising. */
export const SERVER_PROCESS_ENV = "KSR_SERVER_PROCESS";

/** Message the server process sends once it is listening. */
export interface ReadyMessage {
  readonly type: "ready";
  /** Bound listen sockets as proto:ip:port (port 0 resolved). */
  readonly listen: readonly string[];
}

export function isServerProcess(): boolean {
  return process.env[SERVER_PROCESS_ENV] === "1";
}

/** Tell the supervisor (if any) that the server is up. */
export function announceReady(listen: readonly string[]): void {
  const msg: ReadyMessage = { type: "ready", listen };
  process.send?.(msg);
}

/** Restart pacing: immediate after a long healthy run, doubling when crashes come fast. */
const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 5000;
const HEALTHY_RUN_MS = 10_000;

export interface SupervisorOptions {
  /** The ksr entry script (dist/ksr.js). */
  readonly entry: string;
  /**
   * Arguments of `ksr run` for the server process, given the listen sockets
   * to use: the configured ones at first, the bound ones on restarts (so a
   * port chosen by the OS stays the same).
   */
  readonly argsFor: (listen: readonly string[] | undefined) => string[];
}

/**
 * Run the server in a child process until SIGINT/SIGTERM. Resolves with the
 * exit code for this process: the child's own code when it fails to start
 * (bad script, port taken) or when it stops on a signal we forwarded.
 */
export function supervise(opts: SupervisorOptions): Promise<number> {
  return new Promise((resolve) => {
    let child: ChildProcess | undefined;
    let stopping = false;
    let boundListen: readonly string[] | undefined;
    let restartDelay = FIRST_RESTART_DELAY_MS;
    let servedBefore = false;

    const start = () => {
      const startedAt = Date.now();
      let ready = false;
      child = fork(opts.entry, opts.argsFor(boundListen), {
        env: { ...process.env, [SERVER_PROCESS_ENV]: "1" },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      child.on("message", (msg: unknown) => {
        if (isReady(msg)) {
          ready = true;
          servedBefore = true;
          boundListen = msg.listen;
        }
      });
      child.once("exit", (code, signal) => {
        child = undefined;
        if (stopping) return resolve(code ?? 0);
        if (!servedBefore) {
          // It never served: a load or listen error it has already printed.
          return resolve(code ?? 1);
        }
        const ranFor = Date.now() - startedAt;
        restartDelay = ranFor >= HEALTHY_RUN_MS ? FIRST_RESTART_DELAY_MS : Math.min(restartDelay * 2, MAX_RESTART_DELAY_MS);
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        log("crit", "ksr", `server process ended unexpectedly (${how}) after ${ranFor} ms; restarting in ${restartDelay} ms`);
        setTimeout(() => {
          if (!stopping) start();
        }, restartDelay);
      });
    };

    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      if (child) child.kill(signal);
      else resolve(0);
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
    // Reload (SIGHUP) and the counters dump (SIGUSR2) are the server
    // process's business; the supervisor passes them on (and, handling
    // them, is not ended by SIGHUP's default action).
    for (const signal of ["SIGHUP", "SIGUSR2"] as const) {
      process.on(signal, () => {
        if (child !== undefined && !stopping) child.kill(signal);
      });
    }
    start();
  });
}

function isReady(msg: unknown): msg is ReadyMessage {
  return typeof msg === "object" && msg !== null && (msg as ReadyMessage).type === "ready" && Array.isArray((msg as ReadyMessage).listen);
}
