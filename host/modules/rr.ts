/**
 * KSR.rr (Kamailio rr module): Record-Route on the way out (RFC 3261 §16.6
 * step 4, RFC 5658) and Route processing on the way in (RFC 3261 §16.4,
 * §16.12, with the strict-router interworking of §16.4 and §16.6 step 6).
 *
 * Return values and corner cases follow Kamailio 5.6.3 with the module's
 * default parameters (append_fromtag=1, enable_double_rr=1,
 * enable_full_lr=0, add_username=0, force_send_socket=0) and without the
 * outbound module: Record-Route URIs carry no user part and loose_route()
 * never routes by an RFC 5626 flow token, so its codes 2 and -2 do not occur.
 *
 * Changes follow Kamailio's lump model: removed Route values become header
 * edits applied when the request is sent, while KSR reads of the message
 * keep seeing the Route headers as received; the new R-URI and $du are set
 * on the context at once.
 */
import type { ListenSocket, MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import { safeRegexTest } from "../core/safe-regex.js";
import type { SipMessage } from "../sip/message.js";
import { splitHeaderValues } from "../sip/headers.js";
import { parseNameAddr } from "../sip/nameaddr.js";
import { messageMemo } from "../sip/parser.js";
import { uriParam, type SipUri } from "../sip/uri.js";
import {
  addRecordRouteParam,
  hasRecordRoute,
  isRecordRouteAdded,
  removeRecordRoute,
  setRecordRoute,
  type RecordRouteAddress,
} from "../proxy/record-route.js";
import { formatListenSocket, sameIp } from "../transport/listen-socket.js";
import { cameOver, decodeFlowToken, flowUri } from "../proxy/flow-token.js";
import type { KemiModule } from "./types.js";
import { parseUriCached, toBody } from "./msgutil.js";
import { isLocalAddress, uriTransportParam } from "./myself.js";

/** loose_route() results (Kamailio rr/loose.h). */
export const RR_DRIVEN = 1;
export const RR_ERROR = -1;
export const RR_NOT_DRIVEN = -1;
export const RR_PRELOADED = -3;
/** Kamailio's E_CFG, returned by is_direction() for an unknown direction. */
const E_CFG = -6;

/** loose_route_mode() bit: do not treat an R-URI of ours as left by a strict router. */
const MODE_LOOSE_ONLY = 1;

// ------------------------------------------------------------ route set

interface RouteValue {
  /** Index of the Route field in msg.headers. */
  readonly headerIndex: number;
  /** Position of this value in its field. */
  readonly position: number;
  /** The URI as written between < >. */
  readonly uriText: string;
}

interface RouteField {
  readonly headerIndex: number;
  /** The values as written (comma-separated list, RFC 3261 §7.3.1). */
  readonly values: readonly string[];
}

interface RouteSet {
  readonly fields: readonly RouteField[];
  /** Every Route value, topmost first. */
  readonly values: readonly RouteValue[];
}

/** messageMemo slot of routeSet. */
const ROUTE_SET_SLOT = "rr.routeSet";

/** The received Route set, or null when a Route value does not parse. */
function routeSet(msg: SipMessage): RouteSet | null {
  const memo = messageMemo(msg);
  let set = memo[ROUTE_SET_SLOT] as RouteSet | null | undefined;
  if (set !== undefined) return set;
  const fields: RouteField[] = [];
  const values: RouteValue[] = [];
  set = { fields, values };
  msg.headers.forEach((h, headerIndex) => {
    if (set === null || h.key !== "route") return;
    const parts = splitHeaderValues(h.value);
    for (let position = 0; position < parts.length; position++) {
      const na = parseNameAddr(parts[position]!);
      if (na === null) {
        set = null;
        return;
      }
      values.push({ headerIndex, position, uriText: na.uri });
    }
    fields.push({ headerIndex, values: parts });
  });
  memo[ROUTE_SET_SLOT] = set;
  return set;
}

/** URI of the topmost Route value as received ($route_uri), undefined when none. */
export function topRouteUri(msg: SipMessage): string | undefined {
  return routeSet(msg)?.values[0]?.uriText;
}

/**
 * Route values to drop from the forwarded request. Each is removed alone;
 * a field left without values is removed whole, otherwise it is rewritten
 * with the remaining values as they were written.
 */
class RouteRemoval {
  private readonly removed = new Map<number, Set<number>>();

  remove(v: RouteValue): void {
    let positions = this.removed.get(v.headerIndex);
    if (positions === undefined) {
      positions = new Set();
      this.removed.set(v.headerIndex, positions);
    }
    positions.add(v.position);
  }

  applyTo(ctx: MessageContext, set: RouteSet): void {
    for (const field of set.fields) {
      const positions = this.removed.get(field.headerIndex);
      // A field the script already removed stays removed.
      if (positions === undefined || ctx.edits.replaced.get(field.headerIndex) === "") continue;
      const kept = field.values.filter((_, i) => !positions.has(i));
      const name = ctx.msg.headers[field.headerIndex]!.name;
      ctx.edits.replaced.set(field.headerIndex, kept.length === 0 ? "" : `${name}: ${kept.join(", ")}\r\n`);
    }
  }
}

// ------------------------------------------------------- per-message state

interface LooseRouteState {
  /**
   * URI parameters of the local Route that loose_route() consumed (without
   * the leading ";"), for check_route_param()/is_direction(). Undefined:
   * taken from the topmost Route when that one is ours (Kamailio's
   * redo_route_params), so both also work without loose_route().
   */
  localParams: string | undefined;
  /** The next hop came from a Route value after ours (rr_next_hop_route). */
  nextHopFromRoute: boolean;
}

const looseStates = new ContextSlot<LooseRouteState>("rr.looseState");

function looseStateOf(ctx: MessageContext): LooseRouteState {
  let s = looseStates.get(ctx);
  if (s === undefined) {
    s = { localParams: undefined, nextHopFromRoute: false };
    looseStates.set(ctx, s);
  }
  return s;
}

/**
 * Whether a Route / Request-URI names this proxy (Kamailio rr's is_myself):
 * host and port (5060 when absent) against the listening sockets and
 * aliases, any transport; a GRUU (";gr", RFC 5627) is a user's, never ours.
 */
function isMyselfUri(ctx: MessageContext, u: SipUri): boolean {
  if (u.host === "") return false;
  if (!isLocalAddress(ctx.host, u.host, u.port ?? 5060, "")) return false;
  return uriParam(u, "gr") === undefined;
}

/** A Route URI without ";lr" names a strict router (RFC 3261 §16.4, §19.1.1). */
function isStrictRouter(u: SipUri): boolean {
  return uriParam(u, "lr") === undefined;
}

/** ";r2" marks the first of the two Record-Route values we inserted (RFC 5658 §4). */
function isDoubleRecordRoute(u: SipUri): boolean {
  return uriParam(u, "r2") !== undefined;
}

/** URI parameters as written, without the leading ";". */
function uriParamsText(u: SipUri): string {
  return u.params.map((p) => (p.value === undefined ? p.name : `${p.name}=${p.value}`)).join(";");
}

/**
 * Where a Route URI sends the request: a maddr parameter overrides the host
 * (RFC 3261 §19.1.1), giving "sip:maddr[:port]" as Kamailio builds it.
 */
function nextHopUri(text: string, u: SipUri): string {
  const maddr = uriParam(u, "maddr");
  if (maddr === undefined) return text;
  return `sip:${maddr}${u.port !== undefined ? `:${u.port}` : ""}`;
}

/**
 * Send from the local socket a Route URI of ours names: with double
 * Record-Route the second value is the interface facing the next hop.
 */
function forceSendSocketOf(ctx: MessageContext, u: SipUri): void {
  const proto = uriTransportParam(u.params);
  const candidates: ListenSocket[] = ctx.host.listen.filter((s) => proto === "" || s.proto === proto);
  const matches = (port: number): ListenSocket | undefined =>
    candidates.find((s) => isLocalAddress({ listen: [s], aliases: [] }, u.host, port, ""));
  const socket = matches(u.port ?? 5060) ?? (u.port === undefined ? matches(0) : undefined);
  if (socket === undefined) {
    ctx.host.log("warn", `no socket found to match second RR (${u.host})\n`, ctx);
    return;
  }
  ctx.sendSocket = formatListenSocket(socket);
}

// ------------------------------------------------------------ loose_route

/**
 * loose_route() / loose_route_mode(mode): route the request by its Route
 * set. Returns 1 when the next hop comes from the Route set (or, in dialog,
 * when our own Route was the last one: the R-URI decides), -1 when there is
 * no Route or on a parse error, -3 when the request is out of dialog (no To
 * tag) and its only Route value(s) were ours (removed; the script routes
 * the initial request by its R-URI).
 */
export function looseRoute(ctx: MessageContext, mode: number): number {
  const state = looseStateOf(ctx);
  state.localParams = undefined;
  if (!ctx.isRequest) return RR_NOT_DRIVEN;
  const set = routeSet(ctx.msg);
  if (set === null) {
    ctx.host.log("err", "failed to parse Route HF\n", ctx);
    return RR_ERROR;
  }
  if (set.values.length === 0) return RR_NOT_DRIVEN;
  const ruri = parseUriCached(ctx.requestUri);
  if (ruri === null) {
    ctx.host.log("err", "failed to parse Request URI\n", ctx);
    return RR_ERROR;
  }
  const to = toBody(ctx.msg, "to");
  if (to === null) {
    ctx.host.log("err", "failed to parse To header field\n", ctx);
    return RR_ERROR;
  }
  const removal = new RouteRemoval();
  let status: number;
  if (to.tag === undefined || to.tag === "") {
    // RFC 3261 §16.4 applies to a pre-loaded Route set the same way.
    status = afterLooseRouter(ctx, set, true, removal, state);
  } else if ((mode & MODE_LOOSE_ONLY) === 0 && isMyselfUri(ctx, ruri)) {
    status = afterStrictRouter(ctx, set, ruri, removal, state);
  } else {
    status = afterLooseRouter(ctx, set, false, removal, state);
  }
  removal.applyTo(ctx, set);
  return status;
}

/**
 * The previous hop routed loosely: our URI, if anywhere, is the topmost
 * Route value (RFC 3261 §16.4: "if the first value in the Route header
 * field indicates this proxy, the proxy MUST remove that value").
 */
function afterLooseRouter(
  ctx: MessageContext,
  set: RouteSet,
  preloaded: boolean,
  removal: RouteRemoval,
  state: LooseRouteState,
): number {
  const values = set.values;
  const top = values[0]!;
  const topUri = parseUriCached(top.uriText);
  if (topUri === null) {
    ctx.host.log("err", `failed to parse the first route URI (${top.uriText})\n`, ctx);
    return RR_ERROR;
  }
  let next = top;
  let nextUri = topUri;
  if (isMyselfUri(ctx, topUri)) {
    state.localParams = uriParamsText(topUri);
    removal.remove(top);
    let index = 1;
    routeToFlow(ctx, topUri);
    // With nothing after our value the R-URI decides where the request goes.
    if (index >= values.length) return preloaded ? RR_PRELOADED : RR_DRIVEN;
    if (isDoubleRecordRoute(topUri)) {
      // RFC 5658 §4: the second value is ours too (the other interface).
      const second = values[index]!;
      const secondUri = parseUriCached(second.uriText);
      if (secondUri === null) {
        ctx.host.log("err", `failed to parse the double route URI (${second.uriText})\n`, ctx);
        return RR_ERROR;
      }
      forceSendSocketOf(ctx, secondUri);
      removal.remove(second);
      index++;
      if (index >= values.length) return preloaded ? RR_PRELOADED : RR_DRIVEN;
    }
    next = values[index]!;
    const parsed = parseUriCached(next.uriText);
    if (parsed === null) {
      ctx.host.log("err", `failed to parse the next route URI (${next.uriText})\n`, ctx);
      return RR_ERROR;
    }
    nextUri = parsed;
    state.nextHopFromRoute = true;
  }
  if (isStrictRouter(nextUri)) {
    // RFC 3261 §16.6 step 6: the next hop is a strict router, which routes
    // by the R-URI: the R-URI becomes the last Route value, the strict
    // router's URI the R-URI, and its Route value goes. Kamailio saves the
    // R-URI as received.
    ctx.edits.appended.push(`Route: <${ctx.msg.requestUri}>\r\n`);
    ctx.setRequestUri(nextHopUri(next.uriText, nextUri));
    removal.remove(next);
  } else {
    // RFC 3261 §16.6 step 7 / §16.12: a loose router next; the R-URI stays
    // and the request goes to the Route URI ($du).
    ctx.dstUri = nextHopUri(next.uriText, nextUri);
  }
  return RR_DRIVEN;
}

/**
 * RFC 5626 §5.3: a Route value of ours whose user part is a flow token we
 * made (Record-Route of an outbound UA, host/proxy/flow-token.ts) sends the
 * request down that flow ($du and the socket it was received on), unless
 * the request came over that very flow (it is going the other way). A user
 * part that is no token of ours changes nothing. Kamailio's rr does this
 * with its outbound module loaded.
 */
function routeToFlow(ctx: MessageContext, ours: SipUri): void {
  if (ours.user === undefined || ours.user === "") return;
  const flow = decodeFlowToken(ours.user);
  if (flow === undefined || cameOver(ctx.rcv, flow)) return;
  ctx.dstUri = flowUri(flow);
  const socket = ctx.host.listen.find((l) => l.proto === flow.proto && l.port === flow.localPort && sameIp(l.ip, flow.localIp));
  if (socket !== undefined) ctx.sendSocket = formatListenSocket(socket);
}

/**
 * In dialog with an R-URI of ours: the previous hop was a strict router,
 * which put our Record-Route URI in the R-URI (RFC 3261 §16.4). The real
 * target is the last Route value; it becomes the R-URI again.
 */
function afterStrictRouter(
  ctx: MessageContext,
  set: RouteSet,
  ruri: SipUri,
  removal: RouteRemoval,
  state: LooseRouteState,
): number {
  const values = set.values;
  let current = values[0]!;
  let currentUri = parseUriCached(current.uriText);
  if (currentUri === null) {
    ctx.host.log("err", "failed to parse the first route URI\n", ctx);
    return RR_ERROR;
  }
  if (isDoubleRecordRoute(currentUri) && isMyselfUri(ctx, currentUri)) {
    // The strict router took one of our two values; the other one is on top.
    forceSendSocketOf(ctx, currentUri);
    removal.remove(current);
    if (values.length < 2) return RR_NOT_DRIVEN;
    current = values[1]!;
    currentUri = parseUriCached(current.uriText);
    if (currentUri === null) {
      ctx.host.log("err", "failed to parse URI\n", ctx);
      return RR_ERROR;
    }
  }
  // The R-URI was our Record-Route URI: its parameters are the local ones.
  state.localParams = uriParamsText(ruri);
  if (isStrictRouter(currentUri)) {
    // Next hop strict as well (or the last value, a UA's Contact): behave
    // as a strict router, the Route value becomes the R-URI.
    ctx.setRequestUri(nextHopUri(current.uriText, currentUri));
    removal.remove(current);
    return RR_DRIVEN;
  }
  ctx.dstUri = nextHopUri(current.uriText, currentUri);
  const last = values[values.length - 1]!;
  const lastUri = parseUriCached(last.uriText);
  if (lastUri === null) {
    ctx.host.log("err", "checking maddr failed\n", ctx);
    return RR_ERROR;
  }
  ctx.setRequestUri(nextHopUri(last.uriText, lastUri));
  removal.remove(last);
  return RR_DRIVEN;
}

// -------------------------------------------------- route params & direction

/** The parameters of the local Route (see LooseRouteState.localParams). */
function localRouteParams(ctx: MessageContext): string | undefined {
  const stored = looseStates.get(ctx)?.localParams;
  if (stored !== undefined) return stored;
  const top = topRouteUri(ctx.msg);
  if (top === undefined) return undefined;
  const u = parseUriCached(top);
  if (u === null || !isMyselfUri(ctx, u)) return undefined;
  return uriParamsText(u);
}

/**
 * Value of a local Route parameter: "" for a flag, undefined when absent.
 * Names compare case-sensitively and quoted values lose their quotes, as
 * Kamailio's get_route_param does.
 */
export function localRouteParam(ctx: MessageContext, name: string): string | undefined {
  const params = localRouteParams(ctx);
  if (params === undefined || params === "") return undefined;
  for (const part of splitParams(params)) {
    const eq = part.indexOf("=");
    const pname = (eq === -1 ? part : part.slice(0, eq)).trim();
    if (pname !== name) continue;
    if (eq === -1) return "";
    const value = part.slice(eq + 1).trim();
    const quoted = value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!);
    return quoted ? value.slice(1, -1) : value;
  }
  return undefined;
}

/** Split "a=1;b="x;y";c" on the semicolons outside quotes. */
function splitParams(params: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quote = "";
  for (let i = 0; i < params.length; i++) {
    const c = params[i]!;
    if (quote !== "") {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === ";") {
      out.push(params.slice(start, i));
      start = i + 1;
    }
  }
  out.push(params.slice(start));
  return out;
}

export type FlowDirection = "downstream" | "upstream";

/**
 * Direction of an in-dialog request (Kamailio is_direction): our Route
 * carries the From tag of the request that created the dialog (";ftag",
 * added by record_route). A request whose From tag differs comes from the
 * callee: upstream. Without an ftag or a From tag: downstream.
 */
export function flowDirection(ctx: MessageContext): FlowDirection {
  const ftag = localRouteParam(ctx, "ftag");
  if (ftag === undefined || ftag === "") return "downstream";
  const fromTag = toBody(ctx.msg, "from")?.tag;
  if (fromTag === undefined || fromTag === "") return "downstream";
  return fromTag === ftag ? "downstream" : "upstream";
}

// --------------------------------------------------------- record_route

/** sips when the R-URI is sips, so the dialog stays on TLS (RFC 3261 §16.6 step 4). */
function recordRouteScheme(ctx: MessageContext): "sip" | "sips" {
  return parseUriCached(ctx.requestUri)?.scheme === "sips" ? "sips" : "sip";
}

/**
 * The ftag for record_route(): the tag of the dialog's caller, i.e. the To
 * tag of a request going upstream, else the From tag. Null when the header
 * it needs does not parse.
 */
function dialogFromTag(ctx: MessageContext, byDirection: boolean): string | undefined | null {
  const key = byDirection && flowDirection(ctx) === "upstream" ? "to" : "from";
  const body = toBody(ctx.msg, key);
  if (body === null) {
    ctx.host.log("err", `${key === "to" ? "To" : "From"} parsing failed\n`, ctx);
    return null;
  }
  return body.tag;
}

function recordRoute(ctx: MessageContext, address: RecordRouteAddress, params: string, markAdded: boolean): number {
  if (!ctx.isRequest) {
    ctx.host.log("err", "record-routing applies to requests only\n", ctx);
    return -1;
  }
  if (isRecordRouteAdded(ctx)) {
    ctx.host.log("err", "Double attempt to record-route\n", ctx);
    return -1;
  }
  const fromTag = dialogFromTag(ctx, address.kind !== "preset");
  if (fromTag === null) return -1;
  setRecordRoute(ctx, { address, scheme: recordRouteScheme(ctx), fromTag, params }, markAdded);
  return 1;
}

// ------------------------------------------------------------------ exports

export const rrModule: KemiModule = {
  name: "rr",
  kamailioModule: "rr",
  functions: {
    record_route: {
      params: [],
      returns: "int",
      doc: "Record-Route this request (two headers with ;r2=on when it leaves by another socket). 1 ok; -1 if already record-routed or on error.",
      run: (ctx) => recordRoute(ctx, { kind: "socket" }, "", ctx.routeType !== "branch"),
    },
    record_route_params: {
      params: ["str"],
      returns: "int",
      doc: 'record_route() with URI parameters appended to the Record-Route URI (";name=value"). 1 ok; -1 on error.',
      run: (ctx, params: string) => recordRoute(ctx, { kind: "socket" }, params, ctx.routeType !== "branch"),
    },
    record_route_preset: {
      params: ["str", "str"],
      returns: "int",
      doc: 'Record-Route with the given "host[:port][;params]" texts (the second, if not empty, as a second header). 1 ok; -1 on error.',
      run: (ctx, first: string, second: string) =>
        recordRoute(ctx, { kind: "preset", first, second: second.length > 0 ? second : undefined }, "", true),
    },
    record_route_preset_one: {
      params: ["str"],
      returns: "int",
      doc: 'Record-Route with the given "host[:port][;params]" text. 1 ok; -1 on error.',
      run: (ctx, first: string) => recordRoute(ctx, { kind: "preset", first, second: undefined }, "", true),
    },
    record_route_advertised_address: {
      params: ["str"],
      returns: "int",
      doc: "Record-Route with this address instead of the socket's (doubled when the transport changes). 1 ok; -1 on error.",
      run: (ctx, address: string) => recordRoute(ctx, { kind: "advertised", address }, "", true),
    },
    add_rr_param: {
      params: ["str"],
      returns: "int",
      doc: 'Append a parameter (";name=value") to the Record-Route URI, before or after record_route(). 1 ok; -1 on error.',
      run(ctx, param: string) {
        const result = addRecordRouteParam(ctx, param);
        if (result < 0) {
          const why = hasRecordRoute(ctx) ? "failed to locate double RR lump" : "maximum size of rr_param_buf exceeded";
          ctx.host.log("err", `${why}\n`, ctx);
        }
        return result;
      },
    },
    remove_record_route: {
      params: [],
      returns: "int",
      doc: "Drop the Record-Route header(s) this request was going to get. Always 1.",
      run(ctx) {
        removeRecordRoute(ctx);
        return 1;
      },
    },
    loose_route: {
      params: [],
      returns: "int",
      doc: "Route by the Route headers (RFC 3261 §16.4/§16.12, strict-router interworking). 1 routed; -1 no Route/error; -3 only our Route in an initial request (removed).",
      run: (ctx) => looseRoute(ctx, 0),
    },
    loose_route_mode: {
      params: ["int"],
      returns: "int",
      doc: "loose_route(); mode 1 skips the strict-router check of an R-URI of ours. Same return codes.",
      run: (ctx, mode: number) => looseRoute(ctx, mode),
    },
    loose_route_preloaded: {
      params: [],
      returns: "int",
      doc: "loose_route() for initial requests: 1 when the Route set was a preloaded one of ours (-3 of loose_route), else -1.",
      run: (ctx) => (looseRoute(ctx, 0) === RR_PRELOADED ? 1 : -1),
    },
    check_route_param: {
      params: ["str"],
      returns: "int",
      doc: 'Match a regex (case-insensitive) against the parameters of our Route (";lr;ftag=..."). 1 match; -1 otherwise.',
      run(ctx, source: string) {
        const params = localRouteParams(ctx);
        if (params === undefined || params === "") return -1;
        // Kamailio compiles a POSIX extended, case-insensitive regex;
        // JavaScript's syntax covers what such patterns use. The subject is
        // remote input, so the match runs time-bounded (safe-regex.ts).
        const result = safeRegexTest(source, "i", `;${params}`);
        if (!result.ok) {
          ctx.host.log("err", `check_route_param: ${result.error}\n`, ctx);
          return -1;
        }
        return result.matched ? 1 : -1;
      },
    },
    is_direction: {
      params: ["str"],
      returns: "int",
      doc: 'In-dialog request direction by our Route\'s ftag: "downstream" (caller to callee) or "upstream". 1 if it is; -1 if not; -6 unknown direction.',
      run(ctx, dir: string) {
        const wanted = dir.toLowerCase();
        if (wanted !== "downstream" && wanted !== "upstream") {
          ctx.host.log("err", `unknown direction '${dir}' - use 'downstream' or 'upstream'\n`, ctx);
          return E_CFG;
        }
        return flowDirection(ctx) === wanted ? 1 : -1;
      },
    },
    next_hop_route: {
      params: [],
      returns: "int",
      doc: "After loose_route(): 1 when the next hop was taken from a Route header after ours, else -1.",
      run: (ctx) => (looseStates.get(ctx)?.nextHopFromRoute ? 1 : -1),
    },
  },
  // Native functions (Kamailio rr cmd exports) for KSR.x.modf.
  native: [
    { name: "loose_route", params: [], routes: ["REQUEST_ROUTE"], kemi: "loose_route" },
    { name: "loose_route_preloaded", params: [], routes: ["REQUEST_ROUTE"], kemi: "loose_route_preloaded" },
    { name: "loose_route_mode", params: ["int"], routes: ["REQUEST_ROUTE"], kemi: "loose_route_mode" },
    { name: "record_route", params: [], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "record_route" },
    { name: "record_route", params: ["str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "record_route_params", refused: "fixup without free" },
    { name: "record_route_preset", params: ["str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "record_route_preset_one", refused: "fixup without free" },
    { name: "record_route_preset", params: ["str", "str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "record_route_preset", refused: "fixup without free" },
    { name: "record_route_advertised_address", params: ["str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "record_route_advertised_address", refused: "fixup without free" },
    { name: "add_rr_param", params: ["str"], routes: ["REQUEST_ROUTE", "BRANCH_ROUTE", "FAILURE_ROUTE"], kemi: "add_rr_param", refused: "fixup without free" },
    { name: "check_route_param", params: ["str"], routes: ["REQUEST_ROUTE"], kemi: "check_route_param", literal: true },
    { name: "is_direction", params: ["str"], routes: ["REQUEST_ROUTE"], kemi: "is_direction", refused: "fixup without free" },
    { name: "remove_record_route", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "remove_record_route" },
    { name: "rr_next_hop_route", params: [], routes: ["ANY_ROUTE"], kemi: "next_hop_route" },
  ],
};
