/**
 * Per-execution state of one route call, kept on the host side. The script
 * reaches it only through KSR functions, which the bridge addresses by
 * context id; no host object ever crosses into an isolate.
 */
import type { CachingDnsLookups } from "../dns/resolver.js";
import { DEFAULT_TENANT_QUOTAS, type TenantQuotas } from "./quota.js";
import type { EgressPolicy } from "./egress.js";
import type { SipMessage, MessageEdits } from "../sip/message.js";
import { emptyEdits } from "../sip/message.js";
import type { StatefulProxy } from "../proxy/proxy.js";
import type { DataServices } from "../storage/index.js";
import type { OutgoingSend } from "./onsend.js";

export type TransportProto = "udp" | "tcp" | "tls";

/**
 * What a TLS connection negotiated, for the script (KSR.tls, $tls_*):
 * computed once per connection when its handshake completes.
 */
export interface TlsConnectionInfo {
  /** "TLSv1.3" ... */
  readonly version: string;
  readonly cipher: string;
  readonly cipherBits: number;
  /** The peer's certificate chained to a trusted CA (RFC 3261 §26.3.1). */
  readonly peerVerified: boolean;
  readonly peer?: TlsCertificateFields;
  readonly local?: TlsCertificateFields;
  /** SNI the client asked for (inbound connections). */
  readonly serverName?: string;
}

export interface TlsCertificateFields {
  /** Distinguished names in OpenSSL's one-line form ("/C=DE/O=Example/CN=sip.example.org"). */
  readonly subject: string;
  readonly issuer: string;
  readonly subjectAttrs: Readonly<Record<string, string>>;
  readonly issuerAttrs: Readonly<Record<string, string>>;
  /** Serial number as decimal text. */
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly san: { readonly dns: string[]; readonly uri: string[]; readonly email: string[]; readonly ip: string[] };
  readonly selfSigned: boolean;
  /** PEM of the certificate. */
  readonly pem: string;
}

/** Where a message came from and which local socket took it. */
export interface ReceiveInfo {
  readonly proto: TransportProto;
  readonly srcIp: string;
  readonly srcPort: number;
  readonly localIp: string;
  readonly localPort: number;
  /** TCP/TLS connection id; -1 for UDP. */
  readonly connectionId: number;
  /** Over TLS: what the connection negotiated. */
  readonly tls?: TlsConnectionInfo;
}

export interface ListenSocket {
  readonly proto: TransportProto;
  readonly ip: string;
  readonly port: number;
}

export type RouteType = "request" | "reply" | "failure" | "branch" | "branch_failure" | "onreply" | "onsend";

export type LogLevel = "dbg" | "info" | "notice" | "warn" | "err" | "crit";

/** A reply the route asked the host to send (sl_send_reply and friends). */
export interface LocalReply {
  readonly status: number;
  readonly reason: string;
}

/**
 * Host capabilities a KSR function may use. Implemented by the server; the
 * testing harness implements it without sockets.
 */
export interface HostServices {
  readonly listen: readonly ListenSocket[];
  /** Extra names (host or host:port) treated as local by is_myself*. */
  readonly aliases: readonly string[];
  /** The DNS record cache of the server (host/dns/resolver.ts), for KSR.ipops; absent where there is no resolver. */
  readonly dnsRecords?: CachingDnsLookups;
  /**
   * A log line, about ctx's message when given (its tenant, route, Call-ID
   * and source become fields of the record); `script` marks text a routing
   * script logged (KSR.info …), which the logger writes as a field, escaped.
   */
  log(level: LogLevel, text: string, ctx?: MessageContext, script?: boolean): void;
  /**
   * Send a locally generated reply to ctx's request (RFC 3261 §8.2.6,
   * addressed per §18.2.2). Headers added with hdr.append_to_reply are
   * included. Returns false when it could not be built or sent.
   */
  sendReply(ctx: MessageContext, status: number, reason: string): boolean;
  /**
   * Stateless forwarding (Kamailio `forward`): a request goes to `targetUri`,
   * else $du, else the R-URI, with our Via on top; a reply goes to the
   * second Via. Returns false when the destination cannot be resolved or
   * the send fails.
   */
  forward(ctx: MessageContext, targetUri?: string): boolean;
  /** Wall clock in ms (controllable in tests). */
  now(): number;
  /**
   * The transaction user of the stateful proxy (KSR.tm). Absent on hosts
   * without transaction state: tm functions then fail with -1.
   */
  readonly proxy?: StatefulProxy;
  /**
   * Registrations, subscribers, trusted addresses and their settings
   * (KSR.registrar, KSR.auth_db, KSR.permissions). Absent on hosts without
   * a database: those functions then fail with their error code.
   */
  readonly data?: DataServices;
}

/** State a tenant keeps between messages (Kamailio's per-process $var, $shv). */
export interface TenantState {
  readonly id: string;
  /** $var(name): per-process in Kamailio, so per tenant runner here. */
  readonly vars: Map<string, string | number>;
  /** $shv(name): shared variables. */
  readonly sharedVars: Map<string, string | number>;
  /** What the tenant's scripts may keep on the host (host/core/quota.ts). */
  readonly quotas: TenantQuotas;
  /** Bytes of $var and $shv held now, against quotas. */
  readonly usage: { varBytes: number; shvBytes: number };
  /** Where its scripts may send requests (host/core/egress.ts); undefined: anywhere. */
  readonly egress: EgressPolicy | undefined;
  /** The entry points its script is called by besides ksr_request_route. */
  readonly kemiCallbacks: KemiCallbacks;
}

/**
 * Names of the script functions the server calls besides
 * ksr_request_route: Kamailio 5.6's core settings kemi.onsend_route_callback
 * (default ksr_onsend_route), kemi.reply_route_callback (ksr_reply_route)
 * and kemi.event_route_callback (none; its one event in 5.6 is
 * core:worker-one-init). "" means not called (Kamailio's "none").
 *
 * Not provided: tm's event_callback modparam, which Kamailio 5.6 calls only
 * for tm:local-request, a request tm generates itself (t_uac_send, dialog,
 * uac), which this server never does. (tm:branch-failure is the function
 * t_on_branch_failure names, called without an argument.)
 */
export interface KemiCallbacks {
  readonly onsend: string;
  readonly reply: string;
  /** Called with the event name: "core:worker-one-init" once the script is loaded (host/core/tenant-routing.ts). */
  readonly event: string;
}

export const DEFAULT_KEMI_CALLBACKS: KemiCallbacks = { onsend: "ksr_onsend_route", reply: "ksr_reply_route", event: "" };

/**
 * Where $shv lives: a Map per tenant state (default), or a Map backed by a
 * file the worker processes of a pool share (host/modules/state/
 * shared-sqlite.ts), set once at a worker's start, before any tenant.
 */
let sharedVarsOf: ((tenantId: string) => Map<string, string | number>) | undefined;

export function setSharedVarsBackend(create: (tenantId: string) => Map<string, string | number>): void {
  sharedVarsOf = create;
}

export function newTenantState(
  id: string,
  quotas: TenantQuotas = DEFAULT_TENANT_QUOTAS,
  egress?: EgressPolicy,
  kemiCallbacks: KemiCallbacks = DEFAULT_KEMI_CALLBACKS,
): TenantState {
  // With a shared $shv backend the usage counted is this process's writes.
  return { id, vars: new Map(), sharedVars: sharedVarsOf?.(id) ?? new Map(), quotas, usage: { varBytes: 0, shvBytes: 0 }, egress, kemiCallbacks };
}

let nextContextId = 1;

export class MessageContext {
  readonly id = nextContextId++;
  /**
   * Request-URI after script changes ($ru); undefined while unchanged.
   * Scripts' changes go through setRequestUri, which also makes it usable
   * for a branch again.
   */
  newRequestUri: string | undefined;
  /**
   * Kamailio's "ruri is new" state, inverted: the R-URI was used for a
   * branch (a relay, append_branch() without a URI) or this is a failure
   * route, and is not to be relayed again until assigned. Kamailio marks
   * it new on every R-URI assignment, the same value included, and on a
   * $du assignment through the PV (core/dset.c rewrite_uri, pv_set_dsturi).
   */
  ruriConsumed = false;
  /** Destination URI ($du); undefined when unset. */
  dstUri: string | undefined;
  /** Forced send socket ($fs) as "proto:ip:port". */
  sendSocket: string | undefined;
  /** Message (transaction) flags, bits 0..31. */
  flags = 0;
  /** Branch flags per branch index; branch 0 is the R-URI branch. */
  readonly branchFlags: number[] = [0];
  /** Script flags; reset at each route run. */
  scriptFlags = 0;
  /** Header changes applied on send (lumps). */
  readonly edits: MessageEdits = emptyEdits();
  /** Raw header lines for the next locally generated reply (hdr.append_to_reply). */
  readonly replyHeaders: string[] = [];
  /** Add received/rport to the top Via and answer to the source port (RFC 3581). */
  forceRport = false;
  /** Add rport to the Via this proxy inserts when forwarding. */
  addLocalRport = false;
  /** KSR.x.exit()/drop() ran: every later KSR call of this execution is refused. */
  exited = false;
  /** Drop flag (KSR.x.drop(), KSR.set_drop()). */
  dropped = false;
  /**
   * The running route's clock, set by the script runner when the route
   * starts: its isolate's CPU time then (undefined for an asynchronous
   * execution, which may wait behind others), and the time spent in KSR
   * calls since (host time counts against the route's limit).
   */
  routeClock: { readonly startCpuNs: bigint | undefined; hostMs: number } | undefined;
  /** A KSR call returned past the route's time limit: the route was ended as timed out. */
  routeTimedOut = false;
  /** The local reply sent by this execution, if any. */
  replied: LocalReply | undefined;
  /** The message was forwarded (stateless or stateful). */
  forwarded = false;
  /** Reply that sl_reply_error() should send for the last internal error. */
  lastError: LocalReply | undefined;
  /** In an onsend route: the send it runs for ($snd, host/core/onsend.ts). */
  outgoing: OutgoingSend | undefined;
  /** In an event route: the event name the route function is called with ("core:worker-one-init"). */
  eventName: string | undefined;
  /** The message is the core's faked request of an event route (corex.is_faked_msg). */
  faked = false;
  /** @internal What KSR modules keep per context (see ContextSlot); made on first use. */
  moduleState: Record<string, unknown> | undefined;

  constructor(
    readonly msg: SipMessage,
    readonly rcv: ReceiveInfo,
    readonly routeType: RouteType,
    readonly tenant: TenantState,
    readonly host: HostServices,
  ) {}

  /** A script's (or a module's) R-URI assignment: the R-URI becomes usable for a branch again. */
  setRequestUri(uri: string): void {
    this.newRequestUri = uri;
    this.ruriConsumed = false;
  }

  /** The current Request-URI ($ru): the rewritten one if the script changed it. */
  get requestUri(): string {
    return this.newRequestUri ?? this.msg.requestUri;
  }

  get isRequest(): boolean {
    return this.msg.kind === "request";
  }
}

/**
 * One KSR module's state for each message context (maxfwd's original
 * value, rr's loose-route result ...), with WeakMap's get/set/delete. The
 * value lives in the context itself: a WeakMap keyed by context would add
 * an ephemeron entry per message, which every garbage collection walks.
 * `name` must be unique among slots.
 */
export class ContextSlot<T> {
  constructor(readonly name: string) {}

  get(ctx: MessageContext): T | undefined {
    return ctx.moduleState?.[this.name] as T | undefined;
  }

  set(ctx: MessageContext, value: T): this {
    (ctx.moduleState ??= Object.create(null) as Record<string, unknown>)[this.name] = value;
    return this;
  }

  delete(ctx: MessageContext): boolean {
    const state = ctx.moduleState;
    if (state === undefined || !(this.name in state)) return false;
    delete state[this.name];
    return true;
  }
}
