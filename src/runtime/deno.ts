/** Deno's side of the runtime adapter. */
import type { FetchHandler, Runtime, RunningServer, ServeOptions } from "./types.ts";

interface DenoHttpServer {
  readonly addr: { port: number };
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: FetchHandler,
  ): DenoHttpServer;
}

export const denoRuntime = {
  name: "deno",
  async serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer> {
    const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
    const server = deno.serve({ hostname: options.hostname, port: options.port, onListen() {} }, handler);
    return {
      port: server.addr.port,
      stop: async () => {
        await server.shutdown();
      },
    };
  },
} satisfies Runtime;
