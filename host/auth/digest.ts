/**
 * HTTP Digest as SIP uses it (RFC 3261 §22.4): RFC 2617 with MD5, and the
 * SHA-256 algorithm of RFC 7616 that RFC 8760 brings to SIP. Every text
 * argument is a binary string (one char per byte, the message convention of
 * host/sip/message.ts) so that non-ASCII user names hash as their wire bytes.
 */
import { hash } from "node:crypto";

export type DigestHash = "MD5" | "SHA-256";

export interface DigestAlgorithm {
  readonly hash: DigestHash;
  /** The "-sess" variant: H(A1) is keyed with nonce and cnonce (RFC 2617 §3.2.2.2). */
  readonly session: boolean;
  /** Name as written in challenges. */
  readonly name: string;
}

/**
 * The algorithm named by an `algorithm` parameter; an absent parameter means
 * MD5 (RFC 2617 §3.2.1). Undefined for algorithms not supported here.
 */
export function parseAlgorithm(text: string | undefined): DigestAlgorithm | undefined {
  const name = (text ?? "MD5").trim().toUpperCase();
  switch (name) {
    case "MD5":
      return { hash: "MD5", session: false, name: "MD5" };
    case "MD5-SESS":
      return { hash: "MD5", session: true, name: "MD5-sess" };
    case "SHA-256":
      return { hash: "SHA-256", session: false, name: "SHA-256" };
    case "SHA-256-SESS":
      return { hash: "SHA-256", session: true, name: "SHA-256-sess" };
    default:
      return undefined;
  }
}

/** Length of a hex digest of the hash. */
export function hexLength(hash: DigestHash): number {
  return hash === "MD5" ? 32 : 64;
}

/** H(data) as lowercase hex (RFC 2617 §3.2.1 / RFC 7616 §3.4.1). */
export function digestHex(algorithm: DigestHash, data: string): string {
  // One-shot: a Hash object per digest costs about twice as much.
  return hash(algorithm === "MD5" ? "md5" : "sha256", Buffer.from(data, "latin1"), "hex");
}

/** H(A1) = H(username ":" realm ":" password) (RFC 2617 §3.2.2.2). */
export function computeHa1(hash: DigestHash, username: string, realm: string, password: string): string {
  return digestHex(hash, `${username}:${realm}:${password}`);
}

/** H(A1) of the "-sess" algorithms: H(H(username:realm:password) ":" nonce ":" cnonce). */
export function sessionHa1(hash: DigestHash, ha1: string, nonce: string, cnonce: string): string {
  return digestHex(hash, `${ha1}:${nonce}:${cnonce}`);
}

export interface ResponseInput {
  readonly hash: DigestHash;
  /** H(A1), already session-keyed for "-sess" algorithms. */
  readonly ha1: string;
  readonly nonce: string;
  readonly method: string;
  /** The digest-uri parameter of the credentials. */
  readonly uri: string;
  /** "auth", "auth-int", or undefined for RFC 2069 compatibility (no qop). */
  readonly qop?: string;
  readonly nc?: string;
  readonly cnonce?: string;
  /** Message body, only for qop=auth-int (A2 includes H(entity-body)). */
  readonly body?: string;
}

/**
 * request-digest (RFC 2617 §3.2.2.1):
 *   qop present: KD(H(A1), nonce:nc:cnonce:qop:H(A2))
 *   qop absent:  KD(H(A1), nonce:H(A2))
 * with A2 = method:digest-uri, plus :H(entity-body) for auth-int.
 */
export function digestResponse(p: ResponseInput): string {
  const a2 =
    p.qop !== undefined && p.qop.toLowerCase() === "auth-int"
      ? `${p.method}:${p.uri}:${digestHex(p.hash, p.body ?? "")}`
      : `${p.method}:${p.uri}`;
  const ha2 = digestHex(p.hash, a2);
  if (p.qop === undefined) return digestHex(p.hash, `${p.ha1}:${p.nonce}:${ha2}`);
  return digestHex(p.hash, `${p.ha1}:${p.nonce}:${p.nc ?? ""}:${p.cnonce ?? ""}:${p.qop}:${ha2}`);
}

/** A JS (UTF-16) string as the binary string of its UTF-8 bytes. */
export function toBinary(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}
