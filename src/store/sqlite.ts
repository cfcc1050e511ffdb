/**
 * Opening the SQLite (libSQL) file: pragmas, embedded migrations, and a drizzle handle over
 * the same connection. We use the synchronous `libsql` binding directly because one writer
 * thread does all mutation and a synchronous transaction is both simpler and faster than
 * the promise-based client (which wraps the same binding for local files).
 */
import Database from "libsql";
import { BaseSQLiteDatabase, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { BetterSQLiteSession } from "drizzle-orm/better-sqlite3/session";
import type { SyncMode } from "../config.ts";
import { MIGRATIONS } from "./migrations.ts";

export type Sqlite = InstanceType<typeof Database>;
export type Drizzle = BaseSQLiteDatabase<"sync", unknown>;

export interface OpenedDb {
  readonly sqlite: Sqlite;
  readonly orm: Drizzle;
}

export const SYNC_PRAGMA: Record<SyncMode, string> = { full: "FULL", normal: "NORMAL", off: "OFF" };

/** Opens (creating if needed) the store file and brings its schema up to date. */
export function openDb(file: string, sync: SyncMode): OpenedDb {
  const sqlite = new Database(file);
  try {
    // Before anything that reads the file: a lock held for a moment by another connection
    // (a tool, or a process still letting go of the file) is waited for, not an error.
    sqlite.pragma("busy_timeout = 5000");
    // auto_vacuum only takes effect before the first table exists: set it first so trimmed
    // frames and dropped chunks can be given back to the file system.
    sqlite.pragma("auto_vacuum = INCREMENTAL");
    sqlite.pragma("journal_mode = WAL");
  } catch (e) {
    sqlite.close();
    // libsql's errors may carry only a code ("Error" alone was all a failed start said).
    const code = (e as { code?: string }).code;
    throw new Error(`cannot open ${file}: ${[code, e instanceof Error ? e.message : String(e)].filter((x) => x).join(": ")}`, { cause: e });
  }
  sqlite.pragma(`synchronous = ${SYNC_PRAGMA[sync]}`);
  // 8 MiB of pages: the writer appends (frames, chunks), and reads of older pages come from
  // the OS's file cache. 32 MiB cost 18-30 MiB of peak memory under the ingest benchmark and
  // bought no speed there, nor in the query benchmark's Grafana panels.
  sqlite.pragma("cache_size = -8192");
  // Each request is one frame of about its body's size (often a megabyte), freed again once
  // its points are flushed. With SQLite's default of 1,000 pages, a checkpoint (copying pages
  // into the main file and syncing it) ran every few commits; at 64 MB most frame pages are
  // freed and reused before they are ever copied.
  sqlite.pragma("wal_autocheckpoint = 16384");
  const dialect = new SQLiteSyncDialect();
  // The libsql binding implements better-sqlite3's API, which this session drives.
  const session = new BetterSQLiteSession(sqlite as never, dialect, undefined, {});
  const orm = new BaseSQLiteDatabase("sync", dialect, session as never, undefined) as Drizzle;
  dialect.migrate([...MIGRATIONS], session as never, undefined);
  return { sqlite, orm };
}

/**
 * How many bytes the rightmost leaf of a table's b-tree has free: the leaf SQLite appends a
 * row with a larger rowid than any to, when its cell fits (fileformat2.html, "B-tree Pages").
 * Reads one page a level of the tree through `sqlite_dbpage`, as the connection sees them
 * (a transaction's own changes included).
 */
export class RightmostLeaf {
  private readonly root;
  private readonly page;

  constructor(
    sqlite: Sqlite,
    private readonly table: string,
  ) {
    this.root = sqlite.prepare("SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?").raw();
    this.page = pageReader(sqlite);
  }

  /**
   * Free bytes of the leaf: 0 when the tree is not the table b-tree this expects, or when this
   * SQLite build cannot read pages (rows then only fill leaves less well).
   */
  free(): number {
    if (this.page === null) return 0;
    // The root moves only when tables are created or dropped; it is read each time all the same.
    let pgno = Number((this.root.get([this.table]) as [number] | undefined)?.[0] ?? 0);
    for (let depth = 0; pgno > 0 && depth < 32; depth++) {
      const d = (this.page.get([pgno]) as [Uint8Array] | undefined)?.[0];
      if (d === undefined) return 0;
      // Page 1 starts with the 100-byte database header.
      const h = pgno === 1 ? 100 : 0;
      const u16 = (at: number) => (d[at]! << 8) | d[at + 1]!;
      if (d[h] === INTERIOR_TABLE) {
        // The right-most child pointer: the subtree of the largest rowids.
        pgno = ((d[h + 8]! << 24) | (d[h + 9]! << 16) | (d[h + 10]! << 8) | d[h + 11]!) >>> 0;
        continue;
      }
      if (d[h] !== LEAF_TABLE) return 0;
      const cells = u16(h + 3);
      // A cell content start of 0 means 65,536 (a 64 KiB page with no cells).
      const contentStart = u16(h + 5) || 65_536;
      let free = contentStart - (h + 8 + 2 * cells) + d[h + 7]!;
      // Freeblocks: a chain of [next, size] pairs inside the cell content area.
      for (let fb = u16(h + 1), hops = 0; fb !== 0 && hops < d.length; fb = u16(fb), hops++) free += u16(fb + 2);
      return free;
    }
    return 0;
  }
}

/** A statement reading one page by number, or null without the sqlite_dbpage table. */
function pageReader(sqlite: Sqlite) {
  try {
    return sqlite.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?").raw();
  } catch {
    return null;
  }
}

/** B-tree page types (the first byte of a page's header). */
const INTERIOR_TABLE = 0x05;
const LEAF_TABLE = 0x0d;
