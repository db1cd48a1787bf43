/**
 * The table of leap seconds (from leap-seconds.list or a TZif right/ zone): for an instant, the
 * TAI−UTC offset and the leap, if any, at the end of that UTC day.
 *
 * Instants are Unix (POSIX) time: days of exactly 86400 s. A leap second happens at the end of a
 * UTC day: an inserted second is 23:59:60 (POSIX time repeats 23:59:59, i.e. the clock goes back
 * one second at midnight), a deleted second skips 23:59:59 (forward one second at 23:59:59).
 */
import type { Instant } from '../time/ntp-time.js';
import { NS_PER_S } from '../time/ntp-time.js';

export const DAY_S = 86400n;

export interface LeapEntry {
  /** Unix seconds (a UTC midnight) from which TAI−UTC is `taiUtc`. */
  at: bigint;
  taiUtc: number;
}

export interface PendingLeap {
  /** The UTC midnight that ends the leap day (Unix seconds). */
  midnight: bigint;
  /** +1 inserted second, −1 deleted second. */
  sign: 1 | -1;
  /** TAI−UTC before the leap. */
  taiUtcBefore: number;
}

/** Unix seconds of the midnight that ends the UTC day containing `unixS`. */
export function endOfUtcDay(unixS: bigint): bigint {
  const day = unixS >= 0n ? unixS / DAY_S : (unixS - DAY_S + 1n) / DAY_S;
  return (day + 1n) * DAY_S;
}

/** chrony accepts a leap only on the last day of June or December. */
export function isLeapSecondDay(unixS: bigint): boolean {
  const d = new Date(Number(unixS) * 1000);
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  return (m === 5 && day === 30) || (m === 11 && day === 31);
}

export function instantToUnixSeconds(t: Instant): bigint {
  return t >= 0n ? t / NS_PER_S : (t - NS_PER_S + 1n) / NS_PER_S;
}

export class LeapSchedule {
  readonly entries: readonly LeapEntry[];

  /**
   * @param entries TAI−UTC changes in time order (each ±1 s at a UTC midnight).
   * @param expires Unix seconds after which the table says nothing (null: never).
   * @param source where the table came from (file name), for messages.
   */
  constructor(
    entries: LeapEntry[],
    readonly expires: bigint | null = null,
    readonly source = '',
  ) {
    for (let i = 1; i < entries.length; i++) {
      const a = entries[i - 1]!;
      const b = entries[i]!;
      if (b.at <= a.at || Math.abs(b.taiUtc - a.taiUtc) !== 1 || b.at % DAY_S !== 0n) {
        throw new RangeError(`${source || 'leap table'}: entry ${i} is not a ±1 s leap at a later UTC midnight`);
      }
    }
    this.entries = entries.map((e) => ({ ...e }));
  }

  /** The leaps themselves: each entry after the first. */
  leaps(): PendingLeap[] {
    const out: PendingLeap[] = [];
    for (let i = 1; i < this.entries.length; i++) {
      const a = this.entries[i - 1]!;
      const b = this.entries[i]!;
      out.push({ midnight: b.at, sign: b.taiUtc > a.taiUtc ? 1 : -1, taiUtcBefore: a.taiUtc });
    }
    return out;
  }

  /** TAI−UTC at Unix second `unixS` (0 before the table starts). */
  taiUtcAt(unixS: bigint): number {
    let v = 0;
    for (const e of this.entries) {
      if (e.at > unixS) break;
      v = e.taiUtc;
    }
    return v;
  }

  /** The leap at the end of the UTC day containing `t`, or null. */
  pendingAt(t: Instant): PendingLeap | null {
    const mid = endOfUtcDay(instantToUnixSeconds(t));
    for (let i = 1; i < this.entries.length; i++) {
      const b = this.entries[i]!;
      if (b.at === mid) {
        const a = this.entries[i - 1]!;
        return { midnight: mid, sign: b.taiUtc > a.taiUtc ? 1 : -1, taiUtcBefore: a.taiUtc };
      }
      if (b.at > mid) break;
    }
    return null;
  }

  /** Whether the table is past its expiry at `t`. */
  expiredAt(t: Instant): boolean {
    return this.expires !== null && instantToUnixSeconds(t) >= this.expires;
  }
}
