/**
 * The InfluxQL syntax tree: what the parser produces and the query executor consumes.
 * Plain data (no classes), so statements can be compared in tests and logged as JSON.
 *
 * Only the subset tsdb-pair executes has node types; the parser refuses everything else
 * with an error naming the feature.
 */

/** Binary operators by precedence (lowest first): OR; AND; comparisons; + - | ^; * / % &. */
export type BinaryOp =
  | "OR"
  | "AND"
  | "="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "=~"
  | "!~"
  | "+"
  | "-"
  | "*"
  | "/"
  | "%"
  | "&"
  | "|"
  | "^";

/** An expression in SELECT fields or WHERE. */
export type Expr =
  /** A field, tag or `time`; `cast` comes from `name::field` / `name::tag`. */
  | { readonly kind: "var"; readonly name: string; readonly cast?: "field" | "tag" }
  /** `*`, optionally `*::field` / `*::tag` (only as a SELECT field or function argument). */
  | { readonly kind: "wildcard"; readonly cast?: "field" | "tag" }
  /** A decimal literal (`1.5`), or an integer literal used where a float is needed. */
  | { readonly kind: "number"; readonly value: number }
  /** An integer literal (`42`); int64, kept exact. */
  | { readonly kind: "integer"; readonly value: bigint }
  /** A single-quoted string; in time comparisons it is an RFC3339 time. */
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "bool"; readonly value: boolean }
  /** A duration literal (`10s`, `1700000000000ms`), in nanoseconds. */
  | { readonly kind: "duration"; readonly ns: bigint }
  /** A `/regex/`; `source` is the pattern as written (Go RE2 syntax, used as a JS RegExp). */
  | { readonly kind: "regex"; readonly source: string }
  /** A function call: aggregates and selectors (`mean(v)`), `now()`, `distinct(v)`. */
  | { readonly kind: "call"; readonly name: string; readonly args: readonly Expr[] }
  | { readonly kind: "binary"; readonly op: BinaryOp; readonly lhs: Expr; readonly rhs: Expr }
  | { readonly kind: "paren"; readonly expr: Expr };

/** One column of a SELECT: an expression and its `AS` alias. */
export interface Field {
  readonly expr: Expr;
  readonly alias: string | null;
}

/** A `FROM` entry: `[db.][rp.]name` or a `/regex/` over measurement names. */
export interface Source {
  readonly db: string | null;
  readonly rp: string | null;
  readonly name: string | null;
  readonly regex: string | null;
}

/** A `GROUP BY` entry. */
export type Dimension =
  /** `time(interval[, offset])`, both in nanoseconds; offset may be negative. */
  | { readonly kind: "time"; readonly interval: bigint; readonly offset: bigint }
  | { readonly kind: "tag"; readonly name: string }
  | { readonly kind: "wildcard" }
  | { readonly kind: "regex"; readonly source: string };

/** `fill(...)`: what empty `GROUP BY time()` buckets hold. Default `null`. */
export type Fill =
  | { readonly kind: "null" }
  | { readonly kind: "none" }
  | { readonly kind: "previous" }
  | { readonly kind: "linear" }
  | { readonly kind: "value"; readonly value: number | bigint };

export interface SelectStatement {
  readonly kind: "select";
  readonly fields: readonly Field[];
  readonly sources: readonly Source[];
  readonly condition: Expr | null;
  readonly dimensions: readonly Dimension[];
  readonly fill: Fill;
  /** ORDER BY time; only time can be ordered on, as in InfluxQL. */
  readonly descending: boolean;
  /** 0 means no limit, as in InfluxQL. */
  readonly limit: number;
  readonly offset: number;
  readonly slimit: number;
  readonly soffset: number;
  /** IANA zone of `tz('...')`, or null for UTC. */
  readonly tz: string | null;
}

/** `SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =|=~ ...] [WHERE ...] [LIMIT] [OFFSET]`. */
export interface ShowMeasurementsStatement {
  readonly kind: "show_measurements";
  readonly db: string | null;
  /** `WITH MEASUREMENT = name` / `=~ /re/` (`!=`, `!~` too). */
  readonly filter: { readonly op: "=" | "!=" | "=~" | "!~"; readonly name: string | null; readonly regex: string | null } | null;
  readonly condition: Expr | null;
  readonly limit: number;
  readonly offset: number;
}

/** `SHOW TAG KEYS [ON db] [FROM ...] [WHERE ...] [LIMIT] [OFFSET]`. */
export interface ShowTagKeysStatement {
  readonly kind: "show_tag_keys";
  readonly db: string | null;
  readonly sources: readonly Source[];
  readonly condition: Expr | null;
  readonly limit: number;
  readonly offset: number;
}

/** `SHOW TAG VALUES [ON db] [FROM ...] WITH KEY = k | != k | IN (...) | =~ /re/ | !~ /re/ [WHERE ...]`. */
export interface ShowTagValuesStatement {
  readonly kind: "show_tag_values";
  readonly db: string | null;
  readonly sources: readonly Source[];
  readonly keyOp: "=" | "!=" | "=~" | "!~" | "IN";
  /** The key names for `=`, `!=`, `IN`; the pattern for `=~`, `!~`. */
  readonly keys: readonly string[];
  readonly keyRegex: string | null;
  readonly condition: Expr | null;
  readonly limit: number;
  readonly offset: number;
}

/** `SHOW FIELD KEYS [ON db] [FROM ...] [LIMIT] [OFFSET]`. */
export interface ShowFieldKeysStatement {
  readonly kind: "show_field_keys";
  readonly db: string | null;
  readonly sources: readonly Source[];
  readonly limit: number;
  readonly offset: number;
}

/** `SHOW SERIES [ON db] [FROM ...] [WHERE ...] [LIMIT] [OFFSET]`. */
export interface ShowSeriesStatement {
  readonly kind: "show_series";
  readonly db: string | null;
  readonly sources: readonly Source[];
  readonly condition: Expr | null;
  readonly limit: number;
  readonly offset: number;
}

/** `SHOW MEASUREMENT|SERIES|TAG KEY|TAG VALUES|FIELD KEY [EXACT] CARDINALITY ...`. */
export interface ShowCardinalityStatement {
  readonly kind: "show_cardinality";
  readonly what: "measurement" | "series" | "tag_key" | "tag_values" | "field_key";
  readonly exact: boolean;
  readonly db: string | null;
  readonly sources: readonly Source[];
  readonly condition: Expr | null;
  /** For TAG VALUES: the WITH KEY clause. */
  readonly keyOp: "=" | "!=" | "=~" | "!~" | "IN" | null;
  readonly keys: readonly string[];
  readonly keyRegex: string | null;
}

export interface ShowDatabasesStatement {
  readonly kind: "show_databases";
}

export interface ShowRetentionPoliciesStatement {
  readonly kind: "show_retention_policies";
  readonly db: string | null;
}

/** `CREATE DATABASE name [WITH DURATION d]`; other WITH options are refused by the parser. */
export interface CreateDatabaseStatement {
  readonly kind: "create_database";
  readonly name: string;
  /** Retention duration in ns (0 = infinite), or null when not given. */
  readonly duration: bigint | null;
}

export interface DropDatabaseStatement {
  readonly kind: "drop_database";
  readonly name: string;
}

export interface DropMeasurementStatement {
  readonly kind: "drop_measurement";
  readonly name: string;
}

/** `DROP SERIES [FROM ...] [WHERE <tags>]`: removes series entirely (no time in WHERE). */
export interface DropSeriesStatement {
  readonly kind: "drop_series";
  readonly sources: readonly Source[];
  readonly condition: Expr | null;
}

/** `DELETE [FROM ...] [WHERE <tags and time>]`: removes values in a time range. */
export interface DeleteStatement {
  readonly kind: "delete";
  readonly sources: readonly Source[];
  readonly condition: Expr | null;
}

export type Statement =
  | SelectStatement
  | ShowDatabasesStatement
  | ShowMeasurementsStatement
  | ShowTagKeysStatement
  | ShowTagValuesStatement
  | ShowFieldKeysStatement
  | ShowSeriesStatement
  | ShowRetentionPoliciesStatement
  | ShowCardinalityStatement
  | CreateDatabaseStatement
  | DropDatabaseStatement
  | DropMeasurementStatement
  | DropSeriesStatement
  | DeleteStatement;

/** Functions that aggregate many points into one value per bucket. */
export const AGGREGATES = new Set(["mean", "median", "mode", "sum", "count", "spread", "stddev", "distinct"]);
/** Functions that pick one of the points (and so can carry its time and other columns). */
export const SELECTORS = new Set(["min", "max", "first", "last", "percentile"]);

/** Writes an expression back as InfluxQL (for error messages and tests). */
export function formatExpr(e: Expr): string {
  switch (e.kind) {
    case "var":
      return quoteIdent(e.name) + (e.cast ? `::${e.cast}` : "");
    case "wildcard":
      return "*" + (e.cast ? `::${e.cast}` : "");
    case "number":
      return Number.isInteger(e.value) ? e.value.toFixed(3) : String(e.value);
    case "integer":
      return String(e.value);
    case "string":
      return `'${e.value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
    case "bool":
      return e.value ? "true" : "false";
    case "duration":
      return `${e.ns}ns`;
    case "regex":
      return `/${e.source.replace(/\//g, "\\/")}/`;
    case "call":
      return `${e.name}(${e.args.map(formatExpr).join(", ")})`;
    case "binary":
      return `${formatExpr(e.lhs)} ${e.op} ${formatExpr(e.rhs)}`;
    case "paren":
      return `(${formatExpr(e.expr)})`;
  }
}

/** Quotes an identifier when it is not a plain word. */
export function quoteIdent(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
