/**
 * Detects host suspend/resume and jumps of the real-time clock that we did not make (VM
 * migration or restore, another program setting the clock), from periodic readings of three
 * clocks. Sans-IO: the caller reads the clocks (every ~1 s) and hands the readings in.
 *
 * - CLOCK_MONOTONIC stops while the host is suspended; CLOCK_BOOTTIME keeps counting. Their
 *   difference growing means a suspend of that length.
 * - CLOCK_REALTIME should advance as CLOCK_BOOTTIME does (the kernel slews them together), except
 *   for steps. Steps we made ourselves are announced with `ownStep()` and subtracted; anything
 *   left beyond the tolerance is a jump of the time we discipline.
 * Small differences (reading the three clocks a few µs apart, a late timer) stay under the
 * tolerance: `threshold` plus `maxRatePpm` of the interval (the virtual clock runs at its own
 * frequency correction relative to the monotonic clock).
 */
import type { Instant } from '../time/ntp-time.js';

export interface ClockReading {
  /** The disciplined clock's time (cooked for a virtual clock; CLOCK_REALTIME otherwise). */
  realtime: Instant;
  /** CLOCK_MONOTONIC, ns. */
  monotonic: bigint;
  /** CLOCK_BOOTTIME, ns; null where unavailable (suspends are then reported as jumps). */
  boottime: bigint | null;
}

export type ClockJumpEvent =
  | {
      type: 'suspend';
      /** How long the host slept (BOOTTIME − MONOTONIC progress), seconds. */
      sleptSeconds: number;
      /** How far the real-time clock moved beyond the time slept (RTC error, our rate), s. */
      jumpSeconds: number;
    }
  | {
      /** The real-time clock moved by `jumpSeconds` relative to the monotonic clock. */
      type: 'jump';
      jumpSeconds: number;
    };

export interface ClockJumpDetectorOptions {
  /** Smallest jump or suspend reported, seconds (default 0.05). */
  threshold?: number;
  /** Rate difference tolerated between the realtime and monotonic readings, ppm (default 1000). */
  maxRatePpm?: number;
}

export class ClockJumpDetector {
  private readonly threshold: number;
  private readonly maxRate: number;
  private prev: ClockReading | null = null;
  /** Our own steps since the previous reading, ns. */
  private ownSteps = 0n;
  private detected = 0;

  constructor(opts: ClockJumpDetectorOptions = {}) {
    this.threshold = opts.threshold ?? 0.05;
    this.maxRate = (opts.maxRatePpm ?? 1000) * 1e-6;
  }

  /** The daemon stepped the clock by `seconds` (so the next reading is not a foreign jump). */
  ownStep(seconds: number): void {
    if (Number.isFinite(seconds)) this.ownSteps += BigInt(Math.round(seconds * 1e9));
  }

  /** Forget the previous reading (e.g. after the daemon paused on purpose). */
  reset(): void {
    this.prev = null;
    this.ownSteps = 0n;
  }

  /** Number of events reported so far. */
  get count(): number {
    return this.detected;
  }

  observe(r: ClockReading): ClockJumpEvent | null {
    const p = this.prev;
    const own = this.ownSteps;
    this.prev = { ...r };
    this.ownSteps = 0n;
    if (p === null) return null;
    const dMono = Number(r.monotonic - p.monotonic) / 1e9;
    const dBoot = r.boottime !== null && p.boottime !== null ? Number(r.boottime - p.boottime) / 1e9 : dMono;
    const dReal = Number(r.realtime - p.realtime - own) / 1e9;
    const slept = dBoot - dMono;
    // Real time should have advanced by the boot-time progress (which includes any sleep).
    const jump = dReal - dBoot;
    if (slept > this.threshold) {
      // Whatever the clock did while asleep is reported: the sources must be measured again.
      this.detected++;
      return { type: 'suspend', sleptSeconds: slept, jumpSeconds: jump };
    }
    const tolerance = this.threshold + this.maxRate * Math.max(0, dMono);
    if (Math.abs(jump) > tolerance) {
      this.detected++;
      return { type: 'jump', jumpSeconds: jump };
    }
    return null;
  }
}
