/**
 * Writes chrony's `log measurements statistics tracking` files in `logdir`, from the engine's
 * reports: a measurements line for each new valid sample, a statistics line per source when its
 * estimate changes, a tracking line per clock update.
 */
import type { Config } from '../config/chrony-conf.js';
import type { Engine } from '../engine/engine.js';
import type { Instant } from '../time/ntp-time.js';
import {
  LogFile,
  MEASUREMENTS_BANNER,
  STATISTICS_BANNER,
  TRACKING_BANNER,
  formatMeasurementsLine,
  formatStatisticsLine,
  formatTrackingLine,
} from './logfiles.js';
import type { RuntimeLogger } from './runtime.js';
import { mkdirSync } from 'node:fs';

const LEAP_NUM: Record<string, number> = { Normal: 0, 'Insert second': 1, 'Delete second': 2, 'Not synchronised': 3 };

export class StatsLogger {
  private readonly measurements: LogFile | null = null;
  private readonly statistics: LogFile | null = null;
  private readonly tracking: LogFile | null = null;
  private readonly lastRx = new Map<string, number>();
  private readonly lastStats = new Map<string, string>();

  constructor(
    conf: Config,
    private readonly log: RuntimeLogger,
  ) {
    if (!conf.logdir || conf.log.length === 0) return;
    try {
      mkdirSync(conf.logdir, { recursive: true });
    } catch (e) {
      log.warn(`Could not create logdir ${conf.logdir}: ${(e as Error).message}`);
      return;
    }
    if (conf.log.includes('measurements'))
      this.measurements = new LogFile(conf.logdir, 'measurements', MEASUREMENTS_BANNER);
    if (conf.log.includes('statistics')) this.statistics = new LogFile(conf.logdir, 'statistics', STATISTICS_BANNER);
    if (conf.log.includes('tracking')) this.tracking = new LogFile(conf.logdir, 'tracking', TRACKING_BANNER);
  }

  private safe(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.log.warn(`log file write failed: ${(e as Error).message}`);
    }
  }

  /** Called periodically: logs samples that arrived since the last call. */
  onPoll(engine: Engine, now: Instant): void {
    if (!this.measurements && !this.statistics) return;
    this.safe(() => {
      if (this.measurements) {
        for (const d of engine.ntpData(now)) {
          const key = `${d.remoteAddress}:${d.remotePort}`;
          if ((this.lastRx.get(key) ?? 0) === d.totalValidRx) continue;
          this.lastRx.set(key, d.totalValidRx);
          this.measurements.write(
            formatMeasurementsLine({
              time: now,
              address: d.remoteAddress,
              leap: d.leap,
              stratum: d.stratum,
              tests: d.ntpTests,
              localPoll: d.poll,
              remotePoll: d.poll,
              score: 1,
              offset: -d.offset,
              peerDelay: d.peerDelay,
              peerDispersion: d.peerDispersion,
              rootDelay: d.rootDelay,
              rootDispersion: d.rootDispersion,
              refId: d.refId,
              mode: d.mode,
              interleaved: d.interleaved,
              txTimestamp: d.txTimestamping === 'Kernel' ? 'K' : d.txTimestamping === 'Hardware' ? 'H' : 'D',
              rxTimestamp: d.rxTimestamping === 'Kernel' ? 'K' : d.rxTimestamping === 'Hardware' ? 'H' : 'D',
            }),
          );
        }
      }
      if (this.statistics) {
        for (const s of engine.sourceStats(now)) {
          const sig = `${s.np}:${s.offset}:${s.frequencyPpm}`;
          if (s.np === 0 || this.lastStats.get(s.address) === sig) continue;
          this.lastStats.set(s.address, sig);
          this.statistics.write(
            formatStatisticsLine({
              time: now,
              address: s.address,
              stdDev: s.stdDev,
              estOffset: s.offset,
              offsetSd: s.stdDev,
              diffFreq: s.frequencyPpm * 1e-6,
              estSkew: s.freqSkewPpm * 1e-6,
              stress: 0,
              samples: s.np,
              bestStart: 0,
              runs: s.nr,
              asymmetry: 0,
            }),
          );
        }
      }
    });
  }

  onClockUpdate(engine: Engine, now: Instant): void {
    if (!this.tracking) return;
    this.safe(() => {
      const t = engine.tracking(now);
      const combined = engine.sources(now).filter((s) => s.state === '*' || s.state === '+').length;
      this.tracking!.write(
        formatTrackingLine({
          time: now,
          address: t.refName,
          refId: t.refId,
          stratum: t.stratum,
          freqPpm: t.frequencyPpm,
          skewPpm: t.skewPpm,
          offset: t.lastOffset,
          leap: LEAP_NUM[t.leapStatus] ?? 3,
          combinedSources: combined,
          offsetSd: t.rmsOffset,
          remainingCorrection: t.systemTimeOffset,
          rootDelay: t.rootDelay,
          rootDispersion: t.rootDispersion,
          maxError: t.rootDelay / 2 + t.rootDispersion,
        }),
      );
    });
  }

  cycle(): void {
    for (const f of [this.measurements, this.statistics, this.tracking]) f?.cycle();
  }

  close(): void {
    for (const f of [this.measurements, this.statistics, this.tracking]) f?.close();
  }
}
