/**
 * Per-source sample store and estimator: keeps up to `maxSamples` measurements of one source,
 * fits offset = a + b·(t − tNewest) by weighted regression (weights from each sample's delay and
 * dispersion), drops old samples whose residuals fail the runs test, and answers the offset,
 * residual frequency, skew and standard deviation of the source.
 *
 * Offsets here use the NtpSample sign (θ = source − local) and are kept in the discipline's
 * "virtual" timescale: the local clock as if every correction the discipline decided had already
 * been applied (see Discipline). The discipline rewrites the history through `applyCorrection`
 * whenever it moves that timescale.
 */
import type { Instant } from '../time/ntp-time.js';
import { addSeconds, diffSeconds } from '../time/ntp-time.js';
import type { LeapIndicator } from '../clock/clock.js';
import {
  corridorEstimate,
  findBestRegression,
  median,
  RUNS_RATIO,
  RUNS_Z,
  RUNS_Z_STRICT,
  secondSlope,
  tCoefficient,
} from './regression.js';

/** Worst-case frequency uncertainty (s/s) assumed when it cannot be estimated. */
export const WORST_SKEW = 2000e-6;

/** Jitter asymmetry: all of it in one direction gives ±0.5. */
const ASYM_MAX = 0.5;
const ASYM_MIN = 0.45;
/**
 * Fits in a row with a significant asymmetry before the correction is used. chrony waits 10; 5
 * halves the time to it on the bench's asymmetric path (simulator, 100 seeds: slowest
 * convergence 144.5 → 95 s, RMS 10.2 → 8.4 µs) and the occasional false start on a symmetric
 * path costs nothing there (busy-lan RMS 25.8 → 24.1 µs): see docs/discipline.md.
 */
const ASYM_MIN_RUN = 5;
const ASYM_MAX_RUN = 1000;
/** Below this many fitted samples the corridor's extremes are single draws: regression only. */
const MIN_CORRIDOR_POINTS = 6;

export interface StoredSample {
  time: Instant; // virtual local time
  offset: number; // θ in the virtual timescale
  measuredOffset: number; // θ as measured
  delay: number;
  dispersion: number;
  rootDelay: number;
  rootDispersion: number;
  stratum: number;
  leap: LeapIndicator;
  refId: number;
  /** log2 s of the poll interval the sample was taken at. */
  poll?: number;
}

export interface SourceEstimate {
  /** Newest sample time; the regression's origin. */
  offsetTime: Instant;
  offset: number; // θ at offsetTime
  offsetSd: number;
  frequency: number; // residual, s/s: dθ/dt (positive: local clock slow vs the source)
  skew: number; // s/s, 95 % bound of the frequency estimate
  stdDev: number; // seconds
  np: number;
  nr: number;
  span: number; // seconds
}

export interface SelectionData {
  offset: number; // θ predicted at `now`
  rootDistance: number;
  rootDelay: number; // source's root delay + our delay to it
  rootDispersion: number; // source's root dispersion + sample dispersion + growth
  stdDev: number;
  lastSampleAgo: number;
  stratum: number;
  leap: LeapIndicator;
}

export interface SourceStatsOptions {
  maxSamples?: number; // 64
  minSamples?: number; // 3: the runs test never cuts below this
  maxDelayDevRatio?: number; // 10
  maxClockErrorPpm?: number; // 1
}

export class SourceStats {
  private samples: StoredSample[] = [];
  /** Samples dropped from the fit, kept (up to as many as are fitted) for the runs test only. */
  private older: StoredSample[] = [];
  /** Estimated jitter asymmetry (offset change per second of extra delay), 0 while inactive. */
  private asym = 0;
  /** Consecutive fits with a significant asymmetry of the same sign (signed). */
  private asymRun = 0;
  private est: SourceEstimate | undefined;
  /** Samples the last fit dropped (runs test), and how far its frequency moved, in old skews. */
  private lastDropped = 0;
  private lastStress = 0;
  private fitCount = 0;
  private readonly maxSamples: number;
  private readonly minSamples: number;
  private readonly maxDelayDevRatio: number;
  private readonly maxClockError: number;

  constructor(opts: SourceStatsOptions = {}) {
    this.maxSamples = opts.maxSamples ?? 64;
    this.minSamples = opts.minSamples ?? 3;
    this.maxDelayDevRatio = opts.maxDelayDevRatio ?? 10;
    this.maxClockError = (opts.maxClockErrorPpm ?? 1) * 1e-6;
  }

  get count(): number {
    return this.samples.length;
  }

  get estimate(): SourceEstimate | undefined {
    return this.est;
  }

  get newest(): StoredSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  minDelay(): number {
    let m = Infinity;
    for (const s of this.samples) m = Math.min(m, s.delay);
    return m;
  }

  /**
   * Delay filter (chrony's maxdelaydevratio idea): a sample whose delay exceeds the minimum by
   * far more than the source's jitter is rejected, unless its offset moved even more than its
   * delay could explain (then the delay increase is not what is wrong with it).
   */
  isGoodSample(offset: number, delay: number, time: Instant): boolean {
    const e = this.est;
    if (!e || this.samples.length < 6) return true;
    const elapsed = Math.max(0, diffSeconds(time, e.offsetTime));
    const minDelay = this.minDelay();
    // With the asymmetry correction in use, σ is the jitter left after it, far below what extra
    // delay a good sample has: judge the delay by the delay spread then (half its median excess).
    let jitter = e.stdDev;
    if (this.asymmetryActive) {
      const excess = this.samples.map((q) => q.delay - minDelay);
      jitter = Math.max(jitter, median(excess) / 2);
    }
    const allowed = jitter * this.maxDelayDevRatio + elapsed * (e.skew + this.maxClockError);
    const increase = (delay - minDelay) / 2;
    if (increase < allowed) return true;
    const predicted = e.offset + elapsed * e.frequency;
    return Math.abs(offset - predicted) - increase > allowed;
  }

  add(s: StoredSample): void {
    const last = this.newest;
    if (last && s.time <= last.time) {
      // Out of order (should not happen): keep the history monotonic.
      return;
    }
    this.samples.push(s);
    if (this.samples.length > this.maxSamples) {
      this.older.push(...this.samples.splice(0, this.samples.length - this.maxSamples));
    }
    this.regress();
  }

  clear(): void {
    this.samples = [];
    this.older = [];
    this.est = undefined;
    this.asym = 0;
    this.asymRun = 0;
  }

  /** Refits the line; drops samples older than the runs test accepts. */
  regress(): void {
    this.fitCount++;
    const n = this.samples.length;
    if (n === 0) {
      this.est = undefined;
      return;
    }
    const newest = this.samples[n - 1]!;
    if (n === 1) {
      this.est = {
        offsetTime: newest.time,
        offset: newest.offset,
        offsetSd: newest.delay / 2 + newest.dispersion,
        frequency: 0,
        skew: WORST_SKEW,
        stdDev: newest.delay / 2 + newest.dispersion,
        np: 1,
        nr: 1,
        span: 0,
      };
      return;
    }
    if (n === 2) {
      const x = this.samples.map((s) => diffSeconds(s.time, newest.time));
      const y = this.samples.map((s) => s.offset);
      const dist = this.samples.map((s) => s.delay / 2 + s.dispersion);
      const span = -x[0]!;
      const slope = span > 0 ? (y[1]! - y[0]!) / span : 0;
      // A sample's error lies within ± its distance; taken as uniform, its sd is distance/√3.
      const skew = span > 0 ? Math.min(WORST_SKEW, (dist[0]! + dist[1]!) / (Math.sqrt(3) * span)) : WORST_SKEW;
      this.est = {
        offsetTime: newest.time,
        offset: y[1]!,
        offsetSd: dist[1]!,
        frequency: slope,
        skew,
        stdDev: Math.max(dist[0]!, dist[1]!) / Math.sqrt(3),
        np: 2,
        nr: 2,
        span,
      };
      return;
    }
    const all = this.older.length ? [...this.older, ...this.samples] : this.samples;
    const extra = all.length - n;
    const x = all.map((s) => diffSeconds(s.time, newest.time));
    const y = all.map((s) => s.offset);
    const dist = all.map((s) => s.delay / 2 + s.dispersion);
    this.correctAsymmetry(all, x, y);
    let minD = Infinity;
    let sumD = 0;
    for (const d of dist.slice(extra)) {
      minD = Math.min(minD, d);
      sumD += d;
    }
    // Scale of the weights: the previous fit's jitter, else the mean excess distance.
    let scale = this.est && this.est.np >= 3 ? this.est.stdDev : sumD / n - minD;
    const asymActive = this.asymmetryActive;
    if (asymActive) {
      // The corrected offsets' σ no longer says how far a slow exchange may be off: weighting by
      // it would hand the fit to the one or two fastest exchanges (σ shrinks as they dominate, and
      // the weights grow steeper). Take at least chrony's scale from the delay spread.
      const medD = median(dist.slice(extra));
      scale = Math.max(scale, Math.min((medD - minD) / 0.7, minD));
    }
    if (!(scale > 1e-10)) scale = 1e-10;
    const w = dist.map((d) => {
      const f = 1 + (d - minD) / scale;
      return f * f;
    });
    // The corrected residuals are one-sided and spread unevenly: at 5 % the runs test cut the
    // history to a few samples every few fits on the bench's asymmetric path; test at 1 % then.
    const fit = findBestRegression(x, y, w, this.minSamples, extra, asymActive ? RUNS_Z_STRICT : RUNS_Z);
    const old = this.est;
    this.lastDropped = fit.start - extra;
    this.lastStress = old && old.skew > 0 ? Math.abs(fit.slope - old.frequency) / old.skew : 0;
    if (fit.start > extra) this.older.push(...this.samples.splice(0, fit.start - extra));
    if (this.older.length > this.samples.length * (RUNS_RATIO - 1)) {
      this.older.splice(0, this.older.length - this.samples.length * (RUNS_RATIO - 1));
    }
    const used = this.samples.length;
    const stdDev = Math.sqrt(Math.max(fit.variance, 0));
    const span = diffSeconds(newest.time, this.samples[0]!.time);
    // With few points the residual variance is unreliable: floor it by what the samples' delay
    // spread allows their offsets to vary by (a constant delay, however large, is a bias that
    // the spread does not show), plus their dispersion.
    let minSd = 0;
    if (used < 4) {
      let maxD = 0;
      let minDisp = Infinity;
      for (const s of this.samples) {
        maxD = Math.max(maxD, s.delay / 2 + s.dispersion);
        minDisp = Math.min(minDisp, s.dispersion);
      }
      minSd = (maxD - minD + minDisp) / Math.sqrt(3);
    }
    const slopeSd = Math.max(fit.slopeSd, span > 0 ? minSd / span : 0);
    let offset = fit.intercept;
    let frequency = fit.slope;
    if (used >= MIN_CORRIDOR_POINTS) {
      // The minimum-delay corridor (regression.ts) over the same samples: with one-sided
      // (queueing) jitter it is far better than the regression, with bell-shaped noise somewhat
      // worse; offsets and frequencies are combined by the estimated errors of the offsets.
      const fitted = this.samples;
      const c = corridorEstimate(
        fitted.map((q) => diffSeconds(q.time, newest.time)),
        fitted.map((q) => q.offset),
        fitted.map((q) => q.delay),
        // Wide enough for the regression's slope (a clock thousands of ppm off at start).
        Math.max(1e-3, 4 * Math.abs(fit.slope)),
      );
      if (asymActive) {
        // The corrected offsets have one-sided noise (what is left is the quiet direction's
        // jitter), so the regression through them is biased by about that jitter's mean (chronyd's
        // −30…−46 µs on the bench's asymmetric path). The corridor needs no correction.
        offset = c.intercept;
        frequency = c.slope;
      } else {
        const wc = 1 / Math.max(c.interceptSd * c.interceptSd, 1e-24);
        const sdR = Math.max(fit.interceptSd, minSd, 1e-12);
        const wr = 1 / (sdR * sdR);
        offset = (wc * c.intercept + wr * fit.intercept) / (wc + wr);
        frequency = (wc * c.slope + wr * fit.slope) / (wc + wr);
      }
    }
    this.est = {
      offsetTime: newest.time,
      offset,
      offsetSd: Math.max(fit.interceptSd, minSd),
      frequency,
      skew: Math.min(WORST_SKEW, slopeSd * tCoefficient(fit.dof)),
      stdDev: Math.max(stdDev, minSd),
      np: used,
      nr: fit.runs,
      span,
    };
  }

  /** Jitter asymmetry in use (0 when not significant), for reports. */
  get asymmetry(): number {
    return this.asym;
  }

  /** Whether offsets are being corrected for jitter asymmetry (5 significant fits in a row). */
  get asymmetryActive(): boolean {
    return Math.abs(this.asymRun) >= ASYM_MIN_RUN;
  }

  /** Consecutive fits with a significant asymmetry (signed: the sign of the slope). */
  get asymmetryRun(): number {
    return this.asymRun;
  }

  /** Samples the runs test dropped in the last fit (chrony's Bs). */
  get droppedByLastFit(): number {
    return this.lastDropped;
  }

  /** Number of fits so far (a new one means a new statistics line). */
  get fits(): number {
    return this.fitCount;
  }

  /** |frequency change| of the last fit in units of the previous skew (chrony's stress). */
  get stress(): number {
    return this.lastStress;
  }

  /**
   * Asymmetric jitter (chrony's approach, sourcestats.c): when most jitter is on one direction
   * of the path, a sample's offset error grows with its extra delay. The slope of offset against
   * extra delay (with time as the other regressor) estimates it; once it has been significant
   * (|b| ≥ 0.45) with the same sign for 5 fits (chrony: 10), the offsets given to the fit are
   * corrected to what the minimum delay would have measured: y −= b·(delay − min delay), |b| ≤ 0.5.
   */
  private correctAsymmetry(all: readonly StoredSample[], x: number[], y: number[]): void {
    let minDelay = Infinity;
    for (const s of all) minDelay = Math.min(minDelay, s.delay);
    const extra = all.map((s) => s.delay - minDelay);
    const b = secondSlope(x, extra, y);
    if (b === undefined || b * this.asymRun < 0) {
      this.asym = 0;
      this.asymRun = 0;
      return;
    }
    if (b <= -ASYM_MIN && this.asymRun > -ASYM_MAX_RUN) this.asymRun--;
    else if (b >= ASYM_MIN && this.asymRun < ASYM_MAX_RUN) this.asymRun++;
    if (Math.abs(this.asymRun) < ASYM_MIN_RUN) return;
    this.asym = Math.max(-ASYM_MAX, Math.min(ASYM_MAX, b));
    for (let i = 0; i < y.length; i++) y[i]! -= this.asym * extra[i]!;
  }

  /** θ predicted at `t` from the fitted line. */
  predictOffset(t: Instant): number | undefined {
    const e = this.est;
    if (!e) return undefined;
    return e.offset + e.frequency * diffSeconds(t, e.offsetTime);
  }

  selectionData(now: Instant): SelectionData | undefined {
    const e = this.est;
    const last = this.newest;
    if (!e || !last) return undefined;
    const ago = Math.max(0, diffSeconds(now, last.time));
    const growth = ago * (e.skew + this.maxClockError);
    const rootDelay = last.rootDelay + last.delay;
    const rootDispersion = last.rootDispersion + last.dispersion + growth;
    return {
      offset: e.offset + e.frequency * diffSeconds(now, e.offsetTime),
      rootDistance: rootDelay / 2 + rootDispersion + e.stdDev,
      rootDelay,
      rootDispersion,
      stdDev: e.stdDev,
      lastSampleAgo: ago,
      stratum: last.stratum,
      leap: last.leap,
    };
  }

  /**
   * Rewrites the history after the discipline moved the virtual timescale: at instant `t0` the
   * local clock gained `dOffset` seconds, and from then on runs `dFreq` (s/s) faster. The history
   * is changed as if the clock had always been like that, so the fit stays valid.
   */
  applyCorrection(t0: Instant, dOffset: number, dFreq: number): void {
    for (const s of this.older) {
      const shift = dOffset + dFreq * diffSeconds(s.time, t0);
      s.offset -= shift;
      s.time = addSeconds(s.time, shift);
    }
    for (const s of this.samples) {
      const dt = diffSeconds(s.time, t0);
      const shift = dOffset + dFreq * dt;
      s.offset -= shift;
      s.time = addSeconds(s.time, shift);
    }
    if (this.est) {
      const e = this.est;
      const dt = diffSeconds(e.offsetTime, t0);
      const shift = dOffset + dFreq * dt;
      e.offset -= shift;
      e.offsetTime = addSeconds(e.offsetTime, shift);
      e.frequency -= dFreq;
    }
  }

  samplesView(): readonly StoredSample[] {
    return this.samples;
  }
}
