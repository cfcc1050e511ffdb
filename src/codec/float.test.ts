import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeFloats, encodeFloats, encodeGorillaForTest, encodeSplitForTest } from "./float.ts";
import { FORMAT, readColumnHeader } from "./format.ts";
import { bytesOf, decimalWalk, mulberry32 } from "./testkit.ts";

function roundTrip(values: Float64Array): Uint8Array {
  const buf = encodeFloats(values);
  const back = decodeFloats(buf);
  expect(back.length).toBe(values.length);
  expect(bytesOf(back)).toEqual(bytesOf(values));
  return buf;
}

/** A Float64Array holding exactly these bit patterns (hi, lo words), NaN payloads included. */
function fromBits(pairs: Array<[number, number]>): Float64Array {
  const out = new Float64Array(pairs.length);
  const view = new DataView(out.buffer);
  pairs.forEach(([hi, lo], i) => view.setBigUint64(8 * i, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0), true));
  return out;
}

const MIN_SUBNORMAL = 5e-324;
/** Not the decimal form: the values have no exact decimal (either bit-level form may be smaller). */
const NOT_DECIMAL = -1;

const cases: Array<[string, number[], number?]> = [
  ["an empty column", []],
  ["a single value", [12.34]],
  ["a single -0", [-0]],
  ["zeros of both signs", [0, -0, 0, -0]],
  ["decimals with a -0 among them", [1.5, -0, 2.25], NOT_DECIMAL],
  ["NaN and infinities", [NaN, Infinity, -Infinity, NaN, 1]],
  ["decimals with a NaN among them", [1.5, NaN, 2.25], NOT_DECIMAL],
  ["decimals with an infinity among them", [1.5, Infinity, 2.25], NOT_DECIMAL],
  ["subnormals", [MIN_SUBNORMAL, -MIN_SUBNORMAL, 2.2250738585072e-308, 0]],
  ["subnormals next to decimals", [0.5, MIN_SUBNORMAL, 0.25], NOT_DECIMAL],
  ["the largest and smallest doubles", [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE]],
  ["a constant", [21.5, 21.5, 21.5, 21.5]],
  ["2-decimal readings", [12.34, 12.35, 12.3, 12.41, 11.99], FORMAT.FLOAT_DECIMAL],
  ["integers stored as floats", [1, 2, 3, 1000, -5], FORMAT.FLOAT_DECIMAL],
  ["safe-integer extremes", [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0]],
  ["beyond safe integers", [2 ** 53, 2 ** 60, -(2 ** 70)], NOT_DECIMAL],
  ["values with 15 decimals", [0.123456789012345, 0.5]],
  ["values needing more than 15 decimals", [0.1 + 0.2, 0.3]],
  ["values that are not exact at their printed scale", [0.57, 1.005, 8.675, 1.1]],
  ["large decimals", [123456789.12, -987654321.98]],
];

describe("encodeFloats/decodeFloats", () => {
  for (const [name, values, format] of cases) {
    test(`round-trips ${name}`, () => {
      const buf = roundTrip(Float64Array.from(values));
      if (format === NOT_DECIMAL) expect<number[]>([FORMAT.FLOAT_GORILLA, FORMAT.FLOAT_SPLIT]).toContain(readColumnHeader(buf).format);
      else if (format !== undefined) expect(readColumnHeader(buf).format).toBe(format);
    });
  }

  test("keeps NaN payloads and signs exactly", () => {
    roundTrip(
      fromBits([
        [0x7ff80000, 0], // the canonical quiet NaN
        [0x7ff00000, 1], // a signalling NaN
        [0xfff80000, 0xdeadbeef], // a negative quiet NaN with payload
        [0x7fffffff, 0xffffffff],
        [0x80000000, 0], // -0
      ]),
    );
  });

  test("round-trips any doubles (NaN, ±0, ±Infinity, subnormals)", () => {
    fc.assert(
      fc.property(fc.array(fc.double(), { maxLength: 200 }), (values) => {
        roundTrip(Float64Array.from(values));
      }),
      { numRuns: 500 },
    );
  });

  test("round-trips any 64-bit patterns", () => {
    const word = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(fc.array(fc.tuple(word, word), { maxLength: 200 }), (pairs) => {
        roundTrip(fromBits(pairs));
      }),
      { numRuns: 300 },
    );
  });

  test("round-trips decimals at every scale, mixed with repeats", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 15 }),
        fc.array(fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constant(0)), { maxLength: 200 }),
        (k, ints) => {
          roundTrip(Float64Array.from(ints, (m) => m / 10 ** k));
        },
      ),
      { numRuns: 500 },
    );
  });

  test("round-trips random walks that repeat and jump", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(0), fc.double({ min: -1, max: 1, noNaN: true }), fc.double()), { maxLength: 300 }),
        (steps) => {
          let x = 0;
          roundTrip(Float64Array.from(steps, (s) => (x = s === 0 ? x : x + s)));
        },
      ),
    );
  });

  test("uses the decimal encoding for a 2-decimal random walk, at about a byte per value", () => {
    const values = decimalWalk(10_000, 42);
    const buf = roundTrip(values);
    expect(readColumnHeader(buf).format).toBe(FORMAT.FLOAT_DECIMAL);
    expect(buf.length / values.length).toBeLessThan(1.2);
  });

  test("keeps a 2-decimal random walk under 2 bytes per value in 1000-value chunks", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const values = decimalWalk(1000, seed);
      expect(roundTrip(values).length / values.length).toBeLessThan(1.3);
    }
  });

  test("keeps full-precision random walks under 8.5 bytes per value", () => {
    const rand = mulberry32(5);
    let x = 50;
    const values = Float64Array.from({ length: 10_000 }, () => (x += rand() - 0.5));
    expect(roundTrip(values).length / values.length).toBeLessThan(8.5);
  });

  test("keeps uniform random doubles under 8.5 bytes per value", () => {
    const rand = mulberry32(6);
    const values = Float64Array.from({ length: 10_000 }, () => rand() * 1e6 - 5e5);
    expect(roundTrip(values).length / values.length).toBeLessThan(8.5);
  });

  test("stores random bit patterns raw, at 8 bytes per value", () => {
    const rand = mulberry32(7);
    const word = () => Math.floor(rand() * 2 ** 32);
    const values = fromBits(Array.from({ length: 1000 }, (): [number, number] => [word(), word()]));
    const buf = roundTrip(values);
    expect(readColumnHeader(buf).format).toBe(FORMAT.FLOAT_RAW);
    expect(buf.length).toBeLessThanOrEqual(8 * 1000 + 3);
  });

  test("stores doubles with 53 random bits in [0, 100) split, exponents by prefix code, at under 6.85 bytes per value", () => {
    const rand = mulberry32(8);
    // The bench's --random-floats values: 53 random bits scaled to [0, 100).
    const values = Float64Array.from({ length: 1000 }, () => ((Math.floor(rand() * 2 ** 21) * 2 ** 32 + Math.floor(rand() * 2 ** 32)) / 2 ** 53) * 100);
    const buf = roundTrip(values);
    expect(readColumnHeader(buf).format).toBe(FORMAT.FLOAT_SPLIT_CODED);
    // 52 mantissa bits are 6.5 bytes; the exponent's code adds about 2 bits, a fixed index 4.
    expect(buf.length / values.length).toBeLessThan(6.85);
  });

  test("keeps a fixed index for exponents used equally often, where no code is shorter", () => {
    const rand = mulberry32(10);
    const values = Float64Array.from({ length: 800 }, (_, i) => (1 + rand() + rand() * 2 ** -32) * 2 ** (i % 8));
    const buf = roundTrip(values);
    expect(readColumnHeader(buf).format).toBe(FORMAT.FLOAT_SPLIT);
  });

  test("round-trips exponents drawn from skewed distributions, up to thousands of them, in the split form", () => {
    // Geometric and Fibonacci-like weights give long codes; past 15 bits the fixed index is kept.
    const exponent = fc.oneof(
      fc.integer({ min: 0, max: 40 }).map((k) => Math.min(k, fc.sample(fc.integer({ min: 0, max: k }), 1)[0]!)),
      fc.integer({ min: -1074, max: 1023 }),
      fc.constantFrom(0, 0, 0, 0, 1, 1, 2),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(exponent, fc.double({ min: 1, max: 2, noNaN: true }), fc.boolean()), { maxLength: 300 }), (list) => {
        const values = Float64Array.from(list, ([e, m, neg]) => (neg ? -1 : 1) * m * 2 ** e);
        const buf = encodeSplitForTest(values);
        expect(bytesOf(decodeFloats(buf))).toEqual(bytesOf(values));
      }),
      { numRuns: 300 },
    );
  });

  test("falls back to a fixed index when a code would be longer than 15 bits", () => {
    // Counts 1, 1, 2, 3, 5, 8, ...: Huffman gives the rarest a code as long as the list.
    const fib = [1, 1];
    while (fib.length < 20) fib.push(fib[fib.length - 1]! + fib[fib.length - 2]!);
    const rand = mulberry32(11);
    const values = Float64Array.from(
      fib.flatMap((count, e) => Array.from({ length: count }, () => (1 + rand() + rand() * 2 ** -32) * 2 ** e)),
    );
    const buf = encodeSplitForTest(values);
    expect(readColumnHeader(buf).format).toBe(FORMAT.FLOAT_SPLIT);
    expect(bytesOf(decodeFloats(buf))).toEqual(bytesOf(values));
  });

  test("refuses a coded split column whose code lengths are not a prefix code, or empty", () => {
    const rand = mulberry32(12);
    const values = Float64Array.from({ length: 200 }, () => rand() * 100);
    const buf = encodeSplitForTest(values);
    expect(readColumnHeader(buf).format).toBe(FORMAT.FLOAT_SPLIT_CODED);
    // After the 3-byte header: 11 bits of d - 1, then d 12-bit tops, then d 4-bit lengths.
    const d = ((buf[3]! << 3) | (buf[4]! >>> 5)) + 1;
    const lengthsAt = 3 * 8 + 11 + 12 * d;
    const setLength = (b: Uint8Array, k: number, len: number) => {
      for (let bit = 0; bit < 4; bit++) {
        const at = lengthsAt + 4 * k + bit;
        const mask = 0x80 >>> (at % 8);
        if ((len >>> (3 - bit)) & 1) b[at >>> 3]! |= mask;
        else b[at >>> 3]! &= ~mask;
      }
    };
    const allOnes = buf.slice();
    for (let k = 0; k < d; k++) setLength(allOnes, k, 1);
    expect(() => decodeFloats(allOnes)).toThrow(/not a prefix code/);
    const empty = buf.slice();
    setLength(empty, 0, 0);
    expect(() => decodeFloats(empty)).toThrow(/empty code/);
  });

  test("the split form keeps only the mantissa bits in use: float32 readings cost about 3.4 bytes a value", () => {
    const rand = mulberry32(9);
    const values = Float64Array.from({ length: 1000 }, () => Math.fround(rand() * 1000));
    const split = encodeSplitForTest(values);
    expect(bytesOf(decodeFloats(split))).toEqual(bytesOf(values));
    expect(split.length / values.length).toBeLessThan(3.5);
    // Whatever form encodeFloats picks is no bigger.
    expect(roundTrip(values).length).toBeLessThanOrEqual(split.length);
  });

  test("round-trips any doubles in the split form, however few mantissa bits they use", () => {
    const double = fc.oneof(
      fc.double(),
      fc.float().map((x) => x),
      fc.integer({ min: -1e6, max: 1e6 }).map((x) => x * 2 ** -10),
      fc.constantFrom(NaN, -0, Infinity, -Infinity, MIN_SUBNORMAL, Number.MAX_VALUE),
    );
    fc.assert(
      fc.property(fc.array(double, { maxLength: 200 }), (list) => {
        const values = Float64Array.from(list);
        const buf = encodeSplitForTest(values);
        expect(bytesOf(decodeFloats(buf))).toEqual(bytesOf(values));
      }),
      { numRuns: 500 },
    );
  });

  test("stores a constant in about a bit per value", () => {
    const buf = roundTrip(new Float64Array(10_000).fill(Math.PI));
    expect(buf.length / 10_000).toBeLessThan(0.13);
  });

  test("a decimal column is never stored larger than its XOR form, whose size is counted before it is written", () => {
    // Runs of repeats (where XOR costs a bit a value) with steps of a few hundredths or a jump
    // now and then: either form can be the smaller.
    const run = fc.tuple(fc.integer({ min: 1, max: 60 }), fc.oneof(fc.integer({ min: -300, max: 300 }), fc.integer({ min: -2e6, max: 2e6 })));
    fc.assert(
      fc.property(fc.array(run, { minLength: 1, maxLength: 40 }), (runs) => {
        const values: number[] = [];
        let cents = 5000;
        for (const [repeat, step] of runs) {
          cents += step;
          for (let i = 0; i < repeat; i++) values.push(cents / 100);
        }
        const column = Float64Array.from(values);
        const buf = roundTrip(column);
        expect(buf.length).toBeLessThanOrEqual(encodeGorillaForTest(column).length);
      }),
      { numRuns: 300 },
    );
  });

  test("a run of zeros, which the decimal form also takes, is stored in the split form when that is smaller", () => {
    const column = new Float64Array(17);
    const buf = roundTrip(column);
    expect(encodeSplitForTest(column).length).toBeLessThan(7);
    expect(buf).toEqual(encodeSplitForTest(column));
  });

  test("a full-precision column is never stored larger than its XOR or split form", () => {
    // Runs of repeats of doubles with random mantissas: XOR wins on long runs, split on short.
    const run = fc.tuple(fc.integer({ min: 1, max: 40 }), fc.double({ min: -1e6, max: 1e6, noNaN: true }));
    fc.assert(
      fc.property(fc.array(run, { minLength: 1, maxLength: 60 }), (runs) => {
        const column = Float64Array.from(runs.flatMap(([repeat, v]) => Array.from({ length: repeat }, () => v)));
        const buf = roundTrip(column);
        expect(buf.length).toBeLessThanOrEqual(encodeGorillaForTest(column).length);
        expect(buf.length).toBeLessThanOrEqual(encodeSplitForTest(column).length);
      }),
      { numRuns: 300 },
    );
  });
});
