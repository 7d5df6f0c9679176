/**
 * `ksr test [files...] [--reporter text|junit]`: runs YAML scenario files
 * (host/testing/scenarios.ts) against their routing scripts, in-process and
 * without sockets.
 *
 * Text reporter: one line per scenario, the expected-vs-actual diff under a
 * failed one, and the closing line `N passed, M failed`. JUnit reporter:
 * the XML on stdout, the closing line on stderr. Exit code 1 when anything
 * failed (or no scenario file was found).
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { runScenarioFile, type ScenarioOutcome } from "../testing/scenarios.js";

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
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Runs the scenario files (all *.test.yaml under the current directory when none are given); returns the exit code. */
export async function runTests(files: readonly string[], opts: RunTestsOptions): Promise<number> {
  // A directory argument stands for the scenario files below it.
  const targets = files.length > 0 ? files.flatMap((f) => (isDirectory(f) ? findScenarioFiles(f) : [f])) : findScenarioFiles(process.cwd());
  if (targets.length === 0) {
    opts.err("ksr test: no scenario files (*.test.yaml) found\n");
    return 1;
  }
  const outcomes: ScenarioOutcome[] = [];
  for (const file of targets) {
    for (const o of await runScenarioFile(file)) {
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
  return outcomes.every((o) => o.passed) ? 0 : 1;
}
