/**
 * The host's CLOCK_REALTIME as an Instant. With the native addon this is clock_gettime(2)
 * itself (ns resolution, follows steps and slews of the host clock). Without it, Date.now() is
 * read once as an anchor and process.hrtime.bigint() (CLOCK_MONOTONIC) progress is added: ns
 * resolution and monotonic, but blind to later steps of the host clock.
 */
import type { Instant } from '../time/ntp-time.js';
import { CLOCK_REALTIME, native } from './native.js';

let anchorRealtime: Instant | null = null;
let anchorMono = 0n;

function fallbackNow(): Instant {
  const mono = process.hrtime.bigint();
  if (anchorRealtime === null) {
    anchorRealtime = BigInt(Date.now()) * 1_000_000n;
    anchorMono = mono;
  }
  return anchorRealtime + (mono - anchorMono);
}

/** Which source realtimeNow() uses. */
export const realtimeSource: 'clock_gettime' | 'hrtime-anchored' = native ? 'clock_gettime' : 'hrtime-anchored';

/** Current CLOCK_REALTIME, ns since the Unix epoch. */
export const realtimeNow: () => Instant = native
  ? (
      (addon) => () =>
        addon.clockGettime(CLOCK_REALTIME)
    )(native)
  : fallbackNow;

/** The hrtime-anchored fallback, exported for tests. */
export const realtimeNowFallback: () => Instant = fallbackNow;
