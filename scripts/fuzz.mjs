#!/usr/bin/env node
// Coverage-guided fuzzing of the parsers (test/fuzz/targets.ts) with the
// engine of test/fuzz/engine.ts:
//
//   npm run fuzz -- --target parser --time 60      one target for 60 s
//   npm run fuzz -- --target all --time 10         every target, 10 s each
//   options: --runs N (stop after N runs), --seed N, --max-length N
//
// A failing input is written to test/fuzz/regressions/<target>/, where
// test/fuzz/regressions.test.ts replays it on every `npm test`, and the
// run exits 1. The targets and the engine are bundled separately with
// esbuild so that only the targets' code counts as coverage.
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "all" },
    time: { type: "string", default: "60" },
    runs: { type: "string" },
    seed: { type: "string" },
    "max-length": { type: "string", default: "4096" },
  },
});

function positive(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, not "${text}"`);
    process.exit(2);
  }
  return n;
}

const seconds = positive("time", values.time);
const maxRuns = values.runs === undefined ? Number.MAX_SAFE_INTEGER : positive("runs", values.runs);
const maxLength = positive("max-length", values["max-length"]);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : positive("seed", values.seed);

// Inside node_modules so that the bundles' external packages resolve.
const cacheDir = path.join(ROOT, "node_modules", ".cache");
fs.mkdirSync(cacheDir, { recursive: true });
const outDir = fs.mkdtempSync(path.join(cacheDir, "ksr-fuzz-"));
const bundle = (entry, name) =>
  build({
    entryPoints: [path.join(ROOT, entry)],
    outfile: path.join(outDir, name),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    packages: "external",
    logLevel: "warning",
    // The targets read the RFC 4475 messages relative to their source file.
    define: { "import.meta.url": JSON.stringify(pathToFileURL(path.join(ROOT, entry)).href) },
  });
await bundle("test/fuzz/targets.ts", "targets.mjs");
await bundle("test/fuzz/engine.ts", "engine.mjs");
const { TARGETS } = await import(pathToFileURL(path.join(outDir, "targets.mjs")).href);
const { fuzz, inputName } = await import(pathToFileURL(path.join(outDir, "engine.mjs")).href);

const names = values.target === "all" ? Object.keys(TARGETS) : [values.target];
for (const name of names) {
  if (TARGETS[name] === undefined) {
    console.error(`unknown target "${name}"; targets: ${Object.keys(TARGETS).join(", ")}, all`);
    process.exit(2);
  }
}

let failed = false;
for (const name of names) {
  const target = TARGETS[name];
  const report = fuzz((data) => target.run(data), target.seeds(), {
    maxRuns,
    maxMs: seconds * 1000,
    seed,
    maxLength,
    coverageUrl: path.join(outDir, "targets.mjs"),
  });
  const rate = Math.round((report.runs / Math.max(1, report.ms)) * 1000);
  console.log(`${name}: ${report.runs} runs in ${(report.ms / 1000).toFixed(1)} s (${rate}/s), corpus ${report.corpus}, coverage features ${report.features}, seed ${seed}`);
  if (report.failure !== undefined) {
    failed = true;
    const dir = path.join(ROOT, "test", "fuzz", "regressions", name);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, inputName(report.failure.input));
    fs.writeFileSync(file, report.failure.input);
    console.error(`${name}: FAILED: ${report.failure.error}\n  input (${report.failure.input.length} bytes) kept as ${path.relative(ROOT, file)}: ${JSON.stringify(report.failure.input.toString("latin1").slice(0, 300))}`);
  }
}
fs.rmSync(outDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
