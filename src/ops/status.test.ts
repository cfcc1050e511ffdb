import { describe, expect, test } from "bun:test";
import { Registry, bindProcessMetrics, createMetrics, recordWrite, type Metrics } from "./metrics.ts";
import { exitCodeFor, fetchStatus, localUrl, parseMetricsText, renderStatus, type NodeStatus } from "./status.ts";

const HEALTH = { name: "tsdb-pair", message: "ready for queries and writes", status: "pass", checks: [], version: "0.3.0", node_id: "iotdb-1", last_lsn: 42, series: 7 };

function peer(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    state: "STREAMING",
    paused: false,
    twin: {
      node_id: "iotdb-2",
      incarnation: "inc-2",
      addresses: [
        { url: "http://iotdb-2a:8086", reachable: true, lastOkMs: 1, lastError: null },
        { url: "http://iotdb-2b:8086", reachable: true, lastOkMs: 1, lastError: null },
      ],
      active_address: "http://iotdb-2a:8086",
    },
    my_latest_lsn: 42,
    twin_applied_my_lsn: 42,
    i_applied_twin_lsn: 40,
    twin_latest_lsn: 40,
    lag: { frames: 0, seconds: 0 },
    gaps: [],
    conflicts: { same_point: 1, type: 0, sample: null },
    clock_offset_ms: 3,
    clock_warning: false,
    last_error: null,
    last_contact_ms: Date.now() - 500,
    counters: { frames_applied: 9, frames_refused: 0, backfill_values: 0, reconnects: 1 },
    in_sync: true,
    ...over,
  };
}

interface FakeNode {
  health?: Record<string, unknown> | null;
  healthStatus?: number;
  peer?: Record<string, unknown> | null;
  peerStatus?: number;
  /** Called on each /metrics scrape, so a test can move counters between the two. */
  onScrape?: (m: Metrics, scrape: number) => void;
}

/** A fetch answering /health, /metrics and /peer/status like a node, without a socket. */
function fakeNode(node: FakeNode): typeof fetch {
  const m = createMetrics(new Registry());
  bindProcessMetrics({ version: "0.3.0", runtime: "bun" }, m);
  m.storeDiskBytes.set({ file: "db" }, 3 * 1024 * 1024);
  m.storeDiskBytes.set({ file: "wal" }, 1024 * 1024);
  m.storeDatabases.set(2);
  let scrapes = 0;
  return (async (input: RequestInfo | URL) => {
    const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
    if (path === "/health") {
      if (node.health === null) throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
      return Response.json(node.health ?? HEALTH, { status: node.healthStatus ?? 200 });
    }
    if (path === "/metrics") {
      node.onScrape?.(m, scrapes++);
      return new Response(m.registry.render());
    }
    if (path === "/peer/status") {
      if (node.peer === undefined || node.peer === null) return Response.json({ error: "not found" }, { status: node.peerStatus ?? 404 });
      return Response.json(node.peer, { status: node.peerStatus ?? 200 });
    }
    return new Response("not found", { status: 404 });
  }) as typeof fetch;
}

async function statusOf(node: FakeNode, intervalMs = 0): Promise<NodeStatus> {
  return fetchStatus("http://127.0.0.1:8086", undefined, { fetch: fakeNode(node), intervalMs });
}

describe("the verdict on a node", () => {
  const cases: Array<[string, FakeNode, "healthy" | "degraded" | "unhealthy", number, string | null]> = [
    ["an unpaired node that answers is healthy", {}, "healthy", 0, null],
    ["a paired node streaming with its twin is healthy", { peer: peer() }, "healthy", 0, null],
    ["a node that does not answer is unhealthy", { health: null }, "unhealthy", 2, "cannot reach http://127.0.0.1:8086: ECONNREFUSED"],
    ["a node whose /health fails is unhealthy", { health: { ...HEALTH, status: "fail" }, healthStatus: 503 }, "unhealthy", 2, '/health says "fail"'],
    ["a twin that cannot be reached makes the pair degraded", { peer: peer({ state: "CONNECTING", last_contact_ms: null, last_error: "ECONNREFUSED" }) }, "degraded", 1, "twin iotdb-2 unreachable (connecting, never reached: ECONNREFUSED)"],
    [
      "one network ring down makes the pair degraded",
      {
        peer: peer({
          twin: { node_id: "iotdb-2", incarnation: "i", active_address: null, addresses: [{ url: "http://a:1", reachable: true }, { url: "http://b:1", reachable: false, lastError: "timeout" }] },
        }),
      },
      "degraded",
      1,
      "one ring down: http://b:1 unreachable",
    ],
    ["a paused link makes the pair degraded", { peer: peer({ state: "PAUSED", paused: true }) }, "degraded", 1, "peer link to iotdb-2 is paused"],
    ["a long replication lag makes the pair degraded", { peer: peer({ lag: { frames: 5000, seconds: 300 } }) }, "degraded", 1, "replication lag 300 s behind iotdb-2"],
    ["a gap being refilled makes the pair degraded", { peer: peer({ gaps: [{ from: 1, to: 9, detectedAt: 1, repairedAt: null }] }) }, "degraded", 1, "1 gap(s) from iotdb-2 being refilled"],
    ["a refilled gap does not count", { peer: peer({ gaps: [{ from: 1, to: 9, detectedAt: 1, repairedAt: 2 }] }) }, "healthy", 0, null],
    ["a clock warning makes the pair degraded", { peer: peer({ clock_warning: true, clock_offset_ms: 9000 }) }, "degraded", 1, "clock offset to iotdb-2 is 9000 ms: check NTP"],
    ["a stalled event loop makes the node degraded", { onScrape: (m) => m.eventLoopLag.set(2.5) }, "degraded", 1, "event loop stalled 2.50 s"],
  ];
  for (const [name, node, level, code, problem] of cases) {
    test(name, async () => {
      const s = await statusOf(node);
      expect(s.verdict.level).toBe(level);
      expect(exitCodeFor(s.verdict)).toBe(code);
      if (problem === null) expect(s.verdict.problems).toEqual([]);
      else expect(s.verdict.problems.join("\n")).toContain(problem);
    });
  }
});

describe("what status reads", () => {
  test("identity and sizes come from /health and /metrics, the ingest rate from two scrapes", async () => {
    const s = await statusOf(
      {
        peer: peer(),
        onScrape: (m, n) => {
          if (n === 1) recordWrite("v1", { bytes: 1000, lines: 500, points: 500, parseErrors: 0, typeConflicts: 0 }, m);
        },
      },
      100,
    );
    expect(s).toMatchObject({ reachable: true, health: "pass", version: "0.3.0", nodeId: "iotdb-1", series: 7, databases: 2, diskBytes: 4 * 1024 * 1024 });
    expect(s.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(s.rssBytes).toBeGreaterThan(0);
    // 500 points in about 0.1 s.
    expect(s.ingestPointsPerSecond).toBeGreaterThan(1000);
    expect(s.ingestPointsPerSecond).toBeLessThan(10_000);
    expect(s.ingestRequestsPerSecond).toBeGreaterThan(0);
    expect(s.peer).toMatchObject({ twin: "iotdb-2", state: "STREAMING", inSync: true, lagFrames: 0, conflicts: 1, clockOffsetMs: 3, openGaps: 0 });
  });

  test("the human form names the node, its numbers, the twin and each problem", async () => {
    const text = renderStatus(await statusOf({ peer: peer({ state: "ERROR", last_error: "wrong peer secret" }) }), false);
    for (const part of ["DEGRADED  iotdb-1 at http://127.0.0.1:8086", "version", "0.3.0", "databases", "4.0 MiB", "peer", "iotdb-2  ERROR", "http://iotdb-2a:8086  reachable", "! twin iotdb-2 unreachable (error, last contact just now: wrong peer secret)"]) {
      expect(text).toContain(part);
    }
  });

  test("a peer status that needs the token says so instead of claiming the node is unpaired", async () => {
    const s = await statusOf({ peer: null, peerStatus: 401 });
    expect(s.peer).toBeNull();
    expect(renderStatus(s, false)).toMatch(/peer\s+unknown: the peer link's status needs the node's auth token/);
  });

  test("the human form of an unreachable node is the verdict and why", async () => {
    expect(renderStatus(await statusOf({ health: null }), false)).toBe("UNHEALTHY  ? at http://127.0.0.1:8086\n  cannot reach http://127.0.0.1:8086: ECONNREFUSED\n");
  });

  test("the JSON form is one object with the verdict", async () => {
    const parsed = JSON.parse(renderStatus(await statusOf({ peer: peer() }), true));
    expect(parsed).toMatchObject({ nodeId: "iotdb-1", verdict: { level: "healthy", problems: [] }, peer: { twin: "iotdb-2" } });
  });

  const urls: Array<[string, string]> = [
    ["0.0.0.0:8086", "http://127.0.0.1:8086"],
    [":9000", "http://127.0.0.1:9000"],
    ["10.0.0.5:8086", "http://10.0.0.5:8086"],
    ["[::]:8086", "http://[::1]:8086"],
    ["[fd00::5]:8086", "http://[fd00::5]:8086"],
  ];
  for (const [listen, url] of urls) {
    test(`a node listening on ${listen} is reached at ${url}`, () => {
      expect(localUrl(listen)).toBe(url);
    });
  }

  test("metric samples are read with their labels, escapes and infinities", () => {
    const m = parseMetricsText('# HELP x X\n# TYPE x gauge\nx{a="q\\"uote",b="back\\\\slash"} 1.5\nx_bucket{le="+Inf"} 3\ny +Inf\n');
    expect(m.get("x")).toEqual([{ labels: { a: 'q"uote', b: "back\\slash" }, value: 1.5 }]);
    expect(m.get("x_bucket")).toEqual([{ labels: { le: "+Inf" }, value: 3 }]);
    expect(m.get("y")).toEqual([{ labels: {}, value: Infinity }]);
  });
});
