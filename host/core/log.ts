/**
 * Process logger. Lines go to stderr as `LEVEL [scope] text`; tests swap the
 * sink to capture them.
 */
import type { LogLevel } from "./context.js";

export const LOG_LEVELS: readonly LogLevel[] = ["dbg", "info", "notice", "warn", "err", "crit"];

const rank = new Map<LogLevel, number>(LOG_LEVELS.map((l, i) => [l, i]));

export interface LogRecord {
  readonly level: LogLevel;
  readonly scope: string;
  readonly text: string;
}

export type LogSink = (record: LogRecord) => void;

const stderrSink: LogSink = (r) => {
  const text = r.text.endsWith("\n") ? r.text.slice(0, -1) : r.text;
  process.stderr.write(`${r.level.toUpperCase()} [${r.scope}] ${text}\n`);
};

let sink: LogSink = stderrSink;
let threshold = rank.get("info")!;

export function setLogSink(next: LogSink | undefined): void {
  sink = next ?? stderrSink;
}

export function setLogLevel(level: LogLevel): void {
  threshold = rank.get(level)!;
}

export function isLogLevel(value: string): value is LogLevel {
  return rank.has(value as LogLevel);
}

export function log(level: LogLevel, scope: string, text: string): void {
  if (rank.get(level)! < threshold) return;
  sink({ level, scope, text });
}
