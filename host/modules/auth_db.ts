/**
 * KSR.auth_db (Kamailio auth_db): digest authentication against the
 * subscriber table of the message's tenant (ctx.host.data.subscribers).
 *
 * H(A1) comes from the row's plain-text password when it has one (auth_db
 * calculate_ha1), else from the stored HA1 for the credentials' hash:
 * ha1 / ha1_sha256 for a bare user name, ha1b / ha1b_sha256 when the UA put
 * "@domain" in it (auth_db password_column_2). Return codes as KSR.auth
 * (host/modules/auth.ts): 1 ok, -1 error, -2 wrong password, -3 unknown
 * user, -4 stale nonce, -5 no credentials, -6 nonce reused, -8 user mismatch.
 *
 * The subscriber table is named "subscriber"; is_subscriber and the
 * checks accept only that name (there is one such table per tenant).
 */
import type { MessageContext } from "../core/context.js";
import type { Subscriber } from "../storage/index.js";
import { parseUriCached } from "./msgutil.js";
import { unescapeUriPart } from "../sip/uri.js";
import {
  AUTH_ERROR,
  AUTH_OK,
  AUTH_USER_UNKNOWN,
  checkIdentity,
  checkResponse,
  ha1FromPassword,
  preAuth,
  type CredentialsHeader,
  type DigestCredentials,
} from "./auth.js";
import type { KemiModule } from "./types.js";

export const SUBSCRIBER_TABLE = "subscriber";

function knownTable(ctx: MessageContext, table: string): boolean {
  if (table === SUBSCRIBER_TABLE) return true;
  ctx.host.log("err", `auth_db: unknown table "${table}" (the subscriber table is "${SUBSCRIBER_TABLE}")\n`, ctx);
  return false;
}

/**
 * The subscriber row for the credentials: (user, domain) with the domain
 * from the username or else the realm; without use_domain any row of the
 * user name will do, the exact one preferred.
 */
function subscriberFor(ctx: MessageContext, c: DigestCredentials): Subscriber | undefined {
  const data = ctx.host.data!;
  const domain = (c.domain !== "" ? c.domain : c.realm).toLowerCase();
  const exact = data.subscribers.find(ctx.tenant.id, c.user, domain);
  if (exact !== undefined || data.auth.useDomain) return exact;
  return data.subscribers.findByUsername(ctx.tenant.id, c.user)[0];
}

function storedHa1(s: Subscriber, c: DigestCredentials): string {
  const withDomain = c.domain !== "";
  if (c.algorithm.hash === "MD5") return withDomain ? s.ha1b : s.ha1;
  return withDomain ? s.ha1bSha256 : s.ha1Sha256;
}

/** Kamailio digest_authenticate: pre-auth, subscriber row, response check. */
function authenticate(
  ctx: MessageContext,
  realm: string,
  table: string,
  kind: CredentialsHeader,
  method?: string,
): { code: number; creds?: DigestCredentials } {
  if (ctx.host.data === undefined) {
    ctx.host.log("err", "auth_db: this host has no subscriber database\n", ctx);
    return { code: AUTH_ERROR };
  }
  if (realm.length === 0) {
    ctx.host.log("err", "auth_db: invalid realm parameter - empty value\n", ctx);
    return { code: AUTH_ERROR };
  }
  if (!knownTable(ctx, table)) return { code: AUTH_ERROR };
  const c = preAuth(ctx, realm, kind);
  if (typeof c === "number") return { code: c };
  const row = subscriberFor(ctx, c);
  if (row === undefined) return { code: AUTH_USER_UNKNOWN };
  const ha1 = row.password !== "" ? ha1FromPassword(c, row.password) : storedHa1(row, c);
  if (ha1 === "") {
    ctx.host.log("err", `auth_db: no ${c.algorithm.hash} HA1 stored for ${c.username}\n`, ctx);
    return { code: AUTH_ERROR };
  }
  return { code: checkResponse(ctx, c, ha1, method), creds: c };
}

function authCheck(ctx: MessageContext, realm: string, table: string, flags: number): number {
  if (ctx.isRequest && (ctx.msg.method === "ACK" || ctx.msg.method === "CANCEL")) return AUTH_OK;
  const kind: CredentialsHeader = ctx.isRequest && ctx.msg.method === "REGISTER" ? "authorization" : "proxy-authorization";
  const { code, creds } = authenticate(ctx, realm, table, kind);
  if (code !== AUTH_OK || creds === undefined) return code;
  return checkIdentity(ctx, creds, flags, ctx.host.data!.auth.useDomain);
}

export const authDbModule: KemiModule = {
  name: "auth_db",
  kamailioModule: "auth_db",
  functions: {
    auth_check: {
      params: ["str", "str", "int"],
      returns: "int",
      doc: "Digest check (Authorization for REGISTER, Proxy-Authorization otherwise) against the subscriber table; flags 1: auth user must be the To (REGISTER/PUBLISH) or From user, 2: not for INVITE/BYE/PRACK/UPDATE/MESSAGE. 1 ok; -1 error, -2 wrong password, -3 unknown user, -4 stale nonce, -5 no credentials, -6 nonce reused, -8 user mismatch.",
      run: (ctx, realm: string, table: string, flags: number) => authCheck(ctx, realm, table, flags),
    },
    www_authenticate: {
      params: ["str", "str"],
      returns: "int",
      doc: "Digest check of the Authorization header against the subscriber table. Codes as auth_check.",
      run: (ctx, realm: string, table: string) => authenticate(ctx, realm, table, "authorization").code,
    },
    www_authenticate_method: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: "www_authenticate with the given method in the digest (A2) instead of the request's. Codes as auth_check.",
      run: (ctx, realm: string, table: string, method: string) => authenticate(ctx, realm, table, "authorization", method).code,
    },
    proxy_authenticate: {
      params: ["str", "str"],
      returns: "int",
      // A cfg-script function of Kamailio's auth_db, not one of its KEMI exports.
      doc: "Digest check of the Proxy-Authorization header against the subscriber table. Codes as auth_check.",
      run: (ctx, realm: string, table: string) => authenticate(ctx, realm, table, "proxy-authorization").code,
    },
    is_subscriber: {
      params: ["str", "str", "int"],
      returns: "int",
      doc: "1 if the URI's user (and domain with flag 1) is in the subscriber table, -1 if not (or on error).",
      run(ctx, uri: string, table: string, flags: number) {
        const data = ctx.host.data;
        if (data === undefined || !knownTable(ctx, table)) return -1;
        const u = parseUriCached(uri);
        if (u === null || u.user === undefined) return -1;
        const user = unescapeUriPart(u.user);
        const hit =
          (flags & 1) !== 0
            ? data.subscribers.find(ctx.tenant.id, user, u.host.toLowerCase())
            : data.subscribers.findByUsername(ctx.tenant.id, user)[0];
        return hit === undefined ? -1 : 1;
      },
    },
  },
  // Native functions (Kamailio auth_db cmd exports) for KSR.x.modf.
  native: [
    { name: "www_authorize", params: ["str", "str"], routes: ["REQUEST_ROUTE"], kemi: "www_authenticate", refused: "fixup without free" },
    { name: "www_authenticate", params: ["str", "str"], routes: ["REQUEST_ROUTE"], kemi: "www_authenticate", refused: "fixup without free" },
    { name: "www_authenticate", params: ["str", "str", "str"], routes: ["REQUEST_ROUTE"], kemi: "www_authenticate_method", refused: "fixup without free" },
    { name: "proxy_authorize", params: ["str", "str"], routes: ["REQUEST_ROUTE"], kemi: "proxy_authenticate", refused: "fixup without free" },
    { name: "proxy_authenticate", params: ["str", "str"], routes: ["REQUEST_ROUTE"], kemi: "proxy_authenticate", refused: "fixup without free" },
    { name: "auth_check", params: ["str", "str", "str"], routes: ["REQUEST_ROUTE"], kemi: "auth_check", refused: "fixup without free" },
    { name: "is_subscriber", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "is_subscriber", refused: "fixup without free" },
  ],
};
