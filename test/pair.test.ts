/**
 * Dual-active pairing with real processes and real sockets: two nodes on loopback, each
 * reaching its twin through a TCP proxy the test can cut or make corrupt bytes. No mock twin.
 */
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import { write } from "./support/node.ts";
import { converged, exportOrEmpty, peerStatus, startPair, type Pair, type PairMember } from "./support/pair.ts";

/** What was acknowledged: point identity ("series time") -> the values acknowledged for it. */
type Acked = Map<string, Set<string>>;

function key(line: string): [string, string] {
  const [series, fields, time] = line.split(" ");
  return [`${series} ${time}`, fields!];
}

function remember(acked: Acked, lines: string[]): void {
  for (const l of lines) {
    const [k, v] = key(l);
    let set = acked.get(k);
    if (set === undefined) acked.set(k, (set = new Set()));
    set.add(v);
  }
}

/**
 * Every acknowledged point is in the export, with a value that was written for it: one that
 * was acknowledged, or one whose request died with its node (it may have committed, and then
 * it is newer and rightly wins on both boxes).
 */
function expectAll(exported: string, acked: Acked, unknown: Acked = new Map()): void {
  const got = new Map<string, string>();
  for (const l of exported.split("\n")) if (l) got.set(...key(l));
  for (const [k, values] of acked) {
    expect(got.has(k)).toBe(true);
    const v = got.get(k)!;
    expect(values.has(v) || (unknown.get(k)?.has(v) ?? false)).toBe(true);
  }
}

let clock = 1_000;

async function framesSent(url: string): Promise<number> {
  const scrape = await (await fetch(`${url}/metrics`)).text();
  return [...scrape.matchAll(/^tsdb_pair_peer_frames_sent_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

async function framesCompressed(url: string): Promise<number> {
  const scrape = await (await fetch(`${url}/metrics`)).text();
  return Number(/^tsdb_pair_store_frames_compressed_total (\d+)$/m.exec(scrape)?.[1] ?? -1);
}

/** Writers on both nodes: own series, and a shared series both write at the same times. */
async function load(pair: Pair, acked: Acked, opts: { requests: number; until?: () => boolean; unknown?: Acked }): Promise<void> {
  const base = (clock += 1_000_000);
  const writer = async (m: PairMember, w: number) => {
    for (let r = 0; r < opts.requests && !(opts.until?.() ?? false); r++) {
      const lines: string[] = [];
      for (let i = 0; i < 20; i++) {
        const t = ++clock;
        lines.push(`own,node=${m.id},w=${w} v=${t}i ${t}`);
        // The same points on both nodes (same series and time), with different values.
        const shared = base + r * 20 + i;
        lines.push(`shared,w=${w} v=${m.id === "a" ? shared : -shared}i ${shared}`);
      }
      try {
        const res = await write(m.node.url, lines.join("\n"));
        if (res.status === 204) remember(acked, lines);
        else throw new Error(`write to ${m.id}: ${res.status} ${res.text}`);
      } catch (e) {
        if (!(opts.until?.() ?? false)) throw e;
        if (opts.unknown) remember(opts.unknown, lines);
      }
    }
  };
  await Promise.all([writer(pair.a, 0), writer(pair.a, 1), writer(pair.b, 0), writer(pair.b, 1)]);
}

describe("pairing", () => {
  test(
    "two nodes written concurrently converge to identical exports holding every acknowledged point",
    async () => {
      const pair = await startPair();
      try {
        const acked: Acked = new Map();
        await load(pair, acked, { requests: 15 });
        const exported = await converged(pair);
        expectAll(exported, acked);
        // The shared points were written on both boxes with different values: one won on both.
        const [sa, sb] = await Promise.all([peerStatus(pair.a.node.url), peerStatus(pair.b.node.url)]);
        expect(sa.conflicts.same_point + sb.conflicts.same_point).toBeGreaterThan(0);
        for (const s of [sa, sb]) expect(s.lag).toEqual({ frames: 0, bytes: 0, seconds: 0 });
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  test(
    "SIGKILL of either node under load loses no acknowledged point and the pair converges",
    async () => {
      const pair = await startPair();
      try {
        const acked: Acked = new Map();
        const unknown: Acked = new Map();
        for (let round = 0; round < 4; round++) {
          const victim = round % 2 === 0 ? pair.a : pair.b;
          let killed = false;
          const killer = (async () => {
            await Bun.sleep(150 + Math.floor(Math.random() * 500));
            killed = true;
            await victim.node.kill();
          })();
          await Promise.all([killer, load(pair, acked, { requests: 1000, until: () => killed, unknown })]);
          await pair.restart(victim);
        }
        expectAll(await converged(pair), acked, unknown);
      } finally {
        await pair.close();
      }
    },
    { timeout: 180_000 },
  );

  test(
    "a link cut for longer than the frame retention is reported as a gap and refilled from storage",
    async () => {
      const pair = await startPair({ argsA: ["--wal-retention", "1s"], argsB: ["--wal-retention", "1s"] });
      try {
        const acked: Acked = new Map();
        await load(pair, acked, { requests: 3 });
        await converged(pair);
        pair.a.proxy.cut();
        pair.b.proxy.cut();
        await load(pair, acked, { requests: 5 });
        // A delete during the cut must reach b through the refill too.
        const del = await fetch(`${pair.a.node.url}/query?db=test&q=${encodeURIComponent("DROP SERIES FROM own WHERE node = 'b' AND w = '0'")}`, { method: "POST" });
        expect(JSON.stringify(await del.json())).not.toContain("error");
        for (const k of [...acked.keys()]) if (k.startsWith("own,node=b,w=0 ")) acked.delete(k);
        await Bun.sleep(1500);
        // A graceful restart flushes everything and trims frames past the retention.
        await pair.a.node.stop();
        await pair.restart(pair.a);
        pair.a.proxy.heal();
        pair.b.proxy.heal();
        const after = await converged(pair);
        expectAll(after, acked);
        expect(after).not.toContain("own,node=b,w=0 ");
        const b = await peerStatus(pair.b.node.url);
        expect(b.gaps.length).toBeGreaterThan(0);
        expect(b.gaps.every((g) => g.repairedAt !== null)).toBe(true);
        expect(b.counters.backfill_values).toBeGreaterThan(0);
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  test(
    "large requests are stored and sent as compressed frames, and replayed from them after SIGKILL",
    async () => {
      const pair = await startPair();
      try {
        const acked: Acked = new Map();
        // Both links stream frames first: a twin that joins with nothing is seeded from storage instead.
        await load(pair, acked, { requests: 1 });
        await converged(pair);
        // Past the size parsed on a worker, which compresses them for their frames; over enough
        // series that no buffer fills a chunk, so nothing is flushed before the kill.
        const large = async (m: PairMember, k: number) => {
          const lines = Array.from({ length: 4_000 }, (_, i) => {
            const t = ++clock;
            return `large,k=${k},node=${m.id},s=${i % 40} v=${t}i ${t}`;
          });
          const res = await write(m.node.url, lines.join("\n"));
          if (res.status !== 204) throw new Error(`write to ${m.id}: ${res.status} ${res.text}`);
          remember(acked, lines);
        };
        await Promise.all([0, 1, 2].flatMap((k) => [large(pair.a, k), large(pair.b, k)]));
        expectAll(await converged(pair), acked);
        // Each node stored its own three compressed, and the twin's three as they came.
        for (const m of [pair.a, pair.b]) expect(await framesCompressed(m.node.url)).toBe(6);
        // Nothing is flushed yet: the values come back from those frames, own and the twin's.
        await pair.b.node.kill();
        await pair.restart(pair.b);
        expectAll(await converged(pair), acked);
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  test(
    "a twin whose data directory was wiped is re-seeded with the full data set",
    async () => {
      const pair = await startPair();
      try {
        const acked: Acked = new Map();
        await load(pair, acked, { requests: 5 });
        const before = await converged(pair);
        await pair.b.node.stop();
        rmSync(pair.b.dataDir, { recursive: true, force: true });
        await pair.restart(pair.b);
        const after = await converged(pair);
        expect(after).toBe(before);
        expectAll(after, acked);
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  test(
    "frames corrupted in flight are refused, and the link resumes from the last good offset",
    async () => {
      const pair = await startPair();
      try {
        const acked: Acked = new Map();
        await load(pair, acked, { requests: 2 });
        await converged(pair);
        // b pulls from a through a's proxy: corrupt what a sends.
        pair.a.proxy.corrupt(3);
        await load(pair, acked, { requests: 6 });
        expectAll(await converged(pair), acked);
        const b = await peerStatus(pair.b.node.url);
        expect(b.counters.frames_refused).toBeGreaterThan(0);
        expect(pair.b.node.stderr()).toMatch(/checksum mismatch|bad peer message/);
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  /**
   * Both write and converge; then b stops, a alone takes `requests` writes of its own series
   * (and `then`, given what was acknowledged), and b starts again. Returns what was acknowledged.
   */
  async function bBackFromDown(pair: Pair, requests: number, then?: (acked: Acked) => Promise<void>): Promise<Acked> {
    const acked: Acked = new Map();
    await load(pair, acked, { requests: 2 });
    await converged(pair);
    await pair.b.node.stop();
    for (let r = 0; r < requests; r++) {
      const lines = Array.from({ length: 50 }, () => {
        const t = ++clock;
        return `down,w=${t % 3} f=${t / 8},v=${t}i ${t}`;
      });
      const res = await write(pair.a.node.url, lines.join("\n"));
      expect(res.status).toBe(204);
      remember(acked, lines);
    }
    await then?.(acked);
    await pair.restart(pair.b);
    return acked;
  }

  test(
    "a twin back far behind on plain writes catches up from storage, then streams frames again",
    async () => {
      const pair = await startPair({ argsB: ["--catch-up-bytes", "1KiB"] });
      try {
        let sentBefore = -1;
        const acked = await bBackFromDown(pair, 20, async () => void (sentBefore = await framesSent(pair.a.node.url)));
        expectAll(await converged(pair), acked);
        expect(pair.b.node.stderr()).toContain("catching up from its storage");
        // None of the frames b caught up on from storage was read out and sent first. (Before
        // b went down it may have had everything by its first backfill: then none were sent.)
        expect(sentBefore).toBeGreaterThanOrEqual(0);
        expect(await framesSent(pair.a.node.url)).toBe(sentBefore);
        const b = await peerStatus(pair.b.node.url);
        expect(b.counters.backfill_values).toBeGreaterThan(0);
        expect(b.gaps).toEqual([]);
        // Back on frames: the next writes arrive as frames.
        await load(pair, acked, { requests: 2 });
        expectAll(await converged(pair), acked);
        expect((await peerStatus(pair.b.node.url)).counters.frames_applied).toBeGreaterThan(0);
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  test(
    "a catch-up from storage whose answer stops halfway, its connection left open, is given up on and run again",
    async () => {
      const pair = await startPair({ argsB: ["--catch-up-bytes", "1KiB"] });
      try {
        // b reaches a through a's proxy: a's answer to b's next backfill stops after its first
        // bytes (the headers, the hello and a little more), as if a had lost power.
        const acked = await bBackFromDown(pair, 20, async () => pair.a.proxy.silenceAnswer("/peer/v1/backfill", 700));
        expectAll(await converged(pair, "test", 60_000), acked);
        expect(pair.b.node.stderr()).toContain("the twin sent nothing for 10 s; reconnecting");
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  test(
    "a twin back behind a delete replays the frames, so the delete reaches it exactly",
    async () => {
      const pair = await startPair({ argsB: ["--catch-up-bytes", "1KiB"] });
      try {
        const acked = await bBackFromDown(pair, 20, async (written) => {
          const q = "DELETE FROM down WHERE w = '0'";
          const del = await fetch(`${pair.a.node.url}/query?db=test&q=${encodeURIComponent(q)}`, { method: "POST" });
          expect(JSON.stringify(await del.json())).not.toContain("error");
          for (const k of [...written.keys()]) if (k.startsWith("down,w=0 ")) written.delete(k);
        });
        const after = await converged(pair);
        expectAll(after, acked);
        expect(after).not.toContain("down,w=0 ");
        expect(pair.b.node.stderr()).not.toContain("catching up from its storage");
        const b = await peerStatus(pair.b.node.url);
        expect(b.counters.backfill_values).toBe(0);
        expect(b.counters.frames_applied).toBeGreaterThan(0);
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );

  const refused: Array<[string, Parameters<typeof startPair>[0], RegExp]> = [
    ["a twin with another peer secret", { secretB: "not-the-secret" }, /peer secret mismatch/],
    ["a twin that presents our own node id", { idB: "a" }, /our own node id/],
  ];
  for (const [name, opts, reason] of refused) {
    test(
      `refuses ${name}: clear errors on both sides, nothing applied, nothing lost`,
      async () => {
        const pair = await startPair(opts);
        try {
          expect((await write(pair.a.node.url, "m,from=a v=1 1")).status).toBe(204);
          expect((await write(pair.b.node.url, "m,from=b v=2 2")).status).toBe(204);
          for (const m of [pair.a, pair.b]) {
            // Each side may first see the other still starting; wait for the refusal itself.
            const deadline = Date.now() + 15_000;
            while (Date.now() < deadline && !reason.test((await peerStatus(m.node.url)).last_error ?? "")) await Bun.sleep(100);
            expect((await peerStatus(m.node.url)).last_error).toMatch(reason);
          }
          expect(await exportOrEmpty(pair.a.node.url, "test")).toBe("m,from=a v=1 1\n");
          expect(await exportOrEmpty(pair.b.node.url, "test")).toBe("m,from=b v=2 2\n");
        } finally {
          await pair.close();
        }
      },
      { timeout: 60_000 },
    );
  }
});

describe("peer verify", () => {
  test(
    "finds a difference planted directly in one store, and --repair removes it",
    async () => {
      const { join } = await import("node:path");
      const { BUN, REPO } = await import("./support/node.ts");
      const Database = (await import("libsql")).default;
      const pair = await startPair();
      // Asynchronous: the proxies between the twins run in this process and must keep going.
      const cli = async (...args: string[]) => {
        const proc = Bun.spawn([BUN, join(REPO, "src/main.ts"), "peer", "verify", "--url", pair.a.node.url, ...args], { stdout: "pipe", stderr: "pipe" });
        const [stdout, status] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
        return { stdout, status };
      };
      try {
        const acked: Acked = new Map();
        await load(pair, acked, { requests: 3 });
        const full = await converged(pair);
        expect((await cli()).status).toBe(0);
        // Plant: remove one series' data straight from b's file while b is stopped (flushed on stop).
        await pair.b.node.stop();
        const db = new Database(join(pair.b.dataDir, "tsdb.db"));
        expect(db.prepare("DELETE FROM chunks WHERE series_id = (SELECT MIN(series_id) FROM chunks)").run([]).changes).toBeGreaterThan(0);
        db.close();
        await pair.restart(pair.b);
        const found = await cli();
        expect(found.status).toBe(1);
        expect(found.stdout).toMatch(/bucket\(s\) differ/);
        const repaired = await cli("--repair");
        expect(repaired.stdout).toContain("repaired: no differences left");
        expect(repaired.status).toBe(0);
        expect(await exportOrEmpty(pair.b.node.url, "test")).toBe(full);
      } finally {
        await pair.close();
      }
    },
    { timeout: 120_000 },
  );
});

describe("a twin gone silent", () => {
  test(
    "a frame stream that goes quiet without closing (the twin lost power) is dropped and opened again",
    async () => {
      const pair = await startPair();
      try {
        await load(pair, new Map(), { requests: 2 });
        await converged(pair);
        // a's stream from b (through b's proxy) goes dead without a close or a reset.
        pair.b.proxy.silence();
        expect((await write(pair.b.node.url, "after,host=b v=1 10")).status).toBe(204);
        // The heartbeats stop; after STREAM_IDLE_MS (10 s) a reconnects and gets the write.
        const exported = await converged(pair, "test", 30_000);
        expect(exported).toContain("after,host=b v=1 10\n");
        expect(pair.a.node.stderr()).toContain("the twin sent nothing for 10 s; reconnecting");
      } finally {
        await pair.close();
      }
    },
    { timeout: 90_000 },
  );

  test(
    "an address that takes the connection and never answers is given up on for the twin's other address",
    async () => {
      // What a hung process, or a ring that lets connections in and nothing back, looks like.
      const silent = createServer((socket) => socket.on("error", () => {}).resume());
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const silentAddress = `127.0.0.1:${(silent.address() as { port: number }).port}`;
      const pair = await startPair({ firstAddressA: silentAddress });
      try {
        expect((await write(pair.b.node.url, "ring,host=b v=1 10")).status).toBe(204);
        // a tries the silent address first, gives up on it after 10 s and streams from the other.
        expect(await converged(pair, "test", 40_000)).toBe("ring,host=b v=1 10\n");
        const status = (await (await fetch(`${pair.a.node.url}/peer/status`)).json()) as { twin: { addresses: Array<{ url: string; reachable: boolean | null; lastError: string | null }> } };
        const first = status.twin.addresses.find((x) => x.url.includes(silentAddress));
        expect(first?.reachable).toBe(false);
        expect(first?.lastError).toBe("no answer within 10 s");
      } finally {
        await pair.close();
        silent.close();
      }
    },
    { timeout: 120_000 },
  );

  test(
    "a node waiting on it in a verify still stops when told to",
    async () => {
      const pair = await startPair();
      try {
        await load(pair, new Map(), { requests: 2 });
        await converged(pair);
        // a reaches b through b's proxy: from now on nothing comes back.
        pair.b.proxy.stall();
        const verify = fetch(`${pair.a.node.url}/peer/verify?repair=true`, { method: "POST" }).then(
          async (res) => `${res.status} ${await res.text()}`,
          (e) => `no answer: ${String(e)}`,
        );
        // The verify is waiting on b's digest when a is told to stop.
        await Bun.sleep(1000);
        const stopped = await Promise.race([pair.a.node.stop(), Bun.sleep(20_000).then(() => "still running")]);
        expect(stopped).toBe(0);
        // Answered by the node, which gave up on the twin when told to stop.
        expect(await verify).toBe('503 {"error":"the link stopped while the twin was answering"}');
      } finally {
        await pair.a.node.kill();
        pair.b.proxy.heal();
        await pair.close();
      }
    },
    { timeout: 60_000 },
  );
});

describe("schema changes across the pair", () => {
  test(
    "DELETE and DROP MEASUREMENT on one node apply on both, and CREATE DATABASE travels too",
    async () => {
      const pair = await startPair();
      const q = async (url: string, query: string) => {
        const res = await fetch(`${url}/query?db=test&q=${encodeURIComponent(query)}`, { method: "POST" });
        expect(res.status).toBe(200);
        return (await res.json()) as { results: Array<{ error?: string }> };
      };
      try {
        expect((await write(pair.a.node.url, "keep,h=1 v=1 10\ngone,h=1 v=1 10\ncut,h=1 v=1 10\ncut,h=1 v=2 20")).status).toBe(204);
        await converged(pair);
        expect((await q(pair.b.node.url, "DELETE FROM cut WHERE time < 15")).results[0]?.error).toBeUndefined();
        expect((await q(pair.a.node.url, "DROP MEASUREMENT gone")).results[0]?.error).toBeUndefined();
        expect((await q(pair.a.node.url, "CREATE DATABASE made")).results[0]?.error).toBeUndefined();
        expect(await converged(pair)).toBe("cut,h=1 v=2 20\nkeep,h=1 v=1 10\n");
        const dbs = (await (await fetch(`${pair.b.node.url}/query?q=SHOW+DATABASES`)).json()) as { results: Array<{ series?: Array<{ values: string[][] }> }> };
        expect(dbs.results[0]?.series?.[0]?.values.flat()).toContain("made");
      } finally {
        await pair.close();
      }
    },
    { timeout: 60_000 },
  );

  test(
    "a field written with two types on the two boxes at once ends with the type written first, on both",
    async () => {
      const pair = await startPair();
      try {
        // Paired and streaming first, so each box later gets the other's write as a frame
        // (a box that first meets its twin is seeded from storage instead).
        expect((await write(pair.a.node.url, "other v=1 1")).status).toBe(204);
        await converged(pair);
        pair.a.proxy.cut();
        pair.b.proxy.cut();
        expect((await write(pair.a.node.url, "m,h=1 f=1i 10\nm,h=1 f=2i 20")).status).toBe(204);
        await Bun.sleep(20);
        expect((await write(pair.b.node.url, "m,h=1 f=1.5 10\nm,h=2 f=3.5 30")).status).toBe(204);
        pair.a.proxy.heal();
        pair.b.proxy.heal();
        expect(await converged(pair)).toBe("m,h=1 f=1i 10\nm,h=1 f=2i 20\nother v=1 1\n");
        // The exports agree as soon as b has settled; a refuses b's two float points when b's
        // frame reaches it, which may be a moment later.
        const deadline = Date.now() + 10_000;
        let sa = await peerStatus(pair.a.node.url);
        while (sa.conflicts.type < 2 && Date.now() < deadline) {
          await Bun.sleep(50);
          sa = await peerStatus(pair.a.node.url);
        }
        expect(sa.conflicts.type).toBe(2);
        expect(sa.conflicts.types_settled).toBe(0);
        expect((await peerStatus(pair.b.node.url)).conflicts.types_settled).toBe(1);
        // The settled type holds for new writes on both boxes.
        for (const m of [pair.a, pair.b]) {
          const res = await write(m.node.url, "m,h=1 f=9.5 90");
          expect(res.status).toBe(400);
          expect(res.text).toContain("already exists as type integer");
        }
      } finally {
        await pair.close();
      }
    },
    { timeout: 60_000 },
  );
});
