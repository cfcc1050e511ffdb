import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FORMAT, readColumnHeader } from "./format.ts";
import { decodeStrings, encodeStrings } from "./string.ts";
import { mulberry32 } from "./testkit.ts";

function roundTrip(values: string[]): Uint8Array {
  const buf = encodeStrings(values);
  const back = decodeStrings(buf);
  expect(back).toEqual(values);
  return buf;
}

const cases: Array<[string, string[], number?]> = [
  ["an empty column", []],
  ["a single empty string", [""]],
  ["empty strings", ["", "", ""]],
  ["distinct ASCII strings", ["alpha", "beta", "gamma"], FORMAT.STRING_PLAIN],
  ["a repeated status", ["ok", "ok", "ok", "ok", "fail", "ok", "ok"], FORMAT.STRING_DICT],
  ["multi-byte UTF-8", ["héllo", "日本語", "emoji 😀", "ÿ"]],
  ["a leading byte-order mark", ["\uFEFFbom", "\uFEFF"]],
  ["NUL characters", ["\0", "a\0b"]],
  ["a lone high surrogate", ["\uD800", "x"]],
  ["a lone low surrogate", ["\uDC00x"]],
  ["halves of a pair split across values", ["a\uD83D", "\uDE00b"]],
  ["reversed surrogates", ["\uDE00\uD83D"]],
  ["a repeated lone surrogate", ["\uD800", "\uD800", "\uD800", "\uD800"]],
  ["a long string", ["x".repeat(100_000)]],
];

describe("encodeStrings/decodeStrings", () => {
  for (const [name, values, format] of cases) {
    test(`round-trips ${name}`, () => {
      const buf = roundTrip(values);
      if (format !== undefined) expect(readColumnHeader(buf).format).toBe(format);
    });
  }

  test("round-trips any strings, lone surrogates included", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary", maxLength: 20 }), { maxLength: 100 }), (values) => {
        roundTrip(values);
      }),
      { numRuns: 500 },
    );
  });

  test("round-trips columns drawn from a few strings", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "grapheme", maxLength: 10 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 300 }),
        (pool, picks) => {
          roundTrip(picks.map((p) => pool[p % pool.length]!));
        },
      ),
      { numRuns: 300 },
    );
  });

  test("stores a low-cardinality column as a dictionary in about a bit per value", () => {
    const rand = mulberry32(9);
    const states = ["running", "idle", "stopped", "fault"];
    const values = Array.from({ length: 10_000 }, () => states[Math.floor(rand() * states.length)]!);
    const buf = roundTrip(values);
    expect(readColumnHeader(buf).format).toBe(FORMAT.STRING_DICT);
    expect(buf.length / values.length).toBeLessThan(0.3);
  });

  test("stores unique strings plainly with little overhead", () => {
    const values = Array.from({ length: 1000 }, (_, i) => `message number ${i}`);
    const buf = roundTrip(values);
    const text = values.join("").length;
    expect(readColumnHeader(buf).format).toBe(FORMAT.STRING_PLAIN);
    expect(buf.length).toBeLessThan(text + 1000 * 1.1);
  });
});
