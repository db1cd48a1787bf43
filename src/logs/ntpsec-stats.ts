/**
 * NTPsec's statistics files, as `ntpd` 1.2.2 writes them when ntp.conf says `statsdir`,
 * `statistics loopstats peerstats` and `filegen ...` (ntpd/ntp_util.c, ntpd/ntp_filegen.c):
 *
 *   loopstats: `MJD SOD.mmm offset(s) freq(ppm) jitter(s) wander(ppm) poll(log2 s)`
 *   peerstats: `MJD SOD.mmm address status(hex) offset(s) delay(s) dispersion(s) jitter(s)`
 *
 * File generations ("filegen"): `<statsdir>/<file>.<suffix>` with the suffix from the generation
 * type (day: YYYYMMDD, week, month, year, pid, age, none) and a hard link `<statsdir>/<file>` to
 * the current generation. The formatters and the naming are pure; `FilegenWriter` does the I/O.
 * clockstats needs reference clocks, which Rubidium does not have yet: nothing is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cFixed } from '../cli/format.js';

export type FilegenType = 'none' | 'pid' | 'day' | 'week' | 'month' | 'year' | 'age';
export type NtpsecStatName = 'loopstats' | 'peerstats' | 'clockstats';

/** NTPsec's compiled-in statsdir (NTP_VAR) when ntp.conf names none. */
export const NTPSEC_DEFAULT_STATSDIR = '/var/NTP/';
const MJD_1970 = 40587;
const SECS_PER_DAY = 86400n;

/** "MJD SOD.mmm": days since 1858-11-17 and seconds past UTC midnight, milliseconds truncated. */
export function formatMjdTime(t: bigint): string {
  const NS = 1_000_000_000n;
  let sec = t / NS;
  if (t < 0n && sec * NS !== t) sec -= 1n;
  const ns = t - sec * NS;
  let day = sec / SECS_PER_DAY;
  if (sec < 0n && day * SECS_PER_DAY !== sec) day -= 1n;
  const sod = sec - day * SECS_PER_DAY;
  const ms = ns / 1_000_000n;
  return `${day + BigInt(MJD_1970)} ${sod}.${String(ms).padStart(3, '0')}`;
}

export interface LoopstatsEntry {
  time: bigint;
  /** Clock offset θ, s (positive: local clock slow), as NTPsec's clock_offset. */
  offset: number;
  /** Frequency correction applied to the clock, ppm (NTPsec's drift_comp: positive speeds it up). */
  freqPpm: number;
  /** RMS offset jitter, s. */
  jitter: number;
  /** Frequency wander (stability), ppm. */
  wanderPpm: number;
  /** System poll interval, log2 s. */
  poll: number;
}

export function formatLoopstatsLine(e: LoopstatsEntry): string {
  return (
    `${formatMjdTime(e.time)} ${cFixed(e.offset, 9)} ${cFixed(e.freqPpm, 6)} ${cFixed(e.jitter, 9)} ` +
    `${cFixed(e.wanderPpm, 6)} ${Math.trunc(e.poll)}`
  );
}

export interface PeerstatsEntry {
  time: bigint;
  address: string;
  /** Peer status word (ntpq's "status"), 16 bits. */
  status: number;
  offset: number; // s, θ
  delay: number; // s
  dispersion: number; // s
  jitter: number; // s
}

export function formatPeerstatsLine(e: PeerstatsEntry): string {
  return (
    `${formatMjdTime(e.time)} ${e.address} ${(e.status & 0xffff).toString(16)} ${cFixed(e.offset, 9)} ` +
    `${cFixed(e.delay, 9)} ${cFixed(e.dispersion, 9)} ${cFixed(e.jitter, 9)}`
  );
}

/** NTPsec peer selection codes (RFC 5905 Figure 16, ntpq's condition column). */
export const PEER_SELECT = {
  reject: 0,
  falsetick: 1,
  excess: 2,
  outlier: 3,
  candidate: 4,
  backup: 5,
  sysPeer: 6,
  ppsPeer: 7,
} as const;
const CTL_PST_CONFIG = 0x80;
const CTL_PST_REACH = 0x10;
/** Peer event "reachable" (PEVNT_REACH). */
const PEVNT_REACH = 4;

/**
 * The peer status word NTPsec writes: (flags | select) << 8 | events << 4 | last event.
 * Rubidium's sources are all configured; the event counter is approximated by one "reachable".
 */
export function peerStatusWord(selectState: string, reach: number): number {
  const sel =
    selectState === '*'
      ? PEER_SELECT.sysPeer
      : selectState === '+'
        ? PEER_SELECT.candidate
        : selectState === '-' || selectState === '~'
          ? PEER_SELECT.outlier
          : selectState === 'x'
            ? PEER_SELECT.falsetick
            : PEER_SELECT.reject;
  const flags = CTL_PST_CONFIG | (reach !== 0 ? CTL_PST_REACH : 0);
  return ((flags | sel) << 8) | (reach !== 0 ? (1 << 4) | PEVNT_REACH : 0);
}

/** Generation of a file at `t`: its suffix (with the '.') and the interval it is current for. */
export interface Generation {
  suffix: string;
  /** Key that changes when a new generation starts. */
  id: string;
}

/**
 * The generation suffix NTPsec uses. `uptimeS` (seconds since the daemon started) is for type
 * age; `pid` for type pid. Week is NTPsec's own rule: `YYYYwNN` with NN = day-of-year mod 7.
 */
export function filegenGeneration(type: FilegenType, t: bigint, pid: number, uptimeS: number): Generation {
  let sec = t / 1_000_000_000n;
  if (t < 0n && sec * 1_000_000_000n !== t) sec -= 1n;
  const d = new Date(Number(sec) * 1000);
  const y = String(d.getUTCFullYear()).padStart(4, '0');
  const mo = String(d.getUTCMonth() + 1).padStart(2, '0');
  const day = String(d.getUTCDate()).padStart(2, '0');
  const dayId = String(sec / SECS_PER_DAY);
  switch (type) {
    case 'none':
      return { suffix: '', id: '' };
    case 'pid':
      return { suffix: `.#${pid}`, id: String(pid) };
    case 'day':
      return { suffix: `.${y}${mo}${day}`, id: dayId };
    case 'week': {
      const yday = Math.floor(
        (Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) /
          86_400_000,
      );
      return { suffix: `.${y}w${String(yday % 7).padStart(2, '0')}`, id: dayId };
    }
    case 'month':
      return { suffix: `.${y}${mo}`, id: dayId };
    case 'year':
      return { suffix: `.${y}`, id: dayId };
    case 'age': {
      const lo = Math.floor(uptimeS) - (Math.floor(uptimeS) % 86400);
      return { suffix: `.a${String(lo).padStart(8, '0')}`, id: String(lo) };
    }
  }
}

export interface FilegenOptions {
  dir: string;
  /** Base file name (filegen's `file`, default the statistic's name). */
  file: string;
  type: FilegenType;
  /** Keep a hard link `<dir>/<file>` to the current generation (NTPsec's default `link`). */
  link?: boolean;
  pid?: number;
  /** Monotonic seconds since start, for type age. */
  uptime?: () => number;
}

/**
 * One statistics file set. Opens the generation current at each write, moving to a new file
 * when the generation changes, and keeps the `<file>` link as NTPsec does: a plain file of that
 * name (one link) is renamed to `<file>.<pid>C<n>`, an old link is replaced.
 */
export class FilegenWriter {
  private fd: number | null = null;
  private genId: string | null = null;
  private conflicts = 0;
  readonly basePath: string;
  currentPath: string | null = null;

  constructor(private readonly opts: FilegenOptions) {
    this.basePath = path.join(opts.dir, opts.file);
  }

  write(t: bigint, line: string): void {
    const pid = this.opts.pid ?? process.pid;
    const gen = filegenGeneration(this.opts.type, t, pid, this.opts.uptime?.() ?? process.uptime());
    if (this.fd === null || gen.id !== this.genId) this.open(gen);
    fs.writeSync(this.fd!, line + '\n');
  }

  private open(gen: Generation): void {
    const full = this.basePath + gen.suffix;
    if (this.opts.type !== 'none') this.clearBaseName();
    const fd = fs.openSync(full, 'a', 0o644);
    this.close();
    this.fd = fd;
    this.genId = gen.id;
    this.currentPath = full;
    if (this.opts.type !== 'none' && this.opts.link !== false) {
      try {
        fs.linkSync(full, this.basePath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  }

  private clearBaseName(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.basePath);
    } catch {
      return; // not there: fine
    }
    if (!st.isFile()) throw new Error(`expected a regular file at ${this.basePath}`);
    if (st.nlink <= 1) {
      fs.renameSync(this.basePath, `${this.basePath}.${this.opts.pid ?? process.pid}C${this.conflicts++}`);
    } else fs.unlinkSync(this.basePath);
  }

  /** Closes the file; the next write reopens the current generation (cyclelogs). */
  cycle(): void {
    this.close();
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
      this.genId = null;
    }
  }
}

export interface NtpsecStatsConfig {
  statsdir: string | null;
  statistics: NtpsecStatName[];
  filegen: Record<string, { file: string | null; type: FilegenType; enable: boolean }>;
}

/** Whether a statistic is written: a filegen line decides (enable is its default), else `statistics`. */
export function statEnabled(c: NtpsecStatsConfig, name: NtpsecStatName): boolean {
  const g = c.filegen[name];
  return g ? g.enable : c.statistics.includes(name);
}

/** The writer for a statistic per configuration, or null when it is not enabled. */
export function makeFilegenWriter(c: NtpsecStatsConfig, name: NtpsecStatName): FilegenWriter | null {
  if (!statEnabled(c, name)) return null;
  const g = c.filegen[name];
  return new FilegenWriter({
    dir: c.statsdir ?? NTPSEC_DEFAULT_STATSDIR,
    file: g?.file ?? name,
    type: g?.type ?? 'day',
  });
}
