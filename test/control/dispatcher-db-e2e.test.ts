/**
 * Dispatcher destinations in the SQLite database (`--dispatcher-list
 * sqlite:FILE`): `ksr dispatcher add|rm|list` manage a tenant's rows,
 * refusing one a server could not read; a running server reads them at
 * start and again on `ksr ctl dispatcher reload`, each tenant its own.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tenantDir } from "../tenants/fixtures.js";
import { ask } from "../tenants-e2e/harness.js";
import { cliTestbed } from "../tenants-e2e/cli-harness.js";
import { ctlRunner } from "./ctl-runner.js";

const { cli, startKsr, peer } = cliTestbed();
const { json } = ctlRunner(cli);

/** Answers each request with what priority order (algorithm 8) picks from set 1. */
const SCRIPT = `function ksr_request_route() {
  var rc = KSR.dispatcher.ds_select_dst(1, 8);
  KSR.sl.sl_send_reply(200, "ds " + rc + " " + KSR.pv.get("$du"));
}
`;

describe("ksr dispatcher and --dispatcher-list sqlite:FILE", () => {
  it("adds, lists and removes a tenant's rows; the server reads them at start and on reload", async () => {
    const dir = tenantDir();
    const db = path.join(dir.dir, "ksr.sqlite");
    const ds = (args: string[]) => spawnSync(process.execPath, [cli(), "dispatcher", ...args, "--db", db], { encoding: "utf8", timeout: 20_000 });
    expect(ds(["add", "1", "sip:127.0.0.1:5071", "--priority", "5", "--attrs", "duid=one;weight=50", "--description", "first gateway"]).stdout).toBe(
      "destination sip:127.0.0.1:5071 added to set 1 for tenant default (id 1)\n",
    );
    expect(ds(["add", "1", "sip:127.0.0.1:5079", "--tenant", "acme"]).status).toBe(0);
    const bad = ds(["add", "1", "sip:127.0.0.1:5072", "--attrs", "weight=500"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe("ksr dispatcher add: weight 500 is not in 1..100\n");
    expect(ds(["add", "1", "tel:+123"]).stderr).toContain('"tel:+123" is not a sip: or sips: URI');
    expect(ds(["list"]).stdout).toBe("1\t1\tsip:127.0.0.1:5071\t0\t5\tduid=one;weight=50\tfirst gateway\n");
    expect(ds(["list", "--tenant", "acme"]).stdout).toBe("2\t1\tsip:127.0.0.1:5079\t0\t0\t\t\n");

    const script = dir.write("lb.js", SCRIPT);
    const socket = path.join(dir.dir, "ksr.ctl");
    const ksr = await startKsr(
      [script, "--listen", "udp:127.0.0.1:0", "--control", socket, "--dispatcher-list", `sqlite:${db}`, "--dispatcher-param", "reload_delta=0", "--no-supervise"],
      { ready: /running .* on udp:127\.0\.0\.1:(\d+)/ },
    );
    const client = await peer();
    const pick = async (tag: string) => (await ask(client, ksr.udpPort, { method: "OPTIONS", callId: tag })).reason;
    expect(await pick("a")).toBe("ds 1 sip:127.0.0.1:5071");
    expect(json<{ file: string }[]>(socket, ["dispatcher", "list"])[0]!.file).toBe(`sqlite:${db}`);

    // A row of higher priority: used once the server reloads.
    expect(ds(["add", "1", "sip:127.0.0.1:5073", "--priority", "9"]).status).toBe(0);
    expect(await pick("b")).toBe("ds 1 sip:127.0.0.1:5071");
    expect(json<{ destinations: number }>(socket, ["dispatcher", "reload"]).destinations).toBe(2);
    expect(await pick("c")).toBe("ds 1 sip:127.0.0.1:5073");
    expect(ds(["rm", "3"]).stdout).toBe("dispatcher destination 3 removed\n");
    expect(ds(["rm", "3"]).status).toBe(1);
    expect(ds(["rm", "2"]).stderr).toBe("ksr: no dispatcher destination with id 2 for tenant default\n");
    json(socket, ["dispatcher", "reload"]);
    expect(await pick("d")).toBe("ds 1 sip:127.0.0.1:5071");
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("a database that cannot be read stops the start, naming it", () => {
    const dir = tenantDir();
    const script = dir.write("lb.js", SCRIPT);
    const missing = path.join(dir.dir, "none.sqlite");
    const r = spawnSync(process.execPath, [cli(), "run", script, "--listen", "udp:127.0.0.1:0", "--dispatcher-list", `sqlite:${missing}`, "--no-supervise"], { encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--dispatcher-list: sqlite:${missing} (table dispatcher, tenant default): cannot read`);
  }, 60_000);
});
