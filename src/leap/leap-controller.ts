/**
 * Leap second state machine (sans-IO), the facts of chrony's reference.c:
 *
 * - The leap comes from a majority of the selected sources' LI bits, or else from the leap
 *   table (leapseclist / leapsectz); either is accepted only on the last day of June or
 *   December (UTC), and is then announced (LI 1 or 2) for the rest of that day.
 * - The leap is applied at the end of the day, by `leapsecmode`:
 *   system: the kernel does it (status STA_INS/STA_DEL); nothing to do here but wait;
 *   step: step the clock −1 s at 00:00:00 (insert) or +1 s at 23:59:59 (delete);
 *   slew: start slewing the same correction at that instant (chrony: at the maximum slew rate);
 *   ignore: nothing; the servo corrects the 1 s error later from measurements.
 * - From that instant for 2 s the leap is "in progress": the server answers LI=3.
 * - No leap status change and no samples within 5 s of the leap (timestamps straddling it
 *   mix two timescales).
 * - The table is looked at again every 12 hours (a reference with no sources still learns it).
 */
import type { Instant } from '../time/ntp-time.js';
import { addSeconds, NS_PER_S } from '../time/ntp-time.js';
import type { LeapIndicator } from '../clock/clock.js';
import type { LeapSchedule } from './leap-schedule.js';
import { instantToUnixSeconds, isLeapSecondDay, endOfUtcDay } from './leap-schedule.js';

export type LeapSecMode = 'system' | 'step' | 'slew' | 'ignore';

export interface LeapOptions {
  mode: LeapSecMode;
  /** Leap table from leapseclist / leapsectz, if any. */
  schedule?: LeapSchedule | null;
}

/** A correction to make at the leap: seconds the clock must move (forward positive). */
export interface LeapAction {
  kind: 'step' | 'slew' | 'notify';
  seconds: number;
  /** +1 inserted, −1 deleted. */
  sign: 1 | -1;
}

const LEAP_CLOSE_S = 5;
const IN_PROGRESS_S = 2;
const CHECK_INTERVAL_S = 12n * 3600n;

export class LeapController {
  private readonly mode: LeapSecMode;
  private readonly schedule: LeapSchedule | null;
  private vote: LeapIndicator = 0;
  /** +1/−1 while a leap is armed for the end of the current day. */
  private leapSec: 0 | 1 | -1 = 0;
  /** UTC midnight (Unix s) of the armed or last leap, 0n if none. */
  private leapWhen = 0n;
  private startAt: Instant | null = null;
  private endAt: Instant | null = null;
  private inProgress = false;
  private nextCheck: Instant | null = null;
  private taiUtc = 0;

  constructor(opts: LeapOptions = { mode: 'system' }) {
    this.mode = opts.mode;
    this.schedule = opts.schedule ?? null;
  }

  /** True within 5 s of the armed or last leap (local time `t`). */
  isLeapClose(t: Instant): boolean {
    if (this.leapWhen === 0n) return false;
    const d = Number(t - this.leapWhen * NS_PER_S) / 1e9;
    return d >= -LEAP_CLOSE_S && d < LEAP_CLOSE_S;
  }

  /** The majority of the selected sources' LI (0, 1 or 2) from the latest update. */
  setVote(li: LeapIndicator, now: Instant): void {
    this.vote = li === 1 || li === 2 ? li : 0;
    this.evaluate(now);
  }

  private evaluate(now: Instant): void {
    const unix = instantToUnixSeconds(now);
    let want: 0 | 1 | -1 = this.vote === 1 ? 1 : this.vote === 2 ? -1 : 0;
    if (this.schedule) {
      const p = want === 0 ? this.schedule.pendingAt(now) : null;
      if (p) want = p.sign;
      this.taiUtc = this.schedule.taiUtcAt(unix);
    }
    if (want !== 0 && !isLeapSecondDay(unix)) want = 0;
    if (this.inProgress || this.isLeapClose(now)) return;
    if (want === this.leapSec) return;
    this.leapSec = want;
    if (want === 0) {
      this.startAt = null;
      return;
    }
    this.leapWhen = endOfUtcDay(unix);
    // Insert at 00:00:00, delete at 23:59:59; with the kernel doing it, wake half a second early.
    let at = this.leapWhen * NS_PER_S;
    if (want < 0) at -= NS_PER_S;
    if (this.mode === 'system') at -= NS_PER_S / 2n;
    this.startAt = at;
  }

  /** LI to announce (3 while the leap is in progress: chrony answers unsynchronised then). */
  announced(): LeapIndicator {
    if (this.inProgress) return 3;
    return this.leapSec === 1 ? 1 : this.leapSec === -1 ? 2 : 0;
  }

  /** LI for the kernel status word: the leap only in system mode (the kernel then does it). */
  kernelLeap(): LeapIndicator {
    // Kept set while the leap is in progress: the kernel acts at midnight, after our timer.
    return this.mode === 'system' ? (this.leapSec === 1 ? 1 : this.leapSec === -1 ? 2 : 0) : 0;
  }

  /** TAI−UTC from the table (0 if unknown). */
  get taiUtcOffset(): number {
    return this.taiUtc;
  }

  nextTimeout(): Instant | null {
    let t = this.nextCheck;
    for (const x of [this.startAt, this.endAt]) if (x !== null && (t === null || x < t)) t = x;
    return t;
  }

  /** Timers: table check, leap start and end. Returns the clock correction to make, if any. */
  handleTimeout(now: Instant): LeapAction | undefined {
    let action: LeapAction | undefined;
    if (this.startAt !== null && now >= this.startAt) {
      this.startAt = null;
      this.inProgress = true;
      this.endAt = addSeconds(now, IN_PROGRESS_S);
      const sign = this.leapSec === -1 ? -1 : 1;
      if (this.mode === 'step') action = { kind: 'step', seconds: -sign, sign };
      else if (this.mode === 'slew') action = { kind: 'slew', seconds: -sign, sign };
      else action = { kind: 'notify', seconds: 0, sign };
    } else if (this.endAt !== null && now >= this.endAt) {
      this.endAt = null;
      this.inProgress = false;
      if (this.schedule) this.taiUtc = this.schedule.taiUtcAt(instantToUnixSeconds(now));
      else if (this.taiUtc) this.taiUtc += this.leapSec;
      this.leapSec = 0;
    }
    if (this.schedule && (this.nextCheck === null || now >= this.nextCheck)) {
      const u = instantToUnixSeconds(now);
      this.nextCheck = (u / CHECK_INTERVAL_S + 1n) * CHECK_INTERVAL_S * NS_PER_S;
      this.evaluate(now);
    }
    return action;
  }

  /** Arms the periodic table check (idempotent). */
  start(now: Instant): void {
    if (this.schedule && this.nextCheck === null) {
      this.evaluate(now);
      const u = instantToUnixSeconds(now);
      this.nextCheck = (u / CHECK_INTERVAL_S + 1n) * CHECK_INTERVAL_S * NS_PER_S;
    }
  }
}
