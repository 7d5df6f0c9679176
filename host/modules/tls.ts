/**
 * KSR.tls (Kamailio tls module) and the $tls_* variables: what the TLS
 * connection a message came over negotiated and the certificates on both
 * ends (host/transport/tls.ts fills ReceiveInfo.tls once per connection).
 *
 * Values follow Kamailio 5.6's tls module: distinguished names in OpenSSL's
 * one-line form ("/CN=.../O=..."), dates as OpenSSL prints them
 * ("Jan  1 00:00:00 2020 GMT"), flags as 1/0, the first subjectAltName of
 * each kind. A message that did not come over TLS, or a field the
 * certificate does not have, reads as null ($tls_*) or "" (cget).
 *
 * Not offered (a script using them is told by `ksr check`):
 * set_connect_server_id (no per-destination client profiles), the
 * X.509 version fields ($tls_peer_version, $tls_my_version: Node does not
 * expose them), $tls_peer_revoked (no CRLs), $tls_description, the
 * url-encoded certificates and the $tls(...) form with a name.
 */
import type { MessageContext, TlsCertificateFields, TlsConnectionInfo } from "../core/context.js";
import type { KemiModule } from "./types.js";
import { registerPvClasses } from "./pv.js";

type TlsValue = string | number | null;
type Field = (info: TlsConnectionInfo) => TlsValue;

const orNull = (v: string | undefined): string | null => (v === undefined || v === "" ? null : v);

/** Fields of a certificate, named as after $tls_peer_ / $tls_my_. */
const CERT_FIELDS: ReadonlyArray<readonly [string, (c: TlsCertificateFields) => TlsValue]> = [
  ["serial", (c) => (BigInt(c.serial) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(c.serial) : c.serial)],
  ["subject", (c) => c.subject],
  ["issuer", (c) => c.issuer],
  ["subject_cn", (c) => orNull(c.subjectAttrs.CN)],
  ["issuer_cn", (c) => orNull(c.issuerAttrs.CN)],
  ["subject_locality", (c) => orNull(c.subjectAttrs.L)],
  ["issuer_locality", (c) => orNull(c.issuerAttrs.L)],
  ["subject_country", (c) => orNull(c.subjectAttrs.C)],
  ["issuer_country", (c) => orNull(c.issuerAttrs.C)],
  ["subject_state", (c) => orNull(c.subjectAttrs.ST)],
  ["issuer_state", (c) => orNull(c.issuerAttrs.ST)],
  ["subject_organization", (c) => orNull(c.subjectAttrs.O)],
  ["issuer_organization", (c) => orNull(c.issuerAttrs.O)],
  ["subject_unit", (c) => orNull(c.subjectAttrs.OU)],
  ["issuer_unit", (c) => orNull(c.issuerAttrs.OU)],
  ["subject_uid", (c) => orNull(c.subjectAttrs.UID)],
  ["san_email", (c) => orNull(c.san.email[0])],
  ["san_hostname", (c) => orNull(c.san.dns[0])],
  ["san_uri", (c) => orNull(c.san.uri[0])],
  ["san_ip", (c) => orNull(c.san.ip[0])],
  ["raw_cert", (c) => c.pem],
];

function buildAttributes(): ReadonlyMap<string, Field> {
  const out = new Map<string, Field>();
  out.set("tls_version", (i) => i.version);
  out.set("tls_cipher_info", (i) => i.cipher);
  out.set("tls_cipher_bits", (i) => i.cipherBits);
  for (const [name, get] of CERT_FIELDS) {
    out.set(`tls_peer_${name}`, (i) => (i.peer === undefined ? null : get(i.peer)));
    out.set(`tls_my_${name}`, (i) => (i.local === undefined ? null : get(i.local)));
  }
  out.set("tls_peer_verified", (i) => (i.peerVerified ? 1 : 0));
  out.set("tls_peer_expired", (i) => (i.peer === undefined ? null : Date.parse(i.peer.notAfter) < Date.now() ? 1 : 0));
  out.set("tls_peer_selfsigned", (i) => (i.peer === undefined ? null : i.peer.selfSigned ? 1 : 0));
  out.set("tls_peer_notBefore", (i) => i.peer?.notBefore ?? null);
  out.set("tls_peer_notAfter", (i) => i.peer?.notAfter ?? null);
  out.set("tls_peer_server_name", (i) => orNull(i.serverName));
  return out;
}

/** Every $tls_* variable offered, by name without the "$". */
export const TLS_ATTRIBUTES: ReadonlyMap<string, Field> = buildAttributes();

/** $name of the message's TLS connection; null when not over TLS or the field is absent. */
export function tlsAttribute(ctx: MessageContext, name: string): TlsValue {
  const info = ctx.rcv.tls;
  const get = TLS_ATTRIBUTES.get(name);
  return info === undefined || get === undefined ? null : get(info);
}

export const tlsModule: KemiModule = {
  // $tls_version, $tls_peer_subject_cn ...: the message's TLS connection, null when not over TLS.
  pvs: [...TLS_ATTRIBUTES.keys()].map((name) => ({
    names: [name],
    form: "plain" as const,
    writable: false,
    doc: "the TLS connection the message came over (tls module)",
    compile: () => ({ get: (ctx: MessageContext) => tlsAttribute(ctx, name) }),
  })),
  name: "tls",
  kamailioModule: "tls",
  functions: {
    is_peer_verified: {
      params: [],
      returns: "int",
      doc: "1 when the message came over TLS and the peer presented a certificate that verified against the CA file; -1 otherwise.",
      run: (ctx) => (ctx.rcv.tls?.peerVerified === true ? 1 : -1),
    },
    cget: {
      params: ["str"],
      returns: "xval",
      doc: 'The value of a $tls_* variable by its name without "$" (e.g. "tls_peer_subject_cn"); "" when not over TLS, absent or unknown.',
      run: (ctx, name: string) => {
        if (!TLS_ATTRIBUTES.has(name)) {
          ctx.host.log("warn", `tls.cget: unknown attribute ${name}`, ctx);
          return "";
        }
        return tlsAttribute(ctx, name) ?? "";
      },
    },
  },
};

registerPvClasses(tlsModule);
