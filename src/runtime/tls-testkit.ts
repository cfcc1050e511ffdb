/**
 * Helpers for the TLS tests: a throwaway certificate authority and certificates it signs,
 * made with the `openssl` command in a directory of the caller's, so "trusted by --peer-ca"
 * is tested the way it is deployed (a pair CA, one leaf per node) and nothing expires in git.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A certificate and its key, both as files and as PEM text. */
export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

/** Long enough for any test run, short enough that a leaked key is worthless. */
const DAYS = "2";
/** P-256 keeps generation fast; both Bun (BoringSSL) and Deno (rustls) accept it. */
const KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Fails with a message saying what to install when `openssl` is missing. */
export function requireOpenssl(): void {
  const r = spawnSync("openssl", ["version"], { encoding: "utf8" });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(
      `the TLS tests make their certificates with the openssl command, which is not available ` +
        `(${r.error?.message ?? r.stderr.trim()}): install it (e.g. apt-get install openssl) and run again`,
    );
  }
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`openssl ${args.join(" ")} failed: ${r.error?.message ?? r.stderr}`);
  }
}

function load(dir: string, name: string): TestCert {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}

/** A self-signed CA certificate named `name` (files `<name>.pem`, `<name>.key` in `dir`). */
export function makeCa(dir: string, name: string): TestCert {
  openssl(dir, [
    "req", "-x509", ...KEY_ARGS, "-days", DAYS, "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout", `${name}.key`, "-out", `${name}.pem`,
  ]);
  return load(dir, name);
}

/** A server certificate (for 127.0.0.1 unless `san` says otherwise) signed by `ca`, or self-signed when `ca` is null. */
export function makeLeaf(dir: string, name: string, ca: TestCert | null, san = "IP:127.0.0.1"): TestCert {
  if (ca === null) {
    openssl(dir, ["req", "-x509", ...KEY_ARGS, "-days", DAYS, "-subj", "/CN=127.0.0.1", "-addext", `subjectAltName=${san}`, "-keyout", `${name}.key`, "-out", `${name}.pem`]);
    return load(dir, name);
  }
  // A CSR signed with `x509 -req` rather than `req -x509 -CA`, which needs OpenSSL 3.
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl(dir, ["req", "-new", ...KEY_ARGS, "-subj", "/CN=127.0.0.1", "-keyout", `${name}.key`, "-out", `${name}.csr`]);
  openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-set_serial", String(Date.now() * 1000 + Math.floor(Math.random() * 1000)),
    "-days", DAYS, "-extfile", ext, "-out", `${name}.pem`,
  ]);
  return load(dir, name);
}
