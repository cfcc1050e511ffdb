/** The HTTP API against a real server process on loopback. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { exportDb, removeDir, startNode, write, type NodeProcess } from "./support/node.ts";

let node: NodeProcess;
let secured: NodeProcess;
let strict: NodeProcess;

beforeAll(async () => {
  [node, secured, strict] = await Promise.all([
    startNode({ args: ["--max-body", "64KiB"] }),
    startNode({ args: ["--auth-token", "s3cret"] }),
    startNode({ args: ["--no-auto-create"] }),
  ]);
});

afterAll(async () => {
  for (const n of [node, secured, strict]) {
    if (!n) continue;
    expect(await n.stop()).toBe(0);
    removeDir(n.dataDir);
  }
});

describe("ping and health", () => {
  test("GET and HEAD /ping answer 204 with the InfluxDB version header", async () => {
    for (const method of ["GET", "HEAD"]) {
      const res = await fetch(`${node.url}/ping`, { method });
      expect(res.status).toBe(204);
      expect(res.headers.get("x-influxdb-version")).toMatch(/^1\./);
    }
  });

  test("/ready says the node recovered and is ready", async () => {
    const res = await fetch(`${node.url}/ready`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.ready).toBe(true);
    expect(body.reason).toMatch(/^recovered: replayed \d+ frame\(s\) in \d+ ms$/);
  });

  test("/health reports pass as JSON", async () => {
    const res = await fetch(`${node.url}/health`);
    expect(res.status).toBe(200);
    expect((await res.json()).status).toBe("pass");
  });
});

describe("/write (InfluxDB 1.x)", () => {
  const cases: Array<[string, string, string, string]> = [
    ["nanoseconds by default", "", "p1 v=1 1700000000000000000", "p1 v=1 1700000000000000000\n"],
    ["n as nanoseconds", "precision=n", "p2 v=1 1700000000000000001", "p2 v=1 1700000000000000001\n"],
    ["u as microseconds", "precision=u", "p3 v=1 1700000000000001", "p3 v=1 1700000000000001000\n"],
    ["ms as milliseconds", "precision=ms", "p4 v=1 1700000000001", "p4 v=1 1700000000001000000\n"],
    ["s as seconds", "precision=s", "p5 v=1 1700000000", "p5 v=1 1700000000000000000\n"],
    ["m as minutes", "precision=m", "p6 v=1 28333333", "p6 v=1 1699999980000000000\n"],
    ["h as hours", "precision=h", "p7 v=1 472222", "p7 v=1 1699999200000000000\n"],
  ];
  for (const [name, query, body, expected] of cases) {
    test(`stores timestamps given in ${name}`, async () => {
      const db = `prec${name.split(" ")[0]}`;
      const res = await write(node.url, body, `db=${db}&${query}`);
      expect(res.status).toBe(204);
      expect(await exportDb(node.url, db)).toBe(expected);
    });
  }

  test("tells the LSN of the frame that holds the write, rising by one per request", async () => {
    const first = await write(node.url, "lsn v=1 1", "db=lsn");
    const second = await write(node.url, "lsn v=2 2", "db=lsn");
    const a = Number(first.headers.get("x-tsdb-pair-lsn"));
    expect(Number.isInteger(a) && a > 0).toBe(true);
    expect(Number(second.headers.get("x-tsdb-pair-lsn"))).toBe(a + 1);
  });

  test("stamps lines without a timestamp with the server time truncated to the precision", async () => {
    const before = BigInt(Date.now()) * 1_000_000n;
    expect((await write(node.url, "now v=1", "db=nowdb&precision=s")).status).toBe(204);
    const line = (await exportDb(node.url, "nowdb")).trim();
    const t = BigInt(line.split(" ")[2]!);
    expect(t % 1_000_000_000n).toBe(0n);
    expect(t).toBeGreaterThanOrEqual(before - 1_000_000_000n);
    expect(t).toBeLessThanOrEqual(BigInt(Date.now()) * 1_000_000n);
  });

  test("refuses an unknown precision instead of taking it as nanoseconds", async () => {
    const res = await write(node.url, "m v=1 1", "db=x&precision=us2");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toContain("invalid precision");
  });

  test("requires a database", async () => {
    const res = await write(node.url, "m v=1 1", "");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toBe("database is required");
  });

  test("answers 404 for an unknown retention policy and stores nothing", async () => {
    const res = await write(node.url, "m v=1 1", "db=rpdb&rp=nope");
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text).error).toBe("retention policy not found: nope");
    expect((await fetch(`${node.url}/export?db=rpdb`)).status).toBe(404);
  });

  test("accepts the autogen retention policy", async () => {
    expect((await write(node.url, "m v=1 1", "db=autogen&rp=autogen")).status).toBe(204);
  });

  test("stores the good lines of a body with a malformed one and names the bad line", async () => {
    const res = await write(node.url, "m v=1 1\nm v=1x 2\nm v=3 3\n", "db=partial");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toBe("partial write: unable to parse 'm v=1x 2': invalid number (line 2) dropped=1");
    expect(await exportDb(node.url, "partial")).toBe("m v=1 1\nm v=3 3\n");
  });

  test("reports a body of only bad lines without the partial-write prefix", async () => {
    const res = await write(node.url, "m\n", "db=allbad");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toMatch(/^unable to parse 'm': missing fields \(line 1\)$/);
  });

  test("drops a line whose field type clashes with stored data and keeps the others", async () => {
    expect((await write(node.url, "m v=1 1", "db=clash")).status).toBe(204);
    const res = await write(node.url, "m v=2i 2\nm v=3 3", "db=clash");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toBe(
      'partial write: field type conflict: input field "v" on measurement "m" is type integer, already exists as type float (line 1) dropped=1',
    );
    expect(await exportDb(node.url, "clash")).toBe("m v=1 1\nm v=3 3\n");
  });

  test("reads gzip bodies", async () => {
    const res = await write(node.url, gzipSync("gz v=1 1\ngz v=2 2\n"), "db=gz", { "Content-Encoding": "gzip" });
    expect(res.status).toBe(204);
    expect(await exportDb(node.url, "gz")).toBe("gz v=1 1\ngz v=2 2\n");
  });

  test("refuses a corrupt gzip body with 400 and stores nothing", async () => {
    const res = await write(node.url, new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]), "db=badgz", { "Content-Encoding": "gzip" });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toContain("invalid gzip");
    expect((await fetch(`${node.url}/export?db=badgz`)).status).toBe(404);
  });

  test("refuses invalid UTF-8 with 400 and stores nothing", async () => {
    const body = new Uint8Array([...new TextEncoder().encode("ok v=1 1\nm"), 0xff, ...new TextEncoder().encode(" v=1 2")]);
    const res = await write(node.url, body, "db=badutf");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toBe("request body is not valid UTF-8 at byte 10");
    expect((await fetch(`${node.url}/export?db=badutf`)).status).toBe(404);
  });

  test("refuses a body over --max-body with 413 and stores nothing", async () => {
    const big = "big v=1 1\n".repeat(7000);
    const res = await write(node.url, big, "db=big");
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).error).toContain("request entity too large");
    expect((await fetch(`${node.url}/export?db=big`)).status).toBe(404);
  });

  test("refuses a small gzip body that inflates past --max-body", async () => {
    const res = await write(node.url, gzipSync("big v=1 1\n".repeat(20000)), "db=bomb", { "Content-Encoding": "gzip" });
    expect(res.status).toBe(413);
    expect((await fetch(`${node.url}/export?db=bomb`)).status).toBe(404);
  });

  test("answers 404 for a new database when auto-create is off", async () => {
    const res = await write(strict.url, "m v=1 1", "db=nothere");
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text).error).toBe('database not found: "nothere"');
  });
});

describe("/api/v2/write", () => {
  test("writes to bucket db/rp with precision us and answers errors in the 2.x shape", async () => {
    const ok = await fetch(`${node.url}/api/v2/write?bucket=v2db/autogen&org=any&precision=us`, { method: "POST", body: "m v=1 5" });
    expect(ok.status).toBe(204);
    expect(await exportDb(node.url, "v2db")).toBe("m v=1 5000\n");
    const bad = await fetch(`${node.url}/api/v2/write?bucket=v2db&precision=u`, { method: "POST", body: "m v=1 5" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ code: "invalid", message: 'invalid precision "u": expected one of ns, us, ms, s' });
  });

  test("requires a bucket", async () => {
    const res = await fetch(`${node.url}/api/v2/write`, { method: "POST", body: "m v=1 5" });
    expect(res.status).toBe(400);
  });
});

describe("authentication", () => {
  const ok: Array<[string, string, Record<string, string>]> = [
    ["a Token header", "db=a", { Authorization: "Token s3cret" }],
    ["a Bearer header", "db=a", { Authorization: "Bearer s3cret" }],
    ["Basic auth with the token as password", "db=a", { Authorization: `Basic ${btoa("telegraf:s3cret")}` }],
    ["the p query parameter", "db=a&u=any&p=s3cret", {}],
  ];
  for (const [name, query, headers] of ok) {
    test(`accepts the token in ${name}`, async () => {
      expect((await write(secured.url, "m v=1 1", query, headers)).status).toBe(204);
    });
  }

  const bad: Array<[string, string, Record<string, string>]> = [
    ["no credentials", "db=denied", {}],
    ["a wrong token", "db=denied", { Authorization: "Token nope" }],
    ["a wrong password", "db=denied&u=x&p=nope", {}],
  ];
  for (const [name, query, headers] of bad) {
    test(`answers 401 and stores nothing for ${name}`, async () => {
      const res = await write(secured.url, "m v=1 1", query, headers);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.text).error).toMatch(/authorization failed|unable to parse authentication credentials/);
    });
  }

  test("guards /export too, and nothing was stored by refused writes", async () => {
    expect((await fetch(`${secured.url}/export?db=a`)).status).toBe(401);
    expect((await fetch(`${secured.url}/export?db=denied`, { headers: { Authorization: "Token s3cret" } })).status).toBe(404);
  });
});

describe("/export", () => {
  test("prints the same bytes for the same data written in a different order and shape", async () => {
    const a = "cpu,host=b,region=x usage=1.5,idle=98i 30\ncpu,region=x,host=a usage=2 10\ncpu,host=a,region=x idle=7i 10\n";
    const b = "cpu,host=a,region=x idle=7i,usage=2 10\ncpu,region=x,host=b idle=98i 30\ncpu,host=b,region=x usage=1.5 30\n";
    expect((await write(node.url, a, "db=canon1")).status).toBe(204);
    expect((await write(node.url, b, "db=canon2")).status).toBe(204);
    const one = await exportDb(node.url, "canon1");
    expect(one).toBe(await exportDb(node.url, "canon2"));
    expect(one).toBe("cpu,host=a,region=x idle=7i,usage=2 10\ncpu,host=b,region=x idle=98i,usage=1.5 30\n");
  });

  test("answers 404 for an unknown database", async () => {
    expect((await fetch(`${node.url}/export?db=nope`)).status).toBe(404);
  });
});
