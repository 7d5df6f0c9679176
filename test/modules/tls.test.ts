/**
 * KSR.tls and the $tls_* variables (host/modules/tls.ts) on messages with
 * and without TLS connection details; the details themselves come from a
 * real handshake in test/e2e/tls.test.ts.
 */
import { describe, expect, it } from "vitest";
import { tlsModule, TLS_ATTRIBUTES } from "../../host/modules/tls.js";
import { pvModule } from "../../host/modules/pv.js";
import type { TlsCertificateFields, TlsConnectionInfo } from "../../host/core/context.js";
import { makeContext, request } from "../helpers/context.js";
import { caller } from "./call.js";

const tls = caller(tlsModule);
const pv = caller(pvModule);

function cert(cn: string, overrides: Partial<TlsCertificateFields> = {}): TlsCertificateFields {
  return {
    subject: `/CN=${cn}/O=Example`,
    issuer: "/CN=Example CA/O=Example",
    subjectAttrs: { CN: cn, O: "Example" },
    issuerAttrs: { CN: "Example CA", O: "Example" },
    serial: "4097",
    notBefore: "Jan  1 00:00:00 2020 GMT",
    notAfter: "Jan  2 00:00:00 2020 GMT",
    san: { dns: [`${cn}`], uri: [], email: ["a@example.org", "b@example.org"], ip: [] },
    selfSigned: false,
    pem: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
    ...overrides,
  };
}

const INFO: TlsConnectionInfo = {
  version: "TLSv1.3",
  cipher: "TLS_AES_256_GCM_SHA384",
  cipherBits: 256,
  peerVerified: true,
  peer: cert("alice.example.org"),
  local: cert("sip.example.org", { notAfter: "Jan  1 00:00:00 2999 GMT" }),
  serverName: "sip.example.org",
};

function overTls(info: TlsConnectionInfo | undefined) {
  return makeContext(request(), { rcv: info === undefined ? { proto: "udp" } : { proto: "tls", connectionId: 4, tls: info } }).ctx;
}

describe("KSR.tls", () => {
  it("is_peer_verified: 1 for a verified peer certificate, -1 for an unverified one and off TLS", () => {
    expect(tls("is_peer_verified", overTls(INFO))).toBe(1);
    expect(tls("is_peer_verified", overTls({ ...INFO, peerVerified: false }))).toBe(-1);
    expect(tls("is_peer_verified", overTls(undefined))).toBe(-1);
  });

  it("cget answers the $tls_* attributes by name, \"\" off TLS or for an unknown or absent one", () => {
    const ctx = overTls(INFO);
    expect(tls("cget", ctx, "tls_version")).toBe("TLSv1.3");
    expect(tls("cget", ctx, "tls_cipher_bits")).toBe(256);
    expect(tls("cget", ctx, "tls_peer_subject_cn")).toBe("alice.example.org");
    expect(tls("cget", ctx, "tls_my_subject_cn")).toBe("sip.example.org");
    expect(tls("cget", ctx, "tls_peer_issuer")).toBe("/CN=Example CA/O=Example");
    expect(tls("cget", ctx, "tls_peer_serial")).toBe(4097);
    expect(tls("cget", ctx, "tls_peer_san_email")).toBe("a@example.org");
    expect(tls("cget", ctx, "tls_peer_subject_unit")).toBe("");
    expect(tls("cget", ctx, "tls_peer_server_name")).toBe("sip.example.org");
    expect(tls("cget", ctx, "tls_no_such_thing")).toBe("");
    expect(tls("cget", overTls(undefined), "tls_version")).toBe("");
  });

  it("peer validity flags: expired by its notAfter, self-signed, verified", () => {
    const ctx = overTls(INFO);
    expect(tls("cget", ctx, "tls_peer_expired")).toBe(1);
    expect(tls("cget", overTls({ ...INFO, peer: INFO.local }), "tls_peer_expired")).toBe(0);
    expect(tls("cget", ctx, "tls_peer_selfsigned")).toBe(0);
    expect(tls("cget", ctx, "tls_peer_verified")).toBe(1);
    expect(tls("cget", ctx, "tls_peer_notAfter")).toBe("Jan  2 00:00:00 2020 GMT");
  });

  it("does not offer what it cannot answer: set_connect_server_id, certificate versions, revocation", () => {
    expect(tlsModule.functions.set_connect_server_id).toBeUndefined();
    expect(TLS_ATTRIBUTES.has("tls_peer_version")).toBe(false);
    expect(TLS_ATTRIBUTES.has("tls_peer_revoked")).toBe(false);
  });
});

describe("$tls_* variables", () => {
  it("read the connection's values through KSR.pv, null off TLS; $pr is tls (3)", () => {
    const ctx = overTls(INFO);
    expect(pv("get", ctx, "$tls_peer_subject")).toBe("/CN=alice.example.org/O=Example");
    expect(pv("get", ctx, "$tls_peer_subject_organization")).toBe("Example");
    expect(pv("get", ctx, "$pr")).toBe("tls");
    expect(pv("geti", ctx, "$pr")).toBe(3);
    expect(pv("get", overTls(undefined), "$tls_version")).toBeNull();
  });
});

describe("$pr, $conid and $ws_conid over WebSocket", () => {
  it("$pr is ws (5) or wss (6); $conid the connection's id on any stream, $ws_conid on WebSocket only", () => {
    const ws = makeContext(request(), { rcv: { proto: "ws", connectionId: 12 } }).ctx;
    expect(pv("get", ws, "$pr")).toBe("ws");
    expect(pv("geti", ws, "$pr")).toBe(5);
    expect(pv("get", ws, "$conid")).toBe(12);
    expect(pv("get", ws, "$ws_conid")).toBe(12);
    const wss = makeContext(request(), { rcv: { proto: "wss", connectionId: 13, tls: INFO } }).ctx;
    expect(pv("geti", wss, "$pr")).toBe(6);
    expect(pv("get", wss, "$ws_conid")).toBe(13);
    expect(pv("get", wss, "$tls_version")).toBe("TLSv1.3");
    const tcp = makeContext(request(), { rcv: { proto: "tcp", connectionId: 4 } }).ctx;
    expect(pv("get", tcp, "$conid")).toBe(4);
    expect(pv("get", tcp, "$ws_conid")).toBeNull();
    expect(pv("get", overTls(undefined), "$conid")).toBeNull();
  });
});
