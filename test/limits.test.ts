/** Bad conditions a gateway meets: a disk nearly full, a flood of new series. Real processes. */
import { describe, expect, test } from "bun:test";
import { exportDb, removeDir, startNode, tempDir, write } from "./support/node.ts";

describe("resource limits", () => {
  test(
    "below the free-disk floor writes get 507, stored data stays readable, and writes resume when space returns",
    async () => {
      const dataDir = tempDir();
      let node = await startNode({ dataDir });
      expect((await write(node.url, "m v=1 1")).status).toBe(204);
      expect(await node.stop()).toBe(0);
      // A floor above any disk's free space stands for a full disk.
      node = await startNode({ dataDir, args: ["--min-free-disk", "9000000000000000"] });
      const refused = await write(node.url, "m v=2 2");
      expect(refused.status).toBe(507);
      expect(JSON.parse(refused.text).error).toMatch(/^disk nearly full: \d+ bytes free in .*, below the floor of 9000000000000000 \(--min-free-disk\)/);
      const created = await fetch(`${node.url}/query?q=${encodeURIComponent("CREATE DATABASE other")}`, { method: "POST" });
      expect(JSON.stringify(await created.json())).toContain("disk nearly full");
      expect(await exportDb(node.url)).toBe("m v=1 1\n");
      const q = await fetch(`${node.url}/query?db=test&q=${encodeURIComponent("SELECT v FROM m")}&epoch=ns`);
      expect(await q.text()).toContain("[1,1]");
      expect(await node.stop()).toBe(0);
      node = await startNode({ dataDir });
      expect((await write(node.url, "m v=2 2")).status).toBe(204);
      expect(await exportDb(node.url)).toBe("m v=1 1\nm v=2 2\n");
      expect(await node.stop()).toBe(0);
      removeDir(dataDir);
    },
    { timeout: 60_000 },
  );

  test(
    "new series past --max-series are refused line by line, and known series keep working",
    async () => {
      const node = await startNode({ args: ["--max-series", "2"] });
      expect((await write(node.url, "m,h=a v=1 1\nm,h=b v=1 1")).status).toBe(204);
      const res = await write(node.url, "m,h=a v=2 2\nm,h=c v=2 2\nm,h=b v=2 2");
      expect(res.status).toBe(400);
      expect(JSON.parse(res.text).error).toBe("partial write: max-series-per-database limit exceeded: (2) (line 2) dropped=1");
      expect(await exportDb(node.url)).toBe("m,h=a v=1 1\nm,h=a v=2 2\nm,h=b v=1 1\nm,h=b v=2 2\n");
      expect(await node.stop()).toBe(0);
      removeDir(node.dataDir);
    },
    { timeout: 60_000 },
  );

  test(
    "--log-format json writes one JSON object per line",
    async () => {
      const node = await startNode({ args: ["--log-format", "json"] });
      expect(await node.stop()).toBe(0);
      const lines = node.stderr().trim().split("\n");
      expect(lines.length).toBeGreaterThan(1);
      for (const l of lines) expect(typeof JSON.parse(l).msg).toBe("string");
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", msg: "listening", node_id: "test-node" });
      removeDir(node.dataDir);
    },
    { timeout: 60_000 },
  );
});
