/** Helpers for the codec tests: a seeded PRNG and exact comparisons of 64-bit columns. */

/** mulberry32: a tiny seeded PRNG so size tests see the same workload on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The bytes of a typed array, for bit-exact comparison (NaN payloads and -0 included). */
export function bytesOf(a: Float64Array | BigInt64Array | BigUint64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** 2-decimal random walk: starts at 50.00, each step ±0..1.00, rounded to 2 decimals. */
export function decimalWalk(n: number, seed: number): Float64Array {
  const rand = mulberry32(seed);
  const out = new Float64Array(n);
  let cents = 5000;
  for (let i = 0; i < n; i++) {
    cents += Math.round((rand() * 2 - 1) * 100);
    out[i] = cents / 100;
  }
  return out;
}

/** Timestamps every `stepNs` from 2023-11-14, each moved by up to ±jitterNs. */
export function regularTimes(n: number, stepNs: bigint, jitterNs: number, seed: number): BigInt64Array {
  const rand = mulberry32(seed);
  const out = new BigInt64Array(n);
  const start = 1_700_000_000_000_000_000n;
  for (let i = 0; i < n; i++) {
    const jitter = jitterNs === 0 ? 0n : BigInt(Math.round((rand() * 2 - 1) * jitterNs));
    out[i] = start + BigInt(i) * stepNs + jitter;
  }
  return out;
}
