/**
 * Compaction is crash-safe: with tiny chunks, out-of-order data and overwrites keeping
 * compaction busy, a node killed with SIGKILL at random moments always restarts with every
 * acknowledged value (the newest one written for each point), never an older one and never
 * a gap.
 */
import { expect, test } from "bun:test";
import { exportDb, removeDir, startNode, tempDir, write } from "./support/node.ts";

const ROUNDS = 5;
const ARGS = ["--chunk-points", "20", "--flush-age", "1ms", "--sync", "normal"];

test(
  "kills during compaction lose nothing acknowledged and bring back no overwritten value",
  async () => {
    const dataDir = tempDir();
    // Per point: the newest acknowledged value, and a value whose request was cut by the kill.
    const acked = new Map<string, string>();
    const inFlight = new Map<string, string>();
    let node = await startNode({ dataDir, args: ARGS });
    let stopped = false;
    try {
      let value = 0;
      let compactions = 0;
      for (let round = 0; round < ROUNDS; round++) {
        inFlight.clear();
        const stopAt = Date.now() + 300 + Math.floor(Math.random() * 400);
        let killed = false;
        const writer = (async () => {
          while (!killed && Date.now() < stopAt + 1000) {
            // Times in a shuffled order over a small range: late data and overwrites.
            const lines: string[] = [];
            for (let i = 0; i < 30; i++) {
              const t = Math.floor(Math.random() * 400);
              lines.push(`m,s=${t % 3} v=${++value}i ${t}`);
            }
            const pending = new Map(lines.map((l) => [key(l), l.split(" ")[1]!]));
            try {
              const res = await write(node.url, lines.join("\n"), "db=c");
              expect(res.status).toBe(204);
              for (const [k, v] of pending) acked.set(k, v);
            } catch (e) {
              if (!killed) throw e;
              for (const [k, v] of pending) inFlight.set(k, v);
            }
            if (Date.now() > stopAt) break;
          }
        })();
        await writer;
        // Compaction starts after a second without writes: kill at a random moment after that.
        await Bun.sleep(1000 + Math.floor(Math.random() * 400));
        const scrape = await (await fetch(`${node.url}/metrics`)).text();
        compactions += Number(/^tsdb_pair_store_compaction_duration_seconds_count (\d+)/m.exec(scrape)?.[1] ?? 0);
        killed = true;
        await node.kill();
        node = await startNode({ dataDir, args: ARGS });
        const got = new Map<string, string>();
        for (const l of (await exportDb(node.url, "c")).split("\n")) if (l) got.set(key(l), l.split(" ")[1]!);
        for (const [k, v] of acked) expect([v, inFlight.get(k)]).toContain(got.get(k));
        for (const [k, v] of got) if (!acked.has(k)) expect(inFlight.get(k)).toBe(v);
        for (const [k, v] of inFlight) if (got.get(k) === v) acked.set(k, v);
      }
      expect(acked.size).toBeGreaterThan(100);
      // The point of the test: compaction really was running in these processes.
      expect(compactions).toBeGreaterThan(0);
      stopped = true;
      expect(await node.stop()).toBe(0);
    } finally {
      // A failed assertion must not leave the node running.
      if (!stopped) await node.kill();
    }
    removeDir(dataDir);
  },
  { timeout: 120_000 },
);

function key(line: string): string {
  const [series, , time] = line.split(" ");
  return `${series} ${time}`;
}
