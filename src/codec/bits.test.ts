import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BitReader, BitWriter, joinSafe, splitSafe } from "./bits.ts";
import { isTsdbError } from "../errors.ts";

describe("BitWriter/BitReader", () => {
  test("round-trips any sequence of fields of 0 to 32 bits", () => {
    const field = fc.integer({ min: 0, max: 32 }).chain((n) =>
      fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n === 32 ? 0xffffffff : 2 ** n - 1 })),
    );
    fc.assert(
      fc.property(fc.array(field, { maxLength: 200 }), (fields) => {
        const w = new BitWriter(1);
        for (const [n, v] of fields) w.write(v, n);
        const buf = w.finish();
        const totalBits = fields.reduce((s, [n]) => s + n, 0);
        expect(buf.length).toBe(Math.ceil(totalBits / 8));
        const r = new BitReader(buf, "test column");
        for (const [n, v] of fields) expect(r.read(n)).toBe(v);
        r.expectEnd();
      }),
      { numRuns: 500 },
    );
  });

  test("round-trips varints and byte blocks between bit fields", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), fc.maxSafeNat(), fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: 31 }), (lead, v, bytes, tail) => {
        const w = new BitWriter(4);
        w.write(1, lead);
        w.writeUvarint(v);
        w.writeBytes(bytes);
        w.write(tail, 5);
        const r = new BitReader(w.finish(), "test column");
        expect(r.read(lead)).toBe(lead === 0 ? 0 : 1);
        expect(r.readUvarint()).toBe(v);
        expect(Array.from(r.readBytes(bytes.length))).toEqual(Array.from(bytes));
        expect(r.read(5)).toBe(tail);
        r.expectEnd();
      }),
      { numRuns: 300 },
    );
  });

  const failures: Array<[string, (r: BitReader) => void]> = [
    ["reading past the end", (r) => r.read(17)],
    ["reading bits past the end one at a time", (r) => { for (let i = 0; i < 17; i++) r.readBit(); }],
    ["reading bytes past the end", (r) => r.readBytes(3)],
    ["a varint cut short", (r) => { r.read(8); r.readUvarint(); }],
    ["stopping with a whole byte unread", (r) => r.expectEnd()],
    ["non-zero padding", (r) => { r.read(9); r.expectEnd(); }],
  ];
  for (const [name, act] of failures) {
    test(`throws a TsdbError naming the column on ${name}`, () => {
      const r = new BitReader(Uint8Array.from([0xff, 0xff]), "test column");
      let caught: unknown;
      try {
        act(r);
      } catch (e) {
        caught = e;
      }
      expect(isTsdbError(caught)).toBe(true);
      expect((caught as Error).message).toContain("test column");
    });
  }

  test("splits and joins every safe integer exactly", () => {
    fc.assert(
      fc.property(fc.oneof(fc.maxSafeInteger(), fc.integer()), (x) => {
        const words = new Uint32Array(2);
        splitSafe(x, words, 0);
        expect(joinSafe(words, 0)).toBe(x);
        expect(new BigInt64Array(words.buffer)[0]).toBe(BigInt(x));
      }),
    );
  });
});
