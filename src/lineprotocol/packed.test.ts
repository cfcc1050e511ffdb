import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { escapeStringField, escapeTag } from "./escape.ts";
import { packBatch, unpackBatch } from "./packed.ts";
import { parseLines, toPoints } from "./parse.ts";
import type { ParseResult } from "./types.ts";

const NOW = 1_700_000_000_000_000_000n;

/** Packs, moves the buffers through a real structured clone, unpacks. */
function roundTrip(body: string): { original: ParseResult; copy: ParseResult } {
  const original = parseLines(body, { precision: "ns", defaultTime: NOW });
  const { packed, transfer } = packBatch(original);
  const moved = structuredClone(packed, { transfer });
  // Moving empties the sender's buffers: the copy must not lean on them.
  for (const b of transfer) expect(b.byteLength).toBe(0);
  return { original, copy: unpackBatch(moved, () => body) };
}

describe("packed batches", () => {
  test("carry every field type, the extremes of each, escapes, unicode and errors", () => {
    const body = [
      'cpu,host=a,region=eu\\ west f=1.5,i=-9223372036854775808i,u=18446744073709551615u,b=true,s="q\\"uote" 1',
      "cpu,host=b f=-0,i=9223372036854775807i,u=0u,b=F 2",
      "bad line",
      'm\\,x,t=é f=1e308,s="日本" 3',
      "cpu,host=a f=2 4",
      "",
      "m b=FALSE,s=\"\"",
    ].join("\n");
    const { original, copy } = roundTrip(body);
    expect(copy.batch.length).toBe(original.batch.length);
    expect(toPoints(copy.batch)).toEqual(toPoints(original.batch));
    expect(copy.errors).toEqual(original.errors);
    expect(copy.errors[0]!.line).toBe(3);
    expect(Object.is(toPoints(copy.batch)[1]!.fields[0]!.value, -0)).toBe(true);
  });

  test("an all-float batch keeps its values in the moved array", () => {
    const { copy } = roundTrip("m a=1,b=2 1\nm a=3,b=4 2");
    expect(copy.batch.fieldValue).toBeInstanceOf(Float64Array);
    expect(Array.from(copy.batch.fieldValue)).toEqual([1, 2, 3, 4]);
  });

  test("a batch of floats moves no integer array, and one of integers no float array", () => {
    const floats = packBatch(parseLines("m a=1,b=2 1\nm a=3,b=4 2", { precision: "ns", defaultTime: NOW })).packed;
    expect(floats.numbers.length).toBe(4);
    expect(floats.integers.length).toBe(0);
    const ints = packBatch(parseLines("m a=1i,b=2u 1\nm a=3i 2", { precision: "ns", defaultTime: NOW })).packed;
    expect(ints.numbers.length).toBe(0);
    expect(Array.from(ints.integers)).toEqual([1n, 2n, 3n]);
    const { copy } = roundTrip("m a=1i,b=2u 1\nm a=3i 2");
    expect(Array.from(copy.batch.fieldValue)).toEqual([1n, 2n, 3n]);
  });

  test("an empty body packs to an empty batch", () => {
    const { copy } = roundTrip("");
    expect(copy.batch.length).toBe(0);
    expect(copy.errors).toEqual([]);
  });

  test("any body parses to the same points and errors on either side", () => {
    const word = fc.string({ minLength: 1, maxLength: 6 });
    const value = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => String(x)),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((x) => `${x}i`),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((x) => `${x}u`),
      fc.boolean().map(String),
      fc.string({ maxLength: 8 }).map((x) => `"${escapeStringField(x)}"`),
      fc.constant("oops"),
    );
    const line = fc
      .tuple(word, fc.array(fc.tuple(word, word), { maxLength: 3 }), fc.array(fc.tuple(word, value), { minLength: 1, maxLength: 4 }), fc.nat())
      .map(
        ([m, tags, fields, t]) =>
          `${escapeTag(m)}${tags.map(([k, v]) => `,${escapeTag(k)}=${escapeTag(v)}`).join("")} ${fields.map(([k, v]) => `${escapeTag(k)}=${v}`).join(",")} ${t}`,
      );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
        const { original, copy } = roundTrip(lines.join("\n"));
        expect(toPoints(copy.batch)).toEqual(toPoints(original.batch));
        expect(copy.errors).toEqual(original.errors);
      }),
      { numRuns: 300 },
    );
  });
});
