/**
 * The query engine over a real store in a temporary directory: behaviour that the recorded
 * InfluxDB comparison (test/query-influx.test.ts) does not cover, chiefly limits, errors,
 * schema changes and the places where tsdb-pair is deliberately not InfluxDB 1.6.7.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_ENGINE } from "../config.ts";
import { parseQuery } from "../influxql/parser.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { Store } from "../store/store.ts";
import { executeAll, type ExecuteOptions } from "./executor.ts";
import { encodeJson } from "./format.ts";
import type { StatementResult } from "./result.ts";

const NOW = 1_700_000_600_000_000_000n;
const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function storeWith(lines: string, db = "db"): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), "tsdb-query-"));
  dirs.push(dir);
  const store = Store.open({ dataDir: dir, nodeId: "node-a", sync: "off", engine: DEFAULT_ENGINE });
  stores.push(store);
  if (lines !== "") await write(store, lines, db);
  return store;
}

async function write(store: Store, lines: string, db = "db"): Promise<void> {
  const { batch, errors } = parseLines(lines, { precision: "ns", defaultTime: NOW });
  expect(errors).toEqual([]);
  await store.write({ db, rp: "", precision: "ns", defaultTime: NOW, batch, autoCreate: true });
}

async function run(store: Store, q: string, opts: Partial<ExecuteOptions> = {}): Promise<StatementResult[]> {
  return executeAll(parseQuery(q), {
    store,
    db: "db",
    nowNs: NOW,
    limits: { maxSelectPoints: 1_000_000, maxSelectSeries: 1_000 },
    ...opts,
  });
}

/** The JSON InfluxDB clients would see, with epoch=ns. */
async function json(store: Store, q: string, opts: Partial<ExecuteOptions> = {}): Promise<string> {
  return encodeJson(await run(store, q, opts), { epochNs: 1n, pretty: false }).trim();
}

async function errorOf(store: Store, q: string, opts: Partial<ExecuteOptions> = {}): Promise<string | undefined> {
  return (await run(store, q, opts))[0]?.error;
}

const CPU = [
  "cpu,host=a v=1 1700000000000000000",
  "cpu,host=b v=2 1700000010000000000",
  "cpu,host=a v=3 1700000060000000000",
  "cpu,host=b v=4 1700000070000000000",
].join("\n");

describe("where tsdb-pair is deliberately not InfluxDB 1.6.7", () => {
  test("an integer sum past int64 is exact instead of wrapping to a negative number", async () => {
    const store = await storeWith("m v=9223372036854775807i 1\nm v=10i 2");
    expect(await json(store, "SELECT sum(v) FROM m")).toBe(
      '{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","sum"],"values":[[0,9223372036854775817]]}]}]}',
    );
  });

  test("selecting from a measurement that does not exist is an error, not an empty result", async () => {
    const store = await storeWith(CPU);
    expect(await errorOf(store, "SELECT v FROM cpuu")).toBe('measurement not found: "cpuu" in database "db"');
  });

  test("a time condition under OR is refused instead of silently ignored", async () => {
    const store = await storeWith(CPU);
    expect(await errorOf(store, "SELECT v FROM cpu WHERE time > 0 OR host = 'a'")).toContain("invalid time condition");
  });

  test("after a failed statement each later statement is reported as not executed", async () => {
    const store = await storeWith(CPU);
    const results = await run(store, "SHOW DATABASES; SELECT v FROM nope; SHOW DATABASES; SHOW DATABASES");
    expect(results.map((r) => [r.statementId, r.error ?? "ok"])).toEqual([
      [0, "ok"],
      [1, 'measurement not found: "nope" in database "db"'],
      [2, "not executed"],
      [3, "not executed"],
    ]);
  });

  test("SHOW on an unknown database is an error, not an empty result", async () => {
    const store = await storeWith(CPU);
    expect(await errorOf(store, "SHOW MEASUREMENTS ON nope")).toBe("database not found: nope");
  });

  test("SHOW SERIES EXACT CARDINALITY counts each series once however many time ranges it spans", async () => {
    const store = await storeWith("m v=1 1\nm v=2 1700000000000000000");
    expect(await json(store, "SHOW SERIES EXACT CARDINALITY")).toBe(
      '{"results":[{"statement_id":0,"series":[{"name":"m","columns":["count"],"values":[[1]]}]}]}',
    );
  });
});

describe("bad input fails fast with a clear error", () => {
  const cases: Array<[string, string, string]> = [
    ["an unknown database", "SELECT v FROM nope..cpu", "database not found: nope"],
    ["an unknown retention policy", 'SELECT v FROM "db"."weekly"."cpu"', "retention policy not found: weekly"],
    ["an unsupported function, naming it", "SELECT derivative(v) FROM cpu", "unsupported function: derivative()"],
    ["a function on a string field", "SELECT mean(s) FROM str", 'mean() cannot be applied to string field "s"'],
    ["mixing aggregates and fields", "SELECT v, mean(v) FROM cpu", "mixing aggregate and non-aggregate queries is not supported"],
    ["two selectors with a field", "SELECT min(v), max(v), host FROM cpu", "mixing multiple selector functions with tags or fields is not supported"],
    ["distinct with other fields", "SELECT distinct(v), v FROM cpu", "distinct() cannot be combined"],
    ["a time comparison with !=", "SELECT v FROM cpu WHERE time != 0", "invalid time comparison operator"],
    ["now() in the field list", "SELECT now() FROM cpu", "now() can only be used in a WHERE time condition"],
  ];
  for (const [name, q, message] of cases) {
    test(`refuses ${name}`, async () => {
      const store = await storeWith(CPU + '\nstr s="x" 1');
      expect(await errorOf(store, q)).toContain(message);
    });
  }

  test("a statement without a database says a database name is required", async () => {
    const store = await storeWith(CPU);
    expect(await errorOf(store, "SELECT v FROM cpu", { db: null })).toBe("database name required");
  });

  test("GROUP BY time(1ns) over a year fails at once without allocating its buckets", async () => {
    const store = await storeWith(CPU);
    const started = performance.now();
    const err = await errorOf(store, "SELECT mean(v) FROM cpu WHERE time >= '2023-01-01T00:00:00Z' AND time < '2024-01-01T00:00:00Z' GROUP BY time(1ns)");
    expect(err).toContain("max-select-buckets limit exceeded");
    expect(performance.now() - started).toBeLessThan(500);
  });

  test("a query reading more points than the limit fails", async () => {
    const store = await storeWith(CPU);
    const err = await errorOf(store, "SELECT v FROM cpu", { limits: { maxSelectPoints: 3, maxSelectSeries: 100 } });
    expect(err).toContain("max-select-point limit exceeded");
  });

  test("a query reading more series than the limit fails", async () => {
    const store = await storeWith(CPU);
    const err = await errorOf(store, "SELECT v FROM cpu", { limits: { maxSelectPoints: 100, maxSelectSeries: 1 } });
    expect(err).toContain("max-select-series limit exceeded");
  });
});

describe("time ranges", () => {
  test("GROUP BY time() without a lower bound starts at the first point's bucket and ends at now()", async () => {
    const store = await storeWith("m v=1 1700000500000000000\nm v=2 1700000900000000000");
    const out = JSON.parse(await json(store, "SELECT count(v) FROM m GROUP BY time(1m)")) as { results: Array<{ series: Array<{ values: unknown[][] }> }> };
    const values = out.results[0]!.series[0]!.values;
    expect(values[0]).toEqual([1700000460000000000, 1]);
    // The point after now() is outside the default range.
    expect(values.at(-1)![0]).toBe(Number((NOW / 60_000_000_000n) * 60_000_000_000n));
    expect(values.reduce((n, r) => n + (r[1] as number), 0)).toBe(1);
  });

  test("a raw query without an upper bound includes points after now()", async () => {
    const store = await storeWith("m v=1 1\nm v=2 1800000000000000000");
    expect(await json(store, "SELECT v FROM m")).toContain("1800000000000000000,2");
  });

  test("values in chunks and in hot buffers are read together", async () => {
    const store = await storeWith("m v=1 10\nm v=2 20");
    store.flushAll();
    await write(store, "m v=3 30\nm v=20 20");
    expect(await json(store, "SELECT v FROM m")).toBe(
      '{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[10,1],[20,20],[30,3]]}]}]}',
    );
  });
});

describe("schema changes", () => {
  test("CREATE DATABASE makes an empty database that SHOW DATABASES lists", async () => {
    const store = await storeWith("");
    await run(store, "CREATE DATABASE made WITH DURATION 30d");
    expect(await json(store, "SHOW DATABASES")).toBe(
      '{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["made"]]}]}]}',
    );
  });

  test("DROP DATABASE removes it, and dropping an unknown one succeeds", async () => {
    const store = await storeWith(CPU);
    const results = await run(store, "DROP DATABASE db; DROP DATABASE nope; SHOW DATABASES");
    expect(results.map((r) => r.error ?? "ok")).toEqual(["ok", "ok", "ok"]);
    expect(store.databases()).toEqual([]);
  });

  test("DROP MEASUREMENT removes only that measurement", async () => {
    const store = await storeWith(CPU + "\nmem f=1 1");
    await run(store, "DROP MEASUREMENT cpu");
    expect(await json(store, "SHOW MEASUREMENTS")).toBe('{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["mem"]]}]}]}');
  });

  test("DROP SERIES removes the matching series from SHOW SERIES and SELECT", async () => {
    const store = await storeWith(CPU);
    expect((await run(store, "DROP SERIES FROM cpu WHERE host = 'a'"))[0]?.error).toBeUndefined();
    expect(await json(store, "SHOW SERIES")).toBe('{"results":[{"statement_id":0,"series":[{"columns":["key"],"values":[["cpu,host=b"]]}]}]}');
    expect(await json(store, "SELECT v FROM cpu")).not.toContain("host=a");
  });

  test("DROP SERIES refuses a time condition", async () => {
    const store = await storeWith(CPU);
    expect(await errorOf(store, "DROP SERIES FROM cpu WHERE time > 0")).toContain("DROP SERIES doesn't support time");
  });

  test("DELETE removes values in the time range of matching series only", async () => {
    const store = await storeWith(CPU);
    await run(store, "DELETE FROM cpu WHERE host = 'a' AND time < 1700000030s");
    expect(await json(store, "SELECT v FROM cpu")).toBe(
      '{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","v"],"values":[[1700000010000000000,2],[1700000060000000000,3],[1700000070000000000,4]]}]}]}',
    );
  });

  test("DELETE refuses field conditions", async () => {
    const store = await storeWith(CPU);
    expect(await errorOf(store, "DELETE FROM cpu WHERE v > 1")).toContain("fields not supported in WHERE clause during deletion");
  });
});

describe("a query shares the thread with ingest", () => {
  test("a long query lets timers (and so queued writes) run while it works", async () => {
    const lines: string[] = [];
    for (let h = 0; h < 2000; h++) for (let t = 0; t < 20; t++) lines.push(`m,host=h${h} v=${t} ${1700000000000000000n + BigInt(t) * 1_000_000_000n}`);
    const store = await storeWith(lines.join("\n"));
    let fired = false;
    let pauses = 0;
    setTimeout(() => (fired = true), 0);
    const results = await run(store, "SELECT mean(v) FROM m WHERE time >= 1700000000s AND time < 1700000020s GROUP BY time(5s), host", {
      limits: { maxSelectPoints: 1_000_000, maxSelectSeries: 10_000 },
      pause: async () => {
        pauses++;
        await new Promise((r) => setTimeout(r, 0));
      },
    });
    expect(results[0]?.series?.length).toBe(2000);
    expect(pauses).toBeGreaterThan(0);
    expect(fired).toBe(true);
  });
});
