/**
 * Call load tracking for dispatcher algorithm 10, as Kamailio's dispatcher
 * keeps it (no dialog module involved): each INVITE dispatched by load is
 * recorded by its Call-ID with the set and the `duid` of the destination
 * it went to, and that destination's load counts it until the script
 * calls ds_load_update() on the BYE or CANCEL, or ds_load_unset() when
 * the INVITE fails. A record whose call was never confirmed (a 2xx seen by
 * ds_load_update) goes after `ds_hash_initexpire` seconds, any record
 * after `ds_hash_expire`; expired records are swept every
 * `ds_hash_check_interval` seconds, here when the table is next used.
 *
 * Loads are kept by set and duid, not on the list's destinations, so a
 * reload of the list keeps them for the duids it still has (Kamailio
 * finds them by duid too).
 */

interface CallRecord {
  readonly set: number;
  readonly duid: string;
  confirmed: boolean;
  /** Epoch ms after which the record goes in any case (ds_hash_expire). */
  readonly expiresAt: number;
  /** Epoch ms after which an unconfirmed record goes (ds_hash_initexpire). */
  readonly initExpiresAt: number;
}

export interface CallLoadSettings {
  /** Seconds a record lives (ds_hash_expire). */
  readonly expireS: number;
  /** Seconds an unconfirmed record lives (ds_hash_initexpire). */
  readonly initExpireS: number;
  /** Seconds between sweeps of expired records (ds_hash_check_interval). */
  readonly checkIntervalS: number;
}

/**
 * Calls tracked per tenant at most: Kamailio's table has no bound, but here
 * one tenant's records live in a process others share. Beyond it a new
 * call is not tracked (ds_load_add fails, as when Kamailio cannot add a
 * cell: the selection falls back to classic dispatching).
 */
export const MAX_TRACKED_CALLS = 262_144;

export type AddResult = "added" | "duplicate" | "full";

export class CallLoad {
  private readonly calls = new Map<string, CallRecord>();
  private readonly loads = new Map<string, number>();
  private lastSweepMs = 0;

  constructor(private readonly settings: CallLoadSettings) {}

  get trackedCalls(): number {
    return this.calls.size;
  }

  /** Active calls counted against a destination (Kamailio's dload). */
  loadOf(set: number, duid: string | undefined, nowMs: number): number {
    if (duid === undefined) return 0;
    this.sweepIfDue(nowMs);
    return this.loads.get(loadKey(set, duid)) ?? 0;
  }

  /** ds_load_add: count the call against the destination. */
  add(callId: string, set: number, duid: string, nowMs: number): AddResult {
    this.sweepIfDue(nowMs);
    if (this.calls.has(callId)) return "duplicate";
    if (this.calls.size >= MAX_TRACKED_CALLS) return "full";
    this.calls.set(callId, {
      set,
      duid,
      confirmed: false,
      expiresAt: nowMs + this.settings.expireS * 1000,
      initExpiresAt: nowMs + this.settings.initExpireS * 1000,
    });
    this.change(set, duid, +1);
    return "added";
  }

  /** ds_load_replace: the call moves to another destination of its set (failover); false when it is not tracked. */
  replace(callId: string, duid: string, nowMs: number): boolean {
    const record = this.calls.get(callId);
    if (record === undefined) return false;
    this.remove(callId);
    this.add(callId, record.set, duid, nowMs);
    return true;
  }

  /** The set the call was dispatched in, or undefined when it is not tracked. */
  setOf(callId: string): number | undefined {
    return this.calls.get(callId)?.set;
  }

  /** ds_load_remove: the call no longer counts; false when it is not tracked. */
  remove(callId: string): boolean {
    const record = this.calls.get(callId);
    if (record === undefined) return false;
    this.calls.delete(callId);
    this.change(record.set, record.duid, -1);
    return true;
  }

  /** ds_load_state(CONFIRMED): the call was answered; false when it is not tracked. */
  confirm(callId: string): boolean {
    const record = this.calls.get(callId);
    if (record === undefined) return false;
    record.confirmed = true;
    return true;
  }

  private change(set: number, duid: string, delta: number): void {
    const key = loadKey(set, duid);
    const next = (this.loads.get(key) ?? 0) + delta;
    if (next > 0) this.loads.set(key, next);
    else this.loads.delete(key);
  }

  private sweepIfDue(nowMs: number): void {
    if (nowMs - this.lastSweepMs < this.settings.checkIntervalS * 1000) return;
    this.lastSweepMs = nowMs;
    for (const [callId, record] of this.calls) {
      if (record.expiresAt < nowMs || (!record.confirmed && record.initExpiresAt < nowMs)) this.remove(callId);
    }
  }
}

/** duids compare case-insensitively (strncasecmp in Kamailio). */
function loadKey(set: number, duid: string): string {
  return `${set} ${duid.toLowerCase()}`;
}
