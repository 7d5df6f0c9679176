/**
 * `ksr ctl`'s kamcmd-like commands (host/ops) against running servers, as
 * operators run them: `ksr run script.js --control` (every command), and
 * the front of worker processes (`--workers 2`, a tenants file), which
 * asks the workers and merges their answers. Each command with --json
 * where the answer's fields are checked, in text where its wording is.
 */
import { copyFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tenantDir } from "../tenants/fixtures.js";
import { ask } from "../tenants-e2e/harness.js";
import { cliTestbed } from "../tenants-e2e/cli-harness.js";
import { ctlRunner } from "./ctl-runner.js";
import { makeTestPki } from "../e2e/tls-certs.js";

const { cli, startKsr, peer } = cliTestbed();
const { ctl, json } = ctlRunner(cli);

/** Registers what REGISTERs, keeps a count per caller in the `seen` htable, checks pike, answers the rest 200. */
const SCRIPT = `function ksr_request_route() {
  if (KSR.is_REGISTER()) {
    KSR.registrar.save("location", 0);
    return;
  }
  KSR.pike.pike_check_req();
  var user = KSR.kx.get_fuser();
  KSR.htable.sht_seti("seen", user, (KSR.htable.sht_get("seen", user) || 0) + 1);
  KSR.log("dbg", "debug line of " + KSR.kx.get_callid());
  KSR.sl.sl_send_reply(200, "OK");
}
`;


const REGISTER = (contactPort: number) => ({
  method: "REGISTER",
  uri: "sip:127.0.0.1",
  headers: [`Contact: <sip:service@127.0.0.1:${contactPort}>`, "Expires: 600"],
});

describe("ksr ctl against ksr run script.js --control", () => {
  it("answers stats, uptime, version, ul, htable, tm, tcp, pike and loglevel; unknown tenants, tables and AoRs are clear errors", async () => {
    const dir = tenantDir();
    const script = dir.write("ops.js", SCRIPT);
    const socket = path.join(dir.dir, "ksr.ctl");
    const ksr = await startKsr([script, "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0", "--control", socket, "--db", ":memory:", "--no-supervise"], {
      ready: /running .* on udp:127\.0\.0\.1:(\d+)/,
    });
    const client = await peer();
    expect((await ask(client, ksr.udpPort, REGISTER(client.port))).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await ask(client, ksr.udpPort, { method: "OPTIONS", callId: `ops-call-${i}` })).status).toBe(200);

    // pike: the client's address counted on the first node of the tree (a prefix grows further only once hot).
    const pike = json<{ tenant: string; addresses: { address: string; kind: string; hitsCurrent: number; hitsPrevious: number; flooding: boolean }[] }[]>(socket, ["pike", "list"]);
    expect(pike[0]!.addresses).toHaveLength(1);
    expect(pike[0]!.addresses[0]).toMatchObject({ address: "127.*", kind: "prefix", flooding: false });
    expect(pike[0]!.addresses[0]!.hitsPrevious + pike[0]!.addresses[0]!.hitsCurrent).toBe(3);
    expect(ctl(socket, ["pike", "list"]).stdout).toMatch(/^tenant default: prefix 127\.\* hits=\d\/\d forgotten-in=\d+s\n$/);

    // stats: the metrics' counters by group, for one tenant or all.
    const stats = json<Record<string, Record<string, number>>>(socket, ["stats"]);
    expect(stats["sip"]!['ksr_sip_requests_received_total{method="REGISTER"}']).toBe(1);
    expect(stats["sip"]!['ksr_sip_requests_received_total{method="OPTIONS"}']).toBe(3);
    expect(stats["tenant"]!['ksr_tenant_route_calls_total{tenant="default"}']).toBe(4);
    expect(stats["usrloc"]!['ksr_usrloc_contacts{tenant="default"}']).toBe(1);
    const scoped = json<Record<string, Record<string, number>>>(socket, ["--tenant", "default", "stats"]);
    expect(scoped["sip"]).toBeUndefined();
    expect(scoped["htable"]!['ksr_htable_items{tenant="default"}']).toBe(1);
    expect(scoped["htable"]!['ksr_htable_table_items{tenant="default",table="seen"}']).toBe(1);
    expect(ctl(socket, ["stats"]).stdout).toContain('sip:ksr_sip_requests_received_total{method="OPTIONS"} = 3\n');

    expect(json<{ uptimeS: number; startedAt: string }>(socket, ["uptime"]).uptimeS).toBeGreaterThanOrEqual(0);
    expect(json<{ name: string; version: string; node: string }>(socket, ["version"])).toMatchObject({ name: "ksr-sandbox", node: process.versions.node });
    expect(ctl(socket, ["version"]).stdout).toMatch(/^ksr-sandbox \d+\.\d+\.\d+ \(Node\.js /);

    // ul: dump, lookup by key and by URI, rm; an AoR not there is an error.
    const dump = json<{ tenant: string; aors: { aor: string; contacts: { contact: string; expiresInS: number }[] }[] }[]>(socket, ["ul", "dump"]);
    expect(dump).toHaveLength(1);
    expect(dump[0]!.aors.map((a) => [a.aor, a.contacts.map((c) => c.contact)])).toEqual([["service", [`sip:service@127.0.0.1:${client.port}`]]]);
    expect(dump[0]!.aors[0]!.contacts[0]!.expiresInS).toBeGreaterThan(590);
    expect(ctl(socket, ["ul", "lookup", "sip:service@example.test"]).stdout).toContain(`contact: sip:service@127.0.0.1:${client.port} expires-in=`);
    const missing = ctl(socket, ["ul", "lookup", "nobody"]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('AoR "nobody" not found');
    expect(json<{ removed: number }>(socket, ["ul", "rm", "service"]).removed).toBe(1);
    expect(ctl(socket, ["ul", "dump"]).stdout).toBe("no registrations\n");

    // htable: the script's table, set, get, delete, flush; an unknown table is an error naming the known ones.
    expect(json<{ tenant: string; tables: string[] }[]>(socket, ["htable", "list"])).toEqual([{ tenant: "default", tables: ["seen"] }]);
    expect(json<{ items: { key: string; value: unknown }[] }>(socket, ["htable", "dump", "seen"]).items).toEqual([{ key: "alice", value: 3 }]);
    expect(ctl(socket, ["htable", "sets", "seen", "bob", "a b"]).stdout).toBe('bob = "a b"\n');
    expect(json<{ value: unknown }>(socket, ["htable", "seti", "seen", "carol", "-7"]).value).toBe(-7);
    expect(ctl(socket, ["htable", "seti", "seen", "carol", "seven"])).toMatchObject({ status: 1 });
    expect(json<{ value: unknown }>(socket, ["htable", "get", "seen", "bob"]).value).toBe("a b");
    expect(ctl(socket, ["htable", "delete", "seen", "bob"]).status).toBe(0);
    expect(ctl(socket, ["htable", "get", "seen", "bob"]).stderr).toContain('htable seen has no key "bob"');
    expect(ctl(socket, ["htable", "flush", "seen"]).status).toBe(0);
    expect(json<{ items: unknown[] }>(socket, ["htable", "dump", "seen"]).items).toEqual([]);
    const unknownTable = ctl(socket, ["htable", "dump", "nope"]);
    expect(unknownTable.status).toBe(1);
    expect(unknownTable.stderr).toContain('tenant default has no htable "nope" (tables: seen)');

    // tm: sl replies create no transactions.
    expect(json<{ tenant: string; serverCreated: number }[]>(socket, ["tm", "stats"])).toMatchObject([{ tenant: "default", serverCreated: 0 }]);

    // tcp: one connection of ours, listed while open.
    const tcpPort = Number(/on udp:127\.0\.0\.1:\d+, tcp:127\.0\.0\.1:(\d+)/.exec(ksr.stderr())![1]);
    const { TcpPeer } = await import("../e2e/sip-client.js");
    const tcp = await TcpPeer.connect(tcpPort);
    try {
      const list = json<{ direction: string; local: string; remote: string }[]>(socket, ["tcp", "list"]);
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({ direction: "inbound", local: `tcp:127.0.0.1:${tcpPort}` });
      expect(list[0]!.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      tcp.close();
    }

    // loglevel: the tenant's own level lets its dbg lines through; the server's stays.
    expect(ctl(socket, ["loglevel"]).stdout).toBe("server: info\ntenant default: info\n");
    expect(ksr.stderr()).not.toContain("debug line of");
    expect(ctl(socket, ["loglevel", "default", "dbg"]).stdout).toBe("server: info\ntenant default: dbg\n");
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", callId: "after-loglevel" })).status).toBe(200);
    await ksr.waitFor('script="debug line of after-loglevel"');
    expect(ctl(socket, ["loglevel", "loud"]).stderr).toContain('"loud" is not a log level');

    // An unknown tenant, for any command that takes one.
    for (const args of [["stats"], ["ul", "dump"], ["htable", "list"], ["tm", "stats"], ["loglevel", "info"]]) {
      const r = ctl(socket, ["--tenant", "zz", ...args]);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr).toContain('no tenant "zz" (tenants: default)');
    }
    expect(await ksr.stop()).toBe(0);
  }, 60_000);
});

describe("ksr ctl against the front of worker processes", () => {
  it("gathers the workers' answers: a pool shares its registrations and htables, its transactions add up; loglevel reaches the workers", async () => {
    const dir = tenantDir();
    dir.write("a.js", SCRIPT);
    dir.write("b.js", SCRIPT);
    const file = dir.write(
      "tenants.yaml",
      `tenants:
  - id: a
    script: a.js
    workers: 2
    match: { domains: [a.example] }
  - id: b
    script: b.js
    match: { domains: [b.example] }
`,
    );
    const socket = path.join(dir.dir, "ksr.ctl");
    const ksr = await startKsr(["--tenants", file, "--control", socket, "--db", path.join(dir.dir, "ksr.sqlite"), "--no-supervise"]);
    const client = await peer();
    expect((await ask(client, ksr.udpPort, { ...REGISTER(client.port), uri: "sip:a.example" })).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@a.example", callId: `pool-${i}` })).status).toBe(200);

    const stats = json<Record<string, Record<string, number>>>(socket, ["--tenant", "a", "stats"]);
    expect(stats["tenant"]!['ksr_tenant_route_calls_total{tenant="a"}']).toBe(5);
    expect(stats["tenant"]!['ksr_tenant_workers_running{tenant="a"}']).toBe(2);

    const dump = json<{ tenant: string; aors: { aor: string }[] }[]>(socket, ["ul", "dump"]);
    expect(dump.map((t) => [t.tenant, t.aors.map((a) => a.aor)])).toEqual([
      ["a", ["service"]],
      ["b", []],
    ]);
    const needsTenant = ctl(socket, ["ul", "lookup", "service"]);
    expect(needsTenant.status).toBe(1);
    expect(needsTenant.stderr).toContain("say which tenant (--tenant): a, b");
    expect(ctl(socket, ["--tenant", "a", "ul", "lookup", "service"]).status).toBe(0);
    expect(ctl(socket, ["--tenant", "b", "ul", "lookup", "service"]).stderr).toContain('tenant b: AoR "service" not found');
    // The pool's shared htable: the four requests counted, whichever worker took each.
    expect(json<{ items: { key: string; value: unknown }[] }>(socket, ["--tenant", "a", "htable", "dump", "seen"]).items).toEqual([{ key: "alice", value: 4 }]);

    const tm = json<{ tenant: string; serverCreated: number }[]>(socket, ["tm", "stats"]);
    expect(tm.map((s) => s.tenant)).toEqual(["a", "b"]);

    expect(ctl(socket, ["loglevel", "a", "dbg"]).stdout).toBe("server: info\ntenant a: dbg\n");
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@a.example", callId: "pool-dbg" })).status).toBe(200);
    await ksr.waitFor('script="debug line of pool-dbg"');
    expect(ctl(socket, ["--tenant", "zz", "tm", "stats"]).stderr).toContain('no tenant "zz" (tenants: a, b)');
    expect(await ksr.stop()).toBe(0);
  }, 60_000);
});

describe("ksr ctl and /metrics against ksr run --tenants --isolation in-process", () => {
  it("keeps each tenant's data and levels apart in one process", async () => {
    const dir = tenantDir();
    dir.write("a.js", SCRIPT);
    dir.write("b.js", SCRIPT);
    const file = dir.write(
      "tenants.yaml",
      `tenants:
  - id: a
    script: a.js
    match: { domains: [a.example] }
  - id: b
    script: b.js
    match: { domains: [b.example] }
`,
    );
    const socket = path.join(dir.dir, "ksr.ctl");
    const { findFreePort } = await import("../../bench/lib/sipp.mjs");
    const metricsPort = await findFreePort();
    const ksr = await startKsr(["--tenants", file, "--isolation", "in-process", "--control", socket, "--metrics", String(metricsPort), "--db", ":memory:", "--no-supervise"]);
    const client = await peer();
    for (let i = 0; i < 2; i++) expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@a.example", callId: `in-a-${i}` })).status).toBe(200);
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@b.example", callId: "in-b" })).status).toBe(200);

    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('ksr_tenant_route_calls_total{tenant="a"} 2\n');
    expect(text).toContain('ksr_tenant_route_calls_total{tenant="b"} 1\n');
    expect((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status).toBe(404);

    expect(json<{ items: { key: string; value: unknown }[] }>(socket, ["--tenant", "a", "htable", "dump", "seen"]).items).toEqual([{ key: "alice", value: 2 }]);
    expect(json<{ items: { key: string; value: unknown }[] }>(socket, ["--tenant", "b", "htable", "dump", "seen"]).items).toEqual([{ key: "alice", value: 1 }]);
    expect(ctl(socket, ["htable", "dump", "seen"]).stderr).toContain("say which tenant (--tenant): a, b");
    expect(ctl(socket, ["loglevel", "b", "dbg"]).stdout).toBe("server: info\ntenant b: dbg\n");
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@a.example", callId: "in-a-quiet" })).status).toBe(200);
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@b.example", callId: "in-b-loud" })).status).toBe(200);
    await ksr.waitFor('script="debug line of in-b-loud"');
    expect(ksr.stderr()).not.toContain("debug line of in-a-quiet");
    expect(await ksr.stop()).toBe(0);
  }, 60_000);
});

describe("ksr ctl tls reload", () => {
  it("reads the certificate files again as SIGHUP does; a key that does not match is refused and the old pair stays; a server without TLS says so", async () => {
    const pki = makeTestPki();
    try {
      const dir = tenantDir();
      const script = dir.write("ops.js", SCRIPT);
      const socket = path.join(dir.dir, "ksr.ctl");
      const cert = path.join(dir.dir, "live.pem");
      const key = path.join(dir.dir, "live.key");
      copyFileSync(pki.server.cert, cert);
      copyFileSync(pki.server.key, key);
      const ksr = await startKsr(
        [script, "--listen", "udp:127.0.0.1:0", "--listen", "tls:127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--control", socket, "--db", ":memory:", "--no-supervise"],
        { ready: /running .* on udp:127\.0\.0\.1:(\d+)/ },
      );
      const stats = json<Record<string, Record<string, number>>>(socket, ["stats"]);
      expect(stats["tls"]!["ksr_tls_connections"]).toBe(0);

      copyFileSync(pki.server2.cert, cert);
      copyFileSync(pki.server2.key, key);
      expect(json<{ reloaded: boolean }>(socket, ["tls", "reload"])).toEqual({ reloaded: true });
      expect(ctl(socket, ["tls", "reload"]).stdout).toBe("TLS certificate reloaded; new connections use it\n");

      copyFileSync(pki.server.key, key); // no longer the certificate's key
      const refused = ctl(socket, ["tls", "reload"]);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/TLS certificate not reloaded, the previous one stays in use: .*key/i);
      expect(await ksr.stop()).toBe(0);

      const plainSocket = path.join(dir.dir, "plain.ctl");
      const plain = await startKsr([script, "--listen", "udp:127.0.0.1:0", "--control", plainSocket, "--db", ":memory:", "--no-supervise"], {
        ready: /running .* on udp:127\.0\.0\.1:(\d+)/,
      });
      const none = ctl(plainSocket, ["tls", "reload"]);
      expect(none.status).toBe(1);
      expect(none.stderr).toContain("no tls listen socket");
      expect(await plain.stop()).toBe(0);
    } finally {
      pki.remove();
    }
  }, 60_000);
});
