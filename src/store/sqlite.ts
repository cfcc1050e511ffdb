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

const SYNC_PRAGMA: Record<SyncMode, string> = { full: "FULL", normal: "NORMAL", off: "OFF" };

/** Opens (creating if needed) the store file and brings its schema up to date. */
export function openDb(file: string, sync: SyncMode): OpenedDb {
  const sqlite = new Database(file);
  // auto_vacuum only takes effect before the first table exists: set it first so trimmed
  // frames and dropped chunks can be given back to the file system.
  sqlite.pragma("auto_vacuum = INCREMENTAL");
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma(`synchronous = ${SYNC_PRAGMA[sync]}`);
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("cache_size = -32768");
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
