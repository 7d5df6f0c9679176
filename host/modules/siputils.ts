/**
 * KSR.siputils (Kamailio siputils module): message checks and R-URI
 * parameter helpers. Return codes are Kamailio's, including the odd ones:
 * is_tel_number / is_numeric give -2 on failure, is_alphanum -2 (empty) /
 * -3 (bad character), cmp_* -2 when a URI does not parse.
 *
 * Not provided: is_user (compares with credentials already authorized by
 * the auth module, which does not exist here), the contact encoding family
 * and hdr_date_check.
 */
import type { MessageContext } from "../core/context.js";
import type { KemiFunction, KemiModule } from "./types.js";
import { splitHeaderValues } from "../sip/headers.js";
import { formatUri, type SipUri } from "../sip/uri.js";
import { parseNameAddr } from "../sip/nameaddr.js";
import { cloneUri, currentRuri, headerIndexes, headerKeyFor, parseUriCached, toBody } from "./msgutil.js";
import { canonicalHost, isLocalAddress, uriTransportParam } from "./myself.js";
import { slReply } from "./sl.js";
import { isIP } from "node:net";

function intFn(params: KemiFunction["params"], doc: string, run: KemiFunction["run"]): KemiFunction {
  return { params, returns: "int", doc, run };
}

function ruriOrLog(ctx: MessageContext): SipUri | null {
  const u = currentRuri(ctx);
  if (u === null) ctx.host.log("err", "ruri parsing failed\n", ctx);
  return u;
}

/** Number of Via values (a Via field may carry several, RFC 3261 §7.3.1). */
function viaCount(ctx: MessageContext): number {
  let n = 0;
  for (const i of headerIndexes(ctx.msg, "via")) n += splitHeaderValues(ctx.msg.headers[i]!.value).length;
  return n;
}

/**
 * is_first_hop: a request is first-hop when it carries a single Via (no
 * proxy added one). A reply is first-hop when it has no Record-Route, or
 * when the top Record-Route is this server and (mode 0) an IP address that
 * is not also the reply's source (that would be a loop through ourselves).
 */
function isFirstHop(ctx: MessageContext, mode: number): number {
  if (ctx.isRequest) return viaCount(ctx) <= 1 ? 1 : -1;
  const rrIndex = headerIndexes(ctx.msg, "record-route")[0];
  if (rrIndex === undefined) return 1;
  const first = splitHeaderValues(ctx.msg.headers[rrIndex]!.value)[0];
  const na = first === undefined ? null : parseNameAddr(first);
  const u = na === null ? null : parseUriCached(na.uri);
  if (u === null) return -1;
  const host = canonicalHost(u.host);
  if (mode === 0 && isIP(host) === 0) return -1;
  const proto = uriTransportParam(u.params);
  if (!isLocalAddress(ctx.host, u.host, u.port ?? 0, proto)) return -1;
  if (mode === 0) {
    const sameIp = canonicalHost(ctx.rcv.srcIp) === host;
    const samePort = u.port !== undefined ? ctx.rcv.srcPort === u.port : ctx.rcv.srcPort === 5060;
    const sameProto = proto === ctx.rcv.proto || (proto === "" && ctx.rcv.proto === "udp");
    if (sameIp && samePort && sameProto) return -1;
  }
  return 1;
}

/** uri_param / uri_param_value: the first parameter with that exact name decides. */
function uriParamValue(ctx: MessageContext, name: string, value: string | undefined): number {
  const u = ruriOrLog(ctx);
  if (u === null) return -1;
  for (const p of u.params) {
    if (p.name !== name) continue;
    if (value !== undefined) return p.value === value ? 1 : -1;
    return p.value === undefined || p.value.length === 0 ? 1 : -1;
  }
  return -1;
}

function changeRuri(ctx: MessageContext, change: (u: SipUri) => void): number {
  const cur = ruriOrLog(ctx);
  if (cur === null) return -1;
  const u = cloneUri(cur);
  change(u);
  ctx.setRequestUri(formatUri(u));
  return 1;
}

/**
 * RFC 3261 §19.1.4 comparison as Kamailio's cmp_uri does it: same scheme,
 * user and password (case-sensitive), host (case-insensitive), same port
 * as written; parameters present in both must have equal values
 * (case-insensitive); user/ttl/method/maddr present in one URI make the
 * comparison fail only when the other URI has no parameters at all.
 */
function uriEqual(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme) return false;
  if (a.user !== b.user || a.password !== b.password || a.port !== b.port) return false;
  if (a.host.toLowerCase() !== b.host.toLowerCase()) return false;
  if (a.params.length === 0 && b.params.length === 0) return true;
  const special = ["user", "ttl", "method", "maddr"];
  const hasSpecial = (u: SipUri) => u.params.some((p) => special.includes(p.name.toLowerCase()));
  if (a.params.length === 0 && hasSpecial(b)) return false;
  if (b.params.length === 0 && hasSpecial(a)) return false;
  for (const pa of a.params) {
    for (const pb of b.params) {
      if (pa.name.toLowerCase() !== pb.name.toLowerCase()) continue;
      if ((pa.value ?? "").toLowerCase() !== (pb.value ?? "").toLowerCase()) return false;
    }
  }
  return true;
}

/**
 * Address-of-record comparison: user (case-sensitive), host
 * (case-insensitive) and port, a missing port meaning 5060. (Kamailio's
 * cmp_aor also lets two different explicit ports match; that slip is not
 * reproduced.)
 */
function aorEqual(a: SipUri, b: SipUri): boolean {
  if ((a.user ?? "") !== (b.user ?? "")) return false;
  if (a.host.toLowerCase() !== b.host.toLowerCase()) return false;
  return (a.port ?? 5060) === (b.port ?? 5060);
}

function compareUris(s1: string, s2: string, eq: (a: SipUri, b: SipUri) => boolean): number {
  const a = parseUriCached(s1);
  const b = parseUriCached(s2);
  if (a === null || b === null) return -2;
  return eq(a, b) ? 1 : -1;
}

const isDigitCode = (c: number) => c >= 0x30 && c <= 0x39;
const isAlnumCode = (c: number) => isDigitCode(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** Headers added to the 200 answering OPTIONS, with the siputils defaults (accept any type, language "en"). */
const OPTIONS_REPLY_HEADERS = ["Accept: */*\r\n", "Accept-Encoding: \r\n", "Accept-Language: en\r\n", "Supported: \r\n"];

export const siputilsModule: KemiModule = {
  name: "siputils",
  kamailioModule: "siputils",
  functions: {
    has_totag: intFn([], "1 if the To header has a tag, -1 otherwise.", (ctx) => {
      const tb = toBody(ctx.msg, "to");
      return tb !== null && tb.tag !== undefined && tb.tag.length > 0 ? 1 : -1;
    }),
    is_request: intFn([], "1 for a request, -1 for a reply.", (ctx) => (ctx.isRequest ? 1 : -1)),
    is_reply: intFn([], "1 for a reply, -1 for a request.", (ctx) => (ctx.isRequest ? -1 : 1)),
    is_first_hop: intFn([], "1 if the message did not pass another proxy (one Via; for replies: see is_first_hop_mode 0), else -1.", (ctx) =>
      isFirstHop(ctx, 0),
    ),
    is_first_hop_mode: intFn(["int"], "is_first_hop; for replies mode 0 also requires the top Record-Route to be an IP and not the source.", (ctx, mode: number) =>
      isFirstHop(ctx, mode),
    ),
    is_uri: intFn(["str"], "1 if the text is a valid sip/sips/tel URI, -1 otherwise.", (_ctx, text: string) =>
      parseUriCached(text) !== null ? 1 : -1,
    ),
    uri_param: intFn(["str"], "1 if the R-URI has the parameter (exact name) without a value, -1 otherwise.", (ctx, name: string) =>
      uriParamValue(ctx, name, undefined),
    ),
    uri_param_value: intFn(["str", "str"], "1 if the R-URI has the parameter (exact name) with exactly that value, -1 otherwise.", (ctx, name: string, value: string) =>
      uriParamValue(ctx, name, value),
    ),
    uri_param_any: intFn(["str"], "1 if the R-URI has the parameter (case-insensitive name), with or without value; -1 otherwise.", (ctx, name: string) => {
      const u = ruriOrLog(ctx);
      if (u === null) return -1;
      const want = name.toLowerCase();
      return u.params.some((p) => p.name.toLowerCase() === want) ? 1 : -1;
    }),
    uri_param_rm: intFn(["str"], "Remove the first R-URI parameter with that name (case-insensitive). 1 (also when absent), -1 on error.", (ctx, name: string) => {
      const u = ruriOrLog(ctx);
      if (u === null) return -1;
      const want = name.toLowerCase();
      const i = u.params.findIndex((p) => p.name.toLowerCase() === want);
      if (i === -1) return 1;
      return changeRuri(ctx, (c) => {
        c.params.splice(i, 1);
      });
    }),
    add_uri_param: intFn(["str"], 'Add ";param" (name or name=value) to the R-URI. 1 ok (also for ""), -1 on error.', (ctx, param: string) => {
      if (param.length === 0) return 1;
      const eq = param.indexOf("=");
      return changeRuri(ctx, (u) => {
        u.params.push(eq === -1 ? { name: param } : { name: param.slice(0, eq), value: param.slice(eq + 1) });
      });
    }),
    is_gruu: intFn([], "1 if the R-URI has a gr parameter with a value, 2 if gr has no value, -1 otherwise (RFC 5627).", (ctx) => {
      const u = ruriOrLog(ctx);
      if (u === null) return -1;
      const gr = u.params.find((p) => p.name.toLowerCase() === "gr");
      if (gr === undefined) return -1;
      return gr.value !== undefined && gr.value.length > 0 ? 1 : 2;
    }),
    is_tel_number: intFn(["str"], "1 if the text is an optional '+' (then 1-9) followed by digits only; -2 otherwise.", (_ctx, s: string) => {
      if (s.length < 1) return -2;
      let i = 0;
      if (s[0] === "+") {
        if (s.length < 2) return -2;
        const c = s.charCodeAt(1);
        if (c < 0x31 || c > 0x39) return -2;
        i = 2;
      }
      for (; i < s.length; i++) if (!isDigitCode(s.charCodeAt(i))) return -2;
      return 1;
    }),
    is_numeric: intFn(["str"], "1 if the text is non-empty decimal digits only; -2 otherwise.", (_ctx, s: string) => {
      if (s.length === 0) return -2;
      for (let i = 0; i < s.length; i++) if (!isDigitCode(s.charCodeAt(i))) return -2;
      return 1;
    }),
    is_alphanum: intFn(["str"], "1 if the text is non-empty [0-9A-Za-z]; -2 if empty, -3 on another character.", (_ctx, s: string) => {
      if (s.length === 0) return -2;
      for (let i = 0; i < s.length; i++) if (!isAlnumCode(s.charCodeAt(i))) return -3;
      return 1;
    }),
    is_alphanumex: intFn(["str", "str"], "Like is_alphanum, also allowing the characters of the second text.", (_ctx, s: string, extra: string) => {
      if (s.length === 0) return -2;
      for (let i = 0; i < s.length; i++) {
        if (!isAlnumCode(s.charCodeAt(i)) && !extra.includes(s[i]!)) return -3;
      }
      return 1;
    }),
    cmp_uri: intFn(["str", "str"], "1 if the URIs are equal (RFC 3261 §19.1.4), -1 if not, -2 if one does not parse.", (_ctx, a: string, b: string) =>
      compareUris(a, b, uriEqual),
    ),
    cmp_aor: intFn(["str", "str"], "1 if user, host and port (default 5060) match, -1 if not, -2 if one does not parse.", (_ctx, a: string, b: string) =>
      compareUris(a, b, aorEqual),
    ),
    cmp_hdr_name: intFn(["str", "str"], "1 if both name the same header (case-insensitive, compact forms), -1 if not, -2 if invalid.", (_ctx, a: string, b: string) => {
      const ka = headerKeyFor(a);
      const kb = headerKeyFor(b);
      if (ka === null || kb === null) return -2;
      return ka === kb ? 1 : -1;
    }),
    options_reply: {
      params: [],
      returns: "int",
      doc: "Answer an OPTIONS addressed to this server (no R-URI user) with 200 OK + Accept/Accept-Encoding/Accept-Language/Supported. 1 ok, -1 otherwise.",
      run(ctx) {
        if (!ctx.isRequest || ctx.msg.method !== "OPTIONS") {
          ctx.host.log("err", "called for non-OPTIONS request\n", ctx);
          return -1;
        }
        const u = ruriOrLog(ctx);
        if (u === null) return -1;
        if (u.user !== undefined && u.user.length > 0) {
          ctx.host.log("err", "ruri contains username\n", ctx);
          return -1;
        }
        ctx.replyHeaders.push(...OPTIONS_REPLY_HEADERS);
        return slReply(ctx, 200, "OK") === 1 ? 1 : -1;
      },
    },
  },
  // Native functions (Kamailio siputils cmd exports) for KSR.x.modf.
  native: [
    { name: "options_reply", params: [], routes: ["REQUEST_ROUTE"], kemi: "options_reply" },
    { name: "has_totag", params: [], routes: ["ANY_ROUTE"], kemi: "has_totag" },
    { name: "uri_param", params: ["str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "uri_param" },
    { name: "uri_param", params: ["str", "str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "uri_param_value" },
    { name: "uri_param_any", params: ["str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "uri_param_any" },
    { name: "add_uri_param", params: ["str"], routes: ["REQUEST_ROUTE"], kemi: "add_uri_param", literal: true },
    { name: "uri_param_rm", params: ["str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "uri_param_rm" },
    { name: "is_uri", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_uri" },
    { name: "cmp_uri", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "cmp_uri" },
    { name: "cmp_aor", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "cmp_aor" },
    { name: "cmp_hdr_name", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "cmp_hdr_name" },
    { name: "is_request", params: [], routes: ["ANY_ROUTE"], kemi: "is_request" },
    { name: "is_reply", params: [], routes: ["ANY_ROUTE"], kemi: "is_reply" },
    { name: "is_gruu", params: [], routes: ["ANY_ROUTE"], kemi: "is_gruu" },
    { name: "is_first_hop", params: [], routes: ["ANY_ROUTE"], kemi: "is_first_hop" },
    { name: "is_first_hop", params: ["int"], routes: ["ANY_ROUTE"], kemi: "is_first_hop_mode" },
    { name: "is_tel_number", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_tel_number" },
    { name: "is_numeric", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_numeric" },
    { name: "is_alphanum", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_alphanum" },
    { name: "is_alphanumex", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "is_alphanumex" },
  ],
};
