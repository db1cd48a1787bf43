/**
 * NTP response rate limiting per client address (chrony's `ratelimit`), sans-IO.
 *
 * Each address has a token bucket holding up to `burst` answers, refilled at one answer per
 * 2^interval seconds; a new address starts full. A request that finds a token is answered. One
 * that does not is answered anyway with probability 2^-leak (so a spoofed flood cannot silence a
 * real client completely; the bucket is then emptied), else gets a KoD RATE answer with
 * probability 2^-kod when kod > 0, else is dropped. The table is bounded (least recently seen
 * address evicted), so memory stays fixed under any flood.
 *
 * Unlike chrony, the bucket is kept in floating point (chrony uses 16-bit fixed point counters)
 * and there is no detection of clients that poll faster when not answered.
 */
import type { Instant } from '../time/ntp-time.js';
import { diffSeconds } from '../time/ntp-time.js';

export interface RateLimitOptions {
  interval: number; // log2 s, -19..12
  burst: number; // 1..255
  leak: number; // 1..4
  kod: number; // 0..4, 0 = no KoD
  /** Maximum number of addresses tracked. */
  maxClients: number;
}

export type RateDecision = 'answer' | 'drop' | 'kod';

interface Bucket {
  tokens: number;
  last: Instant;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly refillPerSecond: number;
  private dropped = 0;

  constructor(private readonly opts: RateLimitOptions) {
    if (!(opts.maxClients >= 1)) throw new RangeError('maxClients must be >= 1');
    if (!(opts.burst >= 1)) throw new RangeError('burst must be >= 1');
    this.refillPerSecond = 2 ** -opts.interval;
  }

  /** Decides what to do with a request from `address` received at `now`; `random()` in [0, 1). */
  check(address: string, now: Instant, random: () => number): RateDecision {
    let b = this.buckets.get(address);
    if (b) {
      this.buckets.delete(address); // re-inserted below: Map order is the LRU order
      const elapsed = Math.max(0, diffSeconds(now, b.last));
      b.tokens = Math.min(this.opts.burst, b.tokens + elapsed * this.refillPerSecond);
      b.last = now;
    } else {
      while (this.buckets.size >= this.opts.maxClients) {
        this.buckets.delete(this.buckets.keys().next().value as string);
      }
      b = { tokens: this.opts.burst, last: now };
    }
    this.buckets.set(address, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'answer';
    }
    if (random() < 2 ** -this.opts.leak) {
      b.tokens = 0;
      return 'answer';
    }
    this.dropped++;
    if (this.opts.kod > 0 && random() < 2 ** -this.opts.kod) return 'kod';
    return 'drop';
  }

  /** Requests refused so far (dropped or answered with KoD). */
  get limited(): number {
    return this.dropped;
  }

  get size(): number {
    return this.buckets.size;
  }
}
