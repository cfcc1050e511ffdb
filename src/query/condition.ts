/**
 * WHERE clauses: the time range is taken out, tag comparisons are decided once per series,
 * and what is left (field comparisons) is evaluated per row.
 *
 * InfluxQL decides whether a name is a field or a tag by the measurement's schema: a name
 * that is a field key is a field (unless written `name::tag`), anything else a tag. A
 * missing tag reads as the empty string, so `WHERE dc = ''` matches series without `dc`.
 */
import type { Expr } from "../influxql/ast.ts";
import { compileRegex } from "../influxql/parser.ts";
import { TsdbError } from "../errors.ts";
import type { SeriesEntry } from "../store/catalog.ts";
import type { Cell } from "./result.ts";
import { MAX_TIME, MIN_TIME, parseTimeLiteral } from "./time.ts";

/** Inclusive time bounds; null where the query gave none. */
export interface TimeBounds {
  readonly lo: bigint | null;
  readonly hi: bigint | null;
}

const isTime = (e: Expr) => e.kind === "var" && e.name.toLowerCase() === "time" && e.cast === undefined;

function unparen(e: Expr): Expr {
  return e.kind === "paren" ? unparen(e.expr) : e;
}

/** True when the expression mentions `time` anywhere. */
function mentionsTime(e: Expr): boolean {
  switch (e.kind) {
    case "var":
      return isTime(e);
    case "binary":
      return mentionsTime(e.lhs) || mentionsTime(e.rhs);
    case "paren":
      return mentionsTime(e.expr);
    default:
      return false;
  }
}

/**
 * Splits a WHERE clause into its time bounds and the rest. Time comparisons must be joined
 * to the rest by AND (InfluxDB rejects time conditions under OR too).
 */
export function splitTime(cond: Expr | null, nowNs: bigint): { bounds: TimeBounds; rest: Expr | null } {
  let lo: bigint | null = null;
  let hi: bigint | null = null;
  const walk = (e: Expr): Expr | null => {
    const u = unparen(e);
    if (u.kind === "binary" && u.op === "AND") {
      const l = walk(u.lhs);
      const r = walk(u.rhs);
      if (l === null) return r;
      if (r === null) return l;
      return { kind: "binary", op: "AND", lhs: l, rhs: r };
    }
    if (u.kind === "binary" && (isTime(unparen(u.lhs)) || isTime(unparen(u.rhs)))) {
      const flipped = !isTime(unparen(u.lhs));
      const valueExpr = flipped ? u.lhs : u.rhs;
      const op = flipped ? flip(u.op) : u.op;
      const v = timeValue(valueExpr, nowNs);
      switch (op) {
        case ">":
          lo = max(lo, v + 1n);
          break;
        case ">=":
          lo = max(lo, v);
          break;
        case "<":
          hi = min(hi, v - 1n);
          break;
        case "<=":
          hi = min(hi, v);
          break;
        case "=":
          lo = max(lo, v);
          hi = min(hi, v);
          break;
        default:
          throw new TsdbError("bad_request", `invalid time comparison operator: ${u.op} (use >, >=, <, <= or =)`);
      }
      return null;
    }
    if (mentionsTime(u)) {
      throw new TsdbError("bad_request", "invalid time condition: time can only be compared with AND-joined >, >=, <, <= or =, not under OR");
    }
    return e;
  };
  const rest = cond === null ? null : walk(cond);
  return { bounds: { lo, hi }, rest };
}

function flip(op: string): string {
  return op === ">" ? "<" : op === ">=" ? "<=" : op === "<" ? ">" : op === "<=" ? ">=" : op;
}

const max = (a: bigint | null, b: bigint) => (a === null || b > a ? b : a);
const min = (a: bigint | null, b: bigint) => (a === null || b < a ? b : a);

/**
 * The nanosecond value of a time operand: `now()`, RFC3339 strings, integers (ns), epoch
 * durations such as `1700000000000ms`, and sums and differences of these.
 */
export function timeValue(e: Expr, nowNs: bigint): bigint {
  switch (e.kind) {
    case "paren":
      return timeValue(e.expr, nowNs);
    case "call":
      if (e.name === "now" && e.args.length === 0) return nowNs;
      break;
    case "string":
      return parseTimeLiteral(e.value);
    case "integer":
      return e.value;
    case "number":
      return BigInt(Math.trunc(e.value));
    case "duration":
      return e.ns;
    case "binary":
      if (e.op === "+") return timeValue(e.lhs, nowNs) + timeValue(e.rhs, nowNs);
      if (e.op === "-") return timeValue(e.lhs, nowNs) - timeValue(e.rhs, nowNs);
      break;
  }
  throw new TsdbError("bad_request", `invalid time value: expected now(), a duration, an RFC3339 string or a number`);
}

/** Clamps query bounds to InfluxQL's representable range. */
export function clampBounds(b: TimeBounds): { lo: bigint; hi: bigint } {
  const lo = b.lo === null || b.lo < MIN_TIME ? MIN_TIME : b.lo;
  const hi = b.hi === null || b.hi > MAX_TIME ? MAX_TIME : b.hi;
  return { lo, hi };
}

/** How a name in a condition resolves for one measurement. */
export type NameKind = (name: string, cast: "field" | "tag" | undefined) => "field" | "tag";

const regexCache = new Map<string, RegExp>();

/** A compiled regex, cached by pattern (patterns were checked by the parser). */
export function regexOf(source: string): RegExp {
  let re = regexCache.get(source);
  if (re === undefined) {
    re = compileRegex(source);
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(source, re);
  }
  return re;
}

/**
 * Decides the tag parts of a condition for one series: true (series passes whatever its
 * fields hold), false (skip the series) or the expression left to evaluate per row.
 */
export function reduceForSeries(e: Expr, series: SeriesEntry, kind: NameKind): boolean | Expr {
  switch (e.kind) {
    case "paren":
      return reduceForSeries(e.expr, series, kind);
    case "bool":
      return e.value;
    case "binary": {
      if (e.op === "AND" || e.op === "OR") {
        const l = reduceForSeries(e.lhs, series, kind);
        const r = reduceForSeries(e.rhs, series, kind);
        if (e.op === "AND") {
          if (l === false || r === false) return false;
          if (l === true) return r;
          if (r === true) return l;
          return { kind: "binary", op: "AND", lhs: l, rhs: r };
        }
        if (l === true || r === true) return true;
        if (l === false) return r;
        if (r === false) return l;
        return { kind: "binary", op: "OR", lhs: l, rhs: r };
      }
      const lhs = unparen(e.lhs);
      const rhs = unparen(e.rhs);
      const tagSide = lhs.kind === "var" && kind(lhs.name, lhs.cast) === "tag" ? lhs : rhs.kind === "var" && kind(rhs.name, rhs.cast) === "tag" ? rhs : null;
      const other = tagSide === lhs ? rhs : lhs;
      if (tagSide !== null && tagSide.kind === "var" && (other.kind === "string" || other.kind === "regex" || (other.kind === "var" && kind(other.name, other.cast) === "tag"))) {
        const value = series.tag(tagSide.name);
        const op = tagSide === lhs ? e.op : flip(e.op);
        if (other.kind === "regex") {
          const re = regexOf(other.source);
          if (op === "=~") return re.test(value);
          if (op === "!~") return !re.test(value);
          throw new TsdbError("bad_request", `invalid operator ${e.op} with a regex: use =~ or !~`);
        }
        const against = other.kind === "string" ? other.value : series.tag((other as { name: string }).name);
        switch (op) {
          case "=":
            return value === against;
          case "!=":
            return value !== against;
          case "<":
            return value < against;
          case "<=":
            return value <= against;
          case ">":
            return value > against;
          case ">=":
            return value >= against;
        }
        throw new TsdbError("bad_request", `invalid operator ${e.op} for tag ${JSON.stringify(tagSide.name)}`);
      }
      if (tagSide !== null && (other.kind === "integer" || other.kind === "number" || other.kind === "bool")) {
        // A tag is a string; InfluxDB finds no series when it is compared with a number.
        return e.op === "!=" ? true : false;
      }
      return e;
    }
    default:
      return e;
  }
}

/** Field values of one row by field name, plus the series for tag lookups. */
export interface RowScope {
  field(name: string): Cell;
  tag(name: string): string;
}

/** Evaluates a residual condition on one row; null or type mismatches count as false. */
export function rowMatches(e: Expr, scope: RowScope, kind: NameKind): boolean {
  const v = evalValue(e, scope, kind);
  return v === true;
}

/** Evaluates an expression over one row (conditions and raw SELECT arithmetic alike). */
export function evalValue(e: Expr, scope: RowScope, kind: NameKind): Cell {
  switch (e.kind) {
    case "paren":
      return evalValue(e.expr, scope, kind);
    case "var":
      return kind(e.name, e.cast) === "field" ? scope.field(e.name) : scope.tag(e.name);
    case "integer":
      return e.value;
    case "number":
      return e.value;
    case "string":
      return e.value;
    case "bool":
      return e.value;
    case "duration":
      return e.ns;
    case "binary": {
      if (e.op === "AND") return rowMatches(e.lhs, scope, kind) && rowMatches(e.rhs, scope, kind);
      if (e.op === "OR") return rowMatches(e.lhs, scope, kind) || rowMatches(e.rhs, scope, kind);
      if (e.op === "=~" || e.op === "!~") {
        const l = evalValue(e.lhs, scope, kind);
        const r = unparen(e.rhs);
        if (typeof l !== "string" || r.kind !== "regex") return false;
        const m = regexOf(r.source).test(l);
        return e.op === "=~" ? m : !m;
      }
      const l = evalValue(e.lhs, scope, kind);
      const r = evalValue(e.rhs, scope, kind);
      return binaryOp(e.op, l, r);
    }
    default:
      throw new TsdbError("bad_request", `unsupported expression in this position: ${e.kind}`);
  }
}

/**
 * Arithmetic and comparison between two cells with InfluxQL's typing: integers stay exact
 * int64 for + - * % & | ^, `/` always gives a float, mixing an integer with a float gives a
 * float, division by zero gives 0 (InfluxDB's choice), and null propagates.
 */
export function binaryOp(op: string, l: Cell, r: Cell): Cell {
  if (l === null || r === null) return comparisonOps.has(op) ? false : null;
  if (typeof l === "bigint" && typeof r === "bigint") {
    switch (op) {
      case "+":
        return BigInt.asIntN(64, l + r);
      case "-":
        return BigInt.asIntN(64, l - r);
      case "*":
        return BigInt.asIntN(64, l * r);
      case "/":
        return r === 0n ? 0 : Number(l) / Number(r);
      case "%":
        return r === 0n ? 0n : l % r;
      case "&":
        return l & r;
      case "|":
        return l | r;
      case "^":
        return l ^ r;
    }
  }
  if ((typeof l === "number" || typeof l === "bigint") && (typeof r === "number" || typeof r === "bigint")) {
    const a = Number(l);
    const b = Number(r);
    switch (op) {
      case "+":
        return a + b;
      case "-":
        return a - b;
      case "*":
        return a * b;
      case "/":
        return b === 0 ? 0 : a / b;
      case "%":
        return b === 0 ? 0 : a % b;
      case "=":
        return typeof l === "bigint" && typeof r === "bigint" ? l === r : a === b;
      case "!=":
        return typeof l === "bigint" && typeof r === "bigint" ? l !== r : a !== b;
      case "<":
        return typeof l === "bigint" && typeof r === "bigint" ? l < r : a < b;
      case "<=":
        return typeof l === "bigint" && typeof r === "bigint" ? l <= r : a <= b;
      case ">":
        return typeof l === "bigint" && typeof r === "bigint" ? l > r : a > b;
      case ">=":
        return typeof l === "bigint" && typeof r === "bigint" ? l >= r : a >= b;
    }
    return null;
  }
  if (typeof l === "string" && typeof r === "string") {
    switch (op) {
      case "=":
        return l === r;
      case "!=":
        return l !== r;
      case "<":
        return l < r;
      case "<=":
        return l <= r;
      case ">":
        return l > r;
      case ">=":
        return l >= r;
    }
    return null;
  }
  if (typeof l === "boolean" && typeof r === "boolean") {
    switch (op) {
      case "=":
        return l === r;
      case "!=":
        return l !== r;
      case "&":
        return l && r;
      case "|":
        return l || r;
      case "^":
        return l !== r;
    }
    return null;
  }
  return comparisonOps.has(op) ? false : null;
}

const comparisonOps = new Set(["=", "!=", "<", "<=", ">", ">=", "=~", "!~", "AND", "OR"]);

/** Field names a condition reads (for loading them alongside the selected fields). */
export function fieldsIn(e: Expr | null, kind: NameKind, out: Set<string> = new Set()): Set<string> {
  if (e === null) return out;
  switch (e.kind) {
    case "var":
      if (kind(e.name, e.cast) === "field") out.add(e.name);
      break;
    case "binary":
      fieldsIn(e.lhs, kind, out);
      fieldsIn(e.rhs, kind, out);
      break;
    case "paren":
      fieldsIn(e.expr, kind, out);
      break;
    case "call":
      for (const a of e.args) fieldsIn(a, kind, out);
      break;
  }
  return out;
}
