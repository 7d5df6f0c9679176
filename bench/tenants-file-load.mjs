// Loading a tenants file of 1 000 and 5 000 entries (YAML, each with its
// domain), building the tenant selector, and selecting the last tenant of
// the file for an OPTIONS (the worst case of a scan in file order).
//
//   node bench/tenants-file-load.mjs
import { build } from "esbuild";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
const REPO = fileURLToPath(new URL("..", import.meta.url));
const out = join(REPO, "bench", `.load-${process.pid}.mjs`);
await build({ stdin: { contents: `export { loadTenantsFile, TenantSelector } from "./host/tenants/index.ts"; export { planProcesses } from "./host/tenants/shards.ts"; export { parseMessage } from "./host/sip/parser.ts";`, resolveDir: REPO, loader: "ts" }, bundle: true, format: "esm", platform: "node", packages: "external", outfile: out, logLevel: "silent" });
const lib = await import(pathToFileURL(out).href); rmSync(out);
/** select() calls timed per run (after 1 000 to warm up). */
const SELECTS = 100_000;
const dir = mkdtempSync(join(tmpdir(), "ksr-load-"));
writeFileSync(join(dir, "t.js"), `function ksr_request_route() { KSR.sl.sl_send_reply(200, "OK"); }\n`);
for (const n of [1000, 5000]) {
  let y = "tenants:\n";
  for (let i = 0; i < n; i++) y += `  - id: t${i}\n    script: t.js\n    match: { domains: [t${i}.example] }\n`;
  writeFileSync(join(dir, `t${n}.yaml`), y);
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now();
    const cfg = lib.loadTenantsFile(join(dir, `t${n}.yaml`));
    const t1 = performance.now();
    const sel = new lib.TenantSelector(cfg);
    const t2 = performance.now();
    const m = lib.parseMessage(`OPTIONS sip:x@t${n-1}.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@t${n-1}.example>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`).message;
    const rcv = { proto: "udp", srcIp: "127.0.0.1", srcPort: 5070, localIp: "127.0.0.1", localPort: 5060, connectionId: -1 };
    for (let k = 0; k < 1000; k++) sel.select(m, rcv); // warm-up
    const t3 = performance.now();
    for (let k = 0; k < SELECTS; k++) sel.select(m, rcv);
    const t4 = performance.now();
    console.log(`${n} tenants: load ${(t1 - t0).toFixed(0)} ms, selector built in ${(t2 - t1).toFixed(1)} ms, select (the last tenant's domain) ${(((t4 - t3) * 1000) / SELECTS).toFixed(2)} µs each`);
  }
}
rmSync(dir, { recursive: true });
