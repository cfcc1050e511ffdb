import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_ENGINE } from "../config.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { CHECKPOINT_EVERY_MS } from "./checkpointer.ts";
import { STORE_FILE, Store } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function write(store: Store, body: string): Promise<void> {
  const { batch } = parseLines(body, { precision: "ns", defaultTime: 0n });
  await store.write({ db: "db", rp: "", precision: "ns", defaultTime: 0n, batch, autoCreate: true });
}

describe("the checkpoint thread", () => {
  test("copies the log into the file while the writer goes on, and lets go of it at close", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsdb-checkpoint-"));
    dirs.push(dir);
    const store = Store.open({ dataDir: dir, nodeId: "a", sync: "full", engine: DEFAULT_ENGINE, checkpointThread: true });
    const lines: string[] = [];
    for (let k = 0; k < 20; k++) {
      const body = Array.from({ length: 1000 }, (_, i) => `m,host=h${i % 50} v=${k * 1000 + i}.5 ${k * 1000 + i}`);
      lines.push(...body);
      await write(store, body.join("\n"));
    }
    store.flushAll();
    // Commits went on meanwhile; the thread's next round copies what they logged.
    const deadline = Date.now() + 5 * CHECKPOINT_EVERY_MS;
    while (store.stats().checkpointedPages === 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(store.stats().checkpointedPages).toBeGreaterThan(0);
    await store.close();
    // Its connection was gone in time for the close's truncating checkpoint.
    expect(statSync(join(dir, `${STORE_FILE}-wal`), { throwIfNoEntry: false })?.size ?? 0).toBe(0);
    const again = Store.open({ dataDir: dir, nodeId: "a", sync: "full", engine: DEFAULT_ENGINE });
    try {
      expect([...again.exportLines("db")].join("").split("\n").filter(Boolean).length).toBe(lines.length);
    } finally {
      await again.close();
    }
  });

  test("a store opened without it checkpoints in the writer, as before", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsdb-checkpoint-"));
    dirs.push(dir);
    const store = Store.open({ dataDir: dir, nodeId: "a", sync: "normal", engine: DEFAULT_ENGINE });
    await write(store, "m v=1 1");
    expect(store.stats().checkpointedPages).toBe(0);
    await store.close();
  });
});
