/** What the server needs from a JavaScript runtime; each runtime folder file provides it. */

export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
  /** Largest request body the runtime itself should read; the app enforces the real limit. */
  readonly maxRequestBodySize: number;
}

export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting connections and waits for requests in flight. */
  stop(): Promise<void>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface Runtime {
  readonly name: "bun" | "deno";
  serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer>;
}
