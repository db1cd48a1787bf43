/**
 * AEAD_AES_SIV_CMAC_256 (RFC 5297) on node:crypto's AES-128 (OpenSSL, AES-NI).
 *
 * S2V needs CMAC and SIV needs CTR; node:crypto offers neither as such, so both are built from
 * AES-128 block ciphers that live as long as the key is in use:
 * - CMAC = CBC-MAC with a zero IV over the message whose last block is masked with the
 *   subkey K1/K2. One long-running `aes-128-cbc` stream serves every CMAC under K1: its chaining
 *   state is the last ciphertext block, so XOR-ing that block into the first block of the next
 *   message restarts the chain at a zero IV without creating a new cipher.
 * - CTR = the counter blocks (Q, Q+1, ...) encrypted by one long-running `aes-128-ecb` stream
 *   under K2, XOR-ed into the data.
 * Creating an OpenSSL cipher costs more than encrypting an NTS packet, hence the per-key
 * state cache (bounded; NTS servers see one key pair per client).
 */
import { createCipheriv, timingSafeEqual, type Cipher } from 'node:crypto';

const BLOCK = 16;
/** Keys whose cipher state is kept (least recently used evicted). */
const CACHE_LIMIT = 256;

interface KeyState {
  cbc: Cipher;
  /** Last ciphertext block of the CBC stream (its chaining value). */
  chain: Uint8Array;
  k1: Uint8Array;
  k2: Uint8Array;
  /** CMAC of the zero block, the start of every S2V. */
  d0: Uint8Array;
  ecb: Cipher;
}

const cache = new Map<string, KeyState>();

function dbl(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK - 1; i++) out[i] = ((b[i]! << 1) | (b[i + 1]! >>> 7)) & 0xff;
  out[BLOCK - 1] = ((b[BLOCK - 1]! << 1) & 0xff) ^ (b[0]! & 0x80 ? 0x87 : 0);
  return out;
}

function cbcBlocks(st: KeyState, blocks: Uint8Array): Uint8Array {
  for (let i = 0; i < BLOCK; i++) blocks[i]! ^= st.chain[i]!;
  const out = st.cbc.update(blocks);
  // A copy: node's Buffer.slice() returns views, and callers modify what they get.
  st.chain = new Uint8Array(out.subarray(out.length - BLOCK));
  return new Uint8Array(st.chain);
}

/** AES-CMAC (RFC 4493) of `m` under the state's K1. */
function cmac(st: KeyState, m: Uint8Array): Uint8Array {
  const n = Math.max(1, Math.ceil(m.length / BLOCK));
  const buf = new Uint8Array(n * BLOCK);
  buf.set(m);
  const last = (n - 1) * BLOCK;
  const complete = m.length > 0 && m.length % BLOCK === 0;
  if (!complete) buf[m.length] = 0x80;
  const sub = complete ? st.k1 : st.k2;
  for (let i = 0; i < BLOCK; i++) buf[last + i]! ^= sub[i]!;
  return cbcBlocks(st, buf);
}

function keyState(key: Uint8Array): KeyState {
  const id = Buffer.from(key.buffer, key.byteOffset, key.length).toString('hex');
  const hit = cache.get(id);
  if (hit) {
    cache.delete(id);
    cache.set(id, hit);
    return hit;
  }
  const cbc = createCipheriv('aes-128-cbc', key.subarray(0, 16), Buffer.alloc(BLOCK)).setAutoPadding(false);
  const ecb = createCipheriv('aes-128-ecb', key.subarray(16, 32), null).setAutoPadding(false);
  const st: KeyState = {
    cbc,
    chain: new Uint8Array(BLOCK),
    k1: new Uint8Array(0),
    k2: new Uint8Array(0),
    d0: new Uint8Array(0),
    ecb,
  };
  // L = AES(K, 0): a one-block CBC-MAC of the zero block.
  const l = cbcBlocks(st, new Uint8Array(BLOCK));
  st.k1 = dbl(l);
  st.k2 = dbl(st.k1);
  st.d0 = cmac(st, new Uint8Array(BLOCK));
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(id, st);
  return st;
}

function s2v(st: KeyState, components: readonly Uint8Array[], last: Uint8Array): Uint8Array {
  let d = st.d0;
  for (const s of components) {
    d = dbl(d);
    const m = cmac(st, s);
    for (let i = 0; i < BLOCK; i++) d[i]! ^= m[i]!;
  }
  let t: Uint8Array;
  if (last.length >= BLOCK) {
    t = new Uint8Array(last); // a copy even when given a Buffer
    const off = t.length - BLOCK;
    for (let i = 0; i < BLOCK; i++) t[off + i]! ^= d[i]!;
  } else {
    t = dbl(d);
    for (let i = 0; i < last.length; i++) t[i]! ^= last[i]!;
    t[last.length]! ^= 0x80;
  }
  return cmac(st, t);
}

function ctr(st: KeyState, v: Uint8Array, data: Uint8Array): Uint8Array {
  const n = Math.ceil(data.length / BLOCK);
  const out = new Uint8Array(data.length);
  if (n === 0) return out;
  const counters = new Uint8Array(n * BLOCK);
  const q = new Uint8Array(v);
  q[8]! &= 0x7f;
  q[12]! &= 0x7f;
  // Bit 31 of the low word is clear: the low 32 bits cannot carry for fewer than 2^31 blocks.
  const low = ((q[12]! << 24) | (q[13]! << 16) | (q[14]! << 8) | q[15]!) >>> 0;
  for (let b = 0; b < n; b++) {
    const off = b * BLOCK;
    counters.set(q.subarray(0, 12), off);
    const c = (low + b) >>> 0;
    counters[off + 12] = c >>> 24;
    counters[off + 13] = (c >>> 16) & 0xff;
    counters[off + 14] = (c >>> 8) & 0xff;
    counters[off + 15] = c & 0xff;
  }
  const ks = st.ecb.update(counters);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ ks[i]!;
  return out;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== 32) throw new RangeError('AES-SIV-CMAC-256 needs a 32-byte key');
}

/** RFC 5297 SIV-AES encryption: V (16 bytes) followed by the ciphertext. */
export function sivSeal(key: Uint8Array, ad: readonly Uint8Array[], plaintext: Uint8Array): Uint8Array {
  checkKey(key);
  const st = keyState(key);
  const v = s2v(st, ad, plaintext);
  const out = new Uint8Array(BLOCK + plaintext.length);
  out.set(v);
  out.set(ctr(st, v, plaintext), BLOCK);
  return out;
}

/** RFC 5297 SIV-AES decryption; null when the ciphertext is not authentic. Never throws. */
export function sivOpen(key: Uint8Array, ad: readonly Uint8Array[], ciphertext: Uint8Array): Uint8Array | null {
  if (key.length !== 32 || ciphertext.length < BLOCK) return null;
  const st = keyState(key);
  const v = ciphertext.subarray(0, BLOCK);
  const p = ctr(st, v, ciphertext.subarray(BLOCK));
  const t = s2v(st, ad, p);
  return timingSafeEqual(t, v) ? p : null;
}
