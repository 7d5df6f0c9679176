/**
 * KSR.nathelper (Kamailio nathelper module): detecting user agents behind
 * NAT and making their Contact reachable. Return codes follow Kamailio
 * 5.6 with the module's default parameters (nat_addr_mode=1, alias_name
 * "alias").
 *
 * Contact changes follow Kamailio's lump model: they become header edits
 * applied when the message is sent, while reads of the message (including
 * the registrar's) keep seeing the Contact as received. The source address
 * for the registrar comes from fix_nated_register instead; the registrar
 * reads it with {@link receivedFor}.
 *
 * "Private" addresses are Kamailio's list: RFC 1918 (10/8, 172.16/12,
 * 192.168/16), RFC 6598 shared address space (100.64/10) and the IETF
 * protocol assignments block 192.0.0.0/24 (RFC 7335, RFC 6890). Only IPv4
 * addresses can be private, as in Kamailio (an IPv6 ULA is not);
 * IPv4-mapped IPv6 source addresses (::ffff:a.b.c.d, as dual-stack sockets
 * report IPv4 peers) are read as the IPv4 address.
 */
import { isIP } from "node:net";
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import type { KemiModule } from "./types.js";
import { parseVia, type Via } from "../sip/via.js";
import { splitHeaderValues } from "../sip/headers.js";
import { formatUri, parseUri, uriParam, type SipUri } from "../sip/uri.js";
import { firstHeaderOf } from "./msgutil.js";
import { lookupPv, PROTO_IDS } from "./pv.js";

// ------------------------------------------------------------ addresses

/** [network, prefix length] pairs Kamailio treats as private (nat_addr_mode=1). */
const PRIVATE_V4_NETWORKS: readonly (readonly [number, number])[] = [
  [0x0a000000, 8], // 10.0.0.0/8, RFC 1918
  [0xac100000, 12], // 172.16.0.0/12, RFC 1918
  [0xc0a80000, 16], // 192.168.0.0/16, RFC 1918
  [0x64400000, 10], // 100.64.0.0/10, RFC 6598 carrier-grade NAT
  [0xc0000000, 24], // 192.0.0.0/24, RFC 6890 IETF protocol assignments (includes RFC 7335's /29)
];

/** Dotted-quad IPv4 text as a 32-bit number, or undefined. */
function ipv4Number(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** True when the text is an IPv4 address in one of the private networks. */
export function isPrivateIPv4(text: string): boolean {
  const n = ipv4Number(text);
  if (n === undefined) return false;
  return PRIVATE_V4_NETWORKS.some(([net, bits]) => Math.floor(n / 2 ** (32 - bits)) === Math.floor(net / 2 ** (32 - bits)));
}

/**
 * Canonical text of an IP address (brackets removed, IPv6 compressed and
 * lowercase, IPv4-mapped IPv6 as IPv4), or undefined when it is not an IP
 * address.
 */
export function canonicalIp(text: string): string | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const family = isIP(bare);
  if (family === 4) return bare;
  if (family !== 6) return undefined;
  let canonical: string;
  try {
    canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped !== null) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return canonical;
}

function sameIp(a: string, b: string): boolean {
  const ca = canonicalIp(a);
  return ca !== undefined && ca === canonicalIp(b);
}

/** The source address as written in a URI host ("[v6]" for IPv6). */
function sourceHost(ctx: MessageContext): string {
  const ip = canonicalIp(ctx.rcv.srcIp) ?? ctx.rcv.srcIp;
  return ip.includes(":") ? `[${ip}]` : ip;
}

/** Kamailio protocol number of the receiving transport (1 udp, 2 tcp ...). */
function sourceProtoNumber(ctx: MessageContext): number {
  return PROTO_IDS.get(ctx.rcv.proto) ?? 0;
}

const PROTO_NAMES: ReadonlyMap<number, string> = new Map([...PROTO_IDS].map(([name, id]) => [id, name]));

/**
 * The source as a SIP URI (Kamailio get_src_uri): sip:ip:port, with
 * ;transport=... unless UDP.
 */
export function sourceUri(ctx: MessageContext): string {
  const transport = ctx.rcv.proto === "udp" ? "" : `;transport=${ctx.rcv.proto}`;
  return `sip:${sourceHost(ctx)}:${ctx.rcv.srcPort}${transport}`;
}

// -------------------------------------------------------------- headers

function topVia(ctx: MessageContext): Via | undefined {
  const h = firstHeaderOf(ctx.msg, "via");
  return h === undefined ? undefined : parseVia(h.value)[0];
}

/** The second Via of the message (in the first Via header or the next one). */
function secondVia(ctx: MessageContext): Via | undefined {
  let seen = 0;
  for (const h of ctx.msg.headers) {
    if (h.key !== "via") continue;
    for (const v of parseVia(h.value)) if (++seen === 2) return v;
  }
  return undefined;
}

/** Where the first contact's URI sits in a Contact header value. */
interface ContactSpan {
  readonly uriStart: number;
  readonly uriEnd: number;
  /** Written as name-addr (<uri>); false for an addr-spec. */
  readonly angled: boolean;
}

/**
 * Locate the URI of the first contact in a Contact value; null for "*" or
 * an empty value. RFC 3261 §20.10: without angle brackets, everything from
 * the first ";" on is a header parameter.
 */
function firstContactSpan(value: string): ContactSpan | null {
  let i = 0;
  while (i < value.length && (value[i] === " " || value[i] === "\t")) i++;
  let inQuotes = false;
  for (let k = i; k < value.length; k++) {
    const c = value[k];
    if (inQuotes) {
      if (c === "\\") k++;
      else if (c === '"') inQuotes = false;
    } else if (c === '"') inQuotes = true;
    else if (c === "<") {
      const close = value.indexOf(">", k + 1);
      return close === -1 ? null : { uriStart: k + 1, uriEnd: close, angled: true };
    } else if (c === "," || c === ";") break;
  }
  let end = i;
  while (end < value.length && value[end] !== ";" && value[end] !== ",") end++;
  while (end > i && (value[end - 1] === " " || value[end - 1] === "\t")) end--;
  const text = value.slice(i, end);
  if (text.length === 0 || text === "*") return null;
  return { uriStart: i, uriEnd: end, angled: false };
}

/**
 * Per-message state of the Contact edits, so several nathelper calls
 * compose (set_contact_alias then add_rcv_param) and so Kamailio's "you
 * can't update contact twice" refusal can be applied.
 */
interface ContactEdits {
  /** Header index → current value after our edits. */
  readonly values: Map<number, string>;
  /** fix_nated_contact or set_contact_alias replaced the first contact's URI. */
  uriReplaced: boolean;
}

const contactEdits = new ContextSlot<ContactEdits>("nathelper.contactEdits");

function editsOf(ctx: MessageContext): ContactEdits {
  let e = contactEdits.get(ctx);
  if (e === undefined) {
    e = { values: new Map(), uriReplaced: false };
    contactEdits.set(ctx, e);
  }
  return e;
}

/** The current text of Contact header `index`, or null when another module edited or removed it. */
function currentContactValue(ctx: MessageContext, index: number): string | null {
  const ours = editsOf(ctx).values.get(index);
  if (ours !== undefined) return ours;
  if (ctx.edits.replaced.has(index)) {
    ctx.host.log("err", "nathelper: the Contact header was already changed by another function\n", ctx);
    return null;
  }
  return ctx.msg.headers[index]!.value;
}

function writeContactValue(ctx: MessageContext, index: number, value: string): void {
  editsOf(ctx).values.set(index, value);
  ctx.edits.replaced.set(index, `${ctx.msg.headers[index]!.name}: ${value}\r\n`);
}

function contactHeaderIndexes(ctx: MessageContext): number[] {
  const out: number[] = [];
  ctx.msg.headers.forEach((h, i) => {
    if (h.key === "contact") out.push(i);
  });
  return out;
}

/** The first contact's URI as received, parsed; null when there is none ("*", absent) or it is not a SIP URI. */
function receivedContactUri(ctx: MessageContext): SipUri | null {
  const h = firstHeaderOf(ctx.msg, "contact");
  if (h === undefined) return null;
  const span = firstContactSpan(h.value);
  if (span === null) return null;
  const u = parseUri(h.value.slice(span.uriStart, span.uriEnd));
  return u === null || u.scheme === "tel" ? null : u;
}

type ContactEditResult = { ok: true } | { ok: false; noContact: boolean };

/**
 * Replace the first contact's URI by `change(uri)`. The URI is put in
 * angle brackets when it was an addr-spec and `wrap` says so (a URI that
 * gains parameters must, or they would read as header parameters).
 */
function rewriteFirstContactUri(ctx: MessageContext, change: (uri: string) => string | null, wrap: boolean): ContactEditResult {
  const index = contactHeaderIndexes(ctx)[0];
  if (index === undefined) return { ok: false, noContact: true };
  const value = currentContactValue(ctx, index);
  if (value === null) return { ok: false, noContact: false };
  const span = firstContactSpan(value);
  if (span === null) return { ok: false, noContact: true };
  const next = change(value.slice(span.uriStart, span.uriEnd));
  if (next === null) return { ok: false, noContact: false };
  const uriText = !span.angled && wrap ? `<${next}>` : next;
  writeContactValue(ctx, index, value.slice(0, span.uriStart) + uriText + value.slice(span.uriEnd));
  return { ok: true };
}

// ------------------------------------------------------------------ alias

/** The alias parameter value for an address: ip~port~proto (IPv6 in brackets). */
function aliasValue(host: string, port: number | string, proto: number): string {
  return `${host}~${port}~${proto}`;
}

/** Insert `;alias=...` into a URI text after its host[:port] (add_contact_alias). */
function insertAfterHostPort(uriText: string, param: string): string | null {
  const u = parseUri(uriText);
  if (u === null || u.scheme === "tel") return null;
  const at = uriText.indexOf("@");
  const hostStart = at === -1 ? uriText.indexOf(":") + 1 : at + 1;
  let i = hostStart;
  if (uriText[i] === "[") i = uriText.indexOf("]", i) + 1;
  while (i < uriText.length && uriText[i] !== ";" && uriText[i] !== "?") i++;
  return uriText.slice(0, i) + param + uriText.slice(i);
}

/** Append `;param` to a URI text's parameters (before any ?headers, RFC 3261 §19.1.1). */
function appendUriParam(uriText: string, param: string): string {
  const q = uriText.indexOf("?");
  return q === -1 ? uriText + param : uriText.slice(0, q) + param + uriText.slice(q);
}

/** Remove the last `;alias=a~b~c` parameter (set_contact_alias(1), Kamailio uri_trim_rcv_alias). */
function trimAlias(uriText: string): string {
  const m = /;alias=[^;?~]*~[^;?~]*~[^;?]+(?=[;?]|$)(?![\s\S]*;alias=)/.exec(uriText);
  return m === null ? uriText : uriText.slice(0, m.index) + uriText.slice(m.index + m[0].length);
}

/** A parsed alias value: the URI to send to. Null (with a reason) when malformed. */
function aliasTarget(value: string, alwaysTransport: boolean): { uri: string } | { error: string } {
  const first = value.indexOf("~");
  if (first === -1) return { error: "no '~' in alias param value" };
  const second = value.indexOf("~", first + 1);
  if (second === -1) return { error: "no second '~' in alias param value" };
  const ip = value.slice(0, first);
  const port = value.slice(first + 1, second);
  const protoText = value.slice(second + 1);
  if (protoText.length === 0) return { error: "no proto in alias param" };
  if (!/^\d$/.test(protoText)) return { error: "invalid alias param value" };
  const protoName = PROTO_NAMES.get(Number(protoText));
  if (protoName === undefined) return { error: "unknown proto in alias param" };
  if (ip.length === 0) return { error: "no address in alias param" };
  const host = ip.includes(":") && !ip.startsWith("[") ? `[${ip}]` : ip;
  const transport = protoName === "udp" && !alwaysTransport ? "" : `;transport=${protoName}`;
  return { uri: `sip:${host}${port.length > 0 ? `:${port}` : ""}${transport}` };
}

function handleRuriAlias(ctx: MessageContext, mode: number): number {
  if (!ctx.isRequest) {
    ctx.host.log("err", "nathelper: handle_ruri_alias: no Request-URI in a reply\n", ctx);
    return -1;
  }
  const u = parseUri(ctx.requestUri);
  if (u === null || u.scheme === "tel") {
    ctx.host.log("err", "nathelper: while parsing Request-URI\n", ctx);
    return -1;
  }
  let index = -1;
  for (let i = 0; i < u.params.length; i++) {
    if (u.params[i]!.name === "alias" && u.params[i]!.value !== undefined) {
      index = i;
      if (mode === 0) break;
    }
  }
  // Kamailio answers 2 (not an error) when there is nothing to do.
  if (index === -1) return 2;
  const target = aliasTarget(u.params[index]!.value!, false);
  if ("error" in target) {
    ctx.host.log("err", `nathelper: ${target.error}\n`, ctx);
    return -1;
  }
  ctx.dstUri = target.uri;
  u.params.splice(index, 1);
  ctx.setRequestUri(formatUri(u));
  return 1;
}

function addContactAlias(ctx: MessageContext, host: string, port: number | string, proto: number): number {
  const param = `;alias=${aliasValue(host, port, proto)}`;
  if (editsOf(ctx).uriReplaced) {
    ctx.host.log("err", "nathelper: you can't call add_contact_alias twice, check your config!\n", ctx);
    return -1;
  }
  const r = rewriteFirstContactUri(ctx, (uri) => insertAfterHostPort(uri, param), true);
  if (r.ok) return 1;
  if (r.noContact) return 2;
  ctx.host.log("err", "nathelper: failed to get contact uri\n", ctx);
  return -1;
}

// ---------------------------------------------------------------- SDP

export interface SdpAddress {
  /** "IP4" / "IP6" as written in c=. */
  readonly family: string;
  readonly address: string;
}

export interface SdpSession {
  readonly connection: SdpAddress | undefined;
  readonly streams: { readonly connection: SdpAddress | undefined }[];
}

/** Session and per-media c= lines (RFC 4566 §5.7); null when the body is not SDP. */
function parseSdp(ctx: MessageContext): SdpSession | null {
  const ct = firstHeaderOf(ctx.msg, "content-type")?.value;
  if (ct === undefined || !/^\s*application\/sdp\s*(;|$)/i.test(ct) || ctx.msg.body.length === 0) return null;
  return parseSdpBody(ctx.msg.body);
}

/** The c= lines of an SDP body, the session's and each m= section's (RFC 4566 §5.7, §5.14). */
export function parseSdpBody(body: string): SdpSession {
  let session: SdpAddress | undefined;
  const streams: { connection: SdpAddress | undefined }[] = [];
  for (const line of body.split(/\r?\n/)) {
    if (line.startsWith("m=")) streams.push({ connection: undefined });
    else if (line.startsWith("c=")) {
      const m = /^c=IN\s+(IP4|IP6)\s+([^\s/]+)/.exec(line);
      if (m === null) continue;
      const addr = { family: m[1]!, address: m[2]! };
      if (streams.length === 0) session = addr;
      else streams[streams.length - 1]!.connection = addr;
    }
  }
  return { connection: session, streams };
}

function isNullAddress(a: SdpAddress): boolean {
  return a.family === "IP6" ? /^[0:]+$/.test(a.address) : a.address === "0.0.0.0";
}

/** Test 8: an IPv4 media address of the SDP is private. */
function sdpHasPrivateAddress(ctx: MessageContext): boolean {
  const sdp = parseSdp(ctx);
  if (sdp === null) return false;
  for (const stream of sdp.streams) {
    const addr = stream.connection ?? sdp.connection;
    // Kamailio stops at the first non-IPv4 or null (on hold) address.
    if (addr === undefined || addr.family !== "IP4" || isNullAddress(addr)) break;
    if (isPrivateIPv4(addr.address)) return true;
  }
  return false;
}

/** Test 256: the session c= address differs from the source address. */
function sdpConnectionDiffersFromSource(ctx: MessageContext): boolean {
  const sdp = parseSdp(ctx);
  if (sdp === null || sdp.connection === undefined) return false;
  return !sameIp(sdp.connection.address, ctx.rcv.srcIp);
}

/** Port of a URI as Kamailio's GET_SIP_PORT: the written one, else 5061 for TLS, else 5060. */
function uriPort(u: SipUri): number {
  if (u.port !== undefined) return u.port;
  const t = uriParam(u, "transport")?.toLowerCase();
  return u.scheme === "sips" || t === "tls" ? 5061 : 5060;
}

const isWebSocket = (transport: string | undefined): boolean => transport === "ws" || transport === "wss";

/** Test 512: the destination differs from the R-URI (requests) or the 2nd Via (replies); WebSocket targets count as different. */
function destinationDiffers(ctx: MessageContext): boolean {
  if (!ctx.isRequest) {
    const via = secondVia(ctx);
    if (via === undefined) return false;
    if (isWebSocket(via.transport.toLowerCase())) return true;
    if (via.rport !== undefined && via.rport !== "") {
      const dport = Number(via.rport);
      const vport = via.port ?? (via.transport.toUpperCase() === "TLS" ? 5061 : 5060);
      if (dport !== 0 && dport !== vport) return true;
    }
    if (via.received === undefined || via.received === "") return false;
    return hostsDiffer(via.received, via.host);
  }
  const ruri = parseUri(ctx.requestUri);
  if (ctx.dstUri === undefined) return ruri !== null && isWebSocket(uriParam(ruri, "transport")?.toLowerCase());
  const du = parseUri(ctx.dstUri);
  if (du === null || ruri === null) return false;
  if (isWebSocket(uriParam(du, "transport")?.toLowerCase())) return true;
  if (uriPort(du) !== uriPort(ruri)) return true;
  return hostsDiffer(du.host, ruri.host);
}

function hostsDiffer(a: string, b: string): boolean {
  const ia = canonicalIp(a);
  const ib = canonicalIp(b);
  if (ia === undefined && ib === undefined) return a !== b;
  return ia !== ib;
}

/** Kamailio nat_uac_test bits. */
export const NAT_TEST = {
  CONTACT_PRIVATE: 1,
  VIA_RECEIVED: 2,
  VIA_PRIVATE: 4,
  SDP_PRIVATE: 8,
  VIA_RPORT: 16,
  SOURCE_PRIVATE: 32,
  WEBSOCKET: 64,
  CONTACT_PORT: 128,
  SDP_CLINE: 256,
  DESTINATION: 512,
} as const;

function natUacTest(ctx: MessageContext, tests: number): number {
  const via = topVia(ctx);
  if (tests & NAT_TEST.VIA_RPORT && via !== undefined && ctx.rcv.srcPort !== (via.port ?? 5060)) return 1;
  // RFC 3261 §18.2.1: the sent-by address differs from the packet source.
  if (tests & NAT_TEST.VIA_RECEIVED && via !== undefined && !sameIp(via.host, ctx.rcv.srcIp)) return 1;
  if (tests & NAT_TEST.CONTACT_PRIVATE) {
    const c = receivedContactUri(ctx);
    if (c !== null && isPrivateIPv4(c.host)) return 1;
  }
  if (tests & NAT_TEST.SDP_PRIVATE && sdpHasPrivateAddress(ctx)) return 1;
  if (tests & NAT_TEST.VIA_PRIVATE && via !== undefined && isPrivateIPv4(via.host)) return 1;
  if (tests & NAT_TEST.SOURCE_PRIVATE && isPrivateIPv4(canonicalIp(ctx.rcv.srcIp) ?? "")) return 1;
  if (tests & NAT_TEST.WEBSOCKET && isWebSocket(ctx.rcv.proto)) return 1;
  if (tests & NAT_TEST.CONTACT_PORT) {
    const c = receivedContactUri(ctx);
    if (c !== null && ctx.rcv.srcPort !== (c.port ?? 5060)) return 1;
  }
  if (tests & NAT_TEST.SDP_CLINE && sdpConnectionDiffersFromSource(ctx)) return 1;
  if (tests & NAT_TEST.DESTINATION && destinationDiffers(ctx)) return 1;
  return -1;
}

// ------------------------------------------------------ fix_nated_register

const receivedUris = new ContextSlot<string>("nathelper.receivedUri");

/**
 * The source URI fix_nated_register() recorded for this message
 * (`sip:ip:port` plus `;transport=` unless UDP), or undefined when it was
 * not called. The registrar stores it as the binding's received address
 * (Kamailio's received_avp) and sends later requests there.
 */
export function receivedFor(ctx: MessageContext): string | undefined {
  return receivedUris.get(ctx);
}

/** Carry a recorded received URI into another context of the same request (e.g. a resumed route). */
export function setReceivedFor(ctx: MessageContext, uri: string): void {
  receivedUris.set(ctx, uri);
}

// ------------------------------------------------------------- add_rcv_param

/** Append a parameter to every contact of every Contact header. */
function addReceivedParam(ctx: MessageContext, asUriParam: boolean): number {
  if (asUriParam && ctx.rcv.proto !== "udp") {
    ctx.host.log("err", "nathelper: adding received parameter to Contact URI works only for UDP\n", ctx);
    return -1;
  }
  const uri = sourceUri(ctx);
  for (const index of contactHeaderIndexes(ctx)) {
    const value = currentContactValue(ctx, index);
    if (value === null) return -1;
    const contacts = splitHeaderValues(value);
    if (contacts.length === 1 && contacts[0] === "*") continue;
    const changed: string[] = [];
    for (const contact of contacts) {
      if (!asUriParam) {
        // A header parameter: the quoted source URI (RFC 3261 §25.1 gen-value).
        changed.push(`${contact};received="${uri}"`);
        continue;
      }
      const span = firstContactSpan(contact);
      if (span === null) return -1;
      const withParam = appendUriParam(contact.slice(span.uriStart, span.uriEnd), `;received=${uri}`);
      changed.push(contact.slice(0, span.uriStart) + (span.angled ? withParam : `<${withParam}>`) + contact.slice(span.uriEnd));
    }
    writeContactValue(ctx, index, changed.join(", "));
  }
  return 1;
}

// ----------------------------------------------------------------- module

export const nathelperModule: KemiModule = {
  name: "nathelper",
  kamailioModule: "nathelper",
  functions: {
    nat_uac_test: {
      params: ["int"],
      returns: "int",
      doc:
        "1 if any test of the bitmask says the sender is behind NAT, else -1: 1 Contact private IP, 2 Via address != source, " +
        "4 Via private IP, 8 SDP private IP, 16 source port != Via port, 32 source private IP, 64 WebSocket, " +
        "128 source port != Contact port, 256 SDP c= != source, 512 destination != R-URI.",
      run: (ctx, tests: number) => natUacTest(ctx, tests),
    },
    fix_nated_register: {
      params: [],
      returns: "int",
      doc: "Record the source address (sip:ip:port;transport) as the received address the registrar saves with the contacts. 1.",
      run(ctx) {
        receivedUris.set(ctx, sourceUri(ctx));
        return 1;
      },
    },
    fix_nated_contact: {
      params: [],
      returns: "int",
      doc: "Rewrite the Contact URI's host:port to the source address (maddr dropped). 1 ok; -1 no Contact or already rewritten.",
      run(ctx) {
        if (editsOf(ctx).uriReplaced) {
          ctx.host.log("err", "nathelper: you can't call fix_nated_contact twice, check your config!\n", ctx);
          return -1;
        }
        const r = rewriteFirstContactUri(
          ctx,
          (text) => {
            const u = parseUri(text);
            if (u === null || u.scheme === "tel") return null;
            u.host = sourceHost(ctx);
            u.port = ctx.rcv.srcPort;
            u.params = u.params.filter((p) => p.name.toLowerCase() !== "maddr");
            return formatUri(u);
          },
          false,
        );
        if (!r.ok) return -1;
        editsOf(ctx).uriReplaced = true;
        return 1;
      },
    },
    set_contact_alias: {
      params: [],
      returns: "int",
      doc: "Append ;alias=srcip~srcport~proto to the Contact URI (put in <> if needed). 1 ok; -1 no Contact or already rewritten.",
      run: (ctx) => setContactAlias(ctx, false),
    },
    set_contact_alias_trim: {
      params: [],
      returns: "int",
      doc: "Like set_contact_alias, first removing an alias parameter the URI already has. 1 ok; -1 error.",
      run: (ctx) => setContactAlias(ctx, true),
    },
    add_contact_alias: {
      params: [],
      returns: "int",
      doc: "Insert ;alias=srcip~srcport~proto after the Contact URI's host:port unless it already is the source. 1 added, 2 not needed or no Contact, -1 error.",
      run(ctx) {
        const c = receivedContactUri(ctx);
        if (c !== null) {
          // Kamailio compares the URI's transport parameter with the receiving
          // transport; a URI without one never matches, so it gets an alias.
          const transport = uriParam(c, "transport")?.toLowerCase();
          const sameTransport = transport !== undefined && PROTO_IDS.get(transport) === sourceProtoNumber(ctx);
          const samePort = c.port !== undefined ? c.port === ctx.rcv.srcPort : ctx.rcv.srcPort === 5060;
          if (sameIp(c.host, ctx.rcv.srcIp) && samePort && sameTransport) return 2;
        }
        return addContactAlias(ctx, sourceHost(ctx), ctx.rcv.srcPort, sourceProtoNumber(ctx));
      },
    },
    add_contact_alias_addr: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: "Insert ;alias=ip~port~proto with the given address into the Contact URI. 1 added, 2 no Contact, -1 invalid address/port/proto.",
      run(ctx, ip: string, port: string, proto: string) {
        if (canonicalIp(ip) === undefined) {
          ctx.host.log("err", `nathelper: ip param value ${ip} is not valid IP address\n`, ctx);
          return -1;
        }
        if (!/^\d{1,5}$/.test(port) || Number(port) === 0 || Number(port) > 65535) {
          ctx.host.log("err", "nathelper: port param value is not valid port\n", ctx);
          return -1;
        }
        const protoNumber = PROTO_IDS.get(proto.toLowerCase());
        if (protoNumber === undefined) {
          ctx.host.log("err", `nathelper: proto param value ${proto} is not a known protocol\n`, ctx);
          return -1;
        }
        const host = ip.includes(":") && !ip.startsWith("[") ? `[${ip}]` : ip;
        return addContactAlias(ctx, host, port, protoNumber);
      },
    },
    handle_ruri_alias: {
      params: [],
      returns: "int",
      doc: "If the R-URI has an alias parameter: $du = sip:ip:port;transport from it, and the parameter is removed. 1 done, 2 no alias, -1 malformed.",
      run: (ctx) => handleRuriAlias(ctx, 0),
    },
    handle_ruri_alias_mode: {
      params: ["int"],
      returns: "int",
      doc: "handle_ruri_alias using the first (mode 0) or the last (other modes) alias parameter. 1 / 2 / -1.",
      run: (ctx, mode: number) => handleRuriAlias(ctx, mode),
    },
    set_alias_to_pv: {
      params: ["str"],
      returns: "int",
      doc: "Write the URI encoded in the (single) Contact's alias parameter, sip:ip:port;transport=proto, into the given PV. 1 ok, -1 error.",
      run(ctx, pvName: string) {
        const h = firstHeaderOf(ctx.msg, "contact");
        const contacts = h === undefined ? [] : splitHeaderValues(h.value);
        if (contacts.length !== 1 || contacts[0] === "*") {
          ctx.host.log("err", "nathelper: Couldn't parse Contact Header\n", ctx);
          return -1;
        }
        const m = /alias=([^;>?,]*)/.exec(contacts[0]!);
        if (m === null) {
          ctx.host.log("err", "nathelper: Alias sign couldn't be found\n", ctx);
          return -1;
        }
        const target = aliasTarget(m[1]!, true);
        if ("error" in target) {
          ctx.host.log("err", `nathelper: ${target.error}\n`, ctx);
          return -1;
        }
        const pv = lookupPv(pvName);
        if (pv === null || pv.set === undefined) {
          ctx.host.log("err", `nathelper: Destination pseudo-variable is not writable: [${pvName}]\n`, ctx);
          return -1;
        }
        return pv.set(ctx, target.uri) ? 1 : -1;
      },
    },
    add_rcv_param: {
      params: ["int"],
      returns: "int",
      doc: 'Add received="sip:srcip:port;transport" to every Contact as a header parameter, or (flag 1, UDP only) as a URI parameter. 1 ok, -1 error.',
      run: (ctx, asUriParam: number) => addReceivedParam(ctx, asUriParam !== 0),
    },
    is_rfc1918: {
      params: ["str"],
      returns: "int",
      doc: "1 if the IPv4 address is private (RFC 1918, RFC 6598 100.64/10, 192.0.0.0/24), -1 otherwise or when not an IPv4 address.",
      run: (_ctx, address: string) => (isPrivateIPv4(address) ? 1 : -1),
    },
  },
  unavailable: {
    fix_nated_sdp: { params: ["int"], returns: "int", reason: "SDP rewriting (fix_nated_sdp) is not implemented" },
    fix_nated_sdp_ip: { params: ["int", "str"], returns: "int", reason: "SDP rewriting (fix_nated_sdp_ip) is not implemented" },
  },
  // Native functions (Kamailio nathelper cmd exports) for KSR.x.modf.
  native: [
    { name: "fix_nated_contact", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "BRANCH_ROUTE", "LOCAL_ROUTE"], kemi: "fix_nated_contact" },
    { name: "add_contact_alias", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "BRANCH_ROUTE", "LOCAL_ROUTE"], kemi: "add_contact_alias" },
    { name: "add_contact_alias", params: ["str", "str", "str"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "add_contact_alias_addr", refused: "fixup without free" },
    { name: "set_contact_alias", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "BRANCH_ROUTE", "LOCAL_ROUTE"], kemi: "set_contact_alias" },
    { name: "handle_ruri_alias", params: [], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "LOCAL_ROUTE"], kemi: "handle_ruri_alias" },
    { name: "handle_ruri_alias", params: ["int"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "LOCAL_ROUTE"], kemi: "handle_ruri_alias_mode" },
    { name: "nat_uac_test", params: ["int"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE", "LOCAL_ROUTE"], kemi: "nat_uac_test" },
    { name: "fix_nated_register", params: [], routes: ["REQUEST_ROUTE"], kemi: "fix_nated_register", refused: "fixup without free" },
    { name: "add_rcv_param", params: ["int"], routes: ["REQUEST_ROUTE"], kemi: "add_rcv_param" },
    { name: "is_rfc1918", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_rfc1918" },
    { name: "set_alias_to_pv", params: ["str"], routes: ["ANY_ROUTE"], kemi: "set_alias_to_pv", literal: true },
  ],
};

function setContactAlias(ctx: MessageContext, trim: boolean): number {
  if (editsOf(ctx).uriReplaced) {
    ctx.host.log("err", "nathelper: you can't update contact twice, check your config!\n", ctx);
    return -1;
  }
  const param = `;alias=${aliasValue(sourceHost(ctx), ctx.rcv.srcPort, sourceProtoNumber(ctx))}`;
  const r = rewriteFirstContactUri(ctx, (uri) => appendUriParam(trim ? trimAlias(uri) : uri, param), true);
  if (!r.ok) return -1;
  editsOf(ctx).uriReplaced = true;
  return 1;
}
