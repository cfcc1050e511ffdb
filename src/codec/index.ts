/** Column codecs for the storage engine's compressed chunks; see each file for its format. */
export { encodeTimes, decodeTimes } from "./time.ts";
export { encodeFloats, decodeFloats } from "./float.ts";
export { encodeInts, decodeInts, encodeSmallInts, decodeSmallInts, encodeUints, decodeUints } from "./int.ts";
export { encodeBools, decodeBools } from "./bool.ts";
export { encodeStrings, decodeStrings } from "./string.ts";
export { encodeClocks, decodeClocks } from "./clock.ts";
export { FORMAT, MAX_VALUES, readColumnHeader } from "./format.ts";
export type { ColumnHeader, ColumnKind } from "./format.ts";
