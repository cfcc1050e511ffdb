/** Lets timers and I/O (requests, the writer's turn) run before the caller goes on. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Long work on the main thread (a query, a digest of a whole database, a backfill scan) gives
 * the event loop a turn every few milliseconds, so requests, the writer and the link go on
 * meanwhile.
 */
export class TimeSlice {
  private started = performance.now();

  constructor(
    private readonly ms: number,
    private readonly yieldTurn: () => Promise<void> = yieldToEventLoop,
  ) {}

  /** True once the slice is used up: the caller should `await pause()`. */
  get due(): boolean {
    return performance.now() - this.started >= this.ms;
  }

  /** Gives the event loop a turn, then starts a new slice. */
  async pause(): Promise<void> {
    await this.yieldTurn();
    this.started = performance.now();
  }
}
