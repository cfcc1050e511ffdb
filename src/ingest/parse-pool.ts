/**
 * Parsing request bodies on other threads. Decoding and parsing line protocol costs about
 * as much as storing the points, and the store has one writer on the main thread: with the
 * parse on a second core, the writer is free for commits and hot buffers. Large bodies (what
 * Telegraf and batching gateways send) go to a worker; small ones are parsed in place, where
 * the round trip would cost more than the parse.
 *
 * Workers are plain web Workers (Bun and Deno alike). A worker that dies fails only the bodies
 * it held (500, nothing stored) and is replaced.
 */
import { type ErrorCode, TsdbError } from "../errors.ts";
import { decodeBody } from "../http/body.ts";
import { type PackedBatch, unpackBatch } from "../lineprotocol/packed.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import type { ParseResult, Precision } from "../lineprotocol/types.ts";
import type { Logger } from "../log.ts";

/** Bodies at least this large are parsed on a worker. */
export const OFFLOAD_BYTES = 64 * 1024;

export interface ParseJob {
  readonly id: number;
  /** Bytes as received, or text already decoded (a twin's frame). */
  readonly body: Uint8Array | string;
  readonly precision: Precision;
  readonly defaultTime: bigint;
}

export type ParseReply =
  | { readonly id: number; readonly packed: PackedBatch; readonly error?: undefined }
  | { readonly id: number; readonly packed?: undefined; readonly error: { readonly code: ErrorCode; readonly message: string } };

interface Job {
  readonly body: Uint8Array | string;
  readonly precision: Precision;
  readonly defaultTime: bigint;
  readonly resolve: (r: ParseResult) => void;
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
  if (import.meta.url.includes("/$bunfs/")) return "/$bunfs/root/ingest/parse-worker.js";
  return new URL("./parse-worker.ts", import.meta.url).href;
}

/** Decodes (bytes) and parses a body on this thread. */
export function parseBody(body: Uint8Array | string, precision: Precision, defaultTime: bigint): ParseResult {
  return parseLines(typeof body === "string" ? body : decodeBody(body), { precision, defaultTime });
}

export class ParsePool {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closed = false;
  /** Bodies a worker parsed (the rest were parsed in place). */
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

  /** Parses `body` (bytes as received after gzip, or text), on a worker when it is large. */
  parse(body: Uint8Array | string, precision: Precision, defaultTime: bigint): Promise<ParseResult> {
    if (body.length < OFFLOAD_BYTES || this.threads.length === 0 || this.closed) {
      try {
        return Promise.resolve(parseBody(body, precision, defaultTime));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    let thread = this.threads[0]!;
    for (const t of this.threads) if (t.jobs.size < thread.jobs.size) thread = t;
    const id = this.nextId++;
    return new Promise<ParseResult>((resolve, reject) => {
      thread.jobs.set(id, { body, precision, defaultTime, resolve, reject });
      // The body is copied, not moved: the store keeps it as the frame's text. (A string
      // counts by its length in characters here, near enough to bytes for the threshold.)
      const job: ParseJob = { id, body, precision, defaultTime };
      thread.worker!.postMessage(job);
    });
  }

  /** Stops the workers; bodies still being parsed fail as the server is shutting down. */
  close(): void {
    this.closed = true;
    for (const t of this.threads) {
      t.worker?.terminate();
      this.failAll(t, new TsdbError("unavailable", "the server is shutting down"));
    }
  }

  private start(thread: Thread): void {
    const worker = new Worker(workerUrl(), { type: "module" });
    thread.worker = worker;
    thread.answered = false;
    worker.onmessage = (e: MessageEvent<ParseReply>) => this.reply(thread, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      if (thread.answered && !this.closed) {
        // It worked before: what it held fails (nothing of it was stored), a new one takes over.
        this.log.error("parse worker failed; starting another", { error: e.message });
        this.failAll(thread, new TsdbError("internal", `the parse worker failed: ${e.message}`));
        this.start(thread);
        return;
      }
      // It never worked (it cannot load here): parse on this thread from now on, these bodies too.
      this.log.warn("parse worker unavailable; parsing on the main thread", { error: e.message });
      this.threads.splice(this.threads.indexOf(thread), 1);
      for (const job of thread.jobs.values()) {
        try {
          job.resolve(parseBody(job.body, job.precision, job.defaultTime));
        } catch (err) {
          job.reject(err);
        }
      }
      thread.jobs.clear();
    };
  }

  private reply(thread: Thread, r: ParseReply): void {
    thread.answered = true;
    const job = thread.jobs.get(r.id);
    if (job === undefined) return;
    thread.jobs.delete(r.id);
    this.offloaded++;
    if (r.error !== undefined) job.reject(new TsdbError(r.error.code, r.error.message));
    else job.resolve(unpackBatch(r.packed, () => (typeof job.body === "string" ? job.body : decodeBody(job.body))));
  }

  private failAll(thread: Thread, err: TsdbError): void {
    for (const job of thread.jobs.values()) job.reject(err);
    thread.jobs.clear();
  }
}
