/**
 * `ksr ctl dispatcher list|set-state|reload` where a tenant's dispatcher
 * lives (every process that runs its script), as kamcmd's dispatcher.list,
 * dispatcher.set_state and dispatcher.reload do in Kamailio.
 */
import { DS_DISABLED, DS_INACTIVE, DS_PROBING, DS_STATES_ALL, DS_TRYING, isSkipped, rebuildRelativeWeights, type Destination } from "../modules/dispatcher/list.js";
import { dispatcherOf, reloadDispatcher, type TenantDispatcher } from "../modules/dispatcher/tenants.js";
import { OpsError } from "./inspect.js";

/** Kamailio's two-letter FLAGS of dispatcher.list: I, D, T or A (checked in that order), then P when probing else X. */
export function stateLetters(flags: number): string {
  const first = (flags & DS_INACTIVE) !== 0 ? "I" : (flags & DS_DISABLED) !== 0 ? "D" : (flags & DS_TRYING) !== 0 ? "T" : "A";
  return first + ((flags & DS_PROBING) !== 0 ? "P" : "X");
}

export interface DestinationView {
  readonly uri: string;
  readonly flags: string;
  readonly state: "active" | "inactive" | "trying" | "disabled";
  readonly probing: boolean;
  readonly priority: number;
  readonly attrs: { body: string; duid?: string; weight: number; rweight: number; socket?: string; maxload: number };
}

export interface DispatcherView {
  readonly tenant: string;
  readonly file: string;
  readonly sets: { id: number; destinations: DestinationView[] }[];
}

function destinationView(d: Destination): DestinationView {
  const letters = stateLetters(d.flags);
  const state = ({ A: "active", I: "inactive", T: "trying", D: "disabled" } as const)[letters[0] as "A" | "I" | "T" | "D"];
  return {
    uri: d.uri,
    flags: letters,
    state,
    probing: (d.flags & DS_PROBING) !== 0,
    priority: d.priority,
    attrs: {
      body: d.attrs.body,
      ...(d.attrs.duid !== undefined ? { duid: d.attrs.duid } : {}),
      weight: d.attrs.weight,
      rweight: d.attrs.rweight,
      ...(d.attrs.socket !== undefined ? { socket: d.attrs.socket } : {}),
      maxload: d.attrs.maxload,
    },
  };
}

/** The tenant's dispatcher, or an OpsError saying it has none. */
export function tenantDispatcher(tenant: string): TenantDispatcher {
  const d = dispatcherOf(tenant);
  if (d === undefined) throw new OpsError(`tenant ${tenant} has no dispatcher list (ksr run --dispatcher-list, or dispatcher: in the tenants file)`);
  return d;
}

/** dispatcher.list of the tenants that have a dispatcher among those asked about (a named tenant without one is an error). */
export function dispatcherList(tenants: readonly string[], named: boolean): DispatcherView[] {
  const out: DispatcherView[] = [];
  for (const tenant of tenants) {
    const d = named ? tenantDispatcher(tenant) : dispatcherOf(tenant);
    if (d === undefined) continue;
    out.push({
      tenant,
      file: d.file,
      sets: [...d.list.sets.values()].map((s) => ({ id: s.id, destinations: s.dests.map(destinationView) })),
    });
  }
  return out;
}

/**
 * The STATE of dispatcher.set_state as Kamailio's RPC reads it: the first
 * character a/1 active, i/0 inactive, d/2 disabled, t/3 trying (either
 * case), then an optional p for probing (ignored after d, as there); -1
 * for anything else.
 */
export function parseRpcState(text: string): number {
  const m = /^([01aidt23])(p?)$/i.exec(text);
  if (m === null) return -1;
  const first = m[1]!.toLowerCase();
  const probing = m[2] !== "" ? DS_PROBING : 0;
  if (first === "i" || first === "0") return DS_INACTIVE | probing;
  if (first === "a" || first === "1") return probing;
  if (first === "d" || first === "2") return DS_DISABLED;
  return DS_TRYING | probing;
}

/**
 * dispatcher.set_state STATE SET URI: Kamailio's ds_reinit_state, which
 * sets the state bits as given (no failure/success thresholds, no
 * dst-down/dst-up event) and rebuilds the relative weights of the set.
 */
export function dispatcherSetState(tenant: string, stateText: string, set: number, uri: string): { tenant: string; set: number; uri: string; flags: string } {
  const d = tenantDispatcher(tenant);
  const state = parseRpcState(stateText);
  if (state < 0) throw new OpsError(`"${stateText}" is not a destination state (a active, i inactive, d disabled, t trying; ap, ip, tp: and probing)`);
  const group = d.list.sets.get(set);
  if (group === undefined) throw new OpsError(`tenant ${tenant}: no dispatcher set ${set} (sets: ${[...d.list.sets.keys()].join(", ") || "none"})`);
  // "all": every destination of the set (Kamailio's ds_reinit_state_all).
  const want = uri.toLowerCase();
  const dests = uri === "all" ? group.dests : group.dests.filter((x) => x.uri.toLowerCase() === want).slice(0, 1);
  if (dests.length === 0) throw new OpsError(`tenant ${tenant}: dispatcher set ${set} has no destination ${uri}`);
  let changed = false;
  for (const dest of dests) {
    const wasSkipped = isSkipped(dest.flags);
    dest.flags = (dest.flags & ~DS_STATES_ALL) | state;
    dest.messageCount = 0;
    changed ||= dest.attrs.rweight > 0 && wasSkipped !== isSkipped(dest.flags);
  }
  if (changed) rebuildRelativeWeights(group);
  return { tenant, set, uri: uri === "all" ? "all" : dests[0]!.uri, flags: stateLetters(dests[0]!.flags) };
}

/** dispatcher.reload: the list file read again; a bad file is an error naming file:line and the old list stays. */
export function dispatcherReload(tenant: string, nowMs: number): { tenant: string; file: string; sets: number; destinations: number } {
  const d = tenantDispatcher(tenant);
  const failure = reloadDispatcher(d, nowMs);
  if (failure === "too soon") throw new OpsError(`tenant ${tenant}: dispatcher reloaded less than reload_delta (${d.settings.reload_delta} s) ago; try again later`);
  if (failure !== undefined) throw new OpsError(`tenant ${tenant}: dispatcher list not reloaded, the old one stays: ${failure.message}`);
  return { tenant, file: d.file, sets: d.list.sets.size, destinations: d.list.size };
}
