/**
 * Chunk rows: a time-ordered run of one series and field, each column compressed with the
 * codec for its type. Versions are kept per value (they decide conflicts on both twins),
 * and the origin column collapses to one number when a chunk has a single writer.
 */
import {
  decodeBools,
  decodeFloats,
  decodeInts,
  decodeStrings,
  decodeTimes,
  decodeUints,
  encodeBools,
  encodeFloats,
  encodeInts,
  encodeStrings,
  encodeTimes,
  encodeUints,
} from "../codec/index.ts";
import type { FieldType } from "../lineprotocol/types.ts";
import type { Run, Values } from "./run.ts";

export interface ChunkColumns {
  readonly minTime: bigint;
  readonly maxTime: bigint;
  readonly count: number;
  readonly times: Uint8Array;
  readonly vals: Uint8Array;
  readonly hlcs: Uint8Array;
  readonly originId: number | null;
  readonly origins: Uint8Array | null;
  /** The newest version in the chunk. */
  readonly maxHlc: bigint;
}

/** Encodes a time-ordered, non-empty run. */
export function encodeChunk(run: Run, type: FieldType): ChunkColumns {
  const n = run.times.length;
  let maxHlc = run.hlcs[0]!;
  for (let i = 1; i < n; i++) if (run.hlcs[i]! > maxHlc) maxHlc = run.hlcs[i]!;
  let originId: number | null = null;
  let origins: Uint8Array | null = null;
  if (typeof run.origins === "number") originId = run.origins;
  else origins = encodeInts(BigInt64Array.from(run.origins, (o) => BigInt(o)));
  return {
    minTime: run.times[0]!,
    maxTime: run.times[n - 1]!,
    count: n,
    times: encodeTimes(run.times),
    vals: encodeValues(run.values, type),
    // Clocks rise roughly steadily, like timestamps: delta-of-delta packs them best.
    hlcs: encodeTimes(run.hlcs),
    originId,
    origins,
    maxHlc,
  };
}

/** Decodes a chunk row back into a run. */
export function decodeChunk(c: Pick<ChunkColumns, "times" | "vals" | "hlcs" | "originId" | "origins">, type: FieldType): Run {
  return {
    times: decodeTimes(c.times),
    values: decodeValues(c.vals, type),
    hlcs: decodeTimes(c.hlcs),
    origins: c.origins === null ? (c.originId ?? 0) : Uint16Array.from(decodeInts(c.origins), (o) => Number(o)),
  };
}

function encodeValues(values: Values, type: FieldType): Uint8Array {
  switch (type) {
    case "float":
      return encodeFloats(values as Float64Array);
    case "integer":
      return encodeInts(values as BigInt64Array);
    case "unsigned":
      return encodeUints(values as BigUint64Array);
    case "boolean":
      return encodeBools(values as boolean[]);
    case "string":
      return encodeStrings(values as string[]);
  }
}

function decodeValues(buf: Uint8Array, type: FieldType): Values {
  switch (type) {
    case "float":
      return decodeFloats(buf);
    case "integer":
      return decodeInts(buf);
    case "unsigned":
      return decodeUints(buf);
    case "boolean":
      return decodeBools(buf);
    case "string":
      return decodeStrings(buf);
  }
}
