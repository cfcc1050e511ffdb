/**
 * A run: the values of one series and field as parallel columns (time, value, version).
 * Hot buffers, decoded chunks and query inputs are all runs; `mergeRuns` turns any number of
 * them into one time-ordered run with a single value per timestamp, the one with the highest
 * version (hybrid logical clock, then node id), so the result is the same on both twins
 * whatever order the writes arrived in.
 */
import type { FieldType, FieldValue } from "../lineprotocol/types.ts";

export type Values = Float64Array | BigInt64Array | BigUint64Array | boolean[] | string[];

export interface Run {
  readonly times: BigInt64Array;
  readonly values: Values;
  /** Version clocks (hybrid logical clock of the frame that wrote each value). */
  readonly hlcs: BigInt64Array;
  /** Node number of each value, or one number for all of them. */
  readonly origins: Uint16Array | number;
}

/** An empty value column of the given type with room for `n` values. */
export function newValues(type: FieldType, n: number): Values {
  switch (type) {
    case "float":
      return new Float64Array(n);
    case "integer":
      return new BigInt64Array(n);
    case "unsigned":
      return new BigUint64Array(n);
    case "boolean":
      return new Array<boolean>(n).fill(false);
    case "string":
      return new Array<string>(n).fill("");
  }
}

export function valueAt(values: Values, i: number): FieldValue {
  return values[i]!;
}

function originAt(r: Run, i: number): number {
  return typeof r.origins === "number" ? r.origins : r.origins[i]!;
}

/** Compares versions; `nodeName` maps node numbers to ids so ties break the same on both twins. */
export type VersionOrder = (hlcA: bigint, originA: number, hlcB: bigint, originB: number) => number;

export function versionOrder(nodeName: (id: number) => string): VersionOrder {
  return (ha, oa, hb, ob) => {
    if (ha !== hb) return ha < hb ? -1 : 1;
    if (oa === ob) return 0;
    const na = nodeName(oa);
    const nb = nodeName(ob);
    return na < nb ? -1 : na > nb ? 1 : 0;
  };
}

/** True when times strictly increase (no duplicate timestamps). */
function strictlyIncreasing(times: BigInt64Array): boolean {
  for (let i = 1; i < times.length; i++) if (times[i - 1]! >= times[i]!) return false;
  return true;
}

/** Merges runs into one time-ordered run keeping, per timestamp, the value with the highest version. */
export function mergeRuns(runs: readonly Run[], type: FieldType, order: VersionOrder): Run {
  const nonEmpty = runs.filter((r) => r.times.length > 0);
  if (nonEmpty.length === 0) return { times: new BigInt64Array(0), values: newValues(type, 0), hlcs: new BigInt64Array(0), origins: 0 };
  if (nonEmpty.length === 1) {
    const only = nonEmpty[0]!;
    return strictlyIncreasing(only.times) ? only : sortOneRun(only, type, order);
  }
  // Fast path: runs already in order and not overlapping (the usual case of flushed chunks).
  let disjoint = true;
  for (let k = 0; k < nonEmpty.length && disjoint; k++) {
    const r = nonEmpty[k]!;
    if (!strictlyIncreasing(r.times)) disjoint = false;
    else if (k > 0) {
      const prev = nonEmpty[k - 1]!;
      if (prev.times[prev.times.length - 1]! >= r.times[0]!) disjoint = false;
    }
  }
  let total = 0;
  for (const r of nonEmpty) total += r.times.length;
  if (disjoint) return concatRuns(nonEmpty, type, total);
  // Flatten into (run, index) references, then sort those.
  const refRun = new Uint32Array(total);
  const refIdx = new Uint32Array(total);
  let at = 0;
  for (let k = 0; k < nonEmpty.length; k++) {
    const n = nonEmpty[k]!.times.length;
    for (let i = 0; i < n; i++) {
      refRun[at] = k;
      refIdx[at] = i;
      at++;
    }
  }
  const perm = sortedOrder(nonEmpty, refRun, refIdx, order);
  // Keep the last of each equal-time group: after the sort it has the highest version.
  const keep: number[] = [];
  for (let i = 0; i < total; i++) {
    const p = perm[i]!;
    if (i + 1 < total) {
      const q = perm[i + 1]!;
      if (nonEmpty[refRun[p]!]!.times[refIdx[p]!] === nonEmpty[refRun[q]!]!.times[refIdx[q]!]) continue;
    }
    keep.push(p);
  }
  const n = keep.length;
  const times = new BigInt64Array(n);
  const values = newValues(type, n);
  const hlcs = new BigInt64Array(n);
  const origins = new Uint16Array(n);
  for (let j = 0; j < n; j++) {
    const p = keep[j]!;
    const r = nonEmpty[refRun[p]!]!;
    const i = refIdx[p]!;
    times[j] = r.times[i]!;
    (values as unknown as FieldValue[])[j] = r.values[i]!;
    hlcs[j] = r.hlcs[i]!;
    origins[j] = originAt(r, i);
  }
  return { times, values, hlcs, origins: compactOrigins(origins) };
}

/** Runs in time order with no time in two of them, end to end. */
function concatRuns(runs: readonly Run[], type: FieldType, total: number): Run {
  const times = new BigInt64Array(total);
  const values = newValues(type, total);
  const hlcs = new BigInt64Array(total);
  const first = runs[0]!.origins;
  const one = typeof first === "number" && runs.every((r) => r.origins === first);
  const origins = one ? null : new Uint16Array(total);
  let at = 0;
  for (const r of runs) {
    const n = r.times.length;
    times.set(r.times, at);
    hlcs.set(r.hlcs, at);
    if (Array.isArray(values)) for (let i = 0; i < n; i++) (values as FieldValue[])[at + i] = r.values[i]!;
    else (values as Float64Array).set(r.values as unknown as Float64Array, at);
    if (origins !== null) {
      if (typeof r.origins === "number") origins.fill(r.origins, at, at + n);
      else origins.set(r.origins, at);
    }
    at += n;
  }
  return { times, values, hlcs, origins: origins === null ? (first as number) : compactOrigins(origins) };
}

/** Sorts one run by time then version and keeps the last value per time (the flush of an unordered buffer). */
function sortOneRun(r: Run, type: FieldType, order: VersionOrder): Run {
  const n = r.times.length;
  const refRun = new Uint32Array(n);
  const refIdx = new Uint32Array(n);
  for (let i = 0; i < n; i++) refIdx[i] = i;
  const perm = sortedOrder([r], refRun, refIdx, order);
  let kept = 0;
  const keep = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const p = perm[i]!;
    if (i + 1 < n && r.times[p] === r.times[perm[i + 1]!]) continue;
    keep[kept++] = p;
  }
  const times = new BigInt64Array(kept);
  const values = newValues(type, kept);
  const hlcs = new BigInt64Array(kept);
  const origins = typeof r.origins === "number" ? r.origins : new Uint16Array(kept);
  for (let j = 0; j < kept; j++) {
    const p = keep[j]!;
    times[j] = r.times[p]!;
    (values as unknown as FieldValue[])[j] = r.values[p]!;
    hlcs[j] = r.hlcs[p]!;
    if (typeof origins !== "number") origins[j] = (r.origins as Uint16Array)[p]!;
  }
  return { times, values, hlcs, origins: typeof origins === "number" ? origins : compactOrigins(origins) };
}

/**
 * The order of all values by time, then version. Times are compared as numbers relative to
 * the smallest one when the span allows it exactly (2^53 ns is 104 days), which is far
 * cheaper than comparing bigints.
 */
function sortedOrder(runs: readonly Run[], refRun: Uint32Array, refIdx: Uint32Array, order: VersionOrder): Uint32Array {
  const total = refRun.length;
  let min = runs[0]!.times[0]!;
  let max = min;
  for (const r of runs) {
    for (let i = 0; i < r.times.length; i++) {
      const t = r.times[i]!;
      if (t < min) min = t;
      if (t > max) max = t;
    }
  }
  const idx = Array.from({ length: total }, (_, i) => i);
  const tie = (a: number, b: number): number => {
    const ra = runs[refRun[a]!]!;
    const rb = runs[refRun[b]!]!;
    const ia = refIdx[a]!;
    const ib = refIdx[b]!;
    return order(ra.hlcs[ia]!, originAt(ra, ia), rb.hlcs[ib]!, originAt(rb, ib));
  };
  if (max - min < 2n ** 53n) {
    const keys = new Float64Array(total);
    for (let i = 0; i < total; i++) keys[i] = Number(runs[refRun[i]!]!.times[refIdx[i]!]! - min);
    idx.sort((a, b) => keys[a]! - keys[b]! || tie(a, b));
  } else {
    idx.sort((a, b) => {
      const ta = runs[refRun[a]!]!.times[refIdx[a]!]!;
      const tb = runs[refRun[b]!]!.times[refIdx[b]!]!;
      return ta !== tb ? (ta < tb ? -1 : 1) : tie(a, b);
    });
  }
  return Uint32Array.from(idx);
}

/** One number when every value has the same origin, else the column. */
export function compactOrigins(origins: Uint16Array): Uint16Array | number {
  if (origins.length === 0) return 0;
  const first = origins[0]!;
  for (let i = 1; i < origins.length; i++) if (origins[i] !== first) return origins;
  return first;
}

/** The part of a run with lo <= time <= hi (the run must be time-ordered). */
export function sliceRun(r: Run, lo: bigint, hi: bigint): Run {
  let a = 0;
  let b = r.times.length;
  while (a < b && r.times[a]! < lo) a++;
  while (b > a && r.times[b - 1]! > hi) b--;
  if (a === 0 && b === r.times.length) return r;
  return {
    times: r.times.subarray(a, b),
    values: r.values.slice(a, b) as Values,
    hlcs: r.hlcs.subarray(a, b),
    origins: typeof r.origins === "number" ? r.origins : r.origins.subarray(a, b),
  };
}

/** Values `from` up to `to` (exclusive) of a run, as a run of their own. */
export function sliceIndex(r: Run, from: number, to: number): Run {
  if (from === 0 && to === r.times.length) return r;
  return {
    times: r.times.slice(from, to),
    values: r.values.slice(from, to) as Values,
    hlcs: r.hlcs.slice(from, to),
    origins: typeof r.origins === "number" ? r.origins : compactOrigins(r.origins.slice(from, to)),
  };
}
