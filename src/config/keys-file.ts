/**
 * Symmetric key files, in both dialects:
 * - chrony (`keyfile`): `ID [TYPE] KEY`, ID a 32-bit unsigned integer, TYPE a hash (MD5 — the
 *   default —, SHA1, SHA256, SHA384, SHA512, SHA3-224/256/384/512, TIGER, WHIRLPOOL) or a CMAC
 *   cipher (AES128 with a 16-byte key, AES256 with 32), KEY `ASCII:text`, `HEX:hexdigits` or
 *   plain text. Names are case-sensitive, as chronyd compares them.
 * - ntp (`keys`, NTPsec and Classic): `keyno type key`, keyno 1..65535, type a digest or cipher
 *   name (case-insensitive; Classic's `M` = MD5, `AES` = AES-128), key printable ASCII without `#`
 *   when at most 20 characters, otherwise hex; at most 32 bytes decoded.
 *
 * Errors name "file:line" and the key id, never the key material; `SymmetricKey` hides its bytes
 * from console.log/inspect/JSON so they cannot end up in a log by accident.
 */
import * as fs from 'node:fs';
import { inspect } from 'node:util';
import { ConfigError } from './chrony-conf.js';

export type KeyFileDialect = 'chrony' | 'ntp';

/** chrony's canonical algorithm names (what a converted key file uses). */
export type KeyAlgorithm =
  | 'MD5'
  | 'SHA1'
  | 'SHA256'
  | 'SHA384'
  | 'SHA512'
  | 'SHA3-224'
  | 'SHA3-256'
  | 'SHA3-384'
  | 'SHA3-512'
  | 'TIGER'
  | 'WHIRLPOOL'
  | 'SHA224'
  | 'RIPEMD160'
  | 'AES128'
  | 'AES192'
  | 'AES256';

export class SymmetricKey {
  readonly #material: Uint8Array;

  constructor(
    readonly id: number,
    readonly algorithm: KeyAlgorithm,
    material: Uint8Array,
    /** "file:line" */
    readonly origin: string,
  ) {
    this.#material = material;
  }

  /** The key bytes (a copy). Never log them. */
  material(): Uint8Array {
    return this.#material.slice();
  }

  get length(): number {
    return this.#material.length;
  }

  toJSON(): object {
    return { id: this.id, algorithm: this.algorithm, length: this.length, origin: this.origin };
  }

  [inspect.custom](): string {
    return `SymmetricKey { id: ${this.id}, algorithm: ${this.algorithm}, length: ${this.length}, key: <hidden> }`;
  }
}

const CHRONY_HASHES = new Set<KeyAlgorithm>([
  'MD5',
  'SHA1',
  'SHA256',
  'SHA384',
  'SHA512',
  'SHA3-224',
  'SHA3-256',
  'SHA3-384',
  'SHA3-512',
  'TIGER',
  'WHIRLPOOL',
]);
const CMAC_KEY_LENGTH: Partial<Record<KeyAlgorithm, number>> = { AES128: 16, AES192: 24, AES256: 32 };

/** ntp type names (lower-cased) → algorithm. */
const NTP_TYPES = new Map<string, KeyAlgorithm>([
  ['m', 'MD5'],
  ['md5', 'MD5'],
  ['sha', 'SHA1'],
  ['sha1', 'SHA1'],
  ['sha224', 'SHA224'],
  ['sha256', 'SHA256'],
  ['sha384', 'SHA384'],
  ['sha512', 'SHA512'],
  ['sha3-224', 'SHA3-224'],
  ['sha3-256', 'SHA3-256'],
  ['sha3-384', 'SHA3-384'],
  ['sha3-512', 'SHA3-512'],
  ['ripemd160', 'RIPEMD160'],
  ['rmd160', 'RIPEMD160'],
  ['aes', 'AES128'],
  ['aes128', 'AES128'],
  ['aes-128', 'AES128'],
  ['aes128cmac', 'AES128'],
  ['aes-128-cmac', 'AES128'],
  ['aes-192', 'AES192'],
  ['aes192', 'AES192'],
  ['aes-256', 'AES256'],
  ['aes256', 'AES256'],
  ['aes256cmac', 'AES256'],
]);

const NTP_MAX_KEY_BYTES = 32;
const MAX_KEYS = 65536;

function decodeHex(hex: string): Uint8Array | null {
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) return null;
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function parseChronyLine(words: string[], where: string): SymmetricKey {
  if (words.length < 2 || words.length > 3) {
    throw new ConfigError(`${where}: could not parse key (expected 'ID [TYPE] KEY')`);
  }
  if (!/^\d+$/.test(words[0]!) || Number(words[0]) > 0xffffffff) {
    throw new ConfigError(`${where}: invalid key ID '${words[0]}' (must be 0..4294967295)`);
  }
  const id = Number(words[0]);
  const type = words.length === 3 ? words[1]! : 'MD5';
  const text = words[words.length - 1]!;
  let key: Uint8Array | null;
  if (text.startsWith('HEX:')) key = decodeHex(text.slice(4));
  else key = new TextEncoder().encode(text.startsWith('ASCII:') ? text.slice(6) : text);
  if (!key || key.length === 0) throw new ConfigError(`${where}: could not decode key ${id}`);
  const alg = type as KeyAlgorithm;
  if (CHRONY_HASHES.has(alg)) return new SymmetricKey(id, alg, key, where);
  const need = CMAC_KEY_LENGTH[alg];
  if (need !== undefined && alg !== 'AES192') {
    if (key.length !== need) {
      throw new ConfigError(`${where}: invalid length of ${type} key ${id} (expected ${need * 8} bits)`);
    }
    return new SymmetricKey(id, alg, key, where);
  }
  throw new ConfigError(`${where}: invalid type '${type}' in key ${id}`);
}

function parseNtpLine(words: string[], where: string): SymmetricKey {
  if (words.length !== 3) throw new ConfigError(`${where}: could not parse key (expected 'keyno type key')`);
  if (!/^\d+$/.test(words[0]!) || Number(words[0]) < 1 || Number(words[0]) > 65535) {
    throw new ConfigError(`${where}: invalid key number '${words[0]}' (must be 1..65535)`);
  }
  const id = Number(words[0]);
  const alg = NTP_TYPES.get(words[1]!.toLowerCase());
  if (!alg) throw new ConfigError(`${where}: unknown type '${words[1]}' in key ${id}`);
  const text = words[2]!;
  let key: Uint8Array | null;
  if (text.length <= 20) {
    key = /^[\x21-\x7e]+$/.test(text) ? new TextEncoder().encode(text) : null;
    if (!key) throw new ConfigError(`${where}: key ${id} is not printable ASCII`);
  } else {
    key = decodeHex(text);
    if (!key) throw new ConfigError(`${where}: key ${id} is longer than 20 characters but not hex`);
    if (key.length > NTP_MAX_KEY_BYTES) {
      throw new ConfigError(`${where}: key ${id} is longer than ${NTP_MAX_KEY_BYTES} bytes`);
    }
  }
  return new SymmetricKey(id, alg, key, where);
}

/** Parses a key file's text. Duplicate IDs are an error (chronyd only warns; a silent pick is worse). */
export function parseKeysText(text: string, file: string, dialect: KeyFileDialect): SymmetricKey[] {
  const keys: SymmetricKey[] = [];
  const seen = new Map<number, string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    // chrony: a comment is a whole line starting with one of #!;% ; ntp: '#' starts a comment anywhere.
    if (dialect === 'ntp') {
      const h = line.indexOf('#');
      if (h >= 0) line = line.slice(0, h);
    }
    const t = line.trim();
    if (t === '' || (dialect === 'chrony' && '#!;%'.includes(t[0]!))) continue;
    const where = `${file}:${i + 1}`;
    const words = t.split(/\s+/);
    const key = dialect === 'chrony' ? parseChronyLine(words, where) : parseNtpLine(words, where);
    const prev = seen.get(key.id);
    if (prev) throw new ConfigError(`${where}: duplicate key ${key.id} (first defined at ${prev})`);
    seen.set(key.id, where);
    if (keys.length >= MAX_KEYS) throw new ConfigError(`${where}: too many keys (limit ${MAX_KEYS})`);
    keys.push(key);
  }
  return keys;
}

export function loadKeysFile(file: string, dialect: KeyFileDialect): SymmetricKey[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read key file: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseKeysText(text, file, dialect);
}

/**
 * Converts ntp keys to chrony's key file text. Keys chrony 4.3 cannot use (SHA224, RIPEMD160,
 * AES192, AES keys of the wrong length) are left out and reported in `skipped` (id and reason
 * only). Key material is written only to the returned text.
 */
export function keysToChronyText(keys: readonly SymmetricKey[]): { text: string; skipped: string[] } {
  const out: string[] = [];
  const skipped: string[] = [];
  for (const k of keys) {
    const need = CMAC_KEY_LENGTH[k.algorithm];
    if (!CHRONY_HASHES.has(k.algorithm) && (need === undefined || k.algorithm === 'AES192')) {
      skipped.push(`key ${k.id}: type ${k.algorithm} is not supported by chrony`);
      continue;
    }
    if (need !== undefined && need !== k.length) {
      skipped.push(`key ${k.id}: ${k.algorithm} needs a ${need * 8}-bit key, it has ${k.length * 8} bits`);
      continue;
    }
    out.push(`${k.id} ${k.algorithm} HEX:${Buffer.from(k.material()).toString('hex').toUpperCase()}`);
  }
  return { text: out.length ? out.join('\n') + '\n' : '', skipped };
}
