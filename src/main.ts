/** Entry point: runs the CLI and is the only place that prints fatal errors and exits. */
import process from "node:process";
import { runCli } from "./cli/index.ts";
import { isTsdbError } from "./errors.ts";

// A long-running server on Bun sizes its heap for a gateway first (see runtime/bun-heap.ts).
if (process.argv[2] === "serve" && "Bun" in globalThis) {
  const { reexecWithHeapSizing } = await import("./runtime/bun-heap.ts");
  await reexecWithHeapSizing();
}

try {
  // A command may already have set a code (peer status: not in sync); keep it unless we have one.
  const code = await runCli(process.argv.slice(2));
  if (code !== 0) process.exitCode = code;
} catch (e) {
  if (isTsdbError(e)) {
    process.stderr.write(`tsdb-pair: ${e.message}\n`);
    // Bad settings and a directory owned by another node are usage errors (exit 2).
    process.exit(e.code === "config" || e.code === "identity" ? 2 : 1);
  }
  const err = e as { name?: string; message?: string };
  if (err?.name === "CLIError") {
    process.stderr.write(`tsdb-pair: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`tsdb-pair: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
}
