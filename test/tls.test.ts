/**
 * TLS end to end with real processes: a pair whose API and link speak HTTPS converges, a twin
 * with a certificate the pair CA did not sign is refused with a clear error in its status,
 * and a certificate file that is not there stops the start. Certificates are made per run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createPeerFetch, type PeerFetch } from "../src/peer/transport.ts";
import { makeCa, makeLeaf, requireOpenssl, type TestCert } from "../src/runtime/tls-testkit.ts";
import { REPO, removeDir, startNode, tempDir, type NodeProcess, type StartOptions } from "./support/node.ts";
import { freePort } from "./support/proxy.ts";

const SECRET = "tls-pair-secret";
const DENO = join(REPO, "node_modules/.bin/deno");

let pki = "";
let pairCa: TestCert;
let rogueCa: TestCert;
/** What the test itself uses to talk to the nodes: it trusts the pair CA, like a twin. */
let client: PeerFetch;
const scratch: string[] = [];
const running: NodeProcess[] = [];

beforeAll(() => {
  requireOpenssl();
  pki = tempDir("tsdb-pair-pki-");
  scratch.push(pki);
  pairCa = makeCa(pki, "pair-ca");
  rogueCa = makeCa(pki, "rogue-ca");
  client = createPeerFetch({ ca: pairCa.cert });
});

afterAll(async () => {
  await Promise.all(running.map((n) => n.stop()));
  scratch.forEach(removeDir);
});

interface TlsNode {
  readonly node: NodeProcess;
  /** https://127.0.0.1:<port> */
  readonly url: string;
}

/**
 * Starts a node on `port` serving HTTPS with `cert`, trusting `ca` for its twin on `twinPort`.
 * The twin is given as a bare host:port: with --tls-cert set it is reached over https.
 */
async function startTlsNode(id: string, port: number, twinPort: number, cert: TestCert, ca: TestCert, more: Partial<StartOptions> = {}): Promise<TlsNode> {
  const dataDir = tempDir(`tsdb-pair-tls-${id}-`);
  scratch.push(dataDir);
  const node = await startNode({
    dataDir,
    nodeId: id,
    args: [
      ...["--listen", `127.0.0.1:${port}`, "--peer", `127.0.0.1:${twinPort}`, "--peer-secret", SECRET],
      ...["--tls-cert", cert.certFile, "--tls-key", cert.keyFile, "--peer-ca", ca.certFile],
    ],
    ...more,
  });
  running.push(node);
  // The support starter assumes plain HTTP; the port is what it read from the log.
  return { node, url: `https://127.0.0.1:${node.port}` };
}

async function call(url: string, path: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await client(`${url}${path}`, init);
  return { status: res.status, text: await res.text() };
}

interface LinkStatus {
  state: string;
  in_sync: boolean;
  last_error: string | null;
  twin: { node_id: string | null; active_address: string | null };
}

async function linkStatus(n: TlsNode): Promise<LinkStatus> {
  return JSON.parse((await call(n.url, "/peer/status")).text) as LinkStatus;
}

/** Polls `probe` until it returns a value, or fails after `timeoutMs` with the last thing it saw. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, seen: () => string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await Bun.sleep(100);
  }
  throw new Error(`${what} did not happen in ${timeoutMs} ms: ${seen()}`);
}

/** Writes one point on each node and waits until both are in sync with identical exports. */
async function expectConverges(a: TlsNode, b: TlsNode): Promise<void> {
  expect(await call(a.url, "/write?db=test", { method: "POST", body: "cpu,host=a v=1 10" })).toEqual({ status: 204, text: "" });
  expect(await call(b.url, "/write?db=test", { method: "POST", body: "cpu,host=b v=2 20" })).toEqual({ status: 204, text: "" });
  let last = "";
  const exported = await waitFor(
    "convergence over TLS",
    async () => {
      const [sa, sb] = await Promise.all([linkStatus(a), linkStatus(b)]);
      last = `a: ${sa.state} ${sa.last_error ?? ""} / b: ${sb.state} ${sb.last_error ?? ""}`;
      if (!sa.in_sync || !sb.in_sync) return undefined;
      const [ea, eb] = await Promise.all([call(a.url, "/export?db=test"), call(b.url, "/export?db=test")]);
      last = `exports differ:\n${ea.text}\n---\n${eb.text}`;
      return ea.status === 200 && ea.text === eb.text ? ea.text : undefined;
    },
    () => last,
  );
  expect(exported).toBe("cpu,host=a v=1 10\ncpu,host=b v=2 20\n");
  // The link went over https: the bare --peer got the scheme from --tls-cert.
  expect((await linkStatus(a)).twin.active_address).toBe(b.url);
  expect((await linkStatus(b)).twin.active_address).toBe(a.url);
}

describe("TLS between the twins", () => {
  test(
    "a pair serving HTTPS converges: a write on each node is on both, exports identical",
    async () => {
      const [pa, pb] = [await freePort(), await freePort()];
      const [a, b] = await Promise.all([
        startTlsNode("a", pa, pb, makeLeaf(pki, "a", pairCa), pairCa),
        startTlsNode("b", pb, pa, makeLeaf(pki, "b", pairCa), pairCa),
      ]);
      await expectConverges(a, b);
      // HTTPS only on that port: a plain HTTP client gets no answer.
      const plain = await fetch(`http://127.0.0.1:${pa}/ping`).then(
        (r) => `HTTP ${r.status}`,
        () => "refused",
      );
      expect(plain).not.toBe("HTTP 204");
    },
    { timeout: 90_000 },
  );

  test(
    "a twin whose certificate the pair CA did not sign is refused, and status says so",
    async () => {
      const [pc, pd] = [await freePort(), await freePort()];
      // c presents a certificate from another CA; d trusts only the pair CA (besides the default roots).
      const [, d] = await Promise.all([
        startTlsNode("c", pc, pd, makeLeaf(pki, "c", rogueCa), pairCa),
        startTlsNode("d", pd, pc, makeLeaf(pki, "d", pairCa), pairCa),
      ]);
      let seen: LinkStatus | null = null;
      const status = await waitFor(
        "refusing the twin",
        async () => {
          seen = await linkStatus(d);
          // Until c listens, d's first tries fail with "connection refused": wait for the TLS
          // verdict. Each retry shows CONNECTING (the last error kept) until it fails again.
          return seen.last_error?.includes("TLS") && seen.state === "ERROR" ? seen : undefined;
        },
        () => JSON.stringify(seen),
        30_000,
      );
      expect(status.last_error).toContain(`https://127.0.0.1:${pc}`);
      expect(status.last_error).toMatch(/TLS certificate is not trusted .*: it must be signed by the CA in --peer-ca/);
      expect(status.state).toBe("ERROR");
      // Never got as far as the twin's hello.
      expect(status.twin.node_id).toBeNull();
    },
    { timeout: 90_000 },
  );

  test(
    "a Bun node and a Deno node converge over TLS",
    async () => {
      const [pe, pf] = [await freePort(), await freePort()];
      const [e, f] = await Promise.all([
        startTlsNode("e", pe, pf, makeLeaf(pki, "e", pairCa), pairCa),
        startTlsNode("f", pf, pe, makeLeaf(pki, "f", pairCa), pairCa, { command: [DENO, "run", "-A", join(REPO, "src/main.ts")], timeoutMs: 120_000 }),
      ]);
      await expectConverges(e, f);
    },
    { timeout: 180_000 },
  );

  test("a --tls-cert file that is not there stops the start with a config error naming it", async () => {
    const missing = join(pki, "missing.pem");
    const dataDir = tempDir("tsdb-pair-tls-bad-");
    scratch.push(dataDir);
    const err = await startNode({ dataDir, args: ["--tls-cert", missing, "--tls-key", join(pki, "missing.key")] }).then(
      (n) => {
        running.push(n);
        return "started";
      },
      (e: unknown) => (e as Error).message,
    );
    expect(err).toContain("node exited with 2 before listening");
    expect(err).toContain(`cannot read --tls-cert "${missing}": no such file`);
  });
});
