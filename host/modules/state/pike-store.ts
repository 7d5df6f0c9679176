/**
 * Request-rate state behind KSR.pike (Kamailio's pike module), one
 * namespace per tenant.
 *
 * Kamailio's algorithm, as its documentation and source describe it: time
 * is cut into windows of `sampling_time_unit` seconds. Each source address
 * counts its requests in the current window and remembers the count of the
 * previous one. An address is "hot" when the previous count, the current
 * count, or their mean reaches `reqs_density_per_unit`; the request that
 * makes it hot marks it as flooding (pike_check_req → -2), later requests
 * while it is marked get -1. At each window change an address that is no
 * longer hot is unmarked. An address not seen for `remove_latency` seconds
 * is forgotten.
 *
 * Difference from Kamailio: Kamailio keeps the addresses in a tree of
 * address prefixes (one byte per level) and only starts counting a full
 * address once its prefix nodes have become warm (a quarter of the
 * density), which saves memory under scans of many addresses but lets the
 * first few requests of a new address go uncounted. Here every address is
 * counted from its first request, with the same windows and thresholds, so
 * a flood is detected a few requests earlier. Window changes are computed
 * lazily from the clock instead of by a timer; windows are aligned to
 * multiples of the unit on the host clock.
 *
 * Memory: at most `maxAddressesPerTenant` addresses per tenant. When full,
 * forgotten addresses are swept, and if still full the least recently seen
 * address makes room (it would be the first to expire anyway).
 */
import { TenantScoped } from "./tenant-scope.js";

export interface PikeSettings {
  /** Kamailio's sampling_time_unit: window length in seconds (default 2). */
  readonly samplingTimeUnitSec: number;
  /** Kamailio's reqs_density_per_unit: requests per window that mark an address (default 30). */
  readonly reqsDensityPerUnit: number;
  /** Kamailio's remove_latency: seconds after its last request an address is forgotten (default 120). */
  readonly removeLatencySec: number;
  /** Bound on addresses tracked per tenant (default 100 000). */
  readonly maxAddressesPerTenant: number;
}

export const DEFAULT_PIKE_SETTINGS: PikeSettings = {
  samplingTimeUnitSec: 2,
  reqsDensityPerUnit: 30,
  removeLatencySec: 120,
  maxAddressesPerTenant: 100_000,
};

let globalSettings: PikeSettings = DEFAULT_PIKE_SETTINGS;

/**
 * Workers of a pool (`ksr run --workers N`) each count the requests their
 * Call-IDs bring them: a flood from one address spreads over the N workers,
 * each seeing about 1/N of it, so each marks the address at
 * ceil(reqs_density_per_unit / N). Exact in expectation; below ~10 per
 * window and worker the split is noisy.
 */
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

interface AddressCounters {
  /** Window number (clock ms / unit) that `current` counts. */
  window: number;
  previous: number;
  current: number;
  flooding: boolean;
  lastSeen: number;
}

export class TenantPike {
  /** Map order is least recently seen first: an address is re-inserted on each request. */
  private readonly addresses = new Map<string, AddressCounters>();

  constructor(readonly tenantId: string) {}

  get size(): number {
    return this.addresses.size;
  }

  /** Count one request from `address` at `now` (ms) and classify it. */
  check(address: string, now: number): number {
    const s = pikeSettingsFor(this.tenantId);
    const unitMs = s.samplingTimeUnitSec * 1000;
    const window = Math.floor(now / unitMs);
    let a = this.addresses.get(address);
    if (a !== undefined && now - a.lastSeen >= s.removeLatencySec * 1000) {
      this.addresses.delete(address);
      a = undefined;
    }
    if (a === undefined) {
      this.makeRoom(now, s);
      a = { window, previous: 0, current: 0, flooding: false, lastSeen: now };
    } else {
      this.addresses.delete(address);
      this.rollWindows(a, window, effectiveDensity(s));
    }
    this.addresses.set(address, a);
    a.lastSeen = now;
    a.current++;
    if (a.flooding) return PIKE_FLOODING;
    if (isHot(a, effectiveDensity(s))) {
      a.flooding = true;
      return PIKE_NEWLY_FLOODING;
    }
    return PIKE_OK;
  }

  /** Whether the address is currently marked as flooding (for tests and diagnostics). */
  isFlooding(address: string, now: number): boolean {
    const a = this.addresses.get(address);
    if (a === undefined) return false;
    const s = pikeSettingsFor(this.tenantId);
    if (now - a.lastSeen >= s.removeLatencySec * 1000) return false;
    this.rollWindows(a, Math.floor(now / (s.samplingTimeUnitSec * 1000)), effectiveDensity(s));
    return a.flooding;
  }

  /** Forget the addresses not seen for remove_latency. */
  sweep(now: number): void {
    const latencyMs = pikeSettingsFor(this.tenantId).removeLatencySec * 1000;
    // Least recently seen first: stop at the first address still fresh.
    for (const [address, a] of this.addresses) {
      if (now - a.lastSeen < latencyMs) break;
      this.addresses.delete(address);
    }
  }

  /**
   * Apply the window changes since the address was last seen. Each change
   * shifts current into previous and unmarks the address if it is no
   * longer hot (Kamailio's swap timer).
   */
  private rollWindows(a: AddressCounters, window: number, density: number): void {
    if (window <= a.window) return;
    if (window === a.window + 1) {
      a.previous = a.current;
    } else {
      // Two or more changes: the windows in between were empty.
      a.previous = 0;
    }
    a.current = 0;
    a.window = window;
    if (a.flooding && !isHot(a, density)) a.flooding = false;
  }

  private makeRoom(now: number, s: PikeSettings): void {
    if (this.addresses.size < s.maxAddressesPerTenant) return;
    this.sweep(now);
    while (this.addresses.size >= s.maxAddressesPerTenant) {
      const oldest = this.addresses.keys().next();
      if (oldest.done === true) break;
      this.addresses.delete(oldest.value);
    }
  }
}

/** Kamailio's hot-leaf test: previous, current or their mean reaches the density. */
function isHot(a: AddressCounters, density: number): boolean {
  return a.previous >= density || a.current >= density || (a.previous + a.current) >> 1 >= density;
}

const stores = new TenantScoped((tenantId) => new TenantPike(tenantId));

export function tenantPike(tenantId: string): TenantPike {
  return stores.get(tenantId);
}

/** Forget stale addresses of every tenant (cost: the stale ones plus one per tenant). */
export function sweepPike(now: number): void {
  for (const [, pike] of stores.tenants()) pike.sweep(now);
}
