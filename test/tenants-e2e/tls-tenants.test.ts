/**
 * Tenants' own TLS certificates (`tls:` in the tenants file) and the
 * --tls-server-name / --tls-min-version flags on `ksr run`: the front of
 * the shards presents each tenant's certificate to clients asking (SNI)
 * for its domains, the server's to the others; mistakes stop the start
 * naming the tenant, field or flag.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantDir } from "../tenants/fixtures.js";
import { cliTestbed } from "./cli-harness.js";
import { makeTestPki, type TestPki } from "../e2e/tls-certs.js";

const { cli, startKsr } = cliTestbed();
let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

const REPLY = `function ksr_request_route() { KSR.sl.sl_send_reply(200, "OK"); }\n`;

/** The CN of the certificate the server presents to a client asking for `servername` (verified against that name). */
function presentedCn(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { host: "127.0.0.1", port, ca: readFileSync(pki.caFile), ...(servername === undefined ? {} : { servername }), checkServerIdentity: () => undefined },
      () => {
        const cn = s.getPeerCertificate().subject.CN as string;
        s.end();
        resolve(cn);
      },
    );
    s.once("error", reject);
  });
}

describe("tenants' TLS certificates", () => {
  it("the front presents each tenant's certificate for its domains and the server's for other names", async () => {
    const dir = tenantDir();
    dir.write("a.js", REPLY);
    const file = dir.write(
      "tenants.yaml",
      `tenants:\n  - id: acme\n    script: a.js\n    match: { domains: [sip.acme.test, "*.acme.test"] }\n    tls: { cert: ${pki.acme.cert}, key: ${pki.acme.key} }\n` +
        `  - id: other\n    script: a.js\n    match: { domains: ["*"] }\n`,
    );
    const ksr = await startKsr(["--tenants", file, "--db", ":memory:", "--listen", "udp:127.0.0.1:0", "--listen", "tls:127.0.0.1:0", "--tls-cert", pki.server.cert, "--tls-key", pki.server.key, "--tls-min-version", "TLSv1.3"]);
    const tlsPort = Number(/tls:127\.0\.0\.1:(\d+)/.exec(ksr.stderr())![1]);
    expect(await presentedCn(tlsPort, "sip.acme.test")).toBe("sip.acme.test");
    expect(await presentedCn(tlsPort, "edge.acme.test")).toBe("sip.acme.test");
    expect(await presentedCn(tlsPort, "globex.test")).toBe("server.test");
    expect(await presentedCn(tlsPort, undefined)).toBe("server.test");
    // --tls-min-version reached the front: a TLS 1.2 client is refused.
    await expect(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: "127.0.0.1", port: tlsPort, maxVersion: "TLSv1.2", rejectUnauthorized: false }, () => resolve(s.end()));
        s.once("error", reject);
      }),
    ).rejects.toThrow();
    expect(await ksr.stop()).toBe(0);
  }, 60_000);

  it("refuses a tenant's certificate without the server's, and malformed flags, naming them", () => {
    const dir = tenantDir();
    dir.write("a.js", REPLY);
    const file = dir.write("tenants.yaml", `tenants:\n  - id: acme\n    script: a.js\n    match: { domains: [sip.acme.test] }\n    tls: { cert: ${pki.acme.cert}, key: ${pki.acme.key} }\n`);
    const run = (args: string[]) => spawnSync(process.execPath, [cli(), "run", ...args], { encoding: "utf8", timeout: 30_000 });
    const noDefault = run(["--tenants", file, "--listen", "udp:127.0.0.1:0", "--no-supervise"]);
    expect(noDefault.status).toBe(1);
    expect(noDefault.stderr).toContain(`${file}: tenant "acme", field tls: a tenant's certificate needs the server's own`);
    const badName = run(["--tenants", file, "--tls-server-name", "sip.acme.test:only-a-cert.pem"]);
    expect(badName.status).toBe(1);
    expect(badName.stderr).toContain('"sip.acme.test:only-a-cert.pem" is not NAMES:CERT:KEY');
    const star = run(["--tenants", file, "--tls-server-name", `*:${pki.acme.cert}:${pki.acme.key}`]);
    expect(star.status).toBe(1);
    expect(star.stderr).toContain("would claim every server name");
    const version = run(["--tenants", file, "--tls-min-version", "TLSv1.1"]);
    expect(version.status).toBe(1);
    expect(version.stderr).toContain('"TLSv1.1" is not TLSv1.2 or TLSv1.3');
  }, 60_000);
});
