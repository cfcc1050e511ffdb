/**
 * What statements produce, before encoding: InfluxDB 1.x's result shape with exact values
 * (int64 as bigint, times as bigint nanoseconds) so the encoders can print them exactly.
 */
import type { DbEntry, FieldEntry, SeriesEntry } from "../store/catalog.ts";
import type { Run } from "../store/run.ts";

/** One value in a row: float, exact integer, string, boolean or null. */
export type Cell = number | bigint | string | boolean | null;

export interface ResultSeries {
  readonly name?: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly columns: readonly string[];
  /** When true, column 0 holds times (bigint ns) that the encoder formats per `epoch`/tz. */
  readonly timeColumn: boolean;
  readonly values: Cell[][];
}

export interface StatementResult {
  readonly statementId: number;
  readonly series?: readonly ResultSeries[];
  readonly error?: string;
  /** The statement's `tz('...')` zone for formatting times, or null for UTC. */
  readonly tz?: string | null;
}

/** What the query engine needs from the store (the consumer owns this interface). */
export interface QueryStore {
  databases(): string[];
  database(name: string): DbEntry | undefined;
  readRun(series: SeriesEntry, field: FieldEntry, lo: bigint, hi: bigint): Run;
  createDatabase(name: string, durationNs?: bigint): Promise<void>;
  /** How long a database keeps data, in ns (0: forever). */
  retentionOf(db: DbEntry): bigint;
  dropDatabase(name: string): Promise<void>;
  dropMeasurement(db: string, measurement: string): Promise<void>;
  deleteSeries(db: string, target: DeleteTarget): Promise<number>;
}

/** Which values DROP SERIES / DELETE remove: matching series, within an inclusive time range. */
export interface DeleteTarget {
  readonly measurements: string[] | null;
  readonly series: (s: SeriesEntry) => boolean;
  readonly start?: bigint;
  readonly end?: bigint;
}

/** Safety limits for one query. */
export interface QueryLimits {
  /** Points read plus buckets produced; a query over this fails fast. */
  readonly maxSelectPoints: number;
  /** Series a SELECT may read. */
  readonly maxSelectSeries: number;
}

/** Defaults: InfluxDB's 0 (unlimited) would let one dashboard query exhaust the gateway's memory. */
export const DEFAULT_MAX_SELECT_POINTS = 10_000_000;
export const DEFAULT_MAX_SELECT_SERIES = 100_000;
