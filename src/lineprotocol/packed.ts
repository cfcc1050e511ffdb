/**
 * A parsed batch in a form that crosses to another thread cheaply: typed arrays (moved, not
 * copied) plus one table of the distinct names. Handing the plain arrays of a PointBatch to
 * postMessage cloned every string of every line and cost more than parsing itself.
 *
 * Pure: no I/O, no threads. `packBatch` runs where the body was parsed, `unpackBatch` where
 * the points are stored.
 */
import { lineTexts } from "./parse.ts";
import type { FieldType, FieldValue, LineError, ParseResult, PointBatch } from "./types.ts";

const TYPES: readonly FieldType[] = ["float", "integer", "unsigned", "boolean", "string"];
const FLOAT = 0;
const INTEGER = 1;
const UNSIGNED = 2;
const BOOLEAN = 3;
const STRING = 4;

export interface PackedBatch {
  readonly length: number;
  /** Every distinct measurement, series key and field key of the batch, once. */
  readonly names: string[];
  readonly measurement: Int32Array;
  readonly seriesKey: Int32Array;
  readonly time: BigInt64Array;
  readonly line: Int32Array;
  readonly rawStart: Int32Array;
  readonly rawEnd: Int32Array;
  readonly fieldStart: Int32Array;
  readonly fieldKey: Int32Array;
  /** Index into TYPES. */
  readonly fieldType: Uint8Array;
  /** Float values, and booleans as 0/1, by field; empty when the batch has none. */
  readonly numbers: Float64Array;
  /**
   * Integer values, and unsigned ones as their two's-complement bit pattern, by field; empty
   * when the batch has none.
   */
  readonly integers: BigInt64Array;
  /** String values, in field order. */
  readonly strings: string[];
  readonly errors: LineError[];
}

/** Packs a parse result; `transfer` lists the buffers to move with it. */
export function packBatch(result: ParseResult): { packed: PackedBatch; transfer: ArrayBuffer[] } {
  const b = result.batch;
  const n = b.length;
  const names: string[] = [];
  const ids = new Map<string, number>();
  const nameId = (s: string): number => {
    let id = ids.get(s);
    if (id === undefined) {
      id = names.length;
      names.push(s);
      ids.set(s, id);
    }
    return id;
  };
  const measurement = new Int32Array(n);
  const seriesKey = new Int32Array(n);
  const time = new BigInt64Array(n);
  const line = new Int32Array(n);
  const rawStart = new Int32Array(n);
  const rawEnd = new Int32Array(n);
  const fieldStart = new Int32Array(n + 1);
  // Consecutive lines usually share their measurement and series key string: skip the map then.
  let lastM = "";
  let lastMId = -1;
  let lastS = "";
  let lastSId = -1;
  for (let i = 0; i < n; i++) {
    const m = b.measurement[i]!;
    if (m !== lastM || lastMId < 0) {
      lastM = m;
      lastMId = nameId(m);
    }
    measurement[i] = lastMId;
    const s = b.seriesKey[i]!;
    if (s !== lastS || lastSId < 0) {
      lastS = s;
      lastSId = nameId(s);
    }
    seriesKey[i] = lastSId;
    time[i] = b.time[i]!;
    line[i] = b.line[i]!;
    rawStart[i] = b.rawStart[i]!;
    rawEnd[i] = b.rawEnd[i]!;
    fieldStart[i] = b.fieldStart[i]!;
  }
  const nf = n === 0 ? 0 : b.fieldStart[n]!;
  fieldStart[n] = nf;
  const fieldKey = new Int32Array(nf);
  const fieldType = new Uint8Array(nf);
  // Made when a value of their kind first comes: a body of floats (most sensor data) or of
  // integers (most of Telegraf's) carries no zeroed array of the other, 800 KB for a body of
  // 10,000 lines of 10 fields, made, moved and collected for nothing.
  let numbers = new Float64Array(0);
  let integers = new BigInt64Array(0);
  const strings: string[] = [];
  for (let f = 0; f < nf; f++) {
    fieldKey[f] = nameId(b.fieldKey[f]!);
    const v = b.fieldValue[f]!;
    switch (b.fieldType[f]!) {
      case "float":
        fieldType[f] = FLOAT;
        if (numbers.length === 0) numbers = new Float64Array(nf);
        numbers[f] = v as number;
        break;
      case "integer":
        fieldType[f] = INTEGER;
        if (integers.length === 0) integers = new BigInt64Array(nf);
        integers[f] = v as bigint;
        break;
      case "unsigned":
        fieldType[f] = UNSIGNED;
        if (integers.length === 0) integers = new BigInt64Array(nf);
        integers[f] = BigInt.asIntN(64, v as bigint);
        break;
      case "boolean":
        fieldType[f] = BOOLEAN;
        if (numbers.length === 0) numbers = new Float64Array(nf);
        numbers[f] = v ? 1 : 0;
        break;
      case "string":
        fieldType[f] = STRING;
        strings.push(v as string);
        break;
    }
  }
  const packed: PackedBatch = {
    length: n,
    names,
    measurement,
    seriesKey,
    time,
    line,
    rawStart,
    rawEnd,
    fieldStart,
    fieldKey,
    fieldType,
    numbers,
    integers,
    strings,
    errors: result.errors,
  };
  const transfer = [measurement, seriesKey, time, line, rawStart, rawEnd, fieldStart, fieldKey, fieldType, numbers, integers].map(
    (a) => a.buffer as ArrayBuffer,
  );
  return { packed, transfer };
}

/**
 * The parse result a packed batch stands for. `text` gives the decoded body, needed only if a
 * line's own text is asked for (see PointBatch.raw).
 */
export function unpackBatch(p: PackedBatch, text: () => string): ParseResult {
  const names = p.names;
  const n = p.length;
  const measurement = new Array<string>(n);
  const seriesKey = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    measurement[i] = names[p.measurement[i]!]!;
    seriesKey[i] = names[p.seriesKey[i]!]!;
  }
  const nf = p.fieldKey.length;
  const fieldKey = new Array<string>(nf);
  const fieldType = new Array<FieldType>(nf);
  let onlyFloats = true;
  for (let f = 0; f < nf; f++) {
    fieldKey[f] = names[p.fieldKey[f]!]!;
    const t = p.fieldType[f]!;
    fieldType[f] = TYPES[t]!;
    if (t !== FLOAT) onlyFloats = false;
  }
  let fieldValue: ArrayLike<FieldValue>;
  if (onlyFloats) fieldValue = p.numbers;
  else {
    const values = new Array<FieldValue>(nf);
    let s = 0;
    for (let f = 0; f < nf; f++) {
      switch (p.fieldType[f]!) {
        case FLOAT:
          values[f] = p.numbers[f]!;
          break;
        case INTEGER:
          values[f] = p.integers[f]!;
          break;
        case UNSIGNED:
          values[f] = BigInt.asUintN(64, p.integers[f]!);
          break;
        case BOOLEAN:
          values[f] = p.numbers[f] === 1;
          break;
        default:
          values[f] = p.strings[s++]!;
      }
    }
    fieldValue = values;
  }
  const batch = new UnpackedBatch(p, text, measurement, seriesKey, fieldKey, fieldType, fieldValue);
  return { batch, errors: p.errors };
}

class UnpackedBatch implements PointBatch {
  private rawLines: string[] | null = null;
  readonly length: number;
  readonly time: ArrayLike<bigint>;
  readonly line: ArrayLike<number>;
  readonly rawStart: ArrayLike<number>;
  readonly rawEnd: ArrayLike<number>;
  readonly fieldStart: ArrayLike<number>;

  constructor(
    p: PackedBatch,
    private readonly text: () => string,
    readonly measurement: readonly string[],
    readonly seriesKey: readonly string[],
    readonly fieldKey: readonly string[],
    readonly fieldType: readonly FieldType[],
    readonly fieldValue: ArrayLike<FieldValue>,
  ) {
    this.length = p.length;
    this.time = p.time;
    this.line = p.line;
    this.rawStart = p.rawStart;
    this.rawEnd = p.rawEnd;
    this.fieldStart = p.fieldStart;
  }

  get raw(): readonly string[] {
    return (this.rawLines ??= lineTexts(this.text(), this.rawStart, this.rawEnd));
  }
}
