/**
 * `tsdb-pair status [--json]`: one look at the local node, from what it already serves:
 * `/health` (identity, version), `/metrics` read twice a moment apart (sizes, ingest rate,
 * process) and `/peer/status` when the node is paired (the twin link).
 *
 * The verdict follows the Nagios plugin convention, which Icinga, Zabbix agents, Telegraf's
 * `inputs.exec` and systemd health checks all read from an exit code: 0 healthy, 1 degraded
 * (serving, but the pair needs attention), 2 unhealthy (not serving).
 */
import { parseListen } from "../config.ts";

export type Level = "healthy" | "degraded" | "unhealthy";

export interface Verdict {
  readonly level: Level;
  /** Why the level is not healthy, most serious first. */
  readonly problems: readonly string[];
}

export interface PeerAddress {
  readonly url: string;
  readonly reachable: boolean | null;
  readonly lastError: string | null;
}

export interface PeerSummary {
  readonly twin: string | null;
  readonly incarnation: string | null;
  readonly state: string;
  readonly paused: boolean;
  readonly inSync: boolean;
  readonly lagFrames: number | null;
  readonly lagSeconds: number | null;
  readonly lastContactMs: number | null;
  readonly clockOffsetMs: number | null;
  readonly clockWarning: boolean;
  readonly openGaps: number;
  readonly conflicts: number | null;
  readonly lastError: string | null;
  readonly addresses: readonly PeerAddress[];
}

export interface NodeStatus {
  readonly url: string;
  readonly reachable: boolean;
  readonly error: string | null;
  readonly health: string | null;
  readonly version: string | null;
  readonly nodeId: string | null;
  readonly incarnation: string | null;
  readonly uptimeSeconds: number | null;
  readonly databases: number | null;
  readonly series: number | null;
  readonly diskBytes: number | null;
  readonly hotBytes: number | null;
  readonly rssBytes: number | null;
  readonly eventLoopLagSeconds: number | null;
  /** Points stored per second over the sampling interval (null with a single sample). */
  readonly ingestPointsPerSecond: number | null;
  readonly ingestRequestsPerSecond: number | null;
  /** The twin link; null when the node runs unpaired (or its status could not be read). */
  readonly peer: PeerSummary | null;
  /** Why the twin link's status could not be read (e.g. it needs the auth token). */
  readonly peerError: string | null;
  readonly verdict: Verdict;
}

export interface StatusOptions {
  /** Time between the two /metrics samples the ingest rate comes from (default 1000 ms; 0: one sample, no rate). */
  readonly intervalMs?: number;
  /** Per-request timeout (default 5000 ms). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly nowMs?: () => number;
  readonly thresholds?: Partial<Thresholds>;
}

export interface Thresholds {
  /** Twin frames this many seconds behind make the pair degraded. */
  readonly lagSeconds: number;
  /** An event loop this late means writes are waiting. */
  readonly eventLoopLagSeconds: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { lagSeconds: 60, eventLoopLagSeconds: 1 };

/** Link states in which the twin is being talked to. */
const WORKING_STATES = new Set(["STREAMING", "BACKFILLING", "SEEDING"]);

/** The URL of the node listening on `listen` (a wildcard address means this host's loopback). */
export function localUrl(listen: string): string {
  const { host, port } = parseListen(listen);
  const h = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host;
  return `http://${h}:${port === 0 ? 8086 : port}`;
}

/** Reads the node at `url`; never throws for an unreachable or failing node (that is a verdict). */
export async function fetchStatus(url: string, token?: string, opts: StatusOptions = {}): Promise<NodeStatus> {
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 1000;
  const now = opts.nowMs ?? Date.now;
  const headers: Record<string, string> = token ? { Authorization: `Token ${token}` } : {};
  const get = async (path: string): Promise<Response> => {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      return await doFetch(new URL(path, url), { headers, signal: ctl.signal });
    } finally {
      clearTimeout(timer);
    }
  };
  const base = { url, thresholds: { ...DEFAULT_THRESHOLDS, ...opts.thresholds } };
  let health: Record<string, unknown>;
  try {
    const res = await get("/health");
    const text = await res.text();
    try {
      health = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return build({ ...base, error: `/health answered HTTP ${res.status} with no JSON` });
    }
    if (!res.ok && typeof health.status !== "string") return build({ ...base, error: `/health answered HTTP ${res.status}` });
  } catch (e) {
    return build({ ...base, error: `cannot reach ${url}: ${errorText(e)}` });
  }
  let metrics: Samples | null = null;
  let rate: { points: number | null; requests: number | null } = { points: null, requests: null };
  try {
    const t0 = now();
    metrics = parseMetricsText(await (await get("/metrics")).text());
    if (intervalMs > 0) {
      await new Promise((r) => setTimeout(r, intervalMs));
      const t1 = now();
      const later = parseMetricsText(await (await get("/metrics")).text());
      const dt = (t1 - t0) / 1000;
      const per = (name: string) => {
        const a = sum(metrics!, name);
        const b = sum(later, name);
        return a === null || b === null || dt <= 0 ? null : Math.max(0, (b - a) / dt);
      };
      rate = { points: per("tsdb_pair_ingest_points_total"), requests: per("tsdb_pair_ingest_requests_total") };
      metrics = later;
    }
  } catch {
    // A node without /metrics (older version) still has a status.
  }
  let peer: PeerSummary | null = null;
  let peerError: string | null = null;
  try {
    const res = await get("/peer/status");
    if (res.ok) peer = peerSummary((await res.json()) as Record<string, unknown>);
    else if (res.status === 401) peerError = "the peer link's status needs the node's auth token (--auth-token or TSDB_PAIR_AUTH_TOKEN)";
    // 404: unpaired, or a version without the peer link
  } catch {
    peerError = "the peer link's status could not be read";
  }
  return build({ ...base, health, metrics, rate, peer, peerError, nowMs: now() });
}

interface BuildInput {
  url: string;
  thresholds: Thresholds;
  error?: string;
  health?: Record<string, unknown>;
  metrics?: Samples | null;
  rate?: { points: number | null; requests: number | null };
  peer?: PeerSummary | null;
  peerError?: string | null;
  nowMs?: number;
}

function build(b: BuildInput): NodeStatus {
  const h = b.health ?? {};
  const m = b.metrics ?? new Map();
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const status: Omit<NodeStatus, "verdict"> = {
    url: b.url,
    reachable: b.error === undefined,
    error: b.error ?? null,
    health: str(h.status),
    version: str(h.version),
    nodeId: str(h.node_id),
    incarnation: str(h.incarnation),
    uptimeSeconds: num(h.uptime_seconds) ?? one(m, "tsdb_pair_uptime_seconds"),
    databases: Array.isArray(h.databases) ? h.databases.length : (num(h.databases) ?? one(m, "tsdb_pair_store_databases")),
    series: num(h.series) ?? one(m, "tsdb_pair_store_series"),
    diskBytes: sum(m, "tsdb_pair_store_disk_bytes"),
    hotBytes: one(m, "tsdb_pair_store_hot_bytes"),
    rssBytes: one(m, "process_resident_memory_bytes"),
    eventLoopLagSeconds: one(m, "tsdb_pair_event_loop_lag_seconds"),
    ingestPointsPerSecond: b.rate?.points ?? null,
    ingestRequestsPerSecond: b.rate?.requests ?? null,
    peer: b.peer ?? null,
    peerError: b.peerError ?? null,
  };
  return { ...status, verdict: judge(status, b.thresholds, b.nowMs ?? Date.now()) };
}

/** The peer link's own status (`GET /peer/status`), read defensively. */
function peerSummary(s: Record<string, unknown>): PeerSummary {
  const obj = (v: unknown) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>) : {});
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  const twin = obj(s.twin);
  const lag = obj(s.lag);
  const conflicts = obj(s.conflicts);
  const gaps = Array.isArray(s.gaps) ? (s.gaps as Array<Record<string, unknown>>) : [];
  const addresses = Array.isArray(twin.addresses) ? (twin.addresses as Array<Record<string, unknown>>) : [];
  const sameP = num(conflicts.same_point);
  const typeC = num(conflicts.type);
  return {
    twin: str(twin.node_id),
    incarnation: str(twin.incarnation),
    state: str(s.state) ?? "UNKNOWN",
    paused: s.paused === true,
    inSync: s.in_sync === true,
    lagFrames: num(lag.frames),
    lagSeconds: num(lag.seconds),
    lastContactMs: num(s.last_contact_ms),
    clockOffsetMs: num(s.clock_offset_ms),
    clockWarning: s.clock_warning === true,
    openGaps: gaps.filter((g) => g.repairedAt === null || g.repaired_at === null).length,
    conflicts: sameP === null && typeC === null ? null : (sameP ?? 0) + (typeC ?? 0),
    lastError: str(s.last_error),
    addresses: addresses.map((a) => ({
      url: str(a.url) ?? "?",
      reachable: typeof a.reachable === "boolean" ? a.reachable : null,
      lastError: str(a.lastError) ?? str(a.last_error),
    })),
  };
}

/** Healthy, degraded or unhealthy, with the reasons. */
export function judge(s: Omit<NodeStatus, "verdict">, t: Thresholds = DEFAULT_THRESHOLDS, nowMs = Date.now()): Verdict {
  const bad: string[] = [];
  const warn: string[] = [];
  if (!s.reachable) bad.push(s.error ?? "the node does not answer");
  else if (s.health !== "pass") bad.push(`/health says ${JSON.stringify(s.health)}`);
  if (s.eventLoopLagSeconds !== null && s.eventLoopLagSeconds > t.eventLoopLagSeconds) {
    warn.push(`event loop stalled ${s.eventLoopLagSeconds.toFixed(2)} s (writes wait that long)`);
  }
  const p = s.peer;
  if (p !== null) {
    const twin = p.twin ?? "the twin";
    if (p.paused || p.state === "PAUSED") warn.push(`peer link to ${twin} is paused (tsdb-pair peer resume)`);
    else if (!WORKING_STATES.has(p.state)) {
      const since = p.lastContactMs === null ? "never reached" : `last contact ${formatAgo(nowMs - p.lastContactMs)}`;
      warn.push(`twin ${twin} unreachable (${p.state.toLowerCase()}, ${since}${p.lastError ? `: ${p.lastError}` : ""})`);
    } else {
      const down = p.addresses.filter((a) => a.reachable === false);
      if (down.length > 0 && down.length < p.addresses.length) warn.push(`one ring down: ${down.map((a) => a.url).join(", ")} unreachable`);
    }
    if (p.lagSeconds !== null && p.lagSeconds > t.lagSeconds) warn.push(`replication lag ${p.lagSeconds.toFixed(0)} s behind ${twin}`);
    if (p.openGaps > 0) warn.push(`${p.openGaps} gap(s) from ${twin} being refilled`);
    if (p.clockWarning) warn.push(`clock offset to ${twin} is ${p.clockOffsetMs ?? "?"} ms: check NTP`);
  }
  const level: Level = bad.length > 0 ? "unhealthy" : warn.length > 0 ? "degraded" : "healthy";
  return { level, problems: [...bad, ...warn] };
}

/** The exit code for a verdict: 0 healthy, 1 degraded, 2 unhealthy (Nagios OK/WARNING/CRITICAL). */
export function exitCodeFor(v: Verdict): number {
  return v.level === "healthy" ? 0 : v.level === "degraded" ? 1 : 2;
}

/** The status as a person reads it, or as one JSON object (`--json`). */
export function renderStatus(s: NodeStatus, json: boolean): string {
  if (json) return JSON.stringify(s, null, 2) + "\n";
  const head = `${s.verdict.level.toUpperCase()}  ${s.nodeId ?? "?"} at ${s.url}`;
  if (!s.reachable) return `${head}\n  ${s.verdict.problems.join("\n  ")}\n`;
  const rows: Array<[string, string]> = [
    ["version", s.version ?? "?"],
    ["node id", s.nodeId ?? "?"],
    ["incarnation", s.incarnation ?? "-"],
    ["uptime", s.uptimeSeconds === null ? "-" : formatDuration(s.uptimeSeconds)],
    ["databases", s.databases === null ? "-" : String(s.databases)],
    ["series", s.series === null ? "-" : s.series.toLocaleString("en-US")],
    ["disk", s.diskBytes === null ? "-" : formatBytes(s.diskBytes)],
    ["memory", s.rssBytes === null ? "-" : `${formatBytes(s.rssBytes)} resident${s.hotBytes === null ? "" : `, ${formatBytes(s.hotBytes)} in hot buffers`}`],
    [
      "ingest",
      s.ingestPointsPerSecond === null
        ? "-"
        : `${formatRate(s.ingestPointsPerSecond)} points/s, ${formatRate(s.ingestRequestsPerSecond ?? 0)} requests/s`,
    ],
  ];
  const p = s.peer;
  if (p === null) rows.push(["peer", s.peerError === null ? "none (unpaired)" : `unknown: ${s.peerError}`]);
  else {
    rows.push(["peer", `${p.twin ?? "(not yet seen)"}  ${p.state}${p.inSync ? " (in sync)" : ""}`]);
    for (const a of p.addresses) {
      rows.push(["  address", `${a.url}  ${a.reachable === null ? "untried" : a.reachable ? "reachable" : "UNREACHABLE"}${a.lastError ? `  ${a.lastError}` : ""}`]);
    }
    rows.push(["  lag", `${p.lagFrames ?? "-"} frames, ${p.lagSeconds === null ? "-" : p.lagSeconds.toFixed(1)} s`]);
    rows.push(["  last contact", p.lastContactMs === null ? "never" : formatAgo(Date.now() - p.lastContactMs)]);
    rows.push(["  clock offset", p.clockOffsetMs === null ? "-" : `${p.clockOffsetMs} ms`]);
    rows.push(["  gaps", p.openGaps === 0 ? "none open" : `${p.openGaps} open`]);
    rows.push(["  conflicts", p.conflicts === null ? "-" : String(p.conflicts)]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  let out = head + "\n" + rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n") + "\n";
  for (const problem of s.verdict.problems) out += `  ! ${problem}\n`;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading /metrics

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type Samples = Map<string, Sample[]>;

/** Reads the samples of a Prometheus text exposition (comments skipped, timestamps ignored). */
export function parseMetricsText(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2] !== undefined) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      for (let l = re.exec(m[2]); l !== null; l = re.exec(m[2])) {
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      }
    }
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    const list = out.get(m[1]!) ?? [];
    list.push({ labels, value: v });
    out.set(m[1]!, list);
  }
  return out;
}

function one(m: Samples, name: string): number | null {
  return m.get(name)?.[0]?.value ?? null;
}

function sum(m: Samples, name: string): number | null {
  const list = m.get(name);
  return list === undefined ? null : list.reduce((a, s) => a + s.value, 0);
}

function errorText(e: unknown): string {
  if ((e as { name?: string }).name === "AbortError") return "timed out";
  const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code;
  return cause ?? (e instanceof Error ? e.message : String(e));
}

function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function formatAgo(ms: number): string {
  return ms < 1000 ? "just now" : `${formatDuration(ms / 1000)} ago`;
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function formatRate(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1);
}
