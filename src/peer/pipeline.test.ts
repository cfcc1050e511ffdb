import { describe, expect, test } from "bun:test";
import { ApplyPipeline } from "./pipeline.ts";

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe("apply pipeline", () => {
  test("applies in push order even when later batches are prepared first, and prepares ahead", async () => {
    const applied: number[] = [];
    let preparing = 0;
    let maxPreparing = 0;
    const p = new ApplyPipeline<number, number>(
      async (n) => {
        preparing++;
        maxPreparing = Math.max(maxPreparing, preparing);
        await tick(n % 2 === 0 ? 20 : 1); // even batches take longer to prepare
        preparing--;
        return n;
      },
      async (n) => {
        applied.push(n);
      },
      4,
    );
    for (let n = 0; n < 10; n++) await p.push(n);
    await p.drain();
    expect(applied).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(maxPreparing).toBeGreaterThan(1);
  });

  test("hands a batch over before the previous one is applied, in order", async () => {
    const events: string[] = [];
    const p = new ApplyPipeline<number, number>(
      async (n) => n,
      async (n) => {
        events.push(`start ${n}`);
        await tick(10);
        events.push(`end ${n}`);
      },
    );
    await p.push(1);
    await p.push(2);
    await p.drain();
    expect(events.indexOf("start 2")).toBeLessThan(events.indexOf("end 1"));
  });

  test("after a failure nothing more is applied, and the first failure is what the reader gets", async () => {
    const applied: number[] = [];
    const p = new ApplyPipeline<number, number>(
      async (n) => {
        if (n === 3) throw new Error("bad batch 3");
        return n;
      },
      async (n) => {
        applied.push(n);
      },
      2,
    );
    let caught: unknown = null;
    try {
      for (let n = 0; n < 8; n++) await p.push(n);
      await p.drain();
    } catch (e) {
      caught = e;
    }
    await p.settle();
    expect((caught as Error).message).toBe("bad batch 3");
    expect(applied).toEqual([0, 1, 2]);
  });

  test("a failed apply stops the batches behind it", async () => {
    const applied: number[] = [];
    const p = new ApplyPipeline<number, number>(
      async (n) => {
        await tick(n === 1 ? 0 : 5);
        return n;
      },
      async (n) => {
        if (n === 1) throw new Error("apply 1 failed");
        applied.push(n);
      },
    );
    await p.push(0);
    await p.push(1);
    await tick(20);
    await expect(p.push(2)).rejects.toThrow("apply 1 failed");
    await p.settle();
    expect(applied).toEqual([0]);
  });
});
