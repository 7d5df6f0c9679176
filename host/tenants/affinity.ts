/**
 * Which worker of a pool owns a message: `hash(Call-ID) mod k`
 * (bench/WORKERS-DESIGN.md §5).
 *
 * Every message of a call carries its Call-ID: the initial request and its
 * retransmissions, the CANCEL (RFC 3261 §9.1), the ACK of a non-2xx final
 * response (§17.1.1.3) and of a 2xx (§13.2.2.4), every in-dialog request
 * from either side (§12.2.1.1), the responses to what we relayed (a proxy
 * leaves the Call-ID alone, §16.6), and a UA's REGISTER refreshes and its
 * retry after a challenge (§10.2, §8.1.3.5). So one worker holds a call's
 * transactions, its dialog and the nonce it was challenged with.
 *
 * The hash is FNV-1a followed by murmur3's 32-bit finalizer. Plain FNV-1a
 * mixes badly modulo a power of two: its lowest bit is the parity of the
 * characters' lowest bits, so Call-IDs that differ by a counter alternate
 * owners in lockstep (the spike measured 21-46 % instead of 50 % on one of
 * two workers). The finalizer spreads every input bit over the low bits.
 */

/** FNV-1a over the string's code units (the front's text is latin1: bytes), then murmur3's fmix32. */
export function callIdHash(callId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < callId.length; i++) h = Math.imul(h ^ callId.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Index (0 ≤ i < poolSize) of the worker that owns the messages of this Call-ID. Call-IDs compare case-sensitively (RFC 3261 §20.8). */
export function callIdOwner(callId: string, poolSize: number): number {
  return poolSize <= 1 ? 0 : callIdHash(callId) % poolSize;
}
