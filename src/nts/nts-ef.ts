/**
 * NTS extension fields of NTP packets (RFC 8915 §5): building them, locating them in a decoded
 * packet, and the body of the NTS Authenticator and Encrypted Extension Fields field.
 *
 * Every parser here is total (returns null or a reason, never throws) and bounded by its input.
 */
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  MIN_EXTENSION_LENGTH,
  NTP_HEADER_LENGTH,
  type NtpPacket,
} from '../ntp/packet.js';
import type { Aead } from './aead.js';

export { EF_NTS_AUTH_AND_EEF, EF_NTS_COOKIE, EF_NTS_COOKIE_PLACEHOLDER, EF_NTS_UNIQUE_IDENTIFIER };

/** RFC 8915 §5.3: at least 32 random bytes. */
export const UNIQUE_ID_LENGTH = 32;
/** Cookies a client holds at most (RFC 8915 §5.7, chrony and NTPsec). */
export const MAX_COOKIES = 8;
/** Longest cookie a client stores (chrony's NKE_MAX_COOKIE_LENGTH). */
export const MAX_COOKIE_LENGTH = 256;
/** Total bytes of cookie and placeholder fields in one request (chrony: 8 × 108). */
export const MAX_TOTAL_COOKIE_LENGTH = 8 * 108;
/** KoD code of an NTS NAK: "NTSN". */
export const KOD_NTSN = 0x4e54534e;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** One extension field on the wire: type, length, body, zero padding to 4 (and to 16 bytes). */
export function encodeEf(type: number, body: Uint8Array): Uint8Array {
  const len = Math.max(MIN_EXTENSION_LENGTH, pad4(4 + body.length));
  if (len > 0xffff) throw new RangeError('extension field too long');
  const out = new Uint8Array(len);
  out[0] = type >>> 8;
  out[1] = type & 0xff;
  out[2] = len >>> 8;
  out[3] = len & 0xff;
  out.set(body, 4);
  return out;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export interface LocatedEf {
  type: number;
  /** Offset of the field's header in the datagram. */
  start: number;
  /** Wire length (header included). */
  length: number;
  body: Uint8Array;
}

/**
 * The extension fields of a decoded NTPv4 packet with their offsets (the decoder keeps each
 * body with its padding, so a field's wire length is 4 + body length).
 */
export function locateEfs(packet: NtpPacket): LocatedEf[] {
  const out: LocatedEf[] = [];
  let off = NTP_HEADER_LENGTH;
  for (const ef of packet.extensions) {
    const length = 4 + ef.body.length;
    out.push({ type: ef.type, start: off, length, body: ef.body });
    off += length;
  }
  return out;
}

/** Parses a run of extension fields (the plaintext of the encrypted fields); null if malformed. */
export function parseEfList(data: Uint8Array, maxFields = 64): { type: number; body: Uint8Array }[] | null {
  const out: { type: number; body: Uint8Array }[] = [];
  let off = 0;
  while (off < data.length) {
    if (out.length >= maxFields || data.length - off < 4) return null;
    const type = (data[off]! << 8) | data[off + 1]!;
    const len = (data[off + 2]! << 8) | data[off + 3]!;
    if (len < MIN_EXTENSION_LENGTH || len % 4 !== 0 || len > data.length - off) return null;
    out.push({ type, body: data.subarray(off + 4, off + len) });
    off += len;
  }
  return out;
}

/**
 * Builds the NTS Authenticator and Encrypted Extension Fields field: body = nonce length u16,
 * ciphertext length u16, nonce, padding, ciphertext, padding. `ad` is the packet up to this field.
 */
export function buildAuthEf(
  aead: Aead,
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const ct = aead.seal(key, nonce, plaintext, [ad]);
  const body = new Uint8Array(4 + pad4(nonce.length) + pad4(ct.length));
  body[0] = nonce.length >>> 8;
  body[1] = nonce.length & 0xff;
  body[2] = ct.length >>> 8;
  body[3] = ct.length & 0xff;
  body.set(nonce, 4);
  body.set(ct, 4 + pad4(nonce.length));
  return encodeEf(EF_NTS_AUTH_AND_EEF, body);
}

/** Wire length of the authenticator field for `plaintextLength` bytes of encrypted fields. */
export function authEfLength(aead: Aead, plaintextLength: number): number {
  return Math.max(MIN_EXTENSION_LENGTH, 4 + 4 + pad4(aead.nonceLength) + pad4(aead.tagLength + plaintextLength));
}

/**
 * Splits an authenticator body into nonce and ciphertext; null if the lengths do not fit the
 * field or the algorithm (nonce: 16 bytes or more for AES-SIV, exactly 12 for GCM-SIV).
 */
export function parseAuthBody(aead: Aead, body: Uint8Array): { nonce: Uint8Array; ciphertext: Uint8Array } | null {
  if (body.length < 4) return null;
  const nonceLength = (body[0]! << 8) | body[1]!;
  const ctLength = (body[2]! << 8) | body[3]!;
  const nonceOk = aead.id === 15 ? nonceLength >= aead.nonceLength : nonceLength === aead.nonceLength;
  if (!nonceOk || ctLength < aead.tagLength) return null;
  if (4 + pad4(nonceLength) + pad4(ctLength) > body.length) return null;
  const ctStart = 4 + pad4(nonceLength);
  return { nonce: body.subarray(4, 4 + nonceLength), ciphertext: body.subarray(ctStart, ctStart + ctLength) };
}

/** Constant-time equality of two byte strings (lengths are public). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
