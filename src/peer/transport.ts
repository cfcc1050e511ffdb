/**
 * How the peer link reaches the twin: `fetch`, trusting the pair's CA (`--peer-ca`) on top of
 * the runtime's default roots, with failures told in the operator's terms (which setting to
 * fix) rather than the runtime's (UNABLE_TO_VERIFY_LEAF_SIGNATURE, UnknownIssuer, "fetch failed").
 */
import { currentRuntime, isAbort, type FetchFn, type Runtime, type TlsFailure } from "../runtime/index.ts";

/** What the peer link calls instead of the global fetch. */
export type PeerFetch = FetchFn;

export interface PeerTransportOptions {
  /** PEM text of the CA certificate(s) that signed the twin's certificate (`--peer-ca`). */
  readonly ca?: string;
  /** The runtime to fetch with; the one this process runs on when absent. */
  readonly runtime?: Runtime;
}

/** A fetch for requests to the twin; make it once per link (on Deno it holds an HTTP client). */
export function createPeerFetch(opts: PeerTransportOptions = {}): PeerFetch {
  const runtime = opts.runtime ?? currentRuntime();
  const inner = runtime.createFetch({ ca: opts.ca });
  const hasCa = opts.ca !== undefined;
  return async (input, init) => {
    try {
      return await inner(input, init);
    } catch (e) {
      // An abort is the link stopping or pausing on purpose, and it checks for exactly that.
      if (isAbort(e)) throw e;
      const failure = runtime.explainFetchError(e);
      // A TypeError, as fetch itself rejects with on network failures: the link takes it as
      // "this address did not work" and tries the twin's other addresses, which is right for
      // TLS too (a ring where someone else answers must not stop the link on the good one).
      throw new TypeError(explain(failure.tls, failure.detail, hasCa), { cause: e });
    }
  };
}

function explain(tls: TlsFailure | null, detail: string, hasCa: boolean): string {
  switch (tls) {
    case null:
      return detail;
    case "untrusted":
      return `the twin's TLS certificate is not trusted (${detail}): ${
        hasCa ? "it must be signed by the CA in --peer-ca" : "set --peer-ca to the CA that signed it"
      }`;
    case "wrong-name":
      return `the twin's TLS certificate is not valid for the address used (${detail}): its subjectAltName must name the host given in --peer`;
    case "expired":
      return `the twin's TLS certificate is expired or not yet valid (${detail}): renew it, and check both clocks`;
    case "handshake":
      return `TLS handshake with the twin failed (${detail}): is the twin serving HTTPS (--tls-cert set on both nodes)?`;
  }
}
