/**
 * Shared by the query tests and the query benchmark: a small data set that exercises the
 * InfluxQL subset, the queries compared against InfluxDB 1.6.7, and a throwaway `influxd`
 * (loopback only, temporary directories, killed afterwards) when one is installed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Line protocol (ns) around 2023-11-14T22:13:20Z, with every field type and some edge cases. */
export const FIXTURE = [
  "cpu,host=a,region=us usage_user=1.5,usage_idle=90 1700000000000000000",
  "cpu,host=b,region=eu usage_user=2.5,usage_idle=80 1700000000000000000",
  "cpu,host=a,region=us usage_user=3,usage_idle=70 1700000010000000000",
  "cpu,host=b,region=eu usage_user=4.25,usage_idle=60 1700000020000000000",
  "cpu,host=a,region=us usage_user=5,usage_idle=50 1700000030000000000",
  "cpu,host=c usage_user=10 1700000045000000000",
  "cpu,host=a,region=us usage_user=7.5,usage_idle=40 1700000070000000000",
  "cpu,host=b,region=eu usage_user=0.5 1700000125000000000",
  "mem,host=a used=100i,free=9007199254740993i,ok=true,state=\"up\" 1700000000000000000",
  "mem,host=a used=200i,free=5i,ok=false,state=\"down\" 1700000030000000000",
  "mem,host=b used=300i,free=7i,ok=true,state=\"up\" 1700000030000000000",
  "mem,host=b used=50i,ok=true,state=\"up\" 1700000090000000000",
  "same,host=a host=1.5,v=1 1700000000000000000",
  "same,host=b host=2.5,v=2 1700000010000000000",
  "frac v=1 1700000000123456789",
  "frac v=2 1700000000100000000",
  "frac v=3 1700000000999999999",
  "net,host=a,iface=eth0 rx=10i,tx=1.5 1700000000000000000",
  "net,host=a,iface=eth1 rx=20i,tx=2.5 1700000005000000000",
  "net,host=a,iface=eth0 rx=30i,tx=3.5 1700000060000000000",
].join("\n");

export const FIXTURE_DB = "fx";

/**
 * Queries whose answers must be the same JSON as InfluxDB 1.6.7's (with `epoch` as given).
 * Each: [sentence, query, epoch]. Queries where 1.6.7 is wrong are tested elsewhere.
 */
export const SAME_AS_INFLUX: Array<[string, string, string]> = [
  ["raw select of one field merges series by time", "SELECT usage_user FROM cpu", "ns"],
  ["raw select of a field and a tag", "SELECT usage_user, host FROM cpu", "ns"],
  ["select star lists fields and tags sorted by name", "SELECT * FROM cpu", "ns"],
  ["select star renames a tag that shares a field's name", "SELECT * FROM same", "ns"],
  ["star with GROUP BY leaves the grouped tag out", "SELECT * FROM cpu GROUP BY host", "ns"],
  ["star as fields only", "SELECT *::field FROM cpu", "ns"],
  ["regex field list", "SELECT /usage/ FROM cpu", "ns"],
  ["arithmetic between fields and numbers", "SELECT usage_user + usage_idle, usage_user * 2, usage_idle / 4, 100 - usage_idle AS busy FROM cpu", "ns"],
  ["integer arithmetic stays integer except division", "SELECT used * 2, used / 3, used % 7, used + free FROM mem", "ns"],
  ["quoted identifiers and db.rp.measurement", 'SELECT "usage_user" FROM "fx"."autogen"."cpu" WHERE "host" = \'a\'', "ns"],
  ["db..measurement", "SELECT usage_user FROM fx..cpu WHERE host = 'b'", "ns"],
  ["FROM a regex over measurement names", "SELECT v FROM /^(same|frac)$/", "ns"],
  ["FROM two measurements", "SELECT used, usage_user FROM cpu, mem", "ns"],
  ["tag equality and inequality", "SELECT usage_user FROM cpu WHERE host = 'a' OR host != 'b'", "ns"],
  ["tag regex match and non-match", "SELECT usage_user FROM cpu WHERE host =~ /^(a|c)$/ AND host !~ /c/", "ns"],
  ["a missing tag equals the empty string", "SELECT usage_user FROM cpu WHERE region = ''", "ns"],
  ["field comparisons filter rows", "SELECT usage_user FROM cpu WHERE usage_user > 2 AND usage_idle <= 70", "ns"],
  ["field and tag conditions mixed with OR and parentheses", "SELECT usage_user FROM cpu WHERE (host = 'c' OR usage_user < 2) AND usage_user >= 0", "ns"],
  ["string and boolean field conditions", "SELECT used FROM mem WHERE state = 'up' AND ok = true", "ns"],
  ["time bounds with RFC3339 strings", "SELECT usage_user FROM cpu WHERE time >= '2023-11-14T22:13:30Z' AND time < '2023-11-14T22:14:00Z'", "ns"],
  ["time bounds with epoch durations", "SELECT usage_user FROM cpu WHERE time > 1700000010000ms AND time <= 1700000030s", "ns"],
  ["time equality", "SELECT usage_user FROM cpu WHERE time = 1700000020000000000", "ns"],
  ["time arithmetic with durations", "SELECT usage_user FROM cpu WHERE time >= 1700000000s + 10s AND time < 1700000000s + 1m", "ns"],
  ["time relative to now()", "SELECT usage_user FROM cpu WHERE time > now() - 100000d", "ns"],
  ["nanosecond timestamps print exactly as RFC3339", "SELECT v FROM frac", ""],
  ["nanosecond timestamps print exactly as integers", "SELECT v FROM frac", "ns"],
  ["integers beyond 2^53 print exactly", "SELECT free FROM mem", "ns"],
  ["epoch in milliseconds", "SELECT v FROM frac", "ms"],
  ["epoch in seconds", "SELECT usage_user FROM cpu", "s"],
  ["epoch in hours truncates", "SELECT usage_user FROM cpu", "h"],
  ["ORDER BY time DESC", "SELECT usage_user FROM cpu ORDER BY time DESC", "ns"],
  ["LIMIT and OFFSET", "SELECT usage_user FROM cpu LIMIT 2 OFFSET 1", "ns"],
  ["LIMIT per series with GROUP BY tag", "SELECT usage_user FROM cpu GROUP BY host LIMIT 1", "ns"],
  ["SLIMIT and SOFFSET", "SELECT usage_user FROM cpu GROUP BY host SLIMIT 1 SOFFSET 1", "ns"],
  ["mean over everything reports time 0", "SELECT mean(usage_user) FROM cpu", "ns"],
  ["aggregates over a range report the range start", "SELECT mean(usage_user), count(usage_user), sum(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000100s", "ns"],
  ["a single selector reports its point's time", "SELECT max(usage_user) FROM cpu", "ns"],
  ["first and last", "SELECT first(usage_user) FROM cpu", "ns"],
  ["last per host", "SELECT last(usage_user) FROM cpu GROUP BY host", "ns"],
  ["two selectors report time 0", "SELECT min(usage_user), max(usage_user) FROM cpu", "ns"],
  ["a selector with tags and fields of its point", "SELECT max(usage_user), host, usage_idle FROM cpu", "ns"],
  ["median, mode, spread, stddev", "SELECT median(usage_user), mode(usage_user), spread(usage_user), stddev(usage_user) FROM cpu", "ns"],
  ["integer aggregates", "SELECT sum(used), mean(used), median(used), mode(used), spread(used), min(used), max(used) FROM mem", "ns"],
  ["percentile", "SELECT percentile(usage_user, 50) FROM cpu", "ns"],
  ["several percentiles", "SELECT percentile(usage_user, 5), percentile(usage_user, 95) FROM cpu", "ns"],
  ["count distinct", "SELECT count(distinct(host)) FROM mem", "ns"],
  ["count of distinct field values", "SELECT count(distinct(state)) FROM mem", "ns"],
  ["distinct values", "SELECT distinct(state) FROM mem", "ns"],
  ["string and boolean first, last, count, mode", "SELECT first(state), last(state), count(state), mode(state) FROM mem", "ns"],
  ["max of booleans", "SELECT max(ok) FROM mem", "ns"],
  ["mean of star", "SELECT mean(*) FROM mem", "ns"],
  ["aliases", "SELECT mean(usage_user) AS avg, max(usage_user) AS \"peak\" FROM cpu", "ns"],
  ["arithmetic on aggregates", "SELECT mean(usage_user) * 2 + 1, sum(usage_user) - sum(usage_idle) FROM cpu", "ns"],
  ["GROUP BY time with fill(null)", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(30s)", "ns"],
  ["buckets are aligned to the epoch, so the first may start early", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000005s AND time < 1700000100s GROUP BY time(1m)", "ns"],
  ["GROUP BY time with an offset", "SELECT count(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(1m, 15s)", "ns"],
  ["GROUP BY time with a negative offset", "SELECT count(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(1m, -20s)", "ns"],
  ["count of empty buckets is 0", "SELECT count(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(20s)", "ns"],
  ["fill(none)", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(20s) fill(none)", "ns"],
  ["fill(previous)", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(20s) fill(previous)", "ns"],
  ["fill(linear)", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(20s) fill(linear)", "ns"],
  ["fill with a number", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(20s) fill(-1)", "ns"],
  ["fill(previous) for count", "SELECT count(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(20s) fill(previous)", "ns"],
  ["GROUP BY time and tag", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(1m), host", "ns"],
  ["GROUP BY star", "SELECT max(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(1m), *", "ns"],
  ["GROUP BY a tag regex", "SELECT sum(rx) FROM net GROUP BY /if/", "ns"],
  ["GROUP BY a missing tag gives an empty tag value", "SELECT mean(usage_user) FROM cpu GROUP BY region", "ns"],
  ["GROUP BY time ORDER BY DESC with LIMIT", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(30s), host ORDER BY time DESC LIMIT 2", "ns"],
  ["GROUP BY time with fill(none) and several functions", "SELECT mean(usage_user), max(usage_idle) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(30s) fill(none)", "ns"],
  ["GROUP BY time with a selector reports bucket starts", "SELECT max(usage_user), host FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(1m)", "ns"],
  ["aggregates with field conditions", "SELECT count(usage_user), mean(usage_user) FROM cpu WHERE usage_idle > 50", "ns"],
  ["time zones shift printed times", "SELECT usage_user FROM cpu WHERE host = 'a' tz('Europe/Paris')", ""],
  ["day buckets in a time zone", "SELECT count(usage_user) FROM cpu WHERE time >= '2023-11-13T00:00:00Z' AND time < '2023-11-16T00:00:00Z' GROUP BY time(1d) tz('America/New_York')", ""],
  ["RFC3339 bucket times", "SELECT mean(usage_user) FROM cpu WHERE time >= 1700000000s AND time < 1700000150s GROUP BY time(1m)", ""],
  ["bound parameters", "SELECT usage_user FROM cpu WHERE host = $host AND usage_user > $min", "ns"],
  ["several statements", "SELECT count(usage_user) FROM cpu; SELECT count(used) FROM mem", "ns"],
  ["SHOW DATABASES", "SHOW DATABASES", ""],
  ["SHOW MEASUREMENTS", "SHOW MEASUREMENTS", ""],
  ["SHOW MEASUREMENTS WITH MEASUREMENT regex and LIMIT", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /m/ LIMIT 2", ""],
  ["SHOW MEASUREMENTS WHERE a tag matches", "SHOW MEASUREMENTS WHERE iface = 'eth0'", ""],
  ["SHOW TAG KEYS", "SHOW TAG KEYS", ""],
  ["SHOW TAG KEYS FROM", 'SHOW TAG KEYS FROM "cpu"', ""],
  ["SHOW TAG VALUES WITH KEY =", 'SHOW TAG VALUES FROM "cpu" WITH KEY = "host"', ""],
  ["SHOW TAG VALUES WITH KEY IN and WHERE", "SHOW TAG VALUES FROM cpu, mem WITH KEY IN (\"host\", \"region\") WHERE host != 'a'", ""],
  ["SHOW TAG VALUES WITH KEY regex", "SHOW TAG VALUES FROM net WITH KEY =~ /i/", ""],
  ["SHOW FIELD KEYS", "SHOW FIELD KEYS", ""],
  ["SHOW FIELD KEYS FROM", "SHOW FIELD KEYS FROM mem", ""],
  ["SHOW SERIES", "SHOW SERIES", ""],
  ["SHOW SERIES FROM WHERE", "SHOW SERIES FROM cpu WHERE host = 'a'", ""],
  ["SHOW RETENTION POLICIES", "SHOW RETENTION POLICIES ON fx", ""],
  ["SHOW MEASUREMENT CARDINALITY", "SHOW MEASUREMENT CARDINALITY", ""],
  ["SHOW SERIES CARDINALITY", "SHOW SERIES CARDINALITY", ""],
  ["SHOW SERIES CARDINALITY FROM", "SHOW SERIES CARDINALITY FROM cpu", ""],
  ["SHOW TAG KEY CARDINALITY", "SHOW TAG KEY CARDINALITY", ""],
  ["SHOW TAG VALUES CARDINALITY", "SHOW TAG VALUES CARDINALITY WITH KEY = host", ""],
  ["SHOW FIELD KEY CARDINALITY", "SHOW FIELD KEY CARDINALITY", ""],
  ["parse errors name the position", "SELECT FROM cpu", ""],
  ["an unknown statement keyword", "SELEC usage_user FROM cpu", ""],
  ["an unknown database", "SELECT usage_user FROM nodb..cpu", ""],
  ["mixing aggregates and raw fields", "SELECT usage_user, mean(usage_user) FROM cpu", ""],
  ["GROUP BY time without a function", "SELECT usage_user FROM cpu WHERE time > 0 GROUP BY time(1m)", ""],
  ["percentile without its argument", "SELECT percentile(usage_user) FROM cpu", ""],
  ["a missing q parameter", "", ""],
];

/** Bound parameters for the queries that use them. */
export const FIXTURE_PARAMS: Record<string, unknown> = { host: "a", min: 2 };

/** A running InfluxDB 1.x on loopback, for comparisons. */
export interface Influxd {
  readonly url: string;
  stop(): Promise<void>;
}

/** True when `influxd` is on PATH. */
export function influxdInstalled(): boolean {
  return spawnSync("sh", ["-c", "command -v influxd"], { encoding: "utf8" }).status === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts influxd with a temporary config (loopback only, no reporting) and waits for /ping. */
export async function startInfluxd(timeoutMs = 30_000): Promise<Influxd> {
  const dir = mkdtempSync(join(tmpdir(), "tsdb-pair-influxd-"));
  const [http, rpc] = [await freePort(), await freePort()];
  const conf = join(dir, "influxdb.conf");
  writeFileSync(
    conf,
    [
      "reporting-disabled = true",
      `bind-address = "127.0.0.1:${rpc}"`,
      "[meta]",
      `  dir = "${dir}/meta"`,
      "[data]",
      `  dir = "${dir}/data"`,
      `  wal-dir = "${dir}/wal"`,
      "  query-log-enabled = false",
      "[http]",
      `  bind-address = "127.0.0.1:${http}"`,
      "  log-enabled = false",
      "[monitor]",
      "  store-enabled = false",
      "",
    ].join("\n"),
  );
  const proc: ChildProcess = spawn("influxd", ["-config", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (d: string) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((res) => proc.once("exit", () => res()));
  const url = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/ping`);
      if (res.status === 204) break;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`influxd did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GETs /query and returns status and body text. */
export async function query(
  url: string,
  q: string,
  params: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const u = new URL("/query", url);
  if (q !== "") u.searchParams.set("q", q);
  for (const [k, v] of Object.entries(params)) if (v !== "") u.searchParams.set(k, v);
  const res = await fetch(u, { headers });
  return { status: res.status, text: await res.text() };
}
