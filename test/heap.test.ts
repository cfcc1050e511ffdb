/**
 * `serve` on Bun re-executes itself once with the collector sized for a gateway (see
 * src/runtime/bun-heap.ts): same process id, so signals and SIGKILL still reach the server.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { HEAP_RAM_BYTES, HEAP_RAM_VARIABLE } from "../src/runtime/bun-heap.ts";
import { removeDir, startNode, write, type NodeProcess } from "./support/node.ts";

const started: NodeProcess[] = [];
afterEach(async () => {
  for (const n of started.splice(0)) {
    await n.kill();
    removeDir(n.dataDir);
  }
});

function environ(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readFileSync(`/proc/${pid}/environ`, "latin1").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return out;
}

describe.skipIf(process.platform !== "linux")("heap sizing of serve", () => {
  test("the spawned process itself serves, with the heap setting, and SIGKILL stops it", async () => {
    const env = { ...process.env } as Record<string, string>;
    delete env[HEAP_RAM_VARIABLE];
    const node = await startNode({ env });
    started.push(node);
    expect(environ(node.proc.pid!).get(HEAP_RAM_VARIABLE)).toBe(String(HEAP_RAM_BYTES));
    expect(readFileSync(`/proc/${node.proc.pid}/cmdline`, "latin1")).toContain("serve");
    expect((await write(node.url, "m v=1 1")).status).toBe(204);
    await node.kill();
    expect(node.proc.signalCode).toBe("SIGKILL");
  });

  test("a value the operator set is kept", async () => {
    const node = await startNode({ env: { [HEAP_RAM_VARIABLE]: "1073741824" } });
    started.push(node);
    expect(environ(node.proc.pid!).get(HEAP_RAM_VARIABLE)).toBe("1073741824");
  });
});
