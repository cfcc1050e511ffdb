/**
 * Ingest benchmark: tsdb-pair against InfluxDB 1.x over HTTP line protocol.
 *
 *   bun bench/ingest.ts [--lines N] [--hosts N | --series N] [--connections N] [--batch N]
 *                       [--only tsdb-pair|influxdb] [--random-floats] [--keep]
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
 * InfluxDB is measured only if `influxd` is on PATH; the bench never installs anything.
 * tsdb-pair's bytes are measured after a graceful SIGTERM shutdown; InfluxDB's after its
 * cache snapshot and full compaction (its settled layout; the after-snapshot figure is
 * reported too). Before each load the bench waits (bounded) for other processes to leave
 * the cores idle, and flags a measurement as contended if they did not.
 */

import { spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
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
  sleep,
  spawnServer,
  waitReady,
  within,
  type Server,
} from "./harness.ts";
import { DEFAULT_BATCH, DEFAULT_HOSTS, DEFAULT_LINES, makeWorkload, type Workload } from "./workload.ts";

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
/** Give the watchdog a margin past the deadline before it kills everything. */
const WATCHDOG_GRACE_MS = 30_000;
const LOG_TAIL_BYTES = 2_000;
const DB = "bench";

const SYSTEMS = ["tsdb-pair", "influxdb"] as const;
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
async function stopProcess(server: Server, deadline: Deadline): Promise<{ exit: string; stopMs: number }> {
  const t0 = performance.now();
  if (server.exitedYet() === null) server.proc.kill("SIGTERM");
  const timeout = deadline.cap(STOP_TIMEOUT_MS);
  const exit = await within(server.exited, timeout);
  if (exit === null) {
    server.proc.kill("SIGKILL");
    await within(server.exited, 5_000);
    throw new BenchError("stop-timeout", `${server.name} did not exit within ${timeout} ms of SIGTERM; killed it`);
  }
  return { exit, stopMs: performance.now() - t0 };
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
}

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
    args: ["src/main.ts", "serve", "--listen", `127.0.0.1:${port}`, "--data", join(dir, "data"), "--node-id", "bench"],
    cwd: cfg.repoRoot,
  }),
  setup: async () => {},
  flush: async (server, dir, _rss, deadline) => {
    // Graceful shutdown writes hot buffers to chunks; the figure is the whole data dir after exit.
    const { exit, stopMs } = await stopProcess(server, deadline);
    const stats = dirStats(join(dir, "data"));
    return {
      bytesOnDisk: stats.allocatedBytes,
      apparentBytes: stats.bytes,
      files: stats.files,
      method: "SIGTERM (graceful shutdown flushes hot buffers), waited for exit, then measured every file in the data dir (including SQLite -wal/-shm)",
      flushed: exit === "0" || exit === "SIGTERM",
      detail: { exit, stopSeconds: round(stopMs / 1000, 3) },
    };
  },
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
  const fieldValues = workload.expected.fieldValues;
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
        ? { when: "after the flush, same server process", ...(await validate(server, workload, deadline)) }
        : await validateAfterRestart(spec, dir, tmp, workload, deadline);
    const afterSnapshot = flushed.detail.afterSnapshot as { bytesOnDisk?: number } | null | undefined;
    if (afterSnapshot !== null && afterSnapshot !== undefined && typeof afterSnapshot.bytesOnDisk === "number") {
      Object.assign(afterSnapshot, { bytesPerFieldValue: round(afterSnapshot.bytesOnDisk / fieldValues, 3) });
    }
    Object.assign(result, {
      status: "ok",
      validated: validation.ok === true,
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
async function validateAfterRestart(spec: SystemSpec, dir: string, tmp: string, workload: Workload, deadline: Deadline): Promise<Record<string, unknown>> {
  const when = "after a restart on the same data dir";
  const port = await freePort();
  const launch = spec.launch(dir, port, await freePort());
  progress(`${spec.name}: restarting to validate what was persisted`);
  let server: Server | null = null;
  try {
    server = spawnServer(`${spec.name} (restart)`, launch.cmd, launch.args, launch.cwd, join(tmp, `${spec.name}-restart.log`), `http://127.0.0.1:${port}`);
    await waitReady(server, deadline);
    const v = await validate(server, workload, deadline);
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
async function validate(server: Server, workload: Workload, deadline: Deadline): Promise<Record<string, unknown>> {
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
    const specs = { "tsdb-pair": tsdbPair(cfg), influxdb: influxdb(cfg) };
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

/** tsdb-pair / InfluxDB for each headline figure, when both were measured. */
function ratios(systems: Record<string, SystemResult>): Record<string, number> | null {
  const a = systems["tsdb-pair"];
  const b = systems.influxdb;
  if (a?.status !== "ok" || b?.status !== "ok") return null;
  const out: Record<string, number> = {};
  for (const key of ["linesPerSec", "fieldValuesPerSec", "bytesPerFieldValue", "peakRssBytes"]) {
    const x = a[key];
    const y = b[key];
    if (typeof x === "number" && typeof y === "number" && y !== 0) out[`${key}TsdbPairOverInfluxdb`] = round(x / y, 3);
  }
  return out;
}

process.exitCode = await main();
