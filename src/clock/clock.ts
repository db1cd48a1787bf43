import type { Instant } from '../time/ntp-time.js';

/** Leap indicator as on the wire: 0 none, 1 insert, 2 delete, 3 unsynchronised. */
export type LeapIndicator = 0 | 1 | 2 | 3;

export interface ClockStatus {
  synchronized: boolean;
  leap: LeapIndicator;
  /** Upper bound of the clock's error, seconds (kernel maxerror). */
  maxErrorS: number;
  /** Estimated error, seconds (kernel esterror). */
  estErrorS: number;
}

/**
 * The one interface every clock implements: the virtual clock of `-x`, the system clock
 * (clock_adjtime), and the simulator's clocks. The discipline never reads a clock itself; the
 * I/O layer reads `now()` and passes instants into the sans-IO core, and applies the core's
 * clock actions here.
 */
export interface Clock {
  readonly kind: 'virtual' | 'system' | 'simulated';
  /** This clock's current time. */
  now(): Instant;
  /** Maps a kernel CLOCK_REALTIME timestamp (e.g. SO_TIMESTAMPING) onto this clock's timescale. */
  fromKernel(realtime: Instant): Instant;
  /** Sets the total frequency correction, ppm; positive makes the clock run faster. */
  setFrequency(ppm: number): void;
  /** The frequency correction currently applied, ppm. */
  getFrequency(): number;
  /** Steps the clock by `seconds` (positive = forward). */
  step(seconds: number): void;
  /** Publishes synchronisation state (kernel STA_UNSYNC, maxerror, esterror). */
  setStatus(status: ClockStatus): void;
  getStatus(): ClockStatus;
}
