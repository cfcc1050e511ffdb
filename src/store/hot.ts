/**
 * A hot buffer: the unflushed values of one series and field, kept in time order. Concurrent
 * requests commit in any order, so values arrive slightly out of order; each is inserted at
 * its place by a short backwards scan, which is far cheaper than sorting at flush. Equal
 * timestamps (overwrites) are kept side by side and resolved by version when flushed.
 * The buffer remembers the first frame sequence it holds data from, which bounds how far the
 * frame log can be trimmed.
 */
import type { FieldType, FieldValue } from "../lineprotocol/types.ts";
import type { FieldEntry, SeriesEntry } from "./catalog.ts";
import { compactOrigins, newValues, type Run, type Values } from "./run.ts";
import { compareWords, fromNumbers, splitWords } from "./words.ts";

const INITIAL_CAPACITY = 4;
/** Rough bytes per buffered value (time, value, version) for the memory cap. */
export const BYTES_PER_HOT_VALUE = 24;

export class HotBuffer {
  length = 0;
  /** Sequence number of the oldest frame whose values are still only here. */
  firstSeq = 0;
  /** When (ms) the oldest unflushed value arrived. */
  firstAt = 0;
  /** True when two values share a timestamp (the flush must keep the newest version). */
  hasDuplicates = false;
  private times = new BigInt64Array(INITIAL_CAPACITY);
  /**
   * The times' memory as 32-bit words, for comparing without reading bigints (see words.ts).
   * Made on the first late value only: most buffers never need them, and with many series
   * two extra typed-array objects per buffer add up.
   */
  private timesHi: Int32Array | null = null;
  private timesLo: Uint32Array | null = null;
  /** Float values live in a typed array; the other types in a plain array. */
  private floats: Float64Array | null;
  private others: FieldValue[] | null;
  /** Version clocks as doubles: they are safe integers (see wal/hlc.ts), and a double store costs no bigint. */
  private hlcs = new Float64Array(INITIAL_CAPACITY);
  /**
   * The origin of every value while they all share one (the usual case: `origin`), and a
   * column only once a second origin arrives (a twin writing the same series).
   */
  private origin = -1;
  private origins: Uint16Array | null = null;
  private lastTime = 0n;
  /** Set by placeLate when the value just placed meets one of the same time from another node. */
  private lateConflict = false;

  constructor(
    readonly series: SeriesEntry,
    readonly field: FieldEntry,
  ) {
    const isFloat = field.type === "float";
    this.floats = isFloat ? new Float64Array(INITIAL_CAPACITY) : null;
    this.others = isFloat ? null : [];
  }

  get type(): FieldType {
    return this.field.type;
  }

  /**
   * Adds a value; returns true when it meets a value of the same time from another node (a
   * conflict). `hlc` is the version clock as a number (safe integer).
   */
  push(time: bigint, value: FieldValue, hlc: number, origin: number, seq: number, nowMs: number): boolean {
    this.lateConflict = false;
    const n = this.length;
    if (n === this.times.length) this.grow();
    let at = n;
    if (n === 0) {
      this.firstSeq = seq;
      this.firstAt = nowMs;
      this.hasDuplicates = false;
      this.lastTime = time;
      this.origin = origin;
    } else {
      // Frames are applied in sequence order; the minimum keeps firstSeq right whatever the order.
      if (seq < this.firstSeq) this.firstSeq = seq;
      if (origin !== this.origin && this.origins === null) this.splitOrigins(n);
      if (time > this.lastTime) this.lastTime = time;
      else at = this.placeLate(time, origin, n);
    }
    this.times[at] = time;
    if (this.floats !== null) this.floats[at] = value as number;
    else this.others![at] = value;
    this.hlcs[at] = hlc;
    if (this.origins !== null) this.origins[at] = origin;
    this.length = n + 1;
    return this.lateConflict;
  }

  /**
   * Makes room for a value older than the newest one and returns its index: after every value
   * with a time <= this one, comparing 32-bit words (reading the bigints back would allocate
   * one per step).
   */
  private placeLate(time: bigint, origin: number, n: number): number {
    const [vHi, vLo] = splitWords(time);
    const hi = (this.timesHi ??= new Int32Array(this.times.buffer));
    const lo = (this.timesLo ??= new Uint32Array(this.times.buffer));
    let at = n;
    let c = 1;
    while (at > 0 && (c = compareWords(hi, lo, at - 1, vHi, vLo)) > 0) at--;
    if (at > 0 && c === 0) {
      this.hasDuplicates = true;
      if (this.originAt(at - 1) !== origin) this.lateConflict = true;
    }
    if (at < n) this.shiftRight(at, n);
    return at;
  }

  /** Gives every value so far its own origin entry: a second origin has arrived. */
  private splitOrigins(n: number): void {
    const origins = new Uint16Array(this.times.length);
    origins.fill(this.origin, 0, n);
    this.origins = origins;
  }

  private shiftRight(at: number, n: number): void {
    this.times.copyWithin(at + 1, at, n);
    this.hlcs.copyWithin(at + 1, at, n);
    this.origins?.copyWithin(at + 1, at, n);
    if (this.floats !== null) this.floats.copyWithin(at + 1, at, n);
    else this.others!.splice(at, 0, this.others![at]!);
  }

  private grow(): void {
    const cap = this.times.length * 2;
    const times = new BigInt64Array(cap);
    times.set(this.times);
    this.setTimes(times);
    const hlcs = new Float64Array(cap);
    hlcs.set(this.hlcs);
    this.hlcs = hlcs;
    if (this.origins !== null) {
      const origins = new Uint16Array(cap);
      origins.set(this.origins);
      this.origins = origins;
    }
    if (this.floats !== null) {
      const floats = new Float64Array(cap);
      floats.set(this.floats);
      this.floats = floats;
    }
  }

  private setTimes(times: BigInt64Array<ArrayBuffer>): void {
    this.times = times;
    this.timesHi = null;
    this.timesLo = null;
  }

  timeAt(i: number): bigint {
    return this.times[i]!;
  }

  hlcAt(i: number): bigint {
    return BigInt(this.hlcs[i]!);
  }

  originAt(i: number): number {
    return this.origins === null ? this.origin : this.origins[i]!;
  }

  /** A copy of the buffered values, in time order (equal times possible, see hasDuplicates). */
  snapshot(): Run {
    const n = this.length;
    let values: Values;
    if (this.floats !== null) values = this.floats.slice(0, n);
    else {
      values = newValues(this.field.type, n);
      for (let i = 0; i < n; i++) (values as FieldValue[])[i] = this.others![i]!;
    }
    return {
      times: this.times.slice(0, n),
      values,
      hlcs: fromNumbers(this.hlcs.subarray(0, n)),
      origins: this.origins === null ? this.origin : compactOrigins(this.origins.slice(0, n)),
    };
  }

  /** Keeps only the values for which `keep(time, hlc, origin)` holds; returns how many were removed. */
  retain(keep: (time: bigint, hlc: bigint, origin: number) => boolean): number {
    let w = 0;
    const n = this.length;
    for (let r = 0; r < n; r++) {
      if (!keep(this.times[r]!, BigInt(this.hlcs[r]!), this.originAt(r))) continue;
      if (w !== r) {
        this.times[w] = this.times[r]!;
        if (this.floats !== null) this.floats[w] = this.floats[r]!;
        else this.others![w] = this.others![r]!;
        this.hlcs[w] = this.hlcs[r]!;
        if (this.origins !== null) this.origins[w] = this.origins[r]!;
      }
      w++;
    }
    this.length = w;
    if (this.others !== null) this.others.length = w;
    if (w > 0) this.lastTime = this.times[w - 1]!;
    return n - w;
  }

  /** Empties the buffer and gives back its memory. */
  clear(): void {
    this.length = 0;
    this.firstSeq = 0;
    this.hasDuplicates = false;
    this.setTimes(new BigInt64Array(INITIAL_CAPACITY));
    this.hlcs = new Float64Array(INITIAL_CAPACITY);
    this.origin = -1;
    this.origins = null;
    if (this.floats !== null) this.floats = new Float64Array(INITIAL_CAPACITY);
    else this.others = [];
  }
}
