/**
 * Long reads on the main thread (a digest of a whole database, a backfill scan) give the event
 * loop a turn every few milliseconds, so requests, the writer and the link go on meanwhile.
 */
export class TimeSlice {
  private started = performance.now();

  constructor(private readonly ms: number) {}

  /** True once the slice is used up: the caller should `await pause()`. */
  get due(): boolean {
    return performance.now() - this.started >= this.ms;
  }

  /** Gives the event loop a turn (timers, I/O, requests), then starts a new slice. */
  async pause(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.started = performance.now();
  }
}
