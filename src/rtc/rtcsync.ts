/**
 * chrony's `rtcsync` on Linux: the kernel copies the system time to the RTC every 11 minutes
 * while STA_UNSYNC is clear. chronyd clears it only with rtcsync (sys_timex.c), and treats a
 * maximum error of 16 s or more as unsynchronised. `RtcSyncClock` applies that rule to the
 * status the discipline publishes; without rtcsync the clock stays STA_UNSYNC for the kernel.
 */
import type { Clock, ClockStatus } from '../clock/clock.js';
import type { Instant } from '../time/ntp-time.js';

/** Kernel's NTP_PHASE_LIMIT as chronyd's MAX_SYNC_ERROR, s. */
export const MAX_SYNC_ERROR_S = 16;

export function kernelSyncStatus(s: ClockStatus, rtcsync: boolean): ClockStatus {
  let synchronized = s.synchronized;
  let est = s.estErrorS;
  let max = s.maxErrorS;
  if (synchronized) {
    est = Math.min(est, MAX_SYNC_ERROR_S);
    if (!(max < MAX_SYNC_ERROR_S)) {
      max = MAX_SYNC_ERROR_S;
      synchronized = false;
    }
  } else {
    est = max = MAX_SYNC_ERROR_S;
  }
  if (!rtcsync) synchronized = false;
  return { synchronized, leap: s.leap, maxErrorS: max, estErrorS: est };
}

/** The system clock with chronyd's STA_UNSYNC policy; everything else passes through. */
export class RtcSyncClock implements Clock {
  constructor(
    private readonly inner: Clock,
    readonly rtcsync: boolean,
  ) {}
  get kind(): Clock['kind'] {
    return this.inner.kind;
  }
  now(): Instant {
    return this.inner.now();
  }
  fromKernel(realtime: Instant): Instant {
    return this.inner.fromKernel(realtime);
  }
  setFrequency(ppm: number): void {
    this.inner.setFrequency(ppm);
  }
  getFrequency(): number {
    return this.inner.getFrequency();
  }
  step(seconds: number): void {
    this.inner.step(seconds);
  }
  setStatus(status: ClockStatus): void {
    this.inner.setStatus(kernelSyncStatus(status, this.rtcsync));
  }
  getStatus(): ClockStatus {
    return this.inner.getStatus();
  }
}
