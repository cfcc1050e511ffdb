/** Structured logging: one line per event, logfmt, to stderr (journald keeps it). */

export type LogFields = Record<string, string | number | bigint | boolean | null | undefined>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

function quote(v: string): string {
  return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
}

function line(level: string, msg: string, fields?: LogFields): string {
  let out = `ts=${new Date().toISOString()} level=${level} msg=${quote(msg)}`;
  if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) out += ` ${k}=${quote(String(v))}`;
  return out + "\n";
}

/** A logger writing logfmt lines through `write` (stderr in the server). */
export function logfmtLogger(write: (text: string) => void): Logger {
  return {
    info: (msg, f) => write(line("info", msg, f)),
    warn: (msg, f) => write(line("warn", msg, f)),
    error: (msg, f) => write(line("error", msg, f)),
  };
}

/** A logger that drops everything (tests, tools). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** A logger writing one JSON object per line through `write`. */
export function jsonLogger(write: (text: string) => void): Logger {
  const emit = (level: string, msg: string, fields?: LogFields) => {
    const out: Record<string, unknown> = { ts: new Date().toISOString(), level, msg };
    if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = typeof v === "bigint" ? String(v) : v;
    write(JSON.stringify(out) + "\n");
  };
  return { info: (m, f) => emit("info", m, f), warn: (m, f) => emit("warn", m, f), error: (m, f) => emit("error", m, f) };
}
