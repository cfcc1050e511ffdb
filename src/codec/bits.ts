/**
 * Bit writer and reader shared by the column codecs, plus the 64-bit word helpers they use.
 *
 * Bits are written most-significant first, so a stream reads left to right in a hex dump,
 * the way the Gorilla paper draws it. All arithmetic stays in 32-bit integers: a bigint per
 * value would cost an allocation, and these loops run for every value of every flush.
 */
import { TsdbError } from "../errors.ts";

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Indexes of the low and high 32-bit halves of element i of a 64-bit typed array seen through
 * a Uint32Array: `2 * i + LO` and `2 * i + HI`. Every 64-bit word array in the codecs uses this
 * layout, so BigInt64Array, BigUint64Array and Float64Array buffers can be read and written
 * in place whatever the platform's byte order.
 */
export const LO: number = LITTLE_ENDIAN ? 0 : 1;
export const HI: number = LITTLE_ENDIAN ? 1 : 0;

const TWO_32 = 4294967296;

/** Number of significant bits of an unsigned 64-bit value given as halves (0 for 0). */
export function bitLength64(hi: number, lo: number): number {
  return hi !== 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(lo);
}

/** The 32-bit halves of `a`, a Uint32Array view over a 64-bit typed array's bytes. */
export function wordsOf(a: BigInt64Array | BigUint64Array | Float64Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length * 2);
}

/** Thrown by readers; says which column was being read so the message stands on its own. */
export function corrupt(what: string, detail: string): TsdbError {
  return new TsdbError("internal", `cannot decode ${what}: ${detail}`);
}

/** Accumulates bits MSB-first into a growable byte buffer. */
export class BitWriter {
  private buf: Uint8Array;
  private pos = 0;
  /** Pending bits, right-aligned; always 0 when accBits is 0. */
  private acc = 0;
  private accBits = 0;

  constructor(capacityBytes: number) {
    this.buf = new Uint8Array(Math.max(16, Math.ceil(capacityBytes)));
  }

  /** Appends the low `n` bits of `value` (0 ≤ n ≤ 32, value < 2^n). */
  write(value: number, n: number): void {
    const free = 32 - this.accBits;
    if (n < free) {
      this.acc = (this.acc << n) | value;
      this.accBits += n;
      return;
    }
    const rest = n - free;
    // When accBits is 0, free is 32 and `acc << 32` is `acc << 0`, harmless because acc is 0.
    this.emitWord(((this.acc << free) | (value >>> rest)) >>> 0);
    this.acc = rest === 0 ? 0 : value & ((1 << rest) - 1);
    this.accBits = rest;
  }

  /** Appends the low `n` bits (0 ≤ n ≤ 64) of the unsigned 64-bit value hi:lo. */
  write64(hi: number, lo: number, n: number): void {
    if (n <= 32) this.write(lo, n);
    else {
      this.write(hi, n - 32);
      this.write(lo, 32);
    }
  }

  /** Appends an unsigned LEB128 varint (value a safe non-negative integer), 8 bits at a time. */
  writeUvarint(value: number): void {
    while (value >= 0x80) {
      this.write((value % 0x80) | 0x80, 8);
      value = Math.floor(value / 0x80);
    }
    this.write(value, 8);
  }

  /** Pads with zero bits to a byte boundary, then appends `bytes` verbatim. */
  writeBytes(bytes: Uint8Array): void {
    this.flushWholeBytes();
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Returns the bytes written, the last one padded with zero bits. */
  finish(): Uint8Array {
    this.flushWholeBytes();
    return this.buf.slice(0, this.pos);
  }

  private flushWholeBytes(): void {
    const pad = (8 - (this.accBits & 7)) & 7;
    this.write(0, pad);
    this.ensure(4);
    while (this.accBits > 0) {
      this.accBits -= 8;
      this.buf[this.pos++] = this.acc >>> this.accBits;
    }
    this.acc = 0;
  }

  private emitWord(word: number): void {
    if (this.pos + 4 > this.buf.length) this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    // Uint8Array stores keep the low 8 bits, so no masking is needed.
    b[p] = word >>> 24;
    b[p + 1] = word >>> 16;
    b[p + 2] = word >>> 8;
    b[p + 3] = word;
    this.pos = p + 4;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + extra + 16));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}

/** Reads what BitWriter wrote; every read past the end throws instead of inventing zeros. */
export class BitReader {
  private pos = 0;
  /** Unread bits, right-aligned. */
  private acc = 0;
  private accBits = 0;

  constructor(
    private readonly buf: Uint8Array,
    /** Names the column in error messages, e.g. "float column". */
    readonly what: string,
  ) {}

  /** Reads `n` bits (0 ≤ n ≤ 32) as an unsigned number. */
  read(n: number): number {
    if (n <= this.accBits) {
      if (n === 0) return 0;
      const v = (this.acc << (32 - this.accBits)) >>> (32 - n);
      this.accBits -= n;
      return v;
    }
    return this.readAcross(n);
  }

  /** Reads one bit. */
  readBit(): number {
    if (this.accBits === 0) this.refill(1);
    this.accBits--;
    return (this.acc >>> this.accBits) & 1;
  }

  /** Reads an unsigned LEB128 varint of at most 53 bits. */
  readUvarint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = this.read(8);
      value += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 49) throw corrupt(this.what, "varint longer than 53 bits");
    }
    return value;
  }

  /** Skips to the next byte boundary and returns the next `n` bytes (a view, not a copy). */
  readBytes(n: number): Uint8Array {
    // Whole bytes already pulled into the accumulator go back to the buffer.
    this.accBits -= this.accBits & 7;
    this.pos -= this.accBits >>> 3;
    this.acc = 0;
    this.accBits = 0;
    if (this.pos + n > this.buf.length) {
      throw corrupt(this.what, `truncated: needs ${n} bytes at offset ${this.pos}, buffer has ${this.buf.length}`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Bits not yet read. */
  bitsLeft(): number {
    return this.accBits + 8 * (this.buf.length - this.pos);
  }

  /**
   * Throws unless `bits` more bits are available; decoders call it before allocating for a
   * count whose every value costs at least a bit, so a corrupted count fails fast.
   */
  need(bits: number, detail: string): void {
    if (bits > this.bitsLeft()) throw corrupt(this.what, `truncated: ${detail} need ${bits} bits, ${this.bitsLeft()} left`);
  }

  /** Throws unless everything but the zero padding of the last byte has been read. */
  expectEnd(): void {
    const left = this.bitsLeft();
    if (left >= 8) throw corrupt(this.what, `${left >>> 3} unexpected trailing byte(s)`);
    if (left > 0 && this.read(left) !== 0) throw corrupt(this.what, "non-zero padding bits");
  }

  private readAcross(n: number): number {
    const have = this.accBits;
    const high = have === 0 ? 0 : (this.acc << (32 - have)) >>> (32 - have);
    const need = n - have;
    this.refill(need);
    const low = (this.acc << (32 - this.accBits)) >>> (32 - need);
    this.accBits -= need;
    // have > 0 implies need < 32, so the shift is in range.
    return have === 0 ? low : ((high << need) | low) >>> 0;
  }

  /** Loads up to 4 bytes into the (empty or drained) accumulator; `need` bits must result. */
  private refill(need: number): void {
    const b = this.buf;
    const p = this.pos;
    if (p + 4 <= b.length) {
      this.acc = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
      this.accBits = 32;
      this.pos = p + 4;
      return;
    }
    let acc = 0;
    let q = p;
    while (q < b.length) acc = (acc << 8) | b[q++]!;
    this.acc = acc;
    this.accBits = 8 * (q - p);
    this.pos = q;
    if (this.accBits < need) {
      throw corrupt(this.what, `truncated: ran out of data after ${b.length} bytes`);
    }
  }
}

/** Splits a safe integer into two's-complement 64-bit halves; hi is returned, lo stored in `out`. */
export function splitSafe(x: number, out: Uint32Array, i: number): void {
  out[2 * i + LO] = x >>> 0; // ToUint32 is exact modulo 2^32 for any safe integer
  out[2 * i + HI] = Math.floor(x / TWO_32);
}

/** Joins two's-complement 64-bit halves into a number (exact when the value is a safe integer). */
export function joinSafe(words: Uint32Array, i: number): number {
  return (words[2 * i + HI]! | 0) * TWO_32 + words[2 * i + LO]!;
}
