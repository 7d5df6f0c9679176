/**
 * A digest UA for tests, written from RFC 2617 §3.2.2 / RFC 7616 §3.4
 * independently of host/auth: reads a WWW-/Proxy-Authenticate value and
 * builds the matching Authorization / Proxy-Authorization value.
 */
import { createHash } from "node:crypto";

export interface Challenge {
  readonly realm: string;
  readonly nonce: string;
  readonly algorithm: string | undefined;
  readonly qop: string | undefined;
  readonly stale: boolean;
}

/** Parse `Digest realm="..", nonce="..", ...` (quoted or token values). */
export function parseChallenge(value: string): Challenge {
  const m = /^\s*Digest\s+(.*)$/i.exec(value);
  if (m === null) throw new Error(`not a digest challenge: ${value}`);
  const params = new Map<string, string>();
  const re = /([A-Za-z-]+)=("((?:[^"\\]|\\.)*)"|[^,\s]+)\s*(?:,\s*|$)/g;
  for (let r = re.exec(m[1]!); r !== null; r = re.exec(m[1]!)) {
    params.set(r[1]!.toLowerCase(), r[3] !== undefined ? r[3].replace(/\\(.)/g, "$1") : r[2]!);
  }
  return {
    realm: params.get("realm") ?? "",
    nonce: params.get("nonce") ?? "",
    algorithm: params.get("algorithm"),
    qop: params.get("qop"),
    stale: params.get("stale")?.toLowerCase() === "true",
  };
}

function h(alg: string, text: string): string {
  return createHash(alg.toUpperCase().startsWith("SHA-256") ? "sha256" : "md5")
    .update(text, "utf8")
    .digest("hex");
}

export interface AnswerSpec {
  readonly username: string;
  readonly password: string;
  readonly method: string;
  readonly uri: string;
  /** Use qop=auth when the challenge offers it. */
  readonly nc?: number;
  readonly cnonce?: string;
  /** Override the algorithm named in the credentials. */
  readonly algorithm?: string;
  /** Override the realm (e.g. to answer for another one). */
  readonly realm?: string;
}

/** The credentials value answering the challenge. */
export function answer(ch: Challenge, a: AnswerSpec): string {
  const alg = a.algorithm ?? ch.algorithm ?? "MD5";
  const realm = a.realm ?? ch.realm;
  let ha1 = h(alg, `${a.username}:${realm}:${a.password}`);
  const cnonce = a.cnonce ?? "0a4f113b";
  if (alg.toLowerCase().endsWith("-sess")) ha1 = h(alg, `${ha1}:${ch.nonce}:${cnonce}`);
  const ha2 = h(alg, `${a.method}:${a.uri}`);
  const useQop = ch.qop !== undefined && ch.qop.split(",").map((q) => q.trim()).includes("auth");
  const nc = (a.nc ?? 1).toString(16).padStart(8, "0");
  const response = useQop ? h(alg, `${ha1}:${ch.nonce}:${nc}:${cnonce}:auth:${ha2}`) : h(alg, `${ha1}:${ch.nonce}:${ha2}`);
  let v = `Digest username="${a.username}", realm="${realm}", nonce="${ch.nonce}", uri="${a.uri}", response="${response}"`;
  if (a.algorithm !== undefined || ch.algorithm !== undefined) v += `, algorithm=${alg}`;
  if (useQop) v += `, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
  return v;
}
