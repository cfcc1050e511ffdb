/**
 * Frames: the unit of the write-ahead log and of replication. A frame is one accepted
 * batch (or, later, one schema change or delete), encoded compactly and checksummed so a
 * corrupt or truncated frame is refused instead of applied.
 *
 * Layout (little endian):
 *   "TPF1" | u32 crc32 of the rest | u8 kind | u16 len + origin | u64 lsn | u64 hlc | op
 *   op "write": u16 len + db | u16 len + rp | u8 precision | i64 defaultTime | u32 len + lines
 *   op "write", compressed: as "write", but u32 text length | u32 len + zstd of the lines
 *   schema ops (create/drop database, drop measurement, delete): u32 len + JSON
 * The lines are the batch's accepted line-protocol lines verbatim; replaying them through
 * the parser with the stored precision and default time yields exactly the stored points.
 * A large request body is stored compressed (zstd, compressed on a worker thread beside its
 * parse): storing and syncing a megabyte body cost the single writer more than applying its
 * points, and a fifth of the bytes costs a fifth of that. The twin receives and stores the
 * compressed frame as it is. The text length guards the inflate: a frame that inflates to
 * any other length (a forged one, or zstd data cut short, which inflates without an error)
 * is refused.
 * Schema ops are rare and small, so JSON (times as decimal strings) keeps them readable.
 */
import { constants, crc32, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { TsdbError } from "../errors.ts";
import type { Precision } from "../lineprotocol/types.ts";
import type { Hlc } from "./hlc.ts";
import { formatPosition, type Lsn } from "./position.ts";

export interface WriteOp {
  readonly kind: "write";
  readonly db: string;
  readonly rp: string;
  readonly precision: Precision;
  readonly defaultTime: bigint;
  /** The lines as text, as UTF-8 bytes (a request body stored as it came), or those bytes compressed. */
  readonly lines: string | Uint8Array | CompressedLines;
}

/** Line-protocol text as zstd, with the length of the UTF-8 text it inflates to. */
export interface CompressedLines {
  readonly zstd: Uint8Array;
  readonly textBytes: number;
}

export interface CreateDatabaseOp {
  readonly kind: "create_db";
  readonly db: string;
  /** CREATE DATABASE ... WITH DURATION, in ns (0 = forever); absent = the node's default. */
  readonly durationNs?: bigint;
}

export interface DropDatabaseOp {
  readonly kind: "drop_db";
  readonly db: string;
}

export interface DropMeasurementOp {
  readonly kind: "drop_measurement";
  readonly db: string;
  readonly measurement: string;
}

/** Removes the values of the listed series with start <= time <= end written before this frame. */
export interface DeleteOp {
  readonly kind: "delete";
  readonly db: string;
  readonly seriesKeys: readonly string[];
  readonly start: bigint;
  readonly end: bigint;
}

export type SchemaOp = CreateDatabaseOp | DropDatabaseOp | DropMeasurementOp | DeleteOp;
export type FrameOp = WriteOp | SchemaOp;

export interface Frame {
  readonly origin: string;
  readonly lsn: Lsn;
  readonly hlc: Hlc;
  readonly op: FrameOp;
}

const MAGIC = 0x31465054; // "TPF1" read as little-endian u32
const KIND_WRITE = 1;
const KIND_WRITE_ZSTD = 6;
const SCHEMA_KINDS: Record<SchemaOp["kind"], number> = { create_db: 2, drop_db: 3, drop_measurement: 4, delete: 5 };
const SCHEMA_BY_CODE = new Map(Object.entries(SCHEMA_KINDS).map(([k, v]) => [v, k as SchemaOp["kind"]]));
const PRECISIONS: readonly Precision[] = ["ns", "u", "ms", "s", "m", "h"];
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes a frame with its checksum. */
export function encodeFrame(frame: Frame): Uint8Array {
  const op = frame.op;
  if (op.kind !== "write") return encodeSchemaFrame(frame, op);
  const origin = encoder.encode(frame.origin);
  const db = encoder.encode(op.db);
  const rp = encoder.encode(op.rp);
  const compressed = isCompressed(op.lines) ? op.lines : null;
  const lines = compressed !== null ? compressed.zstd : typeof op.lines === "string" ? encoder.encode(op.lines) : (op.lines as Uint8Array);
  const textLengthField = compressed !== null ? 4 : 0;
  const size = 8 + 1 + 2 + origin.length + 8 + 8 + 2 + db.length + 2 + rp.length + 1 + 8 + textLengthField + 4 + lines.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = putHeader(out, view, compressed !== null ? KIND_WRITE_ZSTD : KIND_WRITE, origin, frame);
  at = putBytes16(out, view, at, db);
  at = putBytes16(out, view, at, rp);
  view.setUint8(at, PRECISIONS.indexOf(op.precision));
  view.setBigInt64(at + 1, op.defaultTime, true);
  at += 9;
  if (compressed !== null) {
    view.setUint32(at, compressed.textBytes, true);
    at += 4;
  }
  view.setUint32(at, lines.length, true);
  out.set(lines, at + 4);
  return seal(out, view);
}

function encodeSchemaFrame(frame: Frame, op: SchemaOp): Uint8Array {
  const origin = encoder.encode(frame.origin);
  const json = encoder.encode(JSON.stringify(op, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
  const out = new Uint8Array(8 + 1 + 2 + origin.length + 16 + 4 + json.length);
  const view = new DataView(out.buffer);
  const at = putHeader(out, view, SCHEMA_KINDS[op.kind], origin, frame);
  view.setUint32(at, json.length, true);
  out.set(json, at + 4);
  return seal(out, view);
}

function putHeader(out: Uint8Array, view: DataView, kind: number, origin: Uint8Array, frame: Frame): number {
  view.setUint8(8, kind);
  const at = putBytes16(out, view, 9, origin);
  view.setBigUint64(at, BigInt(frame.lsn), true);
  view.setBigUint64(at + 8, BigInt(frame.hlc), true);
  return at + 16;
}

function seal(out: Uint8Array, view: DataView): Uint8Array {
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, crc32(out.subarray(8)), true);
  return out;
}

/**
 * Decodes and verifies a frame; throws TsdbError("corrupt_frame") saying what is wrong.
 * With `rawLines`, a write's lines stay bytes (a view of `bytes`), not checked as UTF-8: for
 * a caller that hands them to a parser which decodes and checks them itself. Compressed lines
 * stay compressed either way (a view too); writeText inflates and checks them.
 */
export function decodeFrame(bytes: Uint8Array, opts: { rawLines?: boolean } = {}): Frame {
  const fail = (why: string): never => {
    throw new TsdbError("corrupt_frame", `cannot decode frame of ${bytes.length} bytes: ${why}`);
  };
  if (bytes.length < 8 + 1 + 2 + 16) fail("too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail("bad magic");
  const stored = view.getUint32(4, true);
  const actual = crc32(bytes.subarray(8));
  if (stored !== actual) fail(`checksum mismatch (stored ${stored}, computed ${actual})`);
  const r = new Reader(bytes, view, 8, fail);
  const kind = r.u8();
  const schemaKind = SCHEMA_BY_CODE.get(kind);
  if (kind !== KIND_WRITE && kind !== KIND_WRITE_ZSTD && schemaKind === undefined) fail(`unknown kind ${kind}`);
  const origin = r.str16();
  const lsn = r.u64safe();
  const hlc = r.u64safe();
  if (schemaKind !== undefined) {
    const op = parseSchemaOp(r.str32(), schemaKind, fail);
    if (!r.atEnd()) fail("trailing bytes");
    return { origin, lsn, hlc, op };
  }
  const db = r.str16();
  const rp = r.str16();
  const precision = PRECISIONS[r.u8()] ?? fail("unknown precision");
  const defaultTime = r.i64();
  let lines: WriteOp["lines"];
  if (kind === KIND_WRITE_ZSTD) {
    const textBytes = r.u32();
    lines = { zstd: r.bytes32(), textBytes };
  } else lines = opts.rawLines === true ? r.bytes32() : r.str32();
  if (!r.atEnd()) fail("trailing bytes");
  return { origin, lsn, hlc, op: { kind: "write", db, rp, precision, defaultTime, lines } };
}

function parseSchemaOp(json: string, kind: SchemaOp["kind"], fail: (why: string) => never): SchemaOp {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return fail("schema op is not JSON");
  }
  const str = (k: string): string => (typeof o[k] === "string" ? (o[k] as string) : fail(`schema op lacks ${k}`));
  if (o.kind !== kind) fail(`schema op kind ${String(o.kind)} does not match frame kind ${kind}`);
  switch (kind) {
    case "create_db": {
      if (o.durationNs === undefined) return { kind, db: str("db") };
      const d = str("durationNs");
      return { kind, db: str("db"), durationNs: /^\d+$/.test(d) ? BigInt(d) : fail("create_db has a bad durationNs") };
    }
    case "drop_db":
      return { kind, db: str("db") };
    case "drop_measurement":
      return { kind, db: str("db"), measurement: str("measurement") };
    case "delete": {
      const keys = o.seriesKeys;
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) fail("delete lacks seriesKeys");
      const time = (k: string): bigint => {
        const v = str(k);
        return /^-?\d+$/.test(v) ? BigInt(v) : fail(`delete has a bad ${k}`);
      };
      return { kind, db: str("db"), seriesKeys: keys as string[], start: time("start"), end: time("end") };
    }
  }
}

/** A write op's lines as text (decoded, and inflated when compressed). */
export function writeText(op: WriteOp): string {
  const lines = op.lines;
  if (typeof lines === "string") return lines;
  const bytes = isCompressed(lines) ? inflateLines(lines) : lines;
  try {
    return decoder.decode(bytes);
  } catch {
    throw new TsdbError("corrupt_frame", "a write frame's lines are not valid UTF-8");
  }
}

export function isCompressed(lines: WriteOp["lines"]): lines is CompressedLines {
  return typeof lines === "object" && !(lines instanceof Uint8Array);
}

/** True when encoded frame `bytes` hold compressed lines (not worth compressing again). */
export function holdsCompressedLines(bytes: Uint8Array): boolean {
  return bytes.length > 8 && bytes[8] === KIND_WRITE_ZSTD;
}

/**
 * Compresses a body's UTF-8 bytes for a frame. zstd's fastest regular level: about 400 MB/s
 * and a fifth of the size on line protocol (gzip's level 1 is as fast, at a third).
 */
export function compressLines(text: Uint8Array): CompressedLines {
  // A copy of exactly its bytes: the result may be a view of a larger pooled buffer.
  const zstd = zstdCompressSync(text, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }).slice();
  return { zstd, textBytes: text.length };
}

/** The UTF-8 bytes of compressed lines; refuses data that does not inflate to the stated length. */
export function inflateLines(lines: CompressedLines): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = zstdDecompressSync(lines.zstd, { maxOutputLength: Math.max(lines.textBytes, 1) });
  } catch (e) {
    throw new TsdbError("corrupt_frame", `compressed lines do not inflate: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (bytes.length !== lines.textBytes) {
    throw new TsdbError("corrupt_frame", `compressed lines inflate to ${bytes.length} bytes, not the ${lines.textBytes} the frame states`);
  }
  return bytes;
}

/** A one-line description for logs and errors. */
export function describeFrame(frame: Frame): string {
  return `frame ${formatPosition(frame)} (${frame.op.kind} db=${frame.op.db})`;
}

function putBytes16(out: Uint8Array, view: DataView, at: number, bytes: Uint8Array): number {
  if (bytes.length > 0xffff) throw new TsdbError("bad_request", `name too long (${bytes.length} bytes, max 65535)`);
  view.setUint16(at, bytes.length, true);
  out.set(bytes, at + 2);
  return at + 2 + bytes.length;
}

class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    private readonly view: DataView,
    private at: number,
    private readonly fail: (why: string) => never,
  ) {}
  private need(n: number): number {
    const at = this.at;
    if (at + n > this.bytes.length) this.fail("truncated");
    this.at += n;
    return at;
  }
  u8(): number {
    return this.view.getUint8(this.need(1));
  }
  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }
  u64safe(): number {
    const v = this.view.getBigUint64(this.need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`value ${v} out of range`);
    return Number(v);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.need(8), true);
  }
  str16(): string {
    const n = this.view.getUint16(this.need(2), true);
    return this.text(n);
  }
  str32(): string {
    const n = this.view.getUint32(this.need(4), true);
    return this.text(n);
  }
  bytes32(): Uint8Array {
    const n = this.view.getUint32(this.need(4), true);
    const at = this.need(n);
    return this.bytes.subarray(at, at + n);
  }
  private text(n: number): string {
    const at = this.need(n);
    try {
      return decoder.decode(this.bytes.subarray(at, at + n));
    } catch {
      return this.fail("invalid UTF-8");
    }
  }
  atEnd(): boolean {
    return this.at === this.bytes.length;
  }
}
