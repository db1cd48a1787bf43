/**
 * AEAD_AES_SIV_CMAC_256 (RFC 5297, NTS AEAD 15) on the addon's AES-SIV (native/aead.c), which
 * runs S2V and CTR on the OpenSSL inside Node with no allocation per operation. About ten times
 * the throughput of the node:crypto composition (`aead-node.ts`), which stays the fallback when
 * the addon is missing, too old, or built against a Node without OpenSSL symbols.
 *
 * Two ways in:
 * - `AES_SIV_CMAC_256_NATIVE`, the `Aead` interface: every call passes the key; one scratch
 *   OpenSSL context per thread is re-keyed only when the key differs from its previous one
 *   (a key schedule costs about as much as sealing a short packet).
 * - `NativeSivKey`: a key bound to contexts of its own, for keys used for many operations
 *   (the cookie master keys), so they never evict each other from the scratch context.
 */
import { native } from '../io/native.js';
import type { Aead, AeadKey } from './aead.js';

/** Opaque handle of a native AES-SIV key (an external holding two EVP_CIPHER_CTX). */
type SivHandle = { readonly __brand: 'NativeSivHandle' };
type AdArg = Uint8Array | readonly Uint8Array[] | null;

/** The addon's AES-SIV exports (native/aead.c); absent from older builds. */
interface NativeSivExports {
  aeadSivCreate(key?: Uint8Array | null): SivHandle;
  /** Writes V || C (16 + plaintext bytes) at out[outOffset]; returns the bytes written. */
  aeadSivSeal(
    h: SivHandle,
    key: Uint8Array | null,
    ad: AdArg,
    nonce: Uint8Array | null,
    plaintext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number;
  /** Writes the plaintext at out[outOffset]; returns its length, or -1 if not authentic. */
  aeadSivOpen(
    h: SivHandle,
    key: Uint8Array | null,
    ad: AdArg,
    nonce: Uint8Array | null,
    ciphertext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number;
  aeadSivBackend: string;
}

const TAG = 16;
const KEY_LENGTH = 32;
/** native/aead.c's limit on associated-data components (RFC 5297: 126 plus the plaintext). */
const MAX_COMPONENTS = 126;

function loadSiv(): NativeSivExports | null {
  const a = native as unknown as Partial<NativeSivExports> | null;
  if (!a || typeof a.aeadSivCreate !== 'function' || typeof a.aeadSivSeal !== 'function') return null;
  if (typeof a.aeadSivOpen !== 'function') return null;
  return a as NativeSivExports;
}

const siv = loadSiv();

/** e.g. "OpenSSL 3.0.19 27 Jan 2026" when the native AES-SIV is available, else null. */
export const nativeSivBackend: string | null = siv ? siv.aeadSivBackend : null;

let scratchHandle: SivHandle | null = null;
function scratch(api: NativeSivExports): SivHandle {
  return (scratchHandle ??= api.aeadSivCreate());
}

/** A 32-byte AES-SIV key with OpenSSL contexts of its own (keyed once). */
export class NativeSivKey implements AeadKey {
  private readonly api: NativeSivExports;
  private readonly handle: SivHandle;

  /** Throws when the native AES-SIV is unavailable (check `nativeSivBackend`) or the key is not 32 bytes. */
  constructor(key: Uint8Array) {
    if (!siv) throw new Error('native AES-SIV unavailable');
    if (key.length !== KEY_LENGTH) throw new RangeError('AES-SIV-CMAC-256 needs a 32-byte key');
    this.api = siv;
    this.handle = siv.aeadSivCreate(key);
  }

  sealInto(nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, out: Uint8Array, offset: number): number {
    return this.api.aeadSivSeal(this.handle, null, ad, nonce, plaintext, out, offset);
  }

  openInto(nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array, out: Uint8Array, offset: number): number {
    if (ciphertext.length < TAG || out.length - offset < ciphertext.length - TAG) return -1;
    return this.api.aeadSivOpen(this.handle, null, ad, nonce, ciphertext, out, offset);
  }
}

function makeNativeAead(api: NativeSivExports): Aead {
  return {
    id: 15,
    keyLength: KEY_LENGTH,
    nonceLength: 16,
    tagLength: TAG,
    seal(key, nonce, plaintext, ad) {
      const out = new Uint8Array(TAG + plaintext.length);
      api.aeadSivSeal(scratch(api), key, ad, nonce, plaintext, out, 0);
      return out;
    },
    open(key, nonce, ciphertext, ad) {
      if (key.length !== KEY_LENGTH || ciphertext.length < TAG || ad.length > MAX_COMPONENTS - 1) return null;
      const out = new Uint8Array(ciphertext.length - TAG);
      return api.aeadSivOpen(scratch(api), key, ad, nonce, ciphertext, out, 0) < 0 ? null : out;
    },
    sealInto(key, nonce, plaintext, ad, out, offset) {
      return api.aeadSivSeal(scratch(api), key, ad, nonce, plaintext, out, offset);
    },
    openInto(key, nonce, ciphertext, ad, out, offset) {
      if (key.length !== KEY_LENGTH || ciphertext.length < TAG || out.length - offset < ciphertext.length - TAG) {
        return -1;
      }
      return api.aeadSivOpen(scratch(api), key, ad, nonce, ciphertext, out, offset);
    },
    prepare: (key) => new NativeSivKey(key),
  };
}

/** AEAD 15 on the native AES-SIV; null when the addon does not have it. */
export const AES_SIV_CMAC_256_NATIVE: Aead | null = siv ? makeNativeAead(siv) : null;
