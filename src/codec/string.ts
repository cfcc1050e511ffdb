/**
 * String columns, either
 *
 * - plain: the UTF-16 length of each string (bit-packed, packed.ts), then all strings as one
 *   UTF-8 block; or
 * - dictionary: the distinct strings once, in order of first appearance, laid out as above,
 *   then one bit-packed index per value (runs of the same string cost a few bytes),
 *
 * whichever is estimated smaller. Lengths count UTF-16 code units rather than bytes so the
 * decoder can turn the whole block into one string with a single TextDecoder call and cut it
 * up with substring, instead of paying a decoder call per value.
 *
 * JS strings may hold lone surrogates, which UTF-8 cannot express (TextEncoder would replace
 * them with U+FFFD). Such columns are flagged and written as WTF-8 (surrogates encoded like
 * other 3-byte code points) with a small codec of our own, so every string round-trips.
 */
import { BitReader, BitWriter, HI, LO, corrupt } from "./bits.ts";
import { FORMAT, checkEncodeCount, readHeader, writeHeader } from "./format.ts";
import { readPacked, writePacked } from "./packed.ts";

const FLAG_WTF8 = 1;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8Encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is data here, not a byte-order mark to strip.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Encodes a string column. */
export function encodeStrings(values: string[]): Uint8Array {
  const n = values.length;
  checkEncodeCount("string column", n);
  const idOf = new Map<string, number>();
  const distinct: string[] = [];
  const uses: number[] = [];
  const ids = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const s = values[i]!;
    let id = idOf.get(s);
    if (id === undefined) {
      id = distinct.length;
      idOf.set(s, id);
      distinct.push(s);
      uses.push(0);
    }
    uses[id]!++;
    ids[2 * i + LO] = id;
  }
  const dict = distinct.length < n && dictionaryIsSmaller(distinct, uses, n);
  const strings = dict ? distinct : values;
  const w = new BitWriter(64 + n);
  writeHeader(w, dict ? FORMAT.STRING_DICT : FORMAT.STRING_PLAIN, n);
  if (dict) w.writeUvarint(distinct.length);
  writeBlock(w, strings);
  if (dict) writePacked(w, ids, 0, n);
  return w.finish();
}

/** Decodes a column written by encodeStrings. */
export function decodeStrings(buf: Uint8Array): string[] {
  const r = new BitReader(buf, "string column");
  const { format, count: n } = readHeader(r, "decodeStrings", [FORMAT.STRING_PLAIN, FORMAT.STRING_DICT]);
  if (format === FORMAT.STRING_PLAIN) {
    const out = readBlock(r, n);
    r.expectEnd();
    return out;
  }
  const d = r.readUvarint();
  if (d > n || (d === 0) !== (n === 0)) throw corrupt(r.what, `${d} distinct strings for ${n} values`);
  const dict = readBlock(r, d);
  const ids = new Uint32Array(2 * n);
  readPacked(r, ids, 0, n);
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const id = ids[2 * i + LO]!;
    if (id >= d || ids[2 * i + HI] !== 0) throw corrupt(r.what, `value ${i} refers to string ${id} of ${d}`);
    out[i] = dict[id]!;
  }
  r.expectEnd();
  return out;
}

/** Flags byte, UTF-16 lengths, byte count, bytes. */
function writeBlock(w: BitWriter, strings: string[]): void {
  const lens = new Uint32Array(2 * strings.length);
  for (let i = 0; i < strings.length; i++) lens[2 * i + LO] = strings[i]!.length;
  const joined = strings.join("");
  const wtf8 = LONE_SURROGATE.test(joined);
  w.write(wtf8 ? FLAG_WTF8 : 0, 8);
  writePacked(w, lens, 0, strings.length);
  const bytes = wtf8 ? encodeWtf8(joined) : utf8Encoder.encode(joined);
  w.writeUvarint(bytes.length);
  w.writeBytes(bytes);
}

function readBlock(r: BitReader, n: number): string[] {
  const flags = r.read(8);
  if (flags > FLAG_WTF8) throw corrupt(r.what, `unknown flags ${flags}`);
  const lens = new Uint32Array(2 * n);
  readPacked(r, lens, 0, n);
  const bytes = r.readBytes(r.readUvarint());
  let text: string;
  if (flags === FLAG_WTF8) text = decodeWtf8(bytes, r.what);
  else {
    try {
      text = utf8Decoder.decode(bytes);
    } catch (e) {
      throw corrupt(r.what, `invalid UTF-8 (${(e as Error).message})`);
    }
  }
  const out = new Array<string>(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const len = lens[2 * i + LO]!;
    if (lens[2 * i + HI] !== 0 || at + len > text.length) {
      throw corrupt(r.what, `string ${i} runs past the ${text.length} characters of text`);
    }
    out[i] = text.substring(at, at + len);
    at += len;
  }
  if (at !== text.length) throw corrupt(r.what, `lengths cover ${at} of ${text.length} characters`);
  return out;
}

/** Bytes of s in UTF-8 (WTF-8 for lone surrogates: 3 bytes each). */
function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // 4 bytes for 2 code units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

function bitLength(x: number): number {
  return 32 - Math.clz32(x);
}

/** Compares estimated sizes: lengths are costed at the widest length's width. */
function dictionaryIsSmaller(distinct: string[], uses: number[], n: number): boolean {
  let dictBytes = 0;
  let plainBytes = 0;
  let maxLen = 0;
  for (let i = 0; i < distinct.length; i++) {
    const s = distinct[i]!;
    const b = utf8Length(s);
    dictBytes += b;
    plainBytes += b * uses[i]!;
    if (s.length > maxLen) maxLen = s.length;
  }
  const lenBits = bitLength(maxLen);
  const dictBits = 8 * dictBytes + distinct.length * lenBits + n * bitLength(distinct.length - 1);
  const plainBits = 8 * plainBytes + n * lenBits;
  return dictBits < plainBits;
}

function encodeWtf8(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3);
  let p = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[p++] = c;
      continue;
    }
    if (c < 0x800) {
      out[p++] = 0xc0 | (c >>> 6);
      out[p++] = 0x80 | (c & 0x3f);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if ((next & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        out[p++] = 0xf0 | (c >>> 18);
        out[p++] = 0x80 | ((c >>> 12) & 0x3f);
        out[p++] = 0x80 | ((c >>> 6) & 0x3f);
        out[p++] = 0x80 | (c & 0x3f);
        continue;
      }
    }
    // Any other BMP code unit, lone surrogates included.
    out[p++] = 0xe0 | (c >>> 12);
    out[p++] = 0x80 | ((c >>> 6) & 0x3f);
    out[p++] = 0x80 | (c & 0x3f);
  }
  return out.subarray(0, p);
}

function decodeWtf8(bytes: Uint8Array, what: string): string {
  const units = new Uint16Array(bytes.length);
  let u = 0;
  let i = 0;
  const cont = (k: number): number => {
    const b = bytes[k];
    if (b === undefined || (b & 0xc0) !== 0x80) throw corrupt(what, `invalid WTF-8 at byte ${k}`);
    return b & 0x3f;
  };
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      units[u++] = b;
      i += 1;
    } else if ((b & 0xe0) === 0xc0) {
      const c = ((b & 0x1f) << 6) | cont(i + 1);
      if (c < 0x80) throw corrupt(what, `overlong WTF-8 at byte ${i}`);
      units[u++] = c;
      i += 2;
    } else if ((b & 0xf0) === 0xe0) {
      const c = ((b & 0x0f) << 12) | (cont(i + 1) << 6) | cont(i + 2);
      if (c < 0x800) throw corrupt(what, `overlong WTF-8 at byte ${i}`);
      units[u++] = c;
      i += 3;
    } else if ((b & 0xf8) === 0xf0) {
      const c = ((b & 0x07) << 18) | (cont(i + 1) << 12) | (cont(i + 2) << 6) | cont(i + 3);
      if (c < 0x10000 || c > 0x10ffff) throw corrupt(what, `invalid WTF-8 code point at byte ${i}`);
      units[u++] = 0xd800 + ((c - 0x10000) >>> 10);
      units[u++] = 0xdc00 + ((c - 0x10000) & 0x3ff);
      i += 4;
    } else throw corrupt(what, `invalid WTF-8 lead byte at ${i}`);
  }
  let text = "";
  for (let k = 0; k < u; k += 4096) text += String.fromCharCode(...units.subarray(k, Math.min(u, k + 4096)));
  return text;
}
