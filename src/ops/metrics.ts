/**
 * Metrics for `GET /metrics`: a small registry of counters, gauges and histograms with labels,
 * rendered in the Prometheus text exposition format 0.0.4 (what Prometheus, Telegraf's
 * `inputs.prometheus` and VictoriaMetrics scrape), plus the metrics tsdb-pair itself defines.
 *
 * Format reference: https://prometheus.io/docs/instrumenting/exposition_formats/ (text format
 * 0.0.4): one `# HELP` and one `# TYPE` line per family, then its samples; label values escape
 * `\`, `"` and newline; histograms expose cumulative `_bucket{le="…"}` samples ending in
 * `le="+Inf"`, then `_sum` and `_count`; every line ends in `\n`.
 *
 * Values that live elsewhere (store size, process memory) are not pushed on every change: a
 * collector registered with `onCollect` copies them into gauges when a scrape renders.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { setInterval, clearInterval } from "node:timers";
import { TsdbError } from "../errors.ts";

/** The Content-Type a `/metrics` response must carry. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels<L extends string> = { readonly [K in L]: string };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface MetricOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, ascending; `+Inf` is added. */
  readonly buckets?: readonly number[];
}

/** Prometheus client libraries' default buckets, in seconds. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets for short storage steps (commit, flush): 0.5 ms to 10 s. */
export const STEP_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

type MetricType = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** The family's sample lines (without a trailing newline). */
  samples(): string[];
}

abstract class Metric<L extends string, C> implements Family {
  abstract readonly type: MetricType;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Children by their rendered label set (`a="x",b="y"`), which is also the sort key. */
  protected readonly children = new Map<string, C>();

  constructor(opts: MetricOptions<L>, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(opts.name)) throw new TsdbError("internal", `invalid metric name ${JSON.stringify(opts.name)}`);
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames ?? [];
    for (const l of this.labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || reserved.includes(l)) {
        throw new TsdbError("internal", `invalid label name ${JSON.stringify(l)} for metric ${opts.name}`);
      }
    }
  }

  protected abstract create(): C;

  protected child(labels: Labels<L> | undefined): C {
    const key = this.key(labels);
    let c = this.children.get(key);
    if (c === undefined) {
      c = this.create();
      this.children.set(key, c);
    }
    return c;
  }

  private key(labels: Labels<L> | undefined): string {
    const given = labels === undefined ? [] : Object.keys(labels);
    if (given.length !== this.labelNames.length || this.labelNames.some((l) => labels?.[l] === undefined)) {
      throw new TsdbError(
        "internal",
        `metric ${this.name} takes labels {${this.labelNames.join(",")}}, got {${given.join(",")}}`,
      );
    }
    return this.labelNames.map((l) => `${l}="${escapeLabelValue(String(labels![l]))}"`).join(",");
  }

  /** Makes the given label sets appear (at zero) before anything happens, so `rate()` sees them from the start. */
  init(...labelSets: Labels<L>[]): this {
    for (const l of labelSets) this.child(l);
    if (labelSets.length === 0 && this.labelNames.length === 0) this.child(undefined);
    return this;
  }

  /** Forgets every child (a peer that was removed, or a test). */
  reset(): void {
    this.children.clear();
  }

  protected sorted(): Array<[string, C]> {
    return [...this.children].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  abstract samples(): string[];
}

function splitArgs<L extends string>(a?: Labels<L> | number, b?: number): [Labels<L> | undefined, number | undefined] {
  return typeof a === "number" ? [undefined, a] : [a, b];
}

/** A value that only goes up (requests, bytes); rendered with its `_total` name as given. */
export class Counter<L extends string = never> extends Metric<L, { v: number }> {
  readonly type = "counter";
  protected create() {
    return { v: 0 };
  }
  /** Adds `by` (default 1, must be >= 0): `inc()`, `inc(5)`, `inc({endpoint: "v1"})`, `inc({endpoint: "v1"}, 5)`. */
  inc(labels?: Labels<L> | number, by?: number): void {
    const [l, n] = splitArgs(labels, by);
    const amount = n ?? 1;
    if (!(amount >= 0)) throw new TsdbError("internal", `counter ${this.name} cannot go down (inc by ${amount})`);
    this.child(l).v += amount;
  }
  /** Copies a total kept elsewhere (CPU seconds, a store's own counter) at scrape time, like client_golang's CounterFunc. */
  setTotal(labels: Labels<L> | number, total?: number): void {
    if (typeof labels === "number") this.child(undefined).v = labels;
    else this.child(labels).v = total ?? 0;
  }
  /** The current value (tests, status). */
  get(labels?: Labels<L>): number {
    return this.children.get(this.labelKey(labels))?.v ?? 0;
  }
  private labelKey(labels?: Labels<L>): string {
    return this.labelNames.map((l) => `${l}="${escapeLabelValue(String(labels?.[l]))}"`).join(",");
  }
  samples(): string[] {
    if (this.children.size === 0 && this.labelNames.length === 0) return [sample(this.name, "", 0)];
    return this.sorted().map(([k, c]) => sample(this.name, k, c.v));
  }
}

/** A value that goes up and down (series, bytes on disk, peer connected 0/1). */
export class Gauge<L extends string = never> extends Metric<L, { v: number }> {
  readonly type = "gauge";
  protected create() {
    return { v: 0 };
  }
  set(labels: Labels<L> | number, value?: number): void {
    if (typeof labels === "number") this.child(undefined).v = labels;
    else this.child(labels).v = value ?? 0;
  }
  inc(labels?: Labels<L> | number, by?: number): void {
    const [l, n] = splitArgs(labels, by);
    this.child(l).v += n ?? 1;
  }
  dec(labels?: Labels<L> | number, by?: number): void {
    const [l, n] = splitArgs(labels, by);
    this.child(l).v -= n ?? 1;
  }
  get(labels?: Labels<L>): number {
    return this.children.get(this.labelNames.map((l) => `${l}="${escapeLabelValue(String(labels?.[l]))}"`).join(","))?.v ?? 0;
  }
  samples(): string[] {
    if (this.children.size === 0 && this.labelNames.length === 0) return [sample(this.name, "", 0)];
    return this.sorted().map(([k, c]) => sample(this.name, k, c.v));
  }
}

interface HistogramChild {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A distribution (durations): cumulative buckets, sum and count. */
export class Histogram<L extends string = never> extends Metric<L, HistogramChild> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(opts: HistogramOptions<L>) {
    super(opts, ["le"]);
    const b = [...(opts.buckets ?? DEFAULT_BUCKETS)].filter((x) => x !== Number.POSITIVE_INFINITY);
    for (let i = 1; i < b.length; i++) {
      if (!(b[i]! > b[i - 1]!)) throw new TsdbError("internal", `histogram ${opts.name}: buckets must be strictly ascending`);
    }
    this.buckets = b;
  }
  protected create(): HistogramChild {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(labels: Labels<L> | number, value?: number): void {
    const [l, v] = typeof labels === "number" ? [undefined, labels] : [labels, value ?? 0];
    const c = this.child(l);
    // Per-bucket counts; samples() makes them cumulative.
    const i = this.buckets.findIndex((b) => v <= b);
    if (i >= 0) c.counts[i]!++;
    c.sum += v;
    c.count++;
  }
  /** Starts a timer; calling the result observes the elapsed seconds and returns them. */
  startTimer(labels?: Labels<L>): () => number {
    const t0 = performance.now();
    return () => {
      const s = (performance.now() - t0) / 1000;
      if (labels === undefined) this.observe(s);
      else this.observe(labels, s);
      return s;
    };
  }
  samples(): string[] {
    const out: string[] = [];
    const entries = this.children.size === 0 && this.labelNames.length === 0 ? [["", this.create()] as [string, HistogramChild]] : this.sorted();
    for (const [k, c] of entries) {
      const sep = k === "" ? "" : ",";
      let cum = 0;
      this.buckets.forEach((b, i) => {
        cum += c.counts[i]!;
        out.push(sample(`${this.name}_bucket`, `${k}${sep}le="${formatValue(b)}"`, cum));
      });
      out.push(sample(`${this.name}_bucket`, `${k}${sep}le="+Inf"`, c.count));
      out.push(sample(`${this.name}_sum`, k, c.sum));
      out.push(sample(`${this.name}_count`, k, c.count));
    }
    return out;
  }
}

/** A set of metric families rendered together; collectors run before each render. */
export class Registry {
  private readonly families = new Map<string, Family>();
  private readonly collectors = new Set<() => void>();

  register<F extends Family>(family: F): F {
    if (this.families.has(family.name)) throw new TsdbError("internal", `metric ${family.name} is registered twice`);
    this.families.set(family.name, family);
    return family;
  }
  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L> {
    return this.register(new Counter<L>(opts));
  }
  gauge<L extends string = never>(opts: MetricOptions<L>): Gauge<L> {
    return this.register(new Gauge<L>(opts));
  }
  histogram<L extends string = never>(opts: HistogramOptions<L>): Histogram<L> {
    return this.register(new Histogram<L>(opts));
  }

  /** Runs `fn` before every render (to copy values kept elsewhere into gauges); returns an unsubscribe. */
  onCollect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  /** The whole registry in the text exposition format 0.0.4. */
  render(): string {
    for (const c of this.collectors) {
      try {
        c();
      } catch {
        // One failing source (a file gone, a store closing) must not take /metrics down.
      }
    }
    let out = "";
    for (const f of this.families.values()) {
      out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
      for (const s of f.samples()) out += s + "\n";
    }
    return out;
  }
}

function sample(name: string, labels: string, value: number): string {
  return labels === "" ? `${name} ${formatValue(value)}` : `${name}{${labels}} ${formatValue(value)}`;
}

/** Label values escape backslash, double quote and line feed (exposition format 0.0.4). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escapes only backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Go's ParseFloat reads all of these: integers as written, `+Inf`, `-Inf`, `NaN`. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// tsdb-pair's own metrics

export type IngestEndpoint = "v1" | "v2";
/** Why lines of an otherwise accepted request were dropped. */
export type LineRejectReason = "parse" | "type_conflict";

/** Everything tsdb-pair exports, as named metrics the store, HTTP and peer code update. */
export function createMetrics(r: Registry) {
  const endpoints: Array<Labels<"endpoint">> = [{ endpoint: "v1" }, { endpoint: "v2" }];
  return {
    registry: r,
    buildInfo: r.gauge<"version" | "runtime">({
      name: "tsdb_pair_build_info",
      help: "Always 1; the labels tell the version and runtime of this node.",
      labelNames: ["version", "runtime"],
    }),
    // ---- ingest ----
    ingestRequests: r
      .counter<"endpoint">({ name: "tsdb_pair_ingest_requests_total", help: "Write requests received, by endpoint (v1 /write, v2 /api/v2/write).", labelNames: ["endpoint"] })
      .init(...endpoints),
    ingestBytes: r
      .counter<"endpoint">({ name: "tsdb_pair_ingest_bytes_total", help: "Bytes of write request bodies read (after gzip decoding).", labelNames: ["endpoint"] })
      .init(...endpoints),
    ingestLines: r
      .counter<"endpoint">({ name: "tsdb_pair_ingest_lines_total", help: "Non-blank line-protocol lines received.", labelNames: ["endpoint"] })
      .init(...endpoints),
    ingestPoints: r
      .counter<"endpoint">({ name: "tsdb_pair_ingest_points_total", help: "Points (lines) stored.", labelNames: ["endpoint"] })
      .init(...endpoints),
    ingestValues: r
      .counter<"endpoint">({ name: "tsdb_pair_ingest_values_total", help: "Field values stored.", labelNames: ["endpoint"] })
      .init(...endpoints),
    ingestRejectedLines: r
      .counter<"reason">({ name: "tsdb_pair_ingest_rejected_lines_total", help: "Lines dropped from accepted requests, by reason (parse, type_conflict).", labelNames: ["reason"] })
      .init({ reason: "parse" }, { reason: "type_conflict" }),
    ingestRejectedRequests: r
      .counter<"reason">({
        name: "tsdb_pair_ingest_rejected_requests_total",
        help: "Write requests refused whole, by error code (bad_request, unauthorized, not_found, too_large, unavailable, internal).",
        labelNames: ["reason"],
      })
      .init(...["bad_request", "unauthorized", "not_found", "too_large", "unavailable", "internal"].map((reason) => ({ reason }))),
    // ---- store ----
    storeDatabases: r.gauge({ name: "tsdb_pair_store_databases", help: "Databases in the store." }),
    storeSeries: r.gauge({ name: "tsdb_pair_store_series", help: "Series in the store." }),
    storeChunks: r.gauge({ name: "tsdb_pair_store_chunks", help: "Compressed chunks in the store." }),
    storeDiskBytes: r.gauge<"file">({
      name: "tsdb_pair_store_disk_bytes",
      help: "Bytes on disk of the store's files (db: main file, wal: write-ahead log).",
      labelNames: ["file"],
    }),
    storeHotValues: r.gauge({ name: "tsdb_pair_store_hot_values", help: "Values in the in-memory hot buffers, not yet in chunks." }),
    storeHotBytes: r.gauge({ name: "tsdb_pair_store_hot_bytes", help: "Bytes of the slab regions the hot buffers hold." }),
    storeHotCapBytes: r.gauge({
      name: "tsdb_pair_store_hot_cap_bytes",
      help: "Bytes the hot buffers may hold before the oldest are flushed early (--hot-memory, by default grown per series with buffered values).",
    }),
    storeLastLsn: r.gauge({ name: "tsdb_pair_store_last_lsn", help: "Log sequence number of this node's newest frame." }),
    storeChunksWritten: r.counter({ name: "tsdb_pair_store_chunks_written_total", help: "Chunks written by flushes since start." }),
    storeChunksCut: r.counter({
      name: "tsdb_pair_store_chunks_cut_total",
      help: "Chunk rows cut in two since start so the first part fills a leaf page's gap.",
    }),
    storeFramesCompressed: r.counter({
      name: "tsdb_pair_store_frames_compressed_total",
      help: "Frames (own and the twin's) stored since start with their lines compressed.",
    }),
    storeCheckpointedPages: r.counter({
      name: "tsdb_pair_store_checkpointed_pages_total",
      help: "Write-ahead log pages copied into the store file by the checkpoint thread since start (the writer's own checkpoints not counted).",
    }),
    storeCompactionPending: r.gauge({
      name: "tsdb_pair_store_compaction_pending",
      help: "Series and fields whose chunks wait for compaction (it runs while the writer is idle).",
    }),
    storeCommitDuration: r.histogram({
      name: "tsdb_pair_store_commit_duration_seconds",
      help: "Time to commit one group of writes (one transaction, one fsync).",
      buckets: STEP_BUCKETS,
    }),
    storeFlushDuration: r.histogram({
      name: "tsdb_pair_store_flush_duration_seconds",
      help: "Time of one flush step (hot buffers into chunks).",
      buckets: STEP_BUCKETS,
    }),
    storeCompactionDuration: r.histogram({
      name: "tsdb_pair_store_compaction_duration_seconds",
      help: "Time of one compaction step (merging overlapping chunks).",
      buckets: STEP_BUCKETS,
    }),
    backupDuration: r.histogram({
      name: "tsdb_pair_backup_duration_seconds",
      help: "Time to take an online backup snapshot.",
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800],
    }),
    backupLongestStep: r.gauge({
      name: "tsdb_pair_backup_longest_step_seconds",
      help: "Longest time the last backup held the event loop (and so the writer) in one step.",
    }),
    // ---- queries ----
    queries: r
      .counter<"endpoint">({ name: "tsdb_pair_queries_total", help: "Queries run, by endpoint (query, export).", labelNames: ["endpoint"] })
      .init({ endpoint: "query" }, { endpoint: "export" }),
    queryDuration: r.histogram<"endpoint">({
      name: "tsdb_pair_query_duration_seconds",
      help: "Query duration, from request to the last byte produced.",
      labelNames: ["endpoint"],
    }),
    queryErrors: r.counter<"reason">({ name: "tsdb_pair_query_errors_total", help: "Queries that failed, by error code.", labelNames: ["reason"] }),
    // ---- peer link (label peer = the twin's node id, or its configured address until known) ----
    peerConnected: r.gauge<"peer">({ name: "tsdb_pair_peer_connected", help: "1 while the link to the twin is up, else 0.", labelNames: ["peer"] }),
    peerAddressUp: r.gauge<"peer" | "address">({
      name: "tsdb_pair_peer_address_up",
      help: "1 when the twin answered on this address (one per network ring) at the last try, else 0.",
      labelNames: ["peer", "address"],
    }),
    peerLagFrames: r.gauge<"peer">({ name: "tsdb_pair_peer_lag_frames", help: "The twin's frames not yet applied here.", labelNames: ["peer"] }),
    peerLagBytes: r.gauge<"peer">({ name: "tsdb_pair_peer_lag_bytes", help: "Bytes of the twin's frames not yet applied here.", labelNames: ["peer"] }),
    peerLagSeconds: r.gauge<"peer">({ name: "tsdb_pair_peer_lag_seconds", help: "Age of the oldest of the twin's frames not yet applied here.", labelNames: ["peer"] }),
    peerAppliedLsn: r.gauge<"peer">({ name: "tsdb_pair_peer_applied_lsn", help: "Newest LSN of the twin applied here (the stored resume offset).", labelNames: ["peer"] }),
    peerRemoteLsn: r.gauge<"peer">({ name: "tsdb_pair_peer_remote_lsn", help: "The twin's newest LSN, from its last heartbeat.", labelNames: ["peer"] }),
    peerLastContact: r.gauge<"peer">({
      name: "tsdb_pair_peer_last_contact_timestamp_seconds",
      help: "Unix time of the last frame or heartbeat from the twin.",
      labelNames: ["peer"],
    }),
    peerClockOffset: r.gauge<"peer">({
      name: "tsdb_pair_peer_clock_offset_seconds",
      help: "The twin's clock minus ours, measured from heartbeats.",
      labelNames: ["peer"],
    }),
    peerGapsOpen: r.gauge<"peer">({ name: "tsdb_pair_peer_gaps_open", help: "Ranges of the twin's frames missed and not yet re-sent.", labelNames: ["peer"] }),
    peerGaps: r.counter<"peer">({ name: "tsdb_pair_peer_gaps_total", help: "Gaps detected (asked for frames the twin no longer retained).", labelNames: ["peer"] }),
    peerConflicts: r.counter<"peer">({
      name: "tsdb_pair_peer_conflicts_total",
      help: "Values written on both boxes for the same series, field and time (resolved by version).",
      labelNames: ["peer"],
    }),
    peerFramesReceived: r.counter<"peer">({ name: "tsdb_pair_peer_frames_received_total", help: "Frames received from the twin and applied.", labelNames: ["peer"] }),
    peerFramesSent: r.counter<"peer">({ name: "tsdb_pair_peer_frames_sent_total", help: "Frames sent to the twin.", labelNames: ["peer"] }),
    peerBytesReceived: r.counter<"peer">({ name: "tsdb_pair_peer_bytes_received_total", help: "Bytes received on the peer link.", labelNames: ["peer"] }),
    peerBytesSent: r.counter<"peer">({ name: "tsdb_pair_peer_bytes_sent_total", help: "Bytes sent on the peer link.", labelNames: ["peer"] }),
    peerReconnects: r.counter<"peer">({ name: "tsdb_pair_peer_reconnects_total", help: "Times the link to the twin was re-established.", labelNames: ["peer"] }),
    peerErrors: r.counter<"peer" | "reason">({ name: "tsdb_pair_peer_errors_total", help: "Peer link errors, by reason.", labelNames: ["peer", "reason"] }),
    peerSeeds: r.counter<"peer">({
      name: "tsdb_pair_peer_seeds_total",
      help: "Full seeds run because the twin's incarnation changed (new disk, restored backup).",
      labelNames: ["peer"],
    }),
    // ---- process ----
    processResidentMemory: r.gauge({ name: "process_resident_memory_bytes", help: "Resident memory size in bytes." }),
    processHeapBytes: r.gauge({ name: "tsdb_pair_process_heap_bytes", help: "JavaScript heap in use, in bytes." }),
    processCpuSeconds: r.counter({ name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds." }),
    processStartTime: r.gauge({ name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds." }),
    processOpenFds: r.gauge({ name: "process_open_fds", help: "Number of open file descriptors." }),
    processMaxFds: r.gauge({ name: "process_max_fds", help: "Maximum number of open file descriptors (LimitNOFILE)." }),
    uptime: r.gauge({ name: "tsdb_pair_uptime_seconds", help: "Seconds since this process started." }),
    eventLoopLag: r.gauge({
      name: "tsdb_pair_event_loop_lag_seconds",
      help: "Longest event loop delay seen in the last 10 seconds (a stalled loop stalls writes).",
    }),
    eventLoopDelay: r.histogram({ name: "tsdb_pair_event_loop_delay_seconds", help: "Event loop delay samples.", buckets: STEP_BUCKETS }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The process-wide registry that `/metrics` renders. */
export const registry = new Registry();
/** The process-wide metrics: `metrics.ingestRequests.inc({ endpoint: "v1" })`. */
export const metrics: Metrics = createMetrics(registry);

/** `/metrics`'s body: the process-wide registry in the text exposition format 0.0.4. */
export function renderPrometheus(): string {
  return registry.render();
}

// ---------------------------------------------------------------------------------------------
// Helpers the HTTP layer calls, so each write or query is one line there.

export interface WriteRecord {
  /** Body bytes read (after gzip). */
  readonly bytes: number;
  /** Non-blank lines in the body. */
  readonly lines: number;
  /** Points stored. */
  readonly points: number;
  /** Field values stored. */
  readonly values?: number;
  readonly parseErrors: number;
  readonly typeConflicts: number;
}

/** Counts one write request that reached the store (fully or partly accepted). */
export function recordWrite(endpoint: IngestEndpoint, w: WriteRecord, m: Metrics = metrics): void {
  const l = { endpoint };
  m.ingestRequests.inc(l);
  m.ingestBytes.inc(l, w.bytes);
  m.ingestLines.inc(l, w.lines);
  m.ingestPoints.inc(l, w.points);
  if (w.values !== undefined) m.ingestValues.inc(l, w.values);
  if (w.parseErrors > 0) m.ingestRejectedLines.inc({ reason: "parse" }, w.parseErrors);
  if (w.typeConflicts > 0) m.ingestRejectedLines.inc({ reason: "type_conflict" }, w.typeConflicts);
}

/** Counts one write request refused whole; `reason` is the TsdbError code. */
export function recordRejectedWrite(endpoint: IngestEndpoint, reason: string, m: Metrics = metrics): void {
  m.ingestRequests.inc({ endpoint });
  m.ingestRejectedRequests.inc({ reason });
}

/** Starts timing a query; call the result with the error code when it failed, or nothing. */
export function startQuery(endpoint: string, m: Metrics = metrics): (errorCode?: string) => void {
  const done = m.queryDuration.startTimer({ endpoint });
  return (errorCode) => {
    m.queries.inc({ endpoint });
    done();
    if (errorCode !== undefined) m.queryErrors.inc({ reason: errorCode });
  };
}

// ---------------------------------------------------------------------------------------------
// Collectors

/** What the store collector reads; the store satisfies it (extra fields are used when present). */
export interface StoreMetricsSource {
  stats(): {
    readonly series: number;
    readonly hotValues: number;
    readonly lastLsn: number;
    readonly chunksWritten: number;
    /** Rows cut to fill leaf pages, when the store cuts them. */
    readonly chunksCut?: number;
    /** Frames stored with compressed lines, when the store compresses them. */
    readonly framesCompressed?: number;
    /** Log pages checkpointed off the writer's thread, when the store does that. */
    readonly checkpointedPages?: number;
    /** Chunks in the store, when the store counts them. */
    readonly chunks?: number;
    /** Bytes the hot buffers hold. */
    readonly hotBytes: number;
    /** What hotBytes may reach before early flushes, when the store caps it. */
    readonly hotCapBytes?: number;
    /** Series and fields waiting for compaction, when the store compacts. */
    readonly compactionPending?: number;
  };
  databases(): string[];
}


/**
 * Copies the store's numbers and its files' sizes into the store gauges at each scrape;
 * returns the unsubscribe to call when the store closes.
 */
export function bindStoreMetrics(store: StoreMetricsSource, dataDir: string, m: Metrics = metrics): () => void {
  return m.registry.onCollect(() => {
    const s = store.stats();
    m.storeDatabases.set(store.databases().length);
    m.storeSeries.set(s.series);
    m.storeHotValues.set(s.hotValues);
    m.storeHotBytes.set(s.hotBytes);
    if (s.hotCapBytes !== undefined) m.storeHotCapBytes.set(s.hotCapBytes);
    m.storeLastLsn.set(s.lastLsn);
    if (s.chunks !== undefined) m.storeChunks.set(s.chunks);
    if (s.compactionPending !== undefined) m.storeCompactionPending.set(s.compactionPending);
    m.storeChunksWritten.setTotal(s.chunksWritten);
    if (s.chunksCut !== undefined) m.storeChunksCut.setTotal(s.chunksCut);
    if (s.framesCompressed !== undefined) m.storeFramesCompressed.setTotal(s.framesCompressed);
    if (s.checkpointedPages !== undefined) m.storeCheckpointedPages.setTotal(s.checkpointedPages);
    m.storeDiskBytes.set({ file: "db" }, fileSize(join(dataDir, "tsdb.db")));
    m.storeDiskBytes.set({ file: "wal" }, fileSize(join(dataDir, "tsdb.db-wal")) + fileSize(join(dataDir, "tsdb.db-shm")));
  });
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** What the peer collector reads: the peer link's status (`GET /peer/status`), fields it lacks left alone. */
export interface PeerMetricsSource {
  status(): {
    readonly state: string;
    readonly twin: { readonly node_id: string | null; readonly addresses: ReadonlyArray<{ readonly url: string; readonly reachable: boolean | null }> };
    readonly i_applied_twin_lsn?: number | null;
    readonly twin_latest_lsn?: number | null;
    readonly lag?: { readonly frames: number | null; readonly seconds: number | null };
    readonly gaps?: ReadonlyArray<{ readonly repairedAt: number | null }>;
    readonly conflicts?: { readonly same_point: number; readonly type: number };
    readonly clock_offset_ms?: number | null;
    readonly last_contact_ms?: number | null;
    readonly counters?: { readonly frames_applied?: number; readonly frames_refused?: number; readonly reconnects?: number };
  };
}

/** Link states in which the twin is being talked to. */
const CONNECTED_STATES = new Set(["STREAMING", "BACKFILLING", "SEEDING"]);

/**
 * Copies the peer link's status into the peer metrics at each scrape (label `peer`: the twin's
 * node id once known, else its first address); returns the unsubscribe.
 */
export function bindPeerMetrics(link: PeerMetricsSource, m: Metrics = metrics): () => void {
  return m.registry.onCollect(() => {
    const s = link.status();
    const peer = { peer: s.twin.node_id ?? s.twin.addresses[0]?.url ?? "twin" };
    m.peerConnected.set(peer, CONNECTED_STATES.has(s.state) ? 1 : 0);
    for (const a of s.twin.addresses) {
      if (a.reachable !== null) m.peerAddressUp.set({ ...peer, address: a.url }, a.reachable ? 1 : 0);
    }
    const setIf = (g: Gauge<"peer">, v: number | null | undefined, scale = 1) => {
      if (v !== null && v !== undefined) g.set(peer, v * scale);
    };
    setIf(m.peerLagFrames, s.lag?.frames);
    setIf(m.peerLagSeconds, s.lag?.seconds);
    setIf(m.peerAppliedLsn, s.i_applied_twin_lsn);
    setIf(m.peerRemoteLsn, s.twin_latest_lsn);
    setIf(m.peerClockOffset, s.clock_offset_ms, 1 / 1000);
    setIf(m.peerLastContact, s.last_contact_ms, 1 / 1000);
    if (s.gaps !== undefined) {
      m.peerGapsOpen.set(peer, s.gaps.filter((g) => g.repairedAt === null).length);
      m.peerGaps.setTotal(peer, s.gaps.length);
    }
    if (s.conflicts !== undefined) m.peerConflicts.setTotal(peer, s.conflicts.same_point + s.conflicts.type);
    if (s.counters?.frames_applied !== undefined) m.peerFramesReceived.setTotal(peer, s.counters.frames_applied);
    if (s.counters?.reconnects !== undefined) m.peerReconnects.setTotal(peer, s.counters.reconnects);
    if (s.counters?.frames_refused !== undefined) m.peerErrors.setTotal({ ...peer, reason: "frame_refused" }, s.counters.frames_refused);
  });
}

/** Registers the process collector (memory, CPU, file descriptors, uptime) and build info. */
export function bindProcessMetrics(info: { version: string; runtime: string }, m: Metrics = metrics): () => void {
  m.buildInfo.reset();
  m.buildInfo.set({ version: info.version, runtime: info.runtime }, 1);
  const startMs = performance.timeOrigin;
  m.processStartTime.set(Math.round(startMs / 10) / 100);
  return m.registry.onCollect(() => {
    const mem = process.memoryUsage();
    m.processResidentMemory.set(mem.rss);
    m.processHeapBytes.set(mem.heapUsed);
    const cpu = process.cpuUsage();
    m.processCpuSeconds.setTotal((cpu.user + cpu.system) / 1e6);
    m.uptime.set(Math.max(0, Math.round((Date.now() - startMs) / 10) / 100));
    const fds = openFds();
    if (fds !== null) m.processOpenFds.set(fds);
    const max = maxFds();
    if (max !== null) m.processMaxFds.set(max);
  });
}

/** Open descriptors from /proc (Linux); null elsewhere. */
function openFds(): number | null {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return null;
  }
}

/** The soft open-files limit from /proc/self/limits (Linux); null elsewhere. */
function maxFds(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Measures event loop delay: a timer due every `intervalMs` records how late it fired. A
 * synchronous SQLite call that holds the loop (a big flush, a VACUUM) shows up here.
 */
export class EventLoopMonitor {
  private timer: ReturnType<typeof setInterval> | null = null;
  private expected = 0;
  /** Recent delays in seconds with their time, for the "max over the last window" gauge. */
  private recent: Array<[number, number]> = [];

  constructor(
    private readonly m: Metrics = metrics,
    private readonly intervalMs = 500,
    private readonly windowMs = 10_000,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.expected = performance.now() + this.intervalMs;
    this.timer = setInterval(() => this.step(performance.now()), this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Records one tick that fired at `nowMs` (performance.now()); exposed so tests can drive it. */
  step(nowMs: number): void {
    const delay = Math.max(0, nowMs - this.expected) / 1000;
    this.expected = nowMs + this.intervalMs;
    this.m.eventLoopDelay.observe(delay);
    this.recent.push([nowMs, delay]);
    while (this.recent.length > 0 && this.recent[0]![0] < nowMs - this.windowMs) this.recent.shift();
    let max = 0;
    for (const [, d] of this.recent) if (d > max) max = d;
    this.m.eventLoopLag.set(max);
  }
}
