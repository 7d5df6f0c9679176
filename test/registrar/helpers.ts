/**
 * Test helpers for the registrar, auth and permissions modules: a recording
 * host with data services over an in-memory (or given) SQLite database, on
 * the host's controllable clock, and REGISTER builders.
 */
import { newTenantState, type ReceiveInfo, type TenantState } from "../../host/core/context.js";
import { openDataServices, type DataServices, type DataServicesOptions } from "../../host/storage/index.js";
import { makeContext, makeRecordingHost, type RecordingHost, type TestContext } from "../helpers/context.js";

export interface DataHost extends RecordingHost {
  readonly data: DataServices;
}

export const T0 = 1_700_000_000_000;

/** A recording host whose data services run on its clock (host.clock.ms, starting at `at`). */
export function makeDataHost(options: Partial<DataServicesOptions> = {}, at = T0): DataHost {
  const host = makeRecordingHost({ now: at });
  const data = openDataServices({ file: ":memory:", ...options, now: () => host.clock.ms });
  return Object.assign(host, { data });
}

const tenants = new Map<string, TenantState>();

/** One TenantState per id, as a server keeps one per tenant. */
export function tenant(id: string): TenantState {
  let t = tenants.get(id);
  if (t === undefined) {
    t = newTenantState(id);
    tenants.set(id, t);
  }
  return t;
}

export function contextOn(host: RecordingHost, text: string, tenantId = "t1", rcv: Partial<ReceiveInfo> = {}): TestContext {
  return makeContext(text, { host, tenant: tenant(tenantId), rcv });
}

export interface RegisterSpec {
  /** To/From URI (the AoR). */
  aor?: string;
  /** Contact header values, each one header field; [] for none. */
  contacts?: string[];
  expires?: number | string;
  callId?: string;
  cseq?: number;
  headers?: string[];
  uri?: string;
}

export function register(spec: RegisterSpec = {}): string {
  const aor = spec.aor ?? "sip:alice@example.com";
  const contacts = spec.contacts ?? ["<sip:alice@10.0.0.1:5070>"];
  return [
    `REGISTER ${spec.uri ?? "sip:example.com"} SIP/2.0`,
    "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-reg-" + (spec.cseq ?? 1),
    "Max-Forwards: 70",
    `From: <${aor}>;tag=reg-tag`,
    `To: <${aor}>`,
    `Call-ID: ${spec.callId ?? "reg-call-1"}`,
    `CSeq: ${spec.cseq ?? 1} REGISTER`,
    ...contacts.map((c) => `Contact: ${c}`),
    ...(spec.expires === undefined ? [] : [`Expires: ${spec.expires}`]),
    ...(spec.headers ?? []),
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

export function invite(ruri: string, opts: { toTag?: string; headers?: string[]; method?: string } = {}): string {
  const method = opts.method ?? "INVITE";
  return [
    `${method} ${ruri} SIP/2.0`,
    "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-inv-1",
    "Max-Forwards: 70",
    "From: <sip:carol@example.com>;tag=inv-tag",
    `To: <${ruri}>${opts.toTag !== undefined ? `;tag=${opts.toTag}` : ""}`,
    "Call-ID: inv-call-1",
    `CSeq: 1 ${method}`,
    ...(opts.headers ?? []),
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

/** The value of the first reply header line with that name (case-insensitive), without CRLF. */
export function replyHeader(lines: readonly string[], name: string): string | undefined {
  const prefix = name.toLowerCase() + ":";
  const line = lines.find((l) => l.toLowerCase().startsWith(prefix));
  return line === undefined ? undefined : line.slice(prefix.length).trim();
}

export function replyHeaders(lines: readonly string[], name: string): string[] {
  const prefix = name.toLowerCase() + ":";
  return lines.filter((l) => l.toLowerCase().startsWith(prefix)).map((l) => l.slice(prefix.length).trim());
}
