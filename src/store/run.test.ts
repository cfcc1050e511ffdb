import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { FieldType, FieldValue } from "../lineprotocol/types.ts";
import { mergeRuns, newValues, valueAt, versionOrder, type Run } from "./run.ts";

const order = versionOrder((id) => `node-${id}`);

const valueOf: Record<FieldType, (i: number) => FieldValue> = {
  float: (i) => (i % 7 === 0 ? -0 : i * 1.5),
  integer: (i) => BigInt(i) * -(2n ** 40n),
  unsigned: (i) => BigInt(i) + 2n ** 63n,
  boolean: (i) => i % 3 === 0,
  string: (i) => `s${i}`,
};

/** A run at the given times, values and versions derived from `seed`, one origin or one per value. */
function runAt(type: FieldType, times: readonly number[], seed: number, origins: number | "mixed"): Run {
  const n = times.length;
  const values = newValues(type, n);
  for (let i = 0; i < n; i++) (values as unknown as FieldValue[])[i] = valueOf[type](seed + i);
  return {
    times: BigInt64Array.from(times, (t) => BigInt(t)),
    values,
    hlcs: BigInt64Array.from(times, (_, i) => BigInt((seed + i) * 1024)),
    origins: origins === "mixed" ? Uint16Array.from(times, (_, i) => 1 + ((seed + i) % 3)) : origins,
  };
}

/** Every value of a run as [time, value, version, origin]. */
function rows(r: Run): Array<[bigint, FieldValue, bigint, number]> {
  return Array.from(r.times, (t, i) => [t, valueAt(r.values, i), r.hlcs[i]!, typeof r.origins === "number" ? r.origins : r.origins[i]!]);
}

describe("mergeRuns", () => {
  test("runs in time order with no shared time come back end to end, for every type and origin layout", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<FieldType>("float", "integer", "unsigned", "boolean", "string"),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.constantFrom<number | "mixed">(1, 2, "mixed")), { minLength: 2, maxLength: 6 }),
        (type, shapes) => {
          let t = -1000;
          const runs = shapes.map(([n, origins], k) => {
            const times = Array.from({ length: n }, () => (t += 1 + (k % 3)));
            return runAt(type, times, k * 100, origins);
          });
          const merged = mergeRuns(runs, type, order);
          expect(rows(merged)).toEqual(runs.flatMap(rows));
          // One origin for all values is kept as one number.
          const origins = new Set(runs.flatMap((r) => rows(r).map((row) => row[3])));
          expect(typeof merged.origins === "number").toBe(origins.size === 1);
        },
      ),
    );
  });

  test("runs that share times keep the newest version of each", () => {
    const older = runAt("float", [1, 2, 3], 0, 1);
    const newer = runAt("float", [2, 3, 4], 50, 2);
    const merged = mergeRuns([older, newer], "float", order);
    expect(rows(merged)).toEqual([rows(older)[0]!, ...rows(newer)]);
  });
});
