/**
 * The host's system clock (CLOCK_REALTIME), read with clock_gettime and disciplined with
 * clock_adjtime through the native addon. Used when rubidiumd runs without `-x`.
 */
import type { Instant } from '../time/ntp-time.js';
import type { Clock, ClockStatus, LeapIndicator } from './clock.js';
import {
  CLOCK_REALTIME,
  STA_DEL,
  STA_INS,
  STA_UNSYNC,
  native,
  nativeLoadError,
  type NativeAddon,
} from '../io/native.js';

/** Largest frequency correction the kernel accepts through ADJ_FREQUENCY, ppm. */
export const MAX_FREQ_PPM = 500;
/** Kernel NTP_PHASE_LIMIT: maxerror/esterror are clamped to this, µs. */
const MAX_ERROR_US = 16_000_000;

/** The subset of the addon the system clock uses (a fake can stand in for tests). */
export type SystemClockAddon = Pick<NativeAddon, 'clockGettime' | 'adjtimeRead' | 'adjtime'>;

function errorUs(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 0) return MAX_ERROR_US;
  return Math.min(MAX_ERROR_US, Math.round(seconds * 1e6));
}

export class SystemClock implements Clock {
  readonly kind = 'system' as const;
  private readonly addon: SystemClockAddon;

  constructor(addon: SystemClockAddon | null = native) {
    if (!addon) throw new Error(nativeLoadError ?? 'native addon unavailable; the system clock cannot be disciplined');
    this.addon = addon;
  }

  now(): Instant {
    return this.addon.clockGettime(CLOCK_REALTIME);
  }

  fromKernel(realtime: Instant): Instant {
    return realtime;
  }

  setFrequency(ppm: number): void {
    if (!Number.isFinite(ppm)) throw new RangeError(`frequency must be finite, got ${ppm}`);
    const clamped = Math.max(-MAX_FREQ_PPM, Math.min(MAX_FREQ_PPM, ppm));
    this.addon.adjtime({ freqPpm: clamped });
  }

  getFrequency(): number {
    return this.addon.adjtimeRead().freqPpm;
  }

  step(seconds: number): void {
    if (!Number.isFinite(seconds)) throw new RangeError(`step must be finite, got ${seconds}`);
    this.addon.adjtime({ setOffsetNs: BigInt(Math.round(seconds * 1e9)) });
  }

  setStatus(status: ClockStatus): void {
    let set = 0;
    let clear = 0;
    if (status.synchronized) clear |= STA_UNSYNC;
    else set |= STA_UNSYNC;
    if (status.leap === 1) {
      set |= STA_INS;
      clear |= STA_DEL;
    } else if (status.leap === 2) {
      set |= STA_DEL;
      clear |= STA_INS;
    } else {
      clear |= STA_INS | STA_DEL;
    }
    // The addon reads the status word and changes only these bits (ADJ_STATUS writes all).
    this.addon.adjtime({
      status: set,
      clearStatus: clear,
      maxErrorUs: errorUs(status.maxErrorS),
      estErrorUs: errorUs(status.estErrorS),
    });
  }

  getStatus(): ClockStatus {
    const s = this.addon.adjtimeRead();
    const synchronized = (s.status & STA_UNSYNC) === 0;
    const leap: LeapIndicator = s.status & STA_INS ? 1 : s.status & STA_DEL ? 2 : synchronized ? 0 : 3;
    return { synchronized, leap, maxErrorS: s.maxErrorUs / 1e6, estErrorS: s.estErrorUs / 1e6 };
  }
}
