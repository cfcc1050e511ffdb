/**
 * A hot buffer: the unflushed values of one series and field, appended in arrival order
 * (not necessarily time order). It remembers the first frame sequence it holds data from,
 * which bounds how far the frame log can be trimmed.
 */
import type { FieldType, FieldValue } from "../lineprotocol/types.ts";
import type { FieldEntry, SeriesEntry } from "./catalog.ts";
import { newValues, type Run, type Values } from "./run.ts";

const INITIAL_CAPACITY = 16;
/** Rough bytes per buffered value (time, value, version, origin) for the memory cap. */
export const BYTES_PER_HOT_VALUE = 26;

export class HotBuffer {
  length = 0;
  /** Sequence number of the oldest frame whose values are still only here. */
  firstSeq = 0;
  /** When (ms) the oldest unflushed value arrived. */
  firstAt = 0;
  /** True while every value arrived with a later time than the one before (no sort needed). */
  ordered = true;
  private lastTime = 0n;
  private times = new BigInt64Array(INITIAL_CAPACITY);
  private values: Values;
  private hlcs = new BigInt64Array(INITIAL_CAPACITY);
  private origins = new Uint16Array(INITIAL_CAPACITY);

  constructor(
    readonly series: SeriesEntry,
    readonly field: FieldEntry,
  ) {
    this.values = newValues(field.type, INITIAL_CAPACITY);
  }

  get type(): FieldType {
    return this.field.type;
  }

  push(time: bigint, value: FieldValue, hlc: bigint, origin: number, seq: number, nowMs: number): void {
    if (this.length === 0) {
      this.firstSeq = seq;
      this.firstAt = nowMs;
      this.ordered = true;
    } else if (time <= this.lastTime) {
      this.ordered = false;
    }
    this.lastTime = time;
    if (this.length === this.times.length) this.grow();
    const i = this.length++;
    this.times[i] = time;
    (this.values as FieldValue[])[i] = value;
    this.hlcs[i] = hlc;
    this.origins[i] = origin;
  }

  private grow(): void {
    const cap = this.times.length * 2;
    const times = new BigInt64Array(cap);
    times.set(this.times);
    this.times = times;
    const hlcs = new BigInt64Array(cap);
    hlcs.set(this.hlcs);
    this.hlcs = hlcs;
    const origins = new Uint16Array(cap);
    origins.set(this.origins);
    this.origins = origins;
    const values = newValues(this.field.type, cap);
    if (Array.isArray(values)) {
      for (let i = 0; i < this.length; i++) (values as FieldValue[])[i] = (this.values as FieldValue[])[i]!;
    } else {
      (values as Float64Array).set(this.values as Float64Array);
    }
    this.values = values;
  }

  /** A copy of the buffered values (arrival order). */
  snapshot(): Run {
    const n = this.length;
    return {
      times: this.times.slice(0, n),
      values: this.values.slice(0, n) as Values,
      hlcs: this.hlcs.slice(0, n),
      origins: this.origins.slice(0, n),
    };
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

  /** Keeps only the values for which `keep(time, hlc, origin)` holds; returns how many were removed. */
  retain(keep: (time: bigint, hlc: bigint, origin: number) => boolean): number {
    let w = 0;
    const n = this.length;
    for (let r = 0; r < n; r++) {
      if (!keep(this.times[r]!, this.hlcs[r]!, this.origins[r]!)) continue;
      if (w !== r) {
        this.times[w] = this.times[r]!;
        (this.values as FieldValue[])[w] = (this.values as FieldValue[])[r]!;
        this.hlcs[w] = this.hlcs[r]!;
        this.origins[w] = this.origins[r]!;
      }
      w++;
    }
    this.length = w;
    return n - w;
  }

  /** Empties the buffer and gives back its memory. */
  clear(): void {
    this.length = 0;
    this.firstSeq = 0;
    this.times = new BigInt64Array(INITIAL_CAPACITY);
    this.values = newValues(this.field.type, INITIAL_CAPACITY);
    this.hlcs = new BigInt64Array(INITIAL_CAPACITY);
    this.origins = new Uint16Array(INITIAL_CAPACITY);
  }
}
