/**
 * Dispatcher probing in `ksr run --workers 2` (real processes, UDP on
 * 127.0.0.1): each worker probes its own copy of the list, and the front
 * must hand each ping's response back to the worker that sent it (by the
 * Call-ID the worker chose). A peer of the test answers, is stopped, and
 * comes back: both workers log dispatcher:dst-down once, then
 * dispatcher:dst-up once; while the peer answers, no worker goes down (a
 * response handed to the wrong worker would be a failed ping there).
 * In a tenants shard, two tenants probe their own lists; the one whose
 * egress policy keeps it off loopback never sends a ping (503: down).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kamailioVersion, startKamailio } from "../../bench/lib/kamailio.mjs";
import { REPO_ROOT, ensureBuilt, findFreePort, startKsr, type KsrProcess } from "../../bench/lib/sipp.mjs";
import { optionsPeer, until } from "../e2e/sip-client.js";

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

describe("dispatcher probing in worker processes", () => {
  it("with --workers 2 each worker takes the silent destination down once and up again once", async () => {
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

  it("in a tenants shard each tenant probes its own list, under its own egress policy", async () => {
    ensureBuilt();
    let peer = await optionsPeer();
    const other = await optionsPeer();
    const write = (name: string, text: string): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      return file;
    };
    write("a.list", `1 sip:127.0.0.1:${peer.port}\n`);
    write("b.list", `1 sip:127.0.0.1:${other.port}\n`);
    write("a.js", SCRIPT.replace("probing event", "tenant a probing event"));
    write("b.js", SCRIPT.replace("probing event", "tenant b probing event"));
    const params = "{ ds_ping_interval: 1, ds_probing_mode: 1, ds_probing_threshold: 1, event_callback: ksr_ds_event }";
    const tenants = write(
      "tenants.yaml",
      [
        "tenants:",
        "  - id: a",
        "    script: a.js",
        // Loopback is closed to a tenant unless its egress policy opens it.
        "    egress: { allow: [127.0.0.0/8] }",
        '    match: { domains: ["a.example"] }',
        `    dispatcher: { list: a.list, params: ${params} }`,
        "  - id: b",
        "    script: b.js",
        '    match: { domains: ["b.example"] }',
        `    dispatcher: { list: b.list, params: ${params} }`,
        "",
      ].join("\n"),
    );
    let ksr: KsrProcess | undefined;
    try {
      ksr = await startKsr({
        script: `--tenants=${tenants}`,
        port: await findFreePort(),
        readiness: "sockets",
        logLevel: "info",
        extraArgs: ["--isolation", "process", "--shards", "1", "--t1-ms", "20"],
      });
      const out = (): string => ksr!.output();
      // b's pings are refused by its egress policy (503): down at its first round, never sent.
      await until("tenant b to go down", () => count(out(), "tenant b probing event dispatcher:dst-down") >= 1);
      await until("four pings of tenant a", () => peer.received() >= 4);
      expect(count(out(), "tenant a probing event dispatcher:dst-down")).toBe(0);
      peer.socket.close();
      await until("tenant a to go down", () => count(out(), "tenant a probing event dispatcher:dst-down") >= 1);
      peer = await optionsPeer(peer.port);
      await until("tenant a to come back", () => count(out(), "tenant a probing event dispatcher:dst-up") >= 1);
      expect(count(out(), "tenant a probing event dispatcher:dst-down")).toBe(1);
      expect(count(out(), "tenant b probing event dispatcher:dst-down")).toBe(1);
      expect(count(out(), "tenant b probing event dispatcher:dst-up")).toBe(0);
      expect(other.received()).toBe(0);
    } finally {
      await ksr?.stop();
      peer.socket.close();
      other.socket.close();
    }
  }, 90_000);
});

const KAMAILIO_CFG = path.join(REPO_ROOT, "test", "interop", "cfg", "kamailio-dispatcher-probing.cfg");

describe.each(["ksr", "kamailio"] as const)("dispatcher probing, the same list and parameters: %s", (server) => {
  it("a destination that stops answering goes down once and comes back up once", async () => {
    if (server === "kamailio" && kamailioVersion() === null) throw new Error("kamailio is not installed: the reference run cannot start");
    if (server === "ksr") ensureBuilt();
    let peer = await optionsPeer();
    const list = path.join(dir, `${server}.list`);
    fs.writeFileSync(list, `1 sip:127.0.0.1:${peer.port}\n`);
    const script = path.join(dir, `${server}-probe.js`);
    fs.writeFileSync(script, SCRIPT);
    const port = await findFreePort();
    let proc: KsrProcess | undefined;
    try {
      proc =
        server === "kamailio"
          ? await startKamailio({ script, port, children: 1, cfgTemplate: KAMAILIO_CFG, defines: [`DS_LIST="${list}"`] })
          : await startKsr({
              script,
              port,
              logLevel: "info",
              extraArgs: [
                "--t1-ms",
                "20",
                "--dispatcher-list",
                list,
                ...["ds_ping_interval=1", "ds_probing_mode=1", "ds_probing_threshold=1", "event_callback=ksr_ds_event"].flatMap((p) => ["--dispatcher-param", p]),
              ],
            });
      const out = (): string => proc!.output();
      await until("three pings", () => peer.received() >= 3);
      expect(count(out(), "probing event dispatcher:dst-down")).toBe(0);
      peer.socket.close();
      await until("the destination to go down", () => count(out(), "probing event dispatcher:dst-down") >= 1);
      peer = await optionsPeer(peer.port);
      await until("the destination to come back", () => count(out(), "probing event dispatcher:dst-up") >= 1);
      expect(count(out(), "probing event dispatcher:dst-down")).toBe(1);
      expect(count(out(), "probing event dispatcher:dst-up")).toBe(1);
    } finally {
      await proc?.stop();
      peer.socket.close();
    }
  }, 90_000);
});
