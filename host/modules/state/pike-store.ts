/**
 * Request-rate state behind KSR.pike (Kamailio's pike module), one
 * namespace per tenant, kept as Kamailio keeps it (its ip_tree.c and
 * pike_funcs.c):
 *
 * - Addresses live in a tree of their bytes: one level per byte, 4 for
 *   IPv4 and 16 for IPv6 (the full address: Kamailio does not fold an IPv6
 *   /64 or any other prefix into one source, so neither does this; a source
 *   rotating addresses is as many sources as addresses, see README).
 * - A request counts on the deepest node of its address already in the
 *   tree. While that is a prefix, it counts as a prefix hit; once a prefix
 *   has a quarter of `reqs_density_per_unit` hits in a window ("hot") a
 *   child for the next byte is grown, inheriting the prefix's hits less
 *   one. Only a node of the full address counts leaf hits, and only leaf
 *   hits flag flooding: an address whose previous or current window, or
 *   their mean, reaches the density is marked (-2 for the request that
 *   marks it, -1 after). A new source thus needs a few requests before its
 *   own count starts (with the defaults its 10th request for IPv4, its
 *   22nd for IPv6): the tree spends memory only on busy prefixes.
 * - Time is cut into windows of `sampling_time_unit` seconds aligned on the
 *   clock; at each window change current counts become previous ones and a
 *   marked address no longer hot is unmarked (Kamailio's swap timer; here
 *   applied to a node when it is next touched).
 * - Expiry: a node at the end of a branch, or of a full address, is
 *   forgotten `remove_latency` seconds after the last request that refreshed
 *   it (a prefix that has not yet had a quarter of the density in its
 *   current window is not refreshed, so lone scans expire); a prefix whose
 *   last child is forgotten starts its own latency then.
 * - Memory: at most `maxNodesPerTenant` nodes per tenant (Kamailio is bound
 *   only by its shared memory). When full, the node closest to expiring is
 *   forgotten first.
 */
import { isIP } from "node:net";
import { TenantScoped } from "./tenant-scope.js";

export interface PikeSettings {
  /** Kamailio's sampling_time_unit: window length in seconds (default 2). */
  readonly samplingTimeUnitSec: number;
  /** Kamailio's reqs_density_per_unit: requests per window that mark an address (default 30). */
  readonly reqsDensityPerUnit: number;
  /** Kamailio's remove_latency: seconds after its last request an address is forgotten (default 120). */
  readonly removeLatencySec: number;
  /**
   * Bound on tree nodes per tenant (default 100 000: at most 16 per IPv6
   * address, 4 per IPv4 one; about 300 bytes of heap each, 30 MB at the bound).
   */
  readonly maxNodesPerTenant: number;
}

export const DEFAULT_PIKE_SETTINGS: PikeSettings = {
  samplingTimeUnitSec: 2,
  reqsDensityPerUnit: 30,
  removeLatencySec: 120,
  maxNodesPerTenant: 100_000,
};

let globalSettings: PikeSettings = DEFAULT_PIKE_SETTINGS;
let densityDivisor = 1;

/** Divide every tenant's reqs_density_per_unit among `workers` processes (1: as configured). */
export function dividePikeDensity(workers: number): void {
  densityDivisor = Math.max(1, Math.floor(workers));
}

/** The density this process marks an address at. */
function effectiveDensity(s: PikeSettings): number {
  return densityDivisor === 1 ? s.reqsDensityPerUnit : Math.max(1, Math.ceil(s.reqsDensityPerUnit / densityDivisor));
}
const tenantSettings = new Map<string, PikeSettings>();

function validated(s: PikeSettings): PikeSettings {
  for (const [name, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || (v as number) <= 0) throw new Error(`pike: ${name} must be a positive integer`);
  }
  return s;
}

/**
 * Set pike's parameters (Kamailio's modparams) for every tenant, or for
 * one tenant when `tenantId` is given. Unset fields keep their current
 * (global) values. Throws on non-positive values.
 */
export function configurePike(settings: Partial<PikeSettings>, opts: { tenantId?: string } = {}): void {
  if (opts.tenantId === undefined) {
    globalSettings = validated({ ...globalSettings, ...settings });
  } else {
    tenantSettings.set(opts.tenantId, validated({ ...(tenantSettings.get(opts.tenantId) ?? globalSettings), ...settings }));
  }
}

/** The tenant follows the settings for every tenant again. */
export function forgetTenantPikeSettings(tenantId: string): void {
  tenantSettings.delete(tenantId);
}

/** Back to Kamailio's defaults for everyone (tests). */
export function resetPikeConfiguration(): void {
  globalSettings = DEFAULT_PIKE_SETTINGS;
  tenantSettings.clear();
}

export function pikeSettingsFor(tenantId: string): PikeSettings {
  return tenantSettings.get(tenantId) ?? globalSettings;
}

/** pike_check_req results (Kamailio pike_funcs.c). */
export const PIKE_OK = 1;
export const PIKE_FLOODING = -1;
export const PIKE_NEWLY_FLOODING = -2;

/** Counts saturate below Kamailio's unsigned short maximum, as its do. */
const MAX_HITS = 65_534;

interface PikeNode {
  readonly byte: number;
  readonly parent: PikeNode | undefined;
  /** Children, one per next byte seen (a short list: an array costs a fraction of a Map per node). */
  kids: PikeNode[] | undefined;
  /** Window number (clock ms / unit) the `cur` counts belong to. */
  window: number;
  prefixPrev: number;
  prefixCur: number;
  leafPrev: number;
  leafCur: number;
  /** A full address has ended here (Kamailio's NODE_IPLEAF_FLAG). */
  ipLeaf: boolean;
  /** Marked as flooding (Kamailio's NODE_ISRED_FLAG). */
  red: boolean;
  /** When it is forgotten (ms); meaningful while it is in the expiry list. */
  expires: number;
}

export class TenantPike {
  /** Tree roots by first byte. */
  private readonly roots = new Map<number, PikeNode>();
  /**
   * The nodes that expire (ends of branches and full addresses), soonest
   * first: every (re)arming sets now + remove_latency and re-inserts, so
   * insertion order is expiry order.
   */
  private readonly expiry = new Map<PikeNode, true>();
  private nodes = 0;

  constructor(readonly tenantId: string) {}

  /** Nodes in the tree. */
  get size(): number {
    return this.nodes;
  }

  /**
   * Count one request from `address` (an IP literal in canonical form,
   * IPv4 dotted) at `now` (ms) and classify it: PIKE_OK, PIKE_FLOODING or
   * PIKE_NEWLY_FLOODING. An address that is not an IP literal counts as
   * not flooding (Kamailio: 1 when the tree cannot take it).
   */
  check(address: string, now: number): number {
    const bytes = ipAddressBytes(address);
    if (bytes === undefined) return PIKE_OK;
    const s = pikeSettingsFor(this.tenantId);
    this.sweep(now);
    const window = Math.floor(now / (s.samplingTimeUnitSec * 1000));
    const latencyMs = s.removeLatencySec * 1000;
    const quarter = effectiveDensity(s) >> 2;

    // The deepest node of the address already in the tree.
    const root = this.roots.get(bytes[0]!);
    if (root === undefined) {
      if (!this.makeRoom(s)) return PIKE_OK;
      const created = this.newNode(bytes[0]!, undefined, window);
      this.roots.set(created.byte, created);
      created.prefixCur = 1;
      this.arm(created, now, latencyMs);
      return PIKE_OK;
    }
    let node: PikeNode = root;
    let depth = 1;
    for (; depth < bytes.length; depth++) {
      const kid: PikeNode | undefined = kidOf(node, bytes[depth]!);
      if (kid === undefined) break;
      node = kid;
    }
    roll(node, window, effectiveDensity(s));

    if (depth === bytes.length) {
      // The full address: leaf hits decide (Kamailio's is_hot_leaf).
      node.ipLeaf = true;
      if (node.leafCur < MAX_HITS) node.leafCur++;
      this.arm(node, now, latencyMs);
      if (node.red) return PIKE_FLOODING;
      if (isHot(node.leafPrev, node.leafCur, effectiveDensity(s))) {
        node.red = true;
        return PIKE_NEWLY_FLOODING;
      }
      return PIKE_OK;
    }

    // A prefix of it: a prefix hit; a hot prefix grows the next byte.
    if (node.prefixCur < MAX_HITS) node.prefixCur++;
    if (isHot(node.prefixPrev, node.prefixCur, effectiveDensity(s), true)) {
      if (!this.makeRoom(s, node)) return PIKE_OK;
      const kid = this.newNode(bytes[depth]!, node, window);
      kid.prefixCur = Math.max(0, node.prefixCur - 1);
      (node.kids ??= []).push(kid);
      this.arm(kid, now, latencyMs);
      // A prefix with kids expires only when its last kid has (unless a full address ends there).
      if (!node.ipLeaf && node.kids.length === 1) this.expiry.delete(node);
      return PIKE_OK;
    }
    // A prefix at the end of a branch is refreshed only once warm, so lone scans expire.
    if (node.kids === undefined && node.prefixCur >= quarter) this.arm(node, now, latencyMs);
    return PIKE_OK;
  }

  /** Whether the address is currently marked as flooding (for tests and diagnostics). */
  isFlooding(address: string, now: number): boolean {
    const bytes = ipAddressBytes(address);
    if (bytes === undefined) return false;
    this.sweep(now);
    let node = this.roots.get(bytes[0]!);
    for (let depth = 1; node !== undefined && depth < bytes.length; depth++) node = kidOf(node, bytes[depth]!);
    if (node === undefined || !node.ipLeaf) return false;
    const s = pikeSettingsFor(this.tenantId);
    roll(node, Math.floor(now / (s.samplingTimeUnitSec * 1000)), effectiveDensity(s));
    return node.red;
  }

  /**
   * Every node of the tree (`ksr ctl pike list`, like Kamailio's
   * pike.list): full addresses, and the prefixes the tree has grown so far
   * (a prefix grows its next byte only once it is hot), each with its
   * requests in the previous and current windows, whether it is marked as
   * flooding, and when it is forgotten (ms).
   */
  nodesList(now: number): PikeNodeEntry[] {
    this.sweep(now);
    const s = pikeSettingsFor(this.tenantId);
    const window = Math.floor(now / (s.samplingTimeUnitSec * 1000));
    const out: PikeNodeEntry[] = [];
    const walk = (node: PikeNode, path: number[]): void => {
      const bytes = [...path, node.byte];
      roll(node, window, effectiveDensity(s));
      const full = node.ipLeaf && (bytes.length === 4 || bytes.length === 16);
      out.push({
        address: full ? addressText(bytes) : prefixText(bytes),
        kind: full ? "address" : "prefix",
        hitsPrevious: full ? node.leafPrev : node.prefixPrev,
        hitsCurrent: full ? node.leafCur : node.prefixCur,
        flooding: node.red,
        expires: node.expires,
      });
      for (const kid of node.kids ?? []) walk(kid, bytes);
    };
    for (const root of this.roots.values()) walk(root, []);
    return out;
  }

  /** Forget the nodes whose latency has run out (cost: those nodes, plus one look). */
  sweep(now: number): void {
    for (const node of this.expiry.keys()) {
      if (node.expires > now) break;
      this.expire(node, now);
    }
  }

  private newNode(byte: number, parent: PikeNode | undefined, window: number): PikeNode {
    this.nodes++;
    return { byte, parent, kids: undefined, window, prefixPrev: 0, prefixCur: 0, leafPrev: 0, leafCur: 0, ipLeaf: false, red: false, expires: 0 };
  }

  private arm(node: PikeNode, now: number, latencyMs: number): void {
    node.expires = now + latencyMs;
    this.expiry.delete(node);
    this.expiry.set(node, true);
  }

  /**
   * Kamailio's clean routine for one expired node: a full address that is
   * also a prefix of longer ones (an IPv4 address inside IPv6 ones) stops
   * being an address; a node without kids goes, and a parent left without
   * kids starts its own latency.
   */
  private expire(node: PikeNode, now: number): void {
    this.expiry.delete(node);
    if (node.kids !== undefined && node.kids.length > 0) {
      node.ipLeaf = false;
      node.red = false;
      node.leafCur = 0;
      return;
    }
    this.nodes--;
    const parent = node.parent;
    if (parent === undefined) {
      this.roots.delete(node.byte);
      return;
    }
    const siblings = parent.kids!;
    siblings.splice(siblings.indexOf(node), 1);
    if (siblings.length === 0) {
      parent.kids = undefined;
      if (!parent.ipLeaf) this.arm(parent, now, pikeSettingsFor(this.tenantId).removeLatencySec * 1000);
    }
  }

  /**
   * Room for one more node: forget the nodes closest to expiring until
   * there is. `keep` (the prefix about to grow) is not forgotten. False
   * when no room can be made.
   */
  private makeRoom(s: PikeSettings, keep?: PikeNode): boolean {
    while (this.nodes >= s.maxNodesPerTenant) {
      let victim: PikeNode | undefined;
      for (const node of this.expiry.keys()) {
        if (node !== keep) {
          victim = node;
          break;
        }
      }
      if (victim === undefined) return false;
      const before = this.nodes;
      // Its latency ends now: its parent (if left without kids) starts one.
      this.expire(victim, victim.expires);
      if (this.nodes === before && !this.expiry.has(victim)) continue;
    }
    return true;
  }
}

function kidOf(node: PikeNode, byte: number): PikeNode | undefined {
  const kids = node.kids;
  if (kids === undefined) return undefined;
  for (let i = 0; i < kids.length; i++) if (kids[i]!.byte === byte) return kids[i];
  return undefined;
}

/**
 * Apply the window changes since the node was last touched (Kamailio's
 * swap timer): one change shifts current into previous, two or more leave
 * both empty (the windows between were); a marked address that is no
 * longer hot is unmarked.
 */
function roll(node: PikeNode, window: number, density: number): void {
  if (window <= node.window) return;
  if (window === node.window + 1) {
    node.prefixPrev = node.prefixCur;
    node.leafPrev = node.leafCur;
  } else {
    node.prefixPrev = 0;
    node.leafPrev = 0;
  }
  node.prefixCur = 0;
  node.leafCur = 0;
  node.window = window;
  if (node.red && !isHot(node.leafPrev, node.leafCur, density)) node.red = false;
}

/**
 * Kamailio's hot test: the previous or current window, or their mean,
 * reaches the density (a quarter of it for a prefix).
 */
function isHot(prev: number, cur: number, density: number, prefix = false): boolean {
  const limit = prefix ? density >> 2 : density;
  return prev >= limit || cur >= limit || (prev + cur) >> 1 >= limit;
}

/** The bytes of an IP literal: 4 for IPv4, 16 for IPv6; undefined for anything else. */
export function ipAddressBytes(address: string): Uint8Array | undefined {
  const family = isIP(address);
  if (family === 4) return Uint8Array.from(address.split(".").map(Number));
  if (family !== 6) return undefined;
  let text = address;
  const bytes = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:192.0.2.1) is the last four bytes.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let groupsEnd = 16;
  if (dotted !== null) {
    bytes.set(dotted[1]!.split(".").map(Number), 12);
    text = text.slice(0, -dotted[1]!.length);
    if (text.endsWith(":") && !text.endsWith("::")) text = text.slice(0, -1);
    groupsEnd = 12;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (part: string | undefined) => (part === undefined || part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const front = groups(head);
  const back = groups(tail);
  front.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 255;
  });
  const backStart = groupsEnd - 2 * back.length;
  back.forEach((g, i) => {
    bytes[backStart + 2 * i] = g >> 8;
    bytes[backStart + 2 * i + 1] = g & 255;
  });
  return bytes;
}

/** A node of the tree as `ksr ctl pike list` shows it. */
export interface PikeNodeEntry {
  /** A full address, or a prefix ending in "*" (its bytes so far). */
  readonly address: string;
  readonly kind: "address" | "prefix";
  readonly hitsPrevious: number;
  readonly hitsCurrent: number;
  readonly flooding: boolean;
  readonly expires: number;
}

/** The first bytes of an address, then "*": dotted decimal (the tree does not know yet whether it is IPv4 or IPv6). */
function prefixText(bytes: readonly number[]): string {
  return `${bytes.join(".")}.*`;
}

/** An address's bytes as text: dotted IPv4, or IPv6 in eight hexadecimal groups. */
function addressText(bytes: readonly number[]): string {
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

const stores = new TenantScoped((tenantId) => new TenantPike(tenantId));

export function tenantPike(tenantId: string): TenantPike {
  return stores.get(tenantId);
}

/** Forget stale addresses of every tenant (cost: the stale ones plus one per tenant). */
export function sweepPike(now: number): void {
  for (const [, pike] of stores.tenants()) pike.sweep(now);
}
