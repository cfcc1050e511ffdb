/**
 * Compaction: rewrites the chunks of one series and field that overlap (late or re-sent data)
 * or are too small to compress well (flushed early under memory pressure) into full,
 * time-ordered chunks holding one value per timestamp (the newest version, the same rule
 * reads apply). The caller runs each step inside one transaction, so a crash at any moment
 * leaves either the old chunks or the new ones, never both and never neither.
 *
 * Small chunks are merged with neighbours of the same writer only (one origin, or mixed with
 * mixed; overlapping chunks are merged whoever wrote them). A chunk of one origin goes to a
 * catching-up twin as it is stored, while one that mixes origins is decoded, filtered and
 * encoded again on every catch-up. A few points of the twin merged into a node's own later
 * chunks would make them mixed, and a catch-up of them several times dearer.
 */
import type { FieldType } from "../lineprotocol/types.ts";
import { decodeChunk, encodeRows, type ChunkRow } from "./chunk.ts";
import { INSERT_BATCH, ROW_OVERHEAD, type PageFit } from "./pagefit.ts";
import { mergeRuns, type Run, type VersionOrder } from "./run.ts";
import type { Sqlite } from "./sqlite.ts";

/** What compaction needs from the store. */
export interface CompactionHost {
  readonly sqlite: Sqlite;
  readonly order: VersionOrder;
  readonly chunkPoints: number;
  readonly fit: PageFit;
  fieldType(fieldId: number): FieldType | undefined;
  /** Inserts a step's new rows (in an order of its choosing). */
  insertRows(rows: readonly ChunkRow[]): void;
  /** Called with the number of chunk rows deleted. */
  chunksDeleted(n: number): void;
}

/** At most this many chunks, and this many full chunks' worth of values, are merged in one go. */
const MAX_GROUP = 64;
const MAX_GROUP_VALUES = 8;

interface ChunkMeta {
  readonly id: number;
  readonly min: bigint;
  readonly max: bigint;
  readonly count: number;
  /** The bytes of its columns. */
  readonly bytes: number;
  /** Cut to fill a leaf: its values continue in the next row of its series and field. */
  readonly continued: boolean;
  /** The one origin of its values, or MIXED. */
  readonly origin: number;
}

/** `origin` of a chunk (or group) whose values come from more than one node. */
const MIXED = -1;

/** A chunk, or a chunk cut to fill a leaf with the row it continues in, ordered by start. */
interface Unit {
  readonly metas: readonly ChunkMeta[];
  readonly min: bigint;
  readonly max: bigint;
  readonly count: number;
  readonly bytes: number;
  readonly origin: number;
}

function units(metas: readonly ChunkMeta[]): Unit[] {
  const out: Unit[] = [];
  for (let i = 0; i < metas.length; i++) {
    const m = metas[i]!;
    const next = metas[i + 1];
    if (m.continued && next !== undefined && next.min > m.max) {
      const origin = m.origin === next.origin ? m.origin : MIXED;
      out.push({ metas: [m, next], min: m.min, max: next.max, count: m.count + next.count, bytes: m.bytes + next.bytes, origin });
      i++;
    } else out.push({ metas: [m], min: m.min, max: m.max, count: m.count, bytes: m.bytes, origin: m.origin });
  }
  return out;
}

/** Meta key of "last chunk id:chunk size" as of the last time nothing was left to compact. */
const MARK_KEY = "compacted_through";

export class Compactor {
  /** Series/field pairs that may need compaction: field ids by series id. */
  private readonly pending = new Map<number, Set<number>>();
  private pairs = 0;
  private readonly listChunks;
  private readonly readChunk;
  private readonly deleteChunk;
  private readonly getMark;
  private readonly setMark;
  private readonly lastChunkId;
  /** Chunks rewritten and written since start (for stats). */
  rewritten = 0;
  written = 0;

  constructor(private readonly host: CompactionHost) {
    const db = host.sqlite;
    this.listChunks = db
      // length() of a blob reads only the record header, not the overflow pages.
      .prepare(
        "SELECT id, min_time, max_time, count, length(times) + length(vals) + length(hlcs) + ifnull(length(origins), 0), continued, origin_id FROM chunks WHERE series_id = ? AND field_id = ? ORDER BY min_time, id",
      )
      .safeIntegers(true)
      .raw();
    this.readChunk = db.prepare("SELECT times, vals, hlcs, origin_id, origins FROM chunks WHERE id = ?").raw();
    this.deleteChunk = db.prepare("DELETE FROM chunks WHERE id = ?");
    this.getMark = db.prepare(`SELECT value FROM meta WHERE key = '${MARK_KEY}'`).raw();
    this.setMark = db.prepare(`INSERT INTO meta (key, value) VALUES ('${MARK_KEY}', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
    this.lastChunkId = db.prepare("SELECT MAX(id) FROM chunks").raw();
  }

  /** Notes that every chunk there is now was looked at, for the chunk size in use (see loadCandidates). */
  private saveMark(): void {
    const [last] = this.lastChunkId.get() as [number | null];
    this.setMark.run([`${last ?? 0}:${this.host.chunkPoints}`]);
  }

  /**
   * Finds pairs an earlier run left to compact (at open). Where compaction last caught up with
   * every chunk, at this chunk size, only the pairs of chunks written after that are looked at,
   * found by id; else every pair, which reads the whole table (a second or more for a few
   * hundred megabytes). A chunk given an id at or below the mark (ids are reused only once
   * every chunk above was deleted) waits until its pair is written again.
   */
  loadCandidates(): void {
    const mark = /^(\d+):(\d+)$/.exec(String((this.getMark.get() as [string] | undefined)?.[0] ?? ""));
    const rows = (
      mark !== null && Number(mark[2]) === this.host.chunkPoints
        ? this.host.sqlite.prepare("SELECT DISTINCT series_id, field_id FROM chunks WHERE id > ?").raw().all([Number(mark[1])])
        : this.host.sqlite
            .prepare("SELECT series_id, field_id FROM chunks GROUP BY series_id, field_id HAVING COUNT(*) > 1 AND MIN(count) < ?")
            .raw()
            .all([this.host.chunkPoints])
    ) as Array<[number, number]>;
    for (const [s, f] of rows) this.mark(s, f);
    if (this.pairs === 0) this.saveMark();
  }

  /** Notes that a series/field got a chunk that may overlap or be small. */
  mark(seriesId: number, fieldId: number): void {
    let fields = this.pending.get(seriesId);
    if (fields === undefined) this.pending.set(seriesId, (fields = new Set()));
    if (fields.has(fieldId)) return;
    fields.add(fieldId);
    this.pairs++;
  }

  /** Forgets pairs of series that are gone (their chunks were deleted). */
  forgetSeries(seriesId: number): void {
    this.pairs -= this.pending.get(seriesId)?.size ?? 0;
    this.pending.delete(seriesId);
  }

  hasWork(): boolean {
    return this.pairs > 0;
  }

  /** Series and fields waiting to be compacted. */
  pendingCount(): number {
    return this.pairs;
  }

  /**
   * Compacts pending pairs until `budgetMs` has passed (at least one pair). Must run inside a
   * transaction; returns the pairs done, which the caller forgets only after its commit.
   */
  step(budgetMs: number): Array<[number, number]> {
    const started = performance.now();
    const done: Array<[number, number]> = [];
    const rows: ChunkRow[] = [];
    pairs: for (const [seriesId, fields] of this.pending) {
      for (const fieldId of fields) {
        this.compactPair(seriesId, fieldId, rows);
        done.push([seriesId, fieldId]);
        // A step without a budget (compactAll) may touch every pair: insert as it goes.
        if (rows.length >= INSERT_BATCH) this.insert(rows.splice(0));
        if (performance.now() - started >= budgetMs) break pairs;
      }
    }
    this.insert(rows);
    // In the step's transaction: the mark moves with the chunks it vouches for.
    if (done.length === this.pairs) this.saveMark();
    return done;
  }

  private insert(rows: readonly ChunkRow[]): void {
    this.host.insertRows(rows);
    this.written += rows.length;
  }

  /** Removes pairs from the pending set (after the transaction that compacted them committed). */
  settle(done: ReadonlyArray<readonly [number, number]>): void {
    for (const [seriesId, fieldId] of done) {
      const fields = this.pending.get(seriesId);
      if (fields === undefined || !fields.delete(fieldId)) continue;
      this.pairs--;
      if (fields.size === 0) this.pending.delete(seriesId);
    }
  }

  private compactPair(seriesId: number, fieldId: number, rows: ChunkRow[]): void {
    const type = this.host.fieldType(fieldId);
    if (type === undefined) return;
    const metas = (this.listChunks.all([seriesId, fieldId]) as Array<[bigint, bigint, bigint, bigint, bigint, bigint | null, bigint | null]>).map(
      ([id, min, max, count, bytes, continued, origin]): ChunkMeta => ({
        id: Number(id),
        min,
        max,
        count: Number(count),
        bytes: Number(bytes),
        continued: continued === 1n,
        origin: origin === null ? MIXED : Number(origin),
      }),
    );
    for (const group of this.groups(metas)) this.merge(seriesId, fieldId, type, group, rows);
  }

  /**
   * Groups chunks (ordered by start) worth merging: a chunk that overlaps the group's range
   * must join it; a neighbour of the group's writer joins while it or the group's last chunk
   * is small, up to a bounded size. A group is merged only when it overlaps or when re-splitting it into full
   * chunks, cut to fit pages as a flush cuts them, leaves fewer chunks than it has. A row cut
   * to fill a leaf and the row it continues in count as one chunk here: merging them back
   * would only have them cut again.
   */
  private groups(metas: readonly ChunkMeta[]): ChunkMeta[][] {
    const full = this.host.chunkPoints;
    const out: ChunkMeta[][] = [];
    let group: Unit[] = [];
    let max = 0n;
    let count = 0;
    let bytes = 0;
    let origin = MIXED;
    let overlapped = false;
    const close = () => {
      if (group.length > 1 && (overlapped || this.rowsFor(count, bytes) < group.length)) out.push(group.flatMap((u) => u.metas));
    };
    for (const u of units(metas)) {
      const last = group[group.length - 1];
      const overlaps = last !== undefined && u.min <= max;
      const small = last !== undefined && u.origin === origin && (last.count < full || u.count < full) && count + u.count <= MAX_GROUP_VALUES * full;
      if (last !== undefined && (overlaps || small) && group.length < MAX_GROUP) {
        group.push(u);
        if (u.max > max) max = u.max;
        count += u.count;
        bytes += u.bytes;
        if (u.origin !== origin) origin = MIXED;
        overlapped ||= overlaps;
      } else {
        close();
        group = [u];
        max = u.max;
        count = u.count;
        bytes = u.bytes;
        origin = u.origin;
        overlapped = false;
      }
    }
    close();
    return out;
  }

  /** The rows `encodeRows` would cut `count` values of about `bytes` into. */
  private rowsFor(count: number, bytes: number): number {
    const full = this.host.chunkPoints;
    let rows = 0;
    for (let from = 0; from < count; from += full) {
      const n = Math.min(full, count - from);
      rows += this.host.fit.counts(n, (bytes * n) / count + ROW_OVERHEAD).length;
    }
    return rows;
  }

  private merge(seriesId: number, fieldId: number, type: FieldType, group: readonly ChunkMeta[], rows: ChunkRow[]): void {
    const runs: Run[] = [];
    for (const m of group) {
      const row = this.readChunk.get([m.id]) as [Uint8Array, Uint8Array, Uint8Array, number | null, Uint8Array | null];
      runs.push(decodeChunk({ times: row[0], vals: row[1], hlcs: row[2], originId: row[3], origins: row[4] }, type));
    }
    // Sorted by start, runs may still overlap; mergeRuns keeps the newest version per time.
    const merged = mergeRuns(runs, type, this.host.order);
    for (const e of encodeRows(merged, type, this.host.chunkPoints, this.host.fit)) rows.push({ seriesId, fieldId, ...e });
    let deleted = 0;
    for (const m of group) deleted += this.deleteChunk.run([m.id]).changes;
    this.host.chunksDeleted(deleted);
    this.rewritten += group.length;
  }
}
