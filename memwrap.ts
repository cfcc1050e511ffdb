import { heapStats, edenGC, fullGC } from "bun:jsc";
import { appendFileSync } from "node:fs";
let acc = 0, n = 0, ms = 0; const LIM = Number(process.env.GCMB ?? 16) * 1048576;
(globalThis as any).__gcHook = (b: number) => { acc += b; if (acc >= LIM) { acc = 0; const t = performance.now(); edenGC(); ms += performance.now() - t; n++; } };
setInterval(() => { appendFileSync("/tmp/prof/memlog.txt", `gc ${n} ${ms.toFixed(0)}\n`); }, 1000).unref();
await import("./src/main.ts");
