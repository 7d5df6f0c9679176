/**
 * KSR.pv: pseudo-variables by name ("$ru", "$var(x)", "$(hdr(Via)[1])").
 *
 * Names are compiled once into accessors and cached (scripts call
 * KSR.pv.get dozens of times per message with the same few names). Value
 * types follow Kamailio 5.6's PV getters: a PV Kamailio marks as integer
 * ($sp, $rs, $Rp, $cl, $ml, $Ts, $var holding an int...) comes back as a JS
 * number, everything else as a string ($rp, $cs, $rm are strings there
 * too), and a missing value as null (get) / "" (gete) / "<null>" (getw).
 *
 * Syntax accepted, as Kamailio's pv_locate_name: `$name`, `$name(inner)`,
 * and the index form `$(name(inner)[i])` with i an integer (negative counts
 * from the end) or `*`. `$hdr(Via)[1]` is NOT an index form (Kamailio
 * rejects it as an invalid name). Transformations (`{s.len}`) are not
 * supported: such names are invalid here.
 *
 * $avp values live per message context (see avpStore/setAvpStore for code
 * that must carry them into later routes of the same transaction).
 */
import { setIpopsPvWriter } from "./ipops.js";
import { formatPvParts, parsePvFormat } from "./pv-format.js";
import { isIP } from "node:net";
import { overQuota, valueBytes } from "../core/quota.js";
import { hostname } from "node:os";
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import type { KemiModule, KemiValue, PvAccessor, PvClass, PvIndex, PvValue } from "./types.js";
import { formatUri, type SipUri } from "../sip/uri.js";
import {
  cloneUri,
  countHeaders,
  currentRuri,
  firstHeaderOf,
  headerKeyFor,
  messageMethod,
  parseUriCached,
  requestCredentials,
  splitAuthUsername,
  str2sint,
  toBody,
  xvalNull,
  type NullMode,
} from "./msgutil.js";
import { isLocalAddress, parseSocketSpec } from "./myself.js";

/** Re-exported for the modules that build accessors (htable, tm-pv). */
export type { PvAccessor, PvValue };

// ------------------------------------------------------------ $avp storage

/** AVPs by name; each list has the most recently added value first. */
export type AvpStore = Map<string, (string | number)[]>;

const avps = new ContextSlot<AvpStore>("pv.avps");

/** The AVP store of ctx (created on first use). */
export function avpStore(ctx: MessageContext): AvpStore {
  let s = avps.get(ctx);
  if (s === undefined) {
    s = new Map();
    avps.set(ctx, s);
  }
  return s;
}

/** Attach an existing store (e.g. the transaction's) to a new context. */
export function setAvpStore(ctx: MessageContext, store: AvpStore): void {
  avps.set(ctx, store);
}

// ------------------------------------------------------------- helpers

const METHOD_IDS: ReadonlyMap<string, number> = new Map([
  ["INVITE", 1],
  ["CANCEL", 2],
  ["ACK", 4],
  ["BYE", 8],
  ["INFO", 16],
  ["REGISTER", 32],
  ["SUBSCRIBE", 64],
  ["NOTIFY", 128],
  ["MESSAGE", 256],
  ["OPTIONS", 512],
  ["PRACK", 1024],
  ["UPDATE", 2048],
  ["REFER", 4096],
  ["PUBLISH", 8192],
  ["KDMQ", 16384],
  ["GET", 32768],
  ["POST", 65536],
  ["PUT", 131072],
  ["DELETE", 262144],
]);
const METHOD_OTHER = 524288;

/** Kamailio protocol ids (PROTO_UDP=1 ...). */
export const PROTO_IDS: ReadonlyMap<string, number> = new Map([
  ["udp", 1],
  ["tcp", 2],
  ["tls", 3],
  ["sctp", 4],
  ["ws", 5],
  ["wss", 6],
]);

const URI_TYPE_IDS: ReadonlyMap<string, number> = new Map([
  ["sip", 1],
  ["sips", 2],
  ["tel", 3],
]);

function ruriPart(pick: (u: SipUri) => PvValue): (ctx: MessageContext) => PvValue {
  return (ctx) => {
    const u = currentRuri(ctx);
    return u === null ? null : pick(u);
  };
}

function ouriPart(pick: (u: SipUri) => PvValue): (ctx: MessageContext) => PvValue {
  return (ctx) => {
    if (!ctx.isRequest) return null;
    const u = parseUriCached(ctx.msg.requestUri);
    return u === null ? null : pick(u);
  };
}

const nonEmpty = (s: string | undefined): PvValue => (s === undefined || s.length === 0 ? null : s);

/** Port of a URI as $rp shows it: the written port, else 5061 for TLS, else 5060. */
function uriPortText(u: SipUri): string {
  if (u.port !== undefined) return String(u.port);
  const t = u.params.find((p) => p.name.toLowerCase() === "transport")?.value?.toLowerCase();
  return t === "tls" ? "5061" : "5060";
}

/** Change the R-URI through a copy of its parsed form; false if it does not parse. */
function changeRuri(ctx: MessageContext, change: (u: SipUri) => boolean): boolean {
  const cur = currentRuri(ctx);
  if (cur === null || cur.scheme === "tel") return false;
  const u = cloneUri(cur);
  if (!change(u)) return false;
  ctx.setRequestUri(formatUri(u));
  return true;
}

function fromTo(key: "from" | "to", pick: (tb: NonNullable<ReturnType<typeof toBody>>) => PvValue) {
  return (ctx: MessageContext): PvValue => {
    const tb = toBody(ctx.msg, key);
    return tb === null ? null : pick(tb);
  };
}

const contextTime = new ContextSlot<number>("pv.messageTime");

/** Wall-clock ms fixed at the first time read of this message ($Ts, $TV(s) are per-message in Kamailio). */
function messageTimeMs(ctx: MessageContext): number {
  let t = contextTime.get(ctx);
  if (t === undefined) {
    t = ctx.host.now();
    contextTime.set(ctx, t);
  }
  return t;
}

// ---------------------------------------------------------- simple PVs

type Getter = (ctx: MessageContext) => PvValue;

const readOnly = (get: Getter, geti?: (ctx: MessageContext) => number | null): PvAccessor =>
  geti === undefined ? { get } : { get, geti };

const ruAccessor: PvAccessor = {
  get: (ctx) => (ctx.isRequest ? ctx.requestUri : null),
  set(ctx, v) {
    if (!ctx.isRequest || typeof v !== "string" || v.length === 0) return false;
    ctx.setRequestUri(v);
    return true;
  },
};

const rUAccessor: PvAccessor = {
  get: ruriPart((u) => nonEmpty(u.user)),
  set(ctx, v) {
    if (typeof v === "number") return false;
    return changeRuri(ctx, (u) => {
      if (v === null || v.length === 0) {
        delete u.user;
        delete u.password;
      } else u.user = v;
      return true;
    });
  },
};

const rdAccessor: PvAccessor = {
  get: ruriPart((u) => nonEmpty(u.host)),
  set(ctx, v) {
    if (typeof v !== "string" || v.length === 0) return false;
    return changeRuri(ctx, (u) => {
      u.host = v;
      return true;
    });
  },
};

const rpAccessor: PvAccessor = {
  get: ruriPart(uriPortText),
  geti(ctx) {
    const u = currentRuri(ctx);
    return u === null ? null : Number(uriPortText(u));
  },
  set(ctx, v) {
    return changeRuri(ctx, (u) => {
      if (v === null || v === "") {
        delete u.port;
        return true;
      }
      const port = typeof v === "number" ? v : /^\d{1,5}$/.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(port) || port < 0 || port > 65535) return false;
      u.port = port;
      return true;
    });
  },
};

const duAccessor: PvAccessor = {
  get: (ctx) => ctx.dstUri ?? null,
  set(ctx, v) {
    if (typeof v === "number") return false;
    if (v === null || v.length === 0) {
      ctx.dstUri = undefined;
      return true;
    }
    ctx.dstUri = v;
    // Kamailio's pv_set_dsturi: a new next hop makes the R-URI usable for
    // a branch again (serial forking from a failure route). KSR.setdsturi
    // does not (core KEMI set_dst_uri).
    ctx.ruriConsumed = false;
    return true;
  },
};

const fsAccessor: PvAccessor = {
  get: (ctx) => ctx.sendSocket ?? null,
  set(ctx, v) {
    if (v === null) {
      ctx.sendSocket = undefined;
      return true;
    }
    if (typeof v !== "string" || v.length === 0) return false;
    const spec = parseSocketSpec(v);
    if (spec === null) {
      ctx.host.log("err", "invalid socket specification\n", ctx);
      return false;
    }
    const sock = ctx.host.listen.find(
      (s) => (spec.proto === "" || s.proto === spec.proto) && (spec.port === 0 || s.port === spec.port) &&
        isLocalAddress({ listen: [s], aliases: [] }, spec.host, spec.port, spec.proto),
    );
    if (sock === undefined) {
      // Kamailio only warns and leaves the forced socket unchanged, yet the
      // assignment counts as done.
      ctx.host.log("warn", `no socket found to match [${v}]\n`, ctx);
      return true;
    }
    ctx.sendSocket = `${sock.proto}:${sock.ip.includes(":") ? `[${sock.ip}]` : sock.ip}:${sock.port}`;
    return true;
  },
};

/** The core's plain PVs (Kamailio's pv module and core: $ru, $si ...). */
const PLAIN_PVS: readonly PvClass[] = (() => {
  const m: PvClass[] = [];
  const add = (names: string[], doc: string, a: PvAccessor) => m.push({ names, form: "plain", writable: a.set !== undefined, doc, compile: () => a });
  add(["ru", "ruri"], "Request-URI (as changed by the script)", ruAccessor);
  add(["rU", "ruri.user"], "user part of the R-URI", rUAccessor);
  add(["rd", "ruri.domain"], "host part of the R-URI", rdAccessor);
  add(["rp"], "port of the R-URI (5060, 5061 for TLS, when not written)", rpAccessor);
  add(["rz"], "R-URI scheme (int: 1 sip, 2 sips, 3 tel)",
    readOnly(ruriPart((u) => u.scheme), (ctx) => {
      const u = currentRuri(ctx);
      return u === null ? null : URI_TYPE_IDS.get(u.scheme) ?? 0;
    }),
  );
  add(["ou", "ouri"], "original Request-URI, as received", readOnly((ctx) => (ctx.isRequest ? ctx.msg.requestUri : null)));
  add(["oU"], "user part of the original R-URI", readOnly(ouriPart((u) => nonEmpty(u.user))));
  add(["od"], "host part of the original R-URI", readOnly(ouriPart((u) => nonEmpty(u.host))));
  add(["du", "duri"], "destination URI (next hop), null when unset", duAccessor);
  add(["fu", "from"], "From URI", readOnly(fromTo("from", (tb) => tb.nameAddr.uri)));
  add(["fU", "from.user"], "From URI user", readOnly(fromTo("from", (tb) => nonEmpty(tb.uri?.user))));
  add(["fd", "from.domain"], "From URI host", readOnly(fromTo("from", (tb) => (tb.uri === null ? null : nonEmpty(tb.uri.host)))));
  add(["fn"], "From display name", readOnly(fromTo("from", (tb) => nonEmpty(tb.rawDisplay))));
  add(["ft"], "From tag", readOnly(fromTo("from", (tb) => nonEmpty(tb.tag))));
  add(["tu", "to"], "To URI", readOnly(fromTo("to", (tb) => tb.nameAddr.uri)));
  add(["tU", "to.user"], "To URI user", readOnly(fromTo("to", (tb) => nonEmpty(tb.uri?.user))));
  add(["td", "to.domain"], "To URI host", readOnly(fromTo("to", (tb) => (tb.uri === null ? null : nonEmpty(tb.uri.host)))));
  add(["tn"], "To display name", readOnly(fromTo("to", (tb) => nonEmpty(tb.rawDisplay))));
  add(["tt"], "To tag", readOnly(fromTo("to", (tb) => nonEmpty(tb.tag))));
  add(["ci"], "Call-ID", readOnly((ctx) => firstHeaderOf(ctx.msg, "call-id")?.value ?? null));
  add(["cs"], "CSeq number",
    readOnly((ctx) => {
      const v = firstHeaderOf(ctx.msg, "cseq")?.value;
      if (v === undefined) return null;
      return v.trim().split(/\s+/)[0] ?? null;
    }),
  );
  add(["rm"], "method (int: Kamailio's method id)",
    readOnly(
      (ctx) => messageMethod(ctx.msg),
      (ctx) => METHOD_IDS.get(messageMethod(ctx.msg).toUpperCase()) ?? METHOD_OTHER,
    ),
  );
  add(["rs"], "reply status", readOnly((ctx) => (ctx.isRequest ? null : ctx.msg.status)));
  add(["rr"], "reply reason", readOnly((ctx) => (ctx.isRequest ? null : ctx.msg.reason)));
  add(["si", "src_ip"], "source IP address", readOnly((ctx) => ctx.rcv.srcIp));
  add(["sp"], "source port", readOnly((ctx) => ctx.rcv.srcPort));
  add(["Ri"], "IP address the message was received on", readOnly((ctx) => ctx.rcv.localIp));
  add(["Rp"], "port the message was received on", readOnly((ctx) => ctx.rcv.localPort));
  add(["pr", "proto"], "transport received over (int: 1 udp, 2 tcp, 3 tls...)", readOnly((ctx) => ctx.rcv.proto, (ctx) => PROTO_IDS.get(ctx.rcv.proto) ?? 0));
  // Kamailio $conid: the id of the stream connection (TCP, TLS, WebSocket) the message came on; null over UDP.
  add(["conid"], "id of the stream connection the message came on (null over UDP)", readOnly((ctx) => (ctx.rcv.proto === "udp" || ctx.rcv.connectionId < 0 ? null : ctx.rcv.connectionId)));
  // The websocket module's $ws_conid: the same id, for a message that came over ws or wss only.
  add(["ws_conid"], "id of the WebSocket connection the message came on (null otherwise)", readOnly((ctx) => ((ctx.rcv.proto === "ws" || ctx.rcv.proto === "wss") && ctx.rcv.connectionId >= 0 ? ctx.rcv.connectionId : null)));
  add(["ua"], "User-Agent", readOnly((ctx) => firstHeaderOf(ctx.msg, "user-agent")?.value ?? null));
  // The process serving the message (Kamailio $pp): with `ksr run --workers` one of the worker processes.
  add(["pp"], "pid of the serving process", readOnly(() => process.pid));
  add(["ct"], "Contact header value", readOnly((ctx) => nonEmpty(firstHeaderOf(ctx.msg, "contact")?.value)));
  add(["rb"], "message body", readOnly((ctx) => ctx.msg.body));
  add(["cl"], "Content-Length",
    readOnly((ctx) => {
      const v = firstHeaderOf(ctx.msg, "content-length")?.value;
      return v === undefined ? null : str2sint(v.trim());
    }),
  );
  add(["cT"], "Content-Type", readOnly((ctx) => firstHeaderOf(ctx.msg, "content-type")?.value ?? null));
  add(["mb"], "whole message as received", readOnly((ctx) => ctx.msg.raw));
  add(["ml"], "message length", readOnly((ctx) => ctx.msg.raw.length));
  add(["au"], "user of the Authorization/Proxy-Authorization credentials",
    readOnly((ctx) => {
      const c = requestCredentials(ctx.msg);
      return c === null || c.username === undefined ? null : splitAuthUsername(c.username).user;
    }),
  );
  add(["ad"], "domain of the credentials' username",
    readOnly((ctx) => {
      const c = requestCredentials(ctx.msg);
      return c === null || c.username === undefined ? null : splitAuthUsername(c.username).domain;
    }),
  );
  add(["ar"], "realm of the credentials", readOnly((ctx) => requestCredentials(ctx.msg)?.params.get("realm") ?? null));
  add(["fs"], "forced send socket (proto:ip:port)", fsAccessor);
  add(["Ts"], "time of the message, seconds (fixed per message)", readOnly((ctx) => Math.floor(messageTimeMs(ctx) / 1000)));
  add(["TS"], "current time, seconds", readOnly((ctx) => Math.floor(ctx.host.now() / 1000)));
  add(["RANDOM"], "a random 31-bit number", readOnly(() => Math.floor(Math.random() * 0x80000000)));
  return m;
})();

// ------------------------------------------------ accessors with a name

/** $var (per process) or $shv (shared): each counted against its tenant quota (host/core/quota.ts). */
function varAccessor(kind: "var" | "shv", name: string): PvAccessor {
  const storeOf = (ctx: MessageContext) => (kind === "var" ? ctx.tenant.vars : ctx.tenant.sharedVars);
  const quota = kind === "var" ? "varBytes" : "shvBytes";
  return {
    // Kamailio script variables start (and reset to) integer 0, never null.
    get: (ctx) => storeOf(ctx).get(name) ?? 0,
    set(ctx, v) {
      const store = storeOf(ctx);
      const old = store.get(name);
      const before = old === undefined ? 0 : valueBytes(name, old);
      if (v === null) {
        store.delete(name);
        ctx.tenant.usage[quota] -= before;
        return true;
      }
      const after = valueBytes(name, v);
      if (ctx.tenant.usage[quota] - before + after > ctx.tenant.quotas[quota]) return overQuota(ctx, quota, `$${kind}(${name.slice(0, 64)})`);
      store.set(name, v);
      ctx.tenant.usage[quota] += after - before;
      return true;
    },
  };
}

/** Bytes of names and values in each $avp store (one per transaction or message). */
const avpBytes = new WeakMap<AvpStore, number>();

function avpValuesBytes(name: string, values: readonly (string | number)[]): number {
  let n = 0;
  for (const v of values) n += valueBytes(name, v);
  return n;
}

type Index = PvIndex;

function avpAccessor(name: string, idx: Index): PvAccessor {
  return {
    get(ctx) {
      const list = avpStore(ctx).get(name);
      if (list === undefined || list.length === 0) return null;
      if (idx.kind === "all") return list.map(String).join(",");
      const i = idx.kind === "int" ? idx.i : 0;
      const k = i < 0 ? list.length + i : i;
      return k >= 0 && k < list.length ? list[k]! : null;
    },
    set(ctx, v) {
      const store = avpStore(ctx);
      let list = store.get(name);
      let used = avpBytes.get(store) ?? 0;
      if (v === null) {
        // $avp(x) = $null removes the newest value; [*] removes all.
        if (list !== undefined) {
          if (idx.kind === "all") {
            used -= avpValuesBytes(name, list);
            store.delete(name);
          } else {
            const i = idx.kind === "int" ? idx.i : 0;
            const k = i < 0 ? list.length + i : i;
            if (k >= 0 && k < list.length) used -= avpValuesBytes(name, list.splice(k, 1));
            if (list.length === 0) store.delete(name);
          }
          avpBytes.set(store, used);
        }
        return true;
      }
      const replaced = idx.kind === "all" && list !== undefined ? avpValuesBytes(name, list) : 0;
      const added = valueBytes(name, v);
      if (used - replaced + added > ctx.tenant.quotas.avpBytes) return overQuota(ctx, "avpBytes", `$avp(${name.slice(0, 64)})`);
      if (idx.kind === "all" || list === undefined) {
        list = [];
        store.set(name, list);
      }
      // Assigning adds a value on top of the stack (Kamailio AVPs are multi-valued).
      list.unshift(v);
      avpBytes.set(store, used - replaced + added);
      return true;
    },
  };
}

function hdrAccessor(name: string, idx: Index): PvAccessor | null {
  const any = name === "*";
  const key = any ? "*" : headerKeyFor(name);
  if (key === null) return null;
  return {
    get(ctx) {
      const values: string[] = [];
      for (const h of ctx.msg.headers) if (any || h.key === key) values.push(h.value);
      if (values.length === 0) return null;
      if (idx.kind === "all") return values.join(",");
      const i = idx.kind === "int" ? idx.i : 0;
      const k = i < 0 ? values.length + i : i;
      return k >= 0 && k < values.length ? values[k]! : null;
    },
  };
}

function hdrcAccessor(name: string): PvAccessor {
  const key = headerKeyFor(name);
  return { get: (ctx) => (key === null ? 0 : countHeaders(ctx.msg, key)) };
}

function tvAccessor(which: string): PvAccessor | null {
  switch (which) {
    case "s":
      return { get: (ctx) => Math.floor(messageTimeMs(ctx) / 1000) };
    case "u":
      return { get: (ctx) => (messageTimeMs(ctx) % 1000) * 1000 };
    case "sn":
      return { get: (ctx) => Math.floor(ctx.host.now() / 1000) };
    case "un":
      return { get: (ctx) => (ctx.host.now() % 1000) * 1000 };
    case "Sn":
      return {
        get(ctx) {
          const now = ctx.host.now();
          return `${Math.floor(now / 1000)}.${String((now % 1000) * 1000).padStart(6, "0")}`;
        },
      };
    default:
      return null;
  }
}

function hnAccessor(which: string): PvAccessor | null {
  const full = hostname();
  const dot = full.indexOf(".");
  switch (which) {
    case "n":
      return { get: () => (dot === -1 ? full : full.slice(0, dot)) };
    case "f":
      return { get: () => full };
    case "d":
      return { get: () => (dot === -1 ? null : full.slice(dot + 1)) };
    default:
      return null;
  }
}

/**
 * $snd(name) / $sndto(name): the send an onsend route runs for
 * (host/core/onsend.ts); null anywhere else, as in Kamailio (pv_get_sndto).
 */
function sndAccessor(name: string): PvAccessor | null {
  const field = Object.hasOwn(SND_FIELDS, name) ? SND_FIELDS[name] : undefined;
  if (field === undefined) return null;
  return readOnly((ctx) => (ctx.outgoing === undefined ? null : field(ctx.outgoing)));
}

type Outgoing = NonNullable<MessageContext["outgoing"]>;

const SND_FIELDS: Readonly<Record<string, (o: Outgoing) => string | number>> = {
  ip: (o) => o.ip,
  af: (o) => (isIP(o.ip) === 6 ? AF_INET6 : AF_INET),
  port: (o) => o.port,
  proto: (o) => PROTO_IDS.get(o.proto) ?? 0,
  sproto: (o) => o.proto,
  buf: (o) => o.buf,
  len: (o) => o.buf.length,
};

/** Linux address family numbers, as $snd(af) gives them. */
const AF_INET = 2;
const AF_INET6 = 10;

// ------------------------------------------------------ PVs with a name

/** The core's PVs with a name (Kamailio's pv module: $var(x), $hdr(Via) ...). */
const NAMED_PVS: readonly PvClass[] = [
  { names: ["var"], form: "named", writable: true, doc: "script variable, per tenant runner (Kamailio: per process)", compile: (inner) => varAccessor("var", inner!) },
  { names: ["shv"], form: "named", writable: true, doc: "shared variable, per tenant", compile: (inner) => varAccessor("shv", inner!) },
  {
    names: ["avp"],
    form: "named",
    indexable: true,
    writable: true,
    doc: "AVP of the message (carried along its transaction); multi-valued, newest first",
    compile: (inner, index) => avpAccessor(inner!.replace(/^s:/, ""), index),
  },
  { names: ["hdr"], form: "named", indexable: true, writable: false, doc: "header value by name (* for any)", compile: (inner, index) => hdrAccessor(inner!, index) },
  { names: ["hdrc"], form: "named", writable: false, doc: "number of headers of that name", compile: (inner) => hdrcAccessor(inner!) },
  {
    names: ["snd", "sndto"],
    form: "named",
    writable: false,
    doc: `in an onsend route, the send: ${Object.keys(SND_FIELDS).join(", ")}`,
    compile: (inner) => sndAccessor(inner!),
  },
  { names: ["TV"], form: "named", writable: false, doc: "time: s, u (fixed per message), sn, un, Sn (now)", compile: (inner) => tvAccessor(inner!) },
  { names: ["HN"], form: "named", writable: false, doc: "host name: n, f, d", compile: (inner) => hnAccessor(inner!) },
];

// ------------------------------------------------------- the registry

/** PV class name → its class and the Kamailio module declaring it. */
const pvClasses = new Map<string, { readonly cls: PvClass; readonly module: string }>();
/** Classes whose inner name may hold PVs with parentheses. */
const nestedInnerClasses = new Set<string>();
/** Modules registered, in order, for `ksr api --pvs`. */
const pvModules: KemiModule[] = [];

/**
 * Makes the PV classes of these modules' tables (`pvs`) known to PV name
 * lookups. host/modules/index.ts registers every module of KEMI_MODULES; a
 * module declaring PVs registers itself too, so that code loading it alone
 * sees its PVs. Registering a module again changes nothing; a name two
 * modules claim is an error, never a silent pick.
 */
export function registerPvClasses(...modules: readonly KemiModule[]): void {
  for (const mod of modules) {
    if (pvModules.includes(mod)) continue;
    for (const cls of mod.pvs ?? []) {
      for (const name of cls.names) {
        const known = pvClasses.get(name);
        if (known !== undefined && known.cls !== cls) throw new Error(`pseudo-variable $${name} is declared by ${known.module} and ${mod.kamailioModule}`);
      }
    }
    for (const cls of mod.pvs ?? []) {
      for (const name of cls.names) {
        pvClasses.set(name, { cls, module: mod.kamailioModule });
        if (cls.nestedInner === true) nestedInnerClasses.add(name);
      }
    }
    pvModules.push(mod);
    // A name compiled as unknown before may be known now.
    compiled.clear();
  }
}

/** The PV classes of each registered module that declares some, for `ksr api --pvs`. */
export function pvClassesByModule(): { readonly module: string; readonly classes: readonly PvClass[] }[] {
  return pvModules.filter((m) => (m.pvs ?? []).length > 0).map((m) => ({ module: m.kamailioModule, classes: m.pvs! }));
}

// ------------------------------------------------------- name compiler

interface ParsedName {
  cls: string;
  inner: string | undefined;
  idx: Index;
}

const CLASS_RE = /^[A-Za-z_][A-Za-z0-9_.]*$/;

/** Split a PV name into class, inner name and index; null when malformed. */
export function parsePvName(name: string): ParsedName | null {
  if (!name.startsWith("$") || name.length < 2) return null;
  let body: string;
  let idx: Index = { kind: "none" };
  if (name[1] === "(") {
    if (!name.endsWith(")")) return null;
    body = name.slice(2, -1);
    if (body.includes("{")) return null; // transformations are not supported
    const m = /\[(-?\d+|\*)\]$/.exec(body);
    if (m !== null) {
      idx = m[1] === "*" ? { kind: "all" } : { kind: "int", i: Number(m[1]) };
      body = body.slice(0, m.index);
    }
  } else {
    body = name.slice(1);
  }
  const open = body.indexOf("(");
  if (open === -1) return CLASS_RE.test(body) ? { cls: body, inner: undefined, idx } : null;
  if (!body.endsWith(")")) return null;
  const cls = body.slice(0, open);
  const inner = body.slice(open + 1, -1);
  if (!CLASS_RE.test(cls) || inner.length === 0 || (inner.includes(")") && !nestedInnerClasses.has(cls))) return null;
  return { cls, inner, idx };
}

function compile(name: string): PvAccessor | null {
  const p = parsePvName(name);
  if (p === null) return null;
  const cls = pvClasses.get(p.cls)?.cls;
  if (cls === undefined) return null;
  // The form must match: $ru, not $ru(x); $var(x), not $var.
  if ((cls.form === "plain") !== (p.inner === undefined)) return null;
  if (p.idx.kind !== "none" && cls.indexable !== true) return null;
  return cls.compile(p.inner, p.idx, p.cls, lookupPv);
}

const compiled = new Map<string, PvAccessor | null>();
/** Bound on cached names: scripts that build names dynamically must not grow memory forever. */
const COMPILED_LIMIT = 10_000;

/** The accessor for a PV name (cached), or null when the name is invalid or unknown. */
export function lookupPv(name: string): PvAccessor | null {
  let a = compiled.get(name);
  if (a === undefined) {
    a = compile(name);
    if (compiled.size >= COMPILED_LIMIT) compiled.clear();
    compiled.set(name, a);
  }
  return a;
}

/**
 * A pv format ("sip:$rU@$rd") evaluated for the message, as the spve fixups
 * of native functions evaluate their parameters (KSR.x.modf); an error when
 * a pseudo-variable in it is malformed or unknown.
 */
export function expandPvFormat(ctx: MessageContext, text: string): { value: string } | { error: string } {
  if (!text.includes("$")) return { value: text };
  const parts = parsePvFormat(text, lookupPv);
  return parts === null ? { error: `"${text}" is not a valid pv format` } : { value: formatPvParts(ctx, parts) };
}

function accessorOrLog(ctx: MessageContext, name: string): PvAccessor | null {
  const a = lookupPv(name);
  if (a === null) ctx.host.log("err", `invalid pv [${name}]\n`, ctx);
  return a;
}

function getMode(ctx: MessageContext, name: string, mode: NullMode): KemiValue {
  const a = accessorOrLog(ctx, name);
  if (a === null) return xvalNull(mode);
  const v = a.get(ctx);
  return v === null ? xvalNull(mode) : v;
}

// detailed_ip_type writes its result into a PV named by the script.
setIpopsPvWriter((ctx, name, value) => assign(ctx, name, value));

function assign(ctx: MessageContext, name: string, value: PvValue): boolean {
  const a = accessorOrLog(ctx, name);
  if (a === null) return false;
  if (a.set === undefined) {
    ctx.host.log("err", `unable to set pv [${name}] - read-only\n`, ctx);
    return false;
  }
  if (!a.set(ctx, value)) {
    ctx.host.log("err", `unable to set pv [${name}]\n`, ctx);
    return false;
  }
  return true;
}

export const pvModule: KemiModule = {
  name: "pv",
  kamailioModule: "core",
  functions: {
    get: {
      params: ["str"],
      returns: "xval",
      doc: "Value of the PV: number for integer PVs, else string; null if missing or the name is invalid.",
      run: (ctx, name: string) => getMode(ctx, name, "null"),
    },
    gete: {
      params: ["str"],
      returns: "xval",
      doc: 'Like get, but "" when missing.',
      run: (ctx, name: string) => getMode(ctx, name, "empty"),
    },
    getw: {
      params: ["str"],
      returns: "xval",
      doc: 'Like get, but "<null>" when missing.',
      run: (ctx, name: string) => getMode(ctx, name, "print"),
    },
    getvs: {
      params: ["str", "str"],
      returns: "xval",
      doc: "Like get, but the given string when missing.",
      run(ctx, name: string, dflt: string) {
        const a = accessorOrLog(ctx, name);
        const v = a === null ? null : a.get(ctx);
        return v === null ? dflt : v;
      },
    },
    getvn: {
      params: ["str", "int"],
      returns: "xval",
      doc: "Like get, but the given number when missing.",
      run(ctx, name: string, dflt: number) {
        const a = accessorOrLog(ctx, name);
        const v = a === null ? null : a.get(ctx);
        return v === null ? dflt : v;
      },
    },
    geti: {
      params: ["str"],
      returns: "int",
      doc: "Integer value: strings are parsed as integers; missing, invalid or non-numeric gives 0.",
      run(ctx, name: string) {
        const a = lookupPv(name);
        if (a === null) {
          ctx.host.log("warn", `invalid pv [${name}]\n`, ctx);
          return 0;
        }
        if (a.geti !== undefined) return a.geti(ctx) ?? 0;
        const v = a.get(ctx);
        if (v === null) return 0;
        return typeof v === "number" ? v : str2sint(v);
      },
    },
    sets: {
      params: ["str", "str"],
      returns: "bool",
      doc: "Assign a string to a writable PV ($ru $rU $rd $rp $du $fs $var $shv $avp).",
      run: (ctx, name: string, value: string) => assign(ctx, name, value),
    },
    seti: {
      params: ["str", "int"],
      returns: "bool",
      doc: "Assign an integer to a writable PV.",
      run: (ctx, name: string, value: number) => assign(ctx, name, value),
    },
    unset: {
      params: ["str"],
      returns: "bool",
      doc: "Assign null: clears $du/$fs, removes the newest $avp value, resets $var/$shv to 0.",
      run: (ctx, name: string) => assign(ctx, name, null),
    },
    is_null: {
      params: ["str"],
      returns: "bool",
      doc: "True if the PV has no value; also true for an invalid name.",
      run(ctx, name: string) {
        const a = accessorOrLog(ctx, name);
        return a === null || a.get(ctx) === null;
      },
    },
  },
  pvs: [...PLAIN_PVS, ...NAMED_PVS],
  // Native functions (Kamailio pv cmd exports) for KSR.x.modf.
  native: [
    { name: "pv_isset", params: ["str"], routes: ["ANY_ROUTE"], run: (ctx, name: string) => (pvModule.functions.is_null!.run(ctx, name) === true ? -1 : 1), literal: true },
    { name: "pv_unset", params: ["str"], routes: ["ANY_ROUTE"], kemi: "unset", literal: true },
  ],
};

registerPvClasses(pvModule);
