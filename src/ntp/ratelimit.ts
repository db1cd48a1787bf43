/**
 * NTP response rate limiting per client address (chrony's `ratelimit`), sans-IO.
 *
 * Each address has a token bucket holding up to `burst` answers, refilled at one answer per
 * 2^interval seconds; a new address starts full. A request that finds a token is answered. One
 * that does not is answered anyway with probability 2^-leak (so a spoofed flood cannot silence a
 * real client completely; the bucket is then emptied), else gets a KoD RATE answer with
 * probability 2^-kod when kod > 0, else is dropped. The buckets live in the server's client table
 * (src/ntp/client-table.ts, one compact row per address, least recently seen evicted), so memory
 * stays fixed under any flood; this class is that table used for rate limiting alone.
 *
 * Unlike chrony, the bucket is kept in floating point (chrony uses 16-bit fixed point counters)
 * and there is no detection of clients that poll faster when not answered.
 */
import type { Instant } from '../time/ntp-time.js';
import { ClientTable, type RateDecision } from './client-table.js';

export type { RateDecision } from './client-table.js';

export interface RateLimitOptions {
  interval: number; // log2 s, -19..12
  burst: number; // 1..255
  leak: number; // 1..4
  kod: number; // 0..4, 0 = no KoD
  /** Maximum number of addresses tracked. */
  maxClients: number;
}

export class RateLimiter {
  private readonly table: ClientTable;
  private dropped = 0;

  constructor(private readonly opts: RateLimitOptions) {
    if (!(opts.maxClients >= 1)) throw new RangeError('maxClients must be >= 1');
    if (!(opts.burst >= 1)) throw new RangeError('burst must be >= 1');
    this.table = new ClientTable(opts.maxClients);
  }

  /** Decides what to do with a request from `address` received at `now`; `random()` in [0, 1). */
  check(address: string, now: Instant, random: () => number): RateDecision {
    const slot = this.table.touch(address, now, this.opts.burst);
    const d = this.table.limitRate(slot, this.opts, random);
    if (d !== 'answer') this.dropped++;
    return d;
  }

  /** Requests refused so far (dropped or answered with KoD). */
  get limited(): number {
    return this.dropped;
  }

  get size(): number {
    return this.table.size;
  }
}
