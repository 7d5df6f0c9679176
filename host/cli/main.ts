/**
 * The `ksr` command.
 *
 *   ksr run <script> [--listen proto:ip:port]... [--alias host[:port]]...
 *                    [--heap-mb n] [--timeout-ms n] [--log-level level]
 *                    [--no-supervise]
 *   ksr api [--json]
 *   ksr check <script...>
 *   ksr test [files...] [--reporter text|junit]
 */
import { Command, InvalidArgumentError } from "commander";
import type { ListenSocket, LogLevel } from "../core/context.js";
import { LOG_LEVELS, isLogLevel, log, setLogLevel } from "../core/log.js";
import { SipServer } from "../core/server.js";
import { KEMI_MODULES } from "../modules/index.js";
import { ScriptLoadError } from "../../sandbox/compile.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { DEFAULT_LIMITS } from "../../sandbox/types.js";
import { formatListenSocket, parseListenSocket } from "../transport/listen-socket.js";
import { fileURLToPath } from "node:url";
import { describeApi, formatApiText } from "./api.js";
import { runCheck } from "./check.js";
import { runTests, type TestReporter } from "./test.js";
import { announceReady, isServerProcess, supervise } from "./supervisor.js";

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

function reporterOption(value: string): TestReporter {
  if (value !== "text" && value !== "junit") throw new InvalidArgumentError(`"${value}" is not text or junit`);
  return value;
}

function logLevelOption(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`"${value}" is not one of ${LOG_LEVELS.join(", ")}`);
  return value;
}

interface RunOptions {
  listen?: ListenSocket[];
  alias?: string[];
  heapMb: number;
  timeoutMs: number;
  logLevel: LogLevel;
  /** false with --no-supervise: serve in this process, no restart on a crash. */
  supervise: boolean;
}

/** The `ksr run` arguments for a supervised server process. */
function serverArgs(scriptPath: string, opts: RunOptions, listen: readonly string[] | undefined): string[] {
  const sockets = listen ?? (opts.listen ?? DEFAULT_LISTEN.map(parseListenSocket)).map(formatListenSocket);
  return [
    "run",
    scriptPath,
    ...sockets.flatMap((s) => ["--listen", s]),
    ...(opts.alias ?? []).flatMap((a) => ["--alias", a]),
    "--heap-mb",
    String(opts.heapMb),
    "--timeout-ms",
    String(opts.timeoutMs),
    "--log-level",
    opts.logLevel,
  ];
}

async function run(scriptPath: string, opts: RunOptions): Promise<void> {
  setLogLevel(opts.logLevel);
  if (opts.supervise && !isServerProcess()) {
    const entry = fileURLToPath(import.meta.url);
    process.exit(await supervise({ entry, argsFor: (listen) => serverArgs(scriptPath, opts, listen) }));
  }
  const tenant = "default";
  let runner: ScriptRunner;
  try {
    runner = ScriptRunner.load(scriptPath, {
      limits: { heapMb: opts.heapMb, routeTimeoutMs: opts.timeoutMs },
      tenant,
    });
  } catch (err) {
    // The load error already reads "file:line:col: message"; no stack.
    const text = err instanceof ScriptLoadError ? err.message : `${scriptPath}: ${(err as Error)?.message ?? String(err)}`;
    process.stderr.write(`ksr: cannot load script: ${text}\n`);
    process.exit(1);
  }
  const server = new SipServer(runner, {
    listen: opts.listen ?? DEFAULT_LISTEN.map(parseListenSocket),
    aliases: opts.alias ?? [],
    tenantId: tenant,
  });
  try {
    await server.start();
  } catch (err) {
    runner.dispose();
    process.stderr.write(`ksr: cannot listen: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("notice", "ksr", `${signal}: stopping`);
    server.stop().then(
      () => {
        runner.dispose();
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
  // A server process whose supervisor is gone (even killed with SIGKILL)
  // must not linger holding the ports.
  if (isServerProcess()) process.on("disconnect", () => shutdown("supervisor gone"));
  // Announced only once the signal handlers are in place: whoever waits for
  // this line may stop the server right away.
  log("notice", "ksr", `running ${scriptPath} on ${server.listen.map(formatListenSocket).join(", ")}`);
  announceReady(server.listen.map(formatListenSocket));
}

export function buildProgram(): Command {
  const program = new Command();
  program.name("ksr").description("SIP server routed by Kamailio KEMI scripts in isolated-vm isolates");

  program
    .command("run")
    .description("run a routing script as a SIP server")
    .argument("<script>", "routing script (.js or .ts) defining ksr_request_route()")
    .option("--listen <proto:ip:port>", `listen socket, repeatable (default ${DEFAULT_LISTEN.join(" and ")})`, collect(listenOption))
    .option("--alias <host[:port]>", "another name of this server (is_myself, Via checks), repeatable", collect(aliasOption))
    .option("--heap-mb <n>", "isolate heap limit in MB", positiveInt, DEFAULT_LIMITS.heapMb)
    .option("--timeout-ms <n>", "time limit of one route call in ms", positiveInt, DEFAULT_LIMITS.routeTimeoutMs)
    .option("--log-level <level>", `one of ${LOG_LEVELS.join(", ")}`, logLevelOption, "info" as LogLevel)
    .option("--no-supervise", "serve in this process (no restart of a crashed server process)")
    .action((script: string, opts: RunOptions) => run(script, opts));

  program
    .command("api")
    .description("list every KSR function this server provides")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => {
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
    .action(async (files: string[], opts: { reporter: TestReporter }) => {
      process.exitCode = await runTests(files, {
        reporter: opts.reporter,
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
      });
    });

  return program;
}

await buildProgram().parseAsync(process.argv);
