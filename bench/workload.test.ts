import { describe, expect, test } from "bun:test";
import { CPU_FIELDS, makeWorkload, type WorkloadOptions } from "./workload.ts";

/** Counts what the generated bodies actually contain, line by line. */
function tally(opts: WorkloadOptions) {
  const w = makeWorkload(opts);
  let lines = 0;
  let cpu = 0;
  let system = 0;
  let values = 0;
  let bodies = 0;
  const hosts = new Set<string>();
  const times = new Set<string>();
  for (const body of w.bodies()) {
    bodies++;
    expect(body.text.endsWith("\n")).toBe(true);
    const bodyLines = body.text.slice(0, -1).split("\n");
    expect(bodyLines.length).toBe(body.lines);
    for (const line of bodyLines) {
      // The string field uptime_format contains spaces and a comma, so split by position.
      const series = line.slice(0, line.indexOf(" "));
      const fields = line.slice(line.indexOf(" ") + 1, line.lastIndexOf(" "));
      lines++;
      times.add(line.slice(line.lastIndexOf(" ") + 1));
      hosts.add(/host=([^,]+)/.exec(series)?.[1] ?? "");
      values += [...fields.matchAll(/(?:^|,)(\w+)=/g)].length;
      if (series.startsWith("cpu,")) cpu++;
      else system++;
    }
  }
  return { w, lines, cpu, system, values, bodies, hosts: hosts.size, times: times.size };
}

describe("makeWorkload", () => {
  const cases: Array<[string, WorkloadOptions]> = [
    ["one host, a few ticks, small batches", { lines: 25, hosts: 1, batch: 4 }],
    ["stops in the middle of a system tick", { lines: 23, hosts: 2, batch: 5 }],
    ["stops between a host's cpu and system line", { lines: 3, hosts: 5, batch: 10 }],
    ["fewer lines than hosts", { lines: 7, hosts: 100, batch: 3 }],
    ["random floats do not change the counts", { lines: 120, hosts: 7, batch: 50, randomFloats: true }],
    ["many ticks", { lines: 5_000, hosts: 10, batch: 333 }],
  ];
  for (const [name, opts] of cases) {
    test(`expected counts match the bodies when ${name}`, () => {
      const t = tally(opts);
      expect(t.lines).toBe(t.w.expected.lines);
      expect(t.cpu).toBe(t.w.expected.cpuLines);
      expect(t.system).toBe(t.w.expected.systemLines);
      expect(t.values).toBe(t.w.expected.fieldValues);
      expect(t.bodies).toBe(t.w.expected.bodies);
      expect(t.times).toBe(t.w.expected.ticks);
      expect(t.hosts).toBe(Math.min(t.w.options.hosts, t.w.expected.cpuLines));
    });
  }

  test("the same options give byte-identical bodies", () => {
    const a = [...makeWorkload({ lines: 300, hosts: 9, batch: 40 }).bodies()].map((b) => b.text).join("");
    const b = [...makeWorkload({ lines: 300, hosts: 9, batch: 40 }).bodies()].map((b) => b.text).join("");
    const c = [...makeWorkload({ lines: 300, hosts: 9, batch: 40, seed: 2 }).bodies()].map((b) => b.text).join("");
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });

  test("walk values keep at most two decimals and stay within 0..100", () => {
    const text = [...makeWorkload({ lines: 2_000, hosts: 3 }).bodies()].map((b) => b.text).join("");
    for (const m of text.matchAll(/usage_\w+=([^, ]+)/g)) {
      const v = m[1] ?? "";
      expect(v).toMatch(/^\d+(\.\d{1,2})?$/);
      expect(Number(v)).toBeGreaterThanOrEqual(0);
      expect(Number(v)).toBeLessThanOrEqual(100);
    }
  });

  test("cpu lines carry the ten Telegraf fields in order", () => {
    const first = [...makeWorkload({ lines: 1, hosts: 1 }).bodies()][0]?.text ?? "";
    const keys = (first.split(" ")[1] ?? "").split(",").map((kv) => kv.split("=")[0]);
    expect(keys).toEqual([...CPU_FIELDS]);
  });

  test("unknown options are rejected", () => {
    expect(() => makeWorkload({ lines: 1, bogus: 1 } as WorkloadOptions)).toThrow(/unknown workload option/);
  });
});
