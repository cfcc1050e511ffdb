/** Types shared by the line-protocol parser and its consumers (writer, frames, export). */

/** The five InfluxDB field types. */
export type FieldType = "float" | "integer" | "unsigned" | "boolean" | "string";

/** A field value: floats are numbers, integer and unsigned are bigints (int64/uint64 exact). */
export type FieldValue = number | bigint | boolean | string;

export interface Field {
  /** Unescaped field key. */
  key: string;
  type: FieldType;
  value: FieldValue;
}

/** Timestamp precisions accepted by /write (1.x spellings) and /api/v2/write. */
export type Precision = "ns" | "u" | "ms" | "s" | "m" | "h";

export interface Point {
  /** Unescaped measurement name. */
  measurement: string;
  /** Unescaped tags, sorted by key (byte order), keys unique. */
  tags: Array<[string, string]>;
  /**
   * Canonical series key: escaped measurement then `,key=value` for each sorted tag,
   * escaped as line protocol requires (the form InfluxDB uses for series keys).
   */
  seriesKey: string;
  /** Fields in input order, keys unique within the point. */
  fields: Field[];
  /** Nanoseconds since the Unix epoch. */
  time: bigint;
  /** 1-based line number in the body. */
  line: number;
  /** The line's text exactly as received, without its line end. */
  raw: string;
}

export interface LineError {
  /** 1-based line number in the body. */
  line: number;
  /** The line's text (without its line end). */
  text: string;
  /** InfluxDB's wording, e.g. `invalid number`, `missing tag key`. */
  reason: string;
}

export interface ParseOptions {
  /** Precision of timestamps written in the body. */
  precision: Precision;
  /** Server time in nanoseconds, used (truncated to the precision) for lines without a timestamp. */
  defaultTime: bigint;
}

/**
 * The points of one body, column by column: per-point arrays, and the fields of point `i` at
 * indexes `fieldStart[i]` up to `fieldStart[i + 1]` of the field arrays. A body of thousands of
 * lines is a handful of arrays rather than tens of thousands of small objects, which is what
 * keeps ingest fast and the heap small. `toPoints` gives the object view.
 */
export interface PointBatch {
  readonly length: number;
  readonly measurement: ArrayLike<string>;
  readonly seriesKey: ArrayLike<string>;
  readonly time: ArrayLike<bigint>;
  readonly line: ArrayLike<number>;
  /** The text of each point's line, as it was in the body (made on first use). */
  readonly raw: ArrayLike<string>;
  /** Where each point's line starts and ends in the decoded body (UTF-16 offsets). */
  readonly rawStart: ArrayLike<number>;
  readonly rawEnd: ArrayLike<number>;
  readonly fieldStart: ArrayLike<number>;
  readonly fieldKey: ArrayLike<string>;
  readonly fieldType: ArrayLike<FieldType>;
  readonly fieldValue: ArrayLike<FieldValue>;
}

export interface ParseResult {
  batch: PointBatch;
  errors: LineError[];
}
