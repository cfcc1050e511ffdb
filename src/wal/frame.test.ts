import { describe, expect, test } from "bun:test";
import { isTsdbError } from "../errors.ts";
import { decodeFrame, encodeFrame, type Frame } from "./frame.ts";

const frame: Frame = {
  origin: "iotdb-1",
  lsn: 1842,
  hlc: 1_795_000_000_000 * 1024 + 7,
  op: { kind: "write", db: "plant", rp: "autogen", precision: "ms", defaultTime: -5n, lines: "m,t=ü v=1 2\nm v=\"x\"" },
};

function corrupted(bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice();
  copy[at]! ^= 0x40;
  return copy;
}

describe("frames", () => {
  test("round-trip every field exactly", () => {
    expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
  });

  const bytes = encodeFrame(frame);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["a flipped bit in the lines", corrupted(bytes, bytes.length - 3), /checksum mismatch/],
    ["a flipped bit in the header", corrupted(bytes, 12), /checksum mismatch/],
    ["a forged checksum", corrupted(bytes, 5), /checksum mismatch/],
    ["a truncated frame", bytes.subarray(0, bytes.length - 4), /checksum mismatch/],
    ["a wrong magic", corrupted(bytes, 0), /bad magic/],
    ["a few bytes", bytes.subarray(0, 6), /too short/],
  ];
  for (const [name, input, reason] of cases) {
    test(`refuses ${name}`, () => {
      let err: unknown;
      try {
        decodeFrame(input);
      } catch (e) {
        err = e;
      }
      expect(isTsdbError(err, "corrupt_frame")).toBe(true);
      expect((err as Error).message).toMatch(reason);
    });
  }
});
