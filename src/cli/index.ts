/**
 * The command line: `serve`, `export` and `version`. Flags win over `TSDB_PAIR_<FLAG>`
 * environment variables, which win over defaults; all of it is resolved once into a
 * ServeConfig. Commands return an exit code; only main prints fatal errors and exits.
 */
import { defineCommand, runCommand, showUsage, type CommandDef } from "citty";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import process from "node:process";
import { parseDuration, resolveServeConfig, type ServeConfig, type ServeInput } from "../config.ts";
import { backupDataDir, downloadBackup, restoreBackup } from "../ops/backup.ts";
import { configFilePath, DEFAULT_CONFIG_FILE, loadConfigFile, mergeServeInputs, renderConfig } from "../ops/config-file.ts";
import { exitCodeFor, fetchStatus, localUrl, renderStatus } from "../ops/status.ts";
import type { VerifyReport } from "../peer/link.ts";
import { TsdbError } from "../errors.ts";
import { jsonLogger, logfmtLogger } from "../log.ts";
import { currentRuntime } from "../runtime/index.ts";
import { startNode } from "../server.ts";
import { DEFAULT_ENGINE } from "../config.ts";
import { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import { renderPeerStatus, renderVerify, type PeerStatusView } from "./peer-status.ts";
import { queryCommand } from "./query.ts";

const ENV_PREFIX = "TSDB_PAIR_";

/** `--max-body` → `TSDB_PAIR_MAX_BODY`. */
export function envName(flag: string): string {
  return ENV_PREFIX + flag.replace(/-/g, "_").toUpperCase();
}

function pick(args: Record<string, unknown>, flag: string, env: NodeJS.ProcessEnv): string | undefined {
  const v = args[flag];
  if (typeof v === "string") return v;
  return env[envName(flag)];
}

function pickBool(args: Record<string, unknown>, flag: string, env: NodeJS.ProcessEnv): boolean | undefined {
  const v = args[flag];
  if (typeof v === "boolean") return v;
  const e = env[envName(flag)];
  if (e === undefined || e === "") return undefined;
  if (/^(1|true|yes|on)$/i.test(e)) return true;
  if (/^(0|false|no|off)$/i.test(e)) return false;
  throw new TsdbError("config", `invalid ${envName(flag)} ${JSON.stringify(e)}: expected true or false`);
}

/** The serve flags, turned into loose input for resolveServeConfig. */
export function serveInput(args: Record<string, unknown>, env: NodeJS.ProcessEnv): ServeInput {
  // citty reads `--no-auto-create` as `auto-create: false`.
  const noAuto = args["auto-create"] === false ? true : pickBool(args, "no-auto-create", env);
  return {
    listen: pick(args, "listen", env),
    data: pick(args, "data", env),
    nodeId: pick(args, "node-id", env),
    authToken: pick(args, "auth-token", env),
    sync: pick(args, "sync", env),
    maxBody: pick(args, "max-body", env),
    autoCreate: noAuto === undefined ? undefined : !noAuto,
    peer: pickList(args, "peer", env),
    peerSecret: pick(args, "peer-secret", env) ?? readSecretFile(pick(args, "peer-secret-file", env)),
    tlsCert: pick(args, "tls-cert", env),
    tlsKey: pick(args, "tls-key", env),
    peerCa: pick(args, "peer-ca", env),
    walRetention: pick(args, "wal-retention", env),
    walMaxBytes: pick(args, "wal-max-bytes", env),
    catchUpBytes: pick(args, "catch-up-bytes", env),
    maxSelectPoints: pick(args, "max-select-points", env),
    maxSelectSeries: pick(args, "max-select-series", env),
    chunkPoints: pick(args, "chunk-points", env),
    retention: pick(args, "retention", env),
    minFreeDisk: pick(args, "min-free-disk", env),
    maxSeries: pick(args, "max-series", env),
    logFormat: pick(args, "log-format", env),
    flushAge: pick(args, "flush-age", env),
    hotMemory: pick(args, "hot-memory", env),
  };
}

function pickList(args: Record<string, unknown>, flag: string, env: NodeJS.ProcessEnv): string[] | undefined {
  const v = args[flag];
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string") return [v];
  const e = env[envName(flag)];
  return e === undefined || e === "" ? undefined : [e];
}

/** The secret file's first line, so `echo s3cret > file` works. */
function readSecretFile(path: string | undefined): string | undefined {
  if (path === undefined || path === "") return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new TsdbError("config", `cannot read --peer-secret-file ${JSON.stringify(path)}: ${(e as Error).message}`);
  }
  const secret = text.split("\n")[0]!.trim();
  if (secret === "") throw new TsdbError("config", `--peer-secret-file ${JSON.stringify(path)} is empty`);
  return secret;
}

/**
 * The serve settings from every source, flag over environment over config file over default,
 * resolved once; also says where each came from (for `config check`).
 */
function resolveAll(args: Record<string, unknown>): { config: ServeConfig; sources: Record<string, string>; file: string | null } {
  const file = configFilePath(typeof args.config === "string" ? args.config : process.env.TSDB_PAIR_CONFIG);
  const { input, sources } = mergeServeInputs(
    { source: "flag", input: serveInput(args, {}) },
    { source: "env", input: serveInput({}, process.env) },
    ...(file === null ? [] : [{ source: "file" as const, input: loadConfigFile(file) }]),
  );
  if (input.peerSecret === undefined && input.peerSecretFile !== undefined) input.peerSecret = readSecretFile(input.peerSecretFile);
  return { config: resolveServeConfig(input, { hostname: hostname() }), sources: sources as Record<string, string>, file };
}

const serveArgs = {
  config: { type: "string", description: `Config file (default ${DEFAULT_CONFIG_FILE} when present)` },
  listen: { type: "string", description: "Address to listen on, HOST:PORT (default 0.0.0.0:8086)" },
  data: { type: "string", description: "Data directory (default ./data)" },
  "node-id": { type: "string", description: "This node's permanent id (default: the host name)" },
  "auth-token": { type: "string", description: "Require this token on writes (Token, Bearer, Basic password or ?p=)" },
  sync: { type: "string", description: "full (survives power loss, default), normal (survives a crash) or off" },
  "max-body": { type: "string", description: "Largest request body, e.g. 25MB (default, like InfluxDB)" },
  "no-auto-create": { type: "boolean", description: "Answer 404 for writes to unknown databases instead of creating them" },
  peer: { type: "string", description: "The twin, HOST[:PORT]; comma-separated for its addresses on both network rings" },
  "peer-secret": { type: "string", description: "Secret shared by both nodes of the pair" },
  "peer-secret-file": { type: "string", description: "Read the peer secret from this file" },
  "wal-retention": { type: "string", description: "Keep own frames this long for the twin (default 7d)" },
  "wal-max-bytes": { type: "string", description: "Keep at most this much frame log for the twin (default 1GiB)" },
  "catch-up-bytes": { type: "string", description: "When this far behind the twin, catch up from its storage instead of its frame log (default 16MiB)" },
  "tls-cert": { type: "string", description: "Serve HTTPS (API and peer link) with this PEM certificate chain; needs --tls-key" },
  "tls-key": { type: "string", description: "PEM private key of --tls-cert (unencrypted)" },
  "peer-ca": { type: "string", description: "PEM CA certificate that signed the twin's certificate (trusted besides the default roots)" },
  "max-select-points": { type: "string", description: "Refuse a SELECT that would read more points (default 10000000)" },
  "max-select-series": { type: "string", description: "Refuse a SELECT that would return more series (default 100000)" },
  retention: { type: "string", description: "Keep data this long in databases created without a duration, e.g. 30d (default: forever)" },
  "min-free-disk": { type: "string", description: "Refuse writes (507) while the disk has less free space (default 64MiB; 0: never)" },
  "max-series": { type: "string", description: "Refuse new series beyond this many per database (default 1000000)" },
  "log-format": { type: "string", description: "logfmt (default) or json" },
  "chunk-points": { type: "string", description: "Values per compressed chunk (default 1000)" },
  "flush-age": { type: "string", description: "Flush buffered values older than this into chunks (default 10m)" },
  "hot-memory": { type: "string", description: "Memory for buffered values before early flushes (default 16MiB plus 256 bytes per series with buffered values)" },
} as const;

const serve = defineCommand({
  meta: { name: "serve", description: "Run a tsdb-pair node (InfluxDB-compatible HTTP API)" },
  args: serveArgs,
  async run({ args }) {
    const { config } = resolveAll(args);
    const log = (config.logFormat === "json" ? jsonLogger : logfmtLogger)((text) => process.stderr.write(text));
    // Handlers first: a SIGTERM that comes as soon as "listening" is logged (a supervisor, a
    // test) must still stop the node gracefully, not kill it.
    let received: string | null = null;
    let onSignal = (signal: string): void => {
      received ??= signal;
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
    const node = await startNode(config, currentRuntime(), log);
    await new Promise<void>((resolve) => {
      onSignal = (signal) => {
        log.info("shutting down", { signal });
        node.stop().then((finished) => {
          // A request the runtime could not cut would keep the process alive: the store is
          // closed, so leave now.
          if (!finished) process.exit(process.exitCode ?? 0);
          resolve();
        }, (e) => {
          log.error("shutdown failed", { error: String(e) });
          resolve();
        });
      };
      if (received !== null) onSignal(received);
    });
  },
});

const exportCmd = defineCommand({
  meta: { name: "export", description: "Print a database as canonical line protocol (sorted, one line per series and time)" },
  args: {
    db: { type: "string", description: "Database to export", required: true },
    url: { type: "string", description: "Export from a running node, e.g. http://127.0.0.1:8086" },
    data: { type: "string", description: "Export from a stopped node's data directory (default ./data)" },
    start: { type: "string", description: "Earliest time, ns or RFC3339" },
    end: { type: "string", description: "Latest time, ns or RFC3339" },
    "auth-token": { type: "string", description: "Token for --url" },
  },
  async run({ args }) {
    const out = process.stdout;
    if (typeof args.url === "string") {
      const url = new URL("/export", args.url);
      url.searchParams.set("db", String(args.db));
      if (typeof args.start === "string") url.searchParams.set("start", args.start);
      if (typeof args.end === "string") url.searchParams.set("end", args.end);
      const token = pick(args, "auth-token", process.env);
      const res = await fetch(url, { headers: token ? { Authorization: `Token ${token}` } : {} });
      if (!res.ok || res.body === null) {
        throw new TsdbError("bad_request", `export from ${args.url} failed: HTTP ${res.status} ${await res.text()}`);
      }
      for await (const chunk of res.body) out.write(chunk);
      return;
    }
    const store = Store.open({ dataDir: pick(args, "data", process.env) ?? "./data", nodeId: null, sync: "full", engine: DEFAULT_ENGINE });
    try {
      const range = { start: timeArg(args.start), end: timeArg(args.end) };
      for (const text of store.exportLines(String(args.db), range)) {
        if (!out.write(text)) await new Promise((r) => out.once("drain", r));
      }
    } finally {
      await store.close();
    }
  },
});

function timeArg(v: unknown): bigint | undefined {
  if (typeof v !== "string" || v === "") return undefined;
  if (/^-?\d+$/.test(v)) return BigInt(v);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new TsdbError("config", `invalid time ${JSON.stringify(v)}: expected nanoseconds or RFC3339`);
  return BigInt(ms) * 1_000_000n;
}

const peerArgs = {
  url: { type: "string", description: "The local node (default http://127.0.0.1:8086)" },
  "auth-token": { type: "string", description: "API token of the node" },
  json: { type: "boolean", description: "Print JSON" },
  timeout: { type: "string", description: "Longest wait for the node's answer (default 5s; verify 10m)" },
} as const;

/** How long `peer` commands wait for the node, unless --timeout says otherwise. */
const PEER_CALL_TIMEOUT_MS = 5000;
const PEER_VERIFY_TIMEOUT_MS = 10 * 60_000;

/**
 * One request to the local node's peer API. A node that takes the connection but never answers
 * (its event loop held, its disk hung) fails the command after the timeout: `peer status`
 * drives alerts, and a check that hangs raises none.
 */
async function peerCall(args: Record<string, unknown>, method: string, path: string, defaultTimeoutMs = PEER_CALL_TIMEOUT_MS): Promise<PeerStatusView> {
  const base = typeof args.url === "string" ? args.url : "http://127.0.0.1:8086";
  const token = pick(args, "auth-token", process.env);
  const timeoutMs = typeof args.timeout === "string" ? parseDuration(args.timeout, "--timeout") : defaultTimeoutMs;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let status: number;
  let text: string;
  try {
    const res = await fetch(new URL(path, base), { method, headers: token ? { Authorization: `Token ${token}` } : {}, signal: ctl.signal });
    status = res.status;
    text = await res.text();
  } catch (e) {
    if (!ctl.signal.aborted) throw e;
    throw new TsdbError("unavailable", `${method} ${path} on ${base}: no answer within ${timeoutMs / 1000} s (--timeout)`);
  } finally {
    clearTimeout(timer);
  }
  if (status < 200 || status > 299) throw new TsdbError("unavailable", `${method} ${path} on ${base} failed: HTTP ${status} ${text}`);
  return JSON.parse(text) as PeerStatusView;
}

const peer = defineCommand({
  meta: { name: "peer", description: "The link to the twin: status, pause, resume" },
  subCommands: {
    status: defineCommand({
      meta: { name: "status", description: "Show the link; exit 0 only when healthy and in sync" },
      args: peerArgs,
      async run({ args }) {
        const s = await peerCall(args, "GET", "/peer/status");
        process.stdout.write(args.json ? JSON.stringify(s, null, 2) + "\n" : renderPeerStatus(s));
        const openGaps = s.gaps.some((g) => g.repairedAt === null);
        if (!s.in_sync || openGaps) process.exitCode = 1;
      },
    }),
    pause: defineCommand({
      meta: { name: "pause", description: "Stop pulling from the twin until resumed" },
      args: peerArgs,
      async run({ args }) {
        process.stdout.write(renderPeerStatus(await peerCall(args, "POST", "/peer/pause")));
      },
    }),
    verify: defineCommand({
      meta: { name: "verify", description: "Compare both nodes' data per time bucket; --repair re-sends what differs" },
      args: {
        ...peerArgs,
        repair: { type: "boolean", description: "Re-send differing buckets both ways until they match" },
        bucket: { type: "string", description: "Bucket width (default 1h)" },
      },
      async run({ args }) {
        const bucketNs = BigInt(parseDuration(typeof args.bucket === "string" ? args.bucket : "1h", "--bucket")) * 1_000_000n;
        const r = await peerCall(args, "POST", `/peer/verify?bucket_ns=${bucketNs}&repair=${args.repair === true}`, PEER_VERIFY_TIMEOUT_MS);
        const report = r as unknown as VerifyReport;
        process.stdout.write(args.json ? JSON.stringify(report, null, 2) + "\n" : renderVerify(report));
        if (report.remaining.length > 0) process.exitCode = 1;
      },
    }),
    resume: defineCommand({
      meta: { name: "resume", description: "Resume pulling from the twin" },
      args: peerArgs,
      async run({ args }) {
        process.stdout.write(renderPeerStatus(await peerCall(args, "POST", "/peer/resume")));
      },
    }),
  },
});

const configCmd = defineCommand({
  meta: { name: "config", description: "Configuration tools" },
  subCommands: {
    check: defineCommand({
      meta: { name: "check", description: "Validate the configuration and print it resolved (secrets masked)" },
      args: serveArgs,
      run({ args }) {
        const { config, sources, file } = resolveAll(args);
        process.stdout.write(`# config file: ${file ?? "none"}\n${renderConfig(config, sources)}`);
      },
    }),
  },
});

const status = defineCommand({
  meta: { name: "status", description: "Health of the local node; exit 0 healthy, 1 degraded, 2 unhealthy" },
  args: {
    url: { type: "string", description: "The node (default from TSDB_PAIR_LISTEN, else http://127.0.0.1:8086)" },
    "auth-token": { type: "string", description: "API token of the node" },
    json: { type: "boolean", description: "Print JSON" },
    interval: { type: "string", description: "Milliseconds between the two samples for the ingest rate (default 1000)" },
  },
  async run({ args }) {
    const url = typeof args.url === "string" ? args.url : localUrl(process.env.TSDB_PAIR_LISTEN ?? "127.0.0.1:8086");
    const s = await fetchStatus(url, pick(args, "auth-token", process.env), { intervalMs: typeof args.interval === "string" ? Number(args.interval) : undefined });
    process.stdout.write(renderStatus(s, args.json === true));
    process.exitCode = exitCodeFor(s.verdict);
  },
});

const backup = defineCommand({
  meta: { name: "backup", description: "Take a consistent snapshot of a running node (--url) or a stopped one (--data)" },
  args: {
    out: { type: "string", description: "File to write", required: true },
    url: { type: "string", description: "A running node, e.g. http://127.0.0.1:8086" },
    data: { type: "string", description: "A stopped node's data directory" },
    "auth-token": { type: "string", description: "API token for --url" },
  },
  async run({ args }) {
    const out = String(args.out);
    if (typeof args.url === "string") {
      const saved = await downloadBackup(args.url, out, { token: pick(args, "auth-token", process.env) });
      process.stdout.write(`${JSON.stringify(saved, null, 2)}\n`);
    } else {
      const result = await backupDataDir(typeof args.data === "string" ? args.data : "./data", out);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    }
  },
});

const restore = defineCommand({
  meta: { name: "restore", description: "Put a backup into an empty data directory (it gets a new incarnation)" },
  args: {
    in: { type: "string", description: "Backup file", required: true },
    data: { type: "string", description: "Empty data directory of a stopped node", required: true },
  },
  run({ args }) {
    const r = restoreBackup(String(args.in), String(args.data));
    process.stdout.write(
      `${JSON.stringify(r, null, 2)}\nrestored: the node now has a new incarnation, so its twin will re-seed it; start the service\n`,
    );
  },
});

const version = defineCommand({
  meta: { name: "version", description: "Print the version" },
  run() {
    process.stdout.write(`tsdb-pair ${VERSION} (${currentRuntime().name})\n`);
  },
});

export const cli: CommandDef = defineCommand({
  meta: { name: "tsdb-pair", version: VERSION, description: "Two-box dual-active time-series database" },
  subCommands: { serve, query: queryCommand, export: exportCmd, peer, status, config: configCmd, backup, restore, version },
});

/** Runs the CLI; returns the exit code. Errors propagate to main, which prints them. */
export async function runCli(rawArgs: string[]): Promise<number> {
  if (rawArgs.length === 0 || rawArgs.includes("--help") || rawArgs.includes("-h")) {
    const subName = rawArgs.find((a) => !a.startsWith("-"));
    const sub = subName === undefined ? undefined : (cli.subCommands as Record<string, CommandDef>)[subName];
    await showUsage(sub ?? cli, sub ? cli : undefined);
    return rawArgs.length === 0 ? 2 : 0;
  }
  if (rawArgs[0] === "--version") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const subName = rawArgs[0]!;
  if (!((cli.subCommands as Record<string, CommandDef>)[subName])) {
    throw new TsdbError("config", `unknown command ${JSON.stringify(subName)}: expected serve, query, export, peer, status, config, backup, restore or version (see --help)`);
  }
  await runCommand(cli, { rawArgs });
  return 0;
}
