import { describe, expect, test } from "bun:test";
import { encodeTimes } from "../codec/index.ts";
import { decodeVersions, encodeVersions } from "./chunk.ts";

describe("version columns", () => {
  const cases: Array<[string, bigint[]]> = [
    ["one clock for every value", Array(100).fill(123456789n)],
    ["runs of five values per clock", Array.from({ length: 100 }, (_, i) => 1_795_000_000_000n * 1024n + BigInt(Math.floor(i / 5)) * 40_960n)],
    ["a clock per value", Array.from({ length: 100 }, (_, i) => 1_000n + BigInt(i * i))],
    ["clocks out of order (overwrites in a merged chunk)", [5n, 3n, 9n, 3n, 5n, 1n]],
    ["a single value", [42n]],
    ["no values", []],
  ];
  for (const [name, input] of cases) {
    test(`round-trip ${name}`, () => {
      const hlcs = BigInt64Array.from(input);
      expect([...decodeVersions(encodeVersions(hlcs))]).toEqual(input);
    });
  }

  test("runs of shared clocks (five values a request) take a third less than a clock per value", () => {
    // A clock every ~40 ms with jitter, shared by runs of five values, as the ingest benchmark writes them.
    const hlcs = BigInt64Array.from({ length: 1000 }, (_, i) => {
      const frame = Math.floor(i / 5);
      return 1_795_000_000_000n * 1024n + BigInt(frame) * 40_960n + BigInt((frame * 7919) % 3000);
    });
    expect(encodeVersions(hlcs)[0]).toBe(1); // the dictionary form was chosen
    expect(encodeVersions(hlcs).length).toBeLessThan((encodeTimes(hlcs).length * 2) / 3);
  });

  test("reads a bare time column as written before versions had a format byte", () => {
    const hlcs = BigInt64Array.of(7n, 8n, 9n);
    expect([...decodeVersions(encodeTimes(hlcs))]).toEqual([7n, 8n, 9n]);
  });

  test("refuses a column of an unknown format", () => {
    expect(() => decodeVersions(Uint8Array.of(9, 0, 0))).toThrow(/unknown version column format/);
  });
});
