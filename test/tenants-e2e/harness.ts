/**
 * A multi-tenant server for end-to-end tests: a temporary directory with a
 * tenants file and its scripts, a TenantRegistry, and an in-process
 * SipServer on 127.0.0.1 (OS-chosen UDP port). Log lines are captured.
 */
import { writeFileSync } from "node:fs";
import type { SipServer, SipServerOptions } from "../../host/core/server.js";
import { tenantServer, type TenantRouting, type TenantRoutingOptions } from "../../host/core/tenant-routing.js";
import { loadTenantsFile, TenantRegistry, type TenantRegistryOptions } from "../../host/tenants/index.js";
import { LogCapture } from "../e2e/harness.js";
import { UdpPeer, buildRequest, reasonOf, statusOf, type RequestSpec } from "../e2e/sip-client.js";
import { testbed } from "../e2e/testbed.js";
import { tenantDir, type TenantDir } from "../tenants/fixtures.js";

export { LogCapture };

export interface TenantServer {
  readonly dir: TenantDir;
  readonly registry: TenantRegistry;
  readonly server: SipServer<TenantRouting>;
  readonly udpPort: number;
  /** Rewrites a script file of the directory (for reload tests). */
  rewrite(name: string, text: string): void;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly registry?: TenantRegistryOptions;
  readonly server?: Partial<SipServerOptions>;
  readonly routing?: TenantRoutingOptions;
}

/** Writes `scripts` (file name → text) and `tenantsYaml` into a fresh directory and serves them. */
export async function startTenants(scripts: Readonly<Record<string, string>>, tenantsYaml: string, opts: StartOptions = {}): Promise<TenantServer> {
  const dir = tenantDir();
  for (const [name, text] of Object.entries(scripts)) dir.write(name, text);
  const served = await serveTenantsFile(dir.write("tenants.yaml", tenantsYaml), opts);
  return { ...served, dir, rewrite: (name, text) => writeFileSync(`${dir.dir}/${name}`, text) };
}

/** Serves an existing tenants file (e.g. an example) on 127.0.0.1. */
export async function serveTenantsFile(file: string, opts: StartOptions = {}): Promise<Omit<TenantServer, "dir" | "rewrite">> {
  const registry = new TenantRegistry(loadTenantsFile(file), opts.registry);
  const server = tenantServer(registry, { listen: [{ proto: "udp", ip: "127.0.0.1", port: 0 }], tenantId: "server", ...opts.server }, opts.routing);
  try {
    await server.start();
  } catch (e) {
    registry.dispose();
    throw e;
  }
  return {
    registry,
    server,
    udpPort: server.portOf("udp"),
    async stop() {
      await server.stop();
      registry.dispose();
    },
  };
}

/** Sends one request from `peer` and resolves with the first message that comes back. */
export async function ask(peer: UdpPeer, port: number, spec: RequestSpec, timeoutMs = 3000): Promise<{ status: number; reason: string; text: string }> {
  await peer.send(buildRequest({ viaPort: peer.port, ...spec }), port);
  const res = await peer.next(timeoutMs);
  return { status: statusOf(res.data), reason: reasonOf(res.data), text: res.data };
}

/** OPTIONS to a domain must be answered 200 within the time given. */
export async function expectOptions200(peer: UdpPeer, port: number, domain: string, timeoutMs = 3000): Promise<string> {
  const r = await ask(peer, port, { method: "OPTIONS", uri: `sip:ping@${domain}` }, timeoutMs);
  if (r.status !== 200) throw new Error(`OPTIONS to ${domain}: expected 200, got ${r.status} ${r.reason}`);
  return r.reason;
}

/**
 * The per-test fixtures of the tenant suites: captured logs, UDP peers and
 * the server under test, all released after each test. Call once at the
 * top of a test file.
 */
export function tenantTestbed(): {
  logs: LogCapture;
  peer(): Promise<UdpPeer>;
  serve<T extends { stop(): Promise<void> }>(server: T): T;
} {
  const bed = testbed();
  return { logs: bed.logs, peer: bed.udpPeer, serve: bed.serve };
}

/** The hostile script's INFO misbehaves; anything else is answered "evil ok". */
export function hostile(misbehaviour: string, topLevel = ""): string {
  return `${topLevel}
function ksr_request_route() {
  if (KSR.is_method("INFO")) {
    ${misbehaviour}
  }
  KSR.sl.sl_send_reply(200, "evil ok");
}
`;
}

/** Tenants good (good.js, good.example) and evil (evil.js, evil.example; 32 MB, 300 ms). */
export const GOOD_EVIL_TENANTS = `tenants:
  - id: good
    script: good.js
    match: { domains: [good.example] }
  - id: evil
    script: evil.js
    match: { domains: [evil.example] }
    limits: { heapMb: 32, routeTimeoutMs: 300 }
`;
