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
 * row filling whole overflow pages followed by equal parts) is costed in pages, each extra
 * row's index entries included, and the cheapest wins. Sizes are estimated in proportion
 * from the whole run's encoded size, so each candidate is also costed a few percent larger
 * and smaller. `PageFit.packOrder` then orders a batch of new rows so leaves fill well.
 */

/** What a row costs beyond its columns' bytes: record header, integers, codec headers. */
export const ROW_OVERHEAD = 64;

/** Bytes an extra row costs in the chunk indexes (series/field/time and newest version). */
const INDEX_BYTES_PER_ROW = 64;

/** A leaf cell beyond its local bytes: pointer, payload length and rowid varints. */
const CELL_EXTRA = 8;

/** The first overflow page's number, in the cell of a record that overflows. */
const OVERFLOW_POINTER = 4;

/** What a small cell costs per byte once leaves are packed (page header, last gaps). */
const SMALL_CELL_WASTE = 1.05;

/** The relative error of a proportional size estimate that candidates are costed against. */
const ESTIMATE_ERROR = 0.03;

/** Runs cut into at most this many rows (of at most the chunk size each). */
const MAX_PARTS = 6;

/** New rows are ordered for insertion (packOrder) in batches of at most this many. */
export const INSERT_BATCH = 2048;

/** Plans remembered, by size. */
const MAX_CACHED_PLANS = 4096;

/** The row layout arithmetic of one page size (SQLite's "usable size": no reserved bytes). */
export class PageFit {
  /** The largest record kept wholly in a table leaf. */
  readonly maxLocal: number;
  /** The smallest local part of an overflowing record. */
  readonly minLocal: number;
  /** Record bytes one overflow page holds. */
  readonly overflowBytes: number;
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

  /**
   * An order to insert records of these sizes in so leaves fill well. Rows are appended in
   * rowid order, a leaf taking rows until the next one does not fit, so each leaf is filled
   * with the largest cells left, then the smallest of the large ones, then small ones (an
   * eighth of a leaf or less) in their given order: first fit decreasing in one pass, where
   * it matters. Small rows keep their order, which keeps inserts into the chunk indexes
   * local when there are many of them. Returns indexes into `sizes`.
   */
  packOrder(sizes: readonly number[]): number[] {
    const cells = sizes.map((s) => this.cellBytes(s));
    const smallest = Math.floor(this.leafBytes / 8);
    const large: number[] = [];
    const small: number[] = [];
    for (let i = 0; i < cells.length; i++) (cells[i]! > smallest ? large : small).push(i);
    large.sort((a, b) => cells[b]! - cells[a]! || a - b);
    const out: number[] = [];
    let lo = 0;
    let hi = large.length - 1;
    let s = 0;
    while (lo <= hi || s < small.length) {
      let free = this.leafBytes;
      const before = out.length;
      while (lo <= hi && cells[large[lo]!]! <= free) {
        free -= cells[large[lo]!]!;
        out.push(large[lo++]!);
      }
      while (lo <= hi && cells[large[hi]!]! <= free) {
        free -= cells[large[hi]!]!;
        out.push(large[hi--]!);
      }
      while (s < small.length && cells[small[s]!]! <= free) {
        free -= cells[small[s]!]!;
        out.push(small[s++]!);
      }
      // Local parts are at most maxLocal, so a leaf always takes one; never loop regardless.
      if (out.length === before) out.push(lo <= hi ? large[lo++]! : small[s++]!);
    }
    return out;
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
   * Bytes on disk of rows of `sizes`, with their index entries. Overflow pages count whole.
   * `packOrder` tops leaves up with smaller cells, so a cell of at most a quarter leaf costs
   * about its size; a larger one the leaf share of as many such cells as fit in a leaf.
   */
  cost(sizes: readonly number[]): number {
    let bytes = 0;
    for (const s of sizes) {
      const local = this.localBytes(s);
      if (local < s) bytes += Math.ceil((s - local) / this.overflowBytes) * this.pageSize;
      const cell = this.cellBytes(s);
      bytes += cell * 4 <= this.leafBytes ? cell * SMALL_CELL_WASTE : this.pageSize / Math.floor(this.leafBytes / cell);
    }
    return bytes + sizes.length * INDEX_BYTES_PER_ROW;
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
