/**
 * The optional config file (`--config`, default /etc/tsdb-pair/tsdb-pair.toml when present):
 * the same keys as the serve flags, in a small subset of TOML (https://toml.io/en/v1.0.0):
 *
 *   # comments and blank lines
 *   [serve]                      # optional; the only table
 *   listen = "0.0.0.0:8086"      # basic "…" or literal '…' strings
 *   max-body = 25000000          # integers (underscores allowed) and floats
 *   no-auto-create = true        # booleans
 *   peer = ["iotdb-2a", "iotdb-2b"]   # one-line arrays (peer only)
 *
 * Precedence is flag > environment > file > default (mergeServeInputs). Unknown keys, values
 * of the wrong type and values the flag would refuse stop the start with `<file>:<line>: <reason>`.
 */
import { existsSync, readFileSync } from "node:fs";
import type { ServeInput } from "../config.ts";
import { parseDuration, parseListen, parsePeers, parseSize, validateNodeId } from "../config.ts";
import { TsdbError, isTsdbError } from "../errors.ts";

/** Read when present and no --config is given. */
export const DEFAULT_CONFIG_FILE = "/etc/tsdb-pair/tsdb-pair.toml";
/** The only table a config file may have (keys may also sit at the top level). */
const SERVE_TABLE = "serve";

/** Everything a config file can set: ServeInput plus the settings that have no ServeInput field yet. */
export interface ConfigFileInput extends ServeInput {
  peerSecretFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  peerCa?: string;
  logFormat?: string;
  maxSelectPoints?: number | string;
  maxSelectSeries?: number | string;
}

type Value = string | number | boolean | string[];
type Kind = "string" | "size" | "boolean" | "peers" | "count";

interface KeySpec {
  readonly field: keyof ConfigFileInput;
  readonly kind: Kind;
  /** Throws a TsdbError("config") for a value the flag would refuse. */
  readonly check?: (v: string) => void;
}

const nonEmpty = (key: string) => (v: string) => {
  if (v.trim() === "") throw new TsdbError("config", `${key} must not be empty`);
};

/** Keys are the serve flags' names. */
const KEYS: Record<string, KeySpec> = {
  listen: { field: "listen", kind: "string", check: (v) => void parseListen(v) },
  data: { field: "data", kind: "string", check: nonEmpty("data") },
  "node-id": { field: "nodeId", kind: "string", check: validateNodeId },
  "auth-token": { field: "authToken", kind: "string" },
  sync: {
    field: "sync",
    kind: "string",
    check: (v) => {
      if (v !== "full" && v !== "normal" && v !== "off") throw new TsdbError("config", `invalid sync ${JSON.stringify(v)}: expected full, normal or off`);
    },
  },
  "max-body": { field: "maxBody", kind: "size", check: (v) => void parseSize(v, "max-body") },
  "no-auto-create": { field: "autoCreate", kind: "boolean" },
  peer: { field: "peer", kind: "peers", check: (v) => void parsePeers(v, 8086) },
  "peer-secret": { field: "peerSecret", kind: "string", check: nonEmpty("peer-secret") },
  "peer-secret-file": { field: "peerSecretFile", kind: "string", check: nonEmpty("peer-secret-file") },
  "wal-retention": { field: "walRetention", kind: "string", check: (v) => void parseDuration(v, "wal-retention") },
  "wal-max-bytes": { field: "walMaxBytes", kind: "size", check: (v) => void parseSize(v, "wal-max-bytes") },
  "catch-up-bytes": { field: "catchUpBytes", kind: "size", check: (v) => void parseSize(v, "catch-up-bytes") },
  "tls-cert": { field: "tlsCert", kind: "string", check: nonEmpty("tls-cert") },
  "tls-key": { field: "tlsKey", kind: "string", check: nonEmpty("tls-key") },
  "peer-ca": { field: "peerCa", kind: "string", check: nonEmpty("peer-ca") },
  "log-format": {
    field: "logFormat",
    kind: "string",
    check: (v) => {
      if (v !== "logfmt" && v !== "json") throw new TsdbError("config", `invalid log-format ${JSON.stringify(v)}: expected logfmt or json`);
    },
  },
  "min-free-disk": { field: "minFreeDisk", kind: "size" },
  "max-series": { field: "maxSeries", kind: "count" },
  "max-select-points": { field: "maxSelectPoints", kind: "count" },
  "max-select-series": { field: "maxSelectSeries", kind: "count" },
  "chunk-points": { field: "chunkPoints", kind: "count" },
  retention: { field: "retention", kind: "string", check: (v) => void (v === "0" || v === "inf" || parseDuration(v, "retention")) },
  "flush-age": { field: "flushAge", kind: "string", check: (v) => void parseDuration(v, "flush-age") },
  "hot-memory": { field: "hotMemory", kind: "size", check: (v) => void parseSize(v, "hot-memory") },
};

/** The keys a config file accepts, in the order `--help` lists the flags. */
export const CONFIG_KEYS: readonly string[] = Object.keys(KEYS);

/** A parsed config file: the input, and the line each field came from. */
export interface ParsedConfigFile {
  readonly input: ConfigFileInput;
  readonly lines: Partial<Record<keyof ConfigFileInput, number>>;
}

/** Reads and validates a config file; throws TsdbError("config", "<file>:<line>: <reason>"). */
export function loadConfigFile(path: string): ConfigFileInput {
  return readConfigFile(path).input;
}

/** loadConfigFile, also telling which line set each field (for `config check`). */
export function readConfigFile(path: string): ParsedConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(e);
    throw new TsdbError("config", `cannot read config file ${path}: ${why}`, { cause: e });
  }
  return parseConfigText(text, path);
}

/** Parses config text; `file` names it in errors. */
export function parseConfigText(text: string, file: string): ParsedConfigFile {
  const input: ConfigFileInput = {};
  const lines: Partial<Record<keyof ConfigFileInput, number>> = {};
  const seen = new Map<string, number>();
  let table: string | null = null;
  const rows = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  rows.forEach((raw, i) => {
    const lineNo = i + 1;
    const fail = (reason: string): never => {
      throw new TsdbError("config", `${file}:${lineNo}: ${reason}`);
    };
    const cur = new Cursor(raw, fail);
    cur.skipSpace();
    if (cur.atEndOrComment()) return;
    if (cur.peek() === "[") {
      cur.next();
      cur.skipSpace();
      const name = cur.key();
      cur.skipSpace();
      if (cur.next() !== "]") fail(`expected "]" to close the table header`);
      cur.expectEnd();
      if (name !== SERVE_TABLE) fail(`unknown table [${name}]: only an optional [${SERVE_TABLE}] is allowed`);
      if (table !== null) fail(`table [${name}] appears twice`);
      table = name;
      return;
    }
    const key = cur.key();
    cur.skipSpace();
    if (cur.next() !== "=") fail(`expected "=" after key ${JSON.stringify(key)}`);
    cur.skipSpace();
    const value = cur.value();
    cur.expectEnd();
    const spec = KEYS[key];
    if (spec === undefined) fail(unknownKeyReason(key));
    const first = seen.get(key);
    if (first !== undefined) fail(`${key} is set twice (first on line ${first})`);
    seen.set(key, lineNo);
    try {
      (input as Record<string, unknown>)[spec!.field] = convert(key, spec!, value);
    } catch (e) {
      if (isTsdbError(e, "config")) fail(e.message.replace(`--${key}`, key));
      throw e;
    }
    lines[spec!.field] = lineNo;
  });
  return { input, lines };
}

function unknownKeyReason(key: string): string {
  const kebab = key.toLowerCase().replace(/_/g, "-");
  const hint = KEYS[kebab] !== undefined ? ` (did you mean ${kebab}?)` : KEYS[kebab.replace(/^tsdb-pair-/, "")] !== undefined ? ` (did you mean ${kebab.replace(/^tsdb-pair-/, "")}?)` : "";
  return `unknown key ${JSON.stringify(key)}${hint}; known keys: ${CONFIG_KEYS.join(", ")}`;
}

/** Checks a value's type and content for its key; returns what goes into ConfigFileInput. */
function convert(key: string, spec: KeySpec, value: Value): string | number | boolean | string[] {
  const typeName = Array.isArray(value) ? "an array" : typeof value === "string" ? "a string" : typeof value === "number" ? "a number" : "a boolean";
  const wrong = (want: string): never => {
    throw new TsdbError("config", `${key} must be ${want}, not ${typeName}`);
  };
  switch (spec.kind) {
    case "boolean":
      if (typeof value !== "boolean") wrong("true or false");
      // The flag is --no-auto-create; the field is its opposite.
      return spec.field === "autoCreate" ? !value : value;
    case "string":
      if (typeof value !== "string") wrong(`a string (in quotes)`);
      spec.check?.(value as string);
      return value;
    case "size":
      if (typeof value !== "string" && typeof value !== "number") wrong(`a size such as 25000000 or "25MB"`);
      spec.check?.(String(value));
      return value as string | number;
    case "count": {
      const n = typeof value === "number" ? value : typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
      if (!Number.isSafeInteger(n) || n <= 0) throw new TsdbError("config", `${key} must be a positive integer, not ${JSON.stringify(value)}`);
      return n;
    }
    case "peers": {
      const items = typeof value === "string" ? [value] : Array.isArray(value) ? value : wrong(`a string or an array of strings`);
      for (const item of items) spec.check?.(item);
      return items.length === 1 && typeof value === "string" ? value : items;
    }
  }
}

/** A position in one line of the file. */
class Cursor {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly fail: (reason: string) => never,
  ) {}

  peek(): string | undefined {
    return this.s[this.i];
  }
  next(): string | undefined {
    return this.s[this.i++];
  }
  skipSpace(): void {
    while (this.s[this.i] === " " || this.s[this.i] === "\t") this.i++;
  }
  atEndOrComment(): boolean {
    return this.i >= this.s.length || this.s[this.i] === "#";
  }
  expectEnd(): void {
    this.skipSpace();
    if (!this.atEndOrComment()) this.fail(`unexpected ${JSON.stringify(this.s.slice(this.i))} after the value (one key = value per line)`);
  }

  /** A bare key (letters, digits, `-`, `_`) or a quoted one. */
  key(): string {
    const c = this.peek();
    if (c === '"' || c === "'") return this.str();
    const m = /^[A-Za-z0-9_-]+/.exec(this.s.slice(this.i));
    if (!m) this.fail(`expected a key such as listen = "0.0.0.0:8086"`);
    this.i += m![0].length;
    if (this.peek() === ".") this.fail(`dotted keys are not supported: write ${m![0]}… as its flag name, e.g. max-body`);
    return m![0];
  }

  value(): Value {
    const c = this.peek();
    if (c === undefined || c === "#") this.fail(`missing value after "="`);
    if (c === '"' || c === "'") return this.str();
    if (c === "[") return this.array();
    const m = /^[^\s#,\]]+/.exec(this.s.slice(this.i));
    const word = m ? m[0] : "";
    this.i += word.length;
    if (word === "true") return true;
    if (word === "false") return false;
    if (/^[+-]?(0|[1-9](_?\d)*)$/.test(word)) {
      const n = Number(word.replace(/_/g, ""));
      if (!Number.isSafeInteger(n)) this.fail(`integer ${word} is too large`);
      return n;
    }
    if (/^[+-]?(0|[1-9](_?\d)*)(\.\d(_?\d)*)?([eE][+-]?\d(_?\d)*)?$/.test(word)) return Number(word.replace(/_/g, ""));
    return this.fail(`invalid value ${JSON.stringify(word)}: strings need quotes, e.g. "${word}"`);
  }

  private array(): string[] {
    this.next();
    const out: string[] = [];
    for (;;) {
      this.skipSpace();
      if (this.peek() === "]") {
        this.next();
        return out;
      }
      if (this.atEndOrComment()) this.fail(`array not closed with "]" (arrays must fit on one line)`);
      const v = this.value();
      if (typeof v !== "string") this.fail(`arrays may hold only strings`);
      out.push(v as string);
      this.skipSpace();
      const sep = this.peek();
      if (sep === ",") this.next();
      else if (sep !== "]") this.fail(`expected "," or "]" in the array`);
    }
  }

  /** A basic ("…", with escapes) or literal ('…', verbatim) one-line string. */
  private str(): string {
    const quote = this.next();
    let out = "";
    for (;;) {
      const c = this.next();
      if (c === undefined) this.fail(`string not closed with ${quote} (strings must fit on one line)`);
      if (c === quote) return out;
      if (c! < " " && c !== "\t") this.fail(`control character in a string`);
      if (c === "\\" && quote === '"') out += this.escape();
      else out += c;
    }
  }

  private escape(): string {
    const c = this.next();
    const simple: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\" };
    if (c !== undefined && simple[c] !== undefined) return simple[c]!;
    if (c === "u" || c === "U") {
      const len = c === "u" ? 4 : 8;
      const hex = this.s.slice(this.i, this.i + len);
      if (!new RegExp(`^[0-9A-Fa-f]{${len}}$`).test(hex)) this.fail(`invalid \\${c} escape`);
      this.i += len;
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.fail(`invalid \\${c}${hex} escape`);
      return String.fromCodePoint(cp);
    }
    return this.fail(`invalid escape \\${c ?? ""} in a string`);
  }
}

// ---------------------------------------------------------------------------------------------
// Where the file is, and how it is layered under flags and environment

/**
 * The config file to read: the one given (by --config or TSDB_PAIR_CONFIG, which must exist),
 * else the default path when it exists, else none.
 */
export function configFilePath(given: string | undefined, exists: (path: string) => boolean = existsSync): string | null {
  if (given !== undefined && given !== "") {
    if (!exists(given)) throw new TsdbError("config", `cannot read config file ${given}: no such file`);
    return given;
  }
  return exists(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : null;
}

export type Source = "flag" | "env" | "file" | "default";

export interface Layer {
  readonly source: Source;
  readonly input: ConfigFileInput;
}

/**
 * Layers inputs, highest precedence first (flag, env, file): each field comes from the first
 * layer that sets it. Also tells where each field came from.
 */
export function mergeServeInputs(...layers: Layer[]): { input: ConfigFileInput; sources: Partial<Record<keyof ConfigFileInput, Source>> } {
  const input: Record<string, unknown> = {};
  const sources: Partial<Record<keyof ConfigFileInput, Source>> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.input)) {
      if (v === undefined || k in input) continue;
      input[k] = v;
      sources[k as keyof ConfigFileInput] = layer.source;
    }
  }
  return { input: input as ConfigFileInput, sources };
}

/** Setting names whose values are never printed. */
const SECRET = /secret|token|password/i;

/** ServeConfig fields that come from an input field of another name. */
const INPUT_FIELD_OF: Record<string, string> = {
  listenHost: "listen",
  listenPort: "listen",
  dataDir: "data",
  maxBodyBytes: "maxBody",
  peers: "peer",
  frameRetentionMs: "walRetention",
  frameRetentionBytes: "walMaxBytes",
  flushAgeMs: "flushAge",
  hotMemoryBytes: "hotMemory",
  hotMemoryPerSeriesBytes: "hotMemory",
  retentionMs: "retention",
  minFreeDiskBytes: "minFreeDisk",
  maxSeriesPerDatabase: "maxSeries",
};

/**
 * The resolved configuration as `config check` prints it: one `name = value` per setting
 * (nested objects flattened with dots), secrets masked, and where a setting came from when
 * `sources` (from mergeServeInputs, by input field) is given: flag, env, file or default.
 */
export function renderConfig(config: object, sources?: Partial<Record<string, string>>): string {
  const rows: Array<[string, string, string]> = [];
  const walk = (obj: object, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const name = prefix + kebab(k);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        walk(v as object, name + ".");
        continue;
      }
      const shown = SECRET.test(k) && v !== null && v !== undefined && v !== "" ? '"********"' : formatSetting(v);
      rows.push([name, shown, sources === undefined ? "" : (sources[INPUT_FIELD_OF[k] ?? k] ?? "default")]);
    }
  };
  walk(config, "");
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([n, v, s]) => `${n.padEnd(width)} = ${v}${s === "" ? "" : `  # ${s}`}`).join("\n") + "\n";
}

function kebab(k: string): string {
  return k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

function formatSetting(v: unknown): string {
  if (v === null || v === undefined) return "(none)";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(formatSetting).join(", ")}]`;
  return String(v);
}
