/**
 * Script coverage: turns V8's precise block coverage (Profiler domain of
 * the inspector protocol, ranges as character offsets into the code the
 * isolate compiled) into per-line and per-function counts of the script
 * file, through the source map for TypeScript.
 */
import type { SourceMapIndex } from "./sourcemap.js";

/** Coverage of one script file. */
export interface ScriptCoverage {
  readonly file: string;
  /** 1-based source line → execution count, for every line holding code. */
  readonly lines: Map<number, number>;
  /** Named functions (routes and helpers) with the line they start on and how often they ran. */
  readonly functions: { name: string; line: number; count: number }[];
}

/** Shapes of Profiler.takePreciseCoverage's result. */
export interface V8CoverageRange {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
export interface V8FunctionCoverage {
  readonly functionName: string;
  readonly ranges: readonly V8CoverageRange[];
}
export interface V8ScriptCoverage {
  readonly url: string;
  readonly functions: readonly V8FunctionCoverage[];
}

/** Lines that hold no statement of their own: closing brackets, comment text. */
function holdsCode(text: string): boolean {
  if (/^[})\];,]+$/.test(text)) return false;
  return !/^(\/\/|\/\*|\*)/.test(text);
}

/** Count of the innermost (shortest) range containing the offset; ranges nest, so the shortest is the innermost. */
function innermostCount(ranges: readonly V8CoverageRange[], offset: number): number | undefined {
  let best: V8CoverageRange | undefined;
  for (const r of ranges) {
    if (offset < r.startOffset || offset >= r.endOffset) continue;
    if (best === undefined || r.endOffset - r.startOffset <= best.endOffset - best.startOffset) best = r;
  }
  return best?.count;
}

/**
 * Maps V8 coverage of the compiled `code` to lines of `file`. A line is
 * covered when the innermost range containing its first non-blank
 * character ran; with a source map, generated lines count for the source
 * line they come from (the highest count wins).
 */
export function scriptCoverageFromV8(
  v8: V8ScriptCoverage | undefined,
  code: string,
  file: string,
  sourceMap?: SourceMapIndex,
): ScriptCoverage {
  const ranges = (v8?.functions ?? []).flatMap((f) => f.ranges);
  const lineStarts = [0];
  for (let i = 0; i < code.length; i++) if (code.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const toSourceLine = (generatedLine: number, column: number): number | undefined =>
    sourceMap === undefined ? generatedLine : sourceMap.lookup(generatedLine, column)?.line;
  const lines = new Map<number, number>();
  lineStarts.forEach((start, index) => {
    const end = index + 1 < lineStarts.length ? lineStarts[index + 1]! - 1 : code.length;
    const text = code.slice(start, end);
    const trimmed = text.trim();
    if (trimmed === "" || !holdsCode(trimmed)) return;
    const column = text.length - text.trimStart().length;
    const count = innermostCount(ranges, start + column);
    if (count === undefined) return;
    const line = toSourceLine(index + 1, column + 1);
    if (line === undefined) return;
    lines.set(line, Math.max(lines.get(line) ?? 0, count));
  });
  const functions: ScriptCoverage["functions"] = [];
  for (const f of v8?.functions ?? []) {
    const whole = f.ranges[0];
    if (f.functionName === "" || whole === undefined) continue;
    let generatedLine = 0;
    while (generatedLine + 1 < lineStarts.length && lineStarts[generatedLine + 1]! <= whole.startOffset) generatedLine++;
    const line = toSourceLine(generatedLine + 1, whole.startOffset - lineStarts[generatedLine]! + 1) ?? generatedLine + 1;
    functions.push({ name: f.functionName, line, count: whole.count });
  }
  functions.sort((a, b) => a.line - b.line || a.name.localeCompare(b.name));
  return { file, lines: new Map([...lines].sort((a, b) => a[0] - b[0])), functions };
}

/** Sums two coverages of the same file (e.g. one isolate per scenario). */
export function mergeCoverage(a: ScriptCoverage, b: ScriptCoverage): ScriptCoverage {
  const lines = new Map(a.lines);
  for (const [line, count] of b.lines) lines.set(line, (lines.get(line) ?? 0) + count);
  const functions = a.functions.map((f) => ({ ...f }));
  for (const f of b.functions) {
    const same = functions.find((g) => g.name === f.name && g.line === f.line);
    if (same) same.count += f.count;
    else functions.push({ ...f });
  }
  functions.sort((x, y) => x.line - y.line || x.name.localeCompare(y.name));
  return { file: a.file, lines: new Map([...lines].sort((x, y) => x[0] - y[0])), functions };
}

/** `<file>: lines L/T (P%), routes R/N`, then the routes that never ran and the lines that did not run. */
export function formatCoverageSummary(c: ScriptCoverage): string {
  const total = c.lines.size;
  const hit = [...c.lines.values()].filter((n) => n > 0).length;
  const percent = total === 0 ? 100 : Math.floor((hit * 1000) / total) / 10;
  const ran = c.functions.filter((f) => f.count > 0).length;
  const out = [`${c.file}: lines ${hit}/${total} (${percent}%), routes ${ran}/${c.functions.length}`];
  for (const f of c.functions) if (f.count === 0) out.push(`  never ran: ${f.name} (line ${f.line})`);
  const missed = [...c.lines].filter(([, n]) => n === 0).map(([line]) => line);
  if (missed.length > 0) out.push(`  lines not run: ${compactLineList(missed)}`);
  return out.join("\n") + "\n";
}

/** 3,4,5,9 → "3-5, 9". */
function compactLineList(lines: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < lines.length; ) {
    let j = i;
    while (j + 1 < lines.length && lines[j + 1] === lines[j]! + 1) j++;
    parts.push(i === j ? `${lines[i]}` : `${lines[i]}-${lines[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

/** lcov tracefile records (geninfo format: SF, FN/FNDA/FNF/FNH, DA/LF/LH, end_of_record). */
export function formatLcov(coverages: readonly ScriptCoverage[]): string {
  let out = "";
  for (const c of coverages) {
    out += `SF:${c.file}\n`;
    for (const f of c.functions) out += `FN:${f.line},${f.name}\n`;
    for (const f of c.functions) out += `FNDA:${f.count},${f.name}\n`;
    out += `FNF:${c.functions.length}\nFNH:${c.functions.filter((f) => f.count > 0).length}\n`;
    for (const [line, count] of c.lines) out += `DA:${line},${count}\n`;
    out += `LF:${c.lines.size}\nLH:${[...c.lines.values()].filter((n) => n > 0).length}\n`;
    out += "end_of_record\n";
  }
  return out;
}

/**
 * Precise coverage of one isolate through an inspector session. Started
 * before the script is compiled so every function of it is counted.
 */
export class IsolateCoverageSession {
  private nextId = 1;
  private readonly pending = new Map<number, (message: string) => void>();
  /** Settles once the isolate has turned precise coverage on. */
  readonly started: Promise<void>;

  constructor(private readonly session: { dispatchProtocolMessage(m: string): void; dispose(): void; onResponse: (id: number, m: string) => void; onNotification: (m: string) => void }) {
    session.onResponse = (id, message) => {
      const resolve = this.pending.get(id);
      this.pending.delete(id);
      resolve?.(message);
    };
    session.onNotification = () => {};
    // Responses arrive asynchronously, but the isolate handles the messages in order before any later script task.
    void this.call("Profiler.enable");
    this.started = this.call("Profiler.startPreciseCoverage", { callCount: true, detailed: true }).then(() => undefined);
    // A failure shows up in take(); do not leave it unhandled.
    this.started.catch(() => {});
  }

  private call(method: string, params?: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (message) => {
        const parsed = JSON.parse(message) as { result?: unknown; error?: { message?: string } };
        if (parsed.error !== undefined) reject(new Error(`${method}: ${parsed.error.message ?? "inspector error"}`));
        else resolve(parsed.result);
      });
      this.session.dispatchProtocolMessage(JSON.stringify({ id, method, ...(params === undefined ? {} : { params }) }));
    });
  }

  /** The coverage of the script compiled as `url`, counted since the session began. */
  async take(url: string): Promise<V8ScriptCoverage | undefined> {
    const result = (await this.call("Profiler.takePreciseCoverage")) as { result: V8ScriptCoverage[] };
    return result.result.find((s) => s.url === url);
  }

  dispose(): void {
    for (const resolve of this.pending.values()) resolve(JSON.stringify({ error: { message: "isolate released" } }));
    this.pending.clear();
    try {
      this.session.dispose();
    } catch {
      // the isolate is already gone
    }
  }
}
