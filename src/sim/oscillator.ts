/**
 * A free-running oscillator: raw time as a function of true time. Its frequency error starts at
 * `freqPpm` and, as in chrony's simulation tests (clknetsim), performs a random walk: every
 * second it changes by `wander` × N(0,1) (wander is dimensionless, s/s per step of 1 s).
 * The phase (raw − true) starts at `initialOffset` seconds.
 *
 * Queries must come in non-decreasing true time (the simulator's clock only moves forward).
 */
import type { Instant } from '../time/ntp-time.js';
import { addSeconds, diffSeconds, NS_PER_S } from '../time/ntp-time.js';
import type { Prng } from './prng.js';

export interface OscillatorSpec {
  freqPpm?: number;
  wander?: number;
  initialOffset?: number;
}

export class Oscillator {
  private knotT: Instant; // true time of the current 1-s step
  private knotPhase: number; // raw − true at knotT, seconds
  private freq: number; // s/s during the current step
  private readonly wander: number;
  private lastQuery: Instant;

  constructor(
    spec: OscillatorSpec,
    start: Instant,
    private readonly rng: Prng,
  ) {
    this.knotT = start;
    this.knotPhase = spec.initialOffset ?? 0;
    this.freq = (spec.freqPpm ?? 0) * 1e-6;
    this.wander = spec.wander ?? 0;
    this.lastQuery = start;
  }

  private advance(t: Instant): void {
    if (t < this.lastQuery) throw new Error('oscillator queried backwards in time');
    this.lastQuery = t;
    while (t - this.knotT >= NS_PER_S) {
      this.knotPhase += this.freq;
      this.knotT += NS_PER_S;
      if (this.wander !== 0) this.freq += this.wander * this.rng.normal();
    }
  }

  /** Phase (raw − true) at true time t, seconds. */
  phase(t: Instant): number {
    this.advance(t);
    return this.knotPhase + this.freq * diffSeconds(t, this.knotT);
  }

  raw(t: Instant): Instant {
    return addSeconds(t, this.phase(t));
  }

  /** Current frequency error, s/s. */
  frequency(t: Instant): number {
    this.advance(t);
    return this.freq;
  }
}
