/**
 * Chunk rows: a time-ordered run of one series and field, each column compressed with the
 * codec for its type. Versions are kept per value (they decide conflicts on both twins),
 * and the origin column collapses to one number when a chunk has a single writer.
 */
import {
  decodeBools,
  decodeClocks,
  decodeFloats,
  decodeInts,
  decodeSmallInts,
  decodeStrings,
  decodeTimes,
  decodeUints,
  encodeBools,
  encodeClocks,
  encodeFloats,
  encodeInts,
  encodeSmallInts,
  encodeStrings,
  encodeTimes,
  encodeUints,
  FORMAT,
  readColumnHeader,
} from "../codec/index.ts";
import type { ColumnHeader, ColumnKind } from "../codec/format.ts";
import { TsdbError } from "../errors.ts";
import type { FieldType } from "../lineprotocol/types.ts";
import { ROW_OVERHEAD, type PageFit } from "./pagefit.ts";
import { sliceIndex, type Run, type Values } from "./run.ts";
import { fromNumbers, toNumbers } from "./words.ts";

export interface ChunkColumns {
  readonly minTime: bigint;
  readonly maxTime: bigint;
  readonly count: number;
  readonly times: Uint8Array;
  readonly vals: Uint8Array;
  readonly hlcs: Uint8Array;
  readonly originId: number | null;
  readonly origins: Uint8Array | null;
  /** The newest version in the chunk. */
  readonly maxHlc: bigint;
}

/** A chunk row waiting to be inserted with the rest of its step's rows. */
export interface ChunkRow {
  readonly seriesId: number;
  readonly fieldId: number;
  readonly c: ChunkColumns;
  /** The run `c` encodes (so a cut need not decode it). */
  readonly run: Run;
}

/** A run encoded as one chunk row. */
export interface EncodedRun {
  readonly c: ChunkColumns;
  readonly run: Run;
}

/**
 * The time and version columns of the last run encoded with it, and their encodings. The
 * fields of one series are mostly written together, so their runs share both columns: a
 * flush encodes them once per buffer instead of once per field (with ten fields they were half
 * of what encoding a flush cost). A column is reused only when it holds exactly the same values.
 */
export class SharedColumns {
  private times: BigInt64Array | null = null;
  private encodedTimes: Uint8Array = new Uint8Array(0);
  private hlcs: BigInt64Array | null = null;
  private encodedHlcs: Uint8Array = new Uint8Array(0);
  private maxHlc = 0n;

  timesOf(times: BigInt64Array): Uint8Array {
    if (this.times === null || !sameWords(this.times, times)) {
      this.times = times;
      this.encodedTimes = encodeTimes(times);
    }
    return this.encodedTimes;
  }

  /** The encoded version column and the newest version in it. */
  versionsOf(hlcs: BigInt64Array): readonly [Uint8Array, bigint] {
    if (this.hlcs === null || !sameWords(this.hlcs, hlcs)) {
      // Clocks are safe integers: find the largest as doubles (no bigint per value).
      const clocks = toNumbers(hlcs);
      this.hlcs = hlcs;
      this.maxHlc = BigInt(maxClock(clocks));
      this.encodedHlcs = encodeVersions(hlcs, clocks);
    }
    return [this.encodedHlcs, this.maxHlc];
  }
}

/** Whether two int64 columns hold the same values (compared as 32-bit words, no bigints). */
function sameWords(a: BigInt64Array, b: BigInt64Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  const x = new Int32Array(a.buffer, a.byteOffset, a.length * 2);
  const y = new Int32Array(b.buffer, b.byteOffset, b.length * 2);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Encodes a time-ordered, non-empty run (its time and version columns through `shared`, when given). */
export function encodeChunk(run: Run, type: FieldType, shared: SharedColumns = new SharedColumns()): ChunkColumns {
  const n = run.times.length;
  const [hlcs, maxHlc] = shared.versionsOf(run.hlcs);
  let originId: number | null = null;
  let origins: Uint8Array | null = null;
  if (typeof run.origins === "number") originId = run.origins;
  else origins = encodeSmallInts(run.origins);
  return {
    minTime: run.times[0]!,
    maxTime: run.times[n - 1]!,
    count: n,
    times: shared.timesOf(run.times),
    vals: encodeValues(run.values, type),
    hlcs,
    originId,
    origins,
    maxHlc,
  };
}

/**
 * A run whose values come from several nodes in at most this many stretches (a twin's few
 * points, then this node's) is stored as a chunk per stretch, each of one origin; one whose
 * writers interleave more stays mixed.
 */
const MAX_ORIGIN_STRETCHES = 4;

/**
 * Encodes a time-ordered, non-empty run as rows of at most `maxPoints` values, each cut
 * further where `fit` finds rows of that size sit badly in pages, and where the writer
 * changes (see MAX_ORIGIN_STRETCHES): a chunk of one origin is sent to a catching-up twin as
 * it is stored, one of several has to be decoded, filtered and encoded again.
 */
export function encodeRows(run: Run, type: FieldType, maxPoints: number, fit: PageFit, shared = new SharedColumns()): EncodedRun[] {
  const stretches = byWriter(run);
  if (stretches.length > 1) return stretches.flatMap((s) => encodeRows(s, type, maxPoints, fit, shared));
  const out: EncodedRun[] = [];
  const n = run.times.length;
  for (let from = 0; from < n; from += maxPoints) {
    const slice = sliceIndex(run, from, Math.min(n, from + maxPoints));
    const whole = encodeChunk(slice, type, shared);
    const counts = fit.counts(whole.count, rowBytes(whole));
    if (counts.length === 1) {
      out.push({ c: whole, run: slice });
      continue;
    }
    let at = 0;
    for (const c of counts) {
      const part = sliceIndex(slice, at, at + c);
      out.push({ c: encodeChunk(part, type, shared), run: part });
      at += c;
    }
  }
  return out;
}

/** The run cut where its origin changes, or the run alone (one origin, or writers interleaved). */
function byWriter(run: Run): Run[] {
  const origins = run.origins;
  if (typeof origins === "number") return [run];
  const cuts = [0];
  for (let i = 1; i < origins.length; i++) {
    if (origins[i] !== origins[i - 1]) {
      cuts.push(i);
      if (cuts.length > MAX_ORIGIN_STRETCHES) return [run];
    }
  }
  if (cuts.length === 1) return [origins.length === 0 ? run : { ...run, origins: origins[0]! }];
  cuts.push(origins.length);
  return cuts.slice(1).map((end, k) => sliceIndex(run, cuts[k]!, end));
}

/** About the bytes of a chunk's row: its columns and a fixed overhead (what `PageFit` plans with). */
function rowBytes(c: Pick<ChunkColumns, "times" | "vals" | "hlcs" | "origins">): number {
  return c.times.length + c.vals.length + c.hlcs.length + (c.origins?.length ?? 0) + ROW_OVERHEAD;
}

/** The newest of a non-empty run of clocks (safe integers, as doubles: no bigint per value). */
export function maxClock(clocks: Float64Array): number {
  let max = clocks[0]!;
  for (let i = 1; i < clocks.length; i++) if (clocks[i]! > max) max = clocks[i]!;
  return max;
}

/**
 * Checks a chunk's columns against its count and type from their headers alone, without
 * decoding them: what a checksummed chunk from the twin, stored as it came, gets instead of a
 * full decode (the checksum covers the bytes, this the sender's bookkeeping).
 */
export function checkChunkHeaders(c: ChunkColumns, type: FieldType): void {
  const refuse = (why: string): never => {
    throw new TsdbError("corrupt_frame", `chunk refused: ${why}`);
  };
  if (!Number.isSafeInteger(c.count) || c.count < 1) refuse(`count ${c.count}`);
  if (c.minTime > c.maxTime) refuse(`first time ${c.minTime} after last time ${c.maxTime}`);
  const column = (buf: Uint8Array, kind: ColumnKind, what: string): void => {
    let h: ColumnHeader;
    try {
      h = readColumnHeader(buf);
    } catch (e) {
      return refuse(`${what} column: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (h.kind !== kind) refuse(`${what} column holds ${h.kind} values, not ${kind}`);
    if (h.count !== c.count) refuse(`${what} column holds ${h.count} values, not ${c.count}`);
  };
  column(c.times, "time", "time");
  column(c.vals, type, "value");
  let v: VersionParts;
  try {
    v = versionParts(c.hlcs);
  } catch (e) {
    return refuse(e instanceof Error ? e.message : String(e));
  }
  if (v.form === "runs") column(v.values, "clock", "version");
  else if (v.form === "times") column(v.values, "time", "version");
  else column(v.values, "integer", "version index");
}

/** Decodes a chunk row back into a run. */
export function decodeChunk(c: Pick<ChunkColumns, "times" | "vals" | "hlcs" | "originId" | "origins">, type: FieldType): Run {
  return {
    times: decodeTimes(c.times),
    values: decodeValues(c.vals, type),
    hlcs: decodeVersions(c.hlcs),
    origins: c.origins === null ? (c.originId ?? 0) : decodeSmallInts(c.origins),
  };
}

function encodeValues(values: Values, type: FieldType): Uint8Array {
  switch (type) {
    case "float":
      return encodeFloats(values as Float64Array);
    case "integer":
      return encodeInts(values as BigInt64Array);
    case "unsigned":
      return encodeUints(values as BigUint64Array);
    case "boolean":
      return encodeBools(values as boolean[]);
    case "string":
      return encodeStrings(values as string[]);
  }
}

function decodeValues(buf: Uint8Array, type: FieldType): Values {
  switch (type) {
    case "float":
      return decodeFloats(buf);
    case "integer":
      return decodeInts(buf);
    case "unsigned":
      return decodeUints(buf);
    case "boolean":
      return decodeBools(buf);
    case "string":
      return decodeStrings(buf);
  }
}

/**
 * Version columns start with a byte saying how the clocks are stored:
 *   0  every clock (a time column, delta-of-delta);
 *   1  the distinct clocks once (a time column), then an index into them per value (an integer column);
 *   2  runs of equal clocks (a clock column: milliseconds, counters and run lengths apart).
 * Chunks written before the byte existed hold a bare time column, whose first byte is 0x10 or 0x11.
 */
const VERSIONS_PLAIN = 0;
const VERSIONS_DICT = 1;
const VERSIONS_RUNS = 2;
/** The dictionary is tried when more than one run in this many starts with a lower clock (see encodeVersions). */
const DICTIONARY_FALLS_PER_RUN = 8;

/**
 * Encodes the version clocks of a chunk, in the smallest of the forms worth trying. One
 * request (one clock) usually puts several values into a series, and a chunk from one writer
 * has rising clocks, so runs are the usual winner: for rising clocks they are the dictionary
 * form with the index as run lengths, and were smaller on every chunk of the ingest benchmark,
 * so the dictionary is only tried for clocks that often fall (see DICTIONARY_FALLS_PER_RUN).
 */
export function encodeVersions(hlcs: BigInt64Array, clocks: Float64Array = toNumbers(hlcs)): Uint8Array {
  const n = hlcs.length;
  // Clocks are safe integers, so plain numbers stand in for them (no bigint per value).
  let safe = true;
  let runs = n === 0 ? 0 : 1;
  let falls = 0;
  for (let i = 0; i < n; i++) {
    const c = clocks[i]!;
    // toNumbers reads a negative int64 as 2^63 or more.
    if (c > Number.MAX_SAFE_INTEGER) safe = false;
    if (i > 0 && c !== clocks[i - 1]) {
      runs++;
      if (c < clocks[i - 1]!) falls++;
    }
  }
  // Never written by this code, but the time column stores any int64 exactly.
  if (!safe) return tagged(VERSIONS_PLAIN, encodeTimes(hlcs));
  let best = tagged(VERSIONS_RUNS, encodeClocks(clocks));
  // About a clock per value: clocks at a regular step cost nothing per value as a time column.
  if (runs * 2 > n) best = smaller(best, tagged(VERSIONS_PLAIN, encodeTimes(hlcs)));
  // Interleaved (a merge of two writers' values): a clock recurring far apart is stored once
  // in a dictionary. A few falls are requests that committed out of turn, whose clocks each
  // still form about one run, so the dictionary saves next to nothing; trying it (a sort per
  // chunk) took 7% of the writer thread's time under the 8-connection ingest benchmark.
  if (falls * DICTIONARY_FALLS_PER_RUN > runs) best = smaller(best, encodeDictionary(clocks));
  return best;
}

/** The distinct clocks once (sorted natively, no Set or Map) and each value's slot, found by bisection. */
function encodeDictionary(clocks: Float64Array): Uint8Array {
  const n = clocks.length;
  const sorted = clocks.slice().sort();
  let u = 0;
  for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[u - 1]) sorted[u++] = sorted[i]!;
  const distinct = sorted.subarray(0, u);
  const index = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = clocks[i]!;
    let lo = 0;
    let hi = u - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (distinct[mid]! < c) lo = mid + 1;
      else hi = mid;
    }
    index[i] = lo;
  }
  const dict = encodeTimes(fromNumbers(distinct));
  const idx = encodeInts(fromNumbers(index));
  const out = new Uint8Array(1 + 4 + dict.length + idx.length);
  out[0] = VERSIONS_DICT;
  new DataView(out.buffer).setUint32(1, dict.length, true);
  out.set(dict, 5);
  out.set(idx, 5 + dict.length);
  return out;
}

/**
 * Where a version column's values are, by its form: `values` holds an entry per value
 * (clocks as runs, clocks as a time column, or indexes into `dict`, the distinct clocks).
 */
type VersionParts =
  | { readonly form: "runs" | "times"; readonly values: Uint8Array }
  | { readonly form: "dict"; readonly values: Uint8Array; readonly dict: Uint8Array };

function versionParts(buf: Uint8Array): VersionParts {
  if (buf[0] === VERSIONS_RUNS) return { form: "runs", values: buf.subarray(1) };
  if (buf[0] === VERSIONS_PLAIN) return { form: "times", values: buf.subarray(1) };
  // Chunks written before versions had a format byte hold a bare time column.
  if (buf[0] === FORMAT.TIME_RAW || buf[0] === FORMAT.TIME_DOD) return { form: "times", values: buf };
  if (buf[0] !== VERSIONS_DICT || buf.length < 5) throw new TsdbError("internal", `unknown version column format ${buf[0]}`);
  const dictLength = new DataView(buf.buffer, buf.byteOffset + 1, 4).getUint32(0, true);
  return { form: "dict", values: buf.subarray(5 + dictLength), dict: buf.subarray(5, 5 + dictLength) };
}

/** Decodes a version column in any of its forms, old ones included. */
export function decodeVersions(buf: Uint8Array): BigInt64Array {
  const parts = versionParts(buf);
  if (parts.form !== "dict") return parts.form === "runs" ? fromNumbers(decodeClocks(parts.values)) : decodeTimes(parts.values);
  const dict = toNumbers(decodeTimes(parts.dict));
  const index = toNumbers(decodeInts(parts.values));
  const out = new Float64Array(index.length);
  for (let i = 0; i < index.length; i++) {
    const h = dict[index[i]!];
    if (h === undefined) throw new TsdbError("internal", "version column index out of range");
    out[i] = h;
  }
  return fromNumbers(out);
}

function smaller(a: Uint8Array, b: Uint8Array): Uint8Array {
  return b.length < a.length ? b : a;
}

function tagged(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.length);
  out[0] = tag;
  out.set(body, 1);
  return out;
}
