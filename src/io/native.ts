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

/**
 * Handle of a batched UDP socket (native/batch.c): slot buffers shared with the addon. Slot i of
 * rxData/txData starts at i * slotBytes; meta rows are [len, family, port, a0, a1, a2, a3, flags]
 * (address as big-endian 32-bit words, read with `>>> 0`). See src/io/batch-udp.ts.
 */
export interface NativeBatchHandle {
  readonly tsMode: 'timestamping' | 'rx-only' | 'none';
  readonly batch: number;
  readonly slotBytes: number;
  readonly rxData: Uint8Array;
  readonly rxMeta: Int32Array;
  /** batch × 2: [unix seconds, ns]: the kernel RX stamp, else CLOCK_REALTIME after recvmmsg. */
  readonly rxTime: Float64Array;
  readonly txData: Uint8Array;
  readonly txMeta: Int32Array;
  /** After udpBatchSend: TX-stamp id of each slot that asked for one and was sent, else -1. */
  readonly txId: Int32Array;
  /** [0]: ns added to CLOCK_REALTIME for TX_STAMP slots (integer valued). */
  readonly txOffsetNs: Float64Array;
  /** Valid during a 'tx' event: ids and [unix seconds, ns] of the delivered TX stamps. */
  readonly txStampId: Int32Array;
  readonly txStampTime: Float64Array;
}

export interface NativeBatchStats {
  rxDatagrams: number;
  rxCalls: number;
  rxTruncated: number;
  txDatagrams: number;
  txErrors: number;
  txEagain: number;
  txStamps: number;
  /** Poll callbacks (readiness wake-ups) so far. */
  wakeups: number;
  /** SO_RCVBUF as the kernel reports it (twice the bytes set); 0 once closed. */
  receiveBuffer: number;
}

/** Event callback of a batched socket: 'rx'/'tx' with a slot count, 'error' with a message. */
export type NativeBatchCallback = (kind: 'rx' | 'tx' | 'error', arg: number | string) => void;

export interface NativeBatchOptions {
  reusePort?: boolean;
  /** N > 1: SO_REUSEPORT plus a BPF program steering each source address to socket hash % N. */
  steerGroupSize?: number;
  /** Datagrams per recvmmsg round and tx slots, 1..256 (default 64). */
  batch?: number;
  /** Bytes per slot, 48..65536 (default 1024); longer datagrams arrive truncated and flagged. */
  slotBytes?: number;
  /** SO_RCVBUF(FORCE) bytes, 0..256 MiB; 0 or absent = the system default. */
  receiveBuffer?: number;
  /** Tests only: false leaves SO_SELECT_ERR_QUEUE off (TX stamps then wake through POLLERR). */
  selectErrQueue?: boolean;
}

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

  // Batched UDP sockets (native/batch.c). Optional: an older build lacks them (src/io/batch-udp.ts
  // then reports the batch path unavailable and callers use src/io/udp.ts).
  udpBatchOpen?(
    family: 4 | 6,
    address: string,
    port: number,
    onEvent: NativeBatchCallback,
    opts?: NativeBatchOptions,
  ): NativeBatchHandle;
  /** Sends tx slots [0, count), one sendmsg each; returns how many were handled (stops at EAGAIN). */
  udpBatchSend?(handle: NativeBatchHandle, count: number): number;
  udpBatchLocalPort?(handle: NativeBatchHandle): number;
  /** Idempotent. */
  udpBatchClose?(handle: NativeBatchHandle): void;
  udpBatchSetRef?(handle: NativeBatchHandle, ref: boolean): void;
  udpBatchStats?(handle: NativeBatchHandle): NativeBatchStats;
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
