/**
 * Loader and typed interface of the native addon (native/rubidium.c, built by node-gyp into
 * build/Release/rubidium.node). The addon gives what Node core lacks: clock_gettime on any
 * clock, clock_adjtime, and UDP sockets with kernel (SO_TIMESTAMPING) RX/TX timestamps.
 *
 * Loading never throws: when the addon is missing or broken (or RUBIDIUM_NO_NATIVE=1), `native`
 * is null and `nativeLoadError` says why, and callers fall back to pure-Node paths.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_MONOTONIC_RAW = 4;
export const CLOCK_BOOTTIME = 7;
export const CLOCK_TAI = 11;

/** Kernel timex status bits (linux/timex.h). */
export const STA_PLL = 0x0001;
export const STA_PPSFREQ = 0x0002;
export const STA_PPSTIME = 0x0004;
export const STA_FLL = 0x0008;
export const STA_INS = 0x0010;
export const STA_DEL = 0x0020;
export const STA_UNSYNC = 0x0040;
export const STA_FREQHOLD = 0x0080;
export const STA_NANO = 0x2000;

/** clock_adjtime return values (clock state). */
export const TIME_OK = 0;
export const TIME_INS = 1;
export const TIME_DEL = 2;
export const TIME_OOP = 3;
export const TIME_WAIT = 4;
export const TIME_ERROR = 5;

/** The kernel's timex state as the addon reports it. */
export interface AdjtimeState {
  /** Frequency offset, ppm (kernel `freq` / 2^16). */
  freqPpm: number;
  /** Raw kernel `freq` (ppm scaled by 2^16). */
  freqScaled: number;
  /** Remaining PLL offset, ns (kernel `offset`, normalised from µs unless STA_NANO). */
  offsetNs: number;
  maxErrorUs: number;
  estErrorUs: number;
  status: number;
  constant: number;
  precisionUs: number;
  tolerancePpm: number;
  tickUs: number;
  tai: number;
  /** Return value of clock_adjtime: TIME_OK, TIME_INS, ..., TIME_ERROR. */
  state: number;
  /** CLOCK_REALTIME at the call, ns since the Unix epoch. */
  timeNs: bigint;
}

export interface AdjtimeRequest {
  /** ADJ_FREQUENCY, absolute, within ±500 ppm. */
  freqPpm?: number;
  /** ADJ_SETOFFSET | ADJ_NANO: steps the clock by this many ns. */
  setOffsetNs?: bigint;
  /** ADJ_STATUS: bits to set (others preserved: the addon reads the word first). */
  status?: number;
  /** ADJ_STATUS: bits to clear. */
  clearStatus?: number;
  /** ADJ_MAXERROR, µs. */
  maxErrorUs?: number;
  /** ADJ_ESTERROR, µs. */
  estErrorUs?: number;
}

/** Opaque native socket handle. `tsMode` says what timestamping the kernel accepted. */
export interface NativeUdpHandle {
  readonly tsMode: 'timestamping' | 'rx-only' | 'none';
}

/** Event callback of a native socket; the first argument tells which event it is. */
export type NativeUdpCallback = (kind: 'rx' | 'tx' | 'error', ...args: unknown[]) => void;

export interface NativeAddon {
  /** clock_gettime(clockId), ns. Throws RangeError on an invalid clock id. */
  clockGettime(clockId: number): bigint;
  /** clock_adjtime(CLOCK_REALTIME) with modes = 0. */
  adjtimeRead(): AdjtimeState;
  /** clock_adjtime(CLOCK_REALTIME) with the modes the request names; returns the new state. */
  adjtime(req: AdjtimeRequest): AdjtimeState;
  udpOpen(
    family: 4 | 6,
    bindAddress: string,
    port: number,
    onEvent: NativeUdpCallback,
    opts?: { reusePort?: boolean },
  ): NativeUdpHandle;
  /** Sends one datagram; returns its SOF_TIMESTAMPING_OPT_ID (0, 1, 2, ...) or -1 without TX stamps. */
  /** With stampOffsetNs, writes CLOCK_REALTIME + stampOffsetNs as the NTP transmit timestamp (bytes 40-47) just before sending. */
  udpSend(handle: NativeUdpHandle, data: Uint8Array, address: string, port: number, stampOffsetNs?: bigint): number;
  udpLocalPort(handle: NativeUdpHandle): number;
  /** Stops polling and closes the fd; idempotent. */
  udpClose(handle: NativeUdpHandle): void;
  /** Whether the open socket keeps the event loop alive (default true). */
  udpSetRef(handle: NativeUdpHandle, ref: boolean): void;
}

function load(): { addon: NativeAddon | null; error: string | null } {
  if (process.env.RUBIDIUM_NO_NATIVE === '1') {
    return {
      addon: null,
      error: 'native addon disabled by RUBIDIUM_NO_NATIVE=1; kernel timestamps and clock_adjtime unavailable',
    };
  }
  // This file runs as dist/src/io/native.js; the addon is at <root>/build/Release/.
  const path = new URL('../../../build/Release/rubidium.node', import.meta.url);
  try {
    const require = createRequire(import.meta.url);
    const addon = require(fileURLToPath(path)) as NativeAddon;
    for (const fn of ['clockGettime', 'adjtimeRead', 'adjtime', 'udpOpen', 'udpSend', 'udpLocalPort', 'udpClose']) {
      if (typeof (addon as unknown as Record<string, unknown>)[fn] !== 'function') {
        throw new Error(`export ${fn} missing (stale build?)`);
      }
    }
    return { addon, error: null };
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return {
      addon: null,
      error: `native addon not built or not loadable: ${reason}; kernel timestamps and clock_adjtime unavailable (run \`node scripts/build-native.mjs\`)`,
    };
  }
}

const loaded = load();
/** The addon, or null when it could not be loaded (see nativeLoadError). */
export const native: NativeAddon | null = loaded.addon;
/** Why the addon is unavailable, for the daemon's start-up message; null when loaded. */
export const nativeLoadError: string | null = loaded.error;
