import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_ENGINE } from "../config.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { Store } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const NOW_MS = 1_700_000_000_000; // a minute boundary, so the cutoff is exact
const ns = (ms: number) => BigInt(ms) * 1_000_000n;

function open(retentionMs = 0, dir?: string): { store: Store; dir: string } {
  const d = dir ?? mkdtempSync(join(tmpdir(), "tsdb-retention-"));
  if (dir === undefined) dirs.push(d);
  const store = Store.open({ dataDir: d, nodeId: "n", sync: "normal", engine: { ...DEFAULT_ENGINE, chunkPoints: 4, retentionMs }, nowMs: () => NOW_MS });
  return { store, dir: d };
}

async function write(store: Store, db: string, hoursAgo: number[]): Promise<void> {
  const body = hoursAgo.map((h) => `m v=${h} ${ns(NOW_MS - h * HOUR)}`).join("\n");
  const { batch } = parseLines(body, { precision: "ns", defaultTime: 0n });
  await store.write({ db, rp: "", precision: "ns", defaultTime: 0n, batch, autoCreate: true });
}

const values = (s: Store, db: string) => [...s.exportLines(db)].join("").split("\n").filter(Boolean).map((l) => Number(l.split(" ")[1]!.slice(2)));

describe("retention", () => {
  test("drops expired chunks, trims the chunk across the cutoff and old buffered values", async () => {
    const { store } = open(10 * HOUR);
    await write(store, "db", [30, 29, 28, 27, 12, 11, 9, 8]); // two full chunks: 30..27 and 12..8
    store.flushAll();
    await write(store, "db", [15, 1]); // buffered: one old, one new
    expect(await store.enforceRetention()).toEqual({ dropped: 1, trimmed: 1 });
    expect(values(store, "db")).toEqual([9, 8, 1]);
    await store.close();
  });

  test("a database's own duration overrides the node's default, and keeps it over a restart", async () => {
    const { store, dir } = open(0);
    await store.createDatabase("short", ns(2 * HOUR));
    await store.createDatabase("forever");
    await write(store, "short", [5, 1]);
    await write(store, "forever", [5, 1]);
    await store.enforceRetention();
    expect(values(store, "short")).toEqual([1]);
    expect(values(store, "forever")).toEqual([5, 1]);
    await store.close();
    const again = open(0, dir).store;
    expect(again.retentionOf(again.database("short")!)).toBe(ns(2 * HOUR));
    expect(again.retentionOf(again.database("forever")!)).toBe(0n);
    await again.close();
  });

  test("nothing expires without a retention", async () => {
    const { store } = open(0);
    await write(store, "db", [10_000, 1]);
    expect(await store.enforceRetention()).toEqual({ dropped: 0, trimmed: 0 });
    expect(values(store, "db")).toEqual([10_000, 1]);
    await store.close();
  });
});
