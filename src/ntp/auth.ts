/**
 * Authentication hooks of the NTP client and server (sans-IO).
 *
 * The association and the server know nothing about keys or NTS: they call one of these objects
 * to sign what they send and to check what they receive. Symmetric keys (`key N`, RFC 5905 MAC)
 * and NTS (RFC 8915 extension fields) each implement them.
 *
 * Authenticated packets are signed after T3 is written, so the I/O layer never rewrites their
 * transmit timestamp (no `stampTransmit`); interleaved mode gives them the kernel TX time.
 */
import type { Endpoint } from '../engine/types.js';
import type { Instant } from '../time/ntp-time.js';
import type { ExtensionField, NtpPacket } from './packet.js';

/** Outcome of checking an answer to our request. */
export type ClientAuthVerdict =
  | { ok: true }
  /** An authentic NTS NAK (KoD NTSN echoing our Unique Identifier): the client must redo NTS-KE. */
  | { ok: false; nak: true; reason: 'nts-nak' }
  | { ok: false; nak?: false; reason: string };

/** What `authdata` shows for a source (chronyc's columns: Mode KeyID Type KLen Last Atmp NAK Cook CLen). */
export interface AuthInfo {
  mode: 'symmetric' | 'nts';
  /** Symmetric key id; 0 with NTS. */
  keyId: number;
  /** chrony's cmdmon key type code (symmetric: chrony's hash/CMAC id; NTS: the AEAD id). */
  keyType: number;
  /** e.g. 'MD5', 'SHA1', 'AES128', 'AES-SIV-CMAC-256', 'AES-128-GCM-SIV'. */
  keyTypeName: string;
  /** Key length in bits. */
  keyLength: number;
  /** NTS: NTS-KE attempts since the last success, seconds since the last successful NTS-KE. */
  keAttempts: number;
  lastKeAgo: number | null;
  /** NTS: cookies held and the length of the newest. */
  cookies: number;
  cookieLength: number;
  /** NTS NAKs received. */
  naks: number;
}

export interface ClientAuthenticator {
  readonly mode: 'symmetric' | 'nts';
  info(now: Instant): AuthInfo;
  /** False while no request can be signed (NTS: no cookie left or NTS-KE needed). */
  ready(now: Instant): boolean;
  /**
   * Returns the request to send: the 48-byte header it is given followed by the MAC or the NTS
   * extension fields. Called only when `ready(now)`.
   */
  signRequest(header: Uint8Array, now: Instant): Uint8Array;
  /**
   * Checks an answer to the last signed request: the whole datagram and its decoding. Called
   * only for answers that passed the origin test (it matches our outstanding request).
   */
  verifyResponse(data: Uint8Array, packet: NtpPacket, now: Instant): ClientAuthVerdict;
}

/** Outcome of checking an authenticated request. */
export type ServerAuthResult =
  /** Authentic: `sign` appends the MAC / NTS fields to the 48-byte answer header. */
  | { kind: 'ok'; sign: (header: Uint8Array) => Uint8Array; keyId?: number }
  /** NTS cookie could not be used: answer with an unauthenticated KoD NTSN carrying these fields. */
  | { kind: 'nak'; extensions: ExtensionField[] }
  | { kind: 'drop'; reason: string };

export interface ServerAuthenticator {
  /** True if this authenticator is the one for this request (it carries a MAC, or NTS fields). */
  handles(packet: NtpPacket): boolean;
  verifyRequest(data: Uint8Array, packet: NtpPacket, from: Endpoint, now: Instant): ServerAuthResult;
}
