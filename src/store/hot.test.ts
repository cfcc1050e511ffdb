import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { FieldType, FieldValue } from "../lineprotocol/types.ts";
import { DbEntry, SeriesEntry, UNKNOWN_FIELD_VERSION, type FieldEntry } from "./catalog.ts";
import { HotBuffer } from "./hot.ts";
import type { Run, Values } from "./run.ts";
import { slab } from "./slab.ts";

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

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

/** A value as the buffer should hand it back, compared bit for bit where it is a number. */
function same(a: FieldValue, b: FieldValue): boolean {
  return typeof a === "number" && typeof b === "number" ? Object.is(a, b) : a === b;
}

function valuesOf(v: Values): FieldValue[] {
  return Array.from(v as ArrayLike<FieldValue>);
}

interface Entry {
  time: bigint;
  value: FieldValue;
  hlc: number;
  origin: number;
}

/** The simplest buffer that could work: a sorted list. */
class Model {
  entries: Entry[] = [];
  firstSeq = 0;
  hasDuplicates = false;

  push(e: Entry, seq: number): boolean {
    if (this.entries.length === 0) {
      this.firstSeq = seq;
      this.hasDuplicates = false;
    } else this.firstSeq = Math.min(this.firstSeq, seq);
    let at = this.entries.length;
    while (at > 0 && this.entries[at - 1]!.time > e.time) at--;
    let conflict = false;
    if (at > 0 && this.entries[at - 1]!.time === e.time) {
      this.hasDuplicates = true;
      conflict = this.entries[at - 1]!.origin !== e.origin;
    }
    this.entries.splice(at, 0, e);
    return conflict;
  }

  retain(keep: (time: bigint, hlc: bigint, origin: number) => boolean): number {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => keep(e.time, BigInt(e.hlc), e.origin));
    return before - this.entries.length;
  }

  clear(): void {
    this.entries = [];
    this.firstSeq = 0;
    this.hasDuplicates = false;
  }
}

function expectSameAs(b: HotBuffer, m: Model): void {
  const n = m.entries.length;
  expect(b.length).toBe(n);
  expect(b.hasDuplicates).toBe(m.hasDuplicates);
  expect(b.firstSeq).toBe(m.firstSeq);
  const run: Run = b.snapshot();
  expect(run.times).toEqual(BigInt64Array.from(m.entries, (e) => e.time));
  expect(run.hlcs).toEqual(BigInt64Array.from(m.entries, (e) => BigInt(e.hlc)));
  const values = valuesOf(run.values);
  expect(values.length).toBe(n);
  for (let i = 0; i < n; i++) {
    if (!same(values[i]!, m.entries[i]!.value)) throw new Error(`value ${i}: ${String(values[i])} is not ${String(m.entries[i]!.value)}`);
  }
  if (n > 0) {
    const origins = m.entries.map((e) => e.origin);
    const expected = origins.every((o) => o === origins[0]) ? origins[0] : Uint16Array.from(origins);
    expect(run.origins).toEqual(expected!);
  }
  for (let i = 0; i < n; i++) {
    const e = m.entries[i]!;
    expect([b.timeAt(i), b.hlcAt(i), b.originAt(i)]).toEqual([e.time, BigInt(e.hlc), e.origin]);
  }
}

/** The value a step writes into a buffer of `type`, picked from the step's values of every type. */
interface StepValues {
  float: number;
  integer: bigint;
  unsigned: bigint;
  boolean: boolean;
  string: string;
}

const stepValues: fc.Arbitrary<StepValues> = fc.record({
  float: fc.double(),
  integer: fc.oneof(fc.constantFrom(-1n, I64_MIN, I64_MAX, 0n), fc.bigInt({ min: I64_MIN, max: I64_MAX })),
  unsigned: fc.oneof(fc.constantFrom(U64_MAX, 2n ** 63n, 0n), fc.bigInt({ min: 0n, max: U64_MAX })),
  boolean: fc.boolean(),
  string: fc.string({ maxLength: 4 }),
});

/** Times near a base, so values come late, repeat, and cross zero or a 32-bit word boundary. */
const TIME_BASES = [0n, -20n, 2n ** 32n - 20n, 1_700_000_000_000_000_000n];

type Step =
  | { kind: "push"; buffer: number; offset: number; values: StepValues; origin: number; seq: number }
  | { kind: "clear"; buffer: number }
  | { kind: "retain"; buffer: number; drop: number };

const TYPES: FieldType[] = ["float", "integer", "unsigned", "boolean", "string", "float"];

const steps: fc.Arbitrary<Step[]> = fc.array(
  fc.oneof(
    {
      weight: 30,
      arbitrary: fc.record({
        kind: fc.constant("push" as const),
        buffer: fc.nat(TYPES.length - 1),
        // Mostly a little ahead of the newest value, sometimes behind it.
        offset: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: -6, max: 0 }) }),
        values: stepValues,
        origin: fc.constantFrom(1, 1, 1, 2),
        seq: fc.integer({ min: 1, max: 50 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const), buffer: fc.nat(TYPES.length - 1) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("retain" as const), buffer: fc.nat(TYPES.length - 1), drop: fc.nat(3) }) },
  ),
  { minLength: 20, maxLength: 600, size: "max" },
);

describe("hot buffers in shared slab regions", () => {
  test("an empty buffer holds no region, and clear gives its region back for reuse", () => {
    const before = slab.stats();
    const b = buffer("float");
    expect(slab.stats().regionsInUse).toBe(before.regionsInUse);
    b.push(1n, 1, 1, 1, 1, 0);
    expect(slab.stats().regionsInUse).toBe(before.regionsInUse + 1);
    for (let i = 2; i <= 100; i++) b.push(BigInt(i), i, 1, 1, 1, 0);
    // It moved through several classes and holds only its last region.
    expect(slab.stats().regionsInUse).toBe(before.regionsInUse + 1);
    b.clear();
    expect(slab.stats().regionsInUse).toBe(before.regionsInUse);
    const pages = slab.stats().pages + slab.stats().spares;
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i <= 100; i++) b.push(BigInt(i), i, 1, 1, 1, 0);
      b.clear();
    }
    expect(slab.stats().pages + slab.stats().spares).toBe(pages);
  });

  test("retaining nothing gives the region back too", () => {
    const before = slab.stats().regionsInUse;
    const b = buffer("integer");
    for (let i = 1; i <= 5; i++) b.push(BigInt(i), BigInt(i), 1, 1, 1, 0);
    expect(b.retain(() => false)).toBe(5);
    expect(slab.stats().regionsInUse).toBe(before);
    b.push(7n, 7n, 1, 2, 3, 0);
    expect([...b.snapshot().times]).toEqual([7n]);
    expect(b.snapshot().origins).toBe(2);
  });

  test("grows past every size class, into a page of its own, keeping values and order", () => {
    const b = buffer("float");
    const n = 20_000;
    // Every tenth value is late: it belongs before the two newest.
    for (let i = 0; i < n; i++) {
      const t = i % 10 === 9 ? i - 3 : i;
      b.push(BigInt(t) * 2n + 1n, t / 4, t, 1, 1, 0);
    }
    const run = b.snapshot();
    const times = [...run.times];
    expect(times.length).toBe(n);
    for (let i = 1; i < n; i++) if (times[i - 1]! > times[i]!) throw new Error(`out of order at ${i}`);
    const values = run.values as Float64Array;
    const hlcs = [...run.hlcs];
    for (let i = 0; i < n; i++) {
      const t = Number((times[i]! - 1n) / 2n);
      if (values[i] !== t / 4 || hlcs[i] !== BigInt(t)) throw new Error(`value ${i} left its time`);
    }
    b.clear();
  });

  // Fill a buffer to exactly the size of a class, so the next push moves it, then push a late
  // value and a repeated time from another node.
  const classSizes = [4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256];
  for (const size of classSizes) {
    test(`a late value and a duplicate arriving just as a buffer of ${size} moves land in place`, () => {
      const b = buffer("integer");
      for (let i = 0; i < size; i++) b.push(BigInt(i * 10), BigInt(i * 10), i, 1, 1, 0);
      expect(b.push(15n, -1n, 100, 1, 2, 0)).toBe(false);
      expect(b.push(20n, -2n, 101, 2, 2, 0)).toBe(true);
      const run = b.snapshot();
      const times = [...run.times];
      expect(times.slice(0, 5)).toEqual([0n, 10n, 15n, 20n, 20n]);
      expect(times.length).toBe(size + 2);
      expect(valuesOf(run.values).slice(0, 5)).toEqual([0n, 10n, -1n, 20n, -2n]);
      expect([...(run.origins as Uint16Array)].slice(0, 5)).toEqual([1, 1, 1, 1, 2]);
      expect(b.hasDuplicates).toBe(true);
      b.clear();
    });
  }

  test("a second origin arriving in a later class keeps the first origin of earlier values", () => {
    const b = buffer("float");
    for (let i = 1; i <= 3; i++) b.push(BigInt(i), i, i, 7, 1, 0);
    b.push(4n, 4, 4, 9, 1, 0);
    for (let i = 5; i <= 9; i++) b.push(BigInt(i), i, i, 7, 1, 0);
    expect([...(b.snapshot().origins as Uint16Array)]).toEqual([7, 7, 7, 9, 7, 7, 7, 7, 7]);
    b.clear();
  });

  const snapshotCases: Array<[string, FieldType, FieldValue[]]> = [
    ["floats, NaN and -0 included", "float", [1.5, Number.NaN, -0, Number.POSITIVE_INFINITY, -1e300]],
    ["integers whose bits look like NaN", "integer", [-1n, I64_MIN, I64_MAX, -(2n ** 52n), 0n]],
    ["unsigned up to the largest", "unsigned", [U64_MAX, 2n ** 63n, 0n, 2n ** 64n - 2n ** 11n, 1n]],
    ["booleans", "boolean", [true, false, false, true, true]],
    ["strings", "string", ["a", "", "ccc", "d d", "é"]],
  ];
  for (const [name, type, vals] of snapshotCases) {
    test(`snapshots give back ${name}, through late inserts, a move and a retain`, () => {
      const b = buffer(type);
      // Times 5, 4, ... 1: every push after the first is late and shifts the others.
      for (let i = 0; i < vals.length; i++) b.push(BigInt(5 - i), vals[i]!, i, 1, 1, 0);
      const back = valuesOf(b.snapshot().values);
      const want = [...vals].reverse();
      for (let i = 0; i < want.length; i++) expect(same(back[i]!, want[i]!)).toBe(true);
      expect(b.retain((t) => t !== 2n)).toBe(1);
      const kept = valuesOf(b.snapshot().values);
      const wantKept = want.filter((_, i) => i !== 1);
      for (let i = 0; i < wantKept.length; i++) expect(same(kept[i]!, wantKept[i]!)).toBe(true);
      b.clear();
    });
  }

  test("buffers of every type, pushed, cleared and retained in any interleaving, match a sorted list", () => {
    fc.assert(
      fc.property(fc.constantFrom(...TIME_BASES), steps, (timeBase, plan) => {
        const buffers = TYPES.map((t) => buffer(t));
        const models = TYPES.map(() => new Model());
        const newest = TYPES.map(() => 0);
        let hlc = 0;
        for (const step of plan) {
          const b = buffers[step.buffer]!;
          const m = models[step.buffer]!;
          if (step.kind === "push") {
            newest[step.buffer] = Math.max(0, newest[step.buffer]! + step.offset);
            const time = timeBase + BigInt(newest[step.buffer]!);
            const value = step.values[TYPES[step.buffer]!];
            const e = { time, value, hlc: ++hlc, origin: step.origin };
            expect(b.push(time, value, e.hlc, e.origin, step.seq, 0)).toBe(m.push(e, step.seq));
          } else if (step.kind === "clear") {
            b.clear();
            m.clear();
          } else {
            // Both are asked about every value once, in order.
            const asked: Array<Array<[bigint, bigint, number]>> = [[], []];
            const keeper = (k: number) => (t: bigint, h: bigint, o: number) => {
              asked[k]!.push([t, h, o]);
              return (t + h + BigInt(o)) % 4n !== BigInt(step.drop);
            };
            expect(b.retain(keeper(0))).toBe(m.retain(keeper(1)));
            expect(asked[0]).toEqual(asked[1]!);
          }
        }
        for (let i = 0; i < buffers.length; i++) {
          expectSameAs(buffers[i]!, models[i]!);
          buffers[i]!.clear();
        }
      }),
      { numRuns: 150 },
    );
  });
});
