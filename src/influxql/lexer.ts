/**
 * The InfluxQL scanner: turns query text into tokens with 1-based line and column positions,
 * which parse errors quote as InfluxDB does ("at line 1, char 8").
 *
 * Regular expressions are context dependent in InfluxQL (`/` is also division), so the
 * scanner never produces them by itself: the parser asks for one with `scanRegex()` where
 * the grammar allows a regex (after `=~`/`!~`, in FROM, GROUP BY and WITH ... =~).
 */

export type TokenKind =
  | "EOF"
  | "ILLEGAL"
  | "IDENT" // unquoted or double-quoted identifier (`quoted` tells which)
  | "KEYWORD" // reserved word; `text` is upper-cased
  | "INTEGER"
  | "NUMBER"
  | "DURATION"
  | "STRING" // single-quoted
  | "BADSTRING"
  | "BADESCAPE"
  | "REGEX"
  | "BOUNDPARAM" // $name
  | "OP" // operators and punctuation; `text` is the operator
  | "TRUE"
  | "FALSE";

export interface Token {
  readonly kind: TokenKind;
  /** Upper-cased keyword, unescaped identifier/string content, or the literal's source text. */
  readonly text: string;
  /** Offset in the query text. */
  readonly offset: number;
  readonly line: number;
  /** 1-based column. */
  readonly char: number;
  /** True for a double-quoted identifier (never a keyword). */
  readonly quoted?: boolean;
}

/** InfluxQL's reserved words (influxql/token.go); they cannot be unquoted identifiers. */
export const KEYWORDS = new Set([
  "ALL", "ALTER", "ANALYZE", "AND", "ANY", "AS", "ASC", "BEGIN", "BY", "CARDINALITY", "CREATE", "CONTINUOUS",
  "DATABASE", "DATABASES", "DEFAULT", "DELETE", "DESC", "DESTINATIONS", "DIAGNOSTICS", "DISTINCT", "DROP",
  "DURATION", "END", "EVERY", "EXACT", "EXPLAIN", "FIELD", "FOR", "FROM", "GRANT", "GRANTS", "GROUP", "GROUPS",
  "IN", "INF", "INSERT", "INTO", "KEY", "KEYS", "KILL", "LIMIT", "MEASUREMENT", "MEASUREMENTS", "NAME", "OFFSET",
  "ON", "OR", "ORDER", "PASSWORD", "POLICIES", "POLICY", "PRIVILEGES", "QUERIES", "QUERY", "READ", "REPLICATION",
  "RESAMPLE", "RETENTION", "REVOKE", "SELECT", "SERIES", "SET", "SHARD", "SHARDS", "SHOW", "SLIMIT", "SOFFSET", "STATS",
  "SUBSCRIPTION", "SUBSCRIPTIONS", "TAG", "TO", "USER", "USERS", "VALUES", "WHERE", "WITH", "WRITE",
]);

/** Units are tried longest first so `ms` wins over `m`; a letter right after the unit makes it no duration. */
const DURATION_RE = /(?:\d+(?:ns|µs|us|ms|u|µ|s|m|h|d|w))+(?![A-Za-z0-9_])/y;

const isDigit = (c: string) => c >= "0" && c <= "9";
const isLetter = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isIdentChar = (c: string) => isLetter(c) || isDigit(c);
const isSpace = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";

export class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;

  constructor(readonly src: string) {}

  /** Where the next token would start (after whitespace and comments). */
  peekPosition(): { offset: number; line: number; char: number } {
    const save = { pos: this.pos, line: this.line, lineStart: this.lineStart };
    this.skipSpace();
    const out = { offset: this.pos, line: this.line, char: this.pos - this.lineStart + 1 };
    Object.assign(this, save);
    return out;
  }

  /** The next token, skipping whitespace and comments. */
  next(): Token {
    this.skipSpace();
    const start = this.pos;
    const line = this.line;
    const char = this.pos - this.lineStart + 1;
    const tok = (kind: TokenKind, text: string, quoted?: boolean): Token =>
      quoted === undefined ? { kind, text, offset: start, line, char } : { kind, text, offset: start, line, char, quoted };
    const src = this.src;
    if (this.pos >= src.length) return tok("EOF", "");
    const c = src[this.pos]!;
    const c2 = src[this.pos + 1] ?? "";

    if (isLetter(c)) {
      let end = this.pos + 1;
      while (end < src.length && isIdentChar(src[end]!)) end++;
      const word = src.slice(this.pos, end);
      this.pos = end;
      const upper = word.toUpperCase();
      if (upper === "TRUE") return tok("TRUE", word);
      if (upper === "FALSE") return tok("FALSE", word);
      if (KEYWORDS.has(upper)) return tok("KEYWORD", upper);
      return tok("IDENT", word);
    }
    if (c === '"') return this.quoted('"', start, line, char);
    if (c === "'") return this.quoted("'", start, line, char);
    if (isDigit(c) || (c === "." && isDigit(c2))) return this.number(start, line, char);
    if (c === "$") {
      let end = this.pos + 1;
      if (src[end] === '"') {
        this.pos++;
        const q = this.quoted('"', this.pos, line, char + 1);
        return { ...q, kind: q.kind === "IDENT" ? "BOUNDPARAM" : q.kind, offset: start, char };
      }
      while (end < src.length && isIdentChar(src[end]!)) end++;
      const name = src.slice(this.pos + 1, end);
      this.pos = end;
      return name === "" ? tok("ILLEGAL", "$") : tok("BOUNDPARAM", name);
    }
    const two = src.slice(this.pos, this.pos + 2);
    for (const op of ["::", "=~", "!~", "!=", "<>", "<=", ">="]) {
      if (two === op) {
        this.pos += 2;
        return tok("OP", op);
      }
    }
    if ("+-*/%&|^=<>(),;.".includes(c)) {
      this.pos++;
      return tok("OP", c);
    }
    this.pos++;
    return tok("ILLEGAL", c);
  }

  /** Moves back to the start of `t` (a token read too early, scanned again in another mode). */
  rewind(t: Token): void {
    this.pos = t.offset;
    this.line = t.line;
    this.lineStart = t.offset - (t.char - 1);
  }

  /** Scans a `/regex/` starting at the next non-space character; null when there is none. */
  scanRegex(): Token | null {
    this.skipSpace();
    if (this.src[this.pos] !== "/") return null;
    const start = this.pos;
    const line = this.line;
    const char = this.pos - this.lineStart + 1;
    let out = "";
    let i = this.pos + 1;
    for (;;) {
      const c = this.src[i];
      if (c === undefined || c === "\n") {
        this.pos = i;
        return { kind: "BADSTRING", text: out, offset: start, line, char };
      }
      if (c === "\\" && this.src[i + 1] === "/") {
        out += "/";
        i += 2;
        continue;
      }
      if (c === "\\") {
        out += c + (this.src[i + 1] ?? "");
        i += 2;
        continue;
      }
      if (c === "/") break;
      out += c;
      i++;
    }
    this.pos = i + 1;
    return { kind: "REGEX", text: out, offset: start, line, char };
  }

  private skipSpace(): void {
    const src = this.src;
    for (;;) {
      const c = src[this.pos];
      if (c === undefined) return;
      if (isSpace(c)) {
        if (c === "\n") {
          this.line++;
          this.lineStart = this.pos + 1;
        }
        this.pos++;
      } else if (c === "-" && src[this.pos + 1] === "-") {
        while (this.pos < src.length && src[this.pos] !== "\n") this.pos++;
      } else if (c === "/" && src[this.pos + 1] === "*") {
        const end = src.indexOf("*/", this.pos + 2);
        const stop = end < 0 ? src.length : end + 2;
        for (let i = this.pos; i < stop; i++) {
          if (src[i] === "\n") {
            this.line++;
            this.lineStart = i + 1;
          }
        }
        this.pos = stop;
      } else return;
    }
  }

  private quoted(q: string, start: number, line: number, char: number): Token {
    let out = "";
    let i = this.pos + 1;
    const src = this.src;
    for (;;) {
      const c = src[i];
      if (c === undefined || c === "\n") {
        this.pos = i;
        return { kind: "BADSTRING", text: out, offset: start, line, char };
      }
      if (c === q) break;
      if (c === "\\") {
        const n = src[i + 1];
        if (n === "n") out += "\n";
        else if (n === "\\") out += "\\";
        else if (n === '"') out += '"';
        else if (n === "'") out += "'";
        else {
          this.pos = i + 2;
          return { kind: "BADESCAPE", text: "\\" + (n ?? ""), offset: i, line, char: i - this.lineStart + 1 };
        }
        i += 2;
        continue;
      }
      out += c;
      i++;
    }
    this.pos = i + 1;
    if (q === '"') return { kind: "IDENT", text: out, offset: start, line, char, quoted: true };
    return { kind: "STRING", text: out, offset: start, line, char };
  }

  /** Integers, decimals and durations (`10s`, `1h30m`, `1700000000000ms`). */
  private number(start: number, line: number, char: number): Token {
    const src = this.src;
    let i = this.pos;
    while (i < src.length && isDigit(src[i]!)) i++;
    let isFloat = false;
    if (src[i] === "." && isDigit(src[i + 1] ?? "")) {
      isFloat = true;
      i++;
      while (i < src.length && isDigit(src[i]!)) i++;
    }
    if ((src[i] === "e" || src[i] === "E") && (isDigit(src[i + 1] ?? "") || ((src[i + 1] === "+" || src[i + 1] === "-") && isDigit(src[i + 2] ?? "")))) {
      isFloat = true;
      i += 2;
      while (i < src.length && isDigit(src[i]!)) i++;
    }
    if (!isFloat) {
      // A duration is one or more <integer><unit> groups with nothing in between (`1h30m`).
      DURATION_RE.lastIndex = start;
      const m = DURATION_RE.exec(src);
      if (m !== null) {
        this.pos = start + m[0].length;
        return { kind: "DURATION", text: m[0], offset: start, line, char };
      }
    }
    this.pos = i;
    return { kind: isFloat ? "NUMBER" : "INTEGER", text: src.slice(start, i), offset: start, line, char };
  }

}

/** Nanoseconds per duration unit. */
const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  u: 1_000n,
  µ: 1_000n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
  w: 604_800_000_000_000n,
};

/** Parses a duration literal such as `10s`, `1h30m` or `1700000000000ms` into nanoseconds. */
export function parseDuration(text: string): bigint | null {
  const re = /(\d+)(ns|µs|us|ms|u|µ|s|m|h|d|w)/y;
  let total = 0n;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) return null;
    total += BigInt(m[1]!) * UNIT_NS[m[2]!]!;
    at = re.lastIndex;
  }
  return at === 0 ? null : total;
}

/** Formats nanoseconds the way InfluxDB prints durations in queries and SHOW output (`1h30m`, `0s`). */
export function formatDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const units: Array<[string, bigint]> = [
    ["w", UNIT_NS.w!],
    ["d", UNIT_NS.d!],
    ["h", UNIT_NS.h!],
    ["m", UNIT_NS.m!],
    ["s", UNIT_NS.s!],
    ["ms", UNIT_NS.ms!],
    ["u", UNIT_NS.u!],
    ["ns", 1n],
  ];
  for (const [u, n] of units) if (ns % n === 0n) return `${ns / n}${u}`;
  return `${ns}ns`;
}
