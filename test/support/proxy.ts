/**
 * A TCP proxy on loopback between the twins, so tests can cut the link, heal it, and corrupt
 * bytes in flight, with real sockets on both sides.
 */
import { readFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";

export class Proxy {
  private readonly sockets = new Set<Socket>();
  private down = false;
  private stalled = false;
  /** Connections that pass no more bytes, for good (see silence). */
  private readonly silenced = new WeakSet<Socket>();
  /** The next request to a path: how many bytes of its answer pass before it goes silent (see silenceAnswer). */
  private answerRule: { path: string; bytes: number } | null = null;
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
      const quiet = () => this.stalled || this.silenced.has(client);
      // Bytes of the answer still to pass on this connection before it goes silent, if limited.
      let passing = Number.POSITIVE_INFINITY;
      client.on("data", (d: Buffer) => {
        const rule = this.answerRule;
        if (rule !== null && d.toString("latin1").includes(rule.path)) {
          this.answerRule = null;
          passing = rule.bytes;
        }
        if (!quiet()) upstream.write(d);
      });
      upstream.on("data", (d: Buffer) => {
        if (quiet()) return;
        if (d.length > passing) {
          if (passing > 0) client.write(d.subarray(0, passing));
          this.silenced.add(client);
          return;
        }
        passing -= d.length;
        client.write(this.maybeCorrupt(d));
      });
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

  /** Keeps every connection open but passes no more bytes either way: a twin gone silent. */
  stall(): void {
    this.stalled = true;
  }

  /**
   * The connections open now pass no more bytes either way, for good, and are never closed;
   * new ones work. What a twin that lost power leaves behind: our end of the connection
   * open, with nothing to tell us it is dead.
   */
  silence(): void {
    for (const s of this.sockets) this.silenced.add(s);
  }

  /**
   * The next request whose first bytes name `path` gets the first `bytes` bytes of its answer
   * (headers included), then nothing more, its connection left open: a twin that lost power
   * in the middle of a long answer. Later requests are not touched.
   */
  silenceAnswer(path: string, bytes: number): void {
    this.answerRule = { path, bytes };
  }

  heal(): void {
    this.down = false;
    this.stalled = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/**
 * A free port for a server the test starts itself, chosen below the kernel's ephemeral range.
 * A port handed out by `listen(0)` and released can be taken again at once as the local port
 * of some outgoing connection (one test run lost a node that way: "port in use", and its twin
 * then dialled the stray connection); ports outside the range are never handed out on their
 * own, so only another explicit bind can take one, and that is checked here.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const top = Math.min(low, 32768);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10000 + Math.floor(Math.random() * (top - 10000));
    if (await canBind(port)) return port;
  }
  throw new Error("no free port below the ephemeral range after 200 tries");
}

function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(a) && Number.isInteger(b) && a! > 10000) return [a!, b!];
  } catch {
    // not Linux: the common default
  }
  return [32768, 60999];
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}
