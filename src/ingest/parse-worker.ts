/**
 * The parse thread: decodes and parses request bodies off the main thread, so the single
 * writer there spends its time storing points. Messages in: ParseJob; out: ParseReply (the
 * batch packed, see lineprotocol/packed.ts). Holds no state between jobs.
 */
import { isTsdbError } from "../errors.ts";
import { decodeBody } from "../http/body.ts";
import { packBatch } from "../lineprotocol/packed.ts";
import { parseLines } from "../lineprotocol/parse.ts";
import type { ParseJob, ParseReply } from "./parse-pool.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<ParseJob>) => void) | null;
  postMessage(message: ParseReply, transfer?: ArrayBuffer[]): void;
};

scope.onmessage = (e) => {
  const { id, body, precision, defaultTime } = e.data;
  try {
    const text = typeof body === "string" ? body : decodeBody(body);
    const { packed, transfer } = packBatch(parseLines(text, { precision, defaultTime }));
    scope.postMessage({ id, packed }, transfer);
  } catch (err) {
    scope.postMessage({
      id,
      error: { code: isTsdbError(err) ? err.code : "internal", message: err instanceof Error ? err.message : String(err) },
    });
  }
};
