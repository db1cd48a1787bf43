/**
 * Server reports of several NTP servers (the main thread's and each server worker's) as one:
 * what `serverstats` and `clients` show when `serverworkers` splits the serving.
 */
import type { ClientReport, ServerStatsReport } from './reports.js';

export function emptyServerStats(): ServerStatsReport {
  return {
    ntpPacketsReceived: 0,
    ntpPacketsDropped: 0,
    cmdPacketsReceived: 0,
    cmdPacketsDropped: 0,
    clientLogSizeActive: 0,
    clientLogMemory: 0,
    clientLogRecordsDropped: 0,
    ntpAuthPacketsReceived: 0,
    ntpInterleavedPacketsReceived: 0,
    ntpTimestampsHeld: 0,
    ntpTimestampSpan: 0,
    malformedDropped: {},
  };
}

const SUMMED = [
  'ntpPacketsReceived',
  'ntpPacketsDropped',
  'cmdPacketsReceived',
  'cmdPacketsDropped',
  'clientLogSizeActive',
  'clientLogMemory',
  'ntpAuthPacketsReceived',
  'ntpInterleavedPacketsReceived',
  'ntpTimestampsHeld',
] as const;

const OPTIONAL_SUMMED = ['clientLogRecordsDropped', 'ntsKeConnectionsAccepted', 'ntsKeConnectionsDropped'] as const;

/**
 * Counters and sizes add up; the timestamp span is the widest one (each server holds the
 * timestamps of its own clients, so the widest is a lower bound of the union's span). The
 * first report's optional fields decide which optional fields the result has.
 */
export function mergeServerStats(reports: readonly ServerStatsReport[]): ServerStatsReport {
  const out: ServerStatsReport = { ...emptyServerStats(), malformedDropped: {} };
  if (reports.length > 0) {
    for (const k of OPTIONAL_SUMMED) if (reports[0]![k] === undefined) delete out[k];
  }
  for (const r of reports) {
    for (const k of SUMMED) out[k] += r[k];
    for (const k of OPTIONAL_SUMMED) if (r[k] !== undefined) out[k] = (out[k] ?? 0) + r[k];
    out.ntpTimestampSpan = Math.max(out.ntpTimestampSpan, r.ntpTimestampSpan);
    for (const [reason, n] of Object.entries(r.malformedDropped)) {
      out.malformedDropped[reason] = (out.malformedDropped[reason] ?? 0) + n;
    }
  }
  return out;
}

/**
 * One client list from several: an address is normally known to one server only (workers are
 * steered by source address); if two know it (a worker restarted), hits and drops add up and
 * the most recent sighting gives the intervals. Most recently seen first.
 */
export function mergeClients(lists: readonly (readonly ClientReport[])[]): ClientReport[] {
  if (lists.length === 1) return [...lists[0]!];
  const byAddress = new Map<string, ClientReport>();
  for (const list of lists) {
    for (const c of list) {
      const seen = byAddress.get(c.address);
      if (!seen) {
        byAddress.set(c.address, { ...c });
        continue;
      }
      const newer = ago(c.lastNtpAgo) < ago(seen.lastNtpAgo) ? c : seen;
      byAddress.set(c.address, {
        ...newer,
        ntpHits: seen.ntpHits + c.ntpHits,
        ntpDrops: seen.ntpDrops + c.ntpDrops,
        cmdHits: seen.cmdHits + c.cmdHits,
        cmdDrops: seen.cmdDrops + c.cmdDrops,
      });
    }
  }
  return [...byAddress.values()].sort((a, b) => ago(a.lastNtpAgo) - ago(b.lastNtpAgo));
}

const ago = (s: number | null): number => s ?? Infinity;
