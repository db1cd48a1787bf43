/**
 * Tracking the RTC's drift against the system clock (chrony's rtcfile), sans-IO. Each sample is
 * an RTC reading in whole seconds taken at the instant its second began (the RTC's update edge)
 * and the system time of that instant. A least-squares line through (RTC time, RTC − system)
 * gives the RTC's offset at a reference RTC second and its gain rate. Persistence uses chronyd's
 * rtcfile format: `valid ref_time offset rate_ppm` ("%1d %.0f %.6f %.3f").
 */
import type { Instant } from '../time/ntp-time.js';

/** Samples held (chronyd: 64), and how many of the oldest go when full (chronyd: 4). */
export const RTC_MAX_SAMPLES = 64;
export const RTC_DISCARD_WHEN_FULL = 4;
/** Fewest samples for a regression. */
export const RTC_MIN_SAMPLES = 3;

export interface RtcCoefficients {
  valid: boolean;
  /** RTC second (Unix seconds on the RTC's scale) the offset refers to. */
  refTime: number;
  /** How far the RTC is fast of the system clock at refTime, s. */
  offset: number;
  /** RTC gain relative to the system clock, ppm (positive: RTC gains). */
  ratePpm: number;
}

export interface RtcSample {
  rtcSeconds: number;
  system: Instant;
}

export class RtcDriftTracker {
  private samples: RtcSample[] = [];
  private coefs: RtcCoefficients | null = null;
  private newSinceRegression = 0;

  constructor(initial?: RtcCoefficients) {
    if (initial?.valid) this.coefs = { ...initial };
  }

  get coefficients(): RtcCoefficients | null {
    return this.coefs ? { ...this.coefs } : null;
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  /** Adds a sample and re-fits. An RTC that went backwards (set by someone) restarts the fit. */
  addSample(rtcSeconds: number, system: Instant): void {
    if (!Number.isInteger(rtcSeconds)) throw new RangeError(`RTC seconds must be whole, got ${rtcSeconds}`);
    const last = this.samples[this.samples.length - 1];
    if (last && last.rtcSeconds >= rtcSeconds) this.samples = [];
    if (this.samples.length >= RTC_MAX_SAMPLES) this.samples.splice(0, RTC_DISCARD_WHEN_FULL);
    this.samples.push({ rtcSeconds, system });
    this.newSinceRegression++;
    this.regress();
  }

  /** The system clock was stepped by `seconds`: move the samples with it (the RTC did not move). */
  systemStepped(seconds: number): void {
    const ns = BigInt(Math.round(seconds * 1e9));
    this.samples = this.samples.map((s) => ({ ...s, system: s.system + ns }));
    if (this.coefs) this.coefs.offset -= seconds;
  }

  /** Predicted RTC − system offset at RTC second `rtcSeconds`, or null without coefficients. */
  predictOffset(rtcSeconds: number): number | null {
    if (!this.coefs) return null;
    return this.coefs.offset + ((rtcSeconds - this.coefs.refTime) * this.coefs.ratePpm) / 1e6;
  }

  /** Forgets the samples, e.g. after the RTC was trimmed (set to the system time). */
  reset(): void {
    this.samples = [];
    this.coefs = null;
    this.newSinceRegression = 0;
  }

  private regress(): void {
    const n = this.samples.length;
    if (n < RTC_MIN_SAMPLES) return;
    const ref = this.samples[n - 1]!.rtcSeconds;
    // x: RTC time relative to the newest sample; y: RTC − system, s (exact in ns, then to double).
    const xs = this.samples.map((s) => s.rtcSeconds - ref);
    const ys = this.samples.map((s) => Number(BigInt(s.rtcSeconds) * 1_000_000_000n - s.system) / 1e9);
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = ys.reduce((a, b) => a + b, 0) / n;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < n; i++) {
      sxx += (xs[i]! - mx) ** 2;
      sxy += (xs[i]! - mx) * (ys[i]! - my);
    }
    if (sxx === 0) return;
    const slope = sxy / sxx;
    this.coefs = { valid: true, refTime: ref, offset: my - slope * mx, ratePpm: slope * 1e6 };
    this.newSinceRegression = 0;
  }

  /**
   * chronyd's rtcautotrim rule: trim (set the RTC to the system time) when the fit is fresh, the
   * RTC's offset reaches the threshold and the system clock is synchronised.
   */
  shouldAutotrim(thresholdS: number, synchronised: boolean): boolean {
    if (thresholdS <= 0 || !this.coefs || this.newSinceRegression > 0 || !synchronised) return false;
    return Math.abs(this.coefs.offset) >= thresholdS;
  }
}

/** chronyd's rtcfile line: "%1d %.0f %.6f %.3f\n". */
export function formatRtcFile(c: RtcCoefficients): string {
  return `${c.valid ? 1 : 0} ${Math.round(c.refTime)} ${c.offset.toFixed(6)} ${c.ratePpm.toFixed(3)}\n`;
}

/** Reads an rtcfile; a malformed file is an error naming it (chronyd: "Could not read coefficients"). */
export function parseRtcFile(text: string, where: string): RtcCoefficients {
  const w = text.trim().split(/\s+/);
  const nums = w.slice(0, 4).map(Number);
  if (w.length < 4 || nums.some((x) => !Number.isFinite(x)) || (w[0] !== '0' && w[0] !== '1')) {
    throw new Error(`${where}: could not read RTC coefficients (expected "valid ref_time offset rate_ppm")`);
  }
  return { valid: nums[0] === 1, refTime: nums[1]!, offset: nums[2]!, ratePpm: nums[3]! };
}
