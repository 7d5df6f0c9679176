/**
 * `ksr ctl`: talks to the control socket of a running `ksr run ...
 * --control path` server, as kamcmd does with Kamailio's ctl module.
 *
 *   ksr ctl [--control <path>] [--json] [--timeout-ms n] tenants
 *   ksr ctl [--control <path>] [--json] [--timeout-ms n] reload [tenant]
 *   ksr ctl [--control <path>] [--json] [--timeout-ms n] counters
 *   ksr ctl [...] [--tenant id] stats | uptime | version | tm stats | tcp list | tls reload | pike list
 *   ksr ctl [...] [--tenant id] ul dump | ul lookup AOR | ul rm AOR
 *   ksr ctl [...] [--tenant id] htable list | dump TABLE | get TABLE KEY | sets|seti TABLE KEY VALUE | delete TABLE KEY | flush|reload TABLE
 *   ksr ctl [...] [--tenant id] dispatcher list | set-state STATE SET URI | reload
 *   ksr ctl [...] loglevel [[tenant] LEVEL]
 *
 * Exit codes: 0 done; 1 a reload failed, or the server cannot be reached
 * or refused the request; 2 usage errors.
 */
import { Command, InvalidArgumentError, type CommanderError } from "commander";
import { callControl, callControlHttp, ControlError, DEFAULT_CALL_TIMEOUT_MS } from "../control/client.js";
import { readControlToken } from "../control/http.js";
import { DEFAULT_CONTROL_PATH, resolveControlPath, type TenantReloadResult, type TenantStatus } from "../control/types.js";
import type { OpsMethod } from "../ops/control-ops.js";
import { formatOpsResult } from "./ctl-format.js";

export type CtlRequest =
  | { readonly action: "tenants" }
  | { readonly action: "reload"; readonly tenant?: string }
  | { readonly action: "counters" }
  /** A method of host/ops/control-ops.ts with its named params (`tenant` from --tenant among them). */
  | { readonly action: "ops"; readonly method: OpsMethod; readonly params: Readonly<Record<string, string>> };

export interface CtlOptions {
  /** Control socket path (relative to the current directory, or absolute). */
  readonly control: string;
  /** Call the server over HTTP at this URL (its `--metrics` listener's /rpc) instead of the control socket. */
  readonly url?: string;
  /** With url: the file holding the bearer token (the server's --control-token-file). */
  readonly tokenFile?: string;
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
  const params =
    request.action === "ops" ? request.params : request.action === "reload" && request.tenant !== undefined ? { tenant: request.tenant } : undefined;
  const method = request.action === "ops" ? request.method : request.action;
  let result: unknown;
  try {
    if (opts.url !== undefined) {
      if (opts.tokenFile === undefined) throw new Error("--url needs --token-file, the file with the server's control token");
      result = await callControlHttp(opts.url, readControlToken(opts.tokenFile, "--token-file"), method, params, { timeoutMs: opts.timeoutMs });
    } else {
      result = await callControl(resolveControlPath(opts.control), method, params, { timeoutMs: opts.timeoutMs });
    }
  } catch (err) {
    io.err(`ksr ctl: ${err instanceof ControlError ? err.message : (err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
  try {
    switch (request.action) {
      case "ops":
        io.out(opts.json ? JSON.stringify(result, null, 2) + "\n" : formatOpsResult(request.method, result));
        return 0;
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
    io.err(`ksr ctl: unexpected answer from the server at ${opts.url ?? resolveControlPath(opts.control)}: ${err.message}\n`);
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
  url?: string;
  tokenFile?: string;
  json?: boolean;
  timeoutMs: number;
  tenant?: string;
}

export function registerCtlCommand(program: Command): void {
  const ctl = program
    .command("ctl")
    .description("control a running `ksr run ... --control <path>` server: tenants, reloads, counters, stats, registrations, htables, dispatcher, transactions, connections, pike, log levels")
    .option("--control <path>", "control socket of the server (a relative path is taken from the current directory)", DEFAULT_CONTROL_PATH)
    .option("--url <url>", "call the server over HTTP instead, at its --metrics listener's /rpc (e.g. http://127.0.0.1:9464/rpc); needs --token-file")
    .option("--token-file <file>", "with --url: file holding the server's control token (its --control-token-file)")
    .option("--json", "print the server's answer as JSON")
    .option("--timeout-ms <n>", "how long to wait for the answer, in ms", positiveInt, DEFAULT_CALL_TIMEOUT_MS)
    .option("--tenant <id>", "only this tenant (stats, ul, htable, dispatcher, tm, pike, loglevel); needed for one tenant's data when the server has several")
    // Set before the subcommands are added: they inherit it.
    .exitOverride(exitOnUsage);

  const perform = async (request: CtlRequest, command: Command): Promise<void> => {
    const opts = command.optsWithGlobals<CtlCommandOptions>();
    const io: CtlIo = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };
    process.exitCode = await runCtl(
      request,
      { control: opts.control, url: opts.url, tokenFile: opts.tokenFile, json: opts.json === true, timeoutMs: opts.timeoutMs },
      io,
    );
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

  /** A method of host/ops with its positional arguments as named params, and --tenant. */
  const ops = (method: OpsMethod, params: Record<string, string>, command: Command): Promise<void> => {
    const tenant = command.optsWithGlobals<CtlCommandOptions>().tenant;
    return perform({ action: "ops", method, params: tenant === undefined ? params : { tenant, ...params } }, command);
  };
  const sub = (parent: Command, name: string, description: string): Command => parent.command(name).description(description);

  sub(ctl, "stats", "every counter and gauge of the server, by group (the metrics /metrics serves)").action((_o: unknown, c: Command) => ops("stats", {}, c));
  sub(ctl, "uptime", "when the server started and for how long it has run").action((_o: unknown, c: Command) => ops("uptime", {}, c));
  sub(ctl, "version", "the server's version, Node.js and V8").action((_o: unknown, c: Command) => ops("version", {}, c));

  const ul = sub(ctl, "ul", "registrations (usrloc)");
  sub(ul, "dump", "every registered AoR and its contacts").action((_o: unknown, c: Command) => ops("ul.dump", {}, c));
  sub(ul, "lookup", "one AoR's contacts (an AoR key such as bob@example.com, or a SIP URI)")
    .argument("<aor>")
    .action((aor: string, _o: unknown, c: Command) => ops("ul.lookup", { aor }, c));
  sub(ul, "rm", "remove every contact of an AoR").argument("<aor>").action((aor: string, _o: unknown, c: Command) => ops("ul.rm", { aor }, c));

  const htable = sub(ctl, "htable", "htables");
  sub(htable, "list", "the tables (declared, or holding items)").action((_o: unknown, c: Command) => ops("htable.list", {}, c));
  sub(htable, "dump", "every item of a table").argument("<table>").action((table: string, _o: unknown, c: Command) => ops("htable.dump", { table }, c));
  sub(htable, "get", "one item's value")
    .argument("<table>")
    .argument("<key>")
    .action((table: string, key: string, _o: unknown, c: Command) => ops("htable.get", { table, key }, c));
  sub(htable, "sets", "set an item to a string")
    .argument("<table>")
    .argument("<key>")
    .argument("<value>")
    .action((table: string, key: string, value: string, _o: unknown, c: Command) => ops("htable.sets", { table, key, value }, c));
  sub(htable, "seti", "set an item to an integer")
    .argument("<table>")
    .argument("<key>")
    .argument("<value>")
    .action((table: string, key: string, value: string, _o: unknown, c: Command) => ops("htable.seti", { table, key, value }, c));
  sub(htable, "delete", "remove one item")
    .argument("<table>")
    .argument("<key>")
    .action((table: string, key: string, _o: unknown, c: Command) => ops("htable.delete", { table, key }, c));
  sub(htable, "flush", "remove every item of a table").argument("<table>").action((table: string, _o: unknown, c: Command) => ops("htable.flush", { table }, c));
  sub(htable, "reload", "as kamcmd htable.reload; tables here have no database, so this is always an error saying so")
    .argument("<table>")
    .action((table: string, _o: unknown, c: Command) => ops("htable.reload", { table }, c));

  const dispatcher = sub(ctl, "dispatcher", "the dispatcher's destination sets");
  sub(dispatcher, "list", "sets and destinations: state flags, priority, attributes").action((_o: unknown, c: Command) => ops("dispatcher.list", {}, c));
  sub(dispatcher, "set-state", "set a destination's state (URI all: every one of the set): a active, i inactive, d disabled, t trying, then p for probing (every worker of the tenant)")
    .argument("<state>")
    .argument("<set>")
    .argument("<uri>")
    .action((state: string, set: string, uri: string, _o: unknown, c: Command) => ops("dispatcher.set_state", { state, set, uri }, c));
  sub(dispatcher, "reload", "read the list file again; a bad file is an error and the old list stays").action((_o: unknown, c: Command) => ops("dispatcher.reload", {}, c));

  sub(sub(ctl, "tm", "transactions"), "stats", "transactions in use and created, answered by class").action((_o: unknown, c: Command) => ops("tm.stats", {}, c));
  sub(sub(ctl, "tcp", "TCP connections"), "list", "the open TCP connections").action((_o: unknown, c: Command) => ops("tcp.list", {}, c));
  sub(sub(ctl, "tls", "TLS"), "reload", "read the TLS certificate, key and CA files again (as SIGHUP); new connections use them").action((_o: unknown, c: Command) =>
    ops("tls.reload", {}, c),
  );
  sub(sub(ctl, "pike", "pike's flood detection"), "list", "the addresses pike keeps, flooding ones marked").action((_o: unknown, c: Command) => ops("pike.list", {}, c));
  sub(ctl, "loglevel", "show the log levels, or set the server's (LEVEL) or a tenant's (TENANT LEVEL)")
    .argument("[tenant-or-level]")
    .argument("[level]")
    .action((first: string | undefined, second: string | undefined, _o: unknown, c: Command) => {
      if (second !== undefined) return ops("loglevel", { tenant: first!, level: second }, c);
      return ops("loglevel", first === undefined ? {} : { level: first }, c);
    });
}
