/**
 * The store: the only thing that mutates the database file.
 *
 * Writes arrive as parsed batches. A single writer commits every batch queued since its last
 * turn in one SQLite transaction (group commit): catalogue rows for new series and fields and
 * one checksummed frame per batch. Only after the commit are the points added to the hot
 * buffers and the callers answered, so "acknowledged" means "in a committed frame".
 *
 * Hot buffers are flushed into compressed chunks by size, age and a global memory cap. The
 * flush checkpoint is the newest frame whose every value is in chunks; at open, frames after
 * it are replayed into the hot buffers. Replay is idempotent (values carry versions and reads
 * keep one value per timestamp), so a crash between flush and checkpoint costs nothing.
 */
import { randomUUID } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, statfsSync, unlinkSync, writeSync } from "node:fs";
import process from "node:process";
import { join } from "node:path";
import type { EngineConfig, SyncMode } from "../config.ts";
import { TsdbError } from "../errors.ts";
import { crc32 } from "node:zlib";
import { escapeFieldKey, formatFieldValue, splitSeriesKey } from "../lineprotocol/format.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import type { FieldType, FieldValue, ParseResult, PointBatch, Precision } from "../lineprotocol/types.ts";
import { silentLogger, type Logger } from "../log.ts";
import {
  decodeFrame,
  describeFrame,
  encodeFrame,
  isCompressed,
  writeText,
  type CompressedLines,
  type DeleteOp,
  type DropDatabaseOp,
  type DropMeasurementOp,
  type Frame,
  type SchemaOp,
} from "../wal/frame.ts";
import { HybridClock } from "../wal/hlc.ts";
import { formatPosition, type Lsn } from "../wal/position.ts";
import {
  Catalog,
  compareFieldVersions,
  type DbEntry,
  type FieldEntry,
  type FieldVersion,
  type MeasurementEntry,
  type SeriesEntry,
} from "./catalog.ts";
import { checkChunkHeaders, decodeChunk, encodeChunk, encodeRows, SharedColumns, type ChunkColumns, type ChunkRow } from "./chunk.ts";
import { Compactor } from "./compaction.ts";
import { INSERT_BATCH, PageFit, recordBytes, ROW_OVERHEAD } from "./pagefit.ts";
import { HotBuffer, MAX_COLUMNS, type RowCopies } from "./hot.ts";
import { compactOrigins, mergeRuns, newValues, sliceIndex, sliceRun, valueAt, versionOrder, type Run, type Values, type VersionOrder } from "./run.ts";
import { Checkpointer } from "./checkpointer.ts";
import { openDb, RightmostLeaf, SYNC_PRAGMA, type Sqlite } from "./sqlite.ts";
import { toNumbers } from "./words.ts";
import { TimeSlice } from "../runtime/slice.ts";

export const STORE_FILE = "tsdb.db";
/** Holds the pid of the process that has the data directory open. */
export const LOCK_FILE = "tsdb.lock";
/** Retention policies: only InfluxDB's default exists until retention lands. */
const KNOWN_RPS = new Set(["", "autogen"]);
/** How long one background flush step may hold the writer. */
const FLUSH_STEP_MS = 25;
/**
 * The same while hot buffers are over their memory cap: flushing then outranks ingest, but
 * steps stay short, since writes and the twin's frames wait behind each one. At 250 ms the
 * steps set the pair's replication lag (p99 ~250 ms at a tenth of the maximum rate, ~130-160
 * ms at 50), and with 100,000 hosts writes came in fewer, later turns (39k lines/s, 69k at 50).
 */
const FLUSH_STEP_OVER_CAP_MS = 50;
/** At most this many buffers are picked for one flush step (see pickFlush). */
const PICK_PER_STEP = 65_536;
/**
 * Past this multiple of the memory cap, writes wait while flushes catch up. Many small
 * buffers (a flood of series) flush slower than they fill, and without a limit buffered
 * values grow with the backlog (100,000 hosts: twice the cap and rising). A limit close to
 * the cap halved ingest there for little memory (the buffers' own objects dominate), so this
 * one is a guard against runaway growth, not a second cap.
 */
export const HOT_HARD_LIMIT = 4;
const MINUTE_NS = 60_000_000_000n;
/** How often free disk space is looked at. */
const DISK_CHECK_MS = 1000;
/** How long a long read on the main thread (digest, backfill scan) runs before the event loop gets a turn. */
export const READ_SLICE_MS = 20;
/** A scan that finds nothing yields a null (or "") this often, so its caller can give the event loop a turn. */
const SCAN_TICK = 256;
/** How often expired data is removed. */
const RETENTION_EVERY_MS = 60_000;
/** How long one compaction step may hold the writer (only when it is otherwise idle). */
const COMPACT_STEP_MS = 20;
/** Compaction waits until no write has been committed for this long. */
const COMPACT_AFTER_IDLE_MS = 1000;
/** How often the frame log is trimmed when frames are kept for a twin. */
const TRIM_EVERY_MS = 1000;
/** A row cut to fill a leaf aims this far under the gap, for the error of sizing by proportion. */
const CUT_AIM = 0.95;
/** How often buffers are checked for age. */
const AGE_SCAN_MS = 1000;

export interface StoreOptions {
  readonly dataDir: string;
  /** This node's id; null adopts the id stored in the directory (offline tools). */
  readonly nodeId: string | null;
  readonly sync: SyncMode;
  readonly engine: EngineConfig;
  readonly log?: Logger;
  /** Wall clock in ms (tests may pin it). */
  readonly nowMs?: () => number;
  /**
   * Checkpoint the write-ahead log on a thread of its own (see checkpointer.ts), not in the
   * writer's commits. For the server; tools and tests that open a store for a moment need not.
   */
  readonly checkpointThread?: boolean;
  /** Timings of the writer's steps, in seconds (metrics); the store itself keeps none. */
  readonly observe?: {
    readonly commit?: (seconds: number) => void;
    readonly flush?: (seconds: number) => void;
    readonly compaction?: (seconds: number) => void;
  };
}

export interface WriteRequest {
  readonly db: string;
  readonly rp: string;
  readonly precision: Precision;
  /** Server time (ns) given to lines without a timestamp; stored in the frame for replay. */
  readonly defaultTime: bigint;
  readonly batch: PointBatch;
  /**
   * The request body the batch was parsed from (its bytes, or compressed), when every line of
   * it parsed: stored as the frame's text if no point is refused, since replaying it yields
   * the same points.
   */
  readonly body?: Uint8Array | CompressedLines;
  /** Create the database if it does not exist (else: not_found). */
  readonly autoCreate: boolean;
}

/** A point refused by the store: a field type clash, or the database's series limit (`existing` = the limit). */
export interface TypeConflict {
  readonly kind?: "type" | "series_limit";
  readonly line: number;
  readonly measurement: string;
  readonly field: string;
  readonly type: string;
  readonly existing: string;
}

export interface WriteOutcome {
  readonly accepted: number;
  /** Points dropped because a field's type clashes with the stored type. */
  readonly conflicts: readonly TypeConflict[];
  /** LSN of the frame that holds the accepted points (none when nothing was accepted). */
  readonly lsn: Lsn | null;
}

/** A delete's reach: a database, optionally one measurement or one series, a time range, and its version. */
interface Tombstone {
  readonly measurement: string | null;
  readonly seriesKey: string | null;
  readonly start: bigint;
  readonly end: bigint;
  readonly hlc: bigint;
  readonly origin: number;
}

/** Who the twin is: its node id and the incarnation of its store. */
export interface TwinIdentity {
  readonly nodeId: string;
  readonly incarnation: string;
}

export interface TwinCursor {
  readonly incarnation: string;
  readonly lsn: Lsn;
  readonly hlc: number;
}

export interface GapRecord {
  readonly from: Lsn;
  readonly to: Lsn;
  readonly detectedAt: number;
  readonly repairedAt: number | null;
}

/** A tombstone as it travels in a backfill (versions as decimal strings, origin as node id). */
export interface TombstoneRecord {
  readonly db: string;
  readonly measurement: string | null;
  readonly seriesKey: string | null;
  readonly start: string;
  readonly end: string;
  readonly hlc: string;
  readonly origin: string;
}

/** One time bucket of one measurement in a digest. */
export interface BucketDigest {
  readonly measurement: string;
  readonly start: bigint;
  count: number;
  sum: number;
}

/** One series and field's values in chunk form, origins given as node ids (`nodes`). */
export interface BackfillRecord {
  readonly db: string;
  readonly measurement: string;
  readonly seriesKey: string;
  readonly field: string;
  readonly type: FieldType;
  readonly nodes: readonly string[];
  readonly chunk: ChunkColumns;
}

/** What a backfill covers: versions newer than `sinceHlc`, by `origin` (anyone when null), optionally one database and time range. */
export interface BackfillScope {
  readonly sinceHlc: number;
  readonly origin: string | null;
  readonly db?: string;
  readonly start?: bigint;
  readonly end?: bigint;
}

export interface ExportRange {
  readonly start?: bigint;
  readonly end?: bigint;
}

export interface StoreStats {
  readonly nodeId: string;
  readonly incarnation: string;
  readonly lastLsn: Lsn;
  readonly checkpointSeq: number;
  readonly series: number;
  readonly hotValues: number;
  /** Bytes of the slab regions the hot buffers hold (what the memory cap counts). */
  readonly hotBytes: number;
  /** What hotBytes may reach before the oldest buffers are flushed early. */
  readonly hotCapBytes: number;
  readonly chunksWritten: number;
  /** Chunk rows cut in two so a leaf page fills (see PageFit.fillLeaves). */
  readonly chunksCut: number;
  /** Frames (own and the twin's) stored since start with their lines compressed (see wal/frame.ts). */
  readonly framesCompressed: number;
  /** Pages of the log the checkpoint thread copied into the file since start (0 without one). */
  readonly checkpointedPages: number;
  /** Chunks in the store now. */
  readonly chunks: number;
  /** Chunks merged away by compaction since start. */
  readonly chunksCompacted: number;
  /** Series and fields whose chunks wait for compaction (it runs while the writer is idle). */
  readonly compactionPending: number;
}

/** Target of a DELETE or DROP SERIES: the series to clear and an optional inclusive time range. */
export interface DeleteTarget {
  readonly measurements: readonly string[] | null;
  readonly series: (s: SeriesEntry) => boolean;
  readonly start?: bigint;
  readonly end?: bigint;
}

type Pending =
  | { readonly kind: "write"; readonly req: WriteRequest; readonly resolve: (o: WriteOutcome) => void; readonly reject: (e: unknown) => void }
  | {
      readonly kind: "schema";
      /** Builds the op inside the writer's turn (so it sees the current catalogue); null when there is nothing to do. */
      readonly build: () => SchemaOp | null;
      readonly resolve: (o: WriteOutcome) => void;
      readonly reject: (e: unknown) => void;
    }
  | {
      readonly kind: "task";
      /** Part of a stream of writes (the twin's frames, a backfill): the writer is not idle. */
      readonly stream: boolean;
      /** Runs inside the writer's transaction; returns the frames it stored, to apply after the commit. */
      readonly run: () => { frames: CommittedFrame[]; result: unknown; retyped?: FieldEntry[] };
      readonly resolve: (result: unknown) => void;
      readonly reject: (e: unknown) => void;
    };

/** A frame stored by the current transaction, with its points when already parsed. */
interface CommittedFrame {
  readonly frame: Frame;
  readonly seq: number;
  readonly points?: Accepted;
  /** Fields this frame gave an older type (see Store.admit): their buffered values go first. */
  readonly retyped?: readonly FieldEntry[];
}

/** The points of a batch that were stored (by index), i.e. what replaying the frame yields. */
interface Accepted {
  readonly batch: PointBatch;
  readonly index: readonly number[];
}

interface Staged {
  readonly pending: Pending;
  readonly result: unknown;
  readonly frames: readonly CommittedFrame[];
  readonly retyped?: readonly FieldEntry[];
}

const MIN_TIME = -(2n ** 63n);
const MAX_TIME = 2n ** 63n - 1n;

export class Store {
  readonly nodeId: string;
  readonly incarnation: string;
  private readonly sqlite: Sqlite;
  private readonly catalog: Catalog;
  private readonly clock: HybridClock;
  private readonly order: VersionOrder;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly engine: EngineConfig;
  private readonly selfId: number;
  private lastLsn: Lsn;
  private lastSeq = 0;
  private checkpointSeq: number;
  private hotValues = 0;
  /** Bytes of the slab regions the hot buffers hold (see HotBuffer.bytes): what the memory cap counts. */
  private hotBytes = 0;
  /** Lines applied to the hot buffers, counted to tell one line's rows from the next (see HotBuffer.rowOf). */
  private linesApplied = 0;
  private typeConflicts = 0;
  /** Fields written with two types on the twins, settled by keeping the older type (see admit). */
  private typeConflictsSettled = 0;
  private conflicts = 0;
  private conflictSample: Record<string, string | number> | null = null;
  /** Tombstones by database (loaded at open; usually none). */
  private readonly tombstones = new Map<string, Tombstone[]>();
  private chunksWritten = 0;
  private rowsCut = 0;
  private framesCompressed = 0;
  private chunkCount = 0;
  private readonly observe: NonNullable<StoreOptions["observe"]>;
  private readonly compactor: Compactor;
  /** How chunk rows sit in this file's pages. */
  private readonly fit: PageFit;
  /** The leaf new chunk rows are appended to. */
  private readonly chunksLeaf: RightmostLeaf;
  /** Buffers holding values, and those that reached the chunk size. */
  private readonly live = new Set<HotBuffer>();
  private readonly full = new Set<HotBuffer>();
  private queue: Pending[] = [];
  private readonly commitListeners = new Set<() => void>();
  private scheduled = false;
  /** The last turn committed: the next one flushes first if a flush is wanted (see turn). */
  private flushFirst = false;
  /** What inserting one chunk row costs, in ms, lately (see insertFlushed). */
  private insertMsPerRow = 0.01;
  private closed = false;
  private lastAgeScan = 0;
  private lastTrim = 0;
  private replayed = { frames: 0, ms: 0 };
  private diskCheckedAt = Number.NEGATIVE_INFINITY;
  private diskFree = Number.POSITIVE_INFINITY;
  private readonly dataDir: string;
  private retentionTimer: ReturnType<typeof setInterval> | null = null;
  private compactTimer: ReturnType<typeof setTimeout> | null = null;
  private ageTimer: ReturnType<typeof setInterval> | null = null;
  private lastCommitAt = Number.NEGATIVE_INFINITY;
  /** When a backfill last read a record, or a digest a series (see backfillScan, digest). */
  private lastLongReadAt = Number.NEGATIVE_INFINITY;
  /** Set by a flush; the free pages it may have left are given back once the writer is quiet. */
  private vacuumWanted = false;
  /** False while flush steps fail to take values out of the buffers (see turn). */
  private flushing = true;
  /** Checkpoints the log on another thread, when asked to (StoreOptions.checkpointThread). */
  private checkpointer: Checkpointer | null = null;
  private readonly stmts;

  private constructor(
    opts: StoreOptions,
    sqlite: Sqlite,
    private readonly releaseLock: () => void,
  ) {
    this.sqlite = sqlite;
    this.log = opts.log ?? silentLogger;
    this.nowMs = opts.nowMs ?? Date.now;
    this.engine = opts.engine;
    this.dataDir = opts.dataDir;
    this.observe = opts.observe ?? {};
    this.clock = new HybridClock(this.nowMs);
    this.stmts = {
      begin: sqlite.prepare("BEGIN IMMEDIATE"),
      commit: sqlite.prepare("COMMIT"),
      rollback: sqlite.prepare("ROLLBACK"),
      savepoint: sqlite.prepare("SAVEPOINT item"),
      release: sqlite.prepare("RELEASE item"),
      rollbackTo: sqlite.prepare("ROLLBACK TO item"),
      getMeta: sqlite.prepare("SELECT value FROM meta WHERE key = ?").raw(),
      setMeta: sqlite.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      insertFrame: sqlite.prepare("INSERT INTO frames (origin_id, lsn, hlc, bytes) VALUES (?, ?, ?, ?)"),
      framesAfter: sqlite.prepare("SELECT seq, bytes FROM frames WHERE seq > ? ORDER BY seq").raw(),
      maxSeq: sqlite.prepare("SELECT COALESCE(MAX(seq), 0) FROM frames").raw(),
      trimFrames: sqlite.prepare("DELETE FROM frames WHERE seq <= ?"),
      chunkById: sqlite.prepare("SELECT times, vals, hlcs, origin_id, origins FROM chunks WHERE id = ?").raw(),
      deleteChunk: sqlite.prepare("DELETE FROM chunks WHERE id = ?"),
      deleteFieldChunks: sqlite.prepare("DELETE FROM chunks WHERE field_id = ?"),
      deleteSeriesRow: sqlite.prepare("DELETE FROM series WHERE id = ?"),
      deleteMeasurementFields: sqlite.prepare("DELETE FROM fields WHERE db_id = ? AND measurement = ?"),
      deleteDbFields: sqlite.prepare("DELETE FROM fields WHERE db_id = ?"),
      deleteDb: sqlite.prepare("DELETE FROM databases WHERE id = ?"),
      seriesRow: sqlite.prepare("SELECT 1 FROM series WHERE id = ?").raw(),
      chunkMetaOf: sqlite.prepare("SELECT id, field_id, min_time, max_time, count, max_hlc FROM chunks WHERE series_id = ?").safeIntegers(true).raw(),
      setRetention: sqlite.prepare("UPDATE databases SET retention_ns = ?, retention_hlc = ? WHERE id = ?"),
      dropExpiredChunks: sqlite.prepare("DELETE FROM chunks WHERE series_id IN (SELECT id FROM series WHERE db_id = ?) AND max_time < ?"),
      straddlingChunks: sqlite
        .prepare("SELECT id, series_id, field_id FROM chunks WHERE series_id IN (SELECT id FROM series WHERE db_id = ?) AND min_time < ? AND max_time >= ?")
        .raw(),
      trimTwinFrames: sqlite.prepare("DELETE FROM frames WHERE seq <= ? AND origin_id != ?"),
      trimOwnFramesBefore: sqlite.prepare("DELETE FROM frames WHERE seq <= ? AND origin_id = ? AND hlc < ?"),
      trimOwnFramesUpTo: sqlite.prepare("DELETE FROM frames WHERE seq <= ? AND origin_id = ? AND lsn <= ?"),
      ownFrameBytes: sqlite.prepare("SELECT SUM(length(bytes)) FROM frames WHERE origin_id = ?").raw(),
      ownFrameSizes: sqlite.prepare("SELECT lsn, length(bytes) FROM frames WHERE origin_id = ? AND seq <= ? ORDER BY lsn").raw(),
      insertChunk: sqlite.prepare(insertChunksSql(1)),
      insertChunks: sqlite.prepare(insertChunksSql(CHUNKS_PER_INSERT)),
      chunksOf: sqlite
        .prepare(
          "SELECT times, vals, hlcs, origin_id, origins FROM chunks WHERE series_id = ? AND field_id = ? AND max_time >= ? AND min_time <= ? ORDER BY min_time, id",
        )
        .raw(),
      oldestOwn: sqlite.prepare("SELECT MIN(lsn) FROM frames WHERE origin_id = ?").raw(),
      ownAfter: sqlite.prepare("SELECT lsn, bytes FROM frames WHERE origin_id = ? AND lsn > ? ORDER BY lsn").raw(),
      ownBytesAfter: sqlite.prepare("SELECT COALESCE(SUM(length(bytes)), 0) FROM frames WHERE origin_id = ? AND lsn > ?").raw(),
      insertSchemaFrame: sqlite.prepare("INSERT OR IGNORE INTO own_schema_frames (lsn) VALUES (?)"),
      schemaFrameAfter: sqlite.prepare("SELECT 1 FROM own_schema_frames WHERE lsn > ? LIMIT 1").raw(),
      trimSchemaFrames: sqlite.prepare("DELETE FROM own_schema_frames WHERE lsn < (SELECT COALESCE(MIN(lsn), ?) FROM frames WHERE origin_id = ?)"),
      chunksNewerThan: sqlite.prepare(CHUNKS_NEWER_THAN_SQL).raw(),
      chunkRowById: sqlite
        .prepare("SELECT times, vals, hlcs, origin_id, origins, min_time, max_time, count, max_hlc FROM chunks WHERE id = ?")
        .safeIntegers(true)
        .raw(),
      getCursor: sqlite.prepare("SELECT incarnation, lsn, hlc FROM cursors WHERE origin_id = ?").raw(),
      setCursor: sqlite.prepare(
        "INSERT INTO cursors (origin_id, incarnation, lsn, hlc) VALUES (?, ?, ?, ?) ON CONFLICT (origin_id) DO UPDATE SET incarnation = excluded.incarnation, lsn = excluded.lsn, hlc = excluded.hlc",
      ),
      openGap: sqlite.prepare("SELECT id FROM gaps WHERE origin_id = ? AND from_lsn = ? AND to_lsn = ? AND repaired_at IS NULL").raw(),
      insertGap: sqlite.prepare("INSERT INTO gaps (origin_id, from_lsn, to_lsn, detected_at) VALUES (?, ?, ?, ?)"),
      repairGaps: sqlite.prepare("UPDATE gaps SET repaired_at = ? WHERE origin_id = ? AND repaired_at IS NULL AND to_lsn <= ?"),
      insertTombstone: sqlite.prepare(
        "INSERT INTO tombstones (db, measurement, series_key, start_time, end_time, hlc, origin_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      listGaps: sqlite.prepare("SELECT from_lsn, to_lsn, detected_at, repaired_at FROM gaps WHERE origin_id = ? ORDER BY id DESC LIMIT 20").raw(),
      // Only chunks that may hold versions newer than a bound (older chunks lack max_hlc: read them).
      chunksSince: sqlite
        .prepare(
          "SELECT times, vals, hlcs, origin_id, origins FROM chunks WHERE series_id = ? AND field_id = ? AND max_time >= ? AND min_time <= ? AND (max_hlc IS NULL OR max_hlc > ?) ORDER BY min_time, id",
        )
        .raw(),
      freePages: sqlite.prepare("PRAGMA freelist_count").raw(),
      pageCount: sqlite.prepare("PRAGMA page_count").raw(),
      pageSize: sqlite.prepare("PRAGMA page_size").raw(),
      // The rowid SQLite gives the next chunk row inserted without one.
      nextChunkId: sqlite.prepare("SELECT ifnull(max(id), 0) + 1 FROM chunks").raw(),
    };

    this.catalog = new Catalog(sqlite);
    this.order = versionOrder((id) => this.catalog.nodeName(id));
    this.recountChunks();
    this.fit = new PageFit(Number(scalar(this.stmts.pageSize)));
    this.chunksLeaf = new RightmostLeaf(sqlite, "chunks");
    this.compactor = new Compactor({
      sqlite,
      order: this.order,
      chunkPoints: this.engine.chunkPoints,
      fit: this.fit,
      fieldType: (id) => this.catalog.fieldsById.get(id)?.type,
      insertRows: (rows) => this.insertRows(rows),
      chunksDeleted: (n) => {
        this.chunkCount -= n;
      },
    });
    this.compactor.loadCandidates();
    const tombRows = sqlite
      .prepare("SELECT db, measurement, series_key, start_time, end_time, hlc, origin_id FROM tombstones ORDER BY id")
      .safeIntegers(true)
      .raw()
      .all() as Array<[string, string | null, string | null, bigint, bigint, bigint, bigint]>;
    for (const [db, measurement, seriesKey, start, end, hlc, origin] of tombRows) {
      this.rememberTombstone(db, { measurement, seriesKey, start, end, hlc, origin: Number(origin) });
    }
    const identity = this.claimIdentity(opts.nodeId);
    this.nodeId = identity.nodeId;
    this.incarnation = identity.incarnation;
    this.lastLsn = identity.lastLsn;
    this.checkpointSeq = identity.checkpointSeq;
    this.clock.observe(identity.lastHlc);
    this.selfId = this.inTransaction(() => this.catalog.nodeId(this.nodeId));
  }

  /** Opens the store in `dataDir`, checks it belongs to `nodeId`, and replays unflushed frames. */
  static open(opts: StoreOptions): Store {
    mkdirSync(opts.dataDir, { recursive: true });
    const release = lockDataDir(opts.dataDir);
    let sqlite: Sqlite | undefined;
    try {
      sqlite = openDb(join(opts.dataDir, STORE_FILE), opts.sync).sqlite;
      const store = new Store(opts, sqlite, release);
      store.recover();
      store.startAgeTimer();
      if (opts.checkpointThread === true) store.checkpointer = new Checkpointer(join(opts.dataDir, STORE_FILE), SYNC_PRAGMA[opts.sync], store.log);
      return store;
    } catch (e) {
      sqlite?.close();
      release();
      throw e;
    }
  }

  /** Stores a batch; resolves once its frame is committed. */
  write(req: WriteRequest): Promise<WriteOutcome> {
    if (this.closed) return Promise.reject(new TsdbError("unavailable", "the store is shutting down"));
    const full = this.diskFloorError();
    if (full !== null) return Promise.reject(full);
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: "write", req, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Creates a database if it does not exist (CREATE DATABASE); with a duration (ns, 0 =
   * forever), also sets how long its data is kept.
   */
  async createDatabase(name: string, durationNs?: bigint): Promise<void> {
    if (name === "") throw new TsdbError("bad_request", "database name required");
    await this.schemaChange(() => {
      const db = this.catalog.dbs.get(name);
      if (durationNs === undefined) return db === undefined ? { kind: "create_db", db: name } : null;
      return db?.retentionNs === durationNs ? null : { kind: "create_db", db: name, durationNs };
    });
  }

  /** How long a database keeps data, in ns (0: forever). */
  retentionOf(db: DbEntry): bigint {
    return db.retentionNs ?? BigInt(this.engine.retentionMs) * 1_000_000n;
  }

  /**
   * Removes data older than each database's retention: whole chunks, the old part of chunks
   * that straddle the cutoff, and old buffered values. The cutoff is floored to the minute so
   * both twins, each running this on its own clock, cut at the same place. Returns the chunks
   * removed and rewritten.
   */
  enforceRetention(): Promise<{ dropped: number; trimmed: number }> {
    // A pass now and then, not one of a stream of writes: compaction may follow it at once.
    return this.task(() => {
      let dropped = 0;
      let trimmed = 0;
      const nowNs = BigInt(this.nowMs()) * 1_000_000n;
      for (const db of this.catalog.dbs.values()) {
        const keep = this.retentionOf(db);
        if (keep <= 0n) continue;
        const raw = nowNs - keep;
        const cutoff = raw - (((raw % MINUTE_NS) + MINUTE_NS) % MINUTE_NS);
        dropped += this.stmts.dropExpiredChunks.run([db.id, cutoff]).changes;
        for (const [id, seriesId, fieldId] of this.stmts.straddlingChunks.all([db.id, cutoff, cutoff]) as Array<[number, number, number]>) {
          const field = this.catalog.fieldsById.get(fieldId);
          if (field === undefined) continue;
          this.trimChunk(id, seriesId, field, (t) => t >= cutoff);
          trimmed++;
        }
        for (const series of db.series.values()) {
          for (const b of series.buffers) this.retainHot(b, (t) => t >= cutoff);
        }
      }
      this.chunkCount -= dropped;
      if (dropped + trimmed > 0) this.log.info("retention removed expired data", { chunks_dropped: dropped, chunks_trimmed: trimmed });
      return { frames: [], result: { dropped, trimmed } };
    }, false);
  }

  /**
   * Looks at the buffers' age even when no write comes: without it, values buffered when
   * writes stop would wait for the next write (or shutdown) to be flushed, however old.
   */
  private startAgeTimer(): void {
    this.ageTimer = setInterval(() => {
      if (this.live.size > 0) this.schedule();
    }, AGE_SCAN_MS);
    (this.ageTimer as { unref?: () => void }).unref?.();
  }

  /** Starts enforcing retention every minute (and once now). */
  startRetention(): void {
    if (this.retentionTimer !== null) return;
    const run = () =>
      this.enforceRetention().then(
        () => this.maybeVacuum(),
        (e) => this.log.error("retention failed", { error: String(e) }),
      );
    this.retentionTimer = setInterval(run, RETENTION_EVERY_MS);
    (this.retentionTimer as { unref?: () => void }).unref?.();
    void run();
  }

  /** Removes a database and all its data (DROP DATABASE); unknown names are not an error. */
  async dropDatabase(name: string): Promise<void> {
    await this.schemaChange(() => (this.catalog.dbs.has(name) ? { kind: "drop_db", db: name } : null));
  }

  /** Removes a measurement, its series and fields (DROP MEASUREMENT); unknown names are not an error. */
  async dropMeasurement(db: string, measurement: string): Promise<void> {
    await this.schemaChange(() =>
      this.catalog.dbs.get(db)?.measurements.has(measurement) ? { kind: "drop_measurement", db, measurement } : null,
    );
  }

  /**
   * Removes the values of matching series in an inclusive time range (DELETE; DROP SERIES
   * without a range). A series left with no values disappears. Returns the series touched.
   */
  async deleteSeries(dbName: string, target: DeleteTarget): Promise<number> {
    const out = await this.schemaChange(() => {
      const db = this.catalog.dbs.get(dbName);
      if (db === undefined) throw new TsdbError("not_found", `database not found: ${dbName}`);
      const names = target.measurements ?? [...db.measurements.keys()];
      const seriesKeys: string[] = [];
      for (const name of names) {
        const m = db.measurements.get(name);
        if (m) for (const s of m.series) if (target.series(s)) seriesKeys.push(s.key);
      }
      if (seriesKeys.length === 0) return null;
      return { kind: "delete", db: dbName, seriesKeys, start: target.start ?? MIN_TIME, end: target.end ?? MAX_TIME };
    });
    return out.accepted;
  }

  private schemaChange(build: () => SchemaOp | null): Promise<WriteOutcome> {
    if (this.closed) return Promise.reject(new TsdbError("unavailable", "the store is shutting down"));
    const full = this.diskFloorError();
    if (full !== null) return Promise.reject(full);
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: "schema", build, resolve, reject });
      this.schedule();
    });
  }

  stats(): StoreStats {
    return {
      nodeId: this.nodeId,
      incarnation: this.incarnation,
      lastLsn: this.lastLsn,
      checkpointSeq: this.checkpointSeq,
      series: this.catalog.seriesCount(),
      hotValues: this.hotValues,
      hotBytes: this.hotBytes,
      hotCapBytes: this.hotCap(),
      chunksWritten: this.chunksWritten,
      chunksCut: this.rowsCut,
      framesCompressed: this.framesCompressed,
      checkpointedPages: this.checkpointer?.pagesCopied ?? 0,
      chunks: this.chunkCount,
      chunksCompacted: this.compactor.rewritten,
      compactionPending: this.compactor.pendingCount(),
    };
  }

  /** Names of all databases, sorted. */
  databases(): string[] {
    return [...this.catalog.dbs.keys()].sort();
  }

  /**
   * One database's catalogue (measurements, their fields and series) for readers such as the
   * query engine. Read-only for them: only the writer changes it.
   */
  database(name: string): DbEntry | undefined {
    return this.catalog.dbs.get(name);
  }

  /**
   * Streams a database as canonical line protocol: measurements, then series keys, then
   * times ascending; one line per series and timestamp with fields sorted by key; integer
   * nanosecond timestamps. Yields one string per series with values in range, and now and
   * then "" while many in a row have none (a turn for callers that share the event loop).
   */
  *exportLines(dbName: string, range: ExportRange = {}): Generator<string> {
    const db = this.catalog.dbs.get(dbName);
    if (db === undefined) throw new TsdbError("not_found", `database not found: ${JSON.stringify(dbName)}`);
    const lo = range.start ?? MIN_TIME;
    const hi = range.end ?? MAX_TIME;
    const measurements = [...db.measurements.values()].sort((a, b) => cmp(a.name, b.name));
    let empty = 0;
    for (const m of measurements) {
      const fields = [...m.fields.values()].sort((a, b) => cmp(a.name, b.name));
      const series = [...m.series].sort((a, b) => cmp(a.key, b.key));
      for (const s of series) {
        const text = this.formatSeries(s, fields, lo, hi);
        if (text !== "" || ++empty % SCAN_TICK === 0) yield text;
      }
    }
  }

  /** Reads one series and field as a single time-ordered run (chunks and hot values merged). */
  readRun(series: SeriesEntry, field: FieldEntry, lo: bigint, hi: bigint, sinceHlc?: bigint): Run {
    const runs: Run[] = [];
    const rows =
      sinceHlc === undefined
        ? this.stmts.chunksOf.all([series.id, field.id, lo, hi])
        : this.stmts.chunksSince.all([series.id, field.id, lo, hi, sinceHlc]);
    for (const [times, vals, hlcs, originId, origins] of rows as Array<
      [Uint8Array, Uint8Array, Uint8Array, number | null, Uint8Array | null]
    >) {
      runs.push(decodeChunk({ times, vals, hlcs, originId, origins }, field.type));
    }
    for (const hot of series.buffers) {
      const col = hot.columnOf(field.id);
      if (col >= 0 && hot.length > 0) runs.push(hot.snapshot(col));
    }
    return sliceRun(mergeRuns(runs, field.type, this.order), lo, hi);
  }

  private formatSeries(s: SeriesEntry, fields: readonly FieldEntry[], lo: bigint, hi: bigint): string {
    const cols: Array<{ prefix: string; field: FieldEntry; run: Run; at: number }> = [];
    for (const f of fields) {
      const run = this.readRun(s, f, lo, hi);
      if (run.times.length > 0) cols.push({ prefix: escapeFieldKey(f.name) + "=", field: f, run, at: 0 });
    }
    if (cols.length === 0) return "";
    const parts: string[] = [];
    for (;;) {
      let t: bigint | null = null;
      for (const c of cols) {
        if (c.at < c.run.times.length) {
          const ct = c.run.times[c.at]!;
          if (t === null || ct < t) t = ct;
        }
      }
      if (t === null) break;
      let line = s.key;
      let sep = " ";
      for (const c of cols) {
        if (c.at < c.run.times.length && c.run.times[c.at] === t) {
          line += sep + c.prefix + formatFieldValue(c.field.type, valueAt(c.run.values, c.at));
          sep = ",";
          c.at++;
        }
      }
      parts.push(line + " " + t + "\n");
    }
    return parts.join("");
  }

  /** Flushes every hot buffer into chunks and advances the checkpoint. */
  flushAll(): void {
    this.flushStep(Number.POSITIVE_INFINITY, true);
  }

  /** Drains queued writes, flushes everything and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
    if (this.ageTimer !== null) clearInterval(this.ageTimer);
    if (this.compactTimer !== null) clearTimeout(this.compactTimer);
    while (this.queue.length > 0) this.commitGroup(this.queue.splice(0));
    this.flushAll();
    // Its connection must be gone before the log is truncated below.
    await this.checkpointer?.close();
    try {
      this.sqlite.exec("PRAGMA incremental_vacuum");
      this.sqlite.pragma("wal_checkpoint(TRUNCATE)");
    } catch (e) {
      this.log.warn("could not compact the store file at close", { error: String(e) });
    }
    this.sqlite.close();
    this.releaseLock();
  }

  /**
   * Refuses new writes while the disk is below its free-space floor, before SQLite runs out
   * mid-transaction. Checked at most once a second; reads go on either way.
   */
  private diskFloorError(): TsdbError | null {
    const floor = this.engine.minFreeDiskBytes;
    if (floor <= 0) return null;
    const now = this.nowMs();
    if (now - this.diskCheckedAt >= DISK_CHECK_MS) {
      this.diskCheckedAt = now;
      try {
        const s = statfsSync(this.dataDir);
        this.diskFree = Number(s.bavail) * Number(s.bsize);
      } catch {
        this.diskFree = Number.POSITIVE_INFINITY;
      }
    }
    if (this.diskFree >= floor) return null;
    return new TsdbError(
      "disk_full",
      `disk nearly full: ${this.diskFree} bytes free in ${this.dataDir}, below the floor of ${floor} (--min-free-disk); stored data stays readable and writes resume when space returns`,
    );
  }

  // ---- writer ----

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    // setImmediate lets every request whose body is already here enqueue first, so one
    // commit (one fsync) serves all of them.
    setImmediate(() => this.turn());
  }

  private turn(): void {
    this.scheduled = false;
    if (this.closed) return;
    // Nearly every turn commits something (writes, a flush, a compaction step).
    this.checkpointer?.wrote();
    // Writes (and the twin's batches) wait while buffers are past the hard limit, unless
    // flushing is failing (a full disk): that must not stop writes, which report it.
    const held = this.hotBytes > this.hotCap() * HOT_HARD_LIMIT && this.flushing;
    // A turn commits or flushes, not both: the answers to a commit's requests go out (and their
    // clients send the next bodies, to be parsed meanwhile) before a flush step holds the
    // thread. Under load the two alternate, so neither waits behind the other for long.
    const commit = this.queue.length > 0 && !held && !(this.flushFirst && this.flushWanted());
    if (commit) {
      this.commitGroup(this.queue.splice(0));
      this.flushFirst = true;
    } else if (this.flushWanted()) {
      this.flushFirst = false;
      const before = this.hotValues;
      const overCap = this.hotBytes > this.hotCap();
      this.flushStep(overCap ? (this.engine.overCapFlushStepMs ?? FLUSH_STEP_OVER_CAP_MS) : FLUSH_STEP_MS, false);
      this.flushing = this.hotValues < before;
    }
    // Compaction only uses time the writer would otherwise spend idle: not between the
    // requests of a busy stream (own ingest or the twin's frames), only once writes pause.
    // Nor while a backfill reads the chunks: each it rewrote would be read again whole, and
    // a twin catching up is what the time is wanted for. Nor while a verify's digest reads
    // everything: compaction would take half its turns.
    // Giving free pages back waits for the same quiet: while writes go on, the pages of
    // trimmed frames are reused by new ones, and moving pages about would only cost time.
    const quiet = this.nowMs() - Math.max(this.lastCommitAt, this.lastLongReadAt) >= COMPACT_AFTER_IDLE_MS;
    if (this.queue.length === 0 && !this.flushWanted() && (this.compactor.hasWork() || this.vacuumWanted)) {
      if (!quiet) this.scheduleCompaction();
      else if (this.compactor.hasWork()) this.compactStep(COMPACT_STEP_MS);
      else {
        this.vacuumWanted = false;
        this.maybeVacuum();
      }
    }
    if (this.queue.length > 0 || this.flushWanted() || (quiet && this.compactor.hasWork())) this.schedule();
  }

  /** Looks again once the writer may have gone quiet. */
  private scheduleCompaction(): void {
    if (this.compactTimer !== null || this.closed) return;
    this.compactTimer = setTimeout(() => {
      this.compactTimer = null;
      this.schedule();
    }, COMPACT_AFTER_IDLE_MS);
  }

  /** Runs compaction for up to `budgetMs` in one transaction (old or new chunks, never both). */
  compactStep(budgetMs: number): void {
    if (this.closed) return;
    const started = performance.now();
    let done: Array<[number, number]>;
    this.stmts.begin.run();
    try {
      done = this.compactor.step(budgetMs);
      this.stmts.commit.run();
    } catch (e) {
      try {
        this.stmts.rollback.run();
      } catch {
        // already rolled back
      }
      this.recountChunks();
      this.log.error("compaction failed", { error: String(e) });
      return;
    }
    this.compactor.settle(done);
    this.observe.compaction?.((performance.now() - started) / 1000);
  }

  /** Compacts everything pending now (tests and tools). */
  compactAll(): void {
    while (this.compactor.hasWork()) this.compactStep(Number.POSITIVE_INFINITY);
  }

  private commitGroup(group: Pending[]): void {
    const started = performance.now();
    try {
      this.commitGroupTimed(group);
    } finally {
      this.observe.commit?.((performance.now() - started) / 1000);
    }
  }

  private commitGroupTimed(group: Pending[]): void {
    const staged: Staged[] = [];
    this.catalog.begin();
    this.stmts.begin.run();
    const lsnBefore = this.lastLsn;
    try {
      for (const p of group) {
        // Each request in its own savepoint: an error (unknown database, a bad frame from the
        // twin) undoes only that request's rows and fails only that request.
        const mark = this.catalog.mark();
        const lsn = this.lastLsn;
        this.stmts.savepoint.run();
        try {
          staged.push(this.stage(p));
          this.stmts.release.run();
        } catch (e) {
          this.stmts.rollbackTo.run();
          this.stmts.release.run();
          this.catalog.rollbackTo(mark);
          this.lastLsn = lsn;
          // What it deleted (a retyped field's chunks) is back.
          this.recountChunks();
          p.reject(e);
        }
      }
      if (this.lastLsn !== lsnBefore) this.stmts.setMeta.run(["last_lsn", String(this.lastLsn)]);
      this.stmts.commit.run();
    } catch (e) {
      try {
        this.stmts.rollback.run();
      } catch {
        // The transaction may already be gone (e.g. the disk is full); nothing more to undo.
      }
      this.catalog.rollback();
      this.lastLsn = lsnBefore;
      this.recountChunks();
      const full = /SQLITE_FULL|disk is full/i.test(String((e as { code?: string }).code ?? "") + String(e));
      const err = new TsdbError(full ? "disk_full" : "internal", `cannot commit ${group.length} write(s): ${String(e)}`, { cause: e });
      this.log.error("commit failed", { error: String(e) });
      for (const s of staged) s.pending.reject(err);
      return;
    }
    const now = this.nowMs();
    for (const s of staged) {
      if (s.retyped !== undefined) this.dropRetypedBuffers(s.retyped);
      for (const c of s.frames) {
        if (c.seq > this.lastSeq) this.lastSeq = c.seq;
        if (c.retyped !== undefined) this.dropRetypedBuffers(c.retyped);
        this.applyFrame(c.frame, c.seq, now, c.points);
      }
      (s.pending.resolve as (r: unknown) => void)(s.result);
    }
    // The twin's batches and backfills count as writes too: compaction must not take the
    // writer between the batches of a catch-up any more than between requests.
    if (staged.some((st) => st.frames.length > 0 || (st.pending.kind === "task" && st.pending.stream))) this.lastCommitAt = this.nowMs();
    for (const listener of this.commitListeners) listener();
  }

  private stage(p: Pending): Staged {
    if (p.kind === "write") return this.stageWrite(p, p.req);
    if (p.kind === "schema") return this.stageSchema(p);
    const { frames, result, retyped } = p.run();
    return { pending: p, result, frames, retyped };
  }

  /**
   * Runs `run` as one writer turn (inside its transaction, in order with writes); `stream`
   * when it is one of a stream of them (see Pending).
   */
  private task<T>(run: () => { frames: CommittedFrame[]; result: T; retyped?: FieldEntry[] }, stream = true): Promise<T> {
    if (this.closed) return Promise.reject(new TsdbError("unavailable", "the store is shutting down"));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ kind: "task", stream, run, resolve: resolve as (r: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Builds a schema op, makes its changes to the tables and writes its frame. */
  private stageSchema(p: Pending & { kind: "schema" }): Staged {
    const op = p.build();
    if (op === null) return { pending: p, result: { accepted: 0, conflicts: [], lsn: null }, frames: [] };
    const frame: Frame = { origin: this.nodeId, lsn: ++this.lastLsn, hlc: this.clock.tick(), op };
    const touched = this.applySchemaToTables(frame, op);
    const info = this.stmts.insertFrame.run([this.selfId, frame.lsn, frame.hlc, encodeFrame(frame)]);
    this.stmts.insertSchemaFrame.run([frame.lsn]);
    return { pending: p, result: { accepted: touched, conflicts: [], lsn: frame.lsn }, frames: [{ frame, seq: Number(info.lastInsertRowid) }] };
  }

  /** Checks a request against the catalogue, adds what it needs and writes its frame. */
  private stageWrite(p: Pending, req: WriteRequest): Staged {
    if (!KNOWN_RPS.has(req.rp)) throw new TsdbError("not_found", `retention policy not found: ${req.rp}`);
    let db = this.catalog.dbs.get(req.db);
    if (db === undefined) {
      if (!req.autoCreate) throw new TsdbError("not_found", `database not found: "${req.db}"`);
      db = this.catalog.createDb(req.db);
    }
    const conflicts: TypeConflict[] = [];
    const index: number[] = [];
    const batch = req.batch;
    const hlc = this.clock.tick();
    const version: FieldVersion = { hlc, by: this.nodeId };
    const fields = new LineFields();
    for (let i = 0; i < batch.length; i++) {
      const conflict = this.admit(db, batch, i, version, fields);
      if (conflict) conflicts.push(conflict);
      else index.push(i);
    }
    if (index.length === 0) return { pending: p, result: { accepted: 0, conflicts, lsn: null }, frames: [] };
    // The whole body when every line of it is stored; else the stored lines' own text.
    const wholeBody = req.body !== undefined && conflicts.length === 0;
    const lines = wholeBody ? req.body! : index.map((i) => batch.raw[i]!).join("\n");
    const frame: Frame = {
      origin: this.nodeId,
      lsn: ++this.lastLsn,
      hlc,
      op: {
        kind: "write",
        db: req.db,
        rp: req.rp,
        precision: req.precision,
        defaultTime: req.defaultTime,
        lines,
      },
    };
    const info = this.stmts.insertFrame.run([this.selfId, frame.lsn, frame.hlc, encodeFrame(frame)]);
    if (isCompressed(lines)) this.framesCompressed++;
    const seq = Number(info.lastInsertRowid);
    return { pending: p, result: { accepted: index.length, conflicts, lsn: frame.lsn }, frames: [{ frame, seq, points: { batch, index } }] };
  }

  /**
   * Adds point `i`'s series and new fields to the catalogue, or reports why not: its first
   * type clash, or (for local writes) the database's series limit. New fields take `version`
   * (the write's clock and origin) as the version of their type.
   *
   * The twin's points (`retyped` given) settle a clash instead of losing to it when their
   * write is older than the one that gave the field its type here: both twins then keep the
   * type written first, whatever order the writes arrive in. The field is retyped, its values
   * of the other type are deleted (the caller drops them from memory after the commit), and
   * the old entry is added to `retyped`.
   */
  private admit(db: DbEntry, batch: PointBatch, i: number, version: FieldVersion, fields: LineFields, retyped?: FieldEntry[]): TypeConflict | null {
    const m = db.measurement(batch.measurement[i]!);
    const last = fields.of(m);
    const from = batch.fieldStart[i]!;
    const to = batch.fieldStart[i + 1]!;
    let settle: number[] | null = null;
    let unknown = false;
    for (let f = from; f < to; f++) {
      const known = last.field(f - from, batch.fieldKey[f]!);
      if (known === undefined) unknown = true;
      if (known === undefined || known.type === batch.fieldType[f]) continue;
      if (retyped !== undefined && compareFieldVersions(version, known.created) < 0) (settle ??= []).push(f);
      else return { line: batch.line[i]!, measurement: m.name, field: known.name, type: batch.fieldType[f]!, existing: known.type };
    }
    const key = batch.seriesKey[i]!;
    const isNew = !db.series.has(key);
    if (isNew && retyped === undefined && db.series.size >= this.engine.maxSeriesPerDatabase) {
      const limit = String(this.engine.maxSeriesPerDatabase);
      return { kind: "series_limit", line: batch.line[i]!, measurement: m.name, field: "", type: "", existing: limit };
    }
    if (settle !== null) {
      for (const f of settle) retyped!.push(this.retype(m.fields.get(batch.fieldKey[f]!)!, batch.fieldType[f]!, version));
      // A retyped field has a new entry.
      fields.forget(m);
    }
    if (unknown) for (let f = from; f < to; f++) if (!m.fields.has(batch.fieldKey[f]!)) this.catalog.createField(m, batch.fieldKey[f]!, batch.fieldType[f]!, version);
    if (isNew) this.catalog.createSeries(db, m, key);
    return null;
  }

  /** Gives a field the type of an older write and deletes its stored values; returns the old entry. */
  private retype(field: FieldEntry, type: FieldType, version: FieldVersion): FieldEntry {
    const dropped = Number(this.stmts.deleteFieldChunks.run([field.id]).changes);
    this.chunkCount -= dropped;
    this.catalog.retypeField(field, type, version);
    this.log.warn("a field was written with two types on the twins; keeping the one written first", {
      db: field.measurement.db.name,
      measurement: field.measurement.name,
      field: field.name,
      kept: type,
      dropped: field.type,
      dropped_chunks: dropped,
    });
    this.typeConflictsSettled++;
    return field;
  }

  /** After a commit that retyped fields: their buffered values of the old type go too. */
  private dropRetypedBuffers(retyped: readonly FieldEntry[]): void {
    for (const old of retyped) {
      const field = this.catalog.fieldsById.get(old.id)!;
      for (const series of field.measurement.series) {
        for (const buf of series.buffers) {
          const col = buf.columnOf(field.id);
          if (col >= 0) this.shrinkHot(buf, () => buf.replaceField(col, field));
        }
      }
    }
  }

  /**
   * Puts a committed frame's points into the hot buffers (live writes and replay alike).
   * Live writes pass the points they already parsed; replay parses the frame's lines.
   */
  private applyFrame(frame: Frame, seq: number, nowMs: number, parsed?: Accepted): void {
    const op = frame.op;
    if (op.kind !== "write") {
      this.applySchemaToMemory(frame, op);
      return;
    }
    const db = this.catalog.dbs.get(op.db);
    // On replay, a database dropped by a later frame is already gone from the catalogue.
    if (db === undefined) return;
    const origin = frame.origin === this.nodeId ? this.selfId : this.catalog.nodeId(frame.origin);
    let accepted = parsed;
    if (accepted === undefined) {
      const result = parseLines(writeText(op), { precision: op.precision, defaultTime: op.defaultTime });
      if (result.errors.length > 0) {
        this.log.warn("stored frame has lines that no longer parse", {
          frame: `${frame.origin}@${frame.lsn}`,
          first: result.errors[0]!.reason,
        });
      }
      accepted = { batch: result.batch, index: Array.from({ length: result.batch.length }, (_, i) => i) };
    }
    const { batch, index } = accepted;
    const { seriesKey, time: times, fieldStart, fieldKey, fieldType, fieldValue } = batch;
    const hlc = frame.hlc;
    const known = new LineFields();
    for (const i of index) {
      const series = db.series.get(seriesKey[i]!);
      if (series === undefined) continue;
      const m = series.measurement;
      const last = known.of(m);
      const time = times[i]!;
      const from = fieldStart[i]!;
      const to = fieldStart[i + 1]!;
      // A line is a row of each buffer it sets a column of; `line` tells the buffers apart from the last line's.
      const line = ++this.linesApplied;
      // The buffer this line's values go to: one unless the series has more than MAX_COLUMNS
      // fields. Counts and sets are brought up to date once it is left (see leaveBuffer).
      let buf: HotBuffer | null = null;
      for (let f = from; f < to; f++) {
        const entry = last.field(f - from, fieldKey[f]!);
        if (entry === undefined || entry.type !== fieldType[f]) continue;
        let target = buf;
        let col = target === null ? -1 : target.columnOf(entry.id, f - from);
        if (target === null || col < 0) {
          if (target !== null) this.leaveBuffer(target);
          target = buf = this.bufferWithColumn(series, entry, f - from, nowMs);
          col = target.columnOf(entry.id, f - from);
          this.enterBuffer(target);
        }
        const row = target.rowOf(line, time, hlc, origin, seq, nowMs);
        if (target.set(row, col, fieldValue[f]!)) this.noteConflict(db.name, series.key, entry.name, time);
      }
      if (buf !== null) this.leaveBuffer(buf);
    }
  }

  // What a buffer held when applyFrame started putting a line's values in it.
  private enteredRows = 0;
  private enteredValues = 0;
  private enteredBytes = 0;

  private enterBuffer(buf: HotBuffer): void {
    this.enteredRows = buf.length;
    this.enteredValues = buf.values;
    this.enteredBytes = buf.bytes;
  }

  /** Counts what a line added to `buf`, and marks it live (it was empty) or full. */
  private leaveBuffer(buf: HotBuffer): void {
    if (this.enteredRows === 0) this.live.add(buf);
    this.hotValues += buf.values - this.enteredValues;
    this.hotBytes += buf.bytes - this.enteredBytes;
    if (buf.length >= this.engine.chunkPoints) this.full.add(buf);
  }

  /**
   * The series' buffer with a column for `field`, adding the column (and a buffer, when all
   * are full) if none has one; `hint` is the column to try first (see HotBuffer.columnOf).
   */
  private bufferWithColumn(series: SeriesEntry, field: FieldEntry, hint: number, nowMs: number): HotBuffer {
    for (const b of series.buffers) if (b.columnOf(field.id, hint) >= 0) return b;
    let b = series.buffers[series.buffers.length - 1];
    if (b === undefined || b.width >= MAX_COLUMNS) {
      b = new HotBuffer(series);
      series.buffers.push(b);
    }
    const bytes = b.bytes;
    b.addColumn(field, nowMs);
    this.hotBytes += b.bytes - bytes;
    return b;
  }

  /** Runs `change` on a buffer that only removes from it, and keeps the counts and sets in step. */
  private shrinkHot(b: HotBuffer, change: () => void): void {
    const values = b.values;
    const bytes = b.bytes;
    change();
    this.hotValues -= values - b.values;
    this.hotBytes -= bytes - b.bytes;
    if (b.length === 0) {
      this.live.delete(b);
      this.full.delete(b);
    }
  }

  /** Keeps only the buffered rows for which `keep(time, hlc, origin)` holds. */
  private retainHot(b: HotBuffer, keep: (time: bigint, hlc: bigint, origin: number) => boolean): void {
    this.shrinkHot(b, () => b.retain(keep));
  }

  /** Empties a buffer (its memory goes back to the slabs now, not when it is collected). */
  private dropHot(b: HotBuffer): void {
    this.shrinkHot(b, () => b.clear());
  }

  // ---- replication ----

  /** Called after every commit (own writes, twin frames, backfills); returns an unsubscribe. */
  onCommit(listener: () => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /** This node's newest LSN. */
  latestLsn(): Lsn {
    return this.lastLsn;
  }

  /** The oldest own LSN still in the frame log, or null when none is retained. */
  oldestOwnLsn(): Lsn | null {
    const v = scalar(this.stmts.oldestOwn, [this.selfId]);
    return v === null || v === undefined ? null : Number(v);
  }

  /** Bytes of own frames after `after` still in the log (what a twin at `after` has yet to get). */
  ownBytesAfter(after: Lsn): number {
    return Number(scalar(this.stmts.ownBytesAfter, [this.selfId, after]) ?? 0);
  }

  /** True when every own frame after `after` is a plain write (no schema change, delete or drop). */
  onlyWritesAfter(after: Lsn): boolean {
    return scalar(this.stmts.schemaFrameAfter, [after]) === undefined;
  }

  /** Own frames after `after`, oldest first, up to about `maxBytes` (at least one frame). */
  ownFramesAfter(after: Lsn, maxBytes: number): Array<{ lsn: Lsn; bytes: Uint8Array }> {
    const out: Array<{ lsn: Lsn; bytes: Uint8Array }> = [];
    let size = 0;
    for (const [lsn, bytes] of this.stmts.ownAfter.iterate([this.selfId, after]) as Iterable<[number, Uint8Array]>) {
      out.push({ lsn, bytes });
      size += bytes.length;
      if (size >= maxBytes) break;
    }
    return out;
  }

  /** How far this node applied a twin's frames, or null if it never did (or forgot, see seeds). */
  cursorFor(twin: string): TwinCursor | null {
    const row = this.stmts.getCursor.get([this.nodeIdOf(twin)]) as [string, number, number] | undefined;
    return row === undefined ? null : { incarnation: row[0], lsn: row[1], hlc: row[2] };
  }

  private nodeIdOf(name: string): number {
    return name === this.nodeId ? this.selfId : this.catalog.nodeId(name);
  }

  /**
   * Applies frames received from the twin, exactly once: each is checked (checksum, origin,
   * LSN order), its changes are stored with the frame, and the twin's cursor is advanced, all
   * in one transaction. Frames at or below the cursor are skipped. Throws without applying
   * anything when a frame is corrupt, forged or out of order.
   */
  applyTwinFrames(
    twin: TwinIdentity,
    frames: readonly Uint8Array[],
    parsed?: ReadonlyArray<ParseResult | undefined>,
  ): Promise<{ applied: number; lsn: Lsn; conflicts: number }> {
    return this.task(() => {
      const originId = this.nodeIdOf(twin.nodeId);
      const cur = this.cursorFor(twin.nodeId);
      if (cur === null || cur.incarnation !== twin.incarnation) {
        throw new TsdbError("identity", `no cursor for ${twin.nodeId} incarnation ${twin.incarnation}: it must be seeded first`);
      }
      let lsn = cur.lsn;
      let hlc = cur.hlc;
      let conflicts = 0;
      const committed: CommittedFrame[] = [];
      const retyped: FieldEntry[] = [];
      for (let k = 0; k < frames.length; k++) {
        const bytes = frames[k]!;
        // Lines parsed ahead were decoded and checked as UTF-8 by that parse.
        const frame = decodeFrame(bytes, { rawLines: parsed?.[k] !== undefined });
        if (frame.origin !== twin.nodeId) {
          throw new TsdbError("corrupt_frame", `refusing ${describeFrame(frame)}: the twin is ${twin.nodeId}, and frames are only shipped by their origin`);
        }
        if (frame.lsn <= lsn) continue;
        if (frame.lsn !== lsn + 1) {
          throw new TsdbError("corrupt_frame", `refusing ${describeFrame(frame)}: expected ${formatPosition({ origin: twin.nodeId, lsn: lsn + 1 })} next`);
        }
        this.clock.observe(frame.hlc);
        let points: Accepted | undefined;
        if (frame.op.kind === "write") {
          const op = frame.op;
          const db = this.catalog.dbs.get(op.db) ?? this.catalog.createDb(op.db);
          // Parsed ahead on another thread when the caller could; the same lines either way.
          const { batch } = parsed?.[k] ?? parseLines(writeText(op), { precision: op.precision, defaultTime: op.defaultTime });
          const index: number[] = [];
          const version: FieldVersion = { hlc: frame.hlc, by: frame.origin };
          const hlcBig = BigInt(frame.hlc);
          const checkTombs = this.tombstones.has(op.db);
          const fields = new LineFields();
          for (let i = 0; i < batch.length; i++) {
            // An older write than a delete that covers it stays deleted, whatever the arrival order.
            if (checkTombs && this.buried(op.db, batch.measurement[i]!, batch.seriesKey[i]!, batch.time[i]!, hlcBig, originId)) continue;
            if (this.admit(db, batch, i, version, fields, retyped) === null) index.push(i);
            else conflicts++;
          }
          points = { batch, index };
        } else {
          this.applySchemaToTables(frame, frame.op);
        }
        const info = this.stmts.insertFrame.run([originId, frame.lsn, frame.hlc, bytes]);
        if (frame.op.kind === "write" && isCompressed(frame.op.lines)) this.framesCompressed++;
        committed.push({ frame, seq: Number(info.lastInsertRowid), points, retyped: retyped.splice(0) });
        lsn = frame.lsn;
        hlc = frame.hlc;
      }
      if (committed.length > 0) this.stmts.setCursor.run([originId, twin.incarnation, lsn, hlc]);
      this.typeConflicts += conflicts;
      return { frames: committed, result: { applied: committed.length, lsn, conflicts } };
    });
  }

  /**
   * Values for a twin that cannot be served from the frame log: every value with a version
   * newer than `sinceHlc`, written by `origin` (or by anyone when null), in chunk form with
   * versions and origins kept so the twin converges exactly. Values at or before `sinceHlc`
   * may come along (the twin has them, and merges by version).
   */
  *backfillRecords(opts: BackfillScope): Generator<BackfillRecord> {
    for (const record of this.backfillScan(opts)) if (record !== null) yield record;
  }

  /**
   * backfillRecords, with a null now and then while long stretches yield no record (a repair
   * range over many series, most with nothing in it): the caller can give the event loop a turn.
   */
  *backfillScan(opts: BackfillScope): Generator<BackfillRecord | null> {
    // Compaction waits while records are read (see turn).
    for (const record of this.backfillAll(opts)) {
      this.lastLongReadAt = this.nowMs();
      yield record;
    }
  }

  private *backfillAll(opts: BackfillScope): Generator<BackfillRecord | null> {
    const since = BigInt(opts.sinceHlc);
    const originId = opts.origin === null ? null : this.nodeIdOf(opts.origin);
    if (opts.db === undefined && opts.start === undefined && opts.end === undefined) {
      yield* this.backfillEverything(since, originId);
      return;
    }
    const lo = opts.start ?? MIN_TIME;
    const hi = opts.end ?? MAX_TIME;
    let read = 0;
    for (const db of [...this.catalog.dbs.values()]) {
      if (opts.db !== undefined && db.name !== opts.db) continue;
      for (const m of [...db.measurements.values()]) {
        const fields = [...m.fields.values()];
        for (const series of [...m.series]) {
          for (const field of fields) {
            if (!this.catalog.dbs.has(db.name)) break;
            const record = this.backfillRecord(series, field, this.readRun(series, field, lo, hi, since), since, originId);
            if (record !== null || ++read % SCAN_TICK === 0) yield record;
          }
        }
      }
    }
  }

  /**
   * The whole-store backfill (a twin catching up, refilling a gap or being seeded), read the
   * cheap way: chunks newer than `since` are found by their newest version and sent as they
   * are stored when they have one origin (no decode, no re-encode); hot values go as they are.
   *
   * The generator yields between records while the writer goes on flushing and compacting,
   * so the order matters: hot buffers first, then the chunks listed after that, so a buffer
   * flushed meanwhile is in the list. A listed chunk gone by the time it is read was rewritten
   * (compaction, a delete): its series and field are read again whole at the end.
   */
  private *backfillEverything(since: bigint, originId: number | null): Generator<BackfillRecord | null> {
    const live = (series: SeriesEntry): boolean => this.catalog.dbs.get(series.measurement.db.name) === series.measurement.db;
    let looked = 0;
    for (const b of [...this.live]) {
      // Its fields mostly share times and versions, encoded once. The buffer may take writes
      // between records, so these are matched by value (no row copies shared, see encodeBuffer).
      const shared = new SharedColumns();
      for (let col = 0; col < b.width; col++) {
        if (b.length === 0 || !live(b.series)) break;
        // Only rows the twin lacks are copied: a buffer often holds many it already has.
        const record = this.backfillRecord(b.series, b.fields[col]!, b.snapshot(col, Number(since)), since, originId, shared);
        if (record !== null || ++looked % SCAN_TICK === 0) yield record;
      }
    }
    // In id order, the order they were written, which reads the table front to back.
    const listed = (this.stmts.chunksNewerThan.all([since]) as Array<[number, number, number]>).sort((x, y) => x[0] - y[0]);
    const seriesById = new Map<number, SeriesEntry>();
    for (const db of this.catalog.dbs.values()) for (const series of db.series.values()) seriesById.set(series.id, series);
    const reread = new Map<string, [SeriesEntry, FieldEntry]>();
    for (const [id, seriesId, fieldId] of listed) {
      const series = seriesById.get(seriesId);
      const field = this.catalog.fieldsById.get(fieldId);
      if (series === undefined || field === undefined || !live(series)) {
        if (++looked % SCAN_TICK === 0) yield null;
        continue;
      }
      const row = this.stmts.chunkRowById.get([id]) as
        | [Uint8Array, Uint8Array, Uint8Array, bigint | null, Uint8Array | null, bigint, bigint, bigint, bigint | null]
        | undefined;
      if (row === undefined) {
        reread.set(`${seriesId}:${fieldId}`, [series, field]);
        continue;
      }
      const [times, vals, hlcs, origin, origins, minTime, maxTime, count, maxHlc] = row;
      if (origin !== null && maxHlc !== null) {
        if (originId !== null && Number(origin) !== originId) {
          if (++looked % SCAN_TICK === 0) yield null;
          continue;
        }
        const m = series.measurement;
        const chunk: ChunkColumns = { minTime, maxTime, count: Number(count), times, vals, hlcs, originId: 0, origins: null, maxHlc };
        yield { db: m.db.name, measurement: m.name, seriesKey: series.key, field: field.name, type: field.type, nodes: [this.catalog.nodeName(Number(origin))], chunk };
        continue;
      }
      const run = decodeChunk({ times, vals, hlcs, originId: origin === null ? null : Number(origin), origins }, field.type);
      const record = this.backfillRecord(series, field, run, since, originId);
      if (record !== null || ++looked % SCAN_TICK === 0) yield record;
    }
    for (const [series, field] of reread.values()) {
      if (!live(series) || this.catalog.fieldsById.get(field.id) !== field) continue;
      const record = this.backfillRecord(series, field, this.readRun(series, field, MIN_TIME, MAX_TIME, since), since, originId);
      if (record !== null || ++looked % SCAN_TICK === 0) yield record;
    }
  }

  /** The values of `run` newer than `since` and of `originId` (any when null) as a record, or null if none. */
  private backfillRecord(
    series: SeriesEntry,
    field: FieldEntry,
    run: Run,
    since: bigint,
    originId: number | null,
    shared = new SharedColumns(),
  ): BackfillRecord | null {
    // Clocks are safe integers: compared as doubles, without a bigint per value.
    const clocks = toNumbers(run.hlcs);
    const after = Number(since);
    const n = clocks.length;
    if (n === 0) return null;
    const from = run.origins;
    const wanted = (i: number): boolean => clocks[i]! > after && (originId === null || (typeof from === "number" ? from : from[i]!) === originId);
    // Usually every value is wanted (hot rows the twin lacks): then nothing is copied.
    let first = 0;
    while (first < n && wanted(first)) first++;
    let picked = run;
    if (first < n) {
      const keep: number[] = [];
      for (let i = 0; i < first; i++) keep.push(i);
      for (let i = first + 1; i < n; i++) if (wanted(i)) keep.push(i);
      if (keep.length === 0) return null;
      picked = pickRun(run, keep, field.type);
    }
    // Origins travel as node ids: the twin numbers nodes its own way.
    const nodes: string[] = [];
    const index: number[] = [];
    const local = typeof picked.origins === "number" ? Uint16Array.of(picked.origins) : picked.origins;
    const mapped = new Uint16Array(local.length);
    for (let i = 0; i < local.length; i++) {
      const o = local[i]!;
      let j = index[o];
      if (j === undefined) {
        j = nodes.length;
        nodes.push(this.catalog.nodeName(o));
        index[o] = j;
      }
      mapped[i] = j;
    }
    const origins = typeof picked.origins === "number" ? 0 : compactOrigins(mapped);
    const chunk = encodeChunk({ ...picked, origins }, field.type, shared);
    const m = series.measurement;
    return { db: m.db.name, seriesKey: series.key, measurement: m.name, field: field.name, type: field.type, nodes, chunk };
  }

  /** Tombstones newer than `sinceHlc` (made by `origin`, or by anyone when null), for a backfill. */
  tombstonesSince(sinceHlc: number, origin: string | null): TombstoneRecord[] {
    const since = BigInt(sinceHlc);
    const originId = origin === null ? null : this.nodeIdOf(origin);
    const out: TombstoneRecord[] = [];
    for (const [db, list] of this.tombstones) {
      for (const t of list) {
        if (t.hlc <= since || (originId !== null && t.origin !== originId)) continue;
        out.push({ db, measurement: t.measurement, seriesKey: t.seriesKey, start: String(t.start), end: String(t.end), hlc: String(t.hlc), origin: this.catalog.nodeName(t.origin) });
      }
    }
    return out;
  }

  /**
   * Applies tombstones from the twin's backfill as the deletes and drops they record (same
   * version rule), so what the twin deleted during a gap is deleted here too.
   */
  applyTombstones(records: readonly TombstoneRecord[]): Promise<number> {
    return this.task(() => {
      const frames: CommittedFrame[] = [];
      for (const r of records) {
        const op: SchemaOp =
          r.measurement === null && r.seriesKey === null
            ? { kind: "drop_db", db: r.db }
            : r.seriesKey === null
              ? { kind: "drop_measurement", db: r.db, measurement: r.measurement! }
              : { kind: "delete", db: r.db, seriesKeys: [r.seriesKey], start: BigInt(r.start), end: BigInt(r.end) };
        const hlc = Number(r.hlc);
        this.clock.observe(hlc);
        // Not a logged frame: it only carries the delete's version and origin to the same code.
        const frame: Frame = { origin: r.origin, lsn: 0, hlc, op };
        this.applySchemaToTables(frame, op);
        frames.push({ frame, seq: 0 });
      }
      return { frames, result: frames.length };
    });
  }

  /**
   * Stores backfill records from the twin as chunks (merged with existing data by version on
   * read), and, with `done`, moves the twin's cursor to where its frame stream resumes.
   */
  applyBackfill(twin: TwinIdentity, records: readonly BackfillRecord[], done?: { lsn: Lsn; hlc: number }): Promise<{ stored: number; conflicts: number }> {
    return this.task(() => {
      let stored = 0;
      let conflicts = 0;
      const retyped: FieldEntry[] = [];
      // Rows go in CHUNKS_PER_INSERT at a time (see insertChunkRows), and all before a retype,
      // which rewrites the field's chunks.
      const rows = this.chunkRows();
      for (const r of records) {
        const ids = r.nodes.map((n) => this.nodeIdOf(n));
        // A chunk of one origin with nothing of it buried is stored as it came, only its
        // origin renumbered, and decoded only if something here needs its values: the
        // record's checksum (see wire.ts) vouches for its bytes, and its column headers are
        // checked against its count and type.
        const originOf = (k: number): number => {
          const id = ids[k];
          if (id === undefined) throw new TsdbError("corrupt_frame", `backfill record names origin ${k} of ${ids.length}`);
          return id;
        };
        const single = r.chunk.origins === null ? originOf(r.chunk.originId ?? 0) : null;
        let asReceived = single !== null;
        let run: Run | null = null;
        const values = (): Run => {
          if (run !== null) return run;
          const d = decodeChunk(r.chunk, r.type);
          return (run = { ...d, origins: typeof d.origins === "number" ? originOf(d.origins) : compactOrigins(d.origins.map(originOf)) });
        };
        // Values under a delete are not stored: those need decoding to be found.
        const buried = this.tombstones.has(r.db);
        if (asReceived && !buried) checkChunkHeaders(r.chunk, r.type);
        else values();
        if (buried) {
          const all = values();
          const keep: number[] = [];
          for (let i = 0; i < all.times.length; i++) {
            const o = typeof all.origins === "number" ? all.origins : all.origins[i]!;
            if (!this.buried(r.db, r.measurement, r.seriesKey, all.times[i]!, all.hlcs[i]!, o)) keep.push(i);
          }
          if (keep.length === 0) continue;
          if (keep.length < all.times.length) {
            run = pickRun(all, keep, r.type);
            asReceived = false;
          }
        }
        const db = this.catalog.dbs.get(r.db) ?? this.catalog.createDb(r.db);
        const m = db.measurement(r.measurement);
        // The oldest value stands for the write that gave the field its type on the twin.
        const version = (): FieldVersion => oldestVersion(values(), (o) => this.catalog.nodeName(o));
        let known = m.fields.get(r.field);
        if (known !== undefined && known.type !== r.type) {
          const v = version();
          if (compareFieldVersions(v, known.created) >= 0) {
            conflicts++;
            continue;
          }
          rows.flush();
          retyped.push(this.retype(known, r.type, v));
          known = m.fields.get(r.field)!;
        }
        const field = known ?? this.catalog.createField(m, r.field, r.type, version());
        const series = db.series.get(r.seriesKey) ?? this.catalog.createSeries(db, m, r.seriesKey);
        rows.add(chunkColumns(series.id, field.id, asReceived ? { ...r.chunk, originId: single, origins: null } : encodeChunk(values(), r.type)));
        // Backfilled data usually overlaps what is here already.
        this.compactor.mark(series.id, field.id);
        stored += asReceived ? r.chunk.count : values().times.length;
      }
      rows.flush();
      if (done !== undefined) {
        this.clock.observe(done.hlc);
        this.stmts.setCursor.run([this.nodeIdOf(twin.nodeId), twin.incarnation, done.lsn, done.hlc]);
        this.stmts.repairGaps.run([this.nowMs(), this.nodeIdOf(twin.nodeId), done.lsn]);
      }
      this.typeConflicts += conflicts;
      return { frames: [], result: { stored, conflicts }, retyped };
    });
  }

  /** Records that the twin no longer had frames [from, to] when asked (they will be refilled from storage). */
  recordGap(twin: string, from: Lsn, to: Lsn): Promise<void> {
    return this.task(() => {
      const originId = this.nodeIdOf(twin);
      const open = scalar(this.stmts.openGap, [originId, from, to]);
      if (open === undefined) this.stmts.insertGap.run([originId, from, to, this.nowMs()]);
      return { frames: [], result: undefined };
    });
  }

  /** Gaps recorded for a twin, newest first. */
  gapsFor(twin: string): GapRecord[] {
    return (this.stmts.listGaps.all([this.nodeIdOf(twin)]) as Array<[number, number, number, number | null]>).map(
      ([from, to, detectedAt, repairedAt]) => ({ from, to, detectedAt, repairedAt }),
    );
  }

  /** What the start-up replay did, for /ready. */
  replayStats(): { frames: number; ms: number } {
    return this.replayed;
  }

  /** False once close() has begun. */
  isOpen(): boolean {
    return !this.closed;
  }

  /** The current hybrid logical clock. */
  currentHlc(): number {
    return this.clock.current();
  }

  private noteConflict(db: string, series: string, field: string, time: bigint): void {
    this.conflicts++;
    this.conflictSample = { db, series, field, time: String(time), at_ms: this.nowMs() };
  }

  /**
   * Writes of the same series, field and time from both nodes met while buffered (since
   * start); the newest version won on both. The sample is the latest one.
   */
  conflictStats(): { count: number; sample: Record<string, string | number> | null } {
    return { count: this.conflicts, sample: this.conflictSample };
  }

  /**
   * Digests of a database's canonical export per measurement and time bucket: the number of
   * lines and the sum of their checksums (order-independent). Equal data gives equal digests
   * on both twins; a difference names the bucket to look at or repair.
   */
  async digest(dbName: string, bucketNs: bigint): Promise<Map<string, BucketDigest>> {
    const out = new Map<string, BucketDigest>();
    const db = this.catalog.dbs.get(dbName);
    if (db === undefined) return out;
    // It reads every value: the event loop gets a turn between series, so the node goes on
    // taking writes and serving while it runs (a bucket written meanwhile may then differ).
    const slice = new TimeSlice(READ_SLICE_MS);
    for (const text of this.exportLines(dbName)) {
      this.lastLongReadAt = this.nowMs();
      if (slice.due) await slice.pause();
      let from = 0;
      while (from < text.length) {
        const nl = text.indexOf("\n", from);
        const line = text.slice(from, nl);
        from = nl + 1;
        const space = line.lastIndexOf(" ");
        const time = BigInt(line.slice(space + 1));
        const measurement = splitSeriesKey(line.slice(0, line.indexOf(" "))).measurement;
        const start = time - (((time % bucketNs) + bucketNs) % bucketNs);
        const key = `${measurement}\u0000${start}`;
        let d = out.get(key);
        if (d === undefined) out.set(key, (d = { measurement, start, count: 0, sum: 0 }));
        d.count++;
        d.sum = (d.sum + crc32(line)) % 2 ** 32;
      }
    }
    return out;
  }

  /** Values dropped because their field type clashed with the stored type, since start. */
  typeConflictCount(): number {
    return this.typeConflicts;
  }

  /** Fields the twins wrote with two types that were settled by keeping the older type, since start. */
  settledTypeConflictCount(): number {
    return this.typeConflictsSettled;
  }

  // ---- schema changes ----

  /** A value survives a delete frame when its version is newer than the frame's. */
  private survives(frame: Frame): (time: bigint, hlc: bigint, origin: number) => boolean {
    const h = BigInt(frame.hlc);
    const o = frame.origin === this.nodeId ? this.selfId : this.catalog.nodeId(frame.origin);
    return (_t, hlc, origin) => this.order(hlc, origin, h, o) > 0;
  }

  /** The table side of a schema op, inside the writer's transaction; returns what it touched. */
  private applySchemaToTables(frame: Frame, op: SchemaOp): number {
    this.recordTombstones(frame, op);
    switch (op.kind) {
      case "create_db": {
        const db = this.catalog.dbs.get(op.db) ?? this.catalog.createDb(op.db);
        // A duration set by a newer CREATE DATABASE wins, on both twins.
        const hlc = BigInt(frame.hlc);
        if (op.durationNs !== undefined && hlc > db.retentionHlc) {
          this.stmts.setRetention.run([op.durationNs, hlc, db.id]);
          db.retentionNs = op.durationNs;
          db.retentionHlc = hlc;
        }
        return 1;
      }
      case "drop_db":
      case "drop_measurement":
      case "delete": {
        const db = this.catalog.dbs.get(op.db);
        if (db === undefined) return 0;
        const { series, start, end } = this.scopeOf(db, op);
        const keep = this.survives(frame);
        let touched = 0;
        const emptied = new Map<MeasurementEntry, number>();
        for (const s of series) {
          touched++;
          let remaining = this.rewriteChunks(s, start, end, keep, frame);
          for (const b of s.buffers) {
            for (let i = 0; i < b.length; i++) if (!inRange(b.timeAt(i), start, end) || keep(0n, b.hlcAt(i), b.originAt(i))) remaining++;
          }
          if (remaining === 0) {
            this.stmts.deleteSeriesRow.run([s.id]);
            emptied.set(s.measurement, (emptied.get(s.measurement) ?? 0) + 1);
          }
        }
        // A measurement whose every series went loses its fields too, as in InfluxDB; a dropped
        // database goes when nothing newer than the drop is left in it.
        let left = db.series.size;
        for (const [m, n] of emptied) {
          left -= n;
          if (n === m.series.length) this.stmts.deleteMeasurementFields.run([db.id, m.name]);
        }
        if (op.kind === "drop_db" && left === 0) {
          this.stmts.deleteDbFields.run([db.id]);
          this.stmts.deleteDb.run([db.id]);
        }
        return op.kind === "delete" ? touched : 1;
      }
    }
  }

  /**
   * What a drop or delete covers: its series and time range. Drops are deletes of every
   * series in their scope over all time, so they obey the same version rule: a value written
   * after the drop (on the twin, concurrently) survives it on both boxes.
   */
  private scopeOf(db: DbEntry, op: DropDatabaseOp | DropMeasurementOp | DeleteOp): { series: SeriesEntry[]; start: bigint; end: bigint } {
    if (op.kind === "drop_db") return { series: [...db.series.values()], start: MIN_TIME, end: MAX_TIME };
    if (op.kind === "drop_measurement") return { series: [...(db.measurements.get(op.measurement)?.series ?? [])], start: MIN_TIME, end: MAX_TIME };
    const series: SeriesEntry[] = [];
    for (const key of op.seriesKeys) {
      const s = db.series.get(key);
      if (s !== undefined) series.push(s);
    }
    return { series, start: op.start, end: op.end };
  }

  private rememberTombstone(db: string, t: Tombstone): void {
    let list = this.tombstones.get(db);
    if (list === undefined) this.tombstones.set(db, (list = []));
    list.push(t);
  }

  /** Stores what a drop or delete covers, so older writes arriving later from the twin stay deleted. */
  private recordTombstones(frame: Frame, op: SchemaOp): void {
    const hlc = BigInt(frame.hlc);
    const origin = this.nodeIdOf(frame.origin);
    const add = (measurement: string | null, seriesKey: string | null, start: bigint, end: bigint) => {
      // The same tombstone may come again (replay, a backfill after a gap): keep one.
      const known = this.tombstones.get(op.db)?.some(
        (t) => t.measurement === measurement && t.seriesKey === seriesKey && t.start === start && t.end === end && t.hlc === hlc && t.origin === origin,
      );
      if (known) return;
      this.stmts.insertTombstone.run([op.db, measurement, seriesKey, start, end, hlc, origin]);
      this.rememberTombstone(op.db, { measurement, seriesKey, start, end, hlc, origin });
    };
    if (op.kind === "drop_db") add(null, null, MIN_TIME, MAX_TIME);
    else if (op.kind === "drop_measurement") add(op.measurement, null, MIN_TIME, MAX_TIME);
    else if (op.kind === "delete") for (const key of op.seriesKeys) add(null, key, op.start, op.end);
  }

  /** True when a tombstone newer than the given version covers this value. */
  private buried(db: string, measurement: string, seriesKey: string, time: bigint, hlc: bigint, origin: number): boolean {
    const list = this.tombstones.get(db);
    if (list === undefined) return false;
    for (const t of list) {
      if (t.measurement !== null && t.measurement !== measurement) continue;
      if (t.seriesKey !== null && t.seriesKey !== seriesKey) continue;
      if (time < t.start || time > t.end) continue;
      if (this.order(hlc, origin, t.hlc, t.origin) < 0) return true;
    }
    return false;
  }

  /** Rewrites one chunk keeping only the values `keep` accepts (removes it when none is left); returns how many it kept. */
  private trimChunk(id: number, seriesId: number, field: FieldEntry, keep: (t: bigint, hlc: bigint, origin: number) => boolean): number {
    const row = this.stmts.chunkById.get([id]) as [Uint8Array, Uint8Array, Uint8Array, number | null, Uint8Array | null] | undefined;
    if (row === undefined) return 0;
    const run = decodeChunk({ times: row[0], vals: row[1], hlcs: row[2], originId: row[3], origins: row[4] }, field.type);
    const kept: number[] = [];
    for (let i = 0; i < run.times.length; i++) {
      const o = typeof run.origins === "number" ? run.origins : run.origins[i]!;
      if (keep(run.times[i]!, run.hlcs[i]!, o)) kept.push(i);
    }
    this.chunkCount -= this.stmts.deleteChunk.run([id]).changes;
    if (kept.length > 0) this.insertChunk(seriesId, field.id, encodeChunk(pickRun(run, kept, field.type), field.type));
    return kept.length;
  }

  /** Rewrites the chunks of a series that overlap [start, end] without the deleted values; returns the values left in all its chunks. */
  private rewriteChunks(series: SeriesEntry, start: bigint, end: bigint, keep: (t: bigint, h: bigint, o: number) => boolean, frame: Frame): number {
    let left = 0;
    const hlc = BigInt(frame.hlc);
    const rows = this.stmts.chunkMetaOf.all([series.id]) as Array<[bigint, bigint, bigint, bigint, bigint, bigint | null]>;
    for (const [id, fieldId, minTime, maxTime, count, maxHlc] of rows) {
      if (maxTime < start || minTime > end) {
        left += Number(count);
        continue;
      }
      // Wholly inside the range and wholly older than the delete: gone without decoding it.
      if (minTime >= start && maxTime <= end && maxHlc !== null && maxHlc < hlc) {
        this.chunkCount -= this.stmts.deleteChunk.run([id]).changes;
        continue;
      }
      const field = this.catalog.fieldsById.get(Number(fieldId));
      if (field === undefined) continue;
      left += this.trimChunk(Number(id), series.id, field, (t, h, o) => !inRange(t, start, end) || keep(t, h, o));
    }
    return left;
  }

  /** The in-memory side of a schema op: after its commit, and again on replay. */
  private applySchemaToMemory(frame: Frame, op: SchemaOp): void {
    const forgetBuffers = (series: Iterable<SeriesEntry>) => {
      for (const s of series) {
        for (const b of s.buffers) this.dropHot(b);
        s.buffers.length = 0;
      }
    };
    if (op.kind === "create_db") return;
    const db = this.catalog.dbs.get(op.db);
    if (db === undefined) return;
    const { series, start, end } = this.scopeOf(db, op);
    const keep = this.survives(frame);
    for (const s of series) {
      for (const b of s.buffers) this.retainHot(b, (t, h, o) => !inRange(t, start, end) || keep(t, h, o));
      if (!this.seriesRowExists(s.id)) {
        forgetBuffers([s]);
        this.catalog.forgetSeries(s);
        this.compactor.forgetSeries(s.id);
      }
    }
    if (op.kind === "drop_db" && db.series.size === 0) this.catalog.forgetDb(db);
  }

  private seriesRowExists(id: number): boolean {
    return scalar(this.stmts.seriesRow, [id]) !== undefined;
  }

  // ---- flush ----

  /** Bytes the hot buffers may hold before the oldest are flushed early (see EngineConfig.hotMemoryBytes). */
  private hotCap(): number {
    return this.engine.hotMemoryBytes + this.engine.hotMemoryPerSeriesBytes * this.live.size;
  }

  private flushWanted(): boolean {
    if (this.full.size > 0) return true;
    if (this.hotBytes > this.hotCap()) return true;
    const now = this.nowMs();
    if (now - this.lastAgeScan >= AGE_SCAN_MS) {
      this.lastAgeScan = now;
      // The oldest buffer is the first in `live` (see pickFlush).
      for (const b of this.live) return now - b.firstAt >= this.engine.flushAgeMs;
    }
    return false;
  }

  /** Picks the buffers to flush now: full ones, then old ones, then the largest while over the memory cap. */
  private pickFlush(all: boolean): HotBuffer[] {
    if (all) return [...this.live];
    // `live` holds buffers in the order they got their first unflushed value (a buffer joins
    // when it goes from empty to non-empty), so the oldest come first: the age scan can stop
    // at the first young one, and over the memory cap the oldest go first, which also moves
    // the flush checkpoint (and so frame trimming) along fastest. No sort, no full scan.
    // A step is time-boxed and writes far fewer than PICK_PER_STEP: picking every one of a
    // million small buffers again for each step cost more than flushing them.
    const picked = new Set<HotBuffer>();
    for (const b of this.full) {
      if (picked.size >= PICK_PER_STEP) return [...picked];
      picked.add(b);
    }
    const now = this.nowMs();
    for (const b of this.live) {
      if (now - b.firstAt < this.engine.flushAgeMs || picked.size >= PICK_PER_STEP) break;
      picked.add(b);
    }
    let bytes = this.hotBytes;
    const cap = this.hotCap();
    if (bytes > cap) {
      for (const b of picked) bytes -= b.bytes;
      const target = cap * 0.75;
      for (const b of this.live) {
        if (bytes <= target || picked.size >= PICK_PER_STEP) break;
        if (picked.has(b)) continue;
        picked.add(b);
        bytes -= b.bytes;
      }
    }
    return [...picked];
  }

  /** Writes chunks for up to `budgetMs` of picked buffers in one transaction, then moves the checkpoint. */
  private flushStep(budgetMs: number, all: boolean): void {
    const picked = this.pickFlush(all);
    if (picked.length === 0 && !all) return;
    const started = performance.now();
    const done: HotBuffer[] = [];
    const rows: ChunkRow[] = [];
    this.stmts.begin.run();
    try {
      for (const b of picked) {
        if (b.length > 0) this.encodeBuffer(b, rows);
        done.push(b);
        // Rows are inserted in batches: holding a whole step's (a million at shutdown) would
        // only grow the heap, and a batch is plenty to fill leaves from.
        if (rows.length >= INSERT_BATCH) this.insertFlushed(rows.splice(0));
        // The rows still to insert count against the budget too (see insertFlushed).
        if (performance.now() - started + rows.length * this.insertMsPerRow >= budgetMs) break;
      }
      this.insertFlushed(rows);
      const checkpoint = this.checkpointAfter(done);
      if (checkpoint > this.checkpointSeq) this.stmts.setMeta.run(["checkpoint_seq", String(checkpoint)]);
      this.trimFrames(Math.max(checkpoint, this.checkpointSeq), all);
      this.stmts.commit.run();
      this.checkpointSeq = Math.max(this.checkpointSeq, checkpoint);
    } catch (e) {
      try {
        this.stmts.rollback.run();
      } catch {
        // already rolled back
      }
      // The values stay in their hot buffers and frames; the next step tries again.
      this.recountChunks();
      this.log.error("flush failed", { error: String(e) });
      return;
    }
    for (const b of done) this.dropHot(b);
    this.vacuumWanted = true;
    this.observe.flush?.((performance.now() - started) / 1000);
    if (this.compactor.hasWork()) this.schedule();
  }

  /** Encodes a buffer's values as chunk rows, to be inserted with the rest of its flush step. */
  private encodeBuffer(b: HotBuffer, rows: ChunkRow[]): void {
    const size = this.engine.chunkPoints;
    // The fields of a series mostly share their times and versions: copied and encoded once.
    const rowCopies: RowCopies = {};
    const shared = new SharedColumns();
    for (let col = 0; col < b.width; col++) {
      const field = b.fields[col]!;
      const values = b.snapshot(col, Number.NEGATIVE_INFINITY, rowCopies);
      if (values.times.length === 0) continue;
      // Buffers are kept in time order; only repeated timestamps need the version merge.
      const run = b.hasDuplicates ? mergeRuns([values], field.type, this.order) : values;
      // A buffer that grew past the chunk size while waiting becomes several full chunks.
      for (const e of encodeRows(run, field.type, size, this.fit, shared)) rows.push({ seriesId: b.series.id, fieldId: field.id, ...e });
      // A chunk flushed early (memory cap, age, shutdown) is worth merging with its neighbours.
      if (run.times.length % size !== 0) this.compactor.mark(b.series.id, field.id);
    }
  }

  private insertFlushed(rows: readonly ChunkRow[]): void {
    const started = performance.now();
    this.insertRows(rows);
    this.chunksWritten += rows.length;
    // A moving average of what a row costs to insert, so a flush step can stop encoding while
    // the rows it holds still fit its budget (they are inserted at its end).
    if (rows.length >= 64) this.insertMsPerRow = 0.8 * this.insertMsPerRow + (0.2 * (performance.now() - started)) / rows.length;
  }

  /**
   * Inserts new rows by field, then series, then time, so a query of one field over many
   * series (a Grafana panel) reads neighbouring rows, with small moves and cuts that fill
   * leaf pages (see PageFit.fillLeaves).
   */
  private insertRows(rows: readonly ChunkRow[]): void {
    const sorted = [...rows].sort((a, b) => a.fieldId - b.fieldId || a.seriesId - b.seriesId || (a.c.minTime < b.c.minTime ? -1 : 1));
    // Grouped inserts keep the order, so each row gets the id and place fillLeaves counted on.
    const grouped = this.chunkRows();
    this.fit.fillLeaves(
      sorted.map((r) => insertable(r)),
      (r) => r.bytes,
      this.chunksLeaf.free(),
      Number(scalar(this.stmts.nextChunkId)),
      (r, maxBytes) => this.cutRow(r, maxBytes),
      (r) => grouped.add(r.columns),
    );
    grouped.flush();
  }

  /**
   * Cuts a row in two at a time whose first part's record is at most `maxBytes`, or null when
   * no cut is found. Sizes grow about in proportion to the values kept: the cut is aimed a
   * little under, and moved back if the encoded part is still too large.
   */
  private cutRow(r: Insertable, maxBytes: number): readonly [Insertable, Insertable] | null {
    const { seriesId, fieldId, c, run } = r.row;
    const type = this.catalog.fieldsById.get(fieldId)?.type;
    if (type === undefined || c.count < 2) return null;
    let ratio = (maxBytes - ROW_OVERHEAD) / Math.max(r.bytes - ROW_OVERHEAD, 1);
    for (let tries = 0; tries < 3; tries++) {
      const k = Math.min(c.count - 1, Math.floor(c.count * ratio * CUT_AIM));
      if (k < 1) return null;
      const head = sliceIndex(run, 0, k);
      const first = insertable({ seriesId, fieldId, c: encodeChunk(head, type), run: head }, true);
      if (first.bytes <= maxBytes) {
        this.rowsCut++;
        const rest = sliceIndex(run, k, c.count);
        return [first, insertable({ seriesId, fieldId, c: encodeChunk(rest, type), run: rest })];
      }
      ratio *= (maxBytes - ROW_OVERHEAD) / Math.max(first.bytes - ROW_OVERHEAD, 1);
    }
    return null;
  }

  /**
   * Drops frames nothing needs any more. Replay needs none at or before the checkpoint. The
   * twin needs own frames for `frameRetentionMs` and up to `frameRetentionBytes`; a twin that
   * falls further behind is refilled from storage (a recorded gap), never silently skipped.
   */
  private trimFrames(checkpoint: number, now: boolean): void {
    const paired = this.engine.frameRetentionMs > 0;
    if (!paired) this.stmts.trimFrames.run([checkpoint]);
    const nowMs = this.nowMs();
    if (!now && nowMs - this.lastTrim < TRIM_EVERY_MS) return;
    this.lastTrim = nowMs;
    if (paired) this.trimRetainedFrames(checkpoint, nowMs);
    this.stmts.trimSchemaFrames.run([this.lastLsn + 1, this.selfId]);
  }

  private trimRetainedFrames(checkpoint: number, nowMs: number): void {
    this.stmts.trimTwinFrames.run([checkpoint, this.selfId]);
    const cutoff = (nowMs - this.engine.frameRetentionMs) * 1024;
    this.stmts.trimOwnFramesBefore.run([checkpoint, this.selfId, cutoff]);
    const total = Number(scalar(this.stmts.ownFrameBytes, [this.selfId]) ?? 0);
    if (total > this.engine.frameRetentionBytes) {
      let excess = total - this.engine.frameRetentionBytes;
      let upTo = -1;
      for (const [lsn, size] of this.stmts.ownFrameSizes.iterate([this.selfId, checkpoint]) as Iterable<[number, number]>) {
        upTo = lsn;
        excess -= size;
        if (excess <= 0) break;
      }
      if (upTo >= 0) this.stmts.trimOwnFramesUpTo.run([checkpoint, this.selfId, upTo]);
    }
  }

  /** After a rollback the running count may be off: read it again. */
  private recountChunks(): void {
    this.chunkCount = Number(scalar(this.sqlite.prepare("SELECT COUNT(*) FROM chunks").raw()));
  }

  private insertChunk(seriesId: number, fieldId: number, c: ChunkColumns): void {
    this.insertColumns(chunkColumns(seriesId, fieldId, c));
  }

  private insertColumns(columns: ChunkValues): void {
    this.stmts.insertChunk.run(columns);
    this.chunkCount++;
  }

  /** Rows to insert CHUNKS_PER_INSERT at a time; flush() inserts the rest. */
  private chunkRows(): ChunkRows {
    return new ChunkRows((values, count) => this.insertChunkRows(values, count));
  }

  /** Inserts `count` rows given as their columns one after the other (CHUNKS_PER_INSERT in one statement). */
  private insertChunkRows(values: ChunkValues, count: number): void {
    if (count === CHUNKS_PER_INSERT) {
      this.stmts.insertChunks.run(values);
      this.chunkCount += count;
      return;
    }
    const width = CHUNK_COLUMNS.length;
    for (let i = 0; i < count; i++) this.insertColumns(values.slice(i * width, (i + 1) * width));
  }

  /** The newest frame sequence whose values are all in chunks once `flushed` are written. */
  private checkpointAfter(flushed: readonly HotBuffer[]): number {
    const skip = new Set(flushed);
    let oldest = Number.POSITIVE_INFINITY;
    for (const b of this.live) if (!skip.has(b) && b.firstSeq < oldest) oldest = b.firstSeq;
    return oldest === Number.POSITIVE_INFINITY ? this.lastSeq : oldest - 1;
  }

  /** Gives free pages back to the file system once they are a large part of the file. */
  private maybeVacuum(): void {
    const free = Number(scalar(this.stmts.freePages));
    const total = Number(scalar(this.stmts.pageCount));
    if (free > 1024 && free * 4 > total) this.sqlite.exec("PRAGMA incremental_vacuum");
  }

  // ---- open ----

  private inTransaction<T>(fn: () => T): T {
    this.catalog.begin();
    this.stmts.begin.run();
    try {
      const out = fn();
      this.stmts.commit.run();
      return out;
    } catch (e) {
      this.stmts.rollback.run();
      this.catalog.rollback();
      throw e;
    }
  }

  private meta(key: string): string | undefined {
    return scalar(this.stmts.getMeta, [key]) as string | undefined;
  }

  /** Records this node's id on first open; refuses a data directory that belongs to another node. */
  private claimIdentity(wanted: string | null): {
    nodeId: string;
    incarnation: string;
    lastLsn: number;
    checkpointSeq: number;
    lastHlc: number;
  } {
    return this.inTransaction(() => {
      const stored = this.meta("node_id");
      const nodeId = wanted ?? stored;
      if (nodeId === undefined) throw new TsdbError("identity", "this data directory holds no store yet");
      if (stored !== undefined && stored !== nodeId) {
        throw new TsdbError(
          "identity",
          `this data directory belongs to node "${stored}"; refusing to start as "${nodeId}" (start with --node-id ${stored}, or use another --data directory)`,
        );
      }
      if (stored === undefined) {
        this.stmts.setMeta.run(["node_id", nodeId]);
        this.stmts.setMeta.run(["incarnation", randomUUID()]);
        this.stmts.setMeta.run(["last_lsn", "0"]);
        this.stmts.setMeta.run(["checkpoint_seq", "0"]);
      }
      const lastHlc = Number(scalar(this.sqlite.prepare("SELECT COALESCE(MAX(hlc), 0) FROM frames").raw()));
      return {
        nodeId,
        incarnation: this.meta("incarnation")!,
        lastLsn: Number(this.meta("last_lsn")),
        checkpointSeq: Number(this.meta("checkpoint_seq")),
        lastHlc,
      };
    });
  }

  /** Replays the frames committed after the flush checkpoint into the hot buffers. */
  private recover(): void {
    const started = performance.now();
    let replayed = 0;
    const now = this.nowMs();
    for (const [seq, bytes] of this.stmts.framesAfter.iterate([this.checkpointSeq]) as Iterable<[number, Uint8Array]>) {
      const frame = decodeFrame(bytes);
      this.clock.observe(frame.hlc);
      this.lastSeq = seq;
      this.applyFrame(frame, seq, now);
      replayed++;
    }
    this.lastSeq = Math.max(this.lastSeq, Number(scalar(this.stmts.maxSeq)), this.checkpointSeq);
    this.replayed = { frames: replayed, ms: Math.round(performance.now() - started) };
    // Leftover small chunks from an earlier run are compacted in idle time from the start.
    if (this.compactor.hasWork()) this.schedule();
    if (replayed > 0) {
      this.log.info("replayed frames after the flush checkpoint", {
        frames: replayed,
        values: this.hotValues,
        ms: Math.round(performance.now() - started),
      });
    }
  }
}

/**
 * Takes the data directory for this process. A lock left by a process that is gone (killed
 * with SIGKILL, power loss) is taken over; one held by a live process is refused.
 */
function lockDataDir(dir: string): () => void {
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      const pid = Number(readFileSync(file, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new TsdbError("identity", `data directory ${dir} is in use by process ${pid}`);
      }
      unlinkSync(file);
    }
  }
  throw new TsdbError("identity", `cannot lock data directory ${dir}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

function inRange(t: bigint, start: bigint, end: bigint): boolean {
  return t >= start && t <= end;
}

/** The values of a run at the given indexes. */
function pickRun(run: Run, idx: readonly number[], type: FieldType): Run {
  const n = idx.length;
  const times = pickWords(run.times, idx);
  const hlcs = pickWords(run.hlcs, idx);
  let values: Values;
  if (run.values instanceof Float64Array || run.values instanceof BigInt64Array || run.values instanceof BigUint64Array) {
    values = pickWords(run.values, idx);
  } else {
    values = newValues(type, n);
    for (let j = 0; j < n; j++) (values as unknown as FieldValue[])[j] = run.values[idx[j]!]!;
  }
  if (typeof run.origins === "number") return { times, values, hlcs, origins: run.origins };
  const origins = new Uint16Array(n);
  for (let j = 0; j < n; j++) origins[j] = run.origins[idx[j]!]!;
  return { times, values, hlcs, origins: compactOrigins(origins) };
}

/** The elements of a 64-bit array at the given indexes, copied as 32-bit words (no bigint per value). */
function pickWords<T extends BigInt64Array | BigUint64Array | Float64Array>(a: T, idx: readonly number[]): T {
  const n = idx.length;
  const bytes = new ArrayBuffer(n * 8);
  const from = new Uint32Array(a.buffer, a.byteOffset, a.length * 2);
  const to = new Uint32Array(bytes);
  for (let j = 0; j < n; j++) {
    const i = idx[j]!;
    to[2 * j] = from[2 * i]!;
    to[2 * j + 1] = from[2 * i + 1]!;
  }
  return new (a.constructor as new (b: ArrayBuffer) => T)(bytes);
}

/** The first column of the first row of a raw-mode statement (libsql's `get` ignores pluck). */
function scalar(stmt: { get(params?: unknown[]): unknown }, params: unknown[] = []): unknown {
  return (stmt.get(params) as unknown[] | undefined)?.[0];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The oldest version among a run's values (a non-empty run). */
function oldestVersion(run: Run, nodeName: (id: number) => string): FieldVersion {
  let hlc = run.hlcs[0]!;
  let by = nodeName(typeof run.origins === "number" ? run.origins : run.origins[0]!);
  for (let i = 1; i < run.times.length; i++) {
    const h = run.hlcs[i]!;
    if (h > hlc) continue;
    const name = nodeName(typeof run.origins === "number" ? run.origins : run.origins[i]!);
    if (h < hlc || name < by) {
      hlc = h;
      by = name;
    }
  }
  return { hlc: Number(hlc), by };
}

/**
 * The chunks a whole-store backfill lists: those that may hold versions newer than a bound,
 * and those written before chunks kept their newest version (max_hlc NULL). Two ranges of
 * chunks_by_hlc: asked with an OR of the two, or in id order, SQLite read every row of the
 * table instead, a whole store's chunks for a twin a few minutes behind.
 */
export const CHUNKS_NEWER_THAN_SQL =
  "SELECT id, series_id, field_id FROM chunks WHERE max_hlc > ? UNION ALL SELECT id, series_id, field_id FROM chunks WHERE max_hlc IS NULL";

/** A chunk row with its columns in table order and its record's size. */
interface Insertable {
  readonly row: ChunkRow;
  readonly columns: Array<number | bigint | Uint8Array | null>;
  readonly bytes: number;
}

/** `continued`: the row was cut to fill a leaf, and its values continue in the next row. */
function insertable(row: ChunkRow, continued = false): Insertable {
  const columns = chunkColumns(row.seriesId, row.fieldId, row.c, continued);
  // The rowid is stored as NULL in the record.
  return { row, columns, bytes: recordBytes([null, ...columns]) };
}

/** Chunk rows' column values (see chunkColumns), one row's after another's. */
type ChunkValues = Array<number | bigint | Uint8Array | null>;

/** The columns chunkColumns gives, in its order: every chunk column but the id. */
const CHUNK_COLUMNS = ["series_id", "field_id", "min_time", "max_time", "count", "times", "vals", "hlcs", "origin_id", "origins", "max_hlc", "continued"];

/** A chunk row's columns after its id, in table order. */
function chunkColumns(seriesId: number, fieldId: number, c: ChunkColumns, continued = false): ChunkValues {
  return [seriesId, fieldId, c.minTime, c.maxTime, c.count, c.times, c.vals, c.hlcs, c.originId, c.origins, c.maxHlc, continued ? 1 : null];
}

/** The INSERT of `rows` chunk rows, each given as chunkColumns gives them. */
function insertChunksSql(rows: number): string {
  const row = `(${CHUNK_COLUMNS.map(() => "?").join(", ")})`;
  return `INSERT INTO chunks (${CHUNK_COLUMNS.join(", ")}) VALUES ${Array<string>(rows).fill(row).join(", ")}`;
}
/**
 * Chunk rows stored by one INSERT where many come at once (a flush, a compaction step, a
 * twin's backfill): a statement per row cost about a third more per row in a probe of 60,000
 * small chunks.
 */
const CHUNKS_PER_INSERT = 16;

/** Collects chunk rows and hands them on CHUNKS_PER_INSERT at a time, and the rest on flush(). */
class ChunkRows {
  private values: ChunkValues = [];
  private count = 0;

  constructor(private readonly insert: (values: ChunkValues, count: number) => void) {}

  add(columns: ChunkValues): void {
    for (const v of columns) this.values.push(v);
    if (++this.count === CHUNKS_PER_INSERT) this.flush();
  }

  flush(): void {
    if (this.count === 0) return;
    const [values, count] = [this.values, this.count];
    this.values = [];
    this.count = 0;
    this.insert(values, count);
  }
}

/**
 * The field entries of one batch's lines, by measurement and place in the line: a batch's
 * lines repeat their field keys (as the same strings), so a key found where the last line of
 * its measurement had it costs a comparison, not a map lookup. Lives for one pass over one
 * batch, while no field is removed from the catalogue; fields not found are not kept (the
 * pass may create them), and a measurement whose field is retyped is forgotten (a retype
 * makes a new entry).
 */
class LineFields {
  private readonly byMeasurement = new Map<MeasurementEntry, KnownFields>();

  of(m: MeasurementEntry): KnownFields {
    let known = this.byMeasurement.get(m);
    if (known === undefined) this.byMeasurement.set(m, (known = new KnownFields(m)));
    return known;
  }

  /** Drops what is known of `m`'s fields (one was given a new entry). */
  forget(m: MeasurementEntry): void {
    this.byMeasurement.delete(m);
  }
}

class KnownFields {
  private readonly keys: string[] = [];
  private readonly entries: FieldEntry[] = [];

  constructor(private readonly m: MeasurementEntry) {}

  /** The field `key`, the `k`th of its line. */
  field(k: number, key: string): FieldEntry | undefined {
    if (this.keys[k] === key) return this.entries[k];
    const entry = this.m.fields.get(key);
    if (entry !== undefined) {
      this.keys[k] = key;
      this.entries[k] = entry;
    }
    return entry;
  }
}
