import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "libsql";
import { DEFAULT_ENGINE } from "../config.ts";
import { isTsdbError } from "../errors.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import { Store } from "../store/store.ts";
import { STORE_FILE, backupDataDir, backupResponse, backupStore, downloadBackup, restoreBackup, verifyBackupFile, type BackupMethod } from "./backup.ts";

const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "tsdb-pair-backup-"));
  scratch.push(d);
  return d;
}

function openStore(dataDir: string, nodeId = "b1"): Store {
  return Store.open({ dataDir, nodeId, sync: "normal", engine: DEFAULT_ENGINE });
}

/** Writes point i as `m v=i i` (one series, time i), so an export shows exactly which writes a store has. */
async function writePoint(store: Store, i: number): Promise<void> {
  const { batch } = parseLines(`m,s=a v=${i} ${i}`, { precision: "ns", defaultTime: 0n });
  await store.write({ db: "plant", rp: "", precision: "ns", defaultTime: 0n, batch, autoCreate: true });
}

function exportOf(store: Store): string {
  return [...store.exportLines("plant")].join("");
}

function linesUpTo(k: number): string {
  let out = "";
  for (let i = 1; i <= k; i++) out += `m,s=a v=${i} ${i}\n`;
  return out;
}

/** Pads the store file with chunk rows of random bytes for a series no one reads (size, not content, matters here). */
function pad(dataDir: string, megabytes: number): void {
  const db = new Database(join(dataDir, STORE_FILE));
  const put = db.prepare("INSERT INTO chunks (series_id, field_id, min_time, max_time, count, times, vals, hlcs) VALUES (999999, 1, ?, ?, 1, ?, ?, ?)");
  db.exec("BEGIN");
  for (let i = 0; i < megabytes * 32; i++) put.run([i, i, randomBytes(16 * 1024), randomBytes(16 * 1024), randomBytes(16)]);
  db.exec("COMMIT");
  db.close();
}

/** Keeps writing one point at a time until stopped; tells how many were acknowledged. */
function writer(store: Store, from: number) {
  let next = from;
  let stop = false;
  const done = (async () => {
    while (!stop) {
      await writePoint(store, next);
      next++;
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  return {
    acked: () => next - 1,
    async stop() {
      stop = true;
      await done;
      return next - 1;
    },
  };
}

function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error("expected an error");
}

describe("backing up a running store and restoring it", () => {
  const methods: Array<[string, BackupMethod]> = [
    ["the stepwise copy", "copy"],
    ["VACUUM INTO", "vacuum"],
  ];
  for (const [name, method] of methods) {
    test(`${name} takes a consistent snapshot while writes go on, and the restore gets a new incarnation`, async () => {
      const dir = tempDir();
      const store = openStore(dir);
      for (let i = 1; i <= 50; i++) await writePoint(store, i);
      pad(dir, 4);
      const w = writer(store, 51);
      await new Promise((r) => setTimeout(r, 20));
      const before = w.acked();
      const out = join(tempDir(), "snap.db");
      const result = await backupStore(join(dir, STORE_FILE), out, { method, stepMs: 2 });
      const after = await w.stop();
      expect(result).toMatchObject({ file: out, method, nodeId: "b1", incarnation: store.incarnation });
      expect(result.bytes).toBeGreaterThan(4 * 1024 * 1024);
      // No leftovers beside the backup.
      expect(readdirSync(join(out, ".."))).toEqual(["snap.db"]);

      const restoredDir = tempDir();
      const restored = restoreBackup(out, restoredDir);
      expect(restored.nodeId).toBe("b1");
      expect(restored.previousIncarnation).toBe(store.incarnation);
      expect(restored.incarnation).not.toBe(store.incarnation);
      const again = openStore(restoredDir);
      expect(again.incarnation).toBe(restored.incarnation);
      // Exactly the first k writes, for a k between what was acknowledged before and after.
      const text = exportOf(again);
      const k = text.split("\n").length - 1;
      expect(k).toBeGreaterThanOrEqual(before);
      expect(k).toBeLessThanOrEqual(after);
      expect(text).toBe(linesUpTo(k));
      // The restored store takes new writes after its last LSN.
      await writePoint(again, 100_000);
      expect(again.stats().lastLsn).toBeGreaterThan(0);
      await again.close();
      await store.close();
    }, 60_000);
  }

  test("the stepwise copy holds the writer only a step at a time on a large store", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    await writePoint(store, 1);
    pad(dir, 32);
    const w = writer(store, 2);
    await new Promise((r) => setTimeout(r, 20));
    const before = w.acked();
    const copy = await backupStore(join(dir, STORE_FILE), join(tempDir(), "copy.db"), { method: "copy", stepMs: 10 });
    const during = w.acked() - before;
    await w.stop();
    const vacuum = await backupStore(join(dir, STORE_FILE), join(tempDir(), "vacuum.db"), { method: "vacuum" });
    // VACUUM INTO holds the loop for the whole file (about 2 ms per MB here); the copy for one
    // step of about 10 ms plus one read. Generous bounds, to hold on a slow CI machine too.
    expect(copy.steps).toBeGreaterThan(1);
    expect(copy.longestStepMs).toBeLessThan(150);
    expect(vacuum.steps).toBe(1);
    expect(during).toBeGreaterThan(0);
    expect(Math.abs(copy.bytes - vacuum.bytes)).toBeLessThan(copy.bytes * 0.1);
    await store.close();
  }, 60_000);

  test("refuses to overwrite an existing backup file", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    await writePoint(store, 1);
    const out = join(tempDir(), "exists.db");
    writeFileSync(out, "keep me");
    await expect(backupStore(join(dir, STORE_FILE), out)).rejects.toThrow("already exists");
    expect(readFileSync(out, "utf8")).toBe("keep me");
    await store.close();
  });

  test("a stopped node's directory is backed up offline, a running one refused", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    await writePoint(store, 1);
    await writePoint(store, 2);
    const out = join(tempDir(), "offline.db");
    await expect(backupDataDir(dir, out)).rejects.toThrow(`the node using ${dir} is running (pid ${process.pid})`);
    await store.close();
    const result = await backupDataDir(dir, out);
    expect(result.method).toBe("vacuum");
    const target = tempDir();
    restoreBackup(out, target);
    const again = openStore(target);
    expect(exportOf(again)).toBe(linesUpTo(2));
    await again.close();
  });
});

describe("restore refuses what it must not overwrite or cannot trust", () => {
  let backup = "";
  const setup = async () => {
    if (backup !== "") return backup;
    const dir = tempDir();
    const store = openStore(dir);
    await writePoint(store, 1);
    await store.close();
    backup = join(tempDir(), "good.db");
    await backupDataDir(dir, backup);
    return backup;
  };

  const cases: Array<[string, (good: string) => [string, string], string]> = [
    [
      "a data directory that is not empty",
      (good) => {
        const d = tempDir();
        writeFileSync(join(d, "something"), "x");
        return [good, d];
      },
      "is not empty (something)",
    ],
    [
      "a data directory a running node holds",
      (good) => {
        const d = tempDir();
        writeFileSync(join(d, "tsdb.lock"), String(process.pid));
        return [good, d];
      },
      `is running (pid ${process.pid})`,
    ],
    ["a data directory that does not exist", (good) => [good, join(tempDir(), "nope")], "does not exist"],
    [
      "a file that is not a SQLite database",
      () => {
        const f = join(tempDir(), "text.db");
        writeFileSync(f, "this is not a database at all, just text");
        return [f, tempDir()];
      },
      "is not a tsdb-pair backup (not a SQLite database)",
    ],
    [
      "a SQLite database that is not a tsdb-pair store",
      () => {
        const f = join(tempDir(), "other.db");
        const db = new Database(f);
        db.exec("CREATE TABLE t (x)");
        db.close();
        return [f, tempDir()];
      },
      "is a SQLite database but not a tsdb-pair store",
    ],
    [
      "a backup cut short",
      (good) => {
        const f = join(tempDir(), "short.db");
        const bytes = readFileSync(good);
        writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
        return [f, tempDir()];
      },
      "is damaged",
    ],
    ["a backup file that is not there", () => [join(tempDir(), "missing.db"), tempDir()], "cannot read backup file"],
  ];
  for (const [name, arrange, message] of cases) {
    test(`refuses ${name}`, async () => {
      const [file, dir] = arrange(await setup());
      const before = existsSync(dir) ? readdirSync(dir) : null;
      const err = errorOf(() => restoreBackup(file, dir));
      expect(isTsdbError(err)).toBe(true);
      expect(err.message).toContain(message);
      // Nothing was added to the directory.
      expect(existsSync(dir) ? readdirSync(dir) : null).toEqual(before);
    });
  }

  test("an empty directory with only lost+found is fine", async () => {
    const d = tempDir();
    mkdirSync(join(d, "lost+found"));
    const r = restoreBackup(await setup(), d);
    expect(r.file).toBe(join(d, STORE_FILE));
    expect(verifyBackupFile(r.file).incarnation).toBe(r.incarnation);
  });
});

describe("backups over HTTP", () => {
  /** A fetch that hands POST /backup to backupResponse, as the server's route does, without a socket. */
  const server = (source: string, dataDir: string, damage = false): typeof fetch =>
    (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      expect([req.method, new URL(req.url).pathname]).toEqual(["POST", "/backup"]);
      const res = await backupResponse(source, dataDir, { signal: req.signal });
      if (!damage) return res;
      const body = new Uint8Array(await res.arrayBuffer());
      body[body.length - 1] = body[body.length - 1]! ^ 0xff;
      return new Response(body, { headers: res.headers });
    }) as typeof fetch;

  test("the CLI saves a checked snapshot of a running node, and the node keeps no copy", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    for (let i = 1; i <= 5; i++) await writePoint(store, i);
    const out = join(tempDir(), "over-http.db");
    const saved = await downloadBackup("http://127.0.0.1:8086", out, { fetch: server(join(dir, STORE_FILE), dir) });
    expect(saved).toMatchObject({ file: out, nodeId: "b1", incarnation: store.incarnation });
    expect(saved.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(saved.snapshotMs).not.toBeNull();
    expect(readdirSync(dir).filter((n) => n.startsWith(".backup-"))).toEqual([]);
    const target = tempDir();
    restoreBackup(out, target);
    const again = openStore(target);
    expect(exportOf(again)).toBe(linesUpTo(5));
    await again.close();
    await store.close();
  });

  test("a snapshot damaged on the way is refused and not saved", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    await writePoint(store, 1);
    const out = join(tempDir(), "damaged.db");
    await expect(downloadBackup("http://127.0.0.1:8086", out, { fetch: server(join(dir, STORE_FILE), dir, true) })).rejects.toThrow("sha256 mismatch");
    expect(readdirSync(join(out, ".."))).toEqual([]);
    await store.close();
  });

  test("a second backup while one is being sent is refused", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    await writePoint(store, 1);
    const first = await backupResponse(join(dir, STORE_FILE), dir);
    await expect(backupResponse(join(dir, STORE_FILE), dir)).rejects.toThrow("a backup is already running");
    await first.arrayBuffer();
    // Once the first is sent, the next one may start.
    const third = await backupResponse(join(dir, STORE_FILE), dir);
    await third.body!.cancel();
    expect(readdirSync(dir).filter((n) => n.startsWith(".backup-"))).toEqual([]);
    await store.close();
  });

  const failures: Array<[string, Response, string]> = [
    ["an older node without /backup", new Response("404 page not found", { status: 404 }), "HTTP 404"],
    ["a wrong token", new Response('{"error":"unauthorized"}', { status: 401 }), "HTTP 401"],
  ];
  for (const [name, response, message] of failures) {
    test(`reports ${name} and saves nothing`, async () => {
      const out = join(tempDir(), "x.db");
      await expect(downloadBackup("http://127.0.0.1:1", out, { fetch: (async () => response) as unknown as typeof fetch })).rejects.toThrow(message);
      expect(existsSync(out)).toBe(false);
    });
  }
});
