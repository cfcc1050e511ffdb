/** `tsdb-pair peer status` as a person reads it. */
import type { PeerStatus, VerifyReport } from "../peer/link.ts";

export type PeerStatusView = PeerStatus;

function ago(ms: number | null): string {
  if (ms === null) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  return s < 1 ? "just now" : `${s.toFixed(1)}s ago`;
}

/** A short table of the link's state, offsets both ways, lag, gaps and errors. */
export function renderPeerStatus(s: PeerStatusView): string {
  const rows: Array<[string, string]> = [
    ["twin", `${s.twin.node_id ?? "(not yet seen)"}  incarnation ${s.twin.incarnation ?? "-"}`],
    ["state", s.state + (s.in_sync ? " (in sync)" : "")],
    ...s.twin.addresses.map((a): [string, string] => [
      "  address",
      `${a.url}  ${a.reachable === null ? "untried" : a.reachable ? "reachable" : "UNREACHABLE"}${a.url === s.twin.active_address ? " (active)" : ""}${a.lastError ? `  ${a.lastError}` : ""}`,
    ]),
    ["my latest LSN", String(s.my_latest_lsn)],
    ["twin applied mine", String(s.twin_applied_my_lsn ?? "-")],
    ["I applied twin's", String(s.i_applied_twin_lsn ?? "-")],
    ["twin latest LSN", String(s.twin_latest_lsn ?? "-")],
    ["lag", `${s.lag.frames ?? "-"} frames, ${s.lag.bytes ?? "-"} bytes, ${s.lag.seconds ?? "-"} s`],
    ["gaps", s.gaps.length === 0 ? "none" : s.gaps.map((g) => `${g.from}..${g.to}${g.repairedAt === null ? " (refilling)" : " (refilled)"}`).join(", ")],
    ["conflicts", `${s.conflicts.same_point} same point, ${s.conflicts.type} type (${s.conflicts.types_settled} field types settled)`],
    ["clock offset", s.clock_offset_ms === null ? "-" : `${s.clock_offset_ms} ms${s.clock_warning ? "  WARNING: check NTP" : ""}`],
    ["last contact", ago(s.last_contact_ms)],
    ["last error", s.last_error ?? "none"],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n") + "\n";
}

/** `tsdb-pair peer verify` as a person reads it. */
export function renderVerify(r: VerifyReport): string {
  if (r.differences.length === 0) return "no differences: both nodes hold the same data\n";
  const side = (d: { count: number; sum: number } | null) => (d === null ? "nothing" : `${d.count} lines (sum ${d.sum})`);
  const lines = r.differences.map(
    (d) => `${d.db} ${d.measurement} from ${new Date(Number(BigInt(d.start) / 1_000_000n)).toISOString()}: here ${side(d.mine)}, twin ${side(d.twin)}`,
  );
  const tail = !r.repaired ? "run with --repair to re-send them" : r.remaining.length === 0 ? "repaired: no differences left" : `${r.remaining.length} still differ`;
  return `${r.differences.length} bucket(s) differ:\n${lines.join("\n")}\n${tail}\n`;
}
