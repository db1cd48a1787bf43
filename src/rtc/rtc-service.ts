/**
 * The RTC directives at daemon start (I/O): wraps the system clock with chronyd's STA_UNSYNC
 * policy (rtcsync), and runs RTC drift tracking (rtcfile) where an RTC exists. Where none exists
 * the daemon says so and keeps running without it, as chronyd does ("Could not open RTC device").
 * The RTC is read through sysfs (/sys/class/rtc/rtcN/since_epoch, whole seconds); a sample is
 * taken at the RTC's second edge, found by polling for the value to change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Clock } from '../clock/clock.js';
import type { Config } from '../config/chrony-conf.js';
import type { RuntimeLogger } from '../daemon/runtime.js';
import { RtcDriftTracker, formatRtcFile, parseRtcFile, type RtcCoefficients } from './rtc-drift.js';
import { RtcSyncClock } from './rtcsync.js';

/** How the service touches the machine (replaceable in tests). */
export interface RtcIo {
  exists(p: string): boolean;
  /** The sysfs since_epoch file of an RTC device node, or null. */
  sysfsSeconds(device: string): string | null;
  readFile(p: string): string;
  writeFileAtomic(p: string, text: string): void;
}

export const nodeRtcIo: RtcIo = {
  exists: (p) => fs.existsSync(p),
  sysfsSeconds: (device) => {
    try {
      const name = path.basename(fs.realpathSync(device));
      const p = `/sys/class/rtc/${name}/since_epoch`;
      return fs.existsSync(p) ? p : null;
    } catch {
      return null;
    }
  },
  readFile: (p) => fs.readFileSync(p, 'utf8'),
  writeFileAtomic: (p, text) => {
    fs.writeFileSync(p + '.tmp', text, { mode: 0o644 });
    fs.renameSync(p + '.tmp', p);
  },
};

export interface RtcSetup {
  clock: Clock;
  /** Fatal configuration error (the daemon must exit 1), as chronyd's LOG_FATAL. */
  fatal?: string;
  tracker: RtcTracking | null;
}

/** The rtcfile refusal text where the configured RTC device does not exist. */
export function noRtcMessage(device: string): string {
  return `rtcfile: no RTC device (${device} missing); RTC drift tracking disabled`;
}

export function setupRtc(conf: Config, clock: Clock, log: RuntimeLogger, io: RtcIo = nodeRtcIo): RtcSetup {
  if (conf.rtcfile && conf.rtcsync) {
    return { clock, tracker: null, fatal: 'rtcfile directive cannot be used with rtcsync' };
  }
  let out: Clock = clock;
  if (clock.kind === 'system') out = new RtcSyncClock(clock, conf.rtcsync);
  if (conf.rtcsync) {
    if (clock.kind !== 'system') log.info('rtcsync has no effect with -x (the system clock and RTC are not touched)');
    else if (!io.exists(conf.rtcdevice) && !io.exists('/dev/rtc0')) {
      log.warn(`rtcsync: no RTC device (${conf.rtcdevice} missing); the kernel's 11-minute mode has nothing to update`);
    }
  }
  if (!conf.rtcfile) {
    for (const d of ['rtcautotrim', 'rtconutc', 'hwclockfile'] as const) {
      if (conf[d] !== null && conf[d] !== false && conf[d] !== 0) log.warn(`${d} has no effect without rtcfile`);
    }
    return { clock: out, tracker: null };
  }
  if (!io.exists(conf.rtcdevice)) {
    log.warn(noRtcMessage(conf.rtcdevice));
    return { clock: out, tracker: null };
  }
  const sysfs = io.sysfsSeconds(conf.rtcdevice);
  if (!sysfs) {
    log.warn(`rtcfile: cannot read ${conf.rtcdevice} (no /sys/class/rtc entry); RTC drift tracking disabled`);
    return { clock: out, tracker: null };
  }
  let initial: RtcCoefficients | undefined;
  if (io.exists(conf.rtcfile)) {
    try {
      initial = parseRtcFile(io.readFile(conf.rtcfile), conf.rtcfile);
    } catch (e) {
      log.warn((e as Error).message);
    }
  }
  return { clock: out, tracker: new RtcTracking(conf, clock, sysfs, log, io, initial) };
}

/** RTC sampling and persistence while the daemon runs. */
export class RtcTracking {
  readonly tracker: RtcDriftTracker;
  private timer: NodeJS.Timeout | null = null;
  private readonly utcOffsetS: number;

  constructor(
    private readonly conf: Config,
    private readonly clock: Clock,
    private readonly sysfs: string,
    private readonly log: RuntimeLogger,
    private readonly io: RtcIo,
    initial?: RtcCoefficients,
  ) {
    this.tracker = new RtcDriftTracker(initial);
    // since_epoch reads the RTC as UTC; an RTC on local time is off by the zone offset.
    this.utcOffsetS = this.rtcOnUtc() ? 0 : -new Date().getTimezoneOffset() * 60;
  }

  private rtcOnUtc(): boolean {
    if (this.conf.hwclockfile) {
      try {
        const lines = this.io.readFile(this.conf.hwclockfile).split('\n');
        if (lines[2]?.trim() === 'UTC') return true;
        if (lines[2]?.trim() === 'LOCAL') return false;
      } catch {
        this.log.warn(`Could not read RTC LOCAL/UTC setting from ${this.conf.hwclockfile}`);
      }
    }
    return this.conf.rtconutc;
  }

  private readSeconds(): number {
    const v = Number(this.io.readFile(this.sysfs).trim());
    if (!Number.isInteger(v)) throw new Error(`${this.sysfs}: not a number of seconds`);
    return v - this.utcOffsetS;
  }

  /** Takes one sample at the RTC's next second edge (polls up to 1.1 s). */
  async sample(): Promise<void> {
    const first = this.readSeconds();
    const deadline = Date.now() + 1100;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
      const s = this.readSeconds();
      if (s !== first) {
        this.tracker.addSample(s, this.clock.now());
        return;
      }
    }
    throw new Error(`${this.sysfs}: the RTC did not tick within 1.1 s`);
  }

  start(periodS = 60, synchronised: () => boolean = () => false): void {
    const tick = (): void => {
      this.sample()
        .then(() => {
          if (this.tracker.shouldAutotrim(this.conf.rtcautotrim, synchronised())) {
            const c = this.tracker.coefficients!;
            this.log.warn(
              `RTC off by ${c.offset.toFixed(3)} s: rtcautotrim would trim it, but setting the RTC is not implemented`,
            );
          }
        })
        .catch((e: Error) => this.log.warn(`RTC sample failed: ${e.message}`));
    };
    tick();
    this.timer = setInterval(tick, periodS * 1000);
  }

  /** Saves the coefficients to the rtcfile (at exit, as chronyd). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const c = this.tracker.coefficients;
    if (!c || !this.conf.rtcfile) return;
    try {
      this.io.writeFileAtomic(this.conf.rtcfile, formatRtcFile(c));
    } catch (e) {
      this.log.warn(`Could not write ${this.conf.rtcfile}: ${(e as Error).message}`);
    }
  }
}
