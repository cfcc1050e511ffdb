/**
 * Helpers for the pair benchmark (bench/pair.ts): processes, deadlines, CPU accounting,
 * workload slabs, full-speed and paced loads, /peer/status pollers, LSN resolution and a
 * streaming export comparison. Same conventions as bench/ingest.ts: loopback only, every
 * loop bounded in count and time, progress on stderr.
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { decodeFrame, writeText } from "../src/wal/frame.ts";
import { MessageReader } from "../src/peer/wire.ts";
import { makeWorkload, INTERVAL_SECONDS } from "./workload.ts";

export const DB = "bench";
/** Header a node could put on its 204 to name the LSN of the request's frame (proposed; see pair.ts). */
export const LSN_HEADER = "X-Tsdb-Pair-Lsn";
/** Peer-API headers (src/peer/routes.ts); used read-only to map frames to requests. */
const PEER_SECRET_HEADER = "X-Tsdb-Pair-Peer-Secret";
const PEER_NODE_HEADER = "X-Tsdb-Pair-Node";
/** Upper bound for one POST /write, status poll aside. */
export const REQUEST_TIMEOUT_MS = 120_000;
/** CPU used by other processes above which a measurement counts as contended (as bench/ingest.ts). */
export const CONTENDED_CORES = 0.25;

// ---------------------------------------------------------------------------------------
// Errors, progress, deadline

export type ErrorCode =
  | "usage"
  | "deadline-exceeded"
  | "spawn-failed"
  | "not-ready"
  | "exited-early"
  | "write-failed"
  | "stop-timeout"
  | "not-converged"
  | "setup-failed"
  | "timeout";

export class BenchError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BenchError";
  }
}

const benchStart = performance.now();
let progressLabel = "bench";

/** Names the benchmark in progress lines. */
export function setProgressLabel(label: string): void {
  progressLabel = label;
}

export function progress(message: string): void {
  process.stderr.write(`[${progressLabel} ${((performance.now() - benchStart) / 1000).toFixed(1)}s] ${message}\n`);
}

export class Deadline {
  private readonly at: number;
  constructor(readonly ms: number) {
    this.at = Date.now() + ms;
  }
  remaining(): number {
    return this.at - Date.now();
  }
  check(doing: string): void {
    if (this.remaining() <= 0) throw new BenchError("deadline-exceeded", `global deadline exceeded while ${doing}`);
  }
  /** A timeout no longer than `ms` and never past the deadline. */
  cap(ms: number): number {
    return Math.max(1, Math.min(ms, this.remaining()));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ends a benchmark cleanly on SIGINT/SIGTERM or when its deadline (plus a grace) passes with
 * an await that never settled: kills the servers, removes the scratch dir unless kept, exits.
 */
export function installWatchdog(opts: { deadlineMs: number; graceMs: number; tmp: string; keep: boolean }): void {
  const abort = (why: string, code: number): never => {
    progress(`${why}: killing servers and aborting`);
    killAll();
    if (!opts.keep) rmSync(opts.tmp, { recursive: true, force: true });
    process.exit(code);
  };
  setTimeout(() => abort(`global deadline of ${opts.deadlineMs / 60_000} min passed`, 3), opts.deadlineMs + opts.graceMs).unref();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => abort(sig, 130));
}

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

// ---------------------------------------------------------------------------------------
// Processes

const children = new Set<ChildProcess>();

export function killAll(): void {
  for (const c of children) c.kill("SIGKILL");
}

export interface Server {
  name: string;
  proc: ChildProcess;
  pid: number;
  url: string;
  logPath: string;
  /** performance.now() when spawned. */
  spawnedAt: number;
  exited: Promise<string>;
  exitedYet(): string | null;
}

export function spawnServer(name: string, cmd: string, args: string[], cwd: string, logPath: string, url: string): Server {
  const log = openSync(logPath, "a");
  let proc: ChildProcess;
  const spawnedAt = performance.now();
  try {
    proc = spawn(cmd, args, { cwd, stdio: ["ignore", log, log], env: process.env });
  } catch (err) {
    throw new BenchError("spawn-failed", `cannot start ${name} (${cmd} ${args.join(" ")}): ${String(err)}`, { cause: err });
  } finally {
    closeSync(log);
  }
  let exit: string | null = null;
  const exited = new Promise<string>((res) => {
    proc.once("exit", (code, signal) => {
      exit = signal ?? String(code);
      children.delete(proc);
      res(exit);
    });
    proc.once("error", (err) => {
      exit = `spawn error: ${err.message}`;
      children.delete(proc);
      res(exit);
    });
  });
  children.add(proc);
  if (proc.pid === undefined) throw new BenchError("spawn-failed", `cannot start ${name}: no pid`);
  return { name, proc, pid: proc.pid, url, logPath, spawnedAt, exited, exitedYet: () => exit };
}

export function logTail(path: string, bytes = 2_000): string {
  try {
    return readFileSync(path, "utf8").slice(-bytes);
  } catch {
    return "(no log)";
  }
}

export async function waitReady(server: Server, deadline: Deadline, timeoutMs = 60_000): Promise<number> {
  const until = Date.now() + deadline.cap(timeoutMs);
  let last = "no answer yet";
  for (let attempt = 0; Date.now() < until && attempt < 100_000; attempt++) {
    const exit = server.exitedYet();
    if (exit !== null) {
      throw new BenchError("exited-early", `${server.name} exited (${exit}) before answering /ping; log tail: ${logTail(server.logPath)}`);
    }
    try {
      const res = await fetch(`${server.url}/ping`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) return performance.now();
      last = `status ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(20);
  }
  deadline.check(`waiting for ${server.name} /ping`);
  throw new BenchError("not-ready", `${server.name} did not answer GET /ping within ${timeoutMs} ms (last: ${last})`);
}

export async function stopServer(server: Server, deadline: Deadline, timeoutMs = 180_000): Promise<{ exit: string; stopSeconds: number }> {
  const t0 = performance.now();
  if (server.exitedYet() === null) server.proc.kill("SIGTERM");
  const timeout = deadline.cap(timeoutMs);
  const exit = await within(server.exited, timeout);
  if (exit === null) {
    server.proc.kill("SIGKILL");
    await within(server.exited, 5_000);
    throw new BenchError("stop-timeout", `${server.name} did not exit within ${timeout} ms of SIGTERM; killed it`);
  }
  return { exit, stopSeconds: round((performance.now() - t0) / 1000, 3) };
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? res(port) : rej(new Error("no port assigned"))));
    });
  });
}

// ---------------------------------------------------------------------------------------
// CPU accounting (/proc), as bench/ingest.ts does

const CLOCK_TICKS = (() => {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(out.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

export function readMachineBusySeconds(): number | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / CLOCK_TICKS;
  } catch {
    return null;
  }
}

export interface CpuReport {
  elapsedSeconds: number;
  /** Cores used by each server process over the interval. */
  serverCoresBusy: Record<string, number | null>;
  clientCoresBusy: number;
  /** Busy CPU not accounted to the servers or the bench (other processes, some kernel time). */
  otherCoresBusy: number | null;
  contended: boolean;
  loadAvg1: { start: number; end: number };
}

/** Machine, server and client CPU between construction and finish(). */
export class CpuMeter {
  private readonly t0 = performance.now();
  private readonly machine0 = readMachineBusySeconds();
  private readonly client0 = process.cpuUsage();
  private readonly load0 = os.loadavg()[0] ?? 0;
  private readonly pid0: Map<string, { pid: number; cpu: number | null }>;
  constructor(pids: Record<string, number | null>) {
    this.pid0 = new Map();
    for (const [name, pid] of Object.entries(pids)) if (pid !== null) this.pid0.set(name, { pid, cpu: readCpuSeconds(pid) });
  }
  finish(): CpuReport {
    const elapsed = (performance.now() - this.t0) / 1000;
    const machine1 = readMachineBusySeconds();
    const c = process.cpuUsage(this.client0);
    const client = (c.user + c.system) / 1e6;
    const servers: Record<string, number | null> = {};
    let serverSum = 0;
    let known = true;
    for (const [name, { pid, cpu }] of this.pid0) {
      const now = readCpuSeconds(pid);
      if (now === null || cpu === null) {
        servers[name] = null;
        known = false;
      } else {
        servers[name] = round((now - cpu) / elapsed, 3);
        serverSum += now - cpu;
      }
    }
    const other =
      this.machine0 !== null && machine1 !== null && known && elapsed >= 1
        ? Math.max(0, (machine1 - this.machine0 - serverSum - client) / elapsed)
        : null;
    return {
      elapsedSeconds: round(elapsed, 3),
      serverCoresBusy: servers,
      clientCoresBusy: round(client / elapsed, 3),
      otherCoresBusy: other === null ? null : round(other, 3),
      contended: other !== null && other > CONTENDED_CORES,
      loadAvg1: { start: round(this.load0, 2), end: round(os.loadavg()[0] ?? 0, 2) },
    };
  }
}

/** A server counts as settled (no flush or compaction left running) below this many cores. */
export const SETTLED_SERVER_CORES = 0.1;

export interface Quiet {
  /** CPU of everything but the bench and its servers in the last 1-s sample. */
  otherCores: number | null;
  /** CPU of each of our servers in the last sample (background flushes, compaction). */
  serverCores: number[];
  waitedSeconds: number;
  quiet: boolean;
}

/**
 * Waits (bounded) until the machine is nearly idle: other processes below CONTENDED_CORES and
 * each of our servers below SETTLED_SERVER_CORES (so background compaction from an earlier
 * phase does not run into the next measurement).
 */
export async function waitQuiet(pids: number[], maxMs: number, deadline: Deadline): Promise<Quiet> {
  const t0 = Date.now();
  let other: number | null = null;
  let servers: number[] = [];
  for (let i = 0; Date.now() - t0 < deadline.cap(maxMs) && i < 10_000; i++) {
    const m0 = readMachineBusySeconds();
    const s0 = pids.map(readCpuSeconds);
    const c0 = process.cpuUsage();
    await sleep(1_000);
    const m1 = readMachineBusySeconds();
    const s1 = pids.map(readCpuSeconds);
    const c = process.cpuUsage(c0);
    servers = pids.map((_, k) => Math.max(0, (s1[k] ?? 0) - (s0[k] ?? 0)));
    if (m0 === null || m1 === null) return { otherCores: null, serverCores: servers.map((x) => round(x, 3)), waitedSeconds: round((Date.now() - t0) / 1000, 1), quiet: false };
    other = Math.max(0, m1 - m0 - (c.user + c.system) / 1e6 - servers.reduce((x, y) => x + y, 0));
    const ok = other <= CONTENDED_CORES && servers.every((x) => x <= SETTLED_SERVER_CORES);
    if (ok) return { otherCores: round(other, 3), serverCores: servers.map((x) => round(x, 3)), waitedSeconds: round((Date.now() - t0) / 1000, 1), quiet: true };
    if (i === 0) {
      progress(`waiting up to ${maxMs / 1000} s for an idle machine (other processes ${other.toFixed(2)} cores, our servers ${servers.map((x) => x.toFixed(2)).join("/")})`);
    }
  }
  progress(`machine not idle (other ${(other ?? 0).toFixed(2)} cores, servers ${servers.map((x) => x.toFixed(2)).join("/")}); measuring anyway`);
  return { otherCores: other === null ? null : round(other, 3), serverCores: servers.map((x) => round(x, 3)), waitedSeconds: round((Date.now() - t0) / 1000, 1), quiet: false };
}

// ---------------------------------------------------------------------------------------
// Statistics

export interface Distribution {
  count: number;
  min: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentiles (p99 of 100 values is the 99th smallest). */
export function distribution(values: number[], digits = 1): Distribution {
  const v = values.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  const n = v.length;
  if (n === 0) return { count: 0, min: null, p50: null, p95: null, p99: null, max: null, mean: null };
  const at = (p: number): number => v[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] as number;
  return {
    count: n,
    min: round(v[0] as number, digits),
    p50: round(at(50), digits),
    p95: round(at(95), digits),
    p99: round(at(99), digits),
    max: round(v[n - 1] as number, digits),
    mean: round(v.reduce((s, x) => s + x, 0) / n, digits),
  };
}

// ---------------------------------------------------------------------------------------
// Workload slabs: every load writes fresh points (its own time range), never overwrites.

export interface Prepared {
  label: string;
  bodies: Array<Uint8Array<ArrayBuffer>>;
  lines: number[];
  values: number[];
  /** The first line of each body: maps frames in a node's log back to requests. */
  firstLines: string[];
  totalLines: number;
  totalValues: number;
  totalBytes: number;
  startSeconds: number;
  generationSeconds: number;
}

export class Slabs {
  private nextStart: number;
  private seq = 0;
  constructor(
    startSeconds: number,
    private readonly hosts: number,
    private readonly batch: number,
    private readonly seed: number,
  ) {
    this.nextStart = startSeconds;
  }

  /** Generates `lines` lines in a time range no other slab uses; bodies of `batch` lines. */
  prepare(label: string, lines: number, deadline: Deadline): Prepared {
    return this.generate(label, lines, deadline, this.take(lines), null);
  }

  /**
   * Two loads over the same time range for two nodes: the second one's hosts are renamed
   * (host=host-N -> host=<prefix>host-N), so each node writes its own series, as two
   * gateways taking different agents do, and no series gets points out of time order.
   */
  preparePair(label: string, lines: number, prefix: string, deadline: Deadline): [Prepared, Prepared] {
    const start = this.take(lines);
    return [this.generate(`${label}-a`, lines, deadline, start, null), this.generate(`${label}-b`, lines, deadline, start, prefix)];
  }

  private take(lines: number): number {
    const start = this.nextStart;
    const ticks = makeWorkload({ lines, hosts: this.hosts, batch: this.batch, startSeconds: start }).expected.ticks;
    this.nextStart += (ticks + 1) * INTERVAL_SECONDS;
    return start;
  }

  private generate(label: string, lines: number, deadline: Deadline, startSeconds: number, hostPrefix: string | null): Prepared {
    const t0 = performance.now();
    const workload = makeWorkload({ lines, hosts: this.hosts, batch: this.batch, seed: this.seed + this.seq++, startSeconds });
    const enc = new TextEncoder();
    const out: Prepared = {
      label,
      bodies: [],
      lines: [],
      values: [],
      firstLines: [],
      totalLines: 0,
      totalValues: 0,
      totalBytes: 0,
      startSeconds: workload.options.startSeconds,
      generationSeconds: 0,
    };
    for (const generated of workload.bodies()) {
      if (generated.index % 50 === 0) deadline.check(`generating ${label}`);
      const body = hostPrefix === null ? generated : { ...generated, text: generated.text.replaceAll(",host=host-", `,host=${hostPrefix}host-`) };
      const bytes = enc.encode(body.text);
      out.bodies.push(bytes);
      out.lines.push(body.lines);
      out.values.push(body.fieldValues);
      const nl = body.text.indexOf("\n");
      out.firstLines.push(nl < 0 ? body.text : body.text.slice(0, nl));
      out.totalLines += body.lines;
      out.totalValues += body.fieldValues;
      out.totalBytes += bytes.byteLength;
    }
    out.generationSeconds = (performance.now() - t0) / 1000;
    return out;
  }
}

// ---------------------------------------------------------------------------------------
// Loads

export interface RequestRecord {
  index: number;
  /** performance.now() values. */
  scheduled: number;
  sent: number;
  acked: number;
  /** From the LSN header when the node sends one. */
  headerLsn: number | null;
}

export interface LoadResult {
  label: string;
  records: RequestRecord[];
  requests: number;
  lines: number;
  values: number;
  elapsedSeconds: number;
  linesPerSec: number;
  fieldValuesPerSec: number;
  clientCpuSeconds: number;
}

async function postOne(url: string, body: Uint8Array<ArrayBuffer>, deadline: Deadline, label: string, i: number): Promise<number | null> {
  deadline.check(`${label}: posting body ${i}`);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      body,
      headers: { "Content-Type": "text/plain; charset=utf-8" },
      signal: AbortSignal.timeout(deadline.cap(REQUEST_TIMEOUT_MS)),
    });
  } catch (err) {
    throw new BenchError("write-failed", `${label}: POST body ${i} failed: ${String(err)}`, { cause: err });
  }
  const text = await res.text();
  if (res.status !== 204) throw new BenchError("write-failed", `${label}: POST body ${i} answered ${res.status}: ${text.slice(0, 500)}`);
  const h = res.headers.get(LSN_HEADER);
  const n = h === null ? NaN : Number(h);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

function summarize(label: string, prepared: Prepared, records: RequestRecord[], t0: number, t1: number, cpu: number): LoadResult {
  let lines = 0;
  let values = 0;
  for (const r of records) {
    lines += prepared.lines[r.index] ?? 0;
    values += prepared.values[r.index] ?? 0;
  }
  const elapsed = (t1 - t0) / 1000;
  return {
    label,
    records,
    requests: records.length,
    lines,
    values,
    elapsedSeconds: elapsed,
    linesPerSec: lines / elapsed,
    fieldValuesPerSec: values / elapsed,
    clientCpuSeconds: cpu,
  };
}

/** Posts every body once, as fast as `connections` concurrent keep-alive workers go. */
export async function postAll(url: string, prepared: Prepared, connections: number, deadline: Deadline, label: string): Promise<LoadResult> {
  let next = 0;
  let failure: unknown = null;
  const records: RequestRecord[] = [];
  const total = prepared.bodies.length;
  const reportEvery = Math.max(1, Math.ceil(total / 5));
  const worker = async (): Promise<void> => {
    while (failure === null && next < total) {
      const i = next++;
      const sent = performance.now();
      try {
        const lsn = await postOne(url, prepared.bodies[i] as Uint8Array<ArrayBuffer>, deadline, label, i);
        records.push({ index: i, scheduled: sent, sent, acked: performance.now(), headerLsn: lsn });
      } catch (err) {
        failure ??= err;
        return;
      }
      if (records.length % reportEvery === 0) progress(`${label}: ${records.length}/${total} bodies`);
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(connections, total) }, worker));
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  if (failure !== null) throw failure;
  return summarize(label, prepared, records, t0, t1, (cpu.user + cpu.system) / 1e6);
}

export interface PacedResult extends LoadResult {
  ratePerSec: number;
  /** How late requests left compared to their schedule (ms): > 0 when every connection was busy. */
  startSlipMs: Distribution;
  writeLatencyMs: Distribution;
}

/**
 * Open-loop load: body k leaves at startAt + offsetMs + k / rate, on whichever of at most
 * `maxInFlight` connections is free (if none is, it leaves late and the slip is recorded).
 */
export async function pacedLoad(
  url: string,
  prepared: Prepared,
  opts: { ratePerSec: number; maxInFlight: number; startAt: number; offsetMs: number; deadline: Deadline; label: string },
): Promise<PacedResult> {
  const { ratePerSec, maxInFlight, startAt, offsetMs, deadline, label } = opts;
  const records: RequestRecord[] = [];
  const pending = new Set<Promise<void>>();
  let failure: unknown = null;
  let inFlight = 0;
  const waiters: Array<() => void> = [];
  const cpu0 = process.cpuUsage();
  const total = prepared.bodies.length;
  const reportEvery = Math.max(1, Math.ceil(total / 5));
  for (let i = 0; i < total && failure === null; i++) {
    const scheduled = startAt + offsetMs + (i * 1000) / ratePerSec;
    const wait = scheduled - performance.now();
    if (wait > 0) await sleep(wait);
    // Bounded: each in-flight request ends within REQUEST_TIMEOUT_MS (or the deadline).
    while (inFlight >= maxInFlight && failure === null) await new Promise<void>((r) => waiters.push(r));
    if (failure !== null) break;
    deadline.check(`${label}: posting body ${i}`);
    inFlight++;
    const sent = performance.now();
    const p: Promise<void> = postOne(url, prepared.bodies[i] as Uint8Array<ArrayBuffer>, deadline, label, i)
      .then((lsn) => {
        records.push({ index: i, scheduled, sent, acked: performance.now(), headerLsn: lsn });
        if (records.length % reportEvery === 0) progress(`${label}: ${records.length}/${total} bodies`);
      })
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => {
        inFlight--;
        pending.delete(p);
        waiters.shift()?.();
      });
    pending.add(p);
  }
  // Wake a scheduler that might still wait (it cannot: the loop is over), then drain.
  for (let guard = 0; pending.size > 0 && guard < 1_000_000; guard++) await Promise.race(pending);
  const cpu = process.cpuUsage(cpu0);
  if (failure !== null) throw failure;
  records.sort((x, y) => x.index - y.index);
  const t0 = Math.min(...records.map((r) => r.sent));
  const t1 = Math.max(...records.map((r) => r.acked));
  return {
    ...summarize(label, prepared, records, t0, t1, (cpu.user + cpu.system) / 1e6),
    ratePerSec,
    startSlipMs: distribution(records.map((r) => r.sent - r.scheduled)),
    writeLatencyMs: distribution(records.map((r) => r.acked - r.sent)),
  };
}

// ---------------------------------------------------------------------------------------
// /peer/status

export interface PeerStatus {
  state: string;
  in_sync: boolean;
  my_latest_lsn: number;
  twin_applied_my_lsn: number | null;
  i_applied_twin_lsn: number | null;
  twin_latest_lsn: number | null;
  last_error: string | null;
  gaps: Array<{ from: number; to: number; detectedAt?: number; repairedAt: number | null }>;
  lag: { frames: number | null; seconds: number | null };
  counters: { frames_applied: number; frames_refused: number; backfill_values: number; reconnects: number };
}

export async function peerStatus(url: string, timeoutMs = 5_000): Promise<PeerStatus> {
  const res = await fetch(`${url}/peer/status`, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /peer/status answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as PeerStatus;
}

export interface StatusSample {
  tSend: number;
  tRecv: number;
  myLatest: number;
  iApplied: number | null;
  framesApplied: number;
  backfillValues: number;
  inSync: boolean;
  state: string;
  openGaps: number;
  gapsSeen: number;
}

/** Polls one node's /peer/status, one request at a time, at most every `intervalMs`. */
export class StatusPoller {
  readonly samples: StatusSample[] = [];
  errors = 0;
  lastError: string | null = null;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    readonly url: string,
    readonly intervalMs: number,
    private readonly maxSamples: number,
    private readonly deadline: Deadline,
  ) {}

  start(): this {
    this.done = this.loop();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  last(): StatusSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  private async loop(): Promise<void> {
    for (let i = 0; !this.stopped && this.samples.length < this.maxSamples && this.errors < 1_000_000; i++) {
      if (this.deadline.remaining() <= 0) return;
      const tSend = performance.now();
      try {
        const s = await peerStatus(this.url, 2_000);
        const tRecv = performance.now();
        this.samples.push({
          tSend,
          tRecv,
          myLatest: s.my_latest_lsn,
          iApplied: s.i_applied_twin_lsn,
          framesApplied: s.counters.frames_applied,
          backfillValues: s.counters.backfill_values,
          inSync: s.in_sync,
          state: s.state,
          openGaps: s.gaps.filter((g) => g.repairedAt === null).length,
          gapsSeen: s.gaps.length,
        });
      } catch (err) {
        this.errors++;
        this.lastError = String(err);
      }
      const wait = tSend + this.intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }

  /** Median and p99 time between consecutive answers (ms): the resolution of what it saw. */
  resolution(): { samples: number; errors: number; gapMs: Distribution; roundTripMs: Distribution } {
    const gaps: number[] = [];
    for (let k = 1; k < this.samples.length; k++) gaps.push((this.samples[k] as StatusSample).tRecv - (this.samples[k - 1] as StatusSample).tRecv);
    return {
      samples: this.samples.length,
      errors: this.errors,
      gapMs: distribution(gaps, 2),
      roundTripMs: distribution(this.samples.map((s) => s.tRecv - s.tSend), 2),
    };
  }

  /** Index of the first sample satisfying `pred`, samples being monotone in it; -1 if none. */
  firstIndex(pred: (s: StatusSample) => boolean): number {
    let lo = 0;
    let hi = this.samples.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pred(this.samples[mid] as StatusSample)) hi = mid;
      else lo = mid + 1;
    }
    return lo < this.samples.length ? lo : -1;
  }
}

/** Polls until `cond` holds for both nodes' status; returns the statuses. */
export async function waitFor(
  urls: string[],
  cond: (s: PeerStatus[]) => boolean,
  what: string,
  timeoutMs: number,
  deadline: Deadline,
  intervalMs = 50,
): Promise<PeerStatus[]> {
  const until = Date.now() + deadline.cap(timeoutMs);
  let last = "no status yet";
  for (let i = 0; Date.now() < until && i < 1_000_000; i++) {
    try {
      const s = await Promise.all(urls.map((u) => peerStatus(u)));
      if (cond(s)) return s;
      last = s.map((x) => `${x.state} mine=${x.my_latest_lsn} applied=${x.i_applied_twin_lsn} in_sync=${x.in_sync} err=${x.last_error ?? ""}`).join(" / ");
    } catch (err) {
      last = String(err);
    }
    await sleep(intervalMs);
  }
  deadline.check(what);
  throw new BenchError("timeout", `${what}: not reached within ${timeoutMs} ms (last: ${last})`);
}

/** Both nodes streaming, nothing left to apply either way. */
export async function waitInSync(urlA: string, urlB: string, timeoutMs: number, deadline: Deadline): Promise<PeerStatus[]> {
  return waitFor(
    [urlA, urlB],
    ([a, b]) => a!.in_sync && b!.in_sync && b!.i_applied_twin_lsn === a!.my_latest_lsn && a!.i_applied_twin_lsn === b!.my_latest_lsn,
    "waiting for the pair to be in sync",
    timeoutMs,
    deadline,
  );
}

// ---------------------------------------------------------------------------------------
// LSN of each request, read back from the origin's frame log

/**
 * Streams the origin's own frames after `afterLsn` through the peer API (identifying as its
 * real twin, so nothing is created on the node: the frame route only reads) and maps the
 * first line of every write frame to its LSN, up to `untilLsn`. Exact: a frame holds its
 * request's accepted lines verbatim, and every body here has a distinct first line.
 */
export async function lsnsByFirstLine(
  url: string,
  secret: string,
  twinId: string,
  afterLsn: number,
  untilLsn: number,
  deadline: Deadline,
  timeoutMs = 120_000,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (untilLsn <= afterLsn) return out;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), deadline.cap(timeoutMs));
  try {
    const res = await fetch(`${url}/peer/v1/frames?after=${afterLsn}`, {
      headers: { [PEER_SECRET_HEADER]: secret, [PEER_NODE_HEADER]: twinId },
      signal: abort.signal,
    });
    if (res.status !== 200 || res.body === null) throw new Error(`GET /peer/v1/frames answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const reader = new MessageReader();
    const body = res.body.getReader();
    for (let guard = 0; guard < 10_000_000; guard++) {
      const { done, value } = await body.read();
      if (done) throw new Error(`frame stream ended at ${out.size} frames before LSN ${untilLsn}`);
      for (const m of reader.push(value)) {
        if (m.type === "gap") throw new Error(`frames ${m.gap.from}..${m.gap.to} are no longer retained`);
        if (m.type === "error") throw new Error(`node reported: ${m.error}`);
        if (m.type !== "frame") continue;
        const f = decodeFrame(m.bytes);
        if (f.op.kind === "write") {
          const text = writeText(f.op);
          const nl = text.indexOf("\n");
          out.set(nl < 0 ? text : text.slice(0, nl), f.lsn);
        }
        if (f.lsn >= untilLsn) {
          await body.cancel().catch(() => {});
          return out;
        }
      }
    }
    throw new Error("frame stream guard exceeded");
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

// ---------------------------------------------------------------------------------------
// Exports

export interface ExportComparison {
  identical: boolean;
  bytes: { a: number; b: number };
  lines: { a: number; b: number };
  sha256: { a: string; b: string };
  firstDifference: { byteOffset: number; a: string; b: string } | null;
  seconds: number;
}

function countNewlines(buf: Buffer): number {
  let n = 0;
  for (let at = buf.indexOf(10); at >= 0 && n <= buf.length; at = buf.indexOf(10, at + 1)) n++;
  return n;
}

/** Streams both exports side by side: sizes, line counts, SHA-256s and the first differing byte. */
export async function compareExports(urlA: string, urlB: string, deadline: Deadline, timeoutMs = 600_000): Promise<ExportComparison> {
  const t0 = performance.now();
  const signal = AbortSignal.timeout(deadline.cap(timeoutMs));
  const open = async (url: string) => {
    const res = await fetch(`${url}/export?db=${DB}`, { signal });
    if (res.status !== 200 || res.body === null) throw new Error(`GET ${url}/export answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    return res.body.getReader();
  };
  const [ra, rb] = await Promise.all([open(urlA), open(urlB)]);
  const side = (r: ReadableStreamDefaultReader<Uint8Array>) => ({ r, buf: Buffer.alloc(0) as Buffer, done: false, bytes: 0, lines: 0, hash: createHash("sha256") });
  const A = side(ra);
  const B = side(rb);
  const fill = async (s: typeof A): Promise<void> => {
    if (s.buf.length > 0 || s.done) return;
    const { done, value } = await s.r.read();
    if (done) {
      s.done = true;
      return;
    }
    const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    s.hash.update(b);
    s.bytes += b.length;
    s.lines += countNewlines(b);
    s.buf = b;
  };
  let offset = 0;
  let diff: ExportComparison["firstDifference"] = null;
  for (let guard = 0; guard < 100_000_000 && !(A.done && B.done && A.buf.length === 0 && B.buf.length === 0); guard++) {
    await Promise.all([fill(A), fill(B)]);
    if (diff !== null) {
      A.buf = Buffer.alloc(0);
      B.buf = Buffer.alloc(0);
      continue;
    }
    const aEnd = A.done && A.buf.length === 0;
    const bEnd = B.done && B.buf.length === 0;
    if (aEnd && bEnd) break;
    if (aEnd || bEnd) {
      // One export ended while the other goes on.
      diff = { byteOffset: offset, a: A.buf.subarray(0, 300).toString("utf8"), b: B.buf.subarray(0, 300).toString("utf8") };
      continue;
    }
    if (A.buf.length === 0 || B.buf.length === 0) continue; // an empty chunk
    const n = Math.min(A.buf.length, B.buf.length);
    const x = A.buf.subarray(0, n);
    const y = B.buf.subarray(0, n);
    if (Buffer.compare(x, y) !== 0) {
      let k = 0;
      while (k < n && x[k] === y[k]) k++;
      const from = Math.max(0, x.lastIndexOf(10, k) + 1);
      diff = { byteOffset: offset + k, a: A.buf.subarray(from, from + 300).toString("utf8"), b: B.buf.subarray(from, from + 300).toString("utf8") };
      continue;
    }
    offset += n;
    A.buf = A.buf.subarray(n);
    B.buf = B.buf.subarray(n);
  }
  const ha = A.hash.digest("hex");
  const hb = B.hash.digest("hex");
  return {
    identical: diff === null && A.bytes === B.bytes && ha === hb,
    bytes: { a: A.bytes, b: B.bytes },
    lines: { a: A.lines, b: B.lines },
    sha256: { a: ha, b: hb },
    firstDifference: diff,
    seconds: round((performance.now() - t0) / 1000, 2),
  };
}

// ---------------------------------------------------------------------------------------
// /metrics: where the servers spent their writer time (for reading the lag figures)

/** Sample name with labels -> value, from a Prometheus text exposition. */
export type Scrape = Map<string, number>;

export async function scrapeMetrics(url: string): Promise<Scrape | null> {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) return null;
    const out: Scrape = new Map();
    for (const line of (await res.text()).split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const sp = line.lastIndexOf(" ");
      const v = Number(line.slice(sp + 1));
      if (sp > 0 && Number.isFinite(v)) out.set(line.slice(0, sp), v);
    }
    return out;
  } catch {
    return null;
  }
}

export interface HistogramDelta {
  count: number;
  sumSeconds: number;
  meanMs: number | null;
  /** Upper bounds of the buckets holding the median, the 99th percentile and the largest sample. */
  p50AtMostMs: number | null;
  p99AtMostMs: number | null;
  maxAtMostMs: number | null;
}

/** What a histogram recorded between two scrapes (`before` null: since the process started). */
export function histogramDelta(before: Scrape | null, after: Scrape | null, name: string): HistogramDelta | null {
  if (after === null) return null;
  const get = (s: Scrape | null, k: string) => s?.get(k) ?? 0;
  const count = get(after, `${name}_count`) - get(before, `${name}_count`);
  const sum = get(after, `${name}_sum`) - get(before, `${name}_sum`);
  const buckets: Array<[number, number]> = [];
  for (const [k, v] of after) {
    const m = /^(.*)_bucket\{le="([^"]+)"\}$/.exec(k);
    if (m === null || m[1] !== name) continue;
    const le = m[2] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[2]);
    buckets.push([le, v - get(before, k)]);
  }
  buckets.sort((x, y) => x[0] - y[0]);
  const at = (q: number): number | null => {
    if (count <= 0) return null;
    const b = buckets.find(([, c]) => c >= Math.ceil(q * count));
    return b === undefined ? null : b[0] === Number.POSITIVE_INFINITY ? null : round(b[0] * 1000, 1);
  };
  return {
    count,
    sumSeconds: round(sum, 3),
    meanMs: count > 0 ? round((sum / count) * 1000, 2) : null,
    p50AtMostMs: at(0.5),
    p99AtMostMs: at(0.99),
    maxAtMostMs: at(1),
  };
}

/** The writer's steps and the event loop's delays between two scrapes of one node. */
export function writerSteps(before: Scrape | null, after: Scrape | null): Record<string, HistogramDelta | null> {
  return {
    commit: histogramDelta(before, after, "tsdb_pair_store_commit_duration_seconds"),
    flush: histogramDelta(before, after, "tsdb_pair_store_flush_duration_seconds"),
    compaction: histogramDelta(before, after, "tsdb_pair_store_compaction_duration_seconds"),
    eventLoopDelay: histogramDelta(before, after, "tsdb_pair_event_loop_delay_seconds"),
  };
}
