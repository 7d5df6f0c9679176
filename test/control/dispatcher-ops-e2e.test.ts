/**
 * `ksr ctl dispatcher list|set-state|reload` and `ksr ctl htable reload`
 * against running servers (`ksr run script.js`, the front of a pool and a
 * shard, in-process tenants), the dispatcher gauges of /metrics, and the
 * effect of set-state on selection: the script answers each OPTIONS with
 * the destination round robin picked.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tenantDir } from "../tenants/fixtures.js";
import { ask } from "../tenants-e2e/harness.js";
import { cliTestbed } from "../tenants-e2e/cli-harness.js";
import { ctlRunner } from "./ctl-runner.js";

const { cli, startKsr, peer } = cliTestbed();
const { ctl, json } = ctlRunner(cli);

const SCRIPT = `function ksr_request_route() {
  KSR.htable.sht_seti("seen", "n", 1);
  var rc = KSR.dispatcher.ds_select_dst(1, 4);
  KSR.sl.sl_send_reply(200, "ds " + rc + " " + KSR.pv.get("$du"));
}
`;

const FIRST = "sip:127.0.0.1:5071";
const SECOND = "sip:127.0.0.1:5072";
const THIRD = "sip:127.0.0.1:5073";
const LIST = `# set destination flags priority attrs
1 ${FIRST} 0 10 duid=one;weight=50
1 ${SECOND} 0 5 duid=two
`;


type ListView = { tenant: string; file: string; sets: { id: number; destinations: { uri: string; flags: string; state: string; probing: boolean; priority: number; attrs: { body: string; duid?: string; weight: number } }[] }[] }[];

/** The destinations of every set of each tenant listed, as "tenant set uri flags". */
function flat(list: ListView): string[] {
  return list.flatMap((t) => t.sets.flatMap((s) => s.destinations.map((d) => `${t.tenant} ${s.id} ${d.uri} ${d.flags}`)));
}

describe("ksr ctl dispatcher against ksr run script.js --dispatcher-list", () => {
  it("lists, sets states that selection then follows, reloads (a bad file keeps the old list), exports the states; htable reload says there is no database", async () => {
    const dir = tenantDir();
    const script = dir.write("lb.js", SCRIPT);
    const list = dir.write("ds.list", LIST);
    const socket = path.join(dir.dir, "ksr.ctl");
    const { findFreePort } = await import("../../bench/lib/sipp.mjs");
    const metricsPort = await findFreePort();
    const ksr = await startKsr(
      [script, "--listen", "udp:127.0.0.1:0", "--control", socket, "--metrics", String(metricsPort), "--dispatcher-list", list, "--dispatcher-param", "reload_delta=0", "--no-supervise"],
      { ready: /running .* on udp:127\.0\.0\.1:(\d+)/ },
    );
    const client = await peer();
    const picks = async (n: number, tag: string) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push((await ask(client, ksr.udpPort, { method: "OPTIONS", callId: `${tag}-${i}` })).reason);
      return out;
    };
    expect(new Set(await picks(4, "before"))).toEqual(new Set([`ds 1 ${FIRST}`, `ds 1 ${SECOND}`]));

    const listed = json<ListView>(socket, ["dispatcher", "list"]);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ tenant: "default", file: list });
    expect(listed[0]!.sets[0]!.destinations[0]).toMatchObject({ uri: FIRST, flags: "AX", state: "active", probing: false, priority: 10, attrs: { body: "duid=one;weight=50", duid: "one", weight: 50 } });
    expect(flat(listed)).toEqual([`default 1 ${FIRST} AX`, `default 1 ${SECOND} AX`]);
    expect(ctl(socket, ["dispatcher", "list"]).stdout).toMatch(new RegExp(`^TENANT +SET +URI +FLAGS +PRIORITY +ATTRS\\ndefault +1 +${FIRST} +AX +10 +duid=one;weight=50\\n`));

    // Inactive and probing: round robin skips it.
    expect(json<{ flags: string }>(socket, ["dispatcher", "set-state", "ip", "1", FIRST]).flags).toBe("IP");
    expect(ctl(socket, ["dispatcher", "set-state", "d", "1", SECOND]).stdout).toBe(`tenant default: set 1 ${SECOND}: DX\n`);
    expect(flat(json<ListView>(socket, ["dispatcher", "list"]))).toEqual([`default 1 ${FIRST} IP`, `default 1 ${SECOND} DX`]);
    expect(await picks(2, "none")).toEqual(["ds -1 null", "ds -1 null"]);
    expect(json<{ flags: string }>(socket, ["--tenant", "default", "dispatcher", "set-state", "a", "1", SECOND]).flags).toBe("AX");
    expect(await picks(3, "second")).toEqual([`ds 1 ${SECOND}`, `ds 1 ${SECOND}`, `ds 1 ${SECOND}`]);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain(`ksr_dispatcher_destination_up{tenant="default",set="1",destination="${FIRST}"} 0\n`);
    expect(metrics).toContain(`ksr_dispatcher_destination_up{tenant="default",set="1",destination="${SECOND}"} 1\n`);
    expect(metrics).toContain(`ksr_dispatcher_destination_state{tenant="default",set="1",destination="${FIRST}"} 9\n`);
    expect(metrics).toContain(`ksr_dispatcher_destinations_unexported{tenant="default"} 0\n`);

    // Operator mistakes.
    expect(ctl(socket, ["dispatcher", "set-state", "x", "1", FIRST]).stderr).toContain('"x" is not a destination state');
    expect(ctl(socket, ["dispatcher", "set-state", "ix", "1", FIRST]).stderr).toContain('"ix" is not a destination state');
    expect(ctl(socket, ["dispatcher", "set-state", "a", "9", FIRST]).stderr).toContain("tenant default: no dispatcher set 9 (sets: 1)");
    expect(ctl(socket, ["dispatcher", "set-state", "a", "1", "sip:127.0.0.9"]).stderr).toContain("tenant default: dispatcher set 1 has no destination sip:127.0.0.9");
    expect(ctl(socket, ["--tenant", "zz", "dispatcher", "list"]).stderr).toContain('no tenant "zz" (tenants: default)');

    // Reload: a third destination; states start again from the file.
    dir.write("ds.list", `${LIST}1 ${THIRD}\n`);
    expect(json<{ sets: number; destinations: number }>(socket, ["dispatcher", "reload"])).toMatchObject({ sets: 1, destinations: 3 });
    expect(flat(json<ListView>(socket, ["dispatcher", "list"]))).toEqual([`default 1 ${FIRST} AX`, `default 1 ${SECOND} AX`, `default 1 ${THIRD} AX`]);
    dir.write("ds.list", `1 ${FIRST}\nnot-a-set sip:127.0.0.1\n`);
    const bad = ctl(socket, ["dispatcher", "reload"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`tenant default: dispatcher list not reloaded, the old one stays: ${list}:2:`);
    expect(flat(json<ListView>(socket, ["dispatcher", "list"]))).toHaveLength(3);

    // htable reload: nothing to reload from.
    const htable = ctl(socket, ["htable", "reload", "seen"]);
    expect(htable.status).toBe(1);
    expect(htable.stderr).toContain("tenant default: htable seen has no database to reload from");
    expect(ctl(socket, ["htable", "reload", "nope"]).stderr).toContain('tenant default has no htable "nope"');
    expect(await ksr.stop()).toBe(0);
  }, 60_000);
});

const TENANTS = `tenants:
  - id: a
    script: lb.js
    workers: 2
    match: { domains: [a.example] }
    dispatcher: { list: ds.list, params: { reload_delta: 0 } }
  - id: b
    script: lb.js
    match: { domains: [b.example] }
    dispatcher: { list: ds.list }
  - id: c
    script: lb.js
    match: { domains: [c.example] }
    dispatcher: { list: ds.list }
  - id: d
    script: lb.js
    match: { domains: [d.example] }
`;

describe("ksr ctl dispatcher against tenants", () => {
  it("front of a pool and a shard: set-state reaches every worker of the tenant and no other tenant", async () => {
    const dir = tenantDir();
    dir.write("lb.js", SCRIPT);
    dir.write("ds.list", LIST);
    const file = dir.write("tenants.yaml", TENANTS);
    const socket = path.join(dir.dir, "ksr.ctl");
    const ksr = await startKsr(["--tenants", file, "--shards", "1", "--control", socket, "--no-supervise"]);
    const client = await peer();

    expect(flat(json<ListView>(socket, ["dispatcher", "list"])).filter((l) => l.endsWith("AX"))).toHaveLength(6);
    expect(json<ListView>(socket, ["dispatcher", "list"]).map((t) => t.tenant)).toEqual(["a", "b", "c"]);
    expect(ctl(socket, ["--tenant", "d", "dispatcher", "list"]).stderr).toContain("tenant d has no dispatcher list");
    expect(ctl(socket, ["dispatcher", "set-state", "i", "1", FIRST]).stderr).toContain("say which tenant (--tenant): a, b, c, d");

    const applied = json<{ flags: string; workers: string[] }>(socket, ["--tenant", "a", "dispatcher", "set-state", "i", "1", FIRST]);
    expect(applied.flags).toBe("IX");
    expect(applied.workers.sort()).toEqual(["a#0", "a#1"]);
    // Whichever worker takes a request, it skips the inactive one.
    for (let i = 0; i < 6; i++) expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@a.example", callId: `pool-${i}` })).reason).toBe(`ds 1 ${SECOND}`);
    const stats = json<Record<string, Record<string, number>>>(socket, ["--tenant", "a", "stats"]);
    expect(stats["dispatcher"]![`ksr_dispatcher_destination_up{tenant="a",set="1",destination="${FIRST}"}`]).toBe(0);
    expect(stats["dispatcher"]![`ksr_dispatcher_destination_up{tenant="a",set="1",destination="${SECOND}"}`]).toBe(1);

    // b and c share a shard: b's change leaves c alone.
    expect(json<{ workers: string[] }>(socket, ["--tenant", "b", "dispatcher", "set-state", "d", "1", SECOND]).workers).toHaveLength(1);
    expect(flat(json<ListView>(socket, ["dispatcher", "list"]))).toEqual([
      `a 1 ${FIRST} IX`,
      `a 1 ${SECOND} AX`,
      `b 1 ${FIRST} AX`,
      `b 1 ${SECOND} DX`,
      `c 1 ${FIRST} AX`,
      `c 1 ${SECOND} AX`,
    ]);
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@b.example", callId: "b-1" })).reason).toBe(`ds 1 ${FIRST}`);

    // Reload in every worker of the pool; a bad file is refused by each and the states stay.
    dir.write("ds.list", "1 sip:127.0.0.1:5071 99\n");
    const bad = ctl(socket, ["--tenant", "a", "dispatcher", "reload"]);
    expect(bad.stderr).toContain("tenant a: dispatcher list not reloaded, the old one stays:");
    expect(bad.stderr).toContain("ds.list:1:");
    dir.write("ds.list", `1 ${THIRD}\n`);
    const reloaded = json<{ destinations: number; workers: string[] }>(socket, ["--tenant", "a", "dispatcher", "reload"]);
    expect(reloaded.destinations).toBe(1);
    expect(reloaded.workers.sort()).toEqual(["a#0", "a#1"]);
    for (let i = 0; i < 4; i++) expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@a.example", callId: `re-${i}` })).reason).toBe(`ds 1 ${THIRD}`);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("in-process tenants: each tenant's states apart", async () => {
    const dir = tenantDir();
    dir.write("lb.js", SCRIPT);
    dir.write("ds.list", LIST);
    const file = dir.write("tenants.yaml", TENANTS.replace("    workers: 2\n", ""));
    const socket = path.join(dir.dir, "ksr.ctl");
    const ksr = await startKsr(["--tenants", file, "--isolation", "in-process", "--control", socket, "--no-supervise"]);
    const client = await peer();
    expect(ctl(socket, ["--tenant", "c", "dispatcher", "set-state", "D", "1", FIRST]).stdout).toBe(`tenant c: set 1 ${FIRST}: DX\n`);
    expect(flat(json<ListView>(socket, ["dispatcher", "list"])).filter((l) => !l.endsWith("AX"))).toEqual([`c 1 ${FIRST} DX`]);
    // "all": every destination of the set, as Kamailio's dispatcher.set_state.
    expect(ctl(socket, ["--tenant", "b", "dispatcher", "set-state", "tp", "1", "all"]).stdout).toBe("tenant b: set 1 all: TP\n");
    expect(flat(json<ListView>(socket, ["--tenant", "b", "dispatcher", "list"]))).toEqual([`b 1 ${FIRST} TP`, `b 1 ${SECOND} TP`]);
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@c.example", callId: "c-1" })).reason).toBe(`ds 1 ${SECOND}`);
    expect(ctl(socket, ["--tenant", "c", "htable", "reload", "seen"]).stderr).toContain("tenant c: htable seen has no database to reload from");
    expect(await ksr.stop()).toBe(0);
  }, 60_000);
});
