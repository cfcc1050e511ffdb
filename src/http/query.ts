/**
 * InfluxDB 1.x `GET|POST /query`: `q` (statements separated by `;`), `db`, `rp`, `epoch`,
 * `pretty`, `chunked`/`chunk_size` and `params`, from the URL or a form body (Grafana
 * POSTs some statements as application/x-www-form-urlencoded). Answers JSON in InfluxDB's
 * shape, or CSV for `Accept: application/csv`.
 *
 * A parse error fails the whole request with 400 `{"error": "error parsing query: ..."}`;
 * errors while executing are reported per statement inside a 200 answer, as InfluxDB does.
 */
import type { Context, Hono } from "hono";
import { TsdbError, isTsdbError } from "../errors.ts";
import { parseQuery, type ParamValue } from "../influxql/parser.ts";
import type { Logger } from "../log.ts";
import { executeAll, executeStatements } from "../query/executor.ts";
import { encodeCsv, encodeError, encodeJson, encodeJsonChunks, type FormatOptions } from "../query/format.ts";
import type { QueryStore } from "../query/result.ts";
import { EPOCH_NS } from "../query/time.ts";
import type { Store } from "../store/store.ts";

export interface QueryRouteDeps {
  readonly store: Store;
  /** Throws TsdbError("unauthorized") when the request lacks valid credentials. */
  readonly authorize: (req: Request) => void;
  readonly log: Logger;
  readonly maxSelectPoints: number;
  readonly maxSelectSeries: number;
  /** Server time in nanoseconds (tests may pin it). */
  readonly nowNs?: () => bigint;
}

/** InfluxDB's default `chunk_size`. */
const DEFAULT_CHUNK_SIZE = 10_000;
/** Largest form body read for a POSTed query. */
const MAX_FORM_BYTES = 1024 * 1024;

function wallClockNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** Adds `GET|POST /query` to the app. */
export function registerQueryRoutes(app: Hono, deps: QueryRouteDeps): void {
  const nowNs = deps.nowNs ?? wallClockNs;
  const store: QueryStore = deps.store;
  const handler = async (c: Context): Promise<Response> => {
    deps.authorize(c.req.raw);
    const params = await requestParams(c.req.raw);
    const q = params.get("q") ?? "";
    if (q.trim() === "") return badRequest('missing required parameter "q"');

    const epoch = params.get("epoch");
    let epochNs: bigint | null = null;
    if (epoch !== null && epoch !== "") {
      const unit = EPOCH_NS[epoch];
      // InfluxDB silently prints nanoseconds for an unknown epoch; a typo should not go unnoticed.
      if (unit === undefined) return badRequest(`invalid epoch ${JSON.stringify(epoch)}: expected ns, u, µ, ms, s, m or h`);
      epochNs = unit;
    }
    const format: FormatOptions = { epochNs, pretty: params.get("pretty") === "true" };

    let bound: Record<string, ParamValue> = {};
    const rawParams = params.get("params");
    if (rawParams !== null && rawParams !== "") {
      try {
        const parsed = JSON.parse(rawParams) as unknown;
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("expected a JSON object");
        bound = parsed as Record<string, ParamValue>;
      } catch (e) {
        return badRequest(`error parsing query parameters: ${e instanceof Error ? e.message : String(e)}`);
      }
    }

    let statements;
    try {
      statements = parseQuery(q, bound);
    } catch (e) {
      if (isTsdbError(e, "bad_request")) return badRequest(e.message);
      throw e;
    }

    const options = {
      store,
      db: params.get("db"),
      rp: params.get("rp"),
      nowNs: nowNs(),
      limits: { maxSelectPoints: deps.maxSelectPoints, maxSelectSeries: deps.maxSelectSeries },
      signal: c.req.raw.signal,
      log: deps.log,
    };
    const accept = c.req.header("accept") ?? "";
    if (/application\/csv|text\/csv/.test(accept)) {
      const results = await executeAll(statements, options);
      return new Response(encodeCsv(results, format), { status: 200, headers: { "Content-Type": "text/csv" } });
    }
    if (params.get("chunked") === "true") {
      const size = Number(params.get("chunk_size") ?? DEFAULT_CHUNK_SIZE);
      const chunkSize = Number.isSafeInteger(size) && size > 0 ? size : DEFAULT_CHUNK_SIZE;
      const encoder = new TextEncoder();
      const results = executeStatements(statements, options);
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await results.next();
          if (next.done) {
            controller.close();
            return;
          }
          for (const line of encodeJsonChunks(next.value, format, chunkSize)) controller.enqueue(encoder.encode(line));
        },
        async cancel() {
          await results.return(undefined);
        },
      });
      return new Response(body, { status: 200, headers: { "Content-Type": "application/json" } });
    }
    const results = await executeAll(statements, options);
    return new Response(encodeJson(results, format), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  app.get("/query", handler);
  app.post("/query", handler);
}

function badRequest(message: string): Response {
  return new Response(encodeError(message), { status: 400, headers: { "Content-Type": "application/json" } });
}

/**
 * Query parameters from the URL, overridden by a POSTed form body
 * (application/x-www-form-urlencoded or multipart/form-data).
 */
async function requestParams(req: Request): Promise<URLSearchParams> {
  const params = new URL(req.url).searchParams;
  if (req.method !== "POST") return params;
  const type = (req.headers.get("content-type") ?? "").toLowerCase();
  if (type.startsWith("application/x-www-form-urlencoded")) {
    const text = await req.text();
    if (text.length > MAX_FORM_BYTES) throw new TsdbError("too_large", `query form body over ${MAX_FORM_BYTES} bytes`);
    for (const [k, v] of new URLSearchParams(text)) params.set(k, v);
  } else if (type.startsWith("multipart/form-data")) {
    const form = await req.formData();
    for (const [k, v] of form) if (typeof v === "string") params.set(k, v);
  }
  return params;
}
