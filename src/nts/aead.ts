/**
 * The AEAD algorithms of NTS (RFC 8915 §5.1, IANA AEAD registry):
 * - 15 AEAD_AES_SIV_CMAC_256 (RFC 5297; mandatory): the NTS nonce is the last associated-data
 *   component of S2V, 16-byte nonces. Implemented on node:crypto (`aead-node.ts`), which
 *   `bench/nts-aead.ts` measures several times faster than @noble/ciphers' `aessiv`; the noble
 *   version is kept as `AES_SIV_CMAC_256_NOBLE` (a second, independent implementation for tests).
 * - 30 AEAD_AES_128_GCM_SIV (RFC 8452): 12-byte nonces (chrony uses N_MAX = 12 in the NTS
 *   authenticator), associated data = the concatenated components, @noble/ciphers `gcmsiv`.
 *
 * `open` never throws: wrong key or nonce lengths, short or tampered ciphertexts all give null.
 */
import { aessiv, gcmsiv } from '@noble/ciphers/aes.js';
import { sivOpen, sivSeal } from './aead-node.js';

export type AeadId = 15 | 30;

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
}

export const AEAD_NAMES: Record<AeadId, string> = {
  15: 'AES-SIV-CMAC-256',
  30: 'AES-128-GCM-SIV',
};

const TAG = 16;

export const AES_SIV_CMAC_256: Aead = {
  id: 15,
  keyLength: 32,
  nonceLength: 16,
  tagLength: TAG,
  seal: (key, nonce, plaintext, ad) => sivSeal(key, [...ad, nonce], plaintext),
  open: (key, nonce, ciphertext, ad) => sivOpen(key, [...ad, nonce], ciphertext),
};

/** The same algorithm through @noble/ciphers (slower; used to cross-check the node version). */
export const AES_SIV_CMAC_256_NOBLE: Aead = {
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
};

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

export const AES_128_GCM_SIV: Aead = {
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
};

export function aeadById(id: number): Aead | undefined {
  if (id === 15) return AES_SIV_CMAC_256;
  if (id === 30) return AES_128_GCM_SIV;
  return undefined;
}

export function isAeadId(id: number): id is AeadId {
  return id === 15 || id === 30;
}
