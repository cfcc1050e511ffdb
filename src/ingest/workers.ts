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

/** Inputs at least this large are handled on a worker. */
export const OFFLOAD_BYTES = 64 * 1024;

export type WorkerJob =
  | {
      readonly id: number;
      readonly kind: "parse";
      /** Bytes as received, or text already decoded (a twin's frame). */
      readonly body: Uint8Array | string;
      readonly precision: Precision;
      readonly defaultTime: bigint;
    }
  | { readonly id: number; readonly kind: "deflate"; readonly bytes: Uint8Array };

export type WorkerReply =
  | { readonly id: number; readonly packed: PackedBatch; readonly bytes?: undefined; readonly error?: undefined }
  | { readonly id: number; readonly bytes: Uint8Array; readonly packed?: undefined; readonly error?: undefined }
  | { readonly id: number; readonly error: { readonly code: ErrorCode; readonly message: string }; readonly packed?: undefined; readonly bytes?: undefined };

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

/** Decodes (bytes) and parses a body on this thread. */
export function parseBody(body: Uint8Array | string, precision: Precision, defaultTime: bigint): ParseResult {
  return parseLines(typeof body === "string" ? body : decodeBody(body), { precision, defaultTime });
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

  /** Parses `body` (bytes as received after gzip, or text). */
  parse(body: Uint8Array | string, precision: Precision, defaultTime: bigint): Promise<ParseResult> {
    // The body is copied, not moved: the store keeps it as the frame's text. (A string counts
    // by its length in characters here, near enough to bytes for the threshold.)
    return this.run(
      body.length,
      (id) => ({ id, kind: "parse", body, precision, defaultTime }),
      () => parseBody(body, precision, defaultTime),
      (r) => unpackBatch(r.packed!, () => (typeof body === "string" ? body : decodeBody(body))),
    );
  }

  /** Compresses a frame for the twin (see peer/wire.ts compressFrame). */
  deflate(bytes: Uint8Array): Promise<Uint8Array> {
    return this.run(bytes.length, (id) => ({ id, kind: "deflate", bytes }), () => compressFrame(bytes), (r) => r.bytes!);
  }

  /** Stops the workers; jobs still running fail as the server is shutting down. */
  close(): void {
    this.closed = true;
    for (const t of this.threads) {
      t.worker?.terminate();
      this.failAll(t, new TsdbError("unavailable", "the server is shutting down"));
    }
  }

  private run<T>(size: number, job: (id: number) => WorkerJob, inPlace: () => T, finish: (r: WorkerReply) => T): Promise<T> {
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
      thread.worker!.postMessage(job(id));
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
