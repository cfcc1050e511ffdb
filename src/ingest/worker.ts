/**
 * A worker thread (see workers.ts): decodes and parses request bodies and the twin's frames,
 * compresses bodies for their frames, and deflates the frames sent to the twin, off the main
 * thread. Messages in: WorkerJob; out: WorkerReply (a parse comes back packed, see
 * lineprotocol/packed.ts; bytes are moved, not copied).
 * Holds no state between jobs.
 */
import { isTsdbError } from "../errors.ts";
import { packBatch } from "../lineprotocol/packed.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { compressFrame } from "../peer/wire.ts";
import { compressLines } from "../wal/frame.ts";
import { bodyText, type WorkerJob, type WorkerReply } from "./workers.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<WorkerJob>) => void) | null;
  postMessage(message: WorkerReply, transfer?: ArrayBuffer[]): void;
};

scope.onmessage = (e) => {
  const job = e.data;
  try {
    if (job.kind === "parse") {
      const result = parseLines(bodyText(job.body), { precision: job.precision, defaultTime: job.defaultTime });
      const { packed, transfer } = packBatch(result);
      const body = job.body;
      if (job.compress && body instanceof Uint8Array && result.errors.length === 0) {
        const compressed = compressLines(body);
        scope.postMessage({ id: job.id, packed, compressed }, [...transfer, compressed.zstd.buffer as ArrayBuffer]);
      } else if (job.moved && body instanceof Uint8Array) {
        scope.postMessage({ id: job.id, packed, body }, [...transfer, body.buffer as ArrayBuffer]);
      } else {
        scope.postMessage({ id: job.id, packed }, transfer);
      }
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
