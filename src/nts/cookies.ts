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
import { AES_SIV_CMAC_256, aeadById, isAeadId, type AeadId } from './aead.js';

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
  /** Newest first. */
  private keys: MasterKey[];

  constructor(randomBytes: (n: number) => Uint8Array, keys?: MasterKey[]) {
    this.randomBytes = randomBytes;
    if (keys && keys.length > 0) {
      this.keys = keys.slice(0, KEYS_KEPT);
    } else {
      const b = randomBytes(4);
      const id = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      this.keys = [{ id, key: randomBytes(MASTER.keyLength) }];
    }
  }

  /** A new current key (id + 1); the previous current key is kept for opening only. */
  rotate(): void {
    const id = (this.keys[0]!.id + 1) >>> 0;
    this.keys = [{ id, key: this.randomBytes(MASTER.keyLength) }, ...this.keys].slice(0, KEYS_KEPT);
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
    const k = this.keys[0]!;
    const id = u32be(k.id);
    const nonce = this.randomBytes(NONCE_LENGTH);
    const ct = MASTER.seal(k.key, nonce, plain, [id]);
    const out = new Uint8Array(HEADER_LENGTH + ct.length);
    out.set(id);
    out.set(nonce, 4);
    out.set(ct, HEADER_LENGTH);
    return out;
  }

  /** The contents of a cookie sealed by the current or previous key; null otherwise. Never throws. */
  open(cookie: Uint8Array): CookieContents | null {
    if (cookie.length < HEADER_LENGTH + MASTER.tagLength + plaintextLength(16)) return null;
    const id = ((cookie[0]! << 24) | (cookie[1]! << 16) | (cookie[2]! << 8) | cookie[3]!) >>> 0;
    const k = this.keys.find((m) => m.id === id);
    if (!k) return null;
    const plain = MASTER.open(k.key, cookie.subarray(4, HEADER_LENGTH), cookie.subarray(HEADER_LENGTH), [
      cookie.subarray(0, 4),
    ]);
    if (!plain || plain.length < 2) return null;
    const aeadId = (plain[0]! << 8) | plain[1]!;
    const aead = isAeadId(aeadId) ? aeadById(aeadId) : undefined;
    if (!aead || plain.length !== plaintextLength(aead.keyLength)) return null;
    return {
      aead: aead.id,
      c2s: plain.slice(2, 2 + aead.keyLength),
      s2c: plain.slice(2 + aead.keyLength, 2 + 2 * aead.keyLength),
    };
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
