/** Two real nodes paired over loopback, each reaching the other through a Proxy. */
import { exportDb, removeDir, startNode, tempDir, type NodeProcess, type StartOptions } from "./node.ts";
import { Proxy, freePort } from "./proxy.ts";

export interface PairMember {
  readonly id: string;
  readonly port: number;
  dataDir: string;
  node: NodeProcess;
  /** The proxy in front of this member (its twin connects through it). */
  readonly proxy: Proxy;
  /** Extra serve flags used at every (re)start. */
  readonly args: string[];
}

export interface Pair {
  readonly a: PairMember;
  readonly b: PairMember;
  restart(m: PairMember, opts?: Partial<StartOptions>): Promise<void>;
  close(): Promise<void>;
}

export const SECRET = "pair-secret";

export async function startPair(
  opts: { argsA?: string[]; argsB?: string[]; secretB?: string; idB?: string; /** An address of b's that a tries first. */ firstAddressA?: string } = {},
): Promise<Pair> {
  const [pa, pb] = [await freePort(), await freePort()];
  const [proxyA, proxyB] = [await new Proxy(pa).start(), await new Proxy(pb).start()];
  const member = (id: string, port: number, proxy: Proxy, twinProxy: Proxy, secret: string, extra: string[], first?: string): PairMember => ({
    id,
    port,
    proxy,
    dataDir: tempDir(`tsdb-pair-${id}-`),
    node: undefined as unknown as NodeProcess,
    args: ["--listen", `127.0.0.1:${port}`, "--peer", [first, `127.0.0.1:${twinProxy.port}`].filter(Boolean).join(","), "--peer-secret", secret, ...extra],
  });
  const a = member("a", pa, proxyA, proxyB, SECRET, opts.argsA ?? [], opts.firstAddressA);
  const b = member(opts.idB ?? "b", pb, proxyB, proxyA, opts.secretB ?? SECRET, opts.argsB ?? []);
  const start = async (m: PairMember, more: Partial<StartOptions> = {}) => {
    m.node = await startNode({ dataDir: m.dataDir, nodeId: m.id, args: m.args, ...more });
  };
  // One node failing to start must not leave the other, and both proxies, running into the
  // next tests.
  const started = await Promise.allSettled([start(a), start(b)]);
  const failed = started.find((r) => r.status === "rejected");
  if (failed !== undefined) {
    for (const m of [a, b]) {
      if (m.node !== undefined) await m.node.kill();
      await m.proxy.close();
      removeDir(m.dataDir);
    }
    throw (failed as PromiseRejectedResult).reason;
  }
  return {
    a,
    b,
    async restart(m, more) {
      await start(m, more);
    },
    async close() {
      for (const m of [a, b]) {
        await m.node.stop();
        await m.proxy.close();
        removeDir(m.dataDir);
      }
    },
  };
}

export interface PeerStatusJson {
  state: string;
  in_sync: boolean;
  last_error: string | null;
  gaps: Array<{ from: number; to: number; repairedAt: number | null }>;
  counters: { frames_applied: number; frames_refused: number; backfill_values: number; reconnects: number };
  conflicts: { same_point: number; type: number; types_settled: number };
  lag: { frames: number | null; bytes: number | null; seconds: number | null };
}

export async function peerStatus(url: string): Promise<PeerStatusJson> {
  return (await (await fetch(`${url}/peer/status`)).json()) as PeerStatusJson;
}

/** Waits until both nodes report in sync and export the same bytes; returns that export. */
export async function converged(pair: Pair, db = "test", timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const [sa, sb] = await Promise.all([peerStatus(pair.a.node.url), peerStatus(pair.b.node.url)]);
    if (sa.in_sync && sb.in_sync) {
      const [ea, eb] = await Promise.all([exportOrEmpty(pair.a.node.url, db), exportOrEmpty(pair.b.node.url, db)]);
      if (ea === eb) return ea;
      last = `exports differ (${ea.length} vs ${eb.length} bytes)`;
    } else last = `a: ${sa.state} ${sa.last_error ?? ""} / b: ${sb.state} ${sb.last_error ?? ""}`;
    await Bun.sleep(100);
  }
  throw new Error(`pair did not converge in ${timeoutMs} ms: ${last}`);
}

export async function exportOrEmpty(url: string, db: string): Promise<string> {
  const res = await fetch(`${url}/export?db=${db}`);
  if (res.status === 404) return "";
  return exportDb(url, db);
}
