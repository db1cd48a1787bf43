/**
 * The data behind every rubidiumc command. The engine produces these, the control server sends
 * them as JSON, rubidiumc prints them in chronyc's layout (or as JSON with --json). Units: seconds
 * for times and offsets unless the name says otherwise; instants as decimal strings of
 * nanoseconds since the Unix epoch (JSON cannot hold bigint).
 */
import type { SelectState } from '../engine/types.js';

export type LeapStatus = 'Normal' | 'Insert second' | 'Delete second' | 'Not synchronised';

export interface TrackingReport {
  refId: number; // u32
  refName: string; // address or name of the reference, '' if none
  stratum: number;
  refTimeNs: string; // instant of the last clock update, '0' if never
  /** Current remaining correction: positive means the clock is slow of NTP time. */
  systemTimeOffset: number;
  lastOffset: number; // positive: clock was slow (chrony shows it with the sign of θ)
  rmsOffset: number;
  /** Estimated error (sd) of the last update's offset; what chrony's tracking.log calls "Offset sd". */
  lastOffsetSd?: number;
  /** Frequency error of the free-running clock in ppm (positive = fast, chrony prints "fast"). */
  frequencyPpm: number;
  residualFreqPpm: number;
  skewPpm: number;
  rootDelay: number;
  rootDispersion: number;
  updateInterval: number;
  leapStatus: LeapStatus;
}

export interface SourceReport {
  mode: 'server' | 'peer' | 'refclock';
  state: SelectState;
  name: string; // as configured (hostname or address)
  address: string;
  port: number;
  stratum: number;
  poll: number; // log2 s
  reach: number; // 8-bit register
  /** Seconds since the last valid sample, null if none yet. */
  lastRxAgo: number | null;
  /** Offset of the last sample corrected for later clock adjustments; chrony sign (local − source). */
  adjustedOffset: number;
  measuredOffset: number;
  /** Estimated error of the last sample (± column). */
  error: number;
}

export interface SourceStatsReport {
  name: string;
  address: string;
  np: number; // samples retained
  nr: number; // runs of residuals with the same sign
  span: number; // seconds between oldest and newest sample
  frequencyPpm: number; // residual frequency of the source
  freqSkewPpm: number;
  offset: number; // estimated offset of the source, chrony sign (local − source)
  stdDev: number;
}

export interface NtpDataReport {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  leap: number;
  version: number;
  mode: number;
  stratum: number;
  poll: number;
  precision: number;
  rootDelay: number;
  rootDispersion: number;
  refId: number;
  refTimeNs: string;
  offset: number;
  peerDelay: number;
  peerDispersion: number;
  responseTime: number;
  jitterAsymmetry: number;
  /** RFC 5905 tests as chrony prints them: "111 111 1111". */
  ntpTests: string;
  interleaved: boolean;
  authenticated: boolean;
  txTimestamping: 'Kernel' | 'Daemon' | 'Hardware';
  rxTimestamping: 'Kernel' | 'Daemon' | 'Hardware';
  totalTx: number;
  totalRx: number;
  totalValidRx: number;
  /** Valid samples that also passed the source's filters (chronyc "Total good RX"); default totalValidRx. */
  totalGoodRx?: number;
}

export interface ClientReport {
  address: string;
  ntpHits: number;
  ntpDrops: number;
  ntpInterval: number | null; // log2 s of the average interval between requests
  ntpIntervalLast: number | null;
  lastNtpAgo: number | null; // seconds
  cmdHits: number;
  cmdDrops: number;
  cmdInterval: number | null;
  lastCmdAgo: number | null;
}

export interface ServerStatsReport {
  ntpPacketsReceived: number;
  ntpPacketsDropped: number;
  cmdPacketsReceived: number;
  cmdPacketsDropped: number;
  clientLogSizeActive: number;
  clientLogMemory: number;
  ntpAuthPacketsReceived: number;
  ntpInterleavedPacketsReceived: number;
  ntpTimestampsHeld: number;
  ntpTimestampSpan: number;
  /** chronyc 4.3 serverstats lines (optional, printed as 0 when absent). */
  clientLogRecordsDropped?: number;
  ntsKeConnectionsAccepted?: number;
  ntsKeConnectionsDropped?: number;
  /** Rubidium addition: malformed or hostile packets dropped, by reason. */
  malformedDropped: Record<string, number>;
}

export interface ActivityReport {
  online: number;
  offline: number;
  burstOnline: number;
  burstOffline: number;
  unresolved: number;
}
