/**
 * Data the KSR modules keep between messages: registrations (usrloc),
 * subscribers (auth_db) and trusted addresses (permissions), each in its
 * tenant's namespace. Every method takes the tenant id first; an
 * implementation must never let one tenant read or change another's rows.
 *
 * The embedded backend is SQLite (host/storage/sqlite.ts) with the
 * location table served from an in-memory cache (host/storage/location.ts);
 * another backend implements these interfaces.
 */

/** One registered contact of an address-of-record (Kamailio ucontact). */
export interface Binding {
  /** Record unique id (Kamailio ruid): stable across updates of the binding. */
  readonly ruid: string;
  /** The address-of-record key (see the registrar's AoR rules). */
  readonly aor: string;
  /** Contact URI as registered. */
  readonly contact: string;
  /** Absolute expiry in ms since the epoch; the binding is valid while expires > now. */
  readonly expires: number;
  /** q-value in thousandths (0..1000), -1 when unspecified (RFC 3261 §20.10). */
  readonly q: number;
  readonly callId: string;
  readonly cseq: number;
  /** Path header values of the REGISTER, comma-joined (RFC 3327), "" when none. */
  readonly path: string;
  /** Source of the REGISTER as a SIP URI when NAT was detected (nathelper), "" when none. */
  readonly received: string;
  /** +sip.instance without quotes (RFC 5626 §4.1), "" when none. */
  readonly instance: string;
  /** reg-id (RFC 5626), 0 when none. */
  readonly regId: number;
  readonly userAgent: string;
  /** Local socket the REGISTER came in on, "proto:ip:port". */
  readonly socket: string;
  /** Branch flags of the R-URI branch at save time (restored by lookup). */
  readonly branchFlags: number;
  /** Methods the UA accepts (Allow header), upper case; empty = all. */
  readonly methods: readonly string[];
  /** ms since the epoch of the last change (CSeq retransmission window). */
  readonly lastModified: number;
  /**
   * Insertion order within the AoR, assigned by the store on first save;
   * ties of q are ordered by it (oldest first, as Kamailio's usrloc).
   */
  readonly seq: number;
  /** Saved with registrar flag 0x01: kept in memory only, never persisted. */
  readonly memoryOnly: boolean;
}

export interface LocationStore {
  /**
   * Every stored binding of the AoR (expired ones included until swept),
   * ordered by q descending, then insertion order.
   */
  bindings(tenant: string, table: string, aor: string): readonly Binding[];
  /**
   * Make the AoR hold exactly `next` (an empty list removes it). Bindings
   * whose ruid is new get a seq; changes reach the backend in one
   * transaction (memory-only bindings excepted).
   */
  replace(tenant: string, table: string, aor: string, next: readonly Binding[]): void;
  /** The binding with that ruid, searching every AoR of the table. */
  findByRuid(tenant: string, table: string, ruid: string): Binding | undefined;
  /** Remove up to `limit` bindings expired at `now`; returns how many went. */
  sweepExpired(now: number, limit: number): number;
  /** Number of AoRs held for the tenant (all tables). */
  aorCount(tenant: string): number;
  /** Every AoR held for the tenant with its bindings (expired ones included until swept): `ksr ctl ul dump`, the metrics. */
  entries(tenant: string): { table: string; aor: string; bindings: readonly Binding[] }[];
}

/** A row of the subscriber table (Kamailio auth_db). */
export interface Subscriber {
  readonly username: string;
  readonly domain: string;
  /** Plain-text password, "" when only HA1 values are stored. */
  readonly password: string;
  /** MD5(username:realm:password) (RFC 2617 §3.2.2.2). */
  readonly ha1: string;
  /** MD5(username@domain:realm:password), for UAs that send the domain in the username. */
  readonly ha1b: string;
  /** SHA-256 counterparts (RFC 7616 §3.4.2), "" when not stored. */
  readonly ha1Sha256: string;
  readonly ha1bSha256: string;
}

export interface SubscriberStore {
  /** Exact (username, domain) match. */
  find(tenant: string, username: string, domain: string): Subscriber | undefined;
  /** Every subscriber with that username, any domain (auth_db use_domain = 0). */
  findByUsername(tenant: string, username: string): readonly Subscriber[];
  /** Insert or replace by (tenant, username, domain). */
  put(tenant: string, subscriber: Subscriber): void;
  /** Returns whether a row was removed. */
  remove(tenant: string, username: string, domain: string): boolean;
  list(tenant: string): readonly Subscriber[];
}

/** A row of the address table (Kamailio permissions). */
export interface AddressEntry {
  readonly id: number;
  readonly group: number;
  /** Network address, IPv4 or IPv6 (no brackets). */
  readonly ip: string;
  /** Prefix length: 32/128 for a single address. */
  readonly mask: number;
  /** 0 matches any port. */
  readonly port: number;
  readonly tag: string;
}

export interface AddressStore {
  /** The first entry of the group matching the address and port, if any. */
  match(tenant: string, group: number, ip: string, port: number): AddressEntry | undefined;
  /** Group of the first entry (any group) matching the address and port. */
  matchAnyGroup(tenant: string, ip: string, port: number): AddressEntry | undefined;
  add(tenant: string, entry: Omit<AddressEntry, "id">): AddressEntry;
  /** Remove entries of the group with that network (and port when given); returns how many. */
  remove(tenant: string, group: number, ip: string, mask: number, port?: number): number;
  list(tenant: string): readonly AddressEntry[];
}
