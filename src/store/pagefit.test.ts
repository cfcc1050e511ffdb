import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import Database from "libsql";
import { MIN_GAP, PageFit, recordBytes } from "./pagefit.ts";
import { RightmostLeaf } from "./sqlite.ts";

const open: Array<InstanceType<typeof Database>> = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
});

function memoryDb(pageSize: number): InstanceType<typeof Database> {
  const db = new Database(":memory:");
  open.push(db);
  db.pragma(`page_size = ${pageSize}`);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, b BLOB)");
  return db;
}

/** Leaf and overflow payload of table t's pages, as SQLite's dbstat reports them. */
function payloads(db: InstanceType<typeof Database>): { leaf: number; overflow: number; leaves: number } {
  const rows = db.prepare("SELECT pagetype, payload FROM dbstat WHERE name = 't'").raw().all() as Array<[string, number]>;
  let leaf = 0;
  let overflow = 0;
  let leaves = 0;
  for (const [type, payload] of rows) {
    if (type === "leaf") {
      leaf += payload;
      leaves++;
    } else if (type === "overflow") overflow += payload;
  }
  return { leaf, overflow, leaves };
}

describe("PageFit", () => {
  test("computes the record size and the local part SQLite gives a row, for any size on 1, 4 and 8 KiB pages", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1024, 4096, 8192),
        fc.integer({ min: 0, max: 40_000 }),
        fc.oneof(fc.constant(null), fc.integer(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
        (pageSize, blobBytes, n) => {
          const db = memoryDb(pageSize);
          const blob = new Uint8Array(blobBytes).fill(7);
          db.prepare("INSERT INTO t (n, b) VALUES (?, ?)").run([n, blob]);
          const { leaf, overflow } = payloads(db);
          const bytes = recordBytes([null, n, blob]);
          expect(leaf + overflow).toBe(bytes);
          expect(leaf).toBe(new PageFit(pageSize).localBytes(bytes));
          db.close();
          open.pop();
        },
      ),
      { numRuns: 150 },
    );
  });

  test("never plans a cut expected to cost more than the row as it is, and keeps every value", () => {
    for (const pageSize of [2048, 4096, 8192]) {
      const fit = new PageFit(pageSize);
      for (let bytes = 200; bytes <= 40_000; bytes = Math.ceil(bytes * 1.02)) {
        const sizes = fit.plan(bytes);
        expect(fit.expectedCost(sizes)).toBeLessThanOrEqual(fit.expectedCost([bytes]));
        const counts = fit.counts(1000, bytes);
        expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
        expect(Math.min(...counts)).toBeGreaterThan(0);
      }
    }
  });

  const cases: Array<[string, number, number]> = [
    // The one-row record sizes the ingest bench's workloads produce (909 values a series).
    ["a 2-decimal chunk of 1.2 KB, three to a 4 KiB leaf, stays whole", 1230, 1],
    ["a chunk that fills most of a leaf alone stays whole", 3900, 1],
    ["a random-float chunk of 6.7 KB, whose 2.5 KB local part shares no leaf, is cut", 6670, 3],
    ["a chunk of exactly two overflow pages and a minimal local part stays whole", 489 + 2 * 4092, 1],
  ];
  for (const [name, bytes, atLeast] of cases) {
    test(name, () => {
      const sizes = new PageFit(4096).plan(bytes);
      if (atLeast === 1) expect(sizes).toEqual([bytes]);
      else expect(sizes.length).toBeGreaterThanOrEqual(atLeast);
    });
  }

  test("rows move at most a few places from their given order, and all of them are kept", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 40, max: 9000 }), { maxLength: 300 }), (sizes) => {
        const fit = new PageFit(4096);
        const order: number[] = [];
        fit.fillLeaves(sizes.map((_, i) => i), (i) => sizes[i]!, fit.emptyLeaf, 1, () => null, (i) => order.push(i));
        expect([...order].sort((a, b) => a - b)).toEqual(sizes.map((_, i) => i));
        order.forEach((from, to) => expect(Math.abs(from - to)).toBeLessThanOrEqual(16));
      }),
    );
  });

  test("an insertion order from fillLeaves fills fewer leaves than the given one, in a real SQLite file", () => {
    // Records of 2,600 and 1,400 bytes, three of each in turn: in this order a 2,600 sits
    // alone and two 1,400s share a leaf with room left; one of each fills a leaf.
    const blobs = Array.from({ length: 78 }, (_, i) => new Uint8Array(i % 6 < 3 ? 2590 : 1390));
    const fit = new PageFit(4096);
    const leaves = (reorder: boolean) => {
      const db = memoryDb(4096);
      const insert = db.prepare("INSERT INTO t (n, b) VALUES (1, ?)");
      if (!reorder) for (const b of blobs) insert.run([b]);
      else fit.fillLeaves(blobs, (b) => recordBytes([null, 1, b]), fit.emptyLeaf, 1, () => null, (b) => insert.run([b]));
      return payloads(db).leaves;
    };
    expect(leaves(false)).toBeGreaterThanOrEqual(48);
    expect(leaves(true)).toBeLessThanOrEqual(40);
  });

  test("rows cut to fill gaps fill a real SQLite file's leaves, keep every byte, and leave the free space reported", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1024, 4096, 8192),
        fc.array(fc.array(fc.integer({ min: 1, max: 12_000 }), { minLength: 1, maxLength: 60 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (pageSize, drawn, overflowing) => {
          // Rows that overflow are never cut, so only rows kept whole must fill every leaf.
          const batches = overflowing ? drawn : drawn.map((sizes) => sizes.map((n) => (n % (pageSize - 64)) + 1));
          const db = memoryDb(pageSize);
          const fit = new PageFit(pageSize);
          const leaf = new RightmostLeaf(db, "t");
          const insert = db.prepare("INSERT INTO t (n, b) VALUES (?, ?)");
          // A row is (origin, bytes): its bytes count up from its origin's number, so the
          // parts read back in rowid order must rebuild each original row exactly.
          type Row = { origin: number; b: Uint8Array };
          const originals: Uint8Array[] = [];
          let cuts = 0;
          for (const sizes of batches) {
            const rows: Row[] = sizes.map((n) => {
              const origin = originals.length;
              const b = Uint8Array.from({ length: n }, (_, i) => (origin * 7 + i) & 0xff);
              originals.push(b);
              return { origin, b };
            });
            const bytes = (r: Row) => recordBytes([null, r.origin, r.b]);
            const cut = (r: Row, max: number): [Row, Row] | null => {
              let n = r.b.length - 1;
              while (n > 0 && bytes({ origin: r.origin, b: r.b.subarray(0, n) }) > max) n--;
              if (n < 1) return null;
              cuts++;
              return [
                { origin: r.origin, b: r.b.slice(0, n) },
                { origin: r.origin, b: r.b.slice(n) },
              ];
            };
            const rowid = Number((db.prepare("SELECT ifnull(max(id), 0) + 1 FROM t").raw().get() as [number])[0]);
            const free = fit.fillLeaves(rows, bytes, leaf.free(), rowid, cut, (r) => insert.run([r.origin, r.b]));
            expect(free).toBe(leaf.free());
          }
          const parts = new Map<number, number[]>();
          for (const [n, b] of db.prepare("SELECT n, b FROM t ORDER BY id").raw().all() as Array<[number, Uint8Array]>) {
            const list = parts.get(n) ?? [];
            list.push(...b);
            parts.set(n, list);
          }
          originals.forEach((b, i) => expect(Uint8Array.from(parts.get(i) ?? [])).toEqual(Uint8Array.from(b)));
          // Every leaf but the last is left with less than a gap worth cutting a row for.
          const unused = db.prepare("SELECT unused FROM dbstat WHERE name = 't' AND pagetype = 'leaf' ORDER BY path").raw().all() as Array<[number]>;
          if (!overflowing) for (const [u] of unused.slice(0, -1)) expect(u).toBeLessThan(MIN_GAP);
          expect(cuts).toBeLessThanOrEqual(unused.length);
          db.close();
          open.pop();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("RightmostLeaf", () => {
  test("reads the free bytes SQLite reports for a table's last leaf, through inserts, deletes and updates", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 1024, 4096, 65536),
        fc.array(fc.tuple(fc.constantFrom("insert", "delete", "update"), fc.integer({ min: 0, max: 9000 })), { minLength: 1, maxLength: 200 }),
        (pageSize, ops) => {
          const db = memoryDb(pageSize);
          const leaf = new RightmostLeaf(db, "t");
          let rows = 0;
          for (const [op, n] of ops) {
            if (op === "insert" || rows === 0) {
              db.prepare("INSERT INTO t (n, b) VALUES (?, ?)").run([n, new Uint8Array(n % 3000)]);
              rows++;
            } else if (op === "delete") {
              db.prepare("DELETE FROM t WHERE id = (SELECT id FROM t ORDER BY id LIMIT 1 OFFSET ?)").run([n % rows]);
              rows--;
            } else {
              db.prepare("UPDATE t SET b = ? WHERE id = (SELECT id FROM t ORDER BY id LIMIT 1 OFFSET ?)").run([new Uint8Array(n % 700), n % rows]);
            }
            const [unused, cells] = db.prepare("SELECT unused, ncell FROM dbstat WHERE name = 't' AND pagetype = 'leaf' ORDER BY path DESC LIMIT 1").raw().get() as [number, number];
            // dbstat reports an empty 64 KiB leaf as -8 unused: its header stores 65,536 as 0.
            expect(leaf.free()).toBe(cells === 0 ? pageSize - 8 : unused);
          }
          db.close();
          open.pop();
        },
      ),
      { numRuns: 40 },
    );
  });

  test("is 0 for a name that is not a table", () => {
    const db = memoryDb(4096);
    expect(new RightmostLeaf(db, "no_such_table").free()).toBe(0);
  });
});
