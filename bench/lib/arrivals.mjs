// Open-loop arrivals for the in-process noisy-neighbour benches
// (bench/noisy-neighbour.mjs, bench/spike-exec-modes.mjs): a fixed-rate
// schedule per tenant, delivered at its times from a generator thread.
import { once } from "node:events";
import { Worker } from "node:worker_threads";

const now = () => performance.now();

/**
 * Fixed-rate arrivals for each tenant over the window, merged in time order
 * (ms from the start). rates: [{ tenant, rate, phase }], phase in [0, 1)
 * staggers tenants so that their first messages do not coincide.
 */
export function fixedRateSchedule(rates, seconds) {
  const events = [];
  for (const { tenant, rate, phase } of rates) {
    const interval = 1000 / rate;
    for (let t = phase * interval; t < seconds * 1000; t += interval) events.push({ tenant, at: t });
  }
  return events.sort((x, y) => x.at - y.at);
}

// The arrival generator runs on its own thread, sleeps with Atomics.wait
// (sub-millisecond, no busy loop) and posts each due batch to the main thread,
// whose event loop wakes up for it as it would for a datagram. While the main
// thread is blocked, arrivals queue up and are handled in order afterwards,
// exactly like datagrams in a socket buffer.
const ARRIVAL_GENERATOR = `
const { parentPort } = require("node:worker_threads");
const clock = () => performance.timeOrigin + performance.now();
const sleeper = new Int32Array(new SharedArrayBuffer(4));
parentPort.once("message", ({ startAbs, at }) => {
  let next = 0;
  while (next < at.length) {
    const wait = startAbs + at[next] - clock();
    if (wait > 0.02) Atomics.wait(sleeper, 0, 0, wait);
    const due = clock() - startAbs;
    let end = next;
    while (end < at.length && at[end] <= due) end++;
    if (end > next) {
      parentPort.postMessage([next, end]);
      next = end;
    }
  }
});
`;

/**
 * Delivers the events at their scheduled times. handler(event, arrivalMs)
 * returns undefined (finished synchronously) or a promise; arrivalMs is the
 * scheduled arrival in performance.now() time, so latency = finish - arrival
 * includes any time the message waited for a blocked main thread.
 * Resolves with the window length in ms (until the last handler settled).
 */
export async function deliverOnSchedule(events, handler) {
  const generator = new Worker(ARRIVAL_GENERATOR, { eval: true });
  await once(generator, "online");
  const t0 = now() + 20;
  const pending = [];
  await new Promise((resolve, reject) => {
    generator.on("error", reject);
    generator.on("message", ([from, to]) => {
      for (let i = from; i < to; i++) {
        const result = handler(events[i], t0 + events[i].at);
        if (result) pending.push(result);
      }
      if (to === events.length) resolve();
    });
    generator.postMessage({ startAbs: performance.timeOrigin + t0, at: Float64Array.from(events, (e) => e.at) });
  });
  await Promise.all(pending);
  const windowMs = now() - t0;
  await generator.terminate();
  return windowMs;
}
