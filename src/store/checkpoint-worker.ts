/**
 * The checkpoint thread (see checkpointer.ts): a connection of its own to the store file,
 * which copies the write-ahead log into the database when asked. Messages in: CheckpointJob;
 * out: CheckpointReply.
 */
import Database from "libsql";
import type { CheckpointJob, CheckpointReply } from "./checkpointer.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<CheckpointJob>) => void) | null;
  postMessage(message: CheckpointReply): void;
};

let db: InstanceType<typeof Database> | null = null;

scope.onmessage = (e) => {
  const job = e.data;
  try {
    if (job.kind === "open") {
      db = new Database(job.file);
      // A checkpoint that finds the file busy gives up at once and is asked again later.
      db.pragma("busy_timeout = 0");
      db.pragma(`synchronous = ${job.synchronous}`);
      scope.postMessage({ kind: "opened" });
    } else if (job.kind === "checkpoint") {
      // PASSIVE: copies what it can without waiting for the writer or readers, who go on.
      // One that fails is reported and tried again next round; the writer's own checkpoint
      // is there meanwhile.
      try {
        const [r] = db!.pragma("wal_checkpoint(PASSIVE)") as Array<{ busy: number; log: number; checkpointed: number }>;
        scope.postMessage({ kind: "checkpointed", pages: r?.checkpointed ?? 0 });
      } catch (err) {
        scope.postMessage({ kind: "checkpointed", pages: 0, error: err instanceof Error ? err.message : String(err) });
      }
    } else {
      db?.close();
      db = null;
      scope.postMessage({ kind: "closed" });
    }
  } catch (err) {
    scope.postMessage({ kind: "failed", error: err instanceof Error ? err.message : String(err) });
  }
};
