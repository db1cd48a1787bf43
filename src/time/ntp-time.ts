/**
 * Time representations used everywhere in Rubidium.
 *
 * - An instant is a bigint count of nanoseconds since the Unix epoch (`Instant`). A double cannot
 *   hold nanoseconds at today's epoch (53-bit mantissa), so instants are never JS numbers.
 * - On the wire NTP uses a 64-bit fixed point (32 bits seconds since 1900, 32 bits fraction),
 *   held here as an unsigned bigint (`Ntp64`). Its seconds wrap every 2^32 s (eras; era 0 ends
 *   2036-02-07), so converting back to an instant needs a nearby pivot instant.
 * - Small differences (offsets, delays, frequencies) are doubles in seconds (or ppm).
 */

export type Instant = bigint;
export type Ntp64 = bigint;

export const NS_PER_S = 1_000_000_000n;
/** Seconds from 1900-01-01 (NTP prime epoch) to 1970-01-01 (Unix epoch). */
export const NTP_UNIX_OFFSET_S = 2_208_988_800n;
const TWO32 = 1n << 32n;
const TWO64 = 1n << 64n;
const ERA_NS = TWO32 * NS_PER_S;

/** Converts an instant to the NTP 64-bit timestamp, rounding the fraction to nearest. */
export function instantToNtp64(t: Instant): Ntp64 {
  const ntpNs = t + NTP_UNIX_OFFSET_S * NS_PER_S;
  const secs = ntpNs >= 0n ? ntpNs / NS_PER_S : (ntpNs - NS_PER_S + 1n) / NS_PER_S;
  const nsRem = ntpNs - secs * NS_PER_S;
  let frac = (nsRem * TWO32 + NS_PER_S / 2n) / NS_PER_S;
  let s = secs;
  if (frac >= TWO32) {
    frac -= TWO32;
    s += 1n;
  }
  return ((((s % TWO32) + TWO32) % TWO32) << 32n) | frac;
}

/**
 * Converts an NTP timestamp to the instant nearest to `pivot` (within ±68 years), which resolves
 * the era: a timestamp taken shortly after the 2036 rollover maps past 2036, not to 1900.
 */
export function ntp64ToInstant(ts: Ntp64, pivot: Instant): Instant {
  const secs = ts >> 32n;
  const frac = ts & 0xffff_ffffn;
  const nsInEra = secs * NS_PER_S + (frac * NS_PER_S + TWO32 / 2n) / TWO32;
  const pivotNtpNs = pivot + NTP_UNIX_OFFSET_S * NS_PER_S;
  const pivotEra = pivotNtpNs >= 0n ? pivotNtpNs / ERA_NS : (pivotNtpNs - ERA_NS + 1n) / ERA_NS;
  let best = pivotEra * ERA_NS + nsInEra;
  for (const cand of [best - ERA_NS, best + ERA_NS]) {
    if (absBig(cand - pivotNtpNs) < absBig(best - pivotNtpNs)) best = cand;
  }
  return best - NTP_UNIX_OFFSET_S * NS_PER_S;
}

/**
 * Signed difference a − b of two NTP timestamps in seconds, correct across an era boundary as
 * long as they are within 68 years of each other (RFC 5905 §6: differences are taken mod 2^64).
 */
export function ntp64Diff(a: Ntp64, b: Ntp64): number {
  let d = (a - b) % TWO64;
  if (d < 0n) d += TWO64;
  if (d >= TWO64 / 2n) d -= TWO64;
  // Split to keep precision: integer seconds plus fraction.
  const whole = d >> 32n; // floor for negative too (arithmetic shift on bigint)
  const frac = d - (whole << 32n);
  return Number(whole) + Number(frac) / 4294967296;
}

/** Adds a (small) number of seconds to an NTP timestamp, wrapping mod 2^64. */
export function ntp64AddSeconds(a: Ntp64, s: number): Ntp64 {
  const delta = BigInt(Math.round(s * 4294967296));
  return (((a + delta) % TWO64) + TWO64) % TWO64;
}

/** Signed difference a − b of two instants in seconds as a double (for small differences). */
export function diffSeconds(a: Instant, b: Instant): number {
  const d = a - b;
  const whole = d / NS_PER_S;
  return Number(whole) + Number(d - whole * NS_PER_S) / 1e9;
}

/** Instant plus a double number of seconds (rounded to the nanosecond). */
export function addSeconds(t: Instant, s: number): Instant {
  const whole = Math.trunc(s);
  return t + BigInt(whole) * NS_PER_S + BigInt(Math.round((s - whole) * 1e9));
}

export function secondsToInstant(s: number): Instant {
  return addSeconds(0n, s);
}

/** NTP short format (16.16 seconds), used for root delay and root dispersion. */
export function secondsToShort(s: number): number {
  if (!(s > 0)) return 0;
  const v = Math.round(s * 65536);
  return v > 0xffff_ffff ? 0xffff_ffff : v;
}

export function shortToSeconds(v: number): number {
  return (v >>> 0) / 65536;
}

/** Milliseconds-since-epoch Date for display only (loses sub-ms precision on purpose). */
export function instantToDate(t: Instant): Date {
  return new Date(Number(t / 1_000_000n));
}

function absBig(x: bigint): bigint {
  return x < 0n ? -x : x;
}
