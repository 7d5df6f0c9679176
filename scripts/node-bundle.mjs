// How dist/ is bundled for Node (dist/ksr.js, dist/testing.js): one ESM file
// for Node 22 and later with a source map. Packages stay external: native and
// self-spawning ones (isolated-vm, better-sqlite3, esbuild) cannot be bundled.
import { build } from "esbuild";

/** Bundles entryPoint and what it imports from the repository into outfile. */
export function bundleForNode(entryPoint, outfile) {
  return build({
    entryPoints: [entryPoint],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    sourcemap: true,
    packages: "external",
    logLevel: "warning",
  });
}
