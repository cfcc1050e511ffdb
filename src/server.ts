/** A running node: the store, the HTTP API on top of it, and an orderly stop. */
import type { ServeConfig } from "./config.ts";
import { authorize, createApp } from "./http/app.ts";
import { WorkerPool } from "./ingest/workers.ts";
import type { Logger } from "./log.ts";
import { readCaFile, readTlsKeyPair, type Runtime } from "./runtime/index.ts";
import { registerPeerAdminRoutes } from "./peer/admin.ts";
import { PeerLink } from "./peer/link.ts";
import { registerPeerRoutes } from "./peer/routes.ts";
import { createPeerFetch } from "./peer/transport.ts";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import { bindPeerMetrics, bindProcessMetrics, bindStoreMetrics, EventLoopMonitor, metrics } from "./ops/metrics.ts";
import { STORE_FILE, Store } from "./store/store.ts";
import { VERSION } from "./version.ts";

export interface RunningNode {
  readonly port: number;
  readonly store: Store;
  readonly link: PeerLink | null;
  /**
   * Stops accepting requests, waits for those in flight (SHUTDOWN_GRACE_MS at most), flushes
   * and closes the store. Resolves false when requests were still in flight after the grace:
   * the runtime may not have been able to cut them, and the process should exit.
   */
  stop(): Promise<boolean>;
}

/**
 * How long a stop waits for requests in flight: a client stalled mid-upload or not reading
 * its export must not keep a node from stopping (a supervisor would kill it, store unclosed).
 */
export const SHUTDOWN_GRACE_MS = 10_000;

/** Opens the store (replaying unflushed frames) and starts serving. */
export async function startNode(config: ServeConfig, runtime: Runtime, log: Logger): Promise<RunningNode> {
  // Read and check the TLS files before the store opens: a wrong path or a key that does not
  // match stops the start with a config error naming the file.
  const tls = config.tlsCert !== null && config.tlsKey !== null ? readTlsKeyPair(config.tlsCert, config.tlsKey) : undefined;
  const peerCa = config.peerCa === null ? undefined : readCaFile(config.peerCa);
  const store = Store.open({
    dataDir: config.dataDir,
    nodeId: config.nodeId,
    sync: config.sync,
    engine: config.engine,
    log,
    checkpointThread: true,
    observe: {
      commit: (s) => metrics.storeCommitDuration.observe(s),
      flush: (s) => metrics.storeFlushDuration.observe(s),
      compaction: (s) => metrics.storeCompactionDuration.observe(s),
    },
  });
  const startedAt = Date.now();
  store.startRetention();
  const workers = new WorkerPool(workerThreads(), log);
  const app = createApp({
    store,
    version: VERSION,
    authToken: config.authToken,
    maxBodyBytes: config.maxBodyBytes,
    autoCreate: config.autoCreate,
    log,
    dataDir: config.dataDir,
    storeFile: join(config.dataDir, STORE_FILE),
    startedAt,
    maxSelectPoints: config.maxSelectPoints,
    maxSelectSeries: config.maxSelectSeries,
    workers,
  });
  const closing = new AbortController();
  let link: PeerLink | null = null;
  if (config.peers.length > 0 && config.peerSecret !== null) {
    const pairLink = new PeerLink({
      store,
      addresses: config.peers,
      secret: config.peerSecret,
      log,
      fetch: createPeerFetch({ ca: peerCa, runtime }),
      parse: (lines, precision, defaultTime) => workers.parse(lines, precision, defaultTime),
      catchUpBytes: config.catchUpBytes,
    });
    link = pairLink;
    registerPeerRoutes(app, {
      store,
      secret: config.peerSecret,
      log,
      closing: closing.signal,
      pullRanges: (r) => pairLink.pullRanges(r),
      compress: (bytes) => workers.deflate(bytes),
    });
    registerPeerAdminRoutes(app, link, (req) => authorize(req, config.authToken));
  }
  let server;
  try {
    server = await runtime.serve((req) => app.fetch(req), {
      hostname: config.listenHost,
      port: config.listenPort,
      // The app enforces the real limit with a clear 413; let the runtime read a little more.
      maxRequestBodySize: config.maxBodyBytes + 1024 * 1024,
      tls,
    });
  } catch (e) {
    workers.close();
    await store.close();
    throw e;
  }
  log.info("listening", {
    address: `${config.listenHost}:${server.port}`,
    tls: tls !== undefined,
    node_id: config.nodeId,
    data: config.dataDir,
    sync: config.sync,
    runtime: runtime.name,
    version: VERSION,
    peers: config.peers.join(",") || undefined,
  });
  link?.start();
  const unbind = [
    bindStoreMetrics(store, config.dataDir),
    bindProcessMetrics({ version: VERSION, runtime: runtime.name }),
    ...(link ? [bindPeerMetrics(link)] : []),
  ];
  const loop = new EventLoopMonitor();
  loop.start();
  let stopping: Promise<boolean> | null = null;
  return {
    port: server.port,
    store,
    link,
    stop() {
      stopping ??= (async () => {
        await link?.stop();
        loop.stop();
        for (const u of unbind) u();
        closing.abort();
        const finished = await server.stop(SHUTDOWN_GRACE_MS);
        if (!finished) log.warn("requests still in flight after the shutdown grace; closing without them", { grace_s: SHUTDOWN_GRACE_MS / 1000 });
        workers.close();
        await store.close();
        log.info("stopped", { node_id: config.nodeId });
        return finished;
      })();
      return stopping;
    },
  };
}

/** Worker threads: the cores left once the writer has one, at least one, at most four. */
function workerThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}
