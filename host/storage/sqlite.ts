/**
 * The embedded SQLite database (better-sqlite3 12.x): one file holding the
 * location, subscriber, address and dispatcher tables of every tenant,
 * each row keyed by its tenant id.
 *
 * WAL mode with a busy timeout lets `ksr subscriber|address ...` write to
 * the file while a server has it open; the server caches subscriber and
 * address rows and notices such changes through SQLite's data_version.
 */
import Database from "better-sqlite3";
import { BlockList, isIP } from "node:net";
import type { LocationPersistence, StoredBinding } from "./location.js";
import type { AddressEntry, AddressStore, Binding, Subscriber, SubscriberStore } from "./types.js";
import { normalizeIp } from "../transport/listen-socket.js";

export type Db = Database.Database;

/** Bumped when the schema changes; older files are migrated in openSqlite. */
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS location (
  ruid TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  tbl TEXT NOT NULL,
  aor TEXT NOT NULL,
  contact TEXT NOT NULL,
  expires INTEGER NOT NULL,
  q INTEGER NOT NULL,
  callid TEXT NOT NULL,
  cseq INTEGER NOT NULL,
  path TEXT NOT NULL DEFAULT '',
  received TEXT NOT NULL DEFAULT '',
  instance TEXT NOT NULL DEFAULT '',
  reg_id INTEGER NOT NULL DEFAULT 0,
  user_agent TEXT NOT NULL DEFAULT '',
  socket TEXT NOT NULL DEFAULT '',
  flags INTEGER NOT NULL DEFAULT 0,
  methods TEXT NOT NULL DEFAULT '',
  last_modified INTEGER NOT NULL,
  seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS location_aor ON location (tenant, tbl, aor);
CREATE INDEX IF NOT EXISTS location_expires ON location (expires);
CREATE TABLE IF NOT EXISTS subscriber (
  tenant TEXT NOT NULL,
  username TEXT NOT NULL,
  domain TEXT NOT NULL,
  password TEXT NOT NULL DEFAULT '',
  ha1 TEXT NOT NULL DEFAULT '',
  ha1b TEXT NOT NULL DEFAULT '',
  ha1_sha256 TEXT NOT NULL DEFAULT '',
  ha1b_sha256 TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (tenant, username, domain)
);
CREATE TABLE IF NOT EXISTS address (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  grp INTEGER NOT NULL,
  ip TEXT NOT NULL,
  mask INTEGER NOT NULL,
  port INTEGER NOT NULL DEFAULT 0,
  tag TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS address_tenant ON address (tenant, grp);
CREATE TABLE IF NOT EXISTS dispatcher (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  setid INTEGER NOT NULL,
  destination TEXT NOT NULL,
  flags INTEGER NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL DEFAULT 0,
  attrs TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dispatcher_tenant ON dispatcher (tenant, setid);
`;

/** Open (creating if needed) the database file; ":memory:" for a private in-memory one. */
export function openSqlite(file: string): Db {
  const db = new Database(file);
  try {
    // First: worker processes (`ksr run --workers`) may open a new file at
    // the same moment, and switching it to WAL takes a lock.
    db.pragma("busy_timeout = 5000");
    if (file !== ":memory:") db.pragma("journal_mode = WAL");
    // NORMAL with WAL: a crash may lose the last commits but never corrupts.
    db.pragma("synchronous = NORMAL");
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`${file}: database schema version ${version} is newer than this ksr (${SCHEMA_VERSION})`);
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

// ------------------------------------------------------------------ location

interface LocationRow {
  ruid: string;
  tenant: string;
  tbl: string;
  aor: string;
  contact: string;
  expires: number;
  q: number;
  callid: string;
  cseq: number;
  path: string;
  received: string;
  instance: string;
  reg_id: number;
  user_agent: string;
  socket: string;
  flags: number;
  methods: string;
  last_modified: number;
  seq: number;
}

function rowToBinding(r: LocationRow): Binding {
  return {
    ruid: r.ruid,
    aor: r.aor,
    contact: r.contact,
    expires: r.expires,
    q: r.q,
    callId: r.callid,
    cseq: r.cseq,
    path: r.path,
    received: r.received,
    instance: r.instance,
    regId: r.reg_id,
    userAgent: r.user_agent,
    socket: r.socket,
    branchFlags: r.flags,
    methods: r.methods === "" ? [] : r.methods.split(","),
    lastModified: r.last_modified,
    seq: r.seq,
    memoryOnly: false,
  };
}

export class SqliteLocationPersistence implements LocationPersistence {
  private readonly upsert;
  private readonly remove;
  private readonly applyTx;
  private readonly version;

  constructor(private readonly db: Db) {
    this.version = new DataVersion(db);
    this.upsert = db.prepare(
      `INSERT OR REPLACE INTO location (ruid, tenant, tbl, aor, contact, expires, q, callid, cseq, path, received,
         instance, reg_id, user_agent, socket, flags, methods, last_modified, seq)
       VALUES (@ruid, @tenant, @tbl, @aor, @contact, @expires, @q, @callid, @cseq, @path, @received,
         @instance, @reg_id, @user_agent, @socket, @flags, @methods, @last_modified, @seq)`,
    );
    this.remove = db.prepare("DELETE FROM location WHERE ruid = ?");
    this.applyTx = db.transaction((upserts: readonly StoredBinding[], deletions: readonly string[]) => {
      for (const ruid of deletions) this.remove.run(ruid);
      for (const { tenant, table, binding: b } of upserts) {
        this.upsert.run({
          ruid: b.ruid,
          tenant,
          tbl: table,
          aor: b.aor,
          contact: b.contact,
          expires: b.expires,
          q: b.q,
          callid: b.callId,
          cseq: b.cseq,
          path: b.path,
          received: b.received,
          instance: b.instance,
          reg_id: b.regId,
          user_agent: b.userAgent,
          socket: b.socket,
          flags: b.branchFlags,
          methods: b.methods.join(","),
          last_modified: b.lastModified,
          seq: b.seq,
        });
      }
    });
  }

  loadValid(now: number): StoredBinding[] {
    // Bindings that expired while the server was down are of no use: drop them.
    this.db.prepare("DELETE FROM location WHERE expires <= ?").run(now);
    const rows = this.db.prepare("SELECT * FROM location ORDER BY seq").all() as LocationRow[];
    return rows.map((r) => ({ tenant: r.tenant, table: r.tbl, binding: rowToBinding(r) }));
  }

  apply(upserts: readonly StoredBinding[], deletions: readonly string[]): void {
    this.applyTx(upserts, deletions);
  }

  changedElsewhere(): boolean {
    return this.version.changed();
  }
}

/**
 * SQLite's data_version of the connection, which changes when another
 * connection commits to the file (https://sqlite.org/pragma.html#pragma_data_version);
 * a commit on this connection does not change it, so the stores drop their
 * own cache entries when they write. One prepared statement: `db.pragma()`
 * would prepare a new one per call.
 */
class DataVersion {
  private readonly stmt;
  private seen = -1;

  constructor(db: Db) {
    this.stmt = db.prepare("PRAGMA data_version").pluck();
  }

  /** Whether another connection committed since the last call (true at the first). */
  changed(): boolean {
    const version = this.stmt.get() as number;
    if (version === this.seen) return false;
    this.seen = version;
    return true;
  }
}

// ---------------------------------------------------------------- subscriber

interface SubscriberRow {
  username: string;
  domain: string;
  password: string;
  ha1: string;
  ha1b: string;
  ha1_sha256: string;
  ha1b_sha256: string;
}

function rowToSubscriber(r: SubscriberRow): Subscriber {
  return {
    username: r.username,
    domain: r.domain,
    password: r.password,
    ha1: r.ha1,
    ha1b: r.ha1b,
    ha1Sha256: r.ha1_sha256,
    ha1bSha256: r.ha1b_sha256,
  };
}

const SUBSCRIBER_COLUMNS = "username, domain, password, ha1, ha1b, ha1_sha256, ha1b_sha256";

/**
 * Most subscriber look-ups remembered (hits and misses, by user and domain
 * or by user alone); past it the cache starts again empty, so user names
 * that do not exist cannot make it grow without bound.
 */
const SUBSCRIBER_CACHE_MAX = 10_000;

export class SqliteSubscriberStore implements SubscriberStore {
  /**
   * Rows read per digest check, as Kamailio's auth_db reads its table per
   * check; kept until the file changes (another connection's commit, or a
   * write here), so a running server sees `ksr subscriber` changes at once.
   */
  private readonly cache = new Map<string, Subscriber | undefined | readonly Subscriber[]>();
  private readonly version;
  private readonly findStmt;
  private readonly byUserStmt;
  private readonly putStmt;
  private readonly removeStmt;
  private readonly listStmt;

  constructor(db: Db) {
    this.version = new DataVersion(db);
    this.findStmt = db.prepare(`SELECT ${SUBSCRIBER_COLUMNS} FROM subscriber WHERE tenant = ? AND username = ? AND domain = ?`);
    this.byUserStmt = db.prepare(`SELECT ${SUBSCRIBER_COLUMNS} FROM subscriber WHERE tenant = ? AND username = ? ORDER BY domain`);
    this.putStmt = db.prepare(
      `INSERT OR REPLACE INTO subscriber (tenant, ${SUBSCRIBER_COLUMNS})
       VALUES (@tenant, @username, @domain, @password, @ha1, @ha1b, @ha1_sha256, @ha1b_sha256)`,
    );
    this.removeStmt = db.prepare("DELETE FROM subscriber WHERE tenant = ? AND username = ? AND domain = ?");
    this.listStmt = db.prepare(`SELECT ${SUBSCRIBER_COLUMNS} FROM subscriber WHERE tenant = ? ORDER BY domain, username`);
  }

  find(tenant: string, username: string, domain: string): Subscriber | undefined {
    // NUL cannot occur in a tenant id, nor in a user or domain taken from SIP text.
    const key = `f\u0000${tenant}\u0000${username}\u0000${domain}`;
    const cache = this.freshCache();
    if (cache.has(key)) return cache.get(key) as Subscriber | undefined;
    const row = this.findStmt.get(tenant, username, domain) as SubscriberRow | undefined;
    const found = row === undefined ? undefined : rowToSubscriber(row);
    this.remember(key, found);
    return found;
  }

  findByUsername(tenant: string, username: string): readonly Subscriber[] {
    const key = `u\u0000${tenant}\u0000${username}`;
    const cached = this.freshCache().get(key) as readonly Subscriber[] | undefined;
    if (cached !== undefined) return cached;
    const found = (this.byUserStmt.all(tenant, username) as SubscriberRow[]).map(rowToSubscriber);
    this.remember(key, found);
    return found;
  }

  private freshCache(): Map<string, Subscriber | undefined | readonly Subscriber[]> {
    if (this.version.changed()) this.cache.clear();
    return this.cache;
  }

  private remember(key: string, value: Subscriber | undefined | readonly Subscriber[]): void {
    if (this.cache.size >= SUBSCRIBER_CACHE_MAX) this.cache.clear();
    this.cache.set(key, value);
  }

  put(tenant: string, s: Subscriber): void {
    this.cache.clear();
    this.putStmt.run({
      tenant,
      username: s.username,
      domain: s.domain,
      password: s.password,
      ha1: s.ha1,
      ha1b: s.ha1b,
      ha1_sha256: s.ha1Sha256,
      ha1b_sha256: s.ha1bSha256,
    });
  }

  remove(tenant: string, username: string, domain: string): boolean {
    this.cache.clear();
    return this.removeStmt.run(tenant, username, domain).changes > 0;
  }

  list(tenant: string): readonly Subscriber[] {
    return (this.listStmt.all(tenant) as SubscriberRow[]).map(rowToSubscriber);
  }
}

// ------------------------------------------------------------------- address

/** One tenant's address rows with a BlockList per row for matching. */
interface CompiledAddresses {
  readonly entries: readonly { entry: AddressEntry; net: BlockList }[];
}

/** Parse "ip[/prefix]" (IPv4 or IPv6, brackets allowed); a bare address is a /32 or /128. */
export function parseCidr(text: string): { ip: string; mask: number } | undefined {
  const slash = text.indexOf("/");
  const rawIp = normalizeIp((slash === -1 ? text : text.slice(0, slash)).replace(/^\[|\]$/g, ""));
  const family = isIP(rawIp);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  let mask = max;
  if (slash !== -1) {
    const m = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(m) || Number(m) > max) return undefined;
    mask = Number(m);
  }
  return { ip: rawIp, mask };
}

function compileEntry(entry: AddressEntry): BlockList {
  const net = new BlockList();
  const type = isIP(entry.ip) === 6 ? "ipv6" : "ipv4";
  net.addSubnet(entry.ip, entry.mask, type);
  return net;
}

export class SqliteAddressStore implements AddressStore {
  private readonly cache = new Map<string, CompiledAddresses>();
  private readonly version;
  private readonly listStmt;
  private readonly addStmt;
  private readonly removeStmt;
  private readonly removeAnyPortStmt;

  constructor(db: Db) {
    this.version = new DataVersion(db);
    this.listStmt = db.prepare("SELECT id, grp, ip, mask, port, tag FROM address WHERE tenant = ? ORDER BY id");
    this.addStmt = db.prepare("INSERT INTO address (tenant, grp, ip, mask, port, tag) VALUES (?, ?, ?, ?, ?, ?)");
    this.removeStmt = db.prepare("DELETE FROM address WHERE tenant = ? AND grp = ? AND ip = ? AND mask = ? AND port = ?");
    this.removeAnyPortStmt = db.prepare("DELETE FROM address WHERE tenant = ? AND grp = ? AND ip = ? AND mask = ?");
  }

  match(tenant: string, group: number, ip: string, port: number): AddressEntry | undefined {
    return this.find(tenant, ip, port, (e) => e.group === group);
  }

  matchAnyGroup(tenant: string, ip: string, port: number): AddressEntry | undefined {
    return this.find(tenant, ip, port, () => true);
  }

  add(tenant: string, entry: Omit<AddressEntry, "id">): AddressEntry {
    const info = this.addStmt.run(tenant, entry.group, entry.ip, entry.mask, entry.port, entry.tag);
    this.cache.delete(tenant);
    return { ...entry, id: Number(info.lastInsertRowid) };
  }

  remove(tenant: string, group: number, ip: string, mask: number, port?: number): number {
    const info =
      port === undefined
        ? this.removeAnyPortStmt.run(tenant, group, ip, mask)
        : this.removeStmt.run(tenant, group, ip, mask, port);
    this.cache.delete(tenant);
    return info.changes;
  }

  list(tenant: string): readonly AddressEntry[] {
    return (this.listStmt.all(tenant) as { id: number; grp: number; ip: string; mask: number; port: number; tag: string }[]).map((r) => ({
      id: r.id,
      group: r.grp,
      ip: r.ip,
      mask: r.mask,
      port: r.port,
      tag: r.tag,
    }));
  }

  private find(tenant: string, ip: string, port: number, groupOk: (e: AddressEntry) => boolean): AddressEntry | undefined {
    const addr = normalizeIp(ip);
    const family = isIP(addr);
    if (family === 0) return undefined;
    const type = family === 6 ? "ipv6" : "ipv4";
    for (const { entry, net } of this.compiled(tenant).entries) {
      if (!groupOk(entry)) continue;
      if (entry.port !== 0 && entry.port !== port) continue;
      if ((isIP(entry.ip) === 6) !== (family === 6)) continue;
      if (net.check(addr, type)) return entry;
    }
    return undefined;
  }

  private compiled(tenant: string): CompiledAddresses {
    if (this.version.changed()) this.cache.clear();
    let c = this.cache.get(tenant);
    if (c === undefined) {
      c = { entries: this.list(tenant).map((entry) => ({ entry, net: compileEntry(entry) })) };
      this.cache.set(tenant, c);
    }
    return c;
  }
}

// --------------------------------------------------------------- dispatcher

/** A row of the dispatcher table (Kamailio's columns: setid, destination, flags, priority, attrs, description). */
export interface DispatcherRow {
  readonly id: number;
  readonly setid: number;
  readonly destination: string;
  readonly flags: number;
  readonly priority: number;
  readonly attrs: string;
  readonly description: string;
}

/** One tenant's destinations for KSR.dispatcher, as `ksr dispatcher add|rm|list` keeps them. */
export class SqliteDispatcherStore {
  private readonly listStmt;
  private readonly addStmt;
  private readonly removeStmt;

  constructor(db: Db) {
    this.listStmt = db.prepare("SELECT id, setid, destination, flags, priority, attrs, description FROM dispatcher WHERE tenant = ? ORDER BY id");
    this.addStmt = db.prepare("INSERT INTO dispatcher (tenant, setid, destination, flags, priority, attrs, description) VALUES (?, ?, ?, ?, ?, ?, ?)");
    this.removeStmt = db.prepare("DELETE FROM dispatcher WHERE tenant = ? AND id = ?");
  }

  list(tenant: string): DispatcherRow[] {
    return this.listStmt.all(tenant) as DispatcherRow[];
  }

  add(tenant: string, row: Omit<DispatcherRow, "id">): DispatcherRow {
    const info = this.addStmt.run(tenant, row.setid, row.destination, row.flags, row.priority, row.attrs, row.description);
    return { ...row, id: Number(info.lastInsertRowid) };
  }

  /** Whether the tenant had a row with this id. */
  remove(tenant: string, id: number): boolean {
    return this.removeStmt.run(tenant, id).changes > 0;
  }
}
