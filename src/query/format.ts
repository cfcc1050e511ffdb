/**
 * Encodes statement results as InfluxDB 1.x does: JSON (`{"results":[...]}`, optionally
 * pretty, optionally chunked as one JSON document per line) and CSV for
 * `Accept: application/csv`.
 *
 * A hand-written JSON writer, because JSON.stringify cannot print int64 values and
 * nanosecond timestamps exactly: bigints are written as bare digits.
 */
import type { Cell, ResultSeries, StatementResult } from "./result.ts";
import { formatRfc3339, zoneOf, type Zone } from "./time.ts";

export interface FormatOptions {
  /** Nanoseconds per unit of `epoch=`; null prints RFC3339 strings. */
  readonly epochNs: bigint | null;
  readonly pretty: boolean;
}

/** A JSON-ish value tree whose bigints are printed exactly. */
type J = null | boolean | number | bigint | string | J[] | { [k: string]: J };

function timeCell(ns: bigint, opts: FormatOptions, zone: Zone | null): J {
  if (opts.epochNs === null) return formatRfc3339(ns, zone);
  // Go's integer division truncates towards zero; InfluxDB's epoch conversion does the same.
  return ns / opts.epochNs;
}

function cellJson(v: Cell): J {
  if (typeof v === "number" && !Number.isFinite(v)) return null;
  return v;
}

function seriesJson(s: ResultSeries, opts: FormatOptions, zone: Zone | null, partial: boolean): J {
  const out: { [k: string]: J } = {};
  if (s.name !== undefined) out["name"] = s.name;
  if (s.tags !== undefined) out["tags"] = { ...s.tags };
  out["columns"] = [...s.columns];
  if (s.values.length > 0) {
    out["values"] = s.values.map((row) =>
      row.map((v, i) => (i === 0 && s.timeColumn && typeof v === "bigint" ? timeCell(v, opts, zone) : cellJson(v))),
    );
  }
  if (partial) out["partial"] = true;
  return out;
}

function resultJson(r: StatementResult, opts: FormatOptions, series?: readonly ResultSeries[], partialSeries = false, partial = false): J {
  const out: { [k: string]: J } = { statement_id: r.statementId };
  const zone = r.tz ? zoneOf(r.tz) : null;
  const list = series ?? r.series;
  if (list !== undefined && list.length > 0) {
    out["series"] = list.map((s, i) => seriesJson(s, opts, zone, partialSeries && i === list.length - 1));
  }
  if (partial) out["partial"] = true;
  if (r.error !== undefined) out["error"] = r.error;
  return out;
}

/** The whole response body: `{"results":[...]}`. */
export function encodeJson(results: readonly StatementResult[], opts: FormatOptions): string {
  if (opts.pretty) return stringify({ results: results.map((r) => resultJson(r, opts)) }, true) + "\n";
  // Compact output is written straight from the rows: dashboards ask for hundreds of
  // thousands of cells, and an intermediate tree would double the work.
  const out: string[] = ['{"results":['];
  results.forEach((r, ri) => {
    if (ri > 0) out.push(",");
    out.push(`{"statement_id":${r.statementId}`);
    const zone = r.tz ? zoneOf(r.tz) : null;
    if (r.series !== undefined && r.series.length > 0) {
      out.push(',"series":[');
      r.series.forEach((s, si) => {
        if (si > 0) out.push(",");
        writeSeriesCompact(s, opts, zone, out);
      });
      out.push("]");
    }
    if (r.error !== undefined) out.push(`,"error":${JSON.stringify(r.error)}`);
    out.push("}");
  });
  out.push("]}\n");
  return out.join("");
}

function writeSeriesCompact(s: ResultSeries, opts: FormatOptions, zone: Zone | null, out: string[]): void {
  let head = "{";
  if (s.name !== undefined) head += `"name":${JSON.stringify(s.name)},`;
  if (s.tags !== undefined) {
    head += '"tags":{' + Object.entries(s.tags).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",") + "},";
  }
  head += `"columns":${JSON.stringify(s.columns)}`;
  out.push(head);
  if (s.values.length > 0) {
    out.push(',"values":[');
    const rows = s.values;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      let line = i === 0 ? "[" : ",[";
      for (let j = 0; j < row.length; j++) {
        const v = row[j]!;
        if (j > 0) line += ",";
        if (j === 0 && s.timeColumn && typeof v === "bigint") {
          line += opts.epochNs === null ? `"${formatRfc3339(v, zone)}"` : (v / opts.epochNs).toString();
        } else if (v === null) line += "null";
        else if (typeof v === "number") line += Number.isFinite(v) ? String(v) : "null";
        else if (typeof v === "string") line += JSON.stringify(v);
        else line += String(v);
      }
      out.push(line + "]");
    }
    out.push("]");
  }
  out.push("}");
}

/**
 * Chunked JSON (`chunked=true`): one document per line, at most `chunkSize` rows each.
 * A series cut across documents is marked `"partial": true`, as is a statement whose
 * output continues in the next document (InfluxDB's streaming shape).
 */
export function* encodeJsonChunks(result: StatementResult, opts: FormatOptions, chunkSize: number): Generator<string> {
  const series = result.series ?? [];
  if (series.length === 0) {
    yield stringify({ results: [resultJson(result, opts)] }, opts.pretty) + "\n";
    return;
  }
  let batch: ResultSeries[] = [];
  let rows = 0;
  for (let si = 0; si < series.length; si++) {
    const s = series[si]!;
    let at = 0;
    do {
      const take = Math.min(chunkSize - rows, s.values.length - at);
      batch.push({ ...s, values: s.values.slice(at, at + take) });
      at += take;
      rows += take;
      const seriesCut = at < s.values.length;
      const more = seriesCut || si < series.length - 1;
      if (rows >= chunkSize && more) {
        yield stringify({ results: [resultJson(result, opts, batch, seriesCut, true)] }, opts.pretty) + "\n";
        batch = [];
        rows = 0;
      }
    } while (at < s.values.length);
  }
  if (batch.length > 0) yield stringify({ results: [resultJson(result, opts, batch)] }, opts.pretty) + "\n";
}

function stringify(v: J, pretty: boolean): string {
  const parts: string[] = [];
  write(v, pretty ? "" : null, parts);
  return parts.join("");
}

/** Appends `v`; `indent` null means compact, else Go's MarshalIndent with four spaces. */
function write(v: J, indent: string | null, out: string[]): void {
  if (v === null) out.push("null");
  else if (typeof v === "bigint") out.push(v.toString());
  else if (typeof v === "number") out.push(Number.isFinite(v) ? String(v) : "null");
  else if (typeof v === "boolean") out.push(v ? "true" : "false");
  else if (typeof v === "string") out.push(JSON.stringify(v));
  else if (Array.isArray(v)) {
    if (v.length === 0) {
      out.push("[]");
      return;
    }
    const inner = indent === null ? null : indent + "    ";
    out.push("[");
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.push(",");
      if (inner !== null) out.push("\n" + inner);
      write(v[i]!, inner, out);
    }
    if (indent !== null) out.push("\n" + indent);
    out.push("]");
  } else {
    const keys = Object.keys(v);
    if (keys.length === 0) {
      out.push("{}");
      return;
    }
    const inner = indent === null ? null : indent + "    ";
    out.push("{");
    keys.forEach((k, i) => {
      if (i > 0) out.push(",");
      if (inner !== null) out.push("\n" + inner);
      out.push(JSON.stringify(k) + (inner !== null ? ": " : ":"));
      write(v[k]!, inner, out);
    });
    if (indent !== null) out.push("\n" + indent);
    out.push("}");
  }
}

/** An error body in InfluxDB's shape (`{"error":"..."}`). */
export function encodeError(message: string): string {
  return stringify({ error: message }, false) + "\n";
}

/**
 * InfluxDB 1.x CSV: `name,tags,<columns>` headers (repeated when the columns change, after
 * a blank line), tags as `k=v` joined by commas, times as integers (ns unless `epoch`).
 */
export function encodeCsv(results: readonly StatementResult[], opts: FormatOptions): string {
  const lines: string[] = [];
  let header: string | null = null;
  for (const r of results) {
    if (r.error !== undefined) {
      if (header !== null) lines.push("");
      lines.push("error", csvField(r.error));
      header = null;
      continue;
    }
    for (const s of r.series ?? []) {
      const h = ["name", "tags", ...s.columns].map(csvField).join(",");
      if (h !== header) {
        if (header !== null) lines.push("");
        lines.push(h);
        header = h;
      }
      const tags = s.tags === undefined ? "" : Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(",");
      for (const row of s.values) {
        const cells = row.map((v, i) => {
          if (i === 0 && s.timeColumn && typeof v === "bigint") return (v / (opts.epochNs ?? 1n)).toString();
          return csvCell(v);
        });
        lines.push([csvField(s.name ?? ""), csvField(tags), ...cells].join(","));
      }
    }
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

function csvCell(v: Cell): string {
  if (v === null) return "";
  if (typeof v === "string") return csvField(v);
  if (typeof v === "number") return Number.isFinite(v) ? plainNumber(v) : "";
  return String(v);
}

/** Go's FormatFloat(v, 'f', -1, 64): never an exponent. */
function plainNumber(v: number): string {
  const s = String(v);
  if (!/e/i.test(s)) return s;
  return v.toLocaleString("en-US", { useGrouping: false, maximumFractionDigits: 20 });
}

/** RFC 4180 quoting, as Go's encoding/csv does. */
function csvField(s: string): string {
  return /[",\n\r]/.test(s) || s.startsWith(" ") ? `"${s.replace(/"/g, '""')}"` : s;
}
