/**
 * The data services a server hands to the KSR modules (HostServices.data):
 * the stores, the module settings (Kamailio modparams), the digest nonce
 * state, and the periodic sweep of expired registrations.
 */
import { NonceService, DEFAULT_NONCE_OPTIONS, type NonceIdLane, type NonceOptions } from "../auth/nonce.js";
import type { DigestHash } from "../auth/digest.js";
import { CachedLocationStore, SharedLocationStore } from "./location.js";
import { openSqlite, SqliteAddressStore, SqliteLocationPersistence, SqliteSubscriberStore } from "./sqlite.js";
import type { AddressStore, LocationStore, SubscriberStore } from "./types.js";
import { log } from "../core/log.js";
import type { RedisReply } from "./redis/sync-command.js";

export type { AddressEntry, AddressStore, Binding, LocationStore, Subscriber, SubscriberStore } from "./types.js";

/** Kamailio registrar/usrloc module parameters; defaults are Kamailio's. */
export interface RegistrarSettings {
  /** Expires when neither the Contact nor an Expires header gives one (default_expires). */
  readonly defaultExpires: number;
  /** Lowest accepted expires, 0 = no minimum (min_expires). */
  readonly minExpires: number;
  /**
   * What a lower expires gets: "raise" it to minExpires (Kamailio's default,
   * min_expires_mode 0) or "reject" with 423 Interval Too Brief and a
   * Min-Expires header (min_expires_mode 1, RFC 3261 §10.3 step 7).
   */
  readonly minExpiresMode: "raise" | "reject";
  /** Highest expires, 0 = unlimited (max_expires). */
  readonly maxExpires: number;
  /** q of a contact without a q parameter, thousandths; -1 unspecified (default_q). */
  readonly defaultQ: number;
  /** lookup() appends the other contacts as branches (append_branches). */
  readonly appendBranches: boolean;
  /** AoR user parts compare case-sensitively (case_sensitive). */
  readonly caseSensitive: boolean;
  /** The AoR is user@domain rather than the user alone (usrloc use_domain). */
  readonly useDomain: boolean;
  /** Most contacts per AoR, 0 = unlimited (max_contacts); more gives 503. */
  readonly maxContacts: number;
  /** lookup() skips contacts whose Allow header did not list the method (method_filtering). */
  readonly methodFiltering: boolean;
  /**
   * Path handling (use_path + path_mode, RFC 3327): "off" ignores Path;
   * "store" keeps it without echoing (mode 0); "lazy" keeps it and echoes it
   * when the UA sent Supported: path (mode 1); "strict" also rejects a
   * REGISTER with Path but without that support with 420 (mode 2).
   */
  readonly pathMode: "off" | "store" | "lazy" | "strict";
  /** Same Call-ID and CSeq within this many seconds is a retransmission (usrloc cseq_delay). */
  readonly cseqDelaySec: number;
  /** Contact parameter naming the received address in 200 OK, "" for none (received_param). */
  readonly receivedParam: string;
  /** Longest contact URI accepted (contact_max_size). */
  readonly contactMaxSize: number;
  /** Retry-After seconds added to 5xx replies, 0 = none (retry_after). */
  readonly retryAfter: number;
  /** reg-id is kept even without outbound support indicated (regid_mode 1). */
  readonly regIdWithoutOutbound: boolean;
}

export const DEFAULT_REGISTRAR_SETTINGS: RegistrarSettings = {
  defaultExpires: 3600,
  minExpires: 60,
  minExpiresMode: "raise",
  maxExpires: 0,
  defaultQ: -1,
  appendBranches: true,
  caseSensitive: false,
  useDomain: false,
  maxContacts: 0,
  methodFiltering: false,
  // Kamailio leaves Path off unless use_path is set; RFC 3327 support is on
  // here, storing Path always and echoing it to UAs that support it.
  pathMode: "lazy",
  cseqDelaySec: 20,
  receivedParam: "received",
  contactMaxSize: 512,
  retryAfter: 0,
  regIdWithoutOutbound: false,
};

/** Kamailio auth/auth_db module parameters. */
export interface AuthSettings {
  /**
   * Algorithms offered in challenges, preferred first, one
   * WWW-/Proxy-Authenticate header each sharing one nonce (RFC 8760 §2.4).
   * Kamailio's default offers MD5 only.
   */
  readonly challengeAlgorithms: readonly DigestHash[];
  /**
   * Look subscribers up by user and domain only (auth_db use_domain 1);
   * otherwise an exact (user, domain) row is preferred and any row of the
   * user name is accepted (use_domain 0, Kamailio's default).
   */
  readonly useDomain: boolean;
}

export const DEFAULT_AUTH_SETTINGS: AuthSettings = { challengeAlgorithms: ["MD5"], useDomain: false };

export interface DataServices {
  readonly locations: LocationStore;
  readonly subscribers: SubscriberStore;
  readonly addresses: AddressStore;
  readonly registrar: RegistrarSettings;
  readonly auth: AuthSettings;
  readonly nonces: NonceService;
  /** Commands of KSR.ndb_redis, answered before returning; only with a shared store (--store). */
  readonly ndbRedis?: { run(args: readonly string[]): RedisReply };
  /** Start the periodic sweep of expired bindings (unref'd timer); idempotent. */
  startSweeper(): void;
  /** Stop the sweeper and close the database. */
  close(): void;
}

/**
 * Where registrations live (Kamailio usrloc db_mode): "db" keeps them in
 * memory and writes every change through to the SQLite file, reloading them
 * at start (db_mode 1 with preload); "memory" keeps them in memory only,
 * writing nothing, so they are lost when the server stops (db_mode 0).
 */
export type LocationMode = "db" | "memory";

export const LOCATION_MODES: readonly LocationMode[] = ["db", "memory"];

export function isLocationMode(value: string): value is LocationMode {
  return (LOCATION_MODES as readonly string[]).includes(value);
}

export interface DataServicesOptions {
  /** SQLite file, or ":memory:" for a private in-memory database. */
  readonly file: string;
  /** Where the location table lives (default "db"). */
  readonly location?: LocationMode;
  /** Clock in ms (tests pass a fake one). */
  readonly now?: () => number;
  readonly registrar?: Partial<RegistrarSettings>;
  readonly auth?: Partial<AuthSettings>;
  readonly nonce?: Partial<NonceOptions>;
  /** Sweep period in ms (default 10 000) and bindings removed per sweep (default 1000). */
  readonly sweepIntervalMs?: number;
  readonly sweepBatch?: number;
  /** Set in each of several worker processes of one server over this file (`ksr run --workers`). */
  readonly sharedBy?: SharingWorkers;
}

/**
 * What the worker processes of one server share beyond the file: the
 * nonce secret (a challenge from one verifies on another) and each one's
 * lane of nonce ids. Their location caches follow each other's writes
 * (SharedLocationStore), so the location must be in the file.
 */
export interface SharingWorkers {
  readonly nonceSecret: Buffer;
  readonly lane: NonceIdLane;
}

/** Why several worker processes cannot share registrations with these settings, or undefined when they can. */
export function sharingProblem(file: string, location: LocationMode): string | undefined {
  if (file === ":memory:") return `--db :memory: is private to each process: worker processes could not see each other's registrations; give a database file`;
  if (location !== "db") return `--location ${location} keeps registrations in each process's memory: worker processes could not see each other's; use --location db`;
  return undefined;
}

/** Open the database file and build the services over it. */
export function openDataServices(options: DataServicesOptions): DataServices {
  const now = options.now ?? Date.now;
  const shared = options.sharedBy;
  if (shared !== undefined) {
    const problem = sharingProblem(options.file, options.location ?? "db");
    if (problem !== undefined) throw new Error(problem);
  }
  const db = openSqlite(options.file);
  let locations: CachedLocationStore;
  try {
    const persistence = (options.location ?? "db") === "db" ? new SqliteLocationPersistence(db) : undefined;
    locations = shared !== undefined ? new SharedLocationStore(persistence!, now) : new CachedLocationStore(persistence, now());
  } catch (err) {
    db.close();
    throw err;
  }
  const subscribers = new SqliteSubscriberStore(db);
  const addresses = new SqliteAddressStore(db);
  const nonces = new NonceService(shared?.nonceSecret, { ...DEFAULT_NONCE_OPTIONS, ...options.nonce }, shared?.lane, shared?.nonceSecret === undefined ? undefined : now());
  const intervalMs = options.sweepIntervalMs ?? 10_000;
  const batch = options.sweepBatch ?? 1000;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  return {
    locations,
    subscribers,
    addresses,
    registrar: { ...DEFAULT_REGISTRAR_SETTINGS, ...options.registrar },
    auth: { ...DEFAULT_AUTH_SETTINGS, ...options.auth },
    nonces,
    startSweeper() {
      if (timer !== undefined || closed) return;
      timer = setInterval(() => {
        try {
          locations.sweepExpired(now(), batch);
        } catch (err) {
          // A failed write (disk full, locked file) is retried at the next tick;
          // reads already ignore expired bindings.
          log("err", "storage", `sweeping expired registrations failed: ${(err as Error)?.message ?? String(err)}`);
        }
      }, intervalMs);
      timer.unref();
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      db.close();
    },
  };
}
