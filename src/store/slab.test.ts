import { describe, expect, test } from "bun:test";
import { copyValues, NO_PAGE, Slab, regionSizeFor, type SlabPage } from "./slab.ts";

/** A slab of 96-value pages: classes up to 24 values share pages, larger ones get their own. */
function small(spareMs = 1000): Slab {
  return new Slab(96, spareMs);
}

function take(s: Slab, size: number, nowMs = 0): [SlabPage, number] {
  const page = s.pageWithRoom(size, nowMs);
  return [page, page.take()];
}

describe("region sizes", () => {
  const cases: Array<[string, number, number]> = [
    ["one value gets the smallest region", 1, 4],
    ["four values fit the smallest region", 4, 4],
    ["five values get a half step", 5, 6],
    ["seven values get eight", 7, 8],
    ["nine values get twelve", 9, 12],
    ["forty-nine values get sixty-four", 49, 64],
    ["sixty-five values get the next power of two", 65, 128],
    ["a thousand values get 1024", 1000, 1024],
  ];
  for (const [name, n, size] of cases) {
    test(name, () => expect(regionSizeFor(n)).toBe(size));
  }
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

  test("a full page makes way for a new one, and takes regions again once one is given back", () => {
    const s = small();
    const regions: Array<[SlabPage, number]> = [];
    for (let i = 0; i < 24; i++) regions.push(take(s, 4)); // a page holds 24 regions of 4
    const first = regions[0]![0];
    const second = s.pageWithRoom(4, 0);
    expect(second).not.toBe(first);
    expect(new Set(regions.map(([, base]) => base)).size).toBe(24);
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
    const [again] = take(s, 16);
    expect(again).toBe(page);
    expect(again.regionSize).toBe(16);
    expect(again.regions).toBe(6);
    expect(s.stats()).toEqual({ pages: 1, spares: 0, regionsInUse: 1 });
  });

  test("a spare unused for spareMs is let go when a region is next taken", () => {
    const s = small(1000);
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

  test("a buffer too large for the shared pages gets a page of its own", () => {
    const s = small();
    const [page, base] = take(s, 25);
    expect(base).toBe(0);
    expect(page.regionSize).toBe(32);
    expect(page.times.length).toBe(32);
    expect(s.stats()).toEqual({ pages: 0, spares: 0, regionsInUse: 1 });
    s.give(page, base);
    expect(s.stats()).toEqual({ pages: 0, spares: 0, regionsInUse: 0 });
  });

  test("giving back no page does nothing", () => {
    const s = small();
    s.give(NO_PAGE, 0);
    expect(s.stats()).toEqual({ pages: 0, spares: 0, regionsInUse: 0 });
  });

  test("the views of a page share memory, so int64 values keep their bits", () => {
    const [page] = take(small(), 4);
    page.ints[0] = -1n;
    expect(page.uints[0]).toBe(2n ** 64n - 1n);
    page.times[1] = 2n ** 32n + 5n;
    expect([page.timesHi[3], page.timesLo[2]]).toEqual([1, 5]);
  });

  // Word by word below 64 values, through views from 64 on: both must keep every bit.
  for (const n of [3, 63, 64, 200]) {
    for (const origins of [false, true]) {
      test(`copies ${n} values between regions bit for bit${origins ? ", origins too" : ""}`, () => {
        const s = new Slab(1024);
        const [from, a] = take(s, n);
        const [to, b] = take(s, n);
        for (let i = 0; i < n; i++) {
          from.times[a + i] = -(2n ** 62n) + BigInt(i) * 0x1_0000_0001n;
          from.ints[a + i] = i % 2 === 0 ? -1n : -BigInt(i); // bit patterns of NaNs
          from.hlcs[a + i] = 2 ** 52 + i;
          from.origins[a + i] = i + 1;
        }
        copyValues(from, a, to, b, n, origins);
        for (let i = 0; i < n; i++) {
          expect([to.times[b + i], to.ints[b + i], to.hlcs[b + i]]).toEqual([from.times[a + i], from.ints[a + i], from.hlcs[a + i]]);
          expect(to.origins[b + i]).toBe(origins ? i + 1 : 0);
        }
      });
    }
  }

  test("the region of an owner collected without giving it back returns", async () => {
    const s = small();
    const owners = 50;
    // In a function of its own, so no reference to the owners stays on this frame.
    (function hold() {
      for (let i = 0; i < owners; i++) {
        const holder = s.holder({});
        const [page, base] = take(s, 4);
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
});
