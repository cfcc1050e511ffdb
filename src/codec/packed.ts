/**
 * Packing of unsigned 64-bit values (halves at 2i+LO / 2i+HI, see bits.ts) into segments:
 *
 *   packed segment  tag = width (0..64) : 7 bits, count-1 : 7 bits, count × width bits
 *   run segment     tag = 127           : 7 bits, L : 5 bits, count : L bits, width : 7 bits, value
 *
 * A packed segment holds up to 128 values at the width of its widest one (frame-of-reference
 * bit packing as in Parquet/FastPFOR, with a small block so one outlier spoils little). A run
 * stores a value repeated at least RUN_MIN times once, so constant columns and constant-rate
 * counters (constant delta) cost a few bytes per run rather than bits per value.
 *
 * On top of it, the zig-zag delta stream used by integer columns and decimal floats.
 */
import { BitReader, BitWriter, HI, LO, bitLength64, corrupt } from "./bits.ts";

const BLOCK = 128;
const RUN_MIN = 16;
const RUN_TAG = 127;

/** Writes values start..start+n-1 of `words`. */
export function writePacked(w: BitWriter, words: Uint32Array, start: number, n: number): void {
  const end = start + n;
  let i = start;
  while (i < end) {
    const lo = words[2 * i + LO]!;
    const hi = words[2 * i + HI]!;
    let j = i + 1;
    while (j < end && words[2 * j + LO] === lo && words[2 * j + HI] === hi) j++;
    if (j - i >= RUN_MIN) {
      const count = j - i;
      const len = 32 - Math.clz32(count);
      const width = bitLength64(hi, lo);
      w.write(RUN_TAG, 7);
      w.write(len, 5);
      w.write(count, len);
      w.write(width, 7);
      w.write64(hi, lo, width);
      i = j;
      continue;
    }
    // A packed segment ends early where a long run starts, so the run gets its own segment.
    const limit = Math.min(end, i + BLOCK);
    let segEnd = limit;
    let runStart = i;
    for (let k = i + 1; k < limit; k++) {
      if (words[2 * k + LO] !== words[2 * k - 2 + LO] || words[2 * k + HI] !== words[2 * k - 2 + HI]) runStart = k;
      else if (k - runStart + 1 >= RUN_MIN) {
        segEnd = runStart;
        break;
      }
    }
    let orLo = 0;
    let orHi = 0;
    for (let k = i; k < segEnd; k++) {
      orLo |= words[2 * k + LO]!;
      orHi |= words[2 * k + HI]!;
    }
    const width = bitLength64(orHi, orLo);
    w.write(width, 7);
    w.write(segEnd - i - 1, 7);
    if (width <= 32) {
      for (let k = i; k < segEnd; k++) w.write(words[2 * k + LO]!, width);
    } else {
      for (let k = i; k < segEnd; k++) {
        w.write(words[2 * k + HI]!, width - 32);
        w.write(words[2 * k + LO]!, 32);
      }
    }
    i = segEnd;
  }
}

/** Reads n values written by writePacked into `out` from index `start`. */
export function readPacked(r: BitReader, out: Uint32Array, start: number, n: number): void {
  const end = start + n;
  let i = start;
  while (i < end) {
    const tag = r.read(7);
    if (tag === RUN_TAG) {
      const len = r.read(5);
      const count = r.read(len);
      if (count < 1 || count > end - i) throw corrupt(r.what, `run of ${count} values where ${end - i} remain`);
      const width = r.read(7);
      if (width > 64) throw corrupt(r.what, `value width ${width} > 64`);
      const hi = width > 32 ? r.read(width - 32) : 0;
      const lo = r.read(width > 32 ? 32 : width);
      for (let k = i; k < i + count; k++) {
        out[2 * k + LO] = lo;
        out[2 * k + HI] = hi;
      }
      i += count;
      continue;
    }
    if (tag > 64) throw corrupt(r.what, `unknown segment tag ${tag}`);
    const count = r.read(7) + 1;
    if (count > end - i) throw corrupt(r.what, `segment of ${count} values where ${end - i} remain`);
    const segEnd = i + count;
    if (tag === 0) {
      for (let k = i; k < segEnd; k++) {
        out[2 * k + LO] = 0;
        out[2 * k + HI] = 0;
      }
    } else if (tag <= 32) {
      for (let k = i; k < segEnd; k++) {
        out[2 * k + LO] = r.read(tag);
        out[2 * k + HI] = 0;
      }
    } else {
      for (let k = i; k < segEnd; k++) {
        out[2 * k + HI] = r.read(tag - 32);
        out[2 * k + LO] = r.read(32);
      }
    }
    i = segEnd;
  }
}

/**
 * Writes n int64 values (two's complement halves) as the first value zig-zagged on its own,
 * then zig-zag deltas, packed. Deltas wrap modulo 2^64, which the decoder undoes exactly, so
 * no input can overflow. Works for uint64 too: the bits are the same.
 */
export function writeDeltas(w: BitWriter, words: Uint32Array, n: number): void {
  if (n === 0) return;
  const zz = new Uint32Array(2 * n);
  let prevLo = 0;
  let prevHi = 0;
  for (let i = 0; i < n; i++) {
    const lo = words[2 * i + LO]!;
    const hi = words[2 * i + HI]! | 0;
    // 64-bit subtraction with borrow, then zig-zag: (d << 1) ^ (d >> 63).
    const dLo = (lo - prevLo) >>> 0;
    const dHi = (hi - prevHi - (lo < prevLo ? 1 : 0)) | 0;
    const sign = dHi >> 31;
    zz[2 * i + LO] = ((dLo << 1) ^ sign) >>> 0;
    zz[2 * i + HI] = (((dHi << 1) | (dLo >>> 31)) ^ sign) >>> 0;
    prevLo = lo;
    prevHi = hi;
  }
  // The first value is usually far from zero; packing it with the deltas would widen a block.
  const hi0 = zz[HI]!;
  const lo0 = zz[LO]!;
  const width = bitLength64(hi0, lo0);
  w.write(width, 7);
  w.write64(hi0, lo0, width);
  writePacked(w, zz, 1, n - 1);
}

/** Reads what writeDeltas wrote into a new array of 2n words. */
export function readDeltas(r: BitReader, n: number): Uint32Array {
  // Over an ArrayBuffer of its own: integer columns view its buffer as int64 (see words.ts copyOf).
  const out = new Uint32Array(new ArrayBuffer(8 * n));
  if (n === 0) return out;
  const width = r.read(7);
  if (width > 64) throw corrupt(r.what, `value width ${width} > 64`);
  out[HI] = width > 32 ? r.read(width - 32) : 0;
  out[LO] = r.read(width > 32 ? 32 : width);
  readPacked(r, out, 1, n - 1);
  let prevLo = 0;
  let prevHi = 0;
  for (let i = 0; i < n; i++) {
    const zLo = out[2 * i + LO]!;
    const zHi = out[2 * i + HI]!;
    // Undo zig-zag: d = (z >>> 1) ^ -(z & 1), then 64-bit addition with carry.
    const sign = -(zLo & 1);
    const dLo = (((zLo >>> 1) | (zHi << 31)) ^ sign) >>> 0;
    const dHi = ((zHi >>> 1) ^ sign) | 0;
    const sum = prevLo + dLo;
    prevLo = sum >>> 0;
    prevHi = (prevHi + dHi + (sum > 0xffffffff ? 1 : 0)) | 0;
    out[2 * i + LO] = prevLo;
    out[2 * i + HI] = prevHi;
  }
  return out;
}
