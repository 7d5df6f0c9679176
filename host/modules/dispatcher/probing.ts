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
import { notifyDispatcherEvent, type TenantDispatcher } from "./tenants.js";

/** ds_probing_mode values (Kamailio dispatch.h DS_PROBE_*). */
export const PROBE_FLAGGED = 0;
export const PROBE_ALL = 1;
export const PROBE_INACTIVE = 2;
export const PROBE_ONLY_FLAGGED = 3;

/** What probing needs besides the dispatcher settings (Kamailio modparams of the same names). */
export interface ProbeSettings {
  /** Request method of a ping. Default "OPTIONS". */
  readonly ds_ping_method: string;
  /** From URI of a ping unless the destination's ping_from attribute gives one. Default "sip:dispatcher@localhost". */
  readonly ds_ping_from: string;
  /** Replies besides 2xx that count as an answer, parsed by parsePingReplyCodes. */
  readonly acceptedReplies: AcceptedReplies;
}

/** Reply codes (100..699) and classes (1..6) accepted as an answer to a ping. */
export interface AcceptedReplies {
  readonly codes: readonly number[];
  readonly classes: readonly number[];
}

export const DEFAULT_PROBE_SETTINGS: ProbeSettings = {
  ds_ping_method: "OPTIONS",
  ds_ping_from: "sip:dispatcher@localhost",
  acceptedReplies: { codes: [], classes: [] },
};

/**
 * ds_ping_reply_codes: "code=404;class=3;code=488" (names case-insensitive).
 * Kamailio drops a code outside 100..699 or a class outside 1..6 without a
 * word; here that, an unknown name or a value that is not a whole number is
 * an Error naming it, so that a typo does not silently mark a peer down.
 */
export function parsePingReplyCodes(text: string): AcceptedReplies {
  const codes: number[] = [];
  const classes: number[] = [];
  for (const raw of text.split(";")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? "" : part.slice(eq + 1).trim();
    if (!/^\d{1,3}$/.test(value)) throw new Error(`ds_ping_reply_codes: "${part}" has no whole-number value`);
    const n = Number(value);
    if (name === "code") {
      if (n < 100 || n > 699) throw new Error(`ds_ping_reply_codes: code ${n} is not in 100..699`);
      codes.push(n);
    } else if (name === "class") {
      if (n < 1 || n > 6) throw new Error(`ds_ping_reply_codes: class ${n} is not in 1..6`);
      classes.push(n);
    } else throw new Error(`ds_ping_reply_codes: unknown name "${name}" (code or class)`);
  }
  return { codes, classes };
}

/** A final status answers a ping when it is 2xx or accepted by ds_ping_reply_codes (ds_ping_check_rplcode). */
export function isPingAnswered(status: number, accepted: AcceptedReplies): boolean {
  if (status >= 200 && status <= 299) return true;
  return accepted.codes.includes(status) || accepted.classes.includes(Math.floor(status / 100));
}

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
export function applyProbeResult(d: TenantDispatcher, probe: ProbeSettings, group: number, uri: string, status: number): "down" | "up" | undefined {
  const dest = d.list.sets.get(group)?.dests.find((x) => x.uri.toLowerCase() === uri.toLowerCase());
  if (dest === undefined || (dest.flags & DS_DISABLED) !== 0) return undefined;
  const mode = d.settings.ds_probing_mode;
  if (mode === PROBE_ONLY_FLAGGED && (dest.flags & DS_PROBING) === 0) return undefined;
  let state: number;
  if (isPingAnswered(status, probe.acceptedReplies)) {
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
  probe: ProbeSettings,
  send: ProbeSender,
  log: (line: string) => void,
): number {
  let sent = 0;
  for (const set of d.list.sets.values()) {
    for (const dest of set.dests) {
      if (!isProbed(dest.flags, d.settings.ds_probing_mode)) continue;
      const from = dest.attrs.pingFrom !== undefined && dest.attrs.pingFrom !== "" ? dest.attrs.pingFrom : probe.ds_ping_from;
      let answered = false;
      send({ group: set.id, dest, method: probe.ds_ping_method, from }, (status) => {
        // A sender calling back twice must not count one ping as two.
        if (answered) return;
        answered = true;
        const change = applyProbeResult(d, probe, set.id, dest.uri, status);
        if (change === undefined) return;
        log(`dispatcher: destination ${dest.uri} of set ${set.id} is ${change} (ping answered ${status})\n`);
        notifyDispatcherEvent(tenantId, d, change, dest.uri);
      });
      sent++;
    }
  }
  return sent;
}
