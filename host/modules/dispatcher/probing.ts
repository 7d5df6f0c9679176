/**
 * The dispatcher's health probing as Kamailio 5.6 decides it: which
 * destinations a probing round pings (ds_probing_mode), which replies count
 * as an answer (2xx and ds_ping_reply_codes), and the state a reply or a
 * timeout gives the destination (through updateState, so that
 * ds_probing_threshold / ds_inactive_threshold apply as for ds_mark_dst).
 *
 * Sending is not done here: a round hands each ping to a ProbeSender (the
 * request method, the destination URI as R-URI and To, the From URI) and
 * applies the final status it gets back (408 for a timeout, as a client
 * transaction's Timer F gives, RFC 3261 §17.1.2.2).
 */
import { DS_DISABLED, DS_INACTIVE, DS_PROBING, DS_TRYING, type Destination } from "./list.js";
import { updateState } from "./module.js";
import { notifyDispatcherEvent, type DispatcherSettings, type TenantDispatcher } from "./tenants.js";
import { isPingAnswered, parsePingReplyCodes, type AcceptedReplies } from "./ping-replies.js";

/** ds_ping_reply_codes parsed once per settings (dispatcherSettingsOf has checked it). */
const acceptedBySettings = new WeakMap<DispatcherSettings, AcceptedReplies>();
function acceptedReplies(settings: DispatcherSettings): AcceptedReplies {
  let accepted = acceptedBySettings.get(settings);
  if (accepted === undefined) acceptedBySettings.set(settings, (accepted = parsePingReplyCodes(settings.ds_ping_reply_codes)));
  return accepted;
}

/** ds_probing_mode values (Kamailio dispatch.h DS_PROBE_*). */
export const PROBE_FLAGGED = 0;
export const PROBE_ALL = 1;
export const PROBE_INACTIVE = 2;
export const PROBE_ONLY_FLAGGED = 3;

/**
 * Whether a round pings a destination with these state bits
 * (ds_ping_result_helper; disabled ones are never pinged): mode 1 all;
 * modes 0 and 3 those with the probing bit; mode 2 those both probing and
 * inactive.
 */
export function isProbed(flags: number, mode: number): boolean {
  if ((flags & DS_DISABLED) !== 0) return false;
  if (mode === PROBE_ALL) return true;
  if (mode === PROBE_INACTIVE) return (flags & DS_PROBING) !== 0 && (flags & DS_INACTIVE) !== 0;
  return (flags & DS_PROBING) !== 0;
}

/**
 * Apply the final status of a ping of `uri` in set `group`
 * (ds_options_callback). An answer makes the destination active (keeping
 * the probing bit in mode 1, and in mode 3 when it has it); anything else
 * is a "trying" mark (with the probing bit unless mode 0), which
 * ds_probing_threshold turns into inactive. A destination disabled in the
 * meantime, or (mode 3) no longer probing, is left alone. Returns the
 * change, for the dst-down/dst-up events.
 */
export function applyProbeResult(d: TenantDispatcher, group: number, uri: string, status: number): "down" | "up" | undefined {
  const dest = d.list.sets.get(group)?.dests.find((x) => x.uri.toLowerCase() === uri.toLowerCase());
  if (dest === undefined || (dest.flags & DS_DISABLED) !== 0) return undefined;
  const mode = d.settings.ds_probing_mode;
  if (mode === PROBE_ONLY_FLAGGED && (dest.flags & DS_PROBING) === 0) return undefined;
  let state: number;
  if (isPingAnswered(status, acceptedReplies(d.settings))) {
    state = mode === PROBE_ALL || (mode === PROBE_ONLY_FLAGGED && (dest.flags & DS_PROBING) !== 0) ? DS_PROBING : 0;
  } else {
    state = mode !== PROBE_FLAGGED ? DS_TRYING | DS_PROBING : DS_TRYING;
  }
  const res = updateState(d, group, dest.uri, state);
  return res.found ? res.change : undefined;
}

/** One ping to send: the destination URI is R-URI and To. */
export interface Ping {
  readonly group: number;
  readonly dest: Destination;
  readonly method: string;
  readonly from: string;
}

/** Sends a ping and calls back once with its final status (408 on timeout, 503 when it could not be sent). */
export type ProbeSender = (ping: Ping, done: (status: number) => void) => void;

/**
 * One probing round over every set of the tenant's list (ds_check_timer →
 * ds_ping_set): each destination isProbed picks is handed to `send`; its
 * result is applied when it comes, and a state change is logged through
 * `log` and sent to the tenant's event_callback. A reply for a destination
 * of a list replaced by ds_reload meanwhile finds it by URI in the new
 * list, as Kamailio's callback does. Returns the number of pings sent.
 */
export function probeRound(
  tenantId: string,
  d: TenantDispatcher,
  send: ProbeSender,
  log: (line: string) => void,
): number {
  let sent = 0;
  for (const set of d.list.sets.values()) {
    for (const dest of set.dests) {
      if (!isProbed(dest.flags, d.settings.ds_probing_mode)) continue;
      const from = dest.attrs.pingFrom !== undefined && dest.attrs.pingFrom !== "" ? dest.attrs.pingFrom : d.settings.ds_ping_from;
      let answered = false;
      send({ group: set.id, dest, method: d.settings.ds_ping_method, from }, (status) => {
        // A sender calling back twice must not count one ping as two.
        if (answered) return;
        answered = true;
        const change = applyProbeResult(d, set.id, dest.uri, status);
        if (change === undefined) return;
        log(`dispatcher: destination ${dest.uri} of set ${set.id} is ${change} (ping answered ${status})\n`);
        notifyDispatcherEvent(tenantId, d, change, dest.uri);
      });
      sent++;
    }
  }
  return sent;
}
