// Builds the `ksr-sandbox/testing` entry: dist/testing.js (an esbuild
// bundle like dist/ksr.js) and its declarations under dist/types/ (tsc,
// declarations only; skipped with --no-types).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForNode } from "./node-bundle.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

await bundleForNode(path.join(root, "host/testing/index.ts"), path.join(root, "dist/testing.js"));

if (process.argv.includes("--no-types")) process.exit(0);

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.testing.json")], { cwd: root, stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);
