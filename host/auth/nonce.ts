/**
 * Digest nonces (RFC 2617 §3.2.1): self-describing, signed, expiring, and
 * usable once per nonce-count value.
 *
 * A nonce carries its expiry time and an id, signed with HMAC-SHA-256 under
 * a per-process secret and the tenant id, so a nonce cannot be forged,
 * lengthened, or presented to another tenant. Issuing one stores nothing:
 * any number of challenges to strangers cannot fill or flush a table.
 * Replays are refused with a bounded table of the nonces *used*, entered
 * only once a response computed with the nonce was verified (commit):
 * - credentials with qop carry a nonce-count; each must be greater than the
 *   last one accepted for the nonce (RFC 2617 §3.2.2: "the server can detect
 *   request replays by maintaining its own copy of this count");
 * - credentials without qop (RFC 2069 style, what Kamailio's auth_challenge
 *   with flags 0 asks for) can use their nonce once.
 * A wrong response does not use the nonce up, so nobody without the
 * password can burn a user's nonce. This is Kamailio's auth with
 * nonce_count and one_time_nonce both on. When the table is full the oldest
 * used entries are forgotten, and every nonce expiring no later than one
 * forgotten is treated as stale from then on (the UA is re-challenged with
 * stale=true): a forgotten nonce is never accepted again. Nonces of an
 * earlier process (another secret) are invalid.
 *
 * Worker processes of one server (`ksr run --workers`) share the secret, so
 * a nonce one worker issued is signed right for all; each issues ids of its
 * own lane (index + k·count) and accepts only those, tracking their use in
 * its own table. A UA's retry after a challenge keeps the Call-ID (RFC 3261
 * §8.1.3.5), so it reaches the worker that issued the nonce; a nonce shown
 * to another worker (another Call-ID) is stale there and re-challenged, so a
 * replay cannot be accepted by a worker that never saw the first use. A
 * worker started with a shared secret treats nonces issued before its start
 * as stale (`notBeforeMs`): a restarted worker's empty table cannot accept
 * a replay of a nonce its predecessor saw used.
 */
import { hash, randomBytes, timingSafeEqual } from "node:crypto";

export interface NonceOptions {
  /** Lifetime of a nonce in seconds (Kamailio auth nonce_expire, default 300). */
  readonly expireSec: number;
  /**
   * How far in the future a nonce's issue time may lie, in seconds, before it
   * is taken as stale (Kamailio nonce_auth_max_drift, default 3).
   */
  readonly maxDriftSec: number;
  /** Most used nonces tracked at once; the oldest are forgotten beyond it. */
  readonly maxTracked: number;
}

export const DEFAULT_NONCE_OPTIONS: NonceOptions = { expireSec: 300, maxDriftSec: 3, maxTracked: 200_000 };

/** Outcome of checking a nonce presented in credentials. */
export type NonceVerdict = "ok" | "invalid" | "stale" | "reused";

/** A nonce whose response was verified at least once. */
export interface UsedNonce {
  readonly expiresAtMs: number;
  /** Highest nonce-count accepted so far (0: used without qop). */
  lastNc: number;
}

/** A nonce that passed check(): what commit() records. */
export interface CheckedNonce {
  readonly key: string;
  readonly expiresAtMs: number;
  readonly nc: number | undefined;
}

const PAYLOAD_BYTES = 8;
const MAC_BYTES = 16;
/** Length of an issued nonce: base64url without padding of payload and MAC. */
const NONCE_CHARS = Math.ceil(((PAYLOAD_BYTES + MAC_BYTES) * 4) / 3);

/** SHA-256's block size in bytes (FIPS 180-4), the HMAC pad length. */
const SHA256_BLOCK_BYTES = 64;

/**
 * HMAC-SHA-256 (RFC 2104) under one key, built from one-shot hashes:
 * H((K ^ opad) || H((K ^ ipad) || text)). The same function as
 * crypto.createHmac("sha256", key), without its per-call key object
 * set-up, which cost several times the hashing itself; the inner pad
 * followed by a fixed prefix of the text is kept per prefix.
 */
export class HmacSha256 {
  private readonly innerPad: Buffer;
  private readonly outerPad: Buffer;
  /** innerPad || prefix, per prefix text (a tenant id: a few per server). */
  private readonly innerStarts = new Map<string, Buffer>();

  constructor(key: Buffer) {
    // RFC 2104 §2: a key longer than the block is hashed first; shorter ones are zero-padded.
    const k = key.length > SHA256_BLOCK_BYTES ? hash("sha256", key, "buffer") : key;
    this.innerPad = Buffer.alloc(SHA256_BLOCK_BYTES, 0x36);
    this.outerPad = Buffer.alloc(SHA256_BLOCK_BYTES, 0x5c);
    for (let i = 0; i < k.length; i++) {
      this.innerPad[i]! ^= k[i]!;
      this.outerPad[i]! ^= k[i]!;
    }
  }

  /** HMAC of the UTF-8 bytes of `prefix` followed by `data`. */
  digest(prefix: string, data: Buffer): Buffer {
    let start = this.innerStarts.get(prefix);
    if (start === undefined) {
      start = Buffer.concat([this.innerPad, Buffer.from(prefix, "utf8")]);
      this.innerStarts.set(prefix, start);
    }
    const inner = hash("sha256", Buffer.concat([start, data]), "buffer");
    return hash("sha256", Buffer.concat([this.outerPad, inner]), "buffer");
  }
}

/** The ids a service issues: index, index + count, index + 2·count, … (one lane per worker process). */
export interface NonceIdLane {
  readonly index: number;
  readonly count: number;
}

export class NonceService {
  /** Used nonces by tenant and id, oldest commit first. */
  protected readonly used = new Map<string, UsedNonce>();
  /** Nonces expiring at or before this were forgotten from `used`: stale. */
  private forgottenUntilMs = 0;
  private nextId: number;
  private readonly lane: NonceIdLane;
  private readonly hmac: HmacSha256;

  constructor(
    secret: Buffer = randomBytes(32),
    readonly options: NonceOptions = DEFAULT_NONCE_OPTIONS,
    lane: NonceIdLane = { index: 0, count: 1 },
    /** Nonces expiring no later than this plus their lifetime were issued before this service: stale. */
    notBeforeMs?: number,
  ) {
    this.lane = lane;
    // Whole seconds (the nonce's expiry resolution), one back: nonces this
    // service issues in its first second must stay good.
    if (notBeforeMs !== undefined) this.forgottenUntilMs = (Math.floor(notBeforeMs / 1000) - 1 + options.expireSec) * 1000;
    // A random start in the lane: nonces of an earlier run under the same secret are not tracked anew.
    const slots = Math.floor((0xffffffff - lane.index) / lane.count) + 1;
    this.nextId = lane.index + lane.count * (randomBytes(4).readUInt32BE(0) % slots);
    this.hmac = new HmacSha256(secret);
  }

  /** A fresh nonce for a challenge sent at `nowMs`. Stores nothing. */
  issue(tenant: string, nowMs: number): string {
    const id = this.nextId;
    // Past 2^32 - 1 the lane starts again at its index.
    this.nextId = this.nextId + this.lane.count > 0xffffffff ? this.lane.index : this.nextId + this.lane.count;
    const expiresSec = Math.floor(nowMs / 1000) + this.options.expireSec;
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    payload.writeUInt32BE(expiresSec >>> 0, 0);
    payload.writeUInt32BE(id, 4);
    return Buffer.concat([payload, this.mac(tenant, payload)]).toString("base64url");
  }

  /**
   * Check a nonce presented with credentials, recording nothing: `nc` is
   * the credentials' nonce-count (undefined without qop). "ok" comes with
   * what commit() needs once the response is verified.
   */
  check(tenant: string, nonce: string, nowMs: number, nc: number | undefined): Exclude<NonceVerdict, "ok"> | CheckedNonce {
    // Exactly the characters issued: base64url decoding ignores extra
    // trailing bits, so a lengthened nonce would decode to the same bytes.
    if (nonce.length !== NONCE_CHARS || !/^[A-Za-z0-9_-]+$/.test(nonce)) return "invalid";
    const raw = Buffer.from(nonce, "base64url");
    if (raw.length !== PAYLOAD_BYTES + MAC_BYTES) return "invalid";
    const payload = raw.subarray(0, PAYLOAD_BYTES);
    if (!timingSafeEqual(raw.subarray(PAYLOAD_BYTES), this.mac(tenant, payload))) return "invalid";
    const expiresAtMs = payload.readUInt32BE(0) * 1000;
    const id = payload.readUInt32BE(4);
    if (!this.tracksUseOf(id)) return "stale";
    if (expiresAtMs <= nowMs || expiresAtMs <= this.forgottenUntilMs) return "stale";
    const issuedMs = expiresAtMs - this.options.expireSec * 1000;
    if (issuedMs - this.options.maxDriftSec * 1000 > nowMs) return "stale";
    const key = `${tenant}\u0000${id}`;
    const state = this.used.get(key);
    if (state !== undefined && state.expiresAtMs === expiresAtMs) {
      // Without qop a nonce is good once; with qop every count must grow.
      if (nc === undefined || state.lastNc === 0 || nc <= state.lastNc) return "reused";
    }
    return { key, expiresAtMs, nc };
  }

  /**
   * Whether this service tracks the use of a nonce with that id: a worker
   * of a pool only its own lane's (the issuer tracks the use); a service
   * whose table is shared through Redis every id.
   */
  protected tracksUseOf(id: number): boolean {
    return id % this.lane.count === this.lane.index;
  }

  /** The response computed with a checked nonce was right: record its use. */
  commit(checked: CheckedNonce, nowMs: number): void {
    this.record(checked, nowMs);
  }

  /** Enter a use in the table (a commit here, or one another server announced). */
  protected record(checked: CheckedNonce, nowMs: number): void {
    this.forgetExpired(nowMs);
    const state = this.used.get(checked.key);
    if (state !== undefined && state.expiresAtMs === checked.expiresAtMs) {
      if (checked.nc !== undefined && checked.nc > state.lastNc) state.lastNc = checked.nc;
      return;
    }
    this.used.delete(checked.key); // an id reused after 2^32 nonces starts afresh
    this.used.set(checked.key, { expiresAtMs: checked.expiresAtMs, lastNc: checked.nc ?? 0 });
    while (this.used.size > this.options.maxTracked) {
      const [oldestKey, oldest] = this.used.entries().next().value as [string, UsedNonce];
      this.used.delete(oldestKey);
      if (oldest.expiresAtMs > this.forgottenUntilMs) this.forgottenUntilMs = oldest.expiresAtMs;
    }
  }

  /** Check and, when it passes, commit at once (a caller that has verified the response already). */
  verify(tenant: string, nonce: string, nowMs: number, nc: number | undefined): NonceVerdict {
    const r = this.check(tenant, nonce, nowMs, nc);
    if (typeof r === "string") return r;
    this.commit(r, nowMs);
    return "ok";
  }

  /** Number of used nonces currently tracked (for tests and stats). */
  get trackedCount(): number {
    return this.used.size;
  }

  private mac(tenant: string, payload: Buffer): Buffer {
    // The tenant id, NUL, then the payload: a nonce of one tenant does not verify for another.
    return this.hmac.digest(`${tenant}\u0000`, payload).subarray(0, MAC_BYTES);
  }

  /** Commits come in time order, so the first entries expire first. */
  private forgetExpired(nowMs: number): void {
    let budget = 16;
    for (const [key, state] of this.used) {
      if (budget-- === 0 || state.expiresAtMs > nowMs) break;
      this.used.delete(key);
    }
  }
}
