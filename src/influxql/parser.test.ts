import { describe, expect, test } from "bun:test";
import { isTsdbError } from "../errors.ts";
import type { Expr, SelectStatement, Statement } from "./ast.ts";
import { formatExpr } from "./ast.ts";
import { parseDuration } from "./lexer.ts";
import { parseExpr, parseQuery } from "./parser.ts";

function select(q: string, params: Record<string, unknown> = {}): SelectStatement {
  const [stmt] = parseQuery(q, params as never);
  expect(stmt?.kind).toBe("select");
  return stmt as SelectStatement;
}

function parseError(q: string, params: Record<string, unknown> = {}): string {
  try {
    parseQuery(q, params as never);
  } catch (e) {
    expect(isTsdbError(e, "bad_request")).toBe(true);
    return (e as Error).message;
  }
  throw new Error(`expected a parse error for ${q}`);
}

describe("expressions", () => {
  const cases: Array<[string, string, string]> = [
    ["multiplication binds tighter than addition", "a + b * c - d", "a + b * c - d"],
    ["AND binds tighter than OR", "a = 1 OR b = 2 AND c = 3", "a = 1 OR b = 2 AND c = 3"],
    ["parentheses are kept", "(a = 1 OR b = 2) AND c = 3", "(a = 1 OR b = 2) AND c = 3"],
    ["a negated field becomes -1 times the field", "-v", "-1 * v"],
    ["a negative number is a literal", "v > -2.5", "v > -2.5"],
    ["regex comparisons", "host =~ /^a\\/b$/ AND dc !~ /x/", "host =~ /^a\\/b$/ AND dc !~ /x/"],
    ["quoted identifiers keep any character", '"my field" + "x\\"y"', '"my field" + "x\\"y"'],
    ["casts", "v::field + host::tag", "v::field + host::tag"],
    ["now() minus a duration", "time > now() - 1h", "time > now() - 3600000000000ns"],
    ["string escapes", "s = 'it\\'s'", "s = 'it\\'s'"],
    ["bitwise operators", "a & 3 | b ^ 1", "a & 3 | b ^ 1"],
    ["<> is !=", "a <> 'x'", "a != 'x'"],
  ];
  for (const [name, text, printed] of cases) {
    test(name, () => {
      expect(formatExpr(parseExpr(text))).toBe(printed);
    });
  }
});

describe("durations", () => {
  const cases: Array<[string, string, bigint]> = [
    ["nanoseconds", "5ns", 5n],
    ["microseconds with u", "3u", 3_000n],
    ["microseconds with µ", "3µ", 3_000n],
    ["milliseconds, not minutes", "7ms", 7_000_000n],
    ["minutes", "2m", 120_000_000_000n],
    ["weeks", "1w", 604_800_000_000_000n],
    ["compound durations", "1h30m", 5_400_000_000_000n],
    ["epoch timestamps in milliseconds", "1700000000000ms", 1_700_000_000_000_000_000n],
  ];
  for (const [name, text, ns] of cases) {
    test(`parses ${name}`, () => {
      expect(parseDuration(text)).toBe(ns);
      const e = parseExpr(`time > ${text}`) as Expr & { kind: "binary" };
      expect(e.rhs).toEqual({ kind: "duration", ns });
    });
  }
});

describe("SELECT", () => {
  test("reads Grafana's panel query", () => {
    const s = select('SELECT mean("usage_user") FROM "cpu" WHERE ("host" =~ /^(a|b)$/) AND time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(1m), "host" fill(null)');
    expect(s.fields).toEqual([{ expr: { kind: "call", name: "mean", args: [{ kind: "var", name: "usage_user" }] }, alias: null }]);
    expect(s.sources).toEqual([{ db: null, rp: null, name: "cpu", regex: null }]);
    expect(s.dimensions).toEqual([
      { kind: "time", interval: 60_000_000_000n, offset: 0n },
      { kind: "tag", name: "host" },
    ]);
    expect(s.fill).toEqual({ kind: "null" });
  });

  test("reads every clause in InfluxQL's order", () => {
    const s = select("SELECT max(v) AS m FROM m WHERE v > 1 GROUP BY time(10s, -5s), * fill(previous) ORDER BY time DESC LIMIT 10 OFFSET 2 SLIMIT 1 SOFFSET 3 tz('Europe/Paris')");
    expect([s.descending, s.limit, s.offset, s.slimit, s.soffset, s.tz]).toEqual([true, 10, 2, 1, 3, "Europe/Paris"]);
    expect(s.dimensions).toEqual([{ kind: "time", interval: 10_000_000_000n, offset: -5_000_000_000n }, { kind: "wildcard" }]);
    expect(s.fields[0]!.alias).toBe("m");
  });

  const sources: Array<[string, string, object]> = [
    ["a plain name", "m", { db: null, rp: null, name: "m", regex: null }],
    ["retention policy and name", "autogen.m", { db: null, rp: "autogen", name: "m", regex: null }],
    ["database, policy and name", '"db"."autogen"."m"', { db: "db", rp: "autogen", name: "m", regex: null }],
    ["database and name with an empty policy", "db..m", { db: "db", rp: null, name: "m", regex: null }],
    ["a regex", "/^cpu/", { db: null, rp: null, name: null, regex: "^cpu" }],
    ["a regex in a database", "db.autogen./x/", { db: "db", rp: "autogen", name: null, regex: "x" }],
  ];
  for (const [name, text, source] of sources) {
    test(`FROM ${name}`, () => {
      expect(select(`SELECT v FROM ${text}`).sources).toEqual([source as never]);
    });
  }

  const fills: Array<[string, object]> = [
    ["null", { kind: "null" }],
    ["none", { kind: "none" }],
    ["previous", { kind: "previous" }],
    ["linear", { kind: "linear" }],
    ["0", { kind: "value", value: 0n }],
    ["-1.5", { kind: "value", value: -1.5 }],
  ];
  for (const [arg, fill] of fills) {
    test(`fill(${arg})`, () => {
      expect(select(`SELECT mean(v) FROM m GROUP BY time(1m) fill(${arg})`).fill).toEqual(fill as never);
    });
  }

  test("count(distinct(v)) nests the call", () => {
    expect(select("SELECT count(distinct(v)) FROM m").fields[0]!.expr).toEqual({
      kind: "call",
      name: "count",
      args: [{ kind: "call", name: "distinct", args: [{ kind: "var", name: "v" }] }],
    });
  });

  test("bound parameters become literals of their JSON type", () => {
    const s = select("SELECT v FROM m WHERE host = $h AND v > $n AND ok = $b AND x > $f", { h: "a", n: 3, b: true, f: 1.5 });
    expect(formatExpr(s.condition!)).toBe("host = 'a' AND v > 3 AND ok = true AND x > 1.5");
  });

  test("several statements separated by semicolons", () => {
    const stmts = parseQuery("SELECT v FROM m; SHOW DATABASES;");
    expect(stmts.map((s: Statement) => s.kind)).toEqual(["select", "show_databases"]);
  });
});

describe("SHOW and schema statements", () => {
  const cases: Array<[string, string, object]> = [
    ["SHOW DATABASES", "SHOW DATABASES", { kind: "show_databases" }],
    ["SHOW RETENTION POLICIES ON db", 'SHOW RETENTION POLICIES ON "db"', { kind: "show_retention_policies", db: "db" }],
    [
      "SHOW MEASUREMENTS with a regex filter and limit",
      "SHOW MEASUREMENTS WITH MEASUREMENT =~ /cp/ LIMIT 5",
      { kind: "show_measurements", db: null, filter: { op: "=~", name: null, regex: "cp" }, condition: null, limit: 5, offset: 0 },
    ],
    [
      "SHOW TAG VALUES with a key list",
      'SHOW TAG VALUES FROM cpu WITH KEY IN ("a", "b")',
      { kind: "show_tag_values", db: null, sources: [{ db: null, rp: null, name: "cpu", regex: null }], keyOp: "IN", keys: ["a", "b"], keyRegex: null, condition: null, limit: 0, offset: 0 },
    ],
    [
      "SHOW TAG VALUES with a quoted key as Grafana sends it",
      'SHOW TAG VALUES WITH KEY = "host"',
      { kind: "show_tag_values", db: null, sources: [], keyOp: "=", keys: ["host"], keyRegex: null, condition: null, limit: 0, offset: 0 },
    ],
    ["SHOW FIELD KEYS FROM", "SHOW FIELD KEYS FROM cpu", { kind: "show_field_keys", db: null, sources: [{ db: null, rp: null, name: "cpu", regex: null }], limit: 0, offset: 0 }],
    ["SHOW SERIES EXACT CARDINALITY", "SHOW SERIES EXACT CARDINALITY", { kind: "show_cardinality", what: "series", exact: true, db: null, sources: [], condition: null, keyOp: null, keys: [], keyRegex: null }],
    ["CREATE DATABASE WITH DURATION", "CREATE DATABASE x WITH DURATION 7d", { kind: "create_database", name: "x", duration: 604_800_000_000_000n }],
    ["CREATE DATABASE WITH DURATION INF", "CREATE DATABASE x WITH DURATION INF", { kind: "create_database", name: "x", duration: 0n }],
    ["DROP DATABASE", "DROP DATABASE x", { kind: "drop_database", name: "x" }],
    ["DROP MEASUREMENT", 'DROP MEASUREMENT "cpu"', { kind: "drop_measurement", name: "cpu" }],
  ];
  for (const [name, text, stmt] of cases) {
    test(`reads ${name}`, () => {
      expect(parseQuery(text)).toEqual([stmt as never]);
    });
  }

  test("reads DELETE with tags and time", () => {
    const [stmt] = parseQuery("DELETE FROM m WHERE host = 'a' AND time < now()");
    expect(stmt?.kind).toBe("delete");
  });
});

describe("errors", () => {
  const cases: Array<[string, string, string]> = [
    ["a statement without fields", "SELECT", "error parsing query: found EOF, expected identifier, string, number, bool at line 1, char 8"],
    ["a missing field list", "SELECT FROM m", "error parsing query: found FROM, expected identifier, string, number, bool at line 1, char 8"],
    ["an unknown statement", "SELEC v", "error parsing query: found SELEC, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"],
    ["two statements without a semicolon", "CREATE DATABASE foo CREATE DATABASE bar", "error parsing query: found CREATE, expected ; at line 1, char 21"],
    ["a position on a later line", "SELECT v\nFROM m\nWHERE", "error parsing query: found EOF, expected identifier, string, number, bool at line 3, char 7"],
    ["a regex that does not compile", "SELECT v FROM m WHERE h =~ /(/", "error parsing regexp"],
    ["an unknown time zone", "SELECT v FROM m tz('Nope/Zone')", "unable to find time zone Nope/Zone"],
    ["an unterminated string", "SELECT v FROM m WHERE h = 'x", "found unterminated string"],
    ["a missing bound parameter", "SELECT v FROM m WHERE h = $nope", "missing parameter: nope"],
    ["an integer out of range", "SELECT v FROM m WHERE v > 99999999999999999999", "unable to parse integer"],
    ["ORDER BY a field", "SELECT v FROM m ORDER BY v", "only ORDER BY time supported"],
  ];
  for (const [name, text, message] of cases) {
    test(`refuses ${name}`, () => {
      expect(parseError(text)).toContain(message);
    });
  }

  const unsupported: Array<[string, string]> = [
    ["SELECT INTO", "SELECT v INTO other FROM m"],
    ["subqueries", "SELECT mean(v) FROM (SELECT v FROM m)"],
    ["user management", "SHOW USERS"],
    ["continuous queries", "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(v) INTO x FROM m GROUP BY time(1m) END"],
    ["retention policy management", "CREATE RETENTION POLICY rp ON db DURATION 1d REPLICATION 1"],
    ["killing queries", "KILL QUERY 1"],
    ["EXPLAIN", "EXPLAIN SELECT v FROM m"],
    ["type casts", "SELECT v::integer FROM m"],
    ["database options other than duration", "CREATE DATABASE x WITH REPLICATION 2"],
  ];
  for (const [name, text] of unsupported) {
    test(`names ${name} as not supported`, () => {
      expect(parseError(text)).toMatch(/is not supported by tsdb-pair at line 1, char \d+$/);
    });
  }
});
