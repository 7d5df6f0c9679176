/**
 * KSR.kx (Kamailio kemix module): fast typed accessors for message fields.
 * Missing values follow kemix exactly: get_* → null, gete_* → "",
 * getw_* → "<null>", and a few getters Kamailio defines with "" (callid,
 * srcuri, proto...) or numbers (srcport, rcvport) instead.
 *
 * Config defines: there is no kamailio.cfg preprocessor here, so no
 * `#!define` exists — get_def returns "", get_defn 0, ifdef false and
 * ifndef true, which is what Kamailio returns for an undefined name.
 *
 * Environment: get_env/get_envn would let any tenant script read the host
 * process environment (secrets, paths). Only names on the allow-list set
 * with setKxEnvAllowList() are visible (none by default); any other name
 * reads as unset ("" / 0), exactly like a variable that does not exist.
 */
import type { MessageContext } from "../core/context.js";
import type { KemiFunction, KemiModule, KemiValue } from "./types.js";
import {
  currentRuri,
  firstContactUri,
  firstHeaderOf,
  messageMethod,
  parseUriCached,
  requestCredentials,
  splitAuthUsername,
  str2sint,
  toBody,
  xvalNull,
  type NullMode,
} from "./msgutil.js";
import { PROTO_IDS } from "./pv.js";

let envAllowList: ReadonlySet<string> = new Set();

/** Environment variable names scripts may read through KSR.kx.get_env/get_envn. */
export function setKxEnvAllowList(names: Iterable<string>): void {
  envAllowList = new Set(names);
}

function allowedEnv(name: string): string | undefined {
  return envAllowList.has(name) ? process.env[name] : undefined;
}

function x(doc: string, run: (ctx: MessageContext) => KemiValue): KemiFunction {
  return { params: [], returns: "xval", doc, run };
}

function i(doc: string, run: (ctx: MessageContext) => number): KemiFunction {
  return { params: [], returns: "int", doc, run };
}

/** get_/gete_/getw_ triple of a string getter. */
function triple(
  base: string,
  what: string,
  value: (ctx: MessageContext) => string | null,
): Record<string, KemiFunction> {
  const mk = (mode: NullMode, missing: string) =>
    x(`${what}; ${missing} when missing.`, (ctx) => {
      const v = value(ctx);
      return v === null || v.length === 0 ? xvalNull(mode) : v;
    });
  return {
    [`get_${base}`]: mk("null", "null"),
    [`gete_${base}`]: mk("empty", '""'),
    [`getw_${base}`]: mk("print", '"<null>"'),
  };
}

const ruriUser = (ctx: MessageContext) => currentRuri(ctx)?.user ?? null;
const ruriHost = (ctx: MessageContext) => currentRuri(ctx)?.host ?? null;
const fromUri = (ctx: MessageContext) => toBody(ctx.msg, "from")?.uri ?? null;
const toUri = (ctx: MessageContext) => toBody(ctx.msg, "to")?.uri ?? null;

function socketText(proto: string, ip: string, port: number): string {
  return `${proto}:${ip.includes(":") ? `[${ip}]` : ip}:${port}`;
}

/** The R-URI, or null for replies / an unparsable R-URI (kemix checks that it parses). */
function ruri(ctx: MessageContext): string | null {
  if (!ctx.isRequest) return null;
  return parseUriCached(ctx.requestUri) === null ? null : ctx.requestUri;
}

export const kxModule: KemiModule = {
  name: "kx",
  kamailioModule: "kemix",
  functions: {
    get_ruri: x("R-URI (the rewritten one if changed); null for replies.", ruri),
    ...triple("ruser", "R-URI user", ruriUser),
    ...triple("rhost", "R-URI host", ruriHost),
    get_ouri: x("Original (received) R-URI; null for replies.", (ctx) =>
      ctx.isRequest && parseUriCached(ctx.msg.requestUri) !== null ? ctx.msg.requestUri : null,
    ),
    get_furi: x("From URI; null if no valid From.", (ctx) => toBody(ctx.msg, "from")?.nameAddr.uri ?? null),
    ...triple("fuser", "From URI user", (ctx) => fromUri(ctx)?.user ?? null),
    ...triple("fhost", "From URI host", (ctx) => fromUri(ctx)?.host ?? null),
    get_turi: x("To URI; null if no valid To.", (ctx) => toBody(ctx.msg, "to")?.nameAddr.uri ?? null),
    ...triple("tuser", "To URI user", (ctx) => toUri(ctx)?.user ?? null),
    ...triple("thost", "To URI host", (ctx) => toUri(ctx)?.host ?? null),
    ...triple("duri", "Destination URI ($du)", (ctx) => ctx.dstUri ?? null),
    get_nhuri: x("Next hop: $du if set, else the R-URI.", (ctx) =>
      ctx.dstUri !== undefined && ctx.dstUri.length > 0 ? ctx.dstUri : ruri(ctx),
    ),
    ...triple("cturi", "URI of the first Contact (not for Contact: *)", (ctx) => firstContactUri(ctx.msg)),
    ...triple("ua", "User-Agent header body", (ctx) => firstHeaderOf(ctx.msg, "user-agent")?.value ?? null),
    get_srcip: x("Source IP address.", (ctx) => ctx.rcv.srcIp),
    get_srcport: x("Source port (a number).", (ctx) => ctx.rcv.srcPort),
    get_srcuri: x("Source address as sip:ip:port (;transport=... when not UDP).", (ctx) => {
      const ip = ctx.rcv.srcIp.includes(":") ? `[${ctx.rcv.srcIp}]` : ctx.rcv.srcIp;
      const t = ctx.rcv.proto === "udp" ? "" : `;transport=${ctx.rcv.proto}`;
      return `sip:${ip}:${ctx.rcv.srcPort}${t}`;
    }),
    get_srcaddr_sock: x("Source address as proto:ip:port.", (ctx) => socketText(ctx.rcv.proto, ctx.rcv.srcIp, ctx.rcv.srcPort)),
    get_rcvip: x("Local IP the message was received on.", (ctx) => ctx.rcv.localIp),
    get_rcvport: x("Local port the message was received on (a number).", (ctx) => ctx.rcv.localPort),
    get_rcvadvip: x("Advertised IP of the receiving socket (its own IP: no advertised addresses here).", (ctx) => ctx.rcv.localIp),
    get_rcvadvport: x("Advertised port of the receiving socket (its own port here).", (ctx) => ctx.rcv.localPort),
    get_rcvaddr_sock: x("Receiving socket as proto:ip:port.", (ctx) => socketText(ctx.rcv.proto, ctx.rcv.localIp, ctx.rcv.localPort)),
    get_rcv_sock_name: x("Name of the receiving socket: null (sockets have no names here).", () => null),
    get_send_sock: x("Forced send socket ($fs) as proto:ip:port; null if none.", (ctx) => ctx.sendSocket ?? null),
    get_send_sock_name: x("Name of the forced send socket: null (sockets have no names here).", () => null),
    get_send_sock_port: i("Port of the forced send socket; 0 if none.", (ctx) => {
      const s = ctx.sendSocket;
      if (s === undefined) return 0;
      const m = /:(\d+)$/.exec(s);
      return m === null ? 0 : Number(m[1]);
    }),
    get_proto: x('Receive transport ("udp", "tcp").', (ctx) => ctx.rcv.proto),
    get_protoid: i("Receive transport id (1 udp, 2 tcp, 3 tls, 4 sctp, 5 ws, 6 wss).", (ctx) => PROTO_IDS.get(ctx.rcv.proto) ?? 0),
    ...triple("au", "Digest username (user part) from Proxy-Authorization / Authorization", (ctx) => {
      const c = requestCredentials(ctx.msg);
      return c === null || c.username === undefined ? null : splitAuthUsername(c.username).user;
    }),
    get_method: x("Request method, or the CSeq method of a reply.", (ctx) => messageMethod(ctx.msg)),
    get_status: i("Reply status code; -1 for requests.", (ctx) => (ctx.isRequest ? -1 : ctx.msg.status)),
    gets_status: x("Reply status code as a string; null for requests.", (ctx) => (ctx.isRequest ? null : String(ctx.msg.status))),
    ...triple("body", "Message body", (ctx) => ctx.msg.body),
    get_bodylen: i("Body length in bytes; 0 if none.", (ctx) => ctx.msg.body.length),
    get_timestamp: i("Current Unix time in seconds.", (ctx) => Math.floor(ctx.host.now() / 1000)),
    get_callid: x('Call-ID; "" if missing.', (ctx) => firstHeaderOf(ctx.msg, "call-id")?.value ?? ""),
    get_conid: i("TCP connection id; -1 for UDP.", (ctx) => (ctx.rcv.proto === "udp" ? -1 : ctx.rcv.connectionId)),
    get_msgbuf: x("The whole message as received.", (ctx) => ctx.msg.raw),
    get_msglen: i("Length of the message as received.", (ctx) => ctx.msg.raw.length),
    get_msgtype: i("1 for a request, 2 for a reply.", (ctx) => (ctx.isRequest ? 1 : 2)),
    get_def: {
      params: ["str"],
      returns: "xval",
      doc: 'Value of a cfg #!define: there are none here, so always "".',
      run: () => "",
    },
    get_defn: {
      params: ["str"],
      returns: "int",
      doc: "Integer value of a cfg #!define: there are none here, so always 0.",
      run: () => 0,
    },
    ifdef: {
      params: ["str"],
      returns: "bool",
      doc: "True if a cfg #!define exists: there are none here, so always false.",
      run: () => false,
    },
    ifndef: {
      params: ["str"],
      returns: "bool",
      doc: "True if a cfg #!define does not exist: always true here.",
      run: () => true,
    },
    get_env: {
      params: ["str"],
      returns: "xval",
      doc: 'Environment variable, only if on the host allow-list (none by default); "" otherwise.',
      run: (_ctx, name: string) => allowedEnv(name) ?? "",
    },
    get_envn: {
      params: ["str"],
      returns: "int",
      doc: "Environment variable as an integer, only if on the host allow-list; 0 otherwise.",
      run(_ctx, name: string) {
        const v = allowedEnv(name);
        return v === undefined ? 0 : str2sint(v);
      },
    },
  },
};
