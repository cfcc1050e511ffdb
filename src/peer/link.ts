/**
 * The pulling side of the peer link. One long-lived request to the twin asks for its frames
 * after our stored cursor; frames are applied (checked, stored, cursor advanced) in one
 * transaction per batch. The cursor is re-read from the store after every error, never
 * trusted from memory. When the twin no longer has the frames we need (a gap), or its store
 * is a new incarnation (disk replaced, restored), the data is refilled from its storage.
 */
import { DEFAULT_CATCH_UP_BYTES } from "../config.ts";
import { TsdbError, isTsdbError } from "../errors.ts";
import type { ParseResult, Precision } from "../lineprotocol/types.ts";
import type { Logger } from "../log.ts";
import type { BackfillRecord, Store, TwinCursor, TwinIdentity } from "../store/store.ts";
import { decodeFrame, type Frame, type WriteOp } from "../wal/frame.ts";
import { hlcPhysicalMs } from "../wal/hlc.ts";
import { formatPosition } from "../wal/position.ts";
import { ApplyPipeline } from "./pipeline.ts";
import { digestReport, PEER_NODE_HEADER, PEER_SECRET_HEADER, type DigestReport, type RepairRange } from "./routes.ts";
import { createPeerFetch, type PeerFetch } from "./transport.ts";
import { inflateFrame, MessageReader, type Hello, type Message } from "./wire.ts";

/** A frame as it came off the wire. */
interface WireFrame {
  readonly bytes: Uint8Array;
  readonly compressed: boolean;
}

/** A batch of frames inflated, with their points parsed where that could be done ahead. */
interface PreparedFrames {
  readonly frames: Uint8Array[];
  readonly parsed?: Array<ParseResult | undefined>;
}

export type LinkState = "CONNECTING" | "STREAMING" | "BACKFILLING" | "SEEDING" | "PAUSED" | "ERROR" | "STOPPED";

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/**
 * Backfill records applied per transaction, at most (and at most BACKFILL_BATCH_BYTES of
 * chunk bytes). A transaction writes each index page its rows land on once, and the records
 * of one flush spread over every series: catching up 62,500 small chunks wrote 56-96 MB to
 * the store with 500 a transaction, 43-49 MB with 2,000. Much larger batches held the
 * sender back while the receiver applied one.
 */
const BACKFILL_BATCH = 2000;
const BACKFILL_BATCH_BYTES = 4 << 20;

/** Backfill records gathered for one transaction (see BACKFILL_BATCH). */
class BackfillBatch {
  private records: BackfillRecord[] = [];
  private bytes = 0;

  /** Adds a record; true once the batch is full. */
  add(r: BackfillRecord): boolean {
    this.records.push(r);
    this.bytes += r.chunk.times.length + r.chunk.vals.length + r.chunk.hlcs.length + (r.chunk.origins?.length ?? 0);
    return this.records.length >= BACKFILL_BATCH || this.bytes >= BACKFILL_BATCH_BYTES;
  }

  get size(): number {
    return this.records.length;
  }

  /** The records gathered, leaving the batch empty. */
  take(): BackfillRecord[] {
    const records = this.records;
    this.records = [];
    this.bytes = 0;
    return records;
  }
}
/** Clock offsets beyond this are flagged in status. */
export const CLOCK_WARN_MS = 1000;
/** How often every twin address is probed, to tell "twin down" from "one ring down". */
const PROBE_EVERY_MS = 5000;
/**
 * The twin's streams (frames, and backfills) carry a heartbeat at least every second
 * (HEARTBEAT_MS): this long without a byte, the connection is dead even if TCP does not know
 * it. A twin that lost power or rebooted leaves our end of the connection open, and since we
 * only read from it, nothing would ever tell us: its writes would stop reaching us for good.
 */
export const STREAM_IDLE_MS = 10_000;
/**
 * How long a stream's request may wait for the twin's answer to begin (its streams answer at
 * once). An address that takes the connection and never answers (a hung process, a ring that
 * drops packets) would otherwise hold the link there, and never let it try the other ring.
 */
export const OPEN_TIMEOUT_MS = 10_000;

export interface PeerLinkOptions {
  readonly store: Store;
  /** Base URLs of the twin, one per network ring (e.g. https://iotdb-2:8086). */
  readonly addresses: readonly string[];
  readonly secret: string;
  readonly log: Logger;
  /** How requests reach the twin (trusting --peer-ca); createPeerFetch() with the default roots when absent. */
  readonly fetch?: PeerFetch;
  readonly nowMs?: () => number;
  /**
   * Parses a write frame's lines, on another thread where there is one (the worker pool):
   * applying the twin's frames then costs the writer about what storing costs, not what
   * parsing costs too. Without it the store parses them itself.
   */
  readonly parse?: (lines: WriteOp["lines"], precision: Precision, defaultTime: bigint) => Promise<ParseResult>;
  /** Catch up from the twin's storage when this far behind (DEFAULT_CATCH_UP_BYTES when absent). */
  readonly catchUpBytes?: number;
}

export interface AddressStatus {
  readonly url: string;
  reachable: boolean | null;
  lastOkMs: number | null;
  lastError: string | null;
}

export interface PeerStatus {
  readonly state: LinkState;
  readonly paused: boolean;
  readonly twin: { node_id: string | null; incarnation: string | null; addresses: AddressStatus[]; active_address: string | null };
  readonly my_latest_lsn: number;
  readonly twin_applied_my_lsn: number | null;
  readonly i_applied_twin_lsn: number | null;
  readonly twin_latest_lsn: number | null;
  readonly lag: { frames: number | null; bytes: number | null; seconds: number | null };
  readonly gaps: ReturnType<Store["gapsFor"]>;
  /**
   * same_point: one point written on both boxes (settled by version); type: values dropped for
   * a field type clash; types_settled: fields the boxes wrote with two types at once, settled
   * on both by keeping the type written first.
   */
  readonly conflicts: { same_point: number; type: number; types_settled: number; sample: unknown };
  readonly clock_offset_ms: number | null;
  readonly clock_warning: boolean;
  readonly last_error: string | null;
  readonly last_contact_ms: number | null;
  readonly counters: { frames_applied: number; frames_refused: number; backfill_values: number; reconnects: number };
  /** Streaming with nothing left to apply in either direction. */
  readonly in_sync: boolean;
}

export interface BucketDifference {
  readonly db: string;
  readonly measurement: string;
  /** Bucket start, ns (string: exact). */
  readonly start: string;
  readonly mine: { count: number; sum: number } | null;
  readonly twin: { count: number; sum: number } | null;
}

export interface VerifyReport {
  readonly differences: BucketDifference[];
  readonly repaired: boolean;
  readonly remaining: BucketDifference[];
}

/** Buckets whose digests differ between two reports (missing on one side counts). */
export function diffDigests(mine: DigestReport, theirs: DigestReport, _bucketNs: bigint): BucketDifference[] {
  const index = (r: DigestReport) => {
    const m = new Map<string, { db: string; measurement: string; start: string; count: number; sum: number }>();
    for (const [db, list] of Object.entries(r.dbs)) for (const b of list) m.set(`${db}\u0000${b.measurement}\u0000${b.start}`, { db, ...b });
    return m;
  };
  const a = index(mine);
  const b = index(theirs);
  const out: BucketDifference[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(key);
    const y = b.get(key);
    if (x && y && x.count === y.count && x.sum === y.sum) continue;
    const any = (x ?? y)!;
    out.push({
      db: any.db,
      measurement: any.measurement,
      start: any.start,
      mine: x ? { count: x.count, sum: x.sum } : null,
      twin: y ? { count: y.count, sum: y.sum } : null,
    });
  }
  return out.sort((p, q) => (p.db + p.measurement + p.start < q.db + q.measurement + q.start ? -1 : 1));
}

export class PeerLink {
  private state: LinkState = "CONNECTING";
  private paused = false;
  private stopped = true;
  private abort: AbortController | null = null;
  /**
   * Aborted by stop(): ends the requests made outside the pull loop (verify's digest and
   * repair pulls), which the node's shutdown would otherwise wait for while a twin that went
   * silent keeps them open.
   */
  private lifetime = new AbortController();
  private loopDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private twin: { nodeId: string; incarnation: string } | null = null;
  private twinLatest: number | null = null;
  private twinHlc = 0;
  private appliedOfMine: number | null = null;
  private clockOffset: number | null = null;
  private pendingBytes: number | null = null;
  private lastError: string | null = null;
  private lastContact: number | null = null;
  private activeAddress: string | null = null;
  private preferred = 0;
  private lastProbe = 0;
  private readonly addresses: AddressStatus[];
  private readonly counters = { frames_applied: 0, frames_refused: 0, backfill_values: 0, reconnects: 0 };
  private readonly nowMs: () => number;
  private readonly peerFetch: PeerFetch;
  private readonly catchUpBytes: number;

  constructor(private readonly opts: PeerLinkOptions) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.catchUpBytes = opts.catchUpBytes ?? DEFAULT_CATCH_UP_BYTES;
    this.peerFetch = opts.fetch ?? createPeerFetch();
    this.addresses = opts.addresses.map((url) => ({ url, reachable: null, lastOkMs: null, lastError: null }));
  }

  /** Starts pulling in the background. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    this.loopDone = this.loop();
  }

  /** Stops pulling and waits for the loop to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.state = "STOPPED";
    this.abort?.abort();
    this.lifetime.abort();
    this.wake?.();
    await this.loopDone;
  }

  pause(): void {
    this.paused = true;
    this.state = "PAUSED";
    this.abort?.abort();
  }

  resume(): void {
    this.paused = false;
    if (this.state === "PAUSED") this.state = "CONNECTING";
    this.wake?.();
  }

  private async loop(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    while (!this.stopped) {
      if (this.paused) {
        await this.sleep(Number.POSITIVE_INFINITY);
        continue;
      }
      try {
        await this.session();
        backoff = BACKOFF_MIN_MS;
      } catch (e) {
        if (this.stopped || this.paused) continue;
        this.state = "ERROR";
        this.lastError = e instanceof Error ? e.message : String(e);
        if (isTsdbError(e, "corrupt_frame")) {
          this.counters.frames_refused++;
          this.opts.log.error("refused frames from the twin", { error: this.lastError });
        }
        this.opts.log.warn("peer link error", { error: this.lastError, retry_ms: backoff });
        // Capped exponential backoff with jitter, so two boxes do not retry in step.
        await this.sleep(backoff * (0.5 + Math.random()));
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
      this.counters.reconnects++;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  /** Opens a stream from the first address that answers, preferring the last one that worked. */
  private async open(path: string): Promise<{ body: ReadableStream<Uint8Array>; url: string }> {
    const errors: string[] = [];
    for (let k = 0; k < this.addresses.length; k++) {
      const i = (this.preferred + k) % this.addresses.length;
      const addr = this.addresses[i]!;
      const abort = new AbortController();
      this.abort = abort;
      let timedOut = false;
      const timer = setTimeout(() => ((timedOut = true), abort.abort()), OPEN_TIMEOUT_MS);
      try {
        const res = await this.peerFetch(new URL(path, addr.url), {
          headers: { [PEER_SECRET_HEADER]: this.opts.secret, [PEER_NODE_HEADER]: this.opts.store.nodeId },
          signal: abort.signal,
        }).finally(() => clearTimeout(timer));
        if (!res.ok || res.body === null) {
          const text = await res.text().catch(() => "");
          const why = (() => {
            try {
              return (JSON.parse(text) as { error?: string }).error ?? text;
            } catch {
              return text;
            }
          })();
          // The twin answered: this is not a network problem, so other addresses will say the same.
          addr.reachable = true;
          addr.lastOkMs = this.nowMs();
          throw new TsdbError(res.status === 401 ? "unauthorized" : "bad_request", `twin at ${addr.url} refused the link: HTTP ${res.status} ${why}`);
        }
        addr.reachable = true;
        addr.lastOkMs = this.nowMs();
        addr.lastError = null;
        this.preferred = i;
        this.activeAddress = addr.url;
        return { body: res.body, url: addr.url };
      } catch (e) {
        if (e instanceof TsdbError) throw e;
        addr.reachable = false;
        addr.lastError = timedOut ? `no answer within ${OPEN_TIMEOUT_MS / 1000} s` : e instanceof Error ? e.message : String(e);
        errors.push(`${addr.url}: ${addr.lastError}`);
      }
    }
    this.activeAddress = null;
    throw new TsdbError("unavailable", `twin unreachable on every address (${errors.join("; ")})`);
  }

  /** One connection: hello, then frames until the stream ends or fails. */
  private async session(): Promise<void> {
    this.state = "CONNECTING";
    const store = this.opts.store;
    const twinId = this.twin?.nodeId;
    // Never trust a cached position: read it from the store on every connection.
    const cursor = twinId === undefined ? null : store.cursorFor(twinId);
    const after = cursor?.lsn ?? 0;
    const { body } = await this.open(`/peer/v1/frames?after=${after}&compress=deflate&catch_up_bytes=${this.catchUpBytes}`);
    const reader = new MessageReader();
    let hello: Hello | null = null;
    // What to do once this stream is closed: refill from storage before streaming again.
    let next: (() => Promise<void>) | null = null;
    const pipeline = new ApplyPipeline<WireFrame[], PreparedFrames>(
      (batch) => this.prepareFrames(batch),
      (prepared) => this.applyPrepared(prepared),
    );
    try {
      stream: for await (const chunk of untilAborted(body, this.abort!.signal, STREAM_IDLE_MS)) {
        const messages = reader.push(chunk);
        let frames: WireFrame[] = [];
        for (const m of messages) {
          if (hello === null) {
            if (m.type !== "hello") throw new TsdbError("corrupt_frame", `twin stream did not start with hello (got ${m.type})`);
            const h = m.hello;
            hello = h;
            this.onHello(h);
            const stored = store.cursorFor(h.node_id);
            if (stored === null || stored.incarnation !== h.incarnation) {
              // A twin we never applied, or a new incarnation of it (disk replaced, restored):
              // its offsets mean nothing here; refill from its storage, then stream from there.
              next = () => this.seed(h, stored);
              break stream;
            }
            if (stored.lsn !== after) {
              // First contact after a restart (we did not know the twin's id yet): reconnect
              // at the stored cursor instead.
              next = async () => {};
              break stream;
            }
            if (h.writes_only === true && (h.pending_bytes ?? 0) >= this.catchUpBytes) {
              next = () => this.catchUp(h, stored, h.pending_bytes!);
              break stream;
            }
            this.state = "STREAMING";
            continue;
          }
          if (m.type === "frame" || m.type === "frame_z") {
            frames.push({ bytes: m.bytes, compressed: m.type === "frame_z" });
            continue;
          }
          if (frames.length > 0) await pipeline.push(frames);
          frames = [];
          // A heartbeat only updates what we know of the twin; anything else (a gap) acts on
          // the store, so everything before it is applied first.
          if (m.type !== "heartbeat") await pipeline.drain();
          this.onControl(m);
          if (m.type === "gap") {
            const h = hello;
            const { from, to } = m.gap;
            next = () => this.refillGap(h, from, to);
            break stream;
          }
        }
        if (frames.length > 0) await pipeline.push(frames);
        this.maybeProbe();
      }
      await pipeline.drain();
    } finally {
      // Leaving early (an error, a stop): let what is in flight finish before a new stream
      // starts from the cursor it leaves behind.
      await pipeline.settle();
    }
    // Leaving the loop above cancelled the stream; now refill if that is why we left.
    if (next !== null) return next();
    if (!this.stopped && !this.paused) throw new TsdbError("unavailable", "twin closed the frame stream");
  }

  /**
   * Inflates a batch of frames and has their points parsed ahead of the writer (see
   * PeerLinkOptions.parse): this runs while earlier batches are applied. Anything that does
   * not decode is left to the store, which checks every frame and refuses bad ones.
   */
  private async prepareFrames(batch: readonly WireFrame[]): Promise<PreparedFrames> {
    // Inflated in place: a frame inflates in a few milliseconds (catch-up measured the same
    // with the inflate on the worker, whose queue is the parse's).
    const frames = batch.map((f) => (f.compressed ? inflateFrame(f.bytes) : f.bytes));
    const parse = this.opts.parse;
    if (parse === undefined) return { frames };
    const parsed = await Promise.all(
      frames.map(async (bytes) => {
        let frame: Frame;
        try {
          // The lines stay bytes (or compressed): the worker inflates, decodes and checks them
          // as it parses.
          frame = decodeFrame(bytes, { rawLines: true });
        } catch {
          return undefined;
        }
        const op = frame.op;
        if (op.kind !== "write") return undefined;
        return parse(op.lines, op.precision, op.defaultTime).catch(() => undefined);
      }),
    );
    return { frames, parsed };
  }

  private async applyPrepared(prepared: PreparedFrames): Promise<void> {
    if (this.twin === null) return;
    const out = await this.opts.store.applyTwinFrames(this.twin, prepared.frames, prepared.parsed);
    this.counters.frames_applied += out.applied;
  }

  private onHello(h: Hello): void {
    if (h.node_id === this.opts.store.nodeId) {
      throw new TsdbError("identity", `the twin presents our own node id "${h.node_id}": node ids must differ`);
    }
    if (this.twin !== null && this.twin.incarnation !== h.incarnation) {
      this.opts.log.warn("the twin's store is a new incarnation: its offsets are no longer trusted", {
        twin: h.node_id,
        was: this.twin.incarnation,
        now: h.incarnation,
      });
    }
    this.twin = { nodeId: h.node_id, incarnation: h.incarnation };
    this.noteClock(h.latest_lsn, h.applied_of_you, h.hlc, h.time_ms);
  }

  private onControl(m: Message): void {
    if (m.type === "heartbeat") {
      this.noteClock(m.heartbeat.latest_lsn, m.heartbeat.applied_of_you, m.heartbeat.hlc, m.heartbeat.time_ms);
      this.pendingBytes = m.heartbeat.pending_bytes ?? null;
    }
    else if (m.type === "error") throw new TsdbError("bad_request", `twin reported: ${m.error}`);
    else if (m.type !== "gap") throw new TsdbError("corrupt_frame", `unexpected ${m.type} message in the frame stream`);
  }

  private noteClock(latest: number, appliedOfMine: number | null, hlc: number, timeMs: number): void {
    const now = this.nowMs();
    this.twinLatest = latest;
    this.twinHlc = hlc;
    this.appliedOfMine = appliedOfMine;
    this.lastContact = now;
    // One-way, so it includes half a round trip: on a LAN that is well under a millisecond.
    this.clockOffset = timeMs - now;
    if (Math.abs(this.clockOffset) > CLOCK_WARN_MS) {
      this.opts.log.warn("clock offset to the twin is large", { offset_ms: this.clockOffset });
    }
  }

  /** Full refill from the twin's storage (all origins), then resume after its latest frame. */
  private async seed(h: Hello, stored: ReturnType<Store["cursorFor"]>): Promise<void> {
    const fresh = stored === null || stored.incarnation !== h.incarnation;
    this.state = fresh ? "SEEDING" : "BACKFILLING";
    this.opts.log.info(fresh ? "seeding from the twin" : "re-syncing from the twin", { twin: h.node_id, incarnation: h.incarnation });
    const since = fresh ? 0 : stored!.hlc;
    await this.backfill(h, `/peer/v1/backfill?since_hlc=${since}&origin=${fresh ? "all" : "self"}`);
  }

  /**
   * Far behind on plain writes: takes the twin's values newer than our cursor from its
   * storage, where they are compressed chunks, instead of replaying its frames one by one;
   * then streams frames again from where that left off. Not a gap: nothing was lost.
   */
  private async catchUp(h: Hello, cursor: TwinCursor, pendingBytes: number): Promise<void> {
    this.opts.log.info("far behind the twin: catching up from its storage", { twin: h.node_id, pending_bytes: pendingBytes, after: cursor.lsn });
    this.state = "BACKFILLING";
    await this.backfill(h, `/peer/v1/backfill?since_hlc=${cursor.hlc}&origin=self`);
  }

  /** Records the gap, refills the missing range from the twin's storage, then resumes. */
  private async refillGap(h: Hello, from: number, to: number): Promise<void> {
    const store = this.opts.store;
    await store.recordGap(h.node_id, from, to);
    this.opts.log.warn("the twin no longer has frames we need: refilling from its storage", {
      twin: h.node_id,
      from: formatPosition({ origin: h.node_id, lsn: from }),
      to: formatPosition({ origin: h.node_id, lsn: to }),
    });
    this.state = "BACKFILLING";
    const cursor = store.cursorFor(h.node_id);
    await this.backfill(h, `/peer/v1/backfill?since_hlc=${cursor?.hlc ?? 0}&origin=self`);
  }

  private async backfill(h: Hello, path: string): Promise<void> {
    const { body } = await this.open(path);
    const reader = new MessageReader();
    const twin: TwinIdentity = { nodeId: h.node_id, incarnation: h.incarnation };
    const batch = new BackfillBatch();
    // One batch is applied while the next is read; batches are applied in order.
    let applying: Promise<void> = Promise.resolve();
    const flush = async (done?: { lsn: number; hlc: number }) => {
      const records = batch.take();
      await applying;
      applying = this.opts.store.applyBackfill(twin, records, done).then((out) => {
        this.counters.backfill_values += out.stored;
      });
      // Its failure is thrown where it is awaited next, not reported as unhandled meanwhile.
      applying.catch(() => undefined);
    };
    try {
      for await (const chunk of untilAborted(body, this.abort!.signal, STREAM_IDLE_MS)) {
        for (const m of reader.push(chunk)) {
          if (m.type === "hello") {
            if (m.hello.node_id !== h.node_id || m.hello.incarnation !== h.incarnation) {
              throw new TsdbError("identity", "the twin changed while backfilling; starting over");
            }
          } else if (m.type === "tomb") {
            await applying;
            await this.opts.store.applyTombstones([m.tomb]);
          } else if (m.type === "record") {
            if (batch.add(m.record)) await flush();
          } else if (m.type === "done") {
            await flush(m.done);
            await applying;
            this.twin = { nodeId: h.node_id, incarnation: h.incarnation };
            this.opts.log.info("backfill from the twin complete", { twin: h.node_id, resume_after: m.done.lsn });
            return;
          } else if (m.type === "error") {
            throw new TsdbError("bad_request", `twin reported: ${m.error}`);
          }
        }
      }
    } finally {
      // Leaving early: what is being applied finishes before anything else starts.
      await applying.catch(() => undefined);
    }
    throw new TsdbError("unavailable", "the backfill stream ended early");
  }

  /** A request to the twin's peer API on whichever address answers. */
  private async twinRequest(path: string, init: RequestInit = {}): Promise<Response> {
    let last: unknown;
    for (let k = 0; k < this.addresses.length; k++) {
      const addr = this.addresses[(this.preferred + k) % this.addresses.length]!;
      try {
        const res = await this.peerFetch(new URL(path, addr.url), {
          ...init,
          headers: { ...(init.headers as Record<string, string>), [PEER_SECRET_HEADER]: this.opts.secret, [PEER_NODE_HEADER]: this.opts.store.nodeId },
          signal: this.lifetime.signal,
        });
        if (!res.ok) throw new TsdbError("bad_request", `twin at ${addr.url} answered ${path} with HTTP ${res.status}: ${await res.text()}`);
        return res;
      } catch (e) {
        if (e instanceof TsdbError) throw e;
        this.throwIfStopped();
        last = e;
      }
    }
    throw new TsdbError("unavailable", `twin unreachable for ${path}: ${String(last)}`);
  }

  /** A twin's answer as text, read until it ends or the link stops. */
  private async bodyText(res: Response): Promise<string> {
    if (res.body === null) return "";
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of untilAborted(res.body, this.lifetime.signal)) text += decoder.decode(chunk, { stream: true });
    this.throwIfStopped();
    return text + decoder.decode();
  }

  /** A failed or ended request to the twin that stop() caused says so, not that the twin failed or finished. */
  private throwIfStopped(): void {
    if (this.lifetime.signal.aborted) throw new TsdbError("unavailable", "the link stopped while the twin was answering");
  }

  /**
   * Compares both nodes' data per database, measurement and time bucket. With `repair`, each
   * differing range is pulled from the twin and the twin pulls it from us; versions then make
   * both copies equal. Returns the differences found (and those left after a repair).
   */
  async verify(opts: { bucketNs: bigint; repair: boolean }): Promise<VerifyReport> {
    const compare = async (): Promise<BucketDifference[]> => {
      // Both boxes read all their data for this: at the same time, not one after the other.
      const [mine, theirs] = await Promise.all([
        digestReport(this.opts.store, opts.bucketNs),
        this.twinRequest(`/peer/v1/digest?bucket_ns=${opts.bucketNs}`).then(async (res) => JSON.parse(await this.bodyText(res)) as DigestReport),
      ]);
      return diffDigests(mine, theirs, opts.bucketNs);
    };
    const differences = await compare();
    if (!opts.repair || differences.length === 0) return { differences, repaired: false, remaining: differences };
    const ranges: RepairRange[] = differences.map((d) => ({ db: d.db, start: d.start, end: String(BigInt(d.start) + opts.bucketNs - 1n) }));
    await this.pullRanges(ranges);
    await this.twinRequest("/peer/v1/pull", { method: "POST", body: JSON.stringify(ranges), headers: { "Content-Type": "application/json" } });
    return { differences, repaired: true, remaining: await compare() };
  }

  /** Pulls every version the twin has in the given ranges (verify --repair). Returns values stored. */
  async pullRanges(ranges: readonly RepairRange[]): Promise<number> {
    const twin = this.twin;
    if (twin === null) throw new TsdbError("unavailable", "the twin has not been seen yet");
    let stored = 0;
    for (const r of ranges) {
      const q = new URLSearchParams({ since_hlc: "0", origin: "all", db: r.db, start: r.start, end: r.end });
      const res = await this.twinRequest(`/peer/v1/backfill?${q}`);
      if (res.body === null) continue;
      const reader = new MessageReader();
      const batch = new BackfillBatch();
      for await (const chunk of untilAborted(res.body, this.lifetime.signal, STREAM_IDLE_MS)) {
        for (const m of reader.push(chunk)) {
          if (m.type === "tomb") await this.opts.store.applyTombstones([m.tomb]);
          const full = m.type === "record" && batch.add(m.record);
          if (full || (m.type === "done" && batch.size > 0)) stored += (await this.opts.store.applyBackfill(twin, batch.take())).stored;
        }
      }
      this.throwIfStopped();
    }
    this.opts.log.info("pulled ranges from the twin", { ranges: ranges.length, values: stored });
    return stored;
  }

  /** Pings every address now and then, so status can say which ring is down. */
  private maybeProbe(): void {
    const now = this.nowMs();
    if (now - this.lastProbe < PROBE_EVERY_MS || this.addresses.length < 2) return;
    this.lastProbe = now;
    for (const addr of this.addresses) {
      if (addr.url === this.activeAddress) continue;
      this.peerFetch(new URL("/ping", addr.url), { signal: AbortSignal.timeout(2000) }).then(
        () => {
          addr.reachable = true;
          addr.lastOkMs = this.nowMs();
          addr.lastError = null;
        },
        (e: unknown) => {
          addr.reachable = false;
          addr.lastError = e instanceof Error ? e.message : String(e);
        },
      );
    }
  }

  /** The link as `tsdb-pair peer status` shows it. */
  status(): PeerStatus {
    const store = this.opts.store;
    const mine = store.latestLsn();
    const cursor = this.twin === null ? null : store.cursorFor(this.twin.nodeId);
    const applied = cursor?.lsn ?? null;
    const lagFrames = this.twinLatest === null || applied === null ? null : Math.max(0, this.twinLatest - applied);
    const lagSeconds =
      lagFrames === null ? null : lagFrames === 0 ? 0 : Math.max(0, (hlcPhysicalMs(this.twinHlc) - hlcPhysicalMs(cursor?.hlc ?? 0)) / 1000);
    const conflicts = store.conflictStats();
    return {
      state: this.paused ? "PAUSED" : this.state,
      paused: this.paused,
      twin: {
        node_id: this.twin?.nodeId ?? null,
        incarnation: this.twin?.incarnation ?? null,
        addresses: this.addresses.map((a) => ({ ...a })),
        active_address: this.activeAddress,
      },
      my_latest_lsn: mine,
      twin_applied_my_lsn: this.appliedOfMine,
      i_applied_twin_lsn: applied,
      twin_latest_lsn: this.twinLatest,
      // Bytes: what the twin had not yet sent us at its last heartbeat (0 once caught up).
      lag: { frames: lagFrames, bytes: lagFrames === 0 ? 0 : this.pendingBytes, seconds: lagSeconds },
      gaps: this.twin === null ? [] : store.gapsFor(this.twin.nodeId),
      conflicts: {
        same_point: conflicts.count,
        type: store.typeConflictCount(),
        types_settled: store.settledTypeConflictCount(),
        sample: conflicts.sample,
      },
      clock_offset_ms: this.clockOffset,
      clock_warning: this.clockOffset !== null && Math.abs(this.clockOffset) > CLOCK_WARN_MS,
      last_error: this.lastError,
      last_contact_ms: this.lastContact,
      counters: { ...this.counters },
      in_sync: this.state === "STREAMING" && !this.paused && lagFrames === 0 && this.appliedOfMine === mine,
    };
  }
}

/**
 * The pieces of a streamed response body until it ends or `signal` aborts (a stop or a
 * pause). Aborting the request should end its body, but on Deno a body being read from the
 * twin did not always end, and a stop then waited for it forever; cancelling the reader does
 * end it, on every runtime. Leaving the loop early cancels the body too.
 * With `idleMs`, waiting longer than that for the next piece cancels the body and throws
 * (time spent by the caller between pieces does not count).
 */
async function* untilAborted(body: ReadableStream<Uint8Array>, signal: AbortSignal, idleMs?: number): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  if (signal.aborted) cancel();
  else signal.addEventListener("abort", cancel, { once: true });
  let done = false;
  let idle = false;
  try {
    while (!done) {
      const timer = idleMs === undefined ? undefined : setTimeout(() => ((idle = true), cancel()), idleMs);
      const next = await reader.read().finally(() => clearTimeout(timer));
      if (idle) throw new TsdbError("unavailable", `the twin sent nothing for ${idleMs! / 1000} s; reconnecting`);
      done = next.done;
      if (!next.done) yield next.value;
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    if (!done) cancel();
  }
}
