/**
 * Ingest benchmark: tsdb-pair against InfluxDB 1.x and VictoriaMetrics over HTTP line protocol.
 *
 *   bun bench/ingest.ts [--lines N] [--hosts N | --series N] [--connections N] [--batch N]
 *                       [--only tsdb-pair|influxdb|victoria-metrics] [--random-floats] [--keep]
 *                       [--deadline-min N] [--skip-calibration]
 *   npm run -s bench -- …   (same; -s keeps npm's "> bun bench/ingest.ts" banner off stdout)
 *
 * --series is an alias of --hosts (each host writes one cpu and one system series).
 *
 * Prints one JSON document on stdout (progress goes to stderr). For each system it starts
 * the server itself on a free 127.0.0.1 port with a fresh temporary data dir, posts the
 * pre-generated workload (bench/workload.ts) from N concurrent keep-alive workers, then
 * reports lines/s, field values/s, bytes on disk per field value after the data is flushed,
 * and the server process's peak RSS. Systems run one after the other, never together.
 * InfluxDB is measured only if `influxd` is on PATH, VictoriaMetrics only if
 * `victoria-metrics` is (Debian packages influxdb and victoria-metrics); the bench never
 * installs anything and notes a missing system as skipped. tsdb-pair's bytes are measured
 * once its buffers are flushed (--flush-age 10s) and its compaction has nothing pending, after
 * a graceful SIGTERM shutdown; InfluxDB's after its cache snapshot and full compaction
 * (its settled layout; the after-snapshot figure is reported too); VictoriaMetrics's after
 * /internal/force_flush and /internal/force_merge (the after-flush figure is reported too).
 * Each system's point counts are checked after the flush (InfluxQL count() for tsdb-pair and
 * InfluxDB, count_over_time per metric for VictoriaMetrics, which stores each field as a
 * metric named <measurement>_<field>). Ratios are tsdb-pair over each other system. Before
 * each load the bench waits (bounded) for other processes to leave the cores idle, and flags
 * a measurement as contended if they did not.
 */

import { spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  BenchError,
  Deadline,
  freePort,
  installWatchdog,
  killAll,
  logTail,
  progress,
  readCpuSeconds,
  readMachineBusySeconds,
  setProgressLabel,
  scrapeMetrics,
  sleep,
  spawnServer,
  stopServer,
  waitReady,
  within,
  type Scrape,
  type Server,
} from "./harness.ts";
import { CPU_FIELDS, DEFAULT_BATCH, DEFAULT_HOSTS, DEFAULT_LINES, SYSTEM_FIELD_COUNT, makeWorkload, type Workload } from "./workload.ts";

// ---------------------------------------------------------------------------------------
// Configuration

const DEFAULT_CONNECTIONS = 8;
const DEFAULT_DEADLINE_MIN = 20;
/** Time a server gets to exit after SIGTERM (tsdb-pair flushes its hot buffers then). */
const STOP_TIMEOUT_MS = 180_000;
/** Upper bound for one POST /write or one query. */
const REQUEST_TIMEOUT_MS = 120_000;
const RSS_POLL_MS = 100;
/** CPU used by other processes above which a measurement counts as contended. */
const CONTENDED_CORES = 0.25;
/** Before each load, wait at most this long for other processes to leave the cores idle. */
const QUIET_WAIT_MAX_MS = 60_000;
const QUIET_SAMPLE_MS = 1_000;
/** How long to wait for InfluxDB to snapshot its cache and fully compact after the load. */
const INFLUX_FLUSH_MAX_MS = 180_000;
const INFLUX_SNAPSHOT_COLD = "10s";
/** Later than the snapshot (which itself counts as a write) so both layouts can be measured. */
const INFLUX_FULL_COLD = "15s";
/** InfluxDB counts as flushed once its WAL is below this and sizes are stable. */
const INFLUX_WAL_FLUSHED_BYTES = 64 * 1024;
const INFLUX_STABLE_MS = 3_000;
/** tsdb-pair's flush age in the bench: the counterpart of INFLUX_SNAPSHOT_COLD. */
const TSDB_FLUSH_AGE = "10s";
const VM_BINARY = "victoria-metrics";
/** How long to wait for VictoriaMetrics to flush, merge and force-merge after the load. */
const VM_FLUSH_MAX_MS = 180_000;
/**
 * VictoriaMetrics counts as settled once every row it accepted is in a part on disk, no merge
 * runs, no row is pending and sizes are stable this long.
 */
const VM_STABLE_MS = 3_000;
/** Forced merges to ask for until each partition is one part (one that starts during a background merge skips its parts). */
const VM_FORCE_MERGE_ATTEMPTS = 3;
/**
 * The workload's timestamps start on 2024-01-01; with the default retention (1 month)
 * VictoriaMetrics would accept the writes with 204 and silently drop every row.
 */
const VM_RETENTION = "100y";
/** VictoriaMetrics's default -search.maxUniqueTimeseries; raised to --hosts when larger so validation can count. */
const VM_DEFAULT_MAX_UNIQUE_SERIES = 300_000;
/** Fields of the workload's `system` lines (bench/workload.ts): 3 integers, then 1 string. */
const SYSTEM_NUMERIC_FIELDS = ["load_count", "n_users", "uptime"] as const;
const SYSTEM_STRING_FIELD = "uptime_format";
/** Give the watchdog a margin past the deadline before it kills everything. */
const WATCHDOG_GRACE_MS = 30_000;
const LOG_TAIL_BYTES = 2_000;
const DB = "bench";

const SYSTEMS = ["tsdb-pair", "influxdb", "victoria-metrics"] as const;
type SystemName = (typeof SYSTEMS)[number];

interface BenchConfig {
  lines: number;
  hosts: number;
  connections: number;
  batch: number;
  systems: SystemName[];
  randomFloats: boolean;
  keep: boolean;
  deadlineMs: number;
  calibrate: boolean;
  repoRoot: string;
}

/** Turns argv into a complete, validated config; the only place flags are read. */
function resolveConfig(argv: string[]): BenchConfig {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        lines: { type: "string" },
        hosts: { type: "string" },
        series: { type: "string" },
        connections: { type: "string" },
        batch: { type: "string" },
        only: { type: "string" },
        "random-floats": { type: "boolean" },
        keep: { type: "boolean" },
        "deadline-min": { type: "string" },
        "skip-calibration": { type: "boolean" },
      },
    });
  } catch (err) {
    throw new BenchError("usage", `cannot parse arguments: ${(err as Error).message}`, { cause: err });
  }
  const v = parsed.values;
  const int = (name: string, raw: string | undefined, dflt: number): number => {
    if (raw === undefined) return dflt;
    const n = Number(raw.replaceAll("_", ""));
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new BenchError("usage", `--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const hosts = int("hosts", v.hosts, DEFAULT_HOSTS);
  const series = int("series", v.series, hosts);
  if (v.hosts !== undefined && v.series !== undefined && hosts !== series) {
    throw new BenchError("usage", `--series ${series} and --hosts ${hosts} disagree (--series is an alias of --hosts)`);
  }
  let systems: SystemName[] = [...SYSTEMS];
  if (v.only !== undefined) {
    const only = SYSTEMS.find((s) => s === v.only);
    if (only === undefined) {
      throw new BenchError("usage", `--only must be one of ${SYSTEMS.join(", ")}, got ${JSON.stringify(v.only)}`);
    }
    systems = [only];
  }
  return {
    lines: int("lines", v.lines, DEFAULT_LINES),
    hosts: v.series !== undefined ? series : hosts,
    connections: int("connections", v.connections, DEFAULT_CONNECTIONS),
    batch: int("batch", v.batch, DEFAULT_BATCH),
    systems,
    randomFloats: v["random-floats"] ?? false,
    keep: v.keep ?? false,
    deadlineMs: int("deadline-min", v["deadline-min"], DEFAULT_DEADLINE_MIN) * 60_000,
    calibrate: !(v["skip-calibration"] ?? false),
    repoRoot: resolve(import.meta.dirname, ".."),
  };
}

// ---------------------------------------------------------------------------------------
// Small helpers: progress, deadline, processes, /proc, directories

/** SIGTERM, then wait for exit; SIGKILL and fail if it takes longer than STOP_TIMEOUT_MS. */
/** Values still buffered, and series/fields waiting for compaction, from tsdb-pair's /metrics (-1: unread). */
async function tsdbBacklog(url: string): Promise<{ hot: number; pending: number }> {
  const m = await scrapeMetrics(url);
  return { hot: m?.get("tsdb_pair_store_hot_values") ?? -1, pending: m?.get("tsdb_pair_store_compaction_pending") ?? -1 };
}

/** Stops a server gracefully (SIGKILL past STOP_TIMEOUT_MS), see harness stopServer. */
function stopProcess(server: Server, deadline: Deadline): Promise<{ exit: string; stopSeconds: number }> {
  return stopServer(server, deadline, STOP_TIMEOUT_MS);
}

/** Reads VmRSS / VmHWM (bytes) of a live process; null once it has gone. */
function readMem(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return null;
  }
}

/** Polls VmRSS every RSS_POLL_MS and keeps the maximum. */
class RssPoller {
  max = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  constructor(private readonly pid: number) {}
  start(): void {
    this.step();
    this.timer = setInterval(() => this.step(), RSS_POLL_MS);
  }
  step(): void {
    const m = readMem(this.pid);
    if (m !== null && m.rss > this.max) this.max = m.rss;
  }
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

interface DirStats {
  bytes: number;
  allocatedBytes: number;
  files: number;
  tmpFiles: number;
}

/** Sum of regular file sizes under dir (recursive; symlinks not followed). */
function dirStats(dir: string): DirStats {
  const total: DirStats = { bytes: 0, allocatedBytes: 0, files: 0, tmpFiles: 0 };
  if (!existsSync(dir)) return total;
  const stack = [dir];
  for (let guard = 0; stack.length > 0 && guard < 1_000_000; guard++) {
    const d = stack.pop() as string;
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      continue; // removed while walking (InfluxDB compactions delete files)
    }
    for (const name of entries) {
      const p = join(d, name);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) stack.push(p);
      else if (st.isFile()) {
        total.bytes += st.size;
        total.allocatedBytes += st.blocks * 512;
        total.files++;
        if (name.endsWith(".tmp")) total.tmpFiles++;
      }
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Load generation

interface PreparedBodies {
  bodies: Array<Uint8Array<ArrayBuffer>>;
  lines: number[];
  totalBytes: number;
  generationSeconds: number;
}

/** Generates and encodes every body before any timing starts, so generation is never measured. */
function prepareBodies(workload: Workload, deadline: Deadline): PreparedBodies {
  const t0 = performance.now();
  const enc = new TextEncoder();
  const bodies: Array<Uint8Array<ArrayBuffer>> = [];
  const lines: number[] = [];
  let totalBytes = 0;
  for (const body of workload.bodies()) {
    if (body.index % 50 === 0) deadline.check("generating the workload");
    const bytes = enc.encode(body.text);
    bodies.push(bytes);
    lines.push(body.lines);
    totalBytes += bytes.byteLength;
  }
  return { bodies, lines, totalBytes, generationSeconds: (performance.now() - t0) / 1000 };
}

interface LoadResult {
  elapsedSeconds: number;
  requests: number;
  lines: number;
  /** CPU seconds the bench process itself used while posting (all its threads). */
  clientCpuSeconds: number;
}

/** Posts every body once from `connections` concurrent workers; fails fast on any non-204. */
async function postAll(url: string, prepared: PreparedBodies, connections: number, deadline: Deadline, label: string): Promise<LoadResult> {
  let next = 0;
  let failure: BenchError | null = null;
  let done = 0;
  let lines = 0;
  const total = prepared.bodies.length;
  const reportEvery = Math.max(1, Math.ceil(total / 10));
  const worker = async (): Promise<void> => {
    while (failure === null && next < total) {
      const i = next++;
      const body = prepared.bodies[i] as Uint8Array<ArrayBuffer>;
      try {
        deadline.check(`${label}: posting body ${i}`);
        const res = await fetch(url, {
          method: "POST",
          body,
          headers: { "Content-Type": "text/plain; charset=utf-8" },
          signal: AbortSignal.timeout(deadline.cap(REQUEST_TIMEOUT_MS)),
        });
        const text = await res.text();
        if (res.status !== 204) {
          throw new BenchError("write-failed", `${label}: POST body ${i} answered ${res.status}: ${text.slice(0, 500)}`);
        }
      } catch (err) {
        failure ??= err instanceof BenchError ? err : new BenchError("write-failed", `${label}: POST body ${i} failed: ${String(err)}`, { cause: err });
        return;
      }
      done++;
      lines += prepared.lines[i] ?? 0;
      if (done % reportEvery === 0) progress(`${label}: ${done}/${total} bodies, ${lines} lines`);
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(connections, total) }, worker));
  const elapsedSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (failure !== null) throw failure;
  return { elapsedSeconds, requests: done, lines, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** Posts the workload to a null sink in a separate process: the load generator's own ceiling. */
async function calibrate(cfg: BenchConfig, prepared: PreparedBodies, tmp: string, deadline: Deadline): Promise<Record<string, unknown>> {
  const port = await freePort();
  const server = spawnServer("null-sink", process.execPath, [join(cfg.repoRoot, "bench", "null-sink.ts"), String(port)], cfg.repoRoot, join(tmp, "null-sink.log"), `http://127.0.0.1:${port}`);
  try {
    await waitReady(server, deadline);
    const cpu0 = readCpuSeconds(server.pid) ?? 0;
    const load = await postAll(`${server.url}/write`, prepared, cfg.connections, deadline, "null-sink");
    const sinkCpu = (readCpuSeconds(server.pid) ?? 0) - cpu0;
    const stats = (await (await fetch(`${server.url}/stats`, { signal: AbortSignal.timeout(5_000) })).json()) as { connections?: number };
    return {
      linesPerSec: round(load.lines / load.elapsedSeconds),
      elapsedSeconds: round(load.elapsedSeconds, 3),
      clientCpuSeconds: round(load.clientCpuSeconds, 3),
      clientCpuMicrosPerLine: round((load.clientCpuSeconds / load.lines) * 1e6, 3),
      sinkCpuSeconds: round(sinkCpu, 3),
      connectionsSeenBySink: stats.connections ?? null,
      note: "client and sink share this machine's cores, so linesPerSec is a lower bound on what the generator can push",
    };
  } finally {
    await stopProcess(server, deadline).catch(() => server.proc.kill("SIGKILL"));
  }
}

// ---------------------------------------------------------------------------------------
// Systems under test. The runner owns this shape; each system fills it in.

interface Flushed {
  /** Blocks actually allocated (what `du` shows): the headline figure. */
  bytesOnDisk: number;
  /** Sum of file sizes; overstates sparse files such as InfluxDB's preallocated _series segments. */
  apparentBytes: number;
  files: number;
  method: string;
  /** False when the flush condition was not reached in time (figure measured anyway). */
  flushed: boolean;
  detail: Record<string, unknown>;
}

interface SystemSpec {
  name: SystemName;
  /** Null when the system can run here; otherwise why it is skipped. */
  unavailable(): string | null;
  version(): string | null;
  /** `spare` is a second free loopback port for a system that needs one more listener. */
  launch(dir: string, port: number, spare: number): { cmd: string; args: string[]; cwd: string };
  /** Runs once the server answers /ping, before the load. */
  setup(server: Server, deadline: Deadline): Promise<void>;
  /** Makes the data durable on disk and measures it; may stop the server. */
  flush(server: Server, dir: string, rss: RssPoller, deadline: Deadline): Promise<Flushed>;
  /** Counts what the server holds; a failure is reported in the result, never thrown. */
  validate(server: Server, workload: Workload, deadline: Deadline): Promise<Validation>;
  /**
   * The field values the figures divide by, for a system that may store fewer than were
   * written; absent means every written field value is stored.
   */
  storedFieldValues?(workload: Workload, validation: Validation): { count: number; note: string };
}

type Validation = Record<string, unknown> & { ok: boolean };

const tsdbPair = (cfg: BenchConfig): SystemSpec => ({
  name: "tsdb-pair",
  unavailable: () => (existsSync(join(cfg.repoRoot, "src", "main.ts")) ? null : `${join(cfg.repoRoot, "src", "main.ts")} does not exist`),
  version: () => {
    try {
      return (JSON.parse(readFileSync(join(cfg.repoRoot, "package.json"), "utf8")) as { version?: string }).version ?? null;
    } catch {
      return null;
    }
  },
  launch: (dir, port) => ({
    cmd: process.execPath,
    // --flush-age 10s: buffered values go to chunks 10 s after they arrive, the counterpart of
    // InfluxDB's cache snapshot after 10 s cold (see influxConfig) and VictoriaMetrics' flush.
    args: ["src/main.ts", "serve", "--listen", `127.0.0.1:${port}`, "--data", join(dir, "data"), "--node-id", "bench", "--flush-age", TSDB_FLUSH_AGE],
    cwd: cfg.repoRoot,
  }),
  setup: async () => {},
  flush: async (server, dir, _rss, deadline) => {
    // Settled like the others: wait until nothing is buffered and compaction (which runs once
    // writes pause) has nothing pending, then a graceful shutdown; the figure is the whole
    // data dir after exit.
    const settleStarted = Date.now();
    const until = Date.now() + deadline.cap(INFLUX_FLUSH_MAX_MS);
    let stableSince = 0;
    let last = { hot: -1, pending: -1 };
    let settled = false;
    while (Date.now() < until) {
      last = await tsdbBacklog(server.url);
      if (last.hot === 0 && last.pending === 0) {
        stableSince ||= Date.now();
        if (Date.now() - stableSince >= INFLUX_STABLE_MS) {
          settled = true;
          break;
        }
      } else stableSince = 0;
      await sleep(250);
    }
    const settleMs = Date.now() - settleStarted;
    const { exit, stopSeconds } = await stopProcess(server, deadline);
    const stats = dirStats(join(dir, "data"));
    return {
      bytesOnDisk: stats.allocatedBytes,
      apparentBytes: stats.bytes,
      files: stats.files,
      method:
        `served with --flush-age ${TSDB_FLUSH_AGE}; after the load, waited until no value was buffered and compaction had nothing ` +
        `pending (/metrics tsdb_pair_store_hot_values and tsdb_pair_store_compaction_pending at 0 for ${INFLUX_STABLE_MS / 1000} s; ` +
        `at most ${INFLUX_FLUSH_MAX_MS / 1000} s), then SIGTERM, waited for exit, and measured every file in the data dir (including SQLite -wal/-shm)`,
      flushed: (exit === "0" || exit === "SIGTERM") && settled,
      detail: { exit, stopSeconds, settled, settleSeconds: round(settleMs / 1000, 1), lastBacklog: last },
    };
  },
  validate: validateInfluxQL,
});

const influxdb = (cfg: BenchConfig): SystemSpec => ({
  name: "influxdb",
  unavailable: () => (which("influxd") === null ? "influxd is not on PATH (install the Debian package influxdb to measure it)" : null),
  version: () => {
    const out = spawnSync("influxd", ["version"], { encoding: "utf8", timeout: 10_000 });
    return out.stdout?.trim() || null;
  },
  launch: (dir, port, spare) => {
    const conf = join(dir, "influxdb.conf");
    writeFileSync(conf, influxConfig(dir, port, spare));
    return { cmd: "influxd", args: ["-config", conf], cwd: dir };
  },
  setup: async (server, deadline) => {
    const res = await fetch(`${server.url}/query`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ q: `CREATE DATABASE ${DB}` }),
      signal: AbortSignal.timeout(deadline.cap(REQUEST_TIMEOUT_MS)),
    });
    const text = await res.text();
    if (res.status !== 200 || text.includes('"error"')) {
      throw new BenchError("setup-failed", `influxdb: CREATE DATABASE ${DB} answered ${res.status}: ${text.slice(0, 500)}`);
    }
  },
  flush: async (_server, dir, rss, deadline) => {
    // InfluxDB acknowledges points once they are in its WAL + cache. After
    // cache-snapshot-write-cold-duration without writes it snapshots the cache into level-1
    // TSM files and deletes the WAL segments ("after snapshot"); after
    // compact-full-write-cold-duration it fully compacts each cold shard into one TSM file
    // ("after full compaction"), the layout the data keeps from then on. The headline figure
    // is the latter; the former is reported beside it.
    const t0 = performance.now();
    const until = Date.now() + deadline.cap(INFLUX_FLUSH_MAX_MS);
    const measure = (): { wal: DirStats; data: DirStats; tsm: TsmFiles; key: string } => {
      const wal = dirStats(join(dir, "wal"));
      const data = dirStats(join(dir, "data"));
      const tsm = tsmFiles(join(dir, "data"));
      return { wal, data, tsm, key: `${wal.bytes}/${data.bytes}/${data.files}` };
    };
    let m = measure();
    let prevKey = "";
    let stableSince = 0;
    let snapshot: Record<string, unknown> | null = null;
    let compacted = false;
    for (let i = 0; Date.now() < until && i < 100_000; i++) {
      rss.step();
      m = measure();
      const settled = m.wal.bytes <= INFLUX_WAL_FLUSHED_BYTES && m.data.tmpFiles === 0 && m.key === prevKey;
      prevKey = m.key;
      if (!settled) stableSince = 0;
      else if (stableSince === 0) stableSince = Date.now();
      if (settled && Date.now() - stableSince >= INFLUX_STABLE_MS) {
        if (snapshot === null && m.tsm.maxPerShard > 1) {
          snapshot = {
            bytesOnDisk: m.data.allocatedBytes + m.wal.allocatedBytes,
            bytesPerFieldValue: null, // filled in by the runner, which knows the field-value count
            tsmFiles: m.tsm.files,
            afterSeconds: round((performance.now() - t0) / 1000, 1),
          };
          progress(`influxdb: cache snapshotted to ${m.tsm.files} TSM files; waiting for the full compaction`);
        }
        if (m.tsm.files > 0 && m.tsm.maxPerShard === 1) {
          compacted = true;
          break;
        }
      }
      await sleep(500);
    }
    return {
      bytesOnDisk: m.data.allocatedBytes + m.wal.allocatedBytes,
      apparentBytes: m.data.bytes + m.wal.bytes,
      files: m.data.files + m.wal.files,
      method:
        "server kept running; waited until the cache was snapshotted to TSM and each shard fully compacted into one TSM file " +
        `(cache-snapshot-write-cold-duration = ${INFLUX_SNAPSHOT_COLD}, compact-full-write-cold-duration = ${INFLUX_FULL_COLD}; ` +
        `WAL <= ${INFLUX_WAL_FLUSHED_BYTES} B, no .tmp files, sizes stable for ${INFLUX_STABLE_MS / 1000} s; at most ` +
        `${INFLUX_FLUSH_MAX_MS / 1000} s), then measured the data + wal dirs (meta excluded)`,
      flushed: compacted,
      detail: {
        waitedSeconds: round((performance.now() - t0) / 1000, 1),
        dataBytes: m.data.allocatedBytes,
        walBytes: m.wal.allocatedBytes,
        walApparentBytes: m.wal.bytes,
        tsmFiles: m.tsm.files,
        tsmBytes: m.tsm.bytes,
        shards: m.tsm.shards,
        metaBytes: dirStats(join(dir, "meta")).bytes,
        afterSnapshot: snapshot,
      },
    };
  },
  validate: validateInfluxQL,
});

function influxConfig(dir: string, port: number, rpcPort: number): string {
  // Every directory inside the temp dir; only loopback listeners (the top-level
  // bind-address is the backup/restore RPC service).
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, "meta")}"

[data]
  dir = "${join(dir, "data")}"
  wal-dir = "${join(dir, "wal")}"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "${INFLUX_SNAPSHOT_COLD}"
  # Default 4h; shortened so the bench can measure the layout the data ends up in.
  compact-full-write-cold-duration = "${INFLUX_FULL_COLD}"
  # The default limits (1M series, 100k values per tag) would reject --series 100000 and above.
  max-series-per-database = 0
  max-values-per-tag = 0

[http]
  bind-address = "127.0.0.1:${port}"
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
`;
}

interface TsmFiles {
  files: number;
  bytes: number;
  shards: number;
  /** Most .tsm files in any one shard directory (1 once fully compacted). */
  maxPerShard: number;
}

function tsmFiles(dir: string): TsmFiles {
  const perDir = new Map<string, number>();
  let bytes = 0;
  const stack = [dir];
  for (let guard = 0; stack.length > 0 && guard < 1_000_000; guard++) {
    const d = stack.pop() as string;
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      continue; // removed by a compaction while walking
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.name.endsWith(".tsm")) {
        try {
          bytes += lstatSync(p).size;
          perDir.set(d, (perDir.get(d) ?? 0) + 1);
        } catch {
          // deleted by a compaction meanwhile
        }
      }
    }
  }
  const counts = [...perDir.values()];
  return {
    files: counts.reduce((x, y) => x + y, 0),
    bytes,
    shards: counts.length,
    maxPerShard: counts.length === 0 ? 0 : Math.max(...counts),
  };
}

const victoriaMetrics = (cfg: BenchConfig): SystemSpec => ({
  name: "victoria-metrics",
  unavailable: () =>
    which(VM_BINARY) === null ? `${VM_BINARY} is not on PATH (install the Debian package victoria-metrics to measure it)` : null,
  version: () => vmVersion(),
  launch: (dir, port) => ({
    cmd: VM_BINARY,
    args: [
      `-storageDataPath=${join(dir, "data")}`,
      `-httpListenAddr=127.0.0.1:${port}`,
      `-retentionPeriod=${VM_RETENTION}`,
      // A query-time limit only: validation counts the series of one metric at a time.
      `-search.maxUniqueTimeseries=${Math.max(VM_DEFAULT_MAX_UNIQUE_SERIES, cfg.hosts)}`,
    ],
    cwd: dir,
  }),
  // Line protocol goes to /write as for InfluxDB (the `db` argument becomes a label); no database to create.
  setup: async () => {},
  flush: async (server, dir, rss, deadline) => {
    // VictoriaMetrics acknowledges rows once they are in its in-memory buffers; it turns
    // them into in-memory parts every second or two, writes those to file parts when it
    // merges them, and merges file parts in the background, after backing off for up to
    // several seconds when there is nothing to merge. It does not fully merge a partition
    // on its own (-finalMergeDelay is 0, off, by default in 1.79). So: /internal/force_flush,
    // then wait until every accepted row is in a file part and nothing moves ("after
    // flush"; a later background merge may still change it); then /internal/force_merge
    // until each partition is one part, the counterpart of InfluxDB's full compaction and
    // the headline figure.
    const t0 = performance.now();
    const until = Date.now() + deadline.cap(VM_FLUSH_MAX_MS);
    const dataDir = join(dir, "data");
    const forceFlush = await vmInternal(server, "/internal/force_flush", deadline);
    const flushed = await vmWaitSettled(server, dataDir, rss, until);
    const afterFlush = {
      bytesOnDisk: flushed.stats.allocatedBytes,
      bytesPerFieldValue: null, // filled in by the runner, which knows the field-value count
      files: flushed.stats.files,
      partsPerPartition: flushed.parts.partitions,
      settled: flushed.settled,
      afterSeconds: round((performance.now() - t0) / 1000, 1),
    };
    progress(`victoria-metrics: flushed (${afterFlush.bytesOnDisk} bytes); forcing a merge of every partition`);
    const forceMerges: string[] = [];
    let merged = flushed;
    for (let i = 0; i < VM_FORCE_MERGE_ATTEMPTS && Date.now() < until; i++) {
      // No partition_prefix: every partition (one per month) is merged.
      forceMerges.push(await vmInternal(server, "/internal/force_merge", deadline));
      merged = await vmWaitSettled(server, dataDir, rss, until);
      if (merged.settled && merged.fullyMerged) break;
    }
    return {
      bytesOnDisk: merged.stats.allocatedBytes,
      apparentBytes: merged.stats.bytes,
      files: merged.stats.files,
      method:
        "server kept running; GET /internal/force_flush, waited until the rows in file parts (counted from the part " +
        "directories) equalled vm_rows_added_to_storage_total, no merge ran, no row was pending (vm_active_merges, " +
        `vm_pending_rows) and sizes were stable for ${VM_STABLE_MS / 1000} s (afterFlush); then GET /internal/force_merge ` +
        `(every partition) and waited the same way, vm_active_force_merges included, repeated (at most ` +
        `${VM_FORCE_MERGE_ATTEMPTS} times) until each partition was one part (at most ${VM_FLUSH_MAX_MS / 1000} s in all); ` +
        "measured the whole -storageDataPath dir (data, indexdb, metadata; its caches are written only at shutdown)",
      flushed: forceFlush === "ok" && forceMerges.every((r) => r === "ok") && merged.settled && merged.fullyMerged,
      detail: {
        waitedSeconds: round((performance.now() - t0) / 1000, 1),
        forceFlush,
        forceMerges,
        rowsInFileParts: merged.parts.rows,
        rowsAdded: merged.rowsAdded,
        partsPerPartition: merged.parts.partitions,
        dataBytes: dirStats(join(dataDir, "data")).allocatedBytes,
        indexdbBytes: dirStats(join(dataDir, "indexdb")).allocatedBytes,
        afterFlush,
      },
    };
  },
  validate: validateVictoriaMetrics,
  storedFieldValues: (workload, validation) => {
    const written = workload.expected.fieldValues;
    const counted = validation.storedFieldValues;
    if (validation.ok && typeof counted === "number") {
      return {
        count: counted,
        note:
          counted === written
            ? "every written field value is stored as a sample, the string field as a number (see validation.stringField)"
            : `the string field ${SYSTEM_STRING_FIELD} is not stored, so per-field-value figures divide by the ${counted} samples held, not the ${written} field values written`,
      };
    }
    return { count: written, note: "validation failed, so per-field-value figures divide by the field values written" };
  },
});

/** `-version` prints nothing in Debian's build; then the version of the package owning the binary. */
function vmVersion(): string | null {
  const path = which(VM_BINARY);
  if (path === null) return null;
  const own = spawnSync(VM_BINARY, ["-version"], { encoding: "utf8", timeout: 10_000 }).stdout?.trim();
  if (own) return own;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return null;
  }
  const owner = spawnSync("dpkg-query", ["-S", real], { encoding: "utf8", timeout: 10_000 }).stdout?.split(":")[0]?.trim();
  if (!owner) return null;
  const version = spawnSync("dpkg-query", ["-W", "-f", "${Version}", owner], { encoding: "utf8", timeout: 10_000 }).stdout?.trim();
  return version ? `${owner} ${version} (Debian package; ${VM_BINARY} -version prints nothing)` : null;
}

/** GETs one of VictoriaMetrics's /internal/ endpoints; "ok" or what went wrong (the flush goes on and is marked unsettled). */
async function vmInternal(server: Server, path: string, deadline: Deadline): Promise<string> {
  try {
    const res = await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(deadline.cap(REQUEST_TIMEOUT_MS)) });
    const text = await res.text();
    return res.status === 200 ? "ok" : `status ${res.status}: ${text.slice(0, 300)}`;
  } catch (err) {
    return String(err);
  }
}

interface VmSettled {
  settled: boolean;
  /** Every partition is one file part. */
  fullyMerged: boolean;
  stats: DirStats;
  parts: VmFileParts;
  rowsAdded: number | null;
}

/**
 * Polls until every row VictoriaMetrics accepted is in a file part, no merge runs, no row is
 * pending and the data dir is stable for VM_STABLE_MS, or until `until`.
 */
async function vmWaitSettled(server: Server, dataDir: string, rss: RssPoller, until: number): Promise<VmSettled> {
  const look = async (): Promise<{ busy: number | null; rowsAdded: number | null; stats: DirStats; parts: VmFileParts }> => {
    const scrape = await scrapeMetrics(server.url);
    return {
      busy:
        scrape === null
          ? null
          : sumMetric(scrape, "vm_active_force_merges") + sumMetric(scrape, "vm_active_merges") + sumMetric(scrape, "vm_pending_rows"),
      rowsAdded: scrape === null ? null : sumMetric(scrape, "vm_rows_added_to_storage_total"),
      stats: dirStats(dataDir),
      parts: vmFileParts(dataDir),
    };
  };
  let m = await look();
  let prevKey = "";
  let stableSince = 0;
  let settled = false;
  for (let i = 0; Date.now() < until && i < 100_000; i++) {
    rss.step();
    m = await look();
    const key = `${m.stats.bytes}/${m.stats.files}`;
    // A forced merge runs in a goroutine started after the HTTP answer; requiring several
    // seconds of idle, stable polls covers the moment before it counts itself as active.
    const still = m.busy === 0 && m.rowsAdded !== null && m.parts.rows === m.rowsAdded && key === prevKey;
    prevKey = key;
    if (!still) stableSince = 0;
    else if (stableSince === 0) stableSince = Date.now();
    if (still && Date.now() - stableSince >= VM_STABLE_MS) {
      settled = true;
      break;
    }
    await sleep(500);
  }
  const counts = Object.values(m.parts.partitions);
  return { settled, fullyMerged: counts.length > 0 && counts.every((n) => n === 1), stats: m.stats, parts: m.parts, rowsAdded: m.rowsAdded };
}

interface VmFileParts {
  /** Rows in file parts (in-memory parts are not on disk yet); NaN if a part's row count cannot be read. */
  rows: number;
  /** File parts (small and big) per partition name (YYYY_MM). */
  partitions: Record<string, number>;
}

/**
 * Rows and parts of VictoriaMetrics's file parts under <storageDataPath>/data/{small,big}/<partition>/.
 * A part's row count is the first field of its directory name in 1.79
 * (<rows>_<blocks>_<minTime>_<maxTime>_<id>), RowsCount in its metadata.json in later versions.
 */
function vmFileParts(dataDir: string): VmFileParts {
  const out: VmFileParts = { rows: 0, partitions: {} };
  for (const kind of ["small", "big"]) {
    const kindDir = join(dataDir, "data", kind);
    for (const partition of subdirs(kindDir)) {
      if (partition === "snapshots") continue;
      for (const part of subdirs(join(kindDir, partition))) {
        if (part === "tmp" || part === "txn") continue;
        out.rows += vmPartRows(join(kindDir, partition, part), part);
        out.partitions[partition] = (out.partitions[partition] ?? 0) + 1;
      }
    }
  }
  return out;
}

function vmPartRows(path: string, name: string): number {
  try {
    const rows = (JSON.parse(readFileSync(join(path, "metadata.json"), "utf8")) as { RowsCount?: unknown }).RowsCount;
    if (typeof rows === "number") return rows;
  } catch {
    // 1.79 has no metadata.json: the count is in the name
  }
  const m = /^(\d+)_\d+_/.exec(name);
  return m === null ? Number.NaN : Number(m[1]);
}

/** Names of the directories in dir; none if it is missing or removed while listing (merges delete parts). */
function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** Sum of every sample of metric `name` in a scrape, whatever its labels. */
function sumMetric(scrape: Scrape, name: string): number {
  let sum = 0;
  for (const [key, value] of scrape) if (key === name || key.startsWith(`${name}{`)) sum += value;
  return sum;
}

/**
 * Counts VictoriaMetrics's samples and series per metric (each field is a metric named
 * <measurement>_<field>) with count_over_time over a window holding every timestamp written,
 * which counts raw samples exactly, and checks the total against the rows its storage
 * holds (vm_rows). A failure here is reported, not fatal.
 */
async function validateVictoriaMetrics(server: Server, workload: Workload, deadline: Deadline): Promise<Validation> {
  const e = workload.expected;
  const first = Number(e.firstTimestampNs / 1_000_000_000n);
  const last = Number(e.lastTimestampNs / 1_000_000_000n);
  // An instant query at `at` with window [w] counts the samples in (at - w, at]: here (first - 1 s, last + 1 s].
  const at = last + 1;
  const window = `${last - first + 2}s`;
  // Tick 0 writes cpu then system for host 0, then host 1, …, so a workload shorter than
  // that tick reaches one more cpu series than system series at most.
  const cpuSeries = Math.ceil(e.series / 2);
  const systemSeries = Math.floor(e.series / 2);
  const numeric = [
    ...CPU_FIELDS.map((f) => ({ metric: `cpu_${f}`, samples: e.cpuLines, series: cpuSeries })),
    ...SYSTEM_NUMERIC_FIELDS.map((f) => ({ metric: `system_${f}`, samples: e.systemLines, series: systemSeries })),
  ];
  const stringMetric = `system_${SYSTEM_STRING_FIELD}`;
  const checked =
    `samples and series of each metric: sum(count_over_time(M[${window}])) and count(count_over_time(M[${window}])) ` +
    `at time=${at} via /api/v1/query, for the ${numeric.length} numeric fields and the string field; ` +
    "total samples compared with the rows in storage (vm_rows{type=storage/small|big} from /metrics)";
  const count = async (query: string): Promise<number> => {
    const res = await fetch(`${server.url}/api/v1/query?${new URLSearchParams({ query, time: String(at) })}`, {
      signal: AbortSignal.timeout(deadline.cap(REQUEST_TIMEOUT_MS)),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${query} answered ${res.status}: ${text.slice(0, 300)}`);
    const result = (JSON.parse(text) as { data?: { result?: Array<{ value?: [number, string] }> } }).data?.result ?? [];
    // A metric with no sample in the window gives an empty vector.
    return result.length === 0 ? 0 : Number(result[0]?.value?.[1]);
  };
  try {
    const metrics: Record<string, { samples: number; series: number; expectedSamples: number; expectedSeries: number }> = {};
    let numericOk = true;
    let counted = 0;
    for (const m of numeric) {
      const samples = await count(`sum(count_over_time(${m.metric}[${window}]))`);
      const series = await count(`count(count_over_time(${m.metric}[${window}]))`);
      metrics[m.metric] = { samples, series, expectedSamples: m.samples, expectedSeries: m.series };
      if (samples !== m.samples || series !== m.series) numericOk = false;
      counted += samples;
    }
    const stringSamples = await count(`sum(count_over_time(${stringMetric}[${window}]))`);
    const stringSeries = await count(`count(count_over_time(${stringMetric}[${window}]))`);
    counted += stringSamples;
    const stringAsNumbers = stringSamples === e.systemLines && stringSeries === systemSeries;
    const stringDropped = stringSamples === 0 && stringSeries === 0;
    const scrape = await scrapeMetrics(server.url);
    const rowsInStorage = scrape === null ? null : (scrape.get('vm_rows{type="storage/small"}') ?? 0) + (scrape.get('vm_rows{type="storage/big"}') ?? 0);
    const knowsEveryField = SYSTEM_NUMERIC_FIELDS.length + 1 === SYSTEM_FIELD_COUNT;
    return {
      ok: numericOk && (stringAsNumbers || stringDropped) && rowsInStorage === counted && knowsEveryField,
      checked,
      metrics,
      stringField: {
        metric: stringMetric,
        samples: stringSamples,
        series: stringSeries,
        samplesIfStored: e.systemLines,
        stored: stringAsNumbers
          ? "yes, as numbers: VictoriaMetrics parses a quoted field value best-effort as a number and stores 0 when it is not one, so the text is lost"
          : stringDropped
            ? "no: VictoriaMetrics dropped the string field"
            : "partly (unexpected)",
      },
      storedFieldValues: counted,
      rowsInStorage,
      ...(knowsEveryField ? {} : { error: `bench/workload.ts writes ${SYSTEM_FIELD_COUNT} fields per system line; this validation knows ${SYSTEM_NUMERIC_FIELDS.length + 1}` }),
    };
  } catch (err) {
    return { ok: false, checked, error: String(err) };
  }
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Running one system

type SystemResult = Record<string, unknown> & { status: "ok" | "skipped" | "failed" };

async function runSystem(spec: SystemSpec, cfg: BenchConfig, workload: Workload, prepared: PreparedBodies, tmp: string, deadline: Deadline): Promise<SystemResult> {
  const reason = spec.unavailable();
  if (reason !== null) {
    progress(`${spec.name}: skipped (${reason})`);
    return { status: "skipped", reason };
  }
  const dir = join(tmp, spec.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const launch = spec.launch(dir, port, await freePort());
  const commandLine = [launch.cmd, ...launch.args].join(" ");
  progress(`${spec.name}: starting ${commandLine}`);
  const server = spawnServer(spec.name, launch.cmd, launch.args, launch.cwd, join(tmp, `${spec.name}.log`), `http://127.0.0.1:${port}`);
  const rss = new RssPoller(server.pid);
  rss.start();
  const result: SystemResult = { status: "failed", version: spec.version(), command: commandLine, cwd: launch.cwd, dataDir: dir };
  try {
    await waitReady(server, deadline);
    await spec.setup(server, deadline);
    const idleRss = readMem(server.pid)?.rss ?? null;
    const quiet = await waitQuiet(server.pid, deadline);
    progress(`${spec.name}: ready on ${server.url}; posting ${prepared.bodies.length} bodies`);
    const cpu0 = readCpuSeconds(server.pid);
    const machine0 = readMachineBusySeconds();
    const load = await postAll(`${server.url}/write?db=${DB}&precision=ns`, prepared, cfg.connections, deadline, spec.name);
    const machine1 = readMachineBusySeconds();
    const cpu1 = readCpuSeconds(server.pid);
    rss.step();
    const afterLoad = readMem(server.pid);
    const linesPerSec = load.lines / load.elapsedSeconds;
    const serverCpu = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
    const otherCores =
      // Jiffy-granular counters say nothing useful about loads shorter than a second.
      machine0 !== null && machine1 !== null && serverCpu !== null && load.elapsedSeconds >= 1
        ? Math.max(0, (machine1 - machine0 - serverCpu - load.clientCpuSeconds) / load.elapsedSeconds)
        : null;
    progress(`${spec.name}: ${Math.round(linesPerSec)} lines/s over ${load.elapsedSeconds.toFixed(1)} s; flushing and measuring disk`);
    // Read just before the flush (for tsdb-pair: just before SIGTERM); the poller keeps
    // sampling through the flush so memory used by shutdown/snapshot/compaction counts too.
    const beforeFlush = readMem(server.pid);
    const flushed = await spec.flush(server, dir, rss, deadline);
    rss.step();
    rss.stop();
    const peakRssBytes = Math.max(afterLoad?.hwm ?? 0, beforeFlush?.hwm ?? 0, rss.max);
    // Validation runs after the memory figures are taken so its query does not inflate them.
    const validation =
      server.exitedYet() === null
        ? { when: "after the flush, same server process", ...(await spec.validate(server, workload, deadline)) }
        : await validateAfterRestart(spec, dir, tmp, workload, deadline);
    const stored = spec.storedFieldValues?.(workload, validation) ?? null;
    const fieldValues = stored?.count ?? workload.expected.fieldValues;
    // Intermediate layouts (InfluxDB's afterSnapshot, VictoriaMetrics's afterFlush) leave
    // bytesPerFieldValue null for the runner to fill in.
    for (const v of Object.values(flushed.detail)) {
      const layout = v as { bytesOnDisk?: unknown; bytesPerFieldValue?: unknown } | null;
      if (typeof layout === "object" && layout !== null && layout.bytesPerFieldValue === null && typeof layout.bytesOnDisk === "number") {
        layout.bytesPerFieldValue = round(layout.bytesOnDisk / fieldValues, 3);
      }
    }
    Object.assign(result, {
      status: "ok",
      validated: validation.ok === true,
      ...(stored === null ? {} : { fieldValues: { written: workload.expected.fieldValues, stored: stored.count, note: stored.note } }),
      linesPerSec: round(linesPerSec),
      fieldValuesPerSec: round(fieldValues / load.elapsedSeconds),
      bytesPerFieldValue: round(flushed.bytesOnDisk / fieldValues, 3),
      peakRssBytes,
      peakRssMiB: round(peakRssBytes / 2 ** 20, 1),
      load: {
        elapsedSeconds: round(load.elapsedSeconds, 3),
        requests: load.requests,
        lines: load.lines,
        clientCpuSeconds: round(load.clientCpuSeconds, 3),
        clientCoresBusy: round(load.clientCpuSeconds / load.elapsedSeconds, 3),
        serverCpuSeconds: serverCpu === null ? null : round(serverCpu, 3),
        serverCoresBusy: serverCpu === null ? null : round(serverCpu / load.elapsedSeconds, 3),
        // Busy CPU of the whole machine not accounted to the bench or the server (other
        // processes, plus some kernel time such as loopback softirqs): high means contended.
        otherCoresBusy: otherCores === null ? null : round(otherCores, 3),
        contended: otherCores !== null && otherCores > CONTENDED_CORES,
        otherCoresBusyBeforeLoad: quiet.otherCores === null ? null : round(quiet.otherCores, 3),
        waitedForQuietSeconds: round(quiet.waitedMs / 1000, 1),
      },
      disk: {
        bytesOnDisk: flushed.bytesOnDisk,
        measure: "allocated blocks (st_blocks * 512, as du shows) of every file; apparentBytes = sum of file sizes",
        apparentBytes: flushed.apparentBytes,
        apparentBytesPerFieldValue: round(flushed.apparentBytes / fieldValues, 3),
        files: flushed.files,
        flushed: flushed.flushed,
        method: flushed.method,
        ...flushed.detail,
      },
      memory: {
        peakRssMethod:
          "max of VmHWM read right after the load and right before the flush/SIGTERM, and VmRSS polled every 100 ms from start through the flush",
        idleRssBytes: idleRss,
        vmHwmAfterLoadBytes: afterLoad?.hwm ?? null,
        vmHwmBeforeFlushBytes: beforeFlush?.hwm ?? null,
        polledMaxRssBytes: rss.max,
      },
      validation,
    });
    if (server.exitedYet() === null) await stopProcess(server, deadline);
    progress(`${spec.name}: done`);
  } catch (err) {
    const e = err instanceof BenchError ? err : new BenchError("write-failed", String(err), { cause: err });
    progress(`${spec.name}: FAILED (${e.code}): ${e.message}`);
    Object.assign(result, { status: "failed", error: { code: e.code, message: e.message }, logTail: logTail(server.logPath) });
  } finally {
    rss.stop();
    if (server.exitedYet() === null) {
      server.proc.kill("SIGKILL");
      await within(server.exited, 5_000);
    }
  }
  return result;
}

/** Restarts a server that stopped during its flush on the same data dir and counts what it holds. */
async function validateAfterRestart(spec: SystemSpec, dir: string, tmp: string, workload: Workload, deadline: Deadline): Promise<Validation> {
  const when = "after a restart on the same data dir";
  const port = await freePort();
  const launch = spec.launch(dir, port, await freePort());
  progress(`${spec.name}: restarting to validate what was persisted`);
  let server: Server | null = null;
  try {
    server = spawnServer(`${spec.name} (restart)`, launch.cmd, launch.args, launch.cwd, join(tmp, `${spec.name}-restart.log`), `http://127.0.0.1:${port}`);
    await waitReady(server, deadline);
    const v = await spec.validate(server, workload, deadline);
    await stopProcess(server, deadline);
    return { when, ...v };
  } catch (err) {
    return { when, ok: false, error: String(err) };
  } finally {
    if (server !== null && server.exitedYet() === null) {
      server.proc.kill("SIGKILL");
      await within(server.exited, 5_000);
    }
  }
}

/**
 * Waits (bounded) until the rest of the machine is nearly idle, so another process does not
 * steal the cores the server needs; returns how busy it still was if it never got quiet.
 */
async function waitQuiet(serverPid: number, deadline: Deadline): Promise<{ otherCores: number | null; waitedMs: number }> {
  const t0 = Date.now();
  let other: number | null = null;
  for (let i = 0; Date.now() - t0 < deadline.cap(QUIET_WAIT_MAX_MS) && i < 1_000; i++) {
    const m0 = readMachineBusySeconds();
    const s0 = readCpuSeconds(serverPid);
    const c0 = process.cpuUsage();
    await sleep(QUIET_SAMPLE_MS);
    const m1 = readMachineBusySeconds();
    const s1 = readCpuSeconds(serverPid);
    const c = process.cpuUsage(c0);
    if (m0 === null || m1 === null || s0 === null || s1 === null) return { otherCores: null, waitedMs: Date.now() - t0 };
    other = Math.max(0, (m1 - m0 - (s1 - s0) - (c.user + c.system) / 1e6) / (QUIET_SAMPLE_MS / 1000));
    if (other <= CONTENDED_CORES) return { otherCores: other, waitedMs: Date.now() - t0 };
    if (i === 0) progress(`machine busy (${other.toFixed(2)} cores used by other processes); waiting up to ${QUIET_WAIT_MAX_MS / 1000} s for it to calm down`);
  }
  progress(`machine still busy (${(other ?? 0).toFixed(2)} other cores); measuring anyway, figures will be marked contended`);
  return { otherCores: other, waitedMs: Date.now() - t0 };
}

/** Counts what the server holds with InfluxQL; a failure here is reported, not fatal. */
async function validateInfluxQL(server: Server, workload: Workload, deadline: Deadline): Promise<Validation> {
  const q = "SELECT count(usage_user) FROM cpu; SELECT count(uptime) FROM system";
  try {
    const res = await fetch(`${server.url}/query?db=${DB}&q=${encodeURIComponent(q)}`, {
      signal: AbortSignal.timeout(deadline.cap(REQUEST_TIMEOUT_MS)),
    });
    const text = await res.text();
    if (res.status !== 200) return { ok: false, query: q, error: `status ${res.status}: ${text.slice(0, 300)}` };
    const body = JSON.parse(text) as { results?: Array<{ series?: Array<{ values?: unknown[][] }> }> };
    const count = (i: number): number | null => {
      const v = body.results?.[i]?.series?.[0]?.values?.[0]?.[1];
      return typeof v === "number" ? v : null;
    };
    const cpu = count(0);
    const system = count(1);
    return {
      ok: cpu === workload.expected.cpuLines && system === workload.expected.systemLines,
      query: q,
      cpu,
      system,
      expectedCpu: workload.expected.cpuLines,
      expectedSystem: workload.expected.systemLines,
    };
  } catch (err) {
    return { ok: false, query: q, error: String(err) };
  }
}

// ---------------------------------------------------------------------------------------
// Main: the only place that prints the result and exits.

function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

async function main(): Promise<number> {
  let cfg: BenchConfig;
  try {
    cfg = resolveConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const deadline = new Deadline(cfg.deadlineMs);
  const tmp = mkdtempSync(join(os.tmpdir(), "tsdb-pair-bench-"));
  installWatchdog({ deadlineMs: cfg.deadlineMs, graceMs: WATCHDOG_GRACE_MS, tmp, keep: cfg.keep });

  const workload = makeWorkload({ lines: cfg.lines, hosts: cfg.hosts, batch: cfg.batch, randomFloats: cfg.randomFloats });
  const out: Record<string, unknown> = {
    benchmark: "ingest",
    startedAt: new Date().toISOString(),
    config: { connections: cfg.connections, systems: cfg.systems, deadlineMin: cfg.deadlineMs / 60_000, keep: cfg.keep },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      memTotalBytes: os.totalmem(),
      kernel: os.release(),
      bun: process.versions.bun ?? null,
    },
  };
  let exitCode = 0;
  try {
    progress(`generating ${workload.expected.lines} lines over ${cfg.hosts} hosts in ${workload.expected.bodies} bodies`);
    const prepared = prepareBodies(workload, deadline);
    out.workload = {
      ...workload.options,
      ...workload.expected,
      firstTimestampNs: String(workload.expected.firstTimestampNs),
      lastTimestampNs: String(workload.expected.lastTimestampNs),
      bodyBytes: prepared.totalBytes,
      bytesPerLine: round(prepared.totalBytes / workload.expected.lines, 1),
      floats: cfg.randomFloats ? "full-precision random doubles" : "2-decimal random walk",
    };
    const loadGenerator: Record<string, unknown> = {
      generationSeconds: round(prepared.generationSeconds, 3),
      pregenerated: true,
    };
    out.loadGenerator = loadGenerator;
    if (cfg.calibrate) {
      progress("calibrating the load generator against a null sink");
      loadGenerator.nullSink = await calibrate(cfg, prepared, tmp, deadline);
    }
    const systems: Record<string, SystemResult> = {};
    out.systems = systems;
    const specs: Record<SystemName, SystemSpec> = {
      "tsdb-pair": tsdbPair(cfg),
      influxdb: influxdb(cfg),
      "victoria-metrics": victoriaMetrics(cfg),
    };
    for (const name of cfg.systems) {
      if (deadline.remaining() <= 0) {
        systems[name] = { status: "failed", error: { code: "deadline-exceeded", message: "global deadline passed before this system started" } };
        continue;
      }
      systems[name] = await runSystem(specs[name], cfg, workload, prepared, tmp, deadline);
    }
    out.ratios = ratios(systems);
    out.warnings = warnings(systems);
    if (Object.values(systems).some((s) => s.status === "failed")) exitCode = 1;
  } catch (err) {
    const e = err as Error & { code?: string };
    progress(`FAILED: ${e.message}`);
    out.error = { code: e.code ?? "internal", message: e.message };
    exitCode = 1;
  } finally {
    killAll();
    if (cfg.keep) out.keptDir = tmp;
    else rmSync(tmp, { recursive: true, force: true });
  }
  out.finishedAt = new Date().toISOString();
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
  return exitCode;
}

/** Things a reader of the figures should know before trusting them. */
function warnings(systems: Record<string, SystemResult>): string[] {
  const out: string[] = [];
  for (const [name, r] of Object.entries(systems)) {
    if (r.status !== "ok") continue;
    const load = r.load as { otherCoresBusy?: number | null; contended?: boolean; clientCoresBusy?: number };
    if (load.contended === true) {
      out.push(`${name}: other processes used ${load.otherCoresBusy} cores during the load; throughput is understated`);
    }
    if ((load.clientCoresBusy ?? 0) > 0.5) {
      out.push(`${name}: the load generator used ${load.clientCoresBusy} cores; it may have been the bottleneck`);
    }
    if ((r.disk as { flushed?: boolean }).flushed !== true) out.push(`${name}: flush condition not reached; bytes on disk measured anyway`);
    if (r.validated !== true) out.push(`${name}: point counts could not be validated (see validation)`);
  }
  return out;
}

/** tsdb-pair / each other system for each headline figure, when both were measured; null if none was. */
function ratios(systems: Record<string, SystemResult>): Record<string, number> | null {
  const a = systems["tsdb-pair"];
  if (a?.status !== "ok") return null;
  const others = [
    ["influxdb", "Influxdb"],
    ["victoria-metrics", "VictoriaMetrics"],
  ] as const;
  const out: Record<string, number> = {};
  let measured = false;
  for (const [name, suffix] of others) {
    const b = systems[name];
    if (b?.status !== "ok") continue;
    measured = true;
    for (const key of ["linesPerSec", "fieldValuesPerSec", "bytesPerFieldValue", "peakRssBytes"]) {
      const x = a[key];
      const y = b[key];
      if (typeof x === "number" && typeof y === "number" && y !== 0) out[`${key}TsdbPairOver${suffix}`] = round(x / y, 3);
    }
  }
  return measured ? out : null;
}

process.exitCode = await main();
