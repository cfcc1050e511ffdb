import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeClocks, encodeClocks } from "./clock.ts";
import { isTsdbError } from "../errors.ts";

const MAX_CLOCK = 2 ** 53 - 1;
/** A clock of mid-2026: milliseconds × 1024 + counter. */
const NOW_MS = 1_795_322_432_582;
const hlc = (ms: number, counter = 0): number => ms * 1024 + counter;

function roundTrip(clocks: number[]): Uint8Array {
  const input = Float64Array.from(clocks);
  const buf = encodeClocks(input);
  expect([...decodeClocks(buf)]).toEqual([...input]);
  return buf;
}

/** Each clock repeated its count of times, as requests put runs of values into a series. */
function expand(parts: Array<[number, number]>): number[] {
  return parts.flatMap(([c, k]) => Array<number>(k).fill(c));
}

const cases: Array<[string, number[]]> = [
  ["an empty column", []],
  ["a single clock", [hlc(NOW_MS)]],
  ["clock 0", [0, 0, 0]],
  ["the largest clock", [MAX_CLOCK]],
  ["one clock for every value", Array(300).fill(hlc(NOW_MS, 7))],
  ["rising clocks in runs of five", expand(Array.from({ length: 60 }, (_, j) => [hlc(NOW_MS + j * 97), 5]))],
  ["a clock per value", Array.from({ length: 100 }, (_, i) => hlc(NOW_MS + i * i))],
  ["counters 0 and 1023 in the same millisecond", [hlc(NOW_MS, 0), hlc(NOW_MS, 1023), hlc(NOW_MS + 1, 0), hlc(NOW_MS + 1, 1023)]],
  ["counters only", [1, 2, 3, 1023, 1023]],
  ["the smallest and the largest clock", [0, 0, MAX_CLOCK, MAX_CLOCK, 0]],
  ["clocks out of order", expand([[hlc(NOW_MS, 3), 2], [hlc(NOW_MS - 5), 1], [hlc(NOW_MS + 9, 1), 4], [hlc(NOW_MS - 5), 2]])],
  ["runs around the packed block size", expand([[5, 127], [6, 128], [7, 129], [8, 1], [9, 300]])],
  ["a step of 2^43 - 1 milliseconds", [hlc(0), hlc(2 ** 43 - 1, 1023), hlc(0)]],
];

/** Any clock, the edges of the range, or a clock near now with a counter of 0, 1 or 1023. */
const clock = fc.oneof(
  fc.maxSafeNat(),
  fc.constantFrom(0, 1023, 1024, MAX_CLOCK - 1023, MAX_CLOCK),
  fc.tuple(fc.integer({ min: -100_000, max: 100_000 }), fc.constantFrom(0, 0, 0, 1, 1023)).map(([d, c]) => hlc(NOW_MS + d, c)),
);
const runLength = fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constantFrom(16, 127, 128, 129, 300));
/** Runs of clocks, left in any order or sorted as a single writer's chunk would be. */
const columns = fc
  .tuple(fc.array(fc.tuple(clock, runLength), { maxLength: 80 }), fc.boolean())
  .map(([parts, sort]) => expand(sort ? [...parts].sort((a, b) => a[0] - b[0]) : parts));

describe("encodeClocks/decodeClocks", () => {
  for (const [name, clocks] of cases) {
    test(`round-trips ${name}`, () => {
      roundTrip(clocks);
    });
  }

  test("round-trips any column of clocks, sorted or not", () => {
    fc.assert(
      fc.property(columns, (clocks) => {
        roundTrip(clocks);
      }),
      { numRuns: 500 },
    );
  });

  test("a single writer's chunk costs about two bits a value, steps included", () => {
    // 60 clocks 50-150 ms apart, five values each, counters 0: the steps dominate.
    let ms = NOW_MS;
    const parts: Array<[number, number]> = [];
    for (let j = 0; j < 60; j++) {
      parts.push([hlc(ms), 5]);
      ms += 50 + ((j * 37) % 101);
    }
    expect(roundTrip(expand(parts)).length).toBeLessThan(75);
  });

  test("clocks at a regular step with counters 0 cost a bit a run beyond the first clock", () => {
    // Header 3 bytes, first clock ~6, then a bit per step, one for the counters, ~5 for the runs.
    const zero = roundTrip(expand(Array.from({ length: 60 }, (_, j) => [hlc(NOW_MS + j * 64), 5])));
    expect(zero.length).toBeLessThanOrEqual(23);
    const oneCounter = roundTrip(expand(Array.from({ length: 60 }, (_, j) => [hlc(NOW_MS + j * 64, j === 30 ? 1 : 0), 5])));
    expect(oneCounter.length).toBeGreaterThan(zero.length);
  });

  const notClocks: Array<[string, number]> = [
    ["a negative number", -1],
    ["a fraction", 1.5],
    ["2^53", 2 ** 53],
    ["NaN", NaN],
  ];
  for (const [name, value] of notClocks) {
    test(`refuses to encode ${name}`, () => {
      let error: unknown;
      try {
        encodeClocks(Float64Array.of(hlc(NOW_MS), value));
      } catch (e) {
        error = e;
      }
      expect(isTsdbError(error)).toBe(true);
      expect((error as Error).message).toContain("is not a clock");
    });
  }
});
