/**
 * Symmetric-key authentication of NTP packets (RFC 5905 MAC, RFC 8573 AES-CMAC), as chrony 4.3
 * does it (ntp_auth.c, keys.c):
 * - the MAC covers every byte before it (header and any extension fields);
 * - hashes: digest(key || packet) — MD5, SHA1, SHA256, SHA384, SHA512, SHA3-224/256/384/512;
 *   CMAC: AES-CMAC(key, packet) with AES128 (16-byte key) or AES256 (32-byte key);
 * - in NTPv4 packets a MAC is truncated to 20 bytes so extension fields parse deterministically
 *   (RFC 7822); in NTPv1-3 packets it may be up to 64 bytes;
 * - a received MAC must have exactly the length we would send for its version (20 bytes for a
 *   longer digest in v4, the full digest otherwise) and at least 16 bytes; comparison is
 *   constant-time;
 * - a server answers an authentic request signed with the same key, and drops (no answer, no
 *   crypto-NAK) a request with an unknown key or a bad MAC, as chronyd does.
 *
 * Sans-IO: keys come in as `SymmetricKey` objects (src/config/keys-file.ts). TIGER and WHIRLPOOL
 * (which Debian's nettle-built chronyd refuses too), SHA224, RIPEMD160 and AES192 have no code
 * here: `keyUsable` says why.
 */
import * as crypto from 'node:crypto';
import { cmac } from '@noble/ciphers/aes.js';
import type { KeyAlgorithm, SymmetricKey } from '../config/keys-file.js';
import type { Endpoint } from '../engine/types.js';
import type { Instant } from '../time/ntp-time.js';
import type {
  AuthInfo,
  ClientAuthenticator,
  ClientAuthVerdict,
  ServerAuthenticator,
  ServerAuthResult,
} from './auth.js';
import type { NtpPacket } from './packet.js';
import { isNtsExtension, NTP_HEADER_LENGTH } from './packet.js';

/** chrony's key type codes (hash.h HSH_*, cmac.h CMC_*), as cmdmon's authdata reports them. */
export const KEY_TYPE_CODES: Readonly<Partial<Record<KeyAlgorithm, number>>> = {
  MD5: 1,
  SHA1: 2,
  SHA256: 3,
  SHA384: 4,
  SHA512: 5,
  'SHA3-224': 6,
  'SHA3-256': 7,
  'SHA3-384': 8,
  'SHA3-512': 9,
  TIGER: 10,
  WHIRLPOOL: 11,
  AES128: 13,
  AES256: 14,
};

/** chronyc's names for the key type codes (client.c). */
export const KEY_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'MD5',
  2: 'SHA1',
  3: 'SHA256',
  4: 'SHA384',
  5: 'SHA512',
  6: 'SHA3-224',
  7: 'SHA3-256',
  8: 'SHA3-384',
  9: 'SHA3-512',
  10: 'TIGER',
  11: 'WHIRLPOOL',
  13: 'AES128',
  14: 'AES256',
};

/** node:crypto digest names and lengths of the hashes we compute. */
const HASHES: Readonly<Partial<Record<KeyAlgorithm, { name: string; length: number }>>> = {
  MD5: { name: 'md5', length: 16 },
  SHA1: { name: 'sha1', length: 20 },
  SHA256: { name: 'sha256', length: 32 },
  SHA384: { name: 'sha384', length: 48 },
  SHA512: { name: 'sha512', length: 64 },
  'SHA3-224': { name: 'sha3-224', length: 28 },
  'SHA3-256': { name: 'sha3-256', length: 32 },
  'SHA3-384': { name: 'sha3-384', length: 48 },
  'SHA3-512': { name: 'sha3-512', length: 64 },
};
const CMAC_KEY_BYTES: Readonly<Partial<Record<KeyAlgorithm, number>>> = { AES128: 16, AES256: 32 };

/** Shortest MAC (digest without key id) chrony accepts or sends. */
export const MIN_MAC_LENGTH = 16;
/** Longest MAC in an NTPv4 packet (longer digests are truncated, RFC 7822). */
export const MAX_V4_MAC_LENGTH = 20;
/** Longest MAC in NTPv1-3 packets (SHA512). */
export const MAX_MAC_LENGTH = 64;

/** Why a key cannot be used for NTP authentication, or null if it can. */
export function keyUsable(key: SymmetricKey): string | null {
  if (HASHES[key.algorithm]) return null;
  const need = CMAC_KEY_BYTES[key.algorithm];
  if (need !== undefined) {
    return key.length === need ? null : `${key.algorithm} key needs ${need * 8} bits, it has ${key.length * 8}`;
  }
  return `key type ${key.algorithm} is not supported`;
}

/** Full (untruncated) MAC length of a key's algorithm. */
export function fullMacLength(key: SymmetricKey): number {
  return HASHES[key.algorithm]?.length ?? 16;
}

/** The MAC length sent in a packet of this NTP version (chrony's truncation). */
export function macLengthForVersion(key: SymmetricKey, version: number): number {
  return Math.min(fullMacLength(key), version === 4 ? MAX_V4_MAC_LENGTH : MAX_MAC_LENGTH);
}

/** The untruncated MAC of `data` (hash(key || data) or AES-CMAC). Throws for unusable keys. */
export function computeMac(key: SymmetricKey, data: Uint8Array): Uint8Array {
  const reason = keyUsable(key);
  if (reason) throw new Error(`key ${key.id}: ${reason}`);
  const material = key.material();
  try {
    const h = HASHES[key.algorithm];
    if (h) return new Uint8Array(crypto.createHash(h.name).update(material).update(data).digest());
    return cmac(data, material);
  } finally {
    material.fill(0);
  }
}

/** Appends key id and MAC to `data` (a packet without MAC) for an NTP packet of `version`. */
export function signPacket(key: SymmetricKey, data: Uint8Array, version: number): Uint8Array {
  const mac = computeMac(key, data).subarray(0, macLengthForVersion(key, version));
  const out = new Uint8Array(data.length + 4 + mac.length);
  out.set(data, 0);
  const v = new DataView(out.buffer);
  v.setUint32(data.length, key.id >>> 0);
  out.set(mac, data.length + 4);
  return out;
}

/**
 * Checks the MAC at the end of `data` (whose decoding is `packet`) with `key`. The received MAC
 * must be as long as the one we would send for the packet's version (chrony's check_auth).
 */
export function verifyPacketMac(key: SymmetricKey, data: Uint8Array, packet: NtpPacket): boolean {
  const mac = packet.mac;
  if (!mac || mac.keyId !== key.id || mac.digest.length < MIN_MAC_LENGTH) return false;
  const start = data.length - 4 - mac.digest.length;
  if (start < NTP_HEADER_LENGTH) return false;
  const trunc = packet.version === 4 && mac.digest.length <= MAX_V4_MAC_LENGTH ? MAX_V4_MAC_LENGTH : MAX_MAC_LENGTH;
  const expectedLength = Math.min(fullMacLength(key), trunc);
  if (expectedLength !== mac.digest.length) return false;
  const expected = computeMac(key, data.subarray(0, start)).subarray(0, expectedLength);
  return crypto.timingSafeEqual(expected, mac.digest);
}

function symmetricInfo(key: SymmetricKey): AuthInfo {
  const code = KEY_TYPE_CODES[key.algorithm] ?? 0;
  return {
    mode: 'symmetric',
    keyId: key.id,
    keyType: code,
    keyTypeName: KEY_TYPE_NAMES[code] ?? key.algorithm,
    keyLength: key.length * 8,
    keAttempts: 0,
    lastKeAgo: null,
    cookies: 0,
    cookieLength: 0,
    naks: 0,
  };
}

/** `key N` on a source: signs every request with key N, accepts only answers signed with key N. */
export class SymmetricClientAuth implements ClientAuthenticator {
  readonly mode = 'symmetric' as const;

  constructor(private readonly key: SymmetricKey) {
    const reason = keyUsable(key);
    if (reason) throw new Error(`key ${key.id}: ${reason}`);
  }

  info(_now: Instant): AuthInfo {
    return symmetricInfo(this.key);
  }

  ready(_now: Instant): boolean {
    return true;
  }

  signRequest(header: Uint8Array, _now: Instant): Uint8Array {
    return signPacket(this.key, header, (header[0]! >> 3) & 7);
  }

  verifyResponse(data: Uint8Array, packet: NtpPacket, _now: Instant): ClientAuthVerdict {
    const mac = packet.mac;
    if (!mac || mac.digest.length === 0) return { ok: false, reason: 'no-mac' };
    if (mac.keyId !== this.key.id) return { ok: false, reason: 'wrong-key' };
    if (!verifyPacketMac(this.key, data, packet)) return { ok: false, reason: 'bad-mac' };
    return { ok: true };
  }
}

export interface SymmetricServerStats {
  authentic: number;
  unknownKey: number;
  badMac: number;
}

/**
 * The server side: any key of the key file may sign a request (chrony); with ntp.conf's
 * `trustedkey`, only the trusted ones (ntpd). Unknown key or bad MAC: dropped, no crypto-NAK.
 */
export class SymmetricServerAuth implements ServerAuthenticator {
  private readonly keys = new Map<number, SymmetricKey>();
  readonly stats: SymmetricServerStats = { authentic: 0, unknownKey: 0, badMac: 0 };

  constructor(keys: Iterable<SymmetricKey>, trusted?: ReadonlySet<number>) {
    for (const k of keys) {
      if (keyUsable(k) !== null) continue;
      if (trusted && !trusted.has(k.id)) continue;
      this.keys.set(k.id, k);
    }
  }

  get keyCount(): number {
    return this.keys.size;
  }

  handles(packet: NtpPacket): boolean {
    return packet.mac !== undefined && !packet.extensions.some((ef) => isNtsExtension(ef.type));
  }

  verifyRequest(data: Uint8Array, packet: NtpPacket, _from: Endpoint, _now: Instant): ServerAuthResult {
    const mac = packet.mac;
    const key = mac ? this.keys.get(mac.keyId) : undefined;
    if (!mac || !key || mac.digest.length === 0) {
      this.stats.unknownKey++;
      return { kind: 'drop', reason: 'unknown-key' };
    }
    if (!verifyPacketMac(key, data, packet)) {
      this.stats.badMac++;
      return { kind: 'drop', reason: 'bad-mac' };
    }
    this.stats.authentic++;
    return {
      kind: 'ok',
      keyId: key.id,
      sign: (header: Uint8Array) => signPacket(key, header, (header[0]! >> 3) & 7),
    };
  }
}
