// Bundles the CLI into dist/ksr.js so `ksr` starts without a TypeScript loader.
// Native and self-spawning packages stay external.
import { build } from "esbuild";

await build({
  entryPoints: ["host/cli/main.ts"],
  outfile: "dist/ksr.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  packages: "external",
  logLevel: "warning",
});
