/**
 * Bun only: sizes the garbage-collected heap for a gateway, not for the machine's RAM.
 *
 * JavaScriptCore lets its heap grow to about twice what survived the last full collection
 * while the heap is small next to the machine's RAM, and RAM is read once, when the VM starts.
 * Ingest leaves a steady stream of short-lived request bodies, parsed batches and flushed
 * buffers, so on a box with a lot of RAM the heap settled far above what the server keeps
 * alive (see HEAP_RAM_BYTES for what the setting bought). The only setting for it is the
 * `BUN_JSC_forceRAMSize` environment variable, read before any script runs, so `serve`
 * re-executes itself once with it set: execve keeps the process id, arguments and open
 * terminal, so systemd, signals and `kill` see one process throughout. A value set by the
 * operator is left alone.
 */
import { readFileSync } from "node:fs";
import process from "node:process";

export const HEAP_RAM_VARIABLE = "BUN_JSC_forceRAMSize";
/**
 * The RAM the collector is told about. 256 MiB: in the ingest bench peak RSS fell from about
 * 900 MB (machine RAM) to about 600 MB at 512 MiB and 440 MB at 256 MiB, at the same speed;
 * with 100,000 series (a live heap well above it) ingest kept its speed too.
 */
export const HEAP_RAM_BYTES = 256 * 1024 * 1024;

/**
 * Replaces this process with itself, same arguments, plus the heap setting. Returns only when
 * that is not possible here (no /proc, no libc to call, execve refused): the server then runs
 * with the runtime's default sizing, which is correct, only larger.
 */
export async function reexecWithHeapSizing(): Promise<void> {
  if (process.env[HEAP_RAM_VARIABLE] !== undefined) return;
  let args: string[];
  try {
    args = readFileSync("/proc/self/cmdline", "latin1").split("\0");
    if (args[args.length - 1] === "") args.pop();
  } catch {
    return;
  }
  const ffi = await import("bun:ffi");
  let execve: (path: unknown, argv: unknown, envp: unknown) => number;
  try {
    const libc = ffi.dlopen("libc.so.6", {
      execve: { args: [ffi.FFIType.ptr, ffi.FFIType.ptr, ffi.FFIType.ptr], returns: ffi.FFIType.i32 },
    });
    execve = libc.symbols.execve as typeof execve;
  } catch {
    return;
  }
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ""}`);
  env.push(`${HEAP_RAM_VARIABLE}=${HEAP_RAM_BYTES}`);
  // C strings and NULL-terminated pointer arrays; the buffers stay referenced until the call.
  const keep: Uint8Array[] = [];
  const cString = (s: string): Uint8Array => {
    const b = Buffer.from(`${s}\0`, "utf8");
    keep.push(b);
    return b;
  };
  const pointers = (list: string[]): BigUint64Array => {
    const out = new BigUint64Array(list.length + 1);
    list.forEach((s, i) => (out[i] = BigInt(ffi.ptr(cString(s)))));
    return out;
  };
  const argv = pointers(args);
  const envp = pointers(env);
  execve(ffi.ptr(cString("/proc/self/exe")), ffi.ptr(argv), ffi.ptr(envp));
  // Still here: execve failed; go on in this process.
  keep.length = 0;
}
