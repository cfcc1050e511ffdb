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
import { newValues, type Run, type Values } from "./run.ts";
import { compareWords, splitWords } from "./words.ts";

const INITIAL_CAPACITY = 4;
/** Rough bytes per buffered value (time, value, version, origin) for the memory cap. */
export const BYTES_PER_HOT_VALUE = 26;

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
  private hlcs = new BigInt64Array(INITIAL_CAPACITY);
  private origins = new Uint16Array(INITIAL_CAPACITY);
  private lastTime = 0n;

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

  /** Adds a value; returns true when it meets a value of the same time from another node (a conflict). */
  push(time: bigint, value: FieldValue, hlc: bigint, origin: number, seq: number, nowMs: number): boolean {
    let conflict = false;
    const n = this.length;
    if (n === this.times.length) this.grow();
    let at = n;
    if (n === 0) {
      this.firstSeq = seq;
      this.firstAt = nowMs;
      this.hasDuplicates = false;
      this.lastTime = time;
    } else if (time > this.lastTime) {
      this.lastTime = time;
    } else {
      // Out of order: find the place after every value with a time <= this one, comparing
      // 32-bit words (reading the bigints back would allocate one per step).
      const [vHi, vLo] = splitWords(time);
      const hi = (this.timesHi ??= new Int32Array(this.times.buffer));
      const lo = (this.timesLo ??= new Uint32Array(this.times.buffer));
      let c = 1;
      while (at > 0 && (c = compareWords(hi, lo, at - 1, vHi, vLo)) > 0) at--;
      if (at > 0 && c === 0) {
        this.hasDuplicates = true;
        conflict = this.origins[at - 1] !== origin;
      }
      if (at < n) this.shiftRight(at, n);
    }
    this.times[at] = time;
    if (this.floats !== null) this.floats[at] = value as number;
    else this.others![at] = value;
    this.hlcs[at] = hlc;
    this.origins[at] = origin;
    this.length = n + 1;
    return conflict;
  }

  private shiftRight(at: number, n: number): void {
    this.times.copyWithin(at + 1, at, n);
    this.hlcs.copyWithin(at + 1, at, n);
    this.origins.copyWithin(at + 1, at, n);
    if (this.floats !== null) this.floats.copyWithin(at + 1, at, n);
    else this.others!.splice(at, 0, this.others![at]!);
  }

  private grow(): void {
    const cap = this.times.length * 2;
    const times = new BigInt64Array(cap);
    times.set(this.times);
    this.setTimes(times);
    const hlcs = new BigInt64Array(cap);
    hlcs.set(this.hlcs);
    this.hlcs = hlcs;
    const origins = new Uint16Array(cap);
    origins.set(this.origins);
    this.origins = origins;
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
    return this.hlcs[i]!;
  }

  originAt(i: number): number {
    return this.origins[i]!;
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
      hlcs: this.hlcs.slice(0, n),
      origins: this.origins.slice(0, n),
    };
  }

  /** Keeps only the values for which `keep(time, hlc, origin)` holds; returns how many were removed. */
  retain(keep: (time: bigint, hlc: bigint, origin: number) => boolean): number {
    let w = 0;
    const n = this.length;
    for (let r = 0; r < n; r++) {
      if (!keep(this.times[r]!, this.hlcs[r]!, this.origins[r]!)) continue;
      if (w !== r) {
        this.times[w] = this.times[r]!;
        if (this.floats !== null) this.floats[w] = this.floats[r]!;
        else this.others![w] = this.others![r]!;
        this.hlcs[w] = this.hlcs[r]!;
        this.origins[w] = this.origins[r]!;
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
    this.hlcs = new BigInt64Array(INITIAL_CAPACITY);
    this.origins = new Uint16Array(INITIAL_CAPACITY);
    if (this.floats !== null) this.floats = new Float64Array(INITIAL_CAPACITY);
    else this.others = [];
  }
}
