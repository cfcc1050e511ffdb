/** Shared by the runtime adapters: a fetch rejection in words, causes included. */

/**
 * The messages of an error and of its causes, joined with ": ", repeats dropped. Deno rejects
 * with "fetch failed" and keeps the reason in `cause`; Bun puts it in the message and `code`.
 */
export function causeChain(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const message = e instanceof Error ? e.message : String(e);
    if (message !== "" && !parts.some((p) => p.includes(message))) parts.push(message);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

/** True when the fetch was aborted on purpose (an AbortSignal or a timeout), not failed. */
export function isAbort(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === "AbortError" || name === "TimeoutError";
}
