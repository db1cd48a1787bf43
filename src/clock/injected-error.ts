/**
 * A known, deliberate clock error for tests and benchmarks (`rubidiumd --inject-error`): the
 * virtual clock reads host time plus err(t), and a benchmark that knows the same spec computes
 * err(t) to know the truth a daemon should be serving.
 *
 *   err(t) = offset + ppm·1e-6·(t − epoch) + wander term + Σ steps that happened before t
 *
 * The wander term is a random walk of frequency, as in chrony's simulations: every second after
 * the epoch the frequency changes by `wander` × N(0,1), drawn from a Prng seeded by `seed`, so two
 * processes with the same spec agree on err(t) to the nanosecond. Unlike the simulator's
 * oscillator this can be queried in any order (kernel timestamps arrive slightly out of order).
 */
import type { Instant } from '../time/ntp-time.js';
import { diffSeconds, NS_PER_S } from '../time/ntp-time.js';
import { Prng } from '../sim/prng.js';

export interface InjectedErrorSpec {
  /** Initial offset, seconds (positive: the clock is ahead). */
  offset: number;
  /** Frequency error, ppm (positive: the clock runs fast). */
  ppm: number;
  /** Random-walk frequency wander per 1-s step (dimensionless, s/s), default 0. */
  wander?: number;
  seed?: number;
  /** Instant the model starts from (default: when the daemon starts). */
  epoch?: Instant;
  /** Extra steps of the clock: `offset` seconds added at `at` seconds after the epoch. */
  steps?: { at: number; offset: number }[];
}

/** Knots kept for the wander walk: 10^6 s (11.6 days); after that the frequency stops wandering. */
const MAX_KNOTS = 1_000_000;

export class InjectedError {
  readonly epoch: Instant;
  private readonly base: number; // s/s
  private readonly wander: number;
  private readonly prng: Prng;
  private readonly steps: { at: number; offset: number }[];
  /** phase[k] = wander part of the error at epoch + k s; freq[k] = its rate during second k. */
  private readonly phase: number[] = [0];
  private readonly freq: number[] = [0];

  constructor(
    readonly spec: InjectedErrorSpec,
    defaultEpoch: Instant,
  ) {
    this.epoch = spec.epoch ?? defaultEpoch;
    this.base = spec.ppm * 1e-6;
    this.wander = spec.wander ?? 0;
    this.prng = new Prng(spec.seed ?? 1);
    this.steps = [...(spec.steps ?? [])].sort((a, b) => a.at - b.at);
    if (this.wander !== 0) this.freq[0] = this.wander * this.prng.normal();
  }

  /** err(t) in seconds. */
  errorAt(t: Instant): number {
    const dt = diffSeconds(t, this.epoch);
    let e = this.spec.offset + this.base * dt;
    if (this.wander !== 0 && dt > 0) e += this.wanderAt(t);
    for (const s of this.steps) if (dt >= s.at) e += s.offset;
    return e;
  }

  /** Frequency error at t, s/s (for reports). */
  frequencyAt(t: Instant): number {
    const k = this.knotIndex(t);
    return this.base + (this.wander !== 0 && k >= 0 ? this.freq[Math.min(k, this.freq.length - 1)]! : 0);
  }

  private knotIndex(t: Instant): number {
    const ns = t - this.epoch;
    if (ns < 0n) return -1;
    const k = ns / NS_PER_S;
    return k > BigInt(MAX_KNOTS) ? MAX_KNOTS : Number(k);
  }

  private wanderAt(t: Instant): number {
    const k = this.knotIndex(t);
    while (this.phase.length <= k && this.phase.length < MAX_KNOTS) {
      const i = this.phase.length;
      this.phase.push(this.phase[i - 1]! + this.freq[i - 1]!);
      this.freq.push(this.freq[i - 1]! + this.wander * this.prng.normal());
    }
    const i = Math.min(k, this.phase.length - 1);
    const knotT = this.epoch + BigInt(i) * NS_PER_S;
    return this.phase[i]! + this.freq[i]! * diffSeconds(t, knotT);
  }
}

/**
 * Parses `OFFSET[,PPM]` or `key=value,...` with keys offset, ppm, wander, seed, epoch (ns since
 * the Unix epoch) and step=AT:OFFSET (repeatable). Throws a message naming the bad part.
 */
export function parseInjectedError(text: string): InjectedErrorSpec {
  const parts = text.split(',').map((p) => p.trim());
  if (!parts.some((p) => p.includes('='))) {
    if (parts.length > 2) throw new Error(`expected OFFSET[,PPM], got '${text}'`);
    const offset = num(parts[0] ?? '', 'offset');
    const ppm = parts.length > 1 ? num(parts[1]!, 'ppm') : 0;
    return { offset, ppm };
  }
  const spec: InjectedErrorSpec = { offset: 0, ppm: 0 };
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new Error(`expected key=value, got '${p}'`);
    const key = p.slice(0, eq);
    const v = p.slice(eq + 1);
    switch (key) {
      case 'offset':
        spec.offset = num(v, key);
        break;
      case 'ppm':
        spec.ppm = num(v, key);
        break;
      case 'wander':
        spec.wander = num(v, key);
        break;
      case 'seed':
        if (!/^\d+$/.test(v)) throw new Error(`seed must be a non-negative integer, got '${v}'`);
        spec.seed = Number(v);
        break;
      case 'epoch':
        if (!/^\d+$/.test(v)) throw new Error(`epoch must be integer nanoseconds, got '${v}'`);
        spec.epoch = BigInt(v);
        break;
      case 'step': {
        const m = /^([^:]+):(.+)$/.exec(v);
        if (!m) throw new Error(`step must be AT:OFFSET, got '${v}'`);
        (spec.steps ??= []).push({ at: num(m[1]!, 'step time'), offset: num(m[2]!, 'step offset') });
        break;
      }
      default:
        throw new Error(`unknown key '${key}'`);
    }
  }
  return spec;
}

function num(v: string, what: string): number {
  const x = Number(v);
  if (v === '' || !Number.isFinite(x)) throw new Error(`${what} must be a number, got '${v}'`);
  return x;
}
