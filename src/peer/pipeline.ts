/**
 * Applying the twin's frames as a pipeline: while the writer applies one batch, the next ones
 * are already being inflated and parsed (on other threads) and the stream keeps being read.
 *
 * Batches are handed to `apply` strictly in the order they were pushed, each as soon as it is
 * prepared and the one before it has been handed over, without waiting for that one to be
 * committed: the store runs them in that order, and the writer's group commit can then put
 * several in one transaction. After the first failure no further batch is handed over, and
 * that failure is what the reader gets (a batch already handed over may fail after it, for
 * the same reason; that is not reported twice). At most `depth` batches are in flight, which
 * is the reader's back-pressure.
 */

export class ApplyPipeline<Batch, Prepared> {
  /** Per batch in flight, oldest first: settles once the batch is handed to `apply`, or skipped. */
  private handedOver: Promise<void> | null = null;
  /** Per batch in flight, oldest first: settles once the batch is applied, failed or skipped. */
  private readonly done: Promise<void>[] = [];
  private failure: { error: unknown } | null = null;

  constructor(
    private readonly prepare: (batch: Batch) => Promise<Prepared>,
    private readonly apply: (prepared: Prepared) => Promise<void>,
    private readonly depth = 8,
  ) {}

  /** Starts preparing `batch` and queues it; waits while `depth` batches are in flight. */
  async push(batch: Batch): Promise<void> {
    this.check();
    const prepared = this.prepare(batch);
    // Its failure is reported in order, below.
    prepared.catch(() => undefined);
    const previous = this.handedOver ?? Promise.resolve();
    let applied: Promise<void> = Promise.resolve();
    const handedOver = previous.then(async () => {
      if (this.failure !== null) return;
      let ready: Prepared;
      try {
        ready = await prepared;
      } catch (error) {
        this.fail(error);
        return;
      }
      if (this.failure !== null) return;
      applied = this.apply(ready).catch((error: unknown) => this.fail(error));
    });
    this.handedOver = handedOver;
    this.done.push(handedOver.then(() => applied));
    while (this.done.length >= this.depth) await this.done.shift();
    this.check();
  }

  /** Waits until every queued batch is applied; throws the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    this.check();
  }

  /** Waits until nothing is in flight, whatever happened (before the link reconnects). */
  async settle(): Promise<void> {
    while (this.done.length > 0) await this.done.shift();
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
  }

  private check(): void {
    if (this.failure !== null) throw this.failure.error;
  }
}
