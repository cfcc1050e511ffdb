/** The one error type of tsdb-pair: a stable string code, a message for humans and a cause. */

export type ErrorCode =
  | "config" // a setting is missing or invalid
  | "bad_request" // a request is malformed (missing db, unknown precision, bad gzip, invalid UTF-8)
  | "unauthorized" // missing or wrong credentials
  | "not_found" // database or retention policy does not exist
  | "too_large" // request body over the configured limit
  | "corrupt_frame" // a frame failed its checksum or does not decode
  | "identity" // the data directory belongs to another node
  | "unavailable" // the store is shutting down or not open
  | "disk_full" // free disk space is below the floor, or the disk filled up
  | "internal"; // anything that is our fault

export class TsdbError extends Error {
  override readonly name = "TsdbError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `e` is a TsdbError with the given code. */
export function isTsdbError(e: unknown, code?: ErrorCode): e is TsdbError {
  return e instanceof TsdbError && (code === undefined || e.code === code);
}
