/**
 * Destination sets of the dispatcher, read from a file in Kamailio's
 * dispatcher.list format (one destination a line):
 *
 *   # setid destination [flags [priority [attrs]]]
 *   1 sip:127.0.0.1:5070
 *   1 sip:127.0.0.1:5071 0 10 duid=b;weight=50;socket=udp:127.0.0.1:5060
 *
 * flags are the destination's initial state bits (1 inactive, 2 trying,
 * 4 disabled, 8 probing); attrs a ';'-separated name=value list of which
 * duid, weight, rweight, socket, sockname, maxload, ping_from and obproxy
 * are understood (names compare case-insensitively, as Kamailio's
 * ds_set_attrs does).
 *
 * Order inside a set is Kamailio's: by priority, highest first; among equal
 * priorities the line written last comes first (dispatch.c add_dest2list
 * keeps an ascending list that reindex_dests copies backwards). Index 0 is
 * what algorithm 8 picks.
 *
 * Unlike Kamailio's default (ds_load_mode 0: a bad line is skipped with a
 * warning), a bad line rejects the whole list with an error naming the file
 * and line, so that a reload never silently loses a destination.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseUri, uriParam, type SipUri } from "../../sip/uri.js";
import { parseSocketSpec } from "../myself.js";

/** Destination state bits (Kamailio dispatch.h DS_*_DST). */
export const DS_INACTIVE = 1;
export const DS_TRYING = 2;
export const DS_DISABLED = 4;
export const DS_PROBING = 8;
/** Every state bit (DS_STATES_ALL, DS_NODNSARES_DST included). */
export const DS_STATES_ALL = 31;

/** A destination is passed over by selection when inactive or disabled (ds_skip_dst). */
export function isSkipped(flags: number): boolean {
  return (flags & (DS_INACTIVE | DS_DISABLED)) !== 0;
}

export interface DestinationAttrs {
  /** The attrs text as written, a trailing ';' removed ("" when none). */
  readonly body: string;
  readonly duid: string | undefined;
  /** 1..100, 0 when not given or out of range (then the set has no weights). */
  readonly weight: number;
  /** Relative weight 1..100, 0 when not given or out of range. */
  readonly rweight: number;
  /** Local socket to send from ("udp:127.0.0.1:5060"). */
  readonly socket: string | undefined;
  readonly sockname: string | undefined;
  readonly maxload: number;
  readonly pingFrom: string | undefined;
  readonly obproxy: string | undefined;
}

export interface Destination {
  readonly uri: string;
  /** Host of the URI, lowercase, IPv6 without brackets. */
  readonly host: string;
  /** Port written in the URI, 0 when none (matches any port in ds_is_from_list). */
  readonly port: number;
  /** Transport parameter of the URI ("" when none). */
  readonly proto: string;
  readonly priority: number;
  readonly attrs: DestinationAttrs;
  /** State bits, changed by ds_mark_dst and probing. */
  flags: number;
  /** Kamailio's message_count: failures toward probing_threshold or successes toward inactive_threshold. */
  messageCount: number;
}

export interface DestinationSet {
  readonly id: number;
  /** Highest priority first (see the file comment). */
  readonly dests: Destination[];
  /** Next index for round robin (algorithm 4). */
  last: number;
  /** 100 slots of destination indexes for algorithm 9; all 0 when the first destination has no weight. */
  readonly weightSlots: number[];
  weightNext: number;
  /** 100 slots for algorithm 11, rebuilt when a destination with an rweight changes state. */
  relWeightSlots: number[];
  relWeightNext: number;
}

export class DispatcherListError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.name = "DispatcherListError";
  }
}

/** The sets of one list file, by set id. */
export interface DispatcherList {
  readonly file: string;
  readonly sets: ReadonlyMap<number, DestinationSet>;
  /** Number of destinations over all sets. */
  readonly size: number;
}

/** Longest line Kamailio reads (its fgets buffer is 1024 bytes); longer lines are an error here, not split. */
const MAX_LINE = 1023;
/** Kamailio's DS_HN_SIZE less the terminator: longest host name of a destination. */
const MAX_HOST = 254;

function parseAttrs(text: string, file: string, line: number): DestinationAttrs {
  const body = text.endsWith(";") ? text.slice(0, -1) : text;
  let duid: string | undefined;
  let weight = 0;
  let rweight = 0;
  let socket: string | undefined;
  let sockname: string | undefined;
  let maxload = 0;
  let pingFrom: string | undefined;
  let obproxy: string | undefined;
  const intOf = (name: string, v: string): number => {
    if (!/^-?\d+$/.test(v)) throw new DispatcherListError(file, line, `attribute ${name}: "${v}" is not a whole number`);
    return Number(v);
  };
  for (const part of body === "" ? [] : body.split(";")) {
    const eq = part.indexOf("=");
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? "" : part.slice(eq + 1).trim();
    if (name === "") throw new DispatcherListError(file, line, `empty attribute in "${text}"`);
    switch (name) {
      case "duid":
        duid = value;
        break;
      case "weight": {
        // Kamailio logs an out-of-range weight and counts it as 0; here it is an error of the list.
        const w = intOf(name, value);
        weight = w >= 1 && w <= 100 ? w : 0;
        if (weight === 0) throw new DispatcherListError(file, line, `weight ${w} is not in 1..100`);
        break;
      }
      case "rweight": {
        // Kamailio warns and ignores it; an error of the list here.
        const w = intOf(name, value);
        rweight = w >= 1 && w <= 100 ? w : 0;
        if (rweight === 0) throw new DispatcherListError(file, line, `rweight ${w} is not in 1..100`);
        break;
      }
      case "socket":
        // proto:address:port, as Kamailio's parse_phostport wants it.
        if (!/^(udp|tcp|tls|sctp):/i.test(value) || (parseSocketSpec(value)?.port ?? 0) === 0) throw new DispatcherListError(file, line, `socket "${value}" is not proto:ip:port`);
        socket = value;
        break;
      case "sockname":
        sockname = value;
        break;
      case "maxload":
        maxload = intOf(name, value);
        break;
      case "ping_from":
        pingFrom = value;
        break;
      case "obproxy":
        obproxy = value;
        break;
      default:
        // Kamailio keeps unknown attributes in the attrs text ($xavp(_dsdst_=>attrs)) without meaning.
        break;
    }
  }
  return { body, duid, weight, rweight, socket, sockname, maxload, pingFrom, obproxy };
}

function parseDestinationUri(text: string, file: string, line: number): { uri: string; parsed: SipUri } {
  let parsed = parseUri(text);
  let uri = text;
  // As Kamailio's pack_dest: a destination written without a scheme gets "sip:".
  if (parsed === null && !/^[a-z]+:/i.test(text)) {
    uri = `sip:${text}`;
    parsed = parseUri(uri);
  }
  if (parsed === null || parsed.scheme === "tel") throw new DispatcherListError(file, line, `"${text}" is not a sip: or sips: URI`);
  if (parsed.host.length > MAX_HOST) throw new DispatcherListError(file, line, `host name longer than ${MAX_HOST} characters`);
  return { uri, parsed };
}

/** Fill 100 slots from (index, share) pairs, the last index taking what is left, then shuffle (dp_init_weights). */
function fillSlots(shares: readonly (readonly [number, number])[], fallback: number, random: () => number): number[] {
  const slots: number[] = [];
  for (const [index, share] of shares) {
    for (let k = 0; k < share && slots.length < 100; k++) slots.push(index);
  }
  const rest = slots.length > 0 ? slots[slots.length - 1]! : fallback;
  while (slots.length < 100) slots.push(rest);
  // Shuffled so that a destination's share is spread over the 100 calls, not in a run.
  for (let j = 0; j < 99; j++) {
    const k = j + Math.floor(random() * (100 - j));
    [slots[j], slots[k]] = [slots[k]!, slots[j]!];
  }
  return slots;
}

/**
 * Algorithm 9's slots: each destination's weight in slots, the last
 * destination taking what the weights leave; weights count only when the
 * first destination has one (dp_init_weights).
 */
function weightSlotsOf(dests: readonly Destination[], random: () => number): number[] {
  if (dests.length === 0 || dests[0]!.attrs.weight === 0) return new Array<number>(100).fill(0);
  const last = dests.length - 1;
  const sum = dests.reduce((s, d) => s + d.attrs.weight, 0);
  const shares = dests.map((d, i) => [i, d.attrs.weight] as const);
  return fillSlots(sum < 100 ? [...shares, [last, 100 - sum] as const] : shares, last, random);
}

/**
 * Algorithm 11's slots: each active destination's rweight share of the
 * active sum, truncated, the remainder to the last active one
 * (dp_init_relative_weights). Sets with fewer than 2 destinations or no
 * active rweight keep their slots (all 0 at first).
 */
export function rebuildRelativeWeights(set: DestinationSet, random: () => number = Math.random): void {
  if (set.dests.length < 2) return;
  const active = set.dests.map((d, i) => [i, d] as const).filter(([, d]) => !isSkipped(d.flags));
  const sum = active.reduce((s, [, d]) => s + d.attrs.rweight, 0);
  if (sum === 0) return;
  const shares = active.map(([i, d]) => [i, Math.floor((d.attrs.rweight * 100) / sum)] as const);
  set.relWeightSlots = fillSlots(shares, set.dests.length - 1, random);
}

/** Parse list text (file is only for messages). */
export function parseDispatcherList(text: string, file: string, random: () => number = Math.random): DispatcherList {
  const bySet = new Map<number, Destination[]>();
  let size = 0;
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const raw = lines[n]!.replace(/\r$/, "");
    if (raw.length > MAX_LINE) throw new DispatcherListError(file, lineNo, `line longer than ${MAX_LINE} characters`);
    // A field starting with '#' starts a comment, except the attrs (Kamailio reads them to the next blank).
    const fields = raw.trim().split(/[ \t]+/);
    const cut = fields.findIndex((f, i) => i < 4 && f.startsWith("#"));
    const used = cut === -1 ? fields : fields.slice(0, cut);
    if (used.length === 0 || used[0] === "") continue;
    if (used.length > 5 && !used[5]!.startsWith("#")) throw new DispatcherListError(file, lineNo, `unexpected "${used[5]}" after the attributes`);
    if (used.slice(1, 4).some((f) => f.includes("#"))) throw new DispatcherListError(file, lineNo, `'#' inside a field: "${raw.trim()}"`);
    const [setText, uriText, flagsText, prioText, attrsText] = used;
    if (!/^\d+$/.test(setText!)) throw new DispatcherListError(file, lineNo, `set id "${setText}" is not a non-negative whole number`);
    if (uriText === undefined) throw new DispatcherListError(file, lineNo, "no destination after the set id");
    const setId = Number(setText);
    if (!Number.isSafeInteger(setId) || setId > 0x7fffffff) throw new DispatcherListError(file, lineNo, `set id ${setText} is too large`);
    const number = (what: string, t: string | undefined): number => {
      if (t === undefined) return 0;
      if (!/^\d+$/.test(t) || Number(t) > 0x7fffffff) throw new DispatcherListError(file, lineNo, `${what} "${t}" is not a non-negative whole number`);
      return Number(t);
    };
    const flags = number("flags", flagsText);
    if ((flags & ~DS_STATES_ALL) !== 0) throw new DispatcherListError(file, lineNo, `flags ${flags} has bits other than the states 1, 2, 4, 8, 16`);
    const priority = number("priority", prioText);
    const { uri, parsed } = parseDestinationUri(uriText, file, lineNo);
    const attrs = parseAttrs(attrsText ?? "", file, lineNo);
    const host = parsed.host.startsWith("[") ? parsed.host.slice(1, -1).toLowerCase() : parsed.host.toLowerCase();
    const dest: Destination = {
      uri,
      host,
      port: parsed.port ?? 0,
      proto: (uriParam(parsed, "transport") ?? "").toLowerCase(),
      priority,
      attrs,
      flags,
      messageCount: 0,
    };
    let list = bySet.get(setId);
    if (list === undefined) bySet.set(setId, (list = []));
    list.push(dest);
    size++;
  }
  const sets = new Map<number, DestinationSet>();
  for (const [id, written] of bySet) {
    // Stable sort by priority descending of the reversed file order = Kamailio's index order.
    const dests = [...written].reverse().sort((a, b) => b.priority - a.priority);
    const set: DestinationSet = {
      id,
      dests,
      last: 0,
      weightSlots: weightSlotsOf(dests, random),
      weightNext: 0,
      relWeightSlots: new Array<number>(100).fill(0),
      relWeightNext: 0,
    };
    rebuildRelativeWeights(set, random);
    sets.set(id, set);
  }
  return { file, sets, size };
}

/** Read and parse a list file; throws DispatcherListError naming the file (and line). */
export function loadDispatcherList(file: string, random: () => number = Math.random): DispatcherList {
  let text: string;
  try {
    text = readFileSync(file, "latin1");
  } catch (e) {
    throw new DispatcherListError(file, 0, `cannot read: ${(e as Error).message}`);
  }
  return parseDispatcherList(text, file, random);
}

/** The destination's IP when its host is an address literal (only those match ds_is_from_list here: no DNS). */
export function destinationIp(d: Destination): string | undefined {
  return isIP(d.host) !== 0 ? d.host : undefined;
}
