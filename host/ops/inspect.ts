/**
 * What `ksr ctl` looks at and changes inside a process where tenants'
 * scripts run (the single server, the in-process tenants server, or one
 * tenant worker process), as kamcmd does with Kamailio's RPC commands:
 * registrations (ul.*), htables (htable.*), transactions (tm.stats), pike's
 * address tree (pike.list), the log level (loglevel), the dispatcher's
 * destinations (dispatcher.*, host/ops/dispatcher-ops.ts).
 *
 * Every method takes named params; `tenant` scopes it (required where the
 * method changes or looks up one tenant's data, else every tenant of the
 * process). An unknown tenant, table or AoR is an OpsError naming it.
 */
import type { SipServer } from "../core/server.js";
import type { TenantRouting } from "../core/tenant-routing.js";
import { LOG_LEVELS, isLogLevel, logLevel, setLogLevel } from "../core/log.js";
import type { LogLevel } from "../core/context.js";
import { aorOf } from "../modules/registrar.js";
import { declaredHtables, tenantHtables, type HtableValue } from "../modules/state/htable-store.js";
import { tenantPike } from "../modules/state/pike-store.js";
import type { Binding, DataServices } from "../storage/index.js";
import { STATUS_CLASSES } from "../metrics/wire.js";
import { dispatcherList, dispatcherReload, dispatcherSetState } from "./dispatcher-ops.js";

/** A request the operator can correct: unknown tenant, table, AoR, key or a bad param. */
export class OpsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OpsError";
  }
}

/** The methods of host/ops that run where the scripts run; `ksr ctl` reaches them through the control socket. */
export const INSPECT_METHODS = [
  "ul.dump",
  "ul.lookup",
  "ul.rm",
  "htable.list",
  "htable.dump",
  "htable.get",
  "htable.sets",
  "htable.seti",
  "htable.delete",
  "htable.flush",
  "htable.reload",
  "dispatcher.list",
  "dispatcher.set_state",
  "dispatcher.reload",
  "tm.stats",
  "pike.list",
  "loglevel",
] as const;
export type InspectMethod = (typeof INSPECT_METHODS)[number];

export function isInspectMethod(method: string): method is InspectMethod {
  return (INSPECT_METHODS as readonly string[]).includes(method);
}

export type Params = Readonly<Record<string, unknown>>;

export function stringParam(params: Params, name: string): string {
  const value = params[name];
  if (typeof value !== "string" || value === "") throw new OpsError(`"${name}" must be a non-empty string`);
  return value;
}

export function optionalStringParam(params: Params, name: string): string | undefined {
  return params[name] === undefined ? undefined : stringParam(params, name);
}

/** A registration as `ksr ctl ul` shows it: seconds left rather than an epoch. */
export interface ContactView {
  readonly contact: string;
  readonly expiresInS: number;
  readonly q: number;
  readonly callId: string;
  readonly cseq: number;
  readonly userAgent: string;
  readonly received: string;
  readonly path: string;
  readonly socket: string;
  readonly instance: string;
  readonly regId: number;
  readonly ruid: string;
}

function contactView(b: Binding, now: number): ContactView {
  return {
    contact: b.contact,
    expiresInS: Math.max(0, Math.round((b.expires - now) / 1000)),
    q: b.q,
    callId: b.callId,
    cseq: b.cseq,
    userAgent: b.userAgent,
    received: b.received,
    path: b.path,
    socket: b.socket,
    instance: b.instance,
    regId: b.regId,
    ruid: b.ruid,
  };
}

/** Transactions of a tenant (Kamailio's tm.stats, per tenant). */
export interface TmStats {
  readonly tenant: string;
  /** Waiting for a final response (Kamailio's "current" less the settled). */
  readonly inUse: number;
  readonly server: number;
  readonly client: number;
  readonly serverCreated: number;
  readonly clientCreated: number;
  /** Server transactions answered, by class. */
  readonly finals: Record<string, number>;
}

export class LocalInspector {
  private readonly seenTables = new Map<string, Set<string>>();

  constructor(
    private readonly server: SipServer<TenantRouting>,
    private readonly data: DataServices | undefined,
  ) {}

  private get tenantIds(): string[] {
    return this.server.router.registry.tenants.map((t) => t.id);
  }

  /** The tenant asked for (known here), or every tenant of this process. */
  private scope(params: Params): string[] {
    const tenant = optionalStringParam(params, "tenant");
    if (tenant === undefined) return this.tenantIds;
    if (!this.tenantIds.includes(tenant)) throw new OpsError(`no tenant "${tenant}" (tenants: ${this.tenantIds.join(", ")})`);
    return [tenant];
  }

  /** One tenant: the one asked for, or the only one there is. */
  private oneTenant(params: Params): string {
    const ids = this.scope(params);
    if (ids.length !== 1) throw new OpsError(`say which tenant (--tenant): ${ids.join(", ")}`);
    return ids[0]!;
  }

  private locations(): DataServices["locations"] {
    if (this.data === undefined) throw new OpsError("this server keeps no registrations (no database)");
    return this.data.locations;
  }

  /** The AoR key of what the operator typed: a SIP URI is reduced as the registrar does, anything else is taken as the key. */
  private aorKey(text: string): string {
    if (!/^sips?:/i.test(text)) return text;
    const key = this.data === undefined ? undefined : aorOf(text, this.data.registrar);
    if (key === undefined) throw new OpsError(`"${text}" is not a SIP URI the registrar can key`);
    return key;
  }

  /** The tenant's table: declared in its configuration or holding items; else an error naming the known ones. */
  private table(tenant: string, params: Params): string {
    const table = stringParam(params, "table");
    const known = this.knownTables(tenant);
    if (!known.includes(table)) throw new OpsError(`tenant ${tenant} has no htable "${table}" (tables: ${known.length === 0 ? "none" : known.join(", ")})`);
    return table;
  }

  /**
   * Declared tables and tables holding items; a table once seen here stays
   * known (flushing it from the control socket leaves it empty, not unknown).
   */
  private knownTables(tenant: string): string[] {
    let seen = this.seenTables.get(tenant);
    if (seen === undefined) this.seenTables.set(tenant, (seen = new Set()));
    for (const t of [...declaredHtables(tenant), ...tenantHtables(tenant).tableNames()]) seen.add(t);
    return [...seen].sort();
  }

  async call(method: InspectMethod, params: Params): Promise<unknown> {
    const now = this.server.now();
    switch (method) {
      case "ul.dump":
        return this.scope(params).map((tenant) => ({
          tenant,
          aors: this.locations()
            .entries(tenant)
            .map((e) => ({ table: e.table, aor: e.aor, contacts: e.bindings.filter((b) => b.expires > now).map((b) => contactView(b, now)) }))
            .filter((e) => e.contacts.length > 0),
        }));
      case "ul.lookup": {
        const tenant = this.oneTenant(params);
        const aor = this.aorKey(stringParam(params, "aor"));
        const found = this.locations()
          .entries(tenant)
          .filter((e) => e.aor === aor)
          .map((e) => ({ table: e.table, aor: e.aor, contacts: e.bindings.filter((b) => b.expires > now).map((b) => contactView(b, now)) }))
          .filter((e) => e.contacts.length > 0);
        if (found.length === 0) throw new OpsError(`tenant ${tenant}: AoR "${aor}" not found`);
        return { tenant, aors: found };
      }
      case "ul.rm": {
        const tenant = this.oneTenant(params);
        const aor = this.aorKey(stringParam(params, "aor"));
        const store = this.locations();
        const entries = store.entries(tenant).filter((e) => e.aor === aor);
        if (entries.length === 0) throw new OpsError(`tenant ${tenant}: AoR "${aor}" not found`);
        let removed = 0;
        for (const e of entries) {
          removed += e.bindings.length;
          store.replace(tenant, e.table, aor, []);
        }
        return { tenant, aor, removed };
      }
      case "htable.list":
        return this.scope(params).map((tenant) => ({ tenant, tables: this.knownTables(tenant) }));
      case "htable.dump": {
        const tenant = this.oneTenant(params);
        const table = this.table(tenant, params);
        const items = [...tenantHtables(tenant).entries(table, now)].map(([key, item]) => ({
          key,
          value: item.value,
          ...(item.expiresAt !== 0 ? { expiresInS: Math.max(0, Math.round((item.expiresAt - now) / 1000)) } : {}),
        }));
        return { tenant, table, items };
      }
      case "htable.get": {
        const tenant = this.oneTenant(params);
        const table = this.table(tenant, params);
        const key = stringParam(params, "key");
        const item = tenantHtables(tenant).get(table, key, now);
        if (item === undefined) throw new OpsError(`tenant ${tenant}: htable ${table} has no key "${key}"`);
        return { tenant, table, key, value: item.value };
      }
      case "htable.sets":
      case "htable.seti": {
        const tenant = this.oneTenant(params);
        // Setting may create a table (as KSR.htable.sht_sets does), but only a declared one or one with items.
        const table = this.table(tenant, params);
        const key = stringParam(params, "key");
        const raw = params["value"];
        let value: HtableValue;
        if (method === "htable.seti") {
          const n = typeof raw === "number" ? raw : typeof raw === "string" && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
          if (!Number.isSafeInteger(n)) throw new OpsError(`"value" must be an integer, not ${JSON.stringify(raw)}`);
          value = n;
        } else {
          if (typeof raw !== "string") throw new OpsError('"value" must be a string');
          value = raw;
        }
        const failure = tenantHtables(tenant).set(table, key, value, 0, now);
        if (failure !== undefined) throw new OpsError(`tenant ${tenant}: htable ${table}: not set (${failure} limit reached)`);
        return { tenant, table, key, value };
      }
      case "htable.delete": {
        const tenant = this.oneTenant(params);
        const table = this.table(tenant, params);
        const key = stringParam(params, "key");
        if (!tenantHtables(tenant).delete(table, key)) throw new OpsError(`tenant ${tenant}: htable ${table} has no key "${key}"`);
        return { tenant, table, key, deleted: true };
      }
      case "htable.flush": {
        const tenant = this.oneTenant(params);
        const table = this.table(tenant, params);
        tenantHtables(tenant).reset(table);
        return { tenant, table, flushed: true };
      }
      case "htable.reload": {
        // Kamailio's htable.reload reads the table again from its db_url; tables here have no database behind them.
        const tenant = this.oneTenant(params);
        const table = this.table(tenant, params);
        throw new OpsError(`tenant ${tenant}: htable ${table} has no database to reload from (htables here are filled by scripts and ksr ctl htable; use htable flush to empty one)`);
      }
      case "dispatcher.list":
        return dispatcherList(this.scope(params), params["tenant"] !== undefined);
      case "dispatcher.set_state": {
        const tenant = this.oneTenant(params);
        const set = params["set"];
        const setId = typeof set === "number" ? set : typeof set === "string" && /^\d{1,9}$/.test(set) ? Number(set) : NaN;
        if (!Number.isSafeInteger(setId)) throw new OpsError(`"set" must be a set id (a whole number), not ${JSON.stringify(set)}`);
        return dispatcherSetState(tenant, stringParam(params, "state"), setId, stringParam(params, "uri"));
      }
      case "dispatcher.reload":
        return dispatcherReload(this.oneTenant(params), Date.now());
      case "tm.stats":
        return this.scope(params).map((tenant) => this.tmStats(tenant));
      case "pike.list":
        return this.scope(params).map((tenant) => ({
          tenant,
          addresses: tenantPike(tenant)
            .nodesList(now)
            .map(({ expires, ...a }) => ({ ...a, expiresInS: Math.max(0, Math.round((expires - now) / 1000)) })),
        }));
      case "loglevel":
        return this.logLevelCall(params);
    }
  }

  private tmStats(tenant: string): TmStats {
    const table = this.server.router.proxyOf(tenant)?.table;
    const finals: Record<string, number> = {};
    STATUS_CLASSES.forEach((c, i) => {
      if (c !== "") finals[c] = table?.serverFinalsByClass[i] ?? 0;
    });
    return {
      tenant,
      inUse: table?.unsettledCount ?? 0,
      server: table?.serverCount ?? 0,
      client: table?.clientCount ?? 0,
      serverCreated: table?.serversAdded ?? 0,
      clientCreated: table?.clientsAdded ?? 0,
      finals,
    };
  }

  /** Sets the level (of one tenant, or of this process) when `level` is given; answers the levels in force. */
  private logLevelCall(params: Params): { process: LogLevel; tenants: Record<string, LogLevel> } {
    const level = optionalStringParam(params, "level");
    const tenants = this.scope(params);
    if (level !== undefined) {
      if (!isLogLevel(level)) throw new OpsError(`"${level}" is not a log level (${LOG_LEVELS.join(", ")})`);
      if (params["tenant"] === undefined) setLogLevel(level);
      else setLogLevel(level, tenants[0]!);
    }
    return { process: logLevel(), tenants: Object.fromEntries(tenants.map((t) => [t, logLevel(t)])) };
  }
}
