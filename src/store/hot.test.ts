import { describe, expect, test } from "bun:test";
import type { FieldType, FieldValue } from "../lineprotocol/types.ts";
import { DbEntry, SeriesEntry, UNKNOWN_FIELD_VERSION, type FieldEntry } from "./catalog.ts";
import { HotBuffer } from "./hot.ts";

function buffer(type: FieldType): HotBuffer {
  const db = new DbEntry(1, "db");
  const m = db.measurement("m");
  const field: FieldEntry = { id: 1, name: "v", type, measurement: m, created: UNKNOWN_FIELD_VERSION };
  return new HotBuffer(new SeriesEntry(1, "m", m), field);
}

describe("hot buffers", () => {
  const cases: Array<[string, FieldType, Array<[number, FieldValue]>, number[], boolean]> = [
    ["keep values that arrive in order", "float", [[1, 1.5], [2, 2.5], [3, 3.5]], [1, 2, 3], false],
    ["put late values in their place", "float", [[5, 5], [1, 1], [3, 3], [4, 4], [2, 2]], [1, 2, 3, 4, 5], false],
    ["keep both of two equal times and flag them", "integer", [[2, 2n], [1, 1n], [2, 20n]], [1, 2, 2], true],
    ["order strings too", "string", [[3, "c"], [1, "a"], [2, "b"]], [1, 2, 3], false],
  ];
  for (const [name, type, input, times, dup] of cases) {
    test(name, () => {
      const b = buffer(type);
      for (const [t, v] of input) b.push(BigInt(t), v, t, 1, 1, 0);
      const run = b.snapshot();
      expect([...run.times].map(Number)).toEqual(times);
      expect(b.hasDuplicates).toBe(dup);
      // Each value stayed with its time (the clock was set equal to the time above).
      expect([...run.hlcs].map(Number)).toEqual(times);
    });
  }

  test("grows past its first capacity and keeps every value", () => {
    const b = buffer("float");
    for (let i = 100; i > 0; i--) b.push(BigInt(i), i / 2, 0, 1, 1, 0);
    const run = b.snapshot();
    expect(run.times.length).toBe(100);
    expect((run.values as Float64Array)[99]).toBe(50);
  });

  test("retain drops values and keeps the rest in order", () => {
    const b = buffer("boolean");
    for (let i = 1; i <= 6; i++) b.push(BigInt(i), i % 2 === 0, 0, 1, 1, 0);
    expect(b.retain((t) => t % 3n !== 0n)).toBe(2);
    expect([...b.snapshot().times].map(Number)).toEqual([1, 2, 4, 5]);
    expect(b.snapshot().values).toEqual([false, true, true, false]);
  });

  test("keeps one origin for all values until a second one arrives", () => {
    const b = buffer("float");
    b.push(1n, 1, 10, 3, 1, 0);
    b.push(2n, 2, 11, 3, 1, 0);
    expect(b.snapshot().origins).toBe(3);
    // A late value from another node at an existing time is a conflict; origins split per value.
    expect(b.push(1n, 9, 12, 4, 2, 0)).toBe(true);
    b.push(3n, 3, 13, 4, 2, 0);
    expect([...(b.snapshot().origins as Uint16Array)]).toEqual([3, 4, 3, 4]);
    expect([...b.snapshot().hlcs].map(Number)).toEqual([10, 12, 11, 13]);
    expect(b.originAt(1)).toBe(4);
    expect(b.hlcAt(1)).toBe(12n);
  });

  test("remembers the oldest frame it holds data from, whatever the order frames arrive in", () => {
    const b = buffer("float");
    b.push(2n, 2, 1, 1, 7, 0);
    b.push(1n, 1, 1, 1, 5, 0);
    b.push(3n, 3, 1, 1, 9, 0);
    expect(b.firstSeq).toBe(5);
  });
});
