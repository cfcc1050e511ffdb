/**
 * Float columns, in whichever of three encodings is smallest for the column:
 *
 * - Gorilla XOR (Pelkonen et al., VLDB 2015, §4.1.2): each value XORed with the previous one,
 *   '0' for a repeat, '10' + meaningful bits when they fit the previous window, else
 *   '11' + 5-bit leading-zero count + 6-bit length + meaningful bits.
 * - decimal: most sensor readings are decimals typed by a human or a PLC (12.34), whose
 *   binary mantissas look random to XOR. When every value v has an integer m with
 *   m / 10^k === v exactly (k ≤ 15, m a safe integer), the m are stored as zig-zag deltas,
 *   bit-packed (packed.ts): a 2-decimal random walk costs about a byte per value. -0, NaN,
 *   ±Infinity and subnormals never qualify, so those columns always take the XOR path.
 * - split: for values whose bits are as good as random (measurements at full precision),
 *   where XOR has nothing to remove: each value's sign and exponent (12 bits) as an index
 *   into the column's few distinct ones, or as a prefix code for it where that is smaller,
 *   and its mantissa bit-packed without the trailing zero bits every value shares (a
 *   float32 source has 29). Uniform random doubles in [0, 100) cost ~6.8 bytes instead of 8.
 * - raw: 8 bytes a value, for the rare column nothing else makes smaller.
 *
 * Round-trips are bit-exact, NaN payloads included: values are read and written through a
 * Uint32Array view, never as JS numbers, except on the decimal path where they are not NaN.
 */
import { BitReader, BitWriter, HI, LO, corrupt, joinSafe, splitSafe, wordsOf } from "./bits.ts";
import { FORMAT, checkEncodeCount, readHeader, writeHeader } from "./format.ts";
import { readDeltas, writeDeltas } from "./packed.ts";

const MAX_SCALE = 15;
const POW10: readonly number[] = Array.from({ length: MAX_SCALE + 1 }, (_, k) => 10 ** k);

/** Encodes a float64 column. */
export function encodeFloats(values: Float64Array): Uint8Array {
  const n = values.length;
  checkEncodeCount("float column", n);
  const words = wordsOf(values);
  const k = decimalScale(values);
  const decimal = k >= 0 ? encodeDecimal(values, k) : null;
  // XOR needs 64 bits for the first value and at least one bit per further value.
  const xorFloor = 8 + (n - 1) / 8;
  // XOR is written only when it may be the smallest: its size is counted first, stopping once
  // it passes the other form's (a 2-decimal random walk passes the decimal form within a fifth
  // of the column, random doubles the split form within most of it).
  let best: Uint8Array;
  if (decimal !== null) {
    if (decimal.length <= xorFloor || gorillaExceeds(words, n, decimal.length * 8)) best = decimal;
    else {
      const xor = encodeGorilla(words, n);
      best = decimal.length < xor.length ? decimal : xor;
    }
    // The split form beats a decimal one only on columns of few mantissa bits (a constant, a
    // few integers): a lower bound of its size rules it out, mostly at the first value.
    if (best !== decimal || !splitExceeds(words, n, decimal.length * 8)) {
      const split = encodeSplit(words, n);
      if (split.length < best.length) best = split;
    }
  } else {
    const split = encodeSplit(words, n);
    if (gorillaExceeds(words, n, split.length * 8)) best = split;
    else {
      const xor = encodeGorilla(words, n);
      best = split.length < xor.length ? split : xor;
    }
  }
  if (best.length > 8 * n + 8) best = encodeRaw(words, n);
  return best;
}

/** Decodes a column written by encodeFloats. */
export function decodeFloats(buf: Uint8Array): Float64Array {
  const r = new BitReader(buf, "float column");
  const { format, count: n } = readHeader(r, "decodeFloats", [
    FORMAT.FLOAT_GORILLA,
    FORMAT.FLOAT_DECIMAL,
    FORMAT.FLOAT_SPLIT,
    FORMAT.FLOAT_SPLIT_CODED,
    FORMAT.FLOAT_RAW,
  ]);
  if (format === FORMAT.FLOAT_RAW) r.need(64 * n, `${n} values`);
  if (format === FORMAT.FLOAT_GORILLA && n > 0) r.need(63 + n, `${n} values`);
  // Made over an ArrayBuffer of its own: the word view then costs nothing (see words.ts copyOf).
  const out = new Float64Array(new ArrayBuffer(8 * n));
  const words = wordsOf(out);
  if (format === FORMAT.FLOAT_GORILLA) decodeGorilla(r, words, n);
  else if (format === FORMAT.FLOAT_SPLIT || format === FORMAT.FLOAT_SPLIT_CODED) decodeSplit(r, words, n, format === FORMAT.FLOAT_SPLIT_CODED);
  else if (format === FORMAT.FLOAT_DECIMAL) {
    const k = r.read(4);
    if (k > MAX_SCALE) throw corrupt(r.what, `decimal scale 10^${k} > 10^${MAX_SCALE}`);
    const ints = readDeltas(r, n);
    const unit = POW10[k]!;
    for (let i = 0; i < n; i++) out[i] = joinSafe(ints, i) / unit;
  } else {
    for (let i = 0; i < n; i++) {
      words[2 * i + HI] = r.read(32);
      words[2 * i + LO] = r.read(32);
    }
  }
  r.expectEnd();
  return out;
}

/** Count of trailing zero bits of a non-zero 32-bit value. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/**
 * The leading zero bits (at most 31: the paper's 5-bit field) and trailing zero bits of a
 * non-zero 64-bit XOR, as lead * 64 + trail.
 */
function xorZeros(xh: number, xl: number): number {
  const lead = xh !== 0 ? Math.clz32(xh) : 32 + Math.clz32(xl);
  const trail = xl !== 0 ? ctz(xl) : 32 + ctz(xh);
  return (lead > 31 ? 31 : lead) * 64 + trail;
}

function encodeGorilla(words: Uint32Array, n: number): Uint8Array {
  const w = new BitWriter(16 + n * 9);
  writeHeader(w, FORMAT.FLOAT_GORILLA, n);
  if (n === 0) return w.finish();
  let prevHi = words[HI]!;
  let prevLo = words[LO]!;
  w.write(prevHi, 32);
  w.write(prevLo, 32);
  // 65 leading zeros can never be matched, so the first change opens a new window.
  let prevLead = 65;
  let prevTrail = 0;
  for (let i = 1; i < n; i++) {
    const hi = words[2 * i + HI]!;
    const lo = words[2 * i + LO]!;
    const xh = (hi ^ prevHi) >>> 0;
    const xl = (lo ^ prevLo) >>> 0;
    prevHi = hi;
    prevLo = lo;
    if ((xh | xl) === 0) {
      w.write(0, 1);
      continue;
    }
    const z = xorZeros(xh, xl);
    const lead = z >> 6;
    const trail = z & 63;
    let shift: number;
    let width: number;
    if (lead >= prevLead && trail >= prevTrail) {
      w.write(0b10, 2);
      shift = prevTrail;
      width = 64 - prevLead - prevTrail;
    } else {
      width = 64 - lead - trail;
      w.write(0b11, 2);
      w.write(lead, 5);
      w.write(width & 63, 6); // 64 meaningful bits are written as 0
      shift = trail;
      prevLead = lead;
      prevTrail = trail;
    }
    if (shift === 0) w.write64(xh, xl, width);
    else if (shift < 32) w.write64(xh >>> shift, ((xl >>> shift) | (xh << (32 - shift))) >>> 0, width);
    else w.write(xh >>> (shift - 32), width);
  }
  return w.finish();
}

/**
 * Whether encodeGorilla's bits after its header would be more than `limit`, counted as it
 * writes them but without writing, stopping as soon as they are.
 */
function gorillaExceeds(words: Uint32Array, n: number, limit: number): boolean {
  if (n === 0) return limit < 0;
  let bits = 64;
  let prevHi = words[HI]!;
  let prevLo = words[LO]!;
  let prevLead = 65;
  let prevTrail = 0;
  for (let i = 1; i < n && bits <= limit; i++) {
    const hi = words[2 * i + HI]!;
    const lo = words[2 * i + LO]!;
    const xh = (hi ^ prevHi) >>> 0;
    const xl = (lo ^ prevLo) >>> 0;
    prevHi = hi;
    prevLo = lo;
    if ((xh | xl) === 0) {
      bits += 1;
      continue;
    }
    const z = xorZeros(xh, xl);
    const lead = z >> 6;
    const trail = z & 63;
    if (lead >= prevLead && trail >= prevTrail) bits += 2 + 64 - prevLead - prevTrail;
    else {
      bits += 2 + 5 + 6 + 64 - lead - trail;
      prevLead = lead;
      prevTrail = trail;
    }
  }
  return bits > limit;
}

function decodeGorilla(r: BitReader, words: Uint32Array, n: number): void {
  if (n === 0) return;
  let hi = r.read(32);
  let lo = r.read(32);
  words[HI] = hi;
  words[LO] = lo;
  let width = 0;
  let trail = 0;
  for (let i = 1; i < n; i++) {
    if (r.readBit() !== 0) {
      if (r.readBit() !== 0) {
        const lead = r.read(5);
        width = r.read(6) || 64;
        trail = 64 - lead - width;
        if (trail < 0) throw corrupt(r.what, `value ${i}: ${lead} leading zeros + ${width} bits exceed 64`);
      } else if (width === 0) throw corrupt(r.what, `value ${i}: reuses a window before any was set`);
      let vh = 0;
      let vl: number;
      if (width > 32) {
        vh = r.read(width - 32);
        vl = r.read(32);
      } else vl = r.read(width);
      if (trail === 0) {
        hi ^= vh;
        lo ^= vl;
      } else if (trail < 32) {
        hi ^= (vh << trail) | (vl >>> (32 - trail));
        lo ^= vl << trail;
      } else hi ^= vl << (trail - 32);
    }
    words[2 * i + HI] = hi;
    words[2 * i + LO] = lo;
  }
}

/** Sign and exponent: the top 12 bits of a double. */
const TOP_BITS = 12;
/** Mantissa bits in the high word below the sign and exponent. */
const HI_MANTISSA = 20;

/** Longest prefix code for a top; columns whose code would need more keep fixed widths. */
const MAX_CODE_BITS = 15;

/** The trailing zero bits of value i's 52-bit mantissa (52 when it is all zeros). */
function mantissaZeros(words: Uint32Array, i: number): number {
  const hm = words[2 * i + HI]! & 0xfffff;
  const lo = words[2 * i + LO]!;
  return lo !== 0 ? ctz(lo) : hm !== 0 ? 32 + ctz(hm) : 52;
}

/**
 * Whether encodeSplit's bits after its header would surely be more than `limit`: a lower bound
 * (one sign and exponent, no index bits, the mantissa bits kept so far) counted value by value,
 * stopping as soon as it passes.
 */
function splitExceeds(words: Uint32Array, n: number, limit: number): boolean {
  const fixed = 11 + TOP_BITS + 6;
  let shared = 52;
  for (let i = 0; i < n; i++) {
    const tz = mantissaZeros(words, i);
    if (tz < shared) {
      shared = tz;
      if (fixed + n * (52 - shared) > limit) return true;
    }
  }
  return n > 0 && fixed > limit;
}

/**
 * Layout after the header: distinct tops d - 1 (11 bits), the d tops (12 bits each), in the
 * coded form each top's code length (4 bits), the number of mantissa bits kept m (6 bits,
 * 0..52), then per value its top's index (ceil(log2 d) bits) or code, and the mantissa's
 * upper m bits. Codes are canonical Huffman codes (RFC 1951 §3.2.2): uniform doubles in
 * [0, 100) have about ten exponents, a third of the values on each of the top two and half as
 * many on each further one down, so a code averages about 2 bits where a fixed index takes 4.
 */
function encodeSplit(words: Uint32Array, n: number): Uint8Array {
  const tops: number[] = [];
  const uses: number[] = [];
  // Slot of each of the 4096 possible tops in `tops`, or -1.
  const slot = new Int16Array(1 << TOP_BITS).fill(-1);
  const index = new Uint16Array(n);
  let shared = 52; // trailing zero bits every mantissa has
  for (let i = 0; i < n; i++) {
    const top = words[2 * i + HI]! >>> HI_MANTISSA;
    let k = slot[top]!;
    if (k < 0) {
      k = tops.length;
      tops.push(top);
      uses.push(0);
      slot[top] = k;
    }
    uses[k]!++;
    index[i] = k;
    const tz = mantissaZeros(words, i);
    if (tz < shared) shared = tz;
  }
  const keep = 52 - shared;
  const width = tops.length <= 1 ? 0 : 32 - Math.clz32(tops.length - 1);
  const lengths = tops.length <= 1 ? null : codeLengths(uses);
  let codes: Uint16Array | null = null;
  if (lengths !== null) {
    let coded = 4 * tops.length;
    for (let k = 0; k < tops.length; k++) coded += uses[k]! * lengths[k]!;
    if (coded < n * width) codes = canonicalCodes(lengths);
  }
  const w = new BitWriter(16 + 3 * tops.length + Math.ceil((n * (width + keep)) / 8));
  writeHeader(w, codes === null ? FORMAT.FLOAT_SPLIT : FORMAT.FLOAT_SPLIT_CODED, n);
  if (n === 0) return w.finish();
  w.write(tops.length - 1, 11);
  for (const top of tops) w.write(top, TOP_BITS);
  if (codes !== null) for (const len of lengths!) w.write(len, 4);
  w.write(keep, 6);
  for (let i = 0; i < n; i++) {
    if (codes !== null) w.write(codes[index[i]!]!, lengths![index[i]!]!);
    else if (width > 0) w.write(index[i]!, width);
    if (keep === 0) continue;
    // The mantissa's upper `keep` bits: 20 from the high word and 32 from the low, less `shared`.
    const hm = words[2 * i + HI]! & 0xfffff;
    const lo = words[2 * i + LO]!;
    if (shared >= 32) w.write(hm >>> (shared - 32), keep);
    else {
      w.write(hm, HI_MANTISSA);
      w.write(lo >>> shared, 32 - shared);
    }
  }
  return w.finish();
}

/**
 * Huffman code lengths for two or more positive counts, or null when one would be longer
 * than MAX_CODE_BITS. Two queues over the counts in ascending order (van Leeuwen, 1976):
 * leaves in one, merged nodes, which come out in ascending order too, in the other.
 */
function codeLengths(uses: readonly number[]): number[] | null {
  const d = uses.length;
  const order = Array.from(uses.keys()).sort((a, b) => uses[a]! - uses[b]! || a - b);
  const weight: number[] = order.map((k) => uses[k]!);
  const parent = new Int32Array(2 * d - 1);
  let leaf = 0;
  let merged = d;
  const next = () => (leaf < d && (merged >= weight.length || weight[leaf]! <= weight[merged]!) ? leaf++ : merged++);
  while (weight.length < 2 * d - 1) {
    const a = next();
    const b = next();
    parent[a] = parent[b] = weight.length;
    weight.push(weight[a]! + weight[b]!);
  }
  // Parents come after their children, so depths fill from the root (the last node) down.
  const depth = new Uint8Array(2 * d - 1);
  for (let x = 2 * d - 3; x >= 0; x--) depth[x] = depth[parent[x]!]! + 1;
  const lengths = new Array<number>(d);
  for (let j = 0; j < d; j++) {
    if (depth[j]! > MAX_CODE_BITS) return null;
    lengths[order[j]!] = depth[j]!;
  }
  return lengths;
}

/** Canonical codes for code lengths: shorter codes first, ties in symbol order. */
function canonicalCodes(lengths: readonly number[]): Uint16Array {
  const codes = new Uint16Array(lengths.length);
  const order = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  let code = 0;
  let len = lengths[order[0]!]!;
  for (const k of order) {
    code <<= lengths[k]! - len;
    len = lengths[k]!;
    codes[k] = code++;
  }
  return codes;
}

/** The XOR form whatever its size, for tests of the choice between forms. */
export function encodeGorillaForTest(values: Float64Array): Uint8Array {
  return encodeGorilla(wordsOf(values), values.length);
}

/** The split form whatever its size, for tests of that form alone. */
export function encodeSplitForTest(values: Float64Array): Uint8Array {
  return encodeSplit(wordsOf(values), values.length);
}

function decodeSplit(r: BitReader, words: Uint32Array, n: number, coded: boolean): void {
  if (n === 0) return;
  const d = r.read(11) + 1;
  const tops: number[] = [];
  for (let k = 0; k < d; k++) tops.push(r.read(TOP_BITS));
  const code = coded ? readCode(r, d) : null;
  const keep = r.read(6);
  if (keep > 52) throw corrupt(r.what, `${keep} mantissa bits > 52`);
  const shared = 52 - keep;
  const width = d <= 1 ? 0 : 32 - Math.clz32(d - 1);
  r.need(n * ((code === null ? width : 1) + keep), `${n} values`);
  for (let i = 0; i < n; i++) {
    const k = code !== null ? code.next(r) : width > 0 ? r.read(width) : 0;
    const top = tops[k];
    if (top === undefined) throw corrupt(r.what, `exponent index ${k} of ${d}`);
    let hm = 0;
    let lo = 0;
    if (keep > 0) {
      if (shared >= 32) hm = r.read(keep) << (shared - 32);
      else {
        hm = r.read(HI_MANTISSA);
        lo = shared === 0 ? r.read(32) : r.read(32 - shared) << shared;
      }
    }
    words[2 * i + HI] = ((top << HI_MANTISSA) | hm) >>> 0;
    words[2 * i + LO] = lo >>> 0;
  }
}

/** Reads d code lengths and returns a decoder of the canonical code they define. */
function readCode(r: BitReader, d: number): { next(r: BitReader): number } {
  const lengths: number[] = [];
  const count = new Array<number>(MAX_CODE_BITS + 1).fill(0);
  for (let k = 0; k < d; k++) {
    const len = r.read(4);
    if (len === 0) throw corrupt(r.what, `exponent ${k} has an empty code`);
    lengths.push(len);
    count[len]!++;
  }
  // Kraft: a prefix code cannot have more codes of a length than are left for it.
  let left = 1;
  for (let len = 1; len <= MAX_CODE_BITS; len++) {
    left = left * 2 - count[len]!;
    if (left < 0) throw corrupt(r.what, "exponent code lengths are not a prefix code");
  }
  const symbols = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  return {
    // RFC 1951's canonical decoding: codes of each length are consecutive from `first`.
    next(r: BitReader): number {
      let code = 0;
      let first = 0;
      let at = 0;
      for (let len = 1; len <= MAX_CODE_BITS; len++) {
        code |= r.readBit();
        const c = count[len]!;
        if (code - first < c) return symbols[at + code - first]!;
        at += c;
        first = (first + c) << 1;
        code <<= 1;
      }
      throw corrupt(r.what, "an exponent code that is not in the column's code");
    },
  };
}

function encodeRaw(words: Uint32Array, n: number): Uint8Array {
  const w = new BitWriter(16 + 8 * n);
  writeHeader(w, FORMAT.FLOAT_RAW, n);
  for (let i = 0; i < n; i++) {
    w.write(words[2 * i + HI]!, 32);
    w.write(words[2 * i + LO]!, 32);
  }
  return w.finish();
}

/** True when m / 10^k is exactly v and m is a safe integer, m = round(v · 10^k). */
function fitsScale(v: number, k: number): boolean {
  const unit = POW10[k]!;
  const m = Math.round(v * unit);
  return m / unit === v && Number.isSafeInteger(m);
}

/**
 * The smallest k ≤ 15 such that every value is a k-decimal number (see fitsScale), or -1.
 * -0 fails explicitly because 0 / 10^k is +0; NaN, ±Infinity and subnormals fail the test.
 */
function decimalScale(values: Float64Array): number {
  let k = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === 0 && 1 / v < 0) return -1;
    // Anything beyond 2^53 or non-finite can't be m / 10^k with m safe; skip the 16 tries.
    if (!(Math.abs(v) < 9007199254740992)) return -1;
    while (!fitsScale(v, k)) if (++k > MAX_SCALE) return -1;
  }
  return k;
}

/**
 * Writes the decimal encoding at scale k, or a larger k if an earlier value (checked at a
 * smaller scale) does not survive k; null if none up to 10^15 works for all.
 */
function encodeDecimal(values: Float64Array, k: number): Uint8Array | null {
  const n = values.length;
  const ints = new Uint32Array(2 * n);
  scales: for (; k <= MAX_SCALE; k++) {
    const unit = POW10[k]!;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      const m = Math.round(v * unit);
      if (m / unit !== v || !Number.isSafeInteger(m)) continue scales;
      splitSafe(m, ints, i);
    }
    const w = new BitWriter(16 + n * 2);
    writeHeader(w, FORMAT.FLOAT_DECIMAL, n);
    w.write(k, 4);
    writeDeltas(w, ints, n);
    return w.finish();
  }
  return null;
}
