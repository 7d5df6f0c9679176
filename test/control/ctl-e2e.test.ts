/**
 * `ksr run --tenants ... --control path` and `ksr ctl` as users run them:
 * the CLI in child processes, SIP over UDP on 127.0.0.1, reloads asked
 * through the control socket.
 */
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { UdpPeer } from "../e2e/sip-client.js";
import { ROOT } from "../tooling/cli.js";
import type { TenantDir } from "../tenants/fixtures.js";
import { ask } from "../tenants-e2e/harness.js";
import { BROKEN_SCRIPT, answerScript, cliTestbed, twoTenants, type RunningKsr } from "../tenants-e2e/cli-harness.js";

const { cli, startKsr: start, peer } = cliTestbed();
const answer = answerScript;
const BROKEN = BROKEN_SCRIPT;

function setup(): { dir: TenantDir; file: string; socket: string } {
  const { dir, file } = twoTenants();
  return { dir, file, socket: path.join(dir.dir, "ksr.ctl") };
}

/** ksr run in cwd (the control socket's default directory). */
function startKsr(args: string[], cwd = ROOT): Promise<RunningKsr> {
  return start(args, { cwd });
}

function ctl(args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli(), "ctl", ...args], { cwd, encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function reasonFor(p: UdpPeer, port: number, domain: string): Promise<string> {
  return (await ask(p, port, { method: "OPTIONS", uri: `sip:x@${domain}` })).reason;
}

const IN_PROCESS = ["--isolation", "in-process"];

describe("ksr ctl against ksr run --tenants --control", () => {
  it("reloads a tenant, reports a broken script with file:line while the old one keeps answering, prints counters and tenants", async () => {
    const { dir, file, socket } = setup();
    const ksr = await startKsr(["--tenants", file, ...IN_PROCESS, "--listen", "udp:127.0.0.1:0", "--control", socket, "--db", ":memory:", "--no-supervise"]);
    expect(lstatSync(socket).mode & 0o777).toBe(0o600);
    const client = await peer();
    expect(await reasonFor(client, ksr.udpPort, "a.example")).toBe("a v1");

    // A second server may not take over a live control socket.
    const second = spawnSync(
      process.execPath,
      [cli(), "run", "--tenants", file, ...IN_PROCESS, "--listen", "udp:127.0.0.1:0", "--control", socket, "--db", ":memory:", "--no-supervise"],
      { cwd: ROOT, encoding: "utf8", timeout: 20_000 },
    );
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`ksr: cannot open the control socket: another server is already listening on ${socket}`);
    expect(ctl(["--control", socket, "counters"]).status).toBe(0);

    dir.write("a.js", answer("a v2"));
    const reloaded = ctl(["--control", socket, "reload", "a"]);
    expect(reloaded).toMatchObject({ status: 0, stdout: "tenant a: reloaded\n", stderr: "" });
    // ctl returns once the new script is in place.
    expect(await reasonFor(client, ksr.udpPort, "a.example")).toBe("a v2");
    expect(await reasonFor(client, ksr.udpPort, "b.example")).toBe("b v1");
    await ksr.waitFor("NOTICE [ctl] reload of tenant a asked on the control socket");

    dir.write("a.js", BROKEN);
    const failed = ctl(["--control", socket, "reload", "a"]);
    expect(failed.status).toBe(1);
    expect(failed.stdout).toBe("");
    expect(failed.stderr).toMatch(/^tenant a: reload failed: .*a\.js:3:\d+: /);
    expect(await reasonFor(client, ksr.udpPort, "a.example")).toBe("a v2");
    await ksr.waitFor("ERR [ctl] reload of tenant a: failed for a; their previous scripts keep running");

    const unknown = ctl(["--control", socket, "reload", "zz"]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('tenant zz: reload failed: no tenant "zz"\n');

    const counters = ctl(["--control", socket, "counters"]);
    expect(counters.status).toBe(0);
    const lines = counters.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^tenant a: mode=sync messages=3 .*reloads=1 reload-failures=1 .*2xx=3 /);
    expect(lines[1]).toMatch(/^tenant b: mode=sync messages=1 .*reloads=0 reload-failures=0 /);
    expect(lines[2]).toBe("no tenant: requests answered 404=0 responses dropped=0");
    // Load shedding is the server's, one receive queue for every tenant.
    expect(lines[3]).toMatch(/^overload: shedding=(no|yes) overload-episodes=\d+ shed=/);

    const tenants = ctl(["--control", socket, "tenants"]);
    expect(tenants.status).toBe(0);
    expect(tenants.stdout.split("\n")).toEqual([
      expect.stringMatching(/^TENANT +STATE +ISOLATION +MODE +PID +RESTARTS +SCRIPT$/),
      expect.stringMatching(new RegExp(`^a +running +in-process +sync +${ksr.child.pid} +- +${dir.dir}/a\\.js$`)),
      expect.stringMatching(new RegExp(`^b +running +in-process +sync +${ksr.child.pid} +- +${dir.dir}/b\\.js$`)),
      "",
    ]);
    const json = ctl(["--control", socket, "--json", "tenants"]);
    expect(JSON.parse(json.stdout).map((t: { id: string }) => t.id)).toEqual(["a", "b"]);

    expect(await ksr.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    const gone = ctl(["--control", socket, "tenants"]);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toBe(`ksr ctl: no ksr server is listening on ${socket} (is it running with --control ${socket}?)\n`);
  }, 60_000);

  it("with each tenant in its own worker process: tenants lists the workers, reload and counters go through them", async () => {
    const { dir, file, socket } = setup();
    const ksr = await startKsr(["--tenants", file, "--isolation", "process-per-tenant", "--listen", "udp:127.0.0.1:0", "--control", socket, "--db", ":memory:", "--no-supervise"]);
    const client = await peer();
    expect(await reasonFor(client, ksr.udpPort, "a.example")).toBe("a v1");

    dir.write("a.js", answer("a v2"));
    expect(ctl(["--control", socket, "reload", "a"])).toMatchObject({ status: 0, stdout: "tenant a: reloaded\n", stderr: "" });
    expect(await reasonFor(client, ksr.udpPort, "a.example")).toBe("a v2");
    dir.write("a.js", BROKEN);
    const failed = ctl(["--control", socket, "reload", "a"]);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/^tenant a: reload failed: .*a\.js:3:\d+: /);
    expect(await reasonFor(client, ksr.udpPort, "a.example")).toBe("a v2");

    const statuses = JSON.parse(ctl(["--control", socket, "--json", "tenants"]).stdout) as { id: string; isolation: string; state: string; pid: number; restarts: number; mode: string }[];
    expect(statuses.map((t) => [t.id, t.isolation, t.state, t.restarts, t.mode])).toEqual([
      ["a", "process", "running", 0, "sync"],
      ["b", "process", "running", 0, "sync"],
    ]);
    // One worker process each, neither of them the server.
    expect(new Set([ksr.child.pid, statuses[0]!.pid, statuses[1]!.pid]).size).toBe(3);

    const counters = ctl(["--control", socket, "counters"]).stdout.trimEnd().split("\n");
    expect(counters[0]).toMatch(new RegExp(`^tenant a: process state=running pid=${statuses[0]!.pid} restarts=0 .* shedding=(no|yes) overload-episodes=`));
    expect(counters[1]).toMatch(/^tenant a: mode=sync messages=3 .*reloads=1 reload-failures=1 /);
    expect(counters.at(-1)).toBe("no tenant: requests answered 404=0 responses dropped=0");
    expect(await ksr.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
  }, 60_000);

  it("supervised, --control without a path: the server process gets the socket in the starting directory, where ksr ctl finds it by default", async () => {
    const { file, dir } = setup();
    const ksr = await startKsr(["--tenants", file, ...IN_PROCESS, "--control", "--listen", "udp:127.0.0.1:0", "--db", ":memory:"], dir.dir);
    const socket = path.join(dir.dir, "ksr.ctl");
    expect(lstatSync(socket).isSocket()).toBe(true);
    const tenants = ctl(["--json", "tenants"], dir.dir);
    expect(tenants.status).toBe(0);
    const statuses = JSON.parse(tenants.stdout) as { id: string; pid: number }[];
    expect(statuses.map((s) => s.id)).toEqual(["a", "b"]);
    // Served by the supervised server process, not by the supervisor.
    expect(statuses[0]!.pid).not.toBe(ksr.child.pid);
    expect(ctl(["reload"], dir.dir)).toMatchObject({ status: 0, stdout: "tenant a: reloaded\ntenant b: reloaded\n" });
    expect(await ksr.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
  }, 60_000);

  it("usage errors exit 2: ctl without or with an unknown command, extra arguments", () => {
    expect(ctl([]).status).toBe(2);
    const unknown = ctl(["restart"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("restart");
    expect(ctl(["reload", "a", "b"]).status).toBe(2);
    expect(ctl(["--timeout-ms", "soon", "tenants"]).status).toBe(2);
    expect(ctl(["--help"]).status).toBe(0);
  }, 60_000);
});
