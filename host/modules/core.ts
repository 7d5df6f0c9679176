/**
 * KSR core functions (KSR.dbg, KSR.is_INVITE, KSR.setflag, KSR.seturi, ...):
 * Kamailio's src/core/kemi.c "" module, with its return values.
 *
 * `bool` functions return true/false; the few `int` ones (forward,
 * set_advertised_*, route) return numbers exactly as Kamailio does —
 * including set_advertised_* giving 1/0 (SR_KEMI_TRUE/FALSE as an int).
 *
 * Not provided: get_debug (the log threshold is not readable from
 * host/core/log.ts), add_tcp_alias / add_tcp_alias_via (need TCP
 * connection aliasing in the transport layer).
 */
import { isIP } from "node:net";
import type { LogLevel, MessageContext } from "../core/context.js";
import type { KemiFunction, KemiModule } from "./types.js";
import { splitHeaderValues } from "../sip/headers.js";
import {
  cloneUri,
  currentRuri,
  headerIndexes,
  messageMethod,
  parseUriCached,
  toBody,
} from "./msgutil.js";
import { canonicalHost, isLocalAddress, isMyselfText, uriTransportParam } from "./myself.js";
import { sendOptions } from "./sendopts.js";
import { formatUri } from "../sip/uri.js";

// ----------------------------------------------------------------- helpers

function logFn(level: LogLevel): KemiFunction {
  return {
    params: ["str"],
    returns: "none",
    doc: `Write the text to the log at level ${level} (no newline is added).`,
    run(ctx: MessageContext, text: string) {
      ctx.host.log(level, text, ctx, true);
      return undefined;
    },
  };
}

const LOG_LEVEL_NAMES: ReadonlyMap<string, LogLevel> = new Map([
  ["dbg", "dbg"],
  ["info", "info"],
  ["notice", "notice"],
  ["warn", "warn"],
  ["err", "err"],
  ["crit", "crit"],
]);

/** Flag indexes are 0..31 (Kamailio flag_t is 32 bits); others log an error. */
function flagInRange(ctx: MessageContext, flag: number): boolean {
  if (Number.isInteger(flag) && flag >= 0 && flag <= 31) return true;
  ctx.host.log("err", `invalid flag parameter ${flag}\n`, ctx);
  return false;
}

const bit = (flag: number): number => (1 << flag) >>> 0;

/** Standard method names and their is_method_in letters. */
const METHOD_LETTERS: ReadonlyMap<string, string> = new Map([
  ["i", "INVITE"],
  ["a", "ACK"],
  ["b", "BYE"],
  ["c", "CANCEL"],
  ["m", "MESSAGE"],
  ["r", "REGISTER"],
  ["e", "PRACK"],
  ["p", "PUBLISH"],
  ["s", "SUBSCRIBE"],
  ["n", "NOTIFY"],
  ["o", "OPTIONS"],
  ["f", "REFER"],
  ["g", "GET"],
  ["u", "UPDATE"],
  ["k", "KDMQ"],
  ["d", "DELETE"],
  ["t", "POST"],
  ["v", "PUT"],
]);

/** Methods Kamailio knows by id (METHOD_*); anything else is METHOD_OTHER. */
const STANDARD_METHODS: ReadonlySet<string> = new Set([...METHOD_LETTERS.values(), "INFO"]);

/** The standard method id (uppercase name) of the message, or undefined for other methods. */
function methodId(msg: MessageContext["msg"]): string | undefined {
  const m = messageMethod(msg).toUpperCase();
  return STANDARD_METHODS.has(m) ? m : undefined;
}

function isMethodFn(name: string): KemiFunction {
  return {
    params: [],
    returns: "bool",
    doc: `True if the request method (CSeq method for a reply) is ${name}.`,
    run: (ctx) => methodId(ctx.msg) === name,
  };
}

/**
 * KSR.is_method(m): one name compares case-insensitively with the method
 * (non-standard methods too); a "|" list may contain standard methods only,
 * otherwise it is an error and false.
 */
function isMethod(ctx: MessageContext, wanted: string): boolean {
  if (wanted.length === 0) {
    ctx.host.log("warn", "invalid parameters\n", ctx);
    return false;
  }
  const method = messageMethod(ctx.msg);
  if (!wanted.includes("|")) return method.toUpperCase() === wanted.toUpperCase();
  const id = methodId(ctx.msg);
  // A non-standard method of the message is compared against the whole text.
  if (id === undefined) return method.toUpperCase() === wanted.toUpperCase();
  let matched = false;
  for (const part of wanted.split("|")) {
    const m = part.trim().toUpperCase();
    if (!STANDARD_METHODS.has(m)) {
      ctx.host.log("err", `unknown method in list [${wanted}] - use only standard SIP methods\n`, ctx);
      return false;
    }
    if (m === id) matched = true;
  }
  return matched;
}

function isMethodIn(ctx: MessageContext, letters: string): boolean {
  if (letters.length === 0) {
    ctx.host.log("warn", "invalid parameters\n", ctx);
    return false;
  }
  const id = methodId(ctx.msg);
  if (id === undefined) return false;
  for (const ch of letters) {
    const m = METHOD_LETTERS.get(ch.toLowerCase());
    if (m === undefined) ctx.host.log("warn", `unsupported method flag: ${ch}\n`, ctx);
    else if (m === id) return true;
  }
  return false;
}

/** is_proto letters: u=UDP t=TCP e=TLS s=SCTP v=WS w=WSS. */
const PROTO_LETTERS: ReadonlyMap<string, string> = new Map([
  ["u", "udp"],
  ["t", "tcp"],
  ["e", "tls"],
  ["s", "sctp"],
  ["v", "ws"],
  ["w", "wss"],
]);

function receivedOn(proto: string): KemiFunction {
  return {
    params: [],
    returns: "bool",
    doc: `True if the message was received over ${proto.toUpperCase()}.`,
    run: (ctx) => ctx.rcv.proto === proto,
  };
}

/** Transport named by a Via protocol field: "SIP/2.0/UDP" → "udp". */
function viaTransport(viaValue: string): string | undefined {
  const m = /^\s*SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z]+)/i.exec(viaValue);
  return m === null ? undefined : m[1]!.toLowerCase();
}

/** The second Via of the message (a reply's next hop), across comma-joined values. */
function secondVia(ctx: MessageContext): string | undefined {
  let seen = 0;
  for (const i of headerIndexes(ctx.msg, "via")) {
    for (const v of splitHeaderValues(ctx.msg.headers[i]!.value)) {
      if (++seen === 2) return v;
    }
  }
  return undefined;
}

/**
 * Transport of the next hop: for a reply the second Via; for a request the
 * ;transport parameter of $du, else of the R-URI ("" when none, so no
 * to_* test is true — Kamailio's proto stays unset without the parameter).
 * Undefined when the URI cannot be parsed.
 */
function nextHopTransport(ctx: MessageContext): string | undefined {
  if (!ctx.isRequest) {
    const v = secondVia(ctx);
    return v === undefined ? undefined : viaTransport(v);
  }
  const text = ctx.dstUri !== undefined && ctx.dstUri.length > 0 ? ctx.dstUri : ctx.requestUri;
  const u = parseUriCached(text);
  if (u === null) {
    ctx.host.log("err", `failed to parse nh uri [${text}]\n`, ctx);
    return undefined;
  }
  return uriTransportParam(u.params);
}

function sendsOver(name: string, ...protos: string[]): KemiFunction {
  return {
    params: [],
    returns: "bool",
    doc: `True if the next hop ($du, else R-URI; 2nd Via for replies) uses ${name}.`,
    run(ctx) {
      const t = nextHopTransport(ctx);
      return t !== undefined && protos.includes(t);
    },
  };
}

/** IP family of the next-hop host: 4, 6 or 0 (a name or unknown). */
function nextHopFamily(ctx: MessageContext): number {
  let host: string;
  if (!ctx.isRequest) {
    const v = secondVia(ctx);
    if (v === undefined) return 0;
    const received = /;\s*received\s*=\s*([^;\s]+)/i.exec(v);
    if (received !== null) host = received[1]!;
    else {
      const m = /^\s*SIP\s*\/\s*2\.0\s*\/\s*[A-Za-z]+\s+(\[[^\]]*\]|[^\s:;]+)/i.exec(v);
      if (m === null) return 0;
      host = m[1]!;
    }
  } else {
    const text = ctx.dstUri !== undefined && ctx.dstUri.length > 0 ? ctx.dstUri : ctx.requestUri;
    const u = parseUriCached(text);
    if (u === null) return 0;
    host = u.host;
  }
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return isIP(host);
}

/**
 * Rewrite part of the R-URI (setuser/sethost); false when the current R-URI
 * does not parse as a sip/sips URI.
 */
function rewriteRuri(ctx: MessageContext, change: (u: ReturnType<typeof cloneUri>) => void): boolean {
  const cur = currentRuri(ctx);
  if (cur === null || cur.scheme === "tel") {
    ctx.host.log("err", "do action failed\n", ctx);
    return false;
  }
  const u = cloneUri(cur);
  change(u);
  ctx.setRequestUri(formatUri(u));
  return true;
}

function forwardTo(ctx: MessageContext, uri: string | undefined): number {
  const target = uri !== undefined && uri.length > 0 ? uri : undefined;
  const text = target ?? (ctx.dstUri !== undefined && ctx.dstUri.length > 0 ? ctx.dstUri : ctx.requestUri);
  if (parseUriCached(text) === null) {
    ctx.host.log("err", "forward - bad_uri dropping packet\n", ctx);
    return -1;
  }
  if (!ctx.host.forward(ctx, target)) return -1;
  ctx.forwarded = true;
  return 1;
}

// ------------------------------------------------------------------ table

export const coreModule: KemiModule = {
  name: "",
  kamailioModule: "core",
  functions: {
    dbg: logFn("dbg"),
    info: logFn("info"),
    notice: logFn("notice"),
    warn: logFn("warn"),
    err: logFn("err"),
    crit: logFn("crit"),
    log: {
      params: ["str", "str"],
      returns: "none",
      doc: "Log text at level dbg|info|notice|warn|err|crit (case-insensitive); any other level logs at err.",
      run(ctx, level: string, text: string) {
        ctx.host.log(LOG_LEVEL_NAMES.get(level.toLowerCase()) ?? "err", text, ctx, true);
        return undefined;
      },
    },
    set_drop: {
      params: [],
      returns: "none",
      doc: "Mark the message to be dropped when the route ends (execution continues).",
      run(ctx) {
        ctx.dropped = true;
        return undefined;
      },
    },

    // ---- myself
    is_myself: {
      params: ["str"],
      returns: "bool",
      doc: "True if the host (or sip:/sips: URI host, port, transport) is a local listen address or alias. No port = any port.",
      run: (ctx, uri: string) => isMyselfText(ctx.host, uri),
    },
    is_myself_ruri: {
      params: [],
      returns: "bool",
      doc: "True if the (possibly rewritten) R-URI points to this server; false for replies.",
      run: (ctx) => ctx.isRequest && isMyselfText(ctx.host, ctx.requestUri),
    },
    is_myself_duri: {
      params: [],
      returns: "bool",
      doc: "True if $du is set and points to this server.",
      run: (ctx) => ctx.dstUri !== undefined && isMyselfText(ctx.host, ctx.dstUri),
    },
    is_myself_nhuri: {
      params: [],
      returns: "bool",
      doc: "True if the next hop ($du if set, else the R-URI) points to this server.",
      run: (ctx) =>
        ctx.dstUri !== undefined ? isMyselfText(ctx.host, ctx.dstUri) : ctx.isRequest && isMyselfText(ctx.host, ctx.requestUri),
    },
    is_myself_furi: {
      params: [],
      returns: "bool",
      doc: "True if the From URI points to this server.",
      run(ctx) {
        const tb = toBody(ctx.msg, "from");
        return tb !== null && isMyselfText(ctx.host, tb.nameAddr.uri);
      },
    },
    is_myself_turi: {
      params: [],
      returns: "bool",
      doc: "True if the To URI points to this server.",
      run(ctx) {
        const tb = toBody(ctx.msg, "to");
        return tb !== null && isMyselfText(ctx.host, tb.nameAddr.uri);
      },
    },
    is_myself_suri: {
      params: [],
      returns: "bool",
      doc: "True if the source address (as sip:ip:port;transport) is local.",
      run: (ctx) => isLocalAddress(ctx.host, ctx.rcv.srcIp, ctx.rcv.srcPort, ctx.rcv.proto === "udp" ? "" : ctx.rcv.proto),
    },
    is_myself_srcip: {
      params: [],
      returns: "bool",
      doc: "True if the source IP is a local address (any port).",
      run: (ctx) => isLocalAddress(ctx.host, ctx.rcv.srcIp, 0, ""),
    },

    // ---- flags
    setflag: {
      params: ["int"],
      returns: "bool",
      doc: "Set message flag f (0..31).",
      run(ctx, f: number) {
        if (!flagInRange(ctx, f)) return false;
        ctx.flags = (ctx.flags | bit(f)) >>> 0;
        return true;
      },
    },
    resetflag: {
      params: ["int"],
      returns: "bool",
      doc: "Reset message flag f (0..31).",
      run(ctx, f: number) {
        if (!flagInRange(ctx, f)) return false;
        ctx.flags = (ctx.flags & ~bit(f)) >>> 0;
        return true;
      },
    },
    isflagset: {
      params: ["int"],
      returns: "bool",
      doc: "True if message flag f is set.",
      run: (ctx, f: number) => flagInRange(ctx, f) && ((ctx.flags >>> f) & 1) === 1,
    },
    setbflag: {
      params: ["int"],
      returns: "bool",
      doc: "Set branch flag f of branch 0 (the R-URI branch).",
      run: (ctx, f: number) => setBranchFlag(ctx, f, 0, true),
    },
    resetbflag: {
      params: ["int"],
      returns: "bool",
      doc: "Reset branch flag f of branch 0.",
      run: (ctx, f: number) => setBranchFlag(ctx, f, 0, false),
    },
    isbflagset: {
      params: ["int"],
      returns: "bool",
      doc: "True if branch flag f of branch 0 is set.",
      run: (ctx, f: number) => isBranchFlagSet(ctx, f, 0),
    },
    setbiflag: {
      params: ["int", "int"],
      returns: "bool",
      doc: "Set branch flag f of branch index b (no effect on a branch that does not exist).",
      run: (ctx, f: number, b: number) => setBranchFlag(ctx, f, b, true),
    },
    resetbiflag: {
      params: ["int", "int"],
      returns: "bool",
      doc: "Reset branch flag f of branch index b.",
      run: (ctx, f: number, b: number) => setBranchFlag(ctx, f, b, false),
    },
    isbiflagset: {
      params: ["int", "int"],
      returns: "bool",
      doc: "True if branch flag f of branch index b is set (false if no such branch).",
      run: (ctx, f: number, b: number) => isBranchFlagSet(ctx, f, b),
    },
    setsflag: {
      params: ["int"],
      returns: "bool",
      doc: "Set script flag f (script flags are reset at the start of each route run).",
      run(ctx, f: number) {
        if (!flagInRange(ctx, f)) return false;
        ctx.scriptFlags = (ctx.scriptFlags | bit(f)) >>> 0;
        return true;
      },
    },
    resetsflag: {
      params: ["int"],
      returns: "bool",
      doc: "Reset script flag f.",
      run(ctx, f: number) {
        if (!flagInRange(ctx, f)) return false;
        ctx.scriptFlags = (ctx.scriptFlags & ~bit(f)) >>> 0;
        return true;
      },
    },
    issflagset: {
      params: ["int"],
      returns: "bool",
      doc: "True if script flag f is set.",
      run: (ctx, f: number) => flagInRange(ctx, f) && ((ctx.scriptFlags >>> f) & 1) === 1,
    },

    // ---- R-URI and destination
    seturi: {
      params: ["str"],
      returns: "bool",
      doc: "Replace the whole R-URI ($ru). The text is taken as is, as Kamailio does.",
      run(ctx, uri: string) {
        if (!ctx.isRequest) return false;
        ctx.setRequestUri(uri);
        return true;
      },
    },
    setuser: {
      params: ["str"],
      returns: "bool",
      doc: "Replace the R-URI user part ($rU); an empty string removes it.",
      run: (ctx, user: string) =>
        rewriteRuri(ctx, (u) => {
          if (user.length === 0) {
            delete u.user;
            delete u.password;
          } else u.user = user;
        }),
    },
    sethost: {
      params: ["str"],
      returns: "bool",
      doc: "Replace the R-URI host part ($rd).",
      run(ctx, host: string) {
        if (host.length === 0) return false;
        return rewriteRuri(ctx, (u) => {
          u.host = host;
        });
      },
    },
    setdsturi: {
      params: ["str"],
      returns: "bool",
      doc: "Set the destination URI ($du). Returns true even when it cannot be set (Kamailio quirk).",
      run(ctx, uri: string) {
        if (uri.length === 0) ctx.host.log("err", "setting dst uri failed\n", ctx);
        else ctx.dstUri = uri;
        return true;
      },
    },
    resetdsturi: {
      params: [],
      returns: "bool",
      doc: "Clear $du.",
      run(ctx) {
        ctx.dstUri = undefined;
        return true;
      },
    },
    isdsturiset: {
      params: [],
      returns: "bool",
      doc: "True if $du is set and non-empty.",
      run: (ctx) => ctx.dstUri !== undefined && ctx.dstUri.length > 0,
    },
    force_rport: {
      params: [],
      returns: "bool",
      doc: "Add received/rport to the top Via and reply to the source port (RFC 3581 symmetric response routing).",
      run(ctx) {
        ctx.forceRport = true;
        return true;
      },
    },
    add_local_rport: {
      params: [],
      returns: "bool",
      doc: "Add the rport parameter to the Via this proxy inserts (RFC 3581 §3).",
      run(ctx) {
        ctx.addLocalRport = true;
        return true;
      },
    },

    // ---- methods
    is_method: {
      params: ["str"],
      returns: "bool",
      doc: 'Case-insensitive method test (CSeq method for replies); "INVITE|BYE" lists take standard methods only.',
      run: (ctx, m: string) => isMethod(ctx, m),
    },
    is_method_in: {
      params: ["str"],
      returns: "bool",
      doc: "True if the method matches a letter: I A B C R M O S P N F U E K G T V D (case-insensitive).",
      run: (ctx, letters: string) => isMethodIn(ctx, letters),
    },
    is_INVITE: isMethodFn("INVITE"),
    is_ACK: isMethodFn("ACK"),
    is_BYE: isMethodFn("BYE"),
    is_CANCEL: isMethodFn("CANCEL"),
    is_REGISTER: isMethodFn("REGISTER"),
    is_OPTIONS: isMethodFn("OPTIONS"),
    is_SUBSCRIBE: isMethodFn("SUBSCRIBE"),
    is_PUBLISH: isMethodFn("PUBLISH"),
    is_NOTIFY: isMethodFn("NOTIFY"),
    is_REFER: isMethodFn("REFER"),
    is_INFO: isMethodFn("INFO"),
    is_UPDATE: isMethodFn("UPDATE"),
    is_PRACK: isMethodFn("PRACK"),
    is_MESSAGE: isMethodFn("MESSAGE"),
    is_KDMQ: isMethodFn("KDMQ"),
    is_GET: isMethodFn("GET"),
    is_POST: isMethodFn("POST"),
    is_PUT: isMethodFn("PUT"),
    is_DELETE: isMethodFn("DELETE"),

    // ---- transport of the received message
    is_UDP: receivedOn("udp"),
    is_TCP: receivedOn("tcp"),
    is_TLS: receivedOn("tls"),
    is_SCTP: receivedOn("sctp"),
    is_WS: receivedOn("ws"),
    is_WSS: receivedOn("wss"),
    is_WSX: {
      params: [],
      returns: "bool",
      doc: "True if the message was received over WS or WSS.",
      run: (ctx) => (ctx.rcv.proto as string) === "ws" || (ctx.rcv.proto as string) === "wss",
    },
    is_proto: {
      params: ["str"],
      returns: "bool",
      doc: "True if the receive transport matches a letter: u=UDP t=TCP e=TLS s=SCTP v=WS w=WSS.",
      run(ctx, letters: string) {
        for (const ch of letters) if (PROTO_LETTERS.get(ch.toLowerCase()) === ctx.rcv.proto) return true;
        return false;
      },
    },
    is_IPv4: {
      params: [],
      returns: "bool",
      doc: "True if the message was received on an IPv4 socket.",
      run: (ctx) => isIP(canonicalHost(ctx.rcv.localIp)) === 4,
    },
    is_IPv6: {
      params: [],
      returns: "bool",
      doc: "True if the message was received on an IPv6 socket.",
      run: (ctx) => isIP(ctx.rcv.localIp.replace(/^\[|\]$/g, "")) === 6,
    },
    is_src_port: {
      params: ["int"],
      returns: "bool",
      doc: "True if the source port equals p.",
      run: (ctx, p: number) => ctx.rcv.srcPort === p,
    },
    is_dst_port: {
      params: ["int"],
      returns: "bool",
      doc: "True if the local port the message arrived on equals p.",
      run: (ctx, p: number) => ctx.rcv.localPort === p,
    },

    // ---- transport of the next hop
    to_UDP: sendsOver("UDP", "udp"),
    to_TCP: sendsOver("TCP", "tcp"),
    to_TLS: sendsOver("TLS", "tls"),
    to_SCTP: sendsOver("SCTP", "sctp"),
    to_WS: sendsOver("WS", "ws"),
    to_WSS: sendsOver("WSS", "wss"),
    to_WSX: sendsOver("WS or WSS", "ws", "wss"),
    to_IPv4: {
      params: [],
      returns: "bool",
      doc: "True if the next-hop host is an IPv4 address.",
      run: (ctx) => nextHopFamily(ctx) === 4,
    },
    to_IPv6: {
      params: [],
      returns: "bool",
      doc: "True if the next-hop host is an IPv6 address.",
      run: (ctx) => nextHopFamily(ctx) === 6,
    },

    // ---- stateless forwarding and send options
    forward: {
      params: [],
      returns: "int",
      doc: "Stateless forward to $du, else the R-URI (a reply goes by its Via). 1 ok, -1 error.",
      run: (ctx) => forwardTo(ctx, undefined),
    },
    forward_uri: {
      params: ["str"],
      returns: "int",
      doc: "Stateless forward to the given URI (empty = like forward()). 1 ok, -1 error.",
      run: (ctx, uri: string) => forwardTo(ctx, uri),
    },
    set_forward_close: {
      params: [],
      returns: "bool",
      doc: "Close the TCP connection after forwarding this message.",
      run(ctx) {
        sendOptions(ctx).forwardClose = true;
        return true;
      },
    },
    set_forward_no_connect: {
      params: [],
      returns: "bool",
      doc: "Forward only over an existing TCP connection; never open a new one.",
      run(ctx) {
        sendOptions(ctx).forwardNoConnect = true;
        return true;
      },
    },
    set_reply_close: {
      params: [],
      returns: "bool",
      doc: "Close the TCP connection after sending the reply to this message.",
      run(ctx) {
        sendOptions(ctx).replyClose = true;
        return true;
      },
    },
    set_reply_no_connect: {
      params: [],
      returns: "bool",
      doc: "Send replies only over the existing TCP connection; never open a new one.",
      run(ctx) {
        sendOptions(ctx).replyNoConnect = true;
        return true;
      },
    },
    set_advertised_address: {
      params: ["str"],
      returns: "int",
      doc: "Address to advertise in the Via/Record-Route added for this message. 1 ok, 0 if longer than 127 chars.",
      run(ctx, addr: string) {
        if (addr.length >= 128) {
          ctx.host.log("err", "addr parameter is too large\n", ctx);
          return 0;
        }
        sendOptions(ctx).advertisedAddress = addr;
        return 1;
      },
    },
    set_advertised_port: {
      params: ["str"],
      returns: "int",
      doc: "Port to advertise in the Via/Record-Route added for this message. 1 ok, 0 if longer than 7 chars.",
      run(ctx, port: string) {
        if (port.length >= 8) {
          ctx.host.log("err", "port parameter is too large\n", ctx);
          return 0;
        }
        sendOptions(ctx).advertisedPort = port;
        return 1;
      },
    },
    route: {
      params: ["str"],
      returns: "int",
      doc: "Run a native kamailio.cfg route block: there are none here, so always -1 (no such route), as in Kamailio.",
      run: () => -1,
    },
  },
  // Native functions (Kamailio kex cmd exports) for KSR.x.modf.
  native: [
    { name: "setsflag", params: ["int"], routes: ["ANY_ROUTE"], kemi: "setsflag", module: "kex" },
    { name: "resetsflag", params: ["int"], routes: ["ANY_ROUTE"], kemi: "resetsflag", module: "kex" },
    { name: "issflagset", params: ["int"], routes: ["ANY_ROUTE"], kemi: "issflagset", module: "kex" },
    { name: "setbflag", params: ["int"], routes: ["ANY_ROUTE"], kemi: "setbflag", module: "kex" },
    { name: "resetbflag", params: ["int"], routes: ["ANY_ROUTE"], kemi: "resetbflag", module: "kex" },
    { name: "isbflagset", params: ["int"], routes: ["ANY_ROUTE"], kemi: "isbflagset", module: "kex" },
    { name: "setbflag", params: ["int", "int"], routes: ["ANY_ROUTE"], kemi: "setbiflag", module: "kex" },
    { name: "resetbflag", params: ["int", "int"], routes: ["ANY_ROUTE"], kemi: "resetbiflag", module: "kex" },
    { name: "isbflagset", params: ["int", "int"], routes: ["ANY_ROUTE"], kemi: "isbiflagset", module: "kex" },
    { name: "setdsturi", params: ["str"], routes: ["ANY_ROUTE"], kemi: "setdsturi", module: "kex" },
    { name: "resetdsturi", params: [], routes: ["ANY_ROUTE"], kemi: "resetdsturi", module: "kex" },
    { name: "isdsturiset", params: [], routes: ["ANY_ROUTE"], kemi: "isdsturiset", module: "kex" },
    { name: "is_myself", params: ["str"], routes: ["ANY_ROUTE"], kemi: "is_myself", module: "kex" },
  ],
};

function setBranchFlag(ctx: MessageContext, f: number, branch: number, on: boolean): boolean {
  if (!flagInRange(ctx, f)) return false;
  // Kamailio: flags of a branch that does not exist are silently not set,
  // and the KEMI function still reports success.
  if (Number.isInteger(branch) && branch >= 0 && branch < ctx.branchFlags.length) {
    const cur = ctx.branchFlags[branch]!;
    ctx.branchFlags[branch] = (on ? cur | bit(f) : cur & ~bit(f)) >>> 0;
  }
  return true;
}

function isBranchFlagSet(ctx: MessageContext, f: number, branch: number): boolean {
  if (!flagInRange(ctx, f)) return false;
  if (!Number.isInteger(branch) || branch < 0 || branch >= ctx.branchFlags.length) return false;
  return ((ctx.branchFlags[branch]! >>> f) & 1) === 1;
}
