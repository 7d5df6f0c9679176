/**
 * Certificates for the TLS tests, made by the openssl command line in a
 * temporary directory: a CA, certificates it signs for 127.0.0.1 (server,
 * client, a second server one for reload), one for another name, an
 * expired one, a self-signed one no CA vouches for, and a tenant's one for
 * its domain names (SNI).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  /** CN=server.test, SAN IP:127.0.0.1. */
  readonly server: CertFiles;
  /** CN=reloaded.test, SAN IP:127.0.0.1: what a reload swaps in. */
  readonly server2: CertFiles;
  /** CN=alice.test, signed by the CA. */
  readonly client: CertFiles;
  /** CN=other.test, SAN DNS:other.test only: the wrong name for 127.0.0.1. */
  readonly wrongName: CertFiles;
  /** CN=expired.test, SAN IP:127.0.0.1, valid in 2020 only. */
  readonly expired: CertFiles;
  /** CN=rogue.test, self-signed. */
  readonly selfSigned: CertFiles;
  /** CN=sip.acme.test, SAN DNS:sip.acme.test and DNS:*.acme.test: a tenant's certificate, chosen by SNI. */
  readonly acme: CertFiles;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), "ksr-tls-"));
  const file = (name: string) => path.join(dir, name);
  openssl(dir, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/O=ksr test/CN=ksr test CA"]);
  // `openssl ca` writes start and end dates of our choosing (the expired certificate).
  writeFileSync(file("index.txt"), "");
  writeFileSync(file("serial"), "1000\n");
  writeFileSync(
    file("ca.cnf"),
    [
      "[ca]",
      "default_ca = test_ca",
      "[test_ca]",
      `dir = ${dir}`,
      "database = $dir/index.txt",
      "new_certs_dir = $dir",
      "serial = $dir/serial",
      "default_md = sha256",
      "policy = anything",
      "copy_extensions = copy",
      "unique_subject = no",
      "[anything]",
      "commonName = supplied",
      "organizationName = optional",
      "",
    ].join("\n"),
  );
  const signed = (name: string, subject: string, san: string, dates: string[] = ["-days", "30"]): CertFiles => {
    openssl(dir, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject, "-addext", `subjectAltName=${san}`]);
    openssl(dir, ["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", `${name}.csr`, "-out", `${name}.pem`, "-notext", ...dates]);
    return { cert: file(`${name}.pem`), key: file(`${name}.key`) };
  };
  const server = signed("server", "/O=ksr test/CN=server.test", "IP:127.0.0.1");
  const server2 = signed("server2", "/O=ksr test/CN=reloaded.test", "IP:127.0.0.1");
  const client = signed("client", "/O=ksr test/CN=alice.test", "DNS:alice.test,email:alice@example.test");
  const wrongName = signed("wrong", "/O=ksr test/CN=other.test", "DNS:other.test");
  const expired = signed("expired", "/O=ksr test/CN=expired.test", "IP:127.0.0.1", ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]);
  const acme = signed("acme", "/O=ksr test/CN=sip.acme.test", "DNS:sip.acme.test,DNS:*.acme.test");
  openssl(dir, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "30", "-subj", "/CN=rogue.test", "-addext", "subjectAltName=IP:127.0.0.1"]);
  return {
    dir,
    caFile: file("ca.pem"),
    server,
    server2,
    client,
    wrongName,
    expired,
    selfSigned: { cert: file("rogue.pem"), key: file("rogue.key") },
    acme,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
