import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import Database from "libsql";
import { PageFit, recordBytes } from "./pagefit.ts";

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
        const order = new PageFit(4096).packOrder(sizes);
        expect([...order].sort((a, b) => a - b)).toEqual(sizes.map((_, i) => i));
        order.forEach((from, to) => expect(Math.abs(from - to)).toBeLessThanOrEqual(16));
      }),
    );
  });

  test("an insertion order from packOrder fills fewer leaves than the given one, in a real SQLite file", () => {
    // Records of 2,600 and 1,400 bytes, three of each in turn: in this order a 2,600 sits
    // alone and two 1,400s share a leaf with room left; one of each fills a leaf.
    const blobs = Array.from({ length: 78 }, (_, i) => new Uint8Array(i % 6 < 3 ? 2590 : 1390));
    const fit = new PageFit(4096);
    const order = fit.packOrder(blobs.map((b) => recordBytes([null, 1, b])));
    const leaves = (indexes: readonly number[]) => {
      const db = memoryDb(4096);
      const insert = db.prepare("INSERT INTO t (n, b) VALUES (1, ?)");
      for (const i of indexes) insert.run([blobs[i]!]);
      return payloads(db).leaves;
    };
    expect(leaves(blobs.map((_, i) => i))).toBeGreaterThanOrEqual(48);
    expect(leaves(order)).toBeLessThanOrEqual(40);
  });
});
