/**
 * `ksr ctl`: talks to the control socket of a running `ksr run --tenants
 * file --control path` server, as kamcmd does with Kamailio's ctl module.
 *
 *   ksr ctl [--control <path>] [--json] [--timeout-ms n] tenants
 *   ksr ctl [--control <path>] [--json] [--timeout-ms n] reload [tenant]
 *   ksr ctl [--control <path>] [--json] [--timeout-ms n] counters
 *
 * Exit codes: 0 done; 1 a reload failed, or the server cannot be reached
 * or refused the request; 2 usage errors.
 */
import { Command, InvalidArgumentError, type CommanderError } from "commander";
import { callControl, ControlError, DEFAULT_CALL_TIMEOUT_MS } from "../control/client.js";
import { DEFAULT_CONTROL_PATH, resolveControlPath, type TenantReloadResult, type TenantStatus } from "../control/types.js";

export type CtlRequest = { readonly action: "tenants" } | { readonly action: "reload"; readonly tenant?: string } | { readonly action: "counters" };

export interface CtlOptions {
  /** Control socket path (relative to the current directory, or absolute). */
  readonly control: string;
  /** Print the JSON-RPC result as JSON instead of text. */
  readonly json: boolean;
  readonly timeoutMs: number;
}

export interface CtlIo {
  out(text: string): void;
  err(text: string): void;
}

/** An answer whose shape is not what the method returns. */
class UnexpectedAnswer extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asTenantStatuses(result: unknown): TenantStatus[] {
  if (!Array.isArray(result) || !result.every((s) => isRecord(s) && typeof s["id"] === "string" && typeof s["state"] === "string")) {
    throw new UnexpectedAnswer("tenants: expected a list of tenant statuses");
  }
  return result as TenantStatus[];
}

function asReloadResults(result: unknown): TenantReloadResult[] {
  if (!Array.isArray(result) || !result.every((r) => isRecord(r) && typeof r["tenant"] === "string" && typeof r["ok"] === "boolean")) {
    throw new UnexpectedAnswer("reload: expected a list of reload results");
  }
  return result as TenantReloadResult[];
}

function asLines(result: unknown): string[] {
  if (!Array.isArray(result) || !result.every((l) => typeof l === "string")) throw new UnexpectedAnswer("counters: expected a list of lines");
  return result as string[];
}

/** The tenants as an aligned table, a header first. */
export function formatTenantTable(statuses: readonly TenantStatus[]): string {
  const header = ["TENANT", "STATE", "ISOLATION", "MODE", "PID", "RESTARTS", "SCRIPT"];
  const rows = statuses.map((s) => [
    s.worker === undefined ? s.id : `${s.id}#${s.worker}`,
    s.state,
    s.shard !== undefined ? `${s.isolation} ${s.shard}` : (s.isolation ?? "-"),
    s.mode ?? "-",
    s.pid === undefined ? "-" : String(s.pid),
    s.restarts === undefined ? "-" : String(s.restarts),
    s.script ?? "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/** Runs one `ksr ctl` request; resolves with the exit code. */
export async function runCtl(request: CtlRequest, opts: CtlOptions, io: CtlIo): Promise<number> {
  const path = resolveControlPath(opts.control);
  const params = request.action === "reload" && request.tenant !== undefined ? { tenant: request.tenant } : undefined;
  let result: unknown;
  try {
    result = await callControl(path, request.action, params, { timeoutMs: opts.timeoutMs });
  } catch (err) {
    io.err(`ksr ctl: ${err instanceof ControlError ? err.message : (err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
  try {
    switch (request.action) {
      case "tenants": {
        const statuses = asTenantStatuses(result);
        io.out(opts.json ? JSON.stringify(statuses, null, 2) + "\n" : formatTenantTable(statuses));
        return 0;
      }
      case "counters": {
        const lines = asLines(result);
        io.out(opts.json ? JSON.stringify(lines, null, 2) + "\n" : lines.map((l) => l + "\n").join(""));
        return 0;
      }
      case "reload": {
        const results = asReloadResults(result);
        if (opts.json) io.out(JSON.stringify(results, null, 2) + "\n");
        else {
          for (const r of results) {
            if (r.ok) io.out(`tenant ${r.tenant}: reloaded\n`);
            else io.err(`tenant ${r.tenant}: reload failed: ${r.error ?? "no reason given"}\n`);
          }
        }
        return results.every((r) => r.ok) ? 0 : 1;
      }
    }
  } catch (err) {
    if (!(err instanceof UnexpectedAnswer)) throw err;
    io.err(`ksr ctl: unexpected answer from the server on ${path}: ${err.message}\n`);
    return 1;
  }
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return Number(value);
}

/** Commander reports usage errors (and help asked for) through this: exit 2 for the former, as `ksr run` does. */
function exitOnUsage(err: CommanderError): never {
  process.exit(err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2);
}

interface CtlCommandOptions {
  control: string;
  json?: boolean;
  timeoutMs: number;
}

export function registerCtlCommand(program: Command): void {
  const ctl = program
    .command("ctl")
    .description("control a running `ksr run --tenants ... --control <path>` server: list tenants, reload scripts, read counters")
    .option("--control <path>", "control socket of the server (a relative path is taken from the current directory)", DEFAULT_CONTROL_PATH)
    .option("--json", "print the server's answer as JSON")
    .option("--timeout-ms <n>", "how long to wait for the answer, in ms", positiveInt, DEFAULT_CALL_TIMEOUT_MS)
    // Set before the subcommands are added: they inherit it.
    .exitOverride(exitOnUsage);

  const perform = async (request: CtlRequest, command: Command): Promise<void> => {
    const opts = command.optsWithGlobals<CtlCommandOptions>();
    const io: CtlIo = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };
    process.exitCode = await runCtl(request, { control: opts.control, json: opts.json === true, timeoutMs: opts.timeoutMs }, io);
  };

  ctl
    .command("tenants")
    .description("list the tenants: state, isolation, execution mode, process, script")
    .action((_opts: unknown, command: Command) => perform({ action: "tenants" }, command));
  ctl
    .command("reload")
    .description("reload one tenant's script, or every tenant's; a script that does not load leaves the old one running")
    .argument("[tenant]", "tenant id (default: every tenant)")
    .action((tenant: string | undefined, _opts: unknown, command: Command) =>
      perform(tenant === undefined ? { action: "reload" } : { action: "reload", tenant }, command),
    );
  ctl
    .command("counters")
    .description("print each tenant's counters (the lines SIGUSR2 logs)")
    .action((_opts: unknown, command: Command) => perform({ action: "counters" }, command));
}
