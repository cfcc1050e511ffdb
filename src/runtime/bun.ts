/** Bun's side of the runtime adapter. */
import { rootCertificates } from "node:tls";
import { causeChain } from "./fetch-failure.ts";
import { settlesWithin } from "./settle.ts";
import type { ClientTrust, FetchFailure, FetchFn, FetchHandler, Runtime, RunningServer, ServeOptions, TlsFailure } from "./types.ts";

/** BoringSSL verification results (as Node names them) that Bun puts in `error.code`. */
const TLS_CODES: Record<string, TlsFailure> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "untrusted",
  UNABLE_TO_GET_ISSUER_CERT: "untrusted",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "untrusted",
  SELF_SIGNED_CERT_IN_CHAIN: "untrusted",
  DEPTH_ZERO_SELF_SIGNED_CERT: "untrusted",
  CERT_UNTRUSTED: "untrusted",
  CERT_REJECTED: "untrusted",
  CERT_SIGNATURE_FAILURE: "untrusted",
  INVALID_CA: "untrusted",
  ERR_TLS_CERT_ALTNAME_INVALID: "wrong-name",
  CERT_HAS_EXPIRED: "expired",
  CERT_NOT_YET_VALID: "expired",
  // Bun's message for it: "The TLS handshake failed. Does the server speak TLS on this port?"
  EPROTO: "handshake",
};

export const bunRuntime = {
  name: "bun",
  async serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer> {
    const server = Bun.serve({
      hostname: options.hostname,
      port: options.port,
      maxRequestBodySize: options.maxRequestBodySize,
      // Telegraf keeps connections open between flushes; a long idle timeout spares reconnects.
      idleTimeout: 120,
      ...(options.tls === undefined ? {} : { tls: { cert: options.tls.cert, key: options.tls.key } }),
      fetch: handler,
    });
    return {
      port: server.port ?? options.port,
      stop: async (graceMs) => {
        const finished = await settlesWithin(server.stop(false), graceMs);
        if (!finished) await server.stop(true);
        return finished;
      },
    };
  },
  createFetch(trust: ClientTrust): FetchFn {
    if (trust.ca === undefined) return (input, init) => fetch(input, init);
    // Bun's `ca` replaces its default roots, while Deno's `caCerts` adds to them: keep the
    // defaults so that a given CA means the same on both runtimes. Built once, reused per request.
    const tls = { ca: [trust.ca, ...rootCertificates] };
    return (input, init) => fetch(input, { ...init, tls });
  },
  explainFetchError(error: unknown): FetchFailure {
    const code = (error as { code?: unknown } | null)?.code;
    // Bun appends advice meant for someone at a console; status and logs are better without it.
    const detail = causeChain(error).replace(/\.? For more information, pass `verbose: true`.*$/, "");
    return { tls: typeof code === "string" ? (TLS_CODES[code] ?? null) : null, detail };
  },
} satisfies Runtime;
