/**
 * `ksr subscriber`, `ksr address` and `ksr dispatcher`: manage the
 * subscriber table (digest users for KSR.auth_db), the address table
 * (trusted networks for KSR.permissions) in the SQLite file a server uses
 * (`ksr run --db`), which a running server sees at once, and the
 * dispatcher table (KSR.dispatcher destinations of a list named
 * `sqlite:FILE`), which a running server reads on a dispatcher reload.
 *
 *   ksr subscriber add <user@domain> <password> [--realm r] [--store-password] [--tenant id] [--db file]
 *   ksr subscriber rm <user@domain> [--tenant id] [--db file]
 *   ksr subscriber list [--tenant id] [--db file]
 *   ksr address add <group> <cidr> [--port p] [--tag t] [--tenant id] [--db file]
 *   ksr address rm <group> <cidr> [--port p] [--tenant id] [--db file]
 *   ksr address list [--tenant id] [--db file]
 *   ksr dispatcher add <setid> <uri> [--flags n] [--priority n] [--attrs a] [--description d] [--tenant id] [--db file]
 *   ksr dispatcher rm <id> [--tenant id] [--db file]
 *   ksr dispatcher list [--tenant id] [--db file]
 */
import { existsSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { computeHa1, toBinary } from "../auth/digest.js";
import { openSqlite, parseCidr, SqliteAddressStore, SqliteDispatcherStore, SqliteSubscriberStore } from "../storage/sqlite.js";
import { DispatcherListError, parseDispatcherList } from "../modules/dispatcher/list.js";
import { rowLine } from "../modules/dispatcher/db.js";
import type { AddressStore, Subscriber, SubscriberStore } from "../storage/types.js";
import { setLogLevel } from "../core/log.js";
import { openDataServices, type DataServices, type LocationMode, type SharingWorkers } from "../storage/index.js";

/** The database file `ksr run` and these commands use unless --db says otherwise. */
export const DEFAULT_DB_FILE = "./ksr.sqlite";
/** The tenant id of `ksr run <script>` (single tenant). */
export const DEFAULT_TENANT = "default";

interface DbOptions {
  db: string;
  /** redis://HOST:PORT[/DB]: the shared store's tables instead of the --db file. */
  store?: string;
  tenant: string;
}

/**
 * A subscriber row for user@domain: HA1 values for MD5 and SHA-256, with and
 * without the domain in the user name (RFC 2617 §3.2.2.2, RFC 7616 §3.4.2),
 * computed for `realm` (the domain unless given). The plain-text password is
 * kept only when asked: it lets the server answer any realm.
 */
export function subscriberRow(userAtDomain: string, password: string, realm?: string, storePassword = false): Subscriber {
  const at = userAtDomain.lastIndexOf("@");
  if (at <= 0 || at === userAtDomain.length - 1) throw new Error(`"${userAtDomain}" is not user@domain`);
  const username = toBinary(userAtDomain.slice(0, at));
  const domain = toBinary(userAtDomain.slice(at + 1).toLowerCase());
  const r = toBinary(realm ?? domain);
  const pw = toBinary(password);
  return {
    username,
    domain,
    password: storePassword ? password : "",
    ha1: computeHa1("MD5", username, r, pw),
    ha1b: computeHa1("MD5", `${username}@${domain}`, r, pw),
    ha1Sha256: computeHa1("SHA-256", username, r, pw),
    ha1bSha256: computeHa1("SHA-256", `${username}@${domain}`, r, pw),
  };
}

function splitUserDomain(text: string): { username: string; domain: string } {
  const at = text.lastIndexOf("@");
  if (at <= 0 || at === text.length - 1) throw new InvalidArgumentError(`"${text}" is not user@domain`);
  return { username: toBinary(text.slice(0, at)), domain: toBinary(text.slice(at + 1).toLowerCase()) };
}

function groupArg(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a group number`);
  return Number(value);
}

function portArg(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError(`"${value}" is not a port (0..65535)`);
  return Number(value);
}

function cidrArg(value: string): { ip: string; mask: number } {
  const c = parseCidr(value);
  if (c === undefined) throw new InvalidArgumentError(`"${value}" is not an IP address or CIDR block`);
  return c;
}

function withDb<T>(file: string, fn: (db: ReturnType<typeof openSqlite>) => T): T {
  const db = openSqlite(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function dbOptions(cmd: Command): Command {
  return cmd
    .option("--db <file>", "SQLite database file", DEFAULT_DB_FILE)
    .option("--store <url>", "redis://HOST:PORT[/DB]: the tables of the shared store (ksr run --store) instead of --db")
    .option("--tenant <id>", "tenant whose table to use", DEFAULT_TENANT);
}

interface Tables {
  readonly subscribers: SubscriberStore;
  readonly addresses: AddressStore;
}

/**
 * Run fn over the tables of --store (connected and loaded; fn's writes are
 * acknowledged by Redis before this resolves) or of the --db file.
 */
async function withTables<T>(opts: DbOptions, fn: (tables: Tables) => T): Promise<T> {
  if (opts.store === undefined) return withDb(opts.db, (db) => fn({ subscribers: new SqliteSubscriberStore(db), addresses: new SqliteAddressStore(db) }));
  // The connection's state lines are for servers; a command prints its result only.
  setLogLevel("warn");
  const { openRedisDataServices } = await import("../storage/redis/index.js");
  const data = await openRedisDataServices({ url: opts.store, htables: false, ndbRedisTimeoutMs: 0 }).catch((err: unknown) => {
    throw new Error(`--store: ${(err as Error)?.message ?? String(err)}`);
  });
  try {
    const result = fn(data);
    // Commands run in order on one connection: once PING answers, every write before it is done.
    await data.connection.commands.ping();
    return result;
  } finally {
    data.close();
  }
}

function formatCidr(ip: string, mask: number): string {
  return `${ip}/${mask}`;
}

function wholeNumberArg(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a non-negative whole number`);
  return Number(value);
}

/** Add the `subscriber`, `address` and `dispatcher` commands to the ksr program. */
export function registerDbCommands(program: Command, out: (line: string) => void = (l) => process.stdout.write(l + "\n")): void {
  const subscriber = program.command("subscriber").description("manage digest users (table subscriber) for KSR.auth_db");

  dbOptions(
    subscriber
      .command("add")
      .description("add or replace a subscriber")
      .argument("<user@domain>", "user name and domain")
      .argument("<password>", "password")
      .option("--realm <realm>", "digest realm the stored HA1 values are for (default: the domain)")
      .option("--store-password", "also keep the plain-text password (authenticates for any realm)"),
  ).action(async (who: string, password: string, opts: DbOptions & { realm?: string; storePassword?: boolean }) => {
    splitUserDomain(who);
    const row = subscriberRow(who, password, opts.realm, opts.storePassword === true);
    await withTables(opts, (t) => t.subscribers.put(opts.tenant, row));
    out(`subscriber ${who} saved for tenant ${opts.tenant}`);
  });

  dbOptions(subscriber.command("rm").description("remove a subscriber").argument("<user@domain>", "user name and domain")).action(
    async (who: string, opts: DbOptions) => {
      const { username, domain } = splitUserDomain(who);
      const removed = await withTables(opts, (t) => t.subscribers.remove(opts.tenant, username, domain));
      if (!removed) {
        process.stderr.write(`ksr: no subscriber ${who} for tenant ${opts.tenant}\n`);
        process.exitCode = 1;
        return;
      }
      out(`subscriber ${who} removed`);
    },
  );

  dbOptions(subscriber.command("list").description("list the subscribers of a tenant")).action(async (opts: DbOptions) => {
    const rows = await withTables(opts, (t) => t.subscribers.list(opts.tenant));
    for (const r of rows) {
      const user = Buffer.from(`${r.username}@${r.domain}`, "latin1").toString("utf8");
      out(`${user}${r.password !== "" ? " (password stored)" : ""}`);
    }
  });

  const address = program.command("address").description("manage trusted networks (table address) for KSR.permissions");

  dbOptions(
    address
      .command("add")
      .description("add a network to an address group")
      .argument("<group>", "group number", groupArg)
      .argument("<cidr>", "IP address or CIDR block (10.0.0.0/8, 2001:db8::/32)", cidrArg)
      .option("--port <port>", "source port to require (0 = any)", portArg, 0)
      .option("--tag <tag>", "free text kept with the entry", ""),
  ).action(async (group: number, net: { ip: string; mask: number }, opts: DbOptions & { port: number; tag: string }) => {
    const entry = await withTables(opts, (t) => t.addresses.add(opts.tenant, { group, ip: net.ip, mask: net.mask, port: opts.port, tag: opts.tag }));
    out(`address ${formatCidr(entry.ip, entry.mask)} port ${entry.port} added to group ${group} (id ${entry.id})`);
  });

  dbOptions(
    address
      .command("rm")
      .description("remove a network from an address group")
      .argument("<group>", "group number", groupArg)
      .argument("<cidr>", "IP address or CIDR block as added", cidrArg)
      .option("--port <port>", "remove only the entry with this port", portArg),
  ).action(async (group: number, net: { ip: string; mask: number }, opts: DbOptions & { port?: number }) => {
    const n = await withTables(opts, (t) => t.addresses.remove(opts.tenant, group, net.ip, net.mask, opts.port));
    if (n === 0) {
      process.stderr.write(`ksr: no such address in group ${group} for tenant ${opts.tenant}\n`);
      process.exitCode = 1;
      return;
    }
    out(`${n} address entr${n === 1 ? "y" : "ies"} removed`);
  });

  dbOptions(address.command("list").description("list the address table of a tenant")).action(async (opts: DbOptions) => {
    const rows = await withTables(opts, (t) => t.addresses.list(opts.tenant));
    for (const r of rows) out(`${r.group}\t${formatCidr(r.ip, r.mask)}\t${r.port}\t${r.tag}`);
  });

  const dispatcher = program
    .command("dispatcher")
    .description("manage KSR.dispatcher destinations (table dispatcher) of a tenant whose list is sqlite:FILE; a running server reads them on ds_reload or `ksr ctl dispatcher reload`");

  dbOptions(
    dispatcher
      .command("add")
      .description("add a destination to a set")
      .argument("<setid>", "set id", wholeNumberArg)
      .argument("<destination>", "SIP URI (sip:10.0.0.1:5060;transport=tcp)")
      .option("--flags <n>", "initial state: 1 inactive, 2 trying, 4 disabled, 8 probing", wholeNumberArg, 0)
      .option("--priority <n>", "priority (highest first)", wholeNumberArg, 0)
      .option("--attrs <attrs>", "attributes: duid=a;weight=50;maxload=10;socket=udp:IP:PORT ...", "")
      .option("--description <text>", "free text kept with the row", ""),
  ).action((setid: number, destination: string, opts: DbOptions & { flags: number; priority: number; attrs: string; description: string }) => {
    const row = { setid, destination, flags: opts.flags, priority: opts.priority, attrs: opts.attrs, description: opts.description };
    try {
      // The row must be a valid list line, as a server will read it.
      parseDispatcherList(rowLine(row), "the destination");
    } catch (err) {
      process.stderr.write(`ksr dispatcher add: ${err instanceof DispatcherListError ? err.reason : (err as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    const added = withDb(opts.db, (db) => new SqliteDispatcherStore(db).add(opts.tenant, row));
    out(`destination ${destination} added to set ${setid} for tenant ${opts.tenant} (id ${added.id})`);
  });

  dbOptions(dispatcher.command("rm").description("remove a destination by its id (see list)").argument("<id>", "row id", wholeNumberArg)).action(
    (id: number, opts: DbOptions) => {
      if (!withDb(opts.db, (db) => new SqliteDispatcherStore(db).remove(opts.tenant, id))) {
        process.stderr.write(`ksr: no dispatcher destination with id ${id} for tenant ${opts.tenant}\n`);
        process.exitCode = 1;
        return;
      }
      out(`dispatcher destination ${id} removed`);
    },
  );

  dbOptions(dispatcher.command("list").description("list a tenant's dispatcher destinations: id, set, destination, flags, priority, attrs, description")).action(
    (opts: DbOptions) => {
      const rows = withDb(opts.db, (db) => new SqliteDispatcherStore(db).list(opts.tenant));
      for (const r of rows) out([r.id, r.setid, r.destination, r.flags, r.priority, r.attrs, r.description].join("\t"));
    },
  );
}

/**
 * The data services of `ksr run --db <file> [--location memory|db]`. An existing file is opened at
 * once (registrations loaded, the expiry sweep started; the process exits
 * with a message when it cannot be used). A file that does not exist yet is
 * created only when a script first uses the location, subscriber or
 * address table, so scripts that use none leave no database behind.
 */
export function openRunDatabase(file: string, location: LocationMode = "db", sharedBy?: SharingWorkers): DataServices {
  const open = (): DataServices => {
    const data = openDataServices({ file, location, ...(sharedBy !== undefined ? { sharedBy } : {}) });
    data.startSweeper();
    return data;
  };
  if (file === ":memory:" || existsSync(file)) {
    try {
      return open();
    } catch (err) {
      process.stderr.write(`ksr: cannot open the database ${file}: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(1);
    }
  }
  return new DataServicesOnFirstUse(open);
}

/** DataServices that open the database the first time a store or setting is asked for. */
class DataServicesOnFirstUse implements DataServices {
  private opened: DataServices | undefined;
  private closed = false;

  constructor(private readonly open: () => DataServices) {}

  private get services(): DataServices {
    if (this.closed) throw new Error("the database is closed");
    this.opened ??= this.open();
    return this.opened;
  }

  get locations() {
    return this.services.locations;
  }
  get subscribers() {
    return this.services.subscribers;
  }
  get addresses() {
    return this.services.addresses;
  }
  get registrar() {
    return this.services.registrar;
  }
  get auth() {
    return this.services.auth;
  }
  get nonces() {
    return this.services.nonces;
  }
  /** The sweep starts with the database (see openRunDatabase). */
  startSweeper(): void {}
  close(): void {
    this.closed = true;
    this.opened?.close();
  }
}
