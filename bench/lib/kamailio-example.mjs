// Kamailio's own example routing script `kamailio-basic-kemi-jsdt.js`,
// obtained at run time from the Debian package `kamailio` (apt-get download +
// dpkg -x) instead of being copied into this repository: the script is GPL
// and must stay Kamailio's, unmodified. Shared by the basic-script interop
// test (test/interop/basic-script.test.ts) and the benchmark
// (scripts/bench.mjs --scenario basic-register|basic-call).
//
// Nothing of Kamailio is installed: the package is only downloaded into a
// cache directory and unpacked there.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";

export const BASIC_KEMI_SCRIPT_NAME = "kamailio-basic-kemi-jsdt.js";
/** Where the Debian package puts the KEMI examples (documentation folder). */
const EXAMPLES_DIR = path.join("usr", "share", "doc", "kamailio", "examples", "kemi");
const DEFAULT_CACHE_DIR = path.join(os.tmpdir(), `ksr-kamailio-deb-${process.getuid?.() ?? "user"}`);
const APT_TIMEOUT_MS = 180_000;

/**
 * A cache directory private to this user: created with mode 0700 when
 * missing; an existing one must be a real directory (not a symlink) owned by
 * this user, so that nobody else can plant a package or a script there.
 */
function privateDirectory(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = fs.lstatSync(dir);
  if (!info.isDirectory() || info.isSymbolicLink()) throw new Error(`${dir} is not a directory`);
  if (process.getuid && info.uid !== process.getuid()) {
    throw new Error(`${dir} belongs to uid ${info.uid}, not to this user: remove it or pass another cacheDir`);
  }
  if ((info.mode & 0o022) !== 0) throw new Error(`${dir} is writable by others (mode ${(info.mode & 0o777).toString(8)})`);
  return dir;
}

function cachedPackage(dir) {
  return fs
    .readdirSync(dir)
    .filter((f) => /^kamailio_[^_]+_[^_]+\.deb$/.test(f))
    .sort()
    .at(-1);
}

/**
 * The kamailio .deb in cacheDir, downloaded with `apt-get download kamailio`
 * when none is cached yet. Throws with apt-get's own output when it fails.
 */
export function downloadKamailioPackage(cacheDir = DEFAULT_CACHE_DIR) {
  const dir = privateDirectory(cacheDir);
  const cached = cachedPackage(dir);
  if (cached) return path.join(dir, cached);
  const download = spawnSync("apt-get", ["download", "kamailio"], { cwd: dir, encoding: "utf8", timeout: APT_TIMEOUT_MS });
  const downloaded = cachedPackage(dir);
  if (download.error || download.status !== 0 || !downloaded) {
    const reason = download.error ? download.error.message : `exit ${download.status}, signal ${download.signal}`;
    throw new Error(
      `\`apt-get download kamailio\` failed in ${dir} (${reason}); Kamailio's example script comes from that package. ` +
        "The package lists may need `apt-get update` (.ci/run does it).\n" +
        `${download.stdout ?? ""}${download.stderr ?? ""}`.trim(),
    );
  }
  return path.join(dir, downloaded);
}

/** One file of the unpacked package, gunzipped into a plain file when the package ships it compressed. */
function plainFile(examplesDir, name) {
  const plain = path.join(examplesDir, name);
  if (fs.existsSync(plain)) return plain;
  const compressed = `${plain}.gz`;
  if (fs.existsSync(compressed)) {
    fs.writeFileSync(plain, zlib.gunzipSync(fs.readFileSync(compressed)));
    return plain;
  }
  return null;
}

/**
 * Downloads (once per cacheDir) and unpacks the kamailio package and returns
 * { script, packageFile, version }: the absolute path of the unmodified
 * kamailio-basic-kemi-jsdt.js, the .deb it came from and the package version
 * (from the .deb's name, e.g. "5.6.3-2").
 */
export function obtainBasicKemiScript({ cacheDir = DEFAULT_CACHE_DIR } = {}) {
  const packageFile = downloadKamailioPackage(cacheDir);
  const version = decodeURIComponent(/^kamailio_([^_]+)_/.exec(path.basename(packageFile))[1]);
  const unpacked = path.join(path.dirname(packageFile), `unpacked-${path.basename(packageFile, ".deb")}`);
  const examplesDir = path.join(unpacked, EXAMPLES_DIR);
  let script = fs.existsSync(examplesDir) ? plainFile(examplesDir, BASIC_KEMI_SCRIPT_NAME) : null;
  if (!script) {
    fs.rmSync(unpacked, { recursive: true, force: true });
    const extract = spawnSync("dpkg", ["-x", packageFile, unpacked], { encoding: "utf8", timeout: APT_TIMEOUT_MS });
    if (extract.error || extract.status !== 0) {
      const reason = extract.error ? extract.error.message : `exit ${extract.status}`;
      throw new Error(`\`dpkg -x ${packageFile}\` failed (${reason}):\n${extract.stdout ?? ""}${extract.stderr ?? ""}`);
    }
    script = fs.existsSync(examplesDir) ? plainFile(examplesDir, BASIC_KEMI_SCRIPT_NAME) : null;
  }
  if (!script) {
    throw new Error(`${path.basename(packageFile)} has no ${path.join(EXAMPLES_DIR, BASIC_KEMI_SCRIPT_NAME)}(.gz)`);
  }
  return { script, packageFile, version };
}
