/**
 * The tenants file: which routing script serves which requests, with what
 * limits and which KSR modules.
 *
 *   unmatched: 404            # reply to a request no tenant selects: 404 or 403
 *   default: public           # optional: tenant for requests no rule selects
 *   tenants:
 *     - id: acme
 *       script: scripts/acme.js          # relative to this file; .js or .ts
 *       match:                           # one rule, or a list of rules (any rule may match)
 *         domains: [acme.example, "*.acme.example"]   # R-URI or To host
 *         sockets: ["udp:127.0.0.1:5060"]             # listening socket [proto:]host[:port]
 *         sources: [10.0.0.0/8, "2001:db8::/32"]     # source address CIDR
 *       limits: { heapMb: 64, routeTimeoutMs: 100, cpuShare: 0.25 }
 *       onError: { status: 500 }         # reply when the route fails; "none": no reply (as app_jsdt)
 *       kemi:                            # Kamailio's kemi.* core settings; "none" turns one off
 *         onsend_route_callback: ksr_onsend_route
 *         reply_route_callback: ksr_reply_route
 *         event_route_callback: none     # called with "core:worker-one-init" once the script is loaded
 *       modules: [sl, hdr, pv]           # KSR modules the script may use; default all
 *       workers: 2                       # worker processes of the tenant (--isolation process); default 1
 *       isolation: own-process           # a process of its own instead of a shard (--isolation process)
 *       shard: 3                         # or: this shard (0-based, below --shards); default hash(id) mod shards
 *       tls: { cert: acme.pem, key: acme.key }   # presented to TLS clients asking (SNI) for its domains
 *                                        # (or `names: [...]`); needs the server's --tls-cert/--tls-key
 *       modparams:                       # module parameters, this tenant's only (host/modules/modparams.ts)
 *         maxfwd: { max_limit: 30 }
 *
 * Within one rule every criterion given must match; a rule with no
 * criterion matches nothing. Tenants are tried in file order and the first
 * match wins. YAML (.yaml/.yml) or JSON (.json). Every validation error names
 * the file, the tenant (or "top level") and the field.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, extname, resolve } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { KEMI_MODULES } from "../modules/index.js";
import { DEFAULT_KEMI_CALLBACKS, type KemiCallbacks, type TransportProto } from "../core/context.js";
import { SETTING_ROUTES } from "../../runtime/interpreter.js";
import { parseModParams, NO_MODPARAMS, type ModParamValues } from "../modules/modparams.js";
import { DEFAULT_LIMITS } from "../../sandbox/types.js";
import { DEFAULT_TENANT_QUOTAS, SINGLE_SCRIPT_QUOTAS, type TenantQuotas } from "../core/quota.js";
import { DEFAULT_EGRESS_DENY, UNRESTRICTED_EGRESS, type EgressRules } from "../core/egress.js";
import { parseCidr } from "../core/cidr.js";
import { dispatcherProblem, type TenantDispatcherConfig } from "../modules/dispatcher/tenants.js";
import { resolveDispatcherList } from "../modules/dispatcher/db.js";
import type { ExecutionMode } from "../../sandbox/runner.js";
import type { TlsServerName } from "../transport/tls.js";

export interface TenantLimits {
  /** Isolate heap limit in MB. */
  readonly heapMb: number;
  /** Time limit of one route call in ms. */
  readonly routeTimeoutMs: number;
  /** Average share of one core the tenant's scripts may use (token bucket over isolate CPU time). */
  readonly cpuShare: number;
  /** Wall time whose worth of cpuShare may be used in one burst, in ms. */
  readonly cpuBurstMs: number;
  /**
   * Seconds without a route call after which the tenant's isolate is
   * disposed (rebuilt at its next message); 0 never; undefined: the
   * server's default (`ksr run --idle-dispose-s`).
   */
  readonly idleSeconds?: number;
}

/** A listening socket pattern: undefined fields match anything. */
export interface SocketPattern {
  readonly proto?: TransportProto;
  /** IP address as Node reports local addresses (no brackets). */
  readonly ip?: string;
  readonly port?: number;
}

export interface TenantMatchRule {
  /** Lowercase host names; "*.example.com" matches subdomains only, "*" any host. */
  readonly domains: readonly string[];
  readonly sockets: readonly SocketPattern[];
  /** CIDR blocks ("10.0.0.0/8", "2001:db8::/32"); a bare address is a /32 or /128. */
  readonly sources: readonly string[];
}

/**
 * What a request gets when its route fails (exception, timeout, out of
 * memory) before answering or sending it on: a reply with this status, or
 * "none" — nothing, as Kamailio's app_jsdt does.
 */
export type TenantErrorPolicy = { readonly status: number; readonly reason: string } | "none";

export interface TenantEntry {
  readonly id: string;
  /** Absolute path of the routing script. */
  readonly scriptPath: string;
  readonly match: readonly TenantMatchRule[];
  readonly limits: TenantLimits;
  readonly onError: TenantErrorPolicy;
  /** The script's entry points besides ksr_request_route (Kamailio's kemi.* settings). */
  readonly kemi: KemiCallbacks;
  /** KEMI module names the script may use (its KSR object has only these); undefined: all. */
  readonly modules: readonly string[] | undefined;
  /** Execution mode a (re)loaded script starts in. */
  readonly mode: ExecutionMode;
  /** What its scripts may keep on the host (host/core/quota.ts). */
  readonly quotas: TenantQuotas;
  /** Where its scripts may send requests (host/core/egress.ts). */
  readonly egress: EgressRules;
  /**
   * Worker processes serving the tenant with `--isolation process`, each
   * message going to worker hash(Call-ID) mod workers (host/tenants/affinity.ts).
   */
  readonly workers: number;
  /** `isolation: own-process`: a worker process of its own rather than a place in a shard (host/tenants/shards.ts). */
  readonly ownProcess: boolean;
  /** `shard: n`: the shard (0-based) the tenant runs in; undefined: hash(id) mod the shard count. */
  readonly shard: number | undefined;
  /** Its dispatcher list file (absolute) and parameters (KSR.dispatcher); undefined: none. */
  readonly dispatcher?: TenantDispatcherConfig;
  /** Its own TLS certificate (absolute paths) and the server names (SNI) it is presented for; undefined: the server's. */
  readonly tls?: TlsServerName;
  /** Its module parameters (`modparams:`), checked against the modules' declarations (host/modules/modparams.ts). */
  readonly modparams: ModParamValues;
}

/** Most worker processes one tenant (or `ksr run --workers`) may have. */
export const MAX_WORKERS = 64;

/** Most shards (`--shards`) one server may have; a tenant's `shard:` is below it (and below the count in use, checked at start). */
export const MAX_SHARDS = 256;

export interface TenantsConfig {
  /** Absolute path of the tenants file. */
  readonly file: string;
  readonly tenants: readonly TenantEntry[];
  /** Id of the tenant for requests no rule selects. */
  readonly defaultTenant: string | undefined;
  /** Reply status for a request that selects no tenant. */
  readonly unmatched: 403 | 404;
}

export interface TenantsConfigIssue {
  readonly file: string;
  /** Tenant id (or "#n", 1-based, when the entry has no usable id); undefined for top-level fields. */
  readonly tenant: string | undefined;
  /** Dotted path inside the tenant (or the top level): "limits.heapMb", "match.sources[1]". */
  readonly field: string;
  readonly message: string;
}

/** The tenants file is unreadable or invalid; `issues` lists every problem found. */
export class TenantsConfigError extends Error {
  constructor(readonly issues: readonly TenantsConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "TenantsConfigError";
  }
}

export function formatIssue(issue: TenantsConfigIssue): string {
  const where = issue.tenant === undefined ? "top level" : `tenant "${issue.tenant}"`;
  return issue.field === "" ? `${issue.file}: ${where}: ${issue.message}` : `${issue.file}: ${where}, field ${issue.field}: ${issue.message}`;
}

export const DEFAULT_CPU_SHARE = 1;
export const DEFAULT_CPU_BURST_MS = 1000;
export const DEFAULT_ERROR_STATUS = 500;

/** Default reason phrases for the statuses an error policy commonly uses (RFC 3261 §21). */
const REASONS: Readonly<Record<number, string>> = {
  403: "Forbidden",
  404: "Not Found",
  480: "Temporarily Unavailable",
  500: "Server Internal Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Server Time-out",
};

// ---------------------------------------------------------------------------
// Pattern parsing (shared by the schema and the selector)
// ---------------------------------------------------------------------------

const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Why a domain pattern is invalid, or undefined when it is valid (expects lowercase). */
export function domainPatternProblem(pattern: string): string | undefined {
  if (pattern === "*") return undefined;
  const body = pattern.startsWith("*.") ? pattern.slice(2) : pattern;
  if (body.includes("*")) return `"${pattern}": a wildcard may only be the whole first label ("*.example.com")`;
  if (isIP(body.replace(/^\[(.*)\]$/, "$1")) !== 0) return pattern.startsWith("*.") ? `"${pattern}": a wildcard cannot precede an IP address` : undefined;
  const labels = body.split(".");
  if (labels.some((l) => !LABEL.test(l))) return `"${pattern}" is not a host name`;
  return undefined;
}

/** Parses `[proto:]host[:port]`, host an IPv4 address, [IPv6] or "*"; a string is the problem. */
export function parseSocketPattern(text: string): SocketPattern | string {
  let rest = text.trim().toLowerCase();
  let proto: TransportProto | undefined;
  const protoMatch = /^(udp|tcp):/.exec(rest);
  if (protoMatch !== null) {
    proto = protoMatch[1] as TransportProto;
    rest = rest.slice(protoMatch[0].length);
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) return `"${text}": unclosed "[" in IPv6 address`;
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) return `"${text}": expected ":port" after the IPv6 address`;
    portText = after === "" ? undefined : after.slice(1);
    if (isIP(host) !== 6) return `"${text}": "${host}" is not an IPv6 address`;
  } else {
    const parts = rest.split(":");
    if (parts.length > 2) return `"${text}": write an IPv6 address in brackets, e.g. "udp:[::1]:5060"`;
    host = parts[0]!;
    portText = parts[1];
    if (host !== "*" && isIP(host) !== 4) return `"${text}": "${host}" is not an IPv4 address, [IPv6] address or "*"`;
  }
  let port: number | undefined;
  if (portText !== undefined && portText !== "*") {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return `"${text}": "${portText}" is not a port`;
    port = Number(portText);
  }
  return {
    ...(proto !== undefined ? { proto } : {}),
    ...(host !== "*" ? { ip: host } : {}),
    ...(port !== undefined ? { port } : {}),
  };
}

// ---------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------

const domainSchema = z
  .string()
  .min(1)
  .transform((s) => s.trim().toLowerCase())
  .superRefine((s, ctx) => {
    const problem = domainPatternProblem(s);
    if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });

const socketSchema = z.string().transform((s, ctx) => {
  const parsed = parseSocketPattern(s);
  if (typeof parsed === "string") {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
    return z.NEVER;
  }
  return parsed;
});

const sourceSchema = z.string().superRefine((s, ctx) => {
  const parsed = parseCidr(s);
  if (typeof parsed === "string") ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
});

const ruleSchema = z
  .object({
    domains: z.array(domainSchema).default([]),
    sockets: z.array(socketSchema).default([]),
    sources: z.array(sourceSchema).default([]),
  })
  .strict();

const limitsSchema = z
  .object({
    heapMb: z.number().int().min(8).max(4096).default(DEFAULT_LIMITS.heapMb),
    routeTimeoutMs: z.number().int().min(1).max(60_000).default(DEFAULT_LIMITS.routeTimeoutMs),
    cpuShare: z.number().gt(0).max(256).default(DEFAULT_CPU_SHARE),
    cpuBurstMs: z.number().int().min(10).max(600_000).default(DEFAULT_CPU_BURST_MS),
    idleSeconds: z.number().int().min(0).max(7 * 24 * 3600).optional(),
  })
  .strict();

const quotasSchema = z
  .object({
    varBytes: z.number().int().min(0).max(1024 ** 3).default(DEFAULT_TENANT_QUOTAS.varBytes),
    shvBytes: z.number().int().min(0).max(1024 ** 3).default(DEFAULT_TENANT_QUOTAS.shvBytes),
    avpBytes: z.number().int().min(0).max(64 * 1024 ** 2).default(DEFAULT_TENANT_QUOTAS.avpBytes),
    editBytes: z.number().int().min(0).max(1024 ** 2).default(DEFAULT_TENANT_QUOTAS.editBytes),
    aors: z.number().int().min(0).max(100_000_000).default(DEFAULT_TENANT_QUOTAS.aors),
    logLinesPerSecond: z.number().int().min(0).max(1_000_000).default(DEFAULT_TENANT_QUOTAS.logLinesPerSecond),
    transactions: z.number().int().min(1).max(1_048_576).default(DEFAULT_TENANT_QUOTAS.transactions),
  })
  .strict();

const egressSchema = z
  .object({
    allow: z.array(sourceSchema).default([]),
    deny: z.array(sourceSchema).default([...DEFAULT_EGRESS_DENY]),
  })
  .strict();

/** A callback name: a JavaScript function name, or "none" (any case, as Kamailio's cfg parser) for "not called". */
const callbackSchema = z
  .string()
  .regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'must be a function name, or "none"')
  .transform((name) => (name.toLowerCase() === "none" ? "" : name));

/** The kemi: block: one key per kemi.* setting of runtime/interpreter.ts, each defaulting to Kamailio's default. */
const kemiSchema = z
  .object(Object.fromEntries(SETTING_ROUTES.map((r) => [r.naming.tenantKey, callbackSchema.default(r.naming.defaultName || "none")])))
  .strict();

/** The kemi: block as the tenant's callbacks. */
function kemiCallbacksOf(k: Readonly<Record<string, string>>): KemiCallbacks {
  return Object.fromEntries(SETTING_ROUTES.map((r) => [r.kind, k[r.naming.tenantKey]!])) as KemiCallbacks;
}

const tenantSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "must be 1-64 letters, digits, '_', '.', '-' (not first)"),
    script: z.string().min(1).regex(/\.(js|mjs|cjs|ts|mts|cts)$/i, "must be a .js or .ts file"),
    match: z.union([ruleSchema, z.array(ruleSchema)]).optional(),
    limits: limitsSchema.default({}),
    quotas: quotasSchema.default({}),
    egress: egressSchema.default({}),
    onError: z
      .union([
        z.literal("none"),
        z
          .object({
            status: z.number().int().min(300).max(699).default(DEFAULT_ERROR_STATUS),
            reason: z.string().min(1).regex(/^[^\r\n]*$/, "must be one line").optional(),
          })
          .strict(),
      ])
      .default({}),
    kemi: kemiSchema.default({}),
    modules: z.array(z.string()).optional(),
    mode: z.enum(["sync", "async"]).default("sync"),
    workers: z.number().int("must be a whole number").min(1, "must be at least 1").max(MAX_WORKERS, `must be at most ${MAX_WORKERS}`).default(1),
    isolation: z.enum(["shared", "own-process"]).default("shared"),
    shard: z.number().int("must be a whole number").min(0, "must be 0 or more").max(MAX_SHARDS - 1, `must be below ${MAX_SHARDS}`).optional(),
    dispatcher: z
      .object({ list: z.string().min(1), params: z.record(z.string(), z.union([z.string(), z.number()])).default({}) })
      .strict()
      .optional(),
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1), names: z.array(domainSchema).min(1).optional() })
      .strict()
      .optional(),
    // module → parameter → value; names and types are checked against the modules' declarations below.
    modparams: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.shard !== undefined && (t.isolation === "own-process" || t.workers > 1)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["shard"], message: "a tenant with a process of its own (isolation: own-process, or workers ≥ 2) has no shard" });
    }
  });

const fileSchema = z
  .object({
    unmatched: z.union([z.literal(404), z.literal(403)]).default(404),
    default: z.string().optional(),
    tenants: z.array(tenantSchema).min(1, "at least one tenant is required"),
  })
  .strict();

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

export interface LoadTenantsOptions {
  /** Module names a tenant may list; default the names of KEMI_MODULES. */
  readonly knownModules?: readonly string[];
}

function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new TenantsConfigError([{ file, tenant: undefined, field: "", message: `cannot read: ${(e as Error).message}` }]);
  }
  const ext = extname(file).toLowerCase();
  try {
    if (ext === ".json") return JSON.parse(text) as unknown;
    if (ext === ".yaml" || ext === ".yml") return parseYaml(text) as unknown;
  } catch (e) {
    const message = e instanceof YAMLParseError ? e.message.replace(/\n[\s\S]*$/, "") : `invalid JSON: ${(e as Error).message}`;
    throw new TenantsConfigError([{ file, tenant: undefined, field: "", message }]);
  }
  throw new TenantsConfigError([{ file, tenant: undefined, field: "", message: "tenants file must end in .yaml, .yml or .json" }]);
}

/** "tenants.2.limits.heapMb" → tenant of entry 2, field "limits.heapMb". */
function locate(file: string, raw: unknown, path: readonly (string | number)[]): Omit<TenantsConfigIssue, "message"> {
  if (path[0] !== "tenants" || typeof path[1] !== "number") return { file, tenant: undefined, field: fieldPath(path) };
  return { file, tenant: tenantLabel(raw, path[1]), field: fieldPath(path.slice(2)) };
}

function tenantLabel(raw: unknown, index: number): string {
  const entries = (raw as { tenants?: unknown } | null)?.tenants;
  const entry = Array.isArray(entries) ? (entries[index] as { id?: unknown } | undefined) : undefined;
  const id = entry?.id;
  return typeof id === "string" && id !== "" ? id : `#${index + 1}`;
}

function fieldPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  return out;
}

function reasonFor(status: number): string {
  return REASONS[status] ?? (status >= 500 ? "Server Error" : status >= 400 ? "Request Failed" : "Redirection");
}

/**
 * Reads and validates a tenants file. Throws TenantsConfigError listing
 * every problem (each naming the file, the tenant and the field). Scripts
 * must exist; whether they compile is checked when they are loaded.
 */
export function loadTenantsFile(path: string, opts: LoadTenantsOptions = {}): TenantsConfig {
  const file = resolve(path);
  const raw = readDocument(file);
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new TenantsConfigError(parsed.error.issues.map((issue) => ({ ...locate(file, raw, issue.path), message: issue.message })));
  }
  const data = parsed.data;
  const issues: TenantsConfigIssue[] = [];
  const knownModules = new Set(opts.knownModules ?? KEMI_MODULES.map((m) => m.name).filter((n) => n !== ""));
  const baseDir = dirname(file);
  const seen = new Set<string>();
  const tenants: TenantEntry[] = data.tenants.map((t) => {
    const issue = (field: string, message: string): void => {
      issues.push({ file, tenant: t.id, field, message });
    };
    if (seen.has(t.id)) issue("id", `duplicate tenant id (also used by an earlier tenant)`);
    seen.add(t.id);
    const scriptPath = resolve(baseDir, t.script);
    if (!existsSync(scriptPath)) issue("script", `file not found: ${scriptPath}`);
    else if (!statSync(scriptPath).isFile()) issue("script", `not a file: ${scriptPath}`);
    if (t.modules !== undefined) {
      t.modules.forEach((name, i) => {
        if (!knownModules.has(name)) issue(`modules[${i}]`, `unknown KSR module "${name}" (known: ${[...knownModules].join(", ")})`);
      });
    }
    const match = t.match === undefined ? [] : Array.isArray(t.match) ? t.match : [t.match];
    const dispatcher =
      t.dispatcher === undefined ? undefined : { list: resolveDispatcherList(t.dispatcher.list, (p) => resolve(baseDir, p)), params: t.dispatcher.params };
    const dsProblem = dispatcher === undefined ? undefined : dispatcherProblem(dispatcher, t.id);
    if (dsProblem !== undefined) issue("dispatcher", dsProblem);
    let tls: TlsServerName | undefined;
    if (t.tls !== undefined) {
      // Without names of its own, the tenant's domains: "*" would claim every name, so it is left out.
      const names = t.tls.names ?? match.flatMap((rule) => rule.domains).filter((d) => d !== "*");
      if (names.length === 0) issue("tls", "no server name to present the certificate for: give tls.names, or match.domains other than \"*\"");
      else if (names.includes("*")) issue("tls.names", "\"*\" would claim every server name: the server's own certificate (--tls-cert) is the one for names no tenant covers");
      else tls = { names, certFile: resolve(baseDir, t.tls.cert), keyFile: resolve(baseDir, t.tls.key), owner: `tenant ${t.id}` };
      for (const [field, file] of [["tls.cert", resolve(baseDir, t.tls.cert)], ["tls.key", resolve(baseDir, t.tls.key)]] as const) {
        if (!existsSync(file)) issue(field, `file not found: ${file}`);
      }
    }
    const modparams = parseModParams(KEMI_MODULES, t.modparams);
    for (const p of modparams.issues) issue(p.field === "" ? "modparams" : `modparams.${p.field}`, p.message);
    return {
      id: t.id,
      scriptPath,
      match,
      limits: t.limits,
      onError: t.onError === "none" ? "none" : { status: t.onError.status, reason: t.onError.reason ?? reasonFor(t.onError.status) },
      kemi: kemiCallbacksOf(t.kemi),
      modules: t.modules,
      mode: t.mode,
      quotas: t.quotas,
      egress: t.egress,
      workers: t.workers,
      ownProcess: t.isolation === "own-process",
      shard: t.shard,
      ...(dispatcher !== undefined ? { dispatcher } : {}),
      ...(tls !== undefined ? { tls } : {}),
      modparams: modparams.values,
    };
  });
  if (data.default !== undefined && !seen.has(data.default)) {
    issues.push({ file, tenant: undefined, field: "default", message: `no tenant has the id "${data.default}"` });
  }
  if (issues.length > 0) throw new TenantsConfigError(issues);
  return { file, tenants, defaultTenant: data.default, unmatched: data.unmatched };
}

/** The error policy of a script run alone: 500 (RFC 3261 §21.5.1); `ksr run --on-error` changes it. */
export const SINGLE_SCRIPT_ON_ERROR: TenantErrorPolicy = { status: 500, reason: "Server Internal Error" };

/** What `ksr run` options say of the one script besides its limits. */
export interface SingleScriptSettings {
  readonly onError?: TenantErrorPolicy;
  readonly kemi?: KemiCallbacks;
  /** `--dispatcher-list` and `--dispatcher-param`. */
  readonly dispatcher?: TenantDispatcherConfig;
  /** `--modparam module.name=value` (and the --pike-* flags), checked (host/modules/modparams.ts). */
  readonly modparams?: ModParamValues;
}

/**
 * An --on-error value: a status 300..699 (its RFC 3261 reason phrase) or
 * "none"; undefined when it is neither.
 */
export function parseErrorPolicy(text: string): TenantErrorPolicy | undefined {
  if (text.toLowerCase() === "none") return "none";
  if (!/^[3-6]\d\d$/.test(text)) return undefined;
  const status = Number(text);
  return { status, reason: reasonFor(status) };
}

/** A --kemi-*-callback value as a callback name ("" for "none"); undefined when it is not a function name. */
export function parseCallbackName(text: string): string | undefined {
  const r = callbackSchema.safeParse(text);
  return r.success ? r.data : undefined;
}

/**
 * `ksr run script.js` as a tenants file of one tenant: every message
 * selects it (it is the default tenant, no rules), it answers 500 when a
 * route fails, runs every KSR module, and runs synchronously from the start.
 * Its CPU share is that of the whole process (a registry of one script
 * turns budgets off, TenantRegistryOptions.cpuBudgets).
 */
export function singleScriptConfig(
  scriptPath: string,
  tenantId: string,
  limits: { readonly heapMb: number; readonly routeTimeoutMs: number },
  workers = 1,
  settings: SingleScriptSettings = {},
): TenantsConfig {
  const entry: TenantEntry = {
    id: tenantId,
    scriptPath,
    match: [],
    limits: { heapMb: limits.heapMb, routeTimeoutMs: limits.routeTimeoutMs, cpuShare: 1, cpuBurstMs: DEFAULT_CPU_BURST_MS },
    onError: settings.onError ?? SINGLE_SCRIPT_ON_ERROR,
    kemi: settings.kemi ?? DEFAULT_KEMI_CALLBACKS,
    modules: undefined,
    mode: "sync",
    quotas: SINGLE_SCRIPT_QUOTAS,
    // The operator's own script: it sends wherever it routes.
    egress: UNRESTRICTED_EGRESS,
    workers,
    ownProcess: true,
    shard: undefined,
    ...(settings.dispatcher !== undefined ? { dispatcher: settings.dispatcher } : {}),
    modparams: settings.modparams ?? NO_MODPARAMS,
  };
  return { file: scriptPath, tenants: [entry], defaultTenant: tenantId, unmatched: 404 };
}
