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
import { TLS_ATTRIBUTES, tlsAttribute } from "./tls.js";
import { formatPvParts, parsePvFormat } from "./pv-format.js";
import { isIP } from "node:net";
import { overQuota, valueBytes } from "../core/quota.js";
import { hostname } from "node:os";
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import type { KemiModule, KemiValue } from "./types.js";
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
import { tmPvAccessor } from "../proxy/tm-pv.js";
import { htablePvAccessor } from "./htable.js";
import { ndbRedisPvAccessor } from "./ndb_redis.js";

type PvValue = string | number | null;

/** A compiled PV name. */
export interface PvAccessor {
  get(ctx: MessageContext): PvValue;
  /** Integer view for KSR.pv.geti where Kamailio keeps a separate int (e.g. $rp, $rm). */
  geti?(ctx: MessageContext): number | null;
  /** null = unset. Returns false when the value cannot be assigned. Absent = read-only. */
  set?(ctx: MessageContext, value: PvValue): boolean;
}

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

const contextTime = new WeakMap<MessageContext, number>();

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

const SIMPLE: ReadonlyMap<string, PvAccessor> = (() => {
  const m = new Map<string, PvAccessor>();
  const add = (names: string[], a: PvAccessor) => names.forEach((n) => m.set(n, a));
  add(["ru", "ruri"], ruAccessor);
  add(["rU", "ruri.user"], rUAccessor);
  add(["rd", "ruri.domain"], rdAccessor);
  add(["rp"], rpAccessor);
  add(
    ["rz"],
    readOnly(ruriPart((u) => u.scheme), (ctx) => {
      const u = currentRuri(ctx);
      return u === null ? null : URI_TYPE_IDS.get(u.scheme) ?? 0;
    }),
  );
  add(["ou", "ouri"], readOnly((ctx) => (ctx.isRequest ? ctx.msg.requestUri : null)));
  add(["oU"], readOnly(ouriPart((u) => nonEmpty(u.user))));
  add(["od"], readOnly(ouriPart((u) => nonEmpty(u.host))));
  add(["du", "duri"], duAccessor);
  add(["fu", "from"], readOnly(fromTo("from", (tb) => tb.nameAddr.uri)));
  add(["fU", "from.user"], readOnly(fromTo("from", (tb) => nonEmpty(tb.uri?.user))));
  add(["fd", "from.domain"], readOnly(fromTo("from", (tb) => (tb.uri === null ? null : nonEmpty(tb.uri.host)))));
  add(["fn"], readOnly(fromTo("from", (tb) => nonEmpty(tb.rawDisplay))));
  add(["ft"], readOnly(fromTo("from", (tb) => nonEmpty(tb.tag))));
  add(["tu", "to"], readOnly(fromTo("to", (tb) => tb.nameAddr.uri)));
  add(["tU", "to.user"], readOnly(fromTo("to", (tb) => nonEmpty(tb.uri?.user))));
  add(["td", "to.domain"], readOnly(fromTo("to", (tb) => (tb.uri === null ? null : nonEmpty(tb.uri.host)))));
  add(["tn"], readOnly(fromTo("to", (tb) => nonEmpty(tb.rawDisplay))));
  add(["tt"], readOnly(fromTo("to", (tb) => nonEmpty(tb.tag))));
  add(["ci"], readOnly((ctx) => firstHeaderOf(ctx.msg, "call-id")?.value ?? null));
  add(
    ["cs"],
    readOnly((ctx) => {
      const v = firstHeaderOf(ctx.msg, "cseq")?.value;
      if (v === undefined) return null;
      return v.trim().split(/\s+/)[0] ?? null;
    }),
  );
  add(
    ["rm"],
    readOnly(
      (ctx) => messageMethod(ctx.msg),
      (ctx) => METHOD_IDS.get(messageMethod(ctx.msg).toUpperCase()) ?? METHOD_OTHER,
    ),
  );
  add(["rs"], readOnly((ctx) => (ctx.isRequest ? null : ctx.msg.status)));
  add(["rr"], readOnly((ctx) => (ctx.isRequest ? null : ctx.msg.reason)));
  add(["si", "src_ip"], readOnly((ctx) => ctx.rcv.srcIp));
  add(["sp"], readOnly((ctx) => ctx.rcv.srcPort));
  add(["Ri"], readOnly((ctx) => ctx.rcv.localIp));
  add(["Rp"], readOnly((ctx) => ctx.rcv.localPort));
  add(["pr", "proto"], readOnly((ctx) => ctx.rcv.proto, (ctx) => PROTO_IDS.get(ctx.rcv.proto) ?? 0));
  add(["ua"], readOnly((ctx) => firstHeaderOf(ctx.msg, "user-agent")?.value ?? null));
  // The process serving the message (Kamailio $pp): with `ksr run --workers` one of the worker processes.
  add(["pp"], readOnly(() => process.pid));
  add(["ct"], readOnly((ctx) => nonEmpty(firstHeaderOf(ctx.msg, "contact")?.value)));
  add(["rb"], readOnly((ctx) => ctx.msg.body));
  add(
    ["cl"],
    readOnly((ctx) => {
      const v = firstHeaderOf(ctx.msg, "content-length")?.value;
      return v === undefined ? null : str2sint(v.trim());
    }),
  );
  add(["cT"], readOnly((ctx) => firstHeaderOf(ctx.msg, "content-type")?.value ?? null));
  add(["mb"], readOnly((ctx) => ctx.msg.raw));
  add(["ml"], readOnly((ctx) => ctx.msg.raw.length));
  add(
    ["au"],
    readOnly((ctx) => {
      const c = requestCredentials(ctx.msg);
      return c === null || c.username === undefined ? null : splitAuthUsername(c.username).user;
    }),
  );
  add(
    ["ad"],
    readOnly((ctx) => {
      const c = requestCredentials(ctx.msg);
      return c === null || c.username === undefined ? null : splitAuthUsername(c.username).domain;
    }),
  );
  add(["ar"], readOnly((ctx) => requestCredentials(ctx.msg)?.params.get("realm") ?? null));
  add(["fs"], fsAccessor);
  add(["Ts"], readOnly((ctx) => Math.floor(messageTimeMs(ctx) / 1000)));
  add(["TS"], readOnly((ctx) => Math.floor(ctx.host.now() / 1000)));
  add(["RANDOM"], readOnly(() => Math.floor(Math.random() * 0x80000000)));
  // $tls_version, $tls_peer_subject_cn ...: the message's TLS connection (host/modules/tls.ts).
  for (const name of TLS_ATTRIBUTES.keys()) add([name], readOnly((ctx) => tlsAttribute(ctx, name)));
  return m;
})();

// ------------------------------------------------------ PVs with a name

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

type Index = { kind: "none" } | { kind: "int"; i: number } | { kind: "all" };

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

// ------------------------------------------------------- name compiler

interface ParsedName {
  cls: string;
  inner: string | undefined;
  idx: Index;
}

const CLASS_RE = /^[A-Za-z_][A-Za-z0-9_.]*$/;

/** Classes whose inner name may itself hold PVs with parentheses: $sht(t=>$var(k)). */
const NESTED_NAME_CLASSES: ReadonlySet<string> = new Set(["sht", "shtex", "shtinc", "shtdec"]);

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
  if (!CLASS_RE.test(cls) || inner.length === 0 || (inner.includes(")") && !NESTED_NAME_CLASSES.has(cls))) return null;
  return { cls, inner, idx };
}

function compile(name: string): PvAccessor | null {
  const p = parsePvName(name);
  if (p === null) return null;
  if (p.inner === undefined) {
    if (p.idx.kind !== "none") return null;
    // $T_* and $br belong to the stateful proxy (host/proxy/tm-pv.ts).
    return SIMPLE.get(p.cls) ?? tmPvAccessor(p.cls, undefined, lookupPv);
  }
  const indexable = p.cls === "hdr" || p.cls === "avp";
  if (p.idx.kind !== "none" && !indexable) return null;
  switch (p.cls) {
    case "var":
      return varAccessor("var", p.inner);
    case "shv":
      return varAccessor("shv", p.inner);
    case "avp":
      return avpAccessor(p.inner.replace(/^s:/, ""), p.idx);
    case "hdr":
      return hdrAccessor(p.inner, p.idx);
    case "hdrc":
      return hdrcAccessor(p.inner);
    case "snd":
    case "sndto":
      return sndAccessor(p.inner);
    case "TV":
      return tvAccessor(p.inner);
    case "HN":
      return hnAccessor(p.inner);
    case "sht":
    case "shtex":
    case "shtinc":
    case "shtdec":
    case "shtitkey":
    case "shtitval":
      return htablePvAccessor(p.cls, p.inner, lookupPv);
    case "redis":
    case "redisd":
      return ndbRedisPvAccessor(p.cls, p.inner);
    default:
      return tmPvAccessor(p.cls, p.inner, lookupPv);
  }
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
  // Native functions (Kamailio pv cmd exports) for KSR.x.modf.
  native: [
    { name: "pv_isset", params: ["str"], run: (ctx, name: string) => (pvModule.functions.is_null!.run(ctx, name) === true ? -1 : 1), literal: true },
    { name: "pv_unset", params: ["str"], kemi: "unset", literal: true },
  ],
};
