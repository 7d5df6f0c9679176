// `npm run bench -- --scenario flood`: an OPTIONS flood from one source next
// to normal calls from another, against a server running
// examples/anti-flood.js (pike + an htable ban list in front of a stateful
// relay). Sources are loopback addresses other than the server's
// 127.0.0.1, which the script never counts (is_myself_srcip):
//   - calls: sipp's built-in UAC on 127.0.0.3 → server → sipp's built-in
//     UAS on 127.0.0.1:5080 (INVITE/100/180/200/ACK/BYE/200 per call);
//   - flood: sipp on 127.0.0.2 sending bench/sipp/options-flood.xml, one
//     OPTIONS per call, no retransmissions, 200 ms to be answered.
// One phase runs the calls alone, the next the calls and the flood
// together, each for the same bounded duration on the same server.
import path from "node:path";
import { REPO_ROOT, isAlive, processTreeCpuSeconds, runCallsThroughUas, startSipp, udpReceiveBufferErrors } from "./sipp.mjs";
import { processTreeRssBytes } from "./soak.mjs";

export const FLOOD_SCRIPT = path.join(REPO_ROOT, "examples", "anti-flood.js");
const FLOOD_SCENARIO = path.join(REPO_ROOT, "bench", "sipp", "options-flood.xml");
export const FLOOD_SOURCE_IP = "127.0.0.2";
export const CALLS_SOURCE_IP = "127.0.0.3";
/** examples/anti-flood.js's NEXT_HOP. */
const UAS_PORT = 5080;
const RECV_TIMEOUT_MS = 10_000;

/**
 * pike's density for the benchmark, on both servers: 300 requests per 2 s
 * window from one address (Kamailio's default is 30) so that the call
 * source, 3 requests per call, is not taken for a flood below 50 calls/s.
 */
export const BENCH_PIKE_DENSITY = 300;

/** The ALERT lines of examples/anti-flood.js: one per ban. */
export function banCount(output) {
  return (output.match(/ALERT: pike blocking/g) ?? []).length;
}

/**
 * One phase against the server on `port` (root process `pid`): the calls at
 * `callRate` for `durationS`, with the flood at `floodRate` alongside when
 * it is positive. Samples the server's resident memory every second.
 * shedCount() reads the requests the server answered 503 for overload so
 * far (absent: it does not shed).
 */
export async function floodPhase({ port, pid, callRate, floodRate, durationS, output, shedCount }) {
  const bansBefore = banCount(output());
  const shedBefore = shedCount?.() ?? null;
  const dropsBefore = udpReceiveBufferErrors();
  const cpuBefore = processTreeCpuSeconds(pid);
  let rssMax = processTreeRssBytes(pid);
  const rssStart = rssMax;
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, processTreeRssBytes(pid));
  }, 1000);
  const started = performance.now();
  const flood =
    floodRate > 0
      ? await startSipp({
          scenarioFile: FLOOD_SCENARIO,
          remotePort: port,
          calls: floodRate * durationS,
          rate: floodRate,
          timeoutS: durationS + 20,
          recvTimeoutMs: 1000,
          // The last -i wins: the flood's own source address. -l: calls waiting for an answer.
          extraArgs: ["-i", FLOOD_SOURCE_IP, "-nr", "-l", String(Math.max(1000, floodRate))],
        })
      : undefined;
  try {
    const calls = await runCallsThroughUas({
      targetPort: port,
      uasPort: UAS_PORT,
      calls: callRate * durationS,
      rate: callRate,
      recvTimeoutMs: RECV_TIMEOUT_MS,
      uac: { extraArgs: ["-i", CALLS_SOURCE_IP] },
    });
    const floodRun = flood ? await flood.finished : undefined;
    const wallS = (performance.now() - started) / 1000;
    return {
      calls,
      flood: floodRun,
      cpuShare: (processTreeCpuSeconds(pid) - cpuBefore) / wallS,
      rssStartMb: rssStart / 2 ** 20,
      rssMaxMb: rssMax / 2 ** 20,
      bans: banCount(output()) - bansBefore,
      shed: shedBefore === null ? null : shedCount() - shedBefore,
      kernelDrops: udpReceiveBufferErrors() - dropsBefore,
      alive: isAlive(pid),
    };
  } finally {
    clearInterval(sampler);
    if (flood) await flood.stop().catch(() => {});
  }
}
