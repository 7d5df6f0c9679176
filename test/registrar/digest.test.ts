/**
 * Digest arithmetic against the published vectors (RFC 2617 §3.5, RFC 7616
 * §3.9.1) and the nonce service: expiry, clock drift, replay, forgery,
 * tenant binding, bounded tracking.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { computeHa1, digestResponse, parseAlgorithm, sessionHa1 } from "../../host/auth/digest.js";
import { HmacSha256, NonceService } from "../../host/auth/nonce.js";

describe("digest vectors", () => {
  it("RFC 2617 §3.5: MD5, qop=auth", () => {
    const ha1 = computeHa1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life");
    expect(
      digestResponse({
        hash: "MD5",
        ha1,
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        method: "GET",
        uri: "/dir/index.html",
        qop: "auth",
        nc: "00000001",
        cnonce: "0a4f113b",
      }),
    ).toBe("6629fae49393a05397450978507c4ef1");
  });

  const rfc7616 = {
    nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    method: "GET",
    uri: "/dir/index.html",
    qop: "auth",
    nc: "00000001",
  };

  it("RFC 7616 §3.9.1: MD5", () => {
    const ha1 = computeHa1("MD5", "Mufasa", "http-auth@example.org", "Circle of Life");
    expect(digestResponse({ hash: "MD5", ha1, ...rfc7616 })).toBe("8ca523f5e9506fed4657c9700eebdbec");
  });

  it("RFC 7616 §3.9.1: SHA-256", () => {
    const ha1 = computeHa1("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life");
    expect(digestResponse({ hash: "SHA-256", ha1, ...rfc7616 })).toBe("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
  });

  it("RFC 2069 form without qop, and the -sess key (RFC 2617 §3.2.2.2)", () => {
    const md5 = (t: string) => createHash("md5").update(t).digest("hex");
    const ha1 = computeHa1("MD5", "alice", "example.com", "secret");
    expect(ha1).toBe(md5("alice:example.com:secret"));
    expect(digestResponse({ hash: "MD5", ha1, nonce: "abc", method: "REGISTER", uri: "sip:example.com" })).toBe(
      md5(`${ha1}:abc:${md5("REGISTER:sip:example.com")}`),
    );
    expect(sessionHa1("MD5", ha1, "abc", "xyz")).toBe(md5(`${ha1}:abc:xyz`));
    expect(parseAlgorithm(undefined)?.name).toBe("MD5");
    expect(parseAlgorithm("sha-256-sess")).toEqual({ hash: "SHA-256", session: true, name: "SHA-256-sess" });
    expect(parseAlgorithm("SHA-512")).toBeUndefined();
  });
});

describe("HmacSha256", () => {
  it("equals crypto's HMAC-SHA-256 for keys shorter than, equal to and longer than the block (RFC 2104 §2)", () => {
    for (const keyBytes of [1, 32, 64, 65, 200]) {
      const key = randomBytes(keyBytes);
      const hmac = new HmacSha256(key);
      for (const [prefix, data] of [["default\u0000", randomBytes(8)], ["tenant-ü\u0000", randomBytes(8)], ["", Buffer.alloc(0)], ["default\u0000", randomBytes(100)]] as const) {
        const expected = createHmac("sha256", key).update(prefix, "utf8").update(data).digest();
        expect(hmac.digest(prefix, data).equals(expected)).toBe(true);
      }
    }
  });
});

describe("nonces", () => {
  const T = 1_700_000_000_000;

  it("are accepted until they expire (300 s), then stale", () => {
    const n = new NonceService();
    const a = n.issue("t", T);
    expect(n.verify("t", a, T + 299_000, 1)).toBe("ok");
    const b = n.issue("t", T);
    expect(n.verify("t", b, T + 300_000, 1)).toBe("stale");
  });

  it("accept growing nonce-counts and refuse a repeated or lower one", () => {
    const n = new NonceService();
    const a = n.issue("t", T);
    expect(n.verify("t", a, T, 1)).toBe("ok");
    expect(n.verify("t", a, T, 1)).toBe("reused");
    expect(n.verify("t", a, T, 3)).toBe("ok");
    expect(n.verify("t", a, T, 2)).toBe("reused");
  });

  it("without qop are good for one use", () => {
    const n = new NonceService();
    const a = n.issue("t", T);
    expect(n.verify("t", a, T, undefined)).toBe("ok");
    expect(n.verify("t", a, T, undefined)).toBe("reused");
    expect(n.verify("t", a, T, 5)).toBe("reused");
  });

  it("refuse forged, altered, foreign-tenant and other-process nonces", () => {
    const n = new NonceService();
    const a = n.issue("t", T);
    const raw = Buffer.from(a, "base64url");
    raw[0] = raw[0]! ^ 0xff; // push the expiry far away
    expect(n.verify("t", raw.toString("base64url"), T, 1)).toBe("invalid");
    expect(n.verify("other", a, T, 1)).toBe("invalid");
    expect(new NonceService().verify("t", a, T, 1)).toBe("invalid");
    expect(n.verify("t", "not/base64", T, 1)).toBe("invalid");
  });

  it("issued in the future beyond the allowed drift are stale", () => {
    const n = new NonceService();
    const a = n.issue("t", T + 10_000);
    expect(n.verify("t", a, T, 1)).toBe("stale");
    const b = n.issue("t", T + 2_000);
    expect(n.verify("t", b, T, 1)).toBe("ok");
  });

  it("workers sharing a secret accept only their own lane's nonces, and a restarted one none issued before it", () => {
    const secret = Buffer.alloc(32, 7);
    const a = new NonceService(secret, undefined, { index: 0, count: 2 });
    const b = new NonceService(secret, undefined, { index: 1, count: 2 });
    const fromA = a.issue("t", T);
    // Signed right for both, but only A tracks its use: B re-challenges.
    expect(b.verify("t", fromA, T, undefined)).toBe("stale");
    expect(a.verify("t", fromA, T, undefined)).toBe("ok");
    // A restarted A (empty table) must not accept a replay of what the old one saw used.
    const restarted = new NonceService(secret, undefined, { index: 0, count: 2 }, T + 5000);
    expect(restarted.verify("t", fromA, T + 5000, undefined)).toBe("stale");
    const fresh = restarted.issue("t", T + 5000);
    expect(restarted.verify("t", fresh, T + 5000, undefined)).toBe("ok");
  });

  it("issuing stores nothing: challenges to strangers cannot fill or flush the table", () => {
    const n = new NonceService(undefined, { expireSec: 300, maxDriftSec: 3, maxTracked: 2 });
    const mine = n.issue("t", T);
    for (let i = 0; i < 1000; i++) n.issue("t", T);
    expect(n.trackedCount).toBe(0);
    expect(n.verify("t", mine, T, 1)).toBe("ok");
    expect(n.trackedCount).toBe(1);
  });

  it("are used up only by commit: check alone, as for a wrong response, leaves them good", () => {
    const n = new NonceService();
    const a = n.issue("t", T);
    const checked = n.check("t", a, T, undefined);
    expect(typeof checked).toBe("object");
    // A second check (another wrong response) still passes: nothing was used.
    expect(typeof n.check("t", a, T, undefined)).toBe("object");
    n.commit(checked as Exclude<typeof checked, string>, T);
    expect(n.check("t", a, T, undefined)).toBe("reused");
  });

  it("used ones forgotten beyond the tracking bound are stale from then on, never accepted again", () => {
    const n = new NonceService(undefined, { expireSec: 300, maxDriftSec: 3, maxTracked: 2 });
    const first = n.issue("t", T);
    expect(n.verify("t", first, T, undefined)).toBe("ok");
    const second = n.issue("t", T + 1000);
    expect(n.verify("t", second, T + 1000, undefined)).toBe("ok");
    const third = n.issue("t", T + 2000);
    expect(n.verify("t", third, T + 2000, undefined)).toBe("ok");
    expect(n.trackedCount).toBe(2);
    // The first was forgotten: a replay of it is stale (re-challenge), not ok.
    expect(n.verify("t", first, T + 3000, undefined)).toBe("stale");
    // So is an unused nonce issued in the same second as the forgotten one.
    expect(n.verify("t", n.issue("t", T), T + 3000, undefined)).toBe("stale");
    expect(n.verify("t", third, T + 3000, undefined)).toBe("reused");
  });
});
