/**
 * KSR.sanity (Kamailio 5.6 sanity module): request sanity checks selected
 * by bit flags. On the first failing check the module itself sends the
 * error reply (unless the message is a reply or an ACK, which are never
 * answered) and sanity_check returns -1: the script should just exit.
 *
 * msg_checks bits (Kamailio 5.6):
 *     1 R-URI SIP version is 2.0 ............... 505 Version Not Supported (R-URI)
 *     2 R-URI parses (sip/sips/tel) ............ 400 Bad Request URI
 *     4 From, To, Call-ID, CSeq, Via present,
 *       From/To/Call-ID/CSeq not duplicated .... no reply
 *     8 Via SIP version  } disabled in Kamailio: always pass
 *    16 Via protocol     }
 *    32 CSeq method equals request method ...... 400 Missing method in CSeq header /
 *                                                400 CSeq method does not match request method
 *    64 CSeq number is an integer < 2^31 ....... 400 Missing number in CSeq header /
 *                                                400 CSeq number is illegal
 *   128 Content-Length equals the body size .... 400 Content-Length mis-match (or ... Failure);
 *       (over UDP: at most; RFC 3261 §18.3)
 *   256 Expires is an unsigned integer ......... 400 Missing number in Expires header /
 *                                                400 Expires value is illegal
 *   512 every Proxy-Require option supported ... 420 Bad Proxy Require Extension
 *       (none is, by default)                    + "Unsupported: <options>" (RFC 3261 §8.2.2.3)
 *  1024 URIs named by uri_checks parse ......... 400 Bad Request URI / Invalid From Header /
 *                                                Invalid To Header / Bad Contact Header / Bad Contact URI
 *  2048 digest credentials complete ............ 400 Bad Auth Header / Bad Auth Credentials /
 *       (a non-Digest scheme fails, no reply)    Auth Empty User / Auth Empty Nonce / Auth Empty Response
 *  4096 at most one tag in From and To ......... 400 Many From Tag Params / Many To Tag Params
 *  8192 like 2048, but non-Digest schemes pass
 * 16384 top Via has a host and a branch ........ no reply
 *
 * uri_checks bits: 1 R-URI, 2 From, 4 To, 8 Contact.
 * Defaults (sanity_check_defaults): 3047 = 1+2+4+32+64+128+256+512+2048, and 7.
 *
 * Checks that read the request line (1, 2, 32 and the R-URI in 1024) pass
 * for replies, which have none. "No reply" failures also mark the message
 * so that later sl replies are refused (Kamailio's FL_MSG_NOREPLY): a
 * request without Call-ID/CSeq/Via cannot be answered correctly anyway
 * (RFC 3261 §8.2.6.2 copies them into the response).
 */
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import type { KemiModule } from "./types.js";
import { splitHeaderValues } from "../sip/headers.js";
import { parseNameAddr } from "../sip/nameaddr.js";
import {
  countHeaders,
  firstHeaderOf,
  headerIndexes,
  parseCredentials,
  parseUriCached,
  toBody,
} from "./msgutil.js";
import { markNoReply, slReply } from "./sl.js";
import { intParam, strParam } from "./modparams.js";

export const SANITY_DEFAULT_MSG_CHECKS = 3047;
export const SANITY_DEFAULT_URI_CHECKS = 7;

/** The Proxy-Require option tags the tenant's proxy_require names as supported. */
function supportedProxyRequire(ctx: MessageContext): ReadonlySet<string> {
  return new Set(strParam(ctx, sanityModule, "proxy_require").split(",").map((o) => o.trim()).filter((o) => o.length > 0));
}

/** The tenant's noreply: failing checks only remember the reply, which the script sends with sanity_reply(). */
function noReplyMode(ctx: MessageContext): boolean {
  return intParam(ctx, sanityModule, "noreply") !== 0;
}

const pendingReply = new ContextSlot<{ status: number; reason: string }>("sanity.pendingReply");

/** Outcome of one check: passed, or failed (with the reply to send, if any). */
type Outcome = true | { status: number; reason: string; extraHeader?: string } | "silent";

/** Send (or, in noreply mode, remember) the failure reply; ACKs and replies get none. */
function reject(ctx: MessageContext, status: number, reason: string, extraHeader?: string): void {
  if (!ctx.isRequest || ctx.msg.method === "ACK") return;
  if (noReplyMode(ctx)) {
    pendingReply.set(ctx, { status, reason });
    if (extraHeader !== undefined) ctx.replyHeaders.push(extraHeader);
    return;
  }
  if (extraHeader !== undefined) ctx.replyHeaders.push(extraHeader);
  slReply(ctx, status, reason);
}

const bad = (status: number, reason: string, extraHeader?: string): Outcome => ({ status, reason, extraHeader });

function checkRuriVersion(ctx: MessageContext): Outcome {
  if (!ctx.isRequest) return true;
  const v = ctx.msg.version;
  const slash = v.indexOf("/");
  if (slash === -1) return "silent";
  return v.slice(slash + 1) === "2.0" ? true : bad(505, "Version Not Supported (R-URI)");
}

function checkRuriScheme(ctx: MessageContext): Outcome {
  if (!ctx.isRequest) return true;
  // Kamailio's URI parser rejects unknown schemes, so they get 400 too.
  return parseUriCached(ctx.requestUri) !== null ? true : bad(400, "Bad Request URI");
}

function checkRequiredHeaders(ctx: MessageContext): Outcome {
  const m = ctx.msg;
  for (const key of ["from", "to", "call-id", "cseq"]) {
    const n = countHeaders(m, key);
    if (n === 0) {
      markNoReply(ctx);
      return "silent";
    }
    if (n > 1) return "silent";
  }
  if (countHeaders(m, "via") === 0) return "silent";
  return true;
}

/** Top Via: "SIP/2.0/TRANSPORT host[:port];params" with a host and a non-empty branch. */
function checkVia1(ctx: MessageContext): Outcome {
  const first = headerIndexes(ctx.msg, "via")[0];
  const top = first === undefined ? undefined : splitHeaderValues(ctx.msg.headers[first]!.value)[0];
  const m = top === undefined ? null : /^SIP\s*\/\s*[^/\s]+\s*\/\s*[A-Za-z]+\s+(\[[^\]]+\]|[^\s:;]+)[^;]*((?:;.*)?)$/i.exec(top);
  const branch = m === null ? null : /;\s*branch\s*=\s*([^;\s]+)/i.exec(m[2]!);
  if (m === null || branch === null) {
    markNoReply(ctx);
    return "silent";
  }
  return true;
}

/** CSeq header split into its number and method texts (RFC 3261 §20.16). */
function cseqParts(ctx: MessageContext): { number: string; method: string } | null {
  const h = firstHeaderOf(ctx.msg, "cseq");
  if (h === undefined) return null;
  const parts = h.value.trim().split(/\s+/);
  if (parts.length === 1) return /^\d/.test(parts[0]!) ? { number: parts[0]!, method: "" } : { number: "", method: parts[0]! };
  return { number: parts[0]!, method: parts.slice(1).join(" ") };
}

function checkCseqMethod(ctx: MessageContext): Outcome {
  if (!ctx.isRequest) return true;
  const c = cseqParts(ctx);
  if (c === null) {
    markNoReply(ctx);
    return "silent";
  }
  if (c.method.length === 0) return bad(400, "Missing method in CSeq header");
  return c.method === ctx.msg.method ? true : bad(400, "CSeq method does not match request method");
}

function checkCseqValue(ctx: MessageContext): Outcome {
  const c = cseqParts(ctx);
  if (c === null) {
    markNoReply(ctx);
    return "silent";
  }
  if (c.number.length === 0) return bad(400, "Missing number in CSeq header");
  // RFC 3261 §8.1.1.5: the sequence number must be less than 2^31.
  if (!/^\d{1,10}$/.test(c.number) || Number(c.number) >= 2 ** 31) return bad(400, "CSeq number is illegal");
  return true;
}

/** Bytes after the blank line that ends the headers, as received. */
function receivedBodyLength(raw: string): number | null {
  const end = raw.indexOf("\r\n\r\n");
  if (end !== -1) return raw.length - (end + 4);
  const lf = raw.indexOf("\n\n");
  return lf === -1 ? null : raw.length - (lf + 2);
}

function checkContentLength(ctx: MessageContext): Outcome {
  const h = firstHeaderOf(ctx.msg, "content-length");
  if (h === undefined) return true;
  const text = h.value.trim();
  if (!/^\d+$/.test(text)) return bad(400, "Content-Length Failure");
  const bodyLen = receivedBodyLength(ctx.msg.raw);
  if (bodyLen === null) return bad(400, "Content-Length Body Failure");
  // Octets after Content-Length in a datagram are not part of the message
  // (RFC 3261 §18.3; RFC 4475 §3.1.1.8 dblreq must be processed). Kamailio
  // 5.6 compares with the whole datagram and answers dblreq 400.
  const trailingAllowed = ctx.rcv.proto === "udp";
  const declared = Number(text);
  return bodyLen === declared || (trailingAllowed && bodyLen > declared) ? true : bad(400, "Content-Length mis-match");
}

function checkExpires(ctx: MessageContext): Outcome {
  const h = firstHeaderOf(ctx.msg, "expires");
  if (h === undefined) return true;
  const text = h.value.trim();
  if (text.length === 0) return bad(400, "Missing number in Expires header");
  if (!/^\d{1,10}$/.test(text) || Number(text) > 4294967296) return bad(400, "Expires value is illegal");
  return true;
}

function checkProxyRequire(ctx: MessageContext): Outcome {
  // Kamailio checks the first Proxy-Require header field.
  const h = firstHeaderOf(ctx.msg, "proxy-require");
  if (h === undefined) return true;
  const options = h.value.split(",").map((o) => o.trim());
  if (h.value.trim().length === 0) return bad(400, "Bad Proxy Require Header");
  // RFC 3261 §8.2.2.3: Unsupported lists every option tag not understood
  // (Kamailio 5.6 names the first one only).
  const supported = supportedProxyRequire(ctx);
  const unsupported = options.filter((o) => !supported.has(o));
  if (unsupported.length > 0) return bad(420, "Bad Proxy Require Extension", `Unsupported: ${unsupported.join(", ")}\r\n`);
  return true;
}

function checkParseUris(ctx: MessageContext, uriChecks: number): Outcome {
  if (uriChecks & 1 && ctx.isRequest && parseUriCached(ctx.requestUri) === null) return bad(400, "Bad Request URI");
  for (const [bitValue, key, reason] of [
    [2, "from", "Invalid From Header"],
    [4, "to", "Invalid To Header"],
  ] as const) {
    if ((uriChecks & bitValue) === 0) continue;
    const h = firstHeaderOf(ctx.msg, key);
    if (h === undefined || h.value.length === 0) {
      markNoReply(ctx);
      return "silent";
    }
    const tb = toBody(ctx.msg, key);
    if (tb === null || tb.uri === null) return bad(400, reason);
  }
  if (uriChecks & 8) {
    const h = firstHeaderOf(ctx.msg, "contact");
    if (h !== undefined) {
      const first = splitHeaderValues(h.value)[0];
      if (first === undefined) return bad(400, "Bad Contact Header");
      if (first !== "*") {
        const na = parseNameAddr(first);
        if (na === null) return bad(400, "Bad Contact Header");
        if (parseUriCached(na.uri) === null) return bad(400, "Bad Contact URI");
      }
    }
  }
  return true;
}

/**
 * Digest credentials (RFC 2617 §3.2.2): username, realm, nonce, uri and
 * response must be present, plus cnonce and nc with qop=auth/auth-int.
 * `nonDigest` is what a non-Digest scheme yields.
 */
function checkCredentials(ctx: MessageContext, nonDigest: Outcome): Outcome {
  const auth = headerIndexes(ctx.msg, "authorization");
  const proxyAuth = headerIndexes(ctx.msg, "proxy-authorization");
  for (const i of [...auth, ...proxyAuth]) {
    const c = parseCredentials(ctx.msg.headers[i]!.value);
    if (c === null) return bad(400, "Bad Auth Header");
    if (c.scheme.toLowerCase() !== "digest") return nonDigest;
    const p = c.params;
    const qop = p.get("qop")?.toLowerCase();
    const required = ["username", "realm", "nonce", "uri", "response"];
    if (qop === "auth" || qop === "auth-int") required.push("cnonce", "nc");
    if (required.some((k) => !p.has(k))) return bad(400, "Bad Auth Credentials");
    if (p.get("username") === "") return bad(400, "Auth Empty User");
    if (p.get("nonce") === "") return bad(400, "Auth Empty Nonce");
    if (p.get("response") === "") return bad(400, "Auth Empty Response");
  }
  return true;
}

function checkDuplicateTags(ctx: MessageContext): Outcome {
  const from = toBody(ctx.msg, "from");
  const to = toBody(ctx.msg, "to");
  if (from === null || to === null) {
    markNoReply(ctx);
    return "silent";
  }
  if (from.tagCount > 1) return bad(400, "Many From Tag Params");
  if (to.tagCount > 1) return bad(400, "Many To Tag Params");
  return true;
}

/** Checks in Kamailio's order. */
const CHECKS: readonly [number, (ctx: MessageContext, uriChecks: number) => Outcome][] = [
  [1, checkRuriVersion],
  [2, checkRuriScheme],
  [4, checkRequiredHeaders],
  [16384, checkVia1],
  [32, checkCseqMethod],
  [64, checkCseqValue],
  [128, checkContentLength],
  [256, checkExpires],
  [512, checkProxyRequire],
  [1024, checkParseUris],
  [2048, (ctx) => checkCredentials(ctx, "silent")],
  [8192, (ctx) => checkCredentials(ctx, true)],
  [4096, checkDuplicateTags],
];

/** Run the selected checks; 1 when all pass, -1 (after replying) on the first failure. */
export function sanityCheck(ctx: MessageContext, msgChecks: number, uriChecks: number): number {
  for (const [flag, check] of CHECKS) {
    if ((msgChecks & flag) === 0) continue;
    const r = check(ctx, uriChecks);
    if (r === true) continue;
    if (r !== "silent") reject(ctx, r.status, r.reason, r.extraHeader);
    ctx.host.log("dbg", `sanity check ${flag} failed\n`, ctx);
    return -1;
  }
  return 1;
}

export const sanityModule: KemiModule = {
  modparams: [
    { name: "default_checks", type: "int", default: SANITY_DEFAULT_MSG_CHECKS, doc: "message checks of sanity_check() without parameters (bit mask)" },
    { name: "uri_checks", type: "int", default: SANITY_DEFAULT_URI_CHECKS, doc: "URI checks when none are given (bit mask)" },
    { name: "proxy_require", type: "str", default: "", doc: "Proxy-Require option tags accepted, comma-separated" },
    {
      name: "noreply",
      type: "int",
      default: 0,
      doc: "1: a failing check sends no reply; the script sends it with sanity_reply()",
      check: (v) => (v === 0 || v === 1 ? undefined : "must be 0 or 1"),
    },
  ],
  name: "sanity",
  kamailioModule: "sanity",
  functions: {
    sanity_check: {
      params: ["int", "int"],
      returns: "int",
      doc: "Run the checks selected by msg_flags/uri_flags. 1 passed; -1 failed (error reply already sent; just exit).",
      run: (ctx, msgFlags: number, uriFlags: number) => sanityCheck(ctx, msgFlags, uriFlags),
    },
    sanity_check_defaults: {
      params: [],
      returns: "int",
      doc: "sanity_check with the default flags (3047, 7).",
      run: (ctx) => sanityCheck(ctx, intParam(ctx, sanityModule, "default_checks"), intParam(ctx, sanityModule, "uri_checks")),
    },
    sanity_reply: {
      params: [],
      returns: "int",
      doc: "In noreply mode, send the reply of the last failed check (500 Server Sanity Failure if none). Returns 1; -1 if sending failed.",
      run(ctx) {
        if (!ctx.isRequest || ctx.msg.method === "ACK" || !noReplyMode(ctx)) return 1;
        const r = pendingReply.get(ctx) ?? { status: 500, reason: "Server Sanity Failure" };
        const sent = slReply(ctx, r.status, r.reason);
        return sent === -1 ? -1 : 1;
      },
    },
  },
  // Native functions (Kamailio sanity cmd exports) for KSR.x.modf.
  native: [
    { name: "sanity_check", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE"], kemi: "sanity_check_defaults" },
    { name: "sanity_check", params: ["int"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE"], run: (ctx, msgChecks: number) => sanityCheck(ctx, msgChecks, intParam(ctx, sanityModule, "uri_checks")) },
    { name: "sanity_check", params: ["int", "int"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE"], kemi: "sanity_check" },
    { name: "sanity_reply", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE"], kemi: "sanity_reply" },
  ],
};
