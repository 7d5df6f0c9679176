// Kamailio 5.6 + app_jsdt as a reference server for the sipp interop tests
// and the benchmark: the same KEMI JavaScript routing script, run by the real
// thing. Uses the shared benchmark configuration ($KAMAILIO_BENCH_DIR,
// default ../shared/bench next to the repository), rewritten into a
// temporary directory to listen on the port asked for.
//
// Everything stays on 127.0.0.1; Kamailio is never started through systemd
// and is stopped by the PID this module started.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT, captureOutput, isListening } from "./sipp.mjs";

export const KAMAILIO_BENCH_DIR = path.resolve(process.env.KAMAILIO_BENCH_DIR ?? path.join(REPO_ROOT, "..", "shared", "bench"));

/** The Kamailio version line, or null when kamailio is not on PATH. */
export function kamailioVersion() {
  const probe = spawnSync("kamailio", ["-v"], { encoding: "utf8", timeout: 10_000 });
  if (probe.error) return null;
  return (probe.stdout.split("\n").find((l) => /^version:/.test(l)) ?? "kamailio (unknown version)").trim();
}

/**
 * Starts kamailio in the foreground of a child process, running the KEMI
 * script `script` (absolute path) on UDP 127.0.0.1:port, and resolves once
 * its UDP socket is open (bounded by readyTimeoutMs). children overrides the
 * configuration's number of UDP workers (with several, Kamailio may forward
 * a 180 after the 200 that followed it). Returns
 * { pid, port, output(), stop() } like startKsr; stop() sends SIGTERM to the
 * main process (which takes its children down), SIGKILL after 5 s.
 * cfgTemplate replaces the shared configuration (it must have the same
 * listen/alias/children lines); defines are extra `-A` preprocessor
 * definitions ("NAME" or 'NAME="value"').
 */
export async function startKamailio({
  script,
  port,
  children,
  shmMb = 256,
  pkgMb = 32,
  readyTimeoutMs = 15_000,
  cfgTemplate = path.join(KAMAILIO_BENCH_DIR, "cfg", "kamailio-kemi.cfg"),
  defines = [],
}) {
  const template = cfgTemplate;
  if (!fs.existsSync(template)) throw new Error(`${template} is missing (set KAMAILIO_BENCH_DIR)`);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-kamailio-"));
  const original = fs.readFileSync(template, "latin1");
  let cfg = original
    .replace(/^listen=udp:127\.0\.0\.1:5060\s*$/m, `listen=udp:127.0.0.1:${port}`)
    .replace(/^alias="127\.0\.0\.1:5060"\s*$/m, `alias="127.0.0.1:${port}"`);
  if (!cfg.includes(`listen=udp:127.0.0.1:${port}`) || !cfg.includes(`alias="127.0.0.1:${port}"`)) {
    throw new Error(`${template} no longer has the listen/alias lines this module rewrites`);
  }
  if (children !== undefined) {
    if (!/^children=\d+/m.test(cfg)) throw new Error(`${template} has no children= line to rewrite`);
    cfg = cfg.replace(/^children=\d+/m, `children=${children}`);
  }
  const cfgFile = path.join(runDir, "kamailio.cfg");
  fs.writeFileSync(cfgFile, cfg);
  const args = ["-f", cfgFile, "-DD", "-E", "-m", String(shmMb), "-M", String(pkgMb), "-Y", runDir, "-A", `JS_SCRIPT="${path.resolve(script)}"`, ...defines.flatMap((d) => ["-A", d])];
  const child = spawn("kamailio", args, { cwd: runDir, stdio: ["ignore", "pipe", "pipe"] });
  const output = captureOutput(child, 200_000);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((_, reject) => child.once("error", reject));
  spawnError.catch(() => {});
  const handle = {
    pid: child.pid,
    port,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 5_000))]);
        if (!done) child.kill("SIGKILL");
      }
      const result = await exited;
      fs.rmSync(runDir, { recursive: true, force: true });
      return result;
    },
  };
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`kamailio exited (code ${child.exitCode}, signal ${child.signalCode}) before listening:\n${output()}`);
    }
    if (isListening("udp", port)) return handle;
    await Promise.race([new Promise((r) => setTimeout(r, 100)), spawnError]);
  }
  await handle.stop();
  throw new Error(`kamailio did not listen on udp:127.0.0.1:${port} within ${readyTimeoutMs} ms:\n${output()}`);
}
