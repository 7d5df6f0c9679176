/**
 * KSR.registrar (Kamailio registrar over usrloc): REGISTER processing
 * (RFC 3261 §10.3), location lookup for routing (§16.5 / §10.3's purpose),
 * Path (RFC 3327) and SIP Outbound instance identity (RFC 5626 §6).
 *
 * Bindings live in ctx.host.data.locations under the message's tenant
 * (ctx.tenant.id) and the table named by the script ("location"); behaviour
 * switches are the registrar settings (Kamailio modparams) of ctx.host.data.
 * Return codes are Kamailio 5.6's:
 *   save: 1 inserted, 2 updated, 3 deleted, 4 bindings returned (no
 *         Contact); -1 error (the error reply was sent), -2 too many contacts.
 *   lookup: 1 found, -1 none, -2 found but none accepts the method, -3 error.
 *   registered: 1 / -1.   unregister: 1 done, -1 bad AoR, -2 error, -3 not found.
 *
 * Not provided: GRUU (RFC 5627 pub-/temp-gruu in replies and lookups),
 * expires randomisation (expires_range; flag 0x08 is accepted and has
 * nothing to turn off), add_sock_hdr, reg_fetch_contacts/reg_free_contacts
 * ($ulc), registered_flags/registered_action (match options via xavp_cfg).
 */
import { overQuota } from "../core/quota.js";
import { randomBytes } from "node:crypto";
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import type { Binding, DataServices, RegistrarSettings } from "../storage/index.js";
import { splitHeaderValues } from "../sip/headers.js";
import { headerParam, parseNameAddr } from "../sip/nameaddr.js";
import { unescapeUriPart } from "../sip/uri.js";
import { parseListenSocket } from "../transport/listen-socket.js";
import { appendBranch, appendedBranches, clearBranches, parseQValue, type BranchTarget } from "../proxy/branch-set.js";
import { setPathRoute } from "../proxy/path-route.js";
import { firstHeaderOf, headerIndexes, parseUriCached, toBody } from "./msgutil.js";
import { receivedFor } from "./nathelper.js";
import { replyWithHeaders } from "./local-reply.js";
import type { KemiModule } from "./types.js";
import { StoreUnavailableError } from "../storage/redis/keys.js";

// ------------------------------------------------------------ save flags

/** save() flag bits (Kamailio REG_SAVE_*_FL). */
export const SAVE_MEMORY_ONLY = 0x01;
export const SAVE_NO_REPLY = 0x02;
export const SAVE_ONE_CONTACT = 0x04;
export const SAVE_NO_EXPIRES_VARIATION = 0x08;
export const SAVE_PREPARE_REPLY = 0x10;

// ---------------------------------------------------------------- errors

/** A reason to refuse a REGISTER: the reply status and the P-Registrar-Error text. */
interface RegistrarError {
  readonly status: number;
  readonly info: string;
  /** Extra reply header lines (Min-Expires, Unsupported ...), CRLF-terminated. */
  readonly headers?: readonly string[];
}

const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  400: "Bad Request",
  420: "Bad Extension",
  423: "Interval Too Brief",
  500: "Server Internal Error",
  503: "Service Unavailable",
};

const ERR = {
  parseExpires: { status: 400, info: "Expires parse error" },
  parseContact: { status: 400, info: "Contact parse error" },
  starExpires: { status: 400, info: "* used in contact and expires is not zero" },
  starContacts: { status: 400, info: "* used in contact and more than 1 contact" },
  contactLength: { status: 400, info: "Contact/received too long" },
  invalidQ: { status: 400, info: "Invalid q param in contact" },
  invalidRegId: { status: 400, info: "Invalid Reg-Id number" },
  invalidCseq: { status: 400, info: "Invalid CSeq number" },
  parsePath: { status: 400, info: "Path parse error" },
  tooMany: { status: 503, info: "Too many registered contacts" },
  // The tenant's quota of AoRs (host/core/quota.ts): the binding cannot be
  // stored, as when Kamailio's usrloc cannot insert (500 by sl_reply_error).
  tenantQuota: { status: 500, info: "Server Internal Error" },
  // The shared location store (Redis) is away: usrloc cannot get the record.
  storeUnavailable: { status: 500, info: "Error while getting record" },
} as const satisfies Record<string, RegistrarError>;

class RegistrarFailure extends Error {
  constructor(readonly error: RegistrarError) {
    super(error.info);
  }
}

// ---------------------------------------------------------------- AoR

/** Kamailio's AOR_MAX_SIZE: longer AoRs are refused. */
const AOR_MAX_LENGTH = 512;

/**
 * The address-of-record key of a URI (RFC 3261 §10.3 step 5): the
 * unescaped user part, with "@host" when the registrar uses domains;
 * lowercase unless case-sensitive (then only the host is lowercased).
 * Undefined when the URI does not parse or is too long.
 */
export function aorOf(uriText: string, settings: RegistrarSettings): string | undefined {
  const u = parseUriCached(uriText.trim());
  if (u === null) return undefined;
  let user = u.user === undefined ? "" : unescapeUriPart(u.user);
  if (!settings.caseSensitive) user = user.toLowerCase();
  const aor = settings.useDomain ? (user.length > 0 ? `${user}@` : "") + u.host.toLowerCase() : user;
  return aor.length > AOR_MAX_LENGTH ? undefined : aor;
}

// ---------------------------------------------------------------- parsing

interface RequestedContact {
  readonly uri: string;
  readonly expiresParam: string | undefined;
  readonly qParam: string | undefined;
  /** +sip.instance without surrounding double quotes. */
  readonly instance: string;
  readonly regIdParam: string | undefined;
}

interface RegisterContacts {
  readonly star: boolean;
  readonly contacts: readonly RequestedContact[];
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, "$1") : v;
}

/** Expires header as delta-seconds (RFC 3261 §20.19), undefined when absent. */
function expiresHeader(ctx: MessageContext): number | undefined {
  const h = firstHeaderOf(ctx.msg, "expires");
  if (h === undefined) return undefined;
  const v = h.value.trim();
  if (!/^\d+$/.test(v)) throw new RegistrarFailure(ERR.parseExpires);
  return clampDelta(v);
}

/** Delta-seconds above 2^32-1 are taken as 2^32-1 (RFC 3261 §20.19 / §10.2.1.1). */
function clampDelta(digits: string): number {
  const n = Number(digits);
  return n > 0xffffffff ? 0xffffffff : n;
}

/**
 * Every Contact of the REGISTER, and whether it is the "*" wildcard, checked
 * as RFC 3261 §10.3 step 6 requires: "*" only alone and only with Expires: 0.
 */
function registerContacts(ctx: MessageContext, settings: RegistrarSettings, expiresHdr: number | undefined): RegisterContacts {
  const contacts: RequestedContact[] = [];
  let star = false;
  let first = true;
  let fields = 0;
  for (const i of headerIndexes(ctx.msg, "contact")) {
    fields++;
    for (const element of splitHeaderValues(ctx.msg.headers[i]!.value)) {
      if (element === "*") {
        if (!first) throw new RegistrarFailure(ERR.starContacts);
        star = true;
        first = false;
        continue;
      }
      if (star) throw new RegistrarFailure(ERR.starContacts);
      first = false;
      const na = parseNameAddr(element);
      if (na === null || parseUriCached(na.uri) === null) throw new RegistrarFailure(ERR.parseContact);
      if (na.uri.length > settings.contactMaxSize) throw new RegistrarFailure(ERR.contactLength);
      const instance = headerParam(na, "+sip.instance");
      contacts.push({
        uri: na.uri,
        expiresParam: headerParam(na, "expires"),
        qParam: headerParam(na, "q"),
        instance: instance === undefined ? "" : unquote(instance),
        regIdParam: headerParam(na, "reg-id"),
      });
    }
  }
  if (star) {
    if (fields > 1) throw new RegistrarFailure(ERR.starContacts);
    if (expiresHdr !== 0) throw new RegistrarFailure(ERR.starExpires);
  }
  return { star, contacts };
}

/** The option tags of Supported (k) / Require headers, lowercase. */
function optionTags(ctx: MessageContext, key: "supported" | "require"): Set<string> {
  const tags = new Set<string>();
  for (const i of headerIndexes(ctx.msg, key)) {
    for (const t of splitHeaderValues(ctx.msg.headers[i]!.value)) tags.add(t.toLowerCase());
  }
  return tags;
}

/** The Path header values in order, comma-joined (RFC 3327 §5.3); "" when none. */
function pathVector(ctx: MessageContext): string {
  const parts: string[] = [];
  for (const i of headerIndexes(ctx.msg, "path")) {
    for (const element of splitHeaderValues(ctx.msg.headers[i]!.value)) {
      if (parseNameAddr(element) === null) throw new RegistrarFailure(ERR.parsePath);
      parts.push(element);
    }
  }
  return parts.join(", ");
}

/** Methods of the Allow headers (RFC 3261 §20.5), upper case; empty when there is none (all allowed). */
function allowedMethods(ctx: MessageContext): string[] {
  const out: string[] = [];
  for (const i of headerIndexes(ctx.msg, "allow")) {
    for (const m of splitHeaderValues(ctx.msg.headers[i]!.value)) out.push(m.toUpperCase());
  }
  return out;
}

/**
 * Expiration interval of one contact in seconds (RFC 3261 §10.2.1.1 and
 * §10.3 step 7): the Contact's expires parameter, else the Expires header,
 * else the default; then min/max limits. A malformed parameter counts as
 * absent (as Kamailio). Returns 0 for a removal.
 */
export function contactExpires(
  param: string | undefined,
  headerValue: number | undefined,
  s: RegistrarSettings,
): number {
  let e: number;
  if (param !== undefined && /^\d+$/.test(param.trim())) e = clampDelta(param.trim());
  else e = headerValue ?? s.defaultExpires;
  if (e === 0) return 0;
  if (s.minExpires > 0 && e < s.minExpires) {
    if (s.minExpiresMode === "reject") {
      throw new RegistrarFailure({ status: 423, info: "Interval too brief", headers: [`Min-Expires: ${s.minExpires}\r\n`] });
    }
    e = s.minExpires;
  }
  if (s.maxExpires > 0 && e > s.maxExpires) e = s.maxExpires;
  return e;
}

// ---------------------------------------------------------------- replies

/** q in thousandths as a q-value (RFC 3261 §20.10): 1000 → "1", 500 → "0.5", 50 → "0.05". */
export function formatQ(q: number): string {
  if (q >= 1000) return "1";
  if (q <= 0) return "0";
  return ("0." + String(q).padStart(3, "0")).replace(/0+$/, "");
}

/**
 * The Contact header of a 200 OK to REGISTER (RFC 3261 §10.3 step 8): every
 * current binding with its remaining expires, q, received address and
 * instance identity. Undefined when there are none.
 */
export function bindingsContactHeader(bindings: readonly Binding[], now: number, s: RegistrarSettings): string | undefined {
  const parts: string[] = [];
  for (const b of bindings) {
    if (b.expires <= now) continue;
    let p = `<${b.contact}>`;
    if (b.q >= 0) p += `;q=${formatQ(b.q)}`;
    p += `;expires=${Math.ceil((b.expires - now) / 1000)}`;
    if (s.receivedParam !== "" && b.received !== "") p += `;${s.receivedParam}="${b.received}"`;
    if (b.instance !== "") p += `;+sip.instance="${b.instance}"`;
    if (b.regId > 0) p += `;reg-id=${b.regId}`;
    parts.push(p);
  }
  return parts.length === 0 ? undefined : `Contact: ${parts.join(", ")}\r\n`;
}

function errorReplyLines(e: RegistrarError, s: RegistrarSettings): string[] {
  const lines = [...(e.headers ?? []), `P-Registrar-Error: ${e.info}\r\n`];
  if (e.status >= 500 && s.retryAfter > 0) lines.push(`Retry-After: ${s.retryAfter}\r\n`);
  return lines;
}

/** A 200 OK that save() prepared but did not send (flag 0x02), for reg_send_reply(). */
interface PendingReply {
  readonly lines: readonly string[];
  /** The lines are already in ctx.replyHeaders (flag 0x10). */
  readonly prepared: boolean;
}

const pendingReplies = new ContextSlot<PendingReply>("registrar.pendingReply");
const qOverrides = new ContextSlot<number>("registrar.qOverride");

// ---------------------------------------------------------------- save

function dataOf(ctx: MessageContext, fn: string): DataServices | undefined {
  const data = ctx.host.data;
  if (data === undefined) ctx.host.log("err", `registrar: ${fn}: this host has no location database\n`, ctx);
  return data;
}

function newRuid(): string {
  return "ul" + randomBytes(9).toString("base64url");
}

/** Whether a binding and a requested contact are the same binding (RFC 5626 §6 / RFC 3261 §10.3 step 6). */
function sameBinding(b: Binding, c: RequestedContact, regId: number): boolean {
  if (c.instance !== "") return b.instance !== "" && b.regId === regId && stripAngles(b.instance) === stripAngles(c.instance);
  return b.contact === c.uri;
}

function stripAngles(v: string): string {
  return v.startsWith("<") && v.endsWith(">") ? v.slice(1, -1) : v;
}

/** The receiving socket as "proto:ip:port" (stored, and forced again by lookup). */
function socketText(ctx: MessageContext): string {
  const ip = ctx.rcv.localIp.includes(":") ? `[${ctx.rcv.localIp}]` : ctx.rcv.localIp;
  return `${ctx.rcv.proto}:${ip}:${ctx.rcv.localPort}`;
}

interface SaveOutcome {
  readonly code: number;
  readonly next: readonly Binding[];
}

/**
 * Apply the REGISTER's contacts to the AoR's current bindings (RFC 3261
 * §10.3 steps 6-7, Kamailio's update rules): nothing is stored unless every
 * contact is acceptable.
 */
function applyContacts(
  ctx: MessageContext,
  data: DataServices,
  current: readonly Binding[],
  req: RegisterContacts,
  expiresHdr: number | undefined,
  aor: string,
  flags: number,
  now: number,
): SaveOutcome {
  const s = data.registrar;
  if (req.contacts.length === 0) return { code: req.star ? 3 : 4, next: req.star ? [] : current };

  const callId = ctx.msg.callId;
  const cseq = ctx.msg.cseq.seq;
  const oneContact = (flags & SAVE_ONE_CONTACT) !== 0;
  const outbound = optionTags(ctx, "supported").has("outbound") || optionTags(ctx, "require").has("outbound");
  const path = s.pathMode === "off" ? "" : pathVector(ctx);
  const common = {
    aor,
    callId,
    cseq,
    path,
    received: receivedFor(ctx) ?? "",
    userAgent: firstHeaderOf(ctx.msg, "user-agent")?.value ?? "",
    socket: socketText(ctx),
    branchFlags: ctx.branchFlags[0] ?? 0,
    methods: allowedMethods(ctx),
    lastModified: now,
    memoryOnly: (flags & SAVE_MEMORY_ONLY) !== 0,
  };

  interface Planned {
    readonly contact: RequestedContact;
    readonly expires: number;
    readonly q: number;
    readonly regId: number;
  }
  const planned: Planned[] = req.contacts.map((c) => {
    const expires = contactExpires(c.expiresParam, expiresHdr, s);
    let q = qOverrides.get(ctx) ?? s.defaultQ;
    if (!(qOverrides.get(ctx) !== undefined) && c.qParam !== undefined && c.qParam !== "") {
      const parsed = parseQValue(c.qParam);
      if (parsed === undefined) throw new RegistrarFailure(ERR.invalidQ);
      q = parsed;
    }
    let regId = 0;
    if (c.regIdParam !== undefined && c.instance !== "" && (outbound || s.regIdWithoutOutbound)) {
      // reg-id = 1*DIGIT, 1..2^31-1 (RFC 5626 §4.2)
      if (!/^\d{1,10}$/.test(c.regIdParam) || Number(c.regIdParam) < 1 || Number(c.regIdParam) > 0x7fffffff) {
        throw new RegistrarFailure(ERR.invalidRegId);
      }
      regId = Number(c.regIdParam);
    }
    return { contact: c, expires, q, regId };
  });

  /** -1: CSeq refused; 0: a retransmission to skip; 1: go on (RFC 3261 §10.3 step 7). */
  const cseqCheck = (b: Binding): -1 | 0 | 1 => {
    if (b.callId !== callId) return 1;
    if (cseq > b.cseq) return 1;
    if (cseq === b.cseq && b.lastModified + s.cseqDelaySec * 1000 > now) return 0;
    return -1;
  };

  if (!oneContact && s.maxContacts > 0) {
    let count = current.length;
    for (const p of planned) {
      const found = current.find((b) => sameBinding(b, p.contact, p.regId));
      if (found === undefined) {
        if (p.expires !== 0) count++;
        continue;
      }
      const check = cseqCheck(found);
      if (check < 0) throw new RegistrarFailure(ERR.invalidCseq);
      if (check === 0) continue;
      if (p.expires === 0) count--;
    }
    if (count > s.maxContacts) throw new RegistrarFailure(ERR.tooMany);
  }

  // A new AoR counts against the tenant's quota of registered AoRs.
  if (current.length === 0 && planned.some((p) => p.expires !== 0) && data.locations.aorCount(ctx.tenant.id) >= ctx.tenant.quotas.aors) {
    overQuota(ctx, "aors", `registering ${aor.slice(0, 128)}`);
    throw new RegistrarFailure(ERR.tenantQuota);
  }

  let next = [...current];
  let code = 0;
  for (const p of planned) {
    const index = next.findIndex((b) => sameBinding(b, p.contact, p.regId));
    const found = index === -1 ? undefined : next[index]!;
    if (found !== undefined) {
      const check = cseqCheck(found);
      if (check < 0) throw new RegistrarFailure(ERR.invalidCseq);
      if (check === 0) {
        if (p.expires !== 0 && oneContact) break;
        continue;
      }
    }
    const fields = {
      ...common,
      contact: p.contact.uri,
      expires: now + p.expires * 1000,
      q: p.q,
      instance: p.contact.instance,
      regId: p.regId,
    };
    if (found === undefined) {
      if (p.expires === 0) continue;
      const inserted: Binding = { ...fields, ruid: newRuid(), seq: 0 };
      next = oneContact ? [inserted] : [...next, inserted];
      code = 1;
    } else if (p.expires === 0) {
      next.splice(index, 1);
      code = 3;
      continue;
    } else {
      const updated: Binding = { ...fields, ruid: found.ruid, seq: found.seq };
      if (oneContact) next = [updated];
      else {
        // A new Call-ID for an instance means the UA restarted: its older
        // flows are gone (RFC 5626 §6, Kamailio's registrar).
        if (p.contact.instance !== "" && found.callId !== callId) {
          next = next.filter((b) => b === found || stripAngles(b.instance) !== stripAngles(found.instance));
        }
        next = next.map((b) => (b === found ? updated : b));
      }
      code = 2;
    }
    if (oneContact) break;
  }
  return { code: code === 0 ? 1 : code, next };
}

function save(ctx: MessageContext, table: string, flags: number, uri: string): number {
  const data = dataOf(ctx, "save");
  if (data === undefined) return -1;
  if (!ctx.isRequest) {
    ctx.host.log("err", "registrar: save() from a reply route is not supported\n", ctx);
    return -1;
  }
  const s = data.registrar;
  const toUri = uri.length > 0 ? uri : toBody(ctx.msg, "to")?.nameAddr.uri;
  const aor = toUri === undefined ? undefined : aorOf(toUri, s);
  if (aor === undefined) {
    ctx.host.log("err", "registrar: failed to extract Address Of Record\n", ctx);
    return -1;
  }
  const sendReply = (flags & SAVE_NO_REPLY) === 0;
  const now = ctx.host.now();
  try {
    const expiresHdr = expiresHeader(ctx);
    const req = registerContacts(ctx, s, expiresHdr);
    const supported = optionTags(ctx, "supported");
    const hasPath = s.pathMode !== "off" && headerIndexes(ctx.msg, "path").length > 0;
    if (hasPath && s.pathMode === "strict" && !supported.has("path")) {
      // RFC 3327 §5.3: Path needs the UA's support; refused with 420.
      throw new RegistrarFailure({ status: 420, info: "No support for found Path indicated", headers: ["Unsupported: path\r\n"] });
    }
    const current = data.locations.bindings(ctx.tenant.id, table, aor).filter((b) => b.expires > now);
    const outcome = applyContacts(ctx, data, current, req, expiresHdr, aor, flags, now);
    if (outcome.next !== current) data.locations.replace(ctx.tenant.id, table, aor, outcome.next);

    const lines: string[] = [];
    const contact = bindingsContactHeader(outcome.next, now, s);
    if (contact !== undefined) lines.push(contact);
    if (hasPath && s.pathMode !== "store" && supported.has("path")) lines.push(`Path: ${pathVector(ctx)}\r\n`);
    if (sendReply) {
      if (replyWithHeaders(ctx, 200, REASONS[200]!, lines) < 0) return -1;
    } else {
      const prepared = (flags & SAVE_PREPARE_REPLY) !== 0;
      if (prepared) ctx.replyHeaders.push(...lines);
      pendingReplies.set(ctx, { lines, prepared });
    }
    return outcome.code;
  } catch (caught) {
    const err = caught instanceof StoreUnavailableError ? new RegistrarFailure(ERR.storeUnavailable) : caught;
    if (!(err instanceof RegistrarFailure)) throw err;
    const e = err.error;
    const reason = REASONS[e.status] ?? "Error";
    ctx.lastError = { status: e.status, reason };
    ctx.host.log("info", `registrar: REGISTER for ${aor} refused: ${e.status} ${e.info}\n`, ctx);
    if (sendReply) replyWithHeaders(ctx, e.status, reason, errorReplyLines(e, s));
    return e === ERR.tooMany ? -2 : -1;
  }
}

// ---------------------------------------------------------------- lookup

/** First URI of a Path vector: the next hop towards the UA (RFC 3327 §5.3). */
function firstPathUri(path: string): string | undefined {
  const first = splitHeaderValues(path)[0];
  return first === undefined ? undefined : parseNameAddr(first)?.uri;
}

/** The stored socket when it is still one of ours (a restart may listen elsewhere). */
function liveSocket(ctx: MessageContext, socket: string): string | undefined {
  if (socket === "") return undefined;
  let parsed;
  try {
    parsed = parseListenSocket(socket);
  } catch {
    return undefined;
  }
  return ctx.host.listen.some((l) => l.proto === parsed.proto && l.ip === parsed.ip && l.port === parsed.port) ? socket : undefined;
}

/** Where a request to the binding goes first: the Path's first hop, else the received address. */
function nextHopOf(b: Binding): string | undefined {
  if (b.path !== "") return firstPathUri(b.path);
  return b.received !== "" ? b.received : undefined;
}

type Resolution =
  | { readonly found: true; readonly targets: readonly Binding[] }
  | { readonly found: false; readonly code: -1 | -2 | -3 };

/**
 * The bindings a request to the URI may go to, best first: valid ones that
 * accept the method when method filtering applies (initial requests only).
 */
function resolve(ctx: MessageContext, data: DataServices, table: string, uriText: string): Resolution {
  const aor = aorOf(uriText, data.registrar);
  if (aor === undefined) {
    ctx.host.log("err", "registrar: failed to extract address of record\n", ctx);
    return { found: false, code: -3 };
  }
  const now = ctx.host.now();
  const valid = data.locations.bindings(ctx.tenant.id, table, aor).filter((b) => b.expires > now);
  if (valid.length === 0) return { found: false, code: -1 };
  const filtering = data.registrar.methodFiltering && ctx.isRequest && toBody(ctx.msg, "to")?.tag === undefined;
  if (!filtering) return { found: true, targets: valid };
  const method = ctx.msg.method.toUpperCase();
  const targets = valid.filter((b) => b.methods.length === 0 || b.methods.includes(method));
  return targets.length > 0 ? { found: true, targets } : { found: false, code: -2 };
}

/**
 * Append a branch with its own next hop, socket, q and branch flags.
 * appendBranch takes the next hop and socket from the R-URI branch ($du,
 * $fs), so they are swapped in for the call.
 */
function pushBranch(
  ctx: MessageContext,
  uri: string,
  dst: string | undefined,
  socket: string | undefined,
  q: number,
  flags: number,
  path: string,
): boolean {
  const savedDst = ctx.dstUri;
  const savedSocket = ctx.sendSocket;
  ctx.dstUri = dst;
  ctx.sendSocket = socket;
  let ok: boolean;
  try {
    ok = appendBranch(ctx, uri, q >= 0 ? formatQ(q) : undefined, path);
  } finally {
    ctx.dstUri = savedDst;
    ctx.sendSocket = savedSocket;
  }
  if (ok) ctx.branchFlags[ctx.branchFlags.length - 1] = flags;
  return ok;
}

function pushBinding(ctx: MessageContext, b: Binding): boolean {
  return pushBranch(ctx, b.contact, nextHopOf(b), liveSocket(ctx, b.socket), b.q, b.branchFlags, b.path);
}

/**
 * lookup(): the best binding becomes the R-URI (its Path or received
 * address the next hop, its socket and branch flags restored) and the
 * others become branches for parallel forking (RFC 3261 §16.6, by q).
 * `toDset`: every binding becomes a branch and the R-URI stays.
 */
function lookup(ctx: MessageContext, table: string, uri: string, toDset: boolean): number {
  const data = dataOf(ctx, "lookup");
  if (data === undefined) return -3;
  if (!ctx.isRequest) {
    ctx.host.log("err", "registrar: lookup() needs a request\n", ctx);
    return -3;
  }
  const r = resolve(ctx, data, table, uri.length > 0 ? uri : ctx.requestUri);
  if (!r.found) return r.code;
  let rest = r.targets;
  if (!toDset) {
    const best = r.targets[0]!;
    ctx.setRequestUri(best.contact);
    ctx.dstUri = nextHopOf(best);
    setPathRoute(ctx, best.path);
    const socket = liveSocket(ctx, best.socket);
    if (socket !== undefined) ctx.sendSocket = socket;
    ctx.branchFlags[0] = ((ctx.branchFlags[0] ?? 0) | best.branchFlags) >>> 0;
    rest = r.targets.slice(1);
  }
  if (data.registrar.appendBranches) {
    for (const b of rest) {
      if (!pushBinding(ctx, b)) ctx.host.log("err", `registrar: failed to append a branch for ${b.contact}\n`, ctx);
    }
  }
  return 1;
}

/**
 * lookup_branches(): lookup() for the R-URI and for every appended branch
 * that carries nothing but a URI (no next hop, socket or flags); such a
 * branch is replaced by its best binding and its other bindings are added
 * at the end, as in Kamailio.
 */
function lookupBranches(ctx: MessageContext, table: string): number {
  const data = dataOf(ctx, "lookup_branches");
  if (data === undefined) return -3;
  const originalCount = appendedBranches(ctx).length;
  let ret = lookup(ctx, table, "", false);
  if (originalCount === 0) return ret;
  let found = ret > 0;
  const branches: BranchTarget[] = [...appendedBranches(ctx)];
  const flags = ctx.branchFlags.slice(1);
  clearBranches(ctx);
  const extras: Binding[] = [];
  branches.forEach((b, i) => {
    const f = flags[i] ?? 0;
    const clean = i < originalCount && b.dstUri === undefined && b.sendSocket === undefined && f === 0;
    if (clean) {
      const r = resolve(ctx, data, table, b.uri);
      ret = r.found ? 1 : r.code;
      if (r.found) {
        found = true;
        pushBinding(ctx, r.targets[0]!);
        if (data.registrar.appendBranches) extras.push(...r.targets.slice(1));
        return;
      }
    }
    pushBranch(ctx, b.uri, b.dstUri, b.sendSocket, b.q, f, b.path);
  });
  for (const b of extras) pushBinding(ctx, b);
  return found ? 1 : ret;
}

/**
 * Run a location read or change; when the shared store is unavailable the
 * call fails with `code` (Kamailio's "internal error" code of the function),
 * logged.
 */
function withStore(ctx: MessageContext, fn: string, code: number, body: () => number): number {
  try {
    return body();
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    ctx.host.log("err", `registrar: ${fn}(): ${err.message}\n`, ctx);
    return code;
  }
}

// ------------------------------------------------------------ registered

function registered(ctx: MessageContext, table: string, uri: string): number {
  const data = dataOf(ctx, "registered");
  if (data === undefined) return -1;
  const target = uri.length > 0 ? uri : ctx.isRequest ? ctx.requestUri : toBody(ctx.msg, "to")?.nameAddr.uri;
  const aor = target === undefined ? undefined : aorOf(target, data.registrar);
  if (aor === undefined) {
    ctx.host.log("err", "registrar: failed to extract address of record\n", ctx);
    return -1;
  }
  const now = ctx.host.now();
  return data.locations.bindings(ctx.tenant.id, table, aor).some((b) => b.expires > now) ? 1 : -1;
}

function unregister(ctx: MessageContext, table: string, uri: string, ruid: string): number {
  const data = dataOf(ctx, "unregister");
  if (data === undefined) return -2;
  const tenant = ctx.tenant.id;
  if (ruid.length === 0 || uri.length > 0) {
    const target = uri.length > 0 ? uri : toBody(ctx.msg, "to")?.nameAddr.uri;
    const aor = target === undefined ? undefined : aorOf(target, data.registrar);
    if (aor === undefined) {
      ctx.host.log("err", "registrar: failed to extract Address Of Record\n", ctx);
      return -1;
    }
    const current = data.locations.bindings(tenant, table, aor);
    if (ruid.length === 0) {
      data.locations.replace(tenant, table, aor, []);
      return 1;
    }
    if (!current.some((b) => b.ruid === ruid)) return -3;
    data.locations.replace(tenant, table, aor, current.filter((b) => b.ruid !== ruid));
    return 1;
  }
  const hit = data.locations.findByRuid(tenant, table, ruid);
  if (hit === undefined) return -3;
  const rest = data.locations.bindings(tenant, table, hit.aor).filter((b) => b.ruid !== ruid);
  data.locations.replace(tenant, table, hit.aor, rest);
  return 1;
}

// ---------------------------------------------------------------- table

export const registrarModule: KemiModule = {
  name: "registrar",
  kamailioModule: "registrar",
  functions: {
    save: {
      params: ["str", "int"],
      returns: "int",
      doc: "Process the REGISTER's contacts for its To AoR and reply (200 with the bindings, or the error). Flags: 0x01 memory only, 0x02 no reply, 0x04 one contact per AoR, 0x10 with 0x02 put the reply headers on the next reply. 1 inserted, 2 updated, 3 deleted, 4 returned; -1 error, -2 too many contacts.",
      run: (ctx, table: string, flags: number) => save(ctx, table, flags, ""),
    },
    save_uri: {
      params: ["str", "int", "str"],
      returns: "int",
      doc: "save() for the AoR of the given URI instead of the To URI.",
      run: (ctx, table: string, flags: number, uri: string) => save(ctx, table, flags, uri),
    },
    lookup: {
      params: ["str"],
      returns: "int",
      doc: "R-URI := best binding of the R-URI's AoR (its Path/received as $du), the others appended as branches by q. 1 found, -1 none, -2 none accepts the method, -3 error.",
      run: (ctx, table: string) => withStore(ctx, "lookup", -3, () => lookup(ctx, table, "", false)),
    },
    lookup_uri: {
      params: ["str", "str"],
      returns: "int",
      doc: "lookup() for the AoR of the given URI.",
      run: (ctx, table: string, uri: string) => withStore(ctx, "lookup", -3, () => lookup(ctx, table, uri, false)),
    },
    lookup_to_dset: {
      params: ["str", "str"],
      returns: "int",
      doc: "Append every binding of the URI's AoR (R-URI when \"\") as branches; the R-URI stays. Codes as lookup().",
      run: (ctx, table: string, uri: string) => withStore(ctx, "lookup_to_dset", -3, () => lookup(ctx, table, uri, true)),
    },
    lookup_branches: {
      params: ["str"],
      returns: "int",
      doc: "lookup() for the R-URI and every appended branch that has only a URI. 1 if any was found, else the last lookup's code.",
      run: (ctx, table: string) => withStore(ctx, "lookup_branches", -3, () => lookupBranches(ctx, table)),
    },
    registered: {
      params: ["str"],
      returns: "int",
      doc: "1 if the R-URI's AoR (To URI for replies) has a valid binding, -1 otherwise.",
      run: (ctx, table: string) => withStore(ctx, "registered", -1, () => registered(ctx, table, "")),
    },
    registered_uri: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 if the URI's AoR has a valid binding, -1 otherwise.",
      run: (ctx, table: string, uri: string) => withStore(ctx, "registered", -1, () => registered(ctx, table, uri)),
    },
    unregister: {
      params: ["str", "str"],
      returns: "int",
      doc: "Remove every binding of the URI's AoR (To URI when \"\"). 1 done, -1 bad AoR.",
      run: (ctx, table: string, uri: string) => withStore(ctx, "unregister", -2, () => unregister(ctx, table, uri, "")),
    },
    unregister_ruid: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: "Remove the binding with that ruid (of the URI's AoR, or any AoR when the URI is \"\"). 1 done, -1 bad AoR, -3 not found.",
      run: (ctx, table: string, uri: string, ruid: string) => withStore(ctx, "unregister", -2, () => unregister(ctx, table, uri, ruid)),
    },
    reg_send_reply: {
      params: [],
      returns: "int",
      doc: "Send the 200 OK a save() with flag 0x02 left unsent. 1 sent, -1 nothing pending or send failed.",
      run(ctx) {
        const pending = pendingReplies.get(ctx);
        if (pending === undefined) {
          ctx.host.log("err", "registrar: no reply prepared by save()\n", ctx);
          return -1;
        }
        pendingReplies.delete(ctx);
        const code = replyWithHeaders(ctx, 200, REASONS[200]!, pending.prepared ? [] : pending.lines);
        return code < 0 ? -1 : 1;
      },
    },
    set_q_override: {
      params: ["str"],
      returns: "int",
      doc: "q-value (\"0.5\") that the next save() of this message gives every contact. 1 ok, -1 invalid.",
      run(ctx, q: string) {
        const parsed = parseQValue(q);
        if (parsed === undefined) {
          ctx.host.log("err", `registrar: invalid q value ${q}\n`, ctx);
          return -1;
        }
        qOverrides.set(ctx, parsed);
        return 1;
      },
    },
  },
  // Native functions (Kamailio registrar cmd exports) for KSR.x.modf.
  native: [
    { name: "save", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "save", refused: "fixup without free" },
    { name: "save", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "save", refused: "fixup without free" },
    { name: "save", params: ["str", "str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "save_uri", refused: "fixup without free" },
    { name: "lookup", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "lookup", refused: "fixup without free" },
    { name: "lookup", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "lookup_uri", refused: "fixup without free" },
    { name: "lookup_to_dset", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "lookup_to_dset", refused: "fixup without free" },
    { name: "lookup_to_dset", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "lookup_to_dset", refused: "fixup without free" },
    { name: "registered", params: ["str"], routes: ["ANY_ROUTE"], kemi: "registered", refused: "fixup without free" },
    { name: "registered", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "registered_uri", refused: "fixup without free" },
    { name: "unregister", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "unregister", refused: "fixup without free" },
    { name: "unregister", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "unregister_ruid", refused: "fixup without free" },
    { name: "lookup_branches", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "lookup_branches", refused: "fixup without free" },
    { name: "reg_send_reply", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "reg_send_reply" },
  ],
};
