/**
 * `npm run bench`: the ingest, query and pairing benchmarks one after the other (never at
 * the same time: they share the machine), printed as one JSON document on stdout; progress
 * goes to stderr. `--only ingest,query,pair` picks some; `--quick` runs smaller workloads.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";

const BENCHES: Record<string, { file: string; quick: string[] }> = {
  ingest: { file: "ingest.ts", quick: ["--lines", "200000"] },
  query: { file: "query.ts", quick: ["--minutes", "30", "--runs", "10"] },
  pair: { file: "pair.ts", quick: ["--lines", "100000", "--lag-seconds", "10", "--extra-fractions", "none", "--catchup-requests", "30", "--gap-requests", "30"] },
};

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const only = (argValue("--only") ?? Object.keys(BENCHES).join(",")).split(",");
const quick = process.argv.includes("--quick");
for (const name of only) {
  if (!(name in BENCHES)) {
    process.stderr.write(`unknown benchmark ${JSON.stringify(name)}: expected ${Object.keys(BENCHES).join(", ")}\n`);
    process.exit(2);
  }
}

/** Runs one benchmark script and returns its JSON (or the failure). */
function run(name: string): Promise<unknown> {
  const bench = BENCHES[name]!;
  const args = [join(import.meta.dir, bench.file), ...(quick ? bench.quick : [])];
  process.stderr.write(`[bench] ${name}: bun ${args.join(" ")}\n`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => (out += d));
    child.on("exit", (code) => {
      try {
        // A benchmark exits 1 when it missed a target; its JSON still says which.
        resolve(JSON.parse(out));
      } catch {
        resolve({ status: "failed", exitCode: code, output: out.slice(0, 2000) });
      }
    });
  });
}

const results: Record<string, unknown> = {};
for (const name of only) results[name] = await run(name);
process.stdout.write(JSON.stringify({ benchmark: "all", startedAt: new Date().toISOString(), results }, null, 2) + "\n");
