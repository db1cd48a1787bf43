/**
 * What the Linux kernel does with STA_INS / STA_DEL, for clocks Rubidium corrects in software
 * (the `-x` virtual clock, simulated clocks) under `leapsecmode system`: once the status says
 * insert, the clock goes back one second when it reaches the next UTC midnight (23:59:60 reads
 * as a repeated 23:59:59); for delete it goes forward one second at 23:59:59. Then it waits
 * (kernel TIME_WAIT) until the status is cleared before it would do it again.
 */
import type { Instant } from '../time/ntp-time.js';
import { NS_PER_S } from '../time/ntp-time.js';
import type { LeapIndicator } from '../clock/clock.js';
import { endOfUtcDay, instantToUnixSeconds } from './leap-schedule.js';

export class KernelLeapEmulator {
  private sign: 0 | 1 | -1 = 0;
  /** Local instant at which the clock jumps, null when disarmed or done. */
  private at: Instant | null = null;
  private done = false;

  /** The status word's leap bits, at local time `now`. */
  setStatus(leap: LeapIndicator, now: Instant): void {
    const sign = leap === 1 ? 1 : leap === 2 ? -1 : 0;
    if (sign === 0) {
      this.sign = 0;
      this.at = null;
      this.done = false;
      return;
    }
    if (sign === this.sign && (this.at !== null || this.done)) return;
    this.sign = sign;
    this.done = false;
    const midnight = endOfUtcDay(instantToUnixSeconds(now)) * NS_PER_S;
    this.at = sign > 0 ? midnight : midnight - NS_PER_S;
  }

  /**
   * Given the clock's reading `t` (before the leap is applied), the seconds the clock jumps now
   * (−1 insert, +1 delete) the first time it reaches the leap, else 0.
   */
  crossed(t: Instant): number {
    if (this.at === null || this.done || t < this.at) return 0;
    this.done = true;
    this.at = null;
    return -this.sign;
  }
}
