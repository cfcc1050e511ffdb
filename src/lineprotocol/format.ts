/**
 * Canonical line-protocol output, used by exports: field keys escaped as the spec requires,
 * floats in shortest round-trip form, integers with `i`, unsigned with `u`, strings quoted.
 * Two stores holding the same values print the same bytes.
 */
import type { FieldType, FieldValue } from "./types.ts";

/** Escapes a field key: comma, equals sign and space (InfluxDB line protocol). */
export function escapeFieldKey(key: string): string {
  return /[,= ]/.test(key) ? key.replace(/([,= ])/g, "\\$1") : key;
}

/** Formats a field value for line protocol. */
export function formatFieldValue(type: FieldType, value: FieldValue): string {
  switch (type) {
    case "float": {
      // String() gives the shortest text that parses back to the same double.
      return Object.is(value, -0) ? "-0" : String(value);
    }
    case "integer":
      return `${value}i`;
    case "unsigned":
      return `${value}u`;
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return `"${String(value).replace(/(["\\])/g, "\\$1")}"`;
  }
}
