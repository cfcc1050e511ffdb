import { describe, expect, test } from "bun:test";
import { compareWords, fromNumbers, splitWords, toNumbers } from "./words.ts";

describe("int64 columns as words", () => {
  test("safe integers go to doubles and back exactly", () => {
    const nums = [0, 1, 2 ** 32 - 1, 2 ** 32, 1_795_000_000_000 * 1024 + 7, Number.MAX_SAFE_INTEGER];
    const col = fromNumbers(nums);
    expect([...col]).toEqual(nums.map((n) => BigInt(n)));
    expect([...toNumbers(col)]).toEqual(nums);
  });

  const cases: Array<[string, bigint, bigint]> = [
    ["equal", 1_700_000_000_000_000_000n, 1_700_000_000_000_000_000n],
    ["differing in the low word", 1_700_000_000_000_000_001n, 1_700_000_000_000_000_000n],
    ["differing in the high word", 1_700_000_000_000_000_000n, 1_600_000_000_000_000_000n],
    ["negative against positive", -5n, 5n],
    ["both negative", -(2n ** 40n), -1n],
    ["the int64 extremes", -(2n ** 63n), 2n ** 63n - 1n],
  ];
  for (const [name, a, b] of cases) {
    test(`compares like bigints: ${name}`, () => {
      const col = BigInt64Array.of(a);
      const hi = new Int32Array(col.buffer);
      const lo = new Uint32Array(col.buffer);
      const [bh, bl] = splitWords(b);
      expect(compareWords(hi, lo, 0, bh, bl)).toBe(a === b ? 0 : a < b ? -1 : 1);
    });
  }
});
