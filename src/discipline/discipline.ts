/**
 * The clock discipline (sans-IO): per-source statistics, selection, combining and the servo.
 *
 * Timescales. Instants passed in (`now`, sample times) are the local clock's cooked time, as the
 * clock reads after every action this discipline emitted was applied. Internally the discipline
 * works in a "virtual" timescale: cooked time plus the offset correction still being slewed
 * (chrony's cooked time works the same way). Every decided correction moves the virtual timescale
 * at once, and the stored sample history of every source is rewritten to match, so the
 * regressions always describe the clock as it is being corrected.
 *
 * Actions: {type:'frequency', ppm} is the total correction (base frequency + slew rate),
 * {type:'step'} moves the clock, {type:'status'} publishes synchronisation state.
 */
import type { Instant } from '../time/ntp-time.js';
import { addSeconds, diffSeconds } from '../time/ntp-time.js';
import type { LeapIndicator } from '../clock/clock.js';
import type { ClockAction, NtpSample, ReferenceState, SelectState, SourceSelectOptions } from '../engine/types.js';
import type { LeapStatus, SourceStatsReport, TrackingReport } from '../control/reports.js';
import { SourceStats, WORST_SKEW } from './source-stats.js';
import { DEFAULT_SELECTION, selectSources, type Candidate, type SelectionOptions } from './selection.js';
import { frequencyUpdate, slewPlan } from './servo.js';
import { LeapController, type LeapOptions } from '../leap/leap-controller.js';
import { TimeSmoother, type SmoothOptions } from '../leap/smoother.js';
import { MaxChangeGuard, type MaxChangeOptions } from './maxchange.js';
import { DEFAULT_MAXUNREACH, holdoverUsable, LocalReferenceGate, orphanFilter } from './holdover.js';
import type { HoldoverSource, LocalReferenceOptions } from './holdover.js';

export const REFID_LOCL = 0x4c4f434c;

export interface DisciplineOptions {
  makestep?: { threshold: number; limit: number };
  minsources?: number;
  maxdistance?: number;
  maxjitter?: number;
  combinelimit?: number;
  stratumweight?: number;
  reselectdist?: number;
  /** ppm */
  maxclockerror?: number;
  initialFrequencyPpm?: number;
  initialSkewPpm?: number;
  corrtimeratio?: number;
  /** ppm */
  maxupdateskew?: number;
  /** ppm */
  maxslewrate?: number;
  localStratum?: LocalReferenceOptions;
  /** log2 s of the local clock's precision. */
  precision?: number;
  maxSamples?: number;
  minSamples?: number;
  /** chrony maxchange (src/discipline/maxchange.ts). */
  maxchange?: MaxChangeOptions;
  /** ppm: the frequency correction never exceeds ± this (chrony maxdrift). */
  maxdrift?: number;
  /**
   * How a decided offset correction reaches the clock: 'slew' (a real clock: a temporary
   * frequency change, chrony's corrtimeratio) or 'instant' (a software clock such as `-x`'s
   * virtual clock, which can take the whole correction at once, as chronyd -x does).
   */
  correction?: 'slew' | 'instant';
  /** leapsecmode and the leap table (src/leap/leap-controller.ts). */
  leap?: LeapOptions;
  /** smoothtime: served time smoothing / leap smear (src/leap/smoother.ts). */
  smoothtime?: SmoothOptions | null;
}

export interface DisciplineSourceOptions extends SourceSelectOptions {
  /** Refid this source stands for when it is the reference (IPv4 address as u32, ...). */
  refId?: number;
  name?: string;
  maxdelay?: number;
  maxdelayratio?: number;
  maxdelaydevratio?: number;
  minsamples?: number;
  maxsamples?: number;
  /** Polls a source may stay selectable while unreachable (chrony maxunreach). */
  maxunreach?: number;
  /** Our reference ID as this source sees us (orphan mode); 0/undefined if unknown. */
  localRefId?: number;
}

export interface SourceDiagnostics {
  /** s: uncertainty of the estimated offset. */
  offsetSd: number;
  /** |frequency change| of the last fit over the previous skew. */
  stress: number;
  /** Samples the runs test dropped in the last fit. */
  bestStart: number;
  /** Jitter asymmetry in use (offset per extra delay, ±0.5; 0 while not significant). */
  asymmetry: number;
  /** Consecutive fits with a significant asymmetry, signed. */
  asymmetryRun: number;
  /** Fits of this source's statistics so far. */
  fits: number;
}

export interface LastSampleInfo {
  time: Instant; // cooked local time of the measurement
  measuredOffset: number; // θ as measured
  adjustedOffset: number; // θ corrected for later clock adjustments
  error: number;
}

interface SourceEntry {
  id: string;
  opts: DisciplineSourceOptions;
  stats: SourceStats;
  /** undefined until the source has answered or is known not to answer. */
  reachable: boolean | undefined;
  fresh: boolean;
  state: SelectState;
  last: LastSampleInfo | undefined;
  rejected: number;
  /** |measured − predicted| offset of the newest sample, and that sample's distance. */
  lastPredictionError: number | undefined;
  lastDistance: number;
  /** Running mean of (prediction error / regression sd)²: about 1 while the model holds. */
  predictionScore: number;
  unreachableRun: number;
}

interface Slew {
  start: Instant; // cooked
  r0: number; // seconds to correct, signed
  rate: number; // s/s
  end: Instant; // cooked
}

/** A move of the virtual timescale made by an update, kept to place late samples. */
interface FrameChange {
  at: Instant; // cooked time of the update (before any step it made)
  atVirtual: Instant; // virtual time of the update, in the frame before it
  slewBefore: Slew | undefined;
  freqBefore: number;
  dOffset: number;
  dFreq: number;
}

const MAX_FRAME_CHANGES = 32;
const PREDICTION_SCORE_GAIN = 0.25;
const PREDICTION_SCORE_LIMIT = 4;

export type SampleVerdict =
  'accepted' | 'unknown source' | 'not newer' | 'maxdelay' | 'maxdelayratio' | 'delaydev' | 'leap second';

export class Discipline {
  private readonly sources = new Map<string, SourceEntry>();
  private readonly actions: ClockAction[] = [];
  private readonly sel: SelectionOptions;
  private readonly maxClockError: number; // s/s
  private readonly corrTimeRatio: number;
  private readonly maxUpdateSkew: number; // s/s
  private readonly maxSlewRate: number; // s/s
  private readonly maxChange: MaxChangeGuard | undefined;
  private readonly precision: number;

  private freq: number; // base frequency correction, s/s
  private ourSkew: number; // s/s
  private slew: Slew | undefined;
  /** The last slew that ran to its end (to place samples taken during it). */
  private endedSlew: Slew | undefined;
  private selectedId: string | undefined;
  private synced = false;
  private updates = 0;
  private lastUpdate: Instant | undefined;
  private updateInterval = 0;
  private lastOffset = 0;
  private lastOffsetSd = 0;
  /** chrony's avg2_moving: the mean square offset tracks the last offset until offsets grow. */
  private meanSquareMoving = false;
  private meanSquareOffset = 0;
  private residualFreq = 0;
  private refStratum = 0;
  private refId = 0;
  private refName = '';
  private refRootDelay = 0;
  private refRootDispersion = 0;
  private readonly leapCtl: LeapController;
  private readonly smoother: TimeSmoother | undefined;
  private lastReason = '';
  private readonly frames: FrameChange[] = [];
  /** `updates` when the clock last jumped under us (makestep's limit counts from there). */
  private updatesAtJump = 0;
  private readonly localGate: LocalReferenceGate | undefined;

  constructor(private readonly opts: DisciplineOptions = {}) {
    this.sel = {
      ...DEFAULT_SELECTION,
      minsources: opts.minsources ?? DEFAULT_SELECTION.minsources,
      maxdistance: opts.maxdistance ?? DEFAULT_SELECTION.maxdistance,
      maxjitter: opts.maxjitter ?? DEFAULT_SELECTION.maxjitter,
      combinelimit: opts.combinelimit ?? DEFAULT_SELECTION.combinelimit,
      stratumweight: opts.stratumweight ?? DEFAULT_SELECTION.stratumweight,
      reselectdist: opts.reselectdist ?? DEFAULT_SELECTION.reselectdist,
    };
    this.maxClockError = (opts.maxclockerror ?? 1) * 1e-6;
    this.corrTimeRatio = opts.corrtimeratio ?? 3;
    this.maxUpdateSkew = (opts.maxupdateskew ?? 1000) * 1e-6;
    this.maxSlewRate = (opts.maxslewrate ?? 83333.333) * 1e-6;
    this.maxChange = opts.maxchange ? new MaxChangeGuard(opts.maxchange) : undefined;
    this.precision = opts.precision ?? -20;
    this.freq = (opts.initialFrequencyPpm ?? 0) * 1e-6;
    this.ourSkew = opts.initialSkewPpm !== undefined ? opts.initialSkewPpm * 1e-6 : WORST_SKEW;
    if (opts.initialFrequencyPpm !== undefined) this.actions.push({ type: 'frequency', ppm: this.freq * 1e6 });
    this.leapCtl = new LeapController(opts.leap);
    this.smoother = opts.smoothtime ? new TimeSmoother(opts.smoothtime) : undefined;
    this.localGate = opts.localStratum ? new LocalReferenceGate(opts.localStratum) : undefined;
  }

  /** Starts the clock of `waitunsynced` (the daemon starts unsynchronised). */
  start(now: Instant): void {
    this.localGate?.noteSynced(this.synced, now);
    this.leapCtl.start(now);
  }

  /** Ids whose statistics selection may use: reachability, maxunreach and orphan rules. */
  private selectableIds(): Set<string> {
    const hs: HoldoverSource[] = [];
    for (const s of this.sources.values()) {
      const all = s.stats.samplesView();
      hs.push({
        id: s.id,
        reachable: s.reachable,
        unreachableRun: s.unreachableRun,
        maxunreach: s.opts.maxunreach ?? DEFAULT_MAXUNREACH,
        oldest: all[0]?.time,
        newest: all[all.length - 1]?.time,
        stratum: s.stats.newest?.stratum ?? 16,
        refId: s.opts.refId ?? 0,
        localRefId: s.opts.localRefId ?? 0,
        noselect: s.opts.noselect ?? false,
      });
    }
    const usable = holdoverUsable(hs);
    const local = this.opts.localStratum;
    return local?.orphan ? orphanFilter(hs, usable, local.stratum).usable : usable;
  }

  // ---- sources -------------------------------------------------------------------------------

  addSource(id: string, opts: DisciplineSourceOptions): void {
    if (this.sources.has(id)) throw new Error(`source ${id} already exists`);
    this.sources.set(id, {
      id,
      opts: { ...opts },
      stats: new SourceStats({
        maxClockErrorPpm: this.maxClockError * 1e6,
        ...(opts.maxdelaydevratio !== undefined ? { maxDelayDevRatio: opts.maxdelaydevratio } : {}),
        ...((opts.maxsamples ?? this.opts.maxSamples) !== undefined
          ? { maxSamples: opts.maxsamples ?? this.opts.maxSamples }
          : {}),
        ...((opts.minsamples ?? this.opts.minSamples) !== undefined
          ? { minSamples: opts.minsamples ?? this.opts.minSamples }
          : {}),
      }),
      reachable: undefined,
      fresh: false,
      state: '?',
      last: undefined,
      rejected: 0,
      lastPredictionError: undefined,
      lastDistance: 0,
      predictionScore: 1,
      unreachableRun: 0,
    });
  }

  removeSource(id: string): void {
    this.sources.delete(id);
    if (this.selectedId === id) this.selectedId = undefined;
  }

  setSourceOptions(id: string, opts: Partial<DisciplineSourceOptions>): void {
    const s = this.sources.get(id);
    if (s) s.opts = { ...s.opts, ...opts };
  }

  setReachable(id: string, reachable: boolean): void {
    const s = this.sources.get(id);
    if (s) s.reachable = reachable;
  }

  /** Consecutive polls the source's reach register has been empty (maxunreach). */
  setUnreachableRun(id: string, polls: number): void {
    const s = this.sources.get(id);
    if (s) s.unreachableRun = polls;
  }

  /**
   * The clock jumped under us (suspend/resume, VM migration, someone else set it): the stored
   * samples describe a clock that no longer exists, the slew in progress corrects an error that
   * is gone, and makestep may step again as at start (its update limit counts afresh).
   */
  clockJumped(now: Instant): void {
    for (const s of this.sources.values()) {
      s.stats.clear();
      s.last = undefined;
      s.fresh = false;
      s.lastPredictionError = undefined;
      s.predictionScore = 1;
    }
    this.frames.length = 0;
    this.slew = undefined;
    this.endedSlew = undefined;
    this.updatesAtJump = this.updates;
    this.actions.push({ type: 'frequency', ppm: this.freq * 1e6 });
    this.selectedId = undefined;
    this.setUnsynchronised(now); // chrony: an unknown step unsynchronises (reference.c)
    this.update(now);
  }

  /** Feeds a measurement; the caller then calls update(now) to let it steer the clock. */
  addSample(id: string, sample: NtpSample, _now: Instant): SampleVerdict {
    const s = this.sources.get(id);
    if (!s) return 'unknown source';
    // An interleaved answer may describe the exchange whose basic answer was already used.
    if (s.last && sample.time <= s.last.time) return 'not newer';
    if (this.leapCtl.isLeapClose(sample.time)) return 'leap second';
    // A round trip timed while the clock slewed fast was measured with a fast (or slow) clock.
    const rate = this.slewRateAt(sample.time);
    if (rate !== 0) sample = { ...sample, delay: sample.delay / (1 + rate) };
    if (s.opts.maxdelay !== undefined && sample.delay > s.opts.maxdelay) {
      s.rejected++;
      return 'maxdelay';
    }
    if (
      s.opts.maxdelayratio !== undefined &&
      s.stats.count > 0 &&
      sample.delay > s.opts.maxdelayratio * s.stats.minDelay()
    ) {
      s.rejected++;
      return 'maxdelayratio';
    }
    const { time: tv, offset: off } = this.toVirtual(sample.time, sample.offset);
    if (!s.stats.isGoodSample(off, sample.delay, tv)) {
      s.rejected++;
      return 'delaydev';
    }
    const predicted = s.stats.count >= 3 ? s.stats.predictOffset(tv) : undefined;
    s.lastPredictionError = predicted !== undefined ? Math.abs(off - predicted) : undefined;
    const e = s.stats.estimate;
    if (predicted !== undefined && e) {
      const q = (off - predicted) / Math.max(Math.hypot(e.stdDev, e.offsetSd), 1e-9);
      s.predictionScore += PREDICTION_SCORE_GAIN * (Math.min(q * q, 100) - s.predictionScore);
    }
    s.lastDistance = sample.delay / 2 + sample.dispersion;
    s.stats.add({
      time: tv,
      offset: off,
      measuredOffset: sample.offset,
      delay: sample.delay,
      dispersion: sample.dispersion,
      rootDelay: sample.rootDelay,
      rootDispersion: sample.rootDispersion,
      stratum: sample.stratum,
      leap: sample.leap,
      refId: sample.refId,
      poll: sample.poll,
    });
    s.reachable = true;
    s.fresh = true;
    s.last = {
      time: sample.time,
      measuredOffset: sample.offset,
      adjustedOffset: off,
      error: sample.delay / 2 + sample.dispersion,
    };
    return 'accepted';
  }

  /**
   * How the source's poll interval should move after its newest sample (log2 units, summed
   * into a score by the association). As chrony: a prediction error beyond the sample's own
   * distance means the source is not being tracked: poll faster by log2(error/distance);
   * otherwise steer the number of samples the regression keeps towards `target` (the runs test
   * cuts the history when the clock wanders, which shortens the poll).
   */
  pollAdjustment(id: string, target: number): number | undefined {
    const s = this.sources.get(id);
    if (!s) return undefined;
    const err = s.lastPredictionError;
    if (err !== undefined && s.lastDistance > 0 && err > s.lastDistance) return -Math.log2(err / s.lastDistance);
    // Predictions persistently worse than the measurement noise: the clock wanders more over a
    // poll interval than the jitter hides, so shorter polls track it better (chrony lacks this).
    if (s.predictionScore > PREDICTION_SCORE_LIMIT) return -0.5;
    const n = s.stats.count;
    const adj = (n / target - 1) / target;
    return n < target ? 2 * adj : adj;
  }

  // ---- timers --------------------------------------------------------------------------------

  /** When the current slew ends (the frequency must then drop back to the base value). */
  nextTimeout(): Instant | null {
    const t = this.slew ? this.slew.end : null;
    const l = this.leapCtl.nextTimeout();
    return l !== null && (t === null || l < t) ? l : t;
  }

  handleTimeout(now: Instant): void {
    if (this.slew && now >= this.slew.end) {
      // Kept: a late sample (interleaved) may still describe an instant during this slew.
      this.endedSlew = this.slew;
      this.slew = undefined;
      this.actions.push({ type: 'frequency', ppm: this.freq * 1e6 });
    }
    this.leapTick(now);
  }

  /** Leap second timers (src/leap/leap-controller.ts): applies the leap as leapsecmode says. */
  private leapTick(now: Instant): void {
    this.leapCtl.start(now);
    const kernelBefore = this.leapCtl.kernelLeap();
    const a = this.leapCtl.handleTimeout(now);
    if (a?.kind === 'step') {
      this.smoother?.reset(now); // as chrony: a clock step resets smoothing
      this.actions.push({ type: 'step', seconds: a.seconds });
      if (this.lastUpdate !== undefined) this.lastUpdate = addSeconds(this.lastUpdate, a.seconds);
      const sl = this.slew;
      if (sl) this.slew = { ...sl, start: addSeconds(sl.start, a.seconds), end: addSeconds(sl.end, a.seconds) };
    } else if (a?.kind === 'slew') {
      // The virtual timescale moves at once; the clock follows at the maximum slew rate
      // (chrony: 1 s in 12 s on Linux). Sample offsets stay valid: UTC moved with it.
      const r = this.remaining(now);
      const vnow = addSeconds(now, r);
      this.frames.push({
        at: now,
        atVirtual: vnow,
        slewBefore: this.slew ?? this.endedSlew,
        freqBefore: this.freq,
        dOffset: 0,
        dFreq: 0,
      });
      if (this.frames.length > MAX_FRAME_CHANGES) this.frames.shift();
      this.smoother?.clockCorrected(vnow, a.seconds, 0, this.ourSkew);
      this.smoother?.leap(vnow, a.sign);
      const r0 = r + a.seconds;
      const rate = Math.sign(r0) * this.maxSlewRate;
      this.endedSlew = undefined;
      this.slew =
        r0 === 0
          ? undefined
          : { start: now, r0, rate, end: addSeconds(now, (Math.abs(r0) / this.maxSlewRate) * (1 + this.freq + rate)) };
      this.actions.push({ type: 'frequency', ppm: (this.freq + (this.slew?.rate ?? 0)) * 1e6 });
    }
    if (this.leapCtl.kernelLeap() !== kernelBefore) this.pushStatus(now);
  }

  pollClockAction(): ClockAction | undefined {
    return this.actions.shift();
  }

  /**
   * Places a measurement (cooked time t, offset θ) in the current virtual timescale. A sample
   * may be older than the last updates (interleaved samples describe the previous exchange):
   * it is first placed in the timescale of its own time, then moved by every later change.
   */
  private toVirtual(t: Instant, offset: number): { time: Instant; offset: number } {
    const i = this.firstFrameAfter(t);
    const first = this.frames[i];
    const r = first
      ? this.remainingWith(t, first.slewBefore, first.freqBefore)
      : this.remainingWith(t, this.slew ?? this.endedSlew, this.freq);
    let tv = addSeconds(t, r);
    let off = offset - r;
    for (let k = i; k < this.frames.length; k++) {
      const f = this.frames[k]!;
      const shift = f.dOffset + f.dFreq * diffSeconds(tv, f.atVirtual);
      off -= shift;
      tv = addSeconds(tv, shift);
    }
    return { time: tv, offset: off };
  }

  /** Index of the first frame change made at or after cooked instant t (length if none). */
  private firstFrameAfter(t: Instant): number {
    let i = this.frames.length;
    while (i > 0 && this.frames[i - 1]!.at >= t) i--;
    return i;
  }

  /** Extra rate (s/s) a slew gave the clock at cooked instant t (0 if none). */
  private slewRateAt(t: Instant): number {
    const i = this.firstFrameAfter(t);
    const sl = i < this.frames.length ? this.frames[i]!.slewBefore : (this.slew ?? this.endedSlew);
    return sl && t >= sl.start && t < sl.end ? sl.rate : 0;
  }

  /** Offset correction still to be slewed at cooked instant t (positive: clock is slow). */
  remaining(t: Instant): number {
    return this.remainingWith(t, this.slew, this.freq);
  }

  private remainingWith(t: Instant, sl: Slew | undefined, freq: number): number {
    if (!sl) return 0;
    if (t >= sl.end) return 0;
    const el = Math.max(0, diffSeconds(t, sl.start)) / (1 + freq + sl.rate);
    const r = sl.r0 - sl.rate * el;
    return Math.sign(r) === Math.sign(sl.r0) ? r : 0;
  }

  // ---- selection and servo -------------------------------------------------------------------

  update(now: Instant): void {
    this.handleTimeout(now);
    const vnow = addSeconds(now, this.remaining(now));
    const cands: Candidate[] = [];
    const selectable = this.selectableIds();
    for (const s of this.sources.values()) {
      const d = selectable.has(s.id) ? s.stats.selectionData(vnow) : undefined;
      cands.push({
        id: s.id,
        opts: s.opts,
        usable: d !== undefined,
        offset: d?.offset ?? 0,
        rootDistance: d?.rootDistance ?? Infinity,
        stdDev: d?.stdDev ?? 0,
        stratum: d?.stratum ?? 16,
      });
    }
    // Sources that may still answer (never heard from, not known unreachable) count as voters
    // for the majority: selecting from the first few answers could follow falsetickers.
    let pending = 0;
    for (const s of this.sources.values()) {
      if (!s.opts.noselect && s.reachable !== false && !s.stats.estimate) pending++;
    }
    const res = selectSources(cands, this.sel, this.selectedId, pending);
    for (const s of this.sources.values()) s.state = res.states.get(s.id) ?? '?';
    this.lastReason = res.reason;
    if (!res.selected) {
      this.selectedId = undefined;
      // As chrony: only a lost majority drops the reference; otherwise it is kept and ages.
      if (res.unsynchronise || !this.synced) this.setUnsynchronised(now);
      return;
    }
    this.selectedId = res.selected;
    const selected = this.sources.get(res.selected)!;
    if (!selected.fresh) return;

    // Combine: offsets weighted by 1/distance, frequencies by 1/skew².
    let wo = 0;
    let so = 0;
    let wf = 0;
    let sf = 0;
    let sdSum = 0;
    const leapVotes = [0, 0, 0, 0];
    for (const id of res.combined) {
      const s = this.sources.get(id)!;
      const d = s.stats.selectionData(vnow)!;
      const e = s.stats.estimate!;
      const w = 1 / Math.max(d.rootDistance, 1e-9);
      wo += w;
      so += w * d.offset;
      sdSum += w * e.offsetSd;
      const fw = 1 / Math.max(e.skew * e.skew, 1e-24);
      wf += fw;
      sf += fw * e.frequency;
      leapVotes[d.leap]!++;
      s.fresh = false;
    }
    const offset = so / wo;
    const offsetSd = sdSum / wo;
    const resFreq = sf / wf;
    const skew = Math.sqrt(1 / wf);
    const selData = selected.stats.selectionData(vnow)!;
    let leap: LeapIndicator = 0;
    if (leapVotes[1]! * 2 > res.combined.length) leap = 1;
    else if (leapVotes[2]! * 2 > res.combined.length) leap = 2;

    if (this.maxChange && !this.maxChange.accept(offset, this.updates)) {
      this.lastReason = `offset ${offset.toExponential(3)} s beyond maxchange, update ignored`;
      return;
    }
    const poll = selected.stats.newest?.poll;
    this.servo(now, vnow, offset, offsetSd, resFreq, skew, poll !== undefined ? 2 ** poll : 0);

    this.refStratum = selData.stratum;
    this.refId = selected.opts.refId ?? 0;
    this.refName = selected.opts.name ?? selected.id;
    this.refRootDelay = selData.rootDelay;
    this.refRootDispersion = selData.rootDispersion + selData.stdDev;
    this.leapCtl.setVote(leap, now);
    this.synced = true;
    this.localGate?.noteSynced(true, now);
    this.pushStatus(now);
  }

  private servo(
    now: Instant,
    vnow: Instant,
    offset: number,
    offsetSd: number,
    resFreq: number,
    skew: number,
    pollInterval: number,
  ): void {
    const interval = this.lastUpdate !== undefined ? Math.max(0, diffSeconds(now, this.lastUpdate)) : 0;
    if (this.lastUpdate !== undefined) this.updateInterval = interval;

    const fu = frequencyUpdate(resFreq, skew, this.ourSkew, this.maxUpdateSkew);
    const maxDrift = (this.opts.maxdrift ?? 500000) * 1e-6;
    fu.dFreq = Math.min(maxDrift, Math.max(-maxDrift, this.freq + fu.dFreq)) - this.freq;
    // What is left of the slew in progress, at the rate it ran (before the frequency changes).
    const rNow = this.remaining(now);
    this.frames.push({
      at: now,
      atVirtual: vnow,
      slewBefore: this.slew ?? this.endedSlew,
      freqBefore: this.freq,
      dOffset: offset,
      dFreq: fu.dFreq,
    });
    if (this.frames.length > MAX_FRAME_CHANGES) this.frames.shift();
    this.freq += fu.dFreq;
    this.ourSkew = Math.max(fu.skew, 1e-12);
    this.residualFreq = resFreq - fu.dFreq;

    for (const s of this.sources.values()) s.stats.applyCorrection(vnow, offset, fu.dFreq);
    this.smoother?.clockCorrected(addSeconds(vnow, offset), offset, fu.dFreq, this.ourSkew);
    let r0 = rNow + offset;
    this.updates++;

    const ms = this.opts.makestep;
    let stepped = 0;
    if (ms && (ms.limit < 0 || this.updates - this.updatesAtJump <= ms.limit) && Math.abs(r0) > ms.threshold) {
      stepped = r0;
      this.actions.push({ type: 'step', seconds: r0 });
      this.smoother?.reset(now);
      r0 = 0;
    }
    if (r0 !== 0 && this.opts.correction === 'instant') {
      this.actions.push({ type: 'offset', seconds: r0 });
      stepped += r0;
      r0 = 0;
    }
    const after = stepped !== 0 ? addSeconds(now, stepped) : now;
    this.slew = undefined;
    this.endedSlew = undefined; // recorded in the frame
    if (r0 !== 0) {
      // Updates can come close together (several sources answering at once): the correction
      // time scales with the longer of the update and the poll interval.
      const plan = slewPlan(r0, offsetSd, Math.max(interval, pollInterval), this.corrTimeRatio, this.maxSlewRate);
      if (plan.duration > 0) {
        this.slew = {
          start: after,
          r0,
          rate: plan.rate,
          end: addSeconds(after, plan.duration * (1 + this.freq + plan.rate)),
        };
      }
    }
    this.actions.push({ type: 'frequency', ppm: (this.freq + (this.slew?.rate ?? 0)) * 1e6 });

    this.lastUpdate = after;
    this.lastOffset = offset;
    this.lastOffsetSd = offsetSd;
    // As chrony's reference.c: follow the square of the last offset while offsets shrink (the
    // start-up correction must not linger in "RMS offset"), then a 10 % moving average.
    const sq = offset * offset;
    if (this.meanSquareMoving) this.meanSquareOffset += 0.1 * (sq - this.meanSquareOffset);
    else {
      if (this.meanSquareOffset > 0 && this.meanSquareOffset < sq) this.meanSquareMoving = true;
      this.meanSquareOffset = sq;
    }
  }

  /** Steps the clock by the correction still being slewed (chronyc makestep). */
  makestep(now: Instant): number {
    const r = this.remaining(now);
    if (r !== 0) this.smoother?.reset(now);
    // The virtual timescale does not move; the frame keeps the slew for samples taken before.
    this.frames.push({
      at: now,
      atVirtual: addSeconds(now, r),
      slewBefore: this.slew ?? this.endedSlew,
      freqBefore: this.freq,
      dOffset: 0,
      dFreq: 0,
    });
    if (this.frames.length > MAX_FRAME_CHANGES) this.frames.shift();
    this.slew = undefined;
    this.endedSlew = undefined;
    if (r !== 0) {
      this.actions.push({ type: 'step', seconds: r });
      if (this.lastUpdate !== undefined) this.lastUpdate = addSeconds(this.lastUpdate, r);
    }
    this.actions.push({ type: 'frequency', ppm: this.freq * 1e6 });
    return r;
  }

  /** chrony's REF_SetUnsynchronised: the reference is dropped (LI=3, stratum 16). */
  private setUnsynchronised(now: Instant): void {
    this.localGate?.noteSynced(false, now);
    if (!this.synced) return;
    this.synced = false;
    this.pushStatus(now);
  }

  private pushStatus(now: Instant): void {
    const ref = this.reference(now);
    this.actions.push({
      type: 'status',
      synchronized: this.synced,
      leap: this.synced || this.opts.localStratum ? this.leapCtl.kernelLeap() : 3,
      maxErrorS: this.synced ? ref.rootDelay / 2 + ref.rootDispersion : 16,
      estErrorS: this.synced ? Math.sqrt(this.meanSquareOffset) : 16,
    });
  }

  // ---- reports -------------------------------------------------------------------------------

  get synchronized(): boolean {
    return this.synced;
  }

  get selected(): string | undefined {
    return this.selectedId;
  }

  /** Why the last selection failed ('' if it did not). */
  get selectionFailure(): string {
    return this.lastReason;
  }

  /** Base frequency correction, ppm (what a drift file stores). */
  get frequencyPpm(): number {
    return this.freq * 1e6;
  }

  get skewPpm(): number {
    return this.ourSkew * 1e6;
  }

  private rootDispersionAt(now: Instant): number {
    if (this.lastUpdate === undefined) return 16;
    const el = Math.max(0, diffSeconds(now, this.lastUpdate));
    const rate = this.ourSkew + Math.abs(this.residualFreq) + this.maxClockError; // chrony's rule
    return this.refRootDispersion + el * rate + Math.abs(this.remaining(now));
  }

  /** The reference state the server advertises; with smoothtime, how to smooth served time. */
  reference(now: Instant): ReferenceState {
    const ref = this.baseReference(now);
    if (!this.smoother) return ref;
    // Served = virtual − O (chrony serves its cooked time plus the smoothing offset).
    const r = this.remaining(now);
    const smoothOffset = this.smoother.offsetAt(addSeconds(now, r)) - r;
    // chrony hides the leap from clients of a smearing server (leapsecmode slew).
    const hide = this.opts.leap?.mode === 'slew' && (ref.leap === 1 || ref.leap === 2);
    return { ...ref, leap: hide ? 0 : ref.leap, smoothOffset };
  }

  /** smoothtime report (chronyc smoothing), null when smoothing is not configured. */
  smoothing(now: Instant): ReturnType<TimeSmoother['report']> | null {
    return this.smoother ? this.smoother.report(addSeconds(now, this.remaining(now))) : null;
  }

  private baseReference(now: Instant): ReferenceState {
    const local = this.opts.localStratum;
    const dist = this.synced ? this.refRootDelay / 2 + this.rootDispersionAt(now) : Infinity;
    if (local && this.localGate!.active(now, this.synced, dist, this.lastUpdate)) {
      return {
        synchronized: true,
        leap: this.leapCtl.announced(), // a reference with a leap table announces it
        stratum: local.stratum,
        refId: REFID_LOCL,
        refTime: now,
        rootDelay: 0,
        rootDispersion: 0,
        precision: this.precision,
      };
    }
    if (!this.synced) {
      return {
        synchronized: false,
        leap: 3,
        stratum: 16,
        refId: 0,
        refTime: this.lastUpdate ?? 0n,
        rootDelay: 0,
        rootDispersion: 0,
        precision: this.precision,
      };
    }
    return {
      synchronized: true,
      leap: this.leapCtl.announced(),
      stratum: Math.min(this.refStratum + 1, 16),
      refId: this.refId,
      refTime: this.lastUpdate!,
      rootDelay: this.refRootDelay,
      rootDispersion: this.rootDispersionAt(now),
      precision: this.precision,
    };
  }

  tracking(now: Instant): TrackingReport {
    const ref = this.reference(now);
    const leapStatus: LeapStatus = !ref.synchronized
      ? 'Not synchronised'
      : ref.leap === 1
        ? 'Insert second'
        : ref.leap === 2
          ? 'Delete second'
          : 'Normal';
    const isLocal =
      ref.refId === REFID_LOCL &&
      this.opts.localStratum !== undefined &&
      ref.synchronized &&
      ref.stratum === this.opts.localStratum.stratum &&
      (!this.synced || ref.rootDelay === 0);
    return {
      refId: ref.refId,
      refName: isLocal ? '' : this.synced ? this.refName : '',
      stratum: ref.synchronized ? ref.stratum : 0,
      // A local reference is updated continuously, as chronyd shows it.
      refTimeNs: String(isLocal ? ref.refTime : (this.lastUpdate ?? 0n)),
      systemTimeOffset: this.remaining(now),
      lastOffset: this.lastOffset,
      rmsOffset: Math.sqrt(this.meanSquareOffset),
      lastOffsetSd: this.lastOffsetSd,
      frequencyPpm: -this.freq * 1e6,
      residualFreqPpm: this.residualFreq * 1e6,
      skewPpm: this.ourSkew * 1e6,
      rootDelay: ref.rootDelay,
      rootDispersion: ref.rootDispersion,
      updateInterval: this.updateInterval,
      leapStatus,
    };
  }

  sourceState(id: string): SelectState | undefined {
    return this.sources.get(id)?.state;
  }

  lastSample(id: string): LastSampleInfo | undefined {
    const s = this.sources.get(id);
    if (!s?.last) return undefined;
    // adjustedOffset follows the rewritten history of the newest stored sample.
    const newest = s.stats.newest;
    return { ...s.last, adjustedOffset: newest ? newest.offset : s.last.adjustedOffset };
  }

  /** Selection data of a source at `now` (θ sign), for reports and tests. */
  sourceEstimate(id: string, now: Instant): { offset: number; rootDistance: number } | undefined {
    const s = this.sources.get(id);
    if (!s) return undefined;
    const d = s.stats.selectionData(addSeconds(now, this.remaining(now)));
    return d ? { offset: d.offset, rootDistance: d.rootDistance } : undefined;
  }

  /** chronyc sourcestats figures (chrony signs: offset = local − source). */
  sourceStats(id: string, now: Instant): Omit<SourceStatsReport, 'name' | 'address'> | undefined {
    const s = this.sources.get(id);
    if (!s) return undefined;
    const e = s.stats.estimate;
    if (!e) return { np: 0, nr: 0, span: 0, frequencyPpm: 0, freqSkewPpm: 0, offset: 0, stdDev: 0 };
    const off = s.stats.predictOffset(addSeconds(now, this.remaining(now))) ?? 0;
    return {
      np: e.np,
      nr: e.nr,
      span: e.span,
      frequencyPpm: -e.frequency * 1e6,
      freqSkewPpm: e.skew * 1e6,
      offset: -off,
      stdDev: e.stdDev,
    };
  }

  /** Estimator internals of a source (chrony's statistics.log columns), for diagnosis. */
  sourceDiagnostics(id: string): SourceDiagnostics | undefined {
    const s = this.sources.get(id);
    const e = s?.stats.estimate;
    if (!s || !e) return undefined;
    return {
      offsetSd: e.offsetSd,
      stress: s.stats.stress,
      bestStart: s.stats.droppedByLastFit,
      asymmetry: s.stats.asymmetry,
      asymmetryRun: s.stats.asymmetryRun,
      fits: s.stats.fits,
    };
  }

  rejectedSamples(id: string): number {
    return this.sources.get(id)?.rejected ?? 0;
  }
}
