// Kamailio 5.6 + app_jsdt running Kamailio's example script
// kamailio-basic-kemi-jsdt.js (bench/cfg/kamailio-basic-kemi.cfg), the
// reference for the basic-script benchmark and interop test.
//
// The script authenticates against a subscriber table and checks an address
// table, so Kamailio needs a database: db_text (shipped with the kamailio
// package; no SQL server) in a temporary directory holding the tables
// version, subscriber, address and location. Stays on 127.0.0.1; stopped by
// PID (see startKamailio).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "./sipp.mjs";
import { startKamailio } from "./kamailio.mjs";

export const KAMAILIO_BASIC_CFG = path.join(REPO_ROOT, "bench", "cfg", "kamailio-basic-kemi.cfg");

/**
 * db_text tables: a header line of typed columns, then one row per line with
 * ':'-separated fields. Column names and table versions are those Kamailio
 * 5.6's modules check at start-up (subscriber 7, address 6, location 9).
 */
const TABLE_HEADERS = {
  version: "id(int,auto) table_name(string) table_version(int)",
  subscriber: "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null)",
  address: "id(int,auto) grp(int) ip_addr(string) mask(int) port(int) tag(string,null)",
  location:
    "id(int,auto) ruid(string) username(string) domain(string,null) contact(string) received(string,null) path(string,null) " +
    "expires(int) q(double) callid(string) cseq(int) last_modified(int) flags(int) cflags(int) user_agent(string) " +
    "socket(string,null) methods(int,null) instance(string,null) reg_id(int) server_id(int) connection_id(int) keepalive(int) partition(int)",
};
const TABLE_VERSIONS = { subscriber: 7, address: 6, location: 9 };

/** A db_text string field: ':' and control characters escaped (db_text's own rules). */
function dbTextField(value) {
  return String(value).replace(/\\/g, "\\\\").replace(/:/g, "\\:").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
}

/**
 * Writes the db_text database for the basic script into dir: the given
 * subscribers ({ user, domain, password }, plain-text passwords: auth_db
 * computes HA1 itself), an empty address table, an empty location table.
 * Returns the db_url ("text:///dir").
 */
export function writeKamailioBasicDatabase(dir, subscribers) {
  fs.mkdirSync(dir, { recursive: true });
  const versionRows = Object.entries(TABLE_VERSIONS).map(([table, version]) => `0:${table}:${version}`);
  const subscriberRows = subscribers.map(
    ({ user, domain, password }, i) => `${i + 1}:${dbTextField(user)}:${dbTextField(domain)}:${dbTextField(password)}::`,
  );
  const tables = { version: versionRows, subscriber: subscriberRows, address: [], location: [] };
  for (const [table, rows] of Object.entries(tables)) {
    fs.writeFileSync(path.join(dir, table), [TABLE_HEADERS[table], ...rows].map((line) => `${line}\n`).join(""));
  }
  return `text://${path.resolve(dir)}`;
}

/**
 * Starts Kamailio with the basic script on UDP 127.0.0.1:port against the
 * db_text database in dbDir (written with writeKamailioBasicDatabase).
 * persistentLocation makes usrloc write bindings through to that database
 * (db_mode 1), so that a restart on the same dbDir keeps them; redisUrl
 * (redis://127.0.0.1:PORT/0) keeps them in that Redis through db_redis
 * instead (db_mode 3; the Redis must hold KAMAILIO_REDIS_LOCATION_VERSION).
 * Returns the handle of startKamailio.
 */
export function startKamailioBasic({ script, port, dbDir, children, persistentLocation = false, redisUrl, readyTimeoutMs }) {
  return startKamailio({
    script,
    port,
    children,
    readyTimeoutMs,
    cfgTemplate: KAMAILIO_BASIC_CFG,
    defines: [
      `DBURL="text://${path.resolve(dbDir)}"`,
      ...(persistentLocation ? ["WITH_USRLOCDB"] : []),
      ...(redisUrl !== undefined ? [`REDISURL="${redisUrl}"`] : []),
    ],
  });
}

/**
 * What db_redis needs in a fresh Redis before usrloc starts on it: the
 * version row of the location table (usrloc checks it), as db_redis keys
 * it (table:keyname::value, a hash of the row's columns).
 */
export const KAMAILIO_REDIS_LOCATION_VERSION = ["HSET", "version:entry::location", "table_name", "location", "table_version", "9"];

/** A fresh temporary directory for a db_text database. */
export function makeKamailioBasicDbDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ksr-kamailio-basic-db-"));
}
