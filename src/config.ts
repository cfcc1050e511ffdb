/**
 * The server's configuration, resolved once at start into a complete, validated object.
 * Only the CLI layer reads flags and environment; everything else receives a ServeConfig.
 */
import { TsdbError } from "./errors.ts";
import { DEFAULT_MAX_SELECT_POINTS, DEFAULT_MAX_SELECT_SERIES } from "./query/result.ts";

export type SyncMode = "full" | "normal" | "off";

export interface ServeConfig {
  readonly listenHost: string;
  readonly listenPort: number;
  readonly dataDir: string;
  readonly nodeId: string;
  readonly authToken: string | null;
  readonly sync: SyncMode;
  readonly maxBodyBytes: number;
  readonly autoCreate: boolean;
  /** Base URLs of the twin, one per network ring; empty when unpaired. */
  readonly peers: readonly string[];
  /** Shared secret of the pair; set whenever peers are. */
  readonly peerSecret: string | null;
  /**
   * PEM files of this node's certificate chain and key: the API and the peer link are served
   * over HTTPS on the same port. Both set or both null (plain HTTP).
   */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  /** PEM file of the CA that signed the twin's certificate, trusted besides the default roots. */
  readonly peerCa: string | null;
  /** Bytes of the twin's frames behind (plain writes) past which catching up reads its storage. */
  readonly catchUpBytes: number;
  /** Largest number of points one SELECT may read, and of series it may return. */
  readonly maxSelectPoints: number;
  readonly maxSelectSeries: number;
  /** logfmt (default) or json lines on stderr. */
  readonly logFormat: "logfmt" | "json";
  readonly engine: EngineConfig;
}

/** Storage-engine knobs; defaults are the named constants below. */
export interface EngineConfig {
  /** Values in one hot buffer that trigger a flush into a chunk. */
  readonly chunkPoints: number;
  /** Hot data older than this (ms since it arrived) is flushed. */
  readonly flushAgeMs: number;
  /**
   * Bytes of slab regions the hot buffers may hold (see store/hot.ts) before the oldest are
   * flushed early: this much, plus `hotMemoryPerSeriesBytes` for each series with buffered values.
   */
  readonly hotMemoryBytes: number;
  /** What the cap grows by per series with buffered values (0: `hotMemoryBytes` alone, as when --hot-memory is set). */
  readonly hotMemoryPerSeriesBytes: number;
  /** How long one flush step may hold the writer while buffers are over that cap (default 50 ms). */
  readonly overCapFlushStepMs?: number;
  /**
   * How long own frames are kept for the twin after they are flushed (0: not at all, when
   * unpaired). A twin that falls further behind is refilled from storage instead.
   */
  readonly frameRetentionMs: number;
  /** At most this many bytes of own frames are kept for the twin. */
  readonly frameRetentionBytes: number;
  /** How long databases keep data unless CREATE DATABASE ... WITH DURATION says (0: forever). */
  readonly retentionMs: number;
  /** Writes are refused (507) while the data directory's disk has less free space than this. */
  readonly minFreeDiskBytes: number;
  /** New series beyond this many in one database are refused (a flood of series cannot exhaust memory). */
  readonly maxSeriesPerDatabase: number;
}

export const DEFAULT_LISTEN = "0.0.0.0:8086";
export const DEFAULT_DATA_DIR = "./data";
export const DEFAULT_SYNC: SyncMode = "full";
/** InfluxDB 1.x's default `max-body-size` (25 MB). */
export const DEFAULT_MAX_BODY_BYTES = 25_000_000;
export const DEFAULT_CHUNK_POINTS = 1000;
export const DEFAULT_FLUSH_AGE_MS = 10 * 60_000;
/**
 * The hot buffers' memory cap, unless --hot-memory sets one: 16 MiB plus 256 bytes per series
 * with buffered values. A few thousand series fill chunks well from 16 MiB: in the ingest
 * benchmark (2,000 series) it wrote chunks about as fast as 64 MiB did, and peak RSS fell by
 * 90-110 MB. Many series need room per series instead: a buffer's smallest regions take 120
 * bytes with one field and 408 with the benchmark's ten, so with 100,000 hosts (200,000
 * series) 16 MiB flushed chunks of a value or two and ingest fell to a quarter; 256 bytes a
 * series gives them what 64 MiB did.
 */
export const DEFAULT_HOT_MEMORY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_HOT_MEMORY_PER_SERIES_BYTES = 256;

export const DEFAULT_WAL_RETENTION_MS = 7 * 24 * 3600_000;
export const DEFAULT_MIN_FREE_DISK_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_SERIES = 1_000_000;
export const DEFAULT_WAL_MAX_BYTES = 1024 ** 3;
/**
 * Past this many bytes of the twin's frames behind (all plain writes), catching up reads the
 * twin's storage instead of its frame log: a chunk costs about 2 bytes a value to send and
 * store, while a frame's lines are parsed and buffered again value by value. Bytes as the
 * frames are stored, large bodies compressed to about a fifth: 16 MiB of them is some 400k
 * lines of the bench's workload. Measured (b paused while a took writes): 100k lines behind
 * caught up in 0.5 s over frames against 0.9-1.0 s from storage; 500k lines behind in
 * 2.6-3.0 s over frames against 2.1-2.4 s from storage.
 */
export const DEFAULT_CATCH_UP_BYTES = 16 * 1024 ** 2;

/** Engine defaults for a node without a twin (frames are dropped once flushed). */
export const DEFAULT_ENGINE: EngineConfig = {
  chunkPoints: DEFAULT_CHUNK_POINTS,
  flushAgeMs: DEFAULT_FLUSH_AGE_MS,
  hotMemoryBytes: DEFAULT_HOT_MEMORY_BYTES,
  hotMemoryPerSeriesBytes: DEFAULT_HOT_MEMORY_PER_SERIES_BYTES,
  frameRetentionMs: 0,
  frameRetentionBytes: 0,
  retentionMs: 0,
  minFreeDiskBytes: DEFAULT_MIN_FREE_DISK_BYTES,
  maxSeriesPerDatabase: DEFAULT_MAX_SERIES,
};

/** What the CLI hands over: every value optional and still a string where it came from text. */
export interface ServeInput {
  listen?: string;
  data?: string;
  nodeId?: string;
  authToken?: string;
  sync?: string;
  maxBody?: string | number;
  autoCreate?: boolean;
  /** `host[:port]` or URLs, comma-separated or repeated. */
  peer?: string | readonly string[];
  peerSecret?: string;
  /** Paths of PEM files (read when the node starts, not here). */
  tlsCert?: string;
  tlsKey?: string;
  peerCa?: string;
  walRetention?: string;
  walMaxBytes?: string | number;
  catchUpBytes?: string | number;
  maxSelectPoints?: string | number;
  maxSelectSeries?: string | number;
  chunkPoints?: string | number;
  retention?: string;
  minFreeDisk?: string | number;
  maxSeries?: string | number;
  logFormat?: string;
  flushAge?: string;
  hotMemory?: string | number;
}

/** Turns loose input into a ServeConfig, filling defaults; throws TsdbError("config") naming the bad value. */
export function resolveServeConfig(input: ServeInput, defaults: { hostname: string }): ServeConfig {
  const { host, port } = parseListen(input.listen ?? DEFAULT_LISTEN);
  const nodeId = input.nodeId ?? defaults.hostname;
  validateNodeId(nodeId);
  const sync = input.sync ?? DEFAULT_SYNC;
  if (sync !== "full" && sync !== "normal" && sync !== "off") {
    throw new TsdbError("config", `invalid --sync ${JSON.stringify(sync)}: expected full, normal or off`);
  }
  const authToken = input.authToken === undefined || input.authToken === "" ? null : input.authToken;
  const logFormat = input.logFormat ?? "logfmt";
  if (logFormat !== "logfmt" && logFormat !== "json") {
    throw new TsdbError("config", `invalid --log-format ${JSON.stringify(logFormat)}: expected logfmt or json`);
  }
  const tlsCert = input.tlsCert === undefined || input.tlsCert === "" ? null : input.tlsCert;
  const tlsKey = input.tlsKey === undefined || input.tlsKey === "" ? null : input.tlsKey;
  if (tlsCert !== null && tlsKey === null) throw new TsdbError("config", "--tls-cert needs --tls-key: give both for HTTPS, or neither");
  if (tlsCert === null && tlsKey !== null) throw new TsdbError("config", "--tls-key needs --tls-cert: give both for HTTPS, or neither");
  // Both boxes are set up alike, so a twin given by bare host speaks what we speak.
  const peers = parsePeers(input.peer, port, tlsCert === null ? "http" : "https");
  const peerSecret = input.peerSecret === undefined || input.peerSecret === "" ? null : input.peerSecret;
  if (peers.length > 0 && peerSecret === null) {
    throw new TsdbError("config", "--peer needs a shared secret: set --peer-secret, --peer-secret-file or TSDB_PAIR_PEER_SECRET on both nodes");
  }
  const retentionMs = input.walRetention === undefined ? DEFAULT_WAL_RETENTION_MS : parseDuration(input.walRetention, "--wal-retention");
  const retentionBytes = input.walMaxBytes === undefined ? DEFAULT_WAL_MAX_BYTES : parseSize(input.walMaxBytes, "--wal-max-bytes");
  return {
    listenHost: host,
    listenPort: port,
    dataDir: input.data === undefined || input.data === "" ? DEFAULT_DATA_DIR : input.data,
    nodeId,
    authToken,
    sync,
    maxBodyBytes: input.maxBody === undefined ? DEFAULT_MAX_BODY_BYTES : parseSize(input.maxBody, "--max-body"),
    autoCreate: input.autoCreate ?? true,
    peers,
    peerSecret,
    tlsCert,
    tlsKey,
    peerCa: input.peerCa === undefined || input.peerCa === "" ? null : input.peerCa,
    catchUpBytes: input.catchUpBytes === undefined ? DEFAULT_CATCH_UP_BYTES : parseSize(input.catchUpBytes, "--catch-up-bytes"),
    maxSelectPoints: input.maxSelectPoints === undefined ? DEFAULT_MAX_SELECT_POINTS : parseCount(input.maxSelectPoints, "--max-select-points"),
    maxSelectSeries: input.maxSelectSeries === undefined ? DEFAULT_MAX_SELECT_SERIES : parseCount(input.maxSelectSeries, "--max-select-series"),
    engine: {
      chunkPoints: input.chunkPoints === undefined ? DEFAULT_CHUNK_POINTS : parseCount(input.chunkPoints, "--chunk-points"),
      flushAgeMs: input.flushAge === undefined ? DEFAULT_FLUSH_AGE_MS : parseDuration(input.flushAge, "--flush-age"),
      hotMemoryBytes: input.hotMemory === undefined ? DEFAULT_HOT_MEMORY_BYTES : parseSize(input.hotMemory, "--hot-memory"),
      hotMemoryPerSeriesBytes: input.hotMemory === undefined ? DEFAULT_HOT_MEMORY_PER_SERIES_BYTES : 0,
      // Frames are kept for the twin only when there is one.
      frameRetentionMs: peers.length === 0 ? 0 : retentionMs,
      frameRetentionBytes: peers.length === 0 ? 0 : retentionBytes,
      retentionMs: input.retention === undefined || input.retention === "0" || input.retention === "inf" ? 0 : parseDuration(input.retention, "--retention"),
      minFreeDiskBytes: input.minFreeDisk === undefined ? DEFAULT_MIN_FREE_DISK_BYTES : parseSizeOrZero(input.minFreeDisk, "--min-free-disk"),
      maxSeriesPerDatabase: input.maxSeries === undefined ? DEFAULT_MAX_SERIES : parseCount(input.maxSeries, "--max-series"),
    },
    logFormat,
  };
}

/** A positive whole number such as a query limit. */
export function parseCount(value: string | number, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new TsdbError("config", `invalid ${what} ${JSON.stringify(String(value))}: expected a positive whole number`);
  return n;
}

/**
 * Turns `--peer` values into base URLs; a bare host gets our own port and scheme (both boxes
 * listen alike: https when --tls-cert is set).
 */
export function parsePeers(value: string | readonly string[] | undefined, ownPort: number, scheme: "http" | "https" = "http"): string[] {
  if (value === undefined) return [];
  const items = (typeof value === "string" ? [value] : value).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  return items.map((item) => {
    const withScheme = /^https?:\/\//.test(item) ? item : `${scheme}://${item}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new TsdbError("config", `invalid --peer ${JSON.stringify(item)}: expected HOST[:PORT]`);
    }
    if (url.pathname !== "/" || url.search !== "" || url.hostname === "") {
      throw new TsdbError("config", `invalid --peer ${JSON.stringify(item)}: expected HOST[:PORT]`);
    }
    if (url.port === "") url.port = String(ownPort === 0 ? 8086 : ownPort);
    return url.origin;
  });
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration such as `7d`, `12h`, `90s`. */
export function parseDuration(value: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(value);
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new TsdbError("config", `invalid ${what} ${JSON.stringify(value)}: expected a duration such as 7d, 12h or 90m`);
  }
  return Math.round(ms);
}

/** Parses `HOST:PORT`, `:PORT` or `[v6]:PORT`. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new TsdbError("config", `invalid --listen ${JSON.stringify(value)}: expected HOST:PORT, e.g. 0.0.0.0:8086`);
  }
  const host = m[1] ?? (m[2] === "" ? "0.0.0.0" : m[2]!);
  return { host, port };
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** A byte size, where 0 (turning the check off) is allowed. */
function parseSizeOrZero(value: string | number, what: string): number {
  return String(value).trim() === "0" ? 0 : parseSize(value, what);
}

/** Parses a byte size such as `25000000`, `25MB`, `64KiB`. */
export function parseSize(value: string | number, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(value));
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new TsdbError("config", `invalid ${what} ${JSON.stringify(String(value))}: expected a positive size such as 25MB`);
  }
  return n;
}

/** Node ids appear in frames, logs and status: keep them short and printable. */
export function validateNodeId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(id)) {
    throw new TsdbError(
      "config",
      `invalid --node-id ${JSON.stringify(id)}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}
