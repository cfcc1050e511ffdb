/**
 * Real tsdb-pair processes for tests: started on a free loopback port with a fresh data
 * directory, waited for until they answer /ping, stopped with SIGTERM or killed with SIGKILL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");
export const BUN = process.execPath;

export interface NodeProcess {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly proc: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

export interface StartOptions {
  dataDir?: string;
  nodeId?: string;
  args?: string[];
  env?: Record<string, string>;
  /** The command to run instead of `bun src/main.ts` (e.g. the built binary, or deno). */
  command?: string[];
  cwd?: string;
  timeoutMs?: number;
}

export function tempDir(prefix = "tsdb-pair-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Starts a node on 127.0.0.1 with an OS-chosen port and waits until it is listening. */
export async function startNode(opts: StartOptions = {}): Promise<NodeProcess> {
  const dataDir = opts.dataDir ?? tempDir();
  const command = opts.command ?? [BUN, join(REPO, "src/main.ts")];
  const args = [...command.slice(1), "serve", "--listen", "127.0.0.1:0", "--data", dataDir, "--node-id", opts.nodeId ?? "test-node", ...(opts.args ?? [])];
  const proc = spawn(command[0]!, args, {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (d: string) => (err += d));
  proc.stdout!.resume();
  const exited = new Promise<number | null>((res) => proc.once("exit", (code) => res(code)));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let port = 0;
  while (port === 0) {
    // The "listening" line, in logfmt or (with --log-format json) JSON.
    const m = /msg=listening address=[^\s]*:(\d+)/.exec(err) ?? /"msg":"listening","address":"[^"]*:(\d+)"/.exec(err);
    if (m) port = Number(m[1]);
    else if (proc.exitCode !== null) throw new Error(`node exited with ${proc.exitCode} before listening:\n${err}`);
    else if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`node did not start listening in time:\n${err}`);
    } else await Bun.sleep(20);
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    dataDir,
    proc,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      return exited;
    },
    async kill() {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}

/** POSTs line protocol to /write; returns status and body text. */
export async function write(
  url: string,
  body: string | Uint8Array,
  query = "db=test",
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${url}/write?${query}`, { method: "POST", body: body as BodyInit, headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

export async function exportDb(url: string, db = "test", headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${url}/export?db=${encodeURIComponent(db)}`, { headers });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`export failed: ${res.status} ${text}`);
  return text;
}
