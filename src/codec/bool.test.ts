import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeBools, encodeBools } from "./bool.ts";
import { FORMAT, readColumnHeader } from "./format.ts";

const cases: Array<[string, boolean[], number]> = [
  ["an empty column", [], FORMAT.BOOL_CONSTANT],
  ["a single true", [true], FORMAT.BOOL_CONSTANT],
  ["a single false", [false], FORMAT.BOOL_CONSTANT],
  ["all true", Array<boolean>(100).fill(true), FORMAT.BOOL_CONSTANT],
  ["a mix shorter than a byte", [true, false, true], FORMAT.BOOL_PACKED],
  ["a mix of exactly 8", [true, false, false, true, true, false, true, false], FORMAT.BOOL_PACKED],
  ["a mix of 9", [false, false, false, false, false, false, false, false, true], FORMAT.BOOL_PACKED],
];

describe("encodeBools/decodeBools", () => {
  for (const [name, values, format] of cases) {
    test(`round-trips ${name}`, () => {
      const buf = encodeBools(values);
      expect(decodeBools(buf)).toEqual(values);
      expect(readColumnHeader(buf).format).toBe(format);
    });
  }

  test("round-trips any boolean column", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 300 }), (values) => {
        expect(decodeBools(encodeBools(values))).toEqual(values);
      }),
      { numRuns: 500 },
    );
  });

  test("packs eight values per byte", () => {
    const values = Array.from({ length: 8000 }, (_, i) => i % 3 === 0);
    expect(encodeBools(values).length).toBeLessThanOrEqual(1000 + 4);
  });
});
