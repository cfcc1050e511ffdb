/**
 * A do-nothing HTTP sink used by bench/ingest.ts to measure how fast its load generator can
 * push bodies (run as a separate process so it does not share the generator's event loop).
 * Usage: bun bench/null-sink.ts <port>. Reads and drops every POST body, answers 204;
 * GET /ping answers 204; GET /stats reports requests, bytes and distinct client connections.
 */

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
  process.stderr.write(`null-sink: expected a port number, got ${JSON.stringify(process.argv[2] ?? "")}\n`);
  process.exit(2);
}

let requests = 0;
let bytes = 0;
const clientPorts = new Set<number>();

Bun.serve({
  hostname: "127.0.0.1",
  port,
  async fetch(req, server) {
    const url = new URL(req.url);
    if (req.method === "POST") {
      const body = await req.arrayBuffer();
      requests++;
      bytes += body.byteLength;
      const ip = server.requestIP(req);
      if (ip !== null) clientPorts.add(ip.port);
      return new Response(null, { status: 204 });
    }
    if (url.pathname === "/ping") return new Response(null, { status: 204 });
    if (url.pathname === "/stats") {
      return Response.json({ requests, bytes, connections: clientPorts.size });
    }
    return new Response("not found\n", { status: 404 });
  },
});
