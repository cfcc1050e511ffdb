/**
 * Line-protocol escaping, shared by the parser (series keys) and anyone who prints names back.
 *
 * The rule, as InfluxDB applies it: a backslash escapes the next character only when that
 * character is special in its position (comma and space in a measurement; comma, equals sign
 * and space in tag keys, tag values and field keys; double quote and backslash in a string
 * field value). Any other backslash is an ordinary character and is kept. Escaping therefore
 * never doubles a backslash in a name, and `escape(unescape(x))` gives `x` back.
 *
 * A name that ends in a backslash cannot be written in line protocol at all (the backslash
 * would escape the separator after it); the parser never produces one.
 */

const BACKSLASH = 92;
const SPACE = 32;
const COMMA = 44;
const EQUALS = 61;
const QUOTE = 34;

/** Escapes a measurement name: comma and space. */
export function escapeMeasurement(name: string): string {
  return escapeWith(name, false);
}

/** Escapes a tag key, tag value or field key: comma, equals sign and space. */
export function escapeTag(text: string): string {
  return escapeWith(text, true);
}

/** Escapes a string field value for use between double quotes: double quote and backslash. */
export function escapeStringField(value: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === QUOTE || c === BACKSLASH) {
      out += value.slice(from, i) + "\\";
      from = i;
    }
  }
  return out === "" ? value : out + value.slice(from);
}

/** Builds the canonical series key: escaped measurement, then `,key=value` per tag (tags must be sorted). */
export function formatSeriesKey(measurement: string, tags: ReadonlyArray<readonly [string, string]>): string {
  let key = escapeMeasurement(measurement);
  for (const [k, v] of tags) key += "," + escapeTag(k) + "=" + escapeTag(v);
  return key;
}

/** Unescapes a measurement name taken from `text[start, end)`. */
export function unescapeMeasurement(text: string, start: number, end: number): string {
  return unescapeWith(text, start, end, COMMA, SPACE, SPACE);
}

/** Unescapes a tag key, tag value or field key taken from `text[start, end)`. */
export function unescapeTag(text: string, start: number, end: number): string {
  return unescapeWith(text, start, end, COMMA, SPACE, EQUALS);
}

/** Unescapes the inside of a quoted string field value taken from `text[start, end)`. */
export function unescapeStringField(text: string, start: number, end: number): string {
  return unescapeWith(text, start, end, QUOTE, BACKSLASH, BACKSLASH);
}

function escapeWith(text: string, equals: boolean): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === COMMA || c === SPACE || (equals && c === EQUALS)) {
      out += text.slice(from, i) + "\\";
      from = i;
    }
  }
  // Nearly every name needs no escaping: hand back the same string without copying.
  return out === "" ? text : out + text.slice(from);
}

// Up to three special characters (repeat one when a context has only two) keep this branch-light.
function unescapeWith(text: string, start: number, end: number, a: number, b: number, c: number): string {
  let out = "";
  let from = start;
  for (let i = start; i < end - 1; i++) {
    if (text.charCodeAt(i) !== BACKSLASH) continue;
    const n = text.charCodeAt(i + 1);
    if (n === a || n === b || n === c) {
      out += text.slice(from, i);
      from = i + 1;
      i++; // the escaped character is taken as it is, even if it is itself a backslash
    }
  }
  return out + text.slice(from, end);
}
