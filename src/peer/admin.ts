/**
 * Operating the link over HTTP, guarded like the rest of the API: `GET /peer/status`,
 * `POST /peer/pause`, `POST /peer/resume` (what `tsdb-pair peer ...` calls).
 */
import type { Hono } from "hono";
import type { PeerLink } from "./link.ts";

export function registerPeerAdminRoutes(app: Hono, link: PeerLink, authorize: (req: Request) => void): void {
  app.get("/peer/status", (c) => {
    authorize(c.req.raw);
    return c.json(link.status());
  });
  app.post("/peer/pause", (c) => {
    authorize(c.req.raw);
    link.pause();
    return c.json(link.status());
  });
  app.post("/peer/verify", async (c) => {
    authorize(c.req.raw);
    const bucket = c.req.query("bucket_ns");
    const bucketNs = bucket === undefined ? 3600_000_000_000n : BigInt(bucket);
    return c.json(await link.verify({ bucketNs, repair: c.req.query("repair") === "true" }));
  });
  app.post("/peer/resume", (c) => {
    authorize(c.req.raw);
    link.resume();
    return c.json(link.status());
  });
}
