/**
 * Runs parsed statements one after another, as InfluxDB's query executor does: each gets
 * its own result (series or error); after a failed statement the rest are reported as
 * "not executed" rather than run on top of a half-done request.
 */
import type { Statement } from "../influxql/ast.ts";
import { isTsdbError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { executeSelect, type ExecContext } from "./select.ts";
import { executeChange, executeShow } from "./show.ts";
import type { QueryLimits, QueryStore, ResultSeries, StatementResult } from "./result.ts";
import { yieldToEventLoop } from "../runtime/slice.ts";

export interface ExecuteOptions {
  readonly store: QueryStore;
  readonly db?: string | null;
  readonly rp?: string | null;
  /** Query time for now() and open-ended GROUP BY time() ranges (ns). */
  readonly nowNs: bigint;
  readonly limits: QueryLimits;
  /** Yields to the event loop; defaults to a zero-delay timer. */
  readonly pause?: () => Promise<void>;
  readonly signal?: AbortSignal;
  readonly log?: Logger;
}

/** Executes statements in order; yields one result per statement as it completes. */
export async function* executeStatements(statements: readonly Statement[], opts: ExecuteOptions): AsyncGenerator<StatementResult> {
  const ctx: ExecContext = {
    store: opts.store,
    db: opts.db ?? null,
    rp: opts.rp ?? null,
    nowNs: opts.nowNs,
    limits: opts.limits,
    pause: opts.pause ?? yieldToEventLoop,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  for (let i = 0; i < statements.length; i++) {
    const stmt = statements[i]!;
    try {
      const series = await executeOne(stmt, ctx);
      const tz = stmt.kind === "select" ? stmt.tz : null;
      yield series.length === 0 ? { statementId: i } : { statementId: i, series, tz };
    } catch (e) {
      yield { statementId: i, error: errorText(e, opts.log) };
      // InfluxDB stops at the first failed statement; the rest are not run.
      for (let j = i + 1; j < statements.length; j++) yield { statementId: j, error: "not executed" };
      return;
    }
  }
}

/** Executes statements and collects all results. */
export async function executeAll(statements: readonly Statement[], opts: ExecuteOptions): Promise<StatementResult[]> {
  const out: StatementResult[] = [];
  for await (const r of executeStatements(statements, opts)) out.push(r);
  return out;
}

function executeOne(stmt: Statement, ctx: ExecContext): Promise<ResultSeries[]> {
  switch (stmt.kind) {
    case "select":
      return executeSelect(stmt, ctx);
    case "create_database":
    case "drop_database":
    case "drop_measurement":
    case "drop_series":
    case "delete":
      return executeChange(stmt, ctx);
    default:
      return executeShow(stmt, ctx);
  }
}

function errorText(e: unknown, log: Logger | undefined): string {
  if (isTsdbError(e)) {
    if (e.code === "internal") log?.error("query failed", { error: e.message });
    return e.message;
  }
  log?.error("query failed", { error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}
