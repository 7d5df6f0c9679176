/**
 * `ksr test [files...] [--reporter text|junit]`: runs YAML scenario files
 * (host/testing/scenarios.ts) against their routing scripts, in-process and
 * without sockets.
 *
 * Text reporter: one line per scenario, the expected-vs-actual diff under a
 * failed one, and the closing line `N passed, M failed`. JUnit reporter:
 * the XML on stdout, the closing line on stderr. Exit code 1 when anything
 * failed (or no scenario file was found).
 *
 * `--coverage [--coverage-lcov file]`: after the runs, per script the lines
 * and routes (functions) that ran, summed over every scenario; the lcov
 * tracefile is for coverage viewers (genhtml, editors).
 *
 * `--watch`: after the first run, runs again whenever a scenario file or the
 * script one of them tests changes (or a scenario file appears in a watched
 * directory), until interrupted.
 */
import { readdirSync, readFileSync, statSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import path from "node:path";
import { parseScenarioFile, runScenarioFile, type ScenarioOutcome } from "../testing/scenarios.js";
import { formatCoverageSummary, formatLcov, mergeCoverage, type ScriptCoverage } from "../../sandbox/coverage.js";

export type TestReporter = "text" | "junit";

const SCENARIO_FILE = /\.test\.ya?ml$/;
/** Directory levels searched for scenario files when none are named. */
const MAX_SEARCH_DEPTH = 8;

/** Scenario files under `dir` (node_modules and dot-directories skipped), sorted. */
export function findScenarioFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (current: string, depth: number): void => {
    if (depth > MAX_SEARCH_DEPTH) return;
    let entries;
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full, depth + 1);
      else if (entry.isFile() && SCENARIO_FILE.test(entry.name)) found.push(path.relative(process.cwd(), full) || full);
    }
  };
  walk(dir, 0);
  return found.sort();
}

function isDirectory(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

function xmlEscape(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    // Control characters other than tab/newline are not allowed in XML 1.0.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "");
}

/** JUnit XML: one <testsuite> per scenario file, one <testcase> per scenario. */
export function formatJunit(outcomes: readonly ScenarioOutcome[]): string {
  const byFile = new Map<string, ScenarioOutcome[]>();
  for (const o of outcomes) byFile.set(o.file, [...(byFile.get(o.file) ?? []), o]);
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const failed = outcomes.filter((o) => !o.passed).length;
  const total = outcomes.reduce((sum, o) => sum + o.durationMs, 0);
  let xml = '<?xml version="1.0" encoding="UTF-8"?>\n';
  xml += `<testsuites name="ksr test" tests="${outcomes.length}" failures="${failed}" errors="0" time="${seconds(total)}">\n`;
  for (const [file, list] of byFile) {
    const fileFailed = list.filter((o) => !o.passed).length;
    const time = list.reduce((sum, o) => sum + o.durationMs, 0);
    xml += `  <testsuite name="${xmlEscape(file)}" tests="${list.length}" failures="${fileFailed}" errors="0" skipped="0" time="${seconds(time)}">\n`;
    for (const o of list) {
      xml += `    <testcase classname="${xmlEscape(file)}" name="${xmlEscape(o.name)}" time="${seconds(o.durationMs)}"`;
      if (o.passed) {
        xml += " />\n";
      } else {
        // The first mismatch on one line: "where: - expected x + actual y".
        const first = o.failures.slice(0, 3).map((l) => l.trim()).join(" ") || "failed";
        xml += `>\n      <failure message="${xmlEscape(first)}">${xmlEscape(o.failures.join("\n"))}</failure>\n    </testcase>\n`;
      }
    }
    xml += "  </testsuite>\n";
  }
  xml += "</testsuites>\n";
  return xml;
}

export function formatSummary(outcomes: readonly ScenarioOutcome[]): string {
  const failed = outcomes.filter((o) => !o.passed).length;
  return `${outcomes.length - failed} passed, ${failed} failed`;
}

export interface RunTestsOptions {
  readonly reporter: TestReporter;
  /** Print per script the lines and routes that ran. */
  readonly coverage?: boolean;
  /** Also write the coverage as an lcov tracefile here (implies coverage). */
  readonly coverageLcov?: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** The scenario files the arguments stand for: a directory for those below it, nothing for all under the current directory. */
function scenarioTargets(files: readonly string[]): string[] {
  return files.length > 0 ? files.flatMap((f) => (isDirectory(f) ? findScenarioFiles(f) : [f])) : findScenarioFiles(process.cwd());
}

/** Runs the scenario files (all *.test.yaml under the current directory when none are given); returns the exit code. */
export async function runTests(files: readonly string[], opts: RunTestsOptions): Promise<number> {
  const targets = scenarioTargets(files);
  if (targets.length === 0) {
    opts.err("ksr test: no scenario files (*.test.yaml) found\n");
    return 1;
  }
  const outcomes: ScenarioOutcome[] = [];
  const wantCoverage = opts.coverage === true || opts.coverageLcov !== undefined;
  const coverageByScript = new Map<string, ScriptCoverage>();
  const onCoverage = (c: ScriptCoverage): void => {
    const seen = coverageByScript.get(c.file);
    coverageByScript.set(c.file, seen === undefined ? c : mergeCoverage(seen, c));
  };
  for (const file of targets) {
    for (const o of await runScenarioFile(file, wantCoverage ? { onCoverage } : {})) {
      outcomes.push(o);
      if (opts.reporter === "text") {
        opts.out(`${o.passed ? "✓" : "✗"} ${o.file} › ${o.name} (${Math.round(o.durationMs)} ms)\n`);
        for (const line of o.failures) opts.out(`    ${line}\n`);
      }
    }
  }
  const summary = formatSummary(outcomes);
  if (opts.reporter === "junit") {
    opts.out(formatJunit(outcomes));
    opts.err(`${summary}\n`);
  } else {
    opts.out(`\n${summary}\n`);
  }
  if (wantCoverage) {
    const coverages = [...coverageByScript.values()].sort((a, b) => a.file.localeCompare(b.file));
    // With junit, stdout carries the XML only.
    const print = opts.reporter === "junit" ? opts.err : opts.out;
    print(`\n${coverages.map(formatCoverageSummary).join("")}`);
    if (opts.coverageLcov !== undefined) writeFileSync(opts.coverageLcov, formatLcov(coverages));
  }
  return outcomes.every((o) => o.passed) ? 0 : 1;
}

export interface WatchTestsOptions extends RunTestsOptions {
  /** Quiet time after the last change before a run starts (editors write a file in several steps). Default 150 ms. */
  readonly debounceMs?: number;
  /** Stops watching; the promise then resolves with the exit code of the last run. */
  readonly signal?: AbortSignal;
}

/** Absolute paths of the scenario files and the scripts they test (a file that cannot be parsed is watched alone). */
function watchedFiles(files: readonly string[]): Set<string> {
  const watched = new Set<string>();
  for (const file of scenarioTargets(files)) {
    const full = path.resolve(file);
    watched.add(full);
    try {
      watched.add(parseScenarioFile(readFileSync(full, "utf8"), full).script);
    } catch {
      // A broken scenario file is reported by the run; fixing it triggers the next one.
    }
  }
  return watched;
}

/**
 * `ksr test --watch`: runs the scenario files, then again after every change
 * of one of them or of a script they test. Directories are watched rather
 * than files: an editor that saves by writing a new file and renaming it
 * over the old one would end a watch on the file itself.
 */
export async function watchTests(files: readonly string[], opts: WatchTestsOptions): Promise<number> {
  const debounceMs = opts.debounceMs ?? 150;
  let lastCode = await runTests(files, opts);
  if (opts.signal?.aborted) return lastCode;
  let watched = watchedFiles(files);
  const watchers = new Map<string, FSWatcher>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let changedWhileRunning = false;

  const rerun = async (): Promise<void> => {
    if (running) {
      changedWhileRunning = true;
      return;
    }
    running = true;
    try {
      do {
        changedWhileRunning = false;
        opts.out(`\n${"─".repeat(20)} re-run ${new Date().toISOString()} ${"─".repeat(20)}\n`);
        lastCode = await runTests(files, opts);
        watched = watchedFiles(files);
        updateWatchers();
      } while (changedWhileRunning && !opts.signal?.aborted);
    } finally {
      running = false;
    }
  };

  const onChange = (dir: string, filename: string | Buffer | null): void => {
    // Without a file name (some platforms) any change in a watched directory counts.
    const full = filename === null ? undefined : path.join(dir, filename.toString());
    if (full !== undefined && !watched.has(full) && !SCENARIO_FILE.test(full)) return;
    clearTimeout(timer);
    timer = setTimeout(() => void rerun(), debounceMs);
  };

  function updateWatchers(): void {
    const dirs = new Set([...watched].map((f) => path.dirname(f)));
    for (const [dir, w] of watchers) {
      if (!dirs.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        watchers.set(dir, watch(dir, (_event, filename) => onChange(dir, filename)));
      } catch (e) {
        opts.err(`ksr test --watch: cannot watch ${dir}: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  }

  updateWatchers();
  opts.err(`ksr test --watch: watching ${watched.size} file${watched.size === 1 ? "" : "s"}; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    if (opts.signal === undefined) return; // runs until the process is interrupted
    opts.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  clearTimeout(timer);
  for (const w of watchers.values()) w.close();
  return lastCode;
}
