import { describe, expect, test } from "bun:test";
import { encodeChunk } from "../store/chunk.ts";
import { compressFrame, encodeMessage, inflateFrame, MessageReader, type Message } from "./wire.ts";

const record = {
  db: "plant",
  measurement: "m",
  seriesKey: "m,t=1",
  field: "v",
  type: "float" as const,
  nodes: ["a", "b"],
  chunk: encodeChunk({ times: BigInt64Array.of(1n, 2n), values: Float64Array.of(1.5, 2.5), hlcs: BigInt64Array.of(7n, 9n), origins: Uint16Array.of(0, 1) }, "float"),
};

const messages: Message[] = [
  { type: "hello", hello: { node_id: "a", incarnation: "i", latest_lsn: 5, oldest_lsn: null, applied_of_you: 3, hlc: 1, time_ms: 2 } },
  { type: "frame", bytes: Uint8Array.of(1, 2, 3) },
  { type: "heartbeat", heartbeat: { latest_lsn: 5, applied_of_you: null, hlc: 1, time_ms: 2 } },
  { type: "gap", gap: { from: 1, to: 4 } },
  { type: "record", record },
  { type: "done", done: { lsn: 9, hlc: 10 } },
  { type: "error", error: "nope" },
  { type: "frame_z", bytes: Uint8Array.of(9, 8, 7) },
];

describe("peer messages", () => {
  test("round-trip every type, whatever the chunk boundaries", () => {
    const bytes = Uint8Array.from(messages.flatMap((m) => [...encodeMessage(m)]));
    for (const size of [1, 3, 7, 64, bytes.length]) {
      const reader = new MessageReader();
      const got: Message[] = [];
      for (let at = 0; at < bytes.length; at += size) got.push(...reader.push(bytes.subarray(at, at + size)));
      expect(got).toEqual(messages);
      expect(reader.pending()).toBe(false);
    }
  });

  test("a frame split over many pieces comes out whole, as a copy of its own", () => {
    const frame = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 255);
    const bytes = encodeMessage({ type: "frame", bytes: frame });
    const reader = new MessageReader();
    const got: Message[] = [];
    const pieces: Uint8Array[] = [];
    // Pieces of uneven sizes, the header itself split.
    for (let at = 0, k = 0; at < bytes.length; k++) {
      const piece = bytes.slice(at, at + (k === 0 ? 2 : 1000 + ((k * 7919) % 60_000)));
      pieces.push(piece);
      got.push(...reader.push(piece));
      at += piece.length;
    }
    expect(pieces.length).toBeGreaterThan(10);
    // The frame does not share memory with the pieces it came in.
    for (const p of pieces) p.fill(0);
    expect(got).toEqual([{ type: "frame", bytes: frame }]);
    expect(reader.pending()).toBe(false);
  });

  test("refuses a record with any byte changed, the checksum's own included", () => {
    const bytes = encodeMessage({ type: "record", record });
    let refused = 0;
    for (let at = 5; at < bytes.length; at++) {
      const bent = bytes.slice();
      bent[at]! ^= 1 << at % 8;
      expect(() => new MessageReader().push(bent)).toThrow(/record checksum mismatch/);
      refused++;
    }
    expect(refused).toBe(bytes.length - 5);
    expect(new MessageReader().push(bytes)).toEqual([{ type: "record", record }]);
  });

  const broken: Array<[string, Uint8Array, RegExp]> = [
    ["an unknown type", Uint8Array.of(99, 0, 0, 0, 0), /unknown type 99/],
    ["a message over the size limit", Uint8Array.of(2, 255, 255, 255, 255), /over the limit/],
    ["a hello that is not JSON", Uint8Array.of(1, 1, 0, 0, 0, 123), /hello is not JSON/],
    ["a truncated record", Uint8Array.of(5, 2, 0, 0, 0, 9, 9), /record truncated/],
  ];
  for (const [name, bytes, reason] of broken) {
    test(`refuses ${name}`, () => {
      expect(() => new MessageReader().push(bytes)).toThrow(reason);
    });
  }
});

describe("compressed frames", () => {
  test("inflate back to the same bytes", async () => {
    const frame = new TextEncoder().encode("cpu,host=a v=1 1\n".repeat(1000));
    const z = compressFrame(frame);
    expect(z.length * 10).toBeLessThan(frame.length);
    expect(inflateFrame(z)).toEqual(frame);
  });

  test("refuse bytes that are not deflate data", async () => {
    expect(() => inflateFrame(Uint8Array.of(255, 255, 255, 255))).toThrow(/does not inflate/);
  });
});
