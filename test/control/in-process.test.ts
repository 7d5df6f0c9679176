/**
 * inProcessControlTarget over a real TenantRegistry and SipServer: what
 * `ksr ctl` sees of in-process tenants, and that its reloads take effect.
 */
import { describe, expect, it } from "vitest";
import { inProcessControlTarget } from "../../host/control/in-process.js";
import { ask, startTenants, tenantTestbed } from "../tenants-e2e/harness.js";
import { answerScript } from "../tenants-e2e/cli-harness.js";

const { peer, serve } = tenantTestbed();

const answer = answerScript;
const TENANTS = `tenants:
  - id: a
    script: a.js
    match: { domains: [a.example] }
  - id: b
    script: b.js
    mode: async
    match: { domains: [b.example] }
`;

async function start() {
  const srv = serve(await startTenants({ "a.js": answer("a v1"), "b.js": answer("b v1") }, TENANTS));
  return { srv, target: inProcessControlTarget(srv.registry, srv.server.router) };
}

describe("inProcessControlTarget", () => {
  it("tenants: each tenant in file order, in this process, with its script and execution mode", async () => {
    const { srv, target } = await start();
    expect(await target.tenants()).toEqual([
      { id: "a", script: `${srv.dir.dir}/a.js`, isolation: "in-process", state: "running", pid: process.pid, mode: "sync" },
      { id: "b", script: `${srv.dir.dir}/b.js`, isolation: "in-process", state: "running", pid: process.pid, mode: "async" },
    ]);
  });

  it("reload of one tenant swaps its script in; an unknown id fails naming it", async () => {
    const { srv, target } = await start();
    const client = await peer();
    expect((await ask(client, srv.udpPort, { method: "OPTIONS", uri: "sip:x@a.example" })).reason).toBe("a v1");
    srv.rewrite("a.js", answer("a v2"));
    expect(await target.reload("a")).toEqual([{ tenant: "a", ok: true }]);
    expect((await ask(client, srv.udpPort, { method: "OPTIONS", uri: "sip:x@a.example" })).reason).toBe("a v2");
    expect(await target.reload("nope")).toEqual([{ tenant: "nope", ok: false, error: 'no tenant "nope"' }]);
  });

  it("reload of every tenant: one result each in file order; a broken script fails with file:line and keeps the old one", async () => {
    const { srv, target } = await start();
    const client = await peer();
    srv.rewrite("b.js", 'function ksr_request_route() {\n  KSR.sl.sl_send_reply(200, "b v2")\n  ++;\n}\n');
    const results = await target.reload();
    expect(results.map((r) => [r.tenant, r.ok])).toEqual([
      ["a", true],
      ["b", false],
    ]);
    expect(results[1]!.error).toMatch(/b\.js:3:\d+/);
    expect((await ask(client, srv.udpPort, { method: "OPTIONS", uri: "sip:x@b.example" })).reason).toBe("b v1");
  });

  it("counters: the lines SIGUSR2 logs, counting what was served", async () => {
    const { srv, target } = await start();
    const client = await peer();
    await ask(client, srv.udpPort, { method: "OPTIONS", uri: "sip:x@a.example" });
    await ask(client, srv.udpPort, { method: "OPTIONS", uri: "sip:x@nowhere.example" });
    const lines = await target.counters();
    expect(lines).toEqual(srv.server.router.counterLines());
    expect(lines[0]).toMatch(/^tenant a: mode=sync messages=1 .* 2xx=1 /);
    expect(lines[1]).toMatch(/^tenant b: mode=async messages=0 /);
    expect(lines[2]).toBe("no tenant: requests answered 404=1 responses dropped=0");
  });
});
