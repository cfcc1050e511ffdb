/**
 * The twin-facing side of the peer link, on the API port under /peer/v1/: the frame stream a
 * twin pulls from, and the backfill stream that refills it from storage. Guarded by the
 * shared peer secret; only frames whose origin is this node are ever sent (no loops).
 */
import type { Hono } from "hono";
import { TsdbError } from "../errors.ts";
import { concatBytes } from "../http/body.ts";
import { sameSecret } from "../secret.ts";
import type { Logger } from "../log.ts";
import { READ_SLICE_MS, type Store } from "../store/store.ts";
import { TimeSlice } from "../runtime/slice.ts";
import { metrics } from "../ops/metrics.ts";
import { holdsCompressedLines } from "../wal/frame.ts";
import { compressFrame, encodeMessage, type Hello, type Message } from "./wire.ts";

/** A database and time range to re-send (peer verify --repair). */
export interface RepairRange {
  readonly db: string;
  readonly start: string;
  readonly end: string;
}

/** Digests of every database, per measurement and time bucket (see Store.digest). */
export interface DigestReport {
  readonly node_id: string;
  readonly bucket_ns: string;
  readonly dbs: Record<string, Array<{ measurement: string; start: string; count: number; sum: number }>>;
}

/** Computes a DigestReport of a store. */
export async function digestReport(store: Store, bucketNs: bigint): Promise<DigestReport> {
  const dbs: DigestReport["dbs"] = {};
  for (const name of store.databases()) {
    dbs[name] = [...(await store.digest(name, bucketNs)).values()].map((d) => ({ measurement: d.measurement, start: String(d.start), count: d.count, sum: d.sum }));
  }
  return { node_id: store.nodeId, bucket_ns: String(bucketNs), dbs };
}

/** How often an idle stream sends a heartbeat (clock and latest LSN). */
export const HEARTBEAT_MS = 1000;
/** Frames read from the log per batch. */
const BATCH_BYTES = 4 * 1024 * 1024;
/** A backfill's records are sent in pieces of about this size, not one write each. */
const BACKFILL_PACK_BYTES = 256 * 1024;
/**
 * How far a backfill is read and encoded ahead of the twin: while the twin stores one batch
 * the next pieces are being made, instead of each side waiting for the other in turn.
 */
const AHEAD_BYTES = 8 * 1024 * 1024;

export interface PeerRouteDeps {
  readonly store: Store;
  /** Pulls ranges from the twin on its request (a verify --repair run from the other side). */
  readonly pullRanges?: (ranges: readonly RepairRange[]) => Promise<number>;
  readonly secret: string;
  readonly log: Logger;
  /** Aborted when the node shuts down: open streams end so they do not hold the server. */
  readonly closing: AbortSignal;
  readonly nowMs?: () => number;
  /**
   * Compresses a frame for the stream, on another thread where there is one (the worker
   * pool): about 4 ms per 1 MB frame, a tenth of the writer thread's time at full ingest when
   * done there. Without it frames are compressed in place.
   */
  readonly compress?: (bytes: Uint8Array) => Promise<Uint8Array>;
}


export const PEER_SECRET_HEADER = "X-Tsdb-Pair-Peer-Secret";
export const PEER_NODE_HEADER = "X-Tsdb-Pair-Node";

export function registerPeerRoutes(app: Hono, deps: PeerRouteDeps): void {
  const { store, log } = deps;
  const nowMs = deps.nowMs ?? Date.now;

  /** Checks the secret and the requester's identity; returns the requester's node id. */
  const admit = (req: Request): string => {
    const requester = req.headers.get(PEER_NODE_HEADER) ?? "";
    const given = req.headers.get(PEER_SECRET_HEADER);
    if (given === null || !sameSecret(given, deps.secret)) {
      log.warn("refused a peer request: wrong peer secret", { from: requester || "unknown" });
      throw new TsdbError("unauthorized", "peer secret mismatch: both nodes must be configured with the same --peer-secret");
    }
    if (requester === "") throw new TsdbError("bad_request", `missing ${PEER_NODE_HEADER} header`);
    if (requester === store.nodeId) {
      log.warn("refused a peer request: the twin presents our own node id", { node_id: requester });
      throw new TsdbError("identity", `the twin presents our own node id "${requester}": node ids must differ`);
    }
    return requester;
  };

  const hello = (requester: string): Hello => ({
    node_id: store.nodeId,
    incarnation: store.incarnation,
    latest_lsn: store.latestLsn(),
    oldest_lsn: store.oldestOwnLsn(),
    applied_of_you: store.cursorFor(requester)?.lsn ?? null,
    hlc: store.currentHlc(),
    time_ms: nowMs(),
  });

  /** A heartbeat for `requester`; `pendingBytes` where the stream knows what it still lacks. */
  const heartbeat = (requester: string, pendingBytes?: number): Message => ({
    type: "heartbeat",
    heartbeat: {
      latest_lsn: store.latestLsn(),
      applied_of_you: store.cursorFor(requester)?.lsn ?? null,
      ...(pendingBytes === undefined ? {} : { pending_bytes: pendingBytes }),
      hlc: store.currentHlc(),
      time_ms: nowMs(),
    },
  });

  app.get("/peer/v1/frames", (c) => {
    const requester = admit(c.req.raw);
    const after = Number(c.req.query("after") ?? "");
    if (!Number.isSafeInteger(after) || after < 0) throw new TsdbError("bad_request", "after must be a non-negative LSN");
    const signal = AbortSignal.any([c.req.raw.signal, deps.closing]);
    const compress = c.req.query("compress") === "deflate";
    // The requester's --catch-up-bytes: past it, plain writes are caught up from storage.
    const catchUpBytes = c.req.query("catch_up_bytes") === undefined ? null : Number(c.req.query("catch_up_bytes"));
    if (catchUpBytes !== null && !(catchUpBytes >= 0)) throw new TsdbError("bad_request", "catch_up_bytes must be a non-negative number");
    async function* messages(): AsyncGenerator<Message> {
      const h: Hello = { ...hello(requester), pending_bytes: store.ownBytesAfter(after), writes_only: store.onlyWritesAfter(after) };
      yield { type: "hello", hello: h };
      // The requester will leave to catch up from storage: reading (and compressing) frames
      // it would throw away only takes CPU from the backfill it asks for next.
      if (catchUpBytes !== null && h.writes_only === true && h.pending_bytes! >= catchUpBytes) return;
      if (after > h.latest_lsn) {
        yield { type: "error", error: `you asked for frames after ${store.nodeId}@${after}, but the newest is ${store.nodeId}@${h.latest_lsn}` };
        return;
      }
      let cursor = after;
      let lastBeat = 0;
      while (!signal.aborted) {
        const batch = store.ownFramesAfter(cursor, BATCH_BYTES);
        if (batch.length > 0) {
          if (batch[0]!.lsn !== cursor + 1) {
            yield { type: "gap", gap: { from: cursor + 1, to: batch[0]!.lsn - 1 } };
            return;
          }
          // The batch's frames are compressed side by side, then sent in order. A frame whose
          // lines are stored compressed goes as it is.
          const squeeze = deps.compress ?? ((bytes: Uint8Array) => Promise.resolve(compressFrame(bytes)));
          const packed = compress ? batch.map((f) => (holdsCompressedLines(f.bytes) ? null : squeeze(f.bytes))) : null;
          // A failure is thrown where its frame is awaited; the others must not go unhandled.
          for (const p of packed ?? []) p?.catch(() => undefined);
          for (let k = 0; k < batch.length; k++) {
            const f = batch[k]!;
            metrics.peerFramesSent.inc({ peer: requester });
            metrics.peerBytesSent.inc({ peer: requester }, f.bytes.length);
            const squeezed = packed?.[k] ?? null;
            if (squeezed !== null) yield { type: "frame_z", bytes: await squeezed };
            else yield { type: "frame", bytes: f.bytes };
          }
          cursor = batch[batch.length - 1]!.lsn;
        } else if (cursor < store.latestLsn()) {
          // Frames exist after the cursor but none is retained: they were trimmed.
          yield { type: "gap", gap: { from: cursor + 1, to: store.latestLsn() } };
          return;
        }
        if (batch.length === 0 || nowMs() - lastBeat >= HEARTBEAT_MS) {
          if (batch.length === 0) await commitOrTimeout(store, HEARTBEAT_MS, signal);
          if (nowMs() - lastBeat >= HEARTBEAT_MS) {
            lastBeat = nowMs();
            // What the requester still lacks, from what we have sent (its cursor may lag that).
            yield heartbeat(requester, store.ownBytesAfter(cursor));
          }
        }
      }
    }
    return stream(messages(), log);
  });

  app.get("/peer/v1/backfill", (c) => {
    const requester = admit(c.req.raw);
    const sinceHlc = Number(c.req.query("since_hlc") ?? "0");
    const scope = c.req.query("origin") ?? "all";
    const db = c.req.query("db");
    const start = timeQuery(c.req.query("start"));
    const end = timeQuery(c.req.query("end"));
    if (!Number.isSafeInteger(sinceHlc) || sinceHlc < 0) throw new TsdbError("bad_request", "since_hlc must be a non-negative clock value");
    if (scope !== "self" && scope !== "all") throw new TsdbError("bad_request", "origin must be self or all");
    async function* messages(): AsyncGenerator<Message> {
      // Where the frame stream resumes: everything up to here is in the scan below.
      const h = hello(requester);
      yield { type: "hello", hello: h };
      log.info("backfilling the twin from storage", { twin: requester, origin: scope, since_hlc: sinceHlc, resume_after: h.latest_lsn });
      // Deletes first, so the records below land on a store that already knows them.
      for (const tomb of store.tombstonesSince(sinceHlc, scope === "self" ? store.nodeId : null)) {
        if (db === undefined || tomb.db === db) yield { type: "tomb", tomb };
      }
      const slice = new TimeSlice(READ_SLICE_MS);
      let records = 0;
      let lastSent = nowMs();
      for (const record of store.backfillScan({ sinceHlc, origin: scope === "self" ? store.nodeId : null, db, start, end })) {
        if (deps.closing.aborted) return;
        if (record !== null) {
          yield { type: "record", record };
          records++;
          lastSent = nowMs();
        } else if (nowMs() - lastSent >= HEARTBEAT_MS) {
          // A long scan with nothing to send: the twin hears from us all the same, so it can
          // tell a slow scan from a dead connection (see the link's STREAM_IDLE_MS).
          yield heartbeat(requester);
          lastSent = nowMs();
        }
        if (slice.due) await slice.pause();
      }
      yield { type: "done", done: { lsn: h.latest_lsn, hlc: h.hlc } };
      log.info("backfill sent", { twin: requester, records });
    }
    return stream(messages(), log, BACKFILL_PACK_BYTES);
  });

  app.get("/peer/v1/digest", async (c) => {
    admit(c.req.raw);
    const bucket = timeQuery(c.req.query("bucket_ns")) ?? 3600_000_000_000n;
    if (bucket <= 0n) throw new TsdbError("bad_request", "bucket_ns must be positive");
    return c.json(await digestReport(store, bucket));
  });

  app.post("/peer/v1/pull", async (c) => {
    admit(c.req.raw);
    if (deps.pullRanges === undefined) throw new TsdbError("unavailable", "this node has no link to pull with");
    const ranges = (await c.req.json()) as RepairRange[];
    return c.json({ stored: await deps.pullRanges(ranges) });
  });
}

function timeQuery(v: string | undefined): bigint | undefined {
  if (v === undefined || v === "") return undefined;
  if (!/^-?\d+$/.test(v)) throw new TsdbError("bad_request", `invalid time ${JSON.stringify(v)}: expected nanoseconds`);
  return BigInt(v);
}

/** Resolves at the next commit, after `ms`, or when the request is gone, whichever is first. */
function commitOrTimeout(store: Store, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener("abort", finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    const unsubscribe = store.onCommit(finish);
    signal.addEventListener("abort", finish);
  });
}

/** A streaming response of peer messages. */
function stream(messages: AsyncGenerator<Message>, log: Logger, packBytes = 0): Response {
  // The twin may hang up while a message is being prepared; then there is no one to send to.
  let cancelled = false;
  // A backfill is made ahead of the twin (see AHEAD_BYTES); frames go as they are read.
  const ahead = packBytes > 0 ? new ByteLengthQueuingStrategy({ highWaterMark: AHEAD_BYTES }) : undefined;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // Up to packBytes of messages go out as one piece (a backfill's records are small).
        const parts: Uint8Array[] = [];
        let size = 0;
        // A piece also ends after a heartbeat's interval, so a slow scan's heartbeats go out.
        const began = performance.now();
        const send = () => {
          if (parts.length > 0) controller.enqueue(concatBytes(parts, size));
        };
        try {
          do {
            const next = await messages.next();
            if (cancelled) return;
            if (next.done) {
              send();
              controller.close();
              return;
            }
            const bytes = encodeMessage(next.value);
            parts.push(bytes);
            size += bytes.length;
          } while (size < packBytes && performance.now() - began < HEARTBEAT_MS);
          send();
        } catch (e) {
          if (cancelled) return;
          log.error("peer stream failed", { error: String(e) });
          send();
          controller.enqueue(encodeMessage({ type: "error", error: e instanceof Error ? e.message : String(e) }));
          controller.close();
        }
      },
      async cancel() {
        cancelled = true;
        await messages.return(undefined);
      },
    },
    ahead,
  );
  return new Response(body, { status: 200, headers: { "Content-Type": "application/x-tsdb-pair-stream", "Cache-Control": "no-store" } });
}
