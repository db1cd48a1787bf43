/**
 * NTS server cookies (RFC 8915 §6 style) and the rotating master keys that seal them.
 *
 * Cookie = key id (u32) | nonce (16) | AES-SIV-CMAC-256 under the master key, associated data
 * the key id, of: AEAD id (u16) | C2S key | S2C key | zero padding to a multiple of 4. With the
 * 16-byte tag a cookie is 104 bytes for AEAD 15 and 72 for AEAD 30: always a multiple of 4, which
 * chrony's client requires.
 *
 * The current key seals; after `rotate()` the previous key still opens, so cookies handed out
 * just before a rotation keep working for one more rotation period (chrony and NTPsec do the
 * same). `dump()`/`load()` keep the keys across restarts (chrony's `ntsdumpdir`), in this text
 * format:
 *
 *   rubidium-nts-cookie-keys 1
 *   key <id: 8 hex digits> <key: 64 hex digits>      (current key first, then the previous)
 */
import { randomFillSync } from 'node:crypto';
import { ConfigError } from '../config/config-error.js';
import { AES_SIV_CMAC_256, aeadById, isAeadId, type AeadId, type AeadKey } from './aead.js';
import { RandomPool } from './random-pool.js';

export interface CookieContents {
  aead: AeadId;
  c2s: Uint8Array;
  s2c: Uint8Array;
}

const MASTER = AES_SIV_CMAC_256;
const NONCE_LENGTH = 16;
const HEADER_LENGTH = 4 + NONCE_LENGTH;
const DUMP_HEADER = 'rubidium-nts-cookie-keys 1';
/** Keys kept: the current one and the previous one. */
const KEYS_KEPT = 2;

export interface MasterKey {
  id: number;
  key: Uint8Array;
}

/** A master key ready for use: its id as the associated data, the key bound once. */
interface PreparedKey {
  id: number;
  idBytes: Uint8Array;
  aead: AeadKey;
}

function prepare(k: MasterKey): PreparedKey {
  return { id: k.id, idBytes: u32be(k.id), aead: MASTER.prepare(k.key) };
}

function u32be(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

function defaultRandomBytes(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n));
}

export class ServerCookieKeys {
  private readonly randomBytes: (n: number) => Uint8Array;
  private readonly nonces: RandomPool;
  private readonly nonce = new Uint8Array(NONCE_LENGTH);
  /** `openPlainAt`'s copies of a cookie's nonce and ciphertext (one buffer per cookie length). */
  private readonly openNonce = new Uint8Array(NONCE_LENGTH);
  private readonly ct15 = new Uint8Array(COOKIE_LENGTH_15 - HEADER_LENGTH);
  private readonly ct30 = new Uint8Array(COOKIE_LENGTH_30 - HEADER_LENGTH);
  /** Newest first. */
  private keys: MasterKey[];
  /** `keys`, prepared (same order). */
  private prepared: PreparedKey[];

  constructor(randomBytes: (n: number) => Uint8Array, keys?: MasterKey[]) {
    this.randomBytes = randomBytes;
    this.nonces = new RandomPool(randomBytes);
    if (keys && keys.length > 0) {
      this.keys = keys.slice(0, KEYS_KEPT);
    } else {
      const b = randomBytes(4);
      const id = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      this.keys = [{ id, key: randomBytes(MASTER.keyLength) }];
    }
    this.prepared = this.keys.map(prepare);
  }

  /** A new current key (id + 1); the previous current key is kept for opening only. */
  rotate(): void {
    const id = (this.keys[0]!.id + 1) >>> 0;
    this.keys = [{ id, key: this.randomBytes(MASTER.keyLength) }, ...this.keys].slice(0, KEYS_KEPT);
    this.prepared = this.keys.map(prepare);
  }

  keyIds(): number[] {
    return this.keys.map((k) => k.id);
  }

  seal(c: CookieContents): Uint8Array {
    const aead = aeadById(c.aead);
    if (!aead || c.c2s.length !== aead.keyLength || c.s2c.length !== aead.keyLength) {
      throw new RangeError('cookie keys do not match the AEAD');
    }
    const plain = new Uint8Array(plaintextLength(aead.keyLength));
    plain[0] = c.aead >>> 8;
    plain[1] = c.aead & 0xff;
    plain.set(c.c2s, 2);
    plain.set(c.s2c, 2 + aead.keyLength);
    const out = new Uint8Array(HEADER_LENGTH + MASTER.tagLength + plain.length);
    this.sealPlain(plain, out, 0);
    return out;
  }

  /** The contents of a cookie sealed by the current or previous key; null otherwise. Never throws. */
  open(cookie: Uint8Array): CookieContents | null {
    const plain = new Uint8Array(COOKIE_PLAIN_MAX);
    const aeadId = this.openPlain(cookie, plain);
    if (aeadId === 0) return null;
    const keyLength = aeadById(aeadId)!.keyLength;
    return { aead: aeadId, c2s: plain.slice(2, 2 + keyLength), s2c: plain.slice(2 + keyLength, 2 + 2 * keyLength) };
  }

  /**
   * `open` without allocation (the NTS server path): writes the cookie's plaintext (AEAD id u16,
   * C2S, S2C, padding; at most COOKIE_PLAIN_MAX bytes) at plain[0] and returns the AEAD id, or 0
   * when no current or previous key opens the cookie. Never throws.
   */
  openPlain(cookie: Uint8Array, plain: Uint8Array): AeadId | 0 {
    if (cookie.length !== COOKIE_LENGTH_15 && cookie.length !== COOKIE_LENGTH_30) return 0;
    if (plain.length < cookie.length - HEADER_LENGTH - MASTER.tagLength) return 0;
    const id = ((cookie[0]! << 24) | (cookie[1]! << 16) | (cookie[2]! << 8) | cookie[3]!) >>> 0;
    let k = this.prepared[0]!;
    if (k.id !== id) {
      const previous = this.prepared[1];
      if (!previous || previous.id !== id) return 0;
      k = previous;
    }
    const n = k.aead.openInto(cookie.subarray(4, HEADER_LENGTH), cookie.subarray(HEADER_LENGTH), k.idBytes, plain, 0);
    if (n < 2) return 0;
    const aeadId = (plain[0]! << 8) | plain[1]!;
    const aead = isAeadId(aeadId) ? aeadById(aeadId) : undefined;
    if (!aead || n !== plaintextLength(aead.keyLength)) return 0;
    return aead.id;
  }

  /**
   * `openPlain` of the cookie at data[at, at+length) (the NTS server's slot path): nonce and
   * ciphertext are copied to scratch buffers of this object instead of cut as views.
   */
  openPlainAt(data: Uint8Array, at: number, length: number, plain: Uint8Array): AeadId | 0 {
    const ct = length === COOKIE_LENGTH_15 ? this.ct15 : length === COOKIE_LENGTH_30 ? this.ct30 : null;
    if (!ct || plain.length < ct.length - MASTER.tagLength || data.length - at < length) return 0;
    const id = ((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!) >>> 0;
    let k = this.prepared[0]!;
    if (k.id !== id) {
      const previous = this.prepared[1];
      if (!previous || previous.id !== id) return 0;
      k = previous;
    }
    const nonce = this.openNonce;
    for (let i = 0; i < NONCE_LENGTH; i++) nonce[i] = data[at + 4 + i]!;
    const from = at + HEADER_LENGTH;
    for (let i = 0; i < ct.length; i++) ct[i] = data[from + i]!;
    const n = k.aead.openInto(nonce, ct, k.idBytes, plain, 0);
    if (n < 2) return 0;
    const aeadId = (plain[0]! << 8) | plain[1]!;
    const aead = isAeadId(aeadId) ? aeadById(aeadId) : undefined;
    if (!aead || n !== plaintextLength(aead.keyLength)) return 0;
    return aead.id;
  }

  /**
   * `seal` of a plaintext as `openPlain` returns it (exactly plaintextLength bytes: 68 for AEAD
   * 15, 36 for 30) under the current key, written at out[offset]; returns the cookie's length.
   */
  sealPlain(plain: Uint8Array, out: Uint8Array, offset: number): number {
    const k = this.prepared[0]!;
    this.nonces.fill(this.nonce, 0, NONCE_LENGTH);
    out.set(k.idBytes, offset);
    out.set(this.nonce, offset + 4);
    return HEADER_LENGTH + k.aead.sealInto(this.nonce, plain, k.idBytes, out, offset + HEADER_LENGTH);
  }

  /** The keys as text for the `ntsdumpdir` key file. */
  dump(): string {
    return [DUMP_HEADER, ...this.keys.map((k) => `key ${k.id.toString(16).padStart(8, '0')} ${hex(k.key)}`), ''].join(
      '\n',
    );
  }

  /**
   * Reads a key file written by `dump()`. Throws ConfigError naming `file:line` for anything
   * malformed: wrong first line, bad key line, duplicate id, no key or too many.
   */
  static load(
    text: string,
    file: string,
    randomBytes: (n: number) => Uint8Array = defaultRandomBytes,
  ): ServerCookieKeys {
    const lines = text.split('\n');
    if (lines[0]?.trim() !== DUMP_HEADER) {
      throw new ConfigError(`${file}:1: not an NTS key file (expected "${DUMP_HEADER}")`);
    }
    const keys: MasterKey[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const where = `${file}:${i + 1}`;
      const m = /^key\s+([0-9a-fA-F]{8})\s+([0-9a-fA-F]+)$/.exec(line);
      if (!m) throw new ConfigError(`${where}: expected "key <8 hex digits> <64 hex digits>"`);
      if (m[2]!.length !== MASTER.keyLength * 2) {
        throw new ConfigError(`${where}: key must be ${MASTER.keyLength * 2} hex digits, not ${m[2]!.length}`);
      }
      const id = parseInt(m[1]!, 16) >>> 0;
      if (keys.some((k) => k.id === id)) throw new ConfigError(`${where}: duplicate key id ${m[1]}`);
      if (keys.length >= KEYS_KEPT) throw new ConfigError(`${where}: more than ${KEYS_KEPT} keys`);
      keys.push({ id, key: Uint8Array.from(Buffer.from(m[2]!, 'hex')) });
    }
    if (keys.length === 0) throw new ConfigError(`${file}: no key`);
    return new ServerCookieKeys(randomBytes, keys);
  }
}

/** AEAD id + two keys, padded so the whole cookie is a multiple of 4 bytes. */
function plaintextLength(keyLength: number): number {
  return (2 + 2 * keyLength + 3) & ~3;
}

/** Length of the cookies sealed for this AEAD (104 for 15, 72 for 30). */
export function cookieLength(aead: AeadId): number {
  return HEADER_LENGTH + MASTER.tagLength + plaintextLength(aeadById(aead)!.keyLength);
}

const COOKIE_LENGTH_15 = HEADER_LENGTH + MASTER.tagLength + plaintextLength(32);
const COOKIE_LENGTH_30 = HEADER_LENGTH + MASTER.tagLength + plaintextLength(16);
/** Longest cookie plaintext: AEAD id, two 32-byte keys, padding (68 bytes). */
export const COOKIE_PLAIN_MAX = plaintextLength(32);

/** Bytes of a cookie's plaintext for an AEAD whose keys have `keyLength` bytes. */
export function cookiePlainLength(keyLength: number): number {
  return plaintextLength(keyLength);
}
