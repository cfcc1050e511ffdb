/**
 * Version clock columns: hybrid logical clocks (Kulkarni et al., "Logical Physical Clocks",
 * 2014) stored as wall-clock milliseconds × 1024 + a counter 0..1023, one per value, as
 * doubles (every clock is below 2^53).
 *
 * A chunk from one writer holds runs of values sharing a clock (one request, one clock), the
 * clocks rise by an irregular number of milliseconds, and counters are almost always 0. So
 * the column is stored as runs, with each run's millisecond, counter and length apart:
 *
 * - millisecond steps between runs spread over orders of magnitude (a few ms to seconds), so
 *   they are Exp-Golomb coded (order k chosen per column) rather than packed in blocks at the
 *   width of the largest; when they never go back, the smallest step is taken off each;
 * - counters cost one bit for the whole column when all are 0, else they are packed;
 * - run lengths are packed less the shortest, and left out when every run has one value.
 *
 * Layout after the header, for count n ≥ 1:
 *
 *   runs r                 uvarint
 *   first millisecond      43 bits
 *   if r > 1:  rising      1 bit (no step is negative)
 *              if rising: smallest step (uvarint), then each step less it; else zig-zag steps
 *              k          6 bits, then r - 1 Exp-Golomb codes of order k
 *   counters               1 bit (some counter is not 0), then if set r counters packed
 *   if r < n:  lengths     shortest (uvarint), then r lengths less it, packed
 */
import { BitReader, BitWriter, HI, LO, corrupt } from "./bits.ts";
import { FORMAT, checkEncodeCount, readHeader, writeHeader } from "./format.ts";
import { readPacked, writePacked } from "./packed.ts";
import { TsdbError } from "../errors.ts";

const COUNTERS = 1024;
/** Clocks are below 2^53, so their milliseconds are below 2^43. */
const MS_BITS = 43;
const MS_LIMIT = 2 ** MS_BITS;
const TWO_32 = 4294967296;
/** Exp-Golomb codes read here stay below 2^53, so plain numbers hold them exactly. */
const MAX_CODE_BITS = 53;

/** Encodes a version clock column (any order; every value an integer in 0..2^53-1). */
export function encodeClocks(clocks: Float64Array): Uint8Array {
  const n = clocks.length;
  checkEncodeCount("clock column", n);
  const w = new BitWriter(16 + n / 2);
  writeHeader(w, FORMAT.CLOCK_RUNS, n);
  if (n === 0) return w.finish();

  // Runs are counted first (a request's values share a clock, so there are several times
  // fewer runs than values), then each run's millisecond, counter and length (packed words).
  let runs = 1;
  for (let i = 1; i < n; i++) if (clocks[i] !== clocks[i - 1]) runs++;
  const ms = new Float64Array(runs);
  const counters = new Uint32Array(2 * runs);
  const lengths = new Uint32Array(2 * runs);
  let r = 0;
  let anyCounter = 0;
  for (let i = 0; i < n; i++) {
    const c = clocks[i]!;
    if (i > 0 && c === clocks[i - 1]) {
      lengths[2 * (r - 1) + LO]!++;
      continue;
    }
    if (!(Number.isSafeInteger(c) && c >= 0)) {
      throw new TsdbError("internal", `cannot encode clock column: value ${c} at index ${i} is not a clock (an integer in 0..2^53-1)`);
    }
    const counter = c % COUNTERS;
    ms[r] = (c - counter) / COUNTERS;
    counters[2 * r + LO] = counter;
    anyCounter |= counter;
    lengths[2 * r + LO] = 1;
    r++;
  }

  w.writeUvarint(r);
  writeBits(w, ms[0]!, MS_BITS);
  if (r > 1) {
    let rising = true;
    let smallest = Infinity;
    for (let j = 1; j < r; j++) {
      const step = ms[j]! - ms[j - 1]!;
      if (step < 0) rising = false;
      if (step < smallest) smallest = step;
    }
    // Steps are below 2^43 in size, their zig-zag below 2^44: exact as numbers.
    const codes = new Float64Array(r - 1);
    for (let j = 1; j < r; j++) {
      const step = ms[j]! - ms[j - 1]!;
      codes[j - 1] = rising ? step - smallest : step >= 0 ? 2 * step : -2 * step - 1;
    }
    w.write(rising ? 1 : 0, 1);
    if (rising) w.writeUvarint(smallest);
    writeExpGolomb(w, codes);
  }
  w.write(anyCounter !== 0 ? 1 : 0, 1);
  if (anyCounter !== 0) writePacked(w, counters, 0, r);
  if (r < n) {
    let shortest = n;
    for (let j = 0; j < r; j++) shortest = Math.min(shortest, lengths[2 * j + LO]!);
    for (let j = 0; j < r; j++) lengths[2 * j + LO]! -= shortest;
    w.writeUvarint(shortest);
    writePacked(w, lengths, 0, r);
  }
  return w.finish();
}

/** Decodes a column written by encodeClocks. */
export function decodeClocks(buf: Uint8Array): Float64Array {
  const r = new BitReader(buf, "clock column");
  const { count: n } = readHeader(r, "decodeClocks", [FORMAT.CLOCK_RUNS]);
  if (n === 0) {
    r.expectEnd();
    return new Float64Array(0);
  }
  const runs = r.readUvarint();
  if (runs < 1 || runs > n) throw corrupt(r.what, `${runs} runs of clocks for ${n} values`);
  // Every run after the first costs at least a bit for its step.
  r.need(MS_BITS + runs, `${runs} runs of clocks`);
  const ms = new Float64Array(runs);
  ms[0] = readBits(r, MS_BITS);
  if (runs > 1) {
    const rising = r.readBit() === 1;
    const smallest = rising ? r.readUvarint() : 0;
    readExpGolomb(r, ms, 1, runs - 1);
    for (let j = 1; j < runs; j++) {
      const code = ms[j]!;
      const step = rising ? smallest + code : code % 2 === 1 ? -(code + 1) / 2 : code / 2;
      const m = ms[j - 1]! + step;
      if (!(m >= 0 && m < MS_LIMIT)) throw corrupt(r.what, `millisecond ${m} of run ${j} outside 0..2^43-1`);
      ms[j] = m;
    }
  }
  const counters = new Uint32Array(2 * runs);
  if (r.readBit() === 1) {
    readPacked(r, counters, 0, runs);
    for (let j = 0; j < runs; j++) {
      if (counters[2 * j + HI] !== 0 || counters[2 * j + LO]! >= COUNTERS) throw corrupt(r.what, `counter of run ${j} above ${COUNTERS - 1}`);
    }
  }
  const out = new Float64Array(n);
  if (runs === n) {
    for (let j = 0; j < n; j++) out[j] = ms[j]! * COUNTERS + counters[2 * j + LO]!;
  } else {
    const shortest = r.readUvarint();
    if (shortest < 1) throw corrupt(r.what, "a run of no values");
    const lengths = new Uint32Array(2 * runs);
    readPacked(r, lengths, 0, runs);
    let i = 0;
    for (let j = 0; j < runs; j++) {
      const length = shortest + lengths[2 * j + HI]! * TWO_32 + lengths[2 * j + LO]!;
      if (length > n - i) throw corrupt(r.what, `runs longer than the ${n} values of the column`);
      out.fill(ms[j]! * COUNTERS + counters[2 * j + LO]!, i, i + length);
      i += length;
    }
    if (i !== n) throw corrupt(r.what, `runs cover ${i} of ${n} values`);
  }
  r.expectEnd();
  return out;
}

/**
 * Writes non-negative integers below 2^52 as Exp-Golomb codes of order k (Teuhola 1978; order
 * 0 is H.264's ue(v)): v ≥ 0 as q = ⌊v / 2^k⌋ + 1 in binary preceded by one 0 bit per bit
 * after its first, then the low k bits of v. Small values cost few bits and each doubling
 * costs two more, which suits values spread over several orders of magnitude.
 */
function writeExpGolomb(w: BitWriter, values: Float64Array): void {
  const k = bestOrder(values);
  w.write(k, 6);
  const unit = 2 ** k;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const q = Math.floor(v / unit) + 1;
    const len = bitLength(q);
    writeBits(w, 0, len - 1);
    writeBits(w, q, len);
    writeBits(w, v - (q - 1) * unit, k);
  }
}

/** Reads `count` codes written by writeExpGolomb into out[start..]. */
function readExpGolomb(r: BitReader, out: Float64Array, start: number, count: number): void {
  const k = r.read(6);
  if (k >= MAX_CODE_BITS) throw corrupt(r.what, `Exp-Golomb order ${k} above ${MAX_CODE_BITS - 1}`);
  const unit = 2 ** k;
  for (let i = start; i < start + count; i++) {
    let zeros = 0;
    while (r.readBit() === 0) {
      if (++zeros + k >= MAX_CODE_BITS) throw corrupt(r.what, `Exp-Golomb code longer than ${MAX_CODE_BITS} bits`);
    }
    const q = 2 ** zeros + readBits(r, zeros);
    out[i] = (q - 1) * unit + readBits(r, k);
  }
}

/**
 * The order k with the fewest bits in all, from a histogram of bit lengths: a value of L bits
 * costs k + 1 bits if L ≤ k, else about 2(L - k) - 1 + k (q can need one bit more).
 */
function bestOrder(values: Float64Array): number {
  const hist = new Float64Array(54);
  let widest = 0;
  for (let i = 0; i < values.length; i++) {
    const len = bitLength(values[i]!);
    hist[len]!++;
    if (len > widest) widest = len;
  }
  let best = 0;
  let bestBits = Infinity;
  for (let k = 0; k <= widest; k++) {
    let bits = 0;
    for (let len = 0; len <= widest; len++) bits += hist[len]! * (len <= k ? k + 1 : 2 * len - k - 1);
    if (bits < bestBits) {
      bestBits = bits;
      best = k;
    }
  }
  return best;
}

/** Bits of a non-negative integer below 2^53 (0 for 0). */
function bitLength(v: number): number {
  return v < TWO_32 ? 32 - Math.clz32(v) : 64 - Math.clz32(Math.floor(v / TWO_32));
}

/** Appends the low `n` bits (n ≤ 53) of a non-negative integer below 2^n. */
function writeBits(w: BitWriter, v: number, n: number): void {
  if (n <= 32) w.write(v, n);
  else w.write64(Math.floor(v / TWO_32), v >>> 0, n);
}

/** Reads `n` bits (n ≤ 53) as a number. */
function readBits(r: BitReader, n: number): number {
  return n <= 32 ? r.read(n) : r.read(n - 32) * TWO_32 + r.read(32);
}
