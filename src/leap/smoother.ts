/**
 * Server-side time smoothing (chrony's `smoothtime`), sans-IO.
 *
 * The smoother keeps an offset O = local time − served time that absorbs the corrections made to
 * the local timescale (steps of the servo's virtual time, frequency changes, leap seconds) and
 * gives them to the clients slowly: O's rate of change (the smoothing frequency F) moves at most
 * `maxWander` per second and never beyond `maxFreq`, in three stages (wander towards the limit,
 * hold, wander back to zero) whose integral removes O exactly. Served time = local − O is
 * continuous with a continuous rate. With `leapOnly` only leap seconds are absorbed: a leap
 * smear of fixed length sqrt(4 / maxWander) (e.g. 62500 s for 0.001024 ppm/s).
 *
 * The stage arithmetic follows chrony's smooth.c (facts and formulas, own code). chrony's
 * smooth_offset is served − cooked, i.e. −O here; its frequency has the sign of F.
 */
import type { Instant } from '../time/ntp-time.js';
import { addSeconds, diffSeconds } from '../time/ntp-time.js';

export interface SmoothOptions {
  maxFreqPpm: number;
  maxWanderPpmPerS: number;
  leapOnly: boolean;
}

/** chrony: smoothing starts only when the clock's skew / max wander is below this. */
export const UNLOCK_SKEW_WANDER_RATIO = 10000;

interface Stage {
  wander: number;
  length: number;
}

export interface SmoothingReport {
  active: boolean;
  leapOnly: boolean;
  /** O (local − served), seconds. */
  offset: number;
  /** dO/dt, ppm. */
  freqPpm: number;
  wanderPpmPerS: number;
  lastUpdateAgo: number;
  remainingTime: number;
}

export class TimeSmoother {
  private readonly maxFreq: number; // s/s
  private readonly maxWander: number; // s/s²
  private locked = true;
  /** chrony's smooth_offset (served − local) and frequency at lastUpdate. */
  private s = 0;
  private f = 0;
  private lastUpdate: Instant | null = null;
  private stages: Stage[] = [
    { wander: 0, length: 0 },
    { wander: 0, length: 0 },
    { wander: 0, length: 0 },
  ];

  constructor(readonly opts: SmoothOptions) {
    if (!(opts.maxFreqPpm > 0) || !(opts.maxWanderPpmPerS > 0)) throw new RangeError('smoothtime limits must be > 0');
    this.maxFreq = opts.maxFreqPpm * 1e-6;
    this.maxWander = opts.maxWanderPpmPerS * 1e-6;
  }

  get active(): boolean {
    return !this.locked;
  }

  /** served − local and its rate at `now`, with the wander of the current stage. */
  private evaluate(now: Instant): { s: number; f: number; w: number } {
    if (this.lastUpdate === null) return { s: this.s, f: this.f, w: 0 };
    let el = diffSeconds(now, this.lastUpdate);
    let s = this.s;
    let f = this.f;
    let w = 0;
    for (const st of this.stages) {
      if (el <= 0) break;
      const len = Math.min(st.length, el);
      w = st.wander;
      s -= (len * (2 * f + w * len)) / 2;
      f += w * len;
      el -= len;
    }
    if (el > 0) {
      w = 0;
      s -= el * f;
    }
    return { s, f, w };
  }

  /** O = local − served at `now`, seconds (0 while inactive and nothing accumulated). */
  offsetAt(now: Instant): number {
    const s = this.evaluate(now).s;
    return s === 0 ? 0 : -s;
  }

  /** The time to serve for local time `now`. */
  serve(now: Instant): Instant {
    return addSeconds(now, -this.offsetAt(now));
  }

  private planStages(): void {
    const mw = this.maxWander;
    const s1 = this.s / mw;
    const s2 = (this.f * this.f) / (2 * mw * mw);
    // Lengths of stages 1 and 3 without the frequency limit, for both directions of stage 1;
    // keep the direction with non-negative lengths (or the smaller numerical error).
    const cand = [-1, 1].map((dir) => {
      let err = 0;
      let s = dir * s1 + s2;
      if (s < 0) {
        err += -s;
        s = 0;
      }
      const l3 = Math.sqrt(s);
      let l1 = l3 - (dir * this.f) / mw;
      if (l1 < 0) {
        err += l1 * l1;
        l1 = 0;
      }
      return { dir, l1, l3, err };
    });
    const c = cand[0]!.err < cand[1]!.err ? cand[0]! : cand[1]!;
    let { l1, l3 } = c;
    const dir = c.dir;
    let l2 = 0;
    const over = dir * this.f + l1 * mw - this.maxFreq;
    if (over > 0) {
      // The frequency limit is reached: shorten stages 1 and 3 and hold the maximum in stage 2.
      let lc = over / mw;
      let f2 = this.maxFreq;
      if (lc > l1) {
        lc = l1;
        f2 = dir * this.f;
      }
      l2 = lc * (2 + over / f2);
      l1 -= lc;
      l3 -= lc;
    }
    this.stages = [
      { wander: dir * mw, length: l1 },
      { wander: 0, length: l2 },
      { wander: -dir * mw, length: l3 },
    ];
  }

  /**
   * Adds a correction at `now`: chrony's doffset (positive: local time moved back by it) and
   * dfreq (positive: local time now runs slower by it), both seconds / s/s.
   */
  private accumulate(now: Instant, doffset: number, dfreq: number): void {
    const e = this.evaluate(now);
    this.s = e.s + doffset;
    this.f = (e.f - dfreq) / (1 - dfreq);
    this.lastUpdate = now;
    this.planStages();
  }

  /** Starts smoothing (chrony activates on the first update once the clock is stable). */
  activate(now: Instant): void {
    if (!this.locked) return;
    this.locked = false;
    this.lastUpdate = now;
  }

  /**
   * The servo corrected the local timescale at `now`: it moved forward by `stepS` seconds and
   * its rate changed by `dFreq` (s/s, positive faster). `skew` is the clock's frequency
   * uncertainty (s/s), which decides when smoothing may start.
   */
  clockCorrected(now: Instant, stepS: number, dFreq: number, skew: number): void {
    if (this.locked) {
      if (this.opts.leapOnly || skew / this.maxWander < UNLOCK_SKEW_WANDER_RATIO) this.activate(now);
      return;
    }
    if (this.opts.leapOnly) this.accumulate(now, 0, 0);
    else this.accumulate(now, -stepS, -dFreq);
  }

  /** A leap second at `now`: +1 inserted (local time went back 1 s), −1 deleted. */
  leap(now: Instant, sign: number): void {
    if (!this.opts.leapOnly) {
      // Without leaponly the leap reaches the smoother as a normal correction (clockCorrected).
      return;
    }
    if (this.locked) this.activate(now);
    this.accumulate(now, sign, 0);
  }

  /** chrony resets smoothing on every clock step. */
  reset(now: Instant): void {
    this.s = 0;
    this.f = 0;
    this.lastUpdate = now;
    for (const st of this.stages) st.wander = st.length = 0;
  }

  report(now: Instant): SmoothingReport {
    const e = this.evaluate(now);
    const el = this.lastUpdate !== null ? diffSeconds(now, this.lastUpdate) : 0;
    const total = this.stages.reduce((a, st) => a + st.length, 0);
    const on = !this.locked && el >= 0;
    return {
      active: !this.locked,
      leapOnly: this.opts.leapOnly,
      offset: -e.s,
      freqPpm: e.f * 1e6,
      wanderPpmPerS: e.w * 1e6,
      lastUpdateAgo: on ? el : 0,
      remainingTime: on ? Math.max(0, total - el) : 0,
    };
  }
}
