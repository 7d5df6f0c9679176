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
 * Server names (SNI, RFC 6066 §3): besides the default certificate, a
 * TLS socket can present another one to clients that ask for a name it
 * covers (`serverNames`: each tenant's own certificate for its domains, as
 * Kamailio's tls.cfg `server_name` picks a server domain); a client that
 * asks for no name, or one no entry covers, gets the default certificate.
 *
 * Protocol versions and ciphers (Kamailio's `tls_method` and
 * `cipher_list`): `minVersion` (default TLSv1.2, RFC 8996 retired 1.0 and
 * 1.1) and an OpenSSL cipher list for TLS 1.2 apply to both directions.
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
import { compileHostPatterns, hostMatches, normalizeHost, type HostPatterns } from "../core/host-pattern.js";

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
  /** Lowest protocol version, both directions; default TLSv1.2. */
  readonly minVersion?: TlsMinVersion;
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3's suites are OpenSSL's defaults); Node's default when absent. */
  readonly ciphers?: string;
  /** Certificates presented instead of the default one to clients asking (SNI) for a name they cover; the first entry that covers it wins. */
  readonly serverNames?: readonly TlsServerName[];
}

export type TlsMinVersion = "TLSv1.2" | "TLSv1.3";
export const TLS_MIN_VERSIONS: readonly TlsMinVersion[] = ["TLSv1.2", "TLSv1.3"];

export interface TlsServerName {
  /** Host names the certificate is presented for: "sip.example.com", "*.example.com" (subdomains only). */
  readonly names: readonly string[];
  readonly certFile: string;
  readonly keyFile: string;
  /** Whose certificate this is (a tenant id), for log lines. */
  readonly owner?: string;
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
    const named = this.files.named;
    return {
      cert: this.files.cert,
      key: this.files.key,
      ca: this.files.ca,
      ...this.protocolOptions(),
      requestCert: mode !== "none",
      rejectUnauthorized: false,
      handshakeTimeout: handshakeTimeoutMs,
      ...(named.length === 0
        ? {}
        : {
            SNICallback: (serverName: string, answer: (err: Error | null, context?: tls.SecureContext) => void) =>
              answer(null, findNamed(named, serverName)?.context),
          }),
    };
  }

  private protocolOptions(): Pick<tls.SecureContextOptions, "minVersion" | "ciphers"> {
    return { minVersion: this.settings.minVersion ?? "TLSv1.2", ...(this.settings.ciphers !== undefined ? { ciphers: this.settings.ciphers } : {}) };
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
      ...this.protocolOptions(),
      rejectUnauthorized: this.settings.verifyServer === true,
      // Next hops are IP addresses here (no RFC 3263), which SNI may not carry
      // (RFC 6066 §3); the certificate is checked against the address.
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(ip, cert),
    };
  }

  /** The certificate we present as client, and as server to a client that asked for no name or one without a certificate of its own, for $tls_my_*. */
  get localCertificate(): X509Certificate {
    return this.files.localCert;
  }

  /** The certificate presented to a client that asked (SNI) for `serverName`. */
  localCertificateFor(serverName: string | false | null | undefined): X509Certificate {
    if (typeof serverName !== "string") return this.files.localCert;
    return findNamed(this.files.named, serverName)?.localCert ?? this.files.localCert;
  }
}

interface NamedCertificate {
  readonly patterns: HostPatterns;
  readonly context: tls.SecureContext;
  readonly localCert: X509Certificate;
}

interface LoadedFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
  readonly localCert: X509Certificate;
  readonly named: readonly NamedCertificate[];
}

function findNamed(named: readonly NamedCertificate[], serverName: string): NamedCertificate | undefined {
  const host = normalizeHost(serverName);
  return named.find((n) => hostMatches(n.patterns, host));
}

/** A certificate and its key read and checked: the key must be the certificate's, the CA file (if any) must parse, the options must be valid. */
function loadPair(certFile: string, keyFile: string, ca: Buffer | undefined, options: tls.SecureContextOptions): { cert: Buffer; key: Buffer; localCert: X509Certificate; context: tls.SecureContext } {
  const cert = readPem(certFile, "certificate");
  const key = readPem(keyFile, "key");
  let localCert: X509Certificate;
  try {
    localCert = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ cert, key, ca, ...options });
  } catch (err) {
    throw new Error(`TLS certificate ${certFile} with key ${keyFile}: ${(err as Error).message}`);
  }
  return { cert, key, localCert, context };
}

function load(settings: TlsSettings): LoadedFiles {
  const ca = settings.caFile !== undefined ? readPem(settings.caFile, "CA") : undefined;
  const options: tls.SecureContextOptions = { minVersion: settings.minVersion ?? "TLSv1.2", ...(settings.ciphers !== undefined ? { ciphers: settings.ciphers } : {}) };
  if (settings.ciphers !== undefined) {
    try {
      tls.createSecureContext({ ciphers: settings.ciphers });
    } catch (err) {
      throw new Error(`TLS ciphers "${settings.ciphers}": ${(err as Error).message} (an OpenSSL cipher list, e.g. ECDHE+AESGCM)`);
    }
  }
  const { cert, key, localCert } = loadPair(settings.certFile, settings.keyFile, ca, options);
  const named = (settings.serverNames ?? []).map((entry) => {
    const pair = loadPair(entry.certFile, entry.keyFile, ca, options);
    const uncovered = entry.names.filter((name) => !certificateCovers(pair.localCert, name));
    if (uncovered.length > 0) {
      log("warn", "transport", `TLS certificate ${entry.certFile}${entry.owner !== undefined ? ` of ${entry.owner}` : ""} does not name ${uncovered.join(", ")}: clients verifying the server name will refuse it`);
    }
    return { patterns: compileHostPatterns(entry.names), context: pair.context, localCert: pair.localCert };
  });
  return { cert, key, ca, localCert, named };
}

/** Whether the certificate is valid for `name` (a wildcard pattern "*.x" is checked with a name under it). */
function certificateCovers(cert: X509Certificate, name: string): boolean {
  const probe = name.startsWith("*.") ? `sni-check${name.slice(1)}` : name;
  return cert.checkHost(probe) !== undefined;
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
