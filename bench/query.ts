/**
 * Query benchmark: Grafana's two typical panel queries, tsdb-pair against InfluxDB 1.x.
 *
 *   bun bench/query.ts [--hosts 1000] [--minutes 120] [--runs 30] [--only tsdb-pair|influxdb]
 *
 * Loads the cpu workload of bench/workload.ts (Telegraf-like, one point per host every
 * 10 s) over HTTP into each system, then times, over HTTP with `epoch=ms` as Grafana sends:
 *   all-hosts: SELECT mean("usage_user") FROM "cpu" WHERE time >= <end-1h> AND time <= <end>
 *              GROUP BY time(1m), "host" fill(null)
 *   one-host:  the same with WHERE "host" = 'host-42' and no GROUP BY host.
 * tsdb-pair is measured twice: right after the load (values in hot buffers) and after a
 * restart (every value flushed into compressed chunks). InfluxDB is measured only when
 * `influxd` is on PATH. Prints one JSON document with p50/p95 in milliseconds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startInfluxd, influxdInstalled } from "../test/query-fixture.ts";
import { makeWorkload, INTERVAL_SECONDS } from "./workload.ts";

const REPO = resolve(import.meta.dir, "..");
const DB = "bench";
/**
 * Warm-up before timing, the same for both systems: at least WARMUP_MIN runs and until
 * WARMUP_MS have passed (at most WARMUP_MAX runs). A dashboard server is long-running and
 * Bun's JIT needs a few hundred runs of a cheap query to reach its steady state.
 */
const WARMUP_MIN = 3;
const WARMUP_MAX = 500;
const WARMUP_MS = 3_000;

interface Config {
  hosts: number;
  minutes: number;
  runs: number;
  only: string | null;
}

function config(argv: string[]): Config {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { hosts: { type: "string" }, minutes: { type: "string" }, runs: { type: "string" }, only: { type: "string" }, serve: { type: "string" } },
  });
  const num = (v: string | undefined, d: number, name: string) => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const minutes = num(values.minutes, 120, "minutes");
  if (minutes < 61) throw new Error("--minutes must be at least 61 (the queries read the last hour)");
  return { hosts: num(values.hosts, 1000, "hosts"), minutes, runs: num(values.runs, 30, "runs"), only: values.only ?? null };
}

/** Workload size: cpu lines of every host for `minutes`, plus the interleaved system lines. */
function workload(cfg: Config) {
  const ticks = (cfg.minutes * 60) / INTERVAL_SECONDS;
  const systemTicks = Math.ceil(ticks / 10);
  return makeWorkload({ hosts: cfg.hosts, lines: ticks * cfg.hosts + systemTicks * cfg.hosts });
}

interface Server {
  url: string;
  stop(): Promise<void>;
}

/**
 * `--serve DIR`: a node built from the store, the HTTP app and the query routes, for trees
 * where `tsdb-pair serve` does not route /query yet. Logs the same "listening" line.
 */
async function serveFallback(dataDir: string): Promise<void> {
  const { DEFAULT_ENGINE } = await import("../src/config.ts");
  const { createApp } = await import("../src/http/app.ts");
  const { registerQueryRoutes } = await import("../src/http/query.ts");
  const { logfmtLogger } = await import("../src/log.ts");
  const { currentRuntime } = await import("../src/runtime/index.ts");
  const { Store } = await import("../src/store/store.ts");
  const { DEFAULT_MAX_SELECT_POINTS, DEFAULT_MAX_SELECT_SERIES } = await import("../src/query/result.ts");
  const log = logfmtLogger((t) => process.stderr.write(t));
  const store = Store.open({ dataDir, nodeId: "bench", sync: "off", engine: DEFAULT_ENGINE, log });
  const app = createApp({ store, version: "bench", authToken: null, maxBodyBytes: 25_000_000, autoCreate: true, log });
  registerQueryRoutes(app, { store, authorize: () => {}, log, maxSelectPoints: DEFAULT_MAX_SELECT_POINTS, maxSelectSeries: DEFAULT_MAX_SELECT_SERIES });
  const server = await currentRuntime().serve((req) => app.fetch(req), { hostname: "127.0.0.1", port: 0, maxRequestBodySize: 26_000_000 });
  log.info("listening", { address: `127.0.0.1:${server.port}` });
  process.once("SIGTERM", () => {
    void server.stop(1000).then(() => store.close()).then(() => process.exit(0));
  });
}

async function startTsdbPair(dataDir: string, fallback: boolean): Promise<Server> {
  const args = fallback
    ? [join(REPO, "bench/query.ts"), "--serve", dataDir]
    : [join(REPO, "src/main.ts"), "serve", "--listen", "127.0.0.1:0", "--data", dataDir, "--node-id", "bench", "--sync", "off"];
  const proc: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (d: string) => (err = (err + d).slice(-8000)));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const deadline = Date.now() + 60_000;
  let port = 0;
  while (port === 0) {
    const m = /msg=listening address=[^\s]*:(\d+)/.exec(err);
    if (m) port = Number(m[1]);
    else if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`tsdb-pair did not start:\n${err}`);
    } else await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 300_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function load(url: string, cfg: Config): Promise<{ lines: number; ms: number; end: bigint }> {
  const w = workload(cfg);
  const started = performance.now();
  const bodies = [...w.bodies()];
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const b = bodies[next++]!;
      const res = await fetch(`${url}/write?db=${DB}`, { method: "POST", body: b.text });
      if (res.status !== 204) throw new Error(`write failed: ${res.status} ${await res.text()}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return { lines: w.expected.lines, ms: performance.now() - started, end: w.expected.lastTimestampNs };
}

function queries(end: bigint): Record<string, string> {
  const endMs = end / 1_000_000n;
  const startMs = endMs - 3_600_000n;
  const range = `time >= ${startMs}ms AND time <= ${endMs}ms`;
  return {
    "all-hosts": `SELECT mean("usage_user") FROM "cpu" WHERE ${range} GROUP BY time(1m), "host" fill(null)`,
    "one-host": `SELECT mean("usage_user") FROM "cpu" WHERE ("host" = 'host-42') AND ${range} GROUP BY time(1m) fill(null)`,
  };
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 100) / 100;
}

async function measure(url: string, q: string, runs: number): Promise<{ p50: number; p95: number; bytes: number; series: number }> {
  const u = new URL("/query", url);
  u.searchParams.set("db", DB);
  u.searchParams.set("epoch", "ms");
  u.searchParams.set("q", q);
  const times: number[] = [];
  let bytes = 0;
  let series = 0;
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const res = await fetch(u);
    const text = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`query failed: ${res.status} ${text.slice(0, 500)}`);
    if (bytes === 0) {
      const body = JSON.parse(text) as { results: Array<{ series?: unknown[]; error?: string }> };
      if (body.results[0]?.error) throw new Error(`query failed: ${body.results[0].error}`);
      series = body.results[0]?.series?.length ?? 0;
      bytes = text.length;
    }
    return ms;
  };
  const warmStart = performance.now();
  for (let i = 0; i < WARMUP_MAX && (i < WARMUP_MIN || performance.now() - warmStart < WARMUP_MS); i++) await once();
  for (let i = 0; i < runs; i++) times.push(await once());
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p95: percentile(times, 95), bytes, series };
}

async function measureAll(url: string, end: bigint, runs: number) {
  const out: Record<string, unknown> = {};
  for (const [name, q] of Object.entries(queries(end))) out[name] = await measure(url, q, runs);
  return out;
}

const serveIndex = process.argv.indexOf("--serve");
if (serveIndex >= 0) {
  await serveFallback(process.argv[serveIndex + 1] ?? "");
} else {
  await main();
}

async function main(): Promise<void> {
const cfg = config(process.argv.slice(2));
const report: Record<string, unknown> = {
  workload: { hosts: cfg.hosts, minutes: cfg.minutes, runs: cfg.runs },
  queries: {
    "all-hosts": 'SELECT mean("usage_user") FROM "cpu" WHERE time >= <end-1h>ms AND time <= <end>ms GROUP BY time(1m), "host" fill(null)',
    "one-host": "SELECT mean(\"usage_user\") FROM \"cpu\" WHERE (\"host\" = 'host-42') AND time >= <end-1h>ms AND time <= <end>ms GROUP BY time(1m) fill(null)",
  },
};

if (cfg.only === null || cfg.only === "tsdb-pair") {
  const dir = mkdtempSync(join(tmpdir(), "tsdb-pair-qbench-"));
  try {
    let server = await startTsdbPair(dir, false);
    let fallback = false;
    const probe = await fetch(`${server.url}/query?q=SHOW+DATABASES`);
    if (probe.status === 404) {
      // `serve` does not route /query yet: measure the same store, app and routes in a fallback node.
      fallback = true;
      await server.stop();
      server = await startTsdbPair(dir, true);
    }
    process.stderr.write("tsdb-pair: loading\n");
    const loaded = await load(server.url, cfg);
    process.stderr.write("tsdb-pair: querying hot data\n");
    const hot = await measureAll(server.url, loaded.end, cfg.runs);
    await server.stop();
    server = await startTsdbPair(dir, fallback);
    process.stderr.write("tsdb-pair: querying flushed data\n");
    const cold = await measureAll(server.url, loaded.end, cfg.runs);
    await server.stop();
    report["tsdb-pair"] = { server: fallback ? "bench/query.ts --serve (serve has no /query yet)" : "tsdb-pair serve", load: { lines: loaded.lines, ms: Math.round(loaded.ms) }, hot, flushed: cold };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (cfg.only === null || cfg.only === "influxdb") {
  if (!influxdInstalled()) report["influxdb"] = { skipped: "influxd is not installed" };
  else {
    const influx = await startInfluxd();
    try {
      await fetch(`${influx.url}/query?q=CREATE+DATABASE+${DB}`, { method: "POST" });
      process.stderr.write("influxdb: loading\n");
      const loaded = await load(influx.url, cfg);
      process.stderr.write("influxdb: querying\n");
      report["influxdb"] = { load: { lines: loaded.lines, ms: Math.round(loaded.ms) }, ...(await measureAll(influx.url, loaded.end, cfg.runs)) };
    } finally {
      await influx.stop();
    }
  }
}

process.stdout.write(JSON.stringify(report, null, 2) + "\n");
}
