/** Deno's side of the runtime adapter. */
import { causeChain } from "./fetch-failure.ts";
import { settlesWithin } from "./settle.ts";
import type { ClientTrust, FetchFailure, FetchFn, FetchHandler, Runtime, RunningServer, ServeOptions, TlsFailure } from "./types.ts";

interface DenoHttpServer {
  readonly addr: { port: number };
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** The slice of the Deno namespace used here (the Bun-typed build cannot see Deno's types). */
interface DenoApi {
  serve(
    options: { hostname: string; port: number; cert?: string; key?: string; onListen?: (addr: { port: number }) => void },
    handler: FetchHandler,
  ): DenoHttpServer;
  /** https://docs.deno.com/api/deno/~/Deno.createHttpClient */
  createHttpClient(options: { caCerts?: string[] }): unknown;
}

function denoApi(): DenoApi {
  return (globalThis as unknown as { Deno: DenoApi }).Deno;
}

/**
 * rustls' verdicts as Deno words them ("client error (Connect): invalid peer certificate:
 * UnknownIssuer"); older and newer rustls spell some of them differently, hence the pairs.
 */
const TLS_PATTERNS: Array<[RegExp, TlsFailure]> = [
  [/invalid peer certificate: (?:.*not valid for name|NotValidForName)/i, "wrong-name"],
  [/invalid peer certificate: (?:.*expired|Expired|.*not valid (?:after|before)|NotValidYet)/i, "expired"],
  [/invalid peer certificate/i, "untrusted"],
  // What a TLS client reads when the server answers in plain HTTP.
  [/corrupt message|InvalidContentType|tls handshake/i, "handshake"],
];

export const denoRuntime = {
  name: "deno",
  async serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer> {
    const tls = options.tls === undefined ? {} : { cert: options.tls.cert, key: options.tls.key };
    const server = denoApi().serve({ hostname: options.hostname, port: options.port, ...tls, onListen() {} }, handler);
    return {
      port: server.addr.port,
      // Deno cannot cut a request in flight: one still going at the end of the grace ends
      // with the process (see the serve command).
      stop: (graceMs) => settlesWithin(server.shutdown(), graceMs),
    };
  },
  createFetch(trust: ClientTrust): FetchFn {
    if (trust.ca === undefined) return (input, init) => fetch(input, init);
    // `caCerts` is used in addition to the default roots. The client lives as long as the
    // process: the link makes one and keeps it.
    const client = denoApi().createHttpClient({ caCerts: [trust.ca] });
    return (input, init) => fetch(input, { ...init, client } as RequestInit);
  },
  explainFetchError(error: unknown): FetchFailure {
    // "fetch failed" says nothing the cause does not; keep the cause.
    const detail = causeChain(error).replace(/^fetch failed: /, "");
    const hit = TLS_PATTERNS.find(([re]) => re.test(detail));
    return { tls: hit === undefined ? null : hit[1], detail };
  },
} satisfies Runtime;
