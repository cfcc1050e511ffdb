import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeInts, decodeSmallInts, decodeUints, encodeInts, encodeSmallInts, encodeUints } from "./int.ts";
import { bytesOf, mulberry32 } from "./testkit.ts";

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

function roundTripInts(values: BigInt64Array): Uint8Array {
  const buf = encodeInts(values);
  const back = decodeInts(buf);
  expect(back.length).toBe(values.length);
  expect(bytesOf(back)).toEqual(bytesOf(values));
  return buf;
}

function roundTripUints(values: BigUint64Array): Uint8Array {
  const buf = encodeUints(values);
  const back = decodeUints(buf);
  expect(back.length).toBe(values.length);
  expect(bytesOf(back)).toEqual(bytesOf(values));
  return buf;
}

const intCases: Array<[string, bigint[]]> = [
  ["an empty column", []],
  ["a single zero", [0n]],
  ["a single minimum", [I64_MIN]],
  ["int64 extremes alternating", [I64_MIN, I64_MAX, I64_MIN, I64_MAX]],
  ["-1, 0 and 1", [-1n, 0n, 1n, 0n, -1n]],
  ["a counter", [100n, 101n, 102n, 103n, 104n]],
  ["values around 2^32", [2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, -(2n ** 32n)]],
  ["values around 2^53", [2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n]],
];

const uintCases: Array<[string, bigint[]]> = [
  ["an empty column", []],
  ["a single maximum", [U64_MAX]],
  ["uint64 extremes alternating", [0n, U64_MAX, 0n, U64_MAX]],
  ["values across 2^63", [2n ** 63n - 1n, 2n ** 63n, 2n ** 63n + 1n]],
];

/** Columns made of runs (lengths around the run threshold and block size) of a few values. */
const runs = (value: fc.Arbitrary<bigint>) =>
  fc
    .array(fc.tuple(value, fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constantFrom(127, 128, 129, 300))), { maxLength: 20 })
    .map((parts) => parts.flatMap(([v, len]) => Array<bigint>(len).fill(v)));

describe("encodeInts/decodeInts", () => {
  for (const [name, values] of intCases) {
    test(`round-trips ${name}`, () => {
      roundTripInts(BigInt64Array.from(values));
    });
  }

  test("round-trips any int64 column", () => {
    fc.assert(
      fc.property(fc.bigInt64Array({ maxLength: 300 }), (values) => {
        roundTripInts(values);
      }),
      { numRuns: 500 },
    );
  });

  test("round-trips columns of runs, including runs of constant steps", () => {
    const small = fc.bigInt({ min: -1000n, max: 1000n });
    fc.assert(
      fc.property(runs(fc.oneof(small, fc.bigInt({ min: I64_MIN, max: I64_MAX }))), fc.boolean(), (values, integrate) => {
        // Integrating turns runs of equal values into runs of equal deltas (counters).
        let acc = 0n;
        const col = integrate ? values.map((v) => (acc = BigInt.asIntN(64, acc + v))) : values;
        roundTripInts(BigInt64Array.from(col));
      }),
      { numRuns: 300 },
    );
  });

  test("stores a constant-rate counter in a few bytes", () => {
    const values = BigInt64Array.from({ length: 10_000 }, (_, i) => 1_000_000n + 7n * BigInt(i));
    expect(roundTripInts(values).length).toBeLessThan(16);
  });

  test("stores a constant in a few bytes", () => {
    expect(roundTripInts(new BigInt64Array(10_000).fill(-42n)).length).toBeLessThan(16);
  });

  test("stores a gauge moving ±100 in about a byte per value", () => {
    const rand = mulberry32(3);
    let x = 5000n;
    const values = BigInt64Array.from({ length: 10_000 }, () => (x += BigInt(Math.round((rand() * 2 - 1) * 100))));
    expect(roundTripInts(values).length / values.length).toBeLessThan(1.1);
  });

  test("stores random int64 values in about 8 bytes each", () => {
    const rand = mulberry32(4);
    const values = BigInt64Array.from({ length: 1000 }, () => BigInt.asIntN(64, BigInt(Math.floor(rand() * 2 ** 53)) << 11n));
    expect(roundTripInts(values).length / values.length).toBeLessThan(8.1);
  });
});

describe("encodeUints/decodeUints", () => {
  for (const [name, values] of uintCases) {
    test(`round-trips ${name}`, () => {
      roundTripUints(BigUint64Array.from(values));
    });
  }

  test("round-trips any uint64 column", () => {
    fc.assert(
      fc.property(fc.bigUint64Array({ maxLength: 300 }), (values) => {
        roundTripUints(values);
      }),
      { numRuns: 500 },
    );
  });

  test("round-trips columns of runs of uint64 values", () => {
    fc.assert(
      fc.property(runs(fc.bigInt({ min: 0n, max: U64_MAX })), (values) => {
        roundTripUints(BigUint64Array.from(values));
      }),
      { numRuns: 200 },
    );
  });

  test("round-trips views into a larger buffer", () => {
    const backing = BigUint64Array.from([9n, 1n, 2n, 3n, 9n]);
    const view = backing.subarray(1, 4);
    expect(Array.from(decodeUints(encodeUints(view)))).toEqual([1n, 2n, 3n]);
  });
});

describe("encodeSmallInts/decodeSmallInts", () => {
  test("write what encodeInts writes for the same values, and read them back", () => {
    const runs = fc.array(fc.record({ v: fc.integer({ min: 0, max: 0xffff }), n: fc.integer({ min: 1, max: 40 }) }), { maxLength: 20 });
    fc.assert(
      fc.property(fc.oneof(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 300 }), runs.map((rs) => rs.flatMap((r) => Array(r.n).fill(r.v) as number[]))), (list) => {
        const values = Uint16Array.from(list);
        const buf = encodeSmallInts(values);
        expect(buf).toEqual(encodeInts(BigInt64Array.from(list, (v) => BigInt(v))));
        expect(decodeSmallInts(buf)).toEqual(values);
      }),
      { numRuns: 500 },
    );
  });

  test("refuse an integer column holding values outside 0..65535", () => {
    for (const bad of [[1n, 65536n], [-1n], [2n ** 40n]]) {
      expect(() => decodeSmallInts(encodeInts(BigInt64Array.from(bad)))).toThrow(/not a small integer/);
    }
    expect(Array.from(decodeSmallInts(encodeInts(BigInt64Array.of(0n, 65535n))))).toEqual([0, 65535]);
  });
});
