/**
 * Pair benchmark: two tsdb-pair nodes paired on loopback (issue: replication lag, catch-up,
 * ingest with the twin down). Prints one JSON document on stdout; progress goes to stderr.
 *
 *   bun bench/pair.ts [flags]          (bun bench/pair.ts --help lists them)
 *
 * Phases, one after the other, each on fresh points (its own time range of the
 * bench/workload.ts workload, so nothing is overwritten). They run in the order 1, 3-6, 2, 7:
 * the lag runs come last because a saturated pair may need minutes to drain its backlog.
 *  1. single node: a fresh unpaired node ingests --lines at full speed, --single-runs times;
 *     the best run is the single-node maximum (other processes only ever slow a run down).
 *  2. lag: nodes a and b paired (each --peer the other, directly, no proxy); both ingest at
 *     --rate-fraction of that maximum (open loop, fixed requests/s per node, at most
 *     --lag-connections in flight) for --lag-seconds. Each node's GET /peer/status is polled
 *     every --poll-ms. The lag of a request is the time from its 204 (origin commit) to the
 *     first status answer from the twin whose i_applied_twin_lsn covers the request's LSN
 *     (twin commit: the cursor advances in the frame's own transaction). The LSN comes from
 *     an X-Tsdb-Pair-Lsn response header when the node sends one; otherwise it is read back
 *     exactly from the origin's frame log (the frame holds the request's lines; first line ->
 *     LSN); if that fails, the origin's my_latest_lsn seen right after the 204 is used (an
 *     upper bound). Strict bounds from the poll windows on both sides are reported too.
 *     The run is repeated at each of --extra-fractions (context: lag below saturation).
 *  3. twin up vs down: a ingests --ab-lines at full speed with b up and streaming, then twice
 *     with b stopped (SIGTERM), then (after 4.) again with b up (ABBA, to cancel drift).
 *  4. catch-up after restart: with b still stopped, a takes --catchup-requests more bodies;
 *     b is started and timed until its i_applied_twin_lsn reaches a's my_latest_lsn (frames,
 *     lines and field values per second, from b answering to caught up; start-up apart).
 *     The path b took (frames from the log, or a catch-up from storage) is reported.
 *  5. catch-up after a pause: b keeps running but its link is paused (POST /peer/pause)
 *     while a takes --catchup-requests bodies; timed from POST /peer/resume to caught up.
 *     More than --catch-up-bytes behind, b catches up from a's storage (chunks), else over
 *     frames; give a large --catch-up-bytes to time the frame path in 4 and 5.
 *  6. catch-up across a gap: b's link paused, a restarted with --wal-retention 1s, takes
 *     --gap-requests bodies, waits past the retention and is restarted (its shutdown flush
 *     trims the frames); b resumes, meets the gap and refills from a's storage (backfill).
 *  7. convergence: both exports are streamed side by side and must be byte-identical, with
 *     one line per point written to the pair.
 *
 * Before each timed phase the bench waits (bounded, --quiet-wait-s) for other processes to
 * leave the cores idle, and records the CPU used by each server, by the bench itself and by
 * everything else (otherCoresBusy; "contended" above 0.25 cores) plus the load average.
 * Everything listens on 127.0.0.1 only; every loop is bounded and a global deadline
 * (--deadline-min) ends the run.
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  BenchError,
  CpuMeter,
  DB,
  Deadline,
  distribution,
  freePort,
  installWatchdog,
  killAll,
  LSN_HEADER,
  lsnsByFirstLine,
  peerStatus,
  postAll,
  pacedLoad,
  progress,
  setProgressLabel,
  round,
  sleep,
  Slabs,
  spawnServer,
  StatusPoller,
  stopServer,
  compareExports,
  scrapeMetrics,
  writerSteps,
  waitFor,
  waitInSync,
  waitQuiet,
  waitReady,
  logTail,
  type CpuReport,
  type Distribution,
  type LoadResult,
  type PacedResult,
  type Prepared,
  type RequestRecord,
  type Server,
  type StatusSample,
} from "./harness.ts";
import { MessageReader } from "../src/peer/wire.ts";
import { DEFAULT_BATCH, DEFAULT_HOSTS, DEFAULT_SEED, DEFAULT_START_SECONDS } from "./workload.ts";

// ---------------------------------------------------------------------------------------
// Configuration

const USAGE = `Usage: bun bench/pair.ts [flags]

Benchmarks a tsdb-pair pair on loopback: replication lag, twin-down ingest, catch-up.
Prints one JSON document on stdout; progress on stderr.

Flags (defaults in brackets):
  --lines N              lines for the single-node maximum [300000]
  --single-runs N        single-node loads (fresh node each); the best is the maximum [3]
  --hosts N              hosts in the workload (alias --series) [${DEFAULT_HOSTS}]
  --batch N              lines per request body [${DEFAULT_BATCH}]
  --connections N        concurrent connections for full-speed loads [8]
  --rate-fraction F      per-node paced rate in the lag phase, as a fraction of the
                         single-node maximum; the lag target is judged here [0.5]
  --lag-seconds N        duration of the paced dual ingest [30]
  --extra-fractions L    comma-separated further fractions measured after it, for
                         context ("none" to skip) [0.2]
  --extra-lag-seconds N  duration of each extra-fraction run [15]
  --drain-seconds N      after a lag run, how long lags are still observed; a request
                         not seen applied by then counts with its lag so far (censored) [60]
  --sync-timeout-s N     longest wait for the pair to get back in sync after a lag run
                         (how long the twins take to drain their backlog is reported) [600]
  --lag-connections N    most requests in flight per node in the lag phase [4]
  --poll-ms N            /peer/status poll interval in the lag phase [5]
  --ab-lines N           lines per twin-up / twin-down load [same as --lines]
  --catchup-requests N   bodies written to a while b is down (on top of the two
                         twin-down loads) and while b's link is paused [100]
  --gap-requests N       bodies written before the frame log is trimmed (gap catch-up) [100]
  --sync MODE            --sync of both nodes: full, normal or off [full]
  --catch-up-bytes SIZE  --catch-up-bytes of both nodes (how far behind a twin catches up
                         from storage instead of frames; a large value times the frame path)
                         [the node's default]
  --quiet-wait-s N       before each phase, wait at most this long for an idle machine:
                         other processes < 0.25 cores and each server < 0.1 core (its
                         background flushes and compaction done) [60]
  --deadline-min N       global deadline; the run is aborted past it [40]
  --split-cpus           run each node on its own half of the CPUs (taskset), as if
                         each were on its own box: the single node and a on the first
                         half, b on the second; the bench itself is not pinned [off]
  --keep                 keep the temporary data directories and logs
  --help                 this text

Targets (issue): lag p99 < 100 ms; catch-up >= 3x the single-node ingest rate;
ingest with the twin down >= 90% of ingest with it up; exports byte-identical.
Exit code: 0 all targets met, 1 a target missed, 2 the run failed (JSON has "error").
Everything listens on 127.0.0.1; nodes run from this checkout (bun src/main.ts).
`;

interface Config {
  lines: number;
  singleRuns: number;
  hosts: number;
  batch: number;
  connections: number;
  rateFraction: number;
  lagSeconds: number;
  extraFractions: number[];
  extraLagSeconds: number;
  drainMs: number;
  syncTimeoutMs: number;
  lagConnections: number;
  pollMs: number;
  abLines: number;
  catchupRequests: number;
  gapRequests: number;
  sync: "full" | "normal" | "off";
  /** --catch-up-bytes given to both paired nodes, or null for their default. */
  catchUpBytes: string | null;
  quietWaitMs: number;
  deadlineMs: number;
  /** Each node on its own half of the CPUs (see cpuHalves), or null for no pinning. */
  cpuHalves: [string, string] | null;
  keep: boolean;
  repoRoot: string;
}

const SECRET = "pair-bench-secret";
/** Frame-log retention for the gap phase, and how long to wait past it before the restart. */
const GAP_RETENTION = "1s";
const GAP_WAIT_MS = 2_500;
const CATCHUP_TIMEOUT_MS = 300_000;
const SYNC_TIMEOUT_MS = 180_000;
const CATCHUP_POLL_MS = 10;
const WATCHDOG_GRACE_MS = 30_000;
const TARGETS = { lagP99Ms: 100, catchUpOverIngest: 3, downOverUp: 0.9 } as const;

function resolveConfig(argv: string[]): Config | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        lines: { type: "string" },
        "single-runs": { type: "string" },
        hosts: { type: "string" },
        series: { type: "string" },
        batch: { type: "string" },
        connections: { type: "string" },
        "rate-fraction": { type: "string" },
        "lag-seconds": { type: "string" },
        "extra-fractions": { type: "string" },
        "extra-lag-seconds": { type: "string" },
        "drain-seconds": { type: "string" },
        "sync-timeout-s": { type: "string" },
        "lag-connections": { type: "string" },
        "poll-ms": { type: "string" },
        "ab-lines": { type: "string" },
        "catchup-requests": { type: "string" },
        "gap-requests": { type: "string" },
        sync: { type: "string" },
        "catch-up-bytes": { type: "string" },
        "quiet-wait-s": { type: "string" },
        "deadline-min": { type: "string" },
        "split-cpus": { type: "boolean" },
        keep: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new BenchError("usage", `cannot parse arguments: ${(err as Error).message}\n\n${USAGE}`, { cause: err });
  }
  const v = parsed.values;
  if (v.help === true) return "help";
  const int = (name: string, raw: string | undefined, dflt: number, min = 1): number => {
    if (raw === undefined) return dflt;
    const n = Number(raw.replaceAll("_", ""));
    if (!Number.isSafeInteger(n) || n < min) throw new BenchError("usage", `--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  if (v.hosts !== undefined && v.series !== undefined && v.hosts !== v.series) {
    throw new BenchError("usage", "--series is an alias of --hosts; they disagree");
  }
  const frac = (name: string, raw: string): number => {
    const f = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(f) || f <= 0 || f > 2) throw new BenchError("usage", `--${name} takes numbers in (0, 2], got ${JSON.stringify(raw)}`);
    return f;
  };
  const fraction = v["rate-fraction"] === undefined ? 0.5 : frac("rate-fraction", v["rate-fraction"]);
  const extraRaw = v["extra-fractions"] ?? "0.2";
  const extraFractions = extraRaw === "none" || extraRaw === "" ? [] : extraRaw.split(",").map((x) => frac("extra-fractions", x));
  if (extraFractions.length > 10) throw new BenchError("usage", "--extra-fractions takes at most 10 values");
  const sync = v.sync ?? "full";
  if (sync !== "full" && sync !== "normal" && sync !== "off") throw new BenchError("usage", `--sync must be full, normal or off, got ${JSON.stringify(sync)}`);
  const lines = int("lines", v.lines, 300_000);
  return {
    lines,
    singleRuns: int("single-runs", v["single-runs"], 3),
    hosts: int("hosts", v.hosts ?? v.series, DEFAULT_HOSTS),
    batch: int("batch", v.batch, DEFAULT_BATCH),
    connections: int("connections", v.connections, 8),
    rateFraction: fraction,
    lagSeconds: int("lag-seconds", v["lag-seconds"], 30),
    extraFractions,
    extraLagSeconds: int("extra-lag-seconds", v["extra-lag-seconds"], 15),
    drainMs: int("drain-seconds", v["drain-seconds"], 60) * 1000,
    syncTimeoutMs: int("sync-timeout-s", v["sync-timeout-s"], 600) * 1000,
    lagConnections: int("lag-connections", v["lag-connections"], 4),
    pollMs: int("poll-ms", v["poll-ms"], 5),
    abLines: int("ab-lines", v["ab-lines"], lines),
    catchupRequests: int("catchup-requests", v["catchup-requests"], 100),
    gapRequests: int("gap-requests", v["gap-requests"], 100),
    sync,
    catchUpBytes: v["catch-up-bytes"] ?? null,
    quietWaitMs: int("quiet-wait-s", v["quiet-wait-s"], 60, 0) * 1000,
    deadlineMs: int("deadline-min", v["deadline-min"], 40) * 60_000,
    cpuHalves: v["split-cpus"] === true ? cpuHalves() : null,
    keep: v.keep ?? false,
    repoRoot: resolve(import.meta.dirname, ".."),
  };
}

/** The CPUs this process may use, split in two halves as taskset lists ("0", "1" on two cores). */
function cpuHalves(): [string, string] {
  const allowed = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  if (allowed === undefined) throw new BenchError("usage", "--split-cpus needs Linux (/proc/self/status lists the allowed CPUs)");
  const cpus = allowed.split(",").flatMap((part) => {
    const [lo, hi] = part.split("-").map(Number) as [number, number | undefined];
    return Array.from({ length: (hi ?? lo) - lo + 1 }, (_, i) => lo + i);
  });
  if (cpus.length < 2) throw new BenchError("usage", `--split-cpus needs at least 2 CPUs, this process may use ${allowed}`);
  const half = Math.floor(cpus.length / 2);
  return [cpus.slice(0, half).join(","), cpus.slice(half).join(",")];
}

// ---------------------------------------------------------------------------------------
// Nodes

class Node {
  server: Server | null = null;
  private starts = 0;
  constructor(
    readonly id: string,
    readonly port: number,
    readonly dataDir: string,
    /** The twin's port; null for an unpaired node. */
    readonly twinPort: number | null,
    private readonly cfg: Config,
    private readonly logDir: string,
    /** The CPUs the process is pinned to (taskset -c), or null. */
    readonly cpus: string | null = null,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    if (this.server === null || this.server.exitedYet() !== null) throw new BenchError("exited-early", `node ${this.id} is not running`);
    return this.server.pid;
  }

  args(extra: string[]): string[] {
    const peer = this.twinPort === null ? [] : ["--peer", `127.0.0.1:${this.twinPort}`, "--peer-secret", SECRET];
    if (this.twinPort !== null && this.cfg.catchUpBytes !== null) peer.push("--catch-up-bytes", this.cfg.catchUpBytes);
    return ["src/main.ts", "serve", "--listen", `127.0.0.1:${this.port}`, "--data", this.dataDir, "--node-id", this.id, "--sync", this.cfg.sync, ...peer, ...extra];
  }

  /** Spawns the process without waiting for it to listen. */
  spawn(extra: string[] = []): Server {
    if (this.server !== null && this.server.exitedYet() === null) throw new BenchError("spawn-failed", `node ${this.id} is already running`);
    const args = this.args(extra);
    this.starts++;
    progress(`${this.id}: starting (${this.starts === 1 ? "first start" : `restart ${this.starts - 1}`})${extra.length > 0 ? ` with ${extra.join(" ")}` : ""}`);
    // taskset execs the server: its pid is the server's.
    const [cmd, cmdArgs] = this.cpus === null ? [process.execPath, args] : ["taskset", ["-c", this.cpus, process.execPath, ...args]];
    this.server = spawnServer(this.id, cmd, cmdArgs, this.cfg.repoRoot, join(this.logDir, `${this.id}.log`), this.url);
    return this.server;
  }

  async start(deadline: Deadline, extra: string[] = []): Promise<number> {
    const s = this.spawn(extra);
    const ready = await waitReady(s, deadline);
    return round((ready - s.spawnedAt) / 1000, 3);
  }

  async stop(deadline: Deadline): Promise<{ exit: string; stopSeconds: number }> {
    if (this.server === null) return { exit: "not running", stopSeconds: 0 };
    const r = await stopServer(this.server, deadline);
    progress(`${this.id}: stopped (exit ${r.exit}, ${r.stopSeconds} s)`);
    return r;
  }

  commandLine(extra: string[] = []): string {
    const pin = this.cpus === null ? [] : ["taskset", "-c", this.cpus];
    return [...pin, process.execPath, ...this.args(extra)].join(" ").replaceAll(SECRET, "<secret>");
  }
}

// ---------------------------------------------------------------------------------------
// Phase 1: single-node maximum

interface SingleResult {
  linesPerSec: number;
  fieldValuesPerSec: number;
  [k: string]: unknown;
}

/** One load of --lines into a fresh unpaired node. */
async function singleRun(cfg: Config, slabs: Slabs, tmp: string, k: number, deadline: Deadline): Promise<Record<string, unknown> & { linesPerSec: number; fieldValuesPerSec: number }> {
  const prepared = slabs.prepare(`single-${k}`, cfg.lines, deadline);
  const node = new Node(`solo${k}`, await freePort(), join(tmp, `solo${k}`), null, cfg, tmp, cfg.cpuHalves?.[0] ?? null);
  await node.start(deadline);
  try {
    const quiet = await waitQuiet([node.pid], cfg.quietWaitMs, deadline);
    progress(`single node #${k}: posting ${prepared.bodies.length} bodies (${prepared.totalLines} lines) with ${cfg.connections} connections`);
    const meter = new CpuMeter({ solo: node.pid });
    const load = await postAll(`${node.url}/write?db=${DB}&precision=ns`, prepared, cfg.connections, deadline, `single #${k}`);
    const cpu = meter.finish();
    progress(`single node #${k}: ${Math.round(load.linesPerSec)} lines/s`);
    return {
      linesPerSec: round(load.linesPerSec),
      fieldValuesPerSec: round(load.fieldValuesPerSec),
      requests: load.requests,
      lines: load.lines,
      fieldValues: load.values,
      elapsedSeconds: round(load.elapsedSeconds, 3),
      cpu,
      quietBefore: quiet,
    };
  } finally {
    await node.stop(deadline).catch(() => {});
  }
}

/**
 * The single-node maximum: the best of --single-runs loads, each into a fresh node. Other
 * processes on a shared machine only ever slow a run down, so the best run is the closest
 * to what the node can do; every run is reported.
 */
async function singleNode(cfg: Config, slabs: Slabs, tmp: string, deadline: Deadline): Promise<SingleResult> {
  const runs: Array<Record<string, unknown> & { linesPerSec: number; fieldValuesPerSec: number }> = [];
  for (let k = 1; k <= cfg.singleRuns; k++) runs.push(await singleRun(cfg, slabs, tmp, k, deadline));
  const best = runs.reduce((x, y) => (y.linesPerSec > x.linesPerSec ? y : x));
  return {
    command: new Node("solo", 0, join(tmp, "solo<k>"), null, cfg, tmp, cfg.cpuHalves?.[0] ?? null).commandLine().replace("127.0.0.1:0", "127.0.0.1:<port>"),
    linesPerSec: best.linesPerSec,
    fieldValuesPerSec: best.fieldValuesPerSec,
    chosen: `best of ${runs.length} (run ${runs.indexOf(best) + 1})`,
    connections: cfg.connections,
    cpu: best.cpu,
    quietBefore: best.quietBefore,
    runs,
  };
}

// ---------------------------------------------------------------------------------------
// Phase 2: replication lag under paced dual ingest

interface Lsns {
  source: string;
  of: (r: RequestRecord) => number | null;
  counts: Record<string, number>;
}

/** Each request's LSN: header, else exact from the frame log, else the upper bound seen after its 204. */
async function resolveLsns(origin: Node, twin: Node, load: PacedResult, prepared: Prepared, before: number, after: number, poller: StatusPoller, deadline: Deadline): Promise<Lsns> {
  const counts: Record<string, number> = { header: 0, frameLog: 0, upperBound: 0, unresolved: 0 };
  const byIndex = new Map<number, number>();
  let frameLogError: string | null = null;
  let fromLog: Map<string, number> | null = null;
  if (load.records.some((r) => r.headerLsn === null)) {
    try {
      fromLog = await lsnsByFirstLine(origin.url, SECRET, twin.id, before, after, deadline);
    } catch (err) {
      frameLogError = String(err);
      progress(`${origin.id}: could not read LSNs back from the frame log (${frameLogError}); using upper bounds`);
    }
  }
  for (const r of load.records) {
    if (r.headerLsn !== null) {
      byIndex.set(r.index, r.headerLsn);
      counts.header = (counts.header ?? 0) + 1;
      continue;
    }
    const exact = fromLog?.get(prepared.firstLines[r.index] ?? "");
    if (exact !== undefined) {
      byIndex.set(r.index, exact);
      counts.frameLog = (counts.frameLog ?? 0) + 1;
      continue;
    }
    // The first status answer sent after the 204 shows a latest LSN >= this request's.
    const k = poller.firstIndex((s) => s.tSend >= r.acked);
    const s = k < 0 ? undefined : poller.samples[k];
    if (s !== undefined) {
      byIndex.set(r.index, s.myLatest);
      counts.upperBound = (counts.upperBound ?? 0) + 1;
    } else counts.unresolved = (counts.unresolved ?? 0) + 1;
  }
  const used = Object.entries(counts).filter(([k, n]) => n > 0 && k !== "unresolved").map(([k]) => k);
  const source =
    (used.length === 1 ? used[0] : used.join("+")) +
    (frameLogError !== null ? ` (frame log unreadable: ${frameLogError})` : "");
  return { source: source ?? "none", of: (r) => byIndex.get(r.index) ?? null, counts };
}

interface DirectionLag {
  /** Censored requests count with the lag they had when observation ended: then these are lower bounds. */
  lagMs: Distribution;
  censored: number;
  bounds: { lowerMs: Distribution; upperMs: Distribution };
  unobserved: number;
  /** Requests whose twin apply was seen before their 204 arrived (lag counted as negative). */
  appliedBeforeAck: number;
  lsnSource: string;
  lsnCounts: Record<string, number>;
  values: number[];
}

function directionLag(load: PacedResult, lsns: Lsns, origin: StatusPoller, twin: StatusPoller): DirectionLag {
  const lag: number[] = [];
  const lower: number[] = [];
  const upper: number[] = [];
  let unobserved = 0;
  let early = 0;
  for (const r of load.records) {
    const L = lsns.of(r);
    if (L === null) continue;
    const k = twin.firstIndex((s) => (s.iApplied ?? -1) >= L);
    const seen = k < 0 ? undefined : twin.samples[k];
    if (seen === undefined) {
      unobserved++;
      const end = twin.last();
      if (end !== undefined) lag.push(end.tRecv - r.acked);
      continue;
    }
    const notYet = k > 0 ? twin.samples[k - 1] : undefined;
    const l = seen.tRecv - r.acked;
    if (l < 0) early++;
    lag.push(l);
    // Commit on the origin: after the request left, after the last origin answer without it
    // (its handling started after tSend); before the 204, before the first answer with it.
    const j = origin.firstIndex((s) => s.myLatest >= L);
    const oSeen = j < 0 ? undefined : origin.samples[j];
    const oNotYet = j > 0 ? origin.samples[j - 1] : undefined;
    const commitLo = Math.max(r.sent, oNotYet?.tSend ?? r.sent);
    const commitHi = Math.min(r.acked, oSeen?.tRecv ?? r.acked);
    const applyLo = Math.max(commitLo, notYet?.tSend ?? commitLo);
    upper.push(seen.tRecv - commitLo);
    lower.push(Math.max(0, applyLo - commitHi));
  }
  return {
    lagMs: distribution(lag),
    censored: unobserved,
    bounds: { lowerMs: distribution(lower), upperMs: distribution(upper) },
    unobserved,
    appliedBeforeAck: early,
    lsnSource: lsns.source,
    lsnCounts: lsns.counts,
    values: lag,
  };
}

function describeLoad(load: PacedResult, targetLinesPerSec: number): Record<string, unknown> {
  return {
    requests: load.requests,
    lines: load.lines,
    fieldValues: load.values,
    elapsedSeconds: round(load.elapsedSeconds, 3),
    linesPerSec: round(load.linesPerSec),
    fieldValuesPerSec: round(load.fieldValuesPerSec),
    targetLinesPerSec: round(targetLinesPerSec),
    achievedOverTarget: round(load.linesPerSec / targetLinesPerSec, 3),
    requestsPerSecScheduled: round(load.ratePerSec, 3),
    writeLatencyMs: load.writeLatencyMs,
    startSlipMs: load.startSlipMs,
    clientCpuSeconds: round(load.clientCpuSeconds, 3),
  };
}

async function lagPhase(
  cfg: Config,
  a: Node,
  b: Node,
  slabs: Slabs,
  single: SingleResult,
  fraction: number,
  seconds: number,
  deadline: Deadline,
): Promise<{ result: Record<string, unknown>; lines: number; p99: number | null }> {
  const tag = `lag @${fraction}`;
  const targetLinesPerSec = single.linesPerSec * fraction;
  const ratePerSec = targetLinesPerSec / cfg.batch;
  const requests = Math.max(1, Math.ceil(ratePerSec * seconds));
  progress(`${tag}: generating ${requests} bodies per node (${round(ratePerSec, 2)} requests/s per node for ${seconds} s)`);
  const [pa, pb] = slabs.preparePair(`lag-${fraction}`, requests * cfg.batch, "b", deadline);
  await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  const quiet = await waitQuiet([a.pid, b.pid], cfg.quietWaitMs, deadline);
  const [sa, sb] = await Promise.all([peerStatus(a.url), peerStatus(b.url)]);
  const maxSamples = Math.ceil(((seconds * 3 + cfg.drainMs / 1000 + 30) * 1000) / cfg.pollMs);
  const pollA = new StatusPoller(a.url, cfg.pollMs, maxSamples, deadline).start();
  const pollB = new StatusPoller(b.url, cfg.pollMs, maxSamples, deadline).start();
  let loads: [PacedResult, PacedResult];
  let cpu: CpuReport;
  let endA: number;
  let endB: number;
  let backlog: { aFramesNotYetOnB: number; bFramesNotYetOnA: number };
  let drainSeconds: number;
  let drained = false;
  let metrics0: Array<Awaited<ReturnType<typeof scrapeMetrics>>> = [null, null];
  let metrics1: Array<Awaited<ReturnType<typeof scrapeMetrics>>> = [null, null];
  try {
    await sleep(200);
    progress(`${tag}: both nodes ingest ${round(targetLinesPerSec)} lines/s for ${seconds} s; polling /peer/status every ${cfg.pollMs} ms`);
    metrics0 = await Promise.all([scrapeMetrics(a.url), scrapeMetrics(b.url)]);
    const meter = new CpuMeter({ a: a.pid, b: b.pid });
    const startAt = performance.now() + 20;
    loads = await Promise.all([
      pacedLoad(`${a.url}/write?db=${DB}&precision=ns`, pa, { ratePerSec, maxInFlight: cfg.lagConnections, startAt, offsetMs: 0, deadline, label: `${tag} a` }),
      pacedLoad(`${b.url}/write?db=${DB}&precision=ns`, pb, { ratePerSec, maxInFlight: cfg.lagConnections, startAt, offsetMs: 500 / ratePerSec, deadline, label: `${tag} b` }),
    ]);
    cpu = meter.finish();
    const tEnd = performance.now();
    const [ea, eb] = await Promise.all([peerStatus(a.url), peerStatus(b.url)]);
    endA = ea.my_latest_lsn;
    endB = eb.my_latest_lsn;
    backlog = { aFramesNotYetOnB: endA - (eb.i_applied_twin_lsn ?? 0), bFramesNotYetOnA: endB - (ea.i_applied_twin_lsn ?? 0) };
    progress(`${tag}: load done; backlog ${backlog.aFramesNotYetOnB} frames a->b, ${backlog.bFramesNotYetOnA} b->a; waiting for the twins to apply them`);
    // Observed for at most --drain-seconds; what is not applied by then is censored.
    const until = Date.now() + deadline.cap(cfg.drainMs);
    for (let i = 0; Date.now() < until && i < 1_000_000; i++) {
      const x = pollA.last();
      const y = pollB.last();
      if (x !== undefined && y !== undefined && (y.iApplied ?? -1) >= endA && (x.iApplied ?? -1) >= endB) {
        drained = true;
        break;
      }
      await sleep(Math.max(20, cfg.pollMs));
    }
    drainSeconds = (performance.now() - tEnd) / 1000;
    metrics1 = await Promise.all([scrapeMetrics(a.url), scrapeMetrics(b.url)]);
    await sleep(Math.max(50, cfg.pollMs * 4));
  } finally {
    await Promise.all([pollA.stop(), pollB.stop()]);
  }
  const [la, lb] = loads;
  progress(`${tag}: resolving the LSN of every request`);
  const lsnA = await resolveLsns(a, b, la, pa, sa.my_latest_lsn, endA, pollA, deadline);
  const lsnB = await resolveLsns(b, a, lb, pb, sb.my_latest_lsn, endB, pollB, deadline);
  const aToB = directionLag(la, lsnA, pollA, pollB);
  const bToA = directionLag(lb, lsnB, pollB, pollA);
  const both = distribution([...aToB.values, ...bToA.values]);
  const strip = ({ values: _v, ...rest }: DirectionLag) => rest;
  progress(`${tag}: a->b p50 ${aToB.lagMs.p50} ms p99 ${aToB.lagMs.p99} ms; b->a p50 ${bToA.lagMs.p50} ms p99 ${bToA.lagMs.p99} ms`);
  const p99s = [aToB.lagMs.p99, bToA.lagMs.p99].filter((x): x is number => x !== null);
  return {
    lines: la.lines + lb.lines,
    p99: p99s.length === 2 ? Math.max(...p99s) : null,
    result: {
      definition:
        "per request: first /peer/status answer of the twin whose i_applied_twin_lsn >= the request's LSN (received at) minus the 204 from the origin (received at); " +
        "a request not seen applied within the drain window counts with its lag at the end of the window (censored: the percentiles are then lower bounds); " +
        "bounds: the commit-to-commit interval allowed by the poll windows on both sides (lower clamped at 0)",
      rateFraction: fraction,
      durationSeconds: seconds,
      targetLinesPerSecPerNode: round(targetLinesPerSec),
      requestsPerSecPerNode: round(ratePerSec, 3),
      maxInFlightPerNode: cfg.lagConnections,
      pollIntervalMs: cfg.pollMs,
      lsnHeader: LSN_HEADER,
      achieved: { a: describeLoad(la, targetLinesPerSec), b: describeLoad(lb, targetLinesPerSec) },
      pairLinesPerSec: round((la.lines + lb.lines) / Math.max(la.elapsedSeconds, lb.elapsedSeconds)),
      aToB: strip(aToB),
      bToA: strip(bToA),
      bothDirectionsMs: both,
      backlogWhenLoadEnded: backlog,
      appliedWithinDrainWindow: drained,
      drainSeconds: drained ? round(drainSeconds, 3) : null,
      drainWindowSeconds: cfg.drainMs / 1000,
      writerSteps: {
        note: "from each node's /metrics over the load and drain: one commit = one writer transaction (own writes and applied frames); flush = hot buffers into chunks; both hold the event loop",
        a: writerSteps(metrics0[0] ?? null, metrics1[0] ?? null),
        b: writerSteps(metrics0[1] ?? null, metrics1[1] ?? null),
      },
      pollResolution: { a: pollA.resolution(), b: pollB.resolution() },
      cpu,
      quietBefore: quiet,
    },
  };
}

/**
 * After a lag run: waits (at most --sync-timeout-s) for the pair to be back in sync and
 * reports how fast each twin worked off its backlog once the ingest had stopped.
 */
async function drainToSync(cfg: Config, a: Node, b: Node, label: string, deadline: Deadline): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const [a0, b0] = await Promise.all([peerStatus(a.url), peerStatus(b.url)]);
  const until = Date.now() + deadline.cap(cfg.syncTimeoutMs);
  let last = [a0, b0];
  let reached = false;
  for (let i = 0; Date.now() < until && i < 100_000; i++) {
    try {
      last = await Promise.all([peerStatus(a.url), peerStatus(b.url)]);
    } catch {
      // a slow answer under load: try again
    }
    const [x, y] = last as [typeof a0, typeof b0];
    if (x.in_sync && y.in_sync && y.i_applied_twin_lsn === x.my_latest_lsn && x.i_applied_twin_lsn === y.my_latest_lsn) {
      reached = true;
      break;
    }
    if (i % 20 === 0) progress(`${label}: draining: b has a's ${y.i_applied_twin_lsn}/${x.my_latest_lsn}, a has b's ${x.i_applied_twin_lsn}/${y.my_latest_lsn}`);
    await sleep(500);
  }
  const seconds = (performance.now() - t0) / 1000;
  const [x, y] = last as [typeof a0, typeof b0];
  const dir = (applied0: number | null, applied1: number | null, target: number) => ({
    framesBehindAtStart: target - (applied0 ?? 0),
    framesApplied: (applied1 ?? 0) - (applied0 ?? 0),
    framesPerSec: round(((applied1 ?? 0) - (applied0 ?? 0)) / seconds, 2),
    stillBehind: target - (applied1 ?? 0),
  });
  progress(`${label}: ${reached ? "back in sync" : "NOT back in sync"} after ${seconds.toFixed(1)} s`);
  return {
    reached,
    seconds: round(seconds, 1),
    timeoutSeconds: cfg.syncTimeoutMs / 1000,
    note: "from the end of the drain window until both nodes report in_sync with nothing left either way; no ingest meanwhile",
    aToB: dir(b0.i_applied_twin_lsn, y.i_applied_twin_lsn, x.my_latest_lsn),
    bToA: dir(a0.i_applied_twin_lsn, x.i_applied_twin_lsn, y.my_latest_lsn),
  };
}

// ---------------------------------------------------------------------------------------
// Phases 3 and 4: twin up vs down, then catch-up

interface AbRun {
  condition: "up" | "down";
  linesPerSec: number;
  fieldValuesPerSec: number;
  elapsedSeconds: number;
  lines: number;
  fieldValues: number;
  aCpuSecondsPerMillionLines: number | null;
  cpu: CpuReport;
  quietBefore: unknown;
  replicationDuringLoad?: Record<string, unknown>;
}

async function abLoad(cfg: Config, a: Node, b: Node, cond: "up" | "down", n: number, slabs: Slabs, deadline: Deadline): Promise<AbRun> {
  const prepared = slabs.prepare(`${cond}${n}`, cfg.abLines, deadline);
  const pids: Record<string, number> = cond === "up" ? { a: a.pid, b: b.pid } : { a: a.pid };
  const quiet = await waitQuiet(Object.values(pids), cfg.quietWaitMs, deadline);
  progress(`twin ${cond} #${n}: a ingests ${prepared.totalLines} lines at full speed${cond === "up" ? " while b streams them" : " with b stopped"}`);
  const before = cond === "up" ? await Promise.all([peerStatus(a.url), peerStatus(b.url)]) : null;
  const meter = new CpuMeter(pids);
  const load: LoadResult = await postAll(`${a.url}/write?db=${DB}&precision=ns`, prepared, cfg.connections, deadline, `twin ${cond} #${n}`);
  const cpu = meter.finish();
  const tEnd = performance.now();
  const aCores = cpu.serverCoresBusy.a;
  progress(`twin ${cond} #${n}: ${Math.round(load.linesPerSec)} lines/s`);
  let twin: Record<string, unknown> | null = null;
  if (before !== null) {
    // How much of the load b applied while it ran, and how long it needed for the rest.
    const [a1, b1] = await Promise.all([peerStatus(a.url), peerStatus(b.url)]);
    const written = a1.my_latest_lsn - before[0]!.my_latest_lsn;
    const applied = (b1.i_applied_twin_lsn ?? 0) - (before[1]!.i_applied_twin_lsn ?? 0);
    await waitFor([b.url], ([y]) => (y!.i_applied_twin_lsn ?? -1) >= a1.my_latest_lsn, `twin up #${n}: waiting for b to apply the load`, cfg.syncTimeoutMs, deadline, 20);
    twin = {
      framesWritten: written,
      framesAppliedByBDuringLoad: applied,
      bCaughtUpSecondsAfterLoad: round((performance.now() - tEnd) / 1000, 2),
    };
  }
  return {
    condition: cond,
    linesPerSec: round(load.linesPerSec),
    fieldValuesPerSec: round(load.fieldValuesPerSec),
    elapsedSeconds: round(load.elapsedSeconds, 3),
    lines: load.lines,
    fieldValues: load.values,
    aCpuSecondsPerMillionLines: aCores === null || aCores === undefined ? null : round(((aCores * cpu.elapsedSeconds) / load.lines) * 1e6, 3),
    cpu,
    quietBefore: quiet,
    ...(twin === null ? {} : { replicationDuringLoad: twin }),
  };
}

interface CatchUpExpect {
  /** b's cursor on a when b stopped or paused. */
  fromLsn: number;
  /** a's latest LSN when b starts or resumes. */
  toLsn: number;
  lines: number;
  values: number;
}

async function peerPost(node: Node, action: "pause" | "resume"): Promise<void> {
  const res = await fetch(`${node.url}/peer/${action}`, { method: "POST", signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new BenchError("write-failed", `POST /peer/${action} on ${node.id} answered ${res.status}: ${text.slice(0, 300)}`);
}

/**
 * Times how long b takes to apply everything a wrote while b was away: `restart` spawns the
 * stopped b, `resume` resumes b's paused link (b keeps running). Rates are over the time from
 * b answering (restart) or the resume request (resume) to b's cursor reaching exp.toLsn.
 */
async function measureCatchUp(
  cfg: Config,
  a: Node,
  b: Node,
  exp: CatchUpExpect,
  single: SingleResult,
  pairedPerNode: number | null,
  label: string,
  mode: "restart" | "resume",
  deadline: Deadline,
): Promise<Record<string, unknown>> {
  const quiet = await waitQuiet(mode === "restart" ? [a.pid] : [a.pid, b.pid], cfg.quietWaitMs, deadline);
  const frames = exp.toLsn - exp.fromLsn;
  progress(`${label}: ${mode === "restart" ? "starting b" : "resuming b's link"}, ${frames} frames (${exp.lines} lines, ${exp.values} field values) behind`);
  const base = mode === "resume" ? await peerStatus(b.url) : null;
  const metricsB0 = mode === "resume" ? await scrapeMetrics(b.url) : null;
  const poller = new StatusPoller(b.url, CATCHUP_POLL_MS, Math.ceil((CATCHUP_TIMEOUT_MS + 60_000) / CATCHUP_POLL_MS), deadline);
  let t0: number;
  let server: Server;
  let meter: CpuMeter;
  if (mode === "restart") {
    server = b.spawn();
    t0 = server.spawnedAt;
    meter = new CpuMeter({ a: a.pid, b: server.pid });
    poller.start();
  } else {
    server = b.server as Server;
    meter = new CpuMeter({ a: a.pid, b: b.pid });
    poller.start();
    t0 = performance.now();
    await peerPost(b, "resume");
  }
  let cpu: CpuReport;
  let doneIdx = -1;
  try {
    const until = Date.now() + deadline.cap(CATCHUP_TIMEOUT_MS);
    for (let i = 0; Date.now() < until && i < 10_000_000; i++) {
      if (server.exitedYet() !== null) throw new BenchError("exited-early", `b exited (${server.exitedYet()}) while catching up; log tail: ${logTail(server.logPath)}`);
      const last = poller.last();
      if (last !== undefined && last.tSend >= t0 && (last.iApplied ?? -1) >= exp.toLsn) break;
      await sleep(CATCHUP_POLL_MS);
    }
    cpu = meter.finish();
    doneIdx = poller.firstIndex((x) => x.tSend >= t0 && (x.iApplied ?? -1) >= exp.toLsn);
    if (doneIdx < 0) {
      deadline.check(label);
      throw new BenchError("timeout", `${label}: b did not catch up within ${CATCHUP_TIMEOUT_MS / 1000} s (last: ${JSON.stringify(poller.last() ?? null)}, poll error: ${poller.lastError})`);
    }
    // in_sync also needs a's heartbeat confirming it has applied b's frames: wait a little for it.
    const syncUntil = Date.now() + deadline.cap(30_000);
    for (let i = 0; Date.now() < syncUntil && i < 100_000 && !(poller.last()?.inSync ?? false); i++) await sleep(CATCHUP_POLL_MS);
  } finally {
    await poller.stop();
  }
  const metricsB1 = await scrapeMetrics(b.url);
  const s = poller.samples;
  const syncIdx = s.findIndex((x, k) => k >= doneIdx && x.inSync);
  const firstIdx = s.findIndex((x) => x.tSend >= t0);
  const first = s[Math.max(0, firstIdx)] as StatusSample;
  const done = s[doneIdx] as StatusSample;
  const frames0 = base?.counters.frames_applied ?? 0;
  const backfill0 = base?.counters.backfill_values ?? 0;
  const progressIdx = s.findIndex((x) => x.tSend >= t0 && (x.framesApplied > frames0 || x.backfillValues > backfill0 || (x.iApplied ?? -1) > exp.fromLsn));
  const from = mode === "restart" ? first.tSend : t0;
  const seconds = (done.tRecv - from) / 1000;
  const applyFrom = progressIdx > 0 ? Math.max(from, (s[progressIdx - 1] as StatusSample).tSend) : from;
  const applySeconds = (done.tRecv - applyFrom) / 1000;
  const states: Array<{ state: string; atSeconds: number }> = [];
  for (const x of s) if (x.tSend >= t0 && states[states.length - 1]?.state !== x.state) states.push({ state: x.state, atSeconds: round((x.tRecv - t0) / 1000, 3) });
  const framesApplied = done.framesApplied - frames0;
  const backfillValues = done.backfillValues - backfill0;
  const path = backfillValues > 0 ? (framesApplied > 0 ? "backfill from storage, then frames" : "backfill from storage") : framesApplied > 0 ? "frames from the log" : "unknown";
  const valuesPerSec = exp.values / seconds;
  progress(`${label}: caught up in ${seconds.toFixed(2)} s via ${path}: ${Math.round(frames / seconds)} frames/s, ${Math.round(valuesPerSec)} field values/s`);
  return {
    how: mode === "restart" ? "b stopped with SIGTERM while a took writes, then started again" : "b's link paused (POST /peer/pause) while a took writes, then resumed (POST /peer/resume)",
    path,
    framesBehind: frames,
    linesBehind: exp.lines,
    fieldValuesBehind: exp.values,
    startupSeconds: mode === "restart" ? round((first.tRecv - t0) / 1000, 3) : null,
    catchUpSeconds: round(seconds, 3),
    catchUpMeasuredFrom:
      (mode === "restart" ? "first /peer/status answer from the restarted b (it is listening)" : "the POST /peer/resume") +
      " to the first answer with i_applied_twin_lsn >= a's my_latest_lsn",
    framesPerSec: round(frames / seconds, 1),
    linesPerSec: round(exp.lines / seconds),
    fieldValuesPerSec: round(valuesPerSec),
    ratioToSingleNodeIngest: round(valuesPerSec / single.fieldValuesPerSec, 3),
    ratioToPacedIngestPerNode: pairedPerNode === null ? null : round(exp.lines / seconds / pairedPerNode, 3),
    applyOnly: {
      note: "from the last answer before b showed progress to caught up (excludes start-up, connect, hello)",
      seconds: round(applySeconds, 3),
      framesPerSec: round(frames / applySeconds, 1),
      fieldValuesPerSec: round(exp.values / applySeconds),
    },
    inSyncAfterSeconds: syncIdx < 0 ? null : round(((s[syncIdx] as StatusSample).tRecv - t0) / 1000, 3),
    counters: { framesApplied, backfillValues, gapsRecordedByB: Math.max(0, ...s.map((x) => x.gapsSeen)) },
    states,
    writerStepsOnB: writerSteps(metricsB0, metricsB1),
    pollIntervalMs: CATCHUP_POLL_MS,
    pollResolution: poller.resolution(),
    cpu,
    quietBefore: quiet,
  };
}

const ratioOf = (r: Record<string, unknown>): number | null => (typeof r.ratioToSingleNodeIngest === "number" ? r.ratioToSingleNodeIngest : null);

/** ABBA twin-up / twin-down loads on a, with the restart catch-up of b in the middle. */
async function twinDownAndRestart(
  cfg: Config,
  a: Node,
  b: Node,
  slabs: Slabs,
  single: SingleResult,
  pairedPerNode: number | null,
  deadline: Deadline,
): Promise<{ ab: Record<string, unknown>; catchUp: Record<string, unknown>; lines: number; downOverUp: number }> {
  const runs: AbRun[] = [];
  await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  runs.push(await abLoad(cfg, a, b, "up", 1, slabs, deadline));
  const [sa] = await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  const fromLsn = sa!.my_latest_lsn;
  await b.stop(deadline);
  runs.push(await abLoad(cfg, a, b, "down", 1, slabs, deadline));
  runs.push(await abLoad(cfg, a, b, "down", 2, slabs, deadline));
  const extra = slabs.prepare("catchup-restart", cfg.catchupRequests * cfg.batch, deadline);
  progress(`catch-up after restart: a takes ${extra.bodies.length} more bodies while b is down`);
  const more = await postAll(`${a.url}/write?db=${DB}&precision=ns`, extra, cfg.connections, deadline, "catch-up writes");
  const toLsn = (await peerStatus(a.url)).my_latest_lsn;
  const downRuns = runs.filter((r) => r.condition === "down");
  const exp: CatchUpExpect = {
    fromLsn,
    toLsn,
    lines: downRuns.reduce((x, r) => x + r.lines, 0) + more.lines,
    values: downRuns.reduce((x, r) => x + r.fieldValues, 0) + more.values,
  };
  const catchUp = await measureCatchUp(cfg, a, b, exp, single, pairedPerNode, "catch-up after restart", "restart", deadline);
  catchUp.writtenWhileDown = "the two twin-down loads plus --catchup-requests bodies";
  await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  runs.push(await abLoad(cfg, a, b, "up", 2, slabs, deadline));
  await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const up = mean(runs.filter((r) => r.condition === "up").map((r) => r.linesPerSec));
  const down = mean(downRuns.map((r) => r.linesPerSec));
  const cpuPer = (c: "up" | "down") => {
    const xs = runs.filter((r) => r.condition === c).map((r) => r.aCpuSecondsPerMillionLines);
    return xs.every((x): x is number => x !== null) ? round(mean(xs), 3) : null;
  };
  return {
    ab: {
      order: "up #1, down #1, down #2, (b restarted: catch-up), up #2",
      linesPerLoad: cfg.abLines,
      connections: cfg.connections,
      upLinesPerSec: round(up),
      downLinesPerSec: round(down),
      downOverUp: round(down / up, 3),
      aCpuSecondsPerMillionLines: { up: cpuPer("up"), down: cpuPer("down") },
      replicationDuringUpLoads: runs.filter((r) => r.condition === "up").map((r) => r.replicationDuringLoad ?? null),
      note:
        cfg.cpuHalves === null
          ? "both nodes share this machine's cores: with the twin up, b's apply work competes with a for CPU (a separate box would not)"
          : "each node has its own CPUs (--split-cpus); the bench's own load and polling are not pinned",
      runs,
    },
    catchUp,
    lines: runs.reduce((x, r) => x + r.lines, 0) + more.lines,
    downOverUp: down / up,
  };
}

/** Catch-up over the frame log: b keeps running, its link is paused while a takes writes. */
async function pausedCatchUp(cfg: Config, a: Node, b: Node, slabs: Slabs, single: SingleResult, pairedPerNode: number | null, deadline: Deadline): Promise<{ result: Record<string, unknown>; lines: number }> {
  const [sa] = await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  const fromLsn = sa!.my_latest_lsn;
  const prepared = slabs.prepare("catchup-paused", cfg.catchupRequests * cfg.batch, deadline);
  await peerPost(b, "pause");
  progress(`catch-up over frames: b's link paused; a takes ${prepared.bodies.length} bodies`);
  const load = await postAll(`${a.url}/write?db=${DB}&precision=ns`, prepared, cfg.connections, deadline, "paused writes");
  const toLsn = (await peerStatus(a.url)).my_latest_lsn;
  const result = await measureCatchUp(cfg, a, b, { fromLsn, toLsn, lines: load.lines, values: load.values }, single, pairedPerNode, "catch-up over frames", "resume", deadline);
  await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  return { result, lines: load.lines };
}

// ---------------------------------------------------------------------------------------
// Phase 5: catch-up across a gap (frame log trimmed: backfill from storage)

/** What a's frame route answers a twin whose cursor is `after`: a gap, or a retained frame. */
async function probeFrames(a: Node, twinId: string, after: number): Promise<Record<string, unknown>> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  try {
    const res = await fetch(`${a.url}/peer/v1/frames?after=${after}`, {
      headers: { "X-Tsdb-Pair-Peer-Secret": SECRET, "X-Tsdb-Pair-Node": twinId },
      signal: abort.signal,
    });
    if (res.body === null) return { error: `status ${res.status}` };
    const reader = new MessageReader();
    const body = res.body.getReader();
    for (let i = 0; i < 10_000; i++) {
      const { done, value } = await body.read();
      if (done) return { ended: true };
      for (const m of reader.push(value)) {
        if (m.type === "gap") return { gap: m.gap };
        if (m.type === "frame") return { firstFrameRetained: true };
        if (m.type === "heartbeat") return { nothingAfter: after };
        if (m.type === "error") return { error: m.error };
      }
    }
    return { error: "no answer" };
  } catch (err) {
    return { error: String(err) };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

async function gapPhase(cfg: Config, a: Node, b: Node, slabs: Slabs, single: SingleResult, deadline: Deadline): Promise<{ result: Record<string, unknown>; lines: number; ratio: number | null }> {
  const [sa] = await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  const fromLsn = sa!.my_latest_lsn;
  const prepared = slabs.prepare("gap", cfg.gapRequests * cfg.batch, deadline);
  // b stays up with its cursor; only its link is paused, so on resume it asks a for the frames
  // after that cursor and meets the gap (a restarted b re-syncs from storage anyway).
  await peerPost(b, "pause");
  await a.stop(deadline);
  await a.start(deadline, ["--wal-retention", GAP_RETENTION]);
  progress(`gap: b's link paused; a (--wal-retention ${GAP_RETENTION}) takes ${prepared.bodies.length} bodies`);
  const load = await postAll(`${a.url}/write?db=${DB}&precision=ns`, prepared, cfg.connections, deadline, "gap writes");
  const toLsn = (await peerStatus(a.url)).my_latest_lsn;
  await sleep(GAP_WAIT_MS);
  progress("gap: restarting a so its shutdown flush trims the frame log");
  await a.stop(deadline);
  await a.start(deadline);
  const probe = await probeFrames(a, b.id, fromLsn);
  const r = await measureCatchUp(cfg, a, b, { fromLsn, toLsn, lines: load.lines, values: load.values }, single, null, "gap catch-up", "resume", deadline);
  const counters = r.counters as { backfillValues: number; gapsRecordedByB: number };
  const seconds = r.catchUpSeconds as number;
  const gapInLog = typeof probe.gap === "object" && probe.gap !== null;
  const backfillPerSec = counters.backfillValues / seconds;
  await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
  return {
    lines: load.lines,
    ratio: gapInLog && counters.backfillValues > 0 ? ratioOf(r) : null,
    result: {
      gapInAsFrameLog: gapInLog,
      frameLogProbe: probe,
      gapRecordedByB: counters.gapsRecordedByB > 0,
      walRetention: GAP_RETENTION,
      waitedPastRetentionMs: GAP_WAIT_MS,
      backfillValuesPerSec: round(backfillPerSec),
      ...r,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Main

function target(name: string, goal: string, value: number | boolean | null, pass: boolean | null, note?: string): Record<string, unknown> {
  return { name, target: goal, value, pass, ...(note === undefined ? {} : { note }) };
}

async function main(): Promise<number> {
  setProgressLabel("pair-bench");
  let cfg: Config;
  try {
    const r = resolveConfig(process.argv.slice(2));
    if (r === "help") {
      process.stdout.write(USAGE);
      return 0;
    }
    cfg = r;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const deadline = new Deadline(cfg.deadlineMs);
  const tmp = mkdtempSync(join(os.tmpdir(), "tsdb-pair-pairbench-"));
  installWatchdog({ deadlineMs: cfg.deadlineMs, graceMs: WATCHDOG_GRACE_MS, tmp, keep: cfg.keep });

  const { repoRoot: _r, ...shown } = cfg;
  const out: Record<string, unknown> = {
    benchmark: "pair",
    startedAt: new Date().toISOString(),
    command: ["bun", "bench/pair.ts", ...process.argv.slice(2)].join(" "),
    config: shown,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      memTotalBytes: os.totalmem(),
      kernel: os.release(),
      bun: process.versions.bun ?? null,
      loadAvgAtStart: os.loadavg().map((x) => round(x, 2)),
    },
  };
  const warnings: string[] = [];
  let exitCode = 0;
  const nodes: Node[] = [];
  try {
    const slabs = new Slabs(DEFAULT_START_SECONDS, cfg.hosts, cfg.batch, DEFAULT_SEED);
    out.workload = { generator: "bench/workload.ts", hosts: cfg.hosts, batch: cfg.batch, note: "each load writes its own time range (no point is written twice); in the lag runs a and b share a time range but b's hosts are renamed host=bhost-N, so each node writes its own series" };

    progress(`single node: ${cfg.singleRuns} x ${cfg.lines} lines`);
    const single = await singleNode(cfg, slabs, tmp, deadline);
    out.singleNode = single;

    const [pa, pb] = [await freePort(), await freePort()];
    const a = new Node("a", pa, join(tmp, "a"), pb, cfg, tmp, cfg.cpuHalves?.[0] ?? null);
    const b = new Node("b", pb, join(tmp, "b"), pa, cfg, tmp, cfg.cpuHalves?.[1] ?? null);
    nodes.push(a, b);
    mkdirSync(a.dataDir, { recursive: true });
    mkdirSync(b.dataDir, { recursive: true });
    await Promise.all([a.start(deadline), b.start(deadline)]);
    out.pair = { a: a.commandLine(), b: b.commandLine(), link: "direct (each node --peer the other's port; no proxy)" };
    // The database is created on a, replicated, then written on b: no concurrent create.
    let written = 0;
    const warm = slabs.prepare("warm-up", 2 * cfg.batch, deadline);
    for (const [node, i] of [[a, 0], [b, 1]] as const) {
      const res = await fetch(`${node.url}/write?db=${DB}&precision=ns`, { method: "POST", body: warm.bodies[i], signal: AbortSignal.timeout(60_000) });
      if (res.status !== 204) throw new BenchError("write-failed", `warm-up write to ${node.id} answered ${res.status}: ${await res.text()}`);
      written += warm.lines[i] ?? 0;
      await waitInSync(a.url, b.url, SYNC_TIMEOUT_MS, deadline);
    }

    const pacedPerNode = single.linesPerSec * cfg.rateFraction;
    const ab = await twinDownAndRestart(cfg, a, b, slabs, single, pacedPerNode, deadline);
    out.twinUpVsDown = ab.ab;
    out.catchUpAfterRestart = ab.catchUp;
    written += ab.lines;

    const paused = await pausedCatchUp(cfg, a, b, slabs, single, pacedPerNode, deadline);
    out.catchUpOverFrames = paused.result;
    written += paused.lines;

    const gap = await gapPhase(cfg, a, b, slabs, single, deadline);
    out.catchUpAcrossGap = gap.result;
    written += gap.lines;

    // Lag last: a saturated pair can take long to drain, and must not spoil the phases above.
    // Lower fractions first, so each run starts from a pair in sync.
    const extraLags: Array<Record<string, unknown>> = [];
    out.lagAtOtherRates = extraLags;
    let inSync = true;
    for (const f of [...cfg.extraFractions].sort((x, y) => x - y)) {
      const x = await lagPhase(cfg, a, b, slabs, single, f, cfg.extraLagSeconds, deadline);
      written += x.lines;
      x.result.drainToSync = await drainToSync(cfg, a, b, `lag @${f}`, deadline);
      extraLags.push(x.result);
      if ((x.result.drainToSync as { reached: boolean }).reached !== true) {
        inSync = false;
        break;
      }
    }
    if (!inSync) throw new BenchError("timeout", `the pair did not get back in sync within --sync-timeout-s ${cfg.syncTimeoutMs / 1000} after a lag run`);
    const lag = await lagPhase(cfg, a, b, slabs, single, cfg.rateFraction, cfg.lagSeconds, deadline);
    out.lag = lag.result;
    written += lag.lines;
    lag.result.drainToSync = await drainToSync(cfg, a, b, `lag @${cfg.rateFraction}`, deadline);

    progress("convergence: waiting for sync, then comparing both exports byte for byte");
    await waitInSync(a.url, b.url, cfg.syncTimeoutMs, deadline);
    const cmp = await compareExports(a.url, b.url, deadline);
    const linesOk = cmp.lines.a === written && cmp.lines.b === written;
    out.convergence = { ...cmp, expectedLines: written, linesMatchWritten: linesOk };
    progress(`convergence: exports ${cmp.identical ? "identical" : "DIFFER"} (${cmp.bytes.a} bytes, ${cmp.lines.a} lines; ${written} written) in ${cmp.seconds} s`);

    const lagOk = lag.p99 === null ? null : lag.p99 < TARGETS.lagP99Ms;
    const restartRatio = ratioOf(ab.catchUp);
    const framesRatio = ratioOf(paused.result);
    const catchUpGoal = `>= ${TARGETS.catchUpOverIngest}x the single-node ingest rate (field values/s)`;
    out.targets = [
      target("replicationLagP99Ms", `< ${TARGETS.lagP99Ms} ms in both directions at ${cfg.rateFraction} of the single-node maximum per node`, lag.p99, lagOk),
      target("catchUpAfterRestartOverSingleNodeIngest", `${catchUpGoal}; b stopped, then started (${String(ab.catchUp.path)})`, restartRatio, restartRatio === null ? null : restartRatio >= TARGETS.catchUpOverIngest),
      target("catchUpOverFramesOverSingleNodeIngest", `${catchUpGoal}; b's link paused, then resumed (${String(paused.result.path)})`, framesRatio, framesRatio === null ? null : framesRatio >= TARGETS.catchUpOverIngest),
      target(
        "catchUpAcrossGapOverSingleNodeIngest",
        `${catchUpGoal}; frame log trimmed past retention (${String(gap.result.path)})`,
        gap.ratio,
        gap.ratio === null ? null : gap.ratio >= TARGETS.catchUpOverIngest,
      ),
      target("twinDownOverUp", `ingest on a with b down >= ${TARGETS.downOverUp} x ingest with b up`, round(ab.downOverUp, 3), ab.downOverUp >= TARGETS.downOverUp),
      target("exportsByteIdentical", "both exports byte-identical and holding every point written", cmp.identical && linesOk, cmp.identical && linesOk),
    ];

    // Things a reader should know before trusting the figures.
    type PhaseInfo = { cpu?: CpuReport; quietBefore?: { quiet?: boolean; otherCores?: number | null; serverCores?: number[] } } | undefined;
    const phases: Array<[string, PhaseInfo]> = [
      ["single node", single as PhaseInfo],
      [`lag @${cfg.rateFraction}`, out.lag as PhaseInfo],
      ...extraLags.map((x): [string, PhaseInfo] => [`lag @${String(x.rateFraction)}`, x as PhaseInfo]),
      ...(ab.ab.runs as AbRun[]).map((r, i): [string, PhaseInfo] => [`twin-${r.condition} run ${i + 1}`, r as PhaseInfo]),
      ["catch-up after restart", out.catchUpAfterRestart as PhaseInfo],
      ["catch-up over frames", out.catchUpOverFrames as PhaseInfo],
      ["catch-up across gap", out.catchUpAcrossGap as PhaseInfo],
    ];
    for (const [name, p] of phases) {
      const c = p?.cpu;
      if (c?.contended === true) warnings.push(`${name}: other processes used ${c.otherCoresBusy} cores (load average ${c.loadAvg1.start}->${c.loadAvg1.end}); figures understated`);
      const q = p?.quietBefore;
      if (q !== undefined && q.quiet === false) {
        warnings.push(`${name}: started on a busy machine (other processes ${q.otherCores} cores, servers ${JSON.stringify(q.serverCores)} cores) after --quiet-wait-s`);
      }
    }
    for (const x of [lag.result, ...extraLags]) {
      for (const side of ["a", "b"] as const) {
        const got = (x.achieved as Record<string, { achievedOverTarget: number }>)[side]!;
        if (got.achievedOverTarget < 0.95) warnings.push(`lag @${String(x.rateFraction)}: node ${side} reached only ${got.achievedOverTarget} of its target ingest rate (the pair could not keep up)`);
      }
      for (const [dir, d] of [["a->b", x.aToB], ["b->a", x.bToA]] as const) {
        const dl = d as DirectionLag;
        if (dl.lsnSource !== "header" && dl.lsnSource !== "frameLog") warnings.push(`lag @${String(x.rateFraction)} ${dir}: LSNs from ${dl.lsnSource}, not exact`);
        if (dl.unobserved > 0) warnings.push(`lag @${String(x.rateFraction)} ${dir}: ${dl.unobserved} requests never seen applied on the twin`);
      }
    }
    if (ab.catchUp.path !== "frames from the log") warnings.push(`catch-up after restart went through "${String(ab.catchUp.path)}", not the frame log`);
    if (gap.result.gapInAsFrameLog !== true) warnings.push("catch-up across gap: a still had the frames; it did not exercise the backfill");
    else if (gap.result.gapRecordedByB !== true) warnings.push("catch-up across gap: a's log had a gap but b recorded none in its status");
    if (!cmp.identical) warnings.push("the two exports differ: the pair did not converge");
    if (!linesOk) warnings.push(`exports hold ${cmp.lines.a}/${cmp.lines.b} lines, ${written} were written`);
    if ((out.targets as Array<{ pass: boolean | null }>).some((t) => t.pass !== true)) exitCode = 1;

    for (const n of nodes) await n.stop(deadline).catch(() => {});
  } catch (err) {
    const e = err as Error & { code?: string };
    progress(`FAILED: ${e.message}`);
    out.error = { code: e.code ?? "internal", message: e.message };
    out.logTails = Object.fromEntries(nodes.map((n) => [n.id, logTail(join(tmp, `${n.id}.log`))]));
    exitCode = 2;
  } finally {
    killAll();
    if (cfg.keep) out.keptDir = tmp;
    else rmSync(tmp, { recursive: true, force: true });
  }
  out.warnings = warnings;
  out.machine = { ...(out.machine as object), loadAvgAtEnd: os.loadavg().map((x) => round(x, 2)) };
  out.finishedAt = new Date().toISOString();
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
  return exitCode;
}

process.exitCode = await main();
