/**
 * Runs the `ksr` command from the current sources: host/cli/main.ts is
 * bundled (as scripts/build.mjs does) into a private file in dist/, so that
 * test files running in parallel never read a dist/ksr.js another suite is
 * rewriting. It must sit in dist/ like the real bundle: external packages
 * resolve from the project's node_modules and the isolate runtime is found
 * at ../runtime/facade.ts from there.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll } from "vitest";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let built: Promise<string> | undefined;
const outfile = path.join(ROOT, "dist", `ksr-test-cli-${process.pid}-${randomBytes(4).toString("hex")}.mjs`);
afterAll(() => rmSync(outfile, { force: true }));

/** Bundles the CLI once per test file; resolves with the path of the bundle. */
export function buildCli(): Promise<string> {
  built ??= (async () => {
    mkdirSync(path.join(ROOT, "dist"), { recursive: true });
    await build({
      entryPoints: [path.join(ROOT, "host/cli/main.ts")],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      packages: "external",
      logLevel: "silent",
    });
    return outfile;
  })();
  return built;
}

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runKsr(args: readonly string[], cwd = ROOT): Promise<CliResult> {
  const cli = await buildCli();
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
