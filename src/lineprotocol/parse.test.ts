import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { escapeMeasurement, escapeStringField, escapeTag, formatSeriesKey } from "./escape.ts";
import { compareKeys, parseLines, toPoints } from "./parse.ts";
import type { FieldValue, LineError, Point, Precision } from "./types.ts";

// 2023-11-14T22:15:23.456789123Z: every digit differs, so each truncation shows.
const NOW = 1_700_000_123_456_789_123n;

/** Parses a body into the object view (one Point per good line) and its errors. */
function parse(body: string, precision: Precision = "ns", defaultTime = NOW): { points: Point[]; errors: LineError[] } {
  const r = parseLines(body, { precision, defaultTime });
  return { points: toPoints(r.batch), errors: r.errors };
}

/** Parses a body that must hold exactly one good line and no errors. */
function one(body: string, precision: Precision = "ns", defaultTime = NOW): Point {
  const { points, errors } = parse(body, precision, defaultTime);
  expect(errors).toEqual([]);
  expect(points).toHaveLength(1);
  return points[0]!;
}

type Value = [key: string, value: FieldValue];

describe("field values", () => {
  const cases: Array<{ name: string; line: string; fields: Value[]; type?: string }> = [
    { name: "a float with a fraction is a float", line: "m f=1.5", fields: [["f", 1.5]], type: "float" },
    { name: "a bare whole number is a float", line: "m f=1", fields: [["f", 1]], type: "float" },
    { name: "a float may start with its decimal point", line: "m f=.5", fields: [["f", 0.5]] },
    { name: "a float may end with its decimal point", line: "m f=1.", fields: [["f", 1]] },
    { name: "a negative float may start with its decimal point", line: "m f=-.5", fields: [["f", -0.5]] },
    { name: "a float takes a negative exponent", line: "m f=-1e-3", fields: [["f", -0.001]] },
    { name: "a float takes an upper-case exponent", line: "m f=1E3", fields: [["f", 1000]] },
    { name: "a float takes an exponent with a plus sign", line: "m f=1e+3", fields: [["f", 1000]] },
    { name: "a float takes a point and an exponent together", line: "m f=1.e3", fields: [["f", 1000]] },
    { name: "a float may have leading zeros", line: "m f=007.25", fields: [["f", 7.25]] },
    { name: "a float too small for float64 becomes zero", line: "m f=1e-400", fields: [["f", 0]] },
    { name: "a float is correctly rounded", line: "m f=0.1,g=3.141592653589793", fields: [["f", 0.1], ["g", Math.PI]] },
    { name: "the largest float64 is accepted", line: "m f=1.7976931348623157e308", fields: [["f", Number.MAX_VALUE]] },
    { name: "the smallest subnormal float64 is accepted", line: "m f=5e-324", fields: [["f", 5e-324]] },
    { name: "a float with thirty digits keeps its magnitude", line: "m f=123456789012345678901234567890", fields: [["f", 1.2345678901234568e29]] },
    { name: "an integer has the i suffix", line: "m f=12i", fields: [["f", 12n]], type: "integer" },
    { name: "a negative integer keeps its sign", line: "m f=-12i", fields: [["f", -12n]] },
    { name: "the largest int64 is exact", line: "m f=9223372036854775807i", fields: [["f", 9223372036854775807n]] },
    { name: "the smallest int64 is exact", line: "m f=-9223372036854775808i", fields: [["f", -9223372036854775808n]] },
    { name: "an integer may have many leading zeros", line: "m f=00000000000000000000042i", fields: [["f", 42n]] },
    { name: "an unsigned has the u suffix", line: "m f=12u", fields: [["f", 12n]], type: "unsigned" },
    { name: "the largest uint64 is exact", line: "m f=18446744073709551615u", fields: [["f", 18446744073709551615n]] },
    { name: "t is true", line: "m f=t", fields: [["f", true]], type: "boolean" },
    { name: "T is true", line: "m f=T", fields: [["f", true]] },
    { name: "true is true", line: "m f=true", fields: [["f", true]] },
    { name: "True is true", line: "m f=True", fields: [["f", true]] },
    { name: "TRUE is true", line: "m f=TRUE", fields: [["f", true]] },
    { name: "f is false", line: "m b=f", fields: [["b", false]], type: "boolean" },
    { name: "F is false", line: "m b=F", fields: [["b", false]] },
    { name: "false is false", line: "m b=false", fields: [["b", false]] },
    { name: "False is false", line: "m b=False", fields: [["b", false]] },
    { name: "FALSE is false", line: "m b=FALSE", fields: [["b", false]] },
    { name: "a quoted value is a string", line: 'm s="hello"', fields: [["s", "hello"]], type: "string" },
    { name: "a string may be empty", line: 'm s=""', fields: [["s", ""]] },
    { name: "a string keeps spaces, commas and equals signs", line: 'm s="a b,c=d" 5', fields: [["s", "a b,c=d"]] },
    { name: "a string unescapes a double quote", line: 'm s="say \\"hi\\""', fields: [["s", 'say "hi"']] },
    { name: "a string unescapes a backslash", line: 'm s="back\\\\slash"', fields: [["s", "back\\slash"]] },
    { name: "a string may end with an escaped backslash", line: 'm s="end\\\\",g=1', fields: [["s", "end\\"], ["g", 1]] },
    { name: "a string keeps a backslash before any other character", line: 'm s="a\\nb\\,c"', fields: [["s", "a\\nb\\,c"]] },
    { name: "a string keeps unicode", line: 'm s="日本語 🎉"', fields: [["s", "日本語 🎉"]] },
    { name: "one line carries all five types in order", line: 'm a=1,b=2i,c=3u,d=t,e="x"', fields: [["a", 1], ["b", 2n], ["c", 3n], ["d", true], ["e", "x"]] },
    { name: "a repeated field keeps the last value at the first position", line: "m f=1,g=2,f=3", fields: [["f", 3], ["g", 2]] },
    { name: "a repeated boolean may change spelling", line: "m f=t,f=FALSE", fields: [["f", false]] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const p = one(c.line);
      expect(p.fields.map((f) => [f.key, f.value])).toEqual(c.fields);
      if (c.type !== undefined) expect(p.fields[0]!.type).toBe(c.type as never);
    });
  }

  test("negative zero stays negative zero", () => {
    expect(Object.is(one("m f=-0").fields[0]!.value, -0)).toBe(true);
  });

  test("any decimal number reads as the double its text names, whichever way it is read", () => {
    // Plain decimals of up to 15 digits are read as they are scanned; longer ones, exponents
    // and suffixes again from the start. Both ways must give what Number() gives.
    const digits = (max: number) => fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 0, maxLength: max });
    const token = fc
      .tuple(fc.boolean(), digits(20), fc.option(digits(20)), fc.option(fc.integer({ min: -30, max: 30 })))
      .filter(([, int, frac]) => int.length + (frac ?? "").length > 0)
      .map(([neg, int, frac, exp]) => `${neg ? "-" : ""}${int}${frac === null ? "" : `.${frac}`}${exp === null ? "" : `e${exp}`}`);
    fc.assert(
      fc.property(token, fc.constantFrom(" 5", ",g=1i 5", ""), (tok, rest) => {
        const p = one(`m f=${tok}${rest}`);
        expect(p.fields[0]!.type).toBe("float");
        expect(Object.is(p.fields[0]!.value, Number(tok))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("names, escapes and series keys", () => {
  const cases: Array<{ name: string; line: string; measurement: string; tags: Array<[string, string]>; seriesKey: string; fields?: string[] }> = [
    { name: "a plain line has no tags and its measurement is its series key", line: "cpu f=1", measurement: "cpu", tags: [], seriesKey: "cpu" },
    { name: "a measurement unescapes comma and space", line: "my\\,meas\\ x f=1", measurement: "my,meas x", tags: [], seriesKey: "my\\,meas\\ x" },
    { name: "a measurement keeps a backslash before an equals sign", line: "a\\=b f=1", measurement: "a\\=b", tags: [], seriesKey: "a\\=b" },
    { name: "a measurement keeps a backslash before an ordinary character", line: "a\\b f=1", measurement: "a\\b", tags: [], seriesKey: "a\\b" },
    { name: "a backslash before an escaped space is kept", line: "a\\\\ b f=1", measurement: "a\\ b", tags: [], seriesKey: "a\\\\ b" },
    { name: "a measurement may hold an equals sign and a quote", line: 'm=x"q f=1', measurement: 'm=x"q', tags: [], seriesKey: 'm=x"q' },
    { name: "tag keys and values unescape comma, space and equals sign", line: "m,a\\,b=c\\ d,e\\=f=g\\=h f=1", measurement: "m", tags: [["a,b", "c d"], ["e=f", "g=h"]], seriesKey: "m,a\\,b=c\\ d,e\\=f=g\\=h" },
    { name: "a tag value may start with an unescaped equals sign, as in InfluxDB", line: "m,t==v f=1", measurement: "m", tags: [["t", "=v"]], seriesKey: "m,t=\\=v" },
    { name: "a tag value keeps a backslash before an ordinary character", line: "m,t=a\\b f=1", measurement: "m", tags: [["t", "a\\b"]], seriesKey: "m,t=a\\b" },
    { name: "a tag value keeps double quotes", line: 'm,t="x" f=1', measurement: "m", tags: [["t", '"x"']], seriesKey: 'm,t="x"' },
    { name: "field keys unescape comma, space and equals sign", line: "m f\\ g=1,h\\,i=2,j\\=k=3", measurement: "m", tags: [], seriesKey: "m", fields: ["f g", "h,i", "j=k"] },
    { name: "a field key keeps a double quote and other backslashes", line: 'm f"x=1,a\\b=2', measurement: "m", tags: [], seriesKey: "m", fields: ['f"x', "a\\b"] },
    { name: "unicode names and values pass through", line: "温度,地点=東京 値=1.5", measurement: "温度", tags: [["地点", "東京"]], seriesKey: "温度,地点=東京", fields: ["値"] },
    { name: "tags are sorted by key", line: "m,b=2,a=1,c=3 f=1", measurement: "m", tags: [["a", "1"], ["b", "2"], ["c", "3"]], seriesKey: "m,a=1,b=2,c=3" },
    { name: "upper-case tag keys sort before lower-case ones", line: "m,b=1,B=2 f=1", measurement: "m", tags: [["B", "2"], ["b", "1"]], seriesKey: "m,B=2,b=1" },
    { name: "tags sort by code point, as UTF-8 bytes do", line: "m,\u{1F600}=2,\uFF01=1 f=1", measurement: "m", tags: [["\uFF01", "1"], ["\u{1F600}", "2"]], seriesKey: "m,\uFF01=1,\u{1F600}=2" },
    { name: "a series key is escaped when tags are reordered", line: "m\\ x,z=1,a=b\\ c f=1", measurement: "m x", tags: [["a", "b c"], ["z", "1"]], seriesKey: "m\\ x,a=b\\ c,z=1" },
    { name: "several spaces may separate the sections", line: "m,t=1   f=1   10", measurement: "m", tags: [["t", "1"]], seriesKey: "m,t=1" },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const p = one(c.line);
      expect(p.measurement).toBe(c.measurement);
      expect(p.tags).toEqual(c.tags);
      expect(p.seriesKey).toBe(c.seriesKey);
      if (c.fields !== undefined) expect(p.fields.map((f) => f.key)).toEqual(c.fields);
    });
  }
});

describe("timestamps", () => {
  const cases: Array<{ name: string; line: string; precision?: Precision; defaultTime?: bigint; time: bigint }> = [
    { name: "a nanosecond timestamp is taken as is", line: "m f=1 1700000000000000000", time: 1_700_000_000_000_000_000n },
    { name: "a microsecond timestamp is scaled to nanoseconds", line: "m f=1 1700000000000001", precision: "u", time: 1_700_000_000_000_001_000n },
    { name: "a millisecond timestamp is scaled to nanoseconds", line: "m f=1 1700000000001", precision: "ms", time: 1_700_000_000_001_000_000n },
    { name: "a second timestamp is scaled to nanoseconds", line: "m f=1 1700000000", precision: "s", time: 1_700_000_000_000_000_000n },
    { name: "a minute timestamp is scaled to nanoseconds", line: "m f=1 28333333", precision: "m", time: 1_699_999_980_000_000_000n },
    { name: "an hour timestamp is scaled to nanoseconds", line: "m f=1 472222", precision: "h", time: 1_699_999_200_000_000_000n },
    { name: "a negative timestamp is before the epoch", line: "m f=1 -1", time: -1n },
    { name: "minus zero is the epoch", line: "m f=1 -0", time: 0n },
    { name: "a timestamp may have leading zeros", line: "m f=1 00001", time: 1n },
    { name: "the largest allowed time is accepted", line: "m f=1 9223372036854775806", time: 9_223_372_036_854_775_806n },
    { name: "the smallest allowed time is accepted", line: "m f=1 -9223372036854775806", time: -9_223_372_036_854_775_806n },
    { name: "the last whole hour in range is accepted", line: "m f=1 2562047", precision: "h", time: 9_223_369_200_000_000_000n },
    { name: "trailing spaces after a timestamp are ignored", line: "m f=1 5   ", time: 5n },
    { name: "tabs may come before a timestamp", line: "m f=1 \t5", time: 5n },
    { name: "a line without timestamp takes the server time in nanoseconds", line: "m f=1", time: NOW },
    { name: "a line without timestamp ends at its last field even with trailing spaces", line: "m f=1  ", time: NOW },
    { name: "the server time is truncated to microseconds", line: "m f=1", precision: "u", time: 1_700_000_123_456_789_000n },
    { name: "the server time is truncated to milliseconds", line: "m f=1", precision: "ms", time: 1_700_000_123_456_000_000n },
    { name: "the server time is truncated to whole seconds", line: "m f=1", precision: "s", time: 1_700_000_123_000_000_000n },
    { name: "the server time is truncated to whole minutes", line: "m f=1", precision: "m", time: 1_700_000_100_000_000_000n },
    { name: "the server time is truncated to whole hours", line: "m f=1", precision: "h", time: 1_699_999_200_000_000_000n },
    { name: "a server time before the epoch is truncated downwards", line: "m f=1", precision: "s", defaultTime: -1_500_000_000n, time: -2_000_000_000n },
  ];
  for (const c of cases) {
    test(c.name, () => {
      expect(one(c.line, c.precision, c.defaultTime).time).toBe(c.time);
    });
  }

  test("lines that share a timestamp and a line that does not each get their own time", () => {
    const { points } = parse("m f=1 5\nm f=2 5\nm f=3 6\nm f=4 5\nm f=5 56\nm f=6 5", "s");
    expect(points.map((p) => p.time)).toEqual([5n, 5n, 6n, 5n, 56n, 5n].map((s) => s * 1_000_000_000n));
  });
});

describe("bad lines", () => {
  // Each bad line sits between two good ones: it must be reported as line 2 with its own text,
  // and both neighbours must survive.
  const cases: Array<{ name: string; line: string; reason: string; precision?: Precision }> = [
    { name: "a line starting with a comma is missing its measurement", line: ",t=1 f=1", reason: "missing measurement" },
    { name: "a measurement alone is missing its fields", line: "m", reason: "missing fields" },
    { name: "a measurement with tags alone is missing its fields", line: "m,t=1", reason: "missing fields" },
    { name: "a trailing space where fields should be is an invalid field format", line: "m ", reason: "invalid field format" },
    { name: "a field without equals sign is an invalid field format", line: "m f", reason: "invalid field format" },
    { name: "a trailing comma after the fields is an invalid field format", line: "m f=1,", reason: "invalid field format" },
    { name: "two commas between fields are an invalid field format", line: "m f=1,,g=2", reason: "invalid field format" },
    { name: "a space after a field comma is an invalid field format", line: "m f=1, g=2", reason: "invalid field format" },
    { name: "an unescaped space in a field key is an invalid field format", line: "m f g=1", reason: "invalid field format" },
    { name: "text right after a closing quote is an invalid field format", line: 'm f="x"y', reason: "invalid field format" },
    { name: "an empty tag key is a missing tag key", line: "m,=v f=1", reason: "missing tag key" },
    { name: "a comma with no tag after it is a missing tag key", line: "m, f=1", reason: "missing tag key" },
    { name: "a trailing comma after the tags is a missing tag key", line: "m,t=1, f=1", reason: "missing tag key" },
    { name: "a tag key without equals sign is a missing tag value", line: "m,t f=1", reason: "missing tag value" },
    { name: "an empty tag value is a missing tag value", line: "m,t= f=1", reason: "missing tag value" },
    { name: "a tag key at the end of the line is a missing tag value", line: "m,t", reason: "missing tag value" },
    { name: "an unescaped equals sign inside a tag value is an invalid tag format", line: "m,t=a=b f=1", reason: "invalid tag format" },
    { name: "a comma after a double backslash is still escaped, as in InfluxDB", line: "m,t=a\\\\,u=b f=1", reason: "invalid tag format" },
    { name: "a tag key given twice is a duplicate", line: "m,t=1,t=2 f=1", reason: "duplicate tags" },
    { name: "a tag key given twice out of order is a duplicate", line: "m,b=1,a=2,b=3 f=1", reason: "duplicate tags" },
    { name: "a field without key is a missing field key", line: "m =1", reason: "missing field key" },
    { name: "a later field without key is a missing field key", line: "m f=1,=2", reason: "missing field key" },
    { name: "a field without value at the end is a missing field value", line: "m f=", reason: "missing field value" },
    { name: "a field without value before the timestamp is a missing field value", line: "m f= 1", reason: "missing field value" },
    { name: "a field without value before a comma is a missing field value", line: "m f=,g=1", reason: "missing field value" },
    { name: "two decimal points are an invalid number", line: "m f=1.2.3", reason: "invalid number" },
    { name: "a lone minus is an invalid number", line: "m f=-", reason: "invalid number" },
    { name: "a lone decimal point is an invalid number", line: "m f=.", reason: "invalid number" },
    { name: "a hexadecimal number is an invalid number", line: "m f=0x10", reason: "invalid number" },
    { name: "digit separators are an invalid number", line: "m f=1_000", reason: "invalid number" },
    { name: "NaN is an invalid number", line: "m f=NaN", reason: "invalid number" },
    { name: "nan is an invalid number", line: "m f=nan", reason: "invalid number" },
    { name: "minus infinity is an invalid number", line: "m f=-Inf", reason: "invalid number" },
    { name: "a minus sign inside a number is an invalid number", line: "m f=1-2", reason: "invalid number" },
    { name: "two signs in an exponent are an invalid number", line: "m f=1e+-3", reason: "invalid number" },
    { name: "a letter after the digits is an invalid number", line: "m f=1x", reason: "invalid number" },
    { name: "an integer with a fraction is an invalid number", line: "m f=1.5i", reason: "invalid number" },
    { name: "an integer with an exponent is an invalid number", line: "m f=1e3i", reason: "invalid number" },
    { name: "an integer without digits is an invalid number", line: "m f=-i", reason: "invalid number" },
    { name: "an integer with two suffixes is an invalid number", line: "m f=1ii", reason: "invalid number" },
    { name: "a suffix before the last digit is an invalid number", line: "m f=1i5", reason: "invalid number" },
    { name: "a negative unsigned is an invalid number", line: "m f=-1u", reason: "invalid number" },
    { name: "an unsigned with a fraction is an invalid number", line: "m f=1.5u", reason: "invalid number" },
    { name: "an unknown word is an invalid boolean", line: "m f=yes", reason: "invalid boolean" },
    { name: "mixed-case true is an invalid boolean", line: "m f=tRue", reason: "invalid boolean" },
    { name: "true with more letters is an invalid boolean", line: "m f=truex", reason: "invalid boolean" },
    { name: "a leading plus is an invalid boolean, as InfluxDB words it", line: "m f=+1", reason: "invalid boolean" },
    { name: "infinity is an invalid boolean, as InfluxDB words it", line: "m f=Inf", reason: "invalid boolean" },
    { name: "an exponent without digits is an invalid float", line: "m f=1e", reason: "invalid float" },
    { name: "an exponent with a sign but no digits is an invalid float", line: "m f=1e-", reason: "invalid float" },
    { name: "two exponent letters are an invalid float", line: "m f=1ee3", reason: "invalid float" },
    { name: "an exponent without mantissa is an invalid float", line: "m f=.e3", reason: "invalid float" },
    { name: "a float beyond float64 is an invalid float", line: "m f=1e400", reason: "invalid float" },
    { name: "a negative float beyond float64 is an invalid float", line: "m f=-1e400", reason: "invalid float" },
    { name: "a string without closing quote is unbalanced", line: 'm f="abc', reason: "unbalanced quotes" },
    { name: "an escaped closing quote leaves the string unbalanced", line: 'm f="abc\\"', reason: "unbalanced quotes" },
    { name: "letters as timestamp are a bad timestamp", line: "m f=1 abc", reason: "bad timestamp" },
    { name: "a fractional timestamp is a bad timestamp", line: "m f=1 1.5", reason: "bad timestamp" },
    { name: "a timestamp with a plus sign is a bad timestamp", line: "m f=1 +1", reason: "bad timestamp" },
    { name: "a timestamp with an exponent is a bad timestamp", line: "m f=1 1e3", reason: "bad timestamp" },
    { name: "a lone minus as timestamp is a bad timestamp", line: "m f=1 -", reason: "bad timestamp" },
    { name: "a second field set after a space is a bad timestamp", line: "m f=1 g=2", reason: "bad timestamp" },
    { name: "a tab after the timestamp is a bad timestamp", line: "m f=1 10\t", reason: "bad timestamp" },
    { name: "text after the timestamp makes the point invalid", line: "m f=1 1 2", reason: "point is invalid" },
    { name: "the largest int64 time is outside the range", line: "m f=1 9223372036854775807", reason: "time outside range -9223372036854775806 - 9223372036854775806" },
    { name: "the smallest int64 time is outside the range", line: "m f=1 -9223372036854775808", reason: "time outside range -9223372036854775806 - 9223372036854775806" },
    { name: "seconds that overflow nanoseconds are outside the range", line: "m f=1 9223372036854775", precision: "s", reason: "time outside range -9223372036854775806 - 9223372036854775806" },
    { name: "hours that overflow nanoseconds are outside the range", line: "m f=1 2562048", precision: "h", reason: "time outside range -9223372036854775806 - 9223372036854775806" },
    { name: "a timestamp beyond int64 is reported as InfluxDB does", line: "m f=1 9223372036854775808", reason: 'strconv.ParseInt: parsing "9223372036854775808": value out of range' },
    { name: "an integer above int64 is out of range", line: "m f=9223372036854775808i", reason: 'unable to parse integer 9223372036854775808: strconv.ParseInt: parsing "9223372036854775808": value out of range' },
    { name: "an integer below int64 is out of range", line: "m f=-9223372036854775809i", reason: 'unable to parse integer -9223372036854775809: strconv.ParseInt: parsing "-9223372036854775809": value out of range' },
    { name: "an unsigned above uint64 is out of range", line: "m f=18446744073709551616u", reason: 'unable to parse unsigned 18446744073709551616: strconv.ParseUint: parsing "18446744073709551616": value out of range' },
    { name: "a tag named time is refused", line: "m,time=1 f=1", reason: 'invalid tag key: input tag "time" on measurement "m" is invalid' },
    { name: "a field named time is refused", line: "m time=1", reason: 'invalid field name: input field "time" on measurement "m" is invalid' },
    { name: "a field named time is refused next to other fields", line: "m f=1,time=2", reason: 'invalid field name: input field "time" on measurement "m" is invalid' },
    { name: "a repeated field with another type is a type conflict", line: "m f=1,f=2i", reason: 'field type conflict: input field "f" on measurement "m" is type integer, already exists as type float' },
    { name: "a repeated string field given a boolean is a type conflict", line: 'm f="a",f=t', reason: 'field type conflict: input field "f" on measurement "m" is type boolean, already exists as type string' },
    { name: "a lone high surrogate is refused", line: 'm f="\uD800"', reason: "invalid unicode: unpaired surrogate U+D800 at offset 5" },
    { name: "a lone low surrogate in a tag is refused", line: "m,t=\uDC00 f=1", reason: "invalid unicode: unpaired surrogate U+DC00 at offset 4" },
    { name: "a structural error comes before a type conflict", line: "m f=1,f=2i x y", reason: "bad timestamp" },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { points, errors } = parse(`ok f=1\n${c.line}\nok f=2`, c.precision);
      expect(errors).toEqual([{ line: 2, text: c.line, reason: c.reason }]);
      expect(points.map((p) => [p.line, p.fields[0]!.value])).toEqual([[1, 1], [3, 2]]);
    });
  }
});

describe("body layout", () => {
  type Expect = { points?: Array<[line: number, raw: string]>; errors?: Array<[line: number, text: string, reason: string]> };
  const cases: Array<{ name: string; body: string } & Expect> = [
    { name: "an empty body has no points and no errors", body: "" },
    { name: "a body of blank lines has no points and no errors", body: "\n  \n\t\n\r\n" },
    { name: "comments and blank lines are skipped but counted", body: "# header\n\nm f=1\n   # indented comment\n\t\nm f=2", points: [[3, "m f=1"], [6, "m f=2"]] },
    { name: "a trailing line end adds no line", body: "m f=1\n", points: [[1, "m f=1"]] },
    { name: "CRLF line ends are stripped from the raw text", body: "m f=1 1\r\nm s=\"x\" 2\r\n", points: [[1, "m f=1 1"], [2, 'm s="x" 2']] },
    { name: "a CR before the end of the body is stripped", body: "m f=1\r", points: [[1, "m f=1"]] },
    { name: "CRLF blank lines are counted", body: "\r\n\r\nm f=1", points: [[3, "m f=1"]] },
    { name: "a byte-order mark at the start is not part of the first line", body: "\uFEFFm f=1\nm f=2", points: [[1, "m f=1"], [2, "m f=2"]] },
    { name: "a byte-order mark may precede a comment", body: "\uFEFF# c\nm f=1", points: [[2, "m f=1"]] },
    { name: "the raw text keeps leading and trailing spaces", body: "  \t m,b=1,a=2  f=1  5  ", points: [[1, "  \t m,b=1,a=2  f=1  5  "]] },
    { name: "good lines survive around bad ones", body: "a f=1\nb f=\nc f=3\nd,t f=4\ne f=5", points: [[1, "a f=1"], [3, "c f=3"], [5, "e f=5"]], errors: [[2, "b f=", "missing field value"], [4, "d,t f=4", "missing tag value"]] },
    { name: "an error's text has no CR", body: "m f=x\r\nm f=1\r\n", points: [[2, "m f=1"]], errors: [[1, "m f=x", "invalid boolean"]] },
    { name: "a quoted string may span lines and the next line is numbered after it", body: 'm s="a\nb",g=1 5\nm f=2', points: [[1, 'm s="a\nb",g=1 5'], [3, "m f=2"]] },
    { name: "a quoted string spanning CRLF lines keeps its inner CRLF", body: 'm s="a\r\nb" 5\r\nm f=2\r\n', points: [[1, 'm s="a\r\nb" 5'], [3, "m f=2"]] },
    { name: "an unclosed quote drops only its own line", body: 'm f=1\nm s="abc\nm f=3', points: [[1, "m f=1"], [3, "m f=3"]], errors: [[2, 'm s="abc', "unbalanced quotes"]] },
    { name: "a quote closed on the next line by another field takes both lines", body: 'm s="a\nm s="b"\nm f=3', points: [[3, "m f=3"]], errors: [[1, 'm s="a\nm s="b"', "invalid field format"]] },
    { name: "a lone surrogate drops only its own line", body: "m f=1\nm f=\"\uD83D\"\nm s=\"\u{1F600}\"", points: [[1, "m f=1"], [3, 'm s="\u{1F600}"']], errors: [[2, 'm f="\uD83D"', "invalid unicode: unpaired surrogate U+D83D at offset 5"]] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { points, errors } = parse(c.body);
      expect(points.map((p) => [p.line, p.raw])).toEqual(c.points ?? []);
      expect(errors.map((e) => [e.line, e.text, e.reason])).toEqual(c.errors ?? []);
    });
  }

  test("a multi-line string keeps its line end in the value", () => {
    expect(one('m s="a\nb"').fields[0]!.value).toBe("a\nb");
  });

  test("a CRLF body stores strings without a stray CR", () => {
    expect(one('m s="x"\r\n').fields[0]!.value).toBe("x");
  });

  test("a byte-order mark later in the body stays part of the name", () => {
    expect(parse("m f=1\n\uFEFFm f=2").points[1]!.measurement).toBe("\uFEFFm");
  });

  test("an unknown precision is a programming error", () => {
    expect(() => parseLines("m f=1", { precision: "us" as Precision, defaultTime: 0n })).toThrow(RangeError);
  });
});

describe("round trips", () => {
  const cases: Array<{ name: string; measurement: string; tags: Array<[string, string]> }> = [
    { name: "names with every special character survive", measurement: "a,b c=d\"e", tags: [["k,1 =", "v,1 ="]] },
    { name: "names with literal backslashes survive", measurement: "a\\b\\,c\\ d", tags: [["k\\=", "\\v\\ x"]] },
    { name: "a tag value starting with an equals sign survives", measurement: "m", tags: [["t", "==v"]] },
    { name: "unicode names survive", measurement: "温度 🌡", tags: [["地点", "東京, 日本"]] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const key = formatSeriesKey(c.measurement, c.tags);
      const p = one(`${key} f=1`);
      expect([p.measurement, p.tags, p.seriesKey]).toEqual([c.measurement, c.tags, key]);
    });
  }

  // Names a line can carry: no line end, no unpaired surrogate, no trailing backslash (it would
  // escape the separator after it). A measurement cannot start with `#` or a tab either.
  const name = fc
    .string({ unit: fc.constantFrom("a", "Z", "0", " ", ",", "=", "\\", '"', "#", "\t", "é", "東", "🎉"), minLength: 1, maxLength: 8 })
    .filter((s) => !s.endsWith("\\"));
  const measurement = name.filter((s) => !s.startsWith("#") && !s.startsWith("\t"));
  const tags = fc.uniqueArray(fc.tuple(name, name), { selector: (t) => t[0], maxLength: 4 }).map((ts) => ts.filter(([k]) => k !== "time"));

  test("any series key parses back to the same measurement, tags and key", () => {
    fc.assert(
      fc.property(measurement, tags, (m, ts) => {
        const sorted = [...ts].sort((x, y) => compareKeys(x[0], y[0]));
        const shuffled = [...ts].reverse();
        const line = `${escapeMeasurement(m)}${shuffled.map(([k, v]) => `,${escapeTag(k)}=${escapeTag(v)}`).join("")} f=1`;
        const p = one(line);
        expect(p.measurement).toBe(m);
        expect(p.tags).toEqual(sorted);
        const again = one(`${p.seriesKey} f=1`);
        expect([again.measurement, again.tags, again.seriesKey]).toEqual([m, sorted, p.seriesKey]);
      }),
    );
  });

  test("any string field value survives escaping", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("a", " ", ",", "=", "\\", '"', "\n", "é", "🎉") }), (s) => {
        expect(one(`m s="${escapeStringField(s)}"`).fields[0]!.value).toBe(s);
      }),
    );
  });

  test("the raw lines of a body parse to the same points", () => {
    const body = '\uFEFF# c\r\nm,b=1,a=2 f=1.5,g=2i 5\r\n  bad\nm s="x\ny",t=T\n\nm\\ n,t==v u=3u 7\n';
    const first = parse(body);
    const second = parse(first.points.map((p) => p.raw).join("\n"));
    const strip = (p: Point) => ({ ...p, line: 0 });
    expect(second.errors).toEqual([]);
    expect(second.points.map(strip)).toEqual(first.points.map(strip));
  });

  test("a series key seen before in the body parses as it did the first time", () => {
    // Lines parsed in one body find repeated keys in the body's name cache; parsed one by one
    // they never do. Keys with tags out of order, a tag named time, duplicate tags, a value
    // starting with `=` and escapes must come out alike either way, errors included.
    const heads = [
      "m,b=1,a=2",
      "m,a=2,b=1",
      "m,time=1,a=2",
      "m,a=1,a=2",
      "m,t==v",
      "m\\ n,t\\,x=v\\=w",
      "n,a=1",
      "m",
    ];
    const fieldSets = ["f=1", "f=2i,g=true", 'time=1,f=1', "f=1,f=2i", "g=3u"];
    const line = fc.tuple(fc.constantFrom(...heads), fc.constantFrom(...fieldSets), fc.integer({ min: 0, max: 9 }));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 12 }), (ls) => {
        const texts = ls.map(([head, fields, t]) => `${head} ${fields} ${t}`);
        const whole = parse(texts.join("\n"));
        const alone = texts.map((t) => parse(t));
        const strip = (p: Point) => ({ ...p, line: 0 });
        expect(whole.points.map(strip)).toEqual(alone.flatMap((r) => r.points.map(strip)));
        expect(whole.errors.map((e) => e.reason)).toEqual(alone.flatMap((r) => r.errors.map((e) => e.reason)));
      }),
    );
  });

  test("a tag or field key where the measurement's last line had another parses as it would alone", () => {
    // Lines of one body expect each tag and field key where the measurement's last line had
    // it; a key that is a prefix of that one, extends it, escapes like it, or is cut short
    // must come out as if parsed alone.
    const keys = ["f", "ff", "f\\=g", "f\\,g", "f\\ g", "f\\\\", "\\=", "time", "é", "f🎉", ""];
    const values = ["1", "2i", '"a,f=1 b"', "true", "3u", "", "x"];
    const field = fc.tuple(fc.constantFrom(...keys), fc.constantFrom(...values)).map(([k, v]) => `${k}=${v}`);
    const heads = ["m", "m,t=1", "m,tt=1", "m,t\\=u=1", "m,t\\ =1", "m,t=1,u=2", "m,u=2,t=1", "m,t=", "m,=1", "n,t=1"];
    const line = fc.tuple(fc.constantFrom(...heads), fc.array(field, { minLength: 1, maxLength: 4 }), fc.constantFrom("", " 5"));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 12 }), (ls) => {
        const texts = ls.map(([head, fields, t]) => `${head} ${fields.join(",")}${t}`);
        const whole = parse(texts.join("\n"));
        const alone = texts.map((t) => parse(t));
        const strip = (p: Point) => ({ ...p, line: 0 });
        expect(whole.points.map(strip)).toEqual(alone.flatMap((r) => r.points.map(strip)));
        expect(whole.errors.map((e) => e.reason)).toEqual(alone.flatMap((r) => r.errors.map((e) => e.reason)));
      }),
      { numRuns: 2_000 },
    );
  });

  test("fields in no steady order, then in one, parse as each line would alone", () => {
    // Past a number of misses the expected places are no longer checked; the lines after must
    // come out the same.
    const keys = ["a", "bb", "c\\ c", "d"];
    const texts: string[] = [];
    for (let n = 0; n < 300; n++) {
      const order = n < 200 ? [...keys.slice(n % 4), ...keys.slice(0, n % 4)] : keys;
      texts.push(`m,t=${n % 3} ${order.map((k, j) => `${k}=${n + j}i`).join(",")} ${n}`);
    }
    const whole = parse(texts.join("\n"));
    const alone = texts.flatMap((t) => parse(t).points);
    const strip = (p: Point) => ({ ...p, line: 0 });
    expect(whole.errors).toEqual([]);
    expect(whole.points.map(strip)).toEqual(alone.map(strip));
    expect(whole.points[250]!.fields.map((f) => f.key)).toEqual(["a", "bb", "c c", "d"]);
  });

  test("names repeated across lines are the same string values", () => {
    const { points } = parse("cpu,host=a usage=1,idle=2\ncpu,host=a usage=3,idle=4\ncpu,host=b idle=5,usage=6");
    expect(points.map((p) => p.seriesKey)).toEqual(["cpu,host=a", "cpu,host=a", "cpu,host=b"]);
    expect(points.map((p) => p.fields.map((f) => f.key))).toEqual([["usage", "idle"], ["usage", "idle"], ["idle", "usage"]]);
  });

  test("names whose hashes collide stay distinct", () => {
    // "yaczfa" and "glbppa" have the same 32-bit FNV-1a hash, which the parser's name cache uses.
    const { points } = parse("yaczfa,yaczfa=glbppa glbppa=1,yaczfa=2\nglbppa,glbppa=yaczfa yaczfa=3,glbppa=4");
    expect(points.map((p) => [p.measurement, p.tags, p.fields.map((f) => f.key)])).toEqual([
      ["yaczfa", [["yaczfa", "glbppa"]], ["glbppa", "yaczfa"]],
      ["glbppa", [["glbppa", "yaczfa"]], ["yaczfa", "glbppa"]],
    ]);
  });

  test("a measurement and a tag spelled alike keep their own unescaping", () => {
    const p = one("a\\=b,a\\=b=a\\=b f=1");
    expect([p.measurement, p.tags]).toEqual(["a\\=b", [["a=b", "a=b"]]]);
  });
});
