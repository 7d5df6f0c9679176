/**
 * The dispatcher's probing end to end on 127.0.0.1: a server of one
 * script pings a UDP peer of the test with OPTIONS every second
 * (ds_ping_interval 1, ds_probing_mode 1). The peer answers, then is
 * stopped: after ds_probing_threshold unanswered pings (each ended by
 * timer F, 64*T1 with T1 = 20 ms) the destination is inactive and the
 * event_callback runs once with dispatcher:dst-down. The peer comes back
 * on the same port: the next answered ping brings the destination up
 * (dispatcher:dst-up). No response to a ping reaches the reply route.
 * The same over TCP (;transport=tcp): a peer that stops listening refuses
 * the ping's connection, which counts as an unanswered ping at once.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DS_INACTIVE, DS_PROBING } from "../../host/modules/dispatcher/list.js";
import { configureDispatcher, dispatcherOf, dispatcherSettingsOf, removeDispatcher } from "../../host/modules/dispatcher/tenants.js";
import { proxyOptionsFromTimers } from "../../host/proxy/proxy.js";
import { HostRouteRunner, startServer } from "./harness.js";
import { optionsPeer, tcpOptionsPeer, until } from "./sip-client.js";

const dir = mkdtempSync(path.join(tmpdir(), "ksr-ds-probing-"));
const TENANT = "ds-probing-e2e";
afterAll(() => {
  removeDispatcher(TENANT);
  rmSync(dir, { recursive: true, force: true });
});

describe("dispatcher probing (e2e)", () => {
  it("takes a destination that stops answering down after the threshold, once, and up again when it answers", async () => {
    let peer = await optionsPeer();
    const uri = `sip:127.0.0.1:${peer.port}`;
    const list = path.join(dir, "probe.list");
    writeFileSync(list, `1 ${uri}\n`);
    configureDispatcher(
      TENANT,
      list,
      dispatcherSettingsOf({ ds_ping_interval: 1, ds_probing_mode: 1, ds_probing_threshold: 2, event_callback: "ksr_ds_event" }),
    );
    const events: string[] = [];
    let replyRoutes = 0;
    const runner = new HostRouteRunner({
      ksr_request_route: () => {},
      ksr_reply_route: () => {
        replyRoutes++;
      },
      ksr_ds_event: (ctx) => {
        events.push(`${ctx.eventName} ${ctx.requestUri}`);
      },
    });
    const server = await startServer(runner, { tenantId: TENANT }, { proxy: proxyOptionsFromTimers({ t1Ms: 20 }) });
    const flags = (): number => dispatcherOf(TENANT)!.list.sets.get(1)!.dests[0]!.flags;
    try {
      await until("two answered pings", () => peer.received() >= 2);
      expect(flags()).toBe(DS_PROBING);
      expect(events).toEqual([]);

      peer.socket.close();
      await until("the destination to go down", () => events.length >= 1);
      expect(events).toEqual([`dispatcher:dst-down ${uri}`]);
      expect(flags()).toBe(DS_INACTIVE | DS_PROBING);

      peer = await optionsPeer(Number(uri.split(":")[2]));
      await until("the destination to come back", () => events.length >= 2);
      expect(events).toEqual([`dispatcher:dst-down ${uri}`, `dispatcher:dst-up ${uri}`]);
      expect(flags()).toBe(DS_PROBING);
      expect(replyRoutes).toBe(0);
    } finally {
      await server.stop();
      peer.socket.close();
    }
  }, 60_000);

  it("probes a ;transport=tcp destination over TCP: a refused connection takes it down, a listening peer brings it up", async () => {
    let peer = await tcpOptionsPeer();
    const port = peer.port;
    const uri = `sip:127.0.0.1:${port};transport=tcp`;
    const list = path.join(dir, "probe-tcp.list");
    writeFileSync(list, `1 ${uri}\n`);
    configureDispatcher(TENANT, list, dispatcherSettingsOf({ ds_ping_interval: 1, ds_probing_mode: 1, ds_probing_threshold: 2, event_callback: "ksr_ds_event" }));
    const events: string[] = [];
    const runner = new HostRouteRunner({
      ksr_request_route: () => {},
      ksr_ds_event: (ctx) => {
        events.push(`${ctx.eventName} ${ctx.requestUri}`);
      },
    });
    const server = await startServer(runner, { tenantId: TENANT }, { proxy: proxyOptionsFromTimers({ t1Ms: 20 }) });
    const flags = (): number => dispatcherOf(TENANT)!.list.sets.get(1)!.dests[0]!.flags;
    try {
      await until("two pings answered over TCP", () => peer.received() >= 2);
      expect(flags()).toBe(DS_PROBING);
      await peer.close();
      await until("the destination to go down", () => events.length >= 1);
      expect(events).toEqual([`dispatcher:dst-down ${uri}`]);
      expect(flags()).toBe(DS_INACTIVE | DS_PROBING);
      peer = await tcpOptionsPeer(port);
      await until("the destination to come back", () => events.length >= 2);
      expect(events).toEqual([`dispatcher:dst-down ${uri}`, `dispatcher:dst-up ${uri}`]);
      expect(peer.received()).toBeGreaterThanOrEqual(1);
    } finally {
      await server.stop();
      await peer.close();
    }
  }, 60_000);
});
