/**
 * YAML scenario files for `ksr test`: messages sent into a routing script
 * through the testing harness, and what must have happened.
 *
 *   script: basic-proxy.js          # relative to this file
 *   options:                        # optional, see SCENARIO_OPTIONS
 *     aliases: [proxy.example.test]
 *   scenarios:
 *     - name: keepalive OPTIONS gets 200
 *       send: { method: OPTIONS, ruri: "sip:127.0.0.1:5060" }
 *       expect:
 *         reply: { status: 200, reason: Keepalive }
 *     - name: two messages in a row
 *       steps:
 *         - send: |
 *             OPTIONS sip:127.0.0.1 SIP/2.0
 *             Via: SIP/2.0/UDP {{source_ip}}:{{source_port}};branch={{branch}}
 *             ...
 *           expect: { replies: [] }
 *         - advance: 60000          # move the clock on (ms)
 *         - send: { method: OPTIONS, ruri: "sip:127.0.0.1" }
 *           repeat: 30              # 30 times (fresh Call-ID and branch each), each meeting expect
 *
 * Module state to start from: `options.state` (see LoadScriptOptions.state):
 *
 *   options:
 *     state:
 *       locations: [{ aor: "sip:bob@example.com", contact: "sip:bob@192.0.2.20", expires: 600, q: 0.5 }]
 *       subscribers: [{ user: alice@example.com, password: secret }]
 *       htable: { ipban: { "198.51.100.7": 1 } }
 *
 * Stateful routing: `options.downstream` says how each destination answers
 * the requests relayed to it (see LoadScriptOptions.downstream), and an
 * `advance` step may have an `expect` about what was sent while the clock
 * moved (relayed replies, the failure route's new branch, ACK / CANCEL):
 *
 *   options:
 *     downstream:
 *       "udp:127.0.0.1:5080": [{ after: 0, status: 180 }, { after: 2000, status: 486 }]
 *       "udp:127.0.0.1:5090": never
 *   scenarios:
 *     - name: busy callee fails over
 *       steps:
 *         - send: { method: INVITE, ruri: "sip:bob@127.0.0.1" }
 *           expect: { replies: [{ status: 100 }, { status: 180 }] }
 *         - advance: 2000
 *           expect:
 *             routes: [ksr_failure_backup]
 *             forwards: [{ method: ACK }, { method: INVITE, destination: "udp:127.0.0.1:5070" }]
 *
 * Every scenario runs against a freshly loaded script (no state leaks from
 * one scenario to the next); the steps of one scenario share it.
 *
 * Text expectations match exactly, or as a regular expression when written
 * /like this/flags. Expectations may use the placeholders of the message
 * they belong to ({{callid}}, {{source_ip}}, ...). Keys not written are not
 * checked; `replies: []` / `forwards: []` assert that nothing was sent.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { ScriptCoverage } from "../../sandbox/coverage.js";
import { asTransportProto, TRANSPORT_PROTOS } from "../core/context.js";
import { fillPlaceholders, headerValues, loadScript, type LoadScriptOptions, type MessageHeader, type RequestSpec, type ScriptHarness, type DownstreamBehaviour, type SeedBinding, type SeedState, type SendResult, type SentForward, type SentReply, type SourceAddress } from "./index.js";

/** A scenario file that cannot be used; the message names the file and the place. */
export class ScenarioFileError extends Error {
  override readonly name = "ScenarioFileError";
}

export interface Expectation {
  readonly reply?: ReplyExpectation;
  readonly replies?: readonly ReplyExpectation[];
  readonly forward?: ForwardExpectation;
  readonly forwards?: readonly ForwardExpectation[];
  readonly dropped?: boolean;
  readonly exited?: boolean;
  readonly logs?: readonly LogExpectation[];
  /** Names of the route functions run, in order (exactly these). */
  readonly routes?: readonly string[];
  readonly flags?: readonly number[];
  readonly ruri?: string;
  readonly du?: string | null;
  /** Route failure: null for "none", or what it must say. */
  readonly error?: { readonly kind?: string; readonly message?: string } | null;
}

/** Header name → value (exact or /regex/), list of values, or null for "absent". */
export type HeaderExpectation = Readonly<Record<string, string | readonly string[] | null>>;

export interface ReplyExpectation {
  readonly status?: number;
  readonly reason?: string;
  readonly headers?: HeaderExpectation;
  /** "proto:ip:port". */
  readonly destination?: string;
}

export interface ForwardExpectation {
  /** "proto:ip:port". */
  readonly destination?: string;
  /** Method of a forwarded request (exact or /regex/). */
  readonly method?: string;
  readonly ruri?: string;
  readonly status?: number;
  readonly headers?: HeaderExpectation;
  /** Header lines (exact or /regex/) the sent message must have gained / lost. */
  readonly added?: readonly string[];
  readonly removed?: readonly string[];
}

export interface LogExpectation {
  readonly level?: string;
  /** Exact line or /regex/. */
  readonly text: string;
}

export type ScenarioStep =
  | {
      readonly kind: "send";
      readonly message: string | RequestSpec;
      readonly raw: boolean;
      readonly source?: SourceAddress;
      readonly expect: Expectation;
      /** Send the message this many times (fresh Call-ID, branch, tags each time); every one must meet `expect`. */
      readonly repeat: number;
    }
  | { readonly kind: "advance"; readonly ms: number; readonly expect?: Expectation }
  | { readonly kind: "clock"; readonly ms: number };

export interface Scenario {
  readonly name: string;
  readonly steps: readonly ScenarioStep[];
}

export interface ScenarioFile {
  readonly path: string;
  /** Absolute path of the script under test. */
  readonly script: string;
  readonly options: LoadScriptOptions;
  readonly scenarios: readonly Scenario[];
}

export interface ScenarioOutcome {
  readonly file: string;
  readonly name: string;
  readonly passed: boolean;
  /** Expected-vs-actual lines for a failed scenario. */
  readonly failures: readonly string[];
  readonly durationMs: number;
}

/** Bound on a send step's `repeat` (a scenario is a test, not a load generator). */
const MAX_REPEAT = 10_000;

/** Options a scenario file may give, passed to loadScript. */
const SCENARIO_OPTIONS = ["listen", "aliases", "now", "hosts", "source", "vars", "shv", "tenant", "limits", "downstream", "state"] as const;
const REQUEST_FIELDS = ["method", "ruri", "from", "to", "callId", "cseq", "via", "maxForwards", "contact", "userAgent", "headers", "body", "contentType"] as const;
const EXPECT_KEYS = ["reply", "replies", "forward", "forwards", "dropped", "exited", "logs", "routes", "flags", "ruri", "du", "error"] as const;
const REPLY_KEYS = ["status", "reason", "headers", "destination"] as const;
const FORWARD_KEYS = ["destination", "method", "ruri", "status", "headers", "added", "removed"] as const;
const DOWNSTREAM_RESPONSE_KEYS = ["after", "status", "reason", "headers"] as const;
const SOURCE_KEYS = ["proto", "ip", "port", "connectionId"] as const;

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

class Reader {
  constructor(private readonly file: string) {}

  fail(where: string, text: string): never {
    throw new ScenarioFileError(`${this.file}: ${where}: ${text}`);
  }

  object(value: unknown, where: string, allowed: readonly string[]): Obj {
    if (!isObject(value)) this.fail(where, "must be a mapping");
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail(where, `unknown key "${key}" (allowed: ${allowed.join(", ")})`);
    }
    return value;
  }

  string(value: unknown, where: string): string {
    if (typeof value !== "string") this.fail(where, "must be a string");
    return value;
  }

  number(value: unknown, where: string): number {
    if (typeof value !== "number" || !Number.isFinite(value)) this.fail(where, "must be a number");
    return value;
  }

  boolean(value: unknown, where: string): boolean {
    if (typeof value !== "boolean") this.fail(where, "must be true or false");
    return value;
  }

  list(value: unknown, where: string): unknown[] {
    if (!Array.isArray(value)) this.fail(where, "must be a list");
    return value;
  }

  pattern(value: unknown, where: string): string {
    const text = this.string(value, where);
    const regex = asRegExp(text);
    if (regex === null) this.fail(where, `invalid regular expression ${text}`);
    return text;
  }

  headers(value: unknown, where: string): HeaderExpectation {
    if (!isObject(value)) this.fail(where, "must be a mapping of header name to value");
    const out: Record<string, string | readonly string[] | null> = {};
    for (const [name, v] of Object.entries(value)) {
      if (v === null) out[name] = null;
      else if (Array.isArray(v)) out[name] = v.map((x, i) => this.pattern(x, `${where}.${name}[${i}]`));
      else out[name] = this.pattern(typeof v === "number" ? String(v) : v, `${where}.${name}`);
    }
    return out;
  }

  source(value: unknown, where: string): SourceAddress {
    const o = this.object(value, where, SOURCE_KEYS);
    const protoText = o.proto === undefined ? undefined : this.string(o.proto, `${where}.proto`);
    const proto = protoText === undefined ? undefined : asTransportProto(protoText);
    if (protoText !== undefined && proto === undefined) this.fail(`${where}.proto`, `must be one of ${TRANSPORT_PROTOS.join(", ")}`);
    return {
      ...(proto !== undefined ? { proto } : {}),
      ...(o.ip !== undefined ? { ip: this.string(o.ip, `${where}.ip`) } : {}),
      ...(o.port !== undefined ? { port: this.number(o.port, `${where}.port`) } : {}),
      ...(o.connectionId !== undefined ? { connectionId: this.number(o.connectionId, `${where}.connectionId`) } : {}),
    };
  }

  reply(value: unknown, where: string): ReplyExpectation {
    const o = this.object(value, where, REPLY_KEYS);
    return {
      ...(o.status !== undefined ? { status: this.number(o.status, `${where}.status`) } : {}),
      ...(o.reason !== undefined ? { reason: this.pattern(o.reason, `${where}.reason`) } : {}),
      ...(o.headers !== undefined ? { headers: this.headers(o.headers, `${where}.headers`) } : {}),
      ...(o.destination !== undefined ? { destination: this.pattern(o.destination, `${where}.destination`) } : {}),
    };
  }

  forward(value: unknown, where: string): ForwardExpectation {
    const o = this.object(value, where, FORWARD_KEYS);
    const lines = (key: string) => this.list(o[key], `${where}.${key}`).map((x, i) => this.pattern(x, `${where}.${key}[${i}]`));
    return {
      ...(o.destination !== undefined ? { destination: this.pattern(o.destination, `${where}.destination`) } : {}),
      ...(o.method !== undefined ? { method: this.pattern(o.method, `${where}.method`) } : {}),
      ...(o.ruri !== undefined ? { ruri: this.pattern(o.ruri, `${where}.ruri`) } : {}),
      ...(o.status !== undefined ? { status: this.number(o.status, `${where}.status`) } : {}),
      ...(o.headers !== undefined ? { headers: this.headers(o.headers, `${where}.headers`) } : {}),
      ...(o.added !== undefined ? { added: lines("added") } : {}),
      ...(o.removed !== undefined ? { removed: lines("removed") } : {}),
    };
  }

  expectation(value: unknown, where: string): Expectation {
    if (value === undefined || value === null) return {};
    const o = this.object(value, where, EXPECT_KEYS);
    if (o.reply !== undefined && o.replies !== undefined) this.fail(where, "give either reply or replies");
    if (o.forward !== undefined && o.forwards !== undefined) this.fail(where, "give either forward or forwards");
    let error: Expectation["error"];
    if (o.error === null) error = null;
    else if (o.error !== undefined) {
      const e = this.object(o.error, `${where}.error`, ["kind", "message"]);
      error = {
        ...(e.kind !== undefined ? { kind: this.string(e.kind, `${where}.error.kind`) } : {}),
        ...(e.message !== undefined ? { message: this.pattern(e.message, `${where}.error.message`) } : {}),
      };
    }
    return {
      ...(o.reply !== undefined ? { reply: this.reply(o.reply, `${where}.reply`) } : {}),
      ...(o.replies !== undefined ? { replies: this.list(o.replies, `${where}.replies`).map((r, i) => this.reply(r, `${where}.replies[${i}]`)) } : {}),
      ...(o.forward !== undefined ? { forward: this.forward(o.forward, `${where}.forward`) } : {}),
      ...(o.forwards !== undefined ? { forwards: this.list(o.forwards, `${where}.forwards`).map((f, i) => this.forward(f, `${where}.forwards[${i}]`)) } : {}),
      ...(o.dropped !== undefined ? { dropped: this.boolean(o.dropped, `${where}.dropped`) } : {}),
      ...(o.exited !== undefined ? { exited: this.boolean(o.exited, `${where}.exited`) } : {}),
      ...(o.logs !== undefined
        ? {
            logs: this.list(o.logs, `${where}.logs`).map((l, i) => {
              const w = `${where}.logs[${i}]`;
              if (typeof l === "string") return { text: this.pattern(l, w) };
              const lo = this.object(l, w, ["level", "text"]);
              return { ...(lo.level !== undefined ? { level: this.string(lo.level, `${w}.level`) } : {}), text: this.pattern(lo.text, `${w}.text`) };
            }),
          }
        : {}),
      ...(o.routes !== undefined ? { routes: this.list(o.routes, `${where}.routes`).map((n, i) => this.string(n, `${where}.routes[${i}]`)) } : {}),
      ...(o.flags !== undefined ? { flags: this.list(o.flags, `${where}.flags`).map((f, i) => this.number(f, `${where}.flags[${i}]`)) } : {}),
      ...(o.ruri !== undefined ? { ruri: this.pattern(o.ruri, `${where}.ruri`) } : {}),
      ...(o.du !== undefined ? { du: o.du === null ? null : this.pattern(o.du, `${where}.du`) } : {}),
      ...(error !== undefined ? { error } : {}),
    };
  }

  message(value: unknown, where: string): { message: string | RequestSpec; raw: boolean; source?: SourceAddress } {
    if (typeof value === "string") return { message: value, raw: false };
    const o = this.object(value, where, [...REQUEST_FIELDS, "text", "raw", "source"]);
    const source = o.source === undefined ? undefined : this.source(o.source, `${where}.source`);
    const raw = o.raw === undefined ? false : this.boolean(o.raw, `${where}.raw`);
    if (o.text !== undefined) {
      const extra = REQUEST_FIELDS.filter((k) => o[k] !== undefined);
      if (extra.length > 0) this.fail(where, `text and request fields (${extra.join(", ")}) do not go together`);
      return { message: this.string(o.text, `${where}.text`), raw, ...(source ? { source } : {}) };
    }
    if (raw) this.fail(where, "raw applies to text messages only");
    const spec: Record<string, unknown> = {};
    for (const key of REQUEST_FIELDS) if (o[key] !== undefined) spec[key] = o[key];
    return { message: spec as RequestSpec, raw: false, ...(source ? { source } : {}) };
  }

  /** options.state: { locations?: [{aor, contact, expires?, q?, table?}], subscribers?: [{user, password}], htable?: {table: {key: value}} }. */
  state(value: unknown, where: string): SeedState {
    const o = this.object(value, where, ["locations", "subscribers", "htable"]);
    const out: { locations?: SeedBinding[]; subscribers?: { user: string; password: string }[]; htable?: Record<string, Record<string, string | number>> } = {};
    if (o.locations !== undefined) {
      out.locations = this.list(o.locations, `${where}.locations`).map((item, i) => {
        const w = `${where}.locations[${i}]`;
        const b = this.object(item, w, ["aor", "contact", "expires", "q", "table"]);
        return {
          aor: this.string(b.aor, `${w}.aor`),
          contact: this.string(b.contact, `${w}.contact`),
          ...(b.expires !== undefined ? { expires: this.number(b.expires, `${w}.expires`) } : {}),
          ...(b.q !== undefined ? { q: this.number(b.q, `${w}.q`) } : {}),
          ...(b.table !== undefined ? { table: this.string(b.table, `${w}.table`) } : {}),
        };
      });
    }
    if (o.subscribers !== undefined) {
      out.subscribers = this.list(o.subscribers, `${where}.subscribers`).map((item, i) => {
        const w = `${where}.subscribers[${i}]`;
        const u = this.object(item, w, ["user", "password"]);
        const user = this.string(u.user, `${w}.user`);
        if (!/^[^@\s]+@[^@\s]+$/.test(user)) this.fail(`${w}.user`, "must be user@domain");
        return { user, password: this.string(u.password, `${w}.password`) };
      });
    }
    if (o.htable !== undefined) {
      const tables = this.object(o.htable, `${where}.htable`, Object.keys(o.htable as Obj));
      out.htable = {};
      for (const [table, items] of Object.entries(tables)) {
        const values = this.object(items, `${where}.htable.${table}`, Object.keys((items ?? {}) as Obj));
        for (const [k, v] of Object.entries(values)) if (typeof v !== "string" && typeof v !== "number") this.fail(`${where}.htable.${table}.${k}`, "must be a string or a number");
        out.htable[table] = values as Record<string, string | number>;
      }
    }
    return out;
  }

  /** options.downstream: "proto:ip:port" → never | list of { after, status, reason?, headers? }. */
  downstream(value: unknown, where: string): Record<string, DownstreamBehaviour> {
    if (!isObject(value)) this.fail(where, "must be a mapping of proto:ip:port to never or a list of responses");
    const out: Record<string, DownstreamBehaviour> = {};
    for (const [key, behaviour] of Object.entries(value)) {
      const w = `${where}.${key}`;
      if (!/^(udp|tcp):(\[[^\]]+\]|[^:[\]]+):\d{1,5}$/i.test(key)) this.fail(w, "the key must be proto:ip:port, e.g. udp:127.0.0.1:5080");
      if (behaviour === "never") {
        out[key] = "never";
        continue;
      }
      out[key] = this.list(behaviour, w).map((item, i) => {
        const r = this.object(item, `${w}[${i}]`, DOWNSTREAM_RESPONSE_KEYS);
        const status = this.number(r.status, `${w}[${i}].status`);
        if (!Number.isInteger(status) || status < 100 || status > 699) this.fail(`${w}[${i}].status`, "must be 100..699");
        const after = r.after === undefined ? 0 : this.number(r.after, `${w}[${i}].after`);
        if (after < 0) this.fail(`${w}[${i}].after`, "must be >= 0");
        return {
          after,
          status,
          ...(r.reason !== undefined ? { reason: this.string(r.reason, `${w}[${i}].reason`) } : {}),
          ...(r.headers !== undefined ? { headers: this.list(r.headers, `${w}[${i}].headers`).map((h, j) => this.string(h, `${w}[${i}].headers[${j}]`)) } : {}),
        };
      });
    }
    return out;
  }

  step(value: unknown, where: string): ScenarioStep {
    const o = this.object(value, where, ["send", "expect", "advance", "clock", "repeat"]);
    if (o.advance !== undefined) {
      const ms = this.number(o.advance, `${where}.advance`);
      if (ms < 0) this.fail(`${where}.advance`, "must be >= 0");
      return { kind: "advance", ms, ...(o.expect !== undefined ? { expect: this.expectation(o.expect, `${where}.expect`) } : {}) };
    }
    if (o.expect !== undefined && o.send === undefined) this.fail(where, "expect belongs to a send or an advance step");
    if (o.clock !== undefined) return { kind: "clock", ms: this.number(o.clock, `${where}.clock`) };
    if (o.send === undefined) this.fail(where, "needs send (or advance / clock)");
    let repeat = 1;
    if (o.repeat !== undefined) {
      repeat = this.number(o.repeat, `${where}.repeat`);
      if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) this.fail(`${where}.repeat`, `must be an integer from 1 to ${MAX_REPEAT}`);
    }
    return { kind: "send", ...this.message(o.send, `${where}.send`), expect: this.expectation(o.expect, `${where}.expect`), repeat };
  }
}

/** A /pattern/flags string as a RegExp; null when it is not one or does not compile. */
function asRegExp(text: string): RegExp | null | undefined {
  const m = /^\/(.*)\/([dgimsuy]*)$/s.exec(text);
  if (m === null) return undefined;
  try {
    return new RegExp(m[1]!, m[2]);
  } catch {
    return null;
  }
}

function matches(expected: string, actual: string): boolean {
  const regex = asRegExp(expected);
  return regex ? regex.test(actual) : expected === actual;
}

/** Parses scenario file text; `file` is its path (for messages and the script's relative path). */
export function parseScenarioFile(text: string, file: string): ScenarioFile {
  const r = new Reader(file);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ScenarioFileError(`${file}: invalid YAML: ${e instanceof Error ? e.message : String(e)}`);
  }
  const top = r.object(doc, "top level", ["script", "options", "scenarios"]);
  const script = path.resolve(path.dirname(file), r.string(top.script, "script"));
  const options: Record<string, unknown> = {};
  if (top.options !== undefined) {
    const o = r.object(top.options, "options", SCENARIO_OPTIONS);
    if (o.listen !== undefined) options.listen = r.list(o.listen, "options.listen").map((s, i) => r.string(s, `options.listen[${i}]`));
    if (o.aliases !== undefined) options.aliases = r.list(o.aliases, "options.aliases").map((s, i) => r.string(s, `options.aliases[${i}]`));
    if (o.now !== undefined) options.now = r.number(o.now, "options.now");
    if (o.tenant !== undefined) options.tenant = r.string(o.tenant, "options.tenant");
    if (o.hosts !== undefined) options.hosts = Object.fromEntries(Object.entries(r.object(o.hosts, "options.hosts", Object.keys(o.hosts as Obj))).map(([k, v]) => [k, r.string(v, `options.hosts.${k}`)]));
    if (o.source !== undefined) options.source = r.source(o.source, "options.source");
    for (const [key, target] of [["vars", "vars"], ["shv", "sharedVars"]] as const) {
      if (o[key] === undefined) continue;
      const values = r.object(o[key], `options.${key}`, Object.keys(o[key] as Obj));
      for (const [k, v] of Object.entries(values)) if (typeof v !== "string" && typeof v !== "number") r.fail(`options.${key}.${k}`, "must be a string or a number");
      options[target] = values;
    }
    if (o.downstream !== undefined) options.downstream = r.downstream(o.downstream, "options.downstream");
    if (o.state !== undefined) options.state = r.state(o.state, "options.state");
    if (o.limits !== undefined) {
      const l = r.object(o.limits, "options.limits", ["heapMb", "routeTimeoutMs"]);
      options.limits = Object.fromEntries(Object.entries(l).map(([k, v]) => [k, r.number(v, `options.limits.${k}`)]));
    }
  }
  const list = r.list(top.scenarios, "scenarios");
  if (list.length === 0) r.fail("scenarios", "is empty");
  const names = new Set<string>();
  const scenarios = list.map((item, i) => {
    const where = `scenarios[${i}]`;
    const o = r.object(item, where, ["name", "send", "expect", "steps"]);
    const name = r.string(o.name, `${where}.name`);
    if (names.has(name)) r.fail(`${where}.name`, `"${name}" is used twice`);
    names.add(name);
    if (o.steps !== undefined) {
      if (o.send !== undefined || o.expect !== undefined) r.fail(where, "give either steps or send/expect");
      const steps = r.list(o.steps, `${where}.steps`).map((s, j) => r.step(s, `${where}.steps[${j}]`));
      if (!steps.some((s) => s.kind === "send")) r.fail(`${where}.steps`, "sends nothing");
      return { name, steps };
    }
    return { name, steps: [r.step({ send: o.send, expect: o.expect }, where)] };
  });
  return { path: file, script, options: options as LoadScriptOptions, scenarios };
}

// ------------------------------------------------------------- assertions

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
}

function formatDestination(d: { proto: string; ip: string; port: number }): string {
  return `${d.proto}:${d.ip.includes(":") ? `[${d.ip}]` : d.ip}:${d.port}`;
}

function summarizeReply(r: SentReply): string {
  return `${r.status} ${r.reason} → ${formatDestination(r.destination)}`;
}

function summarizeForward(f: SentForward): string {
  return f.kind === "request" ? `${f.method} ${f.requestUri} → ${formatDestination(f.destination)}` : `${f.status} response → ${formatDestination(f.destination)}`;
}

class Diff {
  readonly lines: string[] = [];

  constructor(readonly fill: (text: string) => string) {}

  mismatch(where: string, expected: unknown, actual: unknown): void {
    this.lines.push(`${where}:`, `  - expected ${show(expected)}`, `  + actual   ${show(actual)}`);
  }

  text(where: string, expected: string, actual: string | undefined): void {
    const want = this.fill(expected);
    if (actual === undefined || !matches(want, actual)) this.mismatch(where, want, actual ?? null);
  }

  value(where: string, expected: unknown, actual: unknown): void {
    if (JSON.stringify(expected) !== JSON.stringify(actual)) this.mismatch(where, expected, actual);
  }

  headers(where: string, expected: HeaderExpectation, message: { readonly headers: readonly MessageHeader[] }): void {
    for (const [name, want] of Object.entries(expected)) {
      const got = headerValues(message, name);
      if (want === null) {
        if (got.length > 0) this.mismatch(`${where}.${name}`, "absent", got);
      } else if (typeof want === "string") {
        if (got.length === 0) this.mismatch(`${where}.${name}`, this.fill(want), "absent");
        else this.text(`${where}.${name}`, want, got[0]);
      } else {
        const filled = want.map(this.fill);
        if (got.length !== filled.length || filled.some((w, i) => !matches(w, got[i]!))) this.mismatch(`${where}.${name}`, filled, got);
      }
    }
  }

  lineSet(where: string, expected: readonly string[], actual: readonly string[]): void {
    for (const want of expected.map(this.fill)) {
      if (!actual.some((line) => matches(want, line))) this.mismatch(where, `a line matching ${want}`, actual);
    }
  }
}

function checkReply(d: Diff, where: string, want: ReplyExpectation, got: SentReply): void {
  if (want.status !== undefined) d.value(`${where}.status`, want.status, got.status);
  if (want.reason !== undefined) d.text(`${where}.reason`, want.reason, got.reason);
  if (want.destination !== undefined) d.text(`${where}.destination`, want.destination, formatDestination(got.destination));
  if (want.headers !== undefined) d.headers(`${where}.headers`, want.headers, got);
}

function checkForward(d: Diff, where: string, want: ForwardExpectation, got: SentForward): void {
  if (want.destination !== undefined) d.text(`${where}.destination`, want.destination, formatDestination(got.destination));
  if (want.method !== undefined) d.text(`${where}.method`, want.method, got.method);
  if (want.ruri !== undefined) d.text(`${where}.ruri`, want.ruri, got.requestUri);
  if (want.status !== undefined) d.value(`${where}.status`, want.status, got.status);
  if (want.headers !== undefined) d.headers(`${where}.headers`, want.headers, got);
  if (want.added !== undefined) d.lineSet(`${where}.added`, want.added, got.added);
  if (want.removed !== undefined) d.lineSet(`${where}.removed`, want.removed, got.removed);
}

/** Compares what happened with what a step expects; returns the diff lines (none when it matches). */
export function compareOutcome(expect: Expectation, result: SendResult): string[] {
  const d = new Diff((text) => fillPlaceholders(text, result.values));
  const replies = expect.reply !== undefined ? [expect.reply] : expect.replies;
  if (replies !== undefined) {
    if (replies.length !== result.replies.length) {
      d.mismatch("replies", `${replies.length} repl${replies.length === 1 ? "y" : "ies"}`, result.replies.map(summarizeReply));
    } else {
      replies.forEach((want, i) => checkReply(d, expect.reply !== undefined ? "reply" : `replies[${i}]`, want, result.replies[i]!));
    }
  }
  const forwards = expect.forward !== undefined ? [expect.forward] : expect.forwards;
  if (forwards !== undefined) {
    if (forwards.length !== result.forwarded.length) {
      d.mismatch("forwards", `${forwards.length} forwarded message${forwards.length === 1 ? "" : "s"}`, result.forwarded.map(summarizeForward));
    } else {
      forwards.forEach((want, i) => checkForward(d, expect.forward !== undefined ? "forward" : `forwards[${i}]`, want, result.forwarded[i]!));
    }
  }
  if (expect.dropped !== undefined) d.value("dropped", expect.dropped, result.dropped);
  if (expect.exited !== undefined) d.value("exited", expect.exited, result.exited);
  if (expect.routes !== undefined) d.value("routes", expect.routes, result.routes);
  if (expect.flags !== undefined) d.value("flags", [...expect.flags].sort((a, b) => a - b), result.flags);
  if (expect.ruri !== undefined) d.text("ruri", expect.ruri, result.ruri);
  if (expect.du !== undefined) {
    if (expect.du === null) d.value("du", null, result.dstUri ?? null);
    else d.text("du", expect.du, result.dstUri);
  }
  if (expect.error !== undefined) {
    if (expect.error === null) {
      if (result.error !== undefined) d.mismatch("error", null, result.error);
    } else if (result.error === undefined) {
      d.mismatch("error", expect.error, null);
    } else {
      if (expect.error.kind !== undefined) d.value("error.kind", expect.error.kind, result.error.kind);
      if (expect.error.message !== undefined) d.text("error.message", expect.error.message, result.error.message);
    }
  }
  for (const [i, want] of (expect.logs ?? []).entries()) {
    const text = d.fill(want.text);
    const found = result.logs.some((l) => (want.level === undefined || l.level === want.level) && matches(text, l.text));
    if (!found) d.mismatch(`logs[${i}]`, `${want.level ?? "any level"}: ${text}`, result.logs.map((l) => `${l.level}: ${l.text}`));
  }
  return d.lines;
}

// ----------------------------------------------------------------- running

/** What runScenarioFile does beyond running the scenarios. */
export interface RunScenarioOptions {
  /** Called with the script's coverage after each scenario that loaded it. */
  readonly onCoverage?: (coverage: ScriptCoverage) => void;
}

async function runScenario(file: ScenarioFile, scenario: Scenario, opts: RunScenarioOptions): Promise<ScenarioOutcome> {
  const started = performance.now();
  const finish = (failures: string[]): ScenarioOutcome => ({
    file: file.path,
    name: scenario.name,
    passed: failures.length === 0,
    failures,
    durationMs: performance.now() - started,
  });
  let harness: ScriptHarness;
  try {
    harness = await loadScript(file.script, opts.onCoverage === undefined ? file.options : { ...file.options, coverage: true });
  } catch (e) {
    return finish([`cannot load ${file.script}: ${e instanceof Error ? e.message : String(e)}`]);
  }
  try {
    let sendIndex = 0;
    for (const step of scenario.steps) {
      if (step.kind === "advance") {
        const label = `advance ${step.ms} ms after message ${sendIndex}`;
        let moved: SendResult;
        try {
          moved = await harness.advance(step.ms);
        } catch (e) {
          return finish([`${label}: ${e instanceof Error ? e.message : String(e)}`]);
        }
        const diff = step.expect === undefined ? [] : compareOutcome(step.expect, moved);
        if (diff.length > 0) return finish(diff.map((line, i) => (i === 0 || !line.startsWith("  ") ? `${label}: ${line}` : line)));
        continue;
      }
      if (step.kind === "clock") {
        harness.clock.set(step.ms);
        continue;
      }
      for (let copy = 0; copy < step.repeat; copy++) {
        sendIndex++;
        let result: SendResult;
        try {
          result = await harness.send(step.message, { raw: step.raw, ...(step.source ? { source: step.source } : {}) });
        } catch (e) {
          return finish([`message ${sendIndex}: cannot send: ${e instanceof Error ? e.message : String(e)}`]);
        }
        const diff = compareOutcome(step.expect, result);
        if (diff.length > 0) {
          const several = scenario.steps.some((s) => s.kind === "send" && s.repeat > 1) || scenario.steps.filter((s) => s.kind === "send").length > 1;
          const prefix = several ? `message ${sendIndex}: ` : "";
          return finish(diff.map((line, i) => (i === 0 || !line.startsWith("  ") ? prefix + line : line)));
        }
      }
    }
    return finish([]);
  } finally {
    if (opts.onCoverage !== undefined) opts.onCoverage(await harness.takeCoverage());
    harness.close();
  }
}

/** Runs every scenario of a file; a file that cannot be read or parsed is one failed outcome. */
export async function runScenarioFile(file: string, opts: RunScenarioOptions = {}): Promise<ScenarioOutcome[]> {
  let parsed: ScenarioFile;
  try {
    parsed = parseScenarioFile(readFileSync(file, "utf8"), file);
  } catch (e) {
    const message = e instanceof ScenarioFileError ? e.message : `${file}: ${e instanceof Error ? e.message : String(e)}`;
    return [{ file, name: "(scenario file)", passed: false, failures: [message], durationMs: 0 }];
  }
  const out: ScenarioOutcome[] = [];
  for (const scenario of parsed.scenarios) out.push(await runScenario(parsed, scenario, opts));
  return out;
}
