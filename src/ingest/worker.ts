/**
 * A worker thread (see workers.ts): decodes and parses request bodies and the twin's frames,
 * and deflates the frames sent to the twin, off the main thread. Messages in: WorkerJob; out: WorkerReply
 * (a parse comes back packed, see lineprotocol/packed.ts; bytes are moved, not copied).
 * Holds no state between jobs.
 */
import { isTsdbError } from "../errors.ts";
import { decodeBody } from "../http/body.ts";
import { packBatch } from "../lineprotocol/packed.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { compressFrame } from "../peer/wire.ts";
import type { WorkerJob, WorkerReply } from "./workers.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<WorkerJob>) => void) | null;
  postMessage(message: WorkerReply, transfer?: ArrayBuffer[]): void;
};

scope.onmessage = (e) => {
  const job = e.data;
  try {
    if (job.kind === "parse") {
      const text = typeof job.body === "string" ? job.body : decodeBody(job.body);
      const { packed, transfer } = packBatch(parseLines(text, { precision: job.precision, defaultTime: job.defaultTime }));
      scope.postMessage({ id: job.id, packed }, transfer);
      return;
    }
    // A fresh copy, so its buffer can be moved whole (zlib may hand back a view of a larger one).
    const bytes = compressFrame(job.bytes).slice();
    scope.postMessage({ id: job.id, bytes }, [bytes.buffer as ArrayBuffer]);
  } catch (err) {
    scope.postMessage({
      id: job.id,
      error: { code: isTsdbError(err) ? err.code : "internal", message: err instanceof Error ? err.message : String(err) },
    });
  }
};
