import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { copyRows, copySlots, NO_PAGE, regionSizeFor, rowSlab, Slab, SlabPage, valueSlab, type PageKind } from "./slab.ts";

/** A slab of 96-slot pages: classes up to 24 slots share pages, larger regions get pages of their own. */
function small(kind: PageKind = "rows", spareMs = 1000): Slab {
  return new Slab(kind, 96, spareMs);
}

function take(s: Slab, size: number, nowMs = 0): [SlabPage, number] {
  const page = s.pageWithRoom(size, nowMs);
  return [page, page.take()];
}

/** The 64 bits of a double, as the page's memory holds them. */
function bitsOf(x: number): bigint {
  return new BigUint64Array(Float64Array.of(x).buffer)[0]!;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
/** Int64 values whose bits are NaNs of both signs, quiet and signalling, with payloads: a float view would canonicalise them. */
const NAN_LIKE = [-1n, BigInt.asIntN(64, 0x7ff0_0000_0000_0001n), BigInt.asIntN(64, 0xfff4_0000_dead_beefn), BigInt.asIntN(64, 0x7ff8_0000_0000_0000n), I64_MIN, I64_MAX];

describe("region sizes", () => {
  const cases: Array<[string, number, number]> = [
    ["one slot gets the smallest region", 1, 4],
    ["four slots fit the smallest region", 4, 4],
    ["five slots get a half step", 5, 6],
    ["seven slots get eight", 7, 8],
    ["nine slots get twelve", 9, 12],
    ["forty-nine slots get sixty-four", 49, 64],
    ["sixty-five slots get the next power of two", 65, 128],
    ["a thousand slots get 1024", 1000, 1024],
  ];
  for (const [name, n, size] of cases) {
    test(name, () => expect(regionSizeFor(n)).toBe(size));
  }

  test("a region size is its own region size, and never smaller than asked", () => {
    for (let n = 1; n <= 5000; n++) {
      const size = regionSizeFor(n);
      if (size < n || regionSizeFor(size) !== size) throw new Error(`${n} slots get ${size}`);
    }
  });
});

describe("slab pages", () => {
  const cases: Array<[string, PageKind, number, number]> = [
    ["a row page has time, clock, mask and origin columns and no values", "rows", 10, 0],
    ["a value page has value views and no row columns", "values", 0, 10],
  ];
  for (const [name, kind, rows, values] of cases) {
    test(name, () => {
      const page = new SlabPage(10, kind);
      const rowColumns = [page.times, page.timesHi, page.timesLo, page.hlcs, page.masks, page.origins].map((a) => a.length);
      const valueColumns = [page.floats, page.ints, page.uints, page.valueWords].map((a) => a.length);
      expect(rowColumns).toEqual([rows, 2 * rows, 2 * rows, rows, rows, rows]);
      expect(valueColumns).toEqual([values, values, values, 2 * values]);
      expect([page.slots, page.regionSize, page.regions, page.sizeClass]).toEqual([10, 10, 1, null]);
    });
  }

  test("the time views of a row page share memory", () => {
    const [page] = take(small("rows"), 4);
    page.times[1] = 2n ** 32n + 5n;
    expect([page.timesHi[3], page.timesLo[2]]).toEqual([1, 5]);
    page.times[2] = -1n;
    expect([page.timesHi[5], page.timesLo[4]]).toEqual([-1, 2 ** 32 - 1]);
  });

  test("the value views of a value page share memory, so int64 values keep their bits", () => {
    const [page] = take(small("values"), 4);
    page.ints[0] = -1n;
    expect(page.uints[0]).toBe(2n ** 64n - 1n);
    expect([page.valueWords[0], page.valueWords[1]]).toEqual([-1, -1]);
    page.floats[1] = -0;
    expect(page.uints[1]).toBe(bitsOf(-0));
  });

  test("the shared slabs are one of each kind", () => {
    expect([rowSlab.kind, valueSlab.kind]).toEqual(["rows", "values"]);
  });
});

describe("slab", () => {
  test("a region given back is handed out again before any new one", () => {
    const s = small();
    const [page, a] = take(s, 4);
    const [, b] = take(s, 4);
    s.give(page, a);
    expect(take(s, 4)).toEqual([page, a]);
    expect(b).not.toBe(a);
    expect(s.stats()).toEqual({ pages: 1, spares: 0, regionsInUse: 2 });
  });

  test("sizes of one class share a page, and other classes cut pages of their own", () => {
    const s = small();
    const [p5, b5] = take(s, 5);
    const [p6, b6] = take(s, 6);
    const [p7] = take(s, 7);
    expect(p6).toBe(p5);
    expect(b6 - b5).toBe(6);
    expect(p7).not.toBe(p5);
    expect([p5.regionSize, p5.regions, p7.regionSize, p7.regions]).toEqual([6, 16, 8, 12]);
    expect(s.stats()).toEqual({ pages: 2, spares: 0, regionsInUse: 3 });
  });

  test("a full page makes way for a new one, and takes regions again once one is given back", () => {
    const s = small();
    const regions: Array<[SlabPage, number]> = [];
    for (let i = 0; i < 24; i++) regions.push(take(s, 4)); // a page holds 24 regions of 4
    const first = regions[0]![0];
    expect(regions.every(([page]) => page === first)).toBe(true);
    expect(new Set(regions.map(([, base]) => base)).size).toBe(24);
    const second = s.pageWithRoom(4, 0);
    expect(second).not.toBe(first);
    s.give(first, regions[5]![1]);
    // The second page has room too; either is fine, but nothing new is cut.
    for (let i = 0; i < 24; i++) take(s, 4);
    expect(s.stats()).toEqual({ pages: 2, spares: 0, regionsInUse: 47 });
  });

  test("an emptied page becomes a spare that another class cuts anew", () => {
    const s = small();
    const [page, base] = take(s, 4);
    s.give(page, base);
    expect(s.stats()).toEqual({ pages: 0, spares: 1, regionsInUse: 0 });
    const [again, at] = take(s, 16);
    expect(again).toBe(page);
    expect([again.regionSize, again.regions, at]).toEqual([16, 6, 0]);
    expect(s.stats()).toEqual({ pages: 1, spares: 0, regionsInUse: 1 });
  });

  test("the newest spare is reused first", () => {
    const s = small();
    const [a, ab] = take(s, 4);
    const [b, bb] = take(s, 8);
    s.give(a, ab);
    s.give(b, bb);
    expect(s.stats().spares).toBe(2);
    expect(take(s, 12)[0]).toBe(b);
    expect(take(s, 16)[0]).toBe(a);
  });

  test("a spare unused for spareMs is let go when a region is next taken", () => {
    const s = small("rows", 1000);
    const [page, base] = take(s, 4, 5000);
    s.give(page, base);
    take(s, 8, 5999);
    expect(s.stats().spares).toBe(0); // reused, not let go
    const [p8, b8] = take(s, 8, 6000);
    s.give(p8, b8);
    s.give(page, 0);
    expect(s.stats().spares).toBe(1);
    const [fresh] = take(s, 4, 7001);
    expect(fresh).not.toBe(page);
    expect(s.stats()).toEqual({ pages: 1, spares: 0, regionsInUse: 1 });
  });

  test("a spare's age counts from the latest time any caller gave, not an older one", () => {
    const s = small("rows", 1000);
    const [page, base] = take(s, 4, 5000);
    take(s, 8, 7000);
    take(s, 8, 100); // a caller whose clock is behind
    s.give(page, base); // a spare from 7000 on
    take(s, 8, 7999); // class 8 has room: the spare is only checked, not taken
    expect(s.stats().spares).toBe(1);
    take(s, 8, 8000);
    expect(s.stats().spares).toBe(0);
  });

  const ownCases: Array<[string, PageKind, number]> = [
    ["a row region too large for the shared pages gets a page of exactly its size", "rows", 25],
    ["a value region too large for the shared pages gets a page of exactly its size", "values", 25],
    ["a region just past a power of two is not rounded up either", "rows", 1025],
  ];
  for (const [name, kind, size] of ownCases) {
    test(name, () => {
      const s = small(kind);
      const [page, base] = take(s, size);
      expect([base, page.slots, page.regionSize, page.sizeClass]).toEqual([0, size, size, null]);
      expect(kind === "rows" ? page.times.length : page.floats.length).toBe(size);
      expect(s.stats()).toEqual({ pages: 0, spares: 0, regionsInUse: 1 });
      s.give(page, base);
      expect(s.stats()).toEqual({ pages: 0, spares: 0, regionsInUse: 0 });
    });
  }

  test("the largest shared class still shares pages", () => {
    const s = small();
    const [page] = take(s, 24);
    expect([page.regionSize, page.regions]).toEqual([24, 4]);
    expect(s.stats()).toEqual({ pages: 1, spares: 0, regionsInUse: 1 });
  });

  test("giving back no page does nothing", () => {
    const s = small();
    s.give(NO_PAGE, 0);
    expect(s.stats()).toEqual({ pages: 0, spares: 0, regionsInUse: 0 });
  });

  test("the region of an owner collected without giving it back returns, own pages included", async () => {
    const s = small();
    const owners = 50;
    // In a function of its own, so no reference to the owners stays on this frame.
    (function hold() {
      for (let i = 0; i < owners; i++) {
        const holder = s.holder({});
        // Every fifth owner has a page of its own.
        const [page, base] = take(s, i % 5 === 0 ? 40 : 4);
        s.hold(holder, page, base);
      }
    })();
    expect(s.stats().regionsInUse).toBe(owners);
    // A conservative stack scan may keep one or two alive; most must come back.
    const deadline = Date.now() + 10_000;
    while (s.stats().regionsInUse > owners / 5 && Date.now() < deadline) {
      Bun.gc(true);
      await Bun.sleep(10);
    }
    expect(s.stats().regionsInUse).toBeLessThanOrEqual(owners / 5);
  });

  test("an owner that moved and gave back its old region returns only the one it holds", async () => {
    const s = small();
    (function hold() {
      const holder = s.holder({});
      const [a, ab] = take(s, 4);
      s.hold(holder, a, ab);
      const [b, bb] = take(s, 12);
      s.give(a, ab);
      s.hold(holder, b, bb);
    })();
    expect(s.stats().regionsInUse).toBe(1);
    const deadline = Date.now() + 10_000;
    while (s.stats().regionsInUse > 0 && Date.now() < deadline) {
      Bun.gc(true);
      await Bun.sleep(10);
    }
    // Never below zero: the region given back earlier is not given back twice.
    expect(s.stats()).toEqual({ pages: 0, spares: 2, regionsInUse: 0 });
  });
});

describe("copies between regions", () => {
  // Word by word below 64 slots, through views from 64 on: both must keep every bit.
  for (const n of [1, 3, 63, 64, 200]) {
    for (const origins of [false, true]) {
      test(`copyRows copies ${n} row${n === 1 ? "" : "s"} bit for bit${origins ? ", origins too" : ", origins left alone"}`, () => {
        const s = new Slab("rows", 1024);
        const [from, a] = take(s, n);
        const [to, b] = take(s, n);
        for (let i = 0; i < n; i++) {
          from.times[a + i] = -(2n ** 62n) + BigInt(i) * 0x1_0000_0001n;
          from.hlcs[a + i] = 2 ** 52 + i;
          from.masks[a + i] = i % 2 === 0 ? -(2 ** 31) | i : i; // column 31 makes the mask negative
          from.origins[a + i] = i + 1;
        }
        copyRows(from, a, to, b, n, origins);
        for (let i = 0; i < n; i++) {
          expect([to.times[b + i], to.hlcs[b + i], to.masks[b + i]]).toEqual([from.times[a + i], from.hlcs[a + i], from.masks[a + i]]);
          expect(to.origins[b + i]).toBe(origins ? i + 1 : 0);
        }
      });
    }
  }

  for (const n of [1, 3, 63, 64, 200]) {
    test(`copySlots copies ${n} value${n === 1 ? "" : "s"} bit for bit, NaN-like int64 values included`, () => {
      const s = new Slab("values", 1024);
      const [from, a] = take(s, n);
      const [to, b] = take(s, n);
      for (let i = 0; i < n; i++) from.ints[a + i] = NAN_LIKE[i % NAN_LIKE.length]! - BigInt(i % 2);
      copySlots(from, a, to, b, n);
      for (let i = 0; i < n; i++) expect(to.ints[b + i]).toBe(from.ints[a + i]!);
      // Only the n slots were written.
      expect(to.ints[b + n] ?? 0n).toBe(0n);
    });
  }

  const int64 = fc.oneof(fc.constantFrom(...NAN_LIKE), fc.bigInt({ min: I64_MIN, max: I64_MAX }));

  test("copyRows and copySlots keep any bits at any offsets, short or long", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ time: int64, value: int64, hlc: fc.maxSafeNat(), mask: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), origin: fc.nat(0xffff) }), { maxLength: 150 }),
        fc.nat(40),
        fc.nat(40),
        (slots, fromAt, toAt) => {
          const n = slots.length;
          const rows = [new SlabPage(fromAt + n, "rows"), new SlabPage(toAt + n, "rows")] as const;
          const vals = [new SlabPage(fromAt + n, "values"), new SlabPage(toAt + n, "values")] as const;
          slots.forEach((x, i) => {
            rows[0].times[fromAt + i] = x.time;
            rows[0].hlcs[fromAt + i] = x.hlc;
            rows[0].masks[fromAt + i] = x.mask;
            rows[0].origins[fromAt + i] = x.origin;
            vals[0].ints[fromAt + i] = x.value;
          });
          copyRows(rows[0], fromAt, rows[1], toAt, n, true);
          copySlots(vals[0], fromAt, vals[1], toAt, n);
          const back = slots.map((_, i) => ({
            time: rows[1].times[toAt + i]!,
            value: vals[1].ints[toAt + i]!,
            hlc: rows[1].hlcs[toAt + i]!,
            mask: rows[1].masks[toAt + i]!,
            origin: rows[1].origins[toAt + i]!,
          }));
          expect(back).toEqual(slots);
        },
      ),
      { numRuns: 200 },
    );
  });
});
