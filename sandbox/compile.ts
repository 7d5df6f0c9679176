/**
 * Turns a routing script file into the code an isolate runs.
 *
 * A Kamailio KEMI JavaScript script is a plain script (not a module) whose
 * top-level function declarations become globals that the engine calls by
 * name (ksr_request_route, ...). JavaScript is therefore used exactly as
 * written; TypeScript is only transformed (types stripped, no bundling and
 * no module wrapper), so its top-level functions stay global too.
 */
import { readFileSync } from "node:fs";
import { transformSync, type Message, type TransformFailure } from "esbuild";
import { SourceMapIndex } from "./sourcemap.js";

/** A script that cannot be loaded; the message starts with `file:line:col:` when the position is known. */
export class ScriptLoadError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = "ScriptLoadError";
  }

  /** Builds `file:line:col: text` (or `file: text` when there is no position). */
  static at(file: string, text: string, line?: number, column?: number): ScriptLoadError {
    const where = line === undefined ? file : column === undefined ? `${file}:${line}` : `${file}:${line}:${column}`;
    return new ScriptLoadError(`${where}: ${text}`, file, line, column);
  }
}

export interface CompiledScript {
  /** Code to compile in the isolate. */
  readonly code: string;
  /** Name given to the isolate compiler; stack frames carry it. The script's path. */
  readonly filename: string;
  /** Maps generated positions back to the source (TypeScript only). */
  readonly sourceMap?: SourceMapIndex;
}

function isTypeScript(path: string): boolean {
  return /\.(ts|mts|cts)$/i.test(path);
}

function isTransformFailure(e: unknown): e is TransformFailure {
  return e instanceof Error && Array.isArray((e as Partial<TransformFailure>).errors);
}

function loadErrorFromEsbuild(filename: string, e: unknown): ScriptLoadError {
  if (isTransformFailure(e) && e.errors.length > 0) {
    const first: Message = e.errors[0]!;
    const loc = first.location;
    // esbuild lines are 1-based, columns 0-based.
    return loc ? ScriptLoadError.at(filename, first.text, loc.line, loc.column + 1) : ScriptLoadError.at(filename, first.text);
  }
  return ScriptLoadError.at(filename, e instanceof Error ? e.message : String(e));
}

/** Compiles script text that was read from (or stands for) `filename`. */
export function compileSource(source: string, filename: string): CompiledScript {
  if (isTypeScript(filename)) {
    let result;
    try {
      result = transformSync(source, {
        loader: "ts",
        sourcefile: filename,
        sourcemap: "external",
        sourcesContent: false,
        target: "es2022",
        logLevel: "silent",
      });
    } catch (e) {
      throw loadErrorFromEsbuild(filename, e);
    }
    return { code: result.code, filename, sourceMap: SourceMapIndex.parse(result.map) };
  }
  // JavaScript runs as written; esbuild only checks the syntax here so that
  // errors read `file:line:col: message` like the TypeScript ones (V8 in the
  // isolate would report them too, but only once the isolate exists).
  try {
    transformSync(source, { loader: "js", sourcefile: filename, target: "esnext", logLevel: "silent" });
  } catch (e) {
    throw loadErrorFromEsbuild(filename, e);
  }
  return { code: source, filename };
}

export function compileScript(path: string): CompiledScript {
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch (e) {
    throw ScriptLoadError.at(path, `cannot read script: ${e instanceof Error ? e.message : String(e)}`);
  }
  return compileSource(source, path);
}
