import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_ENGINE } from "../config.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { Store } from "../store/store.ts";
import {
  EventLoopMonitor,
  PROMETHEUS_CONTENT_TYPE,
  Registry,
  bindPeerMetrics,
  bindProcessMetrics,
  bindStoreMetrics,
  createMetrics,
  metrics,
  recordRejectedWrite,
  recordWrite,
  renderPrometheus,
  startQuery,
} from "./metrics.ts";

// ---- a strict parser of the text exposition format 0.0.4, written from the spec -----------

interface Family {
  help: string | null;
  type: string | null;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

/** Parses and validates: HELP/TYPE before samples, one family per name, legal names and escapes. */
function parseExposition(text: string): Map<string, Family> {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the last line must end with \\n");
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: string | null = null;
  const familyOf = (sampleName: string): string => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = sampleName.endsWith(suffix) ? sampleName.slice(0, -suffix.length) : null;
      if (base !== null && families.get(base)?.type === "histogram") return base;
    }
    return sampleName;
  };
  const open = (name: string): Family => {
    if (current !== name) {
      if (closed.has(name)) throw new Error(`family ${name} appears in two places`);
      if (current !== null) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (!f) families.set(name, (f = { help: null, type: null, samples: [] }));
    return f;
  };
  text
    .slice(0, -1)
    .split("\n")
    .forEach((line, i) => {
      const fail = (why: string) => {
        throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
      };
      let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (m) {
        const f = open(m[1]!);
        if (f.help !== null || f.samples.length > 0) fail("HELP after samples or twice");
        if (/\\[^\\n]/.test(m[2]!.replace(/\\\\/g, ""))) fail("bad escape in HELP");
        f.help = m[2]!;
        return;
      }
      m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m) {
        const f = open(m[1]!);
        if (f.type !== null || f.samples.length > 0) fail("TYPE after samples or twice");
        f.type = m[2]!;
        return;
      }
      if (line.startsWith("#")) fail("unexpected comment");
      m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)$/.exec(line);
      if (!m) return fail("not a sample line");
      const labels: Record<string, string> = {};
      let rest = m[2] ?? "";
      while (rest !== "") {
        const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/.exec(rest);
        if (!l) fail("bad label set");
        if (labels[l![1]!] !== undefined) fail("label twice");
        labels[l![1]!] = l![2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
        rest = rest.slice(l![0].length);
      }
      const raw = m[3]!;
      if (!/^([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN)$/.test(raw)) fail("bad value");
      const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
      open(familyOf(m[1]!)).samples.push({ name: m[1]!, labels, value });
    });
  for (const [name, f] of families) {
    if (f.help === null || f.type === null) throw new Error(`family ${name} lacks HELP or TYPE`);
    if (f.type === "counter" && !name.endsWith("_total")) throw new Error(`counter ${name} should end in _total`);
    if (f.type === "histogram") checkHistogram(name, f);
  }
  return families;
}

/** Buckets ascend in `le` and count, end with +Inf equal to _count, and _sum/_count exist per label set. */
function checkHistogram(name: string, f: Family): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${name}_bucket`) g.buckets.push([le === "+Inf" ? Infinity : Number(le), s.value]);
    else if (s.name === `${name}_sum`) g.sum = s.value;
    else if (s.name === `${name}_count`) g.count = s.value;
  }
  for (const [key, g] of groups) {
    const where = `${name}${key}`;
    if (g.sum === undefined || g.count === undefined) throw new Error(`${where}: no _sum or _count`);
    const last = g.buckets[g.buckets.length - 1];
    if (!last || last[0] !== Infinity || last[1] !== g.count) throw new Error(`${where}: must end with le="+Inf" equal to _count`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0]) || g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${where}: buckets not cumulative`);
    }
  }
}

function value(text: string, sample: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of parseExposition(text).values()) {
    for (const s of f.samples) {
      if (s.name === sample && JSON.stringify(s.labels) === JSON.stringify(labels)) return s.value;
    }
  }
  return undefined;
}

// ---- the registry -------------------------------------------------------------------------

describe("the registry renders the text exposition format 0.0.4", () => {
  const cases: Array<[string, (r: Registry) => void, string]> = [
    [
      "a counter without labels shows zero before anything happens",
      (r) => r.counter({ name: "a_total", help: "A." }),
      "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n",
    ],
    [
      "a labelled counter shows only the label sets it has seen, sorted",
      (r) => {
        const c = r.counter<"k">({ name: "b_total", help: "B.", labelNames: ["k"] });
        c.inc({ k: "y" }, 2);
        c.inc({ k: "x" });
      },
      '# HELP b_total B.\n# TYPE b_total counter\nb_total{k="x"} 1\nb_total{k="y"} 2\n',
    ],
    [
      "label values escape backslash, double quote and line feed",
      (r) => r.gauge<"path">({ name: "g", help: "G.", labelNames: ["path"] }).set({ path: 'C:\\dir "x"\nend' }, 1.5),
      '# HELP g G.\n# TYPE g gauge\ng{path="C:\\\\dir \\"x\\"\\nend"} 1.5\n',
    ],
    [
      "help text escapes backslash and line feed",
      (r) => r.gauge({ name: "h", help: "two\nlines \\ here" }),
      "# HELP h two\\nlines \\\\ here\n# TYPE h gauge\nh 0\n",
    ],
    [
      "a histogram has cumulative buckets, +Inf, sum and count",
      (r) => {
        const h = r.histogram({ name: "d_seconds", help: "D.", buckets: [0.1, 1] });
        h.observe(0.05);
        h.observe(0.5);
        h.observe(3);
      },
      '# HELP d_seconds D.\n# TYPE d_seconds histogram\nd_seconds_bucket{le="0.1"} 1\nd_seconds_bucket{le="1"} 2\nd_seconds_bucket{le="+Inf"} 3\nd_seconds_sum 3.55\nd_seconds_count 3\n',
    ],
    [
      "a labelled histogram puts le last",
      (r) => r.histogram<"e">({ name: "q_seconds", help: "Q.", labelNames: ["e"], buckets: [1] }).observe({ e: "x" }, 2),
      '# HELP q_seconds Q.\n# TYPE q_seconds histogram\nq_seconds_bucket{e="x",le="1"} 0\nq_seconds_bucket{e="x",le="+Inf"} 1\nq_seconds_sum{e="x"} 2\nq_seconds_count{e="x"} 1\n',
    ],
    [
      "gauges go up and down and print infinities the Go way",
      (r) => {
        const g = r.gauge<"k">({ name: "u", help: "U.", labelNames: ["k"] });
        g.inc({ k: "a" }, 5);
        g.dec({ k: "a" }, 2);
        g.set({ k: "b" }, Infinity);
        g.set({ k: "c" }, NaN);
      },
      '# HELP u U.\n# TYPE u gauge\nu{k="a"} 3\nu{k="b"} +Inf\nu{k="c"} NaN\n',
    ],
  ];
  for (const [name, build, expected] of cases) {
    test(name, () => {
      const r = new Registry();
      build(r);
      const text = r.render();
      expect(text).toBe(expected);
      parseExposition(text);
    });
  }

  const refused: Array<[string, (r: Registry) => void, RegExp]> = [
    ["a counter going down", (r) => r.counter({ name: "x_total", help: "X." }).inc(-1), /cannot go down/],
    ["a missing label", (r) => r.counter<"a" | "b">({ name: "x_total", help: "X.", labelNames: ["a", "b"] }).inc({ a: "1" } as never), /takes labels \{a,b\}/],
    ["an extra label", (r) => r.counter({ name: "x_total", help: "X." }).inc({ z: "1" } as never), /takes labels \{\}/],
    ["a metric registered twice", (r) => [1, 2].forEach(() => r.gauge({ name: "dup", help: "D." })), /registered twice/],
    ["an invalid metric name", (r) => r.gauge({ name: "bad-name", help: "B." }), /invalid metric name/],
    ["a label named le on a histogram", (r) => r.histogram<"le">({ name: "h", help: "H.", labelNames: ["le"] }), /invalid label name/],
    ["a reserved label name", (r) => r.gauge<"__x">({ name: "g", help: "G.", labelNames: ["__x"] }), /invalid label name/],
    ["buckets out of order", (r) => r.histogram({ name: "h", help: "H.", buckets: [1, 0.5] }), /ascending/],
  ];
  for (const [name, act, message] of refused) {
    test(`refuses ${name}`, () => {
      expect(() => act(new Registry())).toThrow(message);
    });
  }

  test("a failing collector does not take the rest of the page down", () => {
    const r = new Registry();
    const g = r.gauge({ name: "ok", help: "OK." });
    r.onCollect(() => {
      throw new Error("source gone");
    });
    r.onCollect(() => g.set(7));
    expect(value(r.render(), "ok")).toBe(7);
  });

  test("a histogram timer observes the elapsed seconds", () => {
    const r = new Registry();
    const h = r.histogram({ name: "t_seconds", help: "T." });
    const stop = h.startTimer();
    const s = stop();
    expect(s).toBeGreaterThanOrEqual(0);
    expect(value(r.render(), "t_seconds_count")).toBe(1);
  });
});

// ---- tsdb-pair's metrics ------------------------------------------------------------------

describe("tsdb-pair's metrics", () => {
  const scratch: string[] = [];
  afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test("the whole page is valid and names every area the issue lists", () => {
    const m = createMetrics(new Registry());
    bindProcessMetrics({ version: "9.9.9", runtime: "bun" }, m);
    const families = parseExposition(m.registry.render());
    const wanted = [
      "tsdb_pair_ingest_requests_total",
      "tsdb_pair_ingest_lines_total",
      "tsdb_pair_ingest_points_total",
      "tsdb_pair_ingest_bytes_total",
      "tsdb_pair_ingest_rejected_lines_total",
      "tsdb_pair_ingest_rejected_requests_total",
      "tsdb_pair_store_series",
      "tsdb_pair_store_chunks",
      "tsdb_pair_store_disk_bytes",
      "tsdb_pair_store_hot_bytes",
      "tsdb_pair_store_flush_duration_seconds",
      "tsdb_pair_store_compaction_duration_seconds",
      "tsdb_pair_queries_total",
      "tsdb_pair_query_duration_seconds",
      "tsdb_pair_query_errors_total",
      "tsdb_pair_peer_connected",
      "tsdb_pair_peer_lag_seconds",
      "process_resident_memory_bytes",
      "tsdb_pair_event_loop_lag_seconds",
      "tsdb_pair_uptime_seconds",
      "tsdb_pair_build_info",
    ];
    for (const name of wanted) expect(families.has(name)).toBe(true);
    const text = m.registry.render();
    expect(value(text, "tsdb_pair_build_info", { version: "9.9.9", runtime: "bun" })).toBe(1);
    expect(value(text, "process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
    expect(value(text, "tsdb_pair_uptime_seconds")).toBeGreaterThanOrEqual(0);
    // Known label values are there from the start, so rate() has a zero to start from.
    expect(value(text, "tsdb_pair_ingest_requests_total", { endpoint: "v2" })).toBe(0);
  });

  test("recording a write, a refused write and a query moves the right counters", () => {
    const m = createMetrics(new Registry());
    recordWrite("v1", { bytes: 120, lines: 4, points: 3, values: 6, parseErrors: 1, typeConflicts: 0 }, m);
    recordWrite("v2", { bytes: 10, lines: 1, points: 0, parseErrors: 0, typeConflicts: 1 }, m);
    recordRejectedWrite("v1", "too_large", m);
    const done = startQuery("query", m);
    done("bad_request");
    const text = m.registry.render();
    const cases: Array<[string, Record<string, string>, number]> = [
      ["tsdb_pair_ingest_requests_total", { endpoint: "v1" }, 2],
      ["tsdb_pair_ingest_requests_total", { endpoint: "v2" }, 1],
      ["tsdb_pair_ingest_bytes_total", { endpoint: "v1" }, 120],
      ["tsdb_pair_ingest_lines_total", { endpoint: "v1" }, 4],
      ["tsdb_pair_ingest_points_total", { endpoint: "v1" }, 3],
      ["tsdb_pair_ingest_values_total", { endpoint: "v1" }, 6],
      ["tsdb_pair_ingest_rejected_lines_total", { reason: "parse" }, 1],
      ["tsdb_pair_ingest_rejected_lines_total", { reason: "type_conflict" }, 1],
      ["tsdb_pair_ingest_rejected_requests_total", { reason: "too_large" }, 1],
      ["tsdb_pair_queries_total", { endpoint: "query" }, 1],
      ["tsdb_pair_query_errors_total", { reason: "bad_request" }, 1],
      ["tsdb_pair_query_duration_seconds_count", { endpoint: "query" }, 1],
    ];
    for (const [name, labels, want] of cases) expect([name, labels, value(text, name, labels)]).toEqual([name, labels, want]);
  });

  test("the store collector reads a real store's series, databases and file sizes at scrape time", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsdb-pair-metrics-"));
    scratch.push(dir);
    const store = Store.open({ dataDir: dir, nodeId: "m1", sync: "off", engine: DEFAULT_ENGINE });
    const m = createMetrics(new Registry());
    const unbind = bindStoreMetrics(store, dir, m);
    const { batch } = parseLines("cpu,host=a v=1 1\ncpu,host=b v=2 1\nmem,host=a v=3 1", { precision: "ns", defaultTime: 0n });
    await store.write({ db: "plant", rp: "", precision: "ns", defaultTime: 0n, batch, autoCreate: true });
    const text = m.registry.render();
    expect(value(text, "tsdb_pair_store_series")).toBe(3);
    expect(value(text, "tsdb_pair_store_databases")).toBe(1);
    expect(value(text, "tsdb_pair_store_hot_values")).toBe(3);
    expect(value(text, "tsdb_pair_store_hot_bytes")).toBeGreaterThan(0);
    expect(value(text, "tsdb_pair_store_last_lsn")).toBeGreaterThan(0);
    // In WAL mode new pages may sit in the -wal file until a checkpoint: together they are the store.
    expect(value(text, "tsdb_pair_store_disk_bytes", { file: "db" })! + value(text, "tsdb_pair_store_disk_bytes", { file: "wal" })!).toBeGreaterThan(0);
    // Flushed early, the three one-value chunks wait for compaction until it has run.
    expect(value(text, "tsdb_pair_store_compaction_pending")).toBe(0);
    store.flushAll();
    expect(value(m.registry.render(), "tsdb_pair_store_compaction_pending")).toBe(3);
    store.compactAll();
    expect(value(m.registry.render(), "tsdb_pair_store_compaction_pending")).toBe(0);
    unbind();
    await store.close();
  });

  test("the peer collector turns the link's status into per-twin metrics", () => {
    const m = createMetrics(new Registry());
    const status = {
      state: "STREAMING",
      twin: { node_id: "iotdb-2", addresses: [{ url: "http://a:8086", reachable: true }, { url: "http://b:8086", reachable: false }] },
      i_applied_twin_lsn: 40,
      twin_latest_lsn: 42,
      lag: { frames: 2, seconds: 0.5 },
      gaps: [{ repairedAt: null }, { repairedAt: 5 }],
      conflicts: { same_point: 3, type: 1 },
      clock_offset_ms: -12,
      last_contact_ms: 1_700_000_000_000,
      counters: { frames_applied: 99, frames_refused: 1, reconnects: 4 },
    };
    bindPeerMetrics({ status: () => status }, m);
    const text = m.registry.render();
    const peer = { peer: "iotdb-2" };
    const cases: Array<[string, Record<string, string>, number]> = [
      ["tsdb_pair_peer_connected", peer, 1],
      ["tsdb_pair_peer_address_up", { ...peer, address: "http://a:8086" }, 1],
      ["tsdb_pair_peer_address_up", { ...peer, address: "http://b:8086" }, 0],
      ["tsdb_pair_peer_lag_frames", peer, 2],
      ["tsdb_pair_peer_lag_seconds", peer, 0.5],
      ["tsdb_pair_peer_applied_lsn", peer, 40],
      ["tsdb_pair_peer_remote_lsn", peer, 42],
      ["tsdb_pair_peer_clock_offset_seconds", peer, -0.012],
      ["tsdb_pair_peer_last_contact_timestamp_seconds", peer, 1_700_000_000],
      ["tsdb_pair_peer_gaps_open", peer, 1],
      ["tsdb_pair_peer_gaps_total", peer, 2],
      ["tsdb_pair_peer_conflicts_total", peer, 4],
      ["tsdb_pair_peer_frames_received_total", peer, 99],
      ["tsdb_pair_peer_reconnects_total", peer, 4],
      ["tsdb_pair_peer_errors_total", { ...peer, reason: "frame_refused" }, 1],
    ];
    for (const [name, labels, want] of cases) expect([name, labels, value(text, name, labels)]).toEqual([name, labels, want]);
  });

  test("the event loop monitor reports the longest delay of its window", () => {
    const m = createMetrics(new Registry());
    const mon = new EventLoopMonitor(m, 100, 1000);
    // Driven by hand: each step says when the tick fired; it was due 100 ms after the last.
    mon.step(100); // starts the clock (expected was 100 ms after 0)
    mon.step(200); // on time
    mon.step(550); // 250 ms late
    mon.step(650); // on time
    expect(m.eventLoopLag.get()).toBeCloseTo(0.25, 5);
    mon.step(2000); // the late tick left the 1 s window; this one is 1.25 s late itself
    expect(m.eventLoopLag.get()).toBeCloseTo(1.25, 5);
    expect(value(m.registry.render(), "tsdb_pair_event_loop_delay_seconds_count")).toBe(5);
  });

  test("the process-wide page is what /metrics serves, with its content type", () => {
    metrics.ingestRequests.inc({ endpoint: "v1" });
    const text = renderPrometheus();
    parseExposition(text);
    expect(value(text, "tsdb_pair_ingest_requests_total", { endpoint: "v1" })).toBeGreaterThanOrEqual(1);
    expect(PROMETHEUS_CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });

  const promtool = spawnSync("promtool", ["--version"]).status === 0;
  test.skipIf(!promtool)("Prometheus's own promtool accepts the page", () => {
    const m = createMetrics(new Registry());
    bindProcessMetrics({ version: "1.0.0", runtime: "bun" }, m);
    recordWrite("v1", { bytes: 1, lines: 1, points: 1, parseErrors: 0, typeConflicts: 0 }, m);
    m.storeFlushDuration.observe(0.01);
    const r = spawnSync("promtool", ["check", "metrics"], { input: m.registry.render(), encoding: "utf8" });
    // promtool exits 0 when the page parses; lint remarks (if any) are printed, not fatal for format.
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});
