/**
 * A TCP proxy on loopback between the twins, so tests can cut the link, heal it, and corrupt
 * bytes in flight, with real sockets on both sides.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export class Proxy {
  private readonly sockets = new Set<Socket>();
  private down = false;
  private corruptBytes = 0;
  private server: Server | null = null;
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(port = 0): Promise<this> {
    this.server = createServer((client) => {
      if (this.down) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, "127.0.0.1");
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("data", (d: Buffer) => upstream.write(d));
      upstream.on("data", (d: Buffer) => client.write(this.maybeCorrupt(d)));
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Flips one bit in each of the next `n` response chunks that are large enough to hold a frame. */
  corrupt(n: number): void {
    this.corruptBytes = n;
  }

  private maybeCorrupt(d: Buffer): Buffer {
    if (this.corruptBytes <= 0 || d.length < 64) return d;
    this.corruptBytes--;
    const copy = Buffer.from(d);
    copy[copy.length - 8]! ^= 0x10;
    return copy;
  }

  /** Cuts every connection and refuses new ones. */
  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A port that was free a moment ago (the OS may hand it out again, rarely). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
