/**
 * Time for queries: nanosecond bigints everywhere, RFC3339 in and out (with time zones for
 * `tz('...')`), and InfluxDB's GROUP BY time() windows.
 */
import { TsdbError } from "../errors.ts";

/** InfluxQL's smallest and largest query times (influxql.MinTime / MaxTime). */
export const MIN_TIME = -9223372036854775806n;
export const MAX_TIME = 9223372036854775806n;

const NS_PER_MS = 1_000_000n;

/**
 * Parses the time strings InfluxQL accepts in WHERE: RFC3339 with optional fraction and
 * offset (`2024-01-01T00:00:00.5Z`), `2024-01-01 00:00:00`, and a bare date.
 */
export function parseTimeLiteral(text: string): bigint {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|z|[+-]\d{2}:\d{2})?$/.exec(text.trim());
  if (m === null) throw new TsdbError("bad_request", `invalid time literal ${JSON.stringify(text)}: expected RFC3339, e.g. 2024-01-01T00:00:00Z`);
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0));
  if (Number.isNaN(ms)) throw new TsdbError("bad_request", `invalid time literal ${JSON.stringify(text)}`);
  let ns = BigInt(ms) * NS_PER_MS + (frac ? BigInt(frac.padEnd(9, "0")) : 0n);
  if (zone && zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1n : 1n;
    const minutes = BigInt(Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    ns -= sign * minutes * 60_000_000_000n;
  }
  return ns;
}

/** Offsets (seconds east of UTC) of one IANA zone, cached per hour of time. */
export class Zone {
  private readonly fmt: Intl.DateTimeFormat;
  private readonly cache = new Map<number, number>();

  constructor(readonly name: string) {
    this.fmt = new Intl.DateTimeFormat("en-US", {
      timeZone: name,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  }

  /** Seconds to add to UTC to get local time at instant `ns`. */
  offsetSeconds(ns: bigint): number {
    const ms = Number(ns / NS_PER_MS);
    // Zone rules change on whole quarter hours; caching per 15 minutes is exact.
    const key = Math.floor(ms / 900_000);
    let off = this.cache.get(key);
    if (off === undefined) {
      const at = key * 900_000;
      const parts: Record<string, number> = {};
      for (const p of this.fmt.formatToParts(new Date(at))) if (p.type !== "literal") parts[p.type] = Number(p.value);
      const local = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
      off = Math.round((local - at) / 1000);
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(key, off);
    }
    return off;
  }
}

const zones = new Map<string, Zone>();

/** The cached Zone for an IANA name. */
export function zoneOf(name: string): Zone {
  let z = zones.get(name);
  if (z === undefined) {
    z = new Zone(name);
    zones.set(name, z);
  }
  return z;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * Go's RFC3339Nano, as InfluxDB prints times: trailing zeros of the fraction dropped, `Z`
 * for UTC, `+01:00` in a `tz()` zone.
 */
export function formatRfc3339(ns: bigint, zone: Zone | null): string {
  const offset = zone === null ? 0 : zone.offsetSeconds(ns);
  const local = ns + BigInt(offset) * 1_000_000_000n;
  let secs = local / 1_000_000_000n;
  let frac = local % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    secs -= 1n;
  }
  const d = new Date(Number(secs) * 1000);
  const year = d.getUTCFullYear();
  let out =
    (year < 0 ? "-" + pad(-year, 4) : pad(year, 4)) +
    "-" +
    pad(d.getUTCMonth() + 1, 2) +
    "-" +
    pad(d.getUTCDate(), 2) +
    "T" +
    pad(d.getUTCHours(), 2) +
    ":" +
    pad(d.getUTCMinutes(), 2) +
    ":" +
    pad(d.getUTCSeconds(), 2);
  if (frac !== 0n) out += "." + frac.toString().padStart(9, "0").replace(/0+$/, "");
  // Go's "Z07:00" prints Z for any zero offset, zone or not.
  if (offset === 0) return out + "Z";
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return out + sign + pad(Math.floor(abs / 3600), 2) + ":" + pad(Math.floor((abs % 3600) / 60), 2);
}

/** Nanoseconds per unit of the HTTP `epoch` parameter. */
export const EPOCH_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  n: 1n,
  u: 1_000n,
  µ: 1_000n,
  us: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/**
 * The start of the GROUP BY time() window holding `t`, as InfluxDB computes it
 * (query.IteratorOptions.Window): windows are aligned to the epoch plus the offset, in
 * local time when a zone is given, with the zone offset looked up again at the window
 * start so day buckets follow daylight-saving changes.
 */
export function windowStart(t: bigint, interval: bigint, offset: bigint, zone: Zone | null): bigint {
  const shifted = t - offset;
  const zoneNs = zone === null ? 0n : BigInt(zone.offsetSeconds(shifted)) * 1_000_000_000n;
  let dt = (shifted + zoneNs) % interval;
  if (dt < 0n) dt += interval;
  let start = MIN_TIME + dt >= shifted ? MIN_TIME : shifted - dt;
  if (zone !== null) {
    const startZone = BigInt(zone.offsetSeconds(start)) * 1_000_000_000n;
    const o = zoneNs - startZone;
    if (o !== 0n && (o < 0n ? -o : o) < interval) start += o;
  }
  return start + offset;
}
