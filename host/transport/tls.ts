/**
 * TLS for SIP (RFC 3261 §26.2.1, §26.3.1): the certificate and key a TLS
 * listen socket presents, which peers it trusts, and what a finished
 * handshake tells the script. The stream itself (framing, connection
 * reuse, limits) is the TCP transport's (tcp.ts), run over a TLS socket.
 *
 * Verification modes, after Kamailio's tls module:
 * - inbound (`verifyClient`): "none" asks no certificate of the client
 *   (verify_certificate=0); "optional" asks for one and accepts the
 *   connection either way, the script reading KSR.tls.is_peer_verified();
 *   "require" closes the connection of a client without a certificate that
 *   chains to the CA file (verify_certificate=1, require_certificate=1).
 * - outbound (`verifyServer`): off by default, as Kamailio's client
 *   domain; on, the next hop's certificate must chain to the CA file and
 *   name the address we connected to.
 *
 * Reload: `reload()` reads the files again; connections opened afterwards
 * use the new certificate, open ones keep theirs. A file that cannot be
 * read or does not hold a key matching the certificate leaves the previous
 * credentials in place.
 */
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import type { TlsCertificateFields, TlsConnectionInfo } from "../core/context.js";
import { log } from "../core/log.js";

export type TlsClientVerification = "none" | "optional" | "require";

export interface TlsSettings {
  /** PEM certificate (chain) file presented to peers, as server and as client. */
  readonly certFile: string;
  /** PEM private key file of that certificate. */
  readonly keyFile: string;
  /** PEM file of the CAs peer certificates are verified against; Node's bundled CAs when absent. */
  readonly caFile?: string;
  readonly verifyClient?: TlsClientVerification;
  readonly verifyServer?: boolean;
}

export const TLS_CLIENT_VERIFICATIONS: readonly TlsClientVerification[] = ["none", "optional", "require"];

/** The settings' files read and checked; throws with the file's name when one cannot be used. */
export class TlsCredentials {
  private files: LoadedFiles;
  /** Counts reloads, so that what was built from the files before can tell it is stale. */
  private reloads = 0;

  constructor(readonly settings: TlsSettings) {
    this.files = load(settings);
  }

  /** Read the files again; throws (keeping the previous credentials) when they cannot be used. */
  reload(): void {
    this.files = load(this.settings);
    this.reloads++;
  }

  get generation(): number {
    return this.reloads;
  }

  /**
   * Options of the tls.Server that runs the handshake of accepted
   * connections. A client certificate is asked for but never refused by
   * the handshake itself: `refusal()` decides afterwards, so that the log
   * says why (Node would close the connection without a word).
   */
  serverOptions(handshakeTimeoutMs: number): tls.TlsOptions {
    const mode = this.settings.verifyClient ?? "none";
    return {
      cert: this.files.cert,
      key: this.files.key,
      ca: this.files.ca,
      requestCert: mode !== "none",
      rejectUnauthorized: false,
      handshakeTimeout: handshakeTimeoutMs,
    };
  }

  /** Why an accepted connection whose handshake is done may not stay ("require" mode), or undefined. */
  refusal(socket: tls.TLSSocket): string | undefined {
    if (this.settings.verifyClient !== "require" || socket.authorized) return undefined;
    if (socket.getPeerX509Certificate() === undefined) return "client sent no certificate";
    return `client certificate not accepted: ${String(socket.authorizationError ?? "not verified")}`;
  }

  /** Options of tls.connect for a connection to ip:port. */
  clientOptions(ip: string, port: number): tls.ConnectionOptions {
    return {
      host: ip,
      port,
      cert: this.files.cert,
      key: this.files.key,
      ca: this.files.ca,
      rejectUnauthorized: this.settings.verifyServer === true,
      // Next hops are IP addresses here (no RFC 3263), which SNI may not carry
      // (RFC 6066 §3); the certificate is checked against the address.
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(ip, cert),
    };
  }

  /** The certificate we present, for $tls_my_*. */
  get localCertificate(): X509Certificate {
    return this.files.localCert;
  }
}

interface LoadedFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
  readonly localCert: X509Certificate;
}

function load(settings: TlsSettings): LoadedFiles {
  const cert = readPem(settings.certFile, "certificate");
  const key = readPem(settings.keyFile, "key");
  const ca = settings.caFile !== undefined ? readPem(settings.caFile, "CA") : undefined;
  let localCert: X509Certificate;
  try {
    localCert = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${settings.certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  try {
    // Checks that the key is the certificate's and the CA file parses.
    tls.createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new Error(`TLS certificate ${settings.certFile} with key ${settings.keyFile}: ${(err as Error).message}`);
  }
  return { cert, key, ca, localCert };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read TLS ${what} file ${file}: ${(err as Error).message}`);
  }
}

/** What a socket whose handshake is done negotiated, for ReceiveInfo.tls. */
export function connectionInfo(socket: tls.TLSSocket, local: X509Certificate | undefined): TlsConnectionInfo {
  const cipher = socket.getCipher();
  const peerRaw = socket.getPeerX509Certificate();
  const serverName = (socket as tls.TLSSocket & { servername?: string | false }).servername;
  return {
    version: socket.getProtocol() ?? "",
    cipher: cipher?.standardName ?? cipher?.name ?? "",
    cipherBits: cipherBits(cipher?.name ?? ""),
    peerVerified: peerRaw !== undefined && socket.authorized,
    ...optionalFields("peer", peerRaw),
    ...optionalFields("local", local),
    ...(typeof serverName === "string" ? { serverName } : {}),
  };
}

/**
 * { peer: fields } / { local: fields }, or nothing when there is no
 * certificate or it cannot be read: a peer's certificate is input, and
 * whatever is in it must not end the process.
 */
function optionalFields<K extends "peer" | "local">(key: K, cert: X509Certificate | undefined): Partial<Record<K, TlsCertificateFields>> {
  if (cert === undefined) return {};
  try {
    return { [key]: certificateFields(cert) } as Record<K, TlsCertificateFields>;
  } catch (err) {
    log("warn", "transport", `TLS ${key} certificate fields not readable (${(err as Error)?.message ?? String(err)}); the script sees none`);
    return {};
  }
}

/** Symmetric key length of a cipher suite, from its name (Node does not report it). */
function cipherBits(name: string): number {
  const m = /(?:AES|AES_|CAMELLIA)[_-]?(128|256)/i.exec(name);
  if (m) return Number(m[1]);
  return /CHACHA20/i.test(name) ? 256 : 0;
}

function certificateFields(cert: X509Certificate): TlsCertificateFields {
  const subjectAttrs = parseDn(cert.subject);
  const issuerAttrs = parseDn(cert.issuer);
  const san = parseSubjectAltName(cert.subjectAltName ?? "");
  return {
    subject: oneLineDn(cert.subject),
    issuer: oneLineDn(cert.issuer),
    subjectAttrs,
    issuerAttrs,
    serial: BigInt(`0x${cert.serialNumber}`).toString(),
    notBefore: cert.validFrom,
    notAfter: cert.validTo,
    san,
    selfSigned: cert.subject === cert.issuer && cert.checkIssued(cert),
    pem: cert.toString(),
  };
}

/** Node writes a DN one "KEY=value" per line. */
function parseDn(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0 && out[line.slice(0, eq)] === undefined) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

function oneLineDn(text: string): string {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => `/${l}`)
    .join("");
}

export interface SubjectAltNames {
  readonly dns: string[];
  readonly uri: string[];
  readonly email: string[];
  readonly ip: string[];
}

/**
 * Node's subjectAltName text ("DNS:a, IP Address:127.0.0.1, URI:sip:x")
 * by kind. A value with a comma or quote comes as a JSON string; one that
 * does not parse is kept as written. Other kinds (DirName, othername ...)
 * are left out.
 */
export function parseSubjectAltName(text: string): SubjectAltNames {
  const out: SubjectAltNames = { dns: [], uri: [], email: [], ip: [] };
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null && m[0] !== "") {
    const kind = m[1]!.trim();
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // Kept as written.
      }
    }
    if (kind === "DNS") out.dns.push(value);
    else if (kind === "URI") out.uri.push(value);
    else if (kind === "email") out.email.push(value);
    else if (kind === "IP Address") out.ip.push(value);
  }
  return out;
}
