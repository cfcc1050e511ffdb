/**
 * /query over HTTP and the `query` command. The HTTP cases run against the real app
 * (createApp with the query routes, a real store in a temporary directory) through
 * request(); the last block runs against a real server process.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { runQuery, renderTables } from "../src/cli/query.ts";
import { DEFAULT_ENGINE } from "../src/config.ts";
import { createApp } from "../src/http/app.ts";
import { silentLogger } from "../src/log.ts";
import { Store } from "../src/store/store.ts";
import { removeDir, startNode, write, type NodeProcess } from "./support/node.ts";

const DATA = ["cpu,host=a v=1.5,n=9007199254740993i 1700000000000000001", "cpu,host=b v=2.5,n=2i 1700000060000000000"].join("\n");

let dir: string;
let store: Store;
let app: Hono;
const TOKEN = "right";

/** A request to the app with the right token, unless the test sends its own credentials. */
function request(path: string, init: RequestInit = {}): Response | Promise<Response> {
  return app.request(path, { ...init, headers: { Authorization: `Token ${TOKEN}`, ...(init.headers as Record<string, string> | undefined) } });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tsdb-pair-query-http-"));
  store = Store.open({ dataDir: dir, nodeId: "node-a", sync: "off", engine: DEFAULT_ENGINE });
  app = createApp({
    store,
    version: "test",
    authToken: TOKEN,
    maxBodyBytes: 1_000_000,
    autoCreate: true,
    log: silentLogger,
    maxSelectPoints: 1_000,
    maxSelectSeries: 100,
    nowNs: () => 1_700_000_600_000_000_000n,
  });
  expect((await request("/write?db=db", { method: "POST", body: DATA })).status).toBe(204);
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(params: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  const res = await request(`/query?${new URLSearchParams(params)}`, { headers });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

describe("GET and POST /query", () => {
  test("answers a GET in InfluxDB's JSON shape with exact integers and times", async () => {
    const res = await get({ db: "db", q: "SELECT n FROM cpu", epoch: "ns" });
    expect(res.status).toBe(200);
    expect(res.type).toContain("application/json");
    expect(res.text).toBe(
      '{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","n"],"values":[[1700000000000000001,9007199254740993],[1700000060000000000,2]]}]}]}\n',
    );
  });

  test("takes q and db from a form body, as Grafana POSTs them", async () => {
    const res = await request("/query", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ q: "SELECT count(v) FROM cpu", db: "db" }),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('"values":[["1970-01-01T00:00:00Z",2]]');
  });

  test("takes q from a multipart form body", async () => {
    const form = new FormData();
    form.set("q", "SHOW DATABASES");
    const res = await request("/query", { method: "POST", body: form });
    expect(await res.text()).toContain('"values":[["db"]]');
  });

  const badRequests: Array<[string, Record<string, string>, string]> = [
    ["a missing q", { db: "db" }, 'missing required parameter "q"'],
    ["a parse error, with its position", { db: "db", q: "SELECT FROM cpu" }, "error parsing query: found FROM, expected identifier, string, number, bool at line 1, char 8"],
    ["an unknown epoch", { db: "db", q: "SHOW DATABASES", epoch: "us2" }, 'invalid epoch "us2"'],
    ["params that are not a JSON object", { db: "db", q: "SHOW DATABASES", params: "[1]" }, "error parsing query parameters"],
  ];
  for (const [name, params, message] of badRequests) {
    test(`answers 400 with {"error"} for ${name}`, async () => {
      const res = await get(params);
      expect(res.status).toBe(400);
      expect((JSON.parse(res.text) as { error: string }).error).toContain(message);
    });
  }

  test("reports execution errors per statement inside a 200", async () => {
    const res = await get({ db: "db", q: "SELECT v FROM cpu LIMIT 1; SELECT v FROM nope" });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as { results: Array<{ statement_id: number; error?: string }> };
    expect(body.results.map((r) => r.error ?? "ok")).toEqual(["ok", 'measurement not found: "nope" in database "db"']);
  });

  test("reports a limit hit as a statement error", async () => {
    const res = await get({ db: "db", q: "SELECT mean(v) FROM cpu WHERE time >= 0 GROUP BY time(1s)" });
    expect(res.text).toContain("max-select-buckets limit exceeded");
  });

  test("substitutes bound parameters", async () => {
    const res = await get({ db: "db", q: "SELECT v FROM cpu WHERE host = $h", params: '{"h":"b"}', epoch: "s" });
    expect(res.text).toContain('"values":[[1700000060,2.5]]');
  });

  test("answers CSV for Accept: application/csv", async () => {
    const res = await get({ db: "db", q: "SELECT v FROM cpu GROUP BY host" }, { Accept: "application/csv" });
    expect(res.type).toContain("text/csv");
    expect(res.text).toBe("name,tags,time,v\ncpu,host=a,1700000000000000001,1.5\ncpu,host=b,1700000060000000000,2.5\n");
  });

  test("streams one JSON document per chunk when chunked", async () => {
    const res = await get({ db: "db", q: "SELECT v FROM cpu; SHOW DATABASES", chunked: "true", chunk_size: "1" });
    const docs = res.text.trim().split("\n").map((l) => JSON.parse(l) as { results: Array<{ statement_id: number; partial?: boolean }> });
    expect(docs.map((d) => [d.results[0]!.statement_id, d.results[0]!.partial ?? false])).toEqual([
      [0, true],
      [0, false],
      [1, false],
    ]);
  });

  test("pretty=true indents the answer", async () => {
    const res = await get({ q: "SHOW DATABASES", pretty: "true" });
    expect(res.text.startsWith('{\n    "results": [')).toBe(true);
  });

  test("refuses bad credentials with 401 through the app's error handler", async () => {
    const res = await get({ q: "SHOW DATABASES" }, { Authorization: "Token wrong" });
    expect(res.status).toBe(401);
  });
});

describe("tsdb-pair query", () => {
  const viaApp = ((input: URL | RequestInfo, init?: RequestInit) => request(String(input), init)) as typeof fetch;

  test("prints a readable table per series", async () => {
    let out = "";
    await runQuery({ query: "SELECT v, n FROM cpu GROUP BY host", db: "db", epoch: "s" }, (t) => (out += t), viaApp);
    expect(out).toBe(
      ["name: cpu", "tags: host=a", "time       v   n", "----       -   -", "1700000000 1.5 9007199254740993", "", "name: cpu", "tags: host=b", "time       v   n", "----       -   -", "1700000060 2.5 2", ""].join("\n"),
    );
  });

  test("prints the JSON or CSV answer as it came", async () => {
    let json = "";
    await runQuery({ query: "SHOW DATABASES", format: "json" }, (t) => (json += t), viaApp);
    expect(JSON.parse(json)).toEqual({ results: [{ statement_id: 0, series: [{ name: "databases", columns: ["name"], values: [["db"]] }] }] });
    let csv = "";
    await runQuery({ query: "SHOW DATABASES", format: "csv" }, (t) => (csv += t), viaApp);
    expect(csv).toBe("name,tags,name\ndatabases,,db\n");
  });

  test("fails with the statement's error", async () => {
    const err = await runQuery({ query: "SELECT v FROM nope", db: "db" }, () => {}, viaApp).catch((e) => e);
    expect((err as Error).message).toContain('statement 0 failed: measurement not found: "nope"');
  });

  test("fails with the parse error", async () => {
    const err = await runQuery({ query: "SELEC", db: "db" }, () => {}, viaApp).catch((e) => e);
    expect((err as Error).message).toContain("query failed (HTTP 400): error parsing query");
  });

  test("refuses an unknown format", async () => {
    const err = await runQuery({ query: "SHOW DATABASES", format: "xml" }, () => {}, viaApp).catch((e) => e);
    expect((err as Error).message).toContain("invalid --format");
  });

  test("renders empty results as nothing", () => {
    expect(renderTables([{ statement_id: 0 }])).toBe("");
  });
});

describe("retention through InfluxQL", () => {
  test("CREATE DATABASE WITH DURATION shows in SHOW RETENTION POLICIES as InfluxDB prints it", async () => {
    const make = await get({ q: "CREATE DATABASE kept WITH DURATION 30d" });
    expect(make.status).toBe(200);
    const show = await get({ q: "SHOW RETENTION POLICIES ON kept" });
    expect(JSON.parse(show.text).results[0].series[0].values).toEqual([["autogen", "720h0m0s", "24h0m0s", 1, true]]);
    const plain = await get({ q: "SHOW RETENTION POLICIES ON db" });
    expect(JSON.parse(plain.text).results[0].series[0].values).toEqual([["autogen", "0s", "168h0m0s", 1, true]]);
  });
});

describe("a real server process", () => {
  let node: NodeProcess | undefined;

  beforeAll(async () => {
    node = await startNode();
  }, 30_000);

  afterAll(async () => {
    if (node) {
      await node.stop();
      removeDir(node.dataDir);
    }
  });

  test("answers queries over the data it was sent", async () => {
    expect((await write(node!.url, DATA, "db=proc")).status).toBe(204);
    const res = await fetch(`${node!.url}/query?db=proc&epoch=ns&q=${encodeURIComponent("SELECT max(n) FROM cpu")}`);
    expect(await res.text()).toBe('{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","max"],"values":[[1700000000000000001,9007199254740993]]}]}]}\n');
  });

  test("the query command prints a table from the running node", async () => {
    let out = "";
    await runQuery({ query: "SHOW MEASUREMENTS", db: "proc", url: node!.url }, (t) => (out += t));
    expect(out).toBe("name: measurements\nname\n----\ncpu\n");
  });
});
