// Writes runtime/ksr.d.ts from the KEMI export tables (host/modules), through
// host/cli/typings.ts. `--check` writes nothing and exits 1 when the
// committed file differs from a fresh generation.
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = path.join(root, "runtime/ksr.d.ts");
const check = process.argv.includes("--check");

// The bundle lives next to dist/ksr.js so that its external packages resolve
// from the project's node_modules.
mkdirSync(path.join(root, "dist"), { recursive: true });
const bundle = path.join(root, "dist", `gen-dts-${process.pid}.mjs`);
let text;
try {
  await build({
    stdin: {
      contents:
        'import { KEMI_MODULES } from "./host/modules/index.js";\n' +
        'import { generateKsrDts } from "./host/cli/typings.js";\n' +
        "export const text = generateKsrDts(KEMI_MODULES);\n",
      resolveDir: root,
      loader: "ts",
    },
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    packages: "external",
    logLevel: "warning",
  });
  ({ text } = await import(pathToFileURL(bundle).href));
} finally {
  rmSync(bundle, { force: true });
}

if (check) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // missing: stale
  }
  if (current !== text) {
    process.stderr.write("runtime/ksr.d.ts is out of date: run `npm run build` (or node scripts/gen-dts.mjs)\n");
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
}
