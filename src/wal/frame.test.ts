import { describe, expect, test } from "bun:test";
import { crc32 } from "node:zlib";
import { isTsdbError } from "../errors.ts";
import { type CompressedLines, compressLines, decodeFrame, encodeFrame, type Frame, holdsCompressedLines, writeText, type WriteOp } from "./frame.ts";

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

  test("with rawLines, hands a write's lines back as the bytes they were, still checksummed", () => {
    const bytes = encodeFrame(frame);
    const raw = decodeFrame(bytes, { rawLines: true });
    expect(raw.op.kind).toBe("write");
    const lines = (raw.op as { lines: unknown }).lines;
    expect(lines).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(lines as Uint8Array)).toBe('m,t=ü v=1 2\nm v="x"');
    expect({ ...raw, op: { ...raw.op, lines: "" } }).toEqual({ ...frame, op: { ...frame.op, lines: "" } });
    expect(() => decodeFrame(corrupted(bytes, bytes.length - 3), { rawLines: true })).toThrow(/checksum mismatch/);
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

describe("schema frames", () => {
  const ops: Frame["op"][] = [
    { kind: "create_db", db: "plant" },
    { kind: "drop_db", db: "plant" },
    { kind: "drop_measurement", db: "plant", measurement: "m,x" },
    { kind: "delete", db: "plant", seriesKeys: ["m,a=1", "m\\ x"], start: -(2n ** 63n), end: 2n ** 63n - 1n },
  ];
  for (const op of ops) {
    test(`round-trip a ${op.kind} frame`, () => {
      const f: Frame = { origin: "iotdb-2", lsn: 7, hlc: 99, op };
      expect(decodeFrame(encodeFrame(f))).toEqual(f);
    });
  }

  /** Replaces the JSON of a schema frame and re-seals it with a valid checksum (a forged frame). */
  function forge(json: string): Uint8Array {
    const head = encodeFrame({ origin: "a", lsn: 1, hlc: 1, op: { kind: "drop_db", db: "x" } });
    const jsonStart = head.length - new TextEncoder().encode('{"kind":"drop_db","db":"x"}').length;
    const body = new TextEncoder().encode(json);
    const out = new Uint8Array(jsonStart + body.length);
    out.set(head.subarray(0, jsonStart));
    out.set(body, jsonStart);
    const view = new DataView(out.buffer);
    view.setUint32(jsonStart - 4, body.length, true);
    view.setUint32(4, crc32(out.subarray(8)), true);
    return out;
  }

  const forged: Array<[string, string, RegExp]> = [
    ["a kind that disagrees with the frame", '{"kind":"create_db","db":"x"}', /does not match frame kind/],
    ["a missing database", '{"kind":"drop_db"}', /lacks db/],
    ["text that is not JSON", "{nope", /not JSON/],
  ];
  for (const [name, json, reason] of forged) {
    test(`refuses a correctly checksummed schema frame with ${name}`, () => {
      expect(() => decodeFrame(forge('{"kind":"drop_db","db":"x"}'))).not.toThrow();
      expect(() => decodeFrame(forge(json))).toThrow(reason);
    });
  }
});

test("a create frame keeps its retention duration", () => {
  const f: Frame = { origin: "a", lsn: 3, hlc: 4, op: { kind: "create_db", db: "x", durationNs: 3_600_000_000_000n } };
  expect(decodeFrame(encodeFrame(f))).toEqual(f);
});

describe("frames with compressed lines", () => {
  const text = Array.from({ length: 2000 }, (_, i) => `m,host=h${i % 40} v=${i * 0.25},c=${i}i ${i}`).join("\n") + '\nm s="ü"';
  const bytes = new TextEncoder().encode(text);
  const op = { kind: "write", db: "plant", rp: "", precision: "ns", defaultTime: 9n } as const;
  const compressed: Frame = { origin: "iotdb-1", lsn: 12, hlc: 34, op: { ...op, lines: compressLines(bytes) } };

  test("round-trip, inflate to the very text, and are marked as compressed", () => {
    const encoded = encodeFrame(compressed);
    const plain = encodeFrame({ ...compressed, op: { ...op, lines: bytes } });
    expect(encoded.length).toBeLessThan(plain.length / 3);
    expect(holdsCompressedLines(encoded)).toBe(true);
    expect(holdsCompressedLines(plain)).toBe(false);
    for (const raw of [false, true]) {
      const back = decodeFrame(encoded, { rawLines: raw });
      expect(back).toEqual(compressed);
      expect(writeText(back.op as WriteOp)).toBe(text);
    }
  });

  /** The frame with other compressed lines, with a valid checksum (a forged frame). */
  function forge(lines: CompressedLines): Uint8Array {
    return encodeFrame({ ...compressed, op: { ...op, lines } });
  }

  const good = compressLines(bytes);
  const refused: Array<[string, CompressedLines, RegExp]> = [
    ["a stated length that is too short", { ...good, textBytes: good.textBytes - 1 }, /do not inflate|inflate to/],
    ["a stated length that is too long", { ...good, textBytes: good.textBytes + 1 }, /inflate to \d+ bytes, not the/],
    ["zstd data cut short", { ...good, zstd: good.zstd.subarray(0, good.zstd.length - 9) }, /inflate to|do not inflate/],
    ["bytes that are not zstd", { zstd: new Uint8Array(40).fill(7), textBytes: 100 }, /do not inflate/],
  ];
  for (const [name, lines, reason] of refused) {
    test(`refuse ${name}, as a corrupt frame`, () => {
      const frame = decodeFrame(forge(lines));
      let err: unknown;
      try {
        writeText(frame.op as WriteOp);
      } catch (e) {
        err = e;
      }
      expect(isTsdbError(err, "corrupt_frame")).toBe(true);
      expect((err as Error).message).toMatch(reason);
    });
  }

  test("refuse a flipped bit in the compressed bytes by checksum", () => {
    const encoded = encodeFrame(compressed);
    expect(() => decodeFrame(corrupted(encoded, encoded.length - 5))).toThrow(/checksum mismatch/);
  });
});
