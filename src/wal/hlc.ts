/**
 * Hybrid logical clock. A timestamp is `physicalMs * 1024 + counter`, a safe integer until
 * the year 2248, so versions compare as plain numbers. It never goes backwards, even when
 * the wall clock does, and `observe` folds in a twin's clock so causally later writes on
 * either box always get higher versions.
 */
export type Hlc = number;

const COUNTER_SPAN = 1024;

export function hlcPhysicalMs(h: Hlc): number {
  return Math.floor(h / COUNTER_SPAN);
}

export class HybridClock {
  private last: Hlc = 0;
  constructor(private readonly nowMs: () => number = Date.now) {}

  /** A new timestamp, greater than every one issued or observed before. */
  tick(): Hlc {
    const wall = this.nowMs() * COUNTER_SPAN;
    this.last = wall > this.last ? wall : this.last + 1;
    return this.last;
  }

  /** Moves the clock past a timestamp seen elsewhere (a stored frame, the twin). */
  observe(seen: Hlc): void {
    if (seen > this.last) this.last = seen;
  }

  current(): Hlc {
    return this.last;
  }
}
