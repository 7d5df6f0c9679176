/**
 * A minimal source map (v3) reader: enough to map a generated line:column
 * from an isolate stack frame back to the TypeScript source. Only the
 * `mappings` field and `sources` are used; names are ignored.
 */

export interface RawSourceMap {
  readonly version: number;
  readonly sources: readonly string[];
  readonly mappings: string;
  readonly names?: readonly string[];
}

export interface OriginalPosition {
  readonly source: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

/** One mapping segment of a generated line: [generatedColumn, sourceIndex, sourceLine, sourceColumn] (0-based). */
type Segment = readonly [number, number, number, number];

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64.length; i++) BASE64_VALUE[BASE64.charCodeAt(i)] = i;

/**
 * Decodes the Base64 VLQ fields of one segment. Each digit carries 5 value
 * bits and a continuation bit (32); the lowest bit of a decoded number is
 * its sign.
 */
function decodeSegmentFields(text: string, start: number, end: number): number[] {
  const fields: number[] = [];
  let value = 0;
  let shift = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    const digit = code < 128 ? BASE64_VALUE[code]! : -1;
    if (digit < 0) throw new Error(`invalid base64 digit '${text[i]}' in source map mappings`);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    fields.push(value & 1 ? -Math.floor(value / 2) : Math.floor(value / 2));
    value = 0;
    shift = 0;
  }
  if (shift !== 0) throw new Error("truncated VLQ number in source map mappings");
  return fields;
}

export class SourceMapIndex {
  private constructor(
    private readonly sources: readonly string[],
    /** Per generated line (0-based), segments sorted by generated column. */
    private readonly lines: readonly (readonly Segment[])[],
  ) {}

  static parse(map: RawSourceMap | string): SourceMapIndex {
    const raw: RawSourceMap = typeof map === "string" ? (JSON.parse(map) as RawSourceMap) : map;
    if (raw.version !== 3) throw new Error(`unsupported source map version ${String(raw.version)}`);
    const lines: Segment[][] = [];
    // Source index, line and column are relative to the previous segment across
    // the whole map; the generated column restarts at each generated line.
    let sourceIndex = 0;
    let sourceLine = 0;
    let sourceColumn = 0;
    const text = raw.mappings;
    let current: Segment[] = [];
    let generatedColumn = 0;
    let segmentStart = 0;
    for (let i = 0; i <= text.length; i++) {
      const ch = i < text.length ? text[i] : ";";
      if (ch !== "," && ch !== ";") continue;
      if (i > segmentStart) {
        const f = decodeSegmentFields(text, segmentStart, i);
        generatedColumn += f[0]!;
        // One-field segments map generated text to no source; skip them.
        if (f.length >= 4) {
          sourceIndex += f[1]!;
          sourceLine += f[2]!;
          sourceColumn += f[3]!;
          current.push([generatedColumn, sourceIndex, sourceLine, sourceColumn]);
        }
      }
      segmentStart = i + 1;
      if (ch === ";") {
        current.sort((a, b) => a[0] - b[0]);
        lines.push(current);
        current = [];
        generatedColumn = 0;
      }
    }
    return new SourceMapIndex(raw.sources, lines);
  }

  /**
   * Original position of a generated position (both 1-based). Uses the last
   * segment starting at or before the column, or the line's first segment
   * when the column precedes all of them (V8 reports some frames at column 1).
   */
  lookup(line: number, column: number): OriginalPosition | undefined {
    const segments = this.lines[line - 1];
    if (segments === undefined || segments.length === 0) return undefined;
    const col = column - 1;
    let lo = 0;
    let hi = segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (segments[mid]![0] <= col) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    const s = segments[found]!;
    return { source: this.sources[s[1]] ?? "", line: s[2] + 1, column: s[3] + 1 };
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Rewrites every `filename:line:column` in a stack (or message) text to the
 * original position when a map is given. Text about other files is kept.
 */
export function remapPositions(text: string, filename: string, map: SourceMapIndex | undefined): string {
  if (map === undefined) return text;
  const pattern = new RegExp(`${escapeRegExp(filename)}:(\\d+):(\\d+)`, "g");
  return text.replace(pattern, (whole, line: string, column: string) => {
    const pos = map.lookup(Number(line), Number(column));
    return pos === undefined ? whole : `${filename}:${pos.line}:${pos.column}`;
  });
}

/**
 * The first `filename:line:column` in a text, mapped through the source map
 * when given: where in the script an error was raised.
 */
export function firstScriptPosition(
  text: string,
  filename: string,
  map: SourceMapIndex | undefined,
): { line: number; column: number } | undefined {
  const match = new RegExp(`${escapeRegExp(filename)}:(\\d+):(\\d+)`).exec(text);
  if (match === null) return undefined;
  const line = Number(match[1]);
  const column = Number(match[2]);
  if (map === undefined) return { line, column };
  const pos = map.lookup(line, column);
  return pos === undefined ? { line, column } : { line: pos.line, column: pos.column };
}
