/**
 * One direction of a simulated network path: base delay plus a random jitter, optional loss and
 * an up/down schedule (true-time seconds since the start of the run).
 */
import type { Prng } from './prng.js';

export type JitterSpec =
  | { dist: 'exponential'; mean: number }
  | { dist: 'uniform'; max: number } // uniform in [0, max)
  | { dist: 'normal'; sd: number } // |N(0, sd)|
  | { dist: 'none' };

export interface PathSpec {
  baseDelay: number;
  jitter?: JitterSpec;
  /** Probability of losing a packet. */
  loss?: number;
  /** Intervals [from, to) (seconds since start) during which the path drops everything. */
  down?: [number, number][];
}

export class NetworkPath {
  constructor(
    private readonly spec: PathSpec,
    private readonly rng: Prng,
  ) {}

  /** Delay for a packet sent at `t` seconds since start, or undefined if it is lost. */
  delay(t: number): number | undefined {
    const s = this.spec;
    if (s.down && s.down.some(([a, b]) => t >= a && t < b)) return undefined;
    if (s.loss && this.rng.random() < s.loss) return undefined;
    let j = 0;
    const jit = s.jitter ?? { dist: 'none' };
    switch (jit.dist) {
      case 'exponential':
        j = this.rng.exponential(jit.mean);
        break;
      case 'uniform':
        j = this.rng.random() * jit.max;
        break;
      case 'normal':
        j = Math.abs(this.rng.normal() * jit.sd);
        break;
      case 'none':
        break;
    }
    return s.baseDelay + j;
  }
}
