/** The command line as a user meets it: exit codes and one-line errors. */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { BUN, REPO, removeDir, startNode, tempDir, write } from "./support/node.ts";

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(BUN, [join(REPO, "src/main.ts"), ...args], { cwd: REPO, env: { ...process.env, ...env }, encoding: "utf8", timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("command line", () => {
  const bad: Array<[string, string[], Record<string, string>, string]> = [
    ["a bad --listen", ["serve", "--listen", "nowhere"], {}, 'tsdb-pair: invalid --listen "nowhere"'],
    ["a bad --sync", ["serve", "--sync", "sometimes"], {}, 'tsdb-pair: invalid --sync "sometimes"'],
    ["a bad environment variable", ["serve"], { TSDB_PAIR_MAX_BODY: "huge" }, 'tsdb-pair: invalid --max-body "huge"'],
    ["an unknown command", ["serv"], {}, 'tsdb-pair: unknown command "serv"'],
  ];
  for (const [name, args, env, message] of bad) {
    test(`exits 2 with one line for ${name}`, () => {
      const r = run(args, env);
      expect(r.code).toBe(2);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toStartWith(message);
    });
  }

  test("prints the version", () => {
    const r = run(["version"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^tsdb-pair \d+\.\d+\.\d+ \(bun\)\n$/);
  });

  test("prints help for a command", () => {
    const r = run(["serve", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out + r.err).toContain("--max-body");
  });

  test("refuses to start on a data directory of another node id, with exit code 2", async () => {
    const dataDir = tempDir();
    const node = await startNode({ dataDir, nodeId: "first" });
    expect((await write(node.url, "m v=1 1")).status).toBe(204);
    expect(await node.stop()).toBe(0);
    const r = run(["serve", "--listen", "127.0.0.1:0", "--data", dataDir, "--node-id", "second"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('belongs to node "first"');
    // The offline export reads the stopped node's directory under its own id.
    const e = run(["export", "--data", dataDir, "--db", "test"]);
    expect(e.code).toBe(0);
    expect(e.out).toBe("m v=1 1\n");
    removeDir(dataDir);
  });

  test("peer status gives up on a node that takes the connection but never answers, and exits 1", async () => {
    // Connections are taken and their requests read, but nothing is ever written back.
    const held: Socket[] = [];
    const silent = createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const proc = Bun.spawn([BUN, join(REPO, "src/main.ts"), "peer", "status", "--url", `http://127.0.0.1:${port}`, "--timeout", "1s"], { stdout: "pipe", stderr: "pipe" });
      const killer = setTimeout(() => proc.kill(), 20_000);
      const code = await proc.exited;
      clearTimeout(killer);
      const err = await new Response(proc.stderr).text();
      expect(held.length).toBe(1);
      expect(code).toBe(1);
      expect(err.trim().split("\n")).toHaveLength(1);
      expect(err).toContain(`GET /peer/status on http://127.0.0.1:${port}: no answer within 1 s`);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
