import type { Instant } from '../time/ntp-time.js';
import { addSeconds, diffSeconds } from '../time/ntp-time.js';
import type { Clock, ClockStatus } from './clock.js';
import { KernelLeapEmulator } from '../leap/kernel-leap.js';

/**
 * A clock that corrects a free-running raw time source in software: cooked = raw + correction,
 * where the correction grows linearly at the applied frequency and jumps on a step. It is the
 * virtual clock of `rubidiumd -x` (raw = host CLOCK_REALTIME, never written) and the clock of
 * every simulated node (raw = a simulated oscillator).
 */
export class DisciplinedClock implements Clock {
  private segRaw: Instant;
  private segCorrection = 0; // seconds, correction at segRaw
  private freqPpm = 0;
  private status: ClockStatus = { synchronized: false, leap: 3, maxErrorS: 16, estErrorS: 16 };
  /** STA_INS/STA_DEL as the kernel would act on them (leapsecmode system). */
  private readonly kernelLeap = new KernelLeapEmulator();

  /**
   * @param raw the raw time source.
   * @param kernelToRaw maps a kernel CLOCK_REALTIME timestamp (packet stamps) onto the raw
   *   timescale; identity when the raw source is CLOCK_REALTIME itself.
   */
  constructor(
    private readonly raw: () => Instant,
    readonly kind: 'virtual' | 'simulated' = 'virtual',
    private readonly kernelToRaw: (realtime: Instant) => Instant = (t) => t,
  ) {
    this.segRaw = raw();
  }

  /** Correction (seconds) that applies at raw instant `r`. */
  correctionAt(r: Instant): number {
    return this.segCorrection + this.freqPpm * 1e-6 * diffSeconds(r, this.segRaw);
  }

  now(): Instant {
    return this.cook(this.raw());
  }

  fromKernel(realtime: Instant): Instant {
    return this.cook(this.kernelToRaw(realtime));
  }

  private cook(r: Instant): Instant {
    const c = addSeconds(r, this.correctionAt(r));
    const leap = this.kernelLeap.crossed(c);
    if (leap === 0) return c;
    this.segCorrection += leap; // the correction is linear: this shifts it from now on
    return addSeconds(c, leap);
  }

  setFrequency(ppm: number): void {
    const r = this.raw();
    this.segCorrection = this.correctionAt(r);
    this.segRaw = r;
    this.freqPpm = ppm;
  }

  getFrequency(): number {
    return this.freqPpm;
  }

  step(seconds: number): void {
    const r = this.raw();
    this.segCorrection = this.correctionAt(r) + seconds;
    this.segRaw = r;
  }

  setStatus(status: ClockStatus): void {
    this.status = { ...status };
    this.kernelLeap.setStatus(status.leap, this.now());
  }

  getStatus(): ClockStatus {
    return { ...this.status };
  }
}
