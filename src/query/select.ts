/**
 * SELECT: plans a statement against the catalogue, reads the runs it needs from the store
 * (chunks and hot buffers, merged by the store) and shapes InfluxDB 1.x's answer.
 *
 * Two shapes of query, as in InfluxQL:
 * - raw (no functions): one row per series and timestamp where a selected field has a value;
 * - aggregate: one row per GROUP BY time() bucket (or one row when there is no interval),
 *   per group of series (GROUP BY tags), with fill() for empty buckets.
 *
 * Reading happens first, series by series, with a yield to the event loop every few
 * milliseconds so ingest (which shares the thread) is never held up for long, and with the
 * point and series limits checked as data arrives so a runaway query fails fast.
 */
import { SELECTORS, type Dimension, type Expr, type SelectStatement } from "../influxql/ast.ts";
import { TsdbError } from "../errors.ts";
import type { DbEntry, FieldEntry, MeasurementEntry, SeriesEntry } from "../store/catalog.ts";
import type { Run } from "../store/run.ts";
import { binaryOp, clampBounds, fieldsIn, reduceForSeries, regexOf, rowMatches, splitTime, type NameKind, type RowScope } from "./condition.ts";
import { ACCEPTS, FUNCTIONS, newAccumulator, type Accumulator } from "./reducers.ts";
import type { Cell, QueryLimits, QueryStore, ResultSeries } from "./result.ts";
import { windowStart, zoneOf, type Zone } from "./time.ts";
import { TimeSlice } from "../runtime/slice.ts";

export interface ExecContext {
  readonly store: QueryStore;
  /** The `db` and `rp` request parameters (defaults for sources without them). */
  readonly db: string | null;
  readonly rp: string | null;
  readonly nowNs: bigint;
  readonly limits: QueryLimits;
  /** Lets other work (ingest) run; called every few milliseconds of query work. */
  readonly pause: () => Promise<void>;
  readonly signal?: AbortSignal;
}

/** How long query work may run before yielding to the event loop. */
const SLICE_MS = 4;

/** Calls the pause hook when the current slice of work is used up. */
export class Slicer {
  private readonly slice: TimeSlice;
  constructor(private readonly ctx: ExecContext) {
    this.slice = new TimeSlice(SLICE_MS, ctx.pause);
  }
  async tick(): Promise<void> {
    if (!this.slice.due) return;
    if (this.ctx.signal?.aborted) throw new TsdbError("bad_request", "query cancelled: the client went away");
    await this.slice.pause();
  }
}

/** Retention policies: only InfluxDB's default exists (see store). */
export function checkRp(rp: string | null): void {
  if (rp !== null && rp !== "" && rp !== "autogen") throw new TsdbError("not_found", `retention policy not found: ${rp}`);
}

/** The database a statement reads: its own, else the request's; unknown ones are errors. */
export function resolveDb(ctx: ExecContext, name: string | null): DbEntry {
  const db = name ?? ctx.db;
  if (db === null || db === "") throw new TsdbError("bad_request", "database name required");
  const entry = ctx.store.database(db);
  if (entry === undefined) throw new TsdbError("not_found", `database not found: ${db}`);
  return entry;
}

/** Internal column expression, compiled per measurement. */
type Out =
  | { readonly t: "call"; readonly idx: number }
  | { readonly t: "field"; readonly name: string }
  | { readonly t: "tag"; readonly name: string }
  | { readonly t: "lit"; readonly value: Cell }
  | { readonly t: "bin"; readonly op: string; readonly l: Out; readonly r: Out };

/** One aggregate/selector call resolved to a field of the measurement. */
interface CallSpec {
  readonly fn: string;
  readonly field: FieldEntry | null;
  readonly percentile: number;
  readonly countDistinct: boolean;
}

interface MeasurementPlan {
  readonly m: MeasurementEntry;
  readonly columns: string[];
  readonly outs: Out[];
  readonly calls: CallSpec[];
  readonly kind: NameKind;
  /** Fields whose values must be read for each matching series. */
  readonly fields: FieldEntry[];
  /** Fields whose presence makes a raw row (selected fields, not condition-only ones). */
  readonly selected: Set<string>;
  readonly groups: Group[];
}

interface SeriesData {
  readonly s: SeriesEntry;
  /** null: no per-row condition. */
  readonly residual: Expr | null;
  readonly runs: Map<string, Run>;
}

interface Group {
  readonly key: string;
  readonly tags: Record<string, string>;
  readonly series: SeriesData[];
}

/** Executes one SELECT statement. */
export async function executeSelect(stmt: SelectStatement, ctx: ExecContext): Promise<ResultSeries[]> {
  const interval = stmt.dimensions.find((d) => d.kind === "time") as (Dimension & { kind: "time" }) | undefined;
  const shape = classify(stmt);
  if (interval !== undefined && shape.kind === "raw") throw new TsdbError("bad_request", "GROUP BY requires at least one aggregate function");
  const { bounds, rest } = splitTime(stmt.condition, ctx.nowNs);
  const zone = stmt.tz === null ? null : zoneOf(stmt.tz);
  const slicer = new Slicer(ctx);

  // Time range: InfluxDB ends GROUP BY time() queries at now() unless told otherwise.
  let { lo, hi } = clampBounds(bounds);
  if (interval !== undefined && bounds.hi === null) hi = ctx.nowNs;

  // Plan every measurement (schema-dependent expansion), then read.
  const plans: MeasurementPlan[] = [];
  let seriesCount = 0;
  for (const { db, m } of measurementsOf(stmt, ctx)) {
    const plan = planMeasurement(stmt, shape, db, m, rest);
    if (plan === null) continue;
    for (const g of plan.groups) seriesCount += g.series.length;
    if (seriesCount > ctx.limits.maxSelectSeries) {
      throw new TsdbError("bad_request", `max-select-series limit exceeded: the query reads more than ${ctx.limits.maxSelectSeries} series (${seriesCount} so far); narrow the WHERE clause or raise --max-select-series`);
    }
    plans.push(plan);
  }

  let points = 0;
  let minTime: bigint | null = null;
  if (lo <= hi) {
    for (const plan of plans) {
      for (const g of plan.groups) {
        for (const sd of g.series) {
          for (const f of plan.fields) {
            const run = ctx.store.readRun(sd.s, f, lo, hi);
            if (run.times.length === 0) continue;
            sd.runs.set(f.name, run);
            points += run.times.length;
            if (minTime === null || run.times[0]! < minTime) minTime = run.times[0]!;
          }
          if (points > ctx.limits.maxSelectPoints) {
            throw new TsdbError("bad_request", `max-select-point limit exceeded: the query reads more than ${ctx.limits.maxSelectPoints} points; narrow the time range or WHERE clause, or raise --max-select-points`);
          }
          await slicer.tick();
        }
      }
    }
  }

  const out: ResultSeries[] = [];
  if (shape.kind === "raw") {
    for (const plan of plans) {
      for (const g of plan.groups) {
        const s = rawSeries(plan, g, stmt);
        if (s !== null) out.push(s);
        await slicer.tick();
      }
    }
  } else {
    // Without a lower bound, buckets start at the earliest point read (as InfluxDB does).
    if (interval !== undefined && bounds.lo === null) {
      if (minTime === null) return [];
      lo = minTime;
    }
    const buckets = interval === undefined ? null : makeBuckets(lo, hi, interval.interval, interval.offset, zone, ctx.limits, plans);
    for (const plan of plans) {
      for (const g of plan.groups) {
        const s = aggregateSeries(plan, g, stmt, shape, buckets, bounds.lo === null ? 0n : lo);
        if (s !== null) out.push(s);
        await slicer.tick();
      }
    }
  }
  let series = stmt.descending ? out.reverse() : out;
  if (stmt.soffset > 0 || stmt.slimit > 0) series = series.slice(stmt.soffset, stmt.slimit > 0 ? stmt.soffset + stmt.slimit : undefined);
  return series;
}

// ---- planning ----

interface Shape {
  readonly kind: "raw" | "aggregate";
  /** True when the only function is one selector (its point's time and columns are shown). */
  readonly singleSelector: boolean;
  readonly distinct: boolean;
}

function calls(e: Expr, out: Array<Expr & { kind: "call" }> = []): Array<Expr & { kind: "call" }> {
  if (e.kind === "call") out.push(e);
  else if (e.kind === "binary") {
    calls(e.lhs, out);
    calls(e.rhs, out);
  } else if (e.kind === "paren") calls(e.expr, out);
  return out;
}

/** True when the expression has a field/tag reference outside any function call. */
function hasBareRef(e: Expr): boolean {
  switch (e.kind) {
    case "var":
    case "wildcard":
    case "regex":
      return true;
    case "binary":
      return hasBareRef(e.lhs) || hasBareRef(e.rhs);
    case "paren":
      return hasBareRef(e.expr);
    default:
      return false;
  }
}

/** Validates the field list and decides raw vs aggregate, as InfluxQL's compiler does. */
function classify(stmt: SelectStatement): Shape {
  const all = stmt.fields.flatMap((f) => calls(f.expr));
  for (const c of all) validateCall(c);
  if (all.length === 0) return { kind: "raw", singleSelector: false, distinct: false };
  const topDistinct = stmt.fields.some((f) => unparen(f.expr).kind === "call" && (unparen(f.expr) as { name: string }).name === "distinct");
  if (topDistinct && stmt.fields.length > 1) throw new TsdbError("bad_request", "aggregate function distinct() cannot be combined with other functions or fields");
  for (const c of all) {
    if (c.name === "distinct" && !topDistinct) {
      throw new TsdbError("bad_request", "distinct() can only be used alone or inside count()");
    }
  }
  const bare = stmt.fields.some((f) => hasBareRef(f.expr));
  const single = all.length === 1 && SELECTORS.has(all[0]!.name);
  if (bare) {
    if (!single) {
      if (all.length > 1 && all.every((c) => SELECTORS.has(c.name))) {
        throw new TsdbError("bad_request", "mixing multiple selector functions with tags or fields is not supported");
      }
      throw new TsdbError("bad_request", "mixing aggregate and non-aggregate queries is not supported");
    }
    for (const f of stmt.fields) {
      const u = unparen(f.expr);
      if (u.kind !== "call" && u.kind !== "var" && u.kind !== "wildcard" && u.kind !== "regex") {
        throw new TsdbError("bad_request", "only plain fields and tags can be shown next to a selector");
      }
    }
  }
  const singleSelector = single && stmt.fields.filter((f) => unparen(f.expr).kind === "call").length === 1 && unparen(stmt.fields.find((f) => calls(f.expr).length > 0)!.expr).kind === "call";
  return { kind: "aggregate", singleSelector, distinct: topDistinct };
}

const UNSUPPORTED_HINT = "tsdb-pair supports mean, median, mode, sum, count, min, max, first, last, spread, stddev, percentile and distinct";

function validateCall(c: Expr & { kind: "call" }): void {
  if (c.name === "now") throw new TsdbError("bad_request", "now() can only be used in a WHERE time condition");
  if (!FUNCTIONS.has(c.name)) throw new TsdbError("bad_request", `unsupported function: ${c.name}() (${UNSUPPORTED_HINT})`);
  const want = c.name === "percentile" ? 2 : 1;
  if (c.args.length !== want) throw new TsdbError("bad_request", `invalid number of arguments for ${c.name}, expected ${want}, got ${c.args.length}`);
  const arg = unparen(c.args[0]!);
  if (c.name === "count" && arg.kind === "call") {
    if (arg.name !== "distinct") throw new TsdbError("bad_request", `expected field argument in count(), found ${arg.name}()`);
    if (arg.args.length !== 1 || unparen(arg.args[0]!).kind !== "var") throw new TsdbError("bad_request", "distinct() inside count() takes one field");
    return;
  }
  if (arg.kind !== "var" && arg.kind !== "wildcard" && arg.kind !== "regex") {
    throw new TsdbError("bad_request", `expected field argument in ${c.name}()`);
  }
  if (c.name === "distinct" && arg.kind !== "var") throw new TsdbError("bad_request", "distinct() takes one field");
  if (c.name === "percentile") {
    const p = unparen(c.args[1]!);
    if (p.kind !== "integer" && p.kind !== "number") throw new TsdbError("bad_request", `expected float argument in percentile()`);
  }
}

function unparen(e: Expr): Expr {
  return e.kind === "paren" ? unparen(e.expr) : e;
}

/** The measurements a SELECT reads, sorted by name per source; named ones must exist. */
function* measurementsOf(stmt: SelectStatement, ctx: ExecContext): Generator<{ db: DbEntry; m: MeasurementEntry }> {
  const seen = new Set<MeasurementEntry>();
  const found: Array<{ db: DbEntry; m: MeasurementEntry }> = [];
  for (const src of stmt.sources) {
    checkRp(src.rp ?? ctx.rp);
    const db = resolveDb(ctx, src.db);
    if (src.regex !== null) {
      const re = regexOf(src.regex);
      for (const m of db.measurements.values()) {
        if (re.test(m.name) && !seen.has(m)) {
          seen.add(m);
          found.push({ db, m });
        }
      }
    } else {
      const m = db.measurements.get(src.name!);
      // InfluxDB answers an empty result here; a typo in a dashboard is easier to find with an error.
      if (m === undefined) throw new TsdbError("not_found", `measurement not found: ${JSON.stringify(src.name)} in database ${JSON.stringify(db.name)}`);
      if (!seen.has(m)) {
        seen.add(m);
        found.push({ db, m });
      }
    }
  }
  found.sort((a, b) => (a.m.name < b.m.name ? -1 : a.m.name > b.m.name ? 1 : 0));
  yield* found;
}

/** Tag keys present in a measurement's series, sorted. */
export function tagKeysOf(m: MeasurementEntry): string[] {
  const keys = new Set<string>();
  for (const s of m.series) for (const [k] of s.tags) keys.add(k);
  return [...keys].sort();
}

/** InfluxQL's column name for a field expression (`mean(v) * 2` is "mean", `a + b` is "a_b"). */
function exprName(e: Expr): string {
  switch (e.kind) {
    case "var":
      return e.name;
    case "call":
      return e.name;
    case "paren":
      return exprName(e.expr);
    case "binary": {
      const l = exprName(e.lhs);
      const r = exprName(e.rhs);
      return l !== "" && r !== "" ? `${l}_${r}` : l + r;
    }
    default:
      return "";
  }
}

/** Makes column names unique the way InfluxDB does: the second "v" becomes "v_1". */
function uniqueNames(names: string[]): string[] {
  const used = new Set<string>(["time"]);
  const counts = new Map<string, number>();
  return names.map((n) => {
    if (!used.has(n)) {
      used.add(n);
      return n;
    }
    let k = counts.get(n) ?? 1;
    while (used.has(`${n}_${k}`)) k++;
    counts.set(n, k + 1);
    used.add(`${n}_${k}`);
    return `${n}_${k}`;
  });
}

function planMeasurement(stmt: SelectStatement, shape: Shape, _db: DbEntry, m: MeasurementEntry, rest: Expr | null): MeasurementPlan | null {
  const kind: NameKind = (name, cast) => (cast === "tag" ? "tag" : cast === "field" ? "field" : m.fields.has(name) ? "field" : "tag");
  const dims = groupTags(stmt.dimensions, m);
  const dimSet = new Set(dims);
  const names: string[] = [];
  const outs: Out[] = [];
  const callSpecs: CallSpec[] = [];
  const tagKeys = () => tagKeysOf(m);

  /** `*`, `*::field`, `*::tag` or a regex in the field list: fields and tags, sorted, grouped tags left out. */
  const expand = (cast: "field" | "tag" | undefined, re: RegExp | null) => {
    const cols: Array<{ name: string; out: Out; order: number }> = [];
    if (cast !== "tag") for (const f of m.fields.values()) if (!re || re.test(f.name)) cols.push({ name: f.name, out: { t: "field", name: f.name }, order: 0 });
    if (cast !== "field") for (const k of tagKeys()) if (!dimSet.has(k) && (!re || re.test(k))) cols.push({ name: k, out: { t: "tag", name: k }, order: 1 });
    cols.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.order - b.order));
    for (const c of cols) {
      names.push(c.name);
      outs.push(c.out);
    }
  };

  const compile = (e: Expr): Out => {
    switch (e.kind) {
      case "paren":
        return compile(e.expr);
      case "var":
        return kind(e.name, e.cast) === "field" ? { t: "field", name: e.name } : { t: "tag", name: e.name };
      case "integer":
        return { t: "lit", value: e.value };
      case "number":
        return { t: "lit", value: e.value };
      case "string":
        return { t: "lit", value: e.value };
      case "bool":
        return { t: "lit", value: e.value };
      case "duration":
        return { t: "lit", value: e.ns };
      case "binary":
        if (["AND", "OR", "=", "!=", "<", "<=", ">", ">=", "=~", "!~"].includes(e.op)) {
          throw new TsdbError("bad_request", `comparison operators are not supported in the field list: ${e.op}`);
        }
        return { t: "bin", op: e.op, l: compile(e.lhs), r: compile(e.rhs) };
      case "call": {
        const spec = callSpec(e, m, kind);
        if (spec.length !== 1) throw new TsdbError("bad_request", `${e.name}(*) and regex arguments cannot be used inside arithmetic`);
        callSpecs.push(spec[0]!);
        return { t: "call", idx: callSpecs.length - 1 };
      }
      case "wildcard":
      case "regex":
        throw new TsdbError("bad_request", "a wildcard or regex cannot be used inside arithmetic");
    }
  };

  for (const f of stmt.fields) {
    const e = unparen(f.expr);
    if (e.kind === "wildcard") {
      expand(e.cast, null);
      continue;
    }
    if (e.kind === "regex") {
      expand(undefined, regexOf(e.source));
      continue;
    }
    if (e.kind === "call" && (unparen(e.args[0]!).kind === "wildcard" || unparen(e.args[0]!).kind === "regex")) {
      // mean(*) and mean(/re/): one column per field the function accepts, named mean_<field>.
      for (const spec of callSpec(e, m, kind)) {
        callSpecs.push(spec);
        outs.push({ t: "call", idx: callSpecs.length - 1 });
        names.push(f.alias !== null ? f.alias : `${e.name}_${spec.field!.name}`);
      }
      continue;
    }
    outs.push(compile(f.expr));
    names.push(f.alias ?? exprName(f.expr));
  }
  if (outs.length === 0) return null;

  // Which fields to read.
  const selected = new Set<string>();
  const visit = (o: Out) => {
    if (o.t === "field") selected.add(o.name);
    else if (o.t === "bin") {
      visit(o.l);
      visit(o.r);
    }
  };
  outs.forEach(visit);
  if (shape.kind === "raw" && ![...selected].some((n) => m.fields.has(n))) return null;
  if (shape.kind === "aggregate" && !callSpecs.some((c) => c.field !== null)) return null;

  const condFields = fieldsIn(rest, kind);
  const needed = new Set<string>([...selected, ...condFields]);
  for (const c of callSpecs) if (c.field !== null) needed.add(c.field.name);
  const fields = [...needed].map((n) => m.fields.get(n)).filter((f): f is FieldEntry => f !== undefined);

  // Series that pass the tag conditions, grouped by the GROUP BY tags.
  const groups = new Map<string, Group>();
  for (const s of candidateSeries(m, rest, kind)) {
    const r = rest === null ? true : reduceForSeries(rest, s, kind);
    if (r === false) continue;
    const values = dims.map((k) => s.tag(k));
    const key = values.join("\u0000");
    let g = groups.get(key);
    if (g === undefined) {
      const tags: Record<string, string> = {};
      dims.forEach((k, i) => (tags[k] = values[i]!));
      g = { key, tags, series: [] };
      groups.set(key, g);
    }
    g.series.push({ s, residual: r === true ? null : r, runs: new Map() });
  }
  const sorted = [...groups.values()].sort((a, b) => cmpKeys(a.key, b.key));
  for (const g of sorted) g.series.sort((a, b) => (a.s.key < b.s.key ? -1 : a.s.key > b.s.key ? 1 : 0));
  return { m, columns: uniqueNames(names), outs, calls: callSpecs, kind, fields, selected, groups: sorted };
}

/** Inverted index of one measurement's tags, rebuilt when its series list changes. */
interface TagIndex {
  readonly signature: string;
  readonly byKey: Map<string, Map<string, SeriesEntry[]>>;
}

const tagIndexes = new WeakMap<MeasurementEntry, TagIndex>();

function signatureOf(m: MeasurementEntry): string {
  const n = m.series.length;
  return n === 0 ? "0" : `${n}:${m.series[0]!.id}:${m.series[n - 1]!.id}`;
}

/** Series of `m` whose tag `key` equals `value`, from a cached index (one scan per key and catalogue change). */
function seriesWithTag(m: MeasurementEntry, key: string, value: string): readonly SeriesEntry[] {
  const signature = signatureOf(m);
  let idx = tagIndexes.get(m);
  if (idx === undefined || idx.signature !== signature) {
    idx = { signature, byKey: new Map() };
    tagIndexes.set(m, idx);
  }
  let byValue = idx.byKey.get(key);
  if (byValue === undefined) {
    byValue = new Map();
    for (const s of m.series) {
      const v = s.tag(key);
      let list = byValue.get(v);
      if (list === undefined) byValue.set(v, (list = []));
      list.push(s);
    }
    idx.byKey.set(key, byValue);
  }
  return byValue.get(value) ?? [];
}

/**
 * The series worth testing against a condition: when the condition is an AND of terms and
 * one of them is `tag = 'value'` (Grafana's one-host panels), only that tag value's series.
 */
function candidateSeries(m: MeasurementEntry, rest: Expr | null, kind: NameKind): readonly SeriesEntry[] {
  if (rest === null) return m.series;
  let best: readonly SeriesEntry[] = m.series;
  const visit = (e: Expr) => {
    const u = unparen(e);
    if (u.kind === "binary" && u.op === "AND") {
      visit(u.lhs);
      visit(u.rhs);
      return;
    }
    if (u.kind !== "binary" || u.op !== "=") return;
    const l = unparen(u.lhs);
    const r = unparen(u.rhs);
    const [tag, lit] = l.kind === "var" && r.kind === "string" ? [l, r] : r.kind === "var" && l.kind === "string" ? [r, l] : [null, null];
    if (tag === null || lit === null || tag.kind !== "var" || lit.kind !== "string") return;
    if (kind(tag.name, tag.cast) !== "tag") return;
    const hits = seriesWithTag(m, tag.name, lit.value);
    if (hits.length < best.length) best = hits;
  };
  visit(rest);
  return best;
}

function cmpKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The tag keys a statement groups by for one measurement, sorted. */
function groupTags(dims: readonly Dimension[], m: MeasurementEntry): string[] {
  const keys = new Set<string>();
  for (const d of dims) {
    if (d.kind === "tag") keys.add(d.name);
    else if (d.kind === "wildcard") for (const k of tagKeysOf(m)) keys.add(k);
    else if (d.kind === "regex") {
      const re = regexOf(d.source);
      for (const k of tagKeysOf(m)) if (re.test(k)) keys.add(k);
    }
  }
  return [...keys].sort();
}

/** Resolves a call's argument to the measurement's fields (several for `*` and regexes). */
function callSpec(c: Expr & { kind: "call" }, m: MeasurementEntry, kind: NameKind): CallSpec[] {
  let arg = unparen(c.args[0]!);
  const countDistinct = c.name === "count" && arg.kind === "call";
  if (arg.kind === "call") arg = unparen(arg.args[0]!);
  const percentile = c.name === "percentile" ? Number((unparen(c.args[1]!) as { value: number | bigint }).value) : 0;
  const accepts = ACCEPTS[c.name]!;
  if (arg.kind === "var") {
    if (kind(arg.name, arg.cast) === "tag") return [{ fn: c.name, field: null, percentile, countDistinct }];
    const field = m.fields.get(arg.name) ?? null;
    if (field !== null && !accepts.has(field.type)) {
      throw new TsdbError("bad_request", `${c.name}() cannot be applied to ${field.type} field ${JSON.stringify(field.name)}`);
    }
    return [{ fn: c.name, field, percentile, countDistinct }];
  }
  const re = arg.kind === "regex" ? regexOf(arg.source) : null;
  const out: CallSpec[] = [];
  const fields = [...m.fields.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const f of fields) {
    if (re !== null && !re.test(f.name)) continue;
    if (arg.kind === "wildcard" && arg.cast === "tag") continue;
    if (!accepts.has(f.type)) continue;
    out.push({ fn: c.name, field: f, percentile, countDistinct });
  }
  return out;
}

// ---- raw queries ----

/** Values of one series' fields at one time, for conditions and column expressions. */
class SeriesRow implements RowScope {
  time = 0n;
  readonly values = new Map<string, Cell>();
  constructor(readonly s: SeriesEntry) {}
  field(name: string): Cell {
    return this.values.get(name) ?? null;
  }
  tag(name: string): string {
    return this.s.tag(name);
  }
}

function evalOut(o: Out, row: RowScope, callResults: readonly Cell[] | null): Cell {
  switch (o.t) {
    case "lit":
      return o.value;
    case "field":
      return row.field(o.name);
    case "tag": {
      const v = row.tag(o.name);
      // A missing tag shows as null in columns (it reads as "" in conditions).
      return v === "" ? null : v;
    }
    case "call":
      return callResults === null ? null : (callResults[o.idx] ?? null);
    case "bin":
      return binaryOp(o.op, evalOut(o.l, row, callResults), evalOut(o.r, row, callResults));
  }
}

/** Walks the runs of one series' fields in time order, one row per distinct timestamp. */
function* seriesRows(sd: SeriesData, fields: readonly FieldEntry[]): Generator<SeriesRow> {
  const cols: Array<{ name: string; run: Run; at: number }> = [];
  for (const f of fields) {
    const run = sd.runs.get(f.name);
    if (run !== undefined && run.times.length > 0) cols.push({ name: f.name, run, at: 0 });
  }
  const row = new SeriesRow(sd.s);
  if (cols.length === 1) {
    const c = cols[0]!;
    for (let i = 0; i < c.run.times.length; i++) {
      row.time = c.run.times[i]!;
      row.values.set(c.name, c.run.values[i]!);
      yield row;
    }
    return;
  }
  for (;;) {
    let t: bigint | null = null;
    for (const c of cols) if (c.at < c.run.times.length && (t === null || c.run.times[c.at]! < t)) t = c.run.times[c.at]!;
    if (t === null) return;
    row.time = t;
    row.values.clear();
    for (const c of cols) {
      if (c.at < c.run.times.length && c.run.times[c.at] === t) {
        row.values.set(c.name, c.run.values[c.at]!);
        c.at++;
      }
    }
    yield row;
  }
}

function rawSeries(plan: MeasurementPlan, g: Group, stmt: SelectStatement): ResultSeries | null {
  const rows: Cell[][] = [];
  for (const sd of g.series) {
    if (sd.runs.size === 0) continue;
    for (const row of seriesRows(sd, plan.fields)) {
      let any = false;
      for (const n of plan.selected) if (row.values.has(n)) any = true;
      if (!any) continue;
      if (sd.residual !== null && !rowMatches(sd.residual, row, plan.kind)) continue;
      const cells: Cell[] = [row.time];
      for (const o of plan.outs) cells.push(evalOut(o, row, null));
      rows.push(cells);
    }
  }
  if (rows.length === 0) return null;
  // Rows of several series merge by time; the sort is stable, so ties keep series-key order.
  if (g.series.length > 1) rows.sort((a, b) => ((a[0] as bigint) < (b[0] as bigint) ? -1 : (a[0] as bigint) > (b[0] as bigint) ? 1 : 0));
  if (stmt.descending) rows.reverse();
  const values = page(rows, stmt.offset, stmt.limit);
  if (values.length === 0) return null;
  return seriesOf(plan, g, values);
}

function page<T>(rows: T[], offset: number, limit: number): T[] {
  if (offset === 0 && limit === 0) return rows;
  return rows.slice(offset, limit > 0 ? offset + limit : undefined);
}

function seriesOf(plan: MeasurementPlan, g: Group, values: Cell[][]): ResultSeries {
  const hasTags = Object.keys(g.tags).length > 0;
  return {
    name: plan.m.name,
    ...(hasTags ? { tags: g.tags } : {}),
    columns: ["time", ...plan.columns],
    timeColumn: true,
    values,
  };
}

// ---- aggregates ----

/** The GROUP BY time() buckets of a query: their start times and a point-to-bucket mapping. */
interface Buckets {
  readonly starts: bigint[];
  readonly first: bigint;
  readonly interval: bigint;
  /** Uniform windows (no time zone): bucket = (t - first) / interval. */
  readonly uniform: boolean;
}

function makeBuckets(lo: bigint, hi: bigint, interval: bigint, offset: bigint, zone: Zone | null, limits: QueryLimits, plans: MeasurementPlan[]): Buckets {
  const first = windowStart(lo, interval, offset, zone);
  const last = windowStart(hi, interval, offset, zone);
  const estimate = (last - first) / interval + 1n;
  let groups = 0;
  for (const p of plans) groups += p.groups.filter((g) => g.series.some((s) => s.runs.size > 0)).length;
  const total = estimate * BigInt(Math.max(groups, 1));
  // Checked before anything is allocated: GROUP BY time(1ns) over a year must fail at once.
  if (estimate > BigInt(limits.maxSelectPoints) || total > BigInt(limits.maxSelectPoints)) {
    throw new TsdbError(
      "bad_request",
      `max-select-buckets limit exceeded: GROUP BY time(${interval}ns) over this range makes ${estimate} buckets per series (${total} in all), more than the max-select-points limit of ${limits.maxSelectPoints}; use a larger interval or a shorter range`,
    );
  }
  const starts: bigint[] = [];
  if (zone === null) {
    for (let s = first; s <= last; s += interval) starts.push(s);
    return { starts, first, interval, uniform: true };
  }
  for (let s = first; s <= last; ) {
    starts.push(s);
    let next = windowStart(s + interval, interval, offset, zone);
    if (next <= s) next = s + interval;
    s = next;
  }
  return { starts, first, interval, uniform: false };
}

/** Bucket index of every time in a run. */
function bucketIndexes(times: BigInt64Array, buckets: Buckets | null): Int32Array {
  const n = times.length;
  const out = new Int32Array(n);
  if (buckets === null || n === 0) return out;
  const count = buckets.starts.length;
  if (buckets.uniform && times[n - 1]! - buckets.first < 2n ** 52n && times[0]! >= buckets.first && buckets.interval < 2n ** 52n) {
    // Exact in doubles: time offsets below 2^52 ns (52 days) and whole-number division checked below.
    const first = buckets.first;
    const iv = Number(buckets.interval);
    const words = new Uint32Array(times.buffer, times.byteOffset, n * 2);
    const hiWords = new Int32Array(times.buffer, times.byteOffset, n * 2);
    const fLo = Number(BigInt.asUintN(32, first));
    const fHi = Number(BigInt.asIntN(32, first >> 32n));
    for (let i = 0; i < n; i++) {
      const rel = (hiWords[2 * i + 1]! - fHi) * 4294967296 + (words[2 * i]! - fLo);
      let b = Math.floor(rel / iv);
      if (b * iv > rel) b--;
      else if ((b + 1) * iv <= rel) b++;
      out[i] = b < count ? b : count - 1;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const t = times[i]!;
    if (buckets.uniform) {
      const b = Number((t - buckets.first) / buckets.interval);
      out[i] = Math.min(Math.max(b, 0), count - 1);
    } else {
      let a = 0;
      let z = count - 1;
      while (a < z) {
        const mid = (a + z + 1) >> 1;
        if (buckets.starts[mid]! <= t) a = mid;
        else z = mid - 1;
      }
      out[i] = a;
    }
  }
  return out;
}

/** Times of the rows of one series that pass its residual condition (for masking runs). */
function passingTimes(sd: SeriesData, plan: MeasurementPlan): Set<bigint> {
  const pass = new Set<bigint>();
  for (const row of seriesRows(sd, plan.fields)) if (rowMatches(sd.residual!, row, plan.kind)) pass.add(row.time);
  return pass;
}

function aggregateSeries(plan: MeasurementPlan, g: Group, stmt: SelectStatement, shape: Shape, buckets: Buckets | null, rangeStart: bigint): ResultSeries | null {
  const nb = buckets === null ? 1 : buckets.starts.length;
  const accs: Array<Accumulator | null> = plan.calls.map((c) =>
    c.field === null ? null : newAccumulator(c.fn, c.field.type, nb, { percentile: c.percentile, countDistinct: c.countDistinct }),
  );
  const hasData = new Uint8Array(nb);
  let anyData = false;
  for (let si = 0; si < g.series.length; si++) {
    const sd = g.series[si]!;
    if (sd.runs.size === 0) continue;
    const pass = sd.residual === null ? null : passingTimes(sd, plan);
    const bidxByField = new Map<string, { bidx: Int32Array; mask: Uint8Array | null }>();
    for (let c = 0; c < plan.calls.length; c++) {
      const spec = plan.calls[c]!;
      const acc = accs[c];
      if (acc === null || acc === undefined || spec.field === null) continue;
      const run = sd.runs.get(spec.field.name);
      if (run === undefined) continue;
      let prepared = bidxByField.get(spec.field.name);
      if (prepared === undefined) {
        const bidx = bucketIndexes(run.times, buckets);
        let mask: Uint8Array | null = null;
        if (pass !== null) {
          mask = new Uint8Array(run.times.length);
          for (let i = 0; i < mask.length; i++) mask[i] = pass.has(run.times[i]!) ? 1 : 0;
        }
        for (let i = 0; i < bidx.length; i++) {
          if (mask === null || mask[i] === 1) {
            hasData[bidx[i]!] = 1;
            anyData = true;
          }
        }
        prepared = { bidx, mask };
        bidxByField.set(spec.field.name, prepared);
      }
      acc.add(run.values, run.times, prepared.bidx, prepared.mask, si);
    }
  }
  if (!anyData) return null;

  // Per-call results, then fill (InfluxDB fills each function's output, before arithmetic).
  const results: Cell[][] = accs.map((acc) => {
    const col = new Array<Cell>(nb);
    for (let b = 0; b < nb; b++) col[b] = acc === null ? null : acc.result(b);
    return col;
  });
  const fill = stmt.fill;
  const filling = buckets !== null || fill.kind === "value";
  if (filling) {
    for (let c = 0; c < results.length; c++) {
      const col = results[c]!;
      const isCount = plan.calls[c]!.fn === "count";
      if (fill.kind === "null" && isCount) {
        // count() of an empty bucket is 0, not null (InfluxDB's count fill).
        for (let b = 0; b < nb; b++) if (col[b] === null) col[b] = 0n;
      } else if (fill.kind === "value") {
        for (let b = 0; b < nb; b++) if (col[b] === null) col[b] = fill.value;
      } else if (fill.kind === "previous") {
        let prev: Cell = null;
        for (let b = 0; b < nb; b++) {
          if (col[b] === null) col[b] = prev;
          else prev = col[b]!;
        }
      } else if (fill.kind === "linear") {
        linearFill(col);
      }
    }
  }

  const rows: Cell[][] = [];
  const aux = shape.singleSelector ? plan.outs.some((o) => o.t !== "call") : false;
  const selectorAcc = shape.singleSelector ? accs.find((a) => a !== null) : undefined;
  for (let b = 0; b < nb; b++) {
    if (fill.kind === "none" && hasData[b] === 0) continue;
    if (buckets === null && hasData[b] === 0) continue;
    let time = buckets === null ? rangeStart : buckets.starts[b]!;
    const callResults = results.map((col) => col[b]!);
    let scope: RowScope = NO_ROW;
    if (shape.singleSelector && selectorAcc) {
      const p = selectorAcc.point?.(b) ?? null;
      if (p !== null) {
        if (buckets === null) time = p.time;
        if (aux) scope = pointScope(g.series[p.series]!, p.time);
      }
    }
    if (shape.distinct) {
      const acc = accs[0];
      if (acc === null || acc === undefined) continue;
      for (const v of acc.rows!(b)) rows.push([time, v]);
      continue;
    }
    const cells: Cell[] = [time];
    for (const o of plan.outs) cells.push(evalOut(o, scope, callResults));
    rows.push(cells);
  }
  if (stmt.descending) rows.reverse();
  const values = page(rows, stmt.offset, stmt.limit);
  if (values.length === 0) return null;
  return seriesOf(plan, g, values);
}

const NO_ROW: RowScope = { field: () => null, tag: () => "" };

/** The other columns of the point a selector chose: its series' tags and fields at its time. */
function pointScope(sd: SeriesData, time: bigint): RowScope {
  return {
    tag: (name) => sd.s.tag(name),
    field: (name) => {
      const run = sd.runs.get(name);
      if (run === undefined) return null;
      let a = 0;
      let z = run.times.length - 1;
      while (a <= z) {
        const mid = (a + z) >> 1;
        const t = run.times[mid]!;
        if (t === time) return run.values[mid]!;
        if (t < time) a = mid + 1;
        else z = mid - 1;
      }
      return null;
    },
  };
}

/** fill(linear): straight lines between known buckets; leading and trailing gaps stay null. */
function linearFill(col: Cell[]): void {
  let prev = -1;
  for (let b = 0; b < col.length; b++) {
    if (col[b] === null) continue;
    if (prev >= 0 && b - prev > 1) {
      const a = col[prev]!;
      const z = col[b]!;
      if ((typeof a === "number" || typeof a === "bigint") && (typeof z === "number" || typeof z === "bigint")) {
        for (let k = prev + 1; k < b; k++) {
          if (typeof a === "bigint" && typeof z === "bigint") col[k] = a + ((z - a) * BigInt(k - prev)) / BigInt(b - prev);
          else col[k] = Number(a) + ((Number(z) - Number(a)) * (k - prev)) / (b - prev);
        }
      }
    }
    prev = b;
  }
}
