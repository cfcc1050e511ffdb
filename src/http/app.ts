/**
 * The HTTP API: InfluxDB 1.x `/write`, 2.x `/api/v2/write`, `/ping`, `/health` and the
 * canonical `/export`. Thin: it reads and checks requests, hands parsed points to the store,
 * and maps errors to responses in one place.
 */
import { Hono, type Context } from "hono";
import { TsdbError, isTsdbError, type ErrorCode } from "../errors.ts";
import { type ParsedRequest, parseRequestBody, type WorkerPool } from "../ingest/workers.ts";
import type { LineError, Precision } from "../lineprotocol/types.ts";
import type { Logger } from "../log.ts";
import type { Store, TypeConflict, WriteOutcome } from "../store/store.ts";
import { backupResponse } from "../ops/backup.ts";
import { metrics, PROMETHEUS_CONTENT_TYPE, recordRejectedWrite, recordWrite, renderPrometheus, startQuery } from "../ops/metrics.ts";
import { DEFAULT_MAX_SELECT_POINTS, DEFAULT_MAX_SELECT_SERIES } from "../query/result.ts";
import { sameSecret } from "../secret.ts";
import { readBody } from "./body.ts";
import { registerQueryRoutes } from "./query.ts";
import { yieldToEventLoop } from "../runtime/slice.ts";

export interface AppOptions {
  readonly store: Store;
  readonly version: string;
  readonly authToken: string | null;
  readonly maxBodyBytes: number;
  readonly autoCreate: boolean;
  readonly log: Logger;
  /** Server time in nanoseconds (tests may pin it). */
  readonly nowNs?: () => bigint;
  /** For online backups: the data directory and the store file in it. */
  readonly dataDir?: string;
  readonly storeFile?: string;
  /** When the node started (ms), for /health. */
  readonly startedAt?: number;
  /** Parses large bodies on other threads; without it every body is parsed in place. */
  readonly workers?: WorkerPool;
  /** Query limits (see --max-select-points / --max-select-series). */
  readonly maxSelectPoints?: number;
  readonly maxSelectSeries?: number;
}

/** The InfluxDB version we answer to clients that check it (Telegraf, Grafana). */
export const INFLUX_COMPAT_VERSION = "1.8.10";

const STATUS: Record<ErrorCode, number> = {
  config: 500,
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  too_large: 413,
  corrupt_frame: 400,
  identity: 409,
  unavailable: 503,
  disk_full: 507,
  internal: 500,
};

/** 1.x precision spellings; `n` and `us` are accepted aliases. Anything else is refused (InfluxDB takes it as ns). */
const V1_PRECISION: Record<string, Precision> = { "": "ns", n: "ns", ns: "ns", u: "u", us: "u", µ: "u", ms: "ms", s: "s", m: "m", h: "h" };
const V2_PRECISION: Record<string, Precision> = { "": "ns", ns: "ns", us: "u", ms: "ms", s: "s" };

/** Longest line quoted back in an error message. */
const MAX_QUOTED_LINE = 1024;

function wallClockNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

type Dialect = "v1" | "v2";

export function createApp(opts: AppOptions): Hono {
  const app = new Hono();
  const nowNs = opts.nowNs ?? wallClockNs;

  app.use("*", async (c, next) => {
    await next();
    c.res.headers.set("X-Influxdb-Version", INFLUX_COMPAT_VERSION);
    c.res.headers.set("X-Influxdb-Build", "OSS");
    c.res.headers.set("X-Tsdb-Pair-Version", opts.version);
  });

  const ping = (c: Context) => {
    if (c.req.query("verbose") === "true") return c.json({ version: INFLUX_COMPAT_VERSION });
    return c.body(null, 204);
  };
  app.get("/ping", ping);
  app.on("HEAD", "/ping", ping);

  app.get("/health", (c) => {
    const s = opts.store.stats();
    return c.json({
      name: "tsdb-pair",
      message: "ready for queries and writes",
      status: "pass",
      checks: [],
      version: opts.version,
      node_id: s.nodeId,
      incarnation: s.incarnation,
      uptime_seconds: Math.round((Date.now() - (opts.startedAt ?? Date.now())) / 1000),
      databases: opts.store.databases(),
      last_lsn: s.lastLsn,
      series: s.series,
    });
  });

  // Ready for traffic: the node listens only after replaying its frame log, so a node that
  // answers has recovered; while shutting down it says so.
  app.get("/ready", (c) => {
    const replay = opts.store.replayStats();
    if (!opts.store.isOpen()) return c.json({ ready: false, reason: "shutting down" }, 503);
    return c.json({ ready: true, reason: `recovered: replayed ${replay.frames} frame(s) in ${replay.ms} ms` });
  });

  // Prometheus and Telegraf's inputs.prometheus scrape this as is; open like InfluxDB 1.x's /metrics.
  const scrape = (c: Context) => c.body(renderPrometheus(), 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
  app.get("/metrics", scrape);
  app.on("HEAD", "/metrics", scrape);

  app.post("/backup", async (c) => {
    authorize(c.req.raw, opts.authToken, "v1");
    if (opts.storeFile === undefined || opts.dataDir === undefined) throw new TsdbError("unavailable", "backups are not available on this node");
    return backupResponse(opts.storeFile, opts.dataDir, {
      signal: c.req.raw.signal,
      onSnapshot: (r) => {
        metrics.backupDuration.observe(r.ms / 1000);
        metrics.backupLongestStep.set(r.longestStepMs / 1000);
      },
    });
  });

  app.post("/write", async (c) => {
    authorize(c.req.raw, opts.authToken, "v1");
    const db = c.req.query("db") ?? "";
    if (db === "") throw new TsdbError("bad_request", "database is required");
    const rp = c.req.query("rp") ?? "";
    const precision = pickPrecision(c.req.query("precision"), V1_PRECISION, "ns, n, u, ms, s, m, h");
    return ingest(c, { db, rp, precision }, "v1");
  });

  app.post("/api/v2/write", async (c) => {
    authorize(c.req.raw, opts.authToken, "v2");
    const bucket = c.req.query("bucket") ?? "";
    if (bucket === "") throw new TsdbError("bad_request", "bucket is required");
    // A 1.x-compatible bucket is "db/rp".
    const slash = bucket.indexOf("/");
    const db = slash < 0 ? bucket : bucket.slice(0, slash);
    const rp = slash < 0 ? "" : bucket.slice(slash + 1);
    const precision = pickPrecision(c.req.query("precision"), V2_PRECISION, "ns, us, ms, s");
    return ingest(c, { db, rp, precision }, "v2");
  });

  async function ingest(c: Context, target: { db: string; rp: string; precision: Precision }, dialect: Dialect): Promise<Response> {
    const raw = await readBody(c.req.raw, opts.maxBodyBytes);
    const bytes = raw.length;
    const defaultTime = nowNs();
    // `raw` is handed over to the parse (it may move to a worker): use `parsed.lines` after it.
    const parsed: ParsedRequest = await (opts.workers?.parseRequest(raw, target.precision, defaultTime) ??
      parseRequestBody(raw, target.precision, defaultTime));
    const { batch, errors } = parsed;
    let outcome: WriteOutcome = { accepted: 0, conflicts: [], lsn: null };
    if (batch.length > 0) {
      // With every line good, the body itself is the frame's text (no re-join, no re-encode),
      // compressed when a worker parsed it.
      const body = errors.length === 0 ? parsed.lines : undefined;
      outcome = await opts.store.write({ ...target, defaultTime, batch, body, autoCreate: opts.autoCreate });
    }
    recordWrite(dialect, {
      bytes,
      lines: batch.length + errors.length,
      points: outcome.accepted,
      values: outcome.conflicts.length === 0 ? batch.fieldKey.length : undefined,
      parseErrors: errors.length,
      typeConflicts: outcome.conflicts.length,
    });
    // The frame's LSN lets a client (or the pair benchmark) follow the write to the twin.
    if (outcome.lsn !== null) c.header("X-Tsdb-Pair-Lsn", String(outcome.lsn));
    if (errors.length === 0 && outcome.conflicts.length === 0) return c.body(null, 204);
    const message = writeErrorMessage(errors, outcome);
    return errorResponse(c, dialect, 400, dialect === "v1" ? "bad_request" : "invalid", message);
  }

  app.get("/export", (c) => {
    authorize(c.req.raw, opts.authToken, "v1");
    const done = startQuery("export");
    const db = c.req.query("db") ?? "";
    if (db === "") throw new TsdbError("bad_request", "database is required");
    const start = parseTimeParam(c.req.query("start"), "start");
    const end = parseTimeParam(c.req.query("end"), "end");
    const lines = opts.store.exportLines(db, { start, end });
    // Pull the first piece now so an unknown database is a 404, not a broken stream.
    const first = lines.next();
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (first.done) {
          done();
          controller.close();
        } else controller.enqueue(encoder.encode(first.value));
      },
      async pull(controller) {
        for (;;) {
          const next = lines.next();
          if (next.done) {
            done();
            controller.close();
            return;
          }
          if (next.value !== "") {
            controller.enqueue(encoder.encode(next.value));
            return;
          }
          // Series with nothing in range, many in a row: the event loop gets a turn meanwhile.
          await yieldToEventLoop();
        }
      },
      cancel() {
        done("cancelled");
      },
    });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/plain; charset=utf-8" } });
  });

  registerQueryRoutes(app, {
    store: opts.store,
    authorize: (req) => authorize(req, opts.authToken, "v1"),
    log: opts.log,
    maxSelectPoints: opts.maxSelectPoints ?? DEFAULT_MAX_SELECT_POINTS,
    maxSelectSeries: opts.maxSelectSeries ?? DEFAULT_MAX_SELECT_SERIES,
    nowNs,
  });

  app.notFound((c) => c.json({ error: `not found: ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  app.onError((err, c) => {
    const path = new URL(c.req.url).pathname;
    const dialect: Dialect = path.startsWith("/api/v2/") ? "v2" : "v1";
    if (path === "/write" || path === "/api/v2/write") recordRejectedWrite(dialect, isTsdbError(err) ? err.code : "internal");
    if (isTsdbError(err)) {
      const status = STATUS[err.code];
      if (status >= 500) opts.log.error("request failed", { path: new URL(c.req.url).pathname, error: err.message });
      return errorResponse(c, dialect, status, err.code, err.message);
    }
    opts.log.error("request failed", { path: new URL(c.req.url).pathname, error: String(err) });
    return errorResponse(c, dialect, 500, "internal", `internal error: ${err instanceof Error ? err.message : String(err)}`);
  });

  return app;
}

const V2_CODES: Record<number, string> = {
  400: "invalid",
  401: "unauthorized",
  404: "not found",
  413: "request too large",
  503: "unavailable",
  507: "unavailable",
};

/** InfluxDB 1.x answers `{"error": ...}`; 2.x answers `{"code": ..., "message": ...}`. */
function errorResponse(c: Context, dialect: Dialect, status: number, _code: string, message: string): Response {
  const headers: Record<string, string> = {};
  if (status === 401) headers["WWW-Authenticate"] = 'Basic realm="tsdb-pair"';
  const body = dialect === "v1" ? { error: message } : { code: V2_CODES[status] ?? "internal error", message };
  return c.json(body, status as 400, headers);
}

function pickPrecision(value: string | undefined, table: Record<string, Precision>, expected: string): Precision {
  const p = table[value ?? ""];
  if (p === undefined) throw new TsdbError("bad_request", `invalid precision ${JSON.stringify(value)}: expected one of ${expected}`);
  return p;
}

function parseTimeParam(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined || value === "") return undefined;
  if (/^-?\d+$/.test(value)) return BigInt(value);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new TsdbError("bad_request", `invalid ${name} ${JSON.stringify(value)}: expected nanoseconds or an RFC3339 time`);
  // Keep sub-millisecond digits of RFC3339 strings.
  const frac = /\.(\d+)/.exec(value)?.[1] ?? "";
  const sub = frac.length > 3 ? BigInt(frac.slice(3, 9).padEnd(6, "0")) : 0n;
  return BigInt(ms) * 1_000_000n + sub;
}

/**
 * InfluxDB's partial-write wording: `partial write: <first reason> dropped=<n>` when other
 * lines were stored, `unable to parse '<line>': <reason>` alone when nothing was. We also
 * name the line number, which InfluxDB leaves out.
 */
export function writeErrorMessage(errors: readonly LineError[], outcome: WriteOutcome): string {
  const dropped = errors.length + outcome.conflicts.length;
  const firstParse = errors[0];
  const firstConflict = outcome.conflicts[0];
  const parseFirst =
    firstParse !== undefined && (firstConflict === undefined || firstParse.line < firstConflict.line);
  const reason = parseFirst ? parseErrorText(firstParse!) : firstConflict!.kind === "series_limit" ? seriesLimitText(firstConflict!) : conflictText(firstConflict!);
  const more = dropped > 1 ? ` (and ${dropped - 1} more dropped line${dropped > 2 ? "s" : ""})` : "";
  if (outcome.accepted === 0 && outcome.conflicts.length === 0) return reason + more;
  return `partial write: ${reason}${more} dropped=${dropped}`;
}

function parseErrorText(e: LineError): string {
  const text = e.text.length > MAX_QUOTED_LINE ? e.text.slice(0, MAX_QUOTED_LINE) + "…" : e.text;
  return `unable to parse '${text}': ${e.reason} (line ${e.line})`;
}

/** InfluxDB's wording for its max-series-per-database limit. */
function seriesLimitText(c: TypeConflict): string {
  return `max-series-per-database limit exceeded: (${c.existing}) (line ${c.line})`;
}

function conflictText(c: TypeConflict): string {
  return `field type conflict: input field "${c.field}" on measurement "${c.measurement}" is type ${c.type}, already exists as type ${c.existing} (line ${c.line})`;
}

/**
 * Credentials as InfluxDB clients send them: `Authorization: Token <t>` (2.x, Telegraf),
 * `Bearer <t>`, Basic auth with the token as password, or `?p=<token>` (1.x).
 */
export function authorize(req: Request, token: string | null, _dialect: Dialect = "v1"): void {
  if (token === null) return;
  const given = credential(req);
  if (given === null) throw new TsdbError("unauthorized", "unable to parse authentication credentials");
  if (!sameSecret(given, token)) throw new TsdbError("unauthorized", "authorization failed");
}

function credential(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (header !== null) {
    const space = header.indexOf(" ");
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const rest = space < 0 ? "" : header.slice(space + 1).trim();
    if (scheme === "token" || scheme === "bearer") return rest;
    if (scheme === "basic") {
      try {
        const decoded = atob(rest);
        const colon = decoded.indexOf(":");
        return colon < 0 ? null : decoded.slice(colon + 1);
      } catch {
        return null;
      }
    }
    return null;
  }
  const p = new URL(req.url).searchParams.get("p");
  return p === null || p === "" ? null : p;
}

