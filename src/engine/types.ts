/**
 * Contracts between the pieces of the sans-IO core. Nothing here reads a clock, a socket or a
 * timer: every input carries the instants it needs, every output is a value the I/O layer (the
 * daemon, or the simulator) carries out.
 */
import type { Instant } from '../time/ntp-time.js';
import type { LeapIndicator } from '../clock/clock.js';

export interface Endpoint {
  address: string; // textual IPv4 or IPv6 address
  port: number;
}

/** A datagram the I/O layer must send. */
export interface Transmit {
  /** Which socket: 'client' (ephemeral port, our requests) or 'server' (answers from our port). */
  socket: 'client' | 'server';
  to: Endpoint;
  data: Uint8Array;
  /**
   * If set, the I/O layer reports the kernel transmit timestamp of this datagram back through
   * `handleTxTimestamp(tag, instant)` (interleaved mode).
   */
  txTag?: number;
  /**
   * If set, the I/O layer overwrites the NTP transmit timestamp (bytes 40-47) with its clock's
   * time immediately before sending, so T3 excludes the time spent building the answer.
   */
  stampTransmit?: boolean;
}

/**
 * One measurement of a source (RFC 5905 §8 on-wire protocol), in the local clock's timescale.
 * `offset` is θ = source − local (positive: the local clock is behind the source).
 */
export interface NtpSample {
  /** Local (cooked) time of the measurement, T4 of the exchange. */
  time: Instant;
  offset: number;
  delay: number;
  /** Dispersion of this sample (precision terms + PHI × round trip), seconds. */
  dispersion: number;
  rootDelay: number;
  rootDispersion: number;
  stratum: number;
  leap: LeapIndicator;
  refId: number;
  /** The source's reference time (its last update), as an instant. */
  refTime: Instant;
  /** log2 seconds of the poll interval in force when the sample was taken. */
  poll: number;
  /** Whether the sample came from an interleaved exchange (better TX timestamps). */
  interleaved: boolean;
}

/** Clock changes the discipline asks the I/O layer to apply to the clock. */
export type ClockAction =
  | { type: 'frequency'; ppm: number } // total frequency correction, absolute
  | { type: 'step'; seconds: number } // positive steps the clock forward
  /** A correction applied at once to a software clock (no step event: in-flight exchanges stay valid). */
  | { type: 'offset'; seconds: number }
  | { type: 'status'; synchronized: boolean; leap: LeapIndicator; maxErrorS: number; estErrorS: number };

/** What the local server advertises (from the discipline's reference state). */
export interface ReferenceState {
  synchronized: boolean;
  leap: LeapIndicator;
  stratum: number;
  refId: number;
  refTime: Instant; // 0n if never synchronised
  rootDelay: number;
  rootDispersion: number;
  /** log2 s, e.g. -20 for about 1 µs. */
  precision: number;
  /** smoothtime: seconds to subtract from local time in everything served (src/leap/smoother.ts). */
  smoothOffset?: number;
}

/** Per-source selection state, as chronyc `sources` shows it in column S. */
export type SelectState = '*' | '+' | '-' | 'x' | '~' | '?';

export interface SourceSelectOptions {
  prefer: boolean;
  noselect: boolean;
  trust: boolean;
  require: boolean;
}

/**
 * chrony's defaults for a `server` source (chrony.conf(5)), shared by the config parser and the
 * engine; except polltarget: 16, not 8 (more samples at short polls while the measurement noise
 * dominates, docs/discipline.md "Poll adaptation"; `polltarget 8` restores chrony's).
 */
export const SOURCE_DEFAULTS = Object.freeze({
  minpoll: 6,
  maxpoll: 10,
  iburst: false,
  burst: false,
  prefer: false,
  noselect: false,
  trust: false,
  require: false,
  maxdelay: 3,
  polltarget: 16,
  xleave: false,
  offline: false,
});
