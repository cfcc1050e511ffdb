/**
 * `tsdb-pair query "<InfluxQL>" [--db] [--url] [--format table|json|csv] [--epoch] [--auth-token]`:
 * sends the statements to a running node's /query and prints the answer, as a table by
 * default (the layout of InfluxDB's `influx` shell: name, tags, columns, a rule, rows).
 */
import { defineCommand } from "citty";
import process from "node:process";
import { TsdbError } from "../errors.ts";

export const DEFAULT_QUERY_URL = "http://127.0.0.1:8086";

export interface QueryArgs {
  readonly query: string;
  readonly db?: string;
  readonly url?: string;
  readonly format?: string;
  readonly epoch?: string;
  readonly authToken?: string;
}

interface JsonSeries {
  name?: string;
  tags?: Record<string, string>;
  columns: string[];
  values?: unknown[][];
}

interface JsonResult {
  statement_id: number;
  series?: JsonSeries[];
  error?: string;
}

/** Runs the query against the node and writes the formatted answer; statement errors throw. */
export async function runQuery(args: QueryArgs, write: (text: string) => void, fetchFn: typeof fetch = fetch): Promise<void> {
  const format = args.format ?? "table";
  if (format !== "table" && format !== "json" && format !== "csv") {
    throw new TsdbError("config", `invalid --format ${JSON.stringify(format)}: expected table, json or csv`);
  }
  const base = args.url ?? DEFAULT_QUERY_URL;
  let url: URL;
  try {
    url = new URL("/query", base);
  } catch {
    throw new TsdbError("config", `invalid --url ${JSON.stringify(base)}: expected e.g. ${DEFAULT_QUERY_URL}`);
  }
  const body = new URLSearchParams({ q: args.query });
  if (args.db) body.set("db", args.db);
  if (args.epoch) body.set("epoch", args.epoch);
  const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded" };
  if (args.authToken) headers["Authorization"] = `Token ${args.authToken}`;
  if (format === "csv") headers["Accept"] = "application/csv";
  let res: Response;
  try {
    res = await fetchFn(url, { method: "POST", headers, body });
  } catch (e) {
    throw new TsdbError("unavailable", `cannot reach ${base}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text.trim();
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? message;
    } catch {
      // not JSON: keep the text
    }
    throw new TsdbError(res.status === 401 ? "unauthorized" : "bad_request", `query failed (HTTP ${res.status}): ${message}`);
  }
  if (format !== "table") {
    write(text.endsWith("\n") ? text : text + "\n");
    if (format === "json") throwFirstError(JSON.parse(text) as { results: JsonResult[] });
    return;
  }
  const parsed = JSON.parse(quoteBigIntegers(text)) as { results: JsonResult[] };
  write(renderTables(parsed.results));
  throwFirstError(parsed);
}

/**
 * Turns integer tokens too long for a double into strings before JSON.parse, so int64 values
 * and nanosecond times print exactly in tables (the server sends them exactly).
 */
export function quoteBigIntegers(json: string): string {
  let out = "";
  let i = 0;
  while (i < json.length) {
    const c = json[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === "\\" ? 2 : 1;
      out += json.slice(i, j + 1);
      i = j + 1;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < json.length && /[0-9.eE+-]/.test(json[j]!)) j++;
      const token = json.slice(i, j);
      out += /^-?\d{16,}$/.test(token) ? `"${token}"` : token;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function throwFirstError(body: { results: JsonResult[] }): void {
  const failed = body.results.find((r) => r.error !== undefined);
  if (failed) throw new TsdbError("bad_request", `statement ${failed.statement_id} failed: ${failed.error}`);
}

/** Renders results as aligned text tables, one per series. Integers arrive exactly (see cellText). */
export function renderTables(results: readonly JsonResult[]): string {
  const blocks: string[] = [];
  for (const r of results) {
    for (const s of r.series ?? []) {
      const lines: string[] = [];
      if (s.name !== undefined) lines.push(`name: ${s.name}`);
      if (s.tags !== undefined && Object.keys(s.tags).length > 0) {
        lines.push(`tags: ${Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(", ")}`);
      }
      const rows = (s.values ?? []).map((row) => row.map(cellText));
      const widths = s.columns.map((c, i) => Math.max(c.length, ...rows.map((row) => (row[i] ?? "").length)));
      const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join(" ").trimEnd();
      lines.push(fmt(s.columns));
      lines.push(fmt(s.columns.map((c) => "-".repeat(c.length))));
      for (const row of rows) lines.push(fmt(row));
      blocks.push(lines.join("\n"));
    }
    if (r.error !== undefined) blocks.push(`ERR: ${r.error}`);
  }
  return blocks.length === 0 ? "" : blocks.join("\n\n") + "\n";
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : String(v);
}

/** The citty command; registered as `query` by the CLI. */
export const queryCommand = defineCommand({
  meta: { name: "query", description: "Run InfluxQL statements on a running node and print the answer" },
  args: {
    query: { type: "positional", description: "InfluxQL, e.g. \"SELECT mean(v) FROM m GROUP BY time(1m)\"", required: true },
    db: { type: "string", description: "Default database for the statements" },
    url: { type: "string", description: `Node to ask (default ${DEFAULT_QUERY_URL})` },
    format: { type: "string", description: "table (default), json or csv" },
    epoch: { type: "string", description: "Print times as integers in ns, u, ms, s, m or h instead of RFC3339" },
    "auth-token": { type: "string", description: "Token, if the node requires one (or TSDB_PAIR_AUTH_TOKEN)" },
  },
  async run({ args }) {
    const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    const authToken = str(args["auth-token"]) ?? str(process.env["TSDB_PAIR_AUTH_TOKEN"]);
    const opts: QueryArgs = {
      query: String(args.query),
      ...(str(args.db) ? { db: str(args.db)! } : {}),
      ...(str(args.url) ? { url: str(args.url)! } : {}),
      ...(str(args.format) ? { format: str(args.format)! } : {}),
      ...(str(args.epoch) ? { epoch: str(args.epoch)! } : {}),
      ...(authToken ? { authToken } : {}),
    };
    await runQuery(opts, (t) => process.stdout.write(t));
  },
});
