import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FORMAT, readColumnHeader } from "./format.ts";
import { bytesOf, mulberry32, regularTimes } from "./testkit.ts";
import { decodeTimes, encodeTimes } from "./time.ts";

const MIN = -(2n ** 63n);
const MAX = 2n ** 63n - 1n;
const NOW = 1_700_000_000_000_000_000n;

function roundTrip(times: BigInt64Array): Uint8Array {
  const buf = encodeTimes(times);
  const back = decodeTimes(buf);
  expect(back.length).toBe(times.length);
  expect(bytesOf(back)).toEqual(bytesOf(times));
  return buf;
}

const cases: Array<[string, bigint[]]> = [
  ["an empty column", []],
  ["a single timestamp", [NOW]],
  ["a single int64 minimum", [MIN]],
  ["two timestamps", [NOW, NOW + 10n]],
  ["regular timestamps", [NOW, NOW + 10n, NOW + 20n, NOW + 30n]],
  ["duplicate timestamps", [NOW, NOW, NOW, NOW + 1n, NOW + 1n]],
  ["descending timestamps", [NOW + 30n, NOW + 20n, NOW + 10n, NOW]],
  ["unsorted timestamps", [NOW, NOW - 5n, NOW + 1_000_000_000n, 0n, NOW]],
  ["zero and negative times", [0n, -1n, -1_000_000_000n, 1n]],
  ["int64 extremes", [MIN, MAX, MIN, MAX, 0n]],
  ["deltas that overflow int64", [MIN, MAX, MIN, 0n, MAX, -1n]],
  ["a huge delta among small ones", [NOW, NOW + 1n, NOW + 2n, MAX, MAX - 1n]],
  ["seconds precision with a gap", [NOW, NOW + 10_000_000_000n, NOW + 20_000_000_000n, NOW + 3_600_000_000_000n]],
  ["a delta of exactly 2^51", [0n, 2n ** 51n, 2n ** 52n]],
  ["a delta just under 2^51", [0n, 2n ** 51n - 1n, 2n * (2n ** 51n - 1n)]],
  ["delta-of-deltas needing all 64 bits", [0n, MAX, 0n, MAX, 0n]],
];

describe("encodeTimes/decodeTimes", () => {
  for (const [name, times] of cases) {
    test(`round-trips ${name}`, () => {
      roundTrip(BigInt64Array.from(times));
    });
  }

  test("round-trips any int64 column (unsorted, duplicates, extremes)", () => {
    fc.assert(
      fc.property(fc.bigInt64Array({ maxLength: 200 }), (times) => {
        roundTrip(times);
      }),
      { numRuns: 500 },
    );
  });

  test("round-trips sorted columns with duplicates and mixed units", () => {
    const step = fc.oneof(
      fc.constant(0n),
      fc.bigInt({ min: 0n, max: 1_000n }),
      fc.constantFrom(1_000_000n, 1_000_000_000n, 10_000_000_000n),
      fc.bigInt({ min: 0n, max: 2n ** 52n }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: MIN / 2n, max: MAX / 2n }), fc.array(step, { maxLength: 300 }), (start, steps) => {
        const times = new BigInt64Array(steps.length + 1);
        times[0] = start;
        for (let i = 0; i < steps.length; i++) times[i + 1] = BigInt.asIntN(64, times[i]! + steps[i]!);
        roundTrip(times);
      }),
      { numRuns: 500 },
    );
  });

  test("round-trips timestamps that are multiples of a power of ten, in any order", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1n, 1_000n, 1_000_000n, 1_000_000_000n, 10n ** 15n),
        fc.array(fc.bigInt({ min: -1_000_000n, max: 1_000_000n }), { maxLength: 100 }),
        (unit, offsets) => {
          roundTrip(BigInt64Array.from(offsets, (o) => NOW + o * unit));
        },
      ),
    );
  });

  test("stores regular 10 s timestamps in almost nothing", () => {
    const times = regularTimes(10_000, 10_000_000_000n, 0, 1);
    const buf = roundTrip(times);
    expect(buf.length / times.length).toBeLessThan(0.01);
  });

  test("stores 10 s timestamps with one late sample at about a bit per value", () => {
    const times = regularTimes(10_000, 10_000_000_000n, 0, 1);
    times[5000] = times[5000]! + 1_234_567n;
    const buf = roundTrip(times);
    expect(buf.length / times.length).toBeLessThan(0.15);
  });

  test("stores whole-second timestamps with ±1 s jitter in under half a byte per value", () => {
    const rand = mulberry32(7);
    const times = BigInt64Array.from({ length: 10_000 }, (_, i) => NOW + BigInt(i * 10 + Math.floor(rand() * 3) - 1) * 1_000_000_000n);
    const buf = roundTrip(times);
    expect(buf.length / times.length).toBeLessThan(0.5);
  });

  test("stores nanosecond timestamps with ±1 ms jitter in under 3 bytes per value", () => {
    const times = regularTimes(10_000, 10_000_000_000n, 1_000_000, 3);
    const buf = roundTrip(times);
    expect(buf.length / times.length).toBeLessThan(3);
  });

  test("falls back to raw 8-byte values when delta-of-delta would be larger", () => {
    const rand = mulberry32(11);
    const times = BigInt64Array.from({ length: 1000 }, () => BigInt.asIntN(64, BigInt(Math.floor(rand() * 2 ** 32)) << 32n | BigInt(Math.floor(rand() * 2 ** 32))));
    const buf = roundTrip(times);
    expect(readColumnHeader(buf).format).toBe(FORMAT.TIME_RAW);
    expect(buf.length).toBeLessThanOrEqual(8 * 1000 + 3);
  });

  // Regular columns skip the per-value passes; these are the bytes the per-value passes wrote.
  const regular: Array<[string, bigint[], string]> = [
    ["10 s apart in ns", Array.from({ length: 5 }, (_, i) => 1_704_067_200_000_000_000n + BigInt(i) * 10_000_000_000n), "110517a6101701650000a05000"],
    ["1 ms apart, descending", Array.from({ length: 4 }, (_, i) => 1_000_000_000n - BigInt(i) * 1_000_000n), "1104000000003b9aca00603000"],
    ["7 ns apart across zero", Array.from({ length: 6 }, (_, i) => -14n + BigInt(i) * 7n), "1106fffffffffffffff2009c00"],
    ["two values", [5n, 9n], "11020000000000000005009000"],
    ["a step too large for exact numbers", [-(2n ** 62n), 0n, 2n ** 62n], "1103c0000000000000000810000000000000000000"],
    ["equal timestamps", [42n, 42n, 42n], "1103000000000000002af00000"],
  ];
  test("round-trips a column whose low words step alike but high words do not", () => {
    const times = BigInt64Array.of(0n, 2n ** 32n + 5n, 2n ** 32n + 10n, 2n ** 33n + 15n);
    roundTrip(times);
  });

  for (const [name, times, hex] of regular) {
    test(`writes a regular column (${name}) as the general encoding does`, () => {
      expect(Buffer.from(roundTrip(BigInt64Array.from(times))).toString("hex")).toBe(hex);
    });
  }
});
