import { describe, expect, test } from "bun:test";
import { encodeCsv, encodeJson, encodeJsonChunks } from "./format.ts";
import type { StatementResult } from "./result.ts";
import { formatRfc3339, parseTimeLiteral, windowStart, zoneOf } from "./time.ts";

const result: StatementResult = {
  statementId: 0,
  series: [
    {
      name: "m",
      tags: { host: "a,b" },
      columns: ["time", "v", "s", "ok"],
      timeColumn: true,
      values: [
        [1700000000123456789n, 9223372036854775807n, 'say "hi"', true],
        [1700000001000000000n, 1.5, null, false],
        [1700000002000000000n, 2, "x", null],
      ],
    },
  ],
};

describe("JSON", () => {
  test("prints int64 values and nanosecond times exactly", () => {
    expect(encodeJson([result], { epochNs: 1n, pretty: false })).toBe(
      '{"results":[{"statement_id":0,"series":[{"name":"m","tags":{"host":"a,b"},"columns":["time","v","s","ok"],"values":[[1700000000123456789,9223372036854775807,"say \\"hi\\"",true],[1700000001000000000,1.5,null,false],[1700000002000000000,2,"x",null]]}]}]}\n',
    );
  });

  test("prints RFC3339 times with trailing zeros of the fraction dropped", () => {
    expect(encodeJson([result], { epochNs: null, pretty: false })).toContain('"2023-11-14T22:13:20.123456789Z"');
  });

  test("pretty output is indented with four spaces like InfluxDB's", () => {
    const text = encodeJson([{ statementId: 0 }], { epochNs: null, pretty: true });
    expect(text).toBe('{\n    "results": [\n        {\n            "statement_id": 0\n        }\n    ]\n}\n');
  });

  test("pretty and compact output carry the same values", () => {
    const a = JSON.parse(encodeJson([result], { epochNs: 1_000_000n, pretty: true }));
    const b = JSON.parse(encodeJson([result], { epochNs: 1_000_000n, pretty: false }));
    expect(a).toEqual(b);
  });

  test("an error statement has no series", () => {
    expect(encodeJson([{ statementId: 3, error: "boom" }], { epochNs: null, pretty: false })).toBe('{"results":[{"statement_id":3,"error":"boom"}]}\n');
  });

  test("chunks cut series at chunk_size rows and mark what continues as partial", () => {
    const chunks = [...encodeJsonChunks(result, { epochNs: 1n, pretty: false }, 2)].map((c) => JSON.parse(c));
    expect(chunks.length).toBe(2);
    expect(chunks[0].results[0].partial).toBe(true);
    expect(chunks[0].results[0].series[0].partial).toBe(true);
    expect(chunks[0].results[0].series[0].values.length).toBe(2);
    expect(chunks[1].results[0].partial).toBeUndefined();
    expect(chunks[1].results[0].series[0].values.length).toBe(1);
  });
});

describe("CSV", () => {
  test("writes name, tags, then the columns, with times as integers and quoting where needed", () => {
    expect(encodeCsv([result], { epochNs: null, pretty: false })).toBe(
      'name,tags,time,v,s,ok\nm,"host=a,b",1700000000123456789,9223372036854775807,"say ""hi""",true\nm,"host=a,b",1700000001000000000,1.5,,false\nm,"host=a,b",1700000002000000000,2,x,\n',
    );
  });

  test("repeats the header after a blank line when the columns change", () => {
    const other: StatementResult = { statementId: 1, series: [{ name: "k", columns: ["tagKey"], timeColumn: false, values: [["host"]] }] };
    expect(encodeCsv([other, other], { epochNs: null, pretty: false })).toBe("name,tags,tagKey\nk,,host\nk,,host\n");
    const text = encodeCsv([result, other], { epochNs: 1_000_000_000n, pretty: false });
    expect(text).toContain(",1700000000,");
    expect(text).toContain("\n\nname,tags,tagKey\nk,,host\n");
  });
});

describe("time", () => {
  const literals: Array<[string, string, bigint]> = [
    ["RFC3339 in UTC", "2023-11-14T22:13:20Z", 1700000000000000000n],
    ["a fraction to the nanosecond", "2023-11-14T22:13:20.000000001Z", 1700000000000000001n],
    ["an offset", "2023-11-14T23:13:20+01:00", 1700000000000000000n],
    ["a space instead of T and no zone", "2023-11-14 22:13:20", 1700000000000000000n],
    ["a bare date", "2023-11-14", 1699920000000000000n],
  ];
  for (const [name, text, ns] of literals) {
    test(`reads ${name}`, () => {
      expect(parseTimeLiteral(text)).toBe(ns);
    });
  }

  test("prints zone offsets for tz() and Z for UTC", () => {
    expect(formatRfc3339(1700000000100000000n, zoneOf("Europe/Paris"))).toBe("2023-11-14T23:13:20.1+01:00");
    expect(formatRfc3339(1700000000000000000n, zoneOf("America/New_York"))).toBe("2023-11-14T17:13:20-05:00");
    expect(formatRfc3339(-1n, null)).toBe("1969-12-31T23:59:59.999999999Z");
  });

  const windows: Array<[string, bigint, bigint, bigint, string | null, bigint]> = [
    ["aligns to the epoch", 1700000005000000000n, 60_000_000_000n, 0n, null, 1699999980000000000n],
    ["shifts by the offset", 1700000005000000000n, 60_000_000_000n, 15_000_000_000n, null, 1699999995000000000n],
    ["handles negative times", -1n, 60_000_000_000n, 0n, null, -60_000_000_000n],
    ["starts days at local midnight in a zone", 1700000000000000000n, 86_400_000_000_000n, 0n, "America/New_York", 1699938000000000000n],
  ];
  for (const [name, t, iv, off, zone, start] of windows) {
    test(`a GROUP BY time() window ${name}`, () => {
      expect(windowStart(t, iv, off, zone === null ? null : zoneOf(zone))).toBe(start);
    });
  }
});
