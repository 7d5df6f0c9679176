/**
 * The control methods over HTTP (host/control/http.ts): `ksr run
 * --metrics … --control-token-file FILE` answers JSON-RPC at POST /rpc on
 * the metrics listener to requests bearing the token, refuses everything
 * else, and `ksr ctl --url … --token-file …` uses it as it uses the socket.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { tenantDir } from "../tenants/fixtures.js";
import { ask } from "../tenants-e2e/harness.js";
import { cliTestbed } from "../tenants-e2e/cli-harness.js";

const { cli, startKsr, peer } = cliTestbed();

const SCRIPT = `function ksr_request_route() {
  if (KSR.is_REGISTER()) { KSR.registrar.save("location", 0); return; }
  KSR.sl.sl_send_reply(200, "OK");
}
`;
const TOKEN = "s3cr3t-token-of-the-operator-0123";

async function rpc(url: string, body: string, token: string | undefined, method = "POST"): Promise<{ status: number; text: string; challenge: string | null }> {
  const response = await fetch(url, {
    method,
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(method === "POST" ? { body } : {}),
  });
  return { status: response.status, text: await response.text(), challenge: response.headers.get("www-authenticate") };
}

function ctl(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli(), "ctl", ...args], { encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("control methods over HTTP", () => {
  it("answers JSON-RPC at POST /rpc with the bearer token, refuses without it, and ksr ctl --url uses it", async () => {
    const { findFreePort } = await import("../../bench/lib/sipp.mjs");
    const metricsPort = await findFreePort();
    const dir = tenantDir();
    const script = dir.write("ops.js", SCRIPT);
    const tokenFile = dir.write("token", TOKEN + "\n");
    const ksr = await startKsr([script, "--listen", "udp:127.0.0.1:0", "--metrics", String(metricsPort), "--control-token-file", tokenFile, "--db", ":memory:", "--no-supervise"], {
      ready: /running .* on udp:127\.0\.0\.1:(\d+)/,
    });
    const url = `http://127.0.0.1:${metricsPort}/rpc`;
    const client = await peer();
    const register = { method: "REGISTER", uri: "sip:127.0.0.1", headers: [`Contact: <sip:alice@127.0.0.1:${client.port}>`, "Expires: 600"] };
    expect((await ask(client, ksr.udpPort, register)).status).toBe(200);

    // Refusals: no token, a wrong one, another method; /metrics stays open as before.
    const none = await rpc(url, '{"jsonrpc":"2.0","id":1,"method":"uptime"}', undefined);
    expect(none.status).toBe(401);
    expect(none.challenge).toBe('Bearer realm="ksr"');
    const wrong = await rpc(url, '{"jsonrpc":"2.0","id":1,"method":"uptime"}', TOKEN + "x");
    expect(wrong.status).toBe(401);
    expect(wrong.challenge).toContain('error="invalid_token"');
    expect((await rpc(url, "", TOKEN, "GET")).status).toBe(405);
    expect((await rpc(url, "  ", TOKEN)).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);

    // The same answers as the socket's: results, JSON-RPC errors, batches.
    const dump = await rpc(url, '{"jsonrpc":"2.0","id":7,"method":"ul.dump"}', TOKEN);
    expect(dump.status).toBe(200);
    expect(JSON.parse(dump.text)).toMatchObject({ jsonrpc: "2.0", id: 7 });
    expect(dump.text).toContain(`sip:alice@127.0.0.1:${client.port}`);
    const unknown = JSON.parse((await rpc(url, '{"jsonrpc":"2.0","id":2,"method":"no.such"}', TOKEN)).text) as { error: { code: number } };
    expect(unknown.error.code).toBe(-32601);
    const batch = JSON.parse((await rpc(url, '[{"jsonrpc":"2.0","id":1,"method":"uptime"},{"jsonrpc":"2.0","id":2,"method":"version"}]', TOKEN)).text) as { id: number }[];
    expect(batch.map((r) => r.id)).toEqual([1, 2]);
    expect((await rpc(url, '{"jsonrpc":"2.0","method":"uptime"}', TOKEN)).status).toBe(204);
    expect((await rpc(url, "{not json", TOKEN)).text).toContain("-32700");

    // ksr ctl over HTTP, and its errors.
    const lookup = ctl(["--url", url, "--token-file", tokenFile, "--json", "ul", "lookup", "sip:service@example.test"]);
    expect(lookup.status, lookup.stderr).toBe(0);
    expect(lookup.stdout).toContain(`sip:alice@127.0.0.1:${client.port}`);
    const badToken = dir.write("bad-token", "another-token-of-16-chars");
    const refused = ctl(["--url", url, "--token-file", badToken, "uptime"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("refused the token (HTTP 401)");
    const noToken = ctl(["--url", url, "uptime"]);
    expect(noToken.status).toBe(1);
    expect(noToken.stderr).toContain("--url needs --token-file");
    await ksr.waitFor(/WARN \[ctl\] refused 1 control request\(s\) over HTTP, the last from 127\.0\.0\.1/);
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("refuses --control-token-file without --metrics, and a missing or short token file, naming the file", () => {
    const dir = tenantDir();
    const script = dir.write("ops.js", SCRIPT);
    const run = (args: string[]) => spawnSync(process.execPath, [cli(), "run", script, "--listen", "udp:127.0.0.1:0", "--no-supervise", ...args], { encoding: "utf8", timeout: 20_000 });
    const withoutMetrics = run(["--control-token-file", dir.write("t", TOKEN)]);
    expect(withoutMetrics.status).toBe(2);
    expect(withoutMetrics.stderr).toContain("--control-token-file serves the control methods on the --metrics listener: give --metrics too");
    const short = dir.write("short", "abc\n");
    const shortRun = run(["--metrics", "0", "--control-token-file", short]);
    expect(shortRun.status).toBe(2);
    expect(shortRun.stderr).toContain(`--control-token-file ${short}: the token must be at least 16 characters (it has 3)`);
    const missing = run(["--metrics", "0", "--control-token-file", `${dir.dir}/nope`]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`--control-token-file ${dir.dir}/nope: no such file`);
  }, 60_000);
});
