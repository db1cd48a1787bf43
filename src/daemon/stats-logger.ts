/**
 * Writes the statistics files rubidiumd is configured for, from the engine's reports:
 *  - chrony's `log` files in `logdir`: measurements (or rawmeasurements: every packet), selection,
 *    statistics, tracking, with the banner every `logbanner` lines;
 *  - NTPsec's loopstats/peerstats in `statsdir` (ntp.conf `statistics` / `filegen`);
 *  - chrony's `logchange` message in the daemon log.
 * `cycle()` closes every file so the next line reopens it (chronyc cyclelogs, after logrotate).
 */
import type { Config, SourceOptions } from '../config/chrony-conf.js';
import type { Engine } from '../engine/engine.js';
import type { Instant } from '../time/ntp-time.js';
import { DEFAULT_LOGCHANGE_S } from '../logs/logs-config.js';
import {
  formatLoopstatsLine,
  formatPeerstatsLine,
  makeFilegenWriter,
  peerStatusWord,
  type FilegenWriter,
} from '../logs/ntpsec-stats.js';
import {
  LogFile,
  MEASUREMENTS_BANNER,
  SELECTION_BANNER,
  STATISTICS_BANNER,
  TRACKING_BANNER,
  formatMeasurementsLine,
  formatSelectionLine,
  formatStatisticsLine,
  formatTrackingLine,
} from './logfiles.js';
import type { RuntimeLogger } from './runtime.js';
import { mkdirSync } from 'node:fs';

const LEAP_NUM: Record<string, number> = { Normal: 0, 'Insert second': 1, 'Delete second': 2, 'Not synchronised': 3 };

/** chrony's selection-log state for a chronyc-style state (the log has finer reasons; see docs/logs.md). */
function selectionState(state: string, opts: SourceOptions | undefined): string {
  if (state === '?') return opts?.noselect ? 'N' : 'M';
  if (state === '-') return 'D';
  return state; // * + x ~
}

export class StatsLogger {
  private readonly measurements: LogFile | null = null;
  private readonly raw: boolean = false;
  private readonly selection: LogFile | null = null;
  private readonly statistics: LogFile | null = null;
  private readonly tracking: LogFile | null = null;
  private readonly loopstats: FilegenWriter | null = null;
  private readonly peerstats: FilegenWriter | null = null;
  private readonly logChange: number;
  private readonly lastRx = new Map<string, number>();
  private readonly lastSel = new Map<string, number>();
  private readonly lastPeer = new Map<string, number>();
  private readonly lastStats = new Map<string, string>();
  private lastChangeRef = '';
  private readonly warned = new Set<string>();

  constructor(
    private readonly conf: Config,
    private readonly log: RuntimeLogger,
  ) {
    this.logChange = conf.logchange ?? DEFAULT_LOGCHANGE_S;
    if (conf.log.length > 0 && !conf.logdir) log.warn('log files configured but no logdir: not written');
    if (conf.logdir && conf.log.length > 0) {
      let ok = true;
      try {
        mkdirSync(conf.logdir, { recursive: true });
      } catch (e) {
        log.warn(`Could not create logdir ${conf.logdir}: ${(e as Error).message}`);
        ok = false;
      }
      if (ok) {
        const open = (name: string, banner: string): LogFile => new LogFile(conf.logdir!, name, banner, conf.logbanner);
        this.raw = conf.log.includes('rawmeasurements');
        if (this.raw || conf.log.includes('measurements'))
          this.measurements = open('measurements', MEASUREMENTS_BANNER);
        if (conf.log.includes('selection')) this.selection = open('selection', SELECTION_BANNER);
        if (conf.log.includes('statistics')) this.statistics = open('statistics', STATISTICS_BANNER);
        if (conf.log.includes('tracking')) this.tracking = open('tracking', TRACKING_BANNER);
      }
    }
    const ntpsec = { statsdir: conf.statsdir, statistics: conf.statistics ?? [], filegen: conf.filegen ?? {} };
    this.loopstats = makeFilegenWriter(ntpsec, 'loopstats');
    this.peerstats = makeFilegenWriter(ntpsec, 'peerstats');
    if (this.loopstats || this.peerstats) {
      try {
        mkdirSync(ntpsec.statsdir ?? (this.loopstats ?? this.peerstats)!.basePath.replace(/\/[^/]*$/, ''), {
          recursive: true,
        });
      } catch (e) {
        log.warn(`Could not create statsdir: ${(e as Error).message}`);
      }
    }
    if (ntpsec.statistics.includes('clockstats') || ntpsec.filegen['clockstats']?.enable) {
      log.warn('clockstats: Rubidium has no reference clocks yet, nothing is written');
    }
  }

  private safe(what: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      // Say it once per file: a full disk must not flood the daemon log.
      if (!this.warned.has(what)) this.log.warn(`${what}: write failed: ${(e as Error).message}`);
      this.warned.add(what);
    }
  }

  private optionsOf(name: string): SourceOptions | undefined {
    return this.conf.sources.find((s) => s.host === name)?.options;
  }

  /** Called periodically: logs samples that arrived since the last call. */
  onPoll(engine: Engine, now: Instant): void {
    if (!this.measurements && !this.statistics && !this.selection && !this.peerstats) return;
    const data = engine.ntpData(now);
    if (this.measurements) {
      this.safe('measurements.log', () => {
        for (const d of data) {
          const key = `${d.remoteAddress}:${d.remotePort}`;
          const count = this.raw ? d.totalRx : d.totalValidRx;
          if ((this.lastRx.get(key) ?? 0) === count) continue;
          this.lastRx.set(key, count);
          this.measurements!.write(
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
      });
    }
    // A new valid sample triggers a selection (chronyd logs every source then) and a peerstats line.
    const fresh = data.filter((d) => {
      const key = `${d.remoteAddress}:${d.remotePort}`;
      const isNew = (this.lastSel.get(key) ?? 0) !== d.totalValidRx;
      this.lastSel.set(key, d.totalValidRx);
      return isNew;
    });
    if (fresh.length > 0 && (this.selection || this.peerstats)) {
      const sources = engine.sources(now);
      const stats = engine.sourceStats(now);
      if (this.selection) {
        this.safe('selection.log', () => {
          for (const s of sources) {
            const d = data.find((x) => x.remoteAddress === s.address);
            const opts = this.optionsOf(s.name);
            // Interval expected to hold the local clock's true offset: θ ± root distance.
            const theta = -s.adjustedOffset;
            const dist = d ? d.peerDelay / 2 + d.peerDispersion + d.rootDelay / 2 + d.rootDispersion : s.error;
            this.selection!.write(
              formatSelectionLine({
                time: now,
                address: s.address,
                state: selectionState(s.state, opts),
                noselect: opts?.noselect ?? false,
                prefer: opts?.prefer ?? false,
                trust: opts?.trust ?? false,
                require: opts?.require ?? false,
                reach: s.reach,
                score: 1,
                lastSampleAgo: s.lastRxAgo ?? 0,
                low: theta - dist,
                high: theta + dist,
              }),
            );
          }
        });
      }
      if (this.peerstats) {
        this.safe('peerstats', () => {
          for (const d of fresh) {
            const key = `${d.remoteAddress}:${d.remotePort}`;
            if ((this.lastPeer.get(key) ?? 0) === d.totalValidRx) continue;
            this.lastPeer.set(key, d.totalValidRx);
            const src = sources.find((s) => s.address === d.remoteAddress);
            const st = stats.find((s) => s.address === d.remoteAddress);
            this.peerstats!.write(
              now,
              formatPeerstatsLine({
                time: now,
                address: d.remoteAddress,
                status: peerStatusWord(src?.state ?? '?', src?.reach ?? 0),
                offset: -d.offset,
                delay: d.peerDelay,
                dispersion: d.peerDispersion,
                jitter: st?.stdDev ?? 0,
              }),
            );
          }
        });
      }
    }
    if (this.statistics) {
      this.safe('statistics.log', () => {
        const diag = engine.sourceDiagnostics();
        for (const s of engine.sourceStats(now)) {
          const d = diag.get(s.address);
          // One line per fit, as chronyd writes (the offset predicted to now changes every call).
          const sig = d ? String(d.fits) : `${s.np}:${s.offset}:${s.frequencyPpm}`;
          if (s.np === 0 || this.lastStats.get(s.address) === sig) continue;
          this.lastStats.set(s.address, sig);
          this.statistics!.write(
            formatStatisticsLine({
              time: now,
              address: s.address,
              stdDev: s.stdDev,
              estOffset: s.offset,
              offsetSd: d?.offsetSd ?? s.stdDev,
              diffFreq: s.frequencyPpm * 1e-6,
              estSkew: s.freqSkewPpm * 1e-6,
              stress: d?.stress ?? 0,
              samples: s.np,
              bestStart: d?.bestStart ?? 0,
              runs: s.nr,
              asymmetry: d?.asymmetry ?? 0,
            }),
          );
        }
      });
    }
  }

  /** Called after each clock update (step or frequency change). */
  onClockUpdate(engine: Engine, now: Instant): void {
    const t = engine.tracking(now);
    // logchange: chronyd warns when a correction larger than the threshold starts.
    if (t.refTimeNs !== this.lastChangeRef) {
      this.lastChangeRef = t.refTimeNs;
      if (Math.abs(t.lastOffset) > this.logChange) {
        this.log.warn(`System clock wrong by ${t.lastOffset.toFixed(6)} seconds`);
      }
    }
    if (!this.tracking && !this.loopstats) return;
    const sources = engine.sources(now);
    if (this.tracking) {
      this.safe('tracking.log', () => {
        const combined = sources.filter((s) => s.state === '*' || s.state === '+').length;
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
            offsetSd: t.lastOffsetSd ?? t.rmsOffset,
            remainingCorrection: t.systemTimeOffset,
            rootDelay: t.rootDelay,
            rootDispersion: t.rootDispersion,
            maxError: t.rootDelay / 2 + t.rootDispersion,
          }),
        );
      });
    }
    if (this.loopstats) {
      this.safe('loopstats', () => {
        const sel = sources.find((s) => s.state === '*');
        this.loopstats!.write(
          now,
          formatLoopstatsLine({
            time: now,
            offset: t.lastOffset,
            freqPpm: -t.frequencyPpm,
            jitter: t.rmsOffset,
            wanderPpm: t.skewPpm,
            poll: sel?.poll ?? 6,
          }),
        );
      });
    }
  }

  private files(): Array<{ cycle(): void; close(): void } | null> {
    return [this.measurements, this.selection, this.statistics, this.tracking, this.loopstats, this.peerstats];
  }

  /** Closes every file; the next line reopens it under its name (cyclelogs, after rotation). */
  cycle(): void {
    for (const f of this.files()) f?.cycle();
    this.warned.clear();
  }

  close(): void {
    for (const f of this.files()) f?.close();
  }
}
