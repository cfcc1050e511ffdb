/**
 * The InfluxQL parser: query text (plus bound parameters) in, statements out. Pure: it
 * knows nothing of storage or HTTP.
 *
 * Errors read like InfluxDB's (`error parsing query: found FROM, expected identifier,
 * string, number, bool at line 1, char 8`) because clients and people grep for them.
 * Statements InfluxDB has but tsdb-pair does not execute (users, continuous queries,
 * SELECT INTO, subqueries, ...) are refused here with the feature named.
 */
import { TsdbError } from "../errors.ts";
import type {
  BinaryOp,
  CreateDatabaseStatement,
  DeleteStatement,
  Dimension,
  DropSeriesStatement,
  Expr,
  Field,
  Fill,
  SelectStatement,
  ShowCardinalityStatement,
  Source,
  Statement,
} from "./ast.ts";
import { Lexer, parseDuration, type Token } from "./lexer.ts";

/** A value bound to `$name` through the HTTP `params` argument. */
export type ParamValue = string | number | boolean | null | { readonly [k: string]: unknown };

/** Parses one or more `;`-separated statements; throws TsdbError("bad_request") on bad syntax. */
export function parseQuery(text: string, params: Readonly<Record<string, ParamValue>> = {}): Statement[] {
  return new Parser(text, params).parseQuery();
}

/** Parses a lone expression (tests and tools). */
export function parseExpr(text: string): Expr {
  const p = new Parser(text, {});
  const e = p.expr();
  p.expectEOF();
  return e;
}

/** Operator precedence, as in influxql/token.go. */
const PRECEDENCE: Record<string, number> = {
  OR: 1,
  AND: 2,
  "=": 4,
  "!=": 4,
  "<>": 4,
  "=~": 4,
  "!~": 4,
  "<": 4,
  "<=": 4,
  ">": 4,
  ">=": 4,
  "+": 5,
  "-": 5,
  "|": 5,
  "^": 5,
  "*": 6,
  "/": 6,
  "%": 6,
  "&": 6,
};

const STATEMENT_STARTS = "SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL";

class Parser {
  private readonly lx: Lexer;
  private buf: Token[] = [];

  constructor(
    private readonly src: string,
    private readonly params: Readonly<Record<string, ParamValue>>,
  ) {
    this.lx = new Lexer(src);
  }

  // ---- token helpers ----

  private next(): Token {
    return this.buf.pop() ?? this.lx.next();
  }

  private unread(t: Token): void {
    this.buf.push(t);
  }

  private peek(): Token {
    const t = this.next();
    this.unread(t);
    return t;
  }

  private isKeyword(t: Token, ...words: string[]): boolean {
    return t.kind === "KEYWORD" && words.includes(t.text);
  }

  private isOp(t: Token, ...ops: string[]): boolean {
    return t.kind === "OP" && ops.includes(t.text);
  }

  /** Consumes the keyword if it is next. */
  private accept(word: string): boolean {
    const t = this.next();
    if (this.isKeyword(t, word)) return true;
    this.unread(t);
    return false;
  }

  private acceptOp(op: string): boolean {
    const t = this.next();
    if (this.isOp(t, op)) return true;
    this.unread(t);
    return false;
  }

  private expectKeyword(...words: string[]): string {
    const t = this.next();
    if (t.kind === "KEYWORD" && words.includes(t.text)) return t.text;
    throw this.unexpected(t, words.join(", "));
  }

  private expectOp(op: string): void {
    const t = this.next();
    if (!this.isOp(t, op)) throw this.unexpected(t, op);
  }

  expectEOF(): void {
    const t = this.next();
    if (t.kind !== "EOF") throw this.unexpected(t, "EOF");
  }

  /** InfluxDB's wording; the position is 1-based, and EOF counts one past the end as in Go's scanner. */
  private unexpected(t: Token, expected: string): TsdbError {
    if (t.kind === "BADSTRING") return this.error("found unterminated string or regex", t);
    if (t.kind === "BADESCAPE") return this.error(`bad escape ${JSON.stringify(t.text)}`, t);
    return this.error(`found ${this.describe(t)}, expected ${expected}`, t);
  }

  private describe(t: Token): string {
    if (t.kind === "EOF") return "EOF";
    if (t.kind === "STRING" || t.kind === "IDENT" || t.kind === "REGEX") return this.sourceOf(t) ?? t.text;
    return this.sourceOf(t) ?? t.text;
  }

  /** The token as written in the query (keywords keep their case). */
  private sourceOf(t: Token): string | undefined {
    if (t.kind === "STRING") return t.text;
    if (t.kind === "IDENT") return t.text;
    if (t.kind === "KEYWORD" || t.kind === "TRUE" || t.kind === "FALSE") return this.src.substr(t.offset, t.text.length);
    return undefined;
  }

  private error(message: string, at: { line: number; char: number; kind?: string }): TsdbError {
    const char = at.kind === "EOF" ? at.char + 1 : at.char;
    return new TsdbError("bad_request", `error parsing query: ${message} at line ${at.line}, char ${char}`);
  }

  private unsupported(feature: string, at: Token): TsdbError {
    return this.error(`${feature} is not supported by tsdb-pair`, at);
  }

  private ident(what = "identifier"): string {
    const t = this.next();
    if (t.kind === "IDENT") return t.text;
    if (t.kind === "BOUNDPARAM") {
      const v = this.param(t);
      if (typeof v === "string") return v;
      if (v !== null && typeof v === "object" && typeof v["identifier"] === "string") return v["identifier"];
    }
    throw this.unexpected(t, what);
  }

  private integer(what: string): number {
    const t = this.next();
    if (t.kind !== "INTEGER") throw this.unexpected(t, what);
    const n = Number(t.text);
    if (!Number.isSafeInteger(n)) throw this.error(`unable to parse integer ${t.text}`, t);
    return n;
  }

  private param(t: Token): ParamValue {
    if (!Object.prototype.hasOwnProperty.call(this.params, t.text)) throw this.error(`missing parameter: ${t.text}`, t);
    return this.params[t.text]!;
  }

  // ---- statements ----

  parseQuery(): Statement[] {
    const out: Statement[] = [];
    let needSemi = false;
    for (;;) {
      const t = this.next();
      if (t.kind === "EOF") return out;
      if (this.isOp(t, ";")) {
        needSemi = false;
        continue;
      }
      if (needSemi) throw this.unexpected(t, ";");
      this.unread(t);
      out.push(this.statement());
      needSemi = true;
    }
  }

  private statement(): Statement {
    const t = this.next();
    if (t.kind === "KEYWORD") {
      switch (t.text) {
        case "SELECT":
          return this.select();
        case "SHOW":
          return this.show();
        case "CREATE":
          return this.create();
        case "DROP":
          return this.drop();
        case "DELETE":
          return this.deleteStatement();
        case "EXPLAIN":
        case "GRANT":
        case "REVOKE":
        case "ALTER":
        case "SET":
        case "KILL":
          throw this.unsupported(t.text, t);
      }
    }
    throw this.unexpected(t, STATEMENT_STARTS);
  }

  private select(): SelectStatement {
    const fields = this.fields();
    const into = this.peek();
    if (this.isKeyword(into, "INTO")) throw this.unsupported("SELECT ... INTO", into);
    this.expectKeyword("FROM");
    const sources = this.sources(true);
    const condition = this.where();
    const dimensions = this.groupBy();
    const fill = this.fill();
    const descending = this.orderBy();
    const limit = this.accept("LIMIT") ? this.integer("integer") : 0;
    const offset = this.accept("OFFSET") ? this.integer("integer") : 0;
    const slimit = this.accept("SLIMIT") ? this.integer("integer") : 0;
    const soffset = this.accept("SOFFSET") ? this.integer("integer") : 0;
    const tz = this.tz();
    return { kind: "select", fields, sources, condition, dimensions, fill, descending, limit, offset, slimit, soffset, tz };
  }

  private fields(): Field[] {
    const out: Field[] = [];
    do {
      const re = this.regex();
      const expr: Expr = re !== null ? { kind: "regex", source: re } : this.expr(true);
      let alias: string | null = null;
      if (this.accept("AS")) alias = this.ident();
      out.push({ expr, alias });
    } while (this.acceptOp(","));
    return out;
  }

  /** FROM list: `m`, `"m"`, `rp.m`, `db.rp.m`, `db..m`, `/re/` (also as last segment). */
  private sources(allowRegex: boolean): Source[] {
    const out: Source[] = [];
    do out.push(this.source(allowRegex));
    while (this.acceptOp(","));
    return out;
  }

  private source(allowRegex: boolean): Source {
    const segments: Array<string | null> = [];
    let regex: string | null = null;
    for (;;) {
      const re = allowRegex ? this.regex() : null;
      if (re !== null) {
        regex = re;
        break;
      }
      const t = this.peek();
      if (this.isOp(t, "(") && segments.length === 0) throw this.unsupported("a subquery in FROM", t);
      // `db..m`: the dot is left for acceptOp below, leaving an empty retention policy segment.
      if (this.isOp(t, ".") && segments.length > 0) segments.push(null);
      else segments.push(this.ident("identifier"));
      if (!this.acceptOp(".")) break;
      if (segments.length >= 3) throw this.unexpected(this.peek(), "identifier");
    }
    const name = regex === null ? (segments.pop() ?? null) : null;
    let db: string | null = null;
    let rp: string | null = null;
    if (segments.length === 1) rp = segments[0] ?? null;
    else if (segments.length === 2) {
      db = segments[0] ?? null;
      rp = segments[1] ?? null;
    }
    return { db, rp, name, regex };
  }

  /** Scans `/re/` if one is next; checks that it compiles (InfluxDB reports bad patterns as parse errors). */
  private regex(): string | null {
    if (this.buf.length === 1 && this.isOp(this.buf[0]!, "/")) this.lx.rewind(this.buf.pop()!);
    if (this.buf.length > 0) return null;
    const t = this.lx.scanRegex();
    if (t === null) return null;
    if (t.kind === "BADSTRING") throw this.error("found unterminated regex", t);
    compileRegex(t.text, (msg) => this.error(`error parsing regexp: ${msg}`, t));
    return t.text;
  }

  private where(): Expr | null {
    return this.accept("WHERE") ? this.expr() : null;
  }

  private groupBy(): Dimension[] {
    if (!this.accept("GROUP")) return [];
    this.expectKeyword("BY");
    const out: Dimension[] = [];
    do {
      const re = this.regex();
      if (re !== null) {
        out.push({ kind: "regex", source: re });
        continue;
      }
      const t = this.next();
      if (this.isOp(t, "*")) {
        out.push({ kind: "wildcard" });
        continue;
      }
      if (t.kind === "IDENT" && !t.quoted && t.text.toLowerCase() === "time" && this.isOp(this.peek(), "(")) {
        this.next();
        const interval = this.durationArg();
        if (interval <= 0n) throw this.error("time dimension must have positive interval", t);
        let offset = 0n;
        if (this.acceptOp(",")) {
          const neg = this.acceptOp("-");
          const o = this.peek();
          if (o.kind === "IDENT" && o.text.toLowerCase() === "now") throw this.unsupported("GROUP BY time() with a now() offset", o);
          offset = this.durationArg();
          if (neg) offset = -offset;
        }
        this.expectOp(")");
        out.push({ kind: "time", interval, offset });
        continue;
      }
      if (t.kind === "IDENT") {
        const cast = this.cast();
        if (cast === "field") throw this.error(`cannot group by a field: ${t.text}`, t);
        out.push({ kind: "tag", name: t.text });
        continue;
      }
      throw this.unexpected(t, "identifier, regex, *, time()");
    } while (this.acceptOp(","));
    if (out.filter((d) => d.kind === "time").length > 1) throw this.error("multiple time dimensions not allowed", this.peek());
    return out;
  }

  private durationArg(): bigint {
    const t = this.next();
    if (t.kind === "DURATION") return parseDuration(t.text)!;
    if (t.kind === "BOUNDPARAM") {
      const v = this.param(t);
      const d = typeof v === "string" ? parseDuration(v) : null;
      if (d !== null) return d;
    }
    throw this.unexpected(t, "duration");
  }

  private fill(): Fill {
    const t = this.next();
    if (!(t.kind === "IDENT" && !t.quoted && t.text.toLowerCase() === "fill" && this.isOp(this.peek(), "("))) {
      this.unread(t);
      return { kind: "null" };
    }
    this.next();
    const a = this.next();
    let fill: Fill;
    if (a.kind === "IDENT" && ["null", "none", "previous", "linear"].includes(a.text.toLowerCase())) {
      fill = { kind: a.text.toLowerCase() as "null" | "none" | "previous" | "linear" };
    } else {
      let neg = false;
      let v = a;
      if (this.isOp(a, "-")) {
        neg = true;
        v = this.next();
      }
      if (v.kind === "INTEGER") fill = { kind: "value", value: neg ? -BigInt(v.text) : BigInt(v.text) };
      else if (v.kind === "NUMBER") fill = { kind: "value", value: neg ? -Number(v.text) : Number(v.text) };
      else throw this.error(`fill must be a function call, found ${this.describe(v)}`, v);
    }
    this.expectOp(")");
    return fill;
  }

  /** ORDER BY time [ASC|DESC]; true for descending. InfluxQL only sorts on time. */
  private orderBy(): boolean {
    if (!this.accept("ORDER")) return false;
    this.expectKeyword("BY");
    let desc = false;
    for (;;) {
      const t = this.next();
      if (t.kind === "IDENT" && t.text.toLowerCase() === "time") {
        if (this.accept("DESC")) desc = true;
        else this.accept("ASC");
      } else if (this.isKeyword(t, "ASC")) desc = false;
      else if (this.isKeyword(t, "DESC")) desc = true;
      else if (t.kind === "IDENT") throw this.error("only ORDER BY time supported at this time", t);
      else throw this.unexpected(t, "identifier, ASC, DESC");
      if (!this.acceptOp(",")) break;
    }
    return desc;
  }

  private tz(): string | null {
    const t = this.next();
    if (!(t.kind === "IDENT" && !t.quoted && t.text.toLowerCase() === "tz" && this.isOp(this.peek(), "("))) {
      this.unread(t);
      return null;
    }
    this.next();
    const z = this.next();
    if (z.kind !== "STRING") throw this.unexpected(z, "string");
    this.expectOp(")");
    if (!isTimeZone(z.text)) throw this.error(`unable to find time zone ${z.text}`, z);
    return z.text;
  }

  private onDb(): string | null {
    return this.accept("ON") ? this.ident("identifier") : null;
  }

  private limitOffset(): { limit: number; offset: number } {
    const limit = this.accept("LIMIT") ? this.integer("integer") : 0;
    const offset = this.accept("OFFSET") ? this.integer("integer") : 0;
    return { limit, offset };
  }

  private show(): Statement {
    const t = this.next();
    const word = t.kind === "KEYWORD" ? t.text : "";
    switch (word) {
      case "DATABASES":
        return { kind: "show_databases" };
      case "RETENTION":
        this.expectKeyword("POLICIES");
        return { kind: "show_retention_policies", db: this.onDb() };
      case "MEASUREMENTS": {
        const db = this.onDb();
        let filter: { op: "=" | "!=" | "=~" | "!~"; name: string | null; regex: string | null } | null = null;
        if (this.accept("WITH")) {
          this.expectKeyword("MEASUREMENT");
          const op = this.next();
          if (!this.isOp(op, "=", "!=", "=~", "!~", "<>")) throw this.unexpected(op, "=, !=, =~, !~");
          const o = (op.text === "<>" ? "!=" : op.text) as "=" | "!=" | "=~" | "!~";
          if (o === "=~" || o === "!~") {
            const re = this.regex();
            if (re === null) throw this.unexpected(this.peek(), "regex");
            filter = { op: o, name: null, regex: re };
          } else filter = { op: o, name: this.ident(), regex: null };
        }
        const condition = this.where();
        return { kind: "show_measurements", db, filter, condition, ...this.limitOffset() };
      }
      case "MEASUREMENT": {
        const exact = this.accept("EXACT");
        this.expectKeyword("CARDINALITY");
        return this.cardinality("measurement", exact);
      }
      case "SERIES": {
        const exact = this.accept("EXACT");
        if (exact || this.isKeyword(this.peek(), "CARDINALITY")) {
          this.expectKeyword("CARDINALITY");
          return this.cardinality("series", exact);
        }
        const db = this.onDb();
        const sources = this.accept("FROM") ? this.sources(true) : [];
        const condition = this.where();
        return { kind: "show_series", db, sources, condition, ...this.limitOffset() };
      }
      case "TAG": {
        const which = this.expectKeyword("KEYS", "KEY", "VALUES");
        if (which === "KEY") {
          const exact = this.accept("EXACT");
          this.expectKeyword("CARDINALITY");
          return this.cardinality("tag_key", exact);
        }
        if (which === "VALUES" && (this.isKeyword(this.peek(), "EXACT", "CARDINALITY"))) {
          const exact = this.accept("EXACT");
          this.expectKeyword("CARDINALITY");
          return this.cardinality("tag_values", exact);
        }
        const db = this.onDb();
        const sources = this.accept("FROM") ? this.sources(true) : [];
        if (which === "KEYS") {
          const condition = this.where();
          return { kind: "show_tag_keys", db, sources, condition, ...this.limitOffset() };
        }
        const key = this.withKey();
        const condition = this.where();
        return { kind: "show_tag_values", db, sources, ...key, condition, ...this.limitOffset() };
      }
      case "FIELD": {
        const which = this.expectKeyword("KEYS", "KEY");
        if (which === "KEY") {
          const exact = this.accept("EXACT");
          this.expectKeyword("CARDINALITY");
          return this.cardinality("field_key", exact);
        }
        const db = this.onDb();
        const sources = this.accept("FROM") ? this.sources(true) : [];
        return { kind: "show_field_keys", db, sources, ...this.limitOffset() };
      }
      case "USERS":
      case "GRANTS":
      case "QUERIES":
      case "STATS":
      case "DIAGNOSTICS":
      case "SHARDS":
      case "SUBSCRIPTIONS":
      case "CONTINUOUS":
      case "SHARD":
        throw this.unsupported(`SHOW ${word}`, t);
    }
    throw this.unexpected(
      t,
      "CONTINUOUS, DATABASES, DIAGNOSTICS, FIELD, GRANTS, MEASUREMENT, MEASUREMENTS, QUERIES, RETENTION, SERIES, SHARD, SHARDS, STATS, SUBSCRIPTIONS, TAG, USERS",
    );
  }

  /** `WITH KEY = k | != k | =~ /re/ | !~ /re/ | IN (k1, k2)`. */
  private withKey(): { keyOp: "=" | "!=" | "=~" | "!~" | "IN"; keys: string[]; keyRegex: string | null } {
    this.expectKeyword("WITH");
    this.expectKeyword("KEY");
    if (this.accept("IN")) {
      this.expectOp("(");
      const keys: string[] = [];
      do keys.push(this.identOrString());
      while (this.acceptOp(","));
      this.expectOp(")");
      return { keyOp: "IN", keys, keyRegex: null };
    }
    const op = this.next();
    if (!this.isOp(op, "=", "!=", "<>", "=~", "!~")) throw this.unexpected(op, "=, !=, =~, !~");
    if (op.text === "=~" || op.text === "!~") {
      const re = this.regex();
      if (re === null) throw this.unexpected(this.peek(), "regex");
      return { keyOp: op.text, keys: [], keyRegex: re };
    }
    return { keyOp: op.text === "=" ? "=" : "!=", keys: [this.identOrString()], keyRegex: null };
  }

  private identOrString(): string {
    const t = this.next();
    if (t.kind === "IDENT" || t.kind === "STRING") return t.text;
    if (t.kind === "BOUNDPARAM") {
      const v = this.param(t);
      if (typeof v === "string") return v;
    }
    throw this.unexpected(t, "identifier or string");
  }

  private cardinality(what: ShowCardinalityStatement["what"], exact: boolean): ShowCardinalityStatement {
    const db = this.onDb();
    const sources = this.accept("FROM") ? this.sources(true) : [];
    let key: { keyOp: "=" | "!=" | "=~" | "!~" | "IN" | null; keys: string[]; keyRegex: string | null } = { keyOp: null, keys: [], keyRegex: null };
    if (what === "tag_values") key = this.withKey();
    const condition = what === "field_key" ? null : this.where();
    this.limitOffset();
    return { kind: "show_cardinality", what, exact, db, sources, condition, ...key };
  }

  private create(): CreateDatabaseStatement {
    const t = this.next();
    if (!this.isKeyword(t, "DATABASE")) {
      if (t.kind === "KEYWORD" && ["RETENTION", "USER", "CONTINUOUS", "SUBSCRIPTION"].includes(t.text)) {
        throw this.unsupported(`CREATE ${t.text}`, t);
      }
      throw this.unexpected(t, "CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION");
    }
    const name = this.ident();
    let duration: bigint | null = null;
    if (this.accept("WITH")) {
      let any = false;
      for (;;) {
        const o = this.next();
        if (this.isKeyword(o, "DURATION")) {
          const d = this.next();
          if (this.isKeyword(d, "INF")) duration = 0n;
          else if (d.kind === "DURATION") duration = parseDuration(d.text)!;
          else throw this.unexpected(d, "duration");
          any = true;
        } else if (this.isKeyword(o, "REPLICATION", "SHARD", "NAME")) {
          throw this.unsupported(`CREATE DATABASE ... WITH ${o.text}`, o);
        } else {
          if (!any) throw this.unexpected(o, "DURATION, NAME, REPLICATION, SHARD");
          this.unread(o);
          break;
        }
      }
    }
    return { kind: "create_database", name, duration };
  }

  private drop(): Statement {
    const t = this.next();
    if (this.isKeyword(t, "DATABASE")) return { kind: "drop_database", name: this.ident() };
    if (this.isKeyword(t, "MEASUREMENT")) return { kind: "drop_measurement", name: this.ident() };
    if (this.isKeyword(t, "SERIES")) {
      const sources = this.accept("FROM") ? this.sources(true) : [];
      const condition = this.where();
      if (sources.length === 0 && condition === null) throw this.error("DROP SERIES must have FROM and/or WHERE", t);
      return { kind: "drop_series", sources, condition } satisfies DropSeriesStatement;
    }
    if (t.kind === "KEYWORD" && ["RETENTION", "USER", "CONTINUOUS", "SUBSCRIPTION", "SHARD"].includes(t.text)) {
      throw this.unsupported(`DROP ${t.text}`, t);
    }
    throw this.unexpected(t, "CONTINUOUS, DATABASE, MEASUREMENT, RETENTION, SERIES, SHARD, SUBSCRIPTION, USER");
  }

  private deleteStatement(): DeleteStatement {
    const at = this.peek();
    const sources = this.accept("FROM") ? this.sources(true) : [];
    const condition = this.where();
    if (sources.length === 0 && condition === null) throw this.error("DELETE must have FROM and/or WHERE", at);
    return { kind: "delete", sources, condition };
  }

  // ---- expressions ----

  /** Precedence climbing over binary operators; `inSelect` allows `*` as an operand. */
  expr(inSelect = false): Expr {
    let lhs = this.unary(inSelect);
    return this.binaryRest(lhs, 0, inSelect);
  }

  private binaryRest(lhsIn: Expr, minPrec: number, inSelect: boolean): Expr {
    let lhs = lhsIn;
    for (;;) {
      const t = this.next();
      const op = this.binaryOp(t);
      const prec = op === null ? 0 : (PRECEDENCE[op] ?? 0);
      if (op === null || prec <= minPrec) {
        this.unread(t);
        return lhs;
      }
      let rhs: Expr;
      if (op === "=~" || op === "!~") {
        const re = this.regex();
        if (re !== null) rhs = { kind: "regex", source: re };
        else {
          const p = this.next();
          if (p.kind === "BOUNDPARAM") {
            const v = this.param(p);
            const src = typeof v === "string" ? v : v !== null && typeof v === "object" && typeof v["regex"] === "string" ? v["regex"] : null;
            if (src === null) throw this.unexpected(p, "regex");
            compileRegex(src, (msg) => this.error(`error parsing regexp: ${msg}`, p));
            rhs = { kind: "regex", source: src };
          } else throw this.unexpected(p, "regex");
        }
      } else rhs = this.unary(inSelect);
      // Bind tighter operators on the right first.
      for (;;) {
        const n = this.next();
        const nop = this.binaryOp(n);
        this.unread(n);
        if (nop === null || (PRECEDENCE[nop] ?? 0) <= prec) break;
        rhs = this.binaryRest(rhs, prec, inSelect);
      }
      lhs = { kind: "binary", op: (op === "<>" ? "!=" : op) as BinaryOp, lhs, rhs };
    }
  }

  private binaryOp(t: Token): string | null {
    if (t.kind === "KEYWORD" && (t.text === "AND" || t.text === "OR")) return t.text;
    if (t.kind === "OP" && PRECEDENCE[t.text] !== undefined) return t.text;
    return null;
  }

  private unary(inSelect: boolean): Expr {
    const t = this.next();
    if (this.isOp(t, "(")) {
      const e = this.expr(inSelect);
      this.expectOp(")");
      return { kind: "paren", expr: e };
    }
    if (this.isOp(t, "-") || this.isOp(t, "+")) {
      const neg = t.text === "-";
      const n = this.next();
      if (n.kind === "INTEGER") return this.integerLiteral(n, neg);
      if (n.kind === "NUMBER") return { kind: "number", value: neg ? -Number(n.text) : Number(n.text) };
      if (n.kind === "DURATION") return { kind: "duration", ns: neg ? -parseDuration(n.text)! : parseDuration(n.text)! };
      this.unread(n);
      const operand = this.unary(inSelect);
      // InfluxQL turns `-x` into `-1 * x`, which keeps the column named after x.
      return neg ? { kind: "binary", op: "*", lhs: { kind: "integer", value: -1n }, rhs: operand } : operand;
    }
    if (this.isOp(t, "*")) {
      if (!inSelect) throw this.unexpected(t, "identifier, string, number, bool");
      return { kind: "wildcard", ...this.castOpt() };
    }
    switch (t.kind) {
      case "IDENT": {
        if (!t.quoted && this.isOp(this.peek(), "(")) return this.call(t);
        return { kind: "var", name: t.text, ...this.castOpt() };
      }
      case "STRING":
        return { kind: "string", value: t.text };
      case "INTEGER":
        return this.integerLiteral(t, false);
      case "NUMBER":
        return { kind: "number", value: Number(t.text) };
      case "DURATION":
        return { kind: "duration", ns: parseDuration(t.text)! };
      case "TRUE":
        return { kind: "bool", value: true };
      case "FALSE":
        return { kind: "bool", value: false };
      case "BOUNDPARAM":
        return this.boundValue(t);
      case "KEYWORD":
        if (t.text === "DISTINCT") {
          // `distinct(v)`, or `SELECT DISTINCT v` as shorthand for it.
          if (this.isOp(this.peek(), "(")) return this.call({ ...t, text: "distinct" });
          const arg = this.unary(false);
          return { kind: "call", name: "distinct", args: [arg] };
        }
    }
    throw this.unexpected(t, "identifier, string, number, bool");
  }

  private integerLiteral(t: Token, neg: boolean): Expr {
    const v = neg ? -BigInt(t.text) : BigInt(t.text);
    if (v > 9223372036854775807n || v < -9223372036854775808n) throw this.error(`unable to parse integer ${t.text}`, t);
    return { kind: "integer", value: v };
  }

  private castOpt(): { cast?: "field" | "tag" } {
    const c = this.cast();
    return c === null ? {} : { cast: c };
  }

  private cast(): "field" | "tag" | null {
    if (!this.acceptOp("::")) return null;
    const t = this.next();
    const w = t.kind === "IDENT" || t.kind === "KEYWORD" ? t.text.toLowerCase() : "";
    if (w === "field" || w === "tag") return w;
    if (["float", "integer", "string", "boolean", "unsigned"].includes(w)) throw this.unsupported(`casting to ${w}`, t);
    throw this.unexpected(t, "field, tag");
  }

  private call(nameTok: Token): Expr {
    this.expectOp("(");
    const name = nameTok.text.toLowerCase();
    const args: Expr[] = [];
    if (!this.acceptOp(")")) {
      do {
        const re = this.regex();
        if (re !== null) args.push({ kind: "regex", source: re });
        else args.push(this.expr(true));
      } while (this.acceptOp(","));
      this.expectOp(")");
    }
    return { kind: "call", name, args };
  }

  /** A bound parameter becomes the literal its JSON value stands for. */
  private boundValue(t: Token): Expr {
    const v = this.param(t);
    if (typeof v === "string") return { kind: "string", value: v };
    if (typeof v === "boolean") return { kind: "bool", value: v };
    if (typeof v === "number") return Number.isInteger(v) ? { kind: "integer", value: BigInt(v) } : { kind: "number", value: v };
    if (v !== null && typeof v === "object") {
      const [k, inner] = Object.entries(v)[0] ?? [];
      if (k === "identifier" && typeof inner === "string") return { kind: "var", name: inner };
      if (k === "duration" && typeof inner === "string") {
        const d = parseDuration(inner);
        if (d !== null) return { kind: "duration", ns: d };
      }
      if (k === "regex" && typeof inner === "string") return { kind: "regex", source: inner };
    }
    throw this.error(`unable to bind parameter ${t.text} with value ${JSON.stringify(v)}`, t);
  }
}

/**
 * Compiles an InfluxQL (Go RE2) pattern as a JavaScript RegExp. The common subset is the
 * same; RE2's inline `(?i)` flag prefix is translated since Grafana users write it.
 */
export function compileRegex(source: string, onError?: (message: string) => Error): RegExp {
  let src = source;
  let flags = "";
  const m = /^\(\?([imsU]+)\)/.exec(src);
  if (m) {
    src = src.slice(m[0].length);
    for (const f of m[1]!) if (f === "i" || f === "m" || f === "s") flags += f;
  }
  try {
    return new RegExp(src, flags);
  } catch (e) {
    const message = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, "") : String(e);
    if (onError) throw onError(message);
    throw new TsdbError("bad_request", `invalid regex /${source}/: ${message}`);
  }
}

/** True when the runtime knows the IANA zone name (tz('...')). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
