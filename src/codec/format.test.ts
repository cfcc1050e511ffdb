/** Behaviour shared by every codec: self-describing headers, and refusing bad buffers. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeBools, encodeBools } from "./bool.ts";
import { decodeClocks, encodeClocks } from "./clock.ts";
import { decodeFloats, encodeFloats } from "./float.ts";
import { FORMAT, MAX_VALUES, readColumnHeader, type ColumnKind } from "./format.ts";
import { decodeInts, decodeUints, encodeInts, encodeUints } from "./int.ts";
import { decodeStrings, encodeStrings } from "./string.ts";
import { decimalWalk, mulberry32, regularTimes } from "./testkit.ts";
import { decodeTimes, encodeTimes } from "./time.ts";
import { isTsdbError } from "../errors.ts";

const rand = mulberry32(99);
const jitteryTimes = regularTimes(300, 10_000_000_000n, 1_000_000, 5);
const scaledTimes = BigInt64Array.from({ length: 300 }, (_, i) => 1_700_000_000_000_000_000n + BigInt(i * 10 + (i % 7 === 0 ? 1 : 0)) * 1_000_000_000n);

interface Codec {
  kind: ColumnKind;
  decode: (buf: Uint8Array) => unknown;
  /** Encoded samples covering each of the kind's formats. */
  samples: Array<[string, Uint8Array]>;
}

const codecs: Codec[] = [
  {
    kind: "time",
    decode: decodeTimes,
    samples: [
      ["empty", encodeTimes(new BigInt64Array(0))],
      ["single-value", encodeTimes(BigInt64Array.from([5n]))],
      ["jittery", encodeTimes(jitteryTimes)],
      ["whole seconds", encodeTimes(scaledTimes)],
      ["raw", encodeTimes(BigInt64Array.from({ length: 50 }, () => BigInt(Math.floor(rand() * 2 ** 53)) << 10n))],
    ],
  },
  {
    kind: "float",
    decode: decodeFloats,
    samples: [
      ["empty", encodeFloats(new Float64Array(0))],
      ["decimal", encodeFloats(decimalWalk(300, 1))],
      ["Gorilla", encodeFloats(Float64Array.from({ length: 300 }, (_, i) => (i % 50 === 0 ? NaN : Math.PI * (i >> 4))))],
      ["raw", encodeFloats(new Float64Array(Uint32Array.from({ length: 100 }, () => Math.floor(rand() * 2 ** 32)).buffer))],
      ["split, exponents by prefix code", encodeFloats(Float64Array.from({ length: 300 }, () => rand() * 100))],
      // Eight exponents equally often: a fixed 3-bit index is as short as any code.
      ["split, exponents by index", encodeFloats(Float64Array.from({ length: 300 }, (_, i) => (1 + rand() + rand() * 2 ** -32) * 2 ** (i % 8)))],
    ],
  },
  {
    kind: "integer",
    decode: decodeInts,
    samples: [
      ["empty", encodeInts(new BigInt64Array(0))],
      ["mixed", encodeInts(BigInt64Array.from({ length: 400 }, (_, i) => (i < 200 ? BigInt(i * 3) : BigInt(Math.floor(rand() * 1e12)) - 10n ** 11n)))],
    ],
  },
  {
    kind: "unsigned",
    decode: decodeUints,
    samples: [["mixed", encodeUints(BigUint64Array.from({ length: 300 }, (_, i) => (i % 100 < 40 ? 7n : 2n ** 64n - BigInt(i))))]],
  },
  {
    kind: "boolean",
    decode: decodeBools,
    samples: [
      ["constant", encodeBools([true, true])],
      ["packed", encodeBools(Array.from({ length: 77 }, (_, i) => i % 5 === 0))],
    ],
  },
  {
    kind: "string",
    decode: decodeStrings,
    samples: [
      ["plain", encodeStrings(["héllo", "wörld", "x", "😀"])],
      ["dictionary", encodeStrings(Array.from({ length: 100 }, (_, i) => ["on", "off", "\uD800"][i % 3]!))],
    ],
  },
  {
    kind: "clock",
    decode: decodeClocks,
    samples: [
      ["empty", encodeClocks(new Float64Array(0))],
      ["runs", encodeClocks(Float64Array.from({ length: 300 }, (_, i) => (1_795_322_432_582 + Math.floor(i / 5) * 97) * 1024))],
      ["out-of-order", encodeClocks(Float64Array.from({ length: 50 }, (_, i) => (1_795_322_432_582 - (i % 7) * 300) * 1024 + (i % 3)))],
    ],
  },
];

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    expect(isTsdbError(e)).toBe(true);
    return e as Error;
  }
  throw new Error("expected a throw, got a value");
}

describe("column headers", () => {
  test("every sample uses a format of its own kind", () => {
    for (const c of codecs) for (const [, buf] of c.samples) expect(readColumnHeader(buf).kind).toBe(c.kind);
  });

  test("the samples cover every format", () => {
    const seen = new Set(codecs.flatMap((c) => c.samples.map(([, buf]) => buf[0])));
    expect([...seen].sort()).toEqual(Object.values(FORMAT).sort());
  });

  test("readColumnHeader reports kind, encoding and count", () => {
    expect(readColumnHeader(encodeFloats(decimalWalk(300, 1)))).toEqual({
      kind: "float",
      format: FORMAT.FLOAT_DECIMAL,
      encoding: "decimal",
      count: 300,
    });
  });

  test("readColumnHeader rejects an unknown format byte", () => {
    expect(thrown(() => readColumnHeader(Uint8Array.from([0x7f, 0]))).message).toContain("0x7f (unknown)");
  });

  test("decoders reject a count above the limit", () => {
    const header = Uint8Array.from([FORMAT.BOOL_CONSTANT, ...leb128(MAX_VALUES + 1), 1]);
    expect(thrown(() => decodeBools(header)).message).toContain("limit");
  });
});

for (const c of codecs) {
  describe(`${c.kind} decoder`, () => {
    for (const other of codecs) {
      if (other === c) continue;
      test(`rejects ${a(other.kind)} column, saying what it expected`, () => {
        for (const [, buf] of other.samples) {
          const e = thrown(() => c.decode(buf));
          expect(e.message).toContain(`expected ${a(c.kind)} column`);
          expect(e.message).toContain(`got format 0x${buf[0]!.toString(16)} (${other.kind} column`);
        }
      });
    }

    test("rejects an empty buffer", () => {
      expect(thrown(() => c.decode(new Uint8Array(0))).message).toContain("empty buffer");
    });

    for (const [name, buf] of c.samples) {
      test(`rejects every truncation of ${a(name)} column`, () => {
        c.decode(buf);
        for (let len = 1; len < buf.length; len++) thrown(() => c.decode(buf.subarray(0, len)));
      });

      test(`fails only with a TsdbError when ${a(name)} column is corrupted`, () => {
        fc.assert(
          fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
            const bad = buf.slice();
            for (const [at, mask] of flips) bad[at % bad.length]! ^= mask;
            try {
              c.decode(bad);
            } catch (e) {
              if (!isTsdbError(e)) throw e;
            }
          }),
          { numRuns: 300 },
        );
      });

      test(`rejects ${a(name)} column with a byte appended`, () => {
        const longer = new Uint8Array(buf.length + 1);
        longer.set(buf);
        thrown(() => c.decode(longer));
      });
    }
  });
}

/** The word with its indefinite article. */
function a(word: string): string {
  return `${/^[aeiou]/i.test(word) ? "an" : "a"} ${word}`;
}

function leb128(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
