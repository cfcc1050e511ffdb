/**
 * Aggregate and selector functions over GROUP BY time() buckets. Each accumulator takes
 * whole runs (one series and field) with a precomputed bucket index per value, so the
 * common dashboard case, mean() of floats, is one tight loop over typed arrays.
 *
 * Semantics follow InfluxDB 1.x (query/functions.go and the reducers in query/): median of
 * an even count is the midpoint of the two middle values, mode breaks ties towards the
 * smallest value, percentile picks the value at floor(n*p/100 + 0.5) - 1 of the sorted
 * values, stddev is the sample standard deviation, and the selectors (min, max, first,
 * last, percentile) remember which point they chose so its time and columns can be shown.
 */
import type { FieldType } from "../lineprotocol/types.ts";
import type { Values } from "../store/run.ts";
import type { Cell } from "./result.ts";

/** One aggregate or selector call's state across the buckets of one group. */
export interface Accumulator {
  /** Adds the values i in [0, n) whose mask is set (or all without mask) to bucket bidx[i]. */
  add(values: Values, times: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null, series: number): void;
  /** The bucket's result, or null when it received nothing. */
  result(b: number): Cell;
  /** For selectors: the chosen point's series index and time. */
  point?(b: number): { series: number; time: bigint } | null;
  /** For distinct(): every distinct value of the bucket, in order of first appearance. */
  rows?(b: number): Cell[];
}

export const FUNCTIONS = new Set([
  "mean",
  "median",
  "mode",
  "sum",
  "count",
  "min",
  "max",
  "first",
  "last",
  "spread",
  "stddev",
  "percentile",
  "distinct",
]);

/** Which field types each function accepts (InfluxDB refuses the rest). */
const NUMERIC: ReadonlySet<FieldType> = new Set(["float", "integer", "unsigned"]);
const ANY: ReadonlySet<FieldType> = new Set(["float", "integer", "unsigned", "string", "boolean"]);
export const ACCEPTS: Readonly<Record<string, ReadonlySet<FieldType>>> = {
  mean: NUMERIC,
  median: NUMERIC,
  sum: NUMERIC,
  spread: NUMERIC,
  stddev: NUMERIC,
  percentile: NUMERIC,
  min: new Set(["float", "integer", "unsigned", "boolean"]),
  max: new Set(["float", "integer", "unsigned", "boolean"]),
  mode: ANY,
  count: ANY,
  first: ANY,
  last: ANY,
  distinct: ANY,
};

/** Builds the accumulator for `fn` over a field of `type` with `n` buckets. */
export function newAccumulator(fn: string, type: FieldType, n: number, opts: { percentile?: number; countDistinct?: boolean } = {}): Accumulator {
  if (fn === "count" && opts.countDistinct) return new CollectAcc(n, "count_distinct", type, 0);
  switch (fn) {
    case "mean":
      return new MeanAcc(n);
    case "sum":
      return type === "float" ? new FloatSumAcc(n) : new IntSumAcc(n);
    case "count":
      return new CountAcc(n);
    case "min":
      return new ExtremeAcc(n, false);
    case "max":
      return new ExtremeAcc(n, true);
    case "first":
      return new EdgeAcc(n, false);
    case "last":
      return new EdgeAcc(n, true);
    case "spread":
      return new SpreadAcc(n, type);
    case "median":
    case "mode":
    case "stddev":
    case "percentile":
    case "distinct":
      return new CollectAcc(n, fn, type, opts.percentile ?? 0);
  }
  throw new Error(`no accumulator for ${fn}`);
}

class MeanAcc implements Accumulator {
  private readonly sum: Float64Array;
  private readonly count: Float64Array;
  constructor(n: number) {
    this.sum = new Float64Array(n);
    this.count = new Float64Array(n);
  }
  add(values: Values, _t: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null): void {
    const sum = this.sum;
    const count = this.count;
    const n = bidx.length;
    if (values instanceof Float64Array) {
      if (mask === null) {
        for (let i = 0; i < n; i++) {
          const b = bidx[i]!;
          sum[b]! += values[i]!;
          count[b]!++;
        }
      } else {
        for (let i = 0; i < n; i++) {
          if (mask[i] === 0) continue;
          const b = bidx[i]!;
          sum[b]! += values[i]!;
          count[b]!++;
        }
      }
      return;
    }
    for (let i = 0; i < n; i++) {
      if (mask !== null && mask[i] === 0) continue;
      const b = bidx[i]!;
      sum[b]! += Number(values[i] as bigint);
      count[b]!++;
    }
  }
  result(b: number): Cell {
    const c = this.count[b]!;
    return c === 0 ? null : this.sum[b]! / c;
  }
}

class FloatSumAcc implements Accumulator {
  private readonly sum: Float64Array;
  private readonly seen: Uint8Array;
  constructor(n: number) {
    this.sum = new Float64Array(n);
    this.seen = new Uint8Array(n);
  }
  add(values: Values, _t: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null): void {
    const v = values as Float64Array;
    for (let i = 0; i < bidx.length; i++) {
      if (mask !== null && mask[i] === 0) continue;
      const b = bidx[i]!;
      this.sum[b]! += v[i]!;
      this.seen[b] = 1;
    }
  }
  result(b: number): Cell {
    return this.seen[b] === 0 ? null : this.sum[b]!;
  }
}

/**
 * Integer sums are exact: InfluxDB wraps around at 2^63 and reports a negative sum of
 * positive values; tsdb-pair prints the true sum, which JSON can carry exactly.
 */
class IntSumAcc implements Accumulator {
  private readonly sum: Array<bigint | null>;
  constructor(n: number) {
    this.sum = new Array<bigint | null>(n).fill(null);
  }
  add(values: Values, _t: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null): void {
    const v = values as BigInt64Array | BigUint64Array;
    for (let i = 0; i < bidx.length; i++) {
      if (mask !== null && mask[i] === 0) continue;
      const b = bidx[i]!;
      this.sum[b] = (this.sum[b] ?? 0n) + v[i]!;
    }
  }
  result(b: number): Cell {
    return this.sum[b] ?? null;
  }
}

class CountAcc implements Accumulator {
  private readonly count: Float64Array;
  constructor(n: number) {
    this.count = new Float64Array(n);
  }
  add(_v: Values, _t: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null): void {
    const count = this.count;
    if (mask === null) for (let i = 0; i < bidx.length; i++) count[bidx[i]!]!++;
    else for (let i = 0; i < bidx.length; i++) if (mask[i] !== 0) count[bidx[i]!]!++;
  }
  result(b: number): Cell {
    const c = this.count[b]!;
    return c === 0 ? null : BigInt(c);
  }
}

type Scalar = number | bigint | boolean | string;

/** Orders scalars of one type; booleans as false < true. */
function cmp(a: Scalar, b: Scalar): number {
  if (typeof a === "boolean") return a === b ? 0 : a ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** min() / max(): ties go to the earliest point, as InfluxDB's reducers do. */
class ExtremeAcc implements Accumulator {
  private readonly value: Array<Scalar | null>;
  private readonly time: Array<bigint>;
  private readonly series: Int32Array;
  constructor(
    n: number,
    private readonly isMax: boolean,
  ) {
    this.value = new Array<Scalar | null>(n).fill(null);
    this.time = new Array<bigint>(n).fill(0n);
    this.series = new Int32Array(n);
  }
  add(values: Values, times: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null, series: number): void {
    const sign = this.isMax ? 1 : -1;
    for (let i = 0; i < bidx.length; i++) {
      if (mask !== null && mask[i] === 0) continue;
      const b = bidx[i]!;
      const v = values[i]! as Scalar;
      const cur = this.value[b];
      if (cur === null || cur === undefined) {
        this.value[b] = v;
        this.time[b] = times[i]!;
        this.series[b] = series;
        continue;
      }
      const c = cmp(v, cur) * sign;
      if (c > 0 || (c === 0 && times[i]! < this.time[b]!)) {
        this.value[b] = v;
        this.time[b] = times[i]!;
        this.series[b] = series;
      }
    }
  }
  result(b: number): Cell {
    return this.value[b] ?? null;
  }
  point(b: number) {
    return this.value[b] === null ? null : { series: this.series[b]!, time: this.time[b]! };
  }
}

/** first() / last() by time. */
class EdgeAcc implements Accumulator {
  private readonly value: Array<Scalar | null>;
  private readonly time: Array<bigint>;
  private readonly series: Int32Array;
  constructor(
    n: number,
    private readonly isLast: boolean,
  ) {
    this.value = new Array<Scalar | null>(n).fill(null);
    this.time = new Array<bigint>(n).fill(0n);
    this.series = new Int32Array(n);
  }
  add(values: Values, times: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null, series: number): void {
    for (let i = 0; i < bidx.length; i++) {
      if (mask !== null && mask[i] === 0) continue;
      const b = bidx[i]!;
      const t = times[i]!;
      const cur = this.value[b];
      const v = values[i]! as Scalar;
      // On equal times the larger value wins, as in InfluxDB's FirstReduce/LastReduce.
      const better =
        cur === null || cur === undefined || (this.isLast ? t > this.time[b]! : t < this.time[b]!) || (t === this.time[b]! && cmp(v, cur) > 0);
      if (better) {
        this.value[b] = v;
        this.time[b] = t;
        this.series[b] = series;
      }
    }
  }
  result(b: number): Cell {
    return this.value[b] ?? null;
  }
  point(b: number) {
    return this.value[b] === null ? null : { series: this.series[b]!, time: this.time[b]! };
  }
}

class SpreadAcc implements Accumulator {
  private readonly lo: Array<number | bigint | null>;
  private readonly hi: Array<number | bigint | null>;
  constructor(
    n: number,
    private readonly type: FieldType,
  ) {
    this.lo = new Array<number | bigint | null>(n).fill(null);
    this.hi = new Array<number | bigint | null>(n).fill(null);
  }
  add(values: Values, _t: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null): void {
    for (let i = 0; i < bidx.length; i++) {
      if (mask !== null && mask[i] === 0) continue;
      const b = bidx[i]!;
      const v = values[i] as number | bigint;
      const lo = this.lo[b];
      const hi = this.hi[b];
      if (lo === null || lo === undefined || v < lo) this.lo[b] = v;
      if (hi === null || hi === undefined || v > hi) this.hi[b] = v;
    }
  }
  result(b: number): Cell {
    const lo = this.lo[b];
    const hi = this.hi[b];
    if (lo === null || lo === undefined || hi === null || hi === undefined) return null;
    if (this.type === "float") return (hi as number) - (lo as number);
    return (hi as bigint) - (lo as bigint);
  }
}

/** Functions that need every value of a bucket: median, mode, stddev, percentile, distinct. */
class CollectAcc implements Accumulator {
  private readonly vals: Array<Scalar[] | undefined>;
  private readonly times: Array<bigint[] | undefined>;
  private readonly series: Array<number[] | undefined>;
  constructor(
    n: number,
    private readonly fn: string,
    private readonly type: FieldType,
    private readonly pct: number,
  ) {
    this.vals = new Array<Scalar[] | undefined>(n);
    this.times = new Array<bigint[] | undefined>(n);
    this.series = new Array<number[] | undefined>(n);
  }
  add(values: Values, times: BigInt64Array, bidx: Int32Array, mask: Uint8Array | null, series: number): void {
    const keepPoint = this.fn === "percentile" || this.fn === "distinct";
    for (let i = 0; i < bidx.length; i++) {
      if (mask !== null && mask[i] === 0) continue;
      const b = bidx[i]!;
      let list = this.vals[b];
      if (list === undefined) {
        list = this.vals[b] = [];
        if (keepPoint) {
          this.times[b] = [];
          this.series[b] = [];
        }
      }
      list.push(values[i]! as Scalar);
      if (keepPoint) {
        this.times[b]!.push(times[i]!);
        this.series[b]!.push(series);
      }
    }
  }

  result(b: number): Cell {
    const list = this.vals[b];
    if (list === undefined || list.length === 0) return null;
    switch (this.fn) {
      case "median":
        return median(list as Array<number | bigint>);
      case "mode":
        return mode(list);
      case "stddev":
        return stddev(list as Array<number | bigint>);
      case "count_distinct":
        return BigInt(new Set(list).size);
      case "percentile": {
        const i = this.percentileIndex(b);
        return i < 0 ? null : list[i]!;
      }
      case "distinct":
        return this.rows(b)[0] ?? null;
    }
    return null;
  }

  /** Index (into the bucket's lists) of the percentile's chosen point, or -1. */
  private percentileIndex(b: number): number {
    const list = this.vals[b]!;
    const order = Array.from(list.keys());
    const times = this.times[b]!;
    order.sort((x, y) => cmp(list[x]!, list[y]!) || (times[x]! < times[y]! ? -1 : times[x]! > times[y]! ? 1 : 0));
    const i = Math.floor((list.length * this.pct) / 100 + 0.5) - 1;
    if (i < 0 || i >= list.length) return -1;
    return order[i]!;
  }

  point(b: number) {
    if (this.fn !== "percentile" || this.vals[b] === undefined) return null;
    const i = this.percentileIndex(b);
    return i < 0 ? null : { series: this.series[b]![i]!, time: this.times[b]![i]! };
  }

  rows(b: number): Cell[] {
    const list = this.vals[b];
    if (list === undefined) return [];
    // Distinct values in the order their first point appears in time.
    const first = new Map<Scalar, bigint>();
    const times = this.times[b]!;
    for (let i = 0; i < list.length; i++) {
      const v = list[i]!;
      const t = times[i]!;
      const seen = first.get(v);
      if (seen === undefined || t < seen) first.set(v, t);
    }
    return [...first.entries()].sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)).map(([v]) => v);
  }

  get fieldType(): FieldType {
    return this.type;
  }
}

function median(list: Array<number | bigint>): Cell {
  const a = [...list].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const n = a.length;
  if (n % 2 === 1) return Number(a[(n - 1) / 2]!);
  const lo = Number(a[n / 2 - 1]!);
  const hi = Number(a[n / 2]!);
  return lo + (hi - lo) / 2;
}

function mode(list: Scalar[]): Cell {
  const counts = new Map<Scalar, number>();
  for (const v of list) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: Scalar | null = null;
  let bestCount = 0;
  for (const [v, c] of counts) {
    if (c > bestCount || (c === bestCount && best !== null && cmp(v, best) < 0)) {
      best = v;
      bestCount = c;
    }
  }
  return best;
}

function stddev(list: Array<number | bigint>): Cell {
  const n = list.length;
  // InfluxDB gives no value for a single point (the sample deviation is undefined).
  if (n < 2) return null;
  let sum = 0;
  for (const v of list) sum += Number(v);
  const mean = sum / n;
  let sq = 0;
  for (const v of list) {
    const d = Number(v) - mean;
    sq += d * d;
  }
  return Math.sqrt(sq / (n - 1));
}
