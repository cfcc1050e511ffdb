/** Bun's side of the runtime adapter. */
import type { FetchHandler, Runtime, RunningServer, ServeOptions } from "./types.ts";

export const bunRuntime = {
  name: "bun",
  async serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer> {
    const server = Bun.serve({
      hostname: options.hostname,
      port: options.port,
      maxRequestBodySize: options.maxRequestBodySize,
      // Telegraf keeps connections open between flushes; a long idle timeout spares reconnects.
      idleTimeout: 120,
      fetch: handler,
    });
    return {
      port: server.port ?? options.port,
      stop: () => server.stop(false),
    };
  },
} satisfies Runtime;
