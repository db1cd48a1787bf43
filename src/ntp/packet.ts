/**
 * NTP packet codec (RFC 5905 §7.3 header, RFC 7822 extension fields and MAC).
 *
 * Parsing rules (deterministic, RFC 7822 §7.5, the same rules chrony applies):
 * - the length must be at least 48 and a multiple of 4, at most MAX_PACKET_LENGTH;
 * - versions 1..4 are accepted, modes 6 (control) and 7 (private) are rejected here because they
 *   have a different layout (mode 6 has its own decoder elsewhere);
 * - v1-v3: whatever follows the header must be a MAC (4-byte key id + 16..64 byte digest) or a
 *   4-byte crypto-NAK (key id 0);
 * - v4: a 4-byte remainder right after the header is a crypto-NAK (must be zero); otherwise
 *   while more than 24 bytes remain an extension field is parsed (type u16, length u16 counting
 *   the 4-byte header, length ≥ 16, multiple of 4, within the packet); a remainder of 20 or 24
 *   bytes is a MAC; any other remainder is invalid. Consequently a last extension field without
 *   a MAC must be at least 28 bytes long (RFC 7822 §7.5).
 * - at most MAX_EXTENSION_FIELDS extension fields.
 *
 * Decode failures carry a short stable reason code (DecodeReason) meant to be used as a counter
 * key. Decoding never throws.
 */
import type { LeapIndicator } from '../clock/clock.js';
import type { Ntp64 } from '../time/ntp-time.js';
import { secondsToShort, shortToSeconds } from '../time/ntp-time.js';

export const NTP_HEADER_LENGTH = 48;
/** 48-byte header + 1024 bytes of extension fields + a 24-byte MAC (chrony's bound too; NTPv3 MACs up to 68 fit). */
export const MAX_PACKET_LENGTH = 48 + 1024 + 24;
export const MAX_EXTENSION_FIELDS = 16;
export const MIN_EXTENSION_LENGTH = 16;

export const MODE_SYMMETRIC_ACTIVE = 1;
export const MODE_SYMMETRIC_PASSIVE = 2;
export const MODE_CLIENT = 3;
export const MODE_SERVER = 4;
export const MODE_BROADCAST = 5;
export const MODE_CONTROL = 6;
export const MODE_PRIVATE = 7;

export interface ExtensionField {
  type: number; // u16
  /** Body bytes (the field value including any padding inside the field's length). */
  body: Uint8Array;
}

export interface NtpMac {
  keyId: number; // u32
  /** 16 (MD5) or 20 (SHA1) bytes; empty for a crypto-NAK (keyId 0). */
  digest: Uint8Array;
}

export interface NtpPacket {
  leap: LeapIndicator;
  version: number; // 0..7 on the wire; decode accepts 1..4
  mode: number; // 0..7
  stratum: number; // u8
  poll: number; // s8, log2 s
  precision: number; // s8, log2 s
  rootDelay: number; // seconds (NTP short format, unsigned)
  rootDispersion: number; // seconds
  refId: number; // u32
  refTime: Ntp64;
  origin: Ntp64;
  receive: Ntp64;
  transmit: Ntp64;
  extensions: ExtensionField[];
  mac?: NtpMac;
}

export const DECODE_REASONS = [
  'short', // fewer than 48 bytes (or empty)
  'length', // not a multiple of 4
  'oversize', // more than MAX_PACKET_LENGTH
  'version', // version 0 or 5..7
  'mode', // mode 6 or 7
  'extension-length', // malformed extension field (length < 16, not multiple of 4, past end)
  'extension-count', // more than MAX_EXTENSION_FIELDS
  'mac', // trailing data that is neither an extension field nor a valid MAC / crypto-NAK
] as const;
export type DecodeReason = (typeof DECODE_REASONS)[number];

export type DecodeResult = { ok: true; packet: NtpPacket } | { ok: false; reason: DecodeReason };

function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

function u64(b: Uint8Array, off: number): Ntp64 {
  return (BigInt(u32(b, off)) << 32n) | BigInt(u32(b, off + 4));
}

function s8(v: number): number {
  return v >= 128 ? v - 256 : v;
}

function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

function put64(b: Uint8Array, off: number, v: Ntp64): void {
  put32(b, off, Number((v >> 32n) & 0xffff_ffffn));
  put32(b, off + 4, Number(v & 0xffff_ffffn));
}

/** Wire length of an extension field with this body (padded to 4 and to at least 16 bytes). */
export function extensionWireLength(body: Uint8Array): number {
  return Math.max(MIN_EXTENSION_LENGTH, (4 + body.length + 3) & ~3);
}

/**
 * Encodes a packet. Extension bodies are zero-padded so each field is a multiple of 4 and at
 * least 16 bytes long. Throws RangeError for values that do not fit their fields.
 */
export function encodePacket(p: NtpPacket): Uint8Array {
  let len = NTP_HEADER_LENGTH;
  for (const ef of p.extensions) len += extensionWireLength(ef.body);
  if (p.mac) len += 4 + p.mac.digest.length;
  if (len % 4 !== 0) throw new RangeError('MAC digest length must be a multiple of 4');
  const b = new Uint8Array(len);
  if (p.leap < 0 || p.leap > 3) throw new RangeError('leap out of range');
  if (p.version < 0 || p.version > 7 || p.mode < 0 || p.mode > 7) throw new RangeError('version/mode out of range');
  b[0] = (p.leap << 6) | (p.version << 3) | p.mode;
  b[1] = p.stratum & 0xff;
  b[2] = p.poll & 0xff;
  b[3] = p.precision & 0xff;
  put32(b, 4, secondsToShort(p.rootDelay));
  put32(b, 8, secondsToShort(p.rootDispersion));
  put32(b, 12, p.refId >>> 0);
  put64(b, 16, p.refTime);
  put64(b, 24, p.origin);
  put64(b, 32, p.receive);
  put64(b, 40, p.transmit);
  let off = NTP_HEADER_LENGTH;
  for (const ef of p.extensions) {
    const l = extensionWireLength(ef.body);
    if (l > 0xffff) throw new RangeError('extension field too long');
    b[off] = (ef.type >>> 8) & 0xff;
    b[off + 1] = ef.type & 0xff;
    b[off + 2] = l >>> 8;
    b[off + 3] = l & 0xff;
    b.set(ef.body, off + 4);
    off += l;
  }
  if (p.mac) {
    put32(b, off, p.mac.keyId >>> 0);
    b.set(p.mac.digest, off + 4);
  }
  return b;
}

/** Decodes a datagram; never throws. */
export function decodePacket(buf: Uint8Array): DecodeResult {
  if (buf.length < 1) return { ok: false, reason: 'short' };
  const lvm = buf[0]!;
  const version = (lvm >> 3) & 7;
  const mode = lvm & 7;
  if (version < 1 || version > 4) return { ok: false, reason: 'version' };
  if (mode === MODE_CONTROL || mode === MODE_PRIVATE) return { ok: false, reason: 'mode' };
  if (buf.length < NTP_HEADER_LENGTH) return { ok: false, reason: 'short' };
  if (buf.length > MAX_PACKET_LENGTH) return { ok: false, reason: 'oversize' };
  if (buf.length % 4 !== 0) return { ok: false, reason: 'length' };

  const packet: NtpPacket = {
    leap: (lvm >> 6) as LeapIndicator,
    version,
    mode,
    stratum: buf[1]!,
    poll: s8(buf[2]!),
    precision: s8(buf[3]!),
    rootDelay: shortToSeconds(u32(buf, 4)),
    rootDispersion: shortToSeconds(u32(buf, 8)),
    refId: u32(buf, 12),
    refTime: u64(buf, 16),
    origin: u64(buf, 24),
    receive: u64(buf, 32),
    transmit: u64(buf, 40),
    extensions: [],
  };

  let off = NTP_HEADER_LENGTH;
  let rem = buf.length - off;
  if (rem === 0) return { ok: true, packet };

  // Crypto-NAK: a lone zero key id right after the header.
  if (rem === 4) {
    if (u32(buf, off) !== 0) return { ok: false, reason: 'mac' };
    packet.mac = { keyId: 0, digest: new Uint8Array(0) };
    return { ok: true, packet };
  }

  if (version <= 3) {
    // Key id + 16..64-byte MAC (chrony sends NTPv3 for digests longer than 20 bytes, e.g. SHA256).
    if (rem < 20 || rem > 68) return { ok: false, reason: 'mac' };
    packet.mac = { keyId: u32(buf, off), digest: buf.slice(off + 4) };
    return { ok: true, packet };
  }

  while (rem > 24) {
    if (packet.extensions.length >= MAX_EXTENSION_FIELDS) return { ok: false, reason: 'extension-count' };
    const type = (buf[off]! << 8) | buf[off + 1]!;
    const len = (buf[off + 2]! << 8) | buf[off + 3]!;
    if (len < MIN_EXTENSION_LENGTH || len % 4 !== 0 || len > rem) {
      return { ok: false, reason: 'extension-length' };
    }
    // A view, not a copy (a copy per field cost a sixth of the NTS server's time): bodies share
    // the datagram's memory, so callers that keep one beyond the datagram copy it.
    packet.extensions.push({ type, body: buf.subarray(off + 4, off + len) });
    off += len;
    rem -= len;
  }
  if (rem === 0) return { ok: true, packet };
  if (rem === 20 || rem === 24) {
    packet.mac = { keyId: u32(buf, off), digest: buf.slice(off + 4) };
    return { ok: true, packet };
  }
  // 4..16 bytes left: too short for a MAC, and an extension field here would be ambiguous.
  return { ok: false, reason: packet.extensions.length > 0 ? 'extension-length' : 'mac' };
}

/** NTS extension field types (RFC 8915); src/nts/ handles them. */
export const EF_NTS_UNIQUE_IDENTIFIER = 0x0104;
export const EF_NTS_COOKIE = 0x0204;
export const EF_NTS_COOKIE_PLACEHOLDER = 0x0304;
export const EF_NTS_AUTH_AND_EEF = 0x0404;

export function isNtsExtension(type: number): boolean {
  return (
    type === EF_NTS_UNIQUE_IDENTIFIER ||
    type === EF_NTS_COOKIE ||
    type === EF_NTS_COOKIE_PLACEHOLDER ||
    type === EF_NTS_AUTH_AND_EEF
  );
}
