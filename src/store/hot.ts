/**
 * A hot buffer: the unflushed values of one series and field, kept in time order. Concurrent
 * requests commit in any order, so values arrive slightly out of order; each is inserted at
 * its place by a short backwards scan, which is far cheaper than sorting at flush. Equal
 * timestamps (overwrites) are kept side by side and resolved by version when flushed.
 * The buffer remembers the first frame sequence it holds data from, which bounds how far the
 * frame log can be trimmed.
 *
 * The values live in a region of a shared slab page (see slab.ts), not in typed arrays of the
 * buffer's own: with a million small buffers, typed-array objects cost more than the values.
 * A buffer holds only its page and where its region starts; when full it moves to a region
 * of the next size class, and when emptied it gives the region back. Every type but string
 * keeps its values in the page's value column (booleans as 0 and 1); strings stay in a plain
 * array.
 */
import type { FieldType, FieldValue } from "../lineprotocol/types.ts";
import type { FieldEntry, SeriesEntry } from "./catalog.ts";
import { compactOrigins, type Run, type Values } from "./run.ts";
import { copyValues, NO_PAGE, slab, type SlabPage } from "./slab.ts";
import { compareWords, fromNumbers, splitWords } from "./words.ts";

/** Rough bytes per buffered value (time, value, version) for the memory cap. */
export const BYTES_PER_HOT_VALUE = 24;
/** `origin` of a buffer whose values do not share one: each has its own in the page's origins column. */
const MIXED = -2;

export class HotBuffer {
  length = 0;
  /** Sequence number of the oldest frame whose values are still only here. */
  firstSeq = 0;
  /** When (ms) the oldest unflushed value arrived. */
  firstAt = 0;
  /** True when two values share a timestamp (the flush must keep the newest version). */
  hasDuplicates = false;
  /** The page holding the values (NO_PAGE while empty) and where their region starts in it. */
  private page: SlabPage = NO_PAGE;
  private base = 0;
  /** This buffer in the slab's books, so its region is given back even if it is dropped uncleared. */
  private readonly holder: number;
  /** String values; the other types use the page's value column. */
  private strings: string[] | null;
  /**
   * The origin of every value while they all share one (the usual case), MIXED once a second
   * origin arrives (a twin writing the same series), -1 before the first value.
   */
  private origin = -1;
  private lastTime = 0n;

  constructor(
    readonly series: SeriesEntry,
    readonly field: FieldEntry,
  ) {
    this.strings = field.type === "string" ? [] : null;
    this.holder = slab.holder(this);
  }

  get type(): FieldType {
    return this.field.type;
  }

  /**
   * Adds a value; returns true when it meets a value of the same time from another node (a
   * conflict). `hlc` is the version clock as a number (safe integer).
   */
  push(time: bigint, value: FieldValue, hlc: number, origin: number, seq: number, nowMs: number): boolean {
    const n = this.length;
    if (n === this.page.regionSize) this.grow(nowMs);
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
      if (time <= this.lastTime) return this.insertLate(time, value, hlc, origin, n);
      this.lastTime = time;
    }
    this.put(n, time, value, hlc, origin);
    this.length = n + 1;
    return false;
  }

  /**
   * Inserts a value older than the newest one after every value with a time <= its own,
   * comparing 32-bit words (reading the bigints back would allocate one per step). Returns
   * whether it meets a value of the same time from another node.
   */
  private insertLate(time: bigint, value: FieldValue, hlc: number, origin: number, n: number): boolean {
    const [vHi, vLo] = splitWords(time);
    const { timesHi, timesLo } = this.page;
    const base = this.base;
    let at = n;
    let c = 1;
    while (at > 0 && (c = compareWords(timesHi, timesLo, base + at - 1, vHi, vLo)) > 0) at--;
    let conflict = false;
    if (at > 0 && c === 0) {
      this.hasDuplicates = true;
      conflict = this.originAt(at - 1) !== origin;
    }
    if (at < n) {
      this.move(at, n, at + 1);
      this.strings?.splice(at, 0, "");
    }
    this.put(at, time, value, hlc, origin);
    this.length = n + 1;
    return conflict;
  }

  private put(at: number, time: bigint, value: FieldValue, hlc: number, origin: number): void {
    const page = this.page;
    const i = this.base + at;
    page.times[i] = time;
    page.hlcs[i] = hlc;
    if (typeof value === "number") page.floats[i] = value;
    // An unsigned value wraps to the int64 with the same bytes, which the uint64 view reads back.
    else if (typeof value === "bigint") page.ints[i] = value;
    else if (typeof value === "boolean") page.floats[i] = value ? 1 : 0;
    else this.strings![at] = value;
    if (this.origin === MIXED) page.origins[i] = origin;
  }

  /** Gives every value so far its own origin entry: a second origin has arrived. */
  private mixOrigins(n: number): void {
    this.page.origins.fill(this.origin, this.base, this.base + n);
    this.origin = MIXED;
  }

  /**
   * Moves values [from, to) of the region to start at `dest`, in every column. The value
   * column is copied as bytes whatever the type: copying element by element through the float
   * view would turn int64 values whose bits look like a NaN (-1, for one) into the canonical NaN.
   */
  private move(from: number, to: number, dest: number): void {
    const page = this.page;
    const b = this.base;
    page.times.copyWithin(b + dest, b + from, b + to);
    page.hlcs.copyWithin(b + dest, b + from, b + to);
    page.floats.copyWithin(b + dest, b + from, b + to);
    if (this.origin === MIXED) page.origins.copyWithin(b + dest, b + from, b + to);
  }

  /** Moves the values to a region of the next size class (the first region when empty). */
  private grow(nowMs: number): void {
    const from = this.page;
    const fromBase = this.base;
    const page = slab.pageWithRoom(this.length + 1, nowMs);
    const base = page.take();
    copyValues(from, fromBase, page, base, this.length, this.origin === MIXED);
    this.setRegion(page, base);
  }

  /** Gives the region back: an empty buffer holds none. */
  private release(): void {
    this.setRegion(NO_PAGE, 0);
  }

  private setRegion(page: SlabPage, base: number): void {
    slab.give(this.page, this.base);
    this.page = page;
    this.base = base;
    slab.hold(this.holder, page, base);
  }

  timeAt(i: number): bigint {
    return this.page.times[this.base + i]!;
  }

  hlcAt(i: number): bigint {
    return BigInt(this.page.hlcs[this.base + i]!);
  }

  originAt(i: number): number {
    return this.origin === MIXED ? this.page.origins[this.base + i]! : this.origin;
  }

  /** A copy of the buffered values, in time order (equal times possible, see hasDuplicates). */
  snapshot(): Run {
    const page = this.page;
    const from = this.base;
    const to = from + this.length;
    return {
      times: page.times.slice(from, to),
      values: this.valuesCopy(from, to),
      hlcs: fromNumbers(page.hlcs.subarray(from, to)),
      origins: this.origin === MIXED ? compactOrigins(page.origins.slice(from, to)) : this.origin,
    };
  }

  private valuesCopy(from: number, to: number): Values {
    const page = this.page;
    switch (this.field.type) {
      case "float":
        return page.floats.slice(from, to);
      case "integer":
        return page.ints.slice(from, to);
      case "unsigned":
        return page.uints.slice(from, to);
      case "boolean":
        return Array.from(page.floats.subarray(from, to), (v) => v !== 0);
      case "string":
        return this.strings!.slice();
    }
  }

  /** Keeps only the values for which `keep(time, hlc, origin)` holds; returns how many were removed. */
  retain(keep: (time: bigint, hlc: bigint, origin: number) => boolean): number {
    const n = this.length;
    let w = 0;
    // Kept values move down a run at a time, one copy per column; each value is asked about once, in order.
    for (let r = 0; r < n; ) {
      if (!this.keeps(keep, r)) {
        r++;
        continue;
      }
      let end = r + 1;
      while (end < n && this.keeps(keep, end)) end++;
      if (w !== r) {
        this.move(r, end, w);
        this.strings?.copyWithin(w, r, end);
      }
      w += end - r;
      r = end + 1; // `end` was dropped (or is past the last value)
    }
    this.length = w;
    if (this.strings !== null) this.strings.length = w;
    if (w > 0) this.lastTime = this.timeAt(w - 1);
    else this.release();
    return n - w;
  }

  private keeps(keep: (time: bigint, hlc: bigint, origin: number) => boolean, i: number): boolean {
    return keep(this.timeAt(i), this.hlcAt(i), this.originAt(i));
  }

  /** Empties the buffer and gives back its memory. */
  clear(): void {
    this.length = 0;
    this.firstSeq = 0;
    this.hasDuplicates = false;
    this.origin = -1;
    if (this.strings !== null) this.strings = [];
    this.release();
  }
}
