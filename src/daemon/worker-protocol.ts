/**
 * The messages between the main thread and the NTP server workers (server-workers.ts main side,
 * server-worker.ts worker side), and the pure pieces both sides compute: the clock mapping a
 * worker applies to kernel timestamps, and when a new reference or mapping is worth sending.
 *
 * The daemon clock is main's (virtual clock, system clock, injected errors): a worker only sees
 * CLOCK_REALTIME stamps and maps them with
 *   daemon(rt) = rt + offsetNs + freq · (rt − base)
 * which main refreshes whenever the clock's correction changes (frequency, step, leap).
 */
import type { Clock } from '../clock/clock.js';
import type { Config } from '../config/chrony-conf.js';
import type { ClientReport, ServerStatsReport } from '../control/reports.js';
import type { Endpoint, ReferenceState } from '../engine/types.js';
import type { Instant } from '../time/ntp-time.js';
import type { ServerPolicyData } from './server-policy.js';

export interface ClockMap {
  /** The base instant, CLOCK_REALTIME: whole seconds and nanoseconds. */
  baseSec: number;
  baseNsec: number;
  /** Daemon clock minus CLOCK_REALTIME at the base, ns (integer). */
  offsetNs: number;
  /** d(offset)/d(realtime): the clock's frequency correction relative to CLOCK_REALTIME. */
  freq: number;
}

/** The mapping with no correction (system clock: the daemon clock is CLOCK_REALTIME). */
export const IDENTITY_CLOCK_MAP: Readonly<ClockMap> = Object.freeze({ baseSec: 0, baseNsec: 0, offsetNs: 0, freq: 0 });

const NS = 1_000_000_000n;
/** Half the span over which the slope is measured, before the base (the past: no leap is crossed early). */
const HALF_SPAN_NS = 500_000_000n;

/**
 * The mapping of `clock` around CLOCK_REALTIME instant `rt` (normally now). The slope comes from
 * the two half-second halves of the last second: when they disagree a step happened in one of
 * them (an injected error's step, a leap) and the flatter half is the clock's rate.
 */
export function clockMapOf(clock: Pick<Clock, 'fromKernel'>, rt: Instant): ClockMap {
  const offAt = (t: Instant): bigint => clock.fromKernel(t) - t;
  const o0 = offAt(rt);
  const o1 = offAt(rt - HALF_SPAN_NS);
  const o2 = offAt(rt - 2n * HALF_SPAN_NS);
  const recent = Number(o0 - o1);
  const earlier = Number(o1 - o2);
  const slopeNs =
    Math.abs(recent - earlier) <= 2 ? recent + earlier : 2 * (Math.abs(recent) < Math.abs(earlier) ? recent : earlier);
  const sec = rt / NS;
  return {
    baseSec: Number(sec),
    baseNsec: Number(rt - sec * NS),
    offsetNs: Number(o0),
    freq: slopeNs / Number(2n * HALF_SPAN_NS),
  };
}

/** Daemon clock minus CLOCK_REALTIME (integer ns) at realtime `sec` s + `nsec` ns. */
export function mapOffsetNs(m: ClockMap, sec: number, nsec: number): number {
  if (m.freq === 0) return m.offsetNs;
  const dt = sec - m.baseSec + (nsec - m.baseNsec) * 1e-9;
  return Math.round(m.offsetNs + m.freq * dt * 1e9);
}

/** Whether `next` maps realtime differently from `prev` by more than `toleranceNs` (now or within 1 s). */
export function clockMapDiffers(prev: ClockMap, next: ClockMap, toleranceNs = 20): boolean {
  // Compared now and 1 s ahead (the next comparison comes well before that).
  for (const ahead of [0, 1]) {
    const s = next.baseSec + ahead;
    if (Math.abs(mapOffsetNs(prev, s, next.baseNsec) - mapOffsetNs(next, s, next.baseNsec)) > toleranceNs) return true;
  }
  return false;
}

/**
 * Whether the reference a worker serves must be replaced. Root dispersion grows continuously;
 * a change below the resolution of the NTP short format (2^-16 s) is not sent.
 */
export function referenceDiffers(a: ReferenceState, b: ReferenceState): boolean {
  return (
    a.synchronized !== b.synchronized ||
    a.leap !== b.leap ||
    a.stratum !== b.stratum ||
    a.refId !== b.refId ||
    a.refTime !== b.refTime ||
    a.rootDelay !== b.rootDelay ||
    a.precision !== b.precision ||
    Math.abs(a.rootDispersion - b.rootDispersion) >= 2 ** -16 ||
    Math.abs((a.smoothOffset ?? 0) - (b.smoothOffset ?? 0)) > 1e-8
  );
}

// ---- messages ----------------------------------------------------------------------------------

/** workerData of a server worker. */
export interface WorkerInit {
  index: number;
  count: number;
  conf: Config;
  /** Addresses to bind (one socket each, all on `port`). */
  binds: Array<{ address: string; family: 4 | 6 }>;
  port: number;
  policy: ServerPolicyData;
  /** Client log entries of this worker. */
  clientLogLimit: number;
  ref: ReferenceState;
  clock: ClockMap;
  /** Seconds between the worker's unrequested snapshots. */
  snapshotIntervalS: number;
}

export type ToWorker =
  | { t: 'ref'; ref: ReferenceState }
  | { t: 'clock'; map: ClockMap }
  | { t: 'ntsKeys'; dump: string }
  /** A snapshot now; `clients` also lists the client log. */
  | { t: 'snapshot'; id: number; clients: boolean }
  /** Include the client log in the periodic snapshots (someone asked for it lately). */
  | { t: 'wantClients'; on: boolean }
  /** Send a datagram from the server socket bound to `local` (mode 6 answers). */
  | { t: 'send'; local: string; data: Uint8Array; to: Endpoint }
  | { t: 'stop' };

export interface WorkerSnapshot {
  t: 'snapshot';
  /** 0 for a periodic one, else the request's id. */
  id: number;
  stats: ServerStatsReport;
  /** With `clients`: the client log, `lastNtpAgo` relative to `at`. */
  clients: ClientReport[] | null;
  /** Daemon clock when the snapshot was taken. */
  at: Instant;
}

export type FromWorker =
  | { t: 'ready'; sockets: Array<{ address: string; port: number; timestamping: string }> }
  | { t: 'fatal'; message: string }
  | { t: 'log'; level: 'info' | 'warn' | 'debug'; message: string }
  | WorkerSnapshot
  /** A mode 6 (ntpq) request for main's responder; `local` names the socket it came in on. */
  | { t: 'mode6'; local: string; data: Uint8Array; from: Endpoint; rx: Instant };

/** Client reports of a snapshot taken at `at`, seen from `now`: every "ago" grows by the age. */
export function ageClients(list: readonly ClientReport[], at: Instant, now: Instant): ClientReport[] {
  const age = Math.max(0, Number(now - at) / 1e9);
  if (age === 0) return [...list];
  return list.map((c) => ({
    ...c,
    lastNtpAgo: c.lastNtpAgo === null ? null : c.lastNtpAgo + age,
    lastCmdAgo: c.lastCmdAgo === null ? null : c.lastCmdAgo + age,
  }));
}

/** Counters that survive a worker restart (sizes of its client log do not). */
export function retiredCounters(s: ServerStatsReport): ServerStatsReport {
  return {
    ...s,
    clientLogSizeActive: 0,
    clientLogMemory: 0,
    ntpTimestampsHeld: 0,
    ntpTimestampSpan: 0,
    malformedDropped: { ...s.malformedDropped },
  };
}
