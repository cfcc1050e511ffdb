/** Picks the runtime adapter. The only place that asks which runtime this is. */
import { bunRuntime } from "./bun.ts";
import { denoRuntime } from "./deno.ts";
import type { Runtime } from "./types.ts";

export type {
  ClientTrust,
  FetchFailure,
  FetchFn,
  FetchHandler,
  Runtime,
  RunningServer,
  ServeOptions,
  TlsFailure,
  TlsKeyPair,
} from "./types.ts";
export { isAbort } from "./fetch-failure.ts";
export { readCaFile, readTlsKeyPair } from "./tls.ts";

export function currentRuntime(): Runtime {
  if ("Bun" in globalThis) return bunRuntime;
  if ("Deno" in globalThis) return denoRuntime;
  throw new Error("tsdb-pair runs on Bun or Deno");
}
