/**
 * Backup and restore of a node's store.
 *
 * An online backup must not stop ingest for more than a moment. The libsql binding is
 * synchronous, so any SQLite call runs on the event loop and holds the writer (and every HTTP
 * request) until it returns: a `VACUUM INTO` of the whole file holds it for as long as the copy
 * takes, which grows with the store. Measured on the 2-core dev machine with writes going on:
 * VACUUM INTO held the loop 0.21-0.29 s for a 100 MB store and 0.95 s for 400 MB (about 2.4 ms
 * per MB, so half a minute for a 10 GB store); the stepwise copy below held it at most 29 ms
 * (100 MB, 12 steps, 0.33 s in all) and 58 ms (400 MB, 52 steps, 1.7 s). So the default method copies
 * in steps instead: a second connection opens one read transaction (in WAL mode a reader sees a
 * fixed snapshot and does not block the writer), and the rows are copied table by table into a
 * new file in steps of a few milliseconds, yielding to the event loop between steps. The result
 * is the same consistent snapshot VACUUM INTO makes, and the writer waits at most one step.
 * `method: "vacuum"` keeps VACUUM INTO for stopped nodes, where holding the loop costs nothing.
 *
 * Files are written as litestream does: to a temporary name beside the target, fsynced,
 * renamed, and the directory fsynced.
 */
import { createHash, randomUUID } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, readSync, renameSync, statfsSync, statSync, unlinkSync, writeSync, chownSync, chmodSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import Database from "libsql";
import { TsdbError } from "../errors.ts";
import type { Sqlite } from "../store/sqlite.ts";
import { LOCK_FILE, STORE_FILE } from "../store/store.ts";

export { STORE_FILE };
/** Prefix of the snapshot files an online backup writes into the data directory. */
const SNAPSHOT_PREFIX = ".backup-";
/** Default longest time one copy step holds the event loop. */
export const DEFAULT_STEP_MS = 20;
/** Rows read per query while copying (chunk rows are a few KB each). */
const ROWS_PER_READ = 64;
/** Entries a fresh file system may have in an otherwise empty data directory. */
const IGNORED_ENTRIES = new Set(["lost+found"]);
const SQLITE_MAGIC = "SQLite format 3\u0000";

export type BackupMethod = "copy" | "vacuum";

export interface BackupOptions {
  /** "copy" (default): stepwise, for a running node. "vacuum": one VACUUM INTO, for a stopped one. */
  readonly method?: BackupMethod;
  /** Longest time one copy step may hold the event loop (default 20 ms). */
  readonly stepMs?: number;
  /** Replace `outFile` if it exists (default: refuse). */
  readonly overwrite?: boolean;
  /** Cancels the backup between steps (server shutdown, client gone). */
  readonly signal?: AbortSignal;
  /** Called after each step (progress). */
  readonly onStep?: () => void;
}

export interface BackupResult {
  readonly file: string;
  readonly bytes: number;
  readonly method: BackupMethod;
  /** Wall time of the whole backup. */
  readonly ms: number;
  /** Longest time one step held the event loop, i.e. the longest a write could wait for it. */
  readonly longestStepMs: number;
  readonly steps: number;
  readonly nodeId: string;
  readonly incarnation: string;
}

/**
 * Takes a consistent snapshot of a store into `outFile` while the server keeps writing. The
 * source is a connection to the store (the server's own, or any other) or the store file's
 * path. The result is a plain SQLite database (rollback journal mode, one file) that
 * `restoreBackup` puts back.
 */
export async function backupStore(source: Sqlite | string, outFile: string, opts: BackupOptions = {}): Promise<BackupResult> {
  if (typeof source !== "string") return snapshot(source, outFile, opts);
  if (!existsSync(source)) throw new TsdbError("not_found", `no store file ${source}`);
  const db = new Database(source);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    return await snapshot(db, outFile, opts);
  } finally {
    db.close();
  }
}

async function snapshot(sqlite: Sqlite, outFile: string, opts: BackupOptions): Promise<BackupResult> {
  const method = opts.method ?? "copy";
  if (!opts.overwrite && existsSync(outFile)) {
    throw new TsdbError("bad_request", `backup file ${outFile} already exists: choose another name or remove it first`);
  }
  checkFreeSpace(sqlite, dirname(outFile));
  const tmp = join(dirname(outFile), `.${basename(outFile)}.partial-${process.pid}-${randomUUID().slice(0, 8)}`);
  const started = performance.now();
  let stats: { longestStepMs: number; steps: number; nodeId: string; incarnation: string };
  try {
    stats = method === "vacuum" ? vacuumInto(sqlite, tmp) : await stepwiseCopy(sqlite, tmp, opts.stepMs ?? DEFAULT_STEP_MS, opts.signal, opts.onStep);
    fsyncFile(tmp);
    renameSync(tmp, outFile);
    fsyncDir(dirname(outFile));
  } catch (e) {
    removeQuietly(tmp);
    removeQuietly(tmp + "-journal");
    throw e;
  }
  return { file: outFile, bytes: statSync(outFile).size, method, ms: performance.now() - started, ...stats };
}

function vacuumInto(sqlite: Sqlite, tmp: string): { longestStepMs: number; steps: number; nodeId: string; incarnation: string } {
  const t0 = performance.now();
  sqlite.prepare("VACUUM INTO ?").run([tmp]);
  const ms = performance.now() - t0;
  const id = readIdentity(sqlite);
  return { longestStepMs: ms, steps: 1, ...id };
}

interface CopyTable {
  readonly name: string;
  readonly columns: readonly string[];
  readonly withoutRowid: boolean;
}

/** The stepwise copy: one read snapshot on a second connection, rows copied a few ms at a time. */
async function stepwiseCopy(
  sqlite: Sqlite,
  tmp: string,
  stepMs: number,
  signal: AbortSignal | undefined,
  onStep: (() => void) | undefined,
): Promise<{ longestStepMs: number; steps: number; nodeId: string; incarnation: string }> {
  const sourcePath = mainFile(sqlite);
  if (sourcePath === "") return vacuumInto(sqlite, tmp); // in-memory store (tests): nothing else can open it
  let longest = 0;
  let steps = 0;
  let stepStart = performance.now();
  const endStep = () => {
    const ms = performance.now() - stepStart;
    if (ms > longest) longest = ms;
    steps++;
    onStep?.();
  };
  const src = new Database(sourcePath);
  let dst: Sqlite | null = null;
  try {
    src.exec("PRAGMA busy_timeout = 5000");
    src.exec("PRAGMA query_only = 1");
    // The snapshot starts with the first read inside the transaction and lasts until COMMIT.
    src.exec("BEGIN");
    const pragma = (name: string) => Number(first(src.prepare(`PRAGMA ${name}`).raw().get([])));
    const pageSize = pragma("page_size");
    const autoVacuum = pragma("auto_vacuum");
    const userVersion = pragma("user_version");
    const applicationId = pragma("application_id");
    const schema = src
      .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
      .raw()
      .all([]) as Array<[string, string, string]>;
    const identity = readIdentity(src);

    dst = new Database(tmp);
    // Page size and auto_vacuum only take effect before the first table exists.
    dst.exec(`PRAGMA page_size = ${pageSize}`);
    dst.exec(`PRAGMA auto_vacuum = ${autoVacuum}`);
    dst.exec("PRAGMA journal_mode = OFF");
    dst.exec("PRAGMA synchronous = OFF");
    dst.exec(`PRAGMA user_version = ${userVersion}`);
    dst.exec(`PRAGMA application_id = ${applicationId}`);
    const tables: CopyTable[] = [];
    dst.exec("BEGIN");
    for (const [type, name, sql] of schema) {
      if (type !== "table" || name.startsWith("sqlite_")) continue;
      dst.exec(sql);
      const cols = src.prepare(`PRAGMA table_xinfo(${quoteId(name)})`).raw().all([]) as Array<[number, string, string, number, unknown, number, number]>;
      // hidden: 0 normal, 1 virtual-table hidden, 2/3 generated (computed, not stored by us).
      tables.push({ name, columns: cols.filter((c) => c[6] === 0).map((c) => c[1]), withoutRowid: /\bWITHOUT\s+ROWID\b/i.test(sql) });
    }
    // Indexes before the rows, so their upkeep is spread over the steps instead of one long
    // CREATE INDEX at the end that would hold the loop.
    for (const [type, , sql] of schema) if (type === "index") dst.exec(sql);
    dst.exec("COMMIT");

    const yieldNow = async () => {
      dst!.exec("COMMIT");
      endStep();
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (signal?.aborted) throw new TsdbError("unavailable", "backup cancelled");
      stepStart = performance.now();
      dst!.exec("BEGIN");
    };
    dst.exec("BEGIN");
    for (const t of tables) {
      const cols = t.columns.map(quoteId).join(", ");
      const marks = t.columns.map(() => "?").join(", ");
      if (t.withoutRowid) {
        const read = src.prepare(`SELECT ${cols} FROM ${quoteId(t.name)} LIMIT ? OFFSET ?`).raw().safeIntegers(true);
        const write = dst.prepare(`INSERT INTO ${quoteId(t.name)} (${cols}) VALUES (${marks})`);
        for (let offset = 0; ; ) {
          const rows = read.all([ROWS_PER_READ, offset]) as unknown[][];
          for (const row of rows) write.run(row);
          offset += rows.length;
          if (rows.length < ROWS_PER_READ) break;
          if (performance.now() - stepStart >= stepMs) await yieldNow();
        }
        continue;
      }
      const read = src.prepare(`SELECT rowid, ${cols} FROM ${quoteId(t.name)} WHERE rowid > ? ORDER BY rowid LIMIT ?`).raw().safeIntegers(true);
      const write = dst.prepare(`INSERT INTO ${quoteId(t.name)} (rowid, ${cols}) VALUES (?, ${marks})`);
      let last: bigint = -(2n ** 63n);
      for (;;) {
        const rows = read.all([last, ROWS_PER_READ]) as unknown[][];
        for (const row of rows) write.run(row);
        if (rows.length < ROWS_PER_READ) break;
        last = rows[rows.length - 1]![0] as bigint;
        if (performance.now() - stepStart >= stepMs) await yieldNow();
      }
    }
    // AUTOINCREMENT counters, so LSN-like sequences never go back after a restore.
    if (schema.some(([type, name]) => type === "table" && name === "sqlite_sequence")) {
      dst.exec("DELETE FROM sqlite_sequence");
      const seqs = src.prepare("SELECT name, seq FROM sqlite_sequence").raw().safeIntegers(true).all([]) as unknown[][];
      const put = dst.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)");
      for (const s of seqs) put.run(s);
    }
    // Triggers and views last: a trigger created earlier would fire on the copied rows.
    for (const [type, , sql] of schema) if (type === "trigger" || type === "view") dst.exec(sql);
    dst.exec("COMMIT");
    endStep();
    src.exec("COMMIT");
    return { longestStepMs: longest, steps, ...identity };
  } finally {
    try {
      if (src.inTransaction) src.exec("ROLLBACK");
    } catch {
      // the snapshot is released by close anyway
    }
    src.close();
    dst?.close();
  }
}

/** The main database file of a connection ("" for an in-memory one). */
function mainFile(sqlite: Sqlite): string {
  const rows = sqlite.prepare("PRAGMA database_list").raw().all([]) as Array<[number, string, string]>;
  return rows.find((r) => r[1] === "main")?.[2] ?? "";
}

function readIdentity(db: Sqlite): { nodeId: string; incarnation: string } {
  const get = db.prepare("SELECT value FROM meta WHERE key = ?").raw();
  const nodeId = first(get.get(["node_id"]));
  const incarnation = first(get.get(["incarnation"]));
  if (typeof nodeId !== "string" || typeof incarnation !== "string") {
    throw new TsdbError("internal", "the store has no node identity yet (meta node_id/incarnation missing)");
  }
  return { nodeId, incarnation };
}

/** Refuses to start a backup that cannot fit (it would fill the disk the store lives on). */
function checkFreeSpace(sqlite: Sqlite, dir: string): void {
  let need: number;
  let have: number;
  try {
    const pragma = (name: string) => Number(first(sqlite.prepare(`PRAGMA ${name}`).raw().get([])));
    need = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
    const fs = statfsSync(dir);
    have = fs.bavail * fs.bsize;
  } catch {
    return; // no statfs here: let the write itself fail if it must
  }
  if (need * 1.05 + 16 * 1024 * 1024 > have) {
    throw new TsdbError("unavailable", `not enough free space in ${dir} for a backup: about ${mib(need)} needed, ${mib(have)} available`);
  }
}

// ---------------------------------------------------------------------------------------------
// Over HTTP: the server streams a snapshot, the CLI saves and checks it.

/** Headers of a backup response. */
export const BACKUP_HEADERS = {
  nodeId: "X-Tsdb-Pair-Node-Id",
  incarnation: "X-Tsdb-Pair-Incarnation",
  sha256: "X-Tsdb-Pair-Backup-Sha256",
  ms: "X-Tsdb-Pair-Backup-Ms",
  longestStepMs: "X-Tsdb-Pair-Backup-Longest-Step-Ms",
} as const;

/** A backup being taken or sent, and when it last made progress (a client that stops reading must not block backups for ever). */
let backupRunning = false;
let backupActivity = 0;
/** A backup whose client read nothing for this long no longer blocks the next one. */
const STALLED_BACKUP_MS = 60_000;

export interface BackupResponseOptions {
  /** Cancels the snapshot when the client goes away (pass `request.signal`). */
  readonly signal?: AbortSignal;
  readonly stepMs?: number;
  /** Called with the finished snapshot (metrics, logs). */
  readonly onSnapshot?: (result: BackupResult) => void;
}

/**
 * The response to `POST /backup`: takes a snapshot of the store (a connection, or the store
 * file's path) into the data directory (the only place the hardened service may write) and
 * streams it as the body, removing it once sent. One backup at a time.
 */
export async function backupResponse(source: Sqlite | string, dataDir: string, opts: BackupResponseOptions = {}): Promise<Response> {
  if (backupRunning && Date.now() - backupActivity < STALLED_BACKUP_MS) {
    throw new TsdbError("unavailable", "a backup is already running on this node; try again when it has finished");
  }
  backupRunning = true;
  backupActivity = Date.now();
  let file: string | null = null;
  try {
    removeStaleSnapshots(dataDir);
    file = join(dataDir, `${SNAPSHOT_PREFIX}${Date.now()}-${randomUUID().slice(0, 8)}.db`);
    const result = await backupStore(source, file, { signal: opts.signal, stepMs: opts.stepMs, onStep: () => (backupActivity = Date.now()) });
    opts.onSnapshot?.(result);
    const sha256 = await hashFile(file);
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    const mine = file;
    const body = fileStream(
      file,
      () => (backupActivity = Date.now()),
      () => {
        removeQuietly(mine);
        backupRunning = false;
      },
    );
    return new Response(body, {
      status: 200,
      headers: {
        "Content-Type": "application/vnd.sqlite3",
        "Content-Length": String(result.bytes),
        "Content-Disposition": `attachment; filename="tsdb-pair-${result.nodeId}-${stamp}.db"`,
        [BACKUP_HEADERS.nodeId]: result.nodeId,
        [BACKUP_HEADERS.incarnation]: result.incarnation,
        [BACKUP_HEADERS.sha256]: sha256,
        [BACKUP_HEADERS.ms]: String(Math.round(result.ms)),
        [BACKUP_HEADERS.longestStepMs]: String(Math.round(result.longestStepMs * 10) / 10),
      },
    });
  } catch (e) {
    if (file !== null) removeQuietly(file);
    backupRunning = false;
    throw e;
  }
}

/** A file as a byte stream that calls `done` once, when fully read, cancelled or failed. */
function fileStream(file: string, progress: () => void, done: () => void): ReadableStream<Uint8Array> {
  let handle: Awaited<ReturnType<typeof open>> | null = null;
  let finished = false;
  const finish = async () => {
    if (finished) return;
    finished = true;
    const h = handle;
    handle = null;
    await h?.close().catch(() => {});
    done();
  };
  return new ReadableStream<Uint8Array>({
    async start() {
      try {
        const h = await open(file, "r");
        // Cancelled before the file was open: close it here, nothing else will.
        if (finished) await h.close();
        else handle = h;
      } catch (e) {
        await finish();
        throw e;
      }
    },
    async pull(controller) {
      const h = handle;
      if (h === null) return;
      try {
        const buf = new Uint8Array(1024 * 1024);
        const { bytesRead } = await h.read(buf, 0, buf.length, null);
        if (finished) return; // cancelled while reading
        progress();
        if (bytesRead > 0) return controller.enqueue(buf.subarray(0, bytesRead));
        await finish();
        controller.close();
      } catch (e) {
        const wasFinished = finished;
        await finish();
        if (!wasFinished) controller.error(e);
      }
    },
    async cancel() {
      await finish();
    },
  });
}

async function hashFile(file: string): Promise<string> {
  const h = createHash("sha256");
  const fh = await open(file, "r");
  try {
    const buf = new Uint8Array(1024 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest("hex");
}

/** A snapshot left by a backup interrupted by a crash. */
function removeStaleSnapshots(dataDir: string): void {
  for (const name of readdirSync(dataDir)) if (name.startsWith(SNAPSHOT_PREFIX)) removeQuietly(join(dataDir, name));
}

export interface DownloadOptions {
  readonly token?: string;
  readonly fetch?: typeof fetch;
}

export interface SavedBackup {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly nodeId: string;
  readonly incarnation: string;
  /** How long the node's snapshot took, and the longest it held the node's writer. */
  readonly snapshotMs: number | null;
  readonly longestStepMs: number | null;
}

/**
 * `tsdb-pair backup --url URL --out FILE`: asks the running node for a snapshot, saves it to
 * FILE (temporary name, fsync, rename) after checking its length, checksum and integrity.
 */
export async function downloadBackup(url: string, outFile: string, opts: DownloadOptions = {}): Promise<SavedBackup> {
  if (existsSync(outFile)) throw new TsdbError("config", `backup file ${outFile} already exists: choose another --out or remove it first`);
  const target = new URL("/backup", url);
  const headers: Record<string, string> = opts.token ? { Authorization: `Token ${opts.token}` } : {};
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(target, { method: "POST", headers });
  } catch (e) {
    throw new TsdbError("unavailable", `cannot reach ${target.origin} for a backup: ${(e as Error).message}`, { cause: e });
  }
  if (!res.ok || res.body === null) {
    const text = (await res.text()).slice(0, 500);
    throw new TsdbError(res.status === 401 ? "unauthorized" : "unavailable", `backup from ${target.origin} failed: HTTP ${res.status} ${text}`.trim());
  }
  const tmp = join(dirname(outFile), `.${basename(outFile)}.partial-${process.pid}-${randomUUID().slice(0, 8)}`);
  const h = createHash("sha256");
  let bytes = 0;
  try {
    const fh = await open(tmp, "wx", 0o600);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        h.update(chunk);
        bytes += chunk.length;
        await fh.write(chunk);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    const sha256 = h.digest("hex");
    const wantLen = res.headers.get("Content-Length");
    if (wantLen !== null && Number(wantLen) !== bytes) {
      throw new TsdbError("corrupt_frame", `backup from ${target.origin} was cut short: ${bytes} of ${wantLen} bytes`);
    }
    const wantSha = res.headers.get(BACKUP_HEADERS.sha256);
    if (wantSha !== null && wantSha !== sha256) throw new TsdbError("corrupt_frame", `backup from ${target.origin} arrived damaged (sha256 mismatch)`);
    const info = verifyBackupFile(tmp);
    renameSync(tmp, outFile);
    fsyncDir(dirname(outFile));
    const num = (name: string) => {
      const v = res.headers.get(name);
      return v === null ? null : Number(v);
    };
    return { file: outFile, bytes, sha256, ...info, snapshotMs: num(BACKUP_HEADERS.ms), longestStepMs: num(BACKUP_HEADERS.longestStepMs) };
  } catch (e) {
    removeQuietly(tmp);
    throw e;
  }
}

/** `tsdb-pair backup --data DIR --out FILE` for a stopped node (refused while one runs). */
export async function backupDataDir(dataDir: string, outFile: string, opts: { overwrite?: boolean } = {}): Promise<BackupResult> {
  const pid = runningPid(dataDir);
  if (pid !== null) {
    throw new TsdbError(
      "unavailable",
      `the node using ${dataDir} is running (pid ${pid}): back it up online with tsdb-pair backup --url http://127.0.0.1:8086 --out ${outFile}`,
    );
  }
  const file = join(dataDir, STORE_FILE);
  if (!existsSync(file)) throw new TsdbError("not_found", `no store in ${dataDir} (no ${STORE_FILE})`);
  return await backupStore(file, outFile, { method: "vacuum", overwrite: opts.overwrite });
}

// ---------------------------------------------------------------------------------------------
// Restore

export interface BackupInfo {
  readonly nodeId: string;
  readonly incarnation: string;
}

/** Checks that `file` is an intact tsdb-pair store; returns its identity. */
export function verifyBackupFile(file: string): BackupInfo {
  let header = "";
  try {
    const fd = openSync(file, "r");
    try {
      const buf = new Uint8Array(16);
      readSync(fd, buf, 0, 16, 0);
      header = new TextDecoder("latin1").decode(buf);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new TsdbError("not_found", `cannot read backup file ${file}: ${(e as { code?: string }).code ?? String(e)}`, { cause: e });
  }
  if (header !== SQLITE_MAGIC) throw new TsdbError("bad_request", `${file} is not a tsdb-pair backup (not a SQLite database)`);
  let db: Sqlite;
  try {
    db = new Database(file);
  } catch (e) {
    throw new TsdbError("corrupt_frame", `backup file ${file} is damaged: ${(e as Error).message}`, { cause: e });
  }
  try {
    let check: unknown[][];
    try {
      check = db.prepare("PRAGMA quick_check").raw().all([]) as unknown[][];
    } catch (e) {
      throw new TsdbError("corrupt_frame", `backup file ${file} is damaged: ${(e as Error).message}`, { cause: e });
    }
    if (check.length !== 1 || check[0]![0] !== "ok") {
      throw new TsdbError("corrupt_frame", `backup file ${file} is damaged: ${check.map((r) => String(r[0])).slice(0, 3).join("; ")}`);
    }
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").raw().all([]) as unknown[][]).map((r) => r[0]));
    if (!tables.has("meta") || !tables.has("frames") || !tables.has("chunks")) {
      throw new TsdbError("bad_request", `${file} is a SQLite database but not a tsdb-pair store`);
    }
    return readIdentity(db);
  } finally {
    db.close();
  }
}

export interface RestoreResult {
  readonly file: string;
  readonly bytes: number;
  readonly nodeId: string;
  readonly previousIncarnation: string;
  readonly incarnation: string;
}

/**
 * Puts a backup into `dataDir` as its store: refuses a running node or a non-empty directory,
 * copies the file in (temporary name, fsync, rename) and gives it a new incarnation, so the
 * twin re-seeds this node instead of trusting offsets from before the backup. When run as root
 * the store file is given to the directory's owner (the service user).
 */
export function restoreBackup(file: string, dataDir: string): RestoreResult {
  const info = verifyBackupFile(file);
  const pid = runningPid(dataDir);
  if (pid !== null) throw new TsdbError("unavailable", `the node using ${dataDir} is running (pid ${pid}): stop it first (systemctl stop tsdb-pair)`);
  if (existsSync(dataDir)) {
    const entries = readdirSync(dataDir).filter((n) => !IGNORED_ENTRIES.has(n));
    if (entries.length > 0) {
      throw new TsdbError(
        "config",
        `data directory ${dataDir} is not empty (${entries.slice(0, 3).join(", ")}${entries.length > 3 ? ", …" : ""}): restore into an empty directory, or move the old one away first`,
      );
    }
  } else {
    throw new TsdbError("not_found", `data directory ${dataDir} does not exist: create it (owned by the service user) first`);
  }
  const dest = join(dataDir, STORE_FILE);
  const tmp = join(dataDir, `.restore-${process.pid}-${randomUUID().slice(0, 8)}.db`);
  const incarnation = randomUUID();
  try {
    copyFileDurably(file, tmp);
    const db = new Database(tmp);
    try {
      db.exec("BEGIN IMMEDIATE");
      const set = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
      set.run(["incarnation", incarnation]);
      set.run(["restored_from_incarnation", info.incarnation]);
      set.run(["restored_at", new Date().toISOString()]);
      db.exec("COMMIT");
    } finally {
      db.close();
    }
    removeQuietly(tmp + "-journal");
    fsyncFile(tmp);
    const dirStat = statSync(dataDir);
    chmodSync(tmp, 0o640);
    if (process.getuid?.() === 0) chownSync(tmp, dirStat.uid, dirStat.gid);
    renameSync(tmp, dest);
    fsyncDir(dataDir);
  } catch (e) {
    removeQuietly(tmp);
    removeQuietly(tmp + "-journal");
    throw e;
  }
  return { file: dest, bytes: statSync(dest).size, nodeId: info.nodeId, previousIncarnation: info.incarnation, incarnation };
}

// ---------------------------------------------------------------------------------------------
// Files

/** The pid holding `dataDir`'s lock when that process is alive, else null. */
export function runningPid(dataDir: string): number | null {
  let text: string;
  try {
    text = readFileSync(join(dataDir, LOCK_FILE), "utf8");
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM" ? pid : null;
  }
}

function copyFileDurably(from: string, to: string): void {
  const src = openSync(from, "r");
  const dst = openSync(to, "wx", 0o640);
  try {
    const buf = new Uint8Array(1024 * 1024);
    for (;;) {
      const n = readSync(src, buf, 0, buf.length, null);
      if (n === 0) break;
      let off = 0;
      // writeSync may write less than asked.
      while (off < n) off += writeSync(dst, buf.subarray(off, n));
    }
    fsyncSync(dst);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes a rename in `dir` durable; not every platform can open a directory, so failures are ignored. */
function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // not there
  }
}

function first(row: unknown): unknown {
  return (row as unknown[] | undefined)?.[0];
}

function quoteId(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}
