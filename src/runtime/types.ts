/** What the server needs from a JavaScript runtime; each runtime folder file provides it. */

/** A certificate chain and its private key, as PEM text (not paths). */
export interface TlsKeyPair {
  /** The leaf certificate first, then any intermediates (not the root). */
  readonly cert: string;
  readonly key: string;
}

export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
  /** Largest request body the runtime itself should read; the app enforces the real limit. */
  readonly maxRequestBodySize: number;
  /** When given, the server speaks HTTPS (and only HTTPS) on the same port. */
  readonly tls?: TlsKeyPair;
}

export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /**
   * Stops accepting connections and waits up to `graceMs` for requests in flight. Resolves
   * true when they all finished, false when some were still going at the end of the grace:
   * then they are cut where the runtime can cut them, and left to the process's exit where
   * it cannot (Deno).
   */
  stop(graceMs: number): Promise<boolean>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/**
 * The part of `fetch` that tsdb-pair uses. Narrower than `typeof fetch` on purpose: Bun's
 * global type carries extras (`preconnect`) that a wrapper need not provide.
 */
export type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Whom an outgoing HTTPS request trusts besides the runtime's default root certificates. */
export interface ClientTrust {
  /** Extra CA certificate(s), PEM; when absent only the default roots are trusted. */
  readonly ca?: string;
}

/**
 * Why a TLS connection failed, in the runtime's terms turned into ours: the certificate is
 * not signed by anything trusted, names another host, is out of its validity period, or the
 * other end does not speak TLS at all.
 */
export type TlsFailure = "untrusted" | "wrong-name" | "expired" | "handshake";

/** A failed fetch as the runtime explains it. */
export interface FetchFailure {
  /** Set when the failure is a TLS problem; null for refused connections, resets, DNS, … */
  readonly tls: TlsFailure | null;
  /** The runtime's own words, causes included (Deno puts the useful part in `cause`). */
  readonly detail: string;
}

export interface Runtime {
  readonly name: "bun" | "deno";
  serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer>;
  /** A fetch for outgoing requests that also trusts `trust.ca`; made once and reused. */
  createFetch(trust: ClientTrust): FetchFn;
  /** Reads a rejection of a fetch made by this runtime. */
  explainFetchError(error: unknown): FetchFailure;
}
