/**
 * Reading int64 columns without creating bigints. Every read of a BigInt64Array element
 * allocates a bigint; in loops over millions of values those allocations dominate the heap.
 * These helpers look at the same memory as two 32-bit words (little endian, as every target
 * platform is) and work with plain numbers instead.
 */

const TWO_32 = 4_294_967_296;

/** Compares element i of `a` (seen as hi/lo words) with a value given as hi/lo words. */
export function compareWords(hi: Int32Array, lo: Uint32Array, i: number, vHi: number, vLo: number): number {
  const h = hi[2 * i + 1]!;
  if (h !== vHi) return h < vHi ? -1 : 1;
  const l = lo[2 * i]!;
  return l === vLo ? 0 : l < vLo ? -1 : 1;
}

/** The hi (signed) and lo (unsigned) 32-bit words of an int64 value. */
export function splitWords(v: bigint): [number, number] {
  return [Number(BigInt.asIntN(32, v >> 32n)), Number(BigInt.asUintN(32, v))];
}

/**
 * A copy of `a` in an array made over an ArrayBuffer of its own. The engine keeps the bytes of
 * an array made by length (or by slice) out of reach until `.buffer` is first asked for, and
 * that first time costs about a microsecond; the codecs view every 64-bit column as 32-bit words.
 */
export function copyOf<T extends BigInt64Array | Float64Array>(a: T): T {
  const out = new (a.constructor as new (b: ArrayBuffer) => T)(new ArrayBuffer(a.length * 8));
  out.set(a as never);
  return out;
}

/** Values known to lie in 0..2^53 (clocks, small indexes) as doubles, exactly. */
export function toNumbers(a: BigInt64Array): Float64Array {
  const w = new Uint32Array(a.buffer, a.byteOffset, a.length * 2);
  const out = new Float64Array(a.length);
  const n = a.length;
  for (let i = 0; i < n; i++) out[i] = w[2 * i + 1]! * TWO_32 + w[2 * i]!;
  return out;
}

/** Non-negative safe integers as an int64 column, without bigints. */
export function fromNumbers(nums: ArrayLike<number>): BigInt64Array {
  const bytes = new ArrayBuffer(nums.length * 8);
  const out = new BigInt64Array(bytes);
  const w = new Uint32Array(bytes);
  const n = nums.length;
  for (let i = 0; i < n; i++) {
    const v = nums[i]!;
    // v < 2^53, so the high word fits 21 bits and the subtraction is exact.
    const hi = Math.floor(v / TWO_32);
    w[2 * i] = v - hi * TWO_32;
    w[2 * i + 1] = hi;
  }
  return out;
}
