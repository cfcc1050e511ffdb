/**
 * InfluxDB 1.x line protocol: a decoded body in, points and one error per bad line out.
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * Pure and synchronous. One left-to-right pass of charCodeAt over each line; names are slices of
 * the body (rebuilt only when they held an escape), made once per distinct name per body. Being
 * slices, they keep the body alive while a caller holds them. Error reasons copy InfluxDB 1.x's
 * wording (models/points.go) so clients see the messages they know. Where we are deliberately
 * stricter or fix an InfluxDB bug, the comment at that spot says so.
 */
import { formatSeriesKey, unescapeMeasurement, unescapeStringField, unescapeTag } from "./escape.ts";
import { splitSeriesKey } from "./format.ts";
import type { Field, FieldType, FieldValue, LineError, ParseOptions, ParseResult, Point, PointBatch, Precision } from "./types.ts";

const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const QUOTE = 34;
const HASH = 35;
const PLUS = 43;
const COMMA = 44;
const MINUS = 45;
const DOT = 46;
const ZERO = 48;
const NINE = 57;
const EQUALS = 61;
const UPPER_E = 69;
const UPPER_F = 70;
const UPPER_N = 78;
const UPPER_T = 84;
const BACKSLASH = 92;
const LOWER_E = 101;
const LOWER_F = 102;
const LOWER_I = 105;
const LOWER_N = 110;
const LOWER_T = 116;
const LOWER_U = 117;
const BOM = 0xfeff;

// FNV-1a over UTF-16 code units: cheap enough to run inside the scanning loops.
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const KIND_MEASUREMENT = 1;
const KIND_TAG = 2; // tag keys, tag values and field keys share one escaping rule
const KIND_SERIES = 3;
/** See KeyPlaces.misses. */
const KEY_MISSES_TO_GIVE_UP = 64;

const NS_PER_UNIT: Readonly<Record<Precision, bigint>> = {
  ns: 1n,
  u: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

// InfluxDB keeps the two int64 extremes out of the valid time range (it uses them as sentinels).
const MAX_TIME = 9_223_372_036_854_775_806n;
const MIN_TIME = -MAX_TIME;
const TIME_OUT_OF_RANGE = `time outside range ${MIN_TIME} - ${MAX_TIME}`;
const INT64_MAX = 9_223_372_036_854_775_807n;
const INT64_MIN = -9_223_372_036_854_775_808n;
const UINT64_MAX = 18_446_744_073_709_551_615n;

// Exact doubles: a mantissa below 2^53 times or divided by one of these is correctly rounded.
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/** Parses a line-protocol body; bad lines become errors and never stop the good ones. */
export function parseLines(body: string, opts: ParseOptions): ParseResult {
  const unit = NS_PER_UNIT[opts.precision];
  // The type forbids it, but the value usually comes straight from a query string.
  if (unit === undefined) throw new RangeError(`unknown precision "${String(opts.precision)}"`);
  const parser = new LineParser(body, unit, floorToUnit(opts.defaultTime, unit));
  parser.run();
  return { batch: parser.batch(), errors: parser.errors };
}

/** The object view of a batch: one Point per line, tags split back out of the series key. */
export function toPoints(batch: PointBatch): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < batch.length; i++) {
    const fields: Field[] = [];
    for (let f = batch.fieldStart[i]!; f < batch.fieldStart[i + 1]!; f++) {
      fields.push({ key: batch.fieldKey[f]!, type: batch.fieldType[f]!, value: batch.fieldValue[f]! });
    }
    out.push({
      measurement: batch.measurement[i]!,
      tags: splitSeriesKey(batch.seriesKey[i]!).tags,
      seriesKey: batch.seriesKey[i]!,
      fields,
      time: batch.time[i]!,
      line: batch.line[i]!,
      raw: batch.raw[i]!,
    });
  }
  return out;
}

/** Orders tag keys by Unicode code point, which is the UTF-8 byte order InfluxDB sorts by. */
export function compareKeys(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 puts U+E000..U+FFFF after the surrogates that encode higher code points; move them back.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** The text of each line of `text`, from its offsets (PointBatch.rawStart/rawEnd). */
export function lineTexts(text: string, starts: ArrayLike<number>, ends: ArrayLike<number>): string[] {
  return Array.from(starts, (s, i) => text.slice(s, ends[i]!));
}

/**
 * A parsed batch over its body. The lines' own text is needed only when a request is partly
 * refused (the frame then keeps the accepted lines), so it is sliced from the body on first use.
 */
export class ParsedBatch implements PointBatch {
  private rawLines: string[] | null = null;

  constructor(
    private readonly text: string,
    readonly measurement: readonly string[],
    readonly seriesKey: readonly string[],
    readonly time: readonly bigint[],
    readonly line: readonly number[],
    readonly rawStart: readonly number[],
    readonly rawEnd: readonly number[],
    readonly fieldStart: readonly number[],
    readonly fieldKey: readonly string[],
    readonly fieldType: readonly FieldType[],
    readonly fieldValue: readonly FieldValue[],
  ) {}

  get length(): number {
    return this.rawStart.length;
  }

  get raw(): readonly string[] {
    return (this.rawLines ??= lineTexts(this.text, this.rawStart, this.rawEnd));
  }
}

class LineParser {
  readonly errors: LineError[] = [];
  // The batch being built (see PointBatch).
  private readonly pMeasurement: string[] = [];
  private readonly pSeriesKey: string[] = [];
  private readonly pTime: bigint[] = [];
  private readonly pLine: number[] = [];
  private readonly pRawStart: number[] = [];
  private readonly pRawEnd: number[] = [];
  private readonly pFieldStart: number[] = [0];
  private readonly fKey: string[] = [];
  private readonly fType: FieldType[] = [];
  private readonly fValue: FieldValue[] = [];
  /** The current line's tags, reused from line to line (no allocation while tags arrive sorted). */
  private readonly tagKeys: string[] = [];
  /** Where each of the current line's tag values is: start, end, hash, 1 if escaped (see parseLine). */
  private readonly tagValues: number[] = [];
  private readonly body: string;
  private readonly unit: bigint;
  private readonly defaultTime: bigint;
  private readonly names: Names;
  /** Where the current line's text starts (Point.raw and LineError.text start here). */
  private start = 0;
  /** Index of the `\n` that ends the current line, or the body's length. */
  private nl = 0;
  /** End of the current line's text: `nl`, less a `\r` just before it. */
  private lim = 0;
  /** 1-based number of the line being parsed. */
  private line = 1;
  /** Line ends crossed by quoted strings of the current line. */
  private extraLines = 0;
  /** Set by closingQuote: the string held an escape. */
  private stringEscaped = false;
  /** Set when floatValue returns NaN. */
  private numberReason = "";
  /** Raw-text hashes of the current line's field keys, to find a repeated key without comparing strings. */
  private fieldHashes = new Int32Array(64);
  // Lines of one batch usually share a timestamp; converting it once saves a BigInt per line.
  // (A timestamp has at least one character, so the empty text matches none.)
  private lastTimeText = "";
  private lastTime = 0n;
  /** Tag and field keys by place, per measurement (see Layout); the last one used is at hand. */
  private readonly layouts = new Map<string, Layout>();
  private lastMeasurement = "";
  private lastLayout: Layout | null = null;
  /** Set by scanKey: the key it scanned, and its hash. */
  private scannedKey = "";
  private scannedHash = 0;

  private layoutOf(measurement: string): Layout {
    if (measurement === this.lastMeasurement && this.lastLayout !== null) return this.lastLayout;
    let layout = this.layouts.get(measurement);
    if (layout === undefined) {
      layout = new Layout();
      this.layouts.set(measurement, layout);
    }
    this.lastMeasurement = measurement;
    this.lastLayout = layout;
    return layout;
  }

  /** Drops the points from `n` on, with their fields. */
  private truncate(n: number): void {
    const fields = this.pFieldStart[n]!;
    for (const a of [this.pMeasurement, this.pSeriesKey, this.pTime, this.pLine, this.pRawStart, this.pRawEnd]) a.length = n;
    this.pFieldStart.length = n + 1;
    this.fKey.length = fields;
    this.fType.length = fields;
    this.fValue.length = fields;
  }

  batch(): PointBatch {
    return new ParsedBatch(
      this.body,
      this.pMeasurement,
      this.pSeriesKey,
      this.pTime,
      this.pLine,
      this.pRawStart,
      this.pRawEnd,
      this.pFieldStart,
      this.fKey,
      this.fType,
      this.fValue,
    );
  }

  constructor(body: string, unit: bigint, defaultTime: bigint) {
    this.body = body;
    this.unit = unit;
    this.defaultTime = defaultTime;
    this.names = new Names(body);
  }

  run(): void {
    const b = this.body;
    const len = b.length;
    // A byte-order mark belongs to the body, not to the first measurement (InfluxDB 1.6 keeps it).
    let pos = len > 0 && b.charCodeAt(0) === BOM ? 1 : 0;
    const checkSurrogates = !isWellFormed(b);
    while (pos < len) {
      let nl = b.indexOf("\n", pos);
      if (nl === -1) nl = len;
      let i = pos;
      while (i < nl) {
        const c = b.charCodeAt(i);
        if (c !== SPACE && c !== TAB) break;
        i++;
      }
      const first = i < nl ? b.charCodeAt(i) : LF;
      if (first === LF || first === HASH || (first === CR && i + 1 === nl)) {
        pos = nl + 1;
        this.line++;
        continue;
      }
      this.start = pos;
      this.nl = nl;
      // CRLF: the `\r` is part of the line end, not of the last value (InfluxDB 1.6 keeps it).
      this.lim = b.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      this.extraLines = 0;
      const stored = this.pRawStart.length;
      let reason = this.parseLine(i);
      if (checkSurrogates) {
        const bad = loneSurrogate(b, this.start, this.lim);
        if (bad !== undefined) {
          reason = bad;
          this.truncate(stored);
        }
      }
      if (reason !== undefined) this.errors.push({ line: this.line, text: b.slice(this.start, this.lim), reason });
      this.line += 1 + this.extraLines;
      pos = this.nl + 1;
    }
  }

  /**
   * Scans the tag or field key at `kStart` (one `places` did not expect there) up to the first
   * unescaped `=`, `,` or space before `lim`, and returns where it stopped. A key that is not
   * empty and ends at `=` is then named (`scannedKey`, hashed in `scannedHash`) and expected
   * at `place` from now on; anything else is for the caller to report.
   */
  private scanKey(places: KeyPlaces, place: number, kStart: number, lim: number): number {
    const b = this.body;
    let escaped = false;
    let h = FNV_OFFSET;
    let i = kStart;
    for (; i < lim; i++) {
      const c = b.charCodeAt(i);
      if (c === EQUALS || c === COMMA || c === SPACE) break;
      h = Math.imul(h ^ c, FNV_PRIME);
      if (c === BACKSLASH && i + 1 < lim) {
        const n = b.charCodeAt(i + 1);
        if (n === COMMA || n === SPACE || n === EQUALS) {
          escaped = true;
          h = Math.imul(h ^ n, FNV_PRIME);
          i++;
        }
      }
    }
    if (i === kStart || i >= lim || b.charCodeAt(i) !== EQUALS) return i;
    const names = this.names;
    const key = names.find(kStart, i, h, KIND_TAG) ?? names.add(escaped ? unescapeTag(b, kStart, i) : b.slice(kStart, i));
    places.remember(place, escaped ? b.slice(kStart, i) : key, key, h);
    this.scannedKey = key;
    this.scannedHash = h;
    return i;
  }

  /** Parses the line whose first non-blank character is at `i`; stores the point or returns a reason. */
  private parseLine(i: number): string | undefined {
    const b = this.body;
    const names = this.names;
    let lim = this.lim;
    let c = 0;
    let h = 0;
    let escaped = false;
    // InfluxDB reports these only once the line is otherwise well formed, so hold the first one back.
    let deferred: string | undefined;

    const mStart = i;
    h = FNV_OFFSET;
    for (; i < lim; i++) {
      c = b.charCodeAt(i);
      if (c === COMMA || c === SPACE) break;
      h = Math.imul(h ^ c, FNV_PRIME);
      if (c === BACKSLASH && i + 1 < lim) {
        const n = b.charCodeAt(i + 1);
        if (n === COMMA || n === SPACE) {
          escaped = true;
          h = Math.imul(h ^ n, FNV_PRIME);
          i++;
        }
      }
    }
    if (i === mStart) return "missing measurement";
    if (i >= lim) return "missing fields";
    let measurement = names.find(mStart, i, h, KIND_MEASUREMENT);
    if (measurement === undefined) {
      measurement = names.add(escaped ? unescapeMeasurement(b, mStart, i) : b.slice(mStart, i));
    }
    // The series key depends only on the raw text before the fields, so it is cached by that text.
    let keyHash = h;

    const tagKeys = this.tagKeys;
    const tagValues = this.tagValues;
    tagKeys.length = 0;
    tagValues.length = 0;
    // While the tags arrive in order, the raw text up to the fields is already the series key.
    let sorted = true;
    let canonical = true;
    const layout = this.layoutOf(measurement);
    const tagPlaces = layout.tags;
    for (let place = 0; c === COMMA; place++) {
      i++;
      const kStart = i;
      let key: string;
      if (tagPlaces.at(b, place, kStart, lim)) {
        key = tagPlaces.keys[place]!;
        h = tagPlaces.hashes[place]!;
        i = kStart + tagPlaces.length(place);
      } else {
        i = this.scanKey(tagPlaces, place, kStart, lim);
        if (i === kStart) return "missing tag key";
        if (i >= lim || b.charCodeAt(i) !== EQUALS) return "missing tag value";
        key = this.scannedKey;
        h = this.scannedHash;
      }
      keyHash = Math.imul(keyHash ^ h, FNV_PRIME);
      i++;
      const vStart = i;
      if (i >= lim) return "missing tag value";
      c = b.charCodeAt(i);
      if (c === COMMA || c === SPACE) return "missing tag value";
      escaped = false;
      h = FNV_OFFSET;
      // InfluxDB takes an unescaped `=` as the first character of a tag value (only later ones
      // are refused). We accept what it accepts; the series key then needs the escaped form.
      if (c === EQUALS) {
        canonical = false;
        h = Math.imul(h ^ c, FNV_PRIME);
        i++;
      }
      for (; i < lim; i++) {
        c = b.charCodeAt(i);
        if (c === COMMA || c === SPACE) break;
        if (c === EQUALS) return "invalid tag format";
        h = Math.imul(h ^ c, FNV_PRIME);
        if (c === BACKSLASH && i + 1 < lim) {
          const n = b.charCodeAt(i + 1);
          if (n === COMMA || n === SPACE || n === EQUALS) {
            escaped = true;
            h = Math.imul(h ^ n, FNV_PRIME);
            i++;
          }
        }
      }
      if (i >= lim) return "missing fields";
      keyHash = Math.imul(keyHash ^ h, FNV_PRIME);
      const prev = tagKeys[tagKeys.length - 1];
      if (prev !== undefined && compareKeys(prev, key) >= 0) sorted = false;
      tagKeys.push(key);
      // Where the value is; it is made a string only if the series key must be built (below).
      tagValues.push(vStart, i, h, escaped ? 1 : 0);
      // InfluxDB 1.x refuses a tag named time at write time (`time` would be ambiguous in InfluxQL).
      if (key === "time") deferred ??= `invalid tag key: input tag "time" on measurement "${measurement}" is invalid`;
    }
    const keyEnd = i;
    // Out of order or oddly escaped tags (rare): build the pairs, sort, check, format.
    let tags: Array<[string, string]> | null = null;
    if (!sorted || !canonical) {
      tags = tagKeys.map((k, t): [string, string] => {
        const [vStart, vEnd, vHash, vEscaped] = tagValues.slice(4 * t, 4 * t + 4) as [number, number, number, number];
        const value = names.find(vStart, vEnd, vHash, KIND_TAG) ?? names.add(vEscaped === 1 ? unescapeTag(b, vStart, vEnd) : b.slice(vStart, vEnd));
        return [k, value];
      });
      if (!sorted && sortTags(tags)) return "duplicate tags";
    }
    let seriesKey = names.find(mStart, keyEnd, keyHash, KIND_SERIES);
    if (seriesKey === undefined) {
      seriesKey = names.add(tags === null ? b.slice(mStart, keyEnd) : formatSeriesKey(measurement, tags));
    }

    // c is the space after the key; more spaces may follow.
    i++;
    while (i < lim && b.charCodeAt(i) === SPACE) i++;
    if (i >= lim) return "invalid field format";

    // Fields go straight into the batch; a line that fails takes its fields back out.
    const fKey = this.fKey;
    const fType = this.fType;
    const fValue = this.fValue;
    const first = fKey.length;
    const fail = (reason: string): string => {
      fKey.length = first;
      fType.length = first;
      fValue.length = first;
      return reason;
    };
    const fieldPlaces = layout.fields;
    for (let place = 0; ; place++) {
      const kStart = i;
      let key: string;
      if (fieldPlaces.at(b, place, kStart, lim)) {
        key = fieldPlaces.keys[place]!;
        h = fieldPlaces.hashes[place]!;
        i = kStart + fieldPlaces.length(place);
      } else {
        i = this.scanKey(fieldPlaces, place, kStart, lim);
        if (i >= lim || b.charCodeAt(i) !== EQUALS) return fail("invalid field format");
        if (i === kStart) return fail("missing field key");
        key = this.scannedKey;
        h = this.scannedHash;
      }
      const keyHashOfField = h;
      i++;
      if (i >= lim) return fail("missing field value");
      c = b.charCodeAt(i);
      let type: FieldType;
      let value: FieldValue;
      if (c === QUOTE) {
        const close = this.closingQuote(i + 1);
        if (close === -1) return fail("unbalanced quotes");
        // A quoted string may hold raw line ends (InfluxDB accepts them); the line goes on after it.
        if (close > this.nl) lim = this.extendLine(close);
        type = "string";
        value = this.stringEscaped ? unescapeStringField(b, i + 1, close) : b.slice(i + 1, close);
        i = close + 1;
        if (i < lim) {
          c = b.charCodeAt(i);
          // Stricter than InfluxDB 1.6, which stores `f="x"y` as the string `x"`.
          if (c !== COMMA && c !== SPACE) return fail("invalid field format");
        }
      } else if ((c >= ZERO && c <= NINE) || c === MINUS) {
        // A plain decimal (the usual float) is read as it is scanned; anything else (an
        // integer's suffix, an exponent, too many digits) is read again from its start.
        const tStart = i;
        const negative = c === MINUS;
        if (negative) i++;
        let mant = 0;
        let digits = 0;
        let fracDigits = 0;
        let dot = false;
        for (; i < lim; i++) {
          c = b.charCodeAt(i);
          if (c >= ZERO && c <= NINE) {
            mant = mant * 10 + (c - ZERO);
            digits++;
            if (dot) fracDigits++;
          } else if (c === DOT && !dot) dot = true;
          else break;
        }
        if ((i === lim || c === COMMA || c === SPACE) && digits > 0 && digits <= 15) {
          // Exact operands, one operation: correctly rounded, as in floatValue.
          const x = fracDigits === 0 ? mant : mant / POW10[fracDigits]!;
          type = "float";
          value = negative ? -x : x;
        } else {
          for (; i < lim; i++) {
            c = b.charCodeAt(i);
            if (c === COMMA || c === SPACE) break;
          }
          const number = this.numberValue(tStart, i);
          if (typeof number === "string") return fail(number);
          type = number.type;
          value = number.value;
        }
      } else {
        const tStart = i;
        for (; i < lim; i++) {
          c = b.charCodeAt(i);
          if (c === COMMA || c === SPACE) break;
        }
        if (i === tStart) return fail("missing field value");
        const first = b.charCodeAt(tStart);
        if (first === DOT) {
          const number = this.numberValue(tStart, i);
          if (typeof number === "string") return fail(number);
          type = number.type;
          value = number.value;
        } else if (first === UPPER_N || first === LOWER_N) {
          // InfluxDB sends these to its number scanner to refuse NaN, hence its wording.
          return fail("invalid number");
        } else {
          const flag = booleanValue(b, tStart, i);
          if (flag === undefined) return fail("invalid boolean");
          type = "boolean";
          value = flag;
        }
      }

      const count = fKey.length - first;
      let hashes = this.fieldHashes;
      let seen = -1;
      for (let f = 0; f < count; f++) {
        if (hashes[f] === keyHashOfField && fKey[first + f] === key) {
          seen = first + f;
          break;
        }
      }
      if (seen < 0) {
        if (count === hashes.length) {
          const grown = new Int32Array(count * 2);
          grown.set(hashes);
          this.fieldHashes = hashes = grown;
        }
        hashes[count] = keyHashOfField;
        fKey.push(key);
        fType.push(type);
        fValue.push(value);
      } else if (fType[seen] === type) {
        // InfluxDB keeps the last value of a repeated field; we keep the first one's position.
        fValue[seen] = value;
      } else {
        // InfluxDB 1.6 rejects the whole request here; we drop only this line.
        deferred ??= `field type conflict: input field "${key}" on measurement "${measurement}" is type ${type}, already exists as type ${fType[seen]}`;
      }
      // Stricter than InfluxDB 1.6, which silently drops a `time` field when others remain.
      if (key === "time") deferred ??= `invalid field name: input field "time" on measurement "${measurement}" is invalid`;

      if (i >= lim || c === SPACE) break;
      i++; // the comma
    }

    let time = this.defaultTime;
    if (i < lim) {
      // Like InfluxDB, tabs as well as spaces may come before the timestamp, but only spaces after it.
      i++;
      while (i < lim) {
        c = b.charCodeAt(i);
        if (c !== SPACE && c !== TAB) break;
        i++;
      }
      if (i < lim) {
        const tStart = i;
        while (i < lim && b.charCodeAt(i) !== SPACE) i++;
        const t = this.timestamp(tStart, i);
        if (typeof t === "string") return fail(t);
        while (i < lim && b.charCodeAt(i) === SPACE) i++;
        if (i < lim) return fail("point is invalid");
        time = t;
      }
    }

    if (deferred !== undefined) return fail(deferred);
    this.pMeasurement.push(measurement);
    this.pSeriesKey.push(seriesKey);
    this.pTime.push(time);
    this.pLine.push(this.line);
    this.pRawStart.push(this.start);
    this.pRawEnd.push(lim);
    this.pFieldStart.push(fKey.length);
    return undefined;
  }

  /** Index of the quote that closes a string whose text starts at `from`, or -1. */
  private closingQuote(from: number): number {
    const b = this.body;
    const len = b.length;
    let escaped = false;
    for (let j = from; j < len; j++) {
      const c = b.charCodeAt(j);
      if (c === QUOTE) {
        this.stringEscaped = escaped;
        return j;
      }
      if (c === BACKSLASH && j + 1 < len) {
        const n = b.charCodeAt(j + 1);
        if (n === QUOTE || n === BACKSLASH) {
          escaped = true;
          j++;
        }
      }
    }
    return -1;
  }

  /** Moves the line's end past a string that closed at `close` on a later line; returns the new limit. */
  private extendLine(close: number): number {
    const b = this.body;
    let n = this.nl;
    while (n !== -1 && n < close) {
      this.extraLines++;
      n = b.indexOf("\n", n + 1);
    }
    this.nl = n === -1 ? b.length : n;
    this.lim = b.charCodeAt(this.nl - 1) === CR ? this.nl - 1 : this.nl;
    return this.lim;
  }

  /** Value of a number token `body[s, e)` (float, or integer / unsigned by suffix), or a reason. */
  private numberValue(s: number, e: number): { type: FieldType; value: FieldValue } | string {
    const suffix = this.body.charCodeAt(e - 1);
    if (suffix === LOWER_I || suffix === LOWER_U) {
      const n = this.intValue(s, e, suffix === LOWER_U);
      if (typeof n === "string") return n;
      return { type: suffix === LOWER_I ? "integer" : "unsigned", value: n };
    }
    const x = this.floatValue(s, e);
    if (x !== x) return this.numberReason;
    return { type: "float", value: x };
  }

  /**
   * Value of a float token `body[s, e)`, or NaN with `numberReason` set. InfluxDB says
   * `invalid number` for stray characters and `invalid float` for a malformed exponent or a
   * value beyond float64; we sort the cases the same way.
   */
  private floatValue(s: number, e: number): number {
    const b = this.body;
    let j = s;
    const negative = b.charCodeAt(j) === MINUS;
    if (negative) j++;
    let mant = 0;
    let mantDigits = 0;
    let fracDigits = 0;
    let exp = 0;
    let expDigits = 0;
    let expNegative = false;
    let dot = false;
    let inExp = false;
    let malformed = false;
    for (; j < e; j++) {
      const c = b.charCodeAt(j);
      if (c >= ZERO && c <= NINE) {
        if (inExp) {
          expDigits++;
          if (exp < 100_000) exp = exp * 10 + (c - ZERO);
        } else {
          mantDigits++;
          mant = mant * 10 + (c - ZERO);
          if (dot) fracDigits++;
        }
      } else if (c === DOT) {
        if (dot) return this.failNumber("invalid number");
        dot = true;
        if (inExp) malformed = true;
      } else if (c === LOWER_E || c === UPPER_E) {
        if (inExp) malformed = true;
        inExp = true;
      } else if (c === PLUS || c === MINUS) {
        const p = b.charCodeAt(j - 1);
        if (p !== LOWER_E && p !== UPPER_E) return this.failNumber("invalid number");
        if (c === MINUS) expNegative = true;
      } else {
        // Also refuses `Inf`, `0x10`, `1_000` and a leading `+`, as InfluxDB does.
        return this.failNumber("invalid number");
      }
    }
    if (!inExp) {
      if (mantDigits === 0) return this.failNumber("invalid number");
    } else if (malformed || mantDigits === 0 || expDigits === 0) {
      return this.failNumber("invalid float");
    }
    const scale = (expNegative ? -exp : exp) - fracDigits;
    let x: number;
    if (mant <= Number.MAX_SAFE_INTEGER && scale >= -22 && scale <= 22) {
      // One exact operation on exact operands is correctly rounded, so this equals Number(text).
      x = scale < 0 ? mant / POW10[-scale]! : mant * POW10[scale]!;
      if (negative) x = -x;
    } else {
      x = Number(b.slice(s, e));
    }
    if (x === Infinity || x === -Infinity) return this.failNumber("invalid float");
    return x;
  }

  private failNumber(reason: string): number {
    this.numberReason = reason;
    return NaN;
  }

  /** Value of an integer (`12i`) or unsigned (`12u`) token `body[s, e)`, or a reason. */
  private intValue(s: number, e: number, unsigned: boolean): bigint | string {
    const b = this.body;
    const end = e - 1;
    let j = s;
    const negative = b.charCodeAt(j) === MINUS;
    if (negative) {
      if (unsigned) return "invalid number";
      j++;
    }
    if (j >= end) return "invalid number";
    let n = 0;
    for (let k = j; k < end; k++) {
      const c = b.charCodeAt(k);
      if (c < ZERO || c > NINE) return "invalid number";
      n = n * 10 + (c - ZERO);
    }
    // Up to 15 digits the double is exact, and BigInt(number) is cheaper than BigInt(text).
    if (end - j <= 15) return BigInt(negative ? -n : n);
    const text = b.slice(s, end);
    const v = BigInt(text);
    if (unsigned) {
      if (v > UINT64_MAX) return `unable to parse unsigned ${text}: strconv.ParseUint: parsing "${text}": value out of range`;
    } else if (v > INT64_MAX || v < INT64_MIN) {
      return `unable to parse integer ${text}: strconv.ParseInt: parsing "${text}": value out of range`;
    }
    return v;
  }

  /** Nanosecond time of the timestamp token `body[s, e)`, or a reason. */
  private timestamp(s: number, e: number): bigint | string {
    const b = this.body;
    // The same text as the last timestamp converted (so all digits): its time again.
    if (e - s === this.lastTimeText.length && sameAs(b, s, this.lastTimeText)) return this.lastTime;
    let j = s;
    if (b.charCodeAt(j) === MINUS) j++;
    // InfluxDB words a lone `-` as strconv's `invalid syntax`; `bad timestamp` says it better.
    if (j === e) return "bad timestamp";
    for (; j < e; j++) {
      const c = b.charCodeAt(j);
      if (c < ZERO || c > NINE) return "bad timestamp";
    }
    const text = b.slice(s, e);
    const n = BigInt(text);
    // InfluxDB parses the digits as int64 before it scales them, hence two different reasons.
    if (n > INT64_MAX || n < INT64_MIN) return `strconv.ParseInt: parsing "${text}": value out of range`;
    const ns = n * this.unit;
    if (ns > MAX_TIME || ns < MIN_TIME) return TIME_OUT_OF_RANGE;
    this.lastTimeText = text;
    this.lastTime = ns;
    return ns;
  }
}

/**
 * Hands out one string per distinct name in a body. A batch repeats the same measurement, tags
 * and field keys on every line, and a fresh slice for each occurrence dominated parse time; one
 * shared string also lets consumers' Map lookups reuse its cached hash. It is a lossy cache
 * (bounded probing, overwrite when full): a hit is confirmed against the raw text in the body,
 * so a hash collision costs a slice, never a wrong name.
 */
class Names {
  private readonly body: string;
  private readonly mask: number;
  private readonly hashes: Int32Array;
  private readonly starts: Int32Array;
  private readonly lengths: Int32Array;
  private readonly kinds: Uint8Array;
  /** 1 where the value is its raw text as it stands in the body (no escape, tags in order). */
  private readonly plain: Uint8Array;
  private readonly values: Array<string | undefined>;
  // What the last find() missed, for add().
  private slot = 0;
  private start = 0;
  private length = 0;
  private hash = 0;
  private kind = 0;

  constructor(body: string) {
    // About one slot per 16 characters of body, so a one-line write does not pay for a big table.
    let size = 64;
    while (size < 16_384 && size * 16 < body.length) size *= 2;
    this.body = body;
    this.mask = size - 1;
    this.hashes = new Int32Array(size);
    this.starts = new Int32Array(size);
    this.lengths = new Int32Array(size);
    this.kinds = new Uint8Array(size);
    this.plain = new Uint8Array(size);
    this.values = new Array<string | undefined>(size).fill(undefined);
  }

  /** The string already made for the raw text `body[start, end)` of this kind, if any. */
  find(start: number, end: number, hash: number, kind: number): string | undefined {
    const length = end - start;
    const home = (hash ^ (hash >>> 15)) & this.mask;
    let slot = home;
    for (let probe = 0; ; probe++) {
      const value = this.values[slot];
      if (value === undefined) break;
      if (
        this.hashes[slot] === hash &&
        this.lengths[slot] === length &&
        this.kinds[slot] === kind &&
        (this.plain[slot] === 1 ? sameAs(this.body, start, value) : sameText(this.body, this.starts[slot]!, start, length))
      ) {
        return value;
      }
      if (probe === 7) {
        slot = home;
        break;
      }
      slot = (slot + 1) & this.mask;
    }
    this.slot = slot;
    this.start = start;
    this.length = length;
    this.hash = hash;
    this.kind = kind;
    return undefined;
  }

  /** Remembers `value` for the text the last find() missed, and returns it. */
  add(value: string): string {
    const slot = this.slot;
    this.values[slot] = value;
    this.plain[slot] = value.length === this.length && this.body.startsWith(value, this.start) ? 1 : 0;
    this.hashes[slot] = this.hash;
    this.starts[slot] = this.start;
    this.lengths[slot] = this.length;
    this.kinds[slot] = this.kind;
    return value;
  }
}

/**
 * The tag keys and field keys a measurement's lines had at each place (see KeyPlaces).
 * Writers send a measurement's tags and fields in one order, so a key is usually where the last
 * line had it: one comparison with that text then stands for scanning and hashing the key and
 * finding its name (about half the time of a parse went there).
 */
class Layout {
  readonly tags = new KeyPlaces();
  readonly fields = new KeyPlaces();
}

/**
 * Keys by place: each as it stood in the body (the name itself when it held no escape), as a
 * name, and its hash. Text that does not match at a place is scanned as usual, and becomes
 * what is expected there. A match is the very key a scan would find: the scan reads the same
 * characters, and stops at the same `=`, since a key's text never ends in a backslash (that
 * would have escaped the `=`).
 */
class KeyPlaces {
  private readonly raws: string[] = [];
  readonly keys: string[] = [];
  readonly hashes: number[] = [];
  /**
   * Keys not found where expected, less those found. Past KEY_MISSES_TO_GIVE_UP the keys come
   * in no steady order (checking then cost a fifth more than scanning alone), and the places
   * are no longer checked.
   */
  private misses = 0;

  /** Whether `body` holds the key expected at `place` from `at`, followed by `=` before `lim`. */
  at(body: string, place: number, at: number, lim: number): boolean {
    if (place >= this.raws.length || this.misses > KEY_MISSES_TO_GIVE_UP) return false;
    const raw = this.raws[place]!;
    const end = at + raw.length;
    if (end < lim && body.charCodeAt(end) === EQUALS && sameAs(body, at, raw)) {
      if (this.misses > 0) this.misses--;
      return true;
    }
    return false;
  }

  /** The length of the key text expected at `place` (after `at` held it). */
  length(place: number): number {
    return this.raws[place]!.length;
  }

  remember(place: number, raw: string, key: string, hash: number): void {
    this.misses++;
    // Places fill in order: a line reaches place p only after places 0..p-1.
    if (place > this.raws.length) return;
    this.raws[place] = raw;
    this.keys[place] = key;
    this.hashes[place] = hash;
  }
}

/**
 * Whether `text` holds `value` at `at`. Past a few characters the native comparison is
 * cheaper than a loop of charCodeAt (a 45-character series key: 15-20 ns against 90-100).
 */
function sameAs(text: string, at: number, value: string): boolean {
  if (value.length > 8) return text.startsWith(value, at);
  for (let k = 0; k < value.length; k++) if (text.charCodeAt(at + k) !== value.charCodeAt(k)) return false;
  return true;
}

function sameText(text: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false;
  return true;
}

/** The boolean spelled by `text[s, e)` in one of InfluxDB's ten spellings, or undefined. */
function booleanValue(text: string, s: number, e: number): boolean | undefined {
  switch (e - s) {
    case 1: {
      const c = text.charCodeAt(s);
      if (c === LOWER_T || c === UPPER_T) return true;
      if (c === LOWER_F || c === UPPER_F) return false;
      return undefined;
    }
    case 4: {
      const w = text.slice(s, e);
      return w === "true" || w === "True" || w === "TRUE" ? true : undefined;
    }
    case 5: {
      const w = text.slice(s, e);
      return w === "false" || w === "False" || w === "FALSE" ? false : undefined;
    }
    default:
      return undefined;
  }
}

/** Sorts tags by key in place; returns true when two tags share a key. */
function sortTags(tags: Array<[string, string]>): boolean {
  if (tags.length > 16) {
    tags.sort((x, y) => compareKeys(x[0], y[0]));
  } else {
    // Insertion sort: a handful of tags, usually almost in order.
    for (let i = 1; i < tags.length; i++) {
      const t = tags[i]!;
      let j = i - 1;
      while (j >= 0 && compareKeys(tags[j]![0], t[0]) > 0) {
        tags[j + 1] = tags[j]!;
        j--;
      }
      tags[j + 1] = t;
    }
  }
  for (let i = 1; i < tags.length; i++) if (tags[i - 1]![0] === tags[i]![0]) return true;
  return false;
}

/** Rounds a nanosecond time down to a whole number of `unit`s (towards minus infinity). */
function floorToUnit(ns: bigint, unit: bigint): bigint {
  const r = ns % unit;
  return r < 0n ? ns - r - unit : ns - r;
}

// String.prototype.isWellFormed (ES2024) is native in Bun and Deno 2; it is not in our ES2022 lib.
const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

function isWellFormed(text: string): boolean {
  if (nativeIsWellFormed !== undefined) return nativeIsWellFormed.call(text);
  return loneSurrogate(text, 0, text.length) === undefined;
}

/**
 * A reason if `text[s, e)` holds an unpaired UTF-16 surrogate. A UTF-8 body cannot carry one,
 * but a string handed over by other code can, and it would not survive a round trip to bytes.
 */
function loneSurrogate(text: string, s: number, e: number): string | undefined {
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < e) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    return `invalid unicode: unpaired surrogate U+${c.toString(16).toUpperCase()} at offset ${i - s}`;
  }
  return undefined;
}
