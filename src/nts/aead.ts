/**
 * The AEAD algorithms of NTS (RFC 8915 §5.1, IANA AEAD registry):
 * - 15 AEAD_AES_SIV_CMAC_256 (RFC 5297; mandatory): the NTS nonce is the last associated-data
 *   component of S2V, 16-byte nonces. `AES_SIV_CMAC_256` is the fastest implementation present:
 *   the addon's OpenSSL AES-SIV (`aead-native.ts`, about 10× node:crypto in `bench/nts-aead.ts`),
 *   else the node:crypto composition (`aead-node.ts`, several times faster than noble). The
 *   others stay exported: `AES_SIV_CMAC_256_NODE` and `AES_SIV_CMAC_256_NOBLE` (independent
 *   implementations that tests cross-check).
 * - 30 AEAD_AES_128_GCM_SIV (RFC 8452): 12-byte nonces (chrony uses N_MAX = 12 in the NTS
 *   authenticator), associated data = the concatenated components, @noble/ciphers `gcmsiv`.
 *
 * `open` never throws: wrong key or nonce lengths, short or tampered ciphertexts all give null.
 */
import { aessiv, gcmsiv } from '@noble/ciphers/aes.js';
import { AES_SIV_CMAC_256_NATIVE } from './aead-native.js';
import { sivOpen, sivSeal } from './aead-node.js';

export type AeadId = 15 | 30;

/**
 * A key prepared for many operations (native AES-SIV: OpenSSL contexts keyed once). The `Into`
 * forms write at out[offset] and return the bytes written; `openInto` returns -1 when the
 * ciphertext is not authentic. One associated-data component; the nonce follows it.
 */
export interface AeadKey {
  sealInto(nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, out: Uint8Array, offset: number): number;
  openInto(nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array, out: Uint8Array, offset: number): number;
}

export interface Aead {
  id: AeadId;
  /** Key length in bytes (32 for id 15, 16 for id 30). */
  keyLength: number;
  /** Nonce length the NTS authenticator uses with this algorithm (16 or 12 bytes). */
  nonceLength: number;
  /** Bytes the ciphertext adds to the plaintext (the tag / synthetic IV). */
  tagLength: number;
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array[]): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array[]): Uint8Array | null;
  /**
   * `seal` writing ciphertext (tag first for AES-SIV) at out[offset], one associated-data
   * component; returns the bytes written (plaintext + tagLength). The output may coincide with
   * the plaintext shifted by the tag (out[offset + tagLength] is plaintext[0]), not overlap the
   * associated data or nonce. Throws RangeError when `out` is too small.
   */
  sealInto(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    ad: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): number;
  /** `open` writing the plaintext at out[offset]; its length, or -1 (never throws for bad input). */
  openInto(
    key: Uint8Array,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    ad: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): number;
  /** The key bound for repeated use (native AES-SIV: contexts of its own). */
  prepare(key: Uint8Array): AeadKey;
}

/** The `Into` forms and `prepare` on top of an implementation's `seal` and `open`. */
function withInto(a: Omit<Aead, 'sealInto' | 'openInto' | 'prepare'>): Aead {
  const sealInto: Aead['sealInto'] = (key, nonce, plaintext, ad, out, offset) => {
    const ct = a.seal(key, nonce, plaintext, [ad]);
    if (offset < 0 || out.length - offset < ct.length) throw new RangeError('output buffer too small');
    out.set(ct, offset);
    return ct.length;
  };
  const openInto: Aead['openInto'] = (key, nonce, ciphertext, ad, out, offset) => {
    const pt = a.open(key, nonce, ciphertext, [ad]);
    if (!pt || offset < 0 || out.length - offset < pt.length) return -1;
    out.set(pt, offset);
    return pt.length;
  };
  return {
    ...a,
    sealInto,
    openInto,
    prepare: (key) => ({
      sealInto: (nonce, plaintext, ad, out, offset) => sealInto(key, nonce, plaintext, ad, out, offset),
      openInto: (nonce, ciphertext, ad, out, offset) => openInto(key, nonce, ciphertext, ad, out, offset),
    }),
  };
}

export const AEAD_NAMES: Record<AeadId, string> = {
  15: 'AES-SIV-CMAC-256',
  30: 'AES-128-GCM-SIV',
};

const TAG = 16;

/** AEAD 15 composed on node:crypto's AES-128 (the fallback without the addon). */
export const AES_SIV_CMAC_256_NODE: Aead = withInto({
  id: 15,
  keyLength: 32,
  nonceLength: 16,
  tagLength: TAG,
  seal: (key, nonce, plaintext, ad) => sivSeal(key, [...ad, nonce], plaintext),
  open: (key, nonce, ciphertext, ad) => sivOpen(key, [...ad, nonce], ciphertext),
});

/** AEAD 15 as used by NTS: native when the addon has it, else node:crypto. */
export const AES_SIV_CMAC_256: Aead = AES_SIV_CMAC_256_NATIVE ?? AES_SIV_CMAC_256_NODE;
/** Which implementation `AES_SIV_CMAC_256` is (benchmarks and the daemon's start-up log). */
export const AES_SIV_CMAC_256_BACKEND: 'native' | 'node:crypto' = AES_SIV_CMAC_256_NATIVE ? 'native' : 'node:crypto';

/** The same algorithm through @noble/ciphers (slower; used to cross-check the others). */
export const AES_SIV_CMAC_256_NOBLE: Aead = withInto({
  id: 15,
  keyLength: 32,
  nonceLength: 16,
  tagLength: TAG,
  seal: (key, nonce, plaintext, ad) => aessiv(key, ...ad, nonce).encrypt(plaintext),
  open: (key, nonce, ciphertext, ad) => {
    if (key.length !== 32 || ciphertext.length < TAG) return null;
    try {
      return aessiv(key, ...ad, nonce).decrypt(ciphertext);
    } catch {
      return null;
    }
  },
});

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
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

export const AES_128_GCM_SIV: Aead = withInto({
  id: 30,
  keyLength: 16,
  nonceLength: 12,
  tagLength: TAG,
  seal: (key, nonce, plaintext, ad) => gcmsiv(key, nonce, concat(ad)).encrypt(plaintext),
  open: (key, nonce, ciphertext, ad) => {
    if (key.length !== 16 || nonce.length !== 12 || ciphertext.length < TAG) return null;
    try {
      return gcmsiv(key, nonce, concat(ad)).decrypt(ciphertext);
    } catch {
      return null;
    }
  },
});

export function aeadById(id: number): Aead | undefined {
  if (id === 15) return AES_SIV_CMAC_256;
  if (id === 30) return AES_128_GCM_SIV;
  return undefined;
}

export function isAeadId(id: number): id is AeadId {
  return id === 15 || id === 30;
}
