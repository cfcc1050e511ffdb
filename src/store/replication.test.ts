/**
 * Two real stores exchanging real frames (as the peer link does), to pin down the apply
 * rules: exactly once, no forgery, and deletes that stay deleted whatever the arrival order.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_ENGINE } from "../config.ts";
import { isTsdbError } from "../errors.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { WorkerPool } from "../ingest/workers.ts";
import { silentLogger } from "../log.ts";
import { decodeFrame, encodeFrame } from "../wal/frame.ts";
import { CHUNKS_NEWER_THAN_SQL, Store, type BackfillRecord } from "./store.ts";

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A store whose wall clock the test sets, so versions are ordered on purpose. */
function node(id: string, clock: { ms: number }): Store {
  const dir = mkdtempSync(join(tmpdir(), `tsdb-repl-${id}-`));
  dirs.push(dir);
  const s = Store.open({ dataDir: dir, nodeId: id, sync: "normal", engine: { ...DEFAULT_ENGINE, frameRetentionMs: 3600_000, frameRetentionBytes: 1e9 }, nowMs: () => clock.ms });
  stores.push(s);
  return s;
}

async function write(s: Store, body: string): Promise<void> {
  const { batch } = parseLines(body, { precision: "ns", defaultTime: 0n });
  await s.write({ db: "db", rp: "", precision: "ns", defaultTime: 0n, batch, autoCreate: true });
}

/** Ships every own frame of `from` after `after` to `to`. */
async function ship(from: Store, to: Store, after = 0): Promise<number> {
  const frames = from.ownFramesAfter(after, Number.MAX_SAFE_INTEGER).map((f) => f.bytes);
  if (to.cursorFor(from.nodeId) === null) await to.applyBackfill({ nodeId: from.nodeId, incarnation: from.incarnation }, [], { lsn: 0, hlc: 0 });
  return (await to.applyTwinFrames({ nodeId: from.nodeId, incarnation: from.incarnation }, frames)).applied;
}

function exported(s: Store): string {
  return s.database("db") ? [...s.exportLines("db")].join("") : "";
}

describe("applying a twin's frames", () => {
  test("applies each frame exactly once, however often it is offered", async () => {
    const clock = { ms: 1_000 };
    const [a, b] = [node("a", clock), node("b", clock)];
    await write(a, "m v=1 1");
    await write(a, "m v=2 2");
    expect(await ship(a, b)).toBe(2);
    expect(await ship(a, b)).toBe(0);
    expect(b.cursorFor("a")?.lsn).toBe(2);
    expect(exported(b)).toBe("m v=1 1\nm v=2 2\n");
  });

  test("frames parsed ahead on a worker apply exactly as frames the store parses itself", async () => {
    const clock = { ms: 1_000 };
    const [a, b, c] = [node("a", clock), node("b", clock), node("c", clock)];
    const lines = Array.from({ length: 5000 }, (_, i) => `m,host=h${i % 7} v=${i},n=${i}i,s="x${i % 3}",ok=${i % 2 === 0} ${i}`);
    await write(a, lines.join("\n"));
    await write(a, "m,host=h0 v=0.5 3");
    const frames = a.ownFramesAfter(0, Number.MAX_SAFE_INTEGER).map((f) => f.bytes);
    for (const to of [b, c]) await to.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, [], { lsn: 0, hlc: 0 });
    const pool = new WorkerPool(1, silentLogger);
    try {
      const parsed = await Promise.all(
        frames.map((bytes) => {
          const op = decodeFrame(bytes).op;
          return op.kind === "write" ? pool.parse(op.lines, op.precision, op.defaultTime) : undefined;
        }),
      );
      expect(pool.offloaded).toBe(1); // the big frame; the one-line frame was parsed in place
      expect((await c.applyTwinFrames({ nodeId: "a", incarnation: a.incarnation }, frames, parsed)).applied).toBe(2);
    } finally {
      pool.close();
    }
    expect((await b.applyTwinFrames({ nodeId: "a", incarnation: a.incarnation }, frames)).applied).toBe(2);
    expect(exported(c)).toBe(exported(b));
    expect(exported(c)).toBe(exported(a));
    expect(exported(c)).toContain('m,host=h0 n=0i,ok=true,s="x0",v=0 0\n');
  });

  test("refuses a frame that claims another origin, and applies nothing of its batch", async () => {
    const clock = { ms: 1_000 };
    const [a, b] = [node("a", clock), node("b", clock)];
    await write(a, "m v=1 1");
    const good = a.ownFramesAfter(0, 1e9)[0]!.bytes;
    const forged = encodeFrame({ origin: "c", lsn: 2, hlc: 5, op: { kind: "create_db", db: "x" } });
    await b.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, [], { lsn: 0, hlc: 0 });
    const err = await b.applyTwinFrames({ nodeId: "a", incarnation: a.incarnation }, [good, forged]).catch((e) => e);
    expect(isTsdbError(err, "corrupt_frame")).toBe(true);
    expect(String(err.message)).toContain("frames are only shipped by their origin");
    expect(b.cursorFor("a")?.lsn).toBe(0);
    expect(exported(b)).toBe("");
  });

  test("refuses a frame that skips ahead of the cursor", async () => {
    const clock = { ms: 1_000 };
    const [a, b] = [node("a", clock), node("b", clock)];
    await write(a, "m v=1 1");
    await write(a, "m v=2 2");
    const second = a.ownFramesAfter(1, 1e9)[0]!.bytes;
    await b.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, [], { lsn: 0, hlc: 0 });
    const err = await b.applyTwinFrames({ nodeId: "a", incarnation: a.incarnation }, [second]).catch((e) => e);
    expect(String(err.message)).toContain("expected a@1 next");
  });

  test("a delete is not undone by an older write that arrives after it", async () => {
    const ca = { ms: 1_000 };
    const cb = { ms: 5_000 };
    const [a, b] = [node("a", ca), node("b", cb)];
    await write(a, "m,h=x v=1 10\nm,h=y v=1 10"); // older: a's clock is behind
    await write(b, "m,h=x v=2 20");
    await b.deleteSeries("db", { measurements: ["m"], series: (s) => s.tag("h") === "x" }); // newer
    // The delete reaches a first, then a's older write reaches b.
    await ship(b, a);
    await ship(a, b);
    expect(exported(a)).toBe("m,h=y v=1 10\n");
    expect(exported(b)).toBe(exported(a));
  });

  test("a write newer than a delete survives it on both sides", async () => {
    const ca = { ms: 9_000 };
    const cb = { ms: 5_000 };
    const [a, b] = [node("a", ca), node("b", cb)];
    await write(b, "m,h=x v=1 10");
    await b.deleteSeries("db", { measurements: ["m"], series: () => true, start: 0n, end: 100n });
    await write(a, "m,h=x v=9 10"); // newer than the delete (a's clock is ahead)
    await ship(a, b);
    await ship(b, a);
    expect(exported(a)).toBe("m,h=x v=9 10\n");
    expect(exported(b)).toBe(exported(a));
  });

  test("a drop that arrives late keeps what the twin wrote after it, on both sides", async () => {
    const ca = { ms: 1_000 };
    const cb = { ms: 1_000 };
    const [a, b] = [node("a", ca), node("b", cb)];
    await write(a, "m,h=x v=1 10\nk v=1 10");
    await ship(a, b);
    ca.ms = 2_000;
    await a.dropDatabase("db"); // a's drop ...
    cb.ms = 3_000;
    await write(b, "m,h=y v=2 20"); // ... and b's later write, before b has seen the drop
    await ship(a, b);
    await ship(b, a);
    expect(exported(b)).toBe("m,h=y v=2 20\n");
    expect(exported(a)).toBe(exported(b));
  });

  test("DROP MEASUREMENT obeys the same rule", async () => {
    const ca = { ms: 1_000 };
    const cb = { ms: 1_000 };
    const [a, b] = [node("a", ca), node("b", cb)];
    await write(a, "m v=1 10\nk v=1 10");
    await ship(a, b);
    ca.ms = 2_000;
    await a.dropMeasurement("db", "m");
    cb.ms = 3_000;
    await write(b, "m v=2 20");
    await ship(a, b, 1);
    await ship(b, a);
    expect(exported(b)).toBe("k v=1 10\nm v=2 20\n");
    expect(exported(a)).toBe(exported(b));
  });

  test("a backfill after a gap carries the deletes made during it", async () => {
    const ca = { ms: 1_000 };
    const cb = { ms: 1_000 };
    const [a, b] = [node("a", ca), node("b", cb)];
    await write(a, "m,h=x v=1 10\nm,h=y v=1 10");
    await ship(a, b);
    const cursor = b.cursorFor("a")!;
    ca.ms = 2_000;
    await a.deleteSeries("db", { measurements: ["m"], series: (s) => s.tag("h") === "x" });
    // b missed that frame: it is refilled from a's storage instead.
    const twin = { nodeId: "a", incarnation: a.incarnation };
    for (const t of a.tombstonesSince(cursor.hlc, "a")) await b.applyTombstones([t]);
    await b.applyBackfill(twin, [...a.backfillRecords({ sinceHlc: cursor.hlc, origin: "a" })], { lsn: a.latestLsn(), hlc: a.currentHlc() });
    expect(exported(b)).toBe("m,h=y v=1 10\n");
    expect(exported(b)).toBe(exported(a));
  });

  test("the same point written on both sides converges to the newer version on both", async () => {
    const ca = { ms: 1_000 };
    const cb = { ms: 2_000 };
    const [a, b] = [node("a", ca), node("b", cb)];
    await write(a, "m v=1 10");
    await write(b, "m v=2 10");
    await ship(a, b);
    await ship(b, a);
    expect(exported(a)).toBe("m v=2 10\n");
    expect(exported(b)).toBe("m v=2 10\n");
    expect(a.conflictStats().count + b.conflictStats().count).toBe(2);
  });

  test("a backfill carries versions, so stale copies lose to newer local writes", async () => {
    const ca = { ms: 1_000 };
    const cb = { ms: 2_000 };
    const [a, b] = [node("a", ca), node("b", cb)];
    await write(a, "m v=1 10\nm v=1 20");
    await write(b, "m v=2 10");
    const records = [...a.backfillRecords({ sinceHlc: 0, origin: null })];
    await b.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, records, { lsn: a.latestLsn(), hlc: a.currentHlc() });
    expect(exported(b)).toBe("m v=2 10\nm v=1 20\n");
    expect(b.cursorFor("a")?.lsn).toBe(1);
  });

  test("backfilled chunks are stored as they came and read back exactly, also by time range", async () => {
    const [a, b] = [node("a", { ms: 1_000 }), node("b", { ms: 2_000 })];
    const lines = Array.from({ length: 300 }, (_, i) => `m,h=${i % 3} v=${i / 4},n=${i}i,s="x${i % 5}",ok=${i % 2 === 0} ${1000 + i}`);
    await write(a, lines.join("\n"));
    a.flushAll();
    const records = [...a.backfillRecords({ sinceHlc: 0, origin: null })];
    expect(records.length).toBe(12);
    await b.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, records, { lsn: a.latestLsn(), hlc: a.currentHlc() });
    expect(exported(b)).toBe(exported(a));
    const range = (s: Store) => [...s.exportLines("db", { start: 1100n, end: 1149n })].join("");
    expect(range(b)).toBe(range(a));
    expect(range(b).split("\n").filter(Boolean).length).toBe(50);
  });

  test("a whole-store backfill loses nothing that is flushed or compacted while it runs, and sends only the origin asked for", async () => {
    const [a, b] = [node("a", { ms: 1_000 }), node("b", { ms: 2_000 })];
    await write(b, "m,h=b v=7 1000");
    await ship(b, a);
    const lines = Array.from({ length: 200 }, (_, i) => `m,h=${i % 2} v=${i} ${1000 + i}`);
    await write(a, lines.join("\n"));
    a.flushAll();
    await write(a, "m,h=0 v=-1 5000\nm,h=1 v=-2 5000");
    // Where the frame stream resumes after the backfill (its hello).
    const cursor = { lsn: a.latestLsn(), hlc: a.currentHlc() };
    const gen = a.backfillRecords({ sinceHlc: 0, origin: "a" });
    // Two hot buffers, then the first stored chunk.
    const records = [gen.next().value!, gen.next().value!, gen.next().value!];
    // Meanwhile late values land in both series and compaction rewrites every chunk listed.
    await write(a, "m,h=0 v=-3 1001\nm,h=1 v=-4 1002");
    a.flushAll();
    a.compactAll();
    for (const r of gen) records.push(r);
    expect(records.every((r) => r.seriesKey !== "m,h=b")).toBe(true);
    await b.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, records, cursor);
    // Then the frames after the backfill's starting point, as the link streams them.
    await ship(a, b, cursor.lsn);
    expect(exported(b)).toBe(exported(a));
    expect(exported(b)).toContain("m,h=0 v=-3 1001\n");
    expect(exported(b)).toContain("m,h=1 v=-2 5000\n");
  });

  test("a whole-store backfill finds newer chunks through the version index, without reading every chunk", async () => {
    const clock = { ms: 1_000 };
    const a = node("a", clock);
    await write(a, Array.from({ length: 50 }, (_, i) => `m,h=${i} v=${i} 1`).join("\n"));
    a.flushAll();
    const since = a.currentHlc();
    clock.ms = 2_000;
    await write(a, "m,h=7 v=70 2\nm,h=8 v=80 2");
    a.flushAll();
    const sqlite = (a as unknown as { sqlite: { prepare(sql: string): { raw(): { all(p: unknown[]): unknown[][] } } } }).sqlite;
    const plan = sqlite.prepare(`EXPLAIN QUERY PLAN ${CHUNKS_NEWER_THAN_SQL}`).raw().all([since]).map((row) => String(row.at(-1)));
    expect(plan.filter((step) => step.includes("chunks"))).toEqual([expect.stringContaining("USING INDEX chunks_by_hlc"), expect.stringContaining("USING INDEX chunks_by_hlc")]);
    const records = [...a.backfillRecords({ sinceHlc: since, origin: "a" })];
    expect(records.map((r) => r.seriesKey).sort()).toEqual(["m,h=7", "m,h=8"]);
  });

  test("a backfill of chunks holding both nodes' values sends only the values of the origin asked for, of every type", async () => {
    const [a, b, c] = [node("a", { ms: 1_000 }), node("b", { ms: 2_000 }), node("c", { ms: 3_000 })];
    const fields = (k: number) => `i=${k}i,u=${k}u,f=${k}.5,b=${k % 2 === 0},s="s${k}"`;
    await write(b, `m i=-7i,u=7u,f=-6.5,b=false,s="s-7" 1`);
    await ship(b, a);
    await write(a, [2, 3, 4].map((t) => `m ${fields(t * 1000 + t)} ${t}`).join("\n"));
    // One chunk a field, each holding b's value at time 1 and a's at 2-4.
    a.flushAll();
    const records = [...a.backfillRecords({ sinceHlc: 0, origin: "a" })];
    expect(records.map((r) => r.field).sort()).toEqual(["b", "f", "i", "s", "u"]);
    expect(records.every((r) => r.nodes.length === 1 && r.nodes[0] === "a" && r.chunk.count === 3)).toBe(true);
    await c.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, records, { lsn: a.latestLsn(), hlc: a.currentHlc() });
    expect(exported(a)).toContain(`m b=false,f=-6.5,i=-7i,s="s-7",u=7u 1\n`);
    expect(exported(c)).toBe([2, 3, 4].map((t) => `m b=${t % 2 === 0},f=${t * 1000 + t}.5,i=${t * 1000 + t}i,s="s${t * 1000 + t}",u=${t * 1000 + t}u ${t}\n`).join(""));
  });

  test("a backfilled chunk whose columns disagree with its record is refused, and nothing of its batch is applied", async () => {
    const [a, b] = [node("a", { ms: 1_000 }), node("b", { ms: 2_000 })];
    await write(a, "m v=1.5 1\nm v=2.5 2\nm,h=x v=3.5 3");
    a.flushAll();
    const records = [...a.backfillRecords({ sinceHlc: 0, origin: "a" })];
    expect(records.length).toBe(2);
    const [good, other] = records as [BackfillRecord, BackfillRecord];
    const twin = { nodeId: "a", incarnation: a.incarnation };
    const bent: Array<[BackfillRecord, RegExp]> = [
      [{ ...good, chunk: { ...good.chunk, count: good.chunk.count + 1 } }, /time column holds 2 values, not 3/],
      [{ ...good, type: "integer" }, /value column holds float values, not integer/],
      [{ ...good, chunk: { ...good.chunk, hlcs: good.chunk.vals } }, /unknown version column format/],
      [{ ...good, chunk: { ...good.chunk, vals: other.chunk.vals.subarray(0, 1) } }, /value column/],
      [{ ...good, chunk: { ...good.chunk, minTime: good.chunk.maxTime + 1n } }, /after last time/],
      [{ ...good, chunk: { ...good.chunk, originId: 1 } }, /names origin 1 of 1/],
    ];
    for (const [record, why] of bent) {
      await expect(b.applyBackfill(twin, [other, record], { lsn: 5, hlc: 5 })).rejects.toThrow(why);
      expect(exported(b)).toBe("");
      expect(b.cursorFor("a")).toBeNull();
    }
    await b.applyBackfill(twin, records, { lsn: a.latestLsn(), hlc: a.currentHlc() });
    expect(exported(b)).toBe(exported(a));
  });

  test("compaction waits while backfill batches keep coming, as it does for writes", async () => {
    const clock = { ms: 1_000 };
    const [a, b] = [node("a", clock), node("b", clock)];
    await write(a, Array.from({ length: 50 }, (_, i) => `m,h=${i % 5} v=${i} ${1000 + i}`).join("\n"));
    const records = [...a.backfillRecords({ sinceHlc: 0, origin: "a" })];
    const twin = { nodeId: "a", incarnation: a.incarnation };
    // Backfilled chunks are marked for compaction; the batch just committed means "not idle".
    await b.applyBackfill(twin, records.slice(0, 2));
    await b.applyBackfill(twin, records.slice(2));
    await Bun.sleep(50);
    expect(b.stats().compactionPending).toBeGreaterThan(0);
    // Once nothing has been committed for a while, compaction takes the idle writer.
    clock.ms += 2_000;
    await b.applyBackfill(twin, []);
    clock.ms += 2_000;
    for (let i = 0; i < 100 && b.stats().compactionPending > 0; i++) await Bun.sleep(20);
    expect(b.stats().compactionPending).toBe(0);
  });

  describe("a field written with two types on the two nodes at once", () => {
    // a gives m.f the type integer first (clock 1,000 ms); b, later (2,000 ms), float.
    async function clash(): Promise<{ a: Store; b: Store }> {
      const [a, b] = [node("a", { ms: 1_000 }), node("b", { ms: 2_000 })];
      await write(a, "m f=1i 1\nm f=2i 2");
      await write(b, "m f=1.5 1\nm f=3.5 3");
      return { a, b };
    }

    for (const order of ["a to b first", "b to a first"]) {
      test(`settles on the type written first, on both (${order})`, async () => {
        const { a, b } = await clash();
        if (order === "a to b first") {
          await ship(a, b);
          await ship(b, a);
        } else {
          await ship(b, a);
          await ship(a, b);
        }
        expect(exported(a)).toBe("m f=1i 1\nm f=2i 2\n");
        expect(exported(b)).toBe(exported(a));
        // b gave up its type; a refused b's float points.
        expect(b.settledTypeConflictCount()).toBe(1);
        expect(a.settledTypeConflictCount()).toBe(0);
        expect(a.typeConflictCount()).toBe(2);
        // b now refuses local floats for the field, as any store refuses a clashing type.
        const late = await b.write({ db: "db", rp: "", precision: "ns", defaultTime: 0n, batch: parseLines("m f=9.5 9", { precision: "ns", defaultTime: 0n }).batch, autoCreate: true });
        expect(late.accepted).toBe(0);
        expect(late.conflicts[0]?.existing).toBe("integer");
      });
    }

    test("also when the losing values were already flushed to chunks, and the type is kept after a restart", async () => {
      const { a, b } = await clash();
      b.flushAll();
      await ship(a, b);
      await ship(b, a);
      expect(exported(b)).toBe("m f=1i 1\nm f=2i 2\n");
      expect(exported(a)).toBe(exported(b));
      const dir = dirs[1]!;
      await b.close();
      const again = Store.open({ dataDir: dir, nodeId: "b", sync: "normal", engine: DEFAULT_ENGINE });
      stores.push(again);
      expect(exported(again)).toBe("m f=1i 1\nm f=2i 2\n");
      expect(again.database("db")?.measurement("m").fields.get("f")?.created).toEqual({ hlc: 1_000 * 1024, by: "a" });
    });

    test("also when the older type arrives among many backfill records, all of which are stored", async () => {
      const [a, b] = [node("a", { ms: 1_000 }), node("b", { ms: 2_000 })];
      await write(a, Array.from({ length: 41 }, (_, i) => `m,h=${i} g=${i}.5,f=${i}i 1`).join("\n"));
      await write(b, "m,h=0 f=1.5 1");
      b.flushAll();
      const records = [...a.backfillRecords({ sinceHlc: 0, origin: null })];
      // Rows go to the table in groups (see ChunkRows): several whole ones and a part.
      expect(records.length).toBe(82);
      await b.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, records, { lsn: a.latestLsn(), hlc: a.currentHlc() });
      expect(exported(b)).toBe(exported(a));
      expect(exported(b).split("\n").filter(Boolean).length).toBe(41);
      expect(b.settledTypeConflictCount()).toBe(1);
      expect(b.stats().chunks).toBe(82);
    });

    test("also when the older type arrives by backfill", async () => {
      const { a, b } = await clash();
      const records = [...a.backfillRecords({ sinceHlc: 0, origin: null })];
      await b.applyBackfill({ nodeId: "a", incarnation: a.incarnation }, records, { lsn: a.latestLsn(), hlc: a.currentHlc() });
      expect(exported(b)).toBe("m f=1i 1\nm f=2i 2\n");
      expect(b.settledTypeConflictCount()).toBe(1);
    });
  });
});

describe("long reads for the twin share the main thread", () => {
  test("a digest reads every line, giving the event loop turns while it does (the node keeps taking writes)", async () => {
    const a = node("a", { ms: 1_000 });
    for (let k = 0; k < 4; k++) {
      const lines = Array.from({ length: 10_000 }, (_, i) => `m,host=h${i % 4000} v=${i}.5,w=${k}i ${k * 10_000 + i}`);
      await write(a, lines.join("\n"));
    }
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    const digest = await a.digest("db", 3_600_000_000_000n);
    clearInterval(timer);
    expect(turns).toBeGreaterThan(0);
    expect([...digest.values()].reduce((n, d) => n + d.count, 0)).toBe(40_000);
  });

  test("a repair range with nothing in it, over many series, still hands control back now and then", async () => {
    const a = node("a", { ms: 1_000 });
    await write(a, Array.from({ length: 2000 }, (_, i) => `m,host=h${i} v=${i}.5 10`).join("\n"));
    const scanned = [...a.backfillScan({ sinceHlc: 0, origin: null, db: "db", start: 1000n, end: 2000n })];
    expect(scanned.filter((r) => r !== null)).toEqual([]);
    // One series and field read, one pass: a turn every 256 reads.
    expect(scanned.length).toBe(Math.floor(2000 / 256));
    // The export of that range is empty too, with a turn offered as often.
    expect([...a.exportLines("db", { start: 1000n, end: 2000n })]).toEqual(Array(Math.floor(2000 / 256)).fill(""));
  });
});
