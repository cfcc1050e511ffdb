/**
 * A hot buffer: the unflushed lines of one series, kept in time order, one row a line with a
 * column for each of (up to MAX_COLUMNS of) the series' fields. A row has a mask of the
 * columns the line set; the flush turns each column into chunks of its own, as if every field
 * had been buffered apart. One buffer a series, not one a field, because with a hundred
 * thousand hosts the buffers' own objects were most of the memory, and the lines' fields share
 * one time, version and origin.
 *
 * Concurrent requests commit in any order, so rows arrive slightly out of order; each is
 * inserted at its place by a short backwards scan, which is far cheaper than sorting at flush.
 * Rows of equal time (overwrites) are kept side by side and resolved by version when flushed.
 * The buffer remembers the first frame sequence it holds data from, which bounds how far the
 * frame log can be trimmed.
 *
 * The rows live in a region of a shared row page and the values in a region of a shared value
 * page (see slab.ts), column after column, `capacity` slots each; not in typed arrays of the
 * buffer's own, which would cost more than the values of a small buffer. When full the buffer
 * moves to regions of the next size class, and when emptied it gives them back. Every type but
 * string keeps its values in the value page (booleans as 0 and 1); strings stay in plain arrays.
 */
import type { FieldValue } from "../lineprotocol/types.ts";
import type { FieldEntry, SeriesEntry } from "./catalog.ts";
import { compactOrigins, type Run, type Values } from "./run.ts";
import { copyRows, copySlots, NO_PAGE, regionSizeFor, rowSlab, valueSlab, type SlabPage } from "./slab.ts";
import { compareWords, copyOf, fromNumbers, splitWords } from "./words.ts";

/** Columns of one buffer: a row's mask is one 32-bit word. A series with more fields has more buffers. */
export const MAX_COLUMNS = 32;
/** Bytes of a row slot (time, version, mask, origin) and of a value slot. */
export const BYTES_PER_HOT_ROW = 22;
export const BYTES_PER_HOT_VALUE = 8;

/** What snapshots of one buffer's full columns share (see HotBuffer.snapshot). */
export interface RowCopies {
  run?: Omit<Run, "values">;
}

/** `origin` of a buffer whose rows do not share one: each has its own in the row page's origins column. */
const MIXED = -2;

export class HotBuffer {
  /** Rows buffered. */
  length = 0;
  /** Values buffered: the columns set, over all rows. */
  values = 0;
  /** Sequence number of the oldest frame whose values are still only here. */
  firstSeq = 0;
  /** When (ms) the oldest unflushed row arrived. */
  firstAt = 0;
  /** True when two rows share a time (the flush must keep the newest version of each value). */
  hasDuplicates = false;
  /** The field of each column. A retyped field is a new entry with the same id (see replaceField). */
  readonly fields: FieldEntry[] = [];
  /** The row page and value page (NO_PAGE while empty) and where the buffer's regions start. */
  private rows: SlabPage = NO_PAGE;
  private rowBase = 0;
  private vals: SlabPage = NO_PAGE;
  private valBase = 0;
  /** Rows the regions have room for: column c's values start at valBase + c * capacity. */
  private capacity = 0;
  /** This buffer in the slabs' books, so its regions are given back even if it is dropped uncleared. */
  private readonly rowHolder: number;
  private readonly valHolder: number;
  /** Values of string columns, a slot a row (null for other columns, and until a string column comes). */
  private strings: Array<string[] | null> | null = null;
  /**
   * The origin of every row while they all share one (the usual case), MIXED once a second
   * origin arrives (a twin writing the same series), -1 before the first row.
   */
  private origin = -1;
  private lastTime = 0n;
  /** The line whose row was inserted last (see rowOf). */
  private line = -1;
  /** The row inserted last, and how many rows just before it share its time (to find conflicts). */
  private lastRow = -1;
  private sameTimeBefore = 0;

  constructor(readonly series: SeriesEntry) {
    this.rowHolder = rowSlab.holder(this);
    this.valHolder = valueSlab.holder(this);
  }

  get width(): number {
    return this.fields.length;
  }

  /** Bytes of the regions the buffer holds, room to grow included (what the memory cap counts). */
  get bytes(): number {
    return this.rows.regionSize * BYTES_PER_HOT_ROW + this.vals.regionSize * BYTES_PER_HOT_VALUE;
  }

  /** The column of a field, by id, or -1; `hint` is tried first (a line's fields usually come in one order). */
  columnOf(fieldId: number, hint = 0): number {
    const fields = this.fields;
    if (hint < fields.length && fields[hint]!.id === fieldId) return hint;
    for (let c = 0; c < fields.length; c++) if (fields[c]!.id === fieldId) return c;
    return -1;
  }

  /** Adds a column for `field` (the buffer must have fewer than MAX_COLUMNS); returns it. */
  addColumn(field: FieldEntry, nowMs: number): number {
    const col = this.fields.length;
    if (col >= MAX_COLUMNS) throw new Error(`a hot buffer has at most ${MAX_COLUMNS} columns`);
    this.fields.push(field);
    if (field.type === "string") this.stringsOf(col);
    // The value region is laid out for the old width: lay it out again with room for one more column.
    if (this.capacity > 0) this.moveTo(Math.max(this.length, 1), col, nowMs);
    return col;
  }

  /**
   * The row of line `line` (any number that differs from the previous line's), inserted on
   * the line's first value (see insertRow).
   */
  rowOf(line: number, time: bigint, hlc: number, origin: number, seq: number, nowMs: number): number {
    if (this.line !== line || this.lastRow < 0) {
      this.line = line;
      this.insertRow(time, hlc, origin, seq, nowMs);
    }
    return this.lastRow;
  }

  /**
   * Adds a row for a line, at its place in time order, with no columns set yet (see set);
   * returns its index. `hlc` is the version clock as a number (safe integer).
   */
  insertRow(time: bigint, hlc: number, origin: number, seq: number, nowMs: number): number {
    const n = this.length;
    if (n === this.capacity) this.moveTo(n + 1, this.width, nowMs);
    let at = n;
    this.sameTimeBefore = 0;
    if (n === 0) {
      this.firstSeq = seq;
      this.firstAt = nowMs;
      this.hasDuplicates = false;
      this.lastTime = time;
      this.origin = origin;
    } else {
      // Frames are applied in sequence order; the minimum keeps firstSeq right whatever the order.
      if (seq < this.firstSeq) this.firstSeq = seq;
      if (origin !== this.origin && this.origin !== MIXED) this.mixOrigins(n);
      if (time <= this.lastTime) at = this.placeLate(time, n);
      else this.lastTime = time;
    }
    const rows = this.rows;
    const i = this.rowBase + at;
    rows.times[i] = time;
    rows.hlcs[i] = hlc;
    rows.masks[i] = 0;
    if (this.origin === MIXED) rows.origins[i] = origin;
    if (this.strings !== null) {
      for (const s of this.strings) if (s !== null) s.splice(at, 0, "");
    }
    this.length = n + 1;
    this.lastRow = at;
    return at;
  }

  /**
   * Makes room at the place of a row older than the newest one, after every row with a time
   * <= its own, comparing 32-bit words (reading the bigints back would allocate one per step).
   */
  private placeLate(time: bigint, n: number): number {
    const [vHi, vLo] = splitWords(time);
    const { timesHi, timesLo } = this.rows;
    const base = this.rowBase;
    let at = n;
    while (at > 0 && compareWords(timesHi, timesLo, base + at - 1, vHi, vLo) > 0) at--;
    let same = 0;
    while (at - same > 0 && compareWords(timesHi, timesLo, base + at - same - 1, vHi, vLo) === 0) same++;
    if (same > 0) this.hasDuplicates = true;
    this.sameTimeBefore = same;
    if (at < n) this.moveRows(at, n, at + 1);
    return at;
  }

  /**
   * Sets column `col` of row `row`; returns true when a row of the same time from another
   * node has that column too (a conflict). Only the row inserted last is checked.
   */
  set(row: number, col: number, value: FieldValue): boolean {
    const rows = this.rows;
    const i = this.rowBase + row;
    const bit = 1 << col;
    const mask = rows.masks[i]!;
    if ((mask & bit) === 0) {
      rows.masks[i] = mask | bit;
      this.values++;
    }
    const v = this.valBase + col * this.capacity + row;
    if (typeof value === "number") this.vals.floats[v] = value;
    // An unsigned value wraps to the int64 with the same bytes, which the uint64 view reads back.
    else if (typeof value === "bigint") this.vals.ints[v] = value;
    else if (typeof value === "boolean") this.vals.floats[v] = value ? 1 : 0;
    else this.strings![col]![row] = value;
    if (row !== this.lastRow || this.sameTimeBefore === 0) return false;
    const origin = this.originAt(row);
    for (let j = row - this.sameTimeBefore; j < row; j++) {
      if ((rows.masks[this.rowBase + j]! & bit) !== 0 && this.originAt(j) !== origin) return true;
    }
    return false;
  }

  /** Gives every row so far its own origin entry: a second origin has arrived. */
  private mixOrigins(n: number): void {
    this.rows.origins.fill(this.origin, this.rowBase, this.rowBase + n);
    this.origin = MIXED;
  }

  /**
   * Moves rows [from, to) to start at `dest`, in every row and value column. Values are moved
   * as 32-bit words whatever the type: moving them through the float view could turn int64
   * values whose bits look like a NaN (-1, for one) into the canonical NaN.
   */
  private moveRows(from: number, to: number, dest: number): void {
    const rows = this.rows;
    const b = this.rowBase;
    rows.times.copyWithin(b + dest, b + from, b + to);
    rows.hlcs.copyWithin(b + dest, b + from, b + to);
    rows.masks.copyWithin(b + dest, b + from, b + to);
    if (this.origin === MIXED) rows.origins.copyWithin(b + dest, b + from, b + to);
    const words = this.vals.valueWords;
    for (let c = 0; c < this.width; c++) {
      const vb = this.valBase + c * this.capacity;
      words.copyWithin(2 * (vb + dest), 2 * (vb + from), 2 * (vb + to));
    }
  }

  /**
   * Moves the rows to regions with room for at least `need` rows at the present width; the
   * values now in place are laid out for `oldWidth` columns.
   */
  private moveTo(need: number, oldWidth: number, nowMs: number): void {
    const width = Math.max(1, this.width);
    // The value region is the larger: its size class sets the capacity, and the row region follows.
    const vals = valueSlab.pageWithRoom(regionSizeFor(need * width), nowMs);
    const valBase = vals.take();
    const capacity = Math.floor(vals.regionSize / width);
    const rows = rowSlab.pageWithRoom(capacity, nowMs);
    const rowBase = rows.take();
    const n = this.length;
    if (n > 0) {
      copyRows(this.rows, this.rowBase, rows, rowBase, n, this.origin === MIXED);
      for (let c = 0; c < oldWidth; c++) copySlots(this.vals, this.valBase + c * this.capacity, vals, valBase + c * capacity, n);
    }
    this.setRegions(rows, rowBase, vals, valBase, capacity);
  }

  private setRegions(rows: SlabPage, rowBase: number, vals: SlabPage, valBase: number, capacity: number): void {
    rowSlab.give(this.rows, this.rowBase);
    valueSlab.give(this.vals, this.valBase);
    this.rows = rows;
    this.rowBase = rowBase;
    this.vals = vals;
    this.valBase = valBase;
    this.capacity = capacity;
    rowSlab.hold(this.rowHolder, rows, rowBase);
    valueSlab.hold(this.valHolder, vals, valBase);
  }

  private stringsOf(col: number): string[] {
    this.strings ??= [];
    while (this.strings.length <= col) this.strings.push(null);
    return (this.strings[col] ??= new Array<string>(this.length).fill(""));
  }

  timeAt(i: number): bigint {
    return this.rows.times[this.rowBase + i]!;
  }

  hlcAt(i: number): bigint {
    return BigInt(this.rows.hlcs[this.rowBase + i]!);
  }

  originAt(i: number): number {
    return this.origin === MIXED ? this.rows.origins[this.rowBase + i]! : this.origin;
  }

  /** Whether row `i` has a value in column `col`. */
  has(i: number, col: number): boolean {
    return (this.rows.masks[this.rowBase + i]! & (1 << col)) !== 0;
  }

  /** Rows with a value in column `col`. */
  countOf(col: number): number {
    const masks = this.rows.masks;
    const bit = 1 << col;
    const end = this.rowBase + this.length;
    let count = 0;
    for (let i = this.rowBase; i < end; i++) if ((masks[i]! & bit) !== 0) count++;
    return count;
  }

  /**
   * A copy of one column's values, in time order (equal times possible, see hasDuplicates);
   * with `newerThan`, only those of rows whose version clock is above it. With `rowCopies`,
   * the snapshots of columns that every row has share one copy of the time, version and
   * origin columns (valid while the buffer is not written to).
   */
  snapshot(col: number, newerThan = Number.NEGATIVE_INFINITY, rowCopies?: RowCopies): Run {
    const n = this.length;
    const rows = this.rows;
    const rb = this.rowBase;
    let count = this.countOf(col);
    let older = 0;
    if (newerThan !== Number.NEGATIVE_INFINITY) for (let i = 0; i < n; i++) if (rows.hlcs[rb + i]! <= newerThan) older++;
    const vb = this.valBase + col * this.capacity;
    if (count === n && older === 0) {
      const copied = rowCopies?.run ?? {
        times: copyOf(rows.times.subarray(rb, rb + n)),
        hlcs: fromNumbers(rows.hlcs.subarray(rb, rb + n)),
        origins: this.origin === MIXED ? compactOrigins(rows.origins.slice(rb, rb + n)) : this.origin,
      };
      if (rowCopies !== undefined) rowCopies.run = copied;
      // Fields in the order of every other run, so all runs share one shape.
      return { times: copied.times, values: this.valuesOf(col, vb, n, null), hlcs: copied.hlcs, origins: copied.origins };
    }
    // Some rows lack the column, or are too old: gather the others.
    const bit = 1 << col;
    const wanted = (i: number) => (rows.masks[rb + i]! & bit) !== 0 && rows.hlcs[rb + i]! > newerThan;
    if (older > 0) {
      count = 0;
      for (let i = 0; i < n; i++) if (wanted(i)) count++;
    }
    const picked = new Int32Array(count);
    for (let i = 0, k = 0; i < n; i++) if (wanted(i)) picked[k++] = i;
    const timeBytes = new ArrayBuffer(count * 8);
    const times = new BigInt64Array(timeBytes);
    const timeWords = new Int32Array(timeBytes);
    const hlcs = new Float64Array(count);
    const origins = this.origin === MIXED ? new Uint16Array(count) : null;
    for (let k = 0; k < count; k++) {
      const i = rb + picked[k]!;
      timeWords[2 * k] = rows.timesHi[2 * i]!;
      timeWords[2 * k + 1] = rows.timesHi[2 * i + 1]!;
      hlcs[k] = rows.hlcs[i]!;
      if (origins !== null) origins[k] = rows.origins[i]!;
    }
    return {
      times,
      values: this.valuesOf(col, vb, count, picked),
      hlcs: fromNumbers(hlcs),
      origins: origins === null ? this.origin : compactOrigins(origins),
    };
  }

  /** Column `col`'s values (starting at slot `vb`): the first `n` rows, or the rows `picked`. */
  private valuesOf(col: number, vb: number, n: number, picked: Int32Array | null): Values {
    const type = this.fields[col]!.type;
    if (type === "string") {
      const s = this.strings![col]!;
      return picked === null ? s.slice(0, n) : Array.from(picked, (i) => s[i]!);
    }
    const words = this.vals.valueWords;
    const bytes = new ArrayBuffer(8 * n);
    const out = new Int32Array(bytes);
    if (picked === null) out.set(words.subarray(2 * vb, 2 * (vb + n)));
    else {
      for (let k = 0; k < n; k++) {
        const i = vb + picked[k]!;
        out[2 * k] = words[2 * i]!;
        out[2 * k + 1] = words[2 * i + 1]!;
      }
    }
    switch (type) {
      case "float":
        return new Float64Array(bytes);
      case "integer":
        return new BigInt64Array(bytes);
      case "unsigned":
        return new BigUint64Array(bytes);
      case "boolean":
        return Array.from(new Float64Array(bytes), (v) => v !== 0);
    }
  }

  /** Keeps only the rows for which `keep(time, hlc, origin)` holds; returns how many values were removed. */
  retain(keep: (time: bigint, hlc: bigint, origin: number) => boolean): number {
    return this.keepRows((i) => keep(this.timeAt(i), this.hlcAt(i), this.originAt(i)));
  }

  /**
   * Removes column `col`'s values (its field was given another type) and puts `field` in its
   * place; returns how many values were removed. Rows left with no value go.
   */
  replaceField(col: number, field: FieldEntry): number {
    const rows = this.rows;
    const clear = ~(1 << col);
    let removed = 0;
    for (let i = this.rowBase; i < this.rowBase + this.length; i++) {
      const mask = rows.masks[i]!;
      if ((mask & ~clear) !== 0) removed++;
      rows.masks[i] = mask & clear;
    }
    this.values -= removed;
    this.fields[col] = field;
    if (this.strings !== null && col < this.strings.length) this.strings[col] = null;
    if (field.type === "string") this.stringsOf(col).fill("");
    this.keepRows((i) => rows.masks[this.rowBase + i] !== 0);
    return removed;
  }

  /** Keeps the rows for which `keep(i)` holds, in order; returns how many values were removed. */
  private keepRows(keep: (i: number) => boolean): number {
    const n = this.length;
    const before = this.values;
    let w = 0;
    // Kept rows move down a run at a time, one copy per column; each row is asked about once, in order.
    for (let r = 0; r < n; ) {
      if (!keep(r)) {
        this.values -= popcount(this.rows.masks[this.rowBase + r]!);
        r++;
        continue;
      }
      let end = r + 1;
      while (end < n && keep(end)) end++;
      if (w !== r) {
        this.moveRows(r, end, w);
        if (this.strings !== null) for (const s of this.strings) s?.copyWithin(w, r, end);
      }
      w += end - r;
      if (end < n) this.values -= popcount(this.rows.masks[this.rowBase + end]!);
      r = end + 1; // `end` was dropped (or is past the last row)
    }
    this.length = w;
    if (this.strings !== null) for (const s of this.strings) if (s !== null) s.length = w;
    this.lastRow = -1;
    if (w > 0) this.lastTime = this.timeAt(w - 1);
    else this.release();
    return before - this.values;
  }

  /** Empties the buffer and gives back its memory; its columns stay. */
  clear(): void {
    this.length = 0;
    this.values = 0;
    this.firstSeq = 0;
    this.hasDuplicates = false;
    this.origin = -1;
    this.lastRow = -1;
    if (this.strings !== null) for (const s of this.strings) if (s !== null) s.length = 0;
    this.release();
  }

  /** Gives the regions back: an empty buffer holds none. */
  private release(): void {
    this.setRegions(NO_PAGE, 0, NO_PAGE, 0, 0);
  }
}

function popcount(mask: number): number {
  let v = mask - ((mask >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
