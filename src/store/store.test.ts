import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_ENGINE, type EngineConfig } from "../config.ts";
import { isTsdbError } from "../errors.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { MAX_COLUMNS } from "./hot.ts";
import { HOT_HARD_LIMIT, Store, type WriteRequest } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "tsdb-store-"));
  dirs.push(d);
  return d;
}

function open(dataDir: string, engine: Partial<EngineConfig> = {}, nodeId = "node-a"): Store {
  return Store.open({ dataDir, nodeId, sync: "normal", engine: { ...DEFAULT_ENGINE, ...engine } });
}

function req(body: string, extra: Partial<WriteRequest> = {}): WriteRequest {
  const { batch, errors } = parseLines(body, { precision: "ns", defaultTime: 1_000n });
  expect(errors).toEqual([]);
  return { db: "db", rp: "", precision: "ns", defaultTime: 1_000n, batch, autoCreate: true, ...extra };
}

function exportAll(store: Store, db = "db"): string {
  return [...store.exportLines(db)].join("");
}

describe("store", () => {
  test("opens a file another process holds locked for a moment, once it lets go", async () => {
    const dir = tempDir();
    // Another process takes the file for itself (no reader gets in), then lets go.
    const holder = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const Database = require("libsql"); const db = new Database(${JSON.stringify(join(dir, "tsdb.db"))});
         db.pragma("journal_mode = WAL"); db.pragma("locking_mode = EXCLUSIVE"); db.exec("BEGIN EXCLUSIVE"); db.exec("CREATE TABLE held (x)");
         console.log("locked"); setTimeout(() => { db.exec("ROLLBACK"); db.close(); }, 700);`,
      ],
      { cwd: join(import.meta.dir, "../.."), stdout: "pipe", stderr: "pipe" },
    );
    const reader = holder.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("locked");
    const started = performance.now();
    const store = open(dir);
    // It waited for the holder, then opened.
    expect(performance.now() - started).toBeGreaterThan(300);
    await store.write(req("m v=1 1"));
    expect(exportAll(store)).toBe("m v=1 1\n");
    await store.close();
    expect(await holder.exited).toBe(0);
  });

  test("buffers past HOT_HARD_LIMIT times the memory cap make writes wait for flushes", async () => {
    // What the cap counts for a series of one line.
    const probe = open(tempDir());
    await probe.write(req("m v=1 1"));
    const seriesBytes = probe.stats().hotBytes;
    expect(seriesBytes).toBeGreaterThan(0);
    await probe.close();
    // A cap of 200 such series, and flush steps that take one buffer at a time (a zero
    // budget): flushing is far slower than writing, as with a flood of new series.
    const cap = 200 * seriesBytes;
    const store = open(tempDir(), { hotMemoryBytes: cap, hotMemoryPerSeriesBytes: 0, overCapFlushStepMs: 0 });
    const batches = 32;
    const perBatch = 100;
    let most = 0;
    const pending: Promise<unknown>[] = [];
    for (let b = 0; b < batches; b++) {
      const body = Array.from({ length: perBatch }, (_, i) => `m,s=${b}-${i} v=${i} ${b}`).join("\n");
      pending.push(store.write(req(body)).then(() => (most = Math.max(most, store.stats().hotBytes))));
      if (pending.length === 8) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    // A group of requests is committed only below the limit: at most one group beyond it.
    expect(most).toBeGreaterThan(cap);
    expect(most).toBeLessThanOrEqual(HOT_HARD_LIMIT * cap + 8 * perBatch * seriesBytes);
    store.flushAll();
    expect(exportAll(store).split("\n").filter(Boolean).length).toBe(batches * perBatch);
    await store.close();
  });

  test("the memory cap grows by its share per series with buffered values", async () => {
    // What the cap counts for a series of one line.
    const probe = open(tempDir());
    await probe.write(req("m v=1 1"));
    const seriesBytes = probe.stats().hotBytes;
    await probe.close();
    const body = Array.from({ length: 100 }, (_, i) => `m,s=${i} v=${i} 1`).join("\n");
    // A base of 10 series, and twice what a series holds for each: 100 series stay buffered.
    const grown = open(tempDir(), { hotMemoryBytes: 10 * seriesBytes, hotMemoryPerSeriesBytes: 2 * seriesBytes });
    await grown.write(req(body));
    await Bun.sleep(50);
    expect(grown.stats().hotCapBytes).toBe(10 * seriesBytes + 100 * 2 * seriesBytes);
    expect(grown.stats().hotValues).toBe(100);
    expect(grown.stats().chunksWritten).toBe(0);
    await grown.close();
    // The base alone (a fixed --hot-memory): over it, the oldest go to chunks.
    const fixed = open(tempDir(), { hotMemoryBytes: 10 * seriesBytes, hotMemoryPerSeriesBytes: 0 });
    await fixed.write(req(body));
    const deadline = Date.now() + 5_000;
    while (fixed.stats().hotBytes > 10 * seriesBytes && Date.now() < deadline) await Bun.sleep(20);
    expect(fixed.stats().hotCapBytes).toBe(10 * seriesBytes);
    expect(fixed.stats().hotBytes).toBeLessThanOrEqual(10 * seriesBytes);
    expect(fixed.stats().chunksWritten).toBeGreaterThan(0);
    expect(exportAll(fixed).split("\n").filter(Boolean).length).toBe(100);
    await fixed.close();
  });

  test("flushes values older than the flush age even when no more writes come", async () => {
    const clock = { ms: 1_000_000 };
    const store = Store.open({ dataDir: tempDir(), nodeId: "node-a", sync: "normal", engine: { ...DEFAULT_ENGINE, flushAgeMs: 5_000 }, nowMs: () => clock.ms });
    await store.write(req("m v=1 1\nm v=2 2"));
    expect(store.stats().hotValues).toBe(2);
    clock.ms += 6_000;
    // The age is looked at every second, writes or not.
    const deadline = Date.now() + 5_000;
    while (store.stats().hotValues > 0 && Date.now() < deadline) await Bun.sleep(100);
    expect(store.stats().hotValues).toBe(0);
    expect(store.stats().chunks).toBe(1);
    expect(exportAll(store)).toBe("m v=1 1\nm v=2 2\n");
    await store.close();
  });

  test("exports what was written, canonically sorted with one line per series and time", async () => {
    const store = open(tempDir());
    await store.write(req("m,b=2,a=1 y=2i,x=1.5 20\nm,a=1,b=2 x=2.5 10\nk f=\"s\\\"q\",t=true 5\nm,a=0 u=7u 10"));
    expect(exportAll(store)).toBe(
      'k f="s\\"q",t=true 5\n' + "m,a=0 u=7u 10\n" + "m,a=1,b=2 x=2.5 10\n" + "m,a=1,b=2 x=1.5,y=2i 20\n",
    );
    await store.close();
  });

  test("a later write of the same series, field and time replaces the earlier one", async () => {
    const store = open(tempDir());
    await store.write(req("m v=1 10\nm v=2 20"));
    await store.write(req("m v=3 10"));
    expect(exportAll(store)).toBe("m v=3 10\nm v=2 20\n");
    store.flushAll();
    await store.write(req("m v=4 20"));
    expect(exportAll(store)).toBe("m v=3 10\nm v=4 20\n");
    await store.close();
  });

  test("drops only the points whose field type clashes with the stored type", async () => {
    const store = open(tempDir());
    await store.write(req("m v=1 10"));
    const out = await store.write(req("m v=2i 20\nm v=3 30\nm w=true 40"));
    expect(out.accepted).toBe(2);
    expect(out.conflicts).toEqual([{ line: 1, measurement: "m", field: "v", type: "integer", existing: "float" }]);
    expect(exportAll(store)).toBe("m v=1 10\nm v=3 30\nm w=true 40\n");
    await store.close();
  });

  test("a type clash inside one batch keeps the first type", async () => {
    const store = open(tempDir());
    const out = await store.write(req("m v=1i 10\nm v=1.5 20"));
    expect(out.accepted).toBe(1);
    expect(out.conflicts[0]?.existing).toBe("integer");
    await store.close();
  });

  test("unknown databases are refused when auto-create is off, and unknown retention policies always", async () => {
    const store = open(tempDir());
    const cases: Array<[string, Partial<WriteRequest>, string]> = [
      ["no auto-create", { autoCreate: false }, 'database not found: "db"'],
      ["bad rp", { rp: "nope" }, "retention policy not found: nope"],
    ];
    for (const [, extra, message] of cases) {
      const err = await store.write(req("m v=1 1", extra)).catch((e) => e);
      expect(isTsdbError(err, "not_found")).toBe(true);
      expect((err as Error).message).toBe(message);
    }
    expect(store.databases()).toEqual([]);
    await store.close();
  });

  test("concurrent writes share commits and all land", async () => {
    const store = open(tempDir());
    const writes = Array.from({ length: 50 }, (_, i) => store.write(req(`m,h=h${i % 5} v=${i} ${i}`)));
    const outcomes = await Promise.all(writes);
    expect(outcomes.every((o) => o.accepted === 1)).toBe(true);
    expect(new Set(outcomes.map((o) => o.lsn)).size).toBe(50);
    expect(exportAll(store).trim().split("\n").length).toBe(50);
    await store.close();
  });

  test("a series with more fields than a hot buffer has columns keeps every value, sparse and late lines too", async () => {
    const dir = tempDir();
    const store = open(dir, { chunkPoints: 8 });
    // Line t sets the fields i with (i + t) % 3 !== 0, as integers v<i>=<t*100+i>, keys in the order given.
    const line = (t: number, order: 1 | -1) => {
      const set = Array.from({ length: MAX_COLUMNS + 8 }, (_, i) => i).filter((i) => (i + t) % 3 !== 0);
      const keyed = set.map((i) => [`v${i}`, `${t * 100 + i}i`]).sort(([a], [b]) => (a! < b! ? -order : order));
      return `m,h=x ${keyed.map(([k, v]) => `${k}=${v}`).join(",")} ${t}\n`;
    };
    // Newest line first, fields in reverse: the export's order is neither.
    for (let t = 20; t >= 1; t--) await store.write(req(line(t, -1)));
    const expected = Array.from({ length: 20 }, (_, k) => line(k + 1, 1)).join("");
    expect(exportAll(store)).toBe(expected);
    store.flushAll();
    expect(exportAll(store)).toBe(expected);
    await store.write(req(line(21, 1)));
    await store.close();
    const again = open(dir);
    expect(exportAll(again)).toBe(expected + line(21, 1));
    await again.close();
  });

  test("reopening replays unflushed frames and keeps flushed chunks", async () => {
    const dir = tempDir();
    const a = open(dir, { chunkPoints: 4 });
    for (let i = 0; i < 10; i++) await a.write(req(`m,h=x v=${i}i ${i}\nm,h=y s="${i}" ${i}`));
    const before = exportAll(a);
    expect(a.stats().chunksWritten).toBeGreaterThan(0);
    // Simulate a crash: drop the handle without close() so the hot buffers are lost.
    (a as unknown as { sqlite: { close(): void } }).sqlite.close();
    (a as unknown as { releaseLock(): void }).releaseLock();
    const b = open(dir, { chunkPoints: 4 });
    expect(exportAll(b)).toBe(before);
    expect(b.stats().lastLsn).toBe(10);
    const next = await b.write(req("m,h=x v=99i 99"));
    expect(next.lsn).toBe(11);
    await b.close();
    const c = open(dir);
    // Series sort first, so the new point lands after h=x's last line and before h=y's.
    expect(exportAll(c)).toBe(before.replace("m,h=x v=9i 9\n", "m,h=x v=9i 9\nm,h=x v=99i 99\n"));
    await c.close();
  });

  test("refuses a data directory that belongs to another node id", async () => {
    const dir = tempDir();
    await open(dir).close();
    let err: unknown;
    try {
      open(dir, {}, "node-b");
    } catch (e) {
      err = e;
    }
    expect(isTsdbError(err, "identity")).toBe(true);
    expect(String((err as Error).message)).toContain('belongs to node "node-a"');
  });

  test("refuses a data directory that another live store holds", async () => {
    const dir = tempDir();
    const a = open(dir);
    expect(() => open(dir)).toThrow(/in use by process/);
    await a.close();
    await open(dir).close();
  });

  test("export ranges are inclusive on both ends", async () => {
    const store = open(tempDir());
    await store.write(req("m v=1 10\nm v=2 20\nm v=3 30"));
    expect([...store.exportLines("db", { start: 20n, end: 30n })].join("")).toBe("m v=2 20\nm v=3 30\n");
    await store.close();
  });
});

describe("schema changes", () => {
  async function seeded(engine: Partial<EngineConfig> = {}): Promise<{ store: Store; dir: string }> {
    const dir = tempDir();
    const store = open(dir, engine);
    await store.write(req("cpu,host=a v=1 10\ncpu,host=a v=2 20\ncpu,host=b v=3 10\nmem,host=a f=5i 10"));
    return { store, dir };
  }

  test("create database is idempotent and survives a restart", async () => {
    const dir = tempDir();
    const store = open(dir);
    await store.createDatabase("made");
    await store.createDatabase("made");
    expect(store.databases()).toEqual(["made"]);
    await store.close();
    const again = open(dir);
    expect(again.databases()).toEqual(["made"]);
    await again.close();
  });

  const cases: Array<[string, (s: Store) => Promise<unknown>, string]> = [
    ["drop database removes everything", (s) => s.dropDatabase("db"), ""],
    ["drop measurement removes only that measurement", (s) => s.dropMeasurement("db", "cpu"), "mem,host=a f=5i 10\n"],
    [
      "drop series removes the matching series entirely",
      (s) => s.deleteSeries("db", { measurements: ["cpu"], series: (x) => x.tag("host") === "a" }),
      "cpu,host=b v=3 10\nmem,host=a f=5i 10\n",
    ],
    [
      "delete with a time range keeps values outside it",
      (s) => s.deleteSeries("db", { measurements: null, series: () => true, start: 15n, end: 100n }),
      "cpu,host=a v=1 10\ncpu,host=b v=3 10\nmem,host=a f=5i 10\n",
    ],
  ];
  for (const [name, change, expected] of cases) {
    for (const flushed of [false, true]) {
      test(`${name} (${flushed ? "from chunks" : "from hot buffers"}), also after a restart`, async () => {
        const { store, dir } = await seeded();
        if (flushed) store.flushAll();
        await change(store);
        const now = store.database("db") ? exportAll(store) : "";
        expect(now).toBe(expected);
        await store.close();
        const again = open(dir);
        expect(again.database("db") ? exportAll(again) : "").toBe(expected);
        await again.close();
      });
    }
  }

  test("a replayed delete removes values replayed before it", async () => {
    const dir = tempDir();
    const a = open(dir);
    await a.write(req("m,h=x v=1 10\nm,h=x v=2 20"));
    await a.deleteSeries("db", { measurements: ["m"], series: () => true, start: 0n, end: 15n });
    await a.write(req("m,h=x v=3 5"));
    (a as unknown as { sqlite: { close(): void } }).sqlite.close();
    (a as unknown as { releaseLock(): void }).releaseLock();
    const b = open(dir);
    expect(exportAll(b)).toBe("m,h=x v=3 5\nm,h=x v=2 20\n");
    await b.close();
  });

  test("a measurement whose series are all dropped disappears with its field types", async () => {
    const { store } = await seeded();
    expect(await store.deleteSeries("db", { measurements: ["cpu"], series: () => true })).toBe(2);
    expect([...store.database("db")!.measurements.keys()]).toEqual(["mem"]);
    // The field type is free again.
    expect((await store.write(req("cpu,host=a v=1i 1"))).accepted).toBe(1);
    await store.close();
  });

  test("delete on an unknown database is not found", async () => {
    const store = open(tempDir());
    const err = await store.deleteSeries("nope", { measurements: null, series: () => true }).catch((e) => e);
    expect(isTsdbError(err, "not_found")).toBe(true);
    await store.close();
  });
});
