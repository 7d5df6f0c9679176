/**
 * `ksr ctl version`: this server's name and version (from its
 * package.json, found upward from this file, whether it runs from the
 * sources or the bundle in dist/), the Node.js and V8 versions.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface VersionInfo {
  readonly name: string;
  readonly version: string;
  readonly node: string;
  readonly v8: string;
}

let cached: { name: string; version: string } | undefined;

function packageInfo(): { name: string; version: string } {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "ksr-sandbox" && typeof pkg.version === "string") return (cached = { name: pkg.name, version: pkg.version });
    }
    dir = dirname(dir);
  }
  return (cached = { name: "ksr-sandbox", version: "unknown" });
}

export function versionInfo(): VersionInfo {
  return { ...packageInfo(), node: process.versions.node, v8: process.versions.v8 };
}
