/**
 * Dispatcher probing in `ksr run --workers 2` (real processes, UDP on
 * 127.0.0.1): each worker probes its own copy of the list, and the front
 * must hand each ping's response back to the worker that sent it (by the
 * Call-ID the worker chose). A peer of the test answers, is stopped, and
 * comes back: both workers log dispatcher:dst-down once, then
 * dispatcher:dst-up once; while the peer answers, no worker goes down (a
 * response handed to the wrong worker would be a failed ping there).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureBuilt, findFreePort, startKsr, type KsrProcess } from "../../bench/lib/sipp.mjs";
import { optionsPeer, until } from "../helpers/options-peer.js";

const SCRIPT = `
function ksr_request_route() {
\tKSR.sl.sl_send_reply(200, "OK");
}

function ksr_ds_event(evname) {
\tKSR.info("probing event " + evname + "\\n");
}
`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-ds-probing-interop-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const count = (text: string, needle: string): number => text.split(needle).length - 1;

describe("dispatcher probing with --workers 2", () => {
  it("each worker takes the silent destination down once and up again once", async () => {
    ensureBuilt();
    let peer = await optionsPeer();
    const list = path.join(dir, "probe.list");
    fs.writeFileSync(list, `1 sip:127.0.0.1:${peer.port}\n`);
    const script = path.join(dir, "probe.js");
    fs.writeFileSync(script, SCRIPT);
    let ksr: KsrProcess | undefined;
    try {
      ksr = await startKsr({
        script,
        port: await findFreePort(),
        logLevel: "info",
        extraArgs: [
          "--workers",
          "2",
          "--t1-ms",
          "20",
          "--dispatcher-list",
          list,
          ...["ds_ping_interval=1", "ds_probing_mode=1", "ds_probing_threshold=1", "event_callback=ksr_ds_event"].flatMap((p) => ["--dispatcher-param", p]),
        ],
      });
      const out = (): string => ksr!.output();
      // Two workers, one ping each per second. With ds_probing_threshold 1 a
      // single response that went to the wrong worker would take it down:
      // after four rounds of each, none may have.
      await until("four rounds of pings from both workers", () => peer.received() >= 8);
      expect(count(out(), "probing event dispatcher:dst-down")).toBe(0);
      peer.socket.close();
      await until("both workers to take it down", () => count(out(), "probing event dispatcher:dst-down") >= 2);
      peer = await optionsPeer(peer.port);
      await until("both workers to bring it up", () => count(out(), "probing event dispatcher:dst-up") >= 2);
      expect(count(out(), "probing event dispatcher:dst-down")).toBe(2);
      expect(count(out(), "probing event dispatcher:dst-up")).toBe(2);
    } finally {
      await ksr?.stop();
      peer.socket.close();
    }
  }, 90_000);
});
