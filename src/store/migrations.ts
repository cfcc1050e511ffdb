/**
 * Embedded migrations, in drizzle's migration shape, so the single binary never reads a
 * migration folder from disk. Append new entries; never edit a shipped one.
 * The SQL matches ./schema.ts.
 */
export interface Migration {
  readonly sql: string[];
  readonly bps: boolean;
  readonly folderMillis: number;
  readonly hash: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    hash: "0001_initial",
    folderMillis: 1_795_000_000_000,
    bps: true,
    sql: [
      `CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)`,
      `CREATE TABLE databases (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
      `CREATE TABLE nodes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
      `CREATE TABLE series (id INTEGER PRIMARY KEY, db_id INTEGER NOT NULL, measurement TEXT NOT NULL, key TEXT NOT NULL)`,
      `CREATE UNIQUE INDEX series_by_key ON series (db_id, key)`,
      `CREATE TABLE fields (id INTEGER PRIMARY KEY, db_id INTEGER NOT NULL, measurement TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL)`,
      `CREATE UNIQUE INDEX fields_by_name ON fields (db_id, measurement, name)`,
      `CREATE TABLE frames (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin_id INTEGER NOT NULL, lsn INTEGER NOT NULL, hlc INTEGER NOT NULL, bytes BLOB NOT NULL)`,
      `CREATE UNIQUE INDEX frames_by_origin ON frames (origin_id, lsn)`,
      `CREATE TABLE chunks (id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, field_id INTEGER NOT NULL, min_time INTEGER NOT NULL, max_time INTEGER NOT NULL, count INTEGER NOT NULL, times BLOB NOT NULL, vals BLOB NOT NULL, hlcs BLOB NOT NULL, origin_id INTEGER, origins BLOB)`,
      `CREATE INDEX chunks_by_series ON chunks (series_id, field_id, min_time)`,
    ],
  },
  {
    hash: "0002_pairing",
    folderMillis: 1_795_000_000_001,
    bps: true,
    sql: [
      // How far this node applied each twin's frames, and which incarnation of it that was.
      `CREATE TABLE cursors (origin_id INTEGER PRIMARY KEY, incarnation TEXT NOT NULL, lsn INTEGER NOT NULL, hlc INTEGER NOT NULL)`,
      // Ranges of a twin's frames that were no longer retained when asked for, and when they were refilled.
      `CREATE TABLE gaps (id INTEGER PRIMARY KEY, origin_id INTEGER NOT NULL, from_lsn INTEGER NOT NULL, to_lsn INTEGER NOT NULL, detected_at INTEGER NOT NULL, repaired_at INTEGER)`,
      // The newest version in a chunk, so a backfill "newer than X" skips old chunks undecoded.
      `ALTER TABLE chunks ADD COLUMN max_hlc INTEGER`,
    ],
  },
  {
    hash: "0003_tombstones",
    folderMillis: 1_795_000_000_002,
    bps: true,
    sql: [
      // What deletes and drops removed, and as of which version: a write from the twin that is
      // older than a tombstone covering it is not stored (a delete is never undone by it).
      `CREATE TABLE tombstones (id INTEGER PRIMARY KEY, db TEXT NOT NULL, measurement TEXT, series_key TEXT, start_time INTEGER NOT NULL, end_time INTEGER NOT NULL, hlc INTEGER NOT NULL, origin_id INTEGER NOT NULL)`,
    ],
  },
  {
    hash: "0004_retention",
    folderMillis: 1_795_000_000_003,
    bps: true,
    sql: [
      // Per-database retention (ns, 0 = keep forever; NULL = the node's --retention), and the
      // version of the CREATE DATABASE that set it, so concurrent changes converge.
      `ALTER TABLE databases ADD COLUMN retention_ns INTEGER`,
      `ALTER TABLE databases ADD COLUMN retention_hlc INTEGER`,
    ],
  },
  {
    hash: "0005_field_versions",
    folderMillis: 1_795_000_000_004,
    bps: true,
    sql: [
      // The version (clock, node) of the write that gave a field its type, so the twins settle
      // a field written with two types at once the same way: the earlier type wins on both.
      `ALTER TABLE fields ADD COLUMN created_hlc INTEGER`,
      `ALTER TABLE fields ADD COLUMN created_by TEXT`,
    ],
  },
  {
    hash: "0006_catch_up",
    folderMillis: 1_795_000_000_005,
    bps: true,
    sql: [
      // A catch-up from storage lists the chunks newer than the twin's cursor without reading
      // every chunk row.
      `CREATE INDEX chunks_by_hlc ON chunks (max_hlc)`,
      // Own frames that are not plain writes (schema changes, deletes, drops), which only the
      // frame log carries exactly: a twin behind any of them catches up over frames. Frames
      // logged before this table existed are all listed, since their kind is not known here.
      `CREATE TABLE own_schema_frames (lsn INTEGER PRIMARY KEY)`,
      `INSERT OR IGNORE INTO own_schema_frames (lsn) SELECT lsn FROM frames`,
    ],
  },
  {
    hash: "0007_cut_rows",
    folderMillis: 1_795_000_000_006,
    bps: true,
    sql: [
      // 1 on a row cut to fill a leaf page, whose values continue in the next row of its series
      // and field; compaction counts the two as one chunk rather than merge them back.
      `ALTER TABLE chunks ADD COLUMN continued INTEGER`,
    ],
  },
];
