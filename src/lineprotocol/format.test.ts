import { describe, expect, test } from "bun:test";
import { splitSeriesKey } from "./format.ts";
import { parseLines, toPoints } from "./parse.ts";

describe("series keys", () => {
  const cases: Array<[string, string]> = [
    ["a plain key", "cpu,host=a,region=eu"],
    ["a measurement alone", "cpu"],
    ["escaped commas, spaces and equals signs", "my\\ m\\,x,k\\ 1=v\\=1\\,2,z=\\ "],
    ["unicode", "温度,传感器=一号"],
    ["a backslash that escapes nothing", "m\\x,k=a\\b"],
    ["a literal backslash before an escaped equals sign in a tag key", "a,\\\\=a=a"],
  ];
  for (const [name, line] of cases) {
    test(`split back into what the parser read for ${name}`, () => {
      const { batch, errors } = parseLines(`${line} f=1 1`, { precision: "ns", defaultTime: 0n });
      expect(errors).toEqual([]);
      const p = toPoints(batch)[0]!;
      expect(splitSeriesKey(p.seriesKey)).toEqual({ measurement: p.measurement, tags: p.tags });
    });
  }
});
