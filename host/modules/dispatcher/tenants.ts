/**
 * The dispatcher of each tenant: its list file, its settings (Kamailio's
 * dispatcher modparams, Kamailio's defaults unless given) and the sets
 * loaded from the file, whose destination states change at run time.
 * Set up by `ksr run --dispatcher-list` / `--dispatcher-param` and by the
 * `dispatcher:` block of a tenant in the tenants file, in every process
 * that runs the tenant's script.
 */
import { DispatcherListError, type DispatcherList } from "./list.js";
import { loadDispatcherSource } from "./db.js";
import { parsePingReplyCodes } from "./ping-replies.js";
import { parseUri } from "../../sip/uri.js";
import { CallLoad } from "./call-load.js";

/** Kamailio 5.6 dispatcher modparams understood here, with their defaults. */
export interface DispatcherSettings {
  /** Bit 1: hash only the URI user (algorithms 1-3); bit 2: failover (keep the other destinations for ds_next_dst). Default 0. */
  readonly flags: number;
  /** 1 (default): ds_select_dst overwrites a $du already set; 0: it fails. */
  readonly force_dst: number;
  /** 1: the last destination of a set is used only when all others are down. Default 0. */
  readonly use_default: number;
  /** The pv format algorithm 7 hashes (e.g. "$fU"). Default none. */
  readonly hash_pvar: string;
  /** 1: ds_mark_dst() without a state marks inactive and probing (DS_PROBE_ALL). Default 0. */
  readonly ds_probing_mode: number;
  /** Failed requests ("t" marks) before a destination goes inactive. Default 1. */
  readonly ds_probing_threshold: number;
  /** Successful replies before an inactive destination is active again. Default 1. */
  readonly ds_inactive_threshold: number;
  /** The script function called with "dispatcher:dst-down" / "dispatcher:dst-up" when a destination goes down or up. Default none. */
  readonly event_callback: string;
  /** Seconds after a ds_reload during which another is refused, so that a script cannot reread the file per message. Default 5. */
  readonly reload_delta: number;
  /** Seconds between probing rounds (host/modules/dispatcher/probing.ts); 0 (default): no probing. */
  readonly ds_ping_interval: number;
  /** Method of a ping. Default "OPTIONS". */
  readonly ds_ping_method: string;
  /** From URI of a ping unless the destination's ping_from attribute gives one. Default "sip:dispatcher@localhost". */
  readonly ds_ping_from: string;
  /** Replies besides 2xx that answer a ping: "code=404;class=3". Default none. */
  readonly ds_ping_reply_codes: string;
  /** Above 0: track calls for algorithm 10 (Kamailio sizes its table 2^ds_hash_size). Default 0: no call load. */
  readonly ds_hash_size: number;
  /** Seconds a call counts against its destination without a BYE (ds_load_update). Default 7200. */
  readonly ds_hash_expire: number;
  /** Seconds an unanswered call (no 2xx seen by ds_load_update) counts. Default 7200. */
  readonly ds_hash_initexpire: number;
  /** Seconds between sweeps of expired calls. Default 30. */
  readonly ds_hash_check_interval: number;
}

export const DEFAULT_DISPATCHER_SETTINGS: DispatcherSettings = {
  flags: 0,
  force_dst: 1,
  use_default: 0,
  hash_pvar: "",
  ds_probing_mode: 0,
  ds_probing_threshold: 1,
  ds_inactive_threshold: 1,
  reload_delta: 5,
  event_callback: "",
  ds_ping_interval: 0,
  ds_ping_method: "OPTIONS",
  ds_ping_from: "sip:dispatcher@localhost",
  ds_ping_reply_codes: "",
  ds_hash_size: 0,
  ds_hash_expire: 7200,
  ds_hash_initexpire: 7200,
  ds_hash_check_interval: 30,
};

const INT_SETTINGS = new Set([
  "flags",
  "force_dst",
  "use_default",
  "ds_probing_mode",
  "ds_probing_threshold",
  "ds_inactive_threshold",
  "reload_delta",
  "ds_ping_interval",
  "ds_hash_size",
  "ds_hash_expire",
  "ds_hash_initexpire",
  "ds_hash_check_interval",
]);
/** Names a `--dispatcher-param` or a tenants file's `dispatcher.params` may set. */
export const DISPATCHER_SETTING_NAMES: readonly string[] = Object.keys(DEFAULT_DISPATCHER_SETTINGS);

/**
 * Settings from name → value pairs (strings from the command line, numbers
 * or strings from YAML); throws an Error naming the bad one.
 */
export function dispatcherSettingsOf(params: Readonly<Record<string, string | number>>): DispatcherSettings {
  const out: Record<string, string | number> = { ...DEFAULT_DISPATCHER_SETTINGS };
  for (const [name, value] of Object.entries(params)) {
    if (!(name in DEFAULT_DISPATCHER_SETTINGS)) throw new Error(`unknown dispatcher parameter "${name}" (known: ${DISPATCHER_SETTING_NAMES.join(", ")})`);
    if (INT_SETTINGS.has(name)) {
      const text = String(value).trim();
      if (!/^\d{1,9}$/.test(text)) throw new Error(`dispatcher parameter ${name}: "${value}" is not a non-negative whole number`);
      out[name] = Number(text);
    } else out[name] = String(value);
  }
  if (Number(out.ds_probing_mode) > 3) throw new Error(`dispatcher parameter ds_probing_mode: ${out.ds_probing_mode} is not 0, 1, 2 or 3`);
  // Checked here so that a bad value stops the start, not the first probing round.
  parsePingReplyCodes(String(out.ds_ping_reply_codes));
  if (!/^[A-Za-z]+$/.test(String(out.ds_ping_method)) || /^(INVITE|ACK)$/i.test(String(out.ds_ping_method))) {
    throw new Error(`dispatcher parameter ds_ping_method: "${out.ds_ping_method}" is not a non-INVITE method name`);
  }
  if (parseUri(String(out.ds_ping_from)) === null) throw new Error(`dispatcher parameter ds_ping_from: "${out.ds_ping_from}" is not a URI`);
  return out as unknown as DispatcherSettings;
}

export interface TenantDispatcher {
  readonly settings: DispatcherSettings;
  /** The list file (absolute), or `sqlite:FILE` for the tenant's rows of a database; read again by ds_reload. */
  readonly file: string;
  readonly tenantId: string;
  list: DispatcherList;
  /** Wall clock (ms) of the last ds_reload, 0 before any. */
  lastReloadMs: number;
  /** Calls dispatched by load (algorithm 10), when ds_hash_size is above 0; kept across reloads. */
  readonly callLoad: CallLoad | undefined;
}

const byTenant = new Map<string, TenantDispatcher>();

/**
 * Load the tenant's list and keep it with its settings (replacing an
 * earlier one). Throws DispatcherListError (file:line: reason) when the
 * list is bad; the tenant's previous list, if any, then stays.
 */
export function configureDispatcher(tenantId: string, file: string, settings: DispatcherSettings = DEFAULT_DISPATCHER_SETTINGS): TenantDispatcher {
  const callLoad =
    settings.ds_hash_size > 0
      ? new CallLoad({ expireS: settings.ds_hash_expire, initExpireS: settings.ds_hash_initexpire, checkIntervalS: settings.ds_hash_check_interval })
      : undefined;
  const entry: TenantDispatcher = { settings, file, tenantId, list: loadDispatcherSource(file, tenantId), lastReloadMs: 0, callLoad };
  byTenant.set(tenantId, entry);
  return entry;
}

/** The tenant's dispatcher, undefined when it has none configured. */
export function dispatcherOf(tenantId: string): TenantDispatcher | undefined {
  return byTenant.get(tenantId);
}

/** Forget the tenant's dispatcher (tests, tenant removal). */
export function removeDispatcher(tenantId: string): void {
  byTenant.delete(tenantId);
}

/**
 * ds_reload: read the file again, at most once per reload_delta seconds
 * (Kamailio's "ongoing reload"). Kamailio keeps the old list when the new
 * one does not load; so does this. Destination states start again from the
 * file's flags, as in Kamailio.
 */
export function reloadDispatcher(entry: TenantDispatcher, nowMs: number): DispatcherListError | "too soon" | undefined {
  if (entry.lastReloadMs !== 0 && nowMs - entry.lastReloadMs < entry.settings.reload_delta * 1000) return "too soon";
  entry.lastReloadMs = nowMs;
  try {
    entry.list = loadDispatcherSource(entry.file, entry.tenantId);
    return undefined;
  } catch (e) {
    if (e instanceof DispatcherListError) return e;
    throw e;
  }
}

/** A tenant's dispatcher as configured: list file (absolute) or `sqlite:FILE`, and parameters by Kamailio name. */
export interface TenantDispatcherConfig {
  readonly list: string;
  readonly params: Readonly<Record<string, string | number>>;
}

/** Why the configuration cannot be used (bad parameter, unreadable or bad list: file:line), or undefined. */
export function dispatcherProblem(config: TenantDispatcherConfig, tenantId: string): string | undefined {
  try {
    dispatcherSettingsOf(config.params);
    loadDispatcherSource(config.list, tenantId);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Set up the tenant's dispatcher from its configuration (throws as configureDispatcher). */
export function configureTenantDispatcher(tenantId: string, config: TenantDispatcherConfig): void {
  configureDispatcher(tenantId, config.list, dispatcherSettingsOf(config.params));
}

/** Runs a tenant's event callback (the routing layer provides it): callback name, event name, destination URI. */
export type DispatcherEventSink = (callback: string, event: string, uri: string) => void;

const sinks = new Map<string, DispatcherEventSink>();

/** Where the tenant's dispatcher events go (host/core/tenant-routing.ts sets it per tenant). */
export function setDispatcherEventSink(tenantId: string, sink: DispatcherEventSink): void {
  sinks.set(tenantId, sink);
}

/**
 * A destination of the tenant went down or up: call the event_callback
 * function, if one is set and a routing layer runs the tenant. Returns
 * whether it was handed on.
 */
export function notifyDispatcherEvent(tenantId: string, entry: TenantDispatcher, change: "down" | "up", uri: string): boolean {
  const callback = entry.settings.event_callback;
  const sink = sinks.get(tenantId);
  if (callback === "" || sink === undefined) return false;
  sink(callback, `dispatcher:dst-${change}`, uri);
  return true;
}
