/**
 * KSR.auth and KSR.auth_db: challenges (401/407, qop, stale, algorithms),
 * every auth_check return code, replay and expiry of nonces on the host's
 * clock, MD5 and SHA-256, HA1 columns, consume/has_credentials, tenant
 * isolation of subscribers.
 */
import { describe, expect, it } from "vitest";
import { authModule } from "../../host/modules/auth.js";
import { authDbModule } from "../../host/modules/auth_db.js";
import { subscriberRow } from "../../host/cli/db-commands.js";
import { caller } from "../modules/call.js";
import { makeRecordingHost } from "../helpers/context.js";
import { answer, parseChallenge, type Challenge } from "./digest-client.js";
import { contextOn, makeDataHost, register, replyHeaders, type DataHost } from "./helpers.js";

const auth = caller(authModule);
const authDb = caller(authDbModule);
const REALM = "example.com";

function hostWithAlice(options: Parameters<typeof makeDataHost>[0] = {}, tenantId = "t1"): DataHost {
  const host = makeDataHost(options);
  host.data.subscribers.put(tenantId, subscriberRow("alice@example.com", "wonderland"));
  return host;
}

/** Challenge a request and return the parsed challenge(s) of the reply. */
function challengeFor(host: DataHost, text: string, flags = 0, tenantId = "t1"): Challenge[] {
  const { ctx } = contextOn(host, text, tenantId);
  expect(auth("auth_challenge", ctx, REALM, flags)).toBe(1);
  const reply = host.replies.at(-1)!;
  const name = reply.status === 401 ? "WWW-Authenticate" : "Proxy-Authenticate";
  return replyHeaders(reply.headers, name).map(parseChallenge);
}

function registerWith(credentials: string | undefined, extra: string[] = []): string {
  return register({ headers: [...(credentials === undefined ? [] : [`Authorization: ${credentials}`]), ...extra] });
}

function check(host: DataHost, text: string, flags = 1, tenantId = "t1"): number {
  const { ctx } = contextOn(host, text, tenantId);
  return authDb("auth_check", ctx, REALM, "subscriber", flags) as number;
}

const ALICE = { username: "alice", password: "wonderland", method: "REGISTER", uri: "sip:example.com" };

describe("challenges", () => {
  it("REGISTER gets 401 with WWW-Authenticate, other requests 407 with Proxy-Authenticate", () => {
    const host = hostWithAlice();
    const [www] = challengeFor(host, register());
    expect(host.replies[0]).toMatchObject({ status: 401, reason: "Unauthorized" });
    expect(www).toMatchObject({ realm: REALM, qop: undefined, stale: false, algorithm: undefined });
    const invite = register().replace(/REGISTER/g, "INVITE");
    challengeFor(host, invite);
    expect(host.replies[1]).toMatchObject({ status: 407, reason: "Proxy Authentication Required" });
    expect(replyHeaders(host.replies[1]!.headers, "Proxy-Authenticate")).toHaveLength(1);
  });

  it("flag 1 asks for qop=auth, flag 16 says stale=true; www_/proxy_challenge force the kind", () => {
    const host = hostWithAlice();
    expect(challengeFor(host, register(), 1)[0]!.qop).toBe("auth");
    expect(challengeFor(host, register(), 16)[0]!.stale).toBe(true);
    const { ctx } = contextOn(host, register());
    expect(auth("proxy_challenge", ctx, REALM, 0)).toBe(1);
    expect(host.replies.at(-1)!.status).toBe(407);
    expect(auth("www_challenge", contextOn(host, register().replace(/REGISTER/g, "MESSAGE")).ctx, REALM, 0)).toBe(1);
    expect(host.replies.at(-1)!.status).toBe(401);
  });

  it("offers SHA-256 before MD5 with one nonce when configured (RFC 8760 §2.4)", () => {
    const host = hostWithAlice({ auth: { challengeAlgorithms: ["SHA-256", "MD5"] } });
    const [sha, md5] = challengeFor(host, register(), 1);
    expect(sha!.algorithm).toBe("SHA-256");
    expect(md5!.algorithm).toBe("MD5");
    expect(sha!.nonce).toBe(md5!.nonce);
  });

  it("does not answer ACK or CANCEL (1, nothing sent), and -3 when the reply cannot be sent", () => {
    const host = hostWithAlice();
    const ack = register().replace(/REGISTER/g, "ACK");
    expect(auth("auth_challenge", contextOn(host, ack).ctx, REALM, 0)).toBe(1);
    expect(host.replies).toHaveLength(0);
    host.sendReplyResult = false;
    expect(auth("auth_challenge", contextOn(host, register()).ctx, REALM, 0)).toBe(-3);
  });
});

describe("auth_db.auth_check", () => {
  it("accepts a correct answer without qop (1) and refuses its replay (-6)", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register());
    const creds = answer(ch!, ALICE);
    expect(check(host, registerWith(creds))).toBe(1);
    expect(check(host, registerWith(creds))).toBe(-6);
  });

  it("with qop=auth accepts growing nonce-counts and refuses a repeated one (-6)", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(ch!, { ...ALICE, nc: 1 })))).toBe(1);
    expect(check(host, registerWith(answer(ch!, { ...ALICE, nc: 2 })))).toBe(1);
    expect(check(host, registerWith(answer(ch!, { ...ALICE, nc: 2 })))).toBe(-6);
  });

  it("a wrong response does not use the nonce up: the right one with the same nonce still passes, once", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register());
    expect(check(host, registerWith(answer(ch!, { ...ALICE, password: "guess" })))).toBe(-2);
    expect(check(host, registerWith(answer(ch!, { ...ALICE, password: "guess" })))).toBe(-2);
    expect(check(host, registerWith(answer(ch!, ALICE)))).toBe(1);
    expect(check(host, registerWith(answer(ch!, ALICE)))).toBe(-6);
  });

  it("-2 for a wrong password, -3 for an unknown user, -5 without credentials for the realm", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(ch!, { ...ALICE, password: "guess" })))).toBe(-2);
    const [ch2] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(ch2!, { ...ALICE, username: "mallory" })), 0)).toBe(-3);
    expect(check(host, registerWith(undefined))).toBe(-5);
    const [ch3] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(ch3!, { ...ALICE, realm: "other.net" })))).toBe(-5);
  });

  it("-4 once the nonce expired, and the next challenge says stale=true", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    host.clock.ms += 301_000;
    const { ctx } = contextOn(host, registerWith(answer(ch!, ALICE)));
    expect(authDb("auth_check", ctx, REALM, "subscriber", 1)).toBe(-4);
    expect(auth("auth_challenge", ctx, REALM, 1)).toBe(1);
    expect(parseChallenge(replyHeaders(host.replies.at(-1)!.headers, "WWW-Authenticate")[0]!).stale).toBe(true);
  });

  it("-1 for a forged nonce, broken credentials, or an unknown algorithm", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    const forged = { ...ch!, nonce: ch!.nonce.slice(0, -2) + (ch!.nonce.endsWith("AA") ? "BB" : "AA") };
    expect(check(host, registerWith(answer(forged, ALICE)))).toBe(-1);
    expect(check(host, registerWith(`Digest username="alice", realm="${REALM}"`))).toBe(-1);
    // An unterminated quoted string cannot be parsed.
    expect(check(host, registerWith(`Digest username="alice", realm="${REALM}`))).toBe(-1);
  });

  it("checks an unknown algorithm name with the configured algorithm, as Kamailio 5.6 does", () => {
    // Kamailio's auth module never reads the credentials' algorithm: the
    // response decides. An MD5 response under another name passes, a
    // response of another length (a real SHA-512 one) does not.
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(ch!, { ...ALICE, algorithm: "SHA-512" })))).toBe(1);
    const [ch2] = challengeFor(host, register(), 1);
    const named = answer(ch2!, { ...ALICE, algorithm: "SHA-512" });
    const longResponse = named.replace(/response="([0-9a-f]+)"/, (_, r: string) => `response="${r}${r}"`);
    expect(longResponse).toContain("algorithm=SHA-512");
    expect(check(host, registerWith(longResponse))).toBe(-1);
  });

  it("-8 when flag 1 is set and the auth user is not the To user of a REGISTER", () => {
    const host = hostWithAlice();
    host.data.subscribers.put("t1", subscriberRow("bob@example.com", "builder"));
    const [ch] = challengeFor(host, register(), 1);
    const bobCreds = answer(ch!, { username: "bob", password: "builder", method: "REGISTER", uri: "sip:example.com" });
    expect(check(host, registerWith(bobCreds), 1)).toBe(-8);
    const [ch2] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(ch2!, { username: "bob", password: "builder", method: "REGISTER", uri: "sip:example.com" })), 0)).toBe(1);
  });

  it("checks INVITEs against Proxy-Authorization and the From user", () => {
    const host = hostWithAlice();
    const invite = (creds?: string) =>
      register({ headers: creds === undefined ? [] : [`Proxy-Authorization: ${creds}`] }).replace(/REGISTER/g, "INVITE");
    const [ch] = challengeFor(host, invite(), 1);
    const creds = answer(ch!, { ...ALICE, method: "INVITE", uri: "sip:example.com" });
    expect(check(host, invite(creds))).toBe(1);
    // The same credentials in the wrong header do not count.
    const [ch2] = challengeFor(host, invite(), 1);
    const wrongHeader = register({ headers: [`Authorization: ${answer(ch2!, { ...ALICE, method: "INVITE" })}`] }).replace(/REGISTER/g, "INVITE");
    expect(check(host, wrongHeader)).toBe(-5);
  });

  it("verifies SHA-256 credentials (RFC 8760) with the stored SHA-256 HA1", () => {
    const host = hostWithAlice({ auth: { challengeAlgorithms: ["SHA-256", "MD5"] } });
    const [sha] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(sha!, ALICE)))).toBe(1);
    const [sha2] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(sha2!, { ...ALICE, password: "nope" })))).toBe(-2);
  });

  it("uses ha1b for a user name with @domain, and a stored plain password for any realm", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    expect(check(host, registerWith(answer(ch!, { ...ALICE, username: "alice@example.com" })), 0)).toBe(1);
    const plain = makeDataHost();
    plain.data.subscribers.put("t1", subscriberRow("carol@example.com", "pw", undefined, true));
    const { ctx } = contextOn(plain, register());
    expect(auth("auth_challenge", ctx, "voip.example.org", 1)).toBe(1);
    const other = parseChallenge(replyHeaders(plain.replies[0]!.headers, "WWW-Authenticate")[0]!);
    const carol = answer(other, { username: "carol", password: "pw", method: "REGISTER", uri: "sip:example.com" });
    const { ctx: c2 } = contextOn(plain, registerWith(carol));
    expect(authDb("auth_check", c2, "voip.example.org", "subscriber", 0)).toBe(1);
  });

  it("returns 1 for ACK and CANCEL, -1 for an empty realm, an unknown table or no database", () => {
    const host = hostWithAlice();
    expect(check(host, register().replace(/REGISTER/g, "ACK"))).toBe(1);
    const { ctx } = contextOn(host, register());
    expect(authDb("auth_check", ctx, "", "subscriber", 0)).toBe(-1);
    expect(authDb("auth_check", ctx, REALM, "users", 0)).toBe(-1);
    expect(authDb("auth_check", contextOn(makeRecordingHost(), register()).ctx, REALM, "subscriber", 0)).toBe(-1);
  });

  it("www_authenticate / proxy_authenticate check their own header", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    const { ctx } = contextOn(host, registerWith(answer(ch!, ALICE)));
    expect(authDb("proxy_authenticate", ctx, REALM, "subscriber")).toBe(-5);
    expect(authDb("www_authenticate", ctx, REALM, "subscriber")).toBe(1);
  });

  it("www_authenticate_method computes the digest with the given method", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    const forInvite = registerWith(answer(ch!, { ...ALICE, method: "INVITE", nc: 1 }));
    expect(authDb("www_authenticate", contextOn(host, forInvite).ctx, REALM, "subscriber")).toBe(-2);
    const again = registerWith(answer(ch!, { ...ALICE, method: "INVITE", nc: 2 }));
    expect(authDb("www_authenticate_method", contextOn(host, again).ctx, REALM, "subscriber", "INVITE")).toBe(1);
  });

  it("keeps tenants apart: a subscriber of one tenant is unknown to another, nonces too", () => {
    const host = hostWithAlice({}, "acme");
    const [ch] = challengeFor(host, register(), 1, "globex");
    expect(check(host, registerWith(answer(ch!, ALICE)), 1, "globex")).toBe(-3);
    // A nonce issued for acme is not accepted by globex (HMAC binds the tenant).
    const [acme] = challengeFor(host, register(), 1, "acme");
    host.data.subscribers.put("globex", subscriberRow("alice@example.com", "wonderland"));
    expect(check(host, registerWith(answer(acme!, ALICE)), 1, "globex")).toBe(-1);
    expect(check(host, registerWith(answer(acme!, { ...ALICE, nc: 2 })), 1, "acme")).toBe(1);
  });

  it("is_subscriber finds a user with or without its domain", () => {
    const host = hostWithAlice();
    const { ctx } = contextOn(host, register());
    expect(authDb("is_subscriber", ctx, "sip:alice@example.com", "subscriber", 1)).toBe(1);
    expect(authDb("is_subscriber", ctx, "sip:alice@elsewhere.net", "subscriber", 1)).toBe(-1);
    expect(authDb("is_subscriber", ctx, "sip:alice@elsewhere.net", "subscriber", 0)).toBe(1);
    expect(authDb("is_subscriber", ctx, "sip:nobody@example.com", "subscriber", 0)).toBe(-1);
  });
});

describe("credentials helpers", () => {
  it("has_credentials is 1 only for the realm present", () => {
    const host = hostWithAlice();
    const { ctx } = contextOn(host, registerWith(`Digest username="alice", realm="${REALM}", nonce="x", uri="sip:example.com", response="00"`));
    expect(auth("has_credentials", ctx, REALM)).toBe(1);
    expect(auth("has_credentials", ctx, "other.net")).toBe(-1);
  });

  it("consume_credentials removes the header the check used (1), -1 before any check", () => {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    const { ctx } = contextOn(host, registerWith(answer(ch!, ALICE)));
    expect(auth("consume_credentials", ctx)).toBe(-1);
    expect(authDb("auth_check", ctx, REALM, "subscriber", 1)).toBe(1);
    expect(auth("consume_credentials", ctx)).toBe(1);
    const index = ctx.msg.headers.findIndex((h) => h.key === "authorization");
    expect(ctx.edits.replaced.get(index)).toBe("");
  });

  it("pv_auth_check checks against a password or HA1 given by the script", () => {
    const host = makeRecordingHost();
    const { ctx } = contextOn(host, register());
    expect(auth("auth_challenge", ctx, REALM, 1)).toBe(1);
    const ch = parseChallenge(replyHeaders(host.replies[0]!.headers, "WWW-Authenticate")[0]!);
    const creds = registerWith(answer(ch, ALICE));
    expect(auth("pv_auth_check", contextOn(host, creds).ctx, REALM, "wonderland", 0, 1)).toBe(1);
    const ha1 = subscriberRow("alice@example.com", "wonderland").ha1;
    expect(auth("pv_auth_check", contextOn(host, registerWith(answer(ch, { ...ALICE, nc: 2 }))).ctx, REALM, ha1, 1, 1)).toBe(1);
    expect(auth("pv_auth_check", contextOn(host, registerWith(answer(ch, { ...ALICE, nc: 3 }))).ctx, REALM, "wrong", 0, 1)).toBe(-2);
  });
});

describe("credentials as clients write them (Kamailio's lenient parser)", () => {
  /** A correct qop=auth answer to a fresh challenge, rewritten by `mangle`, checked. */
  function checkMangled(mangle: (credentials: string) => string): number {
    const host = hostWithAlice();
    const [ch] = challengeFor(host, register(), 1);
    const credentials = answer(ch!, { ...ALICE, algorithm: "MD5" });
    return check(host, registerWith(mangle(credentials)));
  }

  it("accepts a trailing semicolon after algorithm=MD5 (sipp's copied scenarios)", () => {
    expect(checkMangled((c) => `${c};`)).toBe(1);
    expect(checkMangled((c) => c.replace("algorithm=MD5", "algorithm=MD5;"))).toBe(1);
  });

  it("accepts stray separators, white space and parameter names in any case", () => {
    expect(checkMangled((c) => c.replace(/, /g, " ,\t ;, "))).toBe(1);
    expect(checkMangled((c) => c.replace(/(\w+)=/g, (_, n: string) => `${n.toUpperCase()} = `))).toBe(1);
    expect(checkMangled((c) => `${c},,`)).toBe(1);
    expect(checkMangled((c) => c.replace("Digest ", "Digest  ,"))).toBe(1);
  });

  it("accepts quoted or unquoted algorithm, qop and nc, and the algorithm in any case", () => {
    expect(checkMangled((c) => c.replace("algorithm=MD5", 'algorithm="MD5"'))).toBe(1);
    expect(checkMangled((c) => c.replace("algorithm=MD5", "algorithm=md5"))).toBe(1);
    expect(checkMangled((c) => c.replace("qop=auth", 'qop="auth"'))).toBe(1);
    expect(checkMangled((c) => c.replace(/nc=([0-9a-f]{8})/, 'nc="$1"'))).toBe(1);
  });

  it("stays strict on what the digest covers: realm, nonce, uri and response as sent", () => {
    expect(checkMangled((c) => c.replace(/nonce="([^"]+)"/, 'nonce="$1x"'))).toBe(-1);
    expect(checkMangled((c) => c.replace(/uri="([^"]+)"/, 'uri="$1;x"'))).toBe(-2);
    expect(checkMangled((c) => c.replace(/response="([0-9a-f])/, (_, d: string) => `response="${d === "0" ? "1" : "0"}`))).toBe(-2);
    expect(checkMangled((c) => c.replace(/realm="([^"]+)"/, 'realm="$1.evil"'))).toBe(-5);
    // A glued suffix on nc is ignored like the semicolon, but a changed nc is not.
    expect(checkMangled((c) => c.replace(/nc=0000000([0-9a-f])/, "nc=0000000$1;"))).toBe(1);
    expect(checkMangled((c) => c.replace(/nc=0000000([0-9a-f])/, "nc=00000002"))).toBe(-2);
  });
});
