/**
 * chrony-compatible log files (`log measurements statistics tracking` in logdir): line formatters
 * with chronyd's exact column layout and banners, and a small appender that writes the banner
 * every `logbanner` lines and reopens its file after `cyclelogs` (for log rotation).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cExp, cFixed, formatRefId, refIdToString } from '../cli/format.js';

export const MEASUREMENTS_BANNER =
  '   Date (UTC) Time     IP Address   L St 123 567 ABCD  LP RP Score    Offset  Peer del. Peer disp.  Root del. Root disp. Refid     MTxRx';
export const STATISTICS_BANNER =
  "   Date (UTC) Time     IP Address    Std dev'n Est offset  Offset sd  Diff freq   Est skew  Stress  Ns  Bs  Nr  Asym";
export const TRACKING_BANNER =
  '   Date (UTC) Time     IP Address   St   Freq ppm   Skew ppm     Offset L Co  Offset sd Rem. corr. Root delay Root disp. Max. error';

export const SELECTION_BANNER =
  '   Date (UTC) Time     IP Address   S EOpts Reach Score Last sample  Low end   High end';

export const LOG_BANNERS = {
  measurements: MEASUREMENTS_BANNER,
  selection: SELECTION_BANNER,
  statistics: STATISTICS_BANNER,
  tracking: TRACKING_BANNER,
} as const;

/** The three banner lines chronyd writes (a line of '=' the banner's length, banner, '=' line). */
export function formatBanner(banner: string): string {
  const rule = '='.repeat(Math.min(banner.length, 255));
  return `${rule}\n${banner}\n${rule}\n`;
}

/** "YYYY-MM-DD HH:MM:SS" (UTC) of an instant, as chronyd's log lines start. */
export function formatLogTime(t: bigint): string {
  let sec = t / 1_000_000_000n;
  if (t < 0n && sec * 1_000_000_000n !== t) sec -= 1n;
  const d = new Date(Number(sec) * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return (
    `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`
  );
}

const LEAP_CHARS = ['N', '+', '-', '?'];
type TsSource = 'D' | 'K' | 'H';

export interface MeasurementLogEntry {
  time: bigint;
  address: string;
  leap: number; // leap indicator of the packet, 0..3
  stratum: number;
  /** Test results as chrony prints them: "111 111 1111" (tests 1-3, 5-7, A-D). */
  tests: string;
  localPoll: number;
  remotePoll: number;
  score: number;
  /** Offset θ as RFC 5905 and chrony's measurements.log (positive: local clock slow of the source). */
  offset: number;
  peerDelay: number;
  peerDispersion: number;
  rootDelay: number;
  rootDispersion: number;
  refId: number;
  mode: number; // NTP mode of the packet (4 server, 1/2 peer)
  interleaved: boolean;
  txTimestamp: TsSource;
  rxTimestamp: TsSource;
}

export function formatMeasurementsLine(m: MeasurementLogEntry): string {
  const t = m.tests.replace(/\s+/g, '');
  if (!/^[01]{10}$/.test(t)) throw new RangeError(`bad test flags '${m.tests}'`);
  const tests = `${t.slice(0, 3)} ${t.slice(3, 6)} ${t.slice(6, 10)}`;
  return (
    `${formatLogTime(m.time)} ${m.address.padEnd(15)} ${LEAP_CHARS[m.leap & 3]} ${String(m.stratum).padStart(2)} ` +
    `${tests}  ${String(m.localPoll).padStart(2)} ${String(m.remotePoll).padStart(2)} ${cFixed(m.score, 2, 4)} ` +
    `${cExp(m.offset, 3, 10)} ${cExp(m.peerDelay, 3, 10)} ${cExp(m.peerDispersion, 3, 10)} ` +
    `${cExp(m.rootDelay, 3, 10)} ${cExp(m.rootDispersion, 3, 10)} ${formatRefId(m.refId)} ` +
    `${m.mode}${m.interleaved ? 'I' : 'B'} ${m.txTimestamp} ${m.rxTimestamp}`
  );
}

export interface StatisticsLogEntry {
  time: bigint;
  /** Source address, or for a reference clock its reference ID as text. */
  address: string;
  stdDev: number; // s
  estOffset: number; // s, chrony sign
  offsetSd: number; // s
  diffFreq: number; // estimated frequency, dimensionless (s/s)
  estSkew: number; // s/s
  stress: number;
  samples: number; // Ns
  bestStart: number; // Bs: samples dropped by the runs test
  runs: number; // Nr
  asymmetry: number;
}

export function formatStatisticsLine(s: StatisticsLogEntry): string {
  return (
    `${formatLogTime(s.time)} ${s.address.padEnd(15)} ${cExp(s.stdDev, 3, 10)} ${cExp(s.estOffset, 3, 10)} ` +
    `${cExp(s.offsetSd, 3, 10)} ${cExp(s.diffFreq, 3, 10)} ${cExp(s.estSkew, 3, 10)} ${cExp(s.stress, 1, 7)} ` +
    `${String(s.samples).padStart(3)} ${String(s.bestStart).padStart(3)} ${String(s.runs).padStart(3)} ` +
    `${cFixed(s.asymmetry, 2, 5)}`
  );
}

export interface SelectionLogEntry {
  time: bigint;
  /** Source address, or a reference clock's reference ID as text. */
  address: string;
  /** chrony's selection state character: * + x ~ N s M d w S O T W P U D (see docs/logs.md). */
  state: string;
  noselect: boolean;
  prefer: boolean;
  trust: boolean;
  require: boolean;
  reach: number; // 8-bit register, printed in octal
  score: number;
  lastSampleAgo: number; // s
  /** Interval expected to contain the local clock's true offset (s). */
  low: number;
  high: number;
}

export function formatSelectionLine(s: SelectionLogEntry): string {
  if (s.state.length !== 1) throw new RangeError(`bad selection state '${s.state}'`);
  const opt = (b: boolean, c: string): string => (b ? c : '-');
  return (
    `${formatLogTime(s.time)} ${s.address.padEnd(15)} ${s.state} -${opt(s.noselect, 'N')}${opt(s.prefer, 'P')}` +
    `${opt(s.trust, 'T')}${opt(s.require, 'R')} ${(s.reach & 0xff).toString(8).padStart(4)} ${cFixed(s.score, 2, 5)} ` +
    `${cExp(s.lastSampleAgo, 3, 10)} ${cExp(s.low, 3, 10)} ${cExp(s.high, 3, 10)}`
  );
}

export interface TrackingLogEntry {
  time: bigint;
  /** Reference address; '' to print the reference ID as text (refclock, local). */
  address: string;
  refId: number;
  stratum: number;
  freqPpm: number;
  skewPpm: number;
  offset: number;
  leap: number; // 0..3
  combinedSources: number;
  offsetSd: number;
  remainingCorrection: number;
  rootDelay: number;
  rootDispersion: number;
  maxError: number;
}

export function formatTrackingLine(t: TrackingLogEntry): string {
  // No reference yet: chronyd prints its zero reference address.
  const who = t.address !== '' ? t.address : t.refId !== 0 ? refIdToString(t.refId) : '0.0.0.0';
  return (
    `${formatLogTime(t.time)} ${who.padEnd(15)} ${String(t.stratum).padStart(2)} ${cFixed(t.freqPpm, 3, 10)} ` +
    `${cFixed(t.skewPpm, 3, 10)} ${cExp(t.offset, 3, 10)} ${LEAP_CHARS[t.leap & 3]} ` +
    `${String(t.combinedSources).padStart(2)} ${cExp(t.offsetSd, 3, 10)} ${cExp(t.remainingCorrection, 3, 10)} ` +
    `${cExp(t.rootDelay, 3, 10)} ${cExp(t.rootDispersion, 3, 10)} ${cExp(t.maxError, 3, 10)}`
  );
}

/**
 * Appends lines to `<dir>/<name>.log` (created 0644), opening it lazily. A banner is written
 * before the first line and then every `bannerEvery` lines (chrony's logbanner, default 32; 0 =
 * never). `cycle()` closes the file so the next write reopens it under the same name — call it
 * after the file was rotated (chronyc cyclelogs).
 */
export class LogFile {
  private fd: number | null = null;
  private writes = 0;
  /** Set when the file could not be opened: the log is disabled, as chronyd does. */
  private disabledBy: Error | null = null;
  readonly path: string;

  constructor(
    dir: string,
    readonly name: string,
    readonly banner: string,
    readonly bannerEvery = 32,
  ) {
    this.path = path.join(dir, `${name}.log`);
  }

  /** Writes one line; throws once (naming the file) if it cannot be opened, then stays silent. */
  write(line: string): void {
    if (this.disabledBy) return;
    if (this.fd === null) {
      try {
        this.fd = fs.openSync(this.path, 'a', 0o644);
      } catch (e) {
        this.disabledBy = new Error(`cannot open ${this.path}: ${(e as Error).message}; log disabled`);
        throw this.disabledBy;
      }
    }
    let text = '';
    if (this.bannerEvery > 0 && this.writes++ % this.bannerEvery === 0) text += formatBanner(this.banner);
    text += line + '\n';
    fs.writeSync(this.fd, text);
  }

  cycle(): void {
    this.close();
    this.writes = 0;
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}
