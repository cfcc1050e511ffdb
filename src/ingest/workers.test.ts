import { afterEach, describe, expect, test } from "bun:test";
import { isTsdbError } from "../errors.ts";
import { toPoints } from "../lineprotocol/parse.ts";
import { silentLogger } from "../log.ts";
import { compressFrame, inflateFrame } from "../peer/wire.ts";
import { type CompressedLines, compressLines, inflateLines } from "../wal/frame.ts";
import { OFFLOAD_BYTES, WorkerPool, parseBody } from "./workers.ts";

const NOW = 1_700_000_000_000_000_000n;
const encoder = new TextEncoder();

/** A body past the offload size: `lines` good lines with a bad one and a string field among them. */
function bigBody(lines: number, tag: string): Uint8Array {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`cpu,host=${tag}${i % 50} usage=${i / 4},n=${i}i ${i}`);
  out.splice(7, 0, "this line is bad");
  out.push('log,host=x msg="héllo" 1');
  const body = encoder.encode(out.join("\n"));
  expect(body.length).toBeGreaterThan(OFFLOAD_BYTES);
  return body;
}

const pools: WorkerPool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

describe("worker pool", () => {
  test("a worker parses large bodies exactly as the main thread does, each answer to its own request", async () => {
    const pool = new WorkerPool(2, silentLogger);
    pools.push(pool);
    const bodies = Array.from({ length: 6 }, (_, i) => bigBody(3000 + i * 100, `h${i}-`));
    const results = await Promise.all(bodies.map((b) => pool.parse(b, "ns", NOW)));
    for (let i = 0; i < bodies.length; i++) {
      const inline = parseBody(bodies[i]!, "ns", NOW);
      expect(results[i]!.batch.length).toBe(3000 + i * 100 + 1);
      expect(toPoints(results[i]!.batch)).toEqual(toPoints(inline.batch));
      expect(results[i]!.errors).toEqual(inline.errors);
    }
    expect(pool.offloaded).toBe(bodies.length);
  });

  test("a body that is not UTF-8 is refused with the same message on a worker", async () => {
    const pool = new WorkerPool(1, silentLogger);
    pools.push(pool);
    const body = bigBody(4000, "u");
    body[100] = 0xff;
    const inline = (() => {
      try {
        parseBody(body, "ns", NOW);
      } catch (e) {
        return e;
      }
    })();
    const err = await pool.parse(body, "ns", NOW).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTsdbError(err, "bad_request")).toBe(true);
    expect((err as Error).message).toBe((inline as Error).message);
    expect((err as Error).message).toContain("not valid UTF-8 at byte 100");
    expect(pool.offloaded).toBe(1);
  });

  test("after close, bodies are parsed in place", async () => {
    const pool = new WorkerPool(1, silentLogger);
    pool.close();
    const r = await pool.parse(bigBody(4000, "c"), "ms", NOW);
    expect(r.batch.length).toBe(4001);
    expect(r.batch.time[1]).toBe(1_000_000n);
    expect(pool.offloaded).toBe(0);
  });

  test("deflates frames on a worker, byte for byte as in place", async () => {
    const pool = new WorkerPool(1, silentLogger);
    pools.push(pool);
    const frame = bigBody(5000, "z");
    const z = await pool.deflate(frame);
    expect(z).toEqual(compressFrame(frame));
    expect(inflateFrame(z)).toEqual(frame);
    expect(pool.offloaded).toBe(1);
  });

  test("a request body moves to a proven worker and comes back compressed, or as it was with a bad line", async () => {
    const pool = new WorkerPool(1, silentLogger);
    pools.push(pool);
    const lines = Array.from({ length: 4000 }, (_, i) => `cpu,host=h${i % 50} usage=${i / 4},n=${i}i ${i}`);
    const good = () => encoder.encode(lines.join("\n"));
    // Until the worker has answered once, the body is copied (a worker that never loads
    // hands the job back to be done here, with the bytes).
    const first = good();
    const r0 = await pool.parseRequest(first, "ns", NOW);
    expect(first.byteLength).toBe(good().byteLength);
    expect(inflateLines(r0.lines as CompressedLines)).toEqual(good());
    // Then it moves: the caller's buffer is detached, and the result has the lines.
    const body = good();
    const r = await pool.parseRequest(body, "ns", NOW);
    expect(body.byteLength).toBe(0);
    expect(r.errors).toEqual([]);
    expect(toPoints(r.batch)).toEqual(toPoints(parseBody(good(), "ns", NOW).batch));
    const compressed = r.lines as CompressedLines;
    expect(compressed.zstd.length).toBeLessThan(good().length / 3);
    expect(inflateLines(compressed)).toEqual(good());
    // A line's own text is still there when the store asks for it (a field type clash).
    expect(r.batch.raw[5]).toBe(lines[5]);
    // A bad line: not compressed, the body comes back as it was.
    const bad = bigBody(4000, "b");
    const copy = bad.slice();
    const rb = await pool.parseRequest(bad, "ns", NOW);
    expect(bad.byteLength).toBe(0);
    expect(rb.lines).toEqual(copy);
    expect(rb.errors.length).toBe(1);
    expect(rb.batch.raw[0]).toBe("cpu,host=b0 usage=0,n=0i 0");
    // A small body is parsed in place and kept as it is.
    const small = encoder.encode(lines[0]!);
    expect((await pool.parseRequest(small, "ns", NOW)).lines).toBe(small);
    expect(pool.offloaded).toBe(3);
  });

  test("parses compressed lines (a twin's frame) as it parses their text, on a worker and in place", async () => {
    const pool = new WorkerPool(1, silentLogger);
    pools.push(pool);
    const body = bigBody(4000, "q");
    const lines = compressLines(body);
    const inline = parseBody(body, "ns", NOW);
    for (const r of [await pool.parse(lines, "ns", NOW), parseBody(lines, "ns", NOW)]) {
      expect(toPoints(r.batch)).toEqual(toPoints(inline.batch));
      expect(r.errors).toEqual(inline.errors);
    }
    expect(pool.offloaded).toBe(1);
    const err = await pool.parse({ ...lines, textBytes: lines.textBytes + 1 }, "ns", NOW).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTsdbError(err, "corrupt_frame")).toBe(true);
  });
});
