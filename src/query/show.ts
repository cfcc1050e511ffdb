/**
 * SHOW statements (answered from the catalogue, never from stored values) and the
 * statements that change the schema (CREATE/DROP DATABASE, DROP MEASUREMENT, DROP SERIES,
 * DELETE), which go through the store's writer so they are logged and replicate.
 *
 * Shapes follow InfluxDB 1.x: one result series per measurement for TAG KEYS, TAG VALUES
 * and FIELD KEYS; one unnamed series for SERIES, RETENTION POLICIES and the cardinality
 * estimates; no series at all when nothing matches.
 */
import type {
  DeleteStatement,
  DropSeriesStatement,
  Expr,
  ShowCardinalityStatement,
  ShowFieldKeysStatement,
  ShowMeasurementsStatement,
  ShowSeriesStatement,
  ShowTagKeysStatement,
  ShowTagValuesStatement,
  Source,
  Statement,
} from "../influxql/ast.ts";
import { TsdbError } from "../errors.ts";
import type { DbEntry, MeasurementEntry, SeriesEntry } from "../store/catalog.ts";
import { reduceForSeries, regexOf, splitTime, type NameKind } from "./condition.ts";
import type { Cell, ResultSeries } from "./result.ts";
import { checkRp, resolveDb, Slicer, tagKeysOf, type ExecContext } from "./select.ts";

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function page<T>(rows: T[], offset: number, limit: number): T[] {
  if (offset === 0 && limit === 0) return rows;
  return rows.slice(offset, limit > 0 ? offset + limit : undefined);
}

function table(columns: string[], values: Cell[][], name?: string): ResultSeries {
  return name === undefined ? { columns, timeColumn: false, values } : { name, columns, timeColumn: false, values };
}

/** Measurements named by FROM (all when there is no FROM), sorted; missing names are skipped. */
function measurementsFrom(db: DbEntry, sources: readonly Source[], ctx: ExecContext): MeasurementEntry[] {
  const all = [...db.measurements.values()].filter((m) => m.series.length > 0);
  if (sources.length === 0) return all.sort(byName);
  const out = new Set<MeasurementEntry>();
  for (const src of sources) {
    checkRp(src.rp ?? ctx.rp);
    if (src.db !== null && src.db !== db.name) throw new TsdbError("bad_request", `FROM names database ${src.db} but the statement runs on ${db.name}`);
    if (src.regex !== null) {
      const re = regexOf(src.regex);
      for (const m of all) if (re.test(m.name)) out.add(m);
    } else {
      const m = db.measurements.get(src.name!);
      if (m !== undefined && m.series.length > 0) out.add(m);
    }
  }
  return [...out].sort(byName);
}

/** The database of a SHOW: `ON db`, the first FROM source's db, or the request's. */
function showDb(ctx: ExecContext, on: string | null, sources: readonly Source[] = []): DbEntry {
  return resolveDb(ctx, on ?? sources.find((s) => s.db !== null)?.db ?? null);
}

/**
 * A per-series predicate for SHOW and DROP/DELETE WHERE clauses: tag comparisons only.
 * Time conditions are ignored by SHOW (InfluxDB 1.x ignores them too; Grafana variable
 * queries often carry `$timeFilter`).
 */
function seriesFilter(cond: Expr | null, ctx: ExecContext, what: string): (m: MeasurementEntry) => (s: SeriesEntry) => boolean {
  const rest = splitTime(cond, ctx.nowNs).rest;
  if (rest === null) return () => () => true;
  // Metadata queries look at tags only: every name in their WHERE is a tag, even when a
  // field has the same name (InfluxDB 1.x reads them the same way).
  const kind: NameKind = (name, cast) => {
    if (cast === "field") throw new TsdbError("bad_request", `${what} can only filter on tags in WHERE, not on fields (${name}::field)`);
    return "tag";
  };
  return () => (s) => {
    const r = reduceForSeries(rest, s, kind);
    if (typeof r !== "boolean") throw new TsdbError("bad_request", `${what} can only compare tags with strings or regexes in WHERE`);
    return r;
  };
}

export async function executeShow(stmt: Statement, ctx: ExecContext): Promise<ResultSeries[]> {
  switch (stmt.kind) {
    case "show_databases":
      return [table(["name"], ctx.store.databases().map((n) => [n]), "databases")];
    case "show_retention_policies": {
      const db = showDb(ctx, stmt.db);
      // One policy per database, InfluxDB's default `autogen`, with the database's retention.
      const duration = ctx.store.retentionOf(db);
      return [table(["name", "duration", "shardGroupDuration", "replicaN", "default"], [["autogen", goDuration(duration), shardGroupFor(duration), 1n, true]])];
    }
    case "show_measurements":
      return showMeasurements(stmt, ctx);
    case "show_tag_keys":
      return showTagKeys(stmt, ctx);
    case "show_tag_values":
      return showTagValues(stmt, ctx);
    case "show_field_keys":
      return showFieldKeys(stmt, ctx);
    case "show_series":
      return showSeries(stmt, ctx);
    case "show_cardinality":
      return showCardinality(stmt, ctx);
    default:
      throw new TsdbError("internal", `not a SHOW statement: ${stmt.kind}`);
  }
}

function showMeasurements(stmt: ShowMeasurementsStatement, ctx: ExecContext): ResultSeries[] {
  const db = showDb(ctx, stmt.db);
  const filter = seriesFilter(stmt.condition, ctx, "SHOW MEASUREMENTS");
  const names: Cell[][] = [];
  for (const m of [...db.measurements.values()].sort(byName)) {
    if (m.series.length === 0) continue;
    const f = stmt.filter;
    if (f !== null) {
      const hit = f.regex !== null ? regexOf(f.regex).test(m.name) : m.name === f.name;
      if ((f.op === "=" || f.op === "=~") !== hit) continue;
    }
    if (stmt.condition !== null) {
      const pass = filter(m);
      if (!m.series.some(pass)) continue;
    }
    names.push([m.name]);
  }
  const values = page(names, stmt.offset, stmt.limit);
  return values.length === 0 ? [] : [table(["name"], values, "measurements")];
}

function showTagKeys(stmt: ShowTagKeysStatement, ctx: ExecContext): ResultSeries[] {
  const db = showDb(ctx, stmt.db, stmt.sources);
  const filter = seriesFilter(stmt.condition, ctx, "SHOW TAG KEYS");
  const out: ResultSeries[] = [];
  for (const m of measurementsFrom(db, stmt.sources, ctx)) {
    let keys: string[];
    if (stmt.condition === null) keys = tagKeysOf(m);
    else {
      const pass = filter(m);
      const set = new Set<string>();
      for (const s of m.series) if (pass(s)) for (const [k] of s.tags) set.add(k);
      keys = [...set].sort(cmp);
    }
    const values = page(keys.map((k) => [k] as Cell[]), stmt.offset, stmt.limit);
    if (values.length > 0) out.push(table(["tagKey"], values, m.name));
  }
  return out;
}

/** The WITH KEY clause of SHOW TAG VALUES as a predicate on tag keys. */
function keyMatcher(op: string | null, keys: readonly string[], regex: string | null): (k: string) => boolean {
  switch (op) {
    case "=":
      return (k) => k === keys[0];
    case "!=":
      return (k) => k !== keys[0];
    case "IN": {
      const set = new Set(keys);
      return (k) => set.has(k);
    }
    case "=~": {
      const re = regexOf(regex!);
      return (k) => re.test(k);
    }
    case "!~": {
      const re = regexOf(regex!);
      return (k) => !re.test(k);
    }
  }
  return () => true;
}

/** Distinct (key, value) pairs of one measurement's matching series, sorted by key then value. */
function tagValuePairs(m: MeasurementEntry, keyOk: (k: string) => boolean, pass: (s: SeriesEntry) => boolean): Array<[string, string]> {
  const seen = new Map<string, Set<string>>();
  for (const s of m.series) {
    if (!pass(s)) continue;
    for (const [k, v] of s.tags) {
      if (!keyOk(k)) continue;
      let vs = seen.get(k);
      if (vs === undefined) seen.set(k, (vs = new Set()));
      vs.add(v);
    }
  }
  const pairs: Array<[string, string]> = [];
  for (const k of [...seen.keys()].sort(cmp)) for (const v of [...seen.get(k)!].sort(cmp)) pairs.push([k, v]);
  return pairs;
}

function showTagValues(stmt: ShowTagValuesStatement, ctx: ExecContext): ResultSeries[] {
  const db = showDb(ctx, stmt.db, stmt.sources);
  const filter = seriesFilter(stmt.condition, ctx, "SHOW TAG VALUES");
  const keyOk = keyMatcher(stmt.keyOp, stmt.keys, stmt.keyRegex);
  const out: ResultSeries[] = [];
  for (const m of measurementsFrom(db, stmt.sources, ctx)) {
    const pairs = tagValuePairs(m, keyOk, filter(m));
    const values = page(pairs as Cell[][], stmt.offset, stmt.limit);
    if (values.length > 0) out.push(table(["key", "value"], values, m.name));
  }
  return out;
}

function showFieldKeys(stmt: ShowFieldKeysStatement, ctx: ExecContext): ResultSeries[] {
  const db = showDb(ctx, stmt.db, stmt.sources);
  const out: ResultSeries[] = [];
  for (const m of measurementsFrom(db, stmt.sources, ctx)) {
    const rows = [...m.fields.values()].sort(byName).map((f) => [f.name, f.type] as Cell[]);
    const values = page(rows, stmt.offset, stmt.limit);
    if (values.length > 0) out.push(table(["fieldKey", "fieldType"], values, m.name));
  }
  return out;
}

async function showSeries(stmt: ShowSeriesStatement, ctx: ExecContext): Promise<ResultSeries[]> {
  const db = showDb(ctx, stmt.db, stmt.sources);
  const filter = seriesFilter(stmt.condition, ctx, "SHOW SERIES");
  const slicer = new Slicer(ctx);
  const keys: string[] = [];
  for (const m of measurementsFrom(db, stmt.sources, ctx)) {
    const pass = filter(m);
    for (const s of m.series) if (pass(s)) keys.push(s.key);
    await slicer.tick();
  }
  keys.sort(cmp);
  const values = page(keys.map((k) => [k] as Cell[]), stmt.offset, stmt.limit);
  return values.length === 0 ? [] : [table(["key"], values)];
}

function showCardinality(stmt: ShowCardinalityStatement, ctx: ExecContext): ResultSeries[] {
  const db = showDb(ctx, stmt.db, stmt.sources);
  const filter = seriesFilter(stmt.condition, ctx, "SHOW ... CARDINALITY");
  const ms = measurementsFrom(db, stmt.sources, ctx);
  const passing = (m: MeasurementEntry) => {
    if (stmt.condition === null) return m.series;
    const pass = filter(m);
    return m.series.filter(pass);
  };
  // Counts are exact; InfluxDB's estimates (HyperLogLog sketches) are labelled as such.
  const label = stmt.exact ? "count" : "cardinality estimation";
  switch (stmt.what) {
    case "measurement": {
      const n = ms.filter((m) => passing(m).length > 0).length;
      return [table([label], [[BigInt(n)]])];
    }
    case "series": {
      if (!stmt.exact && stmt.sources.length === 0 && stmt.condition === null) {
        let n = 0;
        for (const m of ms) n += m.series.length;
        return [table([label], [[BigInt(n)]])];
      }
      return perMeasurement(ms, (m) => passing(m).length);
    }
    case "tag_key":
      return perMeasurement(ms, (m) => {
        const set = new Set<string>();
        for (const s of passing(m)) for (const [k] of s.tags) set.add(k);
        return set.size;
      });
    case "tag_values": {
      const keyOk = keyMatcher(stmt.keyOp, stmt.keys, stmt.keyRegex);
      return perMeasurement(ms, (m) => tagValuePairs(m, keyOk, stmt.condition === null ? () => true : filter(m)).length);
    }
    case "field_key":
      return perMeasurement(ms, (m) => m.fields.size);
  }
}

function perMeasurement(ms: MeasurementEntry[], count: (m: MeasurementEntry) => number): ResultSeries[] {
  const out: ResultSeries[] = [];
  for (const m of ms) {
    const n = count(m);
    if (n > 0) out.push(table(["count"], [[BigInt(n)]], m.name));
  }
  return out;
}

// ---- schema changes ----

/**
 * CREATE/DROP DATABASE, DROP MEASUREMENT, DROP SERIES and DELETE. CREATE DATABASE ... WITH
 * DURATION sets how long the database keeps data (its `autogen` policy).
 */
export async function executeChange(stmt: Statement, ctx: ExecContext): Promise<ResultSeries[]> {
  switch (stmt.kind) {
    case "create_database":
      if (stmt.name === "") throw new TsdbError("bad_request", "database name required");
      await ctx.store.createDatabase(stmt.name, stmt.duration ?? undefined);
      return [];
    case "drop_database":
      // Dropping a database that does not exist succeeds, as in InfluxDB.
      if (ctx.store.database(stmt.name) !== undefined) await ctx.store.dropDatabase(stmt.name);
      return [];
    case "drop_measurement": {
      const db = resolveDb(ctx, null);
      if (!db.measurements.has(stmt.name)) throw new TsdbError("not_found", `measurement not found: ${stmt.name}`);
      await ctx.store.dropMeasurement(db.name, stmt.name);
      return [];
    }
    case "drop_series":
    case "delete":
      await deleteValues(stmt, ctx);
      return [];
    default:
      throw new TsdbError("internal", `not a schema statement: ${stmt.kind}`);
  }
}

async function deleteValues(stmt: DropSeriesStatement | DeleteStatement, ctx: ExecContext): Promise<void> {
  const db = resolveDb(ctx, stmt.sources.find((s) => s.db !== null)?.db ?? null);
  for (const s of stmt.sources) checkRp(s.rp ?? ctx.rp);
  const { bounds, rest } = splitTime(stmt.condition, ctx.nowNs);
  if (stmt.kind === "drop_series" && (bounds.lo !== null || bounds.hi !== null)) {
    throw new TsdbError("bad_request", "DROP SERIES doesn't support time in WHERE clause (use DELETE)");
  }
  let measurements: string[] | null = null;
  if (stmt.sources.length > 0) {
    const names = new Set<string>();
    for (const src of stmt.sources) {
      if (src.regex !== null) {
        const re = regexOf(src.regex);
        for (const m of db.measurements.keys()) if (re.test(m)) names.add(m);
      } else names.add(src.name!);
    }
    measurements = [...names].filter((n) => db.measurements.has(n)).sort(cmp);
    if (measurements.length === 0) return;
  }
  const what = stmt.kind === "drop_series" ? "DROP SERIES" : "DELETE";
  const kinds = new Map<MeasurementEntry, NameKind>();
  const kindOf = (m: MeasurementEntry): NameKind => {
    let k = kinds.get(m);
    if (k === undefined) {
      // In deletions every name is a tag, as in InfluxDB ("fields not supported in WHERE clause during deletion").
      k = (name, cast) => {
        if (cast === "field" || (cast !== "tag" && m.fields.has(name))) throw new TsdbError("bad_request", `fields not supported in WHERE clause during deletion (${what})`);
        return "tag";
      };
      kinds.set(m, k);
    }
    return k;
  };
  const series = (s: SeriesEntry): boolean => (rest === null ? true : reduceForSeries(rest, s, kindOf(s.measurement)) === true);
  if (rest !== null) {
    // Validate the condition once up front so a bad WHERE fails before anything is deleted.
    const probe = [...db.measurements.values()].find((m) => m.series.length > 0)?.series[0];
    if (probe !== undefined) {
      const r = reduceForSeries(rest, probe, kindOf(probe.measurement));
      if (typeof r !== "boolean") throw new TsdbError("bad_request", `${what} can only filter on tags and time in WHERE`);
    }
  }
  const target: { measurements: string[] | null; series: (s: SeriesEntry) => boolean; start?: bigint; end?: bigint } = { measurements, series };
  if (bounds.lo !== null) target.start = bounds.lo;
  if (bounds.hi !== null) target.end = bounds.hi;
  await ctx.store.deleteSeries(db.name, target);
}

/** A duration as InfluxDB prints it (Go's time.Duration form): `0s`, `720h0m0s`, `1h30m0s`. */
export function goDuration(ns: bigint): string {
  if (ns <= 0n) return "0s";
  const h = ns / 3_600_000_000_000n;
  const m = (ns / 60_000_000_000n) % 60n;
  const sNs = ns % 60_000_000_000n;
  const s = sNs % 1_000_000_000n === 0n ? String(sNs / 1_000_000_000n) : (Number(sNs) / 1e9).toString();
  if (h > 0n) return `${h}h${m}m${s}s`;
  if (m > 0n) return `${m}m${s}s`;
  return `${s}s`;
}

/** InfluxDB's default shard group duration for a retention: 1h under 2 days, 1d up to 6 months, else 7d. */
function shardGroupFor(ns: bigint): string {
  const day = 86_400_000_000_000n;
  if (ns > 0n && ns < 2n * day) return "1h0m0s";
  if (ns > 0n && ns <= 180n * day) return "24h0m0s";
  return "168h0m0s";
}
