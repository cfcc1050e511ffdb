/**
 * Copying the write-ahead log into the database file (SQLite's checkpoint) on a thread of its
 * own. SQLite does it inside whichever commit makes the log long enough: with the writer's
 * 64 MB log that commit took 70-125 ms, a stall that every request and the twin's frames
 * waited behind. Here a second connection, on a worker thread, checkpoints every
 * CHECKPOINT_EVERY_MS while commits come in, so the log rarely gets that long; the writer's
 * own checkpoint stays as the backstop, and then finds little left to copy. A thread that
 * cannot start or fails is logged, and the writer checkpoints alone, as before.
 */
import type { Logger } from "../log.ts";

/** How often the thread checkpoints while commits come in. */
export const CHECKPOINT_EVERY_MS = 2000;
/** How long a close waits for the thread to let go of the file. */
const CLOSE_WAIT_MS = 5000;

export type CheckpointJob =
  | { readonly kind: "open"; readonly file: string; readonly synchronous: string }
  | { readonly kind: "checkpoint" }
  | { readonly kind: "close" };

export type CheckpointReply =
  | { readonly kind: "opened" }
  | { readonly kind: "checkpointed"; readonly pages: number; readonly error?: string }
  | { readonly kind: "closed" }
  | { readonly kind: "failed"; readonly error: string };

/** Where the worker's module is: beside this file, or bundled in the single executable (see build.ts). */
function workerUrl(): string {
  if (import.meta.url.includes("/$bunfs/")) return "/$bunfs/root/store/checkpoint-worker.js";
  return new URL("./checkpoint-worker.ts", import.meta.url).href;
}

export class Checkpointer {
  private worker: Worker | null = null;
  /** Runs the rounds once the thread has the file open (null before, and after close or failure). */
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Set by close: an answer that comes after it starts nothing. */
  private stopping = false;
  private busy = false;
  private dirty = false;
  private closed: (() => void) | null = null;
  /** The last checkpoint's error, logged once while it repeats. */
  private lastError: string | null = null;
  private copied = 0;

  /** Starts the thread on `file` (the writer's `synchronous` setting, as SQLite spells it). */
  constructor(
    file: string,
    synchronous: string,
    private readonly log: Logger,
  ) {
    try {
      const worker = new Worker(workerUrl(), { type: "module" });
      this.worker = worker;
      worker.onmessage = (e: MessageEvent<CheckpointReply>) => this.reply(e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.fail(e.message);
      };
      worker.postMessage({ kind: "open", file, synchronous } satisfies CheckpointJob);
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  /** Log pages the thread's checkpoints copied into the file. */
  get pagesCopied(): number {
    return this.copied;
  }

  /** Notes that a commit added to the log: the next round checkpoints. */
  wrote(): void {
    this.dirty = true;
  }

  /** Stops the thread once it has let go of the file (at most CLOSE_WAIT_MS). */
  async close(): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const worker = this.worker;
    if (worker === null) return;
    await new Promise<void>((resolve) => {
      const giveUp = setTimeout(resolve, CLOSE_WAIT_MS);
      this.closed = () => {
        clearTimeout(giveUp);
        resolve();
      };
      worker.postMessage({ kind: "close" } satisfies CheckpointJob);
    });
    worker.terminate();
    this.worker = null;
  }

  private reply(r: CheckpointReply): void {
    if (r.kind === "opened") {
      if (this.stopping) return;
      this.timer = setInterval(() => this.round(), CHECKPOINT_EVERY_MS);
    } else if (r.kind === "checkpointed") {
      this.busy = false;
      if (r.error !== undefined) {
        if (r.error !== this.lastError) this.log.warn("the checkpoint thread's checkpoint failed; trying again", { error: r.error });
        this.lastError = r.error;
        return;
      }
      this.lastError = null;
      this.copied += r.pages;
    } else if (r.kind === "closed") {
      this.closed?.();
    } else this.fail(r.error);
  }

  private round(): void {
    if (this.busy || !this.dirty || this.worker === null) return;
    this.busy = true;
    this.dirty = false;
    this.worker.postMessage({ kind: "checkpoint" } satisfies CheckpointJob);
  }

  private fail(error: string): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.worker?.terminate();
    this.worker = null;
    this.closed?.();
    if (!this.stopping) this.log.warn("checkpoint worker thread unavailable; the writer checkpoints the log itself", { error });
  }
}
