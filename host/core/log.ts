/**
 * Process logger. One record per line on stderr, in one of two formats
 * (`ksr run --log-format`):
 *
 *   text (default)  2026-12-07T20:41:32.123Z ERR [acme] message tenant=acme route=request call-id=… branch=z9hG4bK… src=udp:192.0.2.1:5060
 *   json            {"time":"2026-12-07T20:41:32.123Z","level":"err","component":"acme","msg":"message","tenant":"acme",…}
 *
 * Every record has its time, level and component (the scope: a tenant id,
 * or a part of the server such as `ksr`, `ctl`, `metrics`); records about
 * a message carry the fields that apply (tenant, route, Call-ID, transaction branch, source,
 * destination). A line a routing script logs (`KSR.info` …) is a field
 * (`script`), never raw text: in text format it is written quoted, with
 * newlines and control characters escaped as in a JSON string, so a script
 * cannot start a line of its own, forge another tenant's or the server's,
 * or hide what it logged; in JSON it is a string value. The component and
 * tenant of a script's line come from the message context the script runs
 * for, never from its text.
 *
 * The level threshold can change while the server runs, for the whole
 * process and per tenant (`ksr ctl loglevel [tenant] LEVEL`). Tests swap
 * the sink to capture the records.
 */
import type { LogLevel } from "./context.js";
import { binaryToText } from "../../sandbox/strings.js";

export const LOG_LEVELS: readonly LogLevel[] = ["dbg", "info", "notice", "warn", "err", "crit"];

const rank = new Map<LogLevel, number>(LOG_LEVELS.map((l, i) => [l, i]));

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What a record is about, where it applies. */
export interface LogFields {
  readonly tenant?: string;
  /** The route kind running (request, reply, failure, branch, onreply …). */
  readonly route?: string;
  readonly callId?: string;
  /** The top Via's branch of the message: the transaction (RFC 3261 §17.1.3, §17.2.3) the line is about. */
  readonly branch?: string;
  /** Where the message came from / goes to, `proto:ip:port`. */
  readonly src?: string;
  readonly dst?: string;
}

export interface LogRecord {
  readonly level: LogLevel;
  readonly scope: string;
  /** The server's message; for a script's line, the script's text. */
  readonly text: string;
  readonly fields?: LogFields;
  /** True when `text` is what a routing script logged. */
  readonly script?: boolean;
}

export type LogSink = (record: LogRecord) => void;

/** JSON's short escapes for the C0 controls that have one. */
const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

function escapeControl(c: string): string {
  return SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * Escapes what could break a line or fool a reader, as a JSON string
 * would: control characters (newlines included), DEL, the C1 controls and
 * the Unicode line and paragraph separators.
 */
export function escapeLogText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, escapeControl);
}

/** Text as a quoted field value: quote and backslash escaped too, so the value ends at its closing quote. */
function quoted(text: string): string {
  return `"${escapeLogText(text.replace(/[\\"]/g, "\\$&"))}"`;
}

/** A text-format field value: bare when it is one plain token, else quoted. */
function fieldValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value !== "" && !/[\s"\\=\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value) ? value : quoted(value);
}

/** Kamailio's log texts end with "\n"; one trailing newline is not part of the message. */
function withoutFinalNewline(text: string): string {
  return text.endsWith("\n") ? text.slice(0, -1) : text;
}

const FIELD_NAMES: readonly (readonly [keyof LogFields, string])[] = [
  ["tenant", "tenant"],
  ["route", "route"],
  ["callId", "call-id"],
  ["branch", "branch"],
  ["src", "src"],
  ["dst", "dst"],
];

/**
 * The record's text as characters: a script's text arrives as the binary
 * string of its UTF-8 bytes (sandbox/strings.ts), decoded here so that
 * what the script wrote is what is shown, and escaped as such.
 */
function recordText(r: LogRecord): string {
  const text = withoutFinalNewline(r.text);
  return r.script === true ? binaryToText(text) : text;
}

export function formatTextRecord(r: LogRecord, time: Date): string {
  const text = recordText(r);
  let line = `${time.toISOString()} ${r.level.toUpperCase()} [${escapeLogText(r.scope)}] ${r.script === true ? `script=${quoted(text)}` : escapeLogText(text)}`;
  const fields = r.fields;
  if (fields !== undefined) {
    for (const [key, name] of FIELD_NAMES) {
      const value = fields[key];
      if (value !== undefined) line += ` ${name}=${fieldValue(value)}`;
    }
  }
  return line;
}

export function formatJsonRecord(r: LogRecord, time: Date): string {
  const text = recordText(r);
  const out: Record<string, string> = { time: time.toISOString(), level: r.level, component: r.scope };
  if (r.script === true) out["script"] = text;
  else out["msg"] = text;
  const fields = r.fields;
  if (fields !== undefined) {
    for (const [key] of FIELD_NAMES) {
      const value = fields[key];
      if (value !== undefined) out[key] = value;
    }
  }
  // Valid JSON either way; escaped, DEL, C1 and the separators cannot move a viewer's cursor or break its lines.
  return JSON.stringify(out).replace(/[\u007f-\u009f\u2028\u2029]/g, escapeControl);
}

let format: LogFormat = "text";

const stderrSink: LogSink = (r) => {
  const time = new Date();
  process.stderr.write((format === "json" ? formatJsonRecord(r, time) : formatTextRecord(r, time)) + "\n");
};

let sink: LogSink = stderrSink;
let threshold = rank.get("info")!;
/** Per-tenant thresholds, set at run time; a tenant without one follows the process's. */
const tenantThresholds = new Map<string, number>();

export function setLogSink(next: LogSink | undefined): void {
  sink = next ?? stderrSink;
}

export function setLogFormat(next: LogFormat): void {
  format = next;
}

export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

/** The process's threshold, or with `tenant` that tenant's own (undefined: back to the process's). */
export function setLogLevel(level: LogLevel, tenant?: string): void {
  if (tenant === undefined) threshold = rank.get(level)!;
  else tenantThresholds.set(tenant, rank.get(level)!);
}

/** A tenant follows the process's threshold again. */
export function clearTenantLogLevel(tenant: string): void {
  tenantThresholds.delete(tenant);
}

/** The threshold in force: the process's, or a tenant's own when it has one. */
export function logLevel(tenant?: string): LogLevel {
  const r = (tenant === undefined ? undefined : tenantThresholds.get(tenant)) ?? threshold;
  return LOG_LEVELS[r]!;
}

export function isLogLevel(value: string): value is LogLevel {
  return rank.has(value as LogLevel);
}

/** Whether a record of this level (of this tenant) would be written. */
export function logEnabled(level: LogLevel, tenant?: string): boolean {
  const t = tenant === undefined || tenantThresholds.size === 0 ? threshold : (tenantThresholds.get(tenant) ?? threshold);
  return rank.get(level)! >= t;
}

export function log(level: LogLevel, scope: string, text: string, fields?: LogFields, script?: boolean): void {
  if (!logEnabled(level, fields?.tenant ?? scope)) return;
  sink(fields === undefined && script !== true ? { level, scope, text } : { level, scope, text, ...(fields !== undefined ? { fields } : {}), ...(script === true ? { script } : {}) });
}
