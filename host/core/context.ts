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
import { NO_MODPARAMS, type ModParamValues } from "../modules/modparams.js";
import { SETTING_ROUTES, type RouteKind, type SettingRouteKind } from "../../runtime/interpreter.js";

export type TransportProto = "udp" | "tcp" | "tls" | "ws" | "wss";

/** Every transport the server has, lowercase as in URIs and `--listen` (WS and WSS: RFC 7118). */
export const TRANSPORT_PROTOS: readonly TransportProto[] = ["udp", "tcp", "tls", "ws", "wss"];

/** `text` as one of our transports (case-insensitive), or undefined (sctp, unknown). */
export function asTransportProto(text: string): TransportProto | undefined {
  const t = text.toLowerCase();
  return (TRANSPORT_PROTOS as readonly string[]).includes(t) ? (t as TransportProto) : undefined;
}

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

/**
 * The route a context runs in (runtime/interpreter.ts). An event route runs
 * as a request route on a faked request: Kamailio's EVENT_ROUTE type
 * includes REQUEST_ROUTE.
 */
export type RouteType = Exclude<RouteKind, "event">;

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
  /** Its module parameters (host/modules/modparams.ts): only those set; the rest are the declared defaults. */
  readonly modparams: ModParamValues;
}

/**
 * Names of the script functions the server calls besides
 * ksr_request_route, by route kind: Kamailio 5.6's core settings
 * kemi.onsend_route_callback, kemi.reply_route_callback and
 * kemi.event_route_callback (runtime/interpreter.ts declares them and
 * their defaults). "" means not called (Kamailio's "none").
 *
 * Not provided: tm's event_callback modparam, which Kamailio 5.6 calls only
 * for tm:local-request, a request tm generates itself (t_uac_send, dialog,
 * uac), which this server never does. (tm:branch-failure is the function
 * t_on_branch_failure names, called without an argument.)
 */
export type KemiCallbacks = Readonly<Record<SettingRouteKind, string>>;

/** Each setting's default (runtime/interpreter.ts). */
export const DEFAULT_KEMI_CALLBACKS: KemiCallbacks = Object.fromEntries(SETTING_ROUTES.map((r) => [r.kind, r.naming.defaultName])) as KemiCallbacks;

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
  modparams: ModParamValues = NO_MODPARAMS,
): TenantState {
  // With a shared $shv backend the usage counted is this process's writes.
  return { id, vars: new Map(), sharedVars: sharedVarsOf?.(id) ?? new Map(), quotas, usage: { varBytes: 0, shvBytes: 0 }, egress, kemiCallbacks, modparams };
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

/** The later route contexts of the same request a slot's value may be carried into. */
export type CarryTarget = "branch" | "failure" | "onreply";

export interface ContextSlotOptions<T> {
  /**
   * For each later route context of the same request that gets the value,
   * the copy made for it (`(v) => v` shares it). A target not listed starts
   * without a value: Kamailio's state of that kind is per message there.
   * branch: each branch context t_relay builds from the request route's
   * context; failure (and branch-failure): the request as it was relayed;
   * onreply: the context of a reply a branch received.
   */
  readonly carry?: Partial<Record<CarryTarget, (value: T) => T>>;
  /**
   * A slot of one object (one proxy's transaction bindings), made per
   * instance: kept out of the registry, never carried.
   */
  readonly instance?: true;
}

/** Every registered slot by name: one place that says what per-message state exists and where it goes. */
const SLOTS = new Map<string, ContextSlot<unknown>>();

/**
 * One module's typed state for each message context (maxfwd's original
 * value, rr's loose-route result ...), with WeakMap's get/set/delete. The
 * value lives in the context itself: a WeakMap keyed by context would add
 * an ephemeron entry per message, which every garbage collection walks.
 * Every slot is registered by its unique name with how it is carried into
 * later routes (carryMessageState); `ksr`'s tests list the registry.
 */
export class ContextSlot<T> {
  constructor(
    readonly name: string,
    readonly options: ContextSlotOptions<T> = {},
  ) {
    if (options.instance === true) return;
    if (SLOTS.has(name)) throw new Error(`per-message slot ${name} is declared twice`);
    SLOTS.set(name, this as ContextSlot<unknown>);
  }

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

/** The registered slots: name → which later routes get a copy. */
export function contextSlots(): { readonly name: string; readonly carry: readonly CarryTarget[] }[] {
  return [...SLOTS.values()].map((s) => ({ name: s.name, carry: Object.keys(s.options.carry ?? {}) as CarryTarget[] }));
}

/**
 * Gives `to`, a later route context of `from`'s request (or a detached
 * context saving it for one), a copy of every slot value `from` has that is
 * carried into `target`; `to` keeps nothing else of those slots.
 */
export function carryMessageState(from: MessageContext, to: MessageContext, target: CarryTarget): void {
  for (const slot of SLOTS.values()) {
    const copy = slot.options.carry?.[target];
    if (copy === undefined) continue;
    const value = slot.get(from);
    if (value === undefined) slot.delete(to);
    else slot.set(to, copy(value));
  }
}
