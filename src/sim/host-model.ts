/**
 * The host under a simulated node: suspend/resume and VM migration, and the three clocks the
 * daemon's jump detector reads (realtime = the node's clock, monotonic, boottime).
 *
 * - Suspend: from `at` for `duration` true seconds the node's daemon and network stop (timers
 *   and packets are dropped); the clock keeps running at the oscillator's (RTC) rate, and on
 *   resume it is off by a further `clockError` seconds (RTC resolution and drift).
 * - Migration: the clock jumps by `seconds` at `at` (the VM resumed on another host).
 * Monotonic = the node's clock minus every step it took (ours and foreign) minus the time
 * slept; boottime = monotonic plus the time slept. With `detect`, a ClockJumpDetector reads
 * them every second, as the daemon does.
 */
import type { Instant } from '../time/ntp-time.js';
import { ClockJumpDetector, type ClockJumpEvent } from '../daemon/clock-jump-detector.js';

export type HostEventSpec =
  | { type: 'suspend'; at: number; duration: number; clockError?: number }
  | { type: 'migrate'; at: number; seconds: number };

export const DETECTOR_TICK = 1;

export class SimHost {
  suspended = false;
  readonly detector: ClockJumpDetector | null;
  private steps = 0n;
  private slept = 0n;
  private suspendedAt: Instant = 0n;

  constructor(detect: boolean) {
    this.detector = detect ? new ClockJumpDetector() : null;
  }

  /** A step or instant offset correction the node's engine asked for. */
  ownStep(seconds: number): void {
    this.steps += BigInt(Math.round(seconds * 1e9));
    this.detector?.ownStep(seconds);
  }

  /** A step nobody in the node asked for (migration, RTC error after resume). */
  foreignStep(seconds: number): void {
    this.steps += BigInt(Math.round(seconds * 1e9));
  }

  suspend(clockNow: Instant): void {
    this.suspended = true;
    this.suspendedAt = clockNow;
  }

  /** Call before applying the RTC error step. */
  resume(clockNow: Instant): void {
    this.suspended = false;
    this.slept += clockNow - this.suspendedAt;
  }

  /** One detector reading of the node's clock at `clockNow`; null without a detector. */
  tick(clockNow: Instant): ClockJumpEvent | null {
    if (!this.detector || this.suspended) return null;
    const monotonic = clockNow - this.steps - this.slept;
    return this.detector.observe({ realtime: clockNow, monotonic, boottime: monotonic + this.slept });
  }
}
