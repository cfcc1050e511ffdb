/**
 * The catalogue and storage tables. Points live in `chunks` (compressed columns, one row per
 * chunk of one series and field) and, until flushed, in the write-ahead `frames`.
 */
import { blob, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Key/value facts about this store: node id, incarnation, last LSN, flush checkpoint. */
export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

export const databases = sqliteTable("databases", {
  id: integer("id").primaryKey(),
  name: text("name").notNull().unique(),
  /** Retention in ns (0 = forever); null = the node's --retention. */
  retentionNs: integer("retention_ns"),
  /** Version of the CREATE DATABASE that set the retention. */
  retentionHlc: integer("retention_hlc"),
});

/** Node ids that have written values here (own and twin), so versions store a small number. */
export const nodes = sqliteTable("nodes", {
  id: integer("id").primaryKey(),
  name: text("name").notNull().unique(),
});

export const series = sqliteTable(
  "series",
  {
    id: integer("id").primaryKey(),
    dbId: integer("db_id").notNull(),
    measurement: text("measurement").notNull(),
    key: text("key").notNull(),
  },
  (t) => [uniqueIndex("series_by_key").on(t.dbId, t.key)],
);

export const fields = sqliteTable(
  "fields",
  {
    id: integer("id").primaryKey(),
    dbId: integer("db_id").notNull(),
    measurement: text("measurement").notNull(),
    name: text("name").notNull(),
    type: text("type").notNull(),
    /** Version of the write that gave the field its type (NULL: from before versions were kept). */
    createdHlc: integer("created_hlc"),
    createdBy: text("created_by"),
  },
  (t) => [uniqueIndex("fields_by_name").on(t.dbId, t.measurement, t.name)],
);

/** The frame log: own frames (origin = this node) and frames applied from the twin. */
export const frames = sqliteTable(
  "frames",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    originId: integer("origin_id").notNull(),
    lsn: integer("lsn").notNull(),
    hlc: integer("hlc").notNull(),
    bytes: blob("bytes").notNull(),
  },
  (t) => [uniqueIndex("frames_by_origin").on(t.originId, t.lsn)],
);

export const chunks = sqliteTable(
  "chunks",
  {
    id: integer("id").primaryKey(),
    seriesId: integer("series_id").notNull(),
    fieldId: integer("field_id").notNull(),
    minTime: integer("min_time").notNull(),
    maxTime: integer("max_time").notNull(),
    count: integer("count").notNull(),
    times: blob("times").notNull(),
    vals: blob("vals").notNull(),
    hlcs: blob("hlcs").notNull(),
    /** The origin of every value when the chunk has one writer, else null and `origins` holds them. */
    originId: integer("origin_id"),
    origins: blob("origins"),
    /** The newest version (clock) of any value in the chunk. */
    maxHlc: integer("max_hlc"),
    /** 1 when the row was cut to fill a leaf page and its values continue in the next row. */
    continued: integer("continued"),
  },
  (t) => [index("chunks_by_series").on(t.seriesId, t.fieldId, t.minTime), index("chunks_by_hlc").on(t.maxHlc)],
);

/** Own frames that are not plain writes (see migrations 0006). */
export const ownSchemaFrames = sqliteTable("own_schema_frames", {
  lsn: integer("lsn").primaryKey(),
});

/** How far this node applied a twin's frames (exactly-once: advanced in the applying transaction). */
export const cursors = sqliteTable("cursors", {
  originId: integer("origin_id").primaryKey(),
  incarnation: text("incarnation").notNull(),
  lsn: integer("lsn").notNull(),
  hlc: integer("hlc").notNull(),
});

/** Frame ranges a twin no longer had when asked, and when they were refilled from storage. */
export const gaps = sqliteTable("gaps", {
  id: integer("id").primaryKey(),
  originId: integer("origin_id").notNull(),
  fromLsn: integer("from_lsn").notNull(),
  toLsn: integer("to_lsn").notNull(),
  detectedAt: integer("detected_at").notNull(),
  repairedAt: integer("repaired_at"),
});

/** What a delete or drop removed, and as of which version (see migrations 0003). */
export const tombstones = sqliteTable("tombstones", {
  id: integer("id").primaryKey(),
  db: text("db").notNull(),
  measurement: text("measurement"),
  seriesKey: text("series_key"),
  startTime: integer("start_time").notNull(),
  endTime: integer("end_time").notNull(),
  hlc: integer("hlc").notNull(),
  originId: integer("origin_id").notNull(),
});
