/**
 * Digest nonces (RFC 2617 §3.2.1): self-describing, signed, expiring, and
 * usable once per nonce-count value.
 *
 * A nonce carries its expiry time and an id, signed with HMAC-SHA-256 under
 * a per-process secret and the tenant id, so a nonce cannot be forged,
 * lengthened, or presented to another tenant. Replays are refused with a
 * bounded table of the nonces handed out:
 * - credentials with qop carry a nonce-count; each must be greater than the
 *   last one accepted for the nonce (RFC 2617 §3.2.2: "the server can detect
 *   request replays by maintaining its own copy of this count");
 * - credentials without qop (RFC 2069 style, what Kamailio's auth_challenge
 *   with flags 0 asks for) can use their nonce once.
 * This is Kamailio's auth with nonce_count and one_time_nonce both on. A
 * correctly signed nonce no longer in the table (forgotten under load) is
 * treated as stale, so the UA is re-challenged with stale=true; it is never
 * accepted. Nonces of an earlier process (another secret) are invalid.
 *
 * Worker processes of one server (`ksr run --workers`) share the secret, so
 * a nonce one worker issued verifies on any other; each keeps its own
 * replay table. A UA's retry after a challenge keeps the Call-ID (RFC 3261
 * §8.1.3.5), so it reaches the worker that issued the nonce; a nonce shown
 * to another worker (another Call-ID) is signed right but not in its table:
 * stale, re-challenged, never accepted twice. Each worker issues ids of its
 * own lane (index + k·count), so no two workers track the same id.
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
  /** Most nonces tracked at once; the oldest are forgotten beyond it. */
  readonly maxTracked: number;
}

export const DEFAULT_NONCE_OPTIONS: NonceOptions = { expireSec: 300, maxDriftSec: 3, maxTracked: 200_000 };

/** Outcome of checking a nonce presented in credentials. */
export type NonceVerdict = "ok" | "invalid" | "stale" | "reused";

interface NonceState {
  readonly expiresAtMs: number;
  used: boolean;
  /** Highest nonce-count accepted so far (0: none). */
  lastNc: number;
}

const PAYLOAD_BYTES = 8;
const MAC_BYTES = 16;

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
  private readonly tracked = new Map<number, NonceState>();
  private nextId: number;
  private readonly lane: NonceIdLane;
  private readonly hmac: HmacSha256;

  constructor(
    secret: Buffer = randomBytes(32),
    readonly options: NonceOptions = DEFAULT_NONCE_OPTIONS,
    lane: NonceIdLane = { index: 0, count: 1 },
  ) {
    this.lane = lane;
    // A random start in the lane: nonces of an earlier run under the same secret are not tracked anew.
    const slots = Math.floor((0xffffffff - lane.index) / lane.count) + 1;
    this.nextId = lane.index + lane.count * (randomBytes(4).readUInt32BE(0) % slots);
    this.hmac = new HmacSha256(secret);
  }

  /** A fresh nonce for a challenge sent at `nowMs`. */
  issue(tenant: string, nowMs: number): string {
    this.forgetExpired(nowMs);
    const id = this.nextId;
    // Past 2^32 - 1 the lane starts again at its index.
    this.nextId = this.nextId + this.lane.count > 0xffffffff ? this.lane.index : this.nextId + this.lane.count;
    const expiresSec = Math.floor(nowMs / 1000) + this.options.expireSec;
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    payload.writeUInt32BE(expiresSec >>> 0, 0);
    payload.writeUInt32BE(id, 4);
    this.tracked.delete(id); // an id reused after 2^32 nonces starts afresh
    this.tracked.set(id, { expiresAtMs: expiresSec * 1000, used: false, lastNc: 0 });
    while (this.tracked.size > this.options.maxTracked) {
      const oldest = this.tracked.keys().next().value as number;
      this.tracked.delete(oldest);
    }
    return Buffer.concat([payload, this.mac(tenant, payload)]).toString("base64url");
  }

  /**
   * Check a nonce and, when it passes, record its use: `nc` is the
   * credentials' nonce-count (undefined without qop).
   */
  verify(tenant: string, nonce: string, nowMs: number, nc: number | undefined): NonceVerdict {
    if (!/^[A-Za-z0-9_-]+$/.test(nonce)) return "invalid";
    const raw = Buffer.from(nonce, "base64url");
    if (raw.length !== PAYLOAD_BYTES + MAC_BYTES) return "invalid";
    const payload = raw.subarray(0, PAYLOAD_BYTES);
    if (!timingSafeEqual(raw.subarray(PAYLOAD_BYTES), this.mac(tenant, payload))) return "invalid";
    const expiresSec = payload.readUInt32BE(0);
    const id = payload.readUInt32BE(4);
    if (expiresSec * 1000 <= nowMs) return "stale";
    const issuedSec = expiresSec - this.options.expireSec;
    if ((issuedSec - this.options.maxDriftSec) * 1000 > nowMs) return "stale";
    const state = this.tracked.get(id);
    if (state === undefined || state.expiresAtMs !== expiresSec * 1000) return "stale";
    if (nc === undefined) {
      if (state.used) return "reused";
    } else if (nc <= state.lastNc || (state.used && state.lastNc === 0)) {
      return "reused";
    }
    state.used = true;
    if (nc !== undefined) state.lastNc = nc;
    return "ok";
  }

  /** Number of nonces currently tracked (for tests and stats). */
  get trackedCount(): number {
    return this.tracked.size;
  }

  private mac(tenant: string, payload: Buffer): Buffer {
    // The tenant id, NUL, then the payload: a nonce of one tenant does not verify for another.
    return this.hmac.digest(`${tenant}\u0000`, payload).subarray(0, MAC_BYTES);
  }

  /** Ids grow with time, so the expired nonces are at the front of the map. */
  private forgetExpired(nowMs: number): void {
    let budget = 16;
    for (const [id, state] of this.tracked) {
      if (budget-- === 0 || state.expiresAtMs > nowMs) break;
      this.tracked.delete(id);
    }
  }
}
