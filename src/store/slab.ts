/**
 * Shared column storage for many small hot buffers. JavaScriptCore makes every typed array a
 * heap object of its own, whatever its length, so a buffer of a few values that owns four or
 * five typed arrays spends more on the arrays than on the values; with a hundred thousand
 * hosts there are hundreds of thousands of buffers and their arrays would be most of the heap.
 *
 * Here a buffer rents a region of a page instead. A page is one large typed array per column,
 * cut into regions of one size class (4, 6, 8, 12, 16, ... slots); each class hands out the
 * free regions of its pages before taking another page. A buffer that outgrows its region
 * moves to one of the next class; past the largest class it gets a page of its own, of
 * exactly the size it asks for.
 *
 * A page whose regions are all free again becomes a spare, which any class can cut anew (all
 * shared pages have the same size). Spares are kept for a while because flushes empty many
 * buffers at once and they soon refill: giving the memory back to the system only to fault
 * it in again made pushes about half as fast. A spare unused for `spareMs` is let go (checked
 * when a region is taken), so the memory of a burst of series returns once they are flushed.
 *
 * There are two slabs, each with pages of one kind (see hot.ts for how a buffer uses them):
 * - row pages, a slot per buffered row: time (int64, also seen as 32-bit words for comparing
 *   without bigints, see words.ts), version clock (a double: clocks are safe integers, see
 *   wal/hlc.ts, and storing a double makes no bigint), which of the buffer's columns the row
 *   has (a 32-bit mask) and origin (uint16);
 * - value pages, a slot per value: 8 bytes seen as float64, int64 or uint64 as the column's
 *   type wants.
 */

export type PageKind = "rows" | "values";

/** Slots per shared page (a row page is then about 360 KB, a value page 128 KB). */
const PAGE_SLOTS = 16_384;
const SMALLEST_REGION = 4;
/**
 * Up to this size, classes go in half steps (4, 6, 8, 12, ... 48, 64); above it they double.
 * With many series most buffers stop at a few rows, where doubling classes would leave a
 * quarter of each region empty on average; large buffers are few, and finer steps there would
 * only add copies.
 */
const FINE_STEPS_UP_TO = 64;
/** Regions of the largest class that fit one page: larger buffers get pages of their own. */
const MIN_REGIONS_PER_PAGE = 4;
/** Copies of this many slots or more go through typed-array views (see copyRows). */
const COPY_BY_VIEW_FROM = 64;
/** How long an empty page is kept for reuse before it is let go. */
const SPARE_MS = 60_000;

/** One large typed array per column of its kind, cut into regions of one size class (or one buffer's own). */
export class SlabPage {
  // Row pages: time, clock, column mask, origin. Empty in value pages.
  readonly times: BigInt64Array;
  readonly timesHi: Int32Array;
  readonly timesLo: Uint32Array;
  readonly hlcs: Float64Array;
  /** Bit c set: the row has a value in column c. Signed, so the JIT keeps every mask an integer. */
  readonly masks: Int32Array;
  readonly origins: Uint16Array;
  // Value pages: one 8-byte slot seen as each type. Empty in row pages.
  readonly floats: Float64Array;
  readonly ints: BigInt64Array;
  readonly uints: BigUint64Array;
  /** The value column as 32-bit words, for copying values of any type bit for bit. */
  readonly valueWords: Int32Array;
  readonly slots: number;
  /** The class the page is cut for; null for a page of one buffer's own (or none). */
  sizeClass: SizeClass | null = null;
  regionSize: number;
  regions: number;
  /** Regions handed out and not given back. */
  used = 0;
  /** Position in its class's list of pages with room, or -1. */
  roomAt = -1;
  /** When (ms, the slab's clock) the page became a spare. */
  emptiedAt = 0;
  /** Regions from this one on have never been handed out since the page was cut. */
  private untouched = 0;
  /** Starts of the regions given back, used as a stack. */
  private readonly freed: number[] = [];

  /** A page of `slots` slots, one region (a buffer's own, or none) until it is cut for a class. */
  constructor(slots: number, kind: PageKind) {
    const rows = kind === "rows" ? slots : 0;
    const values = kind === "values" ? slots : 0;
    const times = new ArrayBuffer(rows * 8);
    const data = new ArrayBuffer(values * 8);
    this.times = new BigInt64Array(times);
    this.timesHi = new Int32Array(times);
    this.timesLo = new Uint32Array(times);
    this.hlcs = new Float64Array(rows);
    this.masks = new Int32Array(rows);
    this.origins = new Uint16Array(rows);
    this.floats = new Float64Array(data);
    this.ints = new BigInt64Array(data);
    this.uints = new BigUint64Array(data);
    this.valueWords = new Int32Array(data);
    this.slots = slots;
    this.regionSize = slots;
    this.regions = slots === 0 ? 0 : 1;
  }

  /** Makes the (empty) page regions of `c`. */
  cut(c: SizeClass): void {
    this.sizeClass = c;
    this.regionSize = c.regionSize;
    this.regions = Math.floor(this.slots / c.regionSize);
    this.untouched = 0;
    this.freed.length = 0;
  }

  get full(): boolean {
    return this.used === this.regions;
  }

  /** Hands out a free region; returns its start. The page must not be full. */
  take(): number {
    this.used++;
    const c = this.sizeClass;
    if (c !== null) {
      c.used++;
      if (this.full) c.removeRoom(this);
    }
    return this.freed.pop() ?? this.untouched++ * this.regionSize;
  }

  /** Takes back the region starting at `base` (of a page cut for a class). */
  give(base: number): void {
    const c = this.sizeClass!;
    if (this.full) c.addRoom(this);
    this.used--;
    c.used--;
    this.freed.push(base);
  }
}

/** The shared pages cut into regions of one size. */
export class SizeClass {
  /** Pages with at least one free region; regions are taken from the last one. */
  readonly withRoom: SlabPage[] = [];
  pages = 0;
  /** Regions handed out and not given back. */
  used = 0;

  constructor(readonly regionSize: number) {}

  addRoom(page: SlabPage): void {
    page.roomAt = this.withRoom.length;
    this.withRoom.push(page);
  }

  removeRoom(page: SlabPage): void {
    const last = this.withRoom.pop()!;
    if (last !== page) {
      this.withRoom[page.roomAt] = last;
      last.roomAt = page.roomAt;
    }
    page.roomAt = -1;
  }
}

/** The page of buffers that hold no values: no regions, no room. */
export const NO_PAGE = new SlabPage(0, "rows");

export interface SlabStats {
  /** Shared pages cut for a class. */
  readonly pages: number;
  /** Empty shared pages kept for reuse. */
  readonly spares: number;
  /** Regions handed out and not given back, pages of one buffer's own included. */
  readonly regionsInUse: number;
}

/** The size classes and their pages, the spares, and the region each holder has. */
export class Slab {
  /** Classes by region size. */
  private readonly classes = new Map<number, SizeClass>();
  private readonly largestShared: number;
  /** Empty pages, oldest first; reused newest first (their memory is the likeliest still mapped). */
  private readonly spares: SlabPage[] = [];
  private ownPages = 0;
  /** The latest time seen (ms), from the callers: the slab reads no clock of its own. */
  private nowMs = 0;
  /**
   * The region each holder has now, so that a holder collected without giving its region
   * back (the store drops the buffers of dropped series without clearing them) does not keep
   * it forever: the registry gives it back. Registering without an unregister token is what
   * keeps this cheap in JavaScriptCore (about 20 bytes and 40 ns per holder).
   */
  private readonly heldPages: SlabPage[] = [];
  private readonly heldBases: number[] = [];
  private readonly freeHolders: number[] = [];
  private readonly registry = new FinalizationRegistry<number>((holder) => this.forget(holder));

  constructor(
    readonly kind: PageKind,
    readonly pageSlots = PAGE_SLOTS,
    readonly spareMs = SPARE_MS,
  ) {
    this.largestShared = pageSlots / MIN_REGIONS_PER_PAGE;
  }

  /**
   * A page with a free region of at least `size` slots (rounded up to a class size, see
   * regionSizeFor, or exactly `size` in a page of its own when larger than the shared pages'
   * largest class); the caller takes the region at once with `take()` and records it with `hold`.
   */
  pageWithRoom(size: number, nowMs: number): SlabPage {
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    this.letOldSparesGo();
    const regionSize = regionSizeFor(size);
    if (regionSize > this.largestShared) {
      this.ownPages++;
      return new SlabPage(size, this.kind);
    }
    let c = this.classes.get(regionSize);
    if (c === undefined) {
      c = new SizeClass(regionSize);
      this.classes.set(regionSize, c);
    }
    // Checked by length: reading index -1 of an empty array is a slow property lookup in JSC.
    if (c.withRoom.length > 0) return c.withRoom[c.withRoom.length - 1]!;
    const page = this.spares.pop() ?? new SlabPage(this.pageSlots, this.kind);
    page.cut(c);
    c.pages++;
    c.addRoom(page);
    return page;
  }

  /** Gives back the region at `base` of `page` (NO_PAGE: nothing). */
  give(page: SlabPage, base: number): void {
    if (page === NO_PAGE) return;
    const c = page.sizeClass;
    if (c === null) {
      // A page of one buffer's own: it goes with its last reference.
      this.ownPages--;
      return;
    }
    page.give(base);
    if (page.used === 0) {
      c.removeRoom(page);
      c.pages--;
      page.emptiedAt = this.nowMs;
      this.spares.push(page);
    }
  }

  /** A number that stands for `owner` in `hold`; when the owner is collected, the region it holds is given back. */
  holder(owner: object): number {
    const holder = this.freeHolders.pop() ?? this.heldPages.length;
    this.heldPages[holder] = NO_PAGE;
    this.heldBases[holder] = 0;
    this.registry.register(owner, holder);
    return holder;
  }

  /** Records the region `holder` has now (NO_PAGE: none). */
  hold(holder: number, page: SlabPage, base: number): void {
    this.heldPages[holder] = page;
    this.heldBases[holder] = base;
  }

  /** How many pages and regions are in use (for tests and measurements). */
  stats(): SlabStats {
    let pages = 0;
    let regionsInUse = this.ownPages;
    for (const c of this.classes.values()) {
      pages += c.pages;
      regionsInUse += c.used;
    }
    return { pages, spares: this.spares.length, regionsInUse };
  }

  private letOldSparesGo(): void {
    const cutoff = this.nowMs - this.spareMs;
    let old = 0;
    while (old < this.spares.length && this.spares[old]!.emptiedAt <= cutoff) old++;
    if (old > 0) this.spares.splice(0, old);
  }

  private forget(holder: number): void {
    this.give(this.heldPages[holder]!, this.heldBases[holder]!);
    this.heldPages[holder] = NO_PAGE;
    this.freeHolders.push(holder);
  }
}

/**
 * Copies `n` rows (time, clock, mask; origins only if asked) between row regions, bit for
 * bit. Short copies go word by word: `subarray` would make a view per column, which cost more
 * than the copy itself when many buffers move from 4 to 6 to 8 rows.
 */
export function copyRows(from: SlabPage, fromBase: number, to: SlabPage, toBase: number, n: number, origins: boolean): void {
  if (n >= COPY_BY_VIEW_FROM) {
    const end = fromBase + n;
    to.times.set(from.times.subarray(fromBase, end), toBase);
    to.hlcs.set(from.hlcs.subarray(fromBase, end), toBase);
    to.masks.set(from.masks.subarray(fromBase, end), toBase);
    if (origins) to.origins.set(from.origins.subarray(fromBase, end), toBase);
    return;
  }
  // timesHi is the times' memory as signed words, like valueWords for the values: signed, so
  // every word stays a small integer to the JIT (unsigned words past 2^31 would be doubles).
  for (let k = 0; k < 2 * n; k++) to.timesHi[2 * toBase + k] = from.timesHi[2 * fromBase + k]!;
  // Clocks are safe integers, never NaN, so doubles copy exactly.
  for (let k = 0; k < n; k++) {
    to.hlcs[toBase + k] = from.hlcs[fromBase + k]!;
    to.masks[toBase + k] = from.masks[fromBase + k]!;
  }
  if (origins) for (let k = 0; k < n; k++) to.origins[toBase + k] = from.origins[fromBase + k]!;
}

/** Copies `n` value slots between value regions bit for bit (an int64 that looks like a NaN stays itself). */
export function copySlots(from: SlabPage, fromBase: number, to: SlabPage, toBase: number, n: number): void {
  if (n >= COPY_BY_VIEW_FROM) {
    to.valueWords.set(from.valueWords.subarray(2 * fromBase, 2 * (fromBase + n)), 2 * toBase);
    return;
  }
  for (let k = 0; k < 2 * n; k++) to.valueWords[2 * toBase + k] = from.valueWords[2 * fromBase + k]!;
}

/** The region size for `n` slots: 4, 6, 8, 12, 16, 24, 32, 48, 64, then powers of two. */
export function regionSizeFor(n: number): number {
  if (n <= SMALLEST_REGION) return SMALLEST_REGION;
  const pow = 1 << (32 - Math.clz32(n - 1)); // n < 2^30: far more than a buffer holds
  const between = (pow >> 2) * 3;
  return pow <= FINE_STEPS_UP_TO && n <= between ? between : pow;
}

/** The slabs every hot buffer uses: one for its rows, one for its values. */
export const rowSlab = new Slab("rows");
export const valueSlab = new Slab("values");
