// Soak run for `npm run bench -- --scenario soak`: the stateful relay load
// (sipp UAC → server → sipp UAS) held at one rate for minutes, with the
// resident memory of the server's process tree sampled along the way, to
// show that memory is flat once the transaction timers (32 s over UDP) and
// the wait timer have reached their steady state.
import fs from "node:fs";
import { processTreeCpuSeconds, runCallsThroughUas } from "./sipp.mjs";

/** Resident set size (bytes) of a process and all its live descendants, from /proc; 0 when it is gone. */
export function processTreeRssBytes(rootPid) {
  const parentOf = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "latin1");
      // The command name (field 2) may hold spaces and parentheses: fields count from the last ")".
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parentOf.set(Number(entry), Number(fields[1]));
    } catch {
      // exited while we were reading
    }
  }
  const inTree = (pid) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parentOf.get(p) ?? 0, hops++) if (p === rootPid) return true;
    return false;
  };
  let total = 0;
  for (const pid of parentOf.keys()) {
    if (!inTree(pid)) continue;
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "latin1"));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/**
 * Whether memory is flat after warm-up: the highest RSS of the second half
 * of the run is at most `tolerance` above the highest RSS between the end
 * of the warm-up and the half. The warm-up is the first minute or the
 * first fifth of the run, whichever is longer: a call's transactions stay
 * 32 s (RFC 3261 timers over UDP) and 5 s more in full (the wait time), so
 * the table and the heap fill for about 40 s before they can level off.
 */
export function rssVerdict(samples, durationS, tolerance = 0.1) {
  const warmUpS = Math.max(60, durationS / 5);
  const middle = samples.filter((s) => s.atS >= warmUpS && s.atS < durationS / 2);
  const late = samples.filter((s) => s.atS >= durationS / 2);
  if (middle.length === 0 || late.length === 0) return { flat: undefined, warmUpS, reason: "run too short to judge (needs samples past the warm-up and in the second half)" };
  const middleMax = Math.max(...middle.map((s) => s.rssBytes));
  const lateMax = Math.max(...late.map((s) => s.rssBytes));
  const growth = lateMax / middleMax - 1;
  return { flat: growth <= tolerance, warmUpS, growth, middleMax, lateMax };
}

/**
 * Runs `rate` calls/s for `minutes` through the server whose root process is
 * serverPid (listening on targetPort, relaying to a sipp UAS on uasPort),
 * sampling the tree's RSS every sampleEveryS seconds.
 */
export async function soakRelay({ serverPid, targetPort, uasPort, rate, minutes, sampleEveryS = 10, recvTimeoutMs = 10_000 }) {
  const durationS = minutes * 60;
  const samples = [];
  const started = performance.now();
  const sample = () => samples.push({ atS: (performance.now() - started) / 1000, rssBytes: processTreeRssBytes(serverPid) });
  sample();
  const timer = setInterval(sample, sampleEveryS * 1000);
  const cpuBefore = processTreeCpuSeconds(serverPid);
  let result;
  try {
    result = await runCallsThroughUas({ targetPort, uasPort, calls: Math.round(rate * durationS), rate, recvTimeoutMs });
  } finally {
    clearInterval(timer);
  }
  sample();
  const cpuS = processTreeCpuSeconds(serverPid) - cpuBefore;
  return { result, samples, durationS, cpuUsPerCall: (cpuS * 1e6) / Math.round(rate * durationS), verdict: rssVerdict(samples, durationS) };
}

/** The RSS curve as a Markdown table (one row per minute) and a one-line sketch of every sample. */
export function formatRssCurve(samples) {
  const mb = (b) => (b / 2 ** 20).toFixed(1);
  const rows = ["| time | RSS MB |", "| ---: | ---: |"];
  let nextMinute = 0;
  for (const s of samples) {
    if (s.atS + 0.5 >= nextMinute * 60 || s === samples.at(-1)) {
      rows.push(`| ${Math.floor(s.atS / 60)}:${String(Math.round(s.atS % 60)).padStart(2, "0")} | ${mb(s.rssBytes)} |`);
      nextMinute = Math.floor(s.atS / 60) + 1;
    }
  }
  const levels = "▁▂▃▄▅▆▇█";
  const max = Math.max(...samples.map((s) => s.rssBytes));
  const min = Math.min(...samples.map((s) => s.rssBytes));
  const sketch = samples.map((s) => levels[max === min ? 0 : Math.min(7, Math.floor(((s.rssBytes - min) / (max - min)) * 8))]).join("");
  return `${rows.join("\n")}\n\nevery ${samples.length > 1 ? Math.round(samples[1].atS - samples[0].atS) : 0} s, ${mb(min)}–${mb(max)} MB: ${sketch}`;
}
