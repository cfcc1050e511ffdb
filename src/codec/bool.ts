/**
 * Boolean columns: one bit per value, MSB first; a column holding a single value throughout
 * (a status flag that never flips, the common case) is stored as that value alone.
 */
import { BitReader, BitWriter, corrupt } from "./bits.ts";
import { FORMAT, checkEncodeCount, readHeader, writeHeader } from "./format.ts";

/** Encodes a boolean column. */
export function encodeBools(values: boolean[]): Uint8Array {
  const n = values.length;
  checkEncodeCount("boolean column", n);
  const first = values[0] === true;
  let constant = true;
  for (let i = 1; i < n && constant; i++) constant = values[i] === first;
  if (constant) {
    const w = new BitWriter(16);
    writeHeader(w, FORMAT.BOOL_CONSTANT, n);
    w.write(first ? 1 : 0, 8);
    return w.finish();
  }
  const w = new BitWriter(16 + n / 8);
  writeHeader(w, FORMAT.BOOL_PACKED, n);
  // Eight values per write keeps the per-value cost to a shift and an or.
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    let byte = 0;
    for (let j = i; j < i + 8; j++) byte = (byte << 1) | (values[j] ? 1 : 0);
    w.write(byte, 8);
  }
  for (; i < n; i++) w.write(values[i] ? 1 : 0, 1);
  return w.finish();
}

/** Decodes a column written by encodeBools. */
export function decodeBools(buf: Uint8Array): boolean[] {
  const r = new BitReader(buf, "boolean column");
  const { format, count: n } = readHeader(r, "decodeBools", [FORMAT.BOOL_PACKED, FORMAT.BOOL_CONSTANT]);
  if (format === FORMAT.BOOL_PACKED) r.need(n, `${n} values`);
  const out = new Array<boolean>(n).fill(false);
  if (format === FORMAT.BOOL_CONSTANT) {
    const v = r.read(8);
    if (v > 1) throw corrupt(r.what, `constant value byte ${v} is neither 0 nor 1`);
    if (v === 1) out.fill(true);
  } else {
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const byte = r.read(8);
      for (let j = 0; j < 8; j++) out[i + j] = ((byte >>> (7 - j)) & 1) === 1;
    }
    for (; i < n; i++) out[i] = r.readBit() === 1;
  }
  r.expectEnd();
  return out;
}
