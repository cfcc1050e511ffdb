/**
 * The in-memory catalogue: databases, measurements, series and fields, loaded at open and
 * kept in step with their tables by the writer. Lookups on the write path are Map gets, never
 * scans. Entries added inside a transaction are recorded so a rollback can forget them.
 */
import { splitSeriesKey } from "../lineprotocol/format.ts";
import type { FieldType } from "../lineprotocol/types.ts";
import type { HotBuffer } from "./hot.ts";
import type { Sqlite } from "./sqlite.ts";

export interface FieldEntry {
  readonly id: number;
  readonly name: string;
  readonly type: FieldType;
  readonly measurement: MeasurementEntry;
  /** The write that gave the field its type (see fieldVersionOrder). */
  readonly created: FieldVersion;
}

/** A write's version as both twins see it: its clock and its origin node's name. */
export interface FieldVersion {
  readonly hlc: number;
  readonly by: string;
}

/** Fields created before versions were kept: older than any write. */
export const UNKNOWN_FIELD_VERSION: FieldVersion = { hlc: 0, by: "" };

/** Orders two versions the way values are ordered: by clock, then by node name. */
export function compareFieldVersions(a: FieldVersion, b: FieldVersion): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  return a.by < b.by ? -1 : a.by > b.by ? 1 : 0;
}

export class MeasurementEntry {
  readonly fields = new Map<string, FieldEntry>();
  readonly series: SeriesEntry[] = [];
  constructor(
    readonly db: DbEntry,
    readonly name: string,
  ) {}
}

export class SeriesEntry {
  /** Hot buffers of this series: one, unless it has more fields than a buffer has columns. */
  readonly buffers: HotBuffer[] = [];
  private tagList: ReadonlyArray<readonly [string, string]> | null = null;
  constructor(
    readonly id: number,
    readonly key: string,
    readonly measurement: MeasurementEntry,
  ) {}

  /** Unescaped tags sorted by key, parsed from the series key on first use. */
  get tags(): ReadonlyArray<readonly [string, string]> {
    this.tagList ??= splitSeriesKey(this.key).tags;
    return this.tagList;
  }

  /** The value of one tag, or "" when the series does not have it (InfluxQL's rule). */
  tag(key: string): string {
    for (const [k, v] of this.tags) if (k === key) return v;
    return "";
  }
}

export class DbEntry {
  readonly measurements = new Map<string, MeasurementEntry>();
  readonly series = new Map<string, SeriesEntry>();
  /** Retention in ns (0 = forever), or null for the node's default; and the version that set it. */
  retentionNs: bigint | null = null;
  retentionHlc = 0n;
  constructor(
    readonly id: number,
    readonly name: string,
  ) {}

  measurement(name: string): MeasurementEntry {
    let m = this.measurements.get(name);
    if (m === undefined) {
      const copy = detach(name);
      m = new MeasurementEntry(this, copy);
      this.measurements.set(copy, m);
    }
    return m;
  }
}

type Undo = () => void;

/**
 * A copy of a string that shares no memory with the text it was sliced from. Names parsed
 * from a request body are slices of that body; kept in the catalogue they would pin it.
 */
function detach(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

export class Catalog {
  readonly dbs = new Map<string, DbEntry>();
  /** Every field by id (compaction and chunk reads know only the id). */
  readonly fieldsById = new Map<number, FieldEntry>();
  private readonly nodeIds = new Map<string, number>();
  private readonly nodeNames = new Map<number, string>();
  private undoLog: Undo[] = [];
  private readonly insertDb;
  private readonly insertSeries;
  private readonly insertField;
  private readonly retypeFieldRow;
  private readonly insertNode;

  constructor(private readonly sqlite: Sqlite) {
    this.insertDb = sqlite.prepare("INSERT INTO databases (name) VALUES (?)");
    this.insertSeries = sqlite.prepare("INSERT INTO series (db_id, measurement, key) VALUES (?, ?, ?)");
    this.insertField = sqlite.prepare("INSERT INTO fields (db_id, measurement, name, type, created_hlc, created_by) VALUES (?, ?, ?, ?, ?, ?)");
    this.retypeFieldRow = sqlite.prepare("UPDATE fields SET type = ?, created_hlc = ?, created_by = ? WHERE id = ?");
    this.insertNode = sqlite.prepare("INSERT INTO nodes (name) VALUES (?)");
    this.load();
  }

  private load(): void {
    const byId = new Map<number, DbEntry>();
    const dbRows = this.sqlite.prepare("SELECT id, name, retention_ns, retention_hlc FROM databases").safeIntegers(true).raw().all() as Array<
      [bigint, string, bigint | null, bigint | null]
    >;
    for (const [id, name, retentionNs, retentionHlc] of dbRows) {
      const db = new DbEntry(Number(id), name);
      db.retentionNs = retentionNs;
      db.retentionHlc = retentionHlc ?? 0n;
      this.dbs.set(db.name, db);
      byId.set(db.id, db);
    }
    for (const row of this.sqlite.prepare("SELECT id, name FROM nodes").all() as Array<{ id: number; name: string }>) {
      this.nodeIds.set(row.name, row.id);
      this.nodeNames.set(row.id, row.name);
    }
    const fieldRows = this.sqlite.prepare("SELECT id, db_id, measurement, name, type, created_hlc, created_by FROM fields ORDER BY id").all() as Array<{
      id: number;
      db_id: number;
      measurement: string;
      name: string;
      type: FieldType;
      created_hlc: number | null;
      created_by: string | null;
    }>;
    for (const row of fieldRows) {
      const m = byId.get(row.db_id)?.measurement(row.measurement);
      if (m) {
        const created = row.created_hlc === null ? UNKNOWN_FIELD_VERSION : { hlc: row.created_hlc, by: row.created_by ?? "" };
        const f: FieldEntry = { id: row.id, name: row.name, type: row.type, measurement: m, created };
        m.fields.set(row.name, f);
        this.fieldsById.set(f.id, f);
      }
    }
    const seriesRows = this.sqlite.prepare("SELECT id, db_id, measurement, key FROM series ORDER BY id").raw().all() as Array<
      [number, number, string, string]
    >;
    for (const [id, dbId, measurement, key] of seriesRows) {
      const db = byId.get(dbId);
      if (!db) continue;
      const m = db.measurement(measurement);
      const s = new SeriesEntry(id, key, m);
      db.series.set(key, s);
      m.series.push(s);
    }
  }

  /** Starts recording additions so `rollback` can forget them. */
  begin(): void {
    this.undoLog = [];
  }

  /** Forgets every entry added since `begin` (their rows were rolled back). */
  rollback(): void {
    this.rollbackTo(0);
  }

  /** A position in the undo log, for rolling back part of a transaction (a savepoint). */
  mark(): number {
    return this.undoLog.length;
  }

  /** Forgets the entries added since `mark` was taken. */
  rollbackTo(mark: number): void {
    for (let i = this.undoLog.length - 1; i >= mark; i--) this.undoLog[i]!();
    this.undoLog.length = mark;
  }

  createDb(name: string): DbEntry {
    const id = Number(this.insertDb.run([name]).lastInsertRowid);
    const db = new DbEntry(id, name);
    this.dbs.set(name, db);
    this.undoLog.push(() => this.dbs.delete(name));
    return db;
  }

  createSeries(db: DbEntry, m: MeasurementEntry, sliced: string): SeriesEntry {
    const key = detach(sliced);
    const id = Number(this.insertSeries.run([db.id, m.name, key]).lastInsertRowid);
    const s = new SeriesEntry(id, key, m);
    db.series.set(key, s);
    m.series.push(s);
    this.undoLog.push(() => {
      db.series.delete(key);
      m.series.pop();
    });
    return s;
  }

  createField(m: MeasurementEntry, sliced: string, type: FieldType, created: FieldVersion): FieldEntry {
    const name = detach(sliced);
    const id = Number(this.insertField.run([m.db.id, m.name, name, type, created.hlc, created.by]).lastInsertRowid);
    const f: FieldEntry = { id, name, type, measurement: m, created };
    m.fields.set(name, f);
    this.fieldsById.set(id, f);
    this.undoLog.push(() => {
      m.fields.delete(name);
      this.fieldsById.delete(id);
    });
    return f;
  }

  /**
   * Gives a field another type, as of the write `created` (its stored values must go: the
   * caller deletes them). The entry is replaced, keeping its id; the old one is returned.
   */
  retypeField(old: FieldEntry, type: FieldType, created: FieldVersion): FieldEntry {
    this.retypeFieldRow.run([type, created.hlc, created.by, old.id]);
    const f: FieldEntry = { ...old, type, created };
    old.measurement.fields.set(f.name, f);
    this.fieldsById.set(f.id, f);
    this.undoLog.push(() => {
      old.measurement.fields.set(old.name, old);
      this.fieldsById.set(old.id, old);
    });
    return f;
  }

  /** Forgets a database (its rows are already deleted). */
  forgetDb(db: DbEntry): void {
    for (const m of db.measurements.values()) for (const f of m.fields.values()) this.fieldsById.delete(f.id);
    this.dbs.delete(db.name);
  }

  /** Forgets one series; a measurement left without series goes too, as in InfluxDB. */
  forgetSeries(s: SeriesEntry): void {
    const m = s.measurement;
    m.db.series.delete(s.key);
    const i = m.series.indexOf(s);
    if (i >= 0) m.series.splice(i, 1);
    if (m.series.length === 0) {
      for (const f of m.fields.values()) this.fieldsById.delete(f.id);
      m.db.measurements.delete(m.name);
    }
  }

  /** The small number that stands for a node id in stored versions, creating it if new. */
  nodeId(name: string): number {
    let id = this.nodeIds.get(name);
    if (id === undefined) {
      id = Number(this.insertNode.run([name]).lastInsertRowid);
      this.nodeIds.set(name, id);
      this.nodeNames.set(id, name);
      const created = id;
      this.undoLog.push(() => {
        this.nodeIds.delete(name);
        this.nodeNames.delete(created);
      });
    }
    return id;
  }

  nodeName(id: number): string {
    return this.nodeNames.get(id) ?? `#${id}`;
  }

  seriesCount(): number {
    let n = 0;
    for (const db of this.dbs.values()) n += db.series.size;
    return n;
  }
}
