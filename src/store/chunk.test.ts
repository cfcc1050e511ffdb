import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { encodeInts, encodeTimes } from "../codec/index.ts";
import { mulberry32 } from "../codec/testkit.ts";
import { decodeChunk, decodeVersions, encodeChunk, encodeVersions, SharedColumns } from "./chunk.ts";
import type { Run } from "./run.ts";

/** Milliseconds of a clock in mid-2026; a clock is milliseconds × 1024 + a counter. */
const NOW_MS = 1_795_322_432_582n;
const hlc = (ms: bigint, counter = 0n): bigint => ms * 1024n + counter;

function roundTrip(input: bigint[]): Uint8Array {
  const buf = encodeVersions(BigInt64Array.from(input));
  expect([...decodeVersions(buf)]).toEqual(input);
  return buf;
}

/** Each clock repeated its count of times, as requests put runs of values into a series. */
function expand(parts: Array<[bigint, number]>): bigint[] {
  return parts.flatMap(([c, k]) => Array<bigint>(k).fill(c));
}

/** A single writer's chunk: `clocks` rising clocks 50-150 ms apart, counters 0, five values each. */
function singleWriterChunk(clocks: number, seed: number): bigint[] {
  const rand = mulberry32(seed);
  const parts: Array<[bigint, number]> = [];
  let ms = NOW_MS;
  for (let j = 0; j < clocks; j++) {
    parts.push([hlc(ms), 5]);
    ms += BigInt(50 + Math.floor(rand() * 101));
  }
  return expand(parts);
}

/** The size of the dictionary form (format 1) of a column, laid out as its encoder does. */
function dictionarySize(input: bigint[]): number {
  const distinct = [...new Set(input)].sort((a, b) => (a < b ? -1 : 1));
  const index = input.map((c) => BigInt(distinct.indexOf(c)));
  return 1 + 4 + encodeTimes(BigInt64Array.from(distinct)).length + encodeInts(BigInt64Array.from(index)).length;
}

describe("version columns", () => {
  const cases: Array<[string, bigint[]]> = [
    ["one clock for every value", Array(100).fill(123456789n)],
    ["runs of five values per clock", Array.from({ length: 100 }, (_, i) => hlc(NOW_MS + BigInt(Math.floor(i / 5)) * 40n))],
    ["a clock per value", Array.from({ length: 100 }, (_, i) => 1_000n + BigInt(i * i))],
    ["clocks out of order (overwrites in a merged chunk)", [5n, 3n, 9n, 3n, 5n, 1n]],
    ["counters 0 and 1023", [hlc(NOW_MS), hlc(NOW_MS, 1023n), hlc(NOW_MS, 1023n), hlc(NOW_MS + 1n)]],
    ["the smallest and the largest clock", [0n, 0n, 2n ** 53n - 1n, 2n ** 53n - 1n]],
    ["int64 values outside the clock range", [-1n, 2n ** 53n, -(2n ** 63n), 2n ** 63n - 1n]],
    ["a single value", [42n]],
    ["no values", []],
  ];
  for (const [name, input] of cases) {
    test(`round-trip ${name}`, () => {
      roundTrip(input);
    });
  }

  test("round-trip any clocks: rising with repeats, out of order, large gaps", () => {
    const clock = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
      fc.constantFrom(0n, 1023n, 1024n, 2n ** 53n - 1024n, 2n ** 53n - 1n),
      fc.tuple(fc.bigInt({ min: -100_000n, max: 100_000n }), fc.constantFrom(0n, 0n, 1n, 1023n)).map(([d, c]) => hlc(NOW_MS + d, c)),
    );
    const runLength = fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constantFrom(16, 128, 300));
    const columns = fc
      .tuple(fc.array(fc.tuple(clock, runLength), { maxLength: 80 }), fc.boolean())
      .map(([parts, sort]) => expand(sort ? [...parts].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)) : parts));
    fc.assert(
      fc.property(columns, (input) => {
        roundTrip(input);
      }),
      { numRuns: 500 },
    );
  });

  test("a single writer's chunk takes under a third of the dictionary form", () => {
    // 300 values, 60 clocks: measured 70-74 bytes over seeds 1-8, against 233-236 as a dictionary.
    for (const seed of [1, 2, 3]) {
      const input = singleWriterChunk(60, seed);
      const buf = roundTrip(input);
      expect(buf[0]).toBe(2);
      expect(buf.length).toBeLessThan(80);
      expect(buf.length * 3).toBeLessThan(dictionarySize(input));
    }
  });

  const forms: Array<[string, bigint[], number]> = [
    ["a single writer's rising runs are stored as runs", singleWriterChunk(60, 4), 2],
    ["two writers interleaved in runs are stored as runs", Array.from({ length: 300 }, (_, i) => hlc(NOW_MS + BigInt(Math.floor(i / 5) % 2 ? 3000 - i : i * 10))), 2],
    ["a clock per value at a regular step is stored as a time column", Array.from({ length: 200 }, (_, i) => hlc(NOW_MS, 0n) + BigInt(i)), 0],
    ["a few clocks recurring far apart are stored as a dictionary", Array.from({ length: 300 }, (_, i) => hlc(NOW_MS + BigInt((i * 37) % 4) * 1000n)), 1],
    // 60 requests of 5 values each, every tenth pair committed the other way round.
    ["requests that committed out of turn are stored as runs", Array.from({ length: 300 }, (_, i) => {
      const request = Math.floor(i / 5);
      const turn = request % 20 === 0 ? request + 1 : request % 20 === 1 ? request - 1 : request;
      return hlc(NOW_MS + BigInt(turn) * 10n);
    }), 2],
  ];
  for (const [name, input, form] of forms) {
    test(name, () => {
      expect(roundTrip(input)[0]).toBe(form);
    });
  }

  // Bytes written by the encoder before the runs form existed: stored chunks must stay readable.
  const stored: Array<[string, string, bigint[]]> = [
    [
      "a dictionary of rising clocks",
      "01130000001104000688063931180002508000477ffe400030180008b0010010010000",
      expand([0n, 66n, 76n, 94n].map((d): [bigint, number] => [hlc(NOW_MS + d), 6])),
    ],
    [
      "a dictionary of clocks out of order",
      "01100000001103000688063931240301b00006c000300c05031463410612",
      [5n, 3n, 9n, 3n, 5n, 5n, 9n, 9n, 3n, 3n, 5n, 9n].map((d) => hlc(NOW_MS + d, 3n)),
    ],
    ["a plain time column", "001104000688063931180102508000477ffe4000", [0n, 66n, 76n, 94n].map((d) => hlc(NOW_MS + d, 1n))],
  ];
  for (const [name, hex, clocks] of stored) {
    test(`reads ${name} as written by earlier versions`, () => {
      expect([...decodeVersions(Uint8Array.from(Buffer.from(hex, "hex")))]).toEqual(clocks);
    });
  }

  test("reads a bare time column as written before versions had a format byte", () => {
    const hlcs = BigInt64Array.of(7n, 8n, 9n);
    expect([...decodeVersions(encodeTimes(hlcs))]).toEqual([7n, 8n, 9n]);
  });

  test("refuses a column of an unknown format", () => {
    expect(() => decodeVersions(Uint8Array.of(9, 0, 0))).toThrow(/unknown version column format/);
  });
});

describe("SharedColumns", () => {
  /** A float run over the given times and clocks (values differ per call, as fields do). */
  const runOf = (times: bigint[], clocks: bigint[], seed: number): Run => {
    const rand = mulberry32(seed);
    return {
      times: BigInt64Array.from(times),
      values: Float64Array.from(times, () => Math.round(rand() * 10_000) / 100),
      hlcs: BigInt64Array.from(clocks),
      origins: 1,
    };
  };

  test("chunks encoded through one memo are byte for byte those encoded alone", () => {
    // Runs of a series' fields: mostly the same times and clocks, sometimes one value apart
    // (a row without the field), another length, or a single word changed.
    const column = fc.array(fc.bigInt({ min: 0n, max: 2n ** 40n }), { minLength: 1, maxLength: 40 });
    const variant = fc.constantFrom("same", "time+1", "hlc+1", "hi word", "shorter", "copy");
    fc.assert(
      fc.property(column, fc.array(variant, { minLength: 1, maxLength: 8 }), fc.integer(), (base, variants, seed) => {
        const times = [...base].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const clocks = times.map((_, i) => hlc(NOW_MS + BigInt(Math.floor(i / 3))));
        const shared = new SharedColumns();
        const first = runOf(times, clocks, seed);
        const runs = variants.map((v, k): Run => {
          const last = times.length - 1;
          const t = [...times];
          const c = [...clocks];
          if (v === "same") return { ...first, values: runOf(times, clocks, seed + k + 1).values };
          if (v === "time+1") t[last] = t[last]! + 1n;
          if (v === "hlc+1") c[last] = c[last]! + 1n;
          if (v === "hi word") t[last] = t[last]! + 2n ** 33n;
          if (v === "shorter" && t.length > 1) return runOf(t.slice(0, -1), c.slice(0, -1), seed + k);
          return runOf(t, c, seed + k);
        });
        for (const run of [first, ...runs]) {
          const alone = encodeChunk(run, "float");
          const through = encodeChunk(run, "float", shared);
          expect(through).toEqual(alone);
          expect(decodeChunk(through, "float")).toEqual(run);
        }
      }),
      { numRuns: 500 },
    );
  });

  test("a flush of a buffer whose fields miss rows writes each field's own times and versions", () => {
    const shared = new SharedColumns();
    const full = runOf([10n, 20n, 30n, 40n], [hlc(NOW_MS), hlc(NOW_MS), hlc(NOW_MS + 5n), hlc(NOW_MS + 5n)], 7);
    const gappy = runOf([10n, 30n, 40n], [hlc(NOW_MS), hlc(NOW_MS + 5n), hlc(NOW_MS + 5n)], 8);
    const a = encodeChunk(full, "float", shared);
    const b = encodeChunk(gappy, "float", shared);
    const c = encodeChunk(full, "float", shared);
    expect(decodeChunk(b, "float").times).toEqual(gappy.times);
    expect(decodeChunk(b, "float").hlcs).toEqual(gappy.hlcs);
    expect(c.times).toEqual(a.times);
    expect(c.maxHlc).toBe(hlc(NOW_MS + 5n));
    expect(b.maxHlc).toBe(hlc(NOW_MS + 5n));
  });
});
