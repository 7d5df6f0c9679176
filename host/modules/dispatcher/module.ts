/**
 * KSR.dispatcher (Kamailio dispatcher module): pick a destination from a set
 * of the tenant's list (host/modules/dispatcher/list.ts) and make it the
 * next hop ($du), the R-URI host or only a record; keep the others for
 * failover (ds_next_dst), mark destinations up and down, check whether a
 * request comes from a listed address.
 *
 * Kamailio 5.6 keeps the selected destinations in the xavp `_dsdst_` (one
 * record per destination: uri, grp, attrs, sock) and the count in
 * `_dsctx_=>cnt`. Here they live host-side with the message's $avp store,
 * which the proxy hands to the transaction's failure and reply routes, so
 * ds_next_dst in a failure route sees what ds_select_dst stored. Scripts do
 * not read them as $xavp (this server has no $xavp).
 *
 * Algorithms: 0 Call-ID hash, 1 From URI hash, 2 To URI hash, 3 R-URI hash,
 * 4 round robin, 6 random, 7 hash of the `hash_pvar` setting, 8 first
 * (priority order), 9 weight, 10 call load (host/modules/dispatcher/call-load.ts:
 * the least loaded destination, calls tracked by Call-ID until
 * ds_load_update/ds_load_unset), 11 relative weight. Not provided: 5 (hash
 * of the authorization user), 12 (parallel forking), 13 (latency) — these
 * answer -1 with an error log
 * instead of Kamailio's "first entry" fallback, so that a script does not
 * silently lose the distribution it asked for.
 */
import type { MessageContext } from "../../core/context.js";
import type { KemiModule } from "../types.js";
import { avpStore, expandPvFormat, lookupPv, type AvpStore } from "../pv.js";
import { formatUri, parseUri, type SipUri } from "../../sip/uri.js";
import { isIP } from "node:net";
import {
  DS_DISABLED,
  DS_INACTIVE,
  DS_PROBING,
  DS_STATES_ALL,
  DS_TRYING,
  destinationIp,
  isSkipped,
  rebuildRelativeWeights,
  type DestinationSet,
} from "./list.js";
import { dispatcherHash } from "./hash.js";
import { dispatcherOf, notifyDispatcherEvent, reloadDispatcher, type TenantDispatcher } from "./tenants.js";

/** Where a selection puts the chosen destination (Kamailio DS_SETOP_*). */
const SetOp = { DstUri: 0, Ruri: 1, RecordOnly: 2 } as const;
type SetOp = (typeof SetOp)[keyof typeof SetOp];

/** One `_dsdst_` record. */
export interface SelectedDestination {
  readonly uri: string;
  readonly grp: number;
  readonly attrs: string;
  readonly socket: string | undefined;
  /** Kamailio's `dstid`: the destination's duid, in records of a call dispatched by load (algorithm 10). */
  readonly dstid?: string;
}

/** What the selections of one message/transaction left (Kamailio's _dsdst_ and _dsctx_ xavps). */
export interface DispatcherRecords {
  /** Current destination first; ds_next_dst drops it and uses the next. */
  dst: SelectedDestination[];
  /** `_dsctx_=>cnt` of the latest selection. */
  cnt: number | undefined;
}

const records = new WeakMap<AvpStore, DispatcherRecords>();

/** The message's dispatcher records (shared with its transaction's later routes through the $avp store). */
export function dispatcherRecords(ctx: MessageContext): DispatcherRecords {
  const store = avpStore(ctx);
  let r = records.get(store);
  if (r === undefined) records.set(store, (r = { dst: [], cnt: undefined }));
  return r;
}

const FLAG_HASH_USER_ONLY = 1;
const FLAG_FAILOVER = 2;
/** Kamailio's "unlimited" (a limit of 0). */
const NO_LIMIT = 0xffffffff;
/** What the KEMI functions without a limit pass (dispatcher.c ki_ds_select*). */
const KEMI_DEFAULT_LIMIT = 0xffff;

function configured(ctx: MessageContext): TenantDispatcher | undefined {
  const d = dispatcherOf(ctx.tenant.id);
  if (d === undefined) ctx.host.log("err", "dispatcher: no destination list for this tenant (--dispatcher-list or dispatcher: in the tenants file)\n", ctx);
  return d;
}

/** user and host[:port] of a URI as ds hashes them: the port only when not the default (get_uri_hash_keys). */
function uriHash(ctx: MessageContext, uriText: string | null, userOnly: boolean, what: string): number | undefined {
  const u: SipUri | null = uriText === null ? null : parseUri(uriText);
  if (u === null || u.scheme === "tel" || u.host === "") {
    ctx.host.log("err", `dispatcher: cannot hash the ${what}: invalid uri ${uriText ?? ""}\n`, ctx);
    return undefined;
  }
  if (u.user === undefined) ctx.host.log("warn", `dispatcher: empty username in: ${uriText}\n`, ctx);
  if (userOnly) return dispatcherHash(u.user ?? "");
  const defaultPort = u.scheme === "sips" ? 5061 : 5060;
  const hostPort = u.port !== undefined && u.port !== defaultPort ? `${u.host}:${u.port}` : u.host;
  return dispatcherHash(u.user ?? "", hostPort);
}

function pvText(ctx: MessageContext, name: string): string | null {
  const v = lookupPv(`$${name}`)?.get(ctx);
  return v === null || v === undefined ? null : String(v);
}

/** The hash (or counter value) algorithm `alg` gives for this message; undefined on error (logged). */
function pick(ctx: MessageContext, d: TenantDispatcher, set: DestinationSet, alg: number): number | undefined {
  const userOnly = (d.settings.flags & FLAG_HASH_USER_ONLY) !== 0;
  switch (alg) {
    case 0: {
      const cid = pvText(ctx, "ci");
      if (cid === null) {
        ctx.host.log("err", "dispatcher: cannot parse Call-Id\n", ctx);
        return undefined;
      }
      return dispatcherHash(cid.trim());
    }
    case 1:
      return uriHash(ctx, pvText(ctx, "fu"), userOnly, "From URI");
    case 2:
      return uriHash(ctx, pvText(ctx, "tu"), userOnly, "To URI");
    case 3:
      return uriHash(ctx, ctx.isRequest ? ctx.requestUri : null, userOnly, "R-URI");
    case 4: {
      const at = set.last;
      set.last = (set.last + 1) % set.dests.length;
      return at;
    }
    case 6:
      return Math.floor(Math.random() * 0x7fffffff);
    case 7: {
      if (d.settings.hash_pvar === "") {
        ctx.host.log("err", "dispatcher: algorithm 7 needs the hash_pvar parameter\n", ctx);
        return undefined;
      }
      const r = expandPvFormat(ctx, d.settings.hash_pvar);
      if ("error" in r) {
        ctx.host.log("err", `dispatcher: hash_pvar: ${r.error}\n`, ctx);
        return undefined;
      }
      const text = r.value.trim();
      if (text === "") {
        ctx.host.log("err", "dispatcher: hash_pvar: the string is empty\n", ctx);
        return undefined;
      }
      return dispatcherHash(text);
    }
    case 8:
      return 0;
    case 9: {
      const at = set.weightSlots[set.weightNext]!;
      set.weightNext = (set.weightNext + 1) % 100;
      return at;
    }
    case 11: {
      const at = set.relWeightSlots[set.relWeightNext]!;
      set.relWeightNext = (set.relWeightNext + 1) % 100;
      return at;
    }
    default:
      ctx.host.log("err", `dispatcher: algorithm ${alg} is not provided (5, 12 and 13 are not; see README)\n`, ctx);
      return undefined;
  }
}

/** Apply a destination: $du (and R-URI reuse for serial forking), or the R-URI host:port; its socket as $fs. */
function pushDestination(ctx: MessageContext, uri: string, socket: string | undefined, op: SetOp): boolean {
  if (op === SetOp.RecordOnly) return true;
  if (op === SetOp.Ruri) {
    // Kamailio's SET_HOSTALL_T: host and port of the R-URI from the destination's.
    const dest = parseUri(uri);
    const ruri = parseUri(ctx.requestUri);
    if (dest === null || ruri === null || ruri.scheme === "tel" || dest.scheme === "tel") {
      ctx.host.log("err", `dispatcher: error while setting r-uri domain with: ${uri}\n`, ctx);
      return false;
    }
    const next = { ...ruri, host: dest.host } as SipUri;
    if (dest.port !== undefined) (next as { port?: number }).port = dest.port;
    else delete (next as { port?: number }).port;
    ctx.setRequestUri(formatUri(next));
  } else {
    ctx.dstUri = uri;
    // A new next hop makes the R-URI usable for another branch (ruri_mark_new).
    ctx.ruriConsumed = false;
  }
  if (socket !== undefined) lookupPv("$fs")?.set?.(ctx, socket);
  return true;
}

function recordOf(set: DestinationSet, i: number, byLoad: boolean): SelectedDestination {
  const d = set.dests[i]!;
  return { uri: d.uri, grp: set.id, attrs: d.attrs.body, socket: d.attrs.socket, ...(byLoad ? { dstid: d.attrs.duid! } : {}) };
}

/** A destination dispatched by load that has its maxload of calls (Kamailio's dload ≥ maxload). */
function atMaxLoad(d: TenantDispatcher, set: DestinationSet, i: number, nowMs: number): boolean {
  const dest = set.dests[i]!;
  return dest.attrs.maxload !== 0 && (d.callLoad?.loadOf(set.id, dest.attrs.duid, nowMs) ?? 0) >= dest.attrs.maxload;
}

/**
 * Algorithm 10 (ds_get_leastloaded, ds_load_add): the active destination
 * with the fewest calls below its maxload, the call counted against it.
 * Only INVITEs are dispatched by load; others get the first destination.
 * When the call cannot be tracked (no ds_hash_size, no duid, a Call-ID
 * already tracked) the destination stays and the records are those of
 * classic dispatching, as in Kamailio. undefined: no destination has room.
 */
function selectByLoad(ctx: MessageContext, d: TenantDispatcher, set: DestinationSet): { index: number; tracked: boolean } | undefined {
  if (!ctx.isRequest || ctx.msg.kind !== "request" || ctx.msg.method !== "INVITE") return { index: 0, tracked: false };
  const now = ctx.host.now();
  let index = -1;
  let least = Infinity;
  set.dests.forEach((dest, i) => {
    if (isSkipped(dest.flags) || atMaxLoad(d, set, i, now)) return;
    const load = d.callLoad?.loadOf(set.id, dest.attrs.duid, now) ?? 0;
    if (load < least) {
      least = load;
      index = i;
    }
  });
  if (index < 0) return undefined;
  const dest = set.dests[index]!;
  const callId = pvText(ctx, "ci")?.trim() ?? "";
  let problem: string | undefined;
  if (d.callLoad === undefined) problem = "no call load table (set the ds_hash_size parameter)";
  else if (dest.attrs.duid === undefined) problem = `dst unique id not set for ${set.id} (${callId})`;
  else {
    const added = d.callLoad.add(callId, set.id, dest.attrs.duid, now);
    if (added === "duplicate") problem = `call-id already in hash table [${callId}]`;
    else if (added === "full") problem = `cannot add load to ${set.id} (${callId}): ${d.callLoad.trackedCalls} calls tracked already`;
  }
  if (problem === undefined) return { index, tracked: true };
  ctx.host.log("err", `dispatcher: ${problem} - unable to update destination load - classic dispatching\n`, ctx);
  return { index, tracked: false };
}

/** ds_select_dst_limit / ds_manage_routes. */
function select(ctx: MessageContext, setId: number, alg: number, limitArg: number, op: SetOp): number {
  const d = configured(ctx);
  if (d === undefined) return -1;
  if (d.list.sets.size === 0) {
    ctx.host.log("err", "dispatcher: no destination sets\n", ctx);
    return -1;
  }
  if (op === SetOp.DstUri && d.settings.force_dst === 0 && ctx.dstUri !== undefined) {
    ctx.host.log("err", `dispatcher: destination already set [${ctx.dstUri}]\n`, ctx);
    return -1;
  }
  const set = d.list.sets.get(setId);
  if (set === undefined) {
    ctx.host.log("err", `dispatcher: destination set [${setId}] not found\n`, ctx);
    return -1;
  }
  const limit = limitArg <= 0 ? NO_LIMIT : limitArg;
  let value: number | undefined;
  let byLoad = false;
  if (alg === 10) {
    const chosen = selectByLoad(ctx, d, set);
    if (chosen === undefined) return -1;
    value = chosen.index;
    byLoad = chosen.tracked;
  } else value = pick(ctx, d, set, alg);
  if (value === undefined) return -1;
  const n = set.dests.length;
  const useDefault = d.settings.use_default !== 0 && n !== 1;
  // With use_default the last destination is kept out of the rotation.
  const span = useDefault ? n - 1 : n;
  const start = value % span;
  let i = start;
  while (isSkipped(set.dests[i]!.flags)) {
    i = (i + 1) % span;
    if (i === start) {
      if (!useDefault) return -1;
      i = n - 1;
      if (isSkipped(set.dests[i]!.flags)) return -1;
      break;
    }
  }
  const chosen = set.dests[i]!;
  if (!pushDestination(ctx, chosen.uri, chosen.attrs.socket, op)) return -1;
  // Round robin continues after the destination actually used.
  if (alg === 4) set.last = (i + 1) % n;

  const recs = dispatcherRecords(ctx);
  let cnt = 0;
  if ((d.settings.flags & FLAG_FAILOVER) !== 0) {
    // Records of a call dispatched by load name their destination's duid (ds_add_xavp_record).
    if (byLoad) {
      const missing = set.dests.find((x, k) => k !== i && !isSkipped(x.flags) && x.attrs.duid === undefined);
      if (missing !== undefined) {
        ctx.host.log("err", `dispatcher: no uid for destination: ${set.id} ${missing.uri}\n`, ctx);
        return -1;
      }
    }
    const now = ctx.host.now();
    const added: SelectedDestination[] = [recordOf(set, i, byLoad)];
    cnt = 1;
    const consider = (k: number): void => {
      if (cnt >= limit || isSkipped(set.dests[k]!.flags) || (d.settings.use_default !== 0 && k === n - 1)) return;
      if (alg === 10 && atMaxLoad(d, set, k, now)) return;
      added.push(recordOf(set, k, byLoad));
      cnt++;
    };
    for (let k = i + 1; k < n; k++) consider(k);
    for (let k = 0; k < i; k++) consider(k);
    if (d.settings.use_default !== 0 && i !== n - 1 && cnt < limit) {
      added.push(recordOf(set, n - 1, byLoad));
      cnt++;
    }
    // A later selection's records come before an earlier one's (xavp_add_value_after from the head).
    recs.dst = [...added, ...recs.dst];
  }
  recs.cnt = cnt;
  return 1;
}

/** ds_update_dst: the current record (next=false) or the one after it (next=true). */
function updateDst(ctx: MessageContext, next: boolean, op: SetOp): number {
  const d = configured(ctx);
  if (d === undefined) return -1;
  if (next && (d.settings.flags & FLAG_FAILOVER) === 0) {
    ctx.host.log("warn", "dispatcher: failover support disabled (flags parameter without 2)\n", ctx);
    return -1;
  }
  const recs = dispatcherRecords(ctx);
  if (recs.dst.length === 0) return -1;
  if (next) recs.dst.shift();
  for (;;) {
    const r = recs.dst[0];
    if (r === undefined) return -1;
    if (!pushDestination(ctx, r.uri, r.socket, op)) return -1;
    // A call dispatched by load moves its load to the next destination (ds_load_replace).
    if (!next || r.dstid === undefined) return 1;
    const moved = replaceLoad(ctx, d, r);
    if (moved === "moved") return 1;
    if (moved === "failed") return -1;
    // The destination is no longer in the list: skip it.
    recs.dst.shift();
  }
}

/** ds_load_replace for the record the call fails over to. */
function replaceLoad(ctx: MessageContext, d: TenantDispatcher, r: SelectedDestination): "moved" | "failed" | "gone" {
  const callId = pvText(ctx, "ci")?.trim() ?? "";
  const set = d.callLoad?.setOf(callId);
  if (d.callLoad === undefined || set === undefined) {
    ctx.host.log("err", `dispatcher: cannot find load for (${callId}) - cannot update load distribution\n`, ctx);
    return "failed";
  }
  const want = r.dstid!.toLowerCase();
  if (!d.list.sets.get(set)?.dests.some((x) => x.attrs.duid?.toLowerCase() === want)) {
    ctx.host.log("err", `dispatcher: new destination address not found for [${set}, ${r.dstid}] - cannot update load with ${r.dstid}, skipping dst.\n`, ctx);
    return "gone";
  }
  d.callLoad.replace(callId, r.dstid!, ctx.host.now());
  return "moved";
}

/**
 * ds_load_update: a BYE or CANCEL ends the call's load; a 2xx to the
 * INVITE confirms it. 0, as Kamailio's KEMI export returns the C
 * function's own value (its native function answers 1).
 */
function loadUpdate(ctx: MessageContext): number {
  const d = dispatcherOf(ctx.tenant.id);
  const callId = pvText(ctx, "ci")?.trim();
  if (d?.callLoad === undefined || callId === undefined) return 0;
  if (ctx.isRequest) {
    if (ctx.msg.kind === "request" && (ctx.msg.method === "BYE" || ctx.msg.method === "CANCEL")) d.callLoad.remove(callId);
    return 0;
  }
  const cseqMethod = pvText(ctx, "rm");
  const status = Number(pvText(ctx, "rs") ?? "0");
  if (cseqMethod === "INVITE" && status >= 200 && status < 300) d.callLoad.confirm(callId);
  return 0;
}

/** ds_load_unset: the call (an INVITE that failed) no longer counts. 0, or -1 when it was not tracked (KEMI: the C function's values). */
function loadUnset(ctx: MessageContext): number {
  const d = dispatcherOf(ctx.tenant.id);
  // An INVITE whose current record was not dispatched by load has nothing to unset.
  if (ctx.msg.kind === "request" && ctx.msg.method === "INVITE" && dispatcherRecords(ctx).dst[0]?.dstid === undefined) return 0;
  const callId = pvText(ctx, "ci")?.trim() ?? "";
  if (d?.callLoad === undefined || !d.callLoad.remove(callId)) {
    ctx.host.log("err", `dispatcher: cannot find load for (${callId})\n`, ctx);
    return -1;
  }
  return 0;
}

/** ds_parse_flags: a, i, d, t, p letters; -1 for anything else. */
export function parseStateLetters(text: string): number {
  let flag = 0;
  for (const c of text.toLowerCase()) {
    if (c === "a") flag &= ~DS_STATES_ALL;
    else if (c === "i") flag |= DS_INACTIVE;
    else if (c === "d") flag |= DS_DISABLED;
    else if (c === "t") flag |= DS_TRYING;
    else if (c === "p") flag |= DS_PROBING;
    else return -1;
  }
  return flag;
}

/**
 * ds_update_state: set a destination's state bits with Kamailio's
 * thresholds (a "trying" mark counts a failure; probing_threshold failures
 * make it inactive; an inactive destination needs inactive_threshold
 * successes before it is active). Returns whether the destination was found,
 * and whether it went down or up (for the dst-down/dst-up events).
 */
export function updateState(
  d: TenantDispatcher,
  group: number,
  uri: string,
  requested: number,
): { found: false } | { found: true; change: "down" | "up" | undefined } {
  const set = d.list.sets.get(group);
  if (set === undefined) return { found: false };
  const want = uri.toLowerCase();
  const dest = set.dests.find((x) => x.uri.length === uri.length && x.uri.toLowerCase() === want);
  if (dest === undefined) return { found: false };
  const oldState = dest.flags;
  let state = requested;
  dest.flags &= ~DS_STATES_ALL;
  // Inactive then trying stays inactive: it has to be active before it can be trying.
  if ((state & DS_TRYING) !== 0 && (oldState & DS_INACTIVE) !== 0) state = (state & ~DS_TRYING) | DS_INACTIVE;
  dest.flags |= (state & DS_DISABLED) !== 0 ? DS_DISABLED : state;
  if ((state & DS_TRYING) !== 0) {
    dest.messageCount++;
    if (dest.messageCount >= d.settings.ds_probing_threshold) {
      dest.flags = (dest.flags & ~DS_TRYING) | DS_INACTIVE;
      dest.messageCount = 0;
    }
  } else if ((requested & DS_TRYING) === 0 && (oldState & DS_INACTIVE) !== 0) {
    dest.messageCount++;
    if (dest.messageCount < d.settings.ds_inactive_threshold) {
      dest.flags |= DS_INACTIVE;
      if ((oldState & DS_PROBING) !== 0) dest.flags |= DS_PROBING;
    } else dest.messageCount = 0;
  } else dest.messageCount = 0;
  const change = !isSkipped(oldState) && isSkipped(dest.flags) ? "down" : isSkipped(oldState) && !isSkipped(dest.flags) ? "up" : undefined;
  if (change !== undefined && dest.attrs.rweight > 0) rebuildRelativeWeights(set);
  return { found: true, change };
}

function markDst(ctx: MessageContext, state: number): number {
  const d = configured(ctx);
  if (d === undefined) return -1;
  if ((d.settings.flags & FLAG_FAILOVER) === 0) {
    ctx.host.log("warn", "dispatcher: failover support disabled (flags parameter without 2)\n", ctx);
    return -1;
  }
  const r = dispatcherRecords(ctx).dst[0];
  if (r === undefined) return -1;
  const res = updateState(d, r.grp, r.uri, state);
  if (res.found && res.change !== undefined) {
    ctx.host.log("info", `dispatcher: destination ${r.uri} of set ${r.grp} is ${res.change}\n`, ctx);
    notifyDispatcherEvent(ctx.tenant.id, d, res.change, r.uri);
  }
  return res.found ? 1 : -1;
}

function defaultMarkState(d: TenantDispatcher): number {
  return d.settings.ds_probing_mode === 1 ? DS_INACTIVE | DS_PROBING : DS_INACTIVE;
}

const MATCH_NOPORT = 1;
const MATCH_NOPROTO = 2;
const MATCH_ACTIVE = 4;

/**
 * ds_is_addr_from_list: the source address (or the URI's host, which must
 * be an IP address here: there is no DNS lookup) against the destinations
 * of a set, or of every set for group -1. Only destinations written with an
 * IP address can match. Mode bits: 1 any port, 2 any transport, 4 active
 * destinations only.
 */
function isFromList(ctx: MessageContext, group: number, mode: number, uri: string | undefined): number {
  const d = configured(ctx);
  if (d === undefined) return -1;
  let ip: string;
  let port: number;
  let proto: string;
  if (uri === undefined || uri === "") {
    ip = ctx.rcv.srcIp;
    port = ctx.rcv.srcPort;
    proto = ctx.rcv.proto;
  } else {
    const u = parseUri(uri);
    if (u === null || u.scheme === "tel") {
      ctx.host.log("err", `dispatcher: bad uri [${uri}]\n`, ctx);
      return -1;
    }
    ip = u.host.startsWith("[") ? u.host.slice(1, -1) : u.host;
    if (isIP(ip) === 0) {
      ctx.host.log("err", `dispatcher: could not resolve ${u.host} (no DNS lookups here: use an IP address)\n`, ctx);
      return -1;
    }
    port = u.port ?? (u.scheme === "sips" ? 5061 : 5060);
    proto = (u.params.find((p) => p.name.toLowerCase() === "transport")?.value ?? "").toLowerCase();
  }
  ip = ip.toLowerCase();
  const inSet = (set: DestinationSet): boolean =>
    set.dests.some(
      (x) =>
        destinationIp(x) === ip &&
        ((mode & MATCH_NOPORT) !== 0 || x.port === 0 || x.port === port) &&
        ((mode & MATCH_NOPROTO) !== 0 || x.proto === proto) &&
        ((mode & MATCH_ACTIVE) === 0 || !isSkipped(x.flags)),
    );
  if (group === -1) return [...d.list.sets.values()].some(inSet) ? 1 : -1;
  const set = d.list.sets.get(group);
  return set !== undefined && inSet(set) ? 1 : -1;
}

function isActive(ctx: MessageContext, group: number, uri: string | undefined): number {
  const d = configured(ctx);
  if (d === undefined) return -1;
  const set = d.list.sets.get(group);
  if (set === undefined) return -1;
  return set.dests.some((x) => !isSkipped(x.flags) && (uri === undefined || uri === "" || x.uri === uri)) ? 1 : -1;
}

export const dispatcherModule: KemiModule = {
  name: "dispatcher",
  kamailioModule: "dispatcher",
  functions: {
    ds_select_dst: {
      params: ["int", "int"],
      returns: "int",
      doc: "Select a destination of the set with the algorithm and set $du to it; with flags 2 the others are kept for ds_next_dst. 1 or -1.",
      run: (ctx, set: number, alg: number) => select(ctx, set, alg, KEMI_DEFAULT_LIMIT, SetOp.DstUri),
    },
    ds_select_dst_limit: {
      params: ["int", "int", "int"],
      returns: "int",
      doc: "ds_select_dst keeping at most limit destinations (0 = no limit).",
      run: (ctx, set: number, alg: number, limit: number) => select(ctx, set, alg, limit, SetOp.DstUri),
    },
    ds_select_domain: {
      params: ["int", "int"],
      returns: "int",
      doc: "Select a destination and put its host:port in the R-URI.",
      run: (ctx, set: number, alg: number) => select(ctx, set, alg, KEMI_DEFAULT_LIMIT, SetOp.Ruri),
    },
    ds_select_domain_limit: {
      params: ["int", "int", "int"],
      returns: "int",
      doc: "ds_select_domain keeping at most limit destinations (0 = no limit).",
      run: (ctx, set: number, alg: number, limit: number) => select(ctx, set, alg, limit, SetOp.Ruri),
    },
    ds_select: {
      params: ["int", "int"],
      returns: "int",
      doc: "Select destinations into the records only ($du and R-URI unchanged); ds_set_dst applies the first.",
      run: (ctx, set: number, alg: number) => select(ctx, set, alg, KEMI_DEFAULT_LIMIT, SetOp.RecordOnly),
    },
    ds_select_limit: {
      params: ["int", "int", "int"],
      returns: "int",
      doc: "ds_select keeping at most limit destinations (0 = no limit).",
      run: (ctx, set: number, alg: number, limit: number) => select(ctx, set, alg, limit, SetOp.RecordOnly),
    },
    ds_next_dst: {
      params: [],
      returns: "int",
      doc: "Drop the current destination record and set $du to the next; -1 when none is left or failover (flags 2) is off.",
      run: (ctx) => updateDst(ctx, true, SetOp.DstUri),
    },
    ds_next_domain: {
      params: [],
      returns: "int",
      doc: "As ds_next_dst, putting the next destination's host:port in the R-URI.",
      run: (ctx) => updateDst(ctx, true, SetOp.Ruri),
    },
    ds_set_dst: {
      params: [],
      returns: "int",
      doc: "Set $du to the current destination record.",
      run: (ctx) => updateDst(ctx, false, SetOp.DstUri),
    },
    ds_set_domain: {
      params: [],
      returns: "int",
      doc: "Put the current destination record's host:port in the R-URI.",
      run: (ctx) => updateDst(ctx, false, SetOp.Ruri),
    },
    ds_mark_dst: {
      params: [],
      returns: "int",
      doc: "Mark the current destination inactive (and probing with ds_probing_mode 1). 1 or -1.",
      run(ctx) {
        const d = configured(ctx);
        return d === undefined ? -1 : markDst(ctx, defaultMarkState(d));
      },
    },
    ds_mark_dst_state: {
      params: ["str"],
      returns: "int",
      doc: 'Mark the current destination with state letters: a active, i inactive, t trying, d disabled, p probing ("ip").',
      run(ctx, letters: string) {
        const d = configured(ctx);
        if (d === undefined) return -1;
        if (letters === "") return markDst(ctx, defaultMarkState(d));
        const state = parseStateLetters(letters);
        if (state < 0) {
          ctx.host.log("warn", `dispatcher: failed to parse state flags: ${letters}\n`, ctx);
          return -1;
        }
        return markDst(ctx, state);
      },
    },
    ds_is_from_lists: {
      params: [],
      returns: "int",
      doc: "1 if the source IP and port are a destination of any set (any transport), -1 otherwise.",
      run: (ctx) => isFromList(ctx, -1, MATCH_NOPROTO, undefined),
    },
    ds_is_from_list: {
      params: ["int"],
      returns: "int",
      doc: "1 if the source IP and port are a destination of the set (any transport; -1 = any set).",
      run: (ctx, group: number) => isFromList(ctx, group, MATCH_NOPROTO, undefined),
    },
    ds_is_from_list_mode: {
      params: ["int", "int"],
      returns: "int",
      doc: "ds_is_from_list with match mode bits: 1 any port, 2 any transport, 4 active destinations only.",
      run: (ctx, group: number, mode: number) => isFromList(ctx, group, mode, undefined),
    },
    ds_is_from_list_uri: {
      params: ["int", "int", "str"],
      returns: "int",
      doc: "ds_is_from_list_mode for the address of a URI (an IP address: no DNS lookup) instead of the source.",
      run: (ctx, group: number, mode: number, uri: string) => isFromList(ctx, group, mode, uri),
    },
    ds_list_exists: {
      params: ["int"],
      returns: "int",
      doc: "1 if the set exists in the list, -1 otherwise.",
      run(ctx, group: number) {
        const d = configured(ctx);
        return d !== undefined && d.list.sets.has(group) ? 1 : -1;
      },
    },
    ds_is_active: {
      params: ["int"],
      returns: "int",
      doc: "1 if the set has an active destination (not inactive, not disabled), -1 otherwise.",
      run: (ctx, group: number) => isActive(ctx, group, undefined),
    },
    ds_is_active_uri: {
      params: ["int", "str"],
      returns: "int",
      doc: "1 if the destination with this exact URI in the set is active, -1 otherwise.",
      run: (ctx, group: number, uri: string) => isActive(ctx, group, uri),
    },
    ds_load_update: {
      params: [],
      returns: "int",
      doc: "Algorithm 10: on a BYE or CANCEL remove the call's load from its destination; on a 2xx reply to the INVITE mark the call answered. 0 (Kamailio's KEMI value).",
      run: (ctx) => loadUpdate(ctx),
    },
    ds_load_unset: {
      params: [],
      returns: "int",
      doc: "Algorithm 10: remove the load of the call (an INVITE that failed). 0, or -1 when the call is not tracked (Kamailio's KEMI values).",
      run: (ctx) => loadUnset(ctx),
    },
    ds_reload: {
      params: [],
      returns: "int",
      doc: "Read the list file again (states start again from the file), at most once per reload_delta s; the old list stays when the new one is bad. 1 or -1.",
      run(ctx) {
        const d = configured(ctx);
        if (d === undefined) return -1;
        const err = reloadDispatcher(d, ctx.host.now());
        if (err === "too soon") {
          ctx.host.log("err", `dispatcher: ongoing reload (one per ${d.settings.reload_delta} s, the reload_delta parameter)\n`, ctx);
          return -1;
        }
        if (err !== undefined) {
          ctx.host.log("err", `dispatcher: reload failed, keeping the current list: ${err.message}\n`, ctx);
          return -1;
        }
        return 1;
      },
    },
  },
  unavailable: {
    ds_select_routes: { params: ["str", "str"], returns: "int", reason: "not provided yet" },
    ds_select_routes_limit: { params: ["str", "str", "int"], returns: "int", reason: "not provided yet" },
  },
  // Native functions (Kamailio dispatcher cmd exports) for KSR.x.modf.
  native: [
    { name: "ds_select_dst", params: ["int", "int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_select_dst" },
    { name: "ds_select_dst", params: ["int", "int", "int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_select_dst_limit" },
    { name: "ds_select_domain", params: ["int", "int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_select_domain" },
    { name: "ds_select_domain", params: ["int", "int", "int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_select_domain_limit" },
    { name: "ds_select", params: ["int", "int"], routes: ["ANY_ROUTE"], kemi: "ds_select" },
    { name: "ds_select", params: ["int", "int", "int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_select_limit" },
    { name: "ds_next_dst", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_next_dst" },
    { name: "ds_next_domain", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_next_domain" },
    { name: "ds_set_dst", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_set_dst" },
    { name: "ds_set_domain", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "ds_set_domain" },
    { name: "ds_mark_dst", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "ds_mark_dst" },
    { name: "ds_mark_dst", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "ds_mark_dst_state", literal: true },
    { name: "ds_is_from_list", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE", "BRANCH_ROUTE"], kemi: "ds_is_from_lists" },
    { name: "ds_is_from_list", params: ["int"], routes: ["ANY_ROUTE"], kemi: "ds_is_from_list" },
    { name: "ds_is_from_list", params: ["int", "int"], routes: ["ANY_ROUTE"], kemi: "ds_is_from_list_mode" },
    { name: "ds_is_from_list", params: ["int", "int", "str"], routes: ["ANY_ROUTE"], kemi: "ds_is_from_list_uri" },
    { name: "ds_list_exists", params: ["int"], routes: ["ANY_ROUTE"], kemi: "ds_list_exists" },
    { name: "ds_is_active", params: ["int"], routes: ["ANY_ROUTE"], kemi: "ds_is_active" },
    { name: "ds_is_active", params: ["int", "str"], routes: ["ANY_ROUTE"], kemi: "ds_is_active_uri" },
    { name: "ds_reload", params: [], routes: ["ANY_ROUTE"], kemi: "ds_reload" },
    // The native functions answer 1 where the KEMI ones answer 0 (w_ds_load_update / w_ds_load_unset).
    { name: "ds_load_update", params: [], routes: ["ANY_ROUTE"], run: (ctx) => (loadUpdate(ctx) < 0 ? -1 : 1) },
    { name: "ds_load_unset", params: [], routes: ["ANY_ROUTE"], run: (ctx) => (loadUnset(ctx) < 0 ? -1 : 1) },
  ],
};
