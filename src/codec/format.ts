/**
 * The header every encoded column starts with: one format byte, then the value count as an
 * unsigned LEB128 varint. The high nibble of the format byte is the column kind and the low
 * nibble the encoding, so a decoder can tell "not my kind" from "a newer encoding of my kind",
 * and new encodings only need a new byte here.
 */
import { BitReader, BitWriter, corrupt } from "./bits.ts";
import { TsdbError } from "../errors.ts";

export const FORMAT = {
  TIME_RAW: 0x10,
  TIME_DOD: 0x11,
  FLOAT_RAW: 0x20,
  FLOAT_GORILLA: 0x21,
  FLOAT_DECIMAL: 0x22,
  FLOAT_SPLIT: 0x23,
  FLOAT_SPLIT_CODED: 0x24,
  INT_PACKED: 0x30,
  UINT_PACKED: 0x40,
  BOOL_PACKED: 0x50,
  BOOL_CONSTANT: 0x51,
  STRING_PLAIN: 0x60,
  STRING_DICT: 0x61,
  CLOCK_RUNS: 0x70,
} as const;

export type ColumnKind = "time" | "float" | "integer" | "unsigned" | "boolean" | "string" | "clock";

const KIND_BY_NIBBLE: Record<number, ColumnKind> = {
  1: "time",
  2: "float",
  3: "integer",
  4: "unsigned",
  5: "boolean",
  6: "string",
  7: "clock",
};

const ENCODING_NAME: Record<number, string> = {
  [FORMAT.TIME_RAW]: "raw",
  [FORMAT.TIME_DOD]: "delta-of-delta",
  [FORMAT.FLOAT_RAW]: "raw",
  [FORMAT.FLOAT_GORILLA]: "Gorilla XOR",
  [FORMAT.FLOAT_DECIMAL]: "decimal",
  [FORMAT.FLOAT_SPLIT]: "sign and exponent by dictionary, mantissas bit-packed",
  [FORMAT.FLOAT_SPLIT_CODED]: "sign and exponent by dictionary and prefix code, mantissas bit-packed",
  [FORMAT.INT_PACKED]: "zig-zag delta, bit-packed",
  [FORMAT.UINT_PACKED]: "zig-zag delta, bit-packed",
  [FORMAT.BOOL_PACKED]: "bit-packed",
  [FORMAT.BOOL_CONSTANT]: "constant",
  [FORMAT.STRING_PLAIN]: "length-prefixed UTF-8",
  [FORMAT.STRING_DICT]: "dictionary",
  [FORMAT.CLOCK_RUNS]: "runs of millisecond steps and counters",
};

/**
 * Upper bound on values per column. Run-length encodings make a huge count cheap to write, so
 * without a bound a corrupted header could make a decoder allocate gigabytes.
 */
export const MAX_VALUES = 1 << 24;

/** What a column buffer holds, read from its header alone. */
export interface ColumnHeader {
  kind: ColumnKind;
  format: number;
  encoding: string;
  count: number;
}

function hex(b: number): string {
  return "0x" + b.toString(16).padStart(2, "0");
}

function describe(format: number): string {
  const kind = KIND_BY_NIBBLE[format >>> 4];
  const enc = ENCODING_NAME[format];
  if (kind === undefined || enc === undefined) return `format ${hex(format)} (unknown)`;
  return `format ${hex(format)} (${kind} column, ${enc})`;
}

/** Throws when an encoder is handed more values than a decoder would accept. */
export function checkEncodeCount(what: string, count: number): void {
  if (count > MAX_VALUES) {
    throw new TsdbError("internal", `cannot encode ${what}: ${count} values exceed the limit of ${MAX_VALUES} per column`);
  }
}

/** Starts a column: format byte and count. */
export function writeHeader(w: BitWriter, format: number, count: number): void {
  w.write(format, 8);
  w.writeUvarint(count);
}

/**
 * Reads a header and checks the format is one of `formats`; `fn` and the reader's `what`
 * name the decoder and the expected column in the error.
 */
export function readHeader(r: BitReader, fn: string, formats: readonly number[]): { format: number; count: number } {
  const expected = `${/^[aeiou]/.test(r.what) ? "an" : "a"} ${r.what}`;
  let format: number;
  try {
    format = r.read(8);
  } catch {
    throw new TsdbError("internal", `${fn}: expected ${expected}, got an empty buffer`);
  }
  if (!formats.includes(format)) {
    const want = formats.map((f) => describe(f)).join(" or ");
    throw new TsdbError("internal", `${fn}: expected ${expected} (${want}), got ${describe(format)}`);
  }
  const count = r.readUvarint();
  if (count > MAX_VALUES) throw corrupt(r.what, `header claims ${count} values, more than the limit of ${MAX_VALUES}`);
  return { format, count };
}

/** Reads the header of any encoded column without decoding it (for stats and sanity checks). */
export function readColumnHeader(buf: Uint8Array): ColumnHeader {
  const r = new BitReader(buf, "column");
  const format = buf.length > 0 ? buf[0]! : -1;
  const kind = KIND_BY_NIBBLE[format >>> 4];
  const encoding = ENCODING_NAME[format];
  if (kind === undefined || encoding === undefined) {
    throw new TsdbError("internal", `readColumnHeader: expected an encoded column, got ${buf.length === 0 ? "an empty buffer" : describe(format)}`);
  }
  const { count } = readHeader(r, "readColumnHeader", [format]);
  return { kind, format, encoding, count };
}
