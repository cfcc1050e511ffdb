/**
 * TLS material read from disk and checked before anything listens or connects: a wrong file
 * should stop the start with its path and the reason, not surface later as a runtime's
 * handshake error ("FailedToOpenSocket", "NO_START_LINE") on the first request.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { TsdbError } from "../errors.ts";
import type { TlsKeyPair } from "./types.ts";

const PEM_CERT = /-----BEGIN CERTIFICATE-----/;
const PEM_KEY = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;

/** Reads the server's certificate chain and key (`--tls-cert`, `--tls-key`); throws TsdbError("config"). */
export function readTlsKeyPair(certFile: string, keyFile: string): TlsKeyPair {
  const cert = readPem(certFile, "--tls-cert", PEM_CERT, "a PEM certificate (-----BEGIN CERTIFICATE-----)");
  const key = readPem(keyFile, "--tls-key", PEM_KEY, "a PEM private key (-----BEGIN PRIVATE KEY-----), unencrypted");
  let leaf: X509Certificate;
  try {
    // The first certificate of a chain file is the server's own.
    leaf = new X509Certificate(cert);
  } catch (e) {
    throw new TsdbError("config", `cannot use --tls-cert ${JSON.stringify(certFile)}: not a valid certificate (${(e as Error).message})`, { cause: e });
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw new TsdbError("config", `cannot use --tls-key ${JSON.stringify(keyFile)}: not a valid private key (${(e as Error).message})`, { cause: e });
  }
  if (!matches) {
    throw new TsdbError("config", `--tls-key ${JSON.stringify(keyFile)} is not the key of the certificate in --tls-cert ${JSON.stringify(certFile)}`);
  }
  return { cert, key };
}

/** Reads the CA certificate(s) the peer link trusts (`--peer-ca`); throws TsdbError("config"). */
export function readCaFile(path: string): string {
  const ca = readPem(path, "--peer-ca", PEM_CERT, "PEM CA certificate(s) (-----BEGIN CERTIFICATE-----)");
  try {
    new X509Certificate(ca);
  } catch (e) {
    throw new TsdbError("config", `cannot use --peer-ca ${JSON.stringify(path)}: not a valid certificate (${(e as Error).message})`, { cause: e });
  }
  return ca;
}

function readPem(path: string, flag: string, marker: RegExp, expected: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (e as Error).message;
    throw new TsdbError("config", `cannot read ${flag} ${JSON.stringify(path)}: ${why}`, { cause: e });
  }
  if (!marker.test(text)) throw new TsdbError("config", `cannot use ${flag} ${JSON.stringify(path)}: expected ${expected}`);
  return text;
}
