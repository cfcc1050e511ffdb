#!/usr/bin/env bun
/**
 * Build the single self-contained executable `dist/tsdb-pair` from `src/main.ts`.
 *
 *   bun build.ts                                   # host platform -> dist/tsdb-pair
 *   bun build.ts --target bun-linux-arm64          # cross-build (needs @libsql/linux-arm64-gnu)
 *   bun build.ts --entry probe/x.ts --outfile /tmp/x
 *
 * Options:
 *   --entry <file>            entry point (default src/main.ts)
 *   --outfile <file>          output executable (default dist/tsdb-pair)
 *   --target <bun-target>     Bun compile target, e.g. bun-linux-x64, bun-linux-arm64,
 *                             bun-linux-x64-musl, bun-linux-arm64-musl (default: this machine)
 *   --executable-path <file>  Bun binary for the target (default: the running bun for the host
 *                             platform, else node_modules/@oven/bun-<target> when installed,
 *                             else Bun downloads it from the npm registry)
 *   --sourcemap <mode>        linked (default) | inline | none; linked/inline are embedded in the
 *                             executable, so stack traces point at the original .ts lines
 *   --no-minify               keep identifiers/whitespace (minify is on by default)
 *   --bytecode                precompile to JSC bytecode (faster start, bigger binary)
 *
 * Why a plugin: libsql/index.js picks its native addon at run time with
 * require(`@libsql/${target}`), which `bun build --compile` cannot follow, so the binary
 * fails with "Cannot find module '@libsql/linux-x64-gnu'". The plugin below rewrites
 * libsql's requireNative() into a static require of the target's `index.node`, which Bun
 * then embeds (it is written to a temp file and dlopen()ed at start-up). The rewrite also
 * drops libsql's run-time platform probing (@neon-rs/load, detect-libc), so those packages
 * and their own dynamic require are no longer in the bundle.
 */
import type { BunPlugin } from "bun";
import { existsSync, mkdirSync, openSync, readSync, closeSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

const ROOT = import.meta.dir;
/** Worker entry points, bundled into the executable beside the main one. */
const WORKERS = ["src/ingest/worker.ts", "src/store/checkpoint-worker.ts"];

class BuildError extends Error {}

// ---------------------------------------------------------------------------------------------
// Target selection

type Os = "linux" | "darwin" | "win32";
type Arch = "x64" | "arm64";
type Libc = "gnu" | "musl";
interface Platform {
  os: Os;
  arch: Arch;
  libc?: Libc; // linux only
}

/** Parse a Bun compile target ("bun-linux-arm64-musl", segments in any order). */
function parseTarget(target: string): Platform {
  const parts = target.split("-");
  if (parts[0] !== "bun") throw new BuildError(`--target must look like bun-linux-x64, got "${target}"`);
  let os: Os | undefined;
  let arch: Arch | undefined;
  let libc: Libc | undefined;
  for (const p of parts.slice(1)) {
    if (p === "linux") os = "linux";
    else if (p === "darwin") os = "darwin";
    else if (p === "windows") os = "win32";
    else if (p === "x64") arch = "x64";
    else if (p === "arm64" || p === "aarch64") arch = "arm64";
    else if (p === "musl") libc = "musl";
    else if (p === "glibc" || p === "gnu") libc = "gnu";
    else if (p === "baseline" || p === "modern" || /^v?\d+\.\d+\.\d+$/.test(p)) continue;
    else throw new BuildError(`--target ${target}: unknown segment "${p}"`);
  }
  if (!os || !arch) throw new BuildError(`--target ${target}: needs an OS and an architecture, e.g. bun-linux-arm64`);
  if (os === "linux") libc ??= "gnu";
  else if (libc) throw new BuildError(`--target ${target}: libc only applies to linux`);
  return { os, arch, libc };
}

/** The platform of the Bun binary running this script (which `compile` copies by default). */
function hostPlatform(): Platform {
  const os = process.platform;
  const arch = process.arch;
  if (os !== "linux" && os !== "darwin" && os !== "win32") throw new BuildError(`unsupported build host OS ${os}`);
  if (arch !== "x64" && arch !== "arm64") throw new BuildError(`unsupported build host architecture ${arch}`);
  if (os !== "linux") return { os, arch };
  // Bun does not report glibcVersionRuntime, so ask the ELF interpreter of the bun binary itself.
  const head = Buffer.alloc(8192);
  const fd = openSync(process.execPath, "r");
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  return { os, arch, libc: head.includes("ld-musl-") ? "musl" : "gnu" };
}

function libsqlPackageFor(p: Platform): string {
  if (p.os === "linux") return `@libsql/linux-${p.arch}-${p.libc}`;
  if (p.os === "darwin") return `@libsql/darwin-${p.arch}`;
  if (p.arch === "x64") return "@libsql/win32-x64-msvc";
  throw new BuildError("libsql publishes no native addon for windows-arm64");
}

function describe(p: Platform): string {
  return [p.os, p.arch, p.libc].filter(Boolean).join("-");
}

/** Absolute path of the target's libsql `index.node`, checked against the libsql version. */
function resolveAddon(p: Platform): { pkg: string; addon: string; libsqlDir: string } {
  let libsqlDir: string;
  try {
    libsqlDir = path.dirname(Bun.resolveSync("libsql", ROOT));
  } catch {
    throw new BuildError(`cannot resolve the "libsql" package from ${ROOT}; run npm install first`);
  }
  const libsqlVersion: string = JSON.parse(readFileSync(path.join(libsqlDir, "package.json"), "utf8")).version;
  const pkg = libsqlPackageFor(p);
  let addon: string;
  try {
    addon = Bun.resolveSync(`${pkg}/index.node`, libsqlDir);
  } catch {
    // --force: npm refuses a package whose os/cpu do not match this machine (EBADPLATFORM).
    // --no-save: the next plain `npm install`/`npm ci` removes it again.
    throw new BuildError(
      `the libsql native addon for ${describe(p)} is not installed: ${pkg} was not found from ${libsqlDir}.\n` +
        `  Install it next to libsql (same version), e.g.:\n` +
        `    npm install --no-save --force ${pkg}@${libsqlVersion}`,
    );
  }
  const addonVersion: string = JSON.parse(readFileSync(path.join(path.dirname(addon), "package.json"), "utf8")).version;
  if (addonVersion !== libsqlVersion) {
    throw new BuildError(`${pkg}@${addonVersion} does not match libsql@${libsqlVersion}; install ${pkg}@${libsqlVersion}`);
  }
  return { pkg, addon, libsqlDir };
}

/** A Bun binary for a cross target that npm already installed (bun's optionalDependencies). */
function installedBunFor(p: Platform): string | undefined {
  const os = p.os === "win32" ? "windows" : p.os;
  const arch = p.arch === "arm64" ? "aarch64" : "x64";
  const name = `@oven/bun-${os}-${arch}${p.libc === "musl" ? "-musl" : ""}`;
  for (const bin of ["bin/bun", "bin/bun.exe"]) {
    const f = path.join(ROOT, "node_modules", name, bin);
    if (existsSync(f) && statSync(f).size > 1_000_000) return f;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The plugin

/** libsql's requireNative(), from `function requireNative() {` to the first column-0 `}`. */
const REQUIRE_NATIVE = /function requireNative\(\)\s*\{[\s\S]*?\n\}\r?\n/;
const NEON_REQUIRE = /^const \{[^}]*\} = require\("@neon-rs\/load"\);\r?\n/m;
const LIBC_REQUIRE = /^const \{[^}]*\} = require\("detect-libc"\);\r?\n/m;
const DEAD_TARGETS = /^if \(0\) \{\s*require\("\.\/\.targets"\);\s*\}\r?\n/m;

/** Rewrite libsql's index.js / promise.js so the native addon is a static require of `addon`. */
export function rewriteLibsqlSource(src: string, addon: string, file: string): string {
  if (!REQUIRE_NATIVE.test(src)) {
    throw new BuildError(
      `${file}: requireNative() not found; libsql changed its loader, update the plugin in build.ts`,
    );
  }
  let out = src.replace(
    REQUIRE_NATIVE,
    `function requireNative() {\n  return require(${JSON.stringify(addon)});\n}\n`,
  );
  // With the probing gone these imports are dead; drop them (and their dynamic require) if unused.
  const rest = (s: string, re: RegExp) => s.replace(re, "");
  const withoutNeon = rest(out, NEON_REQUIRE);
  if (!/\b(load|currentTarget)\b\s*\(/.test(withoutNeon)) out = withoutNeon;
  const withoutLibc = rest(out, LIBC_REQUIRE);
  if (!/\b(familySync|GLIBC|MUSL)\b/.test(withoutLibc)) out = withoutLibc;
  out = rest(out, DEAD_TARGETS);
  if (/require\(\s*`/.test(out)) {
    throw new BuildError(`${file}: a dynamic require is left after the rewrite; update the plugin in build.ts`);
  }
  return out;
}

/**
 * Bun.build plugin: embed libsql's native addon for `addon` (an absolute path to the
 * platform package's index.node) by making libsql require it statically.
 */
export function libsqlNativePlugin(addon: string, patched: Set<string> = new Set()): BunPlugin {
  return {
    name: "libsql-static-native-addon",
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]libsql[\\/](index|promise)\.js$/ }, async (args) => {
        const src = await Bun.file(args.path).text();
        patched.add(args.path);
        return { contents: rewriteLibsqlSource(src, addon, args.path), loader: "js" };
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Main

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      entry: { type: "string", default: "src/main.ts" },
      outfile: { type: "string", default: "dist/tsdb-pair" },
      target: { type: "string" },
      "executable-path": { type: "string" },
      sourcemap: { type: "string", default: "linked" },
      minify: { type: "boolean", default: true },
      "no-minify": { type: "boolean", default: false },
      bytecode: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    const doc = readFileSync(import.meta.path, "utf8").match(/\/\*\*([\s\S]*?)\*\//)?.[1] ?? "";
    console.log(doc.replace(/^ \* ?/gm, "").trim());
    return;
  }

  const entry = path.resolve(ROOT, values.entry);
  const outfile = path.resolve(ROOT, values.outfile);
  if (!existsSync(entry)) throw new BuildError(`entry ${entry} does not exist`);
  const sourcemap = values.sourcemap;
  if (sourcemap !== "linked" && sourcemap !== "inline" && sourcemap !== "none") {
    throw new BuildError(`--sourcemap must be linked, inline or none, got "${sourcemap}"`);
  }
  const minify = values.minify && !values["no-minify"];

  const target = values.target as Bun.Build.CompileTarget | undefined;
  const platform = target ? parseTarget(target) : hostPlatform();
  const { pkg, addon } = resolveAddon(platform);
  const host = hostPlatform();
  const sameAsHost = describe(platform) === describe(host);
  // For the host platform reuse the running bun; for another one an installed @oven/bun-*
  // package if any, else Bun downloads the matching runtime itself.
  const executablePath =
    values["executable-path"] ?? (target ? (sameAsHost ? process.execPath : installedBunFor(platform)) : undefined);

  mkdirSync(path.dirname(outfile), { recursive: true });
  const patched = new Set<string>();
  const t0 = performance.now();
  const result = await Bun.build({
    // Workers are bundled as entry points of their own (src/ingest/workers.ts starts them by
    // their source path, which the executable maps to the bundled copy).
    entrypoints: [entry, ...WORKERS.map((w) => path.resolve(ROOT, w))],
    target: "bun",
    format: "esm",
    // keepNames: minified code keeps function/class names, so stack traces stay readable.
    minify: minify ? { whitespace: true, syntax: true, identifiers: true, keepNames: true } : false,
    sourcemap,
    bytecode: values.bytecode,
    plugins: [libsqlNativePlugin(addon, patched)],
    compile: {
      outfile,
      ...(target ? { target } : {}),
      ...(executablePath ? { executablePath } : {}),
      // A server binary should not pick up a stray .env or bunfig.toml from its working dir.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    throw: false,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new BuildError("Bun.build failed");
  }
  for (const log of result.logs) console.warn(log);

  const exe = result.outputs.find((o) => o.kind === "entry-point" && !WORKERS.some((w) => o.path.endsWith(path.basename(w, ".ts"))))?.path ?? outfile;
  const size = statSync(exe).size;
  const rel = path.relative(process.cwd(), exe);
  const shown = rel && !rel.startsWith("..") ? rel : exe;
  console.log(
    `built ${shown} (${mb(size)}, ${size} bytes) in ${seconds.toFixed(2)}s` +
      ` for ${target ?? `host ${describe(platform)}`}` +
      `; libsql addon ${patched.size ? `${pkg} embedded` : "not used by this entry"}` +
      `; minify ${minify ? "on" : "off"}, sourcemap ${sourcemap}${values.bytecode ? ", bytecode" : ""}`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    if (err instanceof BuildError) {
      console.error(`build.ts: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}
