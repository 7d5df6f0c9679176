/**
 * The in-isolate runtime (runtime/facade.ts) as one plain script, bundled by
 * esbuild the first time a runner is created and cached for the process.
 */
import { buildSync } from "esbuild";
import { fileURLToPath } from "node:url";

/** Filename the runtime is compiled under; its frames are never the script's. */
export const RUNTIME_FILENAME = "ksr-runtime.js";

/**
 * runtime/ sits next to sandbox/ and next to dist/ (where the CLI bundle
 * lives), so the same relative path works from the sources and the bundle.
 */
const FACADE_ENTRY = fileURLToPath(new URL("../runtime/facade.ts", import.meta.url));

let cached: string | undefined;

export function runtimeSource(): string {
  if (cached === undefined) {
    const result = buildSync({
      entryPoints: [FACADE_ENTRY],
      bundle: true,
      write: false,
      format: "iife",
      platform: "neutral",
      target: "es2022",
      legalComments: "none",
      logLevel: "silent",
    });
    cached = result.outputFiles[0]!.text;
  }
  return cached;
}
