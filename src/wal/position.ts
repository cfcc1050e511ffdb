/**
 * A position in a node's frame log. LSNs strictly increase per node and are never reused,
 * across restarts and trims. One string form, `origin@lsn`, is used in logs, status and errors.
 */
export type Lsn = number;

export interface Position {
  readonly origin: string;
  readonly lsn: Lsn;
}

export function formatPosition(p: Position): string {
  return `${p.origin}@${p.lsn}`;
}
