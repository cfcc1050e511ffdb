import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_ENGINE } from "../config.ts";
import Database from "libsql";
import { parseLines } from "../lineprotocol/parse.ts";
import { MIN_GAP } from "./pagefit.ts";
import { Store } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(dir?: string, chunkPoints = 10, nodeId = "n"): { store: Store; dir: string } {
  const d = dir ?? mkdtempSync(join(tmpdir(), "tsdb-compact-"));
  if (dir === undefined) dirs.push(d);
  return { store: Store.open({ dataDir: d, nodeId, sync: "normal", engine: { ...DEFAULT_ENGINE, chunkPoints } }), dir: d };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function write(store: Store, body: string): Promise<void> {
  const { batch, errors } = parseLines(body, { precision: "ns", defaultTime: 0n });
  expect(errors).toEqual([]);
  await store.write({ db: "db", rp: "", precision: "ns", defaultTime: 0n, batch, autoCreate: true });
}

const all = (s: Store) => [...s.exportLines("db")].join("");

describe("compaction", () => {
  test("merges small chunks into full ones and changes no value", async () => {
    const { store } = open();
    for (let i = 0; i < 95; i += 3) {
      await write(store, [i, i + 1, i + 2].map((t) => `m v=${t}i ${t}`).join("\n"));
      store.flushAll(); // three values a chunk: far below the chunk size of ten
    }
    const before = all(store);
    // It runs by itself whenever the writer is idle.
    await until(() => store.stats().chunks === 10, "ten full chunks");
    expect(store.stats().chunksCompacted).toBeGreaterThan(0);
    expect(all(store)).toBe(before);
    await store.close();
  });

  test("waits while a backfill reads chunks, and runs once it stops", async () => {
    const { store } = open();
    for (let i = 0; i < 95; i += 3) {
      await write(store, [i, i + 1, i + 2].map((t) => `m,s=a v=${t}i ${t}\nm,s=b v=${t}i ${t}`).join("\n"));
      store.flushAll();
    }
    const before = all(store);
    // A twin catching up reads a record every 200 ms for 2.4 s: more than the idle time
    // compaction waits for after the last write, but never that long after the last record.
    const records = store.backfillRecords({ sinceHlc: 0, origin: null });
    let read = 0;
    for (let i = 0; i < 12; i++) {
      if (!records.next().done) read++;
      await new Promise((r) => setTimeout(r, 200));
      expect(store.stats().chunksCompacted).toBe(0);
    }
    expect(read).toBe(12);
    records.return(undefined);
    await until(() => store.stats().chunks === 20, "twenty full chunks");
    expect(store.stats().chunksCompacted).toBeGreaterThan(0);
    expect(all(store)).toBe(before);
    await store.close();
  });

  test("merges overlapping chunks keeping the newest write of each time", async () => {
    const { store, dir } = open();
    await write(store, "m v=1 1\nm v=1 2\nm v=1 3\nm v=1 4");
    store.flushAll();
    await write(store, "m v=2 2\nm v=2 4\nm v=2 6"); // overwrites 2 and 4, adds 6
    store.flushAll();
    await write(store, "m v=3 4");
    store.flushAll();
    const expected = "m v=1 1\nm v=2 2\nm v=1 3\nm v=3 4\nm v=2 6\n";
    expect(all(store)).toBe(expected);
    store.compactAll();
    expect(all(store)).toBe(expected);
    expect(store.stats().chunks).toBe(1);
    await store.close();
    const again = open(dir).store;
    expect(all(again)).toBe(expected);
    expect(again.stats().chunks).toBe(1);
    await again.close();
  });

  test("after a restart, merges what an earlier run left small, without any write", async () => {
    const { store, dir } = open();
    for (let t = 0; t < 40; t++) await write(store, `m v=${t} ${t}`);
    store.flushAll();
    store.compactAll();
    expect(store.stats().chunks).toBe(4); // full for a chunk size of ten
    const expected = all(store);
    await store.close();
    // Reopened with a chunk size of a hundred, the four chunks are now small.
    const again = open(dir, 100).store;
    await until(() => again.stats().chunks === 1, "one chunk");
    expect(all(again)).toBe(expected);
    await again.close();
  });

  test("after a restart, looks only at pairs written since it last caught up, or at every pair if the chunk size changed", async () => {
    const { store, dir } = open();
    await write(store, Array.from({ length: 200 }, (_, i) => `m,s=${i % 5} v=${i} ${i}`).join("\n"));
    await write(store, "m,s=0 v=1 1000\nm,s=0 v=2 1001\nm,s=0 v=3 1002");
    store.flushAll();
    store.compactAll();
    // Four full chunks a series, and s=0's three late points in a small one nothing can fill.
    expect(store.stats().chunks).toBe(21);
    await write(store, "m,s=1 v=1 2000\nm,s=1 v=2 2001");
    store.flushAll();
    const expected = all(store);
    await store.close();

    const again = open(dir).store;
    expect(again.stats().compactionPending).toBe(1);
    expect(all(again)).toBe(expected);
    await again.close();
    // At a chunk size of a hundred every series' chunks are small.
    const larger = open(dir, 100).store;
    expect(larger.stats().compactionPending).toBe(5);
    larger.compactAll();
    expect(larger.stats().chunks).toBe(5);
    expect(all(larger)).toBe(expected);
    await larger.close();
  });

  test("leaves rows cut to fit pages as they are, before and after a restart, and merges early flushes into them", async () => {
    const { store, dir } = open(undefined, 1000);
    // Full-precision floats: 909 of them make a 6.7 KB row, which a flush cuts in several.
    const values = Array.from({ length: 909 }, (_, i) => `m v=${Math.sin(i + 0.5) * Math.PI * 1e3} ${i}`);
    await write(store, values.join("\n"));
    store.flushAll();
    const cut = store.stats().chunks;
    expect(cut).toBeGreaterThan(1);
    store.compactAll();
    expect(store.stats().chunks).toBe(cut);
    const expected = all(store);
    await store.close();
    const again = open(dir, 1000).store;
    again.compactAll();
    expect(again.stats().chunksCompacted).toBe(0);
    expect(again.stats().chunks).toBe(cut);
    // The same values flushed in small pieces end cut the same way once compacted.
    const other = open(undefined, 1000).store;
    for (let from = 0; from < values.length; from += 101) {
      await write(other, values.slice(from, from + 101).join("\n"));
      other.flushAll();
    }
    expect(other.stats().chunks).toBe(9);
    other.compactAll();
    expect(other.stats().chunks).toBe(cut);
    expect(all(other)).toBe(expected);
    expect(all(again)).toBe(expected);
    await other.close();
    await again.close();
  });

  test("rows cut to fill leaf pages fill them, read back whole, and are never merged back, before or after a restart", async () => {
    const { store, dir } = open(undefined, 1000);
    // 60 series of 440 full-precision floats: rows of about 3 KB, kept whole, each of which
    // leaves a leaf a gap of about 1 KB that the next row is cut to fill.
    const lines: string[] = [];
    for (let s = 0; s < 60; s++) for (let t = 0; t < 440; t++) lines.push(`m,s=${s} v=${Math.sin(s * 1000 + t + 0.5) * 1e3} ${t}`);
    await write(store, lines.join("\n"));
    const expected = all(store);
    store.flushAll();
    const { chunks, chunksCut } = store.stats();
    expect(chunksCut).toBeGreaterThan(10);
    expect(chunks).toBe(60 + chunksCut);
    expect(all(store)).toBe(expected);
    store.compactAll();
    expect(store.stats().chunksCompacted).toBe(0);
    await store.close();

    const db = new Database(join(dir, "tsdb.db"));
    const leaves = db.prepare("SELECT unused FROM dbstat WHERE name = 'chunks' AND pagetype = 'leaf' ORDER BY path").raw().all() as Array<[number]>;
    expect(leaves.length).toBeGreaterThan(20);
    for (const [unused] of leaves.slice(0, -1)) expect(unused).toBeLessThan(MIN_GAP);
    expect(Number((db.prepare("SELECT count(*) FROM chunks WHERE continued = 1").raw().get() as [number])[0])).toBe(chunksCut);
    db.close();

    const again = open(dir, 1000).store;
    again.compactAll();
    expect(again.stats().chunksCompacted).toBe(0);
    expect(again.stats().chunks).toBe(chunks);
    expect(all(again)).toBe(expected);
    // A small flush after a series' rows is still merged into them.
    await write(again, "m,s=0 v=1 440\nm,s=0 v=2 441");
    again.flushAll();
    const grown = all(again);
    again.compactAll();
    expect(again.stats().chunksCompacted).toBeGreaterThan(0);
    expect(all(again)).toBe(grown);
    await again.close();
  });

  test("stores a twin's few points apart from a node's own, merges small chunks of one writer only, and overlaps whoever wrote them", async () => {
    const { store, dir } = open();
    const twin = open(undefined, 10, "t").store;
    const tw = { nodeId: "t", incarnation: twin.incarnation };
    await store.applyBackfill(tw, [], { lsn: 0, hlc: 0 });
    let shipped = 0;
    const ship = async () => {
      const frames = twin.ownFramesAfter(shipped, Number.MAX_SAFE_INTEGER);
      shipped = twin.latestLsn();
      await store.applyTwinFrames(tw, frames.map((f) => f.bytes));
    };
    // Series a: the twin's one point shares a flush with the node's first three.
    await write(twin, "m,s=a v=0 0");
    await ship();
    await write(store, "m,s=a v=1 1\nm,s=a v=2 2\nm,s=a v=3 3");
    store.flushAll();
    for (let t = 4; t < 40; t += 3) {
      await write(store, [t, t + 1, t + 2].map((x) => `m,s=a v=${x} ${x}`).join("\n"));
      store.flushAll();
    }
    // Series b: the two nodes write every other point, in one flush.
    await write(twin, Array.from({ length: 4 }, (_, k) => `m,s=b v=${2 * k} ${2 * k}`).join("\n"));
    await ship();
    await write(store, Array.from({ length: 4 }, (_, k) => `m,s=b v=${2 * k + 1} ${2 * k + 1}`).join("\n"));
    store.flushAll();
    const before = all(store);
    store.compactAll();
    expect(store.stats().chunksCompacted).toBeGreaterThan(0);
    expect(all(store)).toBe(before);
    const chunks = (series: string) => {
      const db = new Database(join(dir, "tsdb.db"));
      const rows = db
        .prepare(
          "SELECT ifnull(n.name, 'mixed'), c.count, c.min_time, c.max_time FROM chunks c JOIN series s ON s.id = c.series_id LEFT JOIN nodes n ON n.id = c.origin_id WHERE s.key = ? ORDER BY c.min_time",
        )
        .raw()
        .all([series]) as Array<[string, number, number, number]>;
      db.close();
      return rows;
    };
    const shape = (series: string) => chunks(series).map(([origin, count]) => [origin, count]);
    expect(shape("m,s=a")).toEqual([["t", 1], ["n", 10], ["n", 10], ["n", 10], ["n", 9]]);
    expect(shape("m,s=b")).toEqual([["mixed", 8]]);
    // The twin's chunk is small, but merging it with the node's would only cut it out again.
    await write(twin, "m,s=c v=0 0");
    await ship();
    await write(store, "m,s=c v=1 1\nm,s=c v=2 2");
    store.flushAll();
    const compacted = store.stats().chunksCompacted;
    store.compactAll();
    expect(store.stats().chunksCompacted).toBe(compacted);
    expect(shape("m,s=c")).toEqual([["t", 1], ["n", 2]]);
    // The node overwrites the twin's point: the chunks overlap and are merged all the same.
    const grown = all(store);
    await write(store, "m,s=a v=-1 0");
    store.flushAll();
    store.compactAll();
    expect(all(store)).toBe(grown.replace("m,s=a v=0 0\n", "m,s=a v=-1 0\n"));
    const merged = chunks("m,s=a");
    expect(merged.map(([origin]) => origin).every((o) => o === "n")).toBe(true);
    for (let k = 1; k < merged.length; k++) expect(merged[k]![2]).toBeGreaterThan(merged[k - 1]![3]);
    await Promise.all([store.close(), twin.close()]);
  });
});
