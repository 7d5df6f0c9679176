/**
 * KSR.auth (Kamailio auth): digest challenges and the credential checks
 * shared with KSR.auth_db (RFC 3261 §22, RFC 2617, RFC 7616 / RFC 8760 for
 * SHA-256).
 *
 * Return codes are Kamailio's auth_cfg_result_t: 1 ok, -1 error (bad or
 * unparsable credentials, forged nonce), -2 wrong
 * password, -3 unknown user, -4 stale nonce, -5 no credentials for the
 * realm, -6 nonce reused, -8 auth user differs from the From/To user.
 * Challenges: 1 sent, -1 not a request, -3 the reply could not be sent.
 *
 * Differences from Kamailio's defaults, both per RFC 2617: nonces cannot be
 * replayed (nonce_count and one_time_nonce on, see host/auth/nonce.ts), and a
 * challenge that follows a check which found the nonce stale says
 * stale=true by itself (§3.2.1), so the UA retries without asking its user.
 *
 * Not provided: pv_www_authenticate / pv_proxy_authenticate (HEAD only),
 * auth_get_www_authenticate, auth_algorithm, the per-message integrity
 * checks of auth_checks_* (replays are refused by the nonce state instead).
 */
import { timingSafeEqual } from "node:crypto";
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import { DEFAULT_AUTH_SETTINGS, type AuthSettings } from "../storage/index.js";
import { NonceService, type CheckedNonce } from "../auth/nonce.js";
import { computeHa1, digestResponse, hexLength, parseAlgorithm, sessionHa1, toBinary, type DigestAlgorithm } from "../auth/digest.js";
import { headerIndexes, parseCredentials, parseUriCached, splitAuthUsername, toBody } from "./msgutil.js";
import { replyWithHeaders } from "./local-reply.js";
import type { KemiModule } from "./types.js";

/** Kamailio auth_cfg_result_t. */
export const AUTH_OK = 1;
export const AUTH_ERROR = -1;
export const AUTH_INVALID_PASSWORD = -2;
export const AUTH_USER_UNKNOWN = -3;
export const AUTH_STALE_NONCE = -4;
export const AUTH_NO_CREDENTIALS = -5;
export const AUTH_NONCE_REUSED = -6;
export const AUTH_USER_MISMATCH = -8;

/** Challenge flags (www_challenge & co). */
const CHALLENGE_QOP_AUTH = 1;
const CHALLENGE_QOP_AUTH_INT = 2;
const CHALLENGE_STALE = 16;

/** auth_check / pv_auth_check flags. */
export const CHECK_ID = 1;
export const CHECK_SKIP_FORWARDED = 2;

export type CredentialsHeader = "authorization" | "proxy-authorization";

/** Digest credentials that passed the syntax and nonce checks. */
export interface DigestCredentials {
  /** Index of the header in the message (consume_credentials removes it). */
  readonly index: number;
  /** username as sent ("alice" or "alice@example.com"). */
  readonly username: string;
  readonly user: string;
  /** Domain given in the username, "" when none. */
  readonly domain: string;
  readonly realm: string;
  readonly nonce: string;
  readonly uri: string;
  readonly response: string;
  readonly algorithm: DigestAlgorithm;
  readonly qop: string | undefined;
  readonly nc: string | undefined;
  readonly cnonce: string | undefined;
  /** The nonce as checked: used up (committed) only once the response is verified. */
  readonly nonceCheck: CheckedNonce;
}

/** Nonce state of hosts without data services (challenges work without a database). */
const processNonces = new NonceService();

export function noncesOf(ctx: MessageContext): NonceService {
  return ctx.host.data?.nonces ?? processNonces;
}

export function authSettingsOf(ctx: MessageContext): AuthSettings {
  return ctx.host.data?.auth ?? DEFAULT_AUTH_SETTINGS;
}

/** The credentials header pre-auth found for the realm (Kamailio marks it "authorized"). */
const markedCredentials = new ContextSlot<number>("auth.markedCredentials");
/** The last check found the nonce stale: the next challenge says stale=true. */
const staleNonce = new WeakSet<MessageContext>();

/** Methods that are never challenged (RFC 3261 §22.1: ACK and CANCEL cannot be; PRACK as Kamailio). */
function exemptFromAuth(ctx: MessageContext): boolean {
  const m = ctx.msg.method;
  return m === "ACK" || m === "CANCEL" || m === "PRACK";
}

/**
 * The first credentials header of that kind whose realm is `realm`
 * (case-insensitive); "error" when one cannot be parsed, undefined when none.
 */
function findCredentials(ctx: MessageContext, realm: string, kind: CredentialsHeader) {
  for (const i of headerIndexes(ctx.msg, kind)) {
    const parsed = parseCredentials(ctx.msg.headers[i]!.value);
    if (parsed === null) return "error" as const;
    if (parsed.scheme.toLowerCase() !== "digest") continue;
    const r = parsed.params.get("realm");
    if (r !== undefined && r.toLowerCase() === realm.toLowerCase()) return { index: i, params: parsed.params };
  }
  return undefined;
}

/**
 * Kamailio's pre_auth: find the credentials for the realm, check their form
 * (RFC 2617 §3.2.2) and their nonce. A number is the final answer; an
 * object means the response digest is to be checked.
 */
export function preAuth(ctx: MessageContext, realm: string, kind: CredentialsHeader): number | DigestCredentials {
  if (exemptFromAuth(ctx)) return AUTH_OK;
  if (!ctx.isRequest) {
    ctx.host.log("err", "auth: credentials can only be checked on requests\n", ctx);
    return AUTH_ERROR;
  }
  const found = findCredentials(ctx, realm, kind);
  if (found === "error") {
    ctx.host.log("err", "auth: cannot parse credentials\n", ctx);
    return AUTH_ERROR;
  }
  if (found === undefined) return AUTH_NO_CREDENTIALS;
  markedCredentials.set(ctx, found.index);
  const p = found.params;
  const username = p.get("username") ?? "";
  const nonce = p.get("nonce") ?? "";
  const uri = p.get("uri") ?? "";
  const response = p.get("response") ?? "";
  const qop = p.get("qop");
  const nc = p.get("nc");
  const cnonce = p.get("cnonce");
  if (username === "" || nonce === "" || uri === "" || response === "") {
    ctx.host.log("err", "auth: credentials are not filled properly\n", ctx);
    return AUTH_ERROR;
  }
  let algorithm = parseAlgorithm(p.get("algorithm"));
  if (algorithm === undefined) {
    // Kamailio 5.6 does not look at the algorithm parameter of credentials:
    // its auth module computes the response with the algorithm it is
    // configured for. So here: the preferred challenge algorithm. The
    // response must still match it, so nothing is accepted that the
    // password does not prove.
    algorithm = parseAlgorithm(authSettingsOf(ctx).challengeAlgorithms[0])!;
    ctx.host.log("dbg", `auth: unknown digest algorithm "${p.get("algorithm")}", checking with ${algorithm.name}\n`, ctx);
  }
  let ncValue: number | undefined;
  if (qop !== undefined) {
    const q = qop.toLowerCase();
    // qop needs cnonce and nc (RFC 2617 §3.2.2: 8 hex digits; fewer are
    // taken as Kamailio takes them, the response covers nc as sent).
    if ((q !== "auth" && q !== "auth-int") || cnonce === undefined || cnonce === "" || nc === undefined || !/^[0-9a-fA-F]{1,8}$/.test(nc)) {
      ctx.host.log("err", "auth: bad qop, nc or cnonce in credentials\n", ctx);
      return AUTH_ERROR;
    }
    ncValue = parseInt(nc, 16);
    if (ncValue === 0) return AUTH_ERROR;
  }
  const checked = noncesOf(ctx).check(ctx.tenant.id, nonce, ctx.host.now(), ncValue);
  switch (checked) {
    case "invalid":
      ctx.host.log("info", "auth: invalid nonce value received\n", ctx);
      return AUTH_ERROR;
    case "stale":
      staleNonce.add(ctx);
      return AUTH_STALE_NONCE;
    case "reused":
      return AUTH_NONCE_REUSED;
  }
  const { user, domain } = splitAuthUsername(username);
  return {
    index: found.index,
    username,
    user,
    domain,
    realm: p.get("realm")!,
    nonce,
    uri,
    response,
    algorithm,
    qop,
    nc,
    cnonce,
    nonceCheck: checked,
  };
}

/**
 * Compare the credentials' response with the one computed from H(A1)
 * (RFC 2617 §3.2.2.1). `ha1` is for the credentials' hash; "-sess" keying
 * is applied here; `method` is the request's unless given. 1 ok, -2 wrong
 * password, -1 malformed response.
 */
export function checkResponse(ctx: MessageContext, c: DigestCredentials, ha1: string, method = ctx.msg.method): number {
  const len = hexLength(c.algorithm.hash);
  if (c.response.length !== len || ha1.length !== len) {
    ctx.host.log("err", "auth: digest response or HA1 of the wrong length\n", ctx);
    return AUTH_ERROR;
  }
  const keyed = c.algorithm.session ? sessionHa1(c.algorithm.hash, ha1.toLowerCase(), c.nonce, c.cnonce ?? "") : ha1.toLowerCase();
  const expected = digestResponse({
    hash: c.algorithm.hash,
    ha1: keyed,
    nonce: c.nonce,
    method,
    uri: c.uri,
    qop: c.qop,
    nc: c.nc,
    cnonce: c.cnonce,
    body: ctx.msg.body,
  });
  const ok = timingSafeEqual(Buffer.from(expected, "latin1"), Buffer.from(c.response.toLowerCase(), "latin1"));
  if (!ok) return AUTH_INVALID_PASSWORD;
  // Only a right response uses the nonce (or its nonce-count) up: a stranger
  // replaying it with a wrong one cannot burn a user's nonce.
  noncesOf(ctx).commit(c.nonceCheck, ctx.host.now());
  return AUTH_OK;
}

/** H(A1) from a plain-text password for these credentials (username as sent, realm as matched). */
export function ha1FromPassword(c: DigestCredentials, password: string): string {
  return computeHa1(c.algorithm.hash, c.username, c.realm, toBinary(password));
}

/**
 * auth_check's identity check (flag 1): the auth user must be the To user
 * of REGISTER/PUBLISH (where From and To users must agree, and for PUBLISH
 * the R-URI user too) and the From user of other requests; with flag 2
 * INVITE, BYE, PRACK, UPDATE and MESSAGE are exempt (anonymous callers).
 */
export function checkIdentity(ctx: MessageContext, c: DigestCredentials, flags: number, useDomain: boolean): number {
  if ((flags & CHECK_ID) === 0) return AUTH_OK;
  const from = toBody(ctx.msg, "from")?.uri;
  if (from === null || from === undefined) return AUTH_ERROR;
  const method = ctx.msg.method;
  const registerLike = method === "REGISTER" || method === "PUBLISH";
  let to = from;
  if (registerLike) {
    const t = toBody(ctx.msg, "to")?.uri;
    if (t === null || t === undefined) return AUTH_ERROR;
    to = t;
  }
  const exempt = (flags & CHECK_SKIP_FORWARDED) !== 0 && ["INVITE", "BYE", "PRACK", "UPDATE", "MESSAGE"].includes(method);
  if (!exempt && c.user !== (to.user ?? "")) return AUTH_USER_MISMATCH;
  if (registerLike) {
    if ((from.user ?? "") !== (to.user ?? "")) return AUTH_USER_MISMATCH;
    if (useDomain && from.host.toLowerCase() !== to.host.toLowerCase()) return AUTH_USER_MISMATCH;
    if (method === "PUBLISH") {
      const r = parseUriCached(ctx.requestUri);
      if (r === null) return AUTH_ERROR;
      if ((from.user ?? "") !== (r.user ?? "")) return AUTH_USER_MISMATCH;
      if (useDomain && from.host.toLowerCase() !== r.host.toLowerCase()) return AUTH_USER_MISMATCH;
    }
  }
  return AUTH_OK;
}

// ------------------------------------------------------------ challenges

function quote(text: string): string {
  return '"' + text.replace(/["\\]/g, "\\$&") + '"';
}

/**
 * Send a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) challenge
 * (RFC 3261 §22.1, §22.3): one header per configured algorithm, preferred
 * first, all with the same fresh nonce (RFC 8760 §2.4).
 */
export function challenge(ctx: MessageContext, realm: string, flags: number, kind: "www" | "proxy"): number {
  const settings = authSettingsOf(ctx);
  const qop = (flags & CHALLENGE_QOP_AUTH_INT) !== 0 ? "auth-int" : (flags & CHALLENGE_QOP_AUTH) !== 0 ? "auth" : undefined;
  const stale = (flags & CHALLENGE_STALE) !== 0 || staleNonce.has(ctx);
  const algorithms = settings.challengeAlgorithms.length > 0 ? settings.challengeAlgorithms : DEFAULT_AUTH_SETTINGS.challengeAlgorithms;
  // A challenge for MD5 alone leaves the algorithm out, as Kamailio does
  // (MD5 is the default, RFC 2617 §3.2.1).
  const nameAlgorithm = algorithms.length > 1 || algorithms[0] !== "MD5";
  if (!ctx.isRequest) {
    ctx.host.log("err", "auth: cannot challenge a reply\n", ctx);
    return -1;
  }
  const nonce = noncesOf(ctx).issue(ctx.tenant.id, ctx.host.now());
  const name = kind === "www" ? "WWW-Authenticate" : "Proxy-Authenticate";
  const lines = algorithms.map((alg) => {
    let v = `${name}: Digest realm=${quote(realm)}, nonce="${nonce}"`;
    if (stale) v += ", stale=true";
    if (nameAlgorithm) v += `, algorithm=${alg}`;
    if (qop !== undefined) v += `, qop="${qop}"`;
    return v + "\r\n";
  });
  const sent =
    kind === "www"
      ? replyWithHeaders(ctx, 401, "Unauthorized", lines)
      : replyWithHeaders(ctx, 407, "Proxy Authentication Required", lines);
  return sent > 0 ? 1 : -3;
}

// ----------------------------------------------------------------- table

export const authModule: KemiModule = {
  name: "auth",
  kamailioModule: "auth",
  functions: {
    auth_challenge: {
      params: ["str", "int"],
      returns: "int",
      doc: "Challenge: 401 with WWW-Authenticate for REGISTER, 407 with Proxy-Authenticate otherwise. Flags: 1 qop=auth, 2 qop=auth-int, 16 stale=true. 1 sent, -3 send failed; ACK/CANCEL: 1, nothing sent.",
      run(ctx, realm: string, flags: number) {
        if (ctx.isRequest && (ctx.msg.method === "ACK" || ctx.msg.method === "CANCEL")) return 1;
        return challenge(ctx, realm, flags, ctx.isRequest && ctx.msg.method === "REGISTER" ? "www" : "proxy");
      },
    },
    www_challenge: {
      params: ["str", "int"],
      returns: "int",
      doc: "Send 401 Unauthorized with a WWW-Authenticate digest challenge (flags as auth_challenge). 1 sent, -3 send failed.",
      run: (ctx, realm: string, flags: number) => challenge(ctx, realm, flags, "www"),
    },
    proxy_challenge: {
      params: ["str", "int"],
      returns: "int",
      doc: "Send 407 Proxy Authentication Required with a Proxy-Authenticate digest challenge (flags as auth_challenge). 1 sent, -3 send failed.",
      run: (ctx, realm: string, flags: number) => challenge(ctx, realm, flags, "proxy"),
    },
    consume_credentials: {
      params: [],
      returns: "int",
      doc: "Remove the credentials header that the last auth check used from the forwarded request. 1 ok, -1 none (or ACK/CANCEL/PRACK).",
      run(ctx) {
        if (!ctx.isRequest || exemptFromAuth(ctx)) return -1;
        const index = markedCredentials.get(ctx);
        if (index === undefined) {
          ctx.host.log("err", "auth: no authorized credentials found (error in scripts)\n", ctx);
          return -1;
        }
        ctx.edits.replaced.set(index, "");
        return 1;
      },
    },
    has_credentials: {
      params: ["str"],
      returns: "int",
      doc: "1 if a Proxy-Authorization or Authorization header has digest credentials for the realm, -1 otherwise.",
      run(ctx, realm: string) {
        for (const kind of ["proxy-authorization", "authorization"] as const) {
          const found = findCredentials(ctx, realm, kind);
          if (found !== undefined && found !== "error") return 1;
        }
        return -1;
      },
    },
    pv_auth_check: {
      params: ["str", "str", "int", "int"],
      returns: "int",
      doc: "Check credentials (Authorization for REGISTER, else Proxy-Authorization) against the given password (flags 1: it is an HA1). checks 1: auth user must match From/To. Codes as auth_db.auth_check.",
      run(ctx, realm: string, password: string, flags: number, checks: number) {
        if (exemptFromAuth(ctx)) return AUTH_OK;
        const kind: CredentialsHeader = ctx.isRequest && ctx.msg.method === "REGISTER" ? "authorization" : "proxy-authorization";
        const c = preAuth(ctx, realm, kind);
        if (typeof c === "number") return c;
        const ha1 = (flags & 1) !== 0 ? password : ha1FromPassword(c, password);
        const rc = checkResponse(ctx, c, ha1);
        if (rc !== AUTH_OK) return rc;
        return checkIdentity(ctx, c, checks, false);
      },
    },
  },
  // Native functions (Kamailio auth cmd exports) for KSR.x.modf.
  native: [
    { name: "consume_credentials", params: [], routes: ["REQUEST_ROUTE"], kemi: "consume_credentials" },
    { name: "www_challenge", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "www_challenge", refused: "fixup without free" },
    { name: "proxy_challenge", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "proxy_challenge", refused: "fixup without free" },
    { name: "auth_challenge", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "ONREPLY_ROUTE"], kemi: "auth_challenge", refused: "fixup without free" },
    { name: "has_credentials", params: ["str"], routes: ["REQUEST_ROUTE"], kemi: "has_credentials", refused: "fixup without free" },
    { name: "pv_auth_check", params: ["str", "str", "str", "str"], routes: ["REQUEST_ROUTE"], kemi: "pv_auth_check", refused: "fixup without free" },
  ],
};
