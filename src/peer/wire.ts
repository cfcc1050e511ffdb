/**
 * The peer stream: a sequence of messages, each `u8 type | u32 length | payload` (little
 * endian). Frames travel as their own checksummed bytes; control messages are JSON; backfill
 * records carry chunk columns behind a checksum of their own. Pure: bytes in, messages out,
 * no I/O.
 */
import { crc32, deflateRawSync, inflateRawSync } from "node:zlib";
import { TsdbError } from "../errors.ts";
import type { FieldType } from "../lineprotocol/types.ts";
import type { BackfillRecord, TombstoneRecord } from "../store/store.ts";

/** The sender introduces itself at the start of every stream. */
export interface Hello {
  readonly node_id: string;
  readonly incarnation: string;
  /** Sender's newest LSN and the oldest it still retains (null: none retained). */
  readonly latest_lsn: number;
  readonly oldest_lsn: number | null;
  /** How far the sender applied the requester's frames (its cursor), null if never. */
  readonly applied_of_you: number | null;
  readonly hlc: number;
  readonly time_ms: number;
  /**
   * On the frame stream: bytes of the sender's frames after the requester's offset, and
   * whether they are all plain writes (then the requester may catch up from storage instead).
   */
  readonly pending_bytes?: number;
  readonly writes_only?: boolean;
}

export interface Heartbeat {
  readonly latest_lsn: number;
  readonly applied_of_you: number | null;
  /** Bytes of the sender's frames the receiver has not applied yet (by its cursor). */
  readonly pending_bytes?: number;
  readonly hlc: number;
  readonly time_ms: number;
}

/** Frames `from`..`to` are no longer retained: refill from storage, then resume after `to`. */
export interface Gap {
  readonly from: number;
  readonly to: number;
}

/** End of a backfill: the frame stream resumes after `lsn`. */
export interface Done {
  readonly lsn: number;
  readonly hlc: number;
}

export type Message =
  | { readonly type: "hello"; readonly hello: Hello }
  | { readonly type: "frame"; readonly bytes: Uint8Array }
  /** A frame compressed with deflate (raw); the receiver inflates it before checking it. */
  | { readonly type: "frame_z"; readonly bytes: Uint8Array }
  | { readonly type: "heartbeat"; readonly heartbeat: Heartbeat }
  | { readonly type: "gap"; readonly gap: Gap }
  | { readonly type: "record"; readonly record: BackfillRecord }
  /** A tombstone sent with a backfill, so deletes made during a gap reach the twin too. */
  | { readonly type: "tomb"; readonly tomb: TombstoneRecord }
  | { readonly type: "done"; readonly done: Done }
  | { readonly type: "error"; readonly error: string };

const CODES = { hello: 1, frame: 2, heartbeat: 3, gap: 4, record: 5, done: 6, error: 7, frame_z: 8, tomb: 9 } as const;
const TYPES = new Map(Object.entries(CODES).map(([k, v]) => [v as number, k as Message["type"]]));
/** Larger messages are refused: a frame holds one request body (25 MB by default). */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes one message. */
export function encodeMessage(m: Message): Uint8Array {
  let payload: Uint8Array;
  switch (m.type) {
    case "hello":
      payload = json(m.hello);
      break;
    case "frame":
    case "frame_z":
      payload = m.bytes;
      break;
    case "heartbeat":
      payload = json(m.heartbeat);
      break;
    case "gap":
      payload = json(m.gap);
      break;
    case "record":
      payload = encodeRecord(m.record);
      break;
    case "done":
      payload = json(m.done);
      break;
    case "tomb":
      payload = json(m.tomb);
      break;
    case "error":
      payload = json({ error: m.error });
      break;
  }
  const out = new Uint8Array(5 + payload.length);
  out[0] = CODES[m.type];
  new DataView(out.buffer).setUint32(1, payload.length, true);
  out.set(payload, 5);
  return out;
}

function json(v: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(v));
}

function bad(why: string): never {
  throw new TsdbError("corrupt_frame", `bad peer message: ${why}`);
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    return bad(`${what} is not JSON`);
  }
}

function decodePayload(type: Message["type"], p: Uint8Array): Message {
  switch (type) {
    case "hello":
      return { type, hello: parseJson<Hello>(p, "hello") };
    case "frame":
    case "frame_z":
      return { type, bytes: p };
    case "heartbeat":
      return { type, heartbeat: parseJson<Heartbeat>(p, "heartbeat") };
    case "gap":
      return { type, gap: parseJson<Gap>(p, "gap") };
    case "record":
      return { type, record: decodeRecord(p) };
    case "done":
      return { type, done: parseJson<Done>(p, "done") };
    case "tomb":
      return { type, tomb: parseJson<TombstoneRecord>(p, "tomb") };
    case "error":
      return { type, error: parseJson<{ error: string }>(p, "error").error };
  }
}

/** Splits a byte stream into messages, whatever the chunk boundaries. */
export class MessageReader {
  /** Bytes received and not yet read, in the pieces they came in (joined once per message). */
  private parts: Uint8Array[] = [];
  private size = 0;

  /** Adds bytes; returns the messages now complete. */
  push(chunk: Uint8Array): Message[] {
    if (chunk.length > 0) {
      this.parts.push(chunk);
      this.size += chunk.length;
    }
    const out: Message[] = [];
    while (this.size >= 5) {
      const head = this.front(5);
      const code = head[0]!;
      const type = TYPES.get(code) ?? bad(`unknown type ${code}`);
      const len = new DataView(head.buffer, head.byteOffset + 1, 4).getUint32(0, true);
      if (len > MAX_MESSAGE_BYTES) bad(`message of ${len} bytes is over the limit`);
      if (this.size - 5 < len) break;
      out.push(decodePayload(type, this.take(5 + len).subarray(5)));
    }
    return out;
  }

  /** True when bytes of an unfinished message are buffered. */
  pending(): boolean {
    return this.size > 0;
  }

  /** The first piece, joined with the next ones until it holds at least `n` bytes (n <= size). */
  private front(n: number): Uint8Array {
    while (this.parts[0]!.length < n) {
      const [a, b] = this.parts as [Uint8Array, Uint8Array];
      const joined = new Uint8Array(a.length + b.length);
      joined.set(a);
      joined.set(b, a.length);
      this.parts.splice(0, 2, joined);
    }
    return this.parts[0]!;
  }

  /**
   * The next `n` bytes (n <= size) as a copy of their own, so a message never keeps a whole
   * read buffer alive; every byte is copied once however many pieces it came in.
   */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const p = this.parts[0]!;
      const k = Math.min(p.length, n - at);
      out.set(k === p.length ? p : p.subarray(0, k), at);
      at += k;
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
    }
    this.size -= n;
    return out;
  }
}

interface RecordHeader {
  db: string;
  measurement: string;
  seriesKey: string;
  field: string;
  type: FieldType;
  nodes: string[];
  count: number;
  minTime: string;
  maxTime: string;
  maxHlc: string;
  originId: number | null;
}

const BLOBS = ["times", "vals", "hlcs", "origins"] as const;

/**
 * A record: u32 CRC-32 of the rest | u32 header length | JSON header | four columns, each
 * u32 length + bytes. The checksum lets the twin store a chunk as it came without decoding
 * it (see Store.applyBackfill).
 */
function encodeRecord(r: BackfillRecord): Uint8Array {
  const c = r.chunk;
  const header: RecordHeader = {
    db: r.db,
    measurement: r.measurement,
    seriesKey: r.seriesKey,
    field: r.field,
    type: r.type,
    nodes: [...r.nodes],
    count: c.count,
    minTime: String(c.minTime),
    maxTime: String(c.maxTime),
    maxHlc: String(c.maxHlc),
    originId: c.originId,
  };
  const head = json(header);
  const blobs = [c.times, c.vals, c.hlcs, c.origins ?? new Uint8Array(0)];
  const out = new Uint8Array(8 + head.length + blobs.reduce((n, b) => n + 4 + b.length, 0));
  const view = new DataView(out.buffer);
  view.setUint32(4, head.length, true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const b of blobs) {
    view.setUint32(at, b.length, true);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  view.setUint32(0, crc32(out.subarray(4)), true);
  return out;
}

function decodeRecord(p: Uint8Array): BackfillRecord {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const take = (at: number): [Uint8Array, number] => {
    if (at + 4 > p.length) bad("record truncated");
    const n = view.getUint32(at, true);
    if (at + 4 + n > p.length) bad("record truncated");
    return [p.subarray(at + 4, at + 4 + n), at + 4 + n];
  };
  if (p.length < 4) bad("record truncated");
  const stored = view.getUint32(0, true);
  const actual = crc32(p.subarray(4));
  if (stored !== actual) bad(`record checksum mismatch (stored ${stored}, computed ${actual})`);
  let [head, at] = take(4);
  const h = parseJson<RecordHeader>(head, "record header");
  const parts: Uint8Array[] = [];
  for (const _ of BLOBS) {
    let blob: Uint8Array;
    [blob, at] = take(at);
    parts.push(blob);
  }
  if (at !== p.length) bad("record has trailing bytes");
  const time = (s: string): bigint => (/^-?\d+$/.test(s) ? BigInt(s) : bad(`record time ${JSON.stringify(s)}`));
  return {
    db: h.db,
    measurement: h.measurement,
    seriesKey: h.seriesKey,
    field: h.field,
    type: h.type,
    nodes: h.nodes,
    chunk: {
      count: h.count,
      minTime: time(h.minTime),
      maxTime: time(h.maxTime),
      maxHlc: time(h.maxHlc),
      times: parts[0]!,
      vals: parts[1]!,
      hlcs: parts[2]!,
      originId: h.originId,
      origins: h.originId === null ? parts[3]! : null,
    },
  };
}


/**
 * Compresses a frame for the stream (level 1: a tenfold saving on line protocol for 1-2 ms a
 * frame). Synchronous on purpose: zlib's asynchronous completions wait behind a busy event
 * loop, which stalled the stream while the sender ingested at full speed.
 */
export function compressFrame(bytes: Uint8Array): Uint8Array {
  return deflateRawSync(bytes, { level: 1 });
}

/**
 * Inflates a compressed frame, refusing one that would grow past the message limit.
 * Synchronous: a frame inflates in a few milliseconds, while the asynchronous form queued
 * behind the thread pool and took a hundred (it was what bounded catch-up speed).
 */
export function inflateFrame(bytes: Uint8Array): Uint8Array {
  try {
    return inflateRawSync(bytes, { maxOutputLength: MAX_MESSAGE_BYTES });
  } catch (e) {
    return bad(`compressed frame does not inflate: ${e instanceof Error ? e.message : String(e)}`);
  }
}
