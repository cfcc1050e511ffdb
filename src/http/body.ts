/**
 * Reading a request body under a size limit: the raw bytes and, for gzip, the inflated bytes
 * both count, so a small compressed body cannot expand past the limit in memory. The text
 * must be valid UTF-8 (line protocol is UTF-8).
 */
import { TsdbError } from "../errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads the whole body as bytes (after gzip), enforcing `limit`; see decodeBody for the text. */
export async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (req.body === null) return new Uint8Array(0);
  const encoding = (req.headers.get("content-encoding") ?? "").trim().toLowerCase();
  // A plain body of declared size: one native read is much cheaper than piping streams.
  // The runtime itself refuses bodies longer than their Content-Length.
  if (declared !== null && (encoding === "" || encoding === "identity")) return new Uint8Array(await req.arrayBuffer());
  let stream: ReadableStream<Uint8Array> = req.body.pipeThrough(limitStream(limit));
  if (encoding === "gzip") {
    stream = stream.pipeThrough(new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>).pipeThrough(limitStream(limit));
  } else if (encoding !== "" && encoding !== "identity") {
    throw new TsdbError("bad_request", `unsupported Content-Encoding ${JSON.stringify(encoding)}: use gzip or none`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await collect(stream);
  } catch (e) {
    if (e instanceof TsdbError) throw e;
    if (encoding === "gzip") throw new TsdbError("bad_request", `invalid gzip body: ${errorText(e)}`, { cause: e });
    throw new TsdbError("bad_request", `cannot read request body: ${errorText(e)}`, { cause: e });
  }
  return bytes;
}

/** The body as text; a body that is not valid UTF-8 is a bad request naming the first bad byte. */
export function decodeBody(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    throw new TsdbError("bad_request", `request body is not valid UTF-8 at byte ${firstInvalidUtf8(bytes)}`, { cause: e });
  }
}

function tooLarge(limit: number): TsdbError {
  return new TsdbError("too_large", `request entity too large: body exceeds the limit of ${limit} bytes`);
}

function limitStream(limit: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) controller.error(tooLarge(limit));
      else controller.enqueue(chunk);
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    total += value.byteLength;
  }
  return concatBytes(parts, total);
}

/** The pieces of a body one after the other (`total`: their summed length). */
export function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Offset of the first byte that breaks UTF-8, for the error message. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > bytes.length) return i;
    try {
      utf8.decode(bytes.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return i;
}
