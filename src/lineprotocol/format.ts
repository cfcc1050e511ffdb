/**
 * Canonical line-protocol output, used by exports: names escaped as the spec requires,
 * floats in shortest round-trip form, integers with `i`, unsigned with `u`, strings quoted.
 * Two stores holding the same values print the same bytes.
 */
import { escapeStringField, escapeTag, unescapeMeasurement, unescapeTag } from "./escape.ts";
import type { FieldType, FieldValue } from "./types.ts";

/** Escapes a field key (same rule as tag keys: comma, equals sign and space). */
export const escapeFieldKey = escapeTag;

/** Formats a field value for line protocol. */
export function formatFieldValue(type: FieldType, value: FieldValue): string {
  switch (type) {
    case "float":
      // String() gives the shortest text that parses back to the same double.
      return Object.is(value, -0) ? "-0" : String(value);
    case "integer":
      return `${value}i`;
    case "unsigned":
      return `${value}u`;
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return `"${escapeStringField(String(value))}"`;
  }
}

const BACKSLASH = 92;
const COMMA = 44;
const EQUALS = 61;
const SPACE = 32;

/** Splits a canonical series key (as the parser builds it) into measurement and tags. */
export function splitSeriesKey(key: string): { measurement: string; tags: Array<[string, string]> } {
  const parts: Array<[number, number]> = [];
  let from = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === BACKSLASH && i + 1 < key.length) {
      const n = key.charCodeAt(i + 1);
      if (n === COMMA || n === SPACE || n === EQUALS) i++;
    } else if (c === COMMA) {
      parts.push([from, i]);
      from = i + 1;
    }
  }
  parts.push([from, key.length]);
  const [m, ...rest] = parts;
  const tags: Array<[string, string]> = [];
  for (const [a, b] of rest) {
    let eq = -1;
    for (let i = a; i < b; i++) {
      const c = key.charCodeAt(i);
      if (c === BACKSLASH && i + 1 < b) {
        // A backslash escapes only the characters that are special here (the parser's rule).
        const n = key.charCodeAt(i + 1);
        if (n === COMMA || n === SPACE || n === EQUALS) i++;
      } else if (c === EQUALS) {
        eq = i;
        break;
      }
    }
    if (eq < 0) continue;
    tags.push([unescapeTag(key, a, eq), unescapeTag(key, eq + 1, b)]);
  }
  return { measurement: unescapeMeasurement(key, m![0], m![1]), tags };
}
