/**
 * Integer and unsigned columns: zig-zag deltas, bit-packed in blocks with run-length for
 * repeats (see packed.ts). Counters that grow by a constant step become one run; gauges that
 * wander cost the width of their typical step. Deltas wrap modulo 2^64, so the whole int64 and
 * uint64 ranges round-trip without a fallback.
 */
import { BitReader, BitWriter, corrupt, wordsOf } from "./bits.ts";
import { FORMAT, checkEncodeCount, readHeader, writeHeader } from "./format.ts";
import { readDeltas, writeDeltas } from "./packed.ts";

function encodeWords(format: number, what: string, words: Uint32Array, n: number): Uint8Array {
  checkEncodeCount(what, n);
  // Most columns pack well under a byte per value; the writer grows if not.
  const w = new BitWriter(16 + n * 2);
  writeHeader(w, format, n);
  writeDeltas(w, words, n);
  return w.finish();
}

function decodeWords(buf: Uint8Array, fn: string, what: string, format: number): Uint32Array {
  const r = new BitReader(buf, what);
  const { count } = readHeader(r, fn, [format]);
  const words = readDeltas(r, count);
  r.expectEnd();
  return words;
}

/** Encodes an int64 column. */
export function encodeInts(values: BigInt64Array): Uint8Array {
  return encodeWords(FORMAT.INT_PACKED, "integer column", wordsOf(values), values.length);
}

/** Decodes a column written by encodeInts. */
export function decodeInts(buf: Uint8Array): BigInt64Array {
  const words = decodeWords(buf, "decodeInts", "integer column", FORMAT.INT_PACKED);
  return new BigInt64Array(words.buffer, 0, words.length / 2);
}

/**
 * Encodes small non-negative integers (a chunk's origin column) exactly as encodeInts would
 * encode them as int64, without a bigint per value.
 */
export function encodeSmallInts(values: Uint16Array): Uint8Array {
  const n = values.length;
  const words = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) words[2 * i] = values[i]!;
  return encodeWords(FORMAT.INT_PACKED, "integer column", words, n);
}

/** Decodes a column of encodeSmallInts (or encodeInts of values 0..65535); other values are corrupt. */
export function decodeSmallInts(buf: Uint8Array): Uint16Array {
  const words = decodeWords(buf, "decodeSmallInts", "integer column", FORMAT.INT_PACKED);
  const n = words.length / 2;
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const lo = words[2 * i]!;
    if (words[2 * i + 1] !== 0 || lo > 0xffff) throw corrupt("integer column", `value ${i} is not a small integer`);
    out[i] = lo;
  }
  return out;
}

/** Encodes a uint64 column. */
export function encodeUints(values: BigUint64Array): Uint8Array {
  return encodeWords(FORMAT.UINT_PACKED, "unsigned column", wordsOf(values), values.length);
}

/** Decodes a column written by encodeUints. */
export function decodeUints(buf: Uint8Array): BigUint64Array {
  const words = decodeWords(buf, "decodeUints", "unsigned column", FORMAT.UINT_PACKED);
  return new BigUint64Array(words.buffer, 0, words.length / 2);
}
