/**
 * Telegraf-like ingest workload, shared by the ingest benchmark, the test suite and the
 * replication benchmark. Pure: no I/O, no clock, no global randomness; the same options
 * always give byte-identical bodies.
 *
 * Per tick (10 s apart, ns timestamps from a fixed epoch), for each host in order:
 *   cpu,cpu=cpu-total,host=host-<i>,region=<r> usage_user=..,…,usage_guest_nice=.. <ns>
 * and, every SYSTEM_EVERY_TICKS ticks (tick 0 included), right after that host's cpu line:
 *   system,host=host-<i>,region=<r> load_count=..i,n_users=..i,uptime=..i,uptime_format=".." <ns>
 * Generation stops after exactly `lines` lines, possibly in the middle of a tick.
 */

/** Default number of lines in a workload. */
export const DEFAULT_LINES = 1_000_000;
/** Default number of hosts (each host is one cpu series and one system series). */
export const DEFAULT_HOSTS = 1_000;
/** Default lines per body (one body = one POST /write). */
export const DEFAULT_BATCH = 5_000;
/** Default PRNG seed. */
export const DEFAULT_SEED = 0x5eed;
/** Default first timestamp: 2024-01-01T00:00:00Z, in seconds. */
export const DEFAULT_START_SECONDS = 1_704_067_200;
/** Interval between ticks, in seconds (Telegraf's default `interval = "10s"`). */
export const INTERVAL_SECONDS = 10;
/** A host writes one `system` line every this many ticks. */
export const SYSTEM_EVERY_TICKS = 10;

/** Float fields of the `cpu` measurement, in the order Telegraf's cpu input writes them. */
export const CPU_FIELDS = [
  "usage_user",
  "usage_system",
  "usage_idle",
  "usage_nice",
  "usage_iowait",
  "usage_irq",
  "usage_softirq",
  "usage_steal",
  "usage_guest",
  "usage_guest_nice",
] as const;

/** Field values in one `system` line: 3 integers and 1 string. */
export const SYSTEM_FIELD_COUNT = 4;

/** The 8 region tag values; a host's region is fixed (host i gets REGIONS[i % 8]). */
export const REGIONS = [
  "us-east-1",
  "us-west-1",
  "us-west-2",
  "eu-west-1",
  "eu-central-1",
  "ap-southeast-1",
  "ap-northeast-1",
  "sa-east-1",
] as const;

export interface WorkloadOptions {
  lines?: number;
  hosts?: number;
  batch?: number;
  /** Full-precision random doubles instead of a 2-decimal random walk. */
  randomFloats?: boolean;
  seed?: number;
  startSeconds?: number;
}

/** Options with every default filled in and validated. */
export interface ResolvedWorkloadOptions {
  lines: number;
  hosts: number;
  batch: number;
  randomFloats: boolean;
  seed: number;
  startSeconds: number;
}

/** What a server should hold once every body has been written. */
export interface WorkloadCounts {
  lines: number;
  cpuLines: number;
  systemLines: number;
  /** Field values written: 10 per cpu line, 4 per system line. */
  fieldValues: number;
  /** Distinct series written (cpu and system series of the hosts reached). */
  series: number;
  /** Ticks started (the last one may be partial). */
  ticks: number;
  bodies: number;
  firstTimestampNs: bigint;
  lastTimestampNs: bigint;
}

/** One request body: newline-terminated line protocol, ns precision. */
export interface Body {
  index: number;
  text: string;
  lines: number;
  fieldValues: number;
}

export interface Workload {
  options: ResolvedWorkloadOptions;
  expected: WorkloadCounts;
  /** A fresh generator each call; every call yields the same bodies. */
  bodies(): Generator<Body>;
}

/** Resolves workload options once: defaults filled, unknown keys and bad values rejected. */
export function resolveWorkloadOptions(opts: WorkloadOptions = {}): ResolvedWorkloadOptions {
  const known = new Set(["lines", "hosts", "batch", "randomFloats", "seed", "startSeconds"]);
  for (const key of Object.keys(opts)) {
    if (!known.has(key)) throw new RangeError(`unknown workload option ${JSON.stringify(key)}`);
  }
  const resolved: ResolvedWorkloadOptions = {
    lines: opts.lines ?? DEFAULT_LINES,
    hosts: opts.hosts ?? DEFAULT_HOSTS,
    batch: opts.batch ?? DEFAULT_BATCH,
    randomFloats: opts.randomFloats ?? false,
    seed: opts.seed ?? DEFAULT_SEED,
    startSeconds: opts.startSeconds ?? DEFAULT_START_SECONDS,
  };
  for (const key of ["lines", "hosts", "batch"] as const) {
    const v = resolved[key];
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`workload option ${key} must be a positive integer, got ${String(v)}`);
    }
  }
  if (!Number.isSafeInteger(resolved.seed)) {
    throw new RangeError(`workload option seed must be an integer, got ${String(resolved.seed)}`);
  }
  if (!Number.isSafeInteger(resolved.startSeconds) || resolved.startSeconds < 0) {
    throw new RangeError(
      `workload option startSeconds must be a non-negative integer, got ${String(resolved.startSeconds)}`,
    );
  }
  return resolved;
}

/** Builds the workload: expected counts up front, bodies generated lazily and deterministically. */
export function makeWorkload(opts: WorkloadOptions = {}): Workload {
  const options = resolveWorkloadOptions(opts);
  return { options, expected: countWorkload(options), bodies: () => generateBodies(options) };
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1) with 32 bits of randomness. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Counts follow the same tick/host walk as the generator but without building strings,
// so callers know what to expect before (or without) generating anything.
function countWorkload(o: ResolvedWorkloadOptions): WorkloadCounts {
  let cpuLines = 0;
  let systemLines = 0;
  let lastTick = 0;
  let hostsReached = 0;
  let systemHostsReached = 0;
  for (let tick = 0; cpuLines + systemLines < o.lines; tick++) {
    const withSystem = tick % SYSTEM_EVERY_TICKS === 0;
    for (let h = 0; h < o.hosts && cpuLines + systemLines < o.lines; h++) {
      cpuLines++;
      lastTick = tick;
      if (tick === 0) hostsReached = h + 1;
      if (withSystem && cpuLines + systemLines < o.lines) {
        systemLines++;
        if (tick === 0) systemHostsReached = h + 1;
      }
    }
  }
  const lines = cpuLines + systemLines;
  const start = BigInt(o.startSeconds) * 1_000_000_000n;
  return {
    lines,
    cpuLines,
    systemLines,
    fieldValues: cpuLines * CPU_FIELDS.length + systemLines * SYSTEM_FIELD_COUNT,
    series: hostsReached + systemHostsReached,
    ticks: lastTick + 1,
    bodies: Math.ceil(lines / o.batch),
    firstTimestampNs: start,
    lastTimestampNs: start + BigInt(lastTick * INTERVAL_SECONDS) * 1_000_000_000n,
  };
}

interface HostState {
  tags: string;
  systemTags: string;
  /** cpu field values in hundredths (2-decimal walk). */
  cents: Int32Array;
  users: number;
  bootOffset: number;
}

function* generateBodies(o: ResolvedWorkloadOptions): Generator<Body> {
  const rng = mulberry32(o.seed);
  const hosts: HostState[] = [];
  // Host state is created when the host first appears, so small workloads over many
  // hosts stay cheap and the PRNG stream depends only on the order of lines.
  const host = (h: number): HostState => {
    let s = hosts[h];
    if (s === undefined) {
      const region = REGIONS[h % REGIONS.length] ?? REGIONS[0];
      const cents = new Int32Array(CPU_FIELDS.length);
      for (let f = 0; f < cents.length; f++) cents[f] = Math.floor(rng() * 10_001);
      s = {
        tags: `cpu,cpu=cpu-total,host=host-${h},region=${region} `,
        systemTags: `system,host=host-${h},region=${region} `,
        cents,
        users: Math.floor(rng() * 10),
        bootOffset: Math.floor(rng() * 10_000_000),
      };
      hosts[h] = s;
    }
    return s;
  };

  let parts: string[] = [];
  let bodyLines = 0;
  let bodyValues = 0;
  let index = 0;
  let emitted = 0;
  for (let tick = 0; emitted < o.lines; tick++) {
    const seconds = o.startSeconds + tick * INTERVAL_SECONDS;
    // Whole seconds, so the ns timestamp is the seconds followed by nine zeros (no bigint).
    const ts = ` ${seconds}000000000`;
    const withSystem = tick % SYSTEM_EVERY_TICKS === 0;
    for (let h = 0; h < o.hosts && emitted < o.lines; h++) {
      const s = host(h);
      const perHost = withSystem && emitted + 1 < o.lines ? 2 : 1;
      for (let k = 0; k < perHost; k++) {
        if (k === 0) {
          parts.push(s.tags + cpuFields(s, rng, o.randomFloats) + ts);
          bodyValues += CPU_FIELDS.length;
        } else {
          parts.push(s.systemTags + systemFields(s, rng, tick) + ts);
          bodyValues += SYSTEM_FIELD_COUNT;
        }
        emitted++;
        bodyLines++;
        if (bodyLines === o.batch) {
          yield { index: index++, text: parts.join("\n") + "\n", lines: bodyLines, fieldValues: bodyValues };
          parts = [];
          bodyLines = 0;
          bodyValues = 0;
        }
      }
    }
  }
  if (bodyLines > 0) {
    yield { index, text: parts.join("\n") + "\n", lines: bodyLines, fieldValues: bodyValues };
  }
}

function cpuFields(s: HostState, rng: () => number, randomFloats: boolean): string {
  let out = "";
  for (let f = 0; f < CPU_FIELDS.length; f++) {
    let value: number;
    if (randomFloats) {
      // 53 random bits: the worst case for XOR-based float compression.
      value = ((Math.floor(rng() * 2 ** 21) * 2 ** 32 + Math.floor(rng() * 2 ** 32)) / 2 ** 53) * 100;
    } else {
      // Step of at most ±1.00, clamped to [0, 100]; values keep 2 decimals.
      const c = (s.cents[f] ?? 0) + Math.floor(rng() * 201) - 100;
      const clamped = c < 0 ? -c : c > 10_000 ? 20_000 - c : c;
      s.cents[f] = clamped;
      value = clamped / 100;
    }
    out += (f === 0 ? "" : ",") + CPU_FIELDS[f] + "=" + String(value);
  }
  return out;
}

function systemFields(s: HostState, rng: () => number, tick: number): string {
  s.users = Math.max(0, s.users + Math.floor(rng() * 3) - 1);
  const loadCount = Math.floor(rng() * 16);
  const uptime = s.bootOffset + tick * INTERVAL_SECONDS;
  return (
    `load_count=${loadCount}i,n_users=${s.users}i,uptime=${uptime}i,` +
    `uptime_format="${formatUptime(uptime)}"`
  );
}

// Telegraf's system input: "%d days, %2d:%02d" (singular "day" for one day).
function formatUptime(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  const hm = `${String(hours).padStart(2, " ")}:${String(minutes).padStart(2, "0")}`;
  return days === 0 ? hm : `${days} ${days === 1 ? "day" : "days"}, ${hm}`;
}
