/**
 * The same product on every way it ships: the single executable run from an empty directory
 * with no node_modules in reach, and the sources on Deno 2. Each writes, exports and stops
 * cleanly on SIGTERM, and the export survives a restart.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { BUN, REPO, exportDb, removeDir, startNode, tempDir, write, type StartOptions } from "./support/node.ts";

const BODY = "cpu,host=a,region=x usage=1.5,idle=98i 20\ncpu,host=a,region=x usage=2.25 10\nsys,host=a up=\"1 day\",ok=true 10\n";
const EXPECTED = "cpu,host=a,region=x usage=2.25 10\ncpu,host=a,region=x idle=98i,usage=1.5 20\nsys,host=a ok=true,up=\"1 day\" 10\n";

const scratch: string[] = [];
afterAll(() => scratch.forEach(removeDir));

async function roundTrip(start: StartOptions): Promise<void> {
  const dataDir = tempDir();
  scratch.push(dataDir);
  const node = await startNode({ ...start, dataDir });
  expect((await write(node.url, BODY)).status).toBe(204);
  expect(await exportDb(node.url)).toBe(EXPECTED);
  expect(await node.stop()).toBe(0);
  const again = await startNode({ ...start, dataDir });
  expect(await exportDb(again.url)).toBe(EXPECTED);
  expect(await again.stop()).toBe(0);
}

describe("runtimes", () => {
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
    "the sources run on Deno 2",
    async () => {
      const deno = join(REPO, "node_modules/.bin/deno");
      await roundTrip({ command: [deno, "run", "-A", join(REPO, "src/main.ts")], timeoutMs: 120_000 });
    },
    { timeout: 300_000 },
  );
});
