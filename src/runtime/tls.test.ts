import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTsdbError } from "../errors.ts";
import { createPeerFetch } from "../peer/transport.ts";
import { currentRuntime, readCaFile, readTlsKeyPair, type RunningServer, type TlsKeyPair } from "./index.ts";
import { makeCa, makeLeaf, requireOpenssl, type TestCert } from "./tls-testkit.ts";

let dir = "";
let pairCa: TestCert;
let node: TestCert;
let rogue: TestCert;
let selfSigned: TestCert;
let otherName: TestCert;
const servers: RunningServer[] = [];

beforeAll(() => {
  requireOpenssl();
  dir = mkdtempSync(join(tmpdir(), "tsdb-pair-tls-"));
  pairCa = makeCa(dir, "pair-ca");
  node = makeLeaf(dir, "node", pairCa);
  rogue = makeLeaf(dir, "rogue", makeCa(dir, "rogue-ca"));
  selfSigned = makeLeaf(dir, "self", null);
  otherName = makeLeaf(dir, "other-name", pairCa, "DNS:iotdb-2.invalid");
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop(1000)));
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

/** Serves a one-line answer on a free loopback port, over TLS when `tls` is given; returns the base URL. */
async function serve(tls?: TlsKeyPair): Promise<string> {
  const server = await currentRuntime().serve((req) => new Response(`hello over ${new URL(req.url).protocol}`), {
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 1024,
    tls,
  });
  servers.push(server);
  return `${tls === undefined ? "http" : "https"}://127.0.0.1:${server.port}`;
}

const pair = (c: TestCert) => readTlsKeyPair(c.certFile, c.keyFile);

describe("TLS in the runtime adapter", () => {
  test("serves HTTPS, and a peer fetch trusting the pair CA reads it", async () => {
    const url = await serve(pair(node));
    const res = await createPeerFetch({ ca: readCaFile(pairCa.certFile) })(`${url}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("hello over https:");
  });

  test("without a certificate the server still speaks plain HTTP", async () => {
    const url = await serve();
    expect(await (await createPeerFetch()(`${url}/`)).text()).toBe("hello over http:");
  });

  const refused: Array<[string, () => TestCert | undefined, boolean, RegExp]> = [
    ["a twin certificate from a CA it was not told about", () => node, false, /TLS certificate is not trusted .*set --peer-ca/],
    ["a twin certificate not signed by the CA in --peer-ca", () => rogue, true, /TLS certificate is not trusted .*must be signed by the CA in --peer-ca/],
    ["a self-signed twin certificate", () => selfSigned, true, /TLS certificate is not trusted .*must be signed by the CA in --peer-ca/],
    ["a twin certificate made out to another host", () => otherName, true, /not valid for the address used .*subjectAltName/],
    ["a twin that answers in plain HTTP", () => undefined, true, /TLS handshake with the twin failed .*--tls-cert/],
  ];
  for (const [name, cert, withCa, message] of refused) {
    test(`refuses ${name}, saying what to fix`, async () => {
      const c = cert();
      const url = (await serve(c === undefined ? undefined : pair(c))).replace(/^http:/, "https:");
      const peerFetch = createPeerFetch(withCa ? { ca: pairCa.cert } : {});
      let err: unknown;
      try {
        await peerFetch(`${url}/`);
      } catch (e) {
        err = e;
      }
      // A TypeError like fetch's own, so the link tries the twin's other addresses.
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(message);
    });
  }

  test("an aborted request stays an abort, so the link knows it stopped on purpose", async () => {
    const url = await serve(pair(node));
    const ctl = new AbortController();
    ctl.abort();
    const err = await createPeerFetch({ ca: pairCa.cert })(`${url}/`, { signal: ctl.signal }).catch((e: unknown) => e);
    expect((err as Error).name).toBe("AbortError");
  });
});

describe("reading TLS files", () => {
  const unusable: Array<[string, () => unknown, () => string]> = [
    ["a certificate file that is not there", () => readTlsKeyPair(join(dir, "nope.pem"), node.keyFile), () => `cannot read --tls-cert "${join(dir, "nope.pem")}": no such file`],
    ["a key file that is not there", () => readTlsKeyPair(node.certFile, join(dir, "nope.key")), () => `cannot read --tls-key "${join(dir, "nope.key")}": no such file`],
    ["a directory given as the certificate", () => readTlsKeyPair(dir, node.keyFile), () => `cannot read --tls-cert "${dir}": is a directory`],
    ["a key given as the certificate", () => readTlsKeyPair(node.keyFile, node.keyFile), () => `cannot use --tls-cert "${node.keyFile}": expected a PEM certificate`],
    ["a certificate given as the key", () => readTlsKeyPair(node.certFile, node.certFile), () => `cannot use --tls-key "${node.certFile}": expected a PEM private key`],
    ["the key of another certificate", () => readTlsKeyPair(node.certFile, rogue.keyFile), () => `--tls-key "${rogue.keyFile}" is not the key of the certificate in --tls-cert "${node.certFile}"`],
    ["a CA file that is not there", () => readCaFile(join(dir, "ca.pem")), () => `cannot read --peer-ca "${join(dir, "ca.pem")}": no such file`],
    ["a key given as the CA", () => readCaFile(pairCa.keyFile), () => `cannot use --peer-ca "${pairCa.keyFile}": expected PEM CA certificate(s)`],
  ];
  for (const [name, read, message] of unusable) {
    test(`stops with a config error naming the path for ${name}`, () => {
      let err: unknown;
      try {
        read();
      } catch (e) {
        err = e;
      }
      expect(isTsdbError(err, "config")).toBe(true);
      expect((err as Error).message).toStartWith(message());
    });
  }

  test("reads a matching certificate and key, and a CA, as PEM text", () => {
    expect(pair(node)).toEqual({ cert: node.cert, key: node.key });
    expect(readCaFile(pairCa.certFile)).toBe(pairCa.cert);
  });
});
