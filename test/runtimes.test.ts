/**
 * The same product on every way it ships: the single executable run from an empty directory
 * with no node_modules in reach, and the sources on Deno 2. Each writes, exports and stops
 * cleanly on SIGTERM, and the export survives a restart.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { BUN, REPO, exportDb, removeDir, startNode, tempDir, write, type NodeProcess, type StartOptions } from "./support/node.ts";
import { freePort } from "./support/proxy.ts";

const BODY = "cpu,host=a,region=x usage=1.5,idle=98i 20\ncpu,host=a,region=x usage=2.25 10\nsys,host=a up=\"1 day\",ok=true 10\n";
const EXPECTED = "cpu,host=a,region=x usage=2.25 10\ncpu,host=a,region=x idle=98i,usage=1.5 20\nsys,host=a ok=true,up=\"1 day\" 10\n";

// A body past the size parsed on a worker thread, with one malformed line and one field type
// clash: the good lines are stored, and the frame keeps exactly them (the restart replays it).
const HOSTS = 20;
const BIG_LINES = 4000;
const BIG_BODY = [
  "big,host=h0 v=0.5 0",
  "big,host=h0 v=1i 1",
  "not a line",
  ...Array.from({ length: BIG_LINES }, (_, i) => `big,host=h${i % HOSTS} v=${i + 0.5} ${i + 10}`),
].join("\n");
const BIG_EXPECTED = Array.from({ length: HOSTS }, (_, h) => `big,host=h${h}`)
  .sort()
  .map((key) => {
    const h = Number(key.slice("big,host=h".length));
    const lines = h === 0 ? [`${key} v=0.5 0\n`] : [];
    for (let i = h; i < BIG_LINES; i += HOSTS) lines.push(`${key} v=${i + 0.5} ${i + 10}\n`);
    return lines.join("");
  })
  .join("");

const scratch: string[] = [];
afterAll(() => scratch.forEach(removeDir));

async function roundTrip(start: StartOptions): Promise<void> {
  const dataDir = tempDir();
  scratch.push(dataDir);
  const node = await startNode({ ...start, dataDir });
  expect((await write(node.url, BODY)).status).toBe(204);
  expect(await exportDb(node.url)).toBe(EXPECTED);
  const big = await write(node.url, BIG_BODY, "db=big");
  expect(big.status).toBe(400);
  expect(JSON.parse(big.text).error).toMatch(/^partial write: .*dropped=2$/);
  expect(await exportDb(node.url, "big")).toBe(BIG_EXPECTED);
  // A body with every line good is stored as a compressed frame (compressed on the worker).
  const whole = BIG_BODY.split("\n").slice(3).join("\n");
  expect((await write(node.url, whole, "db=whole")).status).toBe(204);
  expect(await exportDb(node.url, "whole")).toBe(BIG_EXPECTED.split("\n").slice(1).join("\n"));
  const scrape = await (await fetch(`${node.url}/metrics`)).text();
  expect(scrape).toMatch(/^tsdb_pair_store_frames_compressed_total 1$/m);
  // The checkpoint thread loaded here too, and copies the log into the file (every 2 s).
  let checkpointed = 0;
  for (let i = 0; i < 100 && checkpointed === 0; i++) {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    checkpointed = Number(/^tsdb_pair_store_checkpointed_pages_total (\d+)$/m.exec(text)?.[1] ?? 0);
    if (checkpointed === 0) await Bun.sleep(100);
  }
  expect(checkpointed).toBeGreaterThan(0);
  expect(await node.stop()).toBe(0);
  // The worker loaded and did the parse (a worker that cannot load is logged, then bypassed).
  expect(node.stderr()).not.toContain("worker thread");
  const again = await startNode({ ...start, dataDir });
  expect(await exportDb(again.url)).toBe(EXPECTED);
  expect(await exportDb(again.url, "big")).toBe(BIG_EXPECTED);
  expect(await again.stop()).toBe(0);
}

/**
 * Opens a connection and sends a write whose body never comes (a gateway stalled mid-upload):
 * the request stays in flight until the server cuts it. Returns the socket, to destroy.
 */
async function stalledUpload(port: number): Promise<ReturnType<typeof connect>> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise<void>((res) => socket.once("connect", () => res()));
  socket.write(`POST /write?db=test HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nstalled,host=a v=1`);
  return socket;
}

/** A stop while a request is stuck: the node closes its store and exits 0 within the grace; nothing is lost. */
async function stopWithRequestStuck(start: StartOptions): Promise<void> {
  const dataDir = tempDir();
  scratch.push(dataDir);
  const node = await startNode({ ...start, dataDir });
  expect((await write(node.url, BODY)).status).toBe(204);
  const socket = await stalledUpload(node.port);
  try {
    // Until the request is in the handler, a stop would not find it in flight.
    await Bun.sleep(500);
    const began = performance.now();
    const stopped = await Promise.race([node.stop(), Bun.sleep(30_000).then(() => "still running")]);
    expect(stopped).toBe(0);
    // The grace is 10 s; the store's close and the exit take well under the rest.
    expect(performance.now() - began).toBeLessThan(20_000);
    expect(node.stderr()).toContain("requests still in flight");
  } finally {
    socket.destroy();
    if (node.proc.exitCode === null) await node.kill();
  }
  const again = await startNode({ ...start, dataDir });
  expect(await exportDb(again.url)).toBe(EXPECTED);
  expect(await again.stop()).toBe(0);
}

describe("runtimes", () => {
  test(
    "a request stuck in flight (a body that never comes) holds a stop for at most the grace, on Bun and on Deno",
    async () => {
      await stopWithRequestStuck({});
      await stopWithRequestStuck({ command: [join(REPO, "node_modules/.bin/deno"), "run", "-A", join(REPO, "src/main.ts")], timeoutMs: 120_000 });
    },
    { timeout: 200_000 },
  );

  test(
    "the single executable serves, exports and stops from an empty directory",
    async () => {
      const out = tempDir("tsdb-pair-bin-");
      scratch.push(out);
      const binary = join(out, "tsdb-pair");
      const build = spawnSync(BUN, ["build.ts", "--outfile", binary], { cwd: REPO, encoding: "utf8", timeout: 300_000 });
      expect(build.status, build.stderr).toBe(0);
      // Run it from a directory with nothing in it, and no node_modules above it.
      const empty = tempDir("tsdb-pair-empty-");
      scratch.push(empty);
      mkdirSync(join(empty, "bin"));
      copyFileSync(binary, join(empty, "bin", "tsdb-pair"));
      spawnSync("chmod", ["+x", join(empty, "bin", "tsdb-pair")]);
      expect(existsSync(join(empty, "node_modules"))).toBe(false);
      const version = spawnSync(join(empty, "bin", "tsdb-pair"), ["version"], { cwd: empty, encoding: "utf8", env: {} });
      expect(version.stdout).toMatch(/^tsdb-pair \d+\.\d+\.\d+ \(bun\)/);
      await roundTrip({ command: [join(empty, "bin", "tsdb-pair")], cwd: empty, env: {} });
    },
    { timeout: 300_000 },
  );

  test(
    "a node on Deno pairs with a node on Bun, converges with it both ways (frames and catch-up from storage), and stops promptly after",
    async () => {
      const deno = join(REPO, "node_modules/.bin/deno");
      const [pd, pb] = [await freePort(), await freePort()];
      // Any backlog is caught up from the twin's storage, not over frames.
      const peer = (port: number) => ["--peer", `127.0.0.1:${port}`, "--peer-secret", "s", "--catch-up-bytes", "1KiB"];
      const dirs = [tempDir(), tempDir()];
      scratch.push(...dirs);
      const nodes: NodeProcess[] = [];
      try {
        nodes.push(await startNode({ command: [deno, "run", "-A", join(REPO, "src/main.ts")], nodeId: "d", dataDir: dirs[0], args: ["--listen", `127.0.0.1:${pd}`, ...peer(pb)], timeoutMs: 120_000 }));
        nodes.push(await startNode({ nodeId: "b", dataDir: dirs[1], args: ["--listen", `127.0.0.1:${pb}`, ...peer(pd)] }));
        const [onDeno, onBun] = nodes as [NodeProcess, NodeProcess];
        const converged = async (has: string): Promise<boolean> => {
          for (let i = 0; i < 300; i++) {
            await Bun.sleep(100);
            const [x, y] = await Promise.all([exportDb(onDeno.url, "big").catch(() => ""), exportDb(onBun.url, "big").catch(() => "")]);
            if (x !== "" && x === y && x.includes(has)) return true;
          }
          return false;
        };
        expect((await write(onDeno.url, BIG_BODY.split("\n").slice(3).join("\n"), "db=big")).status).toBe(204);
        expect((await write(onBun.url, BODY, "db=big")).status).toBe(204);
        expect(await converged("cpu,host=a")).toBe(true);
        // Each in turn falls behind with its link paused, and catches up from the other's storage.
        for (const [behind, ahead, measurement] of [[onBun, onDeno, "late1"], [onDeno, onBun, "late2"]] as const) {
          expect((await fetch(`${behind.url}/peer/pause`, { method: "POST" })).status).toBe(200);
          const body = Array.from({ length: 3000 }, (_, i) => `${measurement},host=h${i % 30} v=${i}.5 ${i}`).join("\n");
          expect((await write(ahead.url, body, "db=big")).status).toBe(204);
          expect((await fetch(`${behind.url}/peer/resume`, { method: "POST" })).status).toBe(200);
          expect(await converged(`${measurement},host=h9 v=2979.5 2979`)).toBe(true);
          expect(behind.stderr()).toContain("catching up from its storage");
        }
        // Its link is reading the twin's stream: the stop must end that read, not wait on it.
        const stopped = await Promise.race([onDeno.stop(), Bun.sleep(20_000).then(() => "still running")]);
        expect(stopped).toBe(0);
        expect(await onBun.stop()).toBe(0);
      } finally {
        for (const n of nodes) if (n.proc.exitCode === null) await n.kill();
      }
    },
    { timeout: 300_000 },
  );

  test(
    "the sources run on Deno 2",
    async () => {
      const deno = join(REPO, "node_modules/.bin/deno");
      await roundTrip({ command: [deno, "run", "-A", join(REPO, "src/main.ts")], timeoutMs: 120_000 });
    },
    { timeout: 300_000 },
  );
});
