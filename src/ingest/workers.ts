/**
 * Worker threads for the byte-heavy work around the single writer: decoding and parsing
 * request bodies and the twin's frames, and deflating the frames sent to the twin. Parsing line
 * protocol costs about as much as storing the points, and compressing a frame for the twin
 * as much again; the store has one writer on the main thread, so with this work on other
 * cores the writer is free for commits and hot buffers. Large inputs (what Telegraf and
 * batching gateways send, and the frames made of them) go to a worker; small ones are handled
 * in place, where the round trip would cost more than the work.
 *
 * Workers are plain web Workers (Bun and Deno alike). A worker that cannot load is logged and
 * bypassed (everything is done in place); one that dies fails only the jobs it held (500,
 * nothing stored) and is replaced.
 */
import { type ErrorCode, TsdbError } from "../errors.ts";
import { decodeBody } from "../http/body.ts";
import { type PackedBatch, unpackBatch } from "../lineprotocol/packed.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import type { ParseResult, Precision } from "../lineprotocol/types.ts";
import type { Logger } from "../log.ts";
import { compressFrame } from "../peer/wire.ts";
import { type CompressedLines, compressLines, inflateLines, isCompressed } from "../wal/frame.ts";

/** Inputs at least this large are handled on a worker. */
export const OFFLOAD_BYTES = 64 * 1024;

export type WorkerJob =
  | {
      readonly id: number;
      readonly kind: "parse";
      /** Bytes as received, text already decoded, or a twin's compressed frame lines. */
      readonly body: Uint8Array | string | CompressedLines;
      readonly precision: Precision;
      readonly defaultTime: bigint;
      /** Also compress the body for its frame, when every line parses (see wal/frame.ts). */
      readonly compress: boolean;
      /** The body's buffer was moved here: send it back unless it comes back compressed. */
      readonly moved: boolean;
    }
  | { readonly id: number; readonly kind: "deflate"; readonly bytes: Uint8Array };

export type WorkerReply =
  | {
      readonly id: number;
      readonly packed: PackedBatch;
      readonly compressed?: CompressedLines;
      /** A moved body, moved back. */
      readonly body?: Uint8Array;
      readonly bytes?: undefined;
      readonly error?: undefined;
    }
  | {
      readonly id: number;
      readonly bytes: Uint8Array;
      readonly packed?: undefined;
      readonly compressed?: undefined;
      readonly body?: undefined;
      readonly error?: undefined;
    }
  | {
      readonly id: number;
      readonly error: { readonly code: ErrorCode; readonly message: string };
      readonly packed?: undefined;
      readonly compressed?: undefined;
      readonly body?: undefined;
      readonly bytes?: undefined;
    };

interface Job {
  /** Does the job on this thread (the worker could not load). */
  readonly inPlace: () => unknown;
  /** Turns the worker's answer into the result. */
  readonly finish: (reply: WorkerReply) => unknown;
  readonly resolve: (result: unknown) => void;
  readonly reject: (e: unknown) => void;
}

interface Thread {
  worker: Worker | null;
  readonly jobs: Map<number, Job>;
  /** True once the worker has answered: it loaded and works. */
  answered: boolean;
}

/**
 * Where the worker's module is: beside this file when running from source; in the single
 * executable, in Bun's embedded file system, where build.ts bundles it as an entry point of
 * its own named by its path under src/.
 */
function workerUrl(): string {
  if (import.meta.url.includes("/$bunfs/")) return "/$bunfs/root/ingest/worker.js";
  return new URL("./worker.ts", import.meta.url).href;
}

/** A request body's parse result, with what its frame stores if every line is accepted. */
export type ParsedRequest = ParseResult & {
  /** The body as received, or compressed (when a worker parsed it and every line parsed). */
  readonly lines: Uint8Array | CompressedLines;
};

/** The text of a body: bytes decoded (a bad request if not UTF-8), compressed lines inflated first. */
export function bodyText(body: Uint8Array | string | CompressedLines): string {
  if (typeof body === "string") return body;
  return decodeBody(isCompressed(body) ? inflateLines(body) : body);
}

/** Decodes (bytes) and parses a body on this thread. */
export function parseBody(body: Uint8Array | string | CompressedLines, precision: Precision, defaultTime: bigint): ParseResult {
  return parseLines(bodyText(body), { precision, defaultTime });
}

/** Parses a request body on this thread; its frame would store the body as it is. */
export function parseRequestBody(body: Uint8Array, precision: Precision, defaultTime: bigint): ParsedRequest {
  return { ...parseBody(body, precision, defaultTime), lines: body };
}

export class WorkerPool {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closed = false;
  /** Jobs a worker did (the rest were done in place). */
  offloaded = 0;

  constructor(
    size: number,
    private readonly log: Logger,
  ) {
    for (let i = 0; i < size; i++) {
      const thread: Thread = { worker: null, jobs: new Map(), answered: false };
      this.start(thread);
      this.threads.push(thread);
    }
  }

  /** Parses `body` (bytes, text, or a twin's compressed lines); the caller keeps `body`. */
  parse(body: Uint8Array | string | CompressedLines, precision: Precision, defaultTime: bigint): Promise<ParseResult> {
    // The body is copied, not moved. (A string counts by its length in characters here, near
    // enough to bytes for the threshold.)
    const size = typeof body === "string" || !isCompressed(body) ? body.length : body.textBytes;
    return this.run<ParseResult>(
      size,
      (id) => ({ job: { id, kind: "parse", body, precision, defaultTime, compress: false, moved: false } }),
      () => parseBody(body, precision, defaultTime),
      (r) => unpackBatch(r.packed!, () => bodyText(body)),
    );
  }

  /**
   * Parses a request body (bytes as received, after gzip), which is handed over: a caller
   * uses the result's `lines`, never `body` again. On a worker the body comes back compressed
   * when every line parsed: compressing there costs the worker about a fifth of the parse,
   * and saves the writer most of the cost of storing the frame. Its buffer is moved to the
   * worker rather than copied, once the worker has answered (a worker that never loads hands
   * its jobs back to be done in place, which needs the bytes here).
   */
  parseRequest(body: Uint8Array, precision: Precision, defaultTime: bigint): Promise<ParsedRequest> {
    const ownsBuffer = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
    return this.run<ParsedRequest>(
      body.length,
      (id, proven) => {
        const moved = proven && ownsBuffer;
        const job: WorkerJob = { id, kind: "parse", body, precision, defaultTime, compress: true, moved };
        return { job, transfer: moved ? [body.buffer as ArrayBuffer] : undefined };
      },
      () => parseRequestBody(body, precision, defaultTime),
      (r) => {
        const lines = r.compressed ?? r.body ?? body;
        return { ...unpackBatch(r.packed!, () => bodyText(lines)), lines };
      },
    );
  }

  /** Compresses a frame for the twin (see peer/wire.ts compressFrame). */
  deflate(bytes: Uint8Array): Promise<Uint8Array> {
    return this.run(bytes.length, (id) => ({ job: { id, kind: "deflate", bytes } }), () => compressFrame(bytes), (r) => r.bytes!);
  }

  /** Stops the workers; jobs still running fail as the server is shutting down. */
  close(): void {
    this.closed = true;
    for (const t of this.threads) {
      t.worker?.terminate();
      this.failAll(t, new TsdbError("unavailable", "the server is shutting down"));
    }
  }

  /**
   * Does a job on the least busy worker, or in place when it is small or there is none.
   * `job` builds the message; `proven` says the worker has answered before (it loads and works).
   */
  private run<T>(
    size: number,
    job: (id: number, proven: boolean) => { job: WorkerJob; transfer?: ArrayBuffer[] },
    inPlace: () => T,
    finish: (r: WorkerReply) => T,
  ): Promise<T> {
    if (size < OFFLOAD_BYTES || this.threads.length === 0 || this.closed) {
      try {
        return Promise.resolve(inPlace());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    let thread = this.threads[0]!;
    for (const t of this.threads) if (t.jobs.size < thread.jobs.size) thread = t;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      thread.jobs.set(id, { inPlace, finish, resolve: resolve as (r: unknown) => void, reject });
      const { job: message, transfer } = job(id, thread.answered);
      thread.worker!.postMessage(message, transfer ?? []);
    });
  }

  private start(thread: Thread): void {
    const worker = new Worker(workerUrl(), { type: "module" });
    thread.worker = worker;
    thread.answered = false;
    worker.onmessage = (e: MessageEvent<WorkerReply>) => this.reply(thread, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      if (thread.answered && !this.closed) {
        // It worked before: what it held fails (nothing of it was stored), a new one takes over.
        this.log.error("worker thread failed; starting another", { error: e.message });
        this.failAll(thread, new TsdbError("internal", `the worker thread failed: ${e.message}`));
        this.start(thread);
        return;
      }
      // It never worked (it cannot load here): work on this thread from now on, these jobs too.
      this.log.warn("worker threads unavailable; parsing and compressing on the main thread", { error: e.message });
      this.threads.splice(this.threads.indexOf(thread), 1);
      for (const job of thread.jobs.values()) {
        try {
          job.resolve(job.inPlace());
        } catch (err) {
          job.reject(err);
        }
      }
      thread.jobs.clear();
    };
  }

  private reply(thread: Thread, r: WorkerReply): void {
    thread.answered = true;
    const job = thread.jobs.get(r.id);
    if (job === undefined) return;
    thread.jobs.delete(r.id);
    this.offloaded++;
    if (r.error !== undefined) job.reject(new TsdbError(r.error.code, r.error.message));
    else job.resolve(job.finish(r));
  }

  private failAll(thread: Thread, err: TsdbError): void {
    for (const job of thread.jobs.values()) job.reject(err);
    thread.jobs.clear();
  }
}
