/**
 * Chunk rows cut to fit SQLite's pages.
 *
 * A table row larger than a leaf can hold keeps a local part in its leaf and the rest on
 * overflow pages; SQLite sizes the local part so the overflow pages are exactly full
 * (fileformat2.html, "B-tree Page Format"). Rows are appended in rowid order, so a leaf takes
 * rows until the next one does not fit. Whether a chunk's row fills pages well therefore
 * depends on its size: a 6.6 KB chunk of full-precision floats on 4 KiB pages kept a 2.5 KB
 * local part that no other row could share a leaf with (1.6 bytes a value unused), and a
 * 1.2 KB chunk sat three to a leaf with 13% of it unused.
 *
 * `PageFit.counts` picks how to cut a run into rows: each candidate cut (equal parts, or a
 * row filling whole overflow pages followed by equal parts) is costed in pages, with each
 * row's index entries and a charge for reading it, and the cheapest wins. Sizes are
 * estimated in proportion from the whole run's encoded size, so each candidate is also
 * costed a few percent larger and smaller. `PageFit.fillLeaves` then inserts a batch's rows
 * so leaves fill: it moves a row a few places where that fills a leaf's gap, and where none
 * does, it cuts the next row so its first part does.
 */

/** What a row costs beyond its columns' bytes: record header, integers, codec headers. */
export const ROW_OVERHEAD = 64;

/** Bytes an extra row costs in the chunk indexes (series/field/time and newest version). */
const INDEX_BYTES_PER_ROW = 64;

/** A leaf cell beyond its local bytes: pointer, payload length and rowid varints. */
const CELL_EXTRA = 8;

/** The first overflow page's number, in the cell of a record that overflows. */
const OVERFLOW_POINTER = 4;

/**
 * A row's cost to reads, in bytes of disk it is worth: a query seeks and decodes each row,
 * so a cut has to save real space (a local part no other row can share a leaf with), not
 * the last few percent.
 */
const READ_BYTES_PER_ROW = 128;

/** Rows are costed as a stream of this many repeats of a cut. */
const REPEATS = 48;

/** The relative error of a proportional size estimate that candidates are costed against. */
const ESTIMATE_ERROR = 0.03;

/** Runs cut into at most this many rows (of at most the chunk size each). */
const MAX_PARTS = 6;

/** How far past the next row `fillLeaves` looks for one that fills a leaf's gap. */
const LOOKAHEAD = 16;

/**
 * The smallest gap in a leaf that `fillLeaves` cuts a row to fill. A cut adds a row: its
 * record and codec headers, its index entries, and a seek and decode for each read of it.
 */
export const MIN_GAP = 384;

/** New rows are inserted (by `fillLeaves`) in batches of at most this many. */
export const INSERT_BATCH = 2048;

/** Plans remembered, by size. */
const MAX_CACHED_PLANS = 4096;

/** The row layout arithmetic of one page size (SQLite's "usable size": no reserved bytes). */
export class PageFit {
  /** The largest record kept wholly in a table leaf. */
  private readonly maxLocal: number;
  /** The smallest local part of an overflowing record. */
  private readonly minLocal: number;
  /** Record bytes one overflow page holds. */
  private readonly overflowBytes: number;
  private readonly leafBytes: number;
  private readonly plans = new Map<number, readonly number[]>();

  constructor(readonly pageSize: number) {
    this.maxLocal = pageSize - 35;
    this.minLocal = Math.floor(((pageSize - 12) * 32) / 255) - 23;
    this.overflowBytes = pageSize - 4;
    this.leafBytes = pageSize - 8;
  }

  /** Bytes of a record of `bytes` that stay in its leaf. */
  localBytes(bytes: number): number {
    if (bytes <= this.maxLocal) return bytes;
    const k = this.minLocal + ((bytes - this.minLocal) % this.overflowBytes);
    return k <= this.maxLocal ? k : this.minLocal;
  }

  /** Bytes a record of `bytes` takes in its leaf. */
  cellBytes(bytes: number): number {
    const local = this.localBytes(bytes);
    return local + CELL_EXTRA + (local < bytes ? OVERFLOW_POINTER : 0);
  }

  /**
   * Values per row for a run of `count` values whose one-row record is about `bytes`: the
   * cheapest cut's sizes turned into counts in proportion, each at least one value.
   */
  counts(count: number, bytes: number): number[] {
    const sizes = this.plan(bytes);
    if (sizes.length === 1 || count < sizes.length * 4) return [count];
    const perValue = Math.max(bytes - ROW_OVERHEAD, 1) / count;
    const out: number[] = [];
    let left = count;
    for (let i = 0; i < sizes.length - 1; i++) {
      const n = Math.min(left - (sizes.length - 1 - i), Math.max(1, Math.round((sizes[i]! - ROW_OVERHEAD) / perValue)));
      out.push(n);
      left -= n;
    }
    out.push(left);
    return out;
  }

  /** The free bytes of an empty leaf. */
  get emptyLeaf(): number {
    return this.leafBytes;
  }

  /**
   * The bytes a record of `bytes` with this rowid takes in a table leaf, its cell pointer
   * included: what SQLite checks against the leaf's free bytes (fileformat2.html, "B-tree
   * Pages").
   */
  leafCell(bytes: number, rowid: number): number {
    const local = this.localBytes(bytes);
    return 2 + varintBytes(bytes) + varintBytes(rowid) + local + (local < bytes ? OVERFLOW_POINTER : 0);
  }

  /**
   * Appends `rows` (each of `bytes(row)` record bytes) through `append`, in about the given
   * order (which the caller chose for reads), so the leaves they land in fill. `free` is what
   * the table's rightmost leaf has left and `rowid` the next row's: SQLite appends a row there
   * if its cell fits, and else starts a new leaf. When the next row does not fit, the largest
   * of the following LOOKAHEAD rows that does goes first; when none does and the gap is worth
   * a row, `cut` is asked to split the next row into a first part of at most the bytes given
   * and the rest, which follows in its place. Returns what the rightmost leaf has left after.
   */
  fillLeaves<T>(
    rows: readonly T[],
    bytes: (row: T) => number,
    free: number,
    rowid: number,
    cut: (row: T, maxBytes: number) => readonly [T, T] | null,
    append: (row: T) => void,
  ): number {
    const queue = [...rows];
    const sizes = queue.map(bytes);
    const taken = new Uint8Array(queue.length);
    let left = queue.length;
    let next = 0;
    let cutAt = -1;
    const fits = (i: number) => this.leafCell(sizes[i]!, rowid) <= free;
    const place = (row: T, size: number) => {
      const cell = this.leafCell(size, rowid++);
      if (cell > free) free = this.leafBytes;
      free -= Math.min(cell, free);
      append(row);
    };
    const put = (i: number) => {
      place(queue[i]!, sizes[i]!);
      taken[i] = 1;
      left--;
    };
    while (left > 0) {
      while (taken[next] === 1) next++;
      if (fits(next)) {
        put(next);
        continue;
      }
      let pick = -1;
      for (let j = next + 1, end = Math.min(queue.length, next + 1 + LOOKAHEAD); j < end; j++) {
        if (taken[j] === 0 && fits(j) && (pick < 0 || sizes[j]! > sizes[pick]!)) pick = j;
      }
      if (pick >= 0) {
        put(pick);
        continue;
      }
      // Only a row kept whole in its leaf is cut: an overflowing row's local part is sized by
      // SQLite to fill its overflow pages, and is small already. A row's rest is not cut
      // again for what its first part left of the same gap.
      const room = Math.min(free - 2 - varintBytes(rowid) - varintBytes(free), this.maxLocal);
      const worth = free >= MIN_GAP && cutAt !== next && sizes[next]! <= this.maxLocal;
      const parts = worth ? cut(queue[next]!, room) : null;
      if (parts !== null) {
        // The first part fills the gap; the rest takes the row's place in the queue.
        const [first, rest] = parts;
        place(first, bytes(first));
        queue[next] = rest;
        sizes[next] = bytes(rest);
        cutAt = next;
        continue;
      }
      // Nothing near fits the gap and it is not worth a cut: the next row starts a new leaf.
      put(next);
    }
    return free;
  }

  /** Record sizes to cut a record of about `bytes` into: one when it sits well as it is. */
  plan(bytes: number): readonly number[] {
    let p = this.plans.get(bytes);
    if (p === undefined) {
      // Rows of a workload come in few sizes; a bounded cache of them saves the costing.
      if (this.plans.size >= MAX_CACHED_PLANS) this.plans.clear();
      p = this.choose(bytes);
      this.plans.set(bytes, p);
    }
    return p;
  }

  /**
   * What rows of `sizes` cost, in bytes. New rows go in by field then series, so a flush
   * writes a stream of like rows: the cost is that of `sizes` repeated, laid out as SQLite
   * lays out appended rows (overflow pages whole, a leaf taking cells until the next does
   * not fit), per repeat, plus per row its index entries and a charge for reading it.
   */
  cost(sizes: readonly number[]): number {
    let pages = 0;
    let free = 0;
    for (let r = 0; r < REPEATS; r++) {
      for (const s of sizes) {
        const local = this.localBytes(s);
        if (local < s) pages += Math.ceil((s - local) / this.overflowBytes);
        const cell = this.cellBytes(s);
        if (cell > free) {
          pages++;
          free = this.leafBytes;
        }
        free -= cell;
      }
    }
    return (pages * this.pageSize) / REPEATS + sizes.length * (INDEX_BYTES_PER_ROW + READ_BYTES_PER_ROW);
  }

  private choose(bytes: number): readonly number[] {
    let best: readonly number[] = [bytes];
    let bestCost = this.expectedCost(best);
    const consider = (sizes: number[]) => {
      if (sizes.some((s) => s < ROW_OVERHEAD * 2)) return;
      const c = this.expectedCost(sizes);
      // Fewer rows win ties: they read faster.
      if (c < bestCost - 1) {
        best = sizes;
        bestCost = c;
      }
    };
    for (let m = 2; m <= MAX_PARTS; m++) consider(equalParts(bytes + (m - 1) * ROW_OVERHEAD, m));
    // A first row that fills whole overflow pages, leaving only the minimum in its leaf.
    for (let k = 1; this.minLocal + k * this.overflowBytes < bytes; k++) {
      const first = this.minLocal + k * this.overflowBytes;
      const rest = bytes - first + ROW_OVERHEAD;
      for (let m = 1; m < MAX_PARTS; m++) consider([first, ...equalParts(rest + (m - 1) * ROW_OVERHEAD, m)]);
    }
    return best;
  }

  /** The mean cost of `sizes` as estimated and a few percent larger and smaller. */
  expectedCost(sizes: readonly number[]): number {
    const scaled = (f: number) => sizes.map((s) => Math.max(1, Math.round(s * f)));
    return (this.cost(scaled(1 - ESTIMATE_ERROR)) + this.cost(sizes) + this.cost(scaled(1 + ESTIMATE_ERROR))) / 3;
  }
}

function equalParts(total: number, m: number): number[] {
  const base = Math.floor(total / m);
  return Array.from({ length: m }, (_, i) => base + (i < total % m ? 1 : 0));
}

/** Bytes of an SQLite record holding these column values (fileformat2.html, "Record Format"). */
export function recordBytes(columns: ReadonlyArray<number | bigint | Uint8Array | null>): number {
  let header = 0;
  let body = 0;
  for (const v of columns) {
    if (v === null) header += 1;
    else if (v instanceof Uint8Array) {
      header += varintBytes(v.length * 2 + 12);
      body += v.length;
    } else {
      header += 1;
      body += intBytes(v);
    }
  }
  // The header's own length is a varint counted in the header.
  return header + varintBytes(header + 1) + body;
}

function intBytes(v: number | bigint): number {
  // SQLite's integer serial types: 0 and 1 cost nothing, else 1, 2, 3, 4, 6 or 8 bytes.
  if (typeof v === "number") {
    if (v === 0 || v === 1) return 0;
    const a = v < 0 ? -v - 1 : v;
    return a < 0x80 ? 1 : a < 0x8000 ? 2 : a < 0x800000 ? 3 : a < 0x80000000 ? 4 : a < 0x800000000000 ? 6 : 8;
  }
  if (v === 0n || v === 1n) return 0;
  const a = v < 0n ? -v - 1n : v;
  return a < 0x80n ? 1 : a < 0x8000n ? 2 : a < 0x800000n ? 3 : a < 0x80000000n ? 4 : a < 0x800000000000n ? 6 : 8;
}

function varintBytes(v: number): number {
  let n = 1;
  while (v >= 0x80 && n < 9) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}
